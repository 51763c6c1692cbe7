//! The `autoscaling/v2` HorizontalPodAutoscaler API types, as a user writes them.
//!
//! These mirror `k8s.io/api/autoscaling/v2` field for field (camelCase JSON), with two
//! deliberate differences from a strict schema:
//! - a metric's `type` (and a target's `type`) is a free string, so an object the API
//!   server would reject (`type: CheddarCheese`) still loads and yields the controller's
//!   `InvalidMetricSourceType` instead of a parse failure;
//! - every optional field stays optional (`Option`), so API defaulting
//!   ([`crate::defaults`]) can tell "absent" from "set to the default", which matters for
//!   `behavior` (absent selects the legacy path) and `policies: []` (replaces the defaults).
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

/// `autoscaling/v2` `HorizontalPodAutoscaler`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscaler {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: HorizontalPodAutoscalerSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HorizontalPodAutoscalerStatus>,
}

/// The subset of `ObjectMeta` the autoscaler reads.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `HorizontalPodAutoscalerSpec`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerSpec {
    #[serde(default)]
    pub scale_target_ref: CrossVersionObjectReference,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default)]
    pub max_replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<MetricSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

/// `CrossVersionObjectReference`: the scale target, or an Object metric's object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossVersionObjectReference {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

/// The metric source kinds the controller knows (`MetricSourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricSourceType {
    Object,
    Pods,
    Resource,
    ContainerResource,
    External,
}

impl MetricSourceType {
    /// Parses the API string; `None` for a type the controller does not know.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Object" => Self::Object,
            "Pods" => Self::Pods,
            "Resource" => Self::Resource,
            "ContainerResource" => Self::ContainerResource,
            "External" => Self::External,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Object => "Object",
            Self::Pods => "Pods",
            Self::Resource => "Resource",
            Self::ContainerResource => "ContainerResource",
            Self::External => "External",
        }
    }
}

/// `MetricSpec`. `type` is kept as written (see the module docs).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSpec {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectMetricSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsMetricSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<ContainerResourceMetricSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalMetricSource>,
}

impl MetricSpec {
    /// The source type, or `None` when the controller would report `InvalidMetricSourceType`.
    pub fn source_type(&self) -> Option<MetricSourceType> {
        MetricSourceType::parse(&self.type_)
    }

    /// The default metric of an HPA with no metrics: CPU at 80 % of requests
    /// (`SetDefaults_HorizontalPodAutoscaler`).
    pub fn default_cpu() -> Self {
        Self {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(80),
                    ..MetricTarget::default()
                },
            }),
            ..Self::default()
        }
    }
}

/// `ObjectMetricSource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMetricSource {
    #[serde(default)]
    pub described_object: CrossVersionObjectReference,
    #[serde(default)]
    pub target: MetricTarget,
    #[serde(default)]
    pub metric: MetricIdentifier,
}

/// `PodsMetricSource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsMetricSource {
    #[serde(default)]
    pub metric: MetricIdentifier,
    #[serde(default)]
    pub target: MetricTarget,
}

/// `ResourceMetricSource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricSource {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub target: MetricTarget,
}

/// `ContainerResourceMetricSource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResourceMetricSource {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub target: MetricTarget,
    #[serde(default)]
    pub container: String,
}

/// `ExternalMetricSource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricSource {
    #[serde(default)]
    pub metric: MetricIdentifier,
    #[serde(default)]
    pub target: MetricTarget,
}

/// `MetricIdentifier`: a metric name plus an optional label selector.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricIdentifier {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// `MetricTarget`. `type` is one of `Utilization`, `Value`, `AverageValue`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTarget {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
}

/// The target types (`MetricTargetType`).
pub mod target_type {
    pub const UTILIZATION: &str = "Utilization";
    pub const VALUE: &str = "Value";
    pub const AVERAGE_VALUE: &str = "AverageValue";
}

/// `metav1.LabelSelector`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// `metav1.LabelSelectorRequirement`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
}

/// `HorizontalPodAutoscalerBehavior`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerBehavior {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<HpaScalingRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<HpaScalingRules>,
}

/// `HPAScalingRules`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaScalingRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<HpaScalingPolicy>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Quantity>,
}

/// `HPAScalingPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HpaScalingPolicy {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default)]
    pub value: i32,
    #[serde(default)]
    pub period_seconds: i32,
}

/// Scaling policy kinds (`HPAScalingPolicyType`).
pub mod policy_type {
    pub const PODS: &str = "Pods";
    pub const PERCENT: &str = "Percent";
}

/// `selectPolicy` values (`ScalingPolicySelect`).
pub mod select_policy {
    pub const MAX: &str = "Max";
    pub const MIN: &str = "Min";
    pub const DISABLED: &str = "Disabled";
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

fn null_when_empty<S: serde::Serializer>(
    v: &Option<Vec<MetricStatus>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(list) if !list.is_empty() => s.collect_seq(list),
        _ => s.serialize_none(),
    }
}

/// `HorizontalPodAutoscalerStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Timestamp>,
    /// `json:"currentReplicas,omitempty"` upstream: absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub current_replicas: i32,
    #[serde(default)]
    pub desired_replicas: i32,
    /// `json:"currentMetrics"` upstream (no `omitempty`): always present, `null` when
    /// empty.
    #[serde(default, serialize_with = "null_when_empty")]
    pub current_metrics: Option<Vec<MetricStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<HorizontalPodAutoscalerCondition>>,
}

/// `HorizontalPodAutoscalerCondition`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HorizontalPodAutoscalerCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

/// `MetricStatus`: one entry of `status.currentMetrics`. A metric that failed leaves
/// the zero value (`type: ""`), as the controller does.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    #[serde(rename = "type", default)]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectMetricStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsMetricStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<ContainerResourceMetricStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalMetricStatus>,
}

impl MetricStatus {
    /// The `current` value of whichever source is set.
    pub fn current(&self) -> Option<&MetricValueStatus> {
        if let Some(s) = &self.object {
            return Some(&s.current);
        }
        if let Some(s) = &self.pods {
            return Some(&s.current);
        }
        if let Some(s) = &self.resource {
            return Some(&s.current);
        }
        if let Some(s) = &self.container_resource {
            return Some(&s.current);
        }
        self.external.as_ref().map(|s| &s.current)
    }
}

/// `MetricValueStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<i32>,
}

/// `ObjectMetricStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMetricStatus {
    #[serde(default)]
    pub metric: MetricIdentifier,
    #[serde(default)]
    pub current: MetricValueStatus,
    #[serde(default)]
    pub described_object: CrossVersionObjectReference,
}

/// `PodsMetricStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsMetricStatus {
    #[serde(default)]
    pub metric: MetricIdentifier,
    #[serde(default)]
    pub current: MetricValueStatus,
}

/// `ResourceMetricStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub current: MetricValueStatus,
}

/// `ContainerResourceMetricStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerResourceMetricStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub current: MetricValueStatus,
    #[serde(default)]
    pub container: String,
}

/// `ExternalMetricStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricStatus {
    #[serde(default)]
    pub metric: MetricIdentifier,
    #[serde(default)]
    pub current: MetricValueStatus,
}
