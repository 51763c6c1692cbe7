//! One full decision (`horizontal.go` `reconcileAutoscaler`), as a pure function of
//! (autoscaler, observed state, history, now, controller settings).
//!
//! The caller applies the [`Decision`]: it updates the scale subresource when
//! [`Decision::rescale`] is set, writes `status` when [`Decision::status_changed`], and
//! records the events. The engine assumes the scale update succeeds; an actuator whose
//! update fails calls [`Decision::rescale_failed`] for the status and events upstream writes then.
use jiff::{SignedDuration, Timestamp};

use crate::api::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus, MetricStatus};
use crate::calculator::{ReplicaCalculator, pod_index};
use crate::conditions::{self, Event, reasons};
use crate::defaults;
use crate::history::{History, Recommendation, ScaleEvent};
use crate::labels;
use crate::metrics::{
    MetricContext, MetricEvaluation, MetricsOutcome, compute_replicas_for_metrics,
};
use crate::normalize::{self, NormalizeArgs, Normalized};
use crate::observed::{Observed, Pod};
use crate::settings::ControllerSettings;

/// Which branch of `reconcileAutoscaler` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Current replicas 0 and `minReplicas` ≠ 0: autoscaling is disabled.
    ScalingDisabled,
    /// Current replicas above `maxReplicas`: set to max, metrics not read.
    AboveMax,
    /// Current replicas below `minReplicas`: set to min, metrics not read.
    BelowMin,
    /// The metric stage failed: the scale is left alone.
    MetricsFailed,
    /// Metrics were evaluated and the proposal normalized.
    Normalized,
}

/// The outcome of one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub path: Path,
    /// The target's replica count after the decision.
    pub desired_replicas: i32,
    /// Whether the scale subresource must be updated.
    pub rescale: bool,
    /// The rescale reason text (`cpu resource utilization (percentage of request) above target`, …).
    pub reason: String,
    /// The metric stage's maximum proposal, if it ran and succeeded.
    pub recommendation: Option<i32>,
    pub normalized: Option<Normalized>,
    /// Per-metric results, when metrics were evaluated.
    pub metrics: Option<Vec<MetricEvaluation>>,
    /// The error this reconcile returns, as upstream's `reconcileAutoscaler` does:
    /// the metric stage's failure (with [`Path::MetricsFailed`]: nothing was scaled), or,
    /// when some metrics failed but the valid ones gave a count that was used,
    /// `invalid metrics (N invalid out of M), first error is: …` alongside a normal
    /// decision. Either way a controller requeues the autoscaler with backoff
    /// ([`Decision::retry_with_backoff`]).
    pub error: Option<String>,
    pub status: HorizontalPodAutoscalerStatus,
    pub status_changed: bool,
    pub events: Vec<Event>,
    pub history: History,
    /// The status as read at the start (to recompute `status_changed`).
    original_status: HorizontalPodAutoscalerStatus,
    /// The scale events before this decision: a failed rescale records none.
    scale_events_before: Vec<ScaleEvent>,
    current_replicas: i32,
}

impl Decision {
    /// Whether the controller should requeue this autoscaler with rate limiting, as
    /// kube-controller-manager does for any error `reconcileAutoscaler` returns
    /// (including the partial-metric error returned *after* a successful rescale).
    pub fn retry_with_backoff(&self) -> bool {
        self.error.is_some()
    }

    /// Some metrics failed, but the decision was made (and possibly scaled) on the
    /// valid ones.
    pub fn has_partial_metric_error(&self) -> bool {
        self.error.is_some() && self.path != Path::MetricsFailed
    }

    /// The scale update failed: upstream emits `FailedRescale`, sets
    /// `AbleToScale=False/FailedUpdateScale`, keeps the previous desired count and
    /// records no scale event.
    pub fn rescale_failed(&mut self, error: &str, now: Timestamp) {
        self.events
            .retain(|e| e.reason != reasons::SUCCESSFUL_RESCALE);
        self.events.push(Event::warning(
            reasons::FAILED_RESCALE,
            format!(
                "New size: {}; reason: {}; error: {error}",
                self.desired_replicas, self.reason
            ),
        ));
        let mut conds = self.status.conditions.take().unwrap_or_default();
        conditions::set(
            &mut conds,
            conditions::new(
                conditions::ABLE_TO_SCALE,
                false,
                reasons::FAILED_UPDATE_SCALE,
                format!("the HPA controller was unable to update the target scale: {error}"),
            ),
            now,
        );
        self.status = HorizontalPodAutoscalerStatus {
            current_replicas: self.current_replicas,
            desired_replicas: self.original_status.desired_replicas,
            last_scale_time: self.original_status.last_scale_time,
            // setCurrentReplicasAndMetricsInStatus: this sync's metric statuses are kept.
            current_metrics: self.status.current_metrics.take(),
            conditions: Some(conds),
            observed_generation: None,
        };
        // Scale events are only stored after a successful update.
        self.history.scale_events = std::mem::take(&mut self.scale_events_before);
        self.rescale = false;
        self.desired_replicas = self.current_replicas;
        self.status_changed = !status_semantic_eq(&self.original_status, &self.status);
    }
}

