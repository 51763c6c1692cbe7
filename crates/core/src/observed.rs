//! What the controller observes at one sync: the pods its selector lists and what the
//! metrics APIs return. Field names follow the scenario format
//! (`shared/spec/scenario.md`), which follows the Kubernetes objects they stand for.
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::LabelSelector;
use crate::duration::GoDuration;
use crate::quantity::Quantity;

/// A pod as the HPA reads it (`v1.Pod`, flattened).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub name: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `Running`, `Pending`, `Failed`, `Succeeded` (or `Unknown`).
    #[serde(default = "running")]
    pub phase: String,
    /// The Ready condition's status; `None` = the pod has no Ready condition.
    #[serde(default)]
    pub ready: Option<bool>,
    #[serde(default)]
    pub start_time: Option<Timestamp>,
    /// The Ready condition's `lastTransitionTime`.
    #[serde(default)]
    pub ready_transition_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<Timestamp>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// Pod-level resources (`PodLevelResources` feature), if the pod declares them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

fn running() -> String {
    "Running".into()
}

impl Pod {
    pub fn is_running_and_ready(&self) -> bool {
        self.phase == "Running" && self.ready == Some(true)
    }
}

/// A container's name and resource requests.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Only for init containers: `Always` makes it a sidecar whose requests count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
}

/// `v1.ResourceRequirements` (requests only matter to the HPA).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<BTreeMap<String, Quantity>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<BTreeMap<String, Quantity>>,
}

/// One metrics source as returned: either data or the API call's error
/// (`{ "error": "message" }`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Fetched<T> {
    Error { error: String },
    Data(T),
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Fetched<T> {
    // Hand-written rather than `untagged`, so a malformed source reports the real
    // problem ("invalid quantity at ...") instead of "did not match any variant".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if let Some(serde_json::Value::String(e)) = v.get("error") {
            return Ok(Self::Error { error: e.clone() });
        }
        T::deserialize(v)
            .map(Self::Data)
            .map_err(serde::de::Error::custom)
    }
}

/// Everything the metrics APIs return at this sync. A source the HPA needs but that
/// is absent means the API returned nothing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Fetched<ResourceMetricsList>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Fetched<Vec<PodsMetricValues>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<Fetched<Vec<ObjectMetricValue>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<Fetched<Vec<ExternalMetricValues>>>,
}

/// The `metrics.k8s.io` `PodMetricsList`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMetricsList {
    #[serde(default)]
    pub pods: Vec<PodMetrics>,
}

/// `metrics.k8s.io` `PodMetrics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetrics {
    pub name: String,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    #[serde(default)]
    pub window: Option<GoDuration>,
    #[serde(default)]
    pub containers: Vec<ContainerMetrics>,
}

/// `metrics.k8s.io` `ContainerMetrics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerMetrics {
    pub name: String,
    #[serde(default)]
    pub usage: BTreeMap<String, Quantity>,
}

/// `custom.metrics.k8s.io` values of one metric for pods.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodsMetricValues {
    pub metric_name: String,
    #[serde(default)]
    pub items: Vec<PodMetricValue>,
    /// The API call for this metric failed (podscale extension: one metric's error
    /// while others of the same API succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One pod's value of a custom metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodMetricValue {
    pub pod_name: String,
    pub value: Quantity,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<i64>,
}

/// `custom.metrics.k8s.io` value of one metric describing one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMetricValue {
    #[serde(default)]
    pub described_object: DescribedObject,
    pub metric_name: String,
    #[serde(default)]
    pub value: Quantity,
    /// The API call for this metric failed (podscale extension, as for Pods metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
}

/// The object a custom metric describes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribedObject {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// `external.metrics.k8s.io` values of one metric name + selector.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricValues {
    pub metric_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default)]
    pub items: Vec<ExternalMetricValue>,
    /// The API call for this metric failed (podscale extension, as for Pods metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One external metric value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricValue {
    pub value: Quantity,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metric_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
}

/// The target's scale subresource and the pods its selector lists.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// `scale.spec.replicas`.
    pub spec_replicas: i32,
    /// `scale.status.replicas`.
    pub status_replicas: i32,
    /// `scale.status.selector`; `None` = list every pod given (no filtering).
    pub selector: Option<String>,
    pub pods: Vec<Pod>,
    pub metrics: ObservedMetrics,
}
