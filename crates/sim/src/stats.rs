//! Counting what happens to requests: outcomes, latency and TTFT histograms (for the run
//! and for the current series step), SLO attainment and the queue's peak. One
//! [`Recorder`] per run; the replicas write into it on the hot path.
use serde::Serialize;

use crate::histogram::{Coarse, Fine};
use crate::replica::ServerParams;
use crate::units::{format_duration, parse_duration, trim_float};

/// The service-level objective a request is held to, and the share of requests that
/// must meet it (the goal the oracle meets).
///
/// The TTFT bound may grow with the prompt (`ttft=1s+0.2ms/token`), and a bound on the
/// time per output token (TPOT, `(e2e − ttft) / (output − 1)`, as vLLM's
/// `benchmark_serving` reports it) may stand beside the end-to-end one, as serving
/// papers state SLOs (DistServe, Splitwise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slo {
    /// Time to first token, seconds (its fixed part).
    pub ttft: f64,
    /// Seconds the TTFT bound grows per prompt token (0: a fixed bound).
    pub ttft_per_token: f64,
    /// Time per output token after the first, seconds (`None`: no bound).
    pub tpot: Option<f64>,
    /// End-to-end latency, seconds.
    pub e2e: f64,
    /// Share of the feasible requests that must meet every bound (0..1).
    pub goal: f64,
}

impl Default for Slo {
    fn default() -> Self {
        Self {
            ttft: 2.0,
            ttft_per_token: 0.0,
            tpot: None,
            e2e: 30.0,
            goal: 0.99,
        }
    }
}

/// Slack on the bounds, so that a request served exactly at a bound (its service time
/// alone, computed by another sum) meets it.
const SLACK: f64 = 1e-9;

impl Slo {
    /// `ttft=2s[+0.2ms/token][,tpot=80ms][,e2e=30s][,goal=99%]`; keys left out keep
    /// their defaults (`latency` is another name of `e2e`). An error names the character
    /// where the text goes wrong (counted from 1).
    pub fn parse(text: &str) -> Result<Self, String> {
        parse_slo(text).map_err(|(pos, msg)| {
            let col = text[..pos.min(text.len())].chars().count() + 1;
            format!("at character {col} of `{text}`: {msg}")
        })
    }

    /// The TTFT bound of a request with `input` prompt tokens.
    #[inline]
    pub fn ttft_bound(&self, input: u32) -> f64 {
        self.ttft + self.ttft_per_token * f64::from(input)
    }

    /// Whether a request of `input` and `output` tokens served with these times meets
    /// every bound.
    #[inline]
    pub fn met(&self, input: u32, output: u32, ttft: f64, e2e: f64) -> bool {
        ttft <= self.ttft_bound(input) + SLACK
            && e2e <= self.e2e + SLACK
            && match self.tpot {
                Some(b) if output > 1 => (e2e - ttft) / f64::from(output - 1) <= b + SLACK,
                _ => true,
            }
    }

    pub fn describe(&self) -> String {
        let mut ttft = format_duration(self.ttft);
        if self.ttft_per_token > 0.0 {
            ttft = format!("{ttft} + {}/token", format_duration(self.ttft_per_token));
        }
        let tpot = self
            .tpot
            .map_or_else(String::new, |t| format!(", TPOT ≤ {}", format_duration(t)));
        format!(
            "TTFT ≤ {ttft}{tpot}, latency ≤ {} (goal {}% of feasible requests)",
            format_duration(self.e2e),
            trim_float(self.goal * 100.0, 2)
        )
    }
}

/// Which requests can meet the SLO at all: those that fit the KV cache and meet every
/// bound alone on an idle replica (prefill at full speed, then the fastest decode step).
/// A request that cannot is *infeasible*: no number of replicas serves it within the
/// SLO, so it counts neither for nor against a policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feasibility {
    slo: Slo,
    prefill_seconds_per_token: f64,
    /// The fastest decode step at any batch size: a lower bound on every step.
    min_step: f64,
    kv_capacity: u64,
}

