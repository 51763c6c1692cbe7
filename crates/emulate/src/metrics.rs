//! The Prometheus exposition, with vLLM's metric names and buckets so that dashboards,
//! adapters and HPA manifests written for vLLM work unchanged.
use std::fmt::Write as _;

/// vLLM's `vllm:time_to_first_token_seconds` buckets (vllm/v1/metrics/loggers.py).
pub const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// vLLM's `vllm:e2e_request_latency_seconds` buckets.
pub const E2E_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// A Prometheus histogram with fixed buckets.
#[derive(Debug, Clone)]
pub struct PromHistogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl PromHistogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub fn record(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b:?}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// A [`PromHistogram`] that many threads record into without a lock (`--instant`
/// mode, where a lock or a round trip to the model task per request would cost more
/// than the request): a bucket search over ~20 bounds and three relaxed atomic adds.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    counts: Vec<std::sync::atomic::AtomicU64>,
    /// The sum in nanoseconds (585 years of latency before it wraps).
    sum_ns: std::sync::atomic::AtomicU64,
    count: std::sync::atomic::AtomicU64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| Default::default()).collect(),
            sum_ns: Default::default(),
            count: Default::default(),
        }
    }

    pub fn record(&self, secs: f64) {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(i) = self.bounds.iter().position(|&b| secs <= b) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.sum_ns.fetch_add((secs.max(0.0) * 1e9) as u64, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// What it holds now (each field read on its own: a scrape racing a request may
    /// see it in the count and not yet in its bucket, as with any client library).
    pub fn snapshot(&self) -> PromHistogram {
        use std::sync::atomic::Ordering::Relaxed;
        PromHistogram {
            bounds: self.bounds,
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum: self.sum_ns.load(Relaxed) as f64 * 1e-9,
            count: self.count.load(Relaxed),
        }
    }
}

/// Everything `/metrics` shows, read at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub waiting: usize,
    pub running: usize,
    pub kv_usage: f64,
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
    /// Requests that ran to `max_tokens` (`finished_reason="length"`).
    pub success: u64,
    /// Requests dropped because the client went away (`finished_reason="abort"`).
    pub aborted: u64,
    pub errors: u64,
    pub ttft: PromHistogram,
    pub e2e: PromHistogram,
    /// Requests received by protocol version (label value, count).
    pub http_requests: [(&'static str, u64); 2],
}

fn metric(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    labels: &str,
    value: impl std::fmt::Display,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// The text exposition (format 0.0.4).
pub fn render(s: &Snapshot, model_name: &str) -> String {
    let labels = format!("model_name=\"{}\"", escape(model_name));
    let mut out = String::with_capacity(8192);
    let l = labels.as_str();
    metric(
        &mut out,
        "vllm:num_requests_running",
        "gauge",
        "Number of requests in model execution batches.",
        l,
        s.running,
    );
    metric(
        &mut out,
        "vllm:num_requests_waiting",
        "gauge",
        "Number of requests waiting to be processed.",
        l,
        s.waiting,
    );
    metric(
        &mut out,
        "vllm:kv_cache_usage_perc",
        "gauge",
        "KV-cache usage. 1 means 100 percent usage.",
        l,
        s.kv_usage,
    );
    metric(
        &mut out,
        "vllm:gpu_cache_usage_perc",
        "gauge",
        "GPU KV-cache usage (the name before vLLM 0.10). 1 means 100 percent usage.",
        l,
        s.kv_usage,
    );
    metric(
        &mut out,
        "vllm:prompt_tokens_total",
        "counter",
        "Number of prefill tokens processed.",
        l,
        s.prompt_tokens,
    );
    metric(
        &mut out,
        "vllm:generation_tokens_total",
        "counter",
        "Number of generation tokens processed.",
        l,
        s.generation_tokens,
    );
    // Every finish reason, as vLLM labels the counter for each `FinishReason` up front
    // (vllm/v1/metrics/loggers.py): `stop` (never here: no stop strings), `length`,
    // `abort` (the client went away).
    let name = "vllm:request_success_total";
    let _ = writeln!(
        out,
        "# HELP {name} Count of successfully processed requests.\n# TYPE {name} counter"
    );
    for (reason, n) in [("length", s.success), ("stop", 0), ("abort", s.aborted)] {
        let _ = writeln!(out, "{name}{{{l},finished_reason=\"{reason}\"}} {n}");
    }
    s.ttft.render(
        &mut out,
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        l,
    );
    s.e2e.render(
        &mut out,
        "vllm:e2e_request_latency_seconds",
        "Histogram of end to end request latency in seconds.",
        l,
    );
    metric(
        &mut out,
        "inference_queue_depth",
        "gauge",
        "Requests waiting for a batch slot (the seed's queue-depth metric).",
        "",
        s.waiting,
    );
    let name = "podscale_emulator_http_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} HTTP requests received, by protocol version.\n# TYPE {name} counter"
    );
    for (version, n) in s.http_requests {
        let _ = writeln!(out, "{name}{{version=\"{version}\"}} {n}");
    }
    metric(
        &mut out,
        "podscale_emulator_errors_total",
        "counter",
        "Requests answered with an error (injected, timed out, refused).",
        "",
        s.errors,
    );
    out
}

/// Escapes a label value (`\`, `"` and newlines, as the exposition format requires).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_atomic_histogram_snapshots_as_the_plain_one_records() {
        let (a, mut p) = (
            AtomicHistogram::new(TTFT_BUCKETS),
            PromHistogram::new(TTFT_BUCKETS),
        );
        for v in [0.0004, 0.003, 0.003, 0.7, 5000.0] {
            a.record(v);
            p.record(v);
        }
        let s = a.snapshot();
        assert_eq!((&s.counts, s.count), (&p.counts, p.count));
        assert!((s.sum - p.sum).abs() < 1e-6, "{} vs {}", s.sum, p.sum);
    }

    #[test]
    fn histograms_are_cumulative_with_an_inf_bucket() {
        let mut h = PromHistogram::new(E2E_BUCKETS);
        h.record(0.4);
        h.record(0.9);
        h.record(9000.0);
        let mut out = String::new();
        h.render(&mut out, "x", "help", "m=\"a\"");
        assert!(out.contains("x_bucket{m=\"a\",le=\"0.5\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{m=\"a\",le=\"1.0\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{m=\"a\",le=\"7680.0\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{m=\"a\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{m=\"a\"} 3\n"), "{out}");
    }
}
