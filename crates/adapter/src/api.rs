//! The wire shapes of the metrics APIs and of the API machinery around them, as
//! `k8s.io/metrics` and `k8s.io/apimachinery` serialize them: `MetricValueList`
//! (`custom.metrics.k8s.io` `v1beta1` and `v1beta2`), `ExternalMetricValueList`
//! (`external.metrics.k8s.io/v1beta1`), discovery (`APIGroupList`, `APIGroup`,
//! `APIResourceList`) and `Status` errors. Field order and `omitempty` follow the Go
//! structs, so a client (the HPA controller, `kubectl get --raw`) reads what it reads
//! from prometheus-adapter.
use std::collections::BTreeMap;

use jiff::Timestamp;
use podscale_core::api::{LabelSelector, LabelSelectorRequirement};
use podscale_core::labels::{self, Operator, Selector};
use podscale_core::quantity::Quantity;
use serde::Serialize;

/// `custom.metrics.k8s.io`.
pub const CUSTOM_GROUP: &str = "custom.metrics.k8s.io";
/// `external.metrics.k8s.io`.
pub const EXTERNAL_GROUP: &str = "external.metrics.k8s.io";
/// The versions of `custom.metrics.k8s.io` served, preferred first (upstream's
/// custom-metrics-apiserver installs `v1beta2` as the preferred version).
pub const CUSTOM_VERSIONS: [&str; 2] = ["v1beta2", "v1beta1"];
/// The one version of `external.metrics.k8s.io`.
pub const EXTERNAL_VERSION: &str = "v1beta1";

/// `metav1.Time`: RFC 3339 in UTC, whole seconds.
pub fn format_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Empty `metav1.ListMeta` (`"metadata": {}`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListMeta {}

/// `custom_metrics.ObjectReference`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
}

/// One value, before it is put in a version's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub described_object: ObjectReference,
    pub metric: String,
    /// The `metricLabelSelector` of the request, echoed as upstream does.
    pub selector: Option<LabelSelector>,
    pub timestamp: Timestamp,
    pub value: Quantity,
}

/// `custom_metrics/v1beta1.MetricValue`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricValueV1beta1<'a> {
    described_object: &'a ObjectReference,
    metric_name: &'a str,
    timestamp: String,
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<&'a LabelSelector>,
}

/// `custom_metrics/v1beta2.MetricIdentifier`.
#[derive(Debug, Serialize)]
struct MetricIdentifier<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<&'a LabelSelector>,
}

/// `custom_metrics/v1beta2.MetricValue`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricValueV1beta2<'a> {
    described_object: &'a ObjectReference,
    metric: MetricIdentifier<'a>,
    timestamp: String,
    value: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct List<T> {
    kind: &'static str,
    api_version: String,
    metadata: ListMeta,
    items: Vec<T>,
}

/// A `MetricValueList` of `custom.metrics.k8s.io/{version}` (`v1beta1` or `v1beta2`).
pub fn metric_value_list(version: &str, values: &[Value]) -> serde_json::Value {
    let api_version = format!("{CUSTOM_GROUP}/{version}");
    let json = if version == "v1beta1" {
        serde_json::to_value(List {
            kind: "MetricValueList",
            api_version,
            metadata: ListMeta {},
            items: values
                .iter()
                .map(|v| MetricValueV1beta1 {
                    described_object: &v.described_object,
                    metric_name: &v.metric,
                    timestamp: format_time(v.timestamp),
                    value: v.value.to_string(),
                    selector: v.selector.as_ref(),
                })
                .collect(),
        })
    } else {
        serde_json::to_value(List {
            kind: "MetricValueList",
            api_version,
            metadata: ListMeta {},
            items: values
                .iter()
                .map(|v| MetricValueV1beta2 {
                    described_object: &v.described_object,
                    metric: MetricIdentifier {
                        name: &v.metric,
                        selector: v.selector.as_ref(),
                    },
                    timestamp: format_time(v.timestamp),
                    value: v.value.to_string(),
                })
                .collect(),
        })
    };
    json.expect("plain structs of strings serialize")
}

