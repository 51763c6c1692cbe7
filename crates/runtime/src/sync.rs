//! One sync of one autoscaler — `reconcileAutoscaler`'s I/O around the pure engine:
//! read the scale, list the pods, read the metrics, decide, update the scale, commit,
//! write the status if it changed, record the events. Every call has a timeout; a
//! conflict on the scale update re-runs the sync on fresh reads.
use std::time::Duration;

use podscale_core::Autoscaler;
use podscale_core::history::{History, ScaleEvent};
use podscale_core::observed::{Observed, Pod};
use tokio::sync::watch;

use crate::clock::{Clock, timeout};
use crate::recorder::{Recommendation, Recorder};
use crate::source::{MetricSource, all_failed};
use crate::stats::{Stats, bump};
use crate::target::{Key, ScaleTarget, TargetError};

/// Timing and retry settings of the loop.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopConfig {
    /// Time between syncs of one autoscaler (kube-controller-manager's
    /// `--horizontal-pod-autoscaler-sync-period`, 15 s).
    pub sync_period: Duration,
    /// Each wait is stretched by a random fraction up to this (client-go's
    /// `wait.Jitter`), so thousands of autoscalers do not sync in lockstep.
    pub jitter: f64,
    /// Timeout of each call to the target and the recorder.
    pub call_timeout: Duration,
    /// Timeout of one metrics read (all the autoscaler's metrics).
    pub metrics_timeout: Duration,
    /// How often a scale update that hit a conflict is retried on fresh reads.
    pub conflict_retries: u32,
    /// First delay after a failure; doubles with each consecutive failure.
    pub backoff_base: Duration,
    /// Longest delay after API failures (429, 5xx, timeouts). Metric failures retry no
    /// later than the sync period.
    pub backoff_max: Duration,
    /// The history (recommendations, scale events) is written with every status change
    /// and whenever its values change; when only its timestamps move (a steady
    /// recommendation), at most this often. After a restart, a stabilization window can
    /// therefore end at most this much early.
    pub history_flush_interval: Duration,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            sync_period: Duration::from_secs(15),
            jitter: 0.1,
            call_timeout: Duration::from_secs(10),
            metrics_timeout: Duration::from_secs(10),
            conflict_retries: 3,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            history_flush_interval: Duration::from_secs(60),
        }
    }
}

/// When to sync this autoscaler next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// All went well (or retrying sooner would not help): after the sync period.
    Period,
    /// A metric failed (the decision may still have scaled on the others): back off,
    /// but no later than the sync period — upstream requeues with rate limiting.
    MetricBackoff,
    /// The API failed (429, 5xx, timeout): exponential backoff up to `backoff_max`.
    ApiBackoff,
    /// Not the leader: nothing was read or written.
    NotLeader,
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncReport {
    /// `spec.replicas` of the target when read.
    pub current_replicas: Option<i32>,
    /// The replica count after the decision (the target's, if the update failed).
    pub desired_replicas: Option<i32>,
    pub rescaled: bool,
    /// The error this sync returns (metric failure, partial metric failure, API error).
    pub error: Option<String>,
    pub retry: Retry,
}

/// What a sync needs, borrowed from the controller.
#[derive(Debug)]
pub struct Parts<'a, T, M, R, C> {
    pub target: &'a T,
    pub metrics: &'a M,
    pub recorder: &'a R,
    pub clock: &'a C,
    pub config: &'a LoopConfig,
    pub stats: &'a Stats,
    /// `true` while this instance may write (holds the lease, or has no election).
    pub may_write: &'a watch::Receiver<bool>,
}

/// What the loop remembers of an autoscaler between syncs besides the engine's state:
/// the history last written, to decide whether to write again, and (for a target that
/// does not write, see [`ScaleTarget::writes`]) the replicas last seen on the target.
#[derive(Debug, Clone, Default)]
pub struct Persisted {
    /// The distinct recommended values and the scale events last written.
    values: Option<(Vec<i32>, Vec<ScaleEvent>)>,
    at: Option<jiff::Timestamp>,
    /// The target's `spec.replicas` at the last sync that read it (shadow mode only).
    seen_replicas: Option<i32>,
}