impl Feasibility {
    pub fn new(slo: &Slo, params: &ServerParams) -> Self {
        let min_step = params
            .step
            .iter()
            .skip(1)
            .copied()
            .fold(f64::INFINITY, f64::min);
        Self {
            slo: *slo,
            prefill_seconds_per_token: params.prefill_seconds_per_token,
            min_step: if min_step.is_finite() { min_step } else { 0.0 },
            kv_capacity: params.kv_capacity,
        }
    }

    /// Whether the request fits a replica's KV cache at all.
    #[inline]
    pub fn fits(&self, input: u32, output: u32) -> bool {
        u64::from(input) + u64::from(output) <= self.kv_capacity
    }

    /// Whether the request can meet the SLO on an idle replica.
    #[inline]
    pub fn feasible(&self, input: u32, output: u32) -> bool {
        if !self.fits(input, output) {
            return false;
        }
        let ttft = f64::from(input) * self.prefill_seconds_per_token;
        let e2e = ttft + f64::from(output.saturating_sub(1)) * self.min_step;
        self.slo.met(input, output, ttft, e2e)
    }
}

/// A position (byte offset) in the `--slo` text and what is wrong there.
type ParseError = (usize, String);

fn parse_slo(text: &str) -> Result<Slo, ParseError> {
    let mut slo = Slo::default();
    let mut start = 0;
    for part in text.split(',') {
        let at = start;
        start += part.len() + 1;
        let lead = part.len() - part.trim_start().len();
        let part_trim = part.trim();
        if part_trim.is_empty() {
            continue;
        }
        let at = at + lead;
        let Some(eq) = part_trim.find('=') else {
            return Err((
                at,
                format!("expected key=value, found `{part_trim}` (e.g. ttft=2s,e2e=30s)"),
            ));
        };
        let key = part_trim[..eq].trim_end();
        let value = &part_trim[eq + 1..];
        let vlead = value.len() - value.trim_start().len();
        let vat = at + eq + 1 + vlead;
        let value = value.trim();
        match key {
            "ttft" => {
                let (fixed, per_token) = match value.find('+') {
                    Some(plus) => {
                        let tail = &value[plus + 1..];
                        let tlead = tail.len() - tail.trim_start().len();
                        let tat = vat + plus + 1 + tlead;
                        let tail = tail.trim();
                        let Some(slash) = tail.find('/') else {
                            return Err((
                                tat + tail.len(),
                                "expected `/token` after the per-token duration (e.g. ttft=1s+0.2ms/token)".into(),
                            ));
                        };
                        let unit = tail[slash + 1..].trim();
                        if unit != "token" && unit != "tok" {
                            return Err((
                                tat + slash + 1,
                                format!("expected `token` after `/`, found `{unit}`"),
                            ));
                        }
                        let per = duration(tail[..slash].trim_end(), tat)?;
                        (value[..plus].trim_end(), per)
                    }
                    None => (value, 0.0),
                };
                slo.ttft = duration(fixed, vat)?;
                slo.ttft_per_token = per_token;
            }
            "tpot" => {
                let v = duration(value, vat)?;
                if v <= 0.0 {
                    return Err((vat, "tpot must be above 0".into()));
                }
                slo.tpot = Some(v);
            }
            "e2e" | "latency" => slo.e2e = duration(value, vat)?,
            "goal" => {
                let g = match value.strip_suffix('%') {
                    Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
                    None => value.parse::<f64>(),
                }
                .map_err(|_| (vat, format!("`{value}` is not a share (e.g. 99% or 0.99)")))?;
                if !(g > 0.0 && g <= 1.0) {
                    return Err((vat, "the goal must be above 0 and at most 100%".into()));
                }
                slo.goal = g;
            }
            other => {
                return Err((
                    at,
                    format!("unknown key `{other}` (keys: ttft, tpot, e2e, goal)"),
                ));
            }
        }
    }
    if slo.ttft <= 0.0 && slo.ttft_per_token <= 0.0 {
        return Err((0, "the TTFT bound must be above 0".into()));
    }
    if slo.e2e <= 0.0 {
        return Err((0, "the e2e bound must be above 0".into()));
    }
    Ok(slo)
}

