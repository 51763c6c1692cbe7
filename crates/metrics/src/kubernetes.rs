//! The Kubernetes metrics APIs through kube, so an existing Metrics Server or
//! Prometheus Adapter keeps working: `metrics.k8s.io` PodMetrics (per container),
//! `custom.metrics.k8s.io` (pods and object metrics, `v1beta2`) and
//! `external.metrics.k8s.io` (`v1beta1`) — the same calls, with the same selectors,
//! that kube-controller-manager's `metrics/client.go` makes. Also the scale
//! subresource and the pod list, so a reading captures the target's real pods.
//!
//! Every call is wrapped in a timeout; an API error keeps the API server's message.
use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use podscale_core::api::{CrossVersionObjectReference, LabelSelector};
use podscale_core::duration::GoDuration;
use podscale_core::observed::{
    Container, ContainerMetrics, ExternalMetricValue, Pod, PodMetricValue, PodMetrics,
    ResourceMetricsList, ResourceRequirements,
};
use podscale_core::quantity::Quantity;
use serde::Deserialize;
use serde_json::Value;

use crate::SourceError;

/// A client for the metrics APIs of one cluster.
#[derive(Clone)]
pub struct KubeMetrics {
    client: kube::Client,
    /// Bounds each API call: a hung aggregated API server (a common failure of
    /// metrics adapters) must not hang the reading.
    timeout: Duration,
}

impl std::fmt::Debug for KubeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeMetrics")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What the scale subresource says about the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    pub spec_replicas: i32,
    pub status_replicas: i32,
    pub selector: Option<String>,
}