/// The distinct recommended values, sorted: what a window's min or max can be. A
/// steady recommendation changes only timestamps, which the flush interval covers.
fn distinct_values(history: &History) -> Vec<i32> {
    let mut v: Vec<i32> = history
        .recommendations
        .iter()
        .flatten()
        .map(|r| r.replicas)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Persisted {
    fn needs_write(&self, history: &History, now: jiff::Timestamp, every: Duration) -> bool {
        let Some((values, events)) = &self.values else {
            return true;
        };
        if *values != distinct_values(history) || *events != history.scale_events {
            return true;
        }
        self.at.is_none_or(|at| {
            now.duration_since(at)
                .try_into()
                .is_ok_and(|d: Duration| d >= every)
        })
    }

    fn written(&mut self, history: &History, now: jiff::Timestamp) {
        let recs = distinct_values(history);
        let events = history.scale_events.clone();
        self.values = Some((recs, events));
        self.at = Some(now);
    }
}

impl<T: ScaleTarget, M: MetricSource, R: Recorder, C: Clock> Parts<'_, T, M, R, C> {
    fn leader(&self) -> bool {
        *self.may_write.borrow()
    }

    async fn call<F: std::future::Future<Output = Result<X, TargetError>>, X>(
        &self,
        what: &str,
        f: F,
    ) -> Result<X, TargetError> {
        match timeout(self.clock, self.config.call_timeout, f).await {
            Ok(r) => r,
            Err(e) => {
                bump(&self.stats.timeouts);
                Err(TargetError::Transient(format!("{what}: {e}")))
            }
        }
    }

    /// One sync of `autoscaler`.
    #[tracing::instrument(level = "debug", skip_all, fields(autoscaler = %key))]
    pub async fn sync(
        &self,
        key: &Key,
        autoscaler: &mut Autoscaler,
        persisted: &mut Persisted,
    ) -> SyncReport {
        if !self.leader() {
            bump(&self.stats.skipped_not_leader);
            return SyncReport {
                current_replicas: None,
                desired_replicas: None,
                rescaled: false,
                error: None,
                retry: Retry::NotLeader,
            };
        }
        bump(&self.stats.syncs);
        let mut attempt = 0;
        loop {
            let last_try = attempt >= self.config.conflict_retries;
            match self.attempt(key, autoscaler, persisted, last_try).await {
                Attempt::Done(report) => return report,
                Attempt::Conflict(e) => {
                    attempt += 1;
                    bump(&self.stats.conflicts_retried);
                    tracing::debug!(autoscaler = %key, attempt, error = %e, "Scale update conflicted; syncing again on fresh reads.");
                }
            }
        }
    }

    async fn attempt(
        &self,
        key: &Key,
        autoscaler: &mut Autoscaler,
        persisted: &mut Persisted,
        last_try: bool,
    ) -> Attempt {
        let hpa = autoscaler.hpa().clone();
        // 1. The scale subresource.
        let scale = match self.call("get scale", self.target.get_scale(&hpa)).await {
            Ok(s) => s,
            Err(e) => {
                bump(&self.stats.get_scale_failures);
                let now = self.clock.now();
                let f = autoscaler.failed_get_scale(&e.to_string(), now);
                tracing::warn!(autoscaler = %key, error = %e, "Cannot read the target's scale.");
                self.record_event(key, autoscaler, &f.event).await;
                let mut retry = retry_for(&e);
                if f.status_changed
                    && !self
                        .write_status(key, autoscaler, persisted, now, true)
                        .await
                {
                    retry = Retry::ApiBackoff;
                }
                return Attempt::Done(SyncReport {
                    current_replicas: None,
                    desired_replicas: None,
                    rescaled: false,
                    error: Some(e.to_string()),
                    retry,
                });
            }
        };
        if !self.target.writes() {
            record_observed_change(autoscaler, persisted, scale.spec_replicas, self.clock.now());
        }
        // 2. The pods the selector lists; 3. the metrics.
        let selector = scale.selector.as_deref();
        let pods: Result<Vec<Pod>, TargetError> = match selector {
            // The engine reports a missing selector itself (SelectorRequired).
            Some("") => Ok(Vec::new()),
            _ => {
                self.call("list pods", self.target.list_pods(&hpa, selector))
                    .await
            }
        };
        let (pods, metrics) = match pods {
            Ok(pods) => {
                let now = self.clock.now();
                let metrics = match timeout(
                    self.clock,
                    self.config.metrics_timeout,
                    self.metrics.read(&hpa, &pods, now),
                )
                .await
                {
                    Ok(m) => m,
                    Err(e) => {
                        bump(&self.stats.timeouts);
                        all_failed(&format!("reading metrics {e}"))
                    }
                };
                (pods, metrics)
            }
            Err(e) => {
                bump(&self.stats.list_pods_failures);
                // Upstream's replica calculator fails every metric when the pod lister
                // fails; the engine then keeps the replicas with ScalingActive=False.
                let msg = format!("unable to get pods while calculating replica count: {e}");
                (Vec::new(), all_failed(&msg))
            }
        };
        let observed = Observed {
            spec_replicas: scale.spec_replicas,
            status_replicas: scale.status_replicas,
            selector: scale.selector.clone(),
            pods,
            metrics,
        };
        // 4. Decide.
        let now = self.clock.now();
        let mut decision = autoscaler.decide(&observed, now);
        bump(&self.stats.decisions);
        let mut retry = Retry::Period;
        if decision.error.is_some() {
            if decision.has_partial_metric_error() {
                bump(&self.stats.partial_metric_failures);
            } else {
                bump(&self.stats.metric_failures);
            }
            retry = Retry::MetricBackoff;
        }
        // 5. Act.
        let mut rescale_error = None;
        if decision.rescale {
            if !self.leader() {
                bump(&self.stats.skipped_not_leader);
                return Attempt::Done(not_leader());
            }
            match self
                .call(
                    "update scale",
                    self.target.set_replicas(&hpa, decision.desired_replicas),
                )
                .await
            {
                Ok(()) if !self.target.writes() => {
                    tracing::debug!(autoscaler = %key, from = scale.spec_replicas, to = decision.desired_replicas, reason = %decision.reason, "Would rescale (not writing).");
                    // Nothing was scaled: a scale event here would spend the policy
                    // budget of the next syncs for a change that never happened. The
                    // status and recommendations are still this decision's.
                    decision
                        .history
                        .scale_events
                        .clone_from(&autoscaler.history().scale_events);
                    autoscaler.commit(&decision);
                }
                Ok(()) => {
                    bump(&self.stats.rescales);
                    tracing::info!(autoscaler = %key, from = scale.spec_replicas, to = decision.desired_replicas, reason = %decision.reason, "Rescaled.");
                    autoscaler.commit(&decision);
                }
                // Someone else changed the target: decide again on fresh reads (the
                // engine is pure, nothing was committed), unless retries are used up.
                Err(TargetError::Conflict(e)) if !last_try => return Attempt::Conflict(e),
                Err(e) => {
                    bump(&self.stats.rescale_failures);
                    tracing::warn!(autoscaler = %key, error = %e, "Cannot update the target's scale.");
                    autoscaler.commit_failed_rescale(
                        &mut decision,
                        &e.to_string(),
                        self.clock.now(),
                    );
                    retry = retry_for(&e);
                    rescale_error = Some(e.to_string());
                }
            }
        } else {
            autoscaler.commit(&decision);
        }
        // 6. Status and events.
        if !self
            .write_status(key, autoscaler, persisted, now, decision.status_changed)
            .await
        {
            retry = Retry::ApiBackoff;
        }
        for e in &decision.events {
            self.record_event(key, autoscaler, e).await;
        }
        if self.leader() {
            let recommendation = Recommendation {
                desired_replicas: decision.desired_replicas,
                current_replicas: scale.spec_replicas,
                reason: recommendation_reason(&decision),
                time: now,
            };
            // Best effort, as events: a slow recorder must not hold the loop.
            let _ = timeout(
                self.clock,
                self.config.call_timeout,
                self.recorder
                    .recommendation(key, autoscaler.hpa(), &recommendation),
            )
            .await;
        }
        Attempt::Done(SyncReport {
            current_replicas: Some(scale.spec_replicas),
            desired_replicas: Some(decision.desired_replicas),
            rescaled: decision.rescale,
            error: rescale_error.or(decision.error),
            retry,
        })
    }

    /// Writes status and history when needed; `false` if a write failed.
    async fn write_status(
        &self,
        key: &Key,
        autoscaler: &Autoscaler,
        persisted: &mut Persisted,
        now: jiff::Timestamp,
        status_changed: bool,
    ) -> bool {
        let history_due = persisted.needs_write(
            autoscaler.history(),
            now,
            self.config.history_flush_interval,
        );
        if !status_changed && !history_due {
            return true;
        }
        if !self.leader() {
            bump(&self.stats.skipped_not_leader);
            return true;
        }
        let Some(status) = autoscaler.status() else {
            return true;
        };
        let write = self
            .recorder
            .write_status(key, autoscaler.hpa(), status, autoscaler.history());
        let result = match timeout(self.clock, self.config.call_timeout, write).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(e) => {
                bump(&self.stats.timeouts);
                Err(format!("write status: {e}"))
            }
        };
        match result {
            Ok(()) => {
                bump(&self.stats.status_writes);
                persisted.written(autoscaler.history(), now);
                true
            }
            Err(e) => {
                bump(&self.stats.status_write_failures);
                tracing::warn!(autoscaler = %key, error = %e, "Cannot write the autoscaler's status.");
                // updateStatus: `Warning FailedUpdateStatus` with the error.
                let event = podscale_core::conditions::Event::warning(
                    podscale_core::conditions::reasons::FAILED_UPDATE_STATUS,
                    e,
                );
                self.record_event(key, autoscaler, &event).await;
                false
            }
        }
    }

    async fn record_event(
        &self,
        key: &Key,
        autoscaler: &Autoscaler,
        event: &podscale_core::conditions::Event,
    ) {
        if !self.leader() {
            return;
        }
        bump(&self.stats.events);
        // Events are best effort: a slow recorder must not hold the loop.
        let _ = timeout(
            self.clock,
            self.config.call_timeout,
            self.recorder.event(key, autoscaler.hpa(), event),
        )
        .await;
    }
}

