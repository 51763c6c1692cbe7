//! The CRD of [`crate::crd::Autoscaler`], with its OpenAPI v3 schema written out: the
//! `autoscaling/v2` HPA spec as the API server's own OpenAPI describes it (field names,
//! types, `int32`, quantities as int-or-string), so `kubectl explain autoscaler.spec`
//! and server-side validation treat it like an HPA. Metric and target `type`s stay free
//! strings, as in [`podscale_core::api`]: an unknown type reaches the controller, which
//! reports `InvalidMetricSourceType` like kube-controller-manager.
use serde_json::{Map, Value, json};

use crate::crd::{GROUP, KIND, PLURAL, SHORT_NAME, VERSION};

fn obj(desc: &str, props: &[(&str, Value)], required: &[&str]) -> Value {
    let mut properties = Map::new();
    for (k, v) in props {
        properties.insert((*k).to_owned(), v.clone());
    }
    let mut o = Map::new();
    if !desc.is_empty() {
        o.insert("description".into(), desc.into());
    }
    o.insert("type".into(), "object".into());
    o.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        o.insert("required".into(), json!(required));
    }
    Value::Object(o)
}

fn string(desc: &str) -> Value {
    json!({ "description": desc, "type": "string" })
}

fn int32(desc: &str) -> Value {
    json!({ "description": desc, "type": "integer", "format": "int32" })
}

fn quantity(desc: &str) -> Value {
    json!({
        "description": desc,
        "anyOf": [{ "type": "integer" }, { "type": "string" }],
        "x-kubernetes-int-or-string": true,
    })
}

fn array(desc: &str, items: Value) -> Value {
    json!({ "description": desc, "type": "array", "items": items, "x-kubernetes-list-type": "atomic" })
}

fn object_ref(desc: &str) -> Value {
    obj(
        desc,
        &[
            (
                "apiVersion",
                string("apiVersion is the API version of the referent"),
            ),
            ("kind", string("kind is the kind of the referent")),
            ("name", string("name is the name of the referent")),
        ],
        &["kind", "name"],
    )
}

fn label_selector(desc: &str) -> Value {
    obj(
        desc,
        &[
            (
                "matchExpressions",
                array(
                    "matchExpressions is a list of label selector requirements. The requirements are ANDed.",
                    obj(
                        "",
                        &[
                            (
                                "key",
                                string("key is the label key that the selector applies to."),
                            ),
                            (
                                "operator",
                                string(
                                    "operator represents a key's relationship to a set of values: In, NotIn, Exists and DoesNotExist.",
                                ),
                            ),
                            (
                                "values",
                                array(
                                    "values is an array of string values.",
                                    json!({ "type": "string" }),
                                ),
                            ),
                        ],
                        &["key", "operator"],
                    ),
                ),
            ),
            (
                "matchLabels",
                json!({
                    "description": "matchLabels is a map of {key,value} pairs.",
                    "type": "object",
                    "additionalProperties": { "type": "string" },
                }),
            ),
        ],
        &[],
    )
}

fn metric_identifier() -> Value {
    obj(
        "metric identifies the target metric by name and selector",
        &[
            ("name", string("name is the name of the given metric")),
            (
                "selector",
                label_selector(
                    "selector is the string-encoded form of a standard kubernetes label selector for the given metric; when unset, just the metricName is used to gather metrics.",
                ),
            ),
        ],
        &["name"],
    )
}

fn metric_target() -> Value {
    obj(
        "target specifies the target value for the given metric",
        &[
            (
                "averageUtilization",
                int32(
                    "averageUtilization is the target value of the average of the resource metric across all relevant pods, as a percentage of the requested value of the resource for the pods. Only valid for Resource metric source type",
                ),
            ),
            (
                "averageValue",
                quantity(
                    "averageValue is the target value of the average of the metric across all relevant pods (as a quantity)",
                ),
            ),
            (
                "type",
                string(
                    "type represents whether the metric type is Utilization, Value, or AverageValue",
                ),
            ),
            (
                "value",
                quantity("value is the target value of the metric (as a quantity)."),
            ),
        ],
        &["type"],
    )
}

