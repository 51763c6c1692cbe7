//! A run's summary: the numbers a policy is judged by (the text table and `-o json`).
use serde::Serialize;

use crate::stats::Slo;

/// Latency percentiles in seconds (`null` when no request completed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// One policy's results. Times are seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub policy: String,
    pub manifest: String,
    /// Requests that arrived.
    pub requests: u64,
    pub completed: u64,
    /// Dropped after waiting longer than the queue timeout.
    pub timed_out: u64,
    /// Killed with their pod at the end of its termination grace period.
    pub aborted: u64,
    /// Larger than a replica's whole KV cache: never servable.
    pub rejected: u64,
    /// End-to-end latency of completed requests.
    pub latency: Percentiles,
    /// Time to first token of completed requests.
    pub ttft: Percentiles,
    /// Requests that cannot meet the SLO even alone on an idle replica: larger than the
    /// KV cache (the `rejected` ones), or whose prefill or decode alone exceeds a bound.
    /// They count neither for nor against a policy.
    pub infeasible: u64,
    /// Share of the feasible requests that completed within every SLO bound; `null`
    /// when there were none (nothing was attained, nothing missed).
    pub slo_attainment: Option<f64>,
    /// The oracle schedule's attainment, replayed on the same traffic: it meets the goal.
    pub oracle_slo_attainment: Option<f64>,
    pub slo: Slo,
    /// Σ over pods of the time each was bound to a node, until the last request has
    /// completed (at most [`crate::DRAIN_LIMIT`] after the traffic ends).
    pub replica_seconds: f64,
    pub replica_hours: f64,
    pub cost: f64,
    pub cost_per_replica_hour: f64,
    pub mean_replicas: f64,
    pub peak_replicas: u32,
    /// What the oracle needs (see [`crate::oracle`]), and this policy's multiple of it.
    pub oracle_replica_seconds: f64,
    pub oracle_ratio: f64,
    pub scale_ups: u64,
    pub scale_downs: u64,
    /// Scale events reversing the previous one's direction within 5 minutes.
    pub flaps: u64,
    /// Most requests waiting at once (Service and replica queues).
    pub peak_queue: u64,
    /// Mean time a request waited in a queue before admission.
    pub mean_queue_wait: f64,
    /// Time the Deployment was set to `maxReplicas`.
    pub time_at_max_replicas: f64,
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// From 0 to the run's end: the traffic, then the drain until the last request
    /// completed (at most [`crate::DRAIN_LIMIT`]).
    pub simulated_seconds: f64,
}

/// Rounds to the millisecond (or 3 significant decimals) for output.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