/// One external value, before it is put in the API's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalValue {
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub timestamp: Timestamp,
    pub value: Quantity,
}

/// `external_metrics/v1beta1.ExternalMetricValue`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalMetricValue<'a> {
    metric_name: &'a str,
    metric_labels: &'a BTreeMap<String, String>,
    timestamp: String,
    value: String,
}

/// An `ExternalMetricValueList` of `external.metrics.k8s.io/v1beta1`.
pub fn external_value_list(values: &[ExternalValue]) -> serde_json::Value {
    serde_json::to_value(List {
        kind: "ExternalMetricValueList",
        api_version: format!("{EXTERNAL_GROUP}/{EXTERNAL_VERSION}"),
        metadata: ListMeta {},
        items: values
            .iter()
            .map(|v| ExternalMetricValue {
                metric_name: &v.metric,
                metric_labels: &v.labels,
                timestamp: format_time(v.timestamp),
                value: v.value.to_string(),
            })
            .collect(),
    })
    .expect("plain structs of strings serialize")
}

/// `metav1.APIResource`, as custom-metrics-apiserver lists a metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiResource {
    pub name: String,
    pub singular_name: String,
    pub namespaced: bool,
    pub kind: String,
    pub verbs: Vec<String>,
}

/// `metav1.APIResourceList` of `group/version`.
pub fn resource_list(group_version: &str, resources: Vec<ApiResource>) -> serde_json::Value {
    serde_json::json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// `metav1.APIGroup` of `group` serving `versions`, the first preferred.
pub fn api_group(group: &str, versions: &[&str]) -> serde_json::Value {
    let gv = |v: &str| serde_json::json!({"groupVersion": format!("{group}/{v}"), "version": v});
    serde_json::json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions[0]),
    })
}

/// `metav1.APIGroupList` of both metrics groups.
pub fn api_group_list() -> serde_json::Value {
    let mut custom = api_group(CUSTOM_GROUP, &CUSTOM_VERSIONS);
    let mut external = api_group(EXTERNAL_GROUP, &[EXTERNAL_VERSION]);
    for g in [&mut custom, &mut external] {
        if let Some(o) = g.as_object_mut() {
            o.remove("kind");
            o.remove("apiVersion");
        }
    }
    serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [custom, external]})
}

/// `metav1.Status` reasons used here (`metav1.StatusReason`).
pub mod reasons {
    pub const NOT_FOUND: &str = "NotFound";
    pub const BAD_REQUEST: &str = "BadRequest";
    pub const UNAUTHORIZED: &str = "Unauthorized";
    pub const FORBIDDEN: &str = "Forbidden";
    pub const INTERNAL_ERROR: &str = "InternalError";
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
    pub const TOO_MANY_REQUESTS: &str = "TooManyRequests";
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    pub const TIMEOUT: &str = "Timeout";
}

/// A failed request: the HTTP status and the `metav1.Status` body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }

    /// custom-metrics-apiserver's `NewMetricNotFoundError`.
    pub fn metric_not_found(resource: &str, metric: &str) -> Self {
        Self::new(
            404,
            reasons::NOT_FOUND,
            format!("the server could not find the metric {metric} for {resource}"),
        )
    }

    /// custom-metrics-apiserver's `NewMetricNotFoundForError`.
    pub fn metric_not_found_for(resource: &str, metric: &str, name: &str) -> Self {
        Self::new(
            404,
            reasons::NOT_FOUND,
            format!("the server could not find the metric {metric} for {resource} {name}"),
        )
    }

    /// `apierrors.NewBadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, reasons::BAD_REQUEST, message)
    }

    /// `apierrors.NewInternalError`: the message says what failed (the source's
    /// error, already free of credentials).
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            reasons::INTERNAL_ERROR,
            format!("Internal error occurred: {message}"),
        )
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        })
    }
}