/// Compares statuses as `apiequality.Semantic.DeepEqual` does (quantities by value,
/// nil and empty lists alike).
pub fn status_semantic_eq(
    a: &HorizontalPodAutoscalerStatus,
    b: &HorizontalPodAutoscalerStatus,
) -> bool {
    fn list<T>(v: &Option<Vec<T>>) -> &[T] {
        v.as_deref().unwrap_or_default()
    }
    a.current_replicas == b.current_replicas
        && a.desired_replicas == b.desired_replicas
        && a.observed_generation == b.observed_generation
        && a.last_scale_time == b.last_scale_time
        && list(&a.current_metrics) == list(&b.current_metrics)
        && list(&a.conditions) == list(&b.conditions)
}

/// The pods the scale selector lists (all given pods when no selector is known).
/// A pod given without any labels counts as listed: a scenario's `pods` are "the pods
/// the selector lists", and one that leaves labels out should not silently lose them.
pub fn selected_pods<'a>(pods: &'a [Pod], selector: &labels::Selector) -> Vec<&'a Pod> {
    pods.iter()
        .filter(|p| p.labels.is_empty() || selector.matches(&p.labels))
        .collect()
}

/// The metric stage with its selector checks (`computeReplicasForMetrics`).
/// Returns the outcome plus the events it emitted.
pub fn metric_stage(
    hpa: &HorizontalPodAutoscaler,
    observed: &Observed,
    now: Timestamp,
    settings: &ControllerSettings,
) -> (MetricsOutcome, Vec<Event>) {
    let specs = defaults::metrics(hpa);
    let selector = match observed.selector.as_deref() {
        None => Ok(labels::Selector::everything()),
        Some("") => Err((
            reasons::SELECTOR_REQUIRED,
            "selector is required".to_string(),
            "the HPA target's scale is missing a selector".to_string(),
        )),
        Some(s) => labels::parse(s).map_err(|e| {
            let msg = format!(
                "couldn't convert selector into a corresponding internal selector object: {e}"
            );
            (reasons::INVALID_SELECTOR, msg.clone(), msg)
        }),
    };
    let selector = match selector {
        Ok(s) => s,
        Err((event_reason, event_msg, cond_msg)) => {
            let outcome = MetricsOutcome {
                evaluations: Vec::new(),
                result: Err(event_msg.clone()),
                partial_error: None,
                condition: conditions::new(
                    conditions::SCALING_ACTIVE,
                    false,
                    reasons::INVALID_SELECTOR,
                    cond_msg,
                ),
            };
            return (outcome, vec![Event::warning(event_reason, event_msg)]);
        }
    };
    let pods = selected_pods(&observed.pods, &selector);
    let index = pod_index(&pods);
    let ctx = MetricContext {
        calc: ReplicaCalculator {
            pods: &pods,
            index: &index,
            tolerances: defaults::tolerances(hpa, settings),
            now,
            cpu_initialization_period: SignedDuration::from_secs(
                settings.cpu_initialization_period_seconds,
            ),
            initial_readiness_delay: SignedDuration::from_secs(
                settings.initial_readiness_delay_seconds,
            ),
        },
        metrics: &observed.metrics,
        namespace: hpa.metadata.namespace.as_deref().unwrap_or("default"),
        spec_replicas: observed.spec_replicas,
        status_replicas: observed.status_replicas,
    };
    let outcome = compute_replicas_for_metrics(&ctx, &specs);
    let events = outcome
        .evaluations
        .iter()
        .filter_map(|e| Some(Event::warning(e.error_reason?, e.event_message.clone()?)))
        .collect();
    (outcome, events)
}