/// Why a decision wants what it wants, in a few words: upstream's rescale reason (the
/// one its `SuccessfulRescale` event gives) when it rescales; otherwise the reason of
/// the condition that explains keeping the replicas, in the order `kubectl describe`
/// readers look for it: metrics that failed (`ScalingActive=False`), a stabilization
/// window (`AbleToScale`), then the limits (`ScalingLimited`: `TooManyReplicas`, …, or
/// `DesiredWithinRange`).
fn recommendation_reason(decision: &podscale_core::Decision) -> String {
    use podscale_core::conditions::{ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED, reasons};
    if decision.rescale && !decision.reason.is_empty() {
        return decision.reason.clone();
    }
    let conds = decision.status.conditions.as_deref().unwrap_or_default();
    let find = |t: &str| conds.iter().find(|c| c.type_ == t);
    if let Some(c) = find(SCALING_ACTIVE).filter(|c| c.status == "False") {
        return c.reason.clone();
    }
    if let Some(c) = find(ABLE_TO_SCALE).filter(|c| {
        c.reason != reasons::READY_FOR_NEW_SCALE && c.reason != reasons::SUCCEEDED_RESCALE
    }) {
        return c.reason.clone();
    }
    if let Some(c) = find(SCALING_LIMITED) {
        return c.reason.clone();
    }
    decision.reason.clone()
}

