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
                    Ok((r, _)) => (Some(*r), None),
                    Err(e) => (None, Some(e.clone())),
                };
                Ok(Evaluation {
                    output: ExplainOutput {
                        id: self.id.clone(),
                        stage: self.stage,
                        desired_replicas: None,
                        recommendation,
                        stabilized_recommendation: None,
                        metrics: Some(metric_outputs(&outcome.evaluations)),
                        error,
                        status: None,
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
                Ok(Evaluation {
                    output: ExplainOutput {
                        id: self.id.clone(),
                        stage: self.stage,
                        desired_replicas: desired,
                        recommendation: Some(input.recommendation),
                        stabilized_recommendation: Some(stabilized),
                        metrics: None,
                        error: None,
                        status: Some(status),
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
