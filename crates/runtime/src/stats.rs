//! Counters of the loop, cheap to bump from every task (atomics), read as a snapshot
//! for `/metrics` and benchmarks. Labels are bounded: outcomes and error kinds, never
//! autoscaler names (per-autoscaler values live in the controller's views).
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since start.
#[derive(Debug, Default)]
pub struct Stats {
    pub syncs: AtomicU64,
    pub decisions: AtomicU64,
    pub rescales: AtomicU64,
    pub rescale_failures: AtomicU64,
    pub conflicts_retried: AtomicU64,
    pub get_scale_failures: AtomicU64,
    pub list_pods_failures: AtomicU64,
    pub metric_failures: AtomicU64,
    pub partial_metric_failures: AtomicU64,
    pub status_writes: AtomicU64,
    pub status_write_failures: AtomicU64,
    pub events: AtomicU64,
    pub timeouts: AtomicU64,
    pub skipped_not_leader: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    pub syncs: u64,
    pub decisions: u64,
    pub rescales: u64,
    pub rescale_failures: u64,
    pub conflicts_retried: u64,
    pub get_scale_failures: u64,
    pub list_pods_failures: u64,
    pub metric_failures: u64,
    pub partial_metric_failures: u64,
    pub status_writes: u64,
    pub status_write_failures: u64,
    pub events: u64,
    pub timeouts: u64,
    pub skipped_not_leader: u64,
}

impl StatsSnapshot {
    /// Every counter as (metric name without the `podscale_` prefix, help, value): the
    /// one table both `/metrics` endpoints (the Kubernetes controller's admin server
    /// and the local runtime's status API) register, so one dashboard reads both.
    pub fn counters(&self) -> [(&'static str, &'static str, u64); 14] {
        [
            ("syncs", "Syncs of autoscalers (reconciles)", self.syncs),
            ("decisions", "Decisions the engine made", self.decisions),
            ("rescales", "Scale updates written", self.rescales),
            (
                "rescale_failures",
                "Scale updates that failed",
                self.rescale_failures,
            ),
            (
                "conflicts_retried",
                "Scale updates that hit a conflict and were retried on fresh reads",
                self.conflicts_retried,
            ),
            (
                "get_scale_failures",
                "Reads of a target's scale that failed",
                self.get_scale_failures,
            ),
            (
                "list_pods_failures",
                "Pod listings that failed",
                self.list_pods_failures,
            ),
            (
                "metric_failures",
                "Syncs where every metric failed",
                self.metric_failures,
            ),
            (
                "partial_metric_failures",
                "Syncs where some metrics failed",
                self.partial_metric_failures,
            ),
            ("status_writes", "Status writes", self.status_writes),
            (
                "status_write_failures",
                "Status writes that failed",
                self.status_write_failures,
            ),
            ("events", "Events recorded", self.events),
            ("timeouts", "Calls that timed out", self.timeouts),
            (
                "skipped_not_leader",
                "Syncs or writes skipped while not the leader",
                self.skipped_not_leader,
            ),
        ]
    }
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            syncs: r(&self.syncs),
            decisions: r(&self.decisions),
            rescales: r(&self.rescales),
            rescale_failures: r(&self.rescale_failures),
            conflicts_retried: r(&self.conflicts_retried),
            get_scale_failures: r(&self.get_scale_failures),
            list_pods_failures: r(&self.list_pods_failures),
            metric_failures: r(&self.metric_failures),
            partial_metric_failures: r(&self.partial_metric_failures),
            status_writes: r(&self.status_writes),
            status_write_failures: r(&self.status_write_failures),
            events: r(&self.events),
            timeouts: r(&self.timeouts),
            skipped_not_leader: r(&self.skipped_not_leader),
        }
    }
}
