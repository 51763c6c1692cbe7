//! Counting what happens to requests: outcomes, latency and TTFT histograms (for the run
//! and for the current series step), SLO attainment and the queue's peak. One
//! [`Recorder`] per run; the replicas write into it on the hot path.
use serde::Serialize;

use crate::histogram::{Coarse, Fine};
use crate::units::{format_duration, parse_duration, trim_float};

/// The service-level objective a request is held to, and the share of requests that
/// must meet it (used by the oracle).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Slo {
    /// Time to first token, seconds.
    pub ttft: f64,
    /// End-to-end latency, seconds.
    pub e2e: f64,
    /// Share of requests that must meet both (0..1).
    pub goal: f64,
}

impl Default for Slo {
    fn default() -> Self {
        Self {
            ttft: 2.0,
            e2e: 30.0,
            goal: 0.99,
        }
    }
}

impl Slo {
    /// `ttft=2s,e2e=30s[,goal=99%]`; keys left out keep their defaults.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut slo = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| {
                format!("--slo: expected key=value, found `{part}` (e.g. ttft=2s,e2e=30s)")
            })?;
            match k.trim() {
                "ttft" => slo.ttft = parse_duration(v).map_err(|e| format!("--slo ttft: {e}"))?,
                "e2e" | "latency" => {
                    slo.e2e = parse_duration(v).map_err(|e| format!("--slo e2e: {e}"))?;
                }
                "goal" => {
                    let v = v.trim();
                    let g = match v.strip_suffix('%') {
                        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
                        None => v.parse::<f64>(),
                    }
                    .map_err(|_| format!("--slo goal: `{v}` is not a share (e.g. 99% or 0.99)"))?;
                    if !(g > 0.0 && g <= 1.0) {
                        return Err("--slo goal: must be above 0 and at most 100%".into());
                    }
                    slo.goal = g;
                }
                other => {
                    return Err(format!(
                        "--slo: unknown key `{other}` (keys: ttft, e2e, goal)"
                    ));
                }
            }
        }
        Ok(slo)
    }

    pub fn describe(&self) -> String {
        format!(
            "TTFT ≤ {}, latency ≤ {} (oracle goal {}%)",
            format_duration(self.ttft),
            format_duration(self.e2e),
            trim_float(self.goal * 100.0, 2)
        )
    }
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
            met_slo: 0,
            latency: Fine::new(),
            ttft: Fine::new(),
            step_latency: Coarse::new(),
            step_ttft: Coarse::new(),
            queued: 0,
            peak_queued: 0,
            queue_wait_sum: 0.0,
            queue_waits: 0,
        }
    }

    #[inline]
    pub fn complete(&mut self, e2e: f64, ttft: f64) {
        self.completed += 1;
        self.latency.record(e2e);
        self.ttft.record(ttft);
        self.step_latency.record(e2e);
        self.step_ttft.record(ttft);
        if ttft <= self.slo.ttft && e2e <= self.slo.e2e {
            self.met_slo += 1;
        }
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

    #[inline]
    pub fn timed_out(&mut self, n: u64) {
        self.timed_out += n;
    }

    pub fn aborted(&mut self, n: u64) {
        self.aborted += n;
    }

    /// Requests whose fate is known.
    pub fn settled(&self) -> u64 {
        self.completed + self.timed_out + self.aborted + self.rejected
    }
}

/// The replicas report to the recorder; the simulator's requests carry no tag.
impl podscale_model::Observer<()> for Recorder {
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
    fn timed_out(&mut self, (): ()) {
        Recorder::timed_out(self, 1);
    }
    #[inline]
    fn aborted(&mut self, n: u64) {
        Recorder::aborted(self, n);
    }
    #[inline]
    fn complete(&mut self, (): (), e2e: f64, ttft: f64) {
        Recorder::complete(self, e2e, ttft);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slo_parses_durations_and_a_goal() {
        let s = Slo::parse("ttft=500ms,e2e=1m,goal=95%").expect("valid");
        assert_eq!((s.ttft, s.e2e, s.goal), (0.5, 60.0, 0.95));
        let s = Slo::parse("ttft=1s").expect("valid");
        assert_eq!((s.ttft, s.e2e), (1.0, 30.0));
        assert!(
            Slo::parse("tpot=5ms")
                .expect_err("invalid")
                .contains("unknown key `tpot`")
        );
        assert!(Slo::parse("goal=150%").is_err());
    }

    #[test]
    fn a_request_meets_the_slo_only_within_both_bounds() {
        let mut r = Recorder::new(Slo::default());
        r.complete(10.0, 1.0);
        r.complete(10.0, 3.0);
        r.complete(31.0, 1.0);
        assert_eq!((r.completed, r.met_slo), (3, 1));
    }
}