/// A duration at byte `at` of the text: `<number><unit>` groups (`ms`, `s`, `m`, `h`),
/// or a bare number of seconds. The error points at the first character that does
/// not belong.
fn duration(s: &str, at: usize) -> Result<f64, ParseError> {
    if s.is_empty() {
        return Err((at, "expected a duration (e.g. 2s, 500ms)".into()));
    }
    if let Ok(v) = s.parse::<f64>() {
        return if v >= 0.0 && v.is_finite() {
            Ok(v)
        } else {
            Err((at, format!("`{s}` is not a duration (e.g. 2s, 500ms)")))
        };
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let n0 = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        if i == n0 {
            return Err((at + i, "expected a number (e.g. 2s, 500ms)".into()));
        }
        let u0 = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        if !matches!(&s[u0..i], "ms" | "s" | "m" | "min" | "h") {
            let unit = if i == u0 {
                s[u0..].chars().next().map_or(String::new(), String::from)
            } else {
                s[u0..i].to_string()
            };
            return Err((
                at + u0,
                format!("unknown unit `{unit}` (units: ms, s, m, h)"),
            ));
        }
    }
    parse_duration(s).map_err(|e| (at, e))
}

/// What a simulated request carries through a replica: its size, for the SLO check at
/// completion, and the oracle window it arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tag {
    pub input: u32,
    pub output: u32,
    pub window: u32,
}

/// What is counted per oracle window (when the recorder tracks windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowCount {
    /// Requests of the window that met the SLO.
    pub met: u64,
    /// Requests of the window completed or timed out.
    pub settled: u64,
}

/// Everything counted about requests during one run.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub slo: Slo,
    pub arrived: u64,
    pub completed: u64,
    pub timed_out: u64,
    pub aborted: u64,
    pub rejected: u64,
    /// Requests that cannot meet the SLO even alone (see [`Feasibility`]), the rejected
    /// ones included.
    pub infeasible: u64,
    pub met_slo: u64,
    pub latency: Fine,
    pub ttft: Fine,
    /// Since the last series step.
    pub step_latency: Coarse,
    pub step_ttft: Coarse,
    /// Requests waiting in any queue right now.
    pub queued: u64,
    pub peak_queued: u64,
    /// Σ and count of the time requests waited before admission (or before timing out).
    pub queue_wait_sum: f64,
    pub queue_waits: u64,
    /// Per oracle window from `window_base`, when tracked (empty otherwise).
    pub windows: Vec<WindowCount>,
    pub window_base: u32,
}

impl Recorder {
    pub fn new(slo: Slo) -> Self {
        Self {
            slo,
            arrived: 0,
            completed: 0,
            timed_out: 0,
            aborted: 0,
            rejected: 0,
            infeasible: 0,
            met_slo: 0,
            latency: Fine::new(),
            ttft: Fine::new(),
            step_latency: Coarse::new(),
            step_ttft: Coarse::new(),
            queued: 0,
            peak_queued: 0,
            queue_wait_sum: 0.0,
            queue_waits: 0,
            windows: Vec::new(),
            window_base: 0,
        }
    }

    /// A recorder that also counts per window, for `windows` windows.
    pub fn with_windows(slo: Slo, windows: usize) -> Self {
        Self {
            windows: vec![WindowCount::default(); windows],
            ..Self::new(slo)
        }
    }

