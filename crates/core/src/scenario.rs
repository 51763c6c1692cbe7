//! Scenarios: one decision captured as data (`shared/spec/scenario.md`), evaluated at
//! one of four stages, and the `podscale explain -o json` output they produce.
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus, MetricValueStatus};
use crate::conditions::{self, Event};
use crate::defaults;
use crate::history::History;
use crate::metrics::MetricEvaluation;
use crate::normalize::{self, NormalizeArgs, Normalized};
use crate::observed::{Observed, ObservedMetrics, Pod};
use crate::reconcile::{self, Decision};
use crate::settings::ControllerSettings;

/// Which part of the decision a scenario evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    #[default]
    Reconcile,
    ReplicaCalculation,
    Normalization,
    Stabilization,
}

/// `input` of the normalization and stabilization stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageInput {
    /// The raw (pre-normalization) desired count.
    pub recommendation: i32,
}

/// One scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub stage: Stage,
    #[serde(default)]
    pub controller: ControllerSettings,
    pub now: Timestamp,
    pub hpa: HorizontalPodAutoscaler,
    pub current_replicas: i32,
    #[serde(default)]
    pub status_replicas: Option<i32>,
    #[serde(default)]
    pub selector: Option<String>,
    #[serde(default)]
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub metrics: ObservedMetrics,
    #[serde(default)]
    pub history: Option<History>,
    #[serde(default)]
    pub input: Option<StageInput>,
}

/// Why a scenario cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("stage {stage:?} needs `input.recommendation`")]
    MissingInput { stage: Stage },
}

/// One metric in the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricOutput {
    #[serde(rename = "type")]
    pub type_: String,
    pub name: Option<String>,
    pub proposal: Option<i32>,
    pub current: Option<MetricValueStatus>,
    pub error: Option<String>,
}

/// `podscale explain -o json` for one scenario (fields a stage does not compute are null).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainOutput {
    pub id: Option<String>,
    pub stage: Stage,
    pub desired_replicas: Option<i32>,
    pub recommendation: Option<i32>,
    pub stabilized_recommendation: Option<i32>,
    pub metrics: Option<Vec<MetricOutput>>,
    pub error: Option<String>,
    pub status: Option<HorizontalPodAutoscalerStatus>,
    pub status_changed: Option<bool>,
    pub events: Vec<Event>,
    pub history: History,
}

/// A scenario's evaluation, with the working kept for a human explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub output: ExplainOutput,
    /// The full decision (reconcile stage).
    pub decision: Option<Decision>,
    /// Per-metric working (reconcile and replicaCalculation stages).
    pub metrics: Option<Vec<MetricEvaluation>>,
    /// Normalization working (reconcile, normalization).
    pub normalized: Option<Normalized>,
}