fn metric_spec() -> Value {
    obj(
        "MetricSpec specifies how to scale based on a single metric (only `type` and one other matching field should be set at once).",
        &[
            (
                "containerResource",
                obj(
                    "containerResource refers to a resource metric (such as those specified in requests and limits) known to Kubernetes describing a single container in each pod of the current scale target.",
                    &[
                        (
                            "container",
                            string(
                                "container is the name of the container in the pods of the scaling target",
                            ),
                        ),
                        (
                            "name",
                            string("name is the name of the resource in question."),
                        ),
                        ("target", metric_target()),
                    ],
                    &["container", "name", "target"],
                ),
            ),
            (
                "external",
                obj(
                    "external refers to a global metric that is not associated with any Kubernetes object.",
                    &[("metric", metric_identifier()), ("target", metric_target())],
                    &["metric", "target"],
                ),
            ),
            (
                "object",
                obj(
                    "object refers to a metric describing a single kubernetes object (for example, hits-per-second on an Ingress object).",
                    &[
                        (
                            "describedObject",
                            object_ref(
                                "describedObject specifies the descriptions of a object,such as kind,name apiVersion",
                            ),
                        ),
                        ("metric", metric_identifier()),
                        ("target", metric_target()),
                    ],
                    &["describedObject", "metric", "target"],
                ),
            ),
            (
                "pods",
                obj(
                    "pods refers to a metric describing each pod in the current scale target (for example, transactions-processed-per-second).",
                    &[("metric", metric_identifier()), ("target", metric_target())],
                    &["metric", "target"],
                ),
            ),
            (
                "resource",
                obj(
                    "resource refers to a resource metric (such as those specified in requests and limits) known to Kubernetes describing each pod in the current scale target.",
                    &[
                        (
                            "name",
                            string("name is the name of the resource in question."),
                        ),
                        ("target", metric_target()),
                    ],
                    &["name", "target"],
                ),
            ),
            (
                "type",
                string(
                    "type is the type of metric source. It should be one of \"ContainerResource\", \"External\", \"Object\", \"Pods\" or \"Resource\", each mapping to a matching field in the object.",
                ),
            ),
        ],
        &["type"],
    )
}

fn scaling_rules(desc: &str) -> Value {
    obj(
        desc,
        &[
            (
                "policies",
                array(
                    "policies is a list of potential scaling polices which can be used during scaling.",
                    obj(
                        "HPAScalingPolicy is a single policy which must hold true for a specified past interval.",
                        &[
                            (
                                "periodSeconds",
                                int32(
                                    "periodSeconds specifies the window of time for which the policy should hold true.",
                                ),
                            ),
                            (
                                "type",
                                string("type is used to specify the scaling policy."),
                            ),
                            (
                                "value",
                                int32(
                                    "value contains the amount of change which is permitted by the policy.",
                                ),
                            ),
                        ],
                        &["periodSeconds", "type", "value"],
                    ),
                ),
            ),
            (
                "selectPolicy",
                string(
                    "selectPolicy is used to specify which policy should be used. If not set, the default value Max is used.",
                ),
            ),
            (
                "stabilizationWindowSeconds",
                int32(
                    "stabilizationWindowSeconds is the number of seconds for which past recommendations should be considered while scaling up or scaling down.",
                ),
            ),
            (
                "tolerance",
                quantity(
                    "tolerance is the tolerance on the ratio between the current and desired metric value under which no updates are made to the desired number of replicas (e.g. 0.01 for 1%).",
                ),
            ),
        ],
        &[],
    )
}