    #[inline]
    pub fn complete(&mut self, tag: Tag, e2e: f64, ttft: f64) {
        self.completed += 1;
        self.latency.record(e2e);
        self.ttft.record(ttft);
        self.step_latency.record(e2e);
        self.step_ttft.record(ttft);
        let met = self.slo.met(tag.input, tag.output, ttft, e2e);
        if met {
            self.met_slo += 1;
        }
        if let Some(w) = self
            .windows
            .get_mut(tag.window.wrapping_sub(self.window_base) as usize)
        {
            w.settled += 1;
            w.met += u64::from(met);
        }
    }

    /// The share of feasible requests that met the SLO (`None` without any).
    pub fn attainment(&self) -> Option<f64> {
        let feasible = self.arrived.saturating_sub(self.infeasible);
        (feasible > 0).then(|| self.met_slo as f64 / feasible as f64)
    }

    #[inline]
    pub fn enqueued(&mut self, n: u64) {
        self.queued += n;
        if self.queued > self.peak_queued {
            self.peak_queued = self.queued;
        }
    }

    #[inline]
    pub fn dequeued(&mut self, n: u64) {
        self.queued -= n;
    }

    /// A request left its queue after waiting `secs` (admitted or timed out).
    #[inline]
    pub fn waited(&mut self, secs: f64) {
        self.queue_wait_sum += secs;
        self.queue_waits += 1;
    }

    /// A request waited past the queue timeout and was dropped.
    #[inline]
    pub fn timed_out(&mut self, tag: Tag) {
        self.timed_out += 1;
        if let Some(w) = self
            .windows
            .get_mut(tag.window.wrapping_sub(self.window_base) as usize)
        {
            w.settled += 1;
        }
    }

    pub fn aborted(&mut self, n: u64) {
        self.aborted += n;
    }

    /// Requests whose fate is known.
    pub fn settled(&self) -> u64 {
        self.completed + self.timed_out + self.aborted + self.rejected
    }
}

/// The replicas report to the recorder.
impl podscale_model::Observer<Tag> for Recorder {
    #[inline]
    fn enqueued(&mut self, n: u64) {
        Recorder::enqueued(self, n);
    }
    #[inline]
    fn dequeued(&mut self, n: u64) {
        Recorder::dequeued(self, n);
    }
    #[inline]
    fn waited(&mut self, secs: f64) {
        Recorder::waited(self, secs);
    }
    #[inline]
    fn timed_out(&mut self, tag: Tag) {
        Recorder::timed_out(self, tag);
    }
    #[inline]
    fn aborted(&mut self, n: u64) {
        Recorder::aborted(self, n);
    }
    #[inline]
    fn complete(&mut self, tag: Tag, e2e: f64, ttft: f64) {
        Recorder::complete(self, tag, e2e, ttft);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Slo::parse(text).expect_err(text)
    }

    #[test]
    fn slo_parses_durations_and_a_goal() {
        let s = Slo::parse("ttft=500ms,e2e=1m,goal=95%").expect("valid");
        assert_eq!((s.ttft, s.e2e, s.goal), (0.5, 60.0, 0.95));
        let s = Slo::parse("ttft=1s").expect("valid");
        assert_eq!(
            (s.ttft, s.e2e, s.tpot, s.ttft_per_token),
            (1.0, 30.0, None, 0.0)
        );
        assert_eq!(Slo::parse("goal=0.9").expect("valid").goal, 0.9);
        assert_eq!(Slo::parse("latency=1m30s").expect("valid").e2e, 90.0);
    }

    #[test]
    fn slo_parses_a_length_aware_ttft_and_a_tpot() {
        let s = Slo::parse("ttft=1s+0.2ms/token,tpot=80ms,e2e=60s").expect("valid");
        assert_eq!(s.ttft, 1.0);
        assert!((s.ttft_per_token - 0.0002).abs() < 1e-15);
        assert_eq!((s.tpot, s.e2e), (Some(0.08), 60.0));
        assert!((s.ttft_bound(10_000) - 3.0).abs() < 1e-12);
        let spaced = Slo::parse(" ttft = 1s + 0.2ms / token , tpot=80ms ").expect("valid");
        assert_eq!(spaced, Slo { e2e: 30.0, ..s });
    }