impl Scenario {
    /// The observed state this scenario describes.
    pub fn observed(&self) -> Observed {
        Observed {
            spec_replicas: self.current_replicas,
            status_replicas: self.status_replicas.unwrap_or(self.current_replicas),
            selector: self.selector.clone(),
            pods: self.pods.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Evaluates the scenario at its stage.
    pub fn evaluate(&self) -> Result<Evaluation, ScenarioError> {
        let history = self.history.clone().unwrap_or_default();
        match self.stage {
            Stage::Reconcile => {
                let d = reconcile::reconcile(
                    &self.hpa,
                    &self.observed(),
                    &history,
                    self.now,
                    &self.controller,
                );
                Ok(Evaluation {
                    output: ExplainOutput {
                        id: self.id.clone(),
                        stage: self.stage,
                        desired_replicas: Some(d.desired_replicas),
                        recommendation: d.recommendation,
                        stabilized_recommendation: d.normalized.as_ref().map(|n| n.stabilized),
                        metrics: d.metrics.as_deref().map(metric_outputs),
                        error: d.error.clone(),
                        status: Some(d.status.clone()),
                        status_changed: Some(d.status_changed),
                        events: d.events.clone(),
                        history: d.history.clone(),
                    },
                    metrics: d.metrics.clone(),
                    normalized: d.normalized.clone(),
                    decision: Some(d),
                })
            }
            Stage::ReplicaCalculation => {
                let (outcome, events) = reconcile::metric_stage(
                    &self.hpa,
                    &self.observed(),
                    self.now,
                    &self.controller,
                );
                let (recommendation, error) = match &outcome.result {
                    Ok((r, _)) => (Some(*r), outcome.partial_error.clone()),
                    Err(e) => (None, Some(e.clone())),
                };
                // The input status with the condition `computeReplicasForMetrics` sets on
                // the HPA (`ScalingActive`); it does not write the metric statuses.
                let mut status = self.hpa.status.clone().unwrap_or_default();
                let mut conds = status.conditions.take().unwrap_or_default();
                conditions::set(&mut conds, outcome.condition.clone(), self.now);
                status.conditions = Some(conds);
                Ok(Evaluation {
                    output: ExplainOutput {
                        id: self.id.clone(),
                        stage: self.stage,
                        desired_replicas: None,
                        recommendation,
                        stabilized_recommendation: None,
                        metrics: Some(metric_outputs(&outcome.evaluations)),
                        error,
                        status: Some(status),
                        status_changed: None,
                        events,
                        history,
                    },
                    decision: None,
                    metrics: Some(outcome.evaluations),
                    normalized: None,
                })
            }
            Stage::Normalization | Stage::Stabilization => {
                let input = self
                    .input
                    .ok_or(ScenarioError::MissingInput { stage: self.stage })?;
                let behavior = defaults::behavior(&self.hpa, &self.controller);
                let args = NormalizeArgs {
                    behavior: behavior.as_ref(),
                    settings: &self.controller,
                    min_replicas: defaults::min_replicas(&self.hpa),
                    max_replicas: self.hpa.spec.max_replicas,
                    current_replicas: self.current_replicas,
                    prenormalized: input.recommendation,
                    now: self.now,
                };
                let mut history = history;
                let mut status = self.hpa.status.clone().unwrap_or_default();
                let mut conds = status.conditions.take().unwrap_or_default();
                let (desired, stabilized, normalized) = if self.stage == Stage::Normalization {
                    let n = normalize::normalize(&args, &mut history);
                    conditions::set(&mut conds, n.able_to_scale.clone(), self.now);
                    conditions::set(&mut conds, n.scaling_limited.clone(), self.now);
                    (Some(n.desired), n.stabilized, Some(n))
                } else {
                    let recs = history.recommendations.get_or_insert_with(Vec::new);
                    let (s, cond) = normalize::stabilize(&args, recs);
                    conditions::set(&mut conds, cond, self.now);
                    (None, s, None)
                };
                status.conditions = Some(conds);
                // The recommendation is these stages' input, not their output; the
                // stabilization step alone sets no status (its condition is returned to
                // normalization, which sets it), so both are null (`scenario.md`, Output).
                let status = (self.stage == Stage::Normalization).then_some(status);
                Ok(Evaluation {
                    output: ExplainOutput {
                        id: self.id.clone(),
                        stage: self.stage,
                        desired_replicas: desired,
                        recommendation: None,
                        stabilized_recommendation: Some(stabilized),
                        metrics: None,
                        error: None,
                        status,
                        status_changed: None,
                        events: Vec::new(),
                        history,
                    },
                    decision: None,
                    metrics: None,
                    normalized,
                })
            }
        }
    }
}

fn metric_outputs(evals: &[MetricEvaluation]) -> Vec<MetricOutput> {
    evals
        .iter()
        .map(|e| MetricOutput {
            type_: e.type_.clone(),
            name: e.name.clone(),
            proposal: e.proposal,
            current: e.status.current().cloned(),
            error: e.error.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(stage: &str, extra: serde_json::Value) -> Scenario {
        let mut v = serde_json::json!({
            "stage": stage,
            "now": "2024-06-01T12:00:00Z",
            "hpa": {
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "maxReplicas": 10,
                    "metrics": [
                        {"type": "Pods", "pods": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                        {"type": "External", "external": {"metric": {"name": "gpu"}, "target": {"type": "Value", "value": "70"}}}
                    ]
                },
                "status": {"currentReplicas": 0, "desiredReplicas": 2}
            },
            "currentReplicas": 2,
            "pods": [
                {"name": "a", "phase": "Running", "ready": true, "startTime": "2024-06-01T11:00:00Z", "readyTransitionTime": "2024-06-01T11:00:00Z"},
                {"name": "b", "phase": "Running", "ready": true, "startTime": "2024-06-01T11:00:00Z", "readyTransitionTime": "2024-06-01T11:00:00Z"}
            ],
            "metrics": {
                "pods": [{"metricName": "queue", "items": [
                    {"podName": "a", "value": "30", "timestamp": "2024-06-01T12:00:00Z"},
                    {"podName": "b", "value": "30", "timestamp": "2024-06-01T12:00:00Z"}
                ]}],
                "external": [{"metricName": "gpu", "items": [], "error": "exporter down"}]
            },
            "input": {"recommendation": 5}
        });
        if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        serde_json::from_value(v).expect("scenario")
    }

    fn output(s: &Scenario) -> serde_json::Value {
        serde_json::to_value(s.evaluate().expect("evaluates").output).expect("serializes")
    }

    #[test]
    fn stabilization_outputs_neither_recommendation_nor_status() {
        let out = output(&scenario("stabilization", serde_json::json!({})));
        assert_eq!(out["recommendation"], serde_json::Value::Null);
        assert_eq!(out["status"], serde_json::Value::Null);
        assert_eq!(out["stabilizedRecommendation"], 5);
    }

    #[test]
    fn normalization_outputs_the_input_status_with_its_conditions_but_no_recommendation() {
        let out = output(&scenario("normalization", serde_json::json!({})));
        assert_eq!(out["recommendation"], serde_json::Value::Null);
        let types: Vec<&str> = out["status"]["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .filter_map(|c| c["type"].as_str())
            .collect();
        assert_eq!(types, ["AbleToScale", "ScalingLimited"]);
        assert_eq!(out["status"]["desiredReplicas"], 2);
    }

    #[test]
    fn replica_calculation_outputs_the_input_status_with_scaling_active_and_the_partial_error() {
        let out = output(&scenario("replicaCalculation", serde_json::json!({})));
        assert_eq!(out["recommendation"], 6);
        let conds = out["status"]["conditions"].as_array().expect("conditions");
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0]["type"], "ScalingActive");
        assert_eq!(conds[0]["reason"], "ValidMetricFound");
        // Only the conditions: the metric stage does not write currentMetrics.
        assert_eq!(out["status"]["currentMetrics"], serde_json::Value::Null);
        assert_eq!(out["status"]["desiredReplicas"], 2);
        let err = out["error"].as_str().expect("partial error");
        assert!(
            err.starts_with("invalid metrics (1 invalid out of 2), first error is: "),
            "{err}"
        );
    }

    #[test]
    fn status_serializes_as_the_api_does() {
        let out = output(&scenario("normalization", serde_json::json!({})));
        let status = out["status"].as_object().expect("status");
        // currentReplicas is omitempty (0 here), currentMetrics always present.
        assert!(!status.contains_key("currentReplicas"), "{status:?}");
        assert!(status.contains_key("currentMetrics"));
        assert_eq!(status["currentMetrics"], serde_json::Value::Null);
        let out = output(&scenario("reconcile", serde_json::json!({})));
        assert_eq!(out["status"]["currentReplicas"], 2);
    }

    #[test]
    fn a_partial_metric_failure_scales_and_asks_for_a_retry() {
        let s = scenario("reconcile", serde_json::json!({}));
        let e = s.evaluate().expect("evaluates");
        let text = crate::explain::render(&s, &e);
        assert!(
            text.contains("Some metrics failed, but the valid ones propose no scale-down"),
            "{text}"
        );
        let d = e.decision.expect("decision");
        assert!(d.rescale);
        assert_eq!(d.desired_replicas, 4);
        assert!(d.retry_with_backoff());
        assert!(d.has_partial_metric_error());
    }

    #[test]
    fn a_complete_metric_failure_is_not_a_partial_one() {
        let s = scenario(
            "reconcile",
            serde_json::json!({"metrics": {"external": [{"metricName": "gpu", "items": [], "error": "down"}]}}),
        );
        let d = s.evaluate().expect("evaluates").decision.expect("decision");
        assert!(!d.rescale);
        assert!(d.retry_with_backoff());
        assert!(!d.has_partial_metric_error());
    }
}
