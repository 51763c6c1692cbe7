//! A deterministic generator of vLLM-like exposition text for a fleet of pods: gauges,
//! counters and histograms with many buckets under `vllm:`-prefixed names, with label
//! values that contain `=`, `,`, quotes, backslashes and newlines. The same seed
//! always gives the same bytes (a fixed linear congruential generator, no `rand`).
//!
//! Used by `benches/exposition.rs` and `examples/gen_exposition.rs`
//! (`cargo run --release -p podscale-metrics --example gen_exposition -- 10 > fleet.prom`).
use std::fmt::Write as _;

/// Deterministic pseudo-random numbers (Knuth's MMIX LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const MODELS: &[&str] = &[
    "meta-llama/Llama-3.1-8B-Instruct",
    "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "Qwen/Qwen2.5-72B-Instruct",
    // Tricky: '=', ',', a quote, a backslash and a newline inside values.
    "org/model \"quoted\", v=2",
    "C:\\models\\llama\nrev=3",
];

const LATENCY_BUCKETS: &[&str] = &[
    "0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25", "0.5", "0.75", "1.0",
    "2.5", "5.0", "7.5", "10.0", "20.0", "40.0", "80.0", "160.0", "640.0", "2560.0", "+Inf",
];

const TOKEN_BUCKETS: &[&str] = &[
    "1.0", "2.0", "5.0", "10.0", "20.0", "50.0", "100.0", "200.0", "500.0", "1000.0", "2000.0",
    "5000.0", "10000.0", "+Inf",
];

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes one pod's metrics.
fn pod(out: &mut String, rng: &mut Lcg, prefix: &str, pod: usize, help: bool) {
    let model = escape(MODELS[pod % MODELS.len()]);
    let base = format!(
        "engine=\"0\",model_name=\"{model}\",namespace=\"ai-inference\",pod=\"vllm-{pod:05}\""
    );
    let metadata = |out: &mut String, name: &str, kind: &str, text: &str| {
        if help {
            let _ = writeln!(out, "# HELP {prefix}{name} {text}");
            let _ = writeln!(out, "# TYPE {prefix}{name} {kind}");
        }
    };
    for (name, text) in [
        (
            "num_requests_running",
            "Number of requests currently running on GPU.",
        ),
        (
            "num_requests_waiting",
            "Number of requests waiting to be processed.",
        ),
        (
            "kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
        ),
        (
            "gpu_cache_usage_perc",
            "GPU KV-cache usage (deprecated alias).",
        ),
    ] {
        metadata(out, name, "gauge", text);
        let v = rng.below(1000);
        if name.ends_with("perc") {
            let _ = writeln!(out, "{prefix}{name}{{{base}}} 0.{v:03}");
        } else {
            let _ = writeln!(out, "{prefix}{name}{{{base}}} {}", v % 64);
        }
    }
    for (name, text) in [
        ("prompt_tokens_total", "Number of prefill tokens processed."),
        (
            "generation_tokens_total",
            "Number of generation tokens processed.",
        ),
    ] {
        metadata(out, name, "counter", text);
        let _ = writeln!(out, "{prefix}{name}{{{base}}} {}", rng.below(1 << 40));
    }
    metadata(
        out,
        "request_success_total",
        "counter",
        "Count of successfully processed requests.",
    );
    for reason in ["stop", "length", "abort"] {
        let _ = writeln!(
            out,
            "{prefix}request_success_total{{{base},finished_reason=\"{reason}\"}} {}",
            rng.below(1 << 30)
        );
    }
    let histograms: [(&str, &[&str]); 5] = [
        ("time_to_first_token_seconds", LATENCY_BUCKETS),
        ("time_per_output_token_seconds", LATENCY_BUCKETS),
        ("e2e_request_latency_seconds", LATENCY_BUCKETS),
        ("request_prompt_tokens", TOKEN_BUCKETS),
        ("request_generation_tokens", TOKEN_BUCKETS),
    ];
    for (name, buckets) in histograms {
        metadata(out, name, "histogram", "Histogram of a request property.");
        let mut cumulative = 0u64;
        for le in buckets {
            cumulative += rng.below(5000);
            let _ = writeln!(
                out,
                "{prefix}{name}_bucket{{{base},le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = rng.below(1 << 32);
        let _ = writeln!(
            out,
            "{prefix}{name}_sum{{{base}}} {sum}.{:03}",
            rng.below(1000)
        );
        let _ = writeln!(out, "{prefix}{name}_count{{{base}}} {cumulative}");
    }
}

/// About `target_bytes` of exposition for as many pods as it takes. With
/// `colon_free`, names start `vllm_` instead of `vllm:` (for parsers that cannot read
/// colons); the bytes are otherwise the same.
pub fn generate(target_bytes: usize, colon_free: bool) -> String {
    let prefix = if colon_free { "vllm_" } else { "vllm:" };
    let mut rng = Lcg(0x05ee_d0ff_1ee7);
    let mut out = String::with_capacity(target_bytes + 64 * 1024);
    let mut n = 0;
    while out.len() < target_bytes {
        // HELP/TYPE once per family, as a federation or aggregated endpoint writes them.
        pod(&mut out, &mut rng, prefix, n, n == 0);
        n += 1;
    }
    out
}