/// One reconcile of `hpa` against what was observed.
pub fn reconcile(
    hpa: &HorizontalPodAutoscaler,
    observed: &Observed,
    history: &History,
    now: Timestamp,
    settings: &ControllerSettings,
) -> Decision {
    let original_status = hpa.status.clone().unwrap_or_default();
    let mut conds = original_status.conditions.clone().unwrap_or_default();
    let scale_events_before = history.scale_events.clone();
    let mut history = history.clone();
    let mut events = Vec::new();
    let current = observed.spec_replicas;

    conditions::set(
        &mut conds,
        conditions::new(
            conditions::ABLE_TO_SCALE,
            true,
            reasons::SUCCEEDED_GET_SCALE,
            "the HPA controller was able to get the target's current scale",
        ),
        now,
    );
    // recordInitialRecommendation
    if history.recommendations.is_none() {
        history.recommendations = Some(vec![Recommendation {
            time: now,
            replicas: current,
        }]);
    }
    let min_replicas = defaults::min_replicas(hpa);
    let max_replicas = hpa.spec.max_replicas;

    let mut desired = 0;
    let mut reason = String::new();
    let mut recommendation = None;
    let mut normalized = None;
    let mut metric_evals = None;
    let mut metric_statuses: Option<Vec<MetricStatus>> = None;
    let mut partial_error = None;
    let path;
    let rescale;

    if current == 0 && min_replicas != 0 {
        path = Path::ScalingDisabled;
        rescale = false;
        conditions::set(
            &mut conds,
            conditions::new(
                conditions::SCALING_ACTIVE,
                false,
                reasons::SCALING_DISABLED,
                "scaling is disabled since the replica count of the target is zero",
            ),
            now,
        );
    } else if current > max_replicas {
        path = Path::AboveMax;
        reason = "Current number of replicas above Spec.MaxReplicas".into();
        desired = max_replicas;
        rescale = true;
    } else if current < min_replicas {
        path = Path::BelowMin;
        reason = "Current number of replicas below Spec.MinReplicas".into();
        desired = min_replicas;
        rescale = true;
    } else {
        let (outcome, metric_events) = metric_stage(hpa, observed, now, settings);
        events.extend(metric_events);
        conditions::set(&mut conds, outcome.condition.clone(), now);
        let statuses: Vec<MetricStatus> = outcome
            .evaluations
            .iter()
            .map(|e| e.status.clone())
            .collect();
        let failed_selector = outcome.evaluations.is_empty();
        metric_evals = Some(outcome.evaluations);
        match outcome.result {
            Err(e) => {
                // Metric failure: write current replicas and metrics, keep the old
                // desired count, do not touch the scale.
                events.push(Event::warning(
                    reasons::FAILED_COMPUTE_METRICS_REPLICAS,
                    e.clone(),
                ));
                let status = HorizontalPodAutoscalerStatus {
                    current_replicas: current,
                    desired_replicas: original_status.desired_replicas,
                    last_scale_time: original_status.last_scale_time,
                    current_metrics: if failed_selector {
                        None
                    } else {
                        Some(statuses)
                    },
                    conditions: Some(conds),
                    observed_generation: None,
                };
                let status_changed = !status_semantic_eq(&original_status, &status);
                return Decision {
                    path: Path::MetricsFailed,
                    desired_replicas: current,
                    rescale: false,
                    reason: String::new(),
                    recommendation: None,
                    normalized: None,
                    metrics: metric_evals,
                    error: Some(e),
                    status,
                    status_changed,
                    events,
                    history,
                    original_status,
                    scale_events_before,
                    current_replicas: current,
                };
            }
            Ok((proposal, metric_name)) => {
                // Scale on the valid metrics, but return the partial error at the end
                // (`retErr` in `reconcileAutoscaler`).
                partial_error = outcome.partial_error;
                metric_statuses = Some(statuses);
                recommendation = Some(proposal);
                let mut rescale_metric = String::new();
                if proposal > desired {
                    desired = proposal;
                    rescale_metric = metric_name;
                }
                if desired > current {
                    reason = format!("{rescale_metric} above target");
                }
                if desired < current {
                    reason = "All metrics below target".into();
                }
                let behavior = defaults::behavior(hpa, settings);
                let args = NormalizeArgs {
                    behavior: behavior.as_ref(),
                    settings,
                    min_replicas,
                    max_replicas,
                    current_replicas: current,
                    prenormalized: desired,
                    now,
                };
                let n = normalize::normalize(&args, &mut history);
                conditions::set(&mut conds, n.able_to_scale.clone(), now);
                conditions::set(&mut conds, n.scaling_limited.clone(), now);
                desired = n.desired;
                normalized = Some(n);
                rescale = desired != current;
                path = Path::Normalized;
            }
        }
    }

    let mut last_scale_time = original_status.last_scale_time;
    if rescale {
        conditions::set(
            &mut conds,
            conditions::new(
                conditions::ABLE_TO_SCALE,
                true,
                reasons::SUCCEEDED_RESCALE,
                format!("the HPA controller was able to update the target scale to {desired}"),
            ),
            now,
        );
        events.push(Event::normal(
            reasons::SUCCESSFUL_RESCALE,
            format!("New size: {desired}; reason: {reason}"),
        ));
        if let Some(b) = defaults::behavior(hpa, settings) {
            normalize::store_scale_event(&b, &mut history, current, desired, now);
        }
        last_scale_time = Some(now);
    } else {
        desired = current;
    }
    let status = HorizontalPodAutoscalerStatus {
        current_replicas: current,
        desired_replicas: desired,
        last_scale_time,
        current_metrics: metric_statuses,
        conditions: Some(conds),
        // setStatus rebuilds the status from five fields; observedGeneration is not one.
        observed_generation: None,
    };
    let status_changed = !status_semantic_eq(&original_status, &status);
    Decision {
        path,
        desired_replicas: desired,
        rescale,
        reason,
        recommendation,
        normalized,
        metrics: metric_evals,
        error: partial_error,
        status,
        status_changed,
        events,
        history,
        original_status,
        scale_events_before,
        current_replicas: current,
    }
}