    #[test]
    fn slo_errors_point_at_the_offending_character() {
        // Counted from 1: `ttft=1x` goes wrong at the `x`, the 7th character.
        let e = err("ttft=1x");
        assert!(
            e.starts_with("at character 7 of `ttft=1x`: unknown unit `x`"),
            "{e}"
        );
        let e = err("ttft=1s,tpot=5ms,qps=3");
        assert!(e.starts_with("at character 18 "), "{e}");
        assert!(
            e.contains("unknown key `qps` (keys: ttft, tpot, e2e, goal)"),
            "{e}"
        );
        let e = err("ttft=1s+0.2ms/tokens");
        assert!(e.starts_with("at character 15 "), "{e}");
        assert!(e.contains("expected `token` after `/`"), "{e}");
        let e = err("ttft=1s+0.2ms");
        assert!(e.starts_with("at character 14 "), "{e}");
        let e = err("ttft=1s+x/token");
        assert!(e.starts_with("at character 9 "), "{e}");
        assert!(e.contains("expected a number"), "{e}");
        let e = err("e2e=30s,goal=150%");
        assert!(e.starts_with("at character 14 "), "{e}");
        assert!(e.contains("at most 100%"), "{e}");
        let e = err("ttft");
        assert!(e.starts_with("at character 1 "), "{e}");
        assert!(e.contains("expected key=value"), "{e}");
        let e = err("tpot=0s");
        assert!(e.contains("tpot must be above 0"), "{e}");
        // Characters, not bytes: the `é` before counts once.
        let e = err("é=1s");
        assert!(e.starts_with("at character 1 "), "{e}");
        let e = err("e2e=1s,ttft=é");
        assert!(e.starts_with("at character 13 "), "{e}");
    }

    #[test]
    fn a_request_meets_the_slo_only_within_every_bound() {
        let tag = |input, output| Tag {
            input,
            output,
            window: 0,
        };
        let mut r = Recorder::new(Slo::default());
        r.complete(tag(10, 10), 10.0, 1.0);
        r.complete(tag(10, 10), 10.0, 3.0);
        r.complete(tag(10, 10), 31.0, 1.0);
        assert_eq!((r.completed, r.met_slo), (3, 1));
        let slo = Slo::parse("ttft=1s+1ms/token,tpot=100ms,e2e=60s").expect("valid");
        assert!(slo.met(1000, 11, 1.9, 2.9));
        assert!(!slo.met(100, 11, 1.9, 2.9), "TTFT bound of 1.1s");
        assert!(!slo.met(1000, 11, 1.9, 3.0 + 0.01), "TPOT over 100ms");
        assert!(slo.met(1000, 1, 1.9, 1.9), "one token: no TPOT");
    }

    #[test]
    fn feasibility_is_the_slo_alone_on_an_idle_replica() {
        let params = ServerParams {
            max_batch: 2,
            prefill_seconds_per_token: 0.001,
            step: vec![0.05, 0.05, 0.04],
            rate: vec![20.0, 20.0, 25.0],
            kv_capacity: 10_000,
            queue_timeout: 60.0,
        };
        let slo = Slo::parse("ttft=2s,tpot=45ms,e2e=30s").expect("valid");
        let f = Feasibility::new(&slo, &params);
        assert!(f.feasible(1000, 100));
        assert!(!f.feasible(2001, 1), "prefill alone is over the TTFT bound");
        assert!(!f.feasible(9000, 1001), "beyond the KV cache");
        // The fastest step is 40ms (batch 2): 45ms per token is reachable.
        assert!(f.feasible(100, 500));
        let strict = Feasibility::new(
            &Slo {
                tpot: Some(0.03),
                ..slo
            },
            &params,
        );
        assert!(!strict.feasible(100, 2));
        assert!(strict.feasible(100, 1));
    }
}