impl KubeMetrics {
    /// Wraps a client (tests build one over a fake API server).
    pub fn new(client: kube::Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    /// A client from a kubeconfig file (`None`: `$KUBECONFIG`, `~/.kube/config`, or the
    /// in-cluster service account) and context.
    ///
    /// # Errors
    /// No usable configuration.
    pub async fn connect(
        kubeconfig: Option<&std::path::Path>,
        context: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, SourceError> {
        crate::http::install_crypto_provider();
        let options = kube::config::KubeConfigOptions {
            context: context.map(str::to_owned),
            ..Default::default()
        };
        let config = match kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    SourceError::Config(format!("kubeconfig {}: {e}", path.display()))
                })?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| {
                        SourceError::Config(format!("kubeconfig {}: {e}", path.display()))
                    })?
            }
            None if context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| SourceError::Config(format!("kubeconfig: {e}")))?,
            None => kube::Config::infer()
                .await
                .map_err(|e| SourceError::Config(format!("no Kubernetes configuration: {e}")))?,
        };
        let client = kube::Client::try_from(config)
            .map_err(|e| SourceError::Config(format!("cannot build the Kubernetes client: {e}")))?;
        Ok(Self::new(client, timeout))
    }

    async fn get(&self, path: &str) -> Result<Value, SourceError> {
        let what = format!("GET {path}");
        let request = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| SourceError::Config(format!("{what}: {e}")))?;
        match tokio::time::timeout(self.timeout, self.client.request::<Value>(request)).await {
            Err(_) => Err(SourceError::Timeout {
                what,
                timeout: self.timeout,
            }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(kube::Error::Api(status))) => Err(SourceError::Http {
                what,
                status: status.code,
                message: if status.message.is_empty() {
                    status.reason.clone()
                } else {
                    status.message.clone()
                },
            }),
            Ok(Err(e)) => Err(SourceError::Connect {
                what,
                message: crate::http::error_chain(&e),
            }),
        }
    }

    /// `metrics.k8s.io/v1beta1` PodMetrics of the pods matching `selector`.
    ///
    /// # Errors
    /// The API failed or answered something else than a PodMetricsList.
    pub async fn pod_metrics(
        &self,
        namespace: &str,
        selector: Option<&str>,
    ) -> Result<ResourceMetricsList, SourceError> {
        let path = format!(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{}/pods{}",
            segment(namespace),
            query(&[("labelSelector", selector)])
        );
        let list: PodMetricsList = decode(&path, self.get(&path).await?)?;
        Ok(ResourceMetricsList {
            pods: list
                .items
                .into_iter()
                .map(|p| PodMetrics {
                    name: p.metadata.name,
                    timestamp: p.timestamp,
                    window: p.window,
                    containers: p
                        .containers
                        .into_iter()
                        .map(|c| ContainerMetrics {
                            name: c.name,
                            usage: c.usage,
                        })
                        .collect(),
                })
                .collect(),
        })
    }

    /// `custom.metrics.k8s.io/v1beta2` values of `metric` for the pods matching
    /// `selector` (`GetRawMetric`).
    ///
    /// # Errors
    /// The API failed or answered something else than a MetricValueList.
    pub async fn pods_metric(
        &self,
        namespace: &str,
        metric: &str,
        selector: Option<&str>,
        metric_selector: Option<&LabelSelector>,
    ) -> Result<Vec<PodMetricValue>, SourceError> {
        let metric_selector = metric_selector.map(selector_string);
        let path = format!(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{}/pods/*/{}{}",
            segment(namespace),
            segment(metric),
            query(&[
                ("labelSelector", selector),
                ("metricLabelSelector", metric_selector.as_deref()),
            ])
        );
        let list: MetricValueList = decode(&path, self.get(&path).await?)?;
        Ok(list
            .items
            .into_iter()
            .map(|i| PodMetricValue {
                pod_name: i.described_object.name,
                value: i.value,
                timestamp: i.timestamp,
                window_seconds: i.window_seconds,
            })
            .collect())
    }

    /// `custom.metrics.k8s.io/v1beta2` value of `metric` describing one object
    /// (`GetObjectMetric`): the value and its timestamp.
    ///
    /// # Errors
    /// The API failed, or answered no value.
    pub async fn object_metric(
        &self,
        namespace: &str,
        object: &CrossVersionObjectReference,
        metric: &str,
        metric_selector: Option<&LabelSelector>,
    ) -> Result<(Quantity, Option<Timestamp>), SourceError> {
        let metric_selector = metric_selector.map(selector_string);
        let q = query(&[("metricLabelSelector", metric_selector.as_deref())]);
        // A Namespace's metrics live at /namespaces/{name}/metrics/{metric}.
        let path = if object.kind == "Namespace" {
            format!(
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{}/metrics/{}{q}",
                segment(&object.name),
                segment(metric)
            )
        } else {
            format!(
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{}/{}/{}/{}{q}",
                segment(namespace),
                group_resource(object),
                segment(&object.name),
                segment(metric)
            )
        };
        let value = self.get(&path).await?;
        // The API answers a MetricValueList (a single MetricValue from old adapters).
        let item = if value.get("items").is_some() {
            let list: MetricValueList = decode(&path, value)?;
            list.items.into_iter().next()
        } else {
            Some(decode::<MetricValue>(&path, value)?)
        };
        let item = item.ok_or_else(|| SourceError::Decode {
            what: format!("GET {path}"),
            message: "no value returned".into(),
        })?;
        Ok((item.value, item.timestamp))
    }

    /// `external.metrics.k8s.io/v1beta1` values of `metric` matching `selector`
    /// (`GetExternalMetric`).
    ///
    /// # Errors
    /// The API failed or answered something else than an ExternalMetricValueList.
    pub async fn external_metric(
        &self,
        namespace: &str,
        metric: &str,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<ExternalMetricValue>, SourceError> {
        let selector = selector.map(selector_string);
        let path = format!(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/{}/{}{}",
            segment(namespace),
            segment(metric),
            query(&[("labelSelector", selector.as_deref())])
        );
        let list: ExternalMetricValueList = decode(&path, self.get(&path).await?)?;
        Ok(list
            .items
            .into_iter()
            .map(|i| ExternalMetricValue {
                value: i.value,
                metric_labels: i.metric_labels,
                timestamp: i.timestamp,
            })
            .collect())
    }

    /// The scale subresource of the HPA's target.
    ///
    /// # Errors
    /// The API failed.
    pub async fn scale(
        &self,
        namespace: &str,
        target: &CrossVersionObjectReference,
    ) -> Result<Scale, SourceError> {
        let (group, version) = match target
            .api_version
            .as_deref()
            .unwrap_or("apps/v1")
            .split_once('/')
        {
            Some((g, v)) => (Some(g.to_owned()), v.to_owned()),
            None => (
                None,
                target.api_version.clone().unwrap_or_else(|| "v1".into()),
            ),
        };
        let prefix = match &group {
            Some(g) => format!("/apis/{g}/{version}"),
            None => format!("/api/{version}"),
        };
        let path = format!(
            "{prefix}/namespaces/{}/{}/{}/scale",
            segment(namespace),
            plural(&target.kind),
            segment(&target.name)
        );
        let v = self.get(&path).await?;
        let int = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(0)
        };
        Ok(Scale {
            spec_replicas: int("/spec/replicas"),
            status_replicas: int("/status/replicas"),
            selector: v
                .pointer("/status/selector")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// The pods matching `selector`, as the HPA reads them, with their IPs.
    ///
    /// # Errors
    /// The API failed.
    pub async fn pods(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<(Pod, Option<String>)>, SourceError> {
        let path = format!(
            "/api/v1/namespaces/{}/pods{}",
            segment(namespace),
            query(&[("labelSelector", Some(selector))])
        );
        let v = self.get(&path).await?;
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(items.iter().map(pod_from_json).collect())
    }
}

/// A `v1.Pod` as the HPA reads it (phase, readiness, times, requests) and its IP.
fn pod_from_json(v: &Value) -> (Pod, Option<String>) {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let time = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    let ready = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| {
            c.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        });
    let containers = |p: &str| -> Vec<Container> {
        v.pointer(p)
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| Container {
                        name: c
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        resources: c.get("resources").and_then(|r| {
                            serde_json::from_value::<ResourceRequirements>(r.clone()).ok()
                        }),
                        restart_policy: c
                            .get("restartPolicy")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let pod = Pod {
        name: s("/metadata/name").unwrap_or_default(),
        labels: v
            .pointer("/metadata/labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default(),
        phase: s("/status/phase").unwrap_or_else(|| "Unknown".into()),
        ready: ready.map(|c| c.get("status").and_then(Value::as_str) == Some("True")),
        start_time: time("/status/startTime"),
        ready_transition_time: ready
            .and_then(|c| c.get("lastTransitionTime"))
            .and_then(Value::as_str)
            .and_then(|t| t.parse().ok()),
        deletion_timestamp: time("/metadata/deletionTimestamp"),
        containers: containers("/spec/containers"),
        init_containers: containers("/spec/initContainers"),
        resources: v
            .pointer("/spec/resources")
            .and_then(|r| serde_json::from_value(r.clone()).ok()),
    };
    (pod, s("/status/podIP"))
}

fn decode<T: serde::de::DeserializeOwned>(path: &str, v: Value) -> Result<T, SourceError> {
    serde_json::from_value(v).map_err(|e| SourceError::Decode {
        what: format!("GET {path}"),
        message: e.to_string(),
    })
}

/// A path segment, percent-encoded.
fn segment(s: &str) -> String {
    encode(s, false)
}

/// `?k=v&…` of the parameters that are set.
fn query(params: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| {
            v.filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", encode(v, true)))
        })
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

fn encode(s: &str, in_query: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (!in_query && b == b'*');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A kind's resource name, the way the RESTMapper's default pluralization (and
/// `kubectl`) forms it: `Deployment` → `deployments`, `Ingress` → `ingresses`,
/// `Policy` → `policies`.
pub fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    if k.ends_with('s') || k.ends_with('x') || k.ends_with("ch") || k.ends_with("sh") {
        format!("{k}es")
    } else if let Some(stem) = k.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{k}s")
    }
}

/// `resource.group` of an object reference (`ingresses.networking.k8s.io`,
/// `services` for the core group), as the custom metrics API paths name it.
fn group_resource(object: &CrossVersionObjectReference) -> String {
    let resource = plural(&object.kind);
    match object
        .api_version
        .as_deref()
        .and_then(|v| v.split_once('/'))
    {
        Some((group, _)) => format!("{resource}.{group}"),
        None => resource,
    }
}

/// A `metav1.LabelSelector` in the string form the APIs take
/// (`metav1.LabelSelectorAsSelector(...).String()`): `a=b,c in (d,e),!f`.
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        parts.push((k.clone(), format!("{k}={v}")));
    }
    for r in sel.match_expressions.iter().flatten() {
        let mut values = r.values.clone().unwrap_or_default();
        values.sort();
        let text = match r.operator.as_str() {
            "In" => format!("{} in ({})", r.key, values.join(",")),
            "NotIn" => format!("{} notin ({})", r.key, values.join(",")),
            "Exists" => r.key.clone(),
            "DoesNotExist" => format!("!{}", r.key),
            other => format!("{} {other} ({})", r.key, values.join(",")),
        };
        parts.push((r.key.clone(), text));
    }
    // Upstream sorts requirements by key.
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    parts
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Deserialize)]
struct PodMetricsList {
    #[serde(default)]
    items: Vec<PodMetricsItem>,
}

#[derive(Deserialize)]
struct PodMetricsItem {
    metadata: Meta,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(default)]
    window: Option<GoDuration>,
    #[serde(default)]
    containers: Vec<ContainerUsage>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct ContainerUsage {
    name: String,
    #[serde(default)]
    usage: BTreeMap<String, Quantity>,
}

#[derive(Deserialize)]
struct MetricValueList {
    #[serde(default)]
    items: Vec<MetricValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricValue {
    #[serde(default)]
    described_object: DescribedRef,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(default)]
    window_seconds: Option<i64>,
    value: Quantity,
}

#[derive(Deserialize, Default)]
struct DescribedRef {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct ExternalMetricValueList {
    #[serde(default)]
    items: Vec<ExternalItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExternalItem {
    #[serde(default)]
    metric_labels: BTreeMap<String, String>,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    value: Quantity,
}

#[cfg(test)]
mod tests {
    use super::*;
    use podscale_core::api::LabelSelectorRequirement;

    #[test]
    fn kinds_pluralize_like_the_rest_mapper() {
        assert_eq!(plural("Deployment"), "deployments");
        assert_eq!(plural("Ingress"), "ingresses");
        assert_eq!(plural("NetworkPolicy"), "networkpolicies");
        assert_eq!(plural("Gateway"), "gateways");
    }

    #[test]
    fn selectors_print_as_the_apis_take_them() {
        let sel = LabelSelector {
            match_labels: Some([("deployment".to_owned(), "inference-server".to_owned())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "gpu".into(),
                    operator: "In".into(),
                    values: Some(vec!["h100".into(), "a100".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(
            selector_string(&sel),
            "!canary,deployment=inference-server,gpu in (a100,h100)"
        );
        assert_eq!(
            query(&[("labelSelector", Some("a=b,c in (d)")), ("x", None)]),
            "?labelSelector=a%3Db%2Cc%20in%20%28d%29"
        );
    }
}