/// The target's scale subresource could not be read (bad `apiVersion`, unknown kind,
/// GET failed): upstream emits `Warning FailedGetScale`, sets
/// `AbleToScale=False/FailedGetScale` and writes the status if it changed. Nothing else
/// happens in this sync. Returns (status, status changed, event).
pub fn failed_get_scale(
    hpa: &HorizontalPodAutoscaler,
    error: &str,
    now: Timestamp,
) -> (HorizontalPodAutoscalerStatus, bool, Event) {
    let original = hpa.status.clone().unwrap_or_default();
    let mut status = original.clone();
    let mut conds = status.conditions.take().unwrap_or_default();
    conditions::set(
        &mut conds,
        conditions::new(
            conditions::ABLE_TO_SCALE,
            false,
            reasons::FAILED_GET_SCALE,
            format!("the HPA controller was unable to get the target's current scale: {error}"),
        ),
        now,
    );
    status.conditions = Some(conds);
    let changed = !status_semantic_eq(&original, &status);
    (
        status,
        changed,
        Event::warning(reasons::FAILED_GET_SCALE, error),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Direction;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("valid timestamp")
    }

    #[test]
    fn failed_get_scale_sets_able_to_scale_false_and_warns() {
        let hpa = HorizontalPodAutoscaler::default();
        let (status, changed, event) = failed_get_scale(
            &hpa,
            "deployments.apps \"web\" not found",
            ts("2024-01-01T00:00:00Z"),
        );
        assert!(changed);
        let c = &status.conditions.expect("conditions")[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("AbleToScale", "False", "FailedGetScale")
        );
        assert_eq!(event.reason, "FailedGetScale");
    }

    #[test]
    fn a_failed_rescale_keeps_the_old_desired_count_and_records_no_scale_event() {
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
            "spec": {"maxReplicas": 10, "minReplicas": 1, "behavior": {},
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
            "status": {"currentReplicas": 2, "desiredReplicas": 2}
        }))
        .expect("hpa");
        let pod = |name: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "name": name, "phase": "Running", "ready": true,
                "startTime": "2024-01-01T00:00:00Z", "readyTransitionTime": "2024-01-01T00:00:00Z",
                "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]
            }))
            .expect("pod")
        };
        let observed = Observed {
            spec_replicas: 2,
            status_replicas: 2,
            selector: None,
            pods: vec![pod("a"), pod("b")],
            metrics: serde_json::from_value(serde_json::json!({"resource": {"pods": [
                {"name": "a", "timestamp": "2024-01-01T01:00:00Z", "window": "30s", "containers": [{"name": "c", "usage": {"cpu": "1"}}]},
                {"name": "b", "timestamp": "2024-01-01T01:00:00Z", "window": "30s", "containers": [{"name": "c", "usage": {"cpu": "1"}}]}
            ]}}))
            .expect("metrics"),
        };
        let now = ts("2024-01-01T01:00:00Z");
        let history = History::default();
        let mut d = reconcile(
            &hpa,
            &observed,
            &history,
            now,
            &ControllerSettings::default(),
        );
        assert!(d.rescale);
        assert_eq!(d.desired_replicas, 4);
        assert!(
            d.history
                .scale_events
                .iter()
                .any(|e| e.direction == Direction::Up)
        );
        d.rescale_failed("conflict", now);
        assert!(!d.rescale);
        assert_eq!(d.status.desired_replicas, 2);
        assert!(d.history.scale_events.is_empty());
        assert!(d.events.iter().any(|e| e.reason == "FailedRescale" && e.message == "New size: 4; reason: cpu resource utilization (percentage of request) above target; error: conflict"));
        assert!(!d.events.iter().any(|e| e.reason == "SuccessfulRescale"));
        let able = d
            .status
            .conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == "AbleToScale"))
            .expect("AbleToScale");
        assert_eq!(
            (able.status.as_str(), able.reason.as_str()),
            ("False", "FailedUpdateScale")
        );
    }
}