/// A selector in its string form (`labelSelector=...`) as a `metav1.LabelSelector`,
/// as `metav1.ParseToLabelSelector` builds it: `a=b` becomes `matchLabels`, the rest
/// `matchExpressions`.
///
/// # Errors
/// The selector does not parse, or uses `>`/`<`, which a `LabelSelector` cannot hold.
pub fn parse_label_selector(s: &str) -> Result<LabelSelector, String> {
    let parsed = labels::parse(s).map_err(|e| e.0)?;
    let Selector::Requirements(mut reqs) = parsed else {
        return Ok(LabelSelector::default());
    };
    // Go's `labels.Parse` sorts the requirements by key.
    reqs.sort_by(|a, b| a.key.cmp(&b.key));
    let mut out = LabelSelector::default();
    for r in reqs {
        let (operator, values) = match r.operator {
            Operator::Equals if r.values.len() == 1 => {
                out.match_labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert(r.key, r.values[0].clone());
                continue;
            }
            Operator::Equals | Operator::In => ("In", Some(r.values)),
            Operator::NotEquals | Operator::NotIn => ("NotIn", Some(r.values)),
            Operator::Exists => ("Exists", None),
            Operator::DoesNotExist => ("DoesNotExist", None),
            Operator::GreaterThan | Operator::LessThan => {
                return Err(format!(
                    "{s:?}: {:?} is not a valid label selector operator",
                    if r.operator == Operator::GreaterThan {
                        "gt"
                    } else {
                        "lt"
                    }
                ));
            }
        };
        out.match_expressions
            .get_or_insert_with(Vec::new)
            .push(LabelSelectorRequirement {
                key: r.key,
                operator: operator.into(),
                values,
            });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(q: &str) -> Value {
        Value {
            described_object: ObjectReference {
                kind: "Pod".into(),
                namespace: "ai-inference".into(),
                name: "inference-server-0".into(),
                api_version: "/v1".into(),
            },
            metric: "inference_queue_depth".into(),
            selector: None,
            timestamp: "2026-01-02T03:04:05.678Z".parse().expect("timestamp"),
            value: q.parse().expect("quantity"),
        }
    }

    #[test]
    fn v1beta1_items_carry_metric_name_and_v1beta2_items_a_metric_identifier() {
        let v1 = metric_value_list("v1beta1", &[value("120")]);
        assert_eq!(
            v1,
            serde_json::json!({
                "kind": "MetricValueList",
                "apiVersion": "custom.metrics.k8s.io/v1beta1",
                "metadata": {},
                "items": [{
                    "describedObject": {"kind": "Pod", "namespace": "ai-inference", "name": "inference-server-0", "apiVersion": "/v1"},
                    "metricName": "inference_queue_depth",
                    "timestamp": "2026-01-02T03:04:05Z",
                    "value": "120"
                }]
            })
        );
        let v2 = metric_value_list("v1beta2", &[value("1500m")]);
        assert_eq!(v2["apiVersion"], "custom.metrics.k8s.io/v1beta2");
        assert_eq!(
            v2["items"][0]["metric"],
            serde_json::json!({"name": "inference_queue_depth"})
        );
        assert_eq!(v2["items"][0]["value"], "1500m");
        assert!(v2["items"][0].get("metricName").is_none());
    }

    #[test]
    fn selectors_become_match_labels_and_expressions_as_parse_to_label_selector() {
        let s = parse_label_selector("app=web,tier in (a,b),!canary,env!=dev").expect("parses");
        assert_eq!(
            serde_json::to_value(&s).expect("json"),
            serde_json::json!({
                "matchLabels": {"app": "web"},
                "matchExpressions": [
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    {"key": "tier", "operator": "In", "values": ["a", "b"]},
                ]
            })
        );
        assert!(parse_label_selector("a>1").is_err());
        assert!(parse_label_selector("a in (").is_err());
    }

    #[test]
    fn errors_are_status_objects() {
        let e = ApiError::metric_not_found("pods", "nope");
        assert_eq!(
            e.status(),
            serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "the server could not find the metric nope for pods",
                "reason": "NotFound", "code": 404
            })
        );
    }
}