/// For a target the loop does not write (shadow mode): a change of the target's
/// replicas since the last sync was made by whoever really scales it (the built-in HPA,
/// a user). It becomes a scale event as upstream's `storeScaleEvent` records its own
/// rescales (only when the autoscaler has a behavior, outdated events overwritten), so
/// the scale-up and scale-down policies see the real changes. It is stamped at the sync
/// that saw it: up to one sync period later than it happened, so the policy budget it
/// spends lasts up to that much longer than the real controller's.
fn record_observed_change(
    autoscaler: &mut Autoscaler,
    persisted: &mut Persisted,
    replicas: i32,
    now: jiff::Timestamp,
) {
    let Some(previous) = persisted.seen_replicas.replace(replicas) else {
        return;
    };
    if previous == replicas {
        return;
    }
    let Some(behavior) = podscale_core::defaults::behavior(autoscaler.hpa(), autoscaler.settings())
    else {
        return;
    };
    let mut history = autoscaler.history().clone();
    podscale_core::normalize::store_scale_event(&behavior, &mut history, previous, replicas, now);
    *autoscaler = Autoscaler::with_history(
        autoscaler.hpa().clone(),
        history,
        autoscaler.settings().clone(),
    );
}

enum Attempt {
    Done(SyncReport),
    Conflict(String),
}

fn not_leader() -> SyncReport {
    SyncReport {
        current_replicas: None,
        desired_replicas: None,
        rescaled: false,
        error: None,
        retry: Retry::NotLeader,
    }
}

fn retry_for(e: &TargetError) -> Retry {
    match e {
        TargetError::Permanent(_) => Retry::Period,
        TargetError::Conflict(_) | TargetError::Transient(_) => Retry::ApiBackoff,
    }
}
