//! Reads one metric for one request through the metric sources of `podscale.yaml`,
//! with every rule `podscale metrics` applies (NaN and stale samples are no data,
//! `maxAge`, `emptyAs`, `onError`), by handing [`collect::read`] an HPA that names just
//! that metric: the adapter and `podscale metrics` run the very same code, so they
//! read the same values.
//!
//! What the answers become follows prometheus-adapter (`pkg/custom-provider/provider.go`):
//! - Pods by selector: the pods are listed from the API server (as `getMultiple` lists
//!   the objects), the query is filled in with their names, and only listed pods with
//!   a value are answered; none is an empty list (200), which the HPA reports as "no
//!   metrics returned from custom metrics API" — never a zero.
//! - One named object (`getSingle`): no value is `NotFound` ("the server could not
//!   find the metric … for pods name").
//! - External: the values, or an empty list.
//! - A source that fails is an `InternalError` (500) with the source's message (already
//!   free of credentials), never an empty or zero answer.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use podscale_core::api::{HorizontalPodAutoscaler, LabelSelector};
use podscale_metrics::collect::{self, MetricReading, PodInfo, Request, Sources};
use podscale_metrics::config::{Config, MetricKind, SourceKind};
use podscale_metrics::kubernetes::KubeMetrics;
use serde_json::json;

use crate::api::{ApiError, ExternalValue, ObjectReference, Value};
use crate::catalogue::{Catalogue, ObjectResource};

/// The pods a Pods request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodsQuery {
    /// `/pods/{name}/{metric}`.
    Named(String),
    /// `/pods/*/{metric}?labelSelector=…` (empty: every pod of the namespace).
    Selector(String),
}

/// Reads metrics for the handlers.
#[derive(Debug, Clone)]
pub struct Reader {
    config: Arc<Config>,
    catalogue: Arc<Catalogue>,
    /// Prometheus and direct scrapes only: never the Kubernetes metrics APIs, which
    /// would be the adapter asking itself.
    sources: Sources,
    /// Lists and gets pods (bounded: pages, `maxItems`, per-call timeout).
    kube: Option<KubeMetrics>,
}