fn spec() -> Value {
    obj(
        "The autoscaling/v2 HorizontalPodAutoscalerSpec, verbatim, plus podscale's own settings.",
        &[
            (
                "behavior",
                obj(
                    "behavior configures the scaling behavior of the target in both Up and Down directions (scaleUp and scaleDown fields respectively).",
                    &[
                        (
                            "scaleDown",
                            scaling_rules("scaleDown is scaling policy for scaling Down."),
                        ),
                        (
                            "scaleUp",
                            scaling_rules("scaleUp is scaling policy for scaling Up."),
                        ),
                    ],
                    &[],
                ),
            ),
            (
                "maxReplicas",
                int32(
                    "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up.",
                ),
            ),
            (
                "metrics",
                array(
                    "metrics contains the specifications for which to use to calculate the desired replica count. If not set, the default metric will be set to 80% average CPU utilization.",
                    metric_spec(),
                ),
            ),
            (
                "minReplicas",
                int32(
                    "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down. It defaults to 1 pod.",
                ),
            ),
            (
                "podscale",
                obj(
                    "podscale's own settings, which kube-controller-manager only has as process flags.",
                    &[
                        (
                            "metricFailurePolicy",
                            json!({
                                "description": "What a metric that cannot be read does. Hold (upstream's behaviour): ScalingActive=False and the replica count is kept.",
                                "type": "string",
                                "enum": ["Hold"],
                            }),
                        ),
                        (
                            "syncPeriod",
                            string(
                                "Time between syncs of this autoscaler (e.g. 30s, 1m). Default: the controller's (15s).",
                            ),
                        ),
                        (
                            "tolerance",
                            quantity(
                                "The default tolerance of this autoscaler (default 0.1); behavior.scaleUp/scaleDown.tolerance take precedence.",
                            ),
                        ),
                    ],
                    &[],
                ),
            ),
            (
                "scaleTargetRef",
                object_ref(
                    "scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.",
                ),
            ),
        ],
        &["maxReplicas", "scaleTargetRef"],
    )
}

fn status() -> Value {
    let mut s = obj(
        "The autoscaling/v2 HorizontalPodAutoscalerStatus, the columns kubectl prints, and the controller's history (recommendations and scale events), so stabilization windows survive a restart.",
        &[
            (
                "currentReplicas",
                int32(
                    "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
                ),
            ),
            (
                "desiredReplicas",
                int32(
                    "desiredReplicas is the desired number of replicas of pods managed by this autoscaler, as last calculated by the autoscaler.",
                ),
            ),
            (
                "observedGeneration",
                json!({ "description": "observedGeneration is the most recent generation observed by this autoscaler.", "type": "integer", "format": "int64" }),
            ),
            (
                "lastScaleTime",
                json!({ "description": "lastScaleTime is the last time the HorizontalPodAutoscaler scaled the number of pods.", "type": "string", "format": "date-time" }),
            ),
            ("reference", string("Kind/name of the scale target.")),
            (
                "targets",
                string("Current and target value of each metric, as kubectl get hpa prints them."),
            ),
        ],
        &[],
    );
    // Conditions, current metrics and the history are written by the controller only;
    // keep their structure open rather than repeat it here.
    if let Value::Object(o) = &mut s {
        o.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }
    s
}

fn column(name: &str, type_: &str, path: &str, desc: &str) -> Value {
    json!({ "name": name, "type": type_, "jsonPath": path, "description": desc })
}

/// The `CustomResourceDefinition` of `autoscalers.podscale.dev`.
pub fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{PLURAL}.{GROUP}") },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": KIND,
                "listKind": format!("{KIND}List"),
                "plural": PLURAL,
                "singular": "autoscaler",
                "shortNames": [SHORT_NAME],
                "categories": ["all", "podscale"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": { "status": {} },
                "additionalPrinterColumns": [
                    column("Reference", "string", ".status.reference", "The scale target"),
                    column("Targets", "string", ".status.targets", "Current and target value of each metric"),
                    column("MinPods", "integer", ".spec.minReplicas", "Lower limit of replicas"),
                    column("MaxPods", "integer", ".spec.maxReplicas", "Upper limit of replicas"),
                    column("Replicas", "integer", ".status.currentReplicas", "Current replicas"),
                    column("Age", "date", ".metadata.creationTimestamp", ""),
                ],
                "schema": {
                    "openAPIV3Schema": obj(
                        "Autoscaler scales a workload exactly as an autoscaling/v2 HorizontalPodAutoscaler would, with podscale's metric sources and its history kept in the status.",
                        &[
                            ("apiVersion", string("APIVersion defines the versioned schema of this representation of an object.")),
                            ("kind", string("Kind is a string value representing the REST resource this object represents.")),
                            ("metadata", json!({ "type": "object" })),
                            ("spec", spec()),
                            ("status", status()),
                        ],
                        &["spec"],
                    ),
                },
            }],
        },
    })
}

/// The CRD as YAML, what `podscale crd` prints and `deploy/crd.yaml` holds.
///
/// # Errors
/// Only if the YAML writer fails, which a JSON value never makes it do.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::from("# Generated by `podscale crd`: do not edit.\n");
    out.push_str(&serde_saphyr::to_string(&crd())?);
    Ok(out)
}