impl Reader {
    /// `kube`: the cluster whose pods `*` requests list; without it, a `*` request is
    /// refused (a named pod still reads, without its address for direct scrapes).
    ///
    /// # Errors
    /// A source client cannot be built (unreadable CA or password file).
    pub fn new(config: Arc<Config>, kube: Option<KubeMetrics>) -> Result<Self, crate::Error> {
        let sources = Sources::from_config(&config).map_err(crate::Error::Sources)?;
        Ok(Self {
            catalogue: Arc::new(Catalogue::new(&config)),
            config,
            sources,
            kube,
        })
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// A Pods metric of the pods in `namespace` that `query` names.
    ///
    /// # Errors
    /// [`ApiError`]: unknown metric (404), bad selector (400), the pod list or the
    /// source failed (500), a named pod without a value (404).
    pub async fn pods(
        &self,
        namespace: &str,
        query: &PodsQuery,
        metric: &str,
        metric_selector: Option<LabelSelector>,
    ) -> Result<Vec<Value>, ApiError> {
        let Some(config) = self.config.metric(MetricKind::Pods, metric) else {
            return Err(ApiError::metric_not_found("pods", metric));
        };
        let scrape = config.source() == SourceKind::Scrape;
        let pods = match query {
            PodsQuery::Named(name) => vec![self.named_pod(namespace, name, scrape).await?],
            PodsQuery::Selector(selector) => self.list_pods(namespace, selector).await?,
        };
        if pods.is_empty() {
            return Ok(Vec::new());
        }
        let listed: BTreeSet<&str> = pods.iter().map(|p| p.name.as_str()).collect();
        let spec = json!({"type": "Pods", "pods": {"metric": metric_identifier(metric, metric_selector.as_ref()), "target": {"type": "AverageValue", "averageValue": "1"}}});
        let reading = self.read(namespace, spec, Some(&pods)).await?;
        let values: Vec<Value> = match classify(reading) {
            Outcome::Samples(r) => r
                .samples
                .into_iter()
                .filter_map(|s| {
                    let pod = s.pod.filter(|p| listed.contains(p.as_str()))?;
                    Some(Value {
                        described_object: ObjectReference {
                            kind: "Pod".into(),
                            namespace: namespace.to_owned(),
                            name: pod,
                            api_version: "/v1".into(),
                        },
                        metric: metric.to_owned(),
                        selector: metric_selector.clone(),
                        timestamp: s.timestamp,
                        value: s.quantity,
                    })
                })
                .collect(),
            Outcome::NoData => Vec::new(),
            Outcome::Failed(e) => return Err(e),
        };
        if let PodsQuery::Named(name) = query
            && values.is_empty()
        {
            return Err(ApiError::metric_not_found_for("pods", metric, name));
        }
        Ok(values)
    }

    /// An Object metric describing `name` of `resource` (in `namespace`, unless the
    /// resource is cluster-scoped).
    ///
    /// # Errors
    /// As [`Reader::pods`]; an Object metric answers exactly one value.
    pub async fn object(
        &self,
        namespace: &str,
        resource: &ObjectResource,
        name: &str,
        metric: &str,
        metric_selector: Option<LabelSelector>,
    ) -> Result<Vec<Value>, ApiError> {
        let gr = resource.group_resource();
        if self.config.metric(MetricKind::Object, metric).is_none() {
            return Err(ApiError::metric_not_found(&gr, metric));
        }
        let spec = json!({"type": "Object", "object": {
            "describedObject": {"apiVersion": resource.api_version(), "kind": resource.kind, "name": name},
            "metric": metric_identifier(metric, metric_selector.as_ref()),
            "target": {"type": "Value", "value": "1"}}});
        let reading = self.read(namespace, spec, None).await?;
        match classify(reading) {
            Outcome::Samples(r) => Ok(r
                .samples
                .into_iter()
                .take(1)
                .map(|s| Value {
                    described_object: ObjectReference {
                        kind: resource.kind.to_owned(),
                        namespace: if resource.namespaced {
                            namespace.to_owned()
                        } else {
                            String::new()
                        },
                        name: name.to_owned(),
                        api_version: format!("{}/{}", resource.group, resource.version),
                    },
                    metric: metric.to_owned(),
                    selector: metric_selector.clone(),
                    timestamp: s.timestamp,
                    value: s.quantity,
                })
                .collect()),
            Outcome::NoData => Err(ApiError::metric_not_found_for(&gr, metric, name)),
            Outcome::Failed(e) => Err(e),
        }
    }

    /// An External metric in `namespace` with the request's `labelSelector`.
    ///
    /// # Errors
    /// As [`Reader::pods`].
    pub async fn external(
        &self,
        namespace: &str,
        metric: &str,
        selector: Option<LabelSelector>,
    ) -> Result<Vec<ExternalValue>, ApiError> {
        let Some(config) = self.config.metric(MetricKind::External, metric) else {
            return Err(ApiError::metric_not_found(
                &format!("{metric}.{}", crate::api::EXTERNAL_GROUP),
                metric,
            ));
        };
        // A direct scrape reads the pods of the namespace the selector names.
        let pods = if config.source() == SourceKind::Scrape {
            let sel = selector
                .as_ref()
                .map(podscale_metrics::kubernetes::selector_string)
                .unwrap_or_default();
            Some(self.list_pods(namespace, &sel).await?)
        } else {
            None
        };
        let spec = json!({"type": "External", "external": {
            "metric": metric_identifier(metric, selector.as_ref()),
            "target": {"type": "AverageValue", "averageValue": "1"}}});
        let reading = self.read(namespace, spec, pods.as_deref()).await?;
        match classify(reading) {
            Outcome::Samples(r) => Ok(r
                .samples
                .into_iter()
                .map(|s| ExternalValue {
                    metric: metric.to_owned(),
                    labels: s.labels,
                    timestamp: s.timestamp,
                    value: s.quantity,
                })
                .collect()),
            Outcome::NoData => Ok(Vec::new()),
            Outcome::Failed(e) => Err(e),
        }
    }

    /// One metric through [`collect::read`].
    async fn read(
        &self,
        namespace: &str,
        spec: serde_json::Value,
        pods: Option<&[PodInfo]>,
    ) -> Result<MetricReading, ApiError> {
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "podscale-adapter", "namespace": namespace},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podscale-adapter"},
                "maxReplicas": 1,
                "metrics": [spec],
            }
        }))
        .map_err(|e| ApiError::internal(format!("building the reading: {e}")))?;
        let reading = collect::read(
            &self.config,
            &self.sources,
            &Request {
                hpa: &hpa,
                pods,
                now: Timestamp::now(),
            },
        )
        .await;
        reading
            .metrics
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal("the reading has no metric"))
    }

    async fn list_pods(&self, namespace: &str, selector: &str) -> Result<Vec<PodInfo>, ApiError> {
        let Some(kube) = &self.kube else {
            return Err(ApiError::internal(
                "unable to list matching resources: no Kubernetes connection",
            ));
        };
        let pods = kube
            .pods(namespace, selector)
            .await
            .map_err(|e| ApiError::internal(format!("unable to list matching resources: {e}")))?;
        Ok(pods
            .into_iter()
            .map(|(p, ip)| PodInfo {
                name: p.name,
                address: ip,
            })
            .collect())
    }

    /// A named pod; its address is only looked up for a direct scrape (a Prometheus
    /// query needs the name alone, as prometheus-adapter's `getSingle`).
    async fn named_pod(
        &self,
        namespace: &str,
        name: &str,
        scrape: bool,
    ) -> Result<PodInfo, ApiError> {
        if !scrape {
            return Ok(PodInfo {
                name: name.to_owned(),
                address: None,
            });
        }
        let address = self
            .list_pods(namespace, "")
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .and_then(|p| p.address);
        Ok(PodInfo {
            name: name.to_owned(),
            address,
        })
    }
}

fn metric_identifier(name: &str, selector: Option<&LabelSelector>) -> serde_json::Value {
    match selector {
        Some(s) => json!({"name": name, "selector": s}),
        None => json!({"name": name}),
    }
}

enum Outcome {
    Samples(MetricReading),
    NoData,
    Failed(ApiError),
}

/// Whether a reading has values, has none (empty, NaN or stale: no data, answered as
/// the API's "nothing", never as 0), or failed.
fn classify(reading: MetricReading) -> Outcome {
    match &reading.error {
        None if reading.samples.is_empty() => Outcome::NoData,
        None => Outcome::Samples(reading),
        // `collect`'s wording of rule 5 (nothing left is no data).
        Some(e) if e.starts_with("no data:") => Outcome::NoData,
        Some(e) if e.starts_with("cannot fill in the query: invalid selector") => {
            Outcome::Failed(ApiError::bad_request(e.clone()))
        }
        Some(e) => Outcome::Failed(ApiError::internal(format!("unable to fetch metrics: {e}"))),
    }
}

/// How long one request may take, sources included, before it is answered with a
/// `Timeout` (the API server's default `--request-timeout` is 60 s; the aggregator
/// gives up on a backend sooner).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
