//! Reads every metric of one HPA once, as the controller would at a sync, and turns
//! the answers into the engine's input.
//!
//! Each of the HPA's metrics (after API defaulting) is looked up in the config by type
//! and name, read from its source, and then put through the same rules whatever the
//! source:
//! 1. a failed source is an error (or, with `onError: emptyAs`, the `emptyAs` value);
//! 2. NaN and ±Inf samples are dropped: no data;
//! 3. samples older than `maxAge` are dropped;
//! 4. per-pod results need the pod label, one series per pod;
//! 5. nothing left is **no data** — an error, unless `emptyAs` gives the value.
//!
//! [`Reading::observed`] then holds what the metrics APIs would have returned. The
//! engine's input has one answer per API, not per metric, so: when every metric of an
//! API failed, that API's answer is `{ error }` (with each failure's message); when
//! only some did, the failed ones are answered with no items, which the engine
//! reports as "no metrics returned" for just those metrics. Either way a failed
//! metric never allows a scale-down.
use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use podscale_core::api::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, MetricSourceType, MetricSpec,
};
use podscale_core::observed::{
    ContainerMetrics, DescribedObject, ExternalMetricValue, ExternalMetricValues, Fetched,
    ObjectMetricValue, ObservedMetrics, Pod, PodMetricValue, PodMetrics, PodsMetricValues,
    ResourceMetricsList,
};
use podscale_core::quantity::{Format as QuantityFormat, Quantity};
use podscale_core::scenario::{Scenario, Stage};
use podscale_core::{ControllerSettings, defaults};
use serde::Serialize;

use crate::config::{
    self, Aggregate, Config, MetricConfig, MetricKind, OnError, ResourceSource, SourceKind,
};
use crate::kubernetes::{KubeMetrics, Scale};
use crate::prometheus::PrometheusClient;
use crate::scrape::{ScrapeTarget, Scraper};
use crate::template::{self, Context};
use crate::{SourceError, presets};

/// A pod the HPA's target selects, and where its metrics endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    pub name: String,
    /// `ip`, `host:port` or `[v6]:port`; the port, when absent, is the metric's.
    pub address: Option<String>,
}

impl PodInfo {
    /// Parses `name=ip:port,name2=ip,...` (the `--pods` flag); a bare `name` has no
    /// address.
    ///
    /// # Errors
    /// An empty list or entry (`a,,b`, a trailing comma), an empty name or address,
    /// or a pod named twice: each would silently change which pods count.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, String> {
        if s.trim().is_empty() {
            return Err("empty list (expected name=ip:port,...)".into());
        }
        let mut seen = BTreeSet::new();
        s.split(',')
            .enumerate()
            .map(|(i, p)| {
                let p = p.trim();
                if p.is_empty() {
                    return Err(format!(
                        "entry {} is empty (expected name=ip:port,...)",
                        i + 1
                    ));
                }
                let (name, address) = match p.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim())),
                    None => (p, None),
                };
                if name.is_empty() {
                    return Err(format!("{p:?}: empty pod name (expected name=ip:port)"));
                }
                if address == Some("") {
                    return Err(format!("{p:?}: empty address (expected name=ip:port)"));
                }
                if !seen.insert(name.to_owned()) {
                    return Err(format!("pod {name:?} is given twice"));
                }
                Ok(Self {
                    name: name.to_owned(),
                    address: address.map(str::to_owned),
                })
            })
            .collect()
    }
}

/// The clients the configured sources need.
#[derive(Debug, Clone)]
pub struct Sources {
    pub prometheus: Option<PrometheusClient>,
    pub scraper: Scraper,
    /// The Kubernetes APIs, when the config has a `kubernetes:` section.
    pub kube: Option<KubeMetrics>,
}

impl Sources {
    /// Clients for Prometheus and direct scrapes (no Kubernetes connection: see
    /// [`Sources::connect`]).
    ///
    /// # Errors
    /// A client cannot be built (unreadable CA or password file).
    pub fn from_config(config: &Config) -> Result<Self, SourceError> {
        Ok(Self {
            prometheus: config
                .prometheus
                .as_ref()
                .map(PrometheusClient::new)
                .transpose()?,
            scraper: Scraper::new(config.scrape.concurrency)?,
            kube: None,
        })
    }

    /// Every client the config names, connecting to Kubernetes if it has a
    /// `kubernetes:` section.
    ///
    /// # Errors
    /// A client cannot be built, or no Kubernetes configuration is usable.
    pub async fn connect(config: &Config) -> Result<Self, SourceError> {
        let mut sources = Self::from_config(config)?;
        if let Some(k) = &config.kubernetes {
            sources.kube = Some(
                KubeMetrics::connect(k.kubeconfig.as_deref(), k.context.as_deref(), k.timeout)
                    .await?
                    .with_limits(crate::kubernetes::Limits {
                        max_body_bytes: usize::try_from(k.max_response_size).unwrap_or(usize::MAX),
                        max_items: k.max_items,
                        ..Default::default()
                    }),
            );
        }
        Ok(sources)
    }
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub hpa: &'a HorizontalPodAutoscaler,
    /// The pods the target selects; `None` when unknown (the pods are then those the
    /// per-pod results name, and `{{pods}}` matches any name).
    pub pods: Option<&'a [PodInfo]>,
    /// The time of the reading (the scenario's `now`; the reference of `maxAge`).
    pub now: Timestamp,
}

/// One sample as read and kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleReading {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    /// What the engine receives (milli-units, truncated as prometheus-adapter does).
    pub quantity: Quantity,
    pub timestamp: Timestamp,
    /// The value is not 0 but below 1m (0.001), so the engine receives 0: the
    /// adapter's truncation, kept, and said.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated_to_zero: bool,
}

/// A sample that was read but not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dropped {
    /// The pod, or the series' labels.
    pub what: String,
    pub reason: String,
}

/// One HPA metric's reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricReading {
    /// The HPA metric type (`Pods`, `Object`, `External`, `Resource`, …).
    #[serde(rename = "type")]
    pub type_: String,
    /// The metric's name (the resource's for Resource metrics).
    pub name: String,
    /// Where it was read: `prometheus`, `scrape`, `metrics.k8s.io`,
    /// `custom.metrics.k8s.io`, `external.metrics.k8s.io`, or `none`.
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    pub samples: Vec<SampleReading>,
    /// Selected pods without a (usable) sample: the engine's missing pods.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<Dropped>,
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// A metrics API answered an empty list: the engine is given that empty list and
    /// words the failure itself, as upstream does.
    #[serde(skip)]
    pub engine_reports_empty: bool,
}

/// Everything read for one HPA.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reading {
    pub hpa: String,
    pub namespace: String,
    pub now: Timestamp,
    /// The pods considered (given, listed from Kubernetes, or named by per-pod results).
    pub pods: Vec<String>,
    /// The target's scale subresource, when read from Kubernetes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<ScaleReading>,
    /// Problems outside any one metric (e.g. the pods could not be listed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The pods as Kubernetes reported them (phase, readiness, requests), for the
    /// scenario.
    #[serde(skip)]
    pub pod_objects: Vec<Pod>,
    /// One per metric of the HPA, in its order.
    pub metrics: Vec<MetricReading>,
    /// The engine's input.
    pub observed: ObservedMetrics,
}

/// The scale subresource, as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleReading {
    pub spec_replicas: i32,
    pub status_replicas: i32,
    pub selector: Option<String>,
}

impl From<Scale> for ScaleReading {
    fn from(s: Scale) -> Self {
        Self {
            spec_replicas: s.spec_replicas,
            status_replicas: s.status_replicas,
            selector: s.selector,
        }
    }
}

impl Reading {
    /// Whether any metric failed.
    pub fn has_errors(&self) -> bool {
        self.metrics.iter().any(|m| m.error.is_some())
    }

    /// A scenario (`shared/spec/scenario.md`) of this reading that `podscale explain`
    /// evaluates. With Kubernetes, the pods, selector and replica counts are the real
    /// ones; otherwise pods are recorded as Running and Ready (their readiness was not
    /// read) and `current_replicas` defaults to the number of pods.
    pub fn scenario(
        &self,
        hpa: &HorizontalPodAutoscaler,
        current_replicas: Option<i32>,
    ) -> Scenario {
        let pods: Vec<Pod> = if self.pod_objects.is_empty() {
            self.pods
                .iter()
                .map(|name| Pod {
                    name: name.clone(),
                    phase: "Running".into(),
                    ready: Some(true),
                    ..Pod::default()
                })
                .collect()
        } else {
            self.pod_objects.clone()
        };
        let replicas = current_replicas
            .or(self.scale.as_ref().map(|s| s.spec_replicas))
            .unwrap_or_else(|| i32::try_from(pods.len()).unwrap_or(i32::MAX))
            .max(if pods.is_empty() {
                defaults::min_replicas(hpa)
            } else {
                0
            });
        Scenario {
            id: Some(format!("{}/{} at {}", self.namespace, self.hpa, self.now)),
            stage: Stage::Reconcile,
            controller: ControllerSettings::default(),
            now: self.now,
            hpa: hpa.clone(),
            current_replicas: replicas,
            status_replicas: self.scale.as_ref().map(|s| s.status_replicas),
            selector: self.scale.as_ref().and_then(|s| s.selector.clone()),
            pods,
            metrics: self.observed.clone(),
            history: None,
            input: None,
        }
    }
}

/// A value as the engine receives it: milli-units, truncated toward zero and
/// saturating (prometheus-adapter: `NewMilliQuantity(int64(value*1000), DecimalSI)`).
/// The engine's [`Quantity::from_metric_value`], which the simulator uses too.
pub fn quantity(value: f64) -> Quantity {
    Quantity::from_metric_value(value)
}

/// One value before the rules.
#[derive(Debug, Clone)]
struct Raw {
    pod: Option<String>,
    container: Option<String>,
    labels: BTreeMap<String, String>,
    value: f64,
    /// The exact quantity, when the source gave one (the Kubernetes APIs).
    quantity: Option<Quantity>,
    timestamp: Timestamp,
}

/// What a source gave for one metric.
struct SourceOutput {
    source: &'static str,
    query: Option<String>,
    values: Result<Vec<Raw>, String>,
    dropped: Vec<Dropped>,
    notes: Vec<String>,
}

/// Reads every metric of `req.hpa`.
pub async fn read(config: &Config, sources: &Sources, req: &Request<'_>) -> Reading {
    let hpa = req.hpa;
    let namespace = hpa
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let mut notes = Vec::new();
    let mut scale = None;
    let mut pod_objects = Vec::new();
    let mut listed: Option<Vec<PodInfo>> = None;
    if req.pods.is_none()
        && let Some(kube) = &sources.kube
        && config.kubernetes.as_ref().is_some_and(|k| k.pods)
    {
        match list_target_pods(kube, &namespace, hpa).await {
            Ok((s, pods)) => {
                scale = Some(s);
                listed = Some(
                    pods.iter()
                        .map(|(p, ip)| PodInfo {
                            name: p.name.clone(),
                            address: ip.clone(),
                        })
                        .collect(),
                );
                pod_objects = pods.into_iter().map(|(p, _)| p).collect();
            }
            Err(e) => notes.push(format!("cannot list the target's pods: {e}")),
        }
    }
    let req = &Request {
        hpa,
        pods: req.pods.or(listed.as_deref()),
        now: req.now,
    };
    let selector = scale
        .as_ref()
        .and_then(|s: &ScaleReading| s.selector.clone());
    let pod_names: Option<Vec<String>> =
        req.pods.map(|p| p.iter().map(|p| p.name.clone()).collect());
    let specs = defaults::metrics(hpa);
    let mut readings = Vec::with_capacity(specs.len());
    let mut resource_answer: Option<(Fetched<ResourceMetricsList>, MetricReading)> = None;
    for spec in &specs {
        let kind = spec.source_type();
        let reading = match kind {
            Some(MetricSourceType::Resource | MetricSourceType::ContainerResource) => {
                if resource_answer.is_none() {
                    resource_answer = Some(
                        read_resources(
                            config,
                            sources,
                            req,
                            &namespace,
                            pod_names.as_deref(),
                            selector.as_deref(),
                            &specs,
                        )
                        .await,
                    );
                }
                let (_, template) = resource_answer.as_ref().expect("set just above");
                let mut r = template.clone();
                r.type_ = spec.type_.clone();
                r.name = resource_name(spec);
                r
            }
            Some(
                k
                @ (MetricSourceType::Pods | MetricSourceType::Object | MetricSourceType::External),
            ) => {
                read_custom(
                    config,
                    sources,
                    req,
                    &namespace,
                    pod_names.as_deref(),
                    selector.as_deref(),
                    spec,
                    k,
                )
                .await
            }
            None => MetricReading {
                type_: spec.type_.clone(),
                name: String::new(),
                source: "none".into(),
                query: None,
                samples: Vec::new(),
                missing: Vec::new(),
                dropped: Vec::new(),
                error: Some(format!("unknown metric source type {:?}", spec.type_)),
                notes: Vec::new(),
                engine_reports_empty: false,
            },
        };
        readings.push(reading);
    }
    let pods = match &pod_names {
        Some(p) => p.clone(),
        None => readings
            .iter()
            .filter(|r| r.type_ == "Pods")
            .flat_map(|r| r.samples.iter().filter_map(|s| s.pod.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let observed = observed(&specs, &readings, resource_answer.map(|(f, _)| f));
    Reading {
        hpa: hpa.metadata.name.clone().unwrap_or_default(),
        namespace,
        now: req.now,
        pods,
        scale,
        notes,
        pod_objects,
        metrics: readings,
        observed,
    }
}

/// The target's scale and its pods (by the scale's selector, as the HPA lists them).
async fn list_target_pods(
    kube: &KubeMetrics,
    namespace: &str,
    hpa: &HorizontalPodAutoscaler,
) -> Result<(ScaleReading, Vec<(Pod, Option<String>)>), SourceError> {
    let scale = kube.scale(namespace, &hpa.spec.scale_target_ref).await?;
    let pods = match scale.selector.as_deref() {
        Some(sel) if !sel.is_empty() => kube.pods(namespace, sel).await?,
        _ => Vec::new(),
    };
    Ok((scale.into(), pods))
}

fn resource_name(spec: &MetricSpec) -> String {
    if let Some(r) = &spec.resource {
        return r.name.clone();
    }
    if let Some(c) = &spec.container_resource {
        return format!("{} (container {})", c.name, c.container);
    }
    String::new()
}

fn metric_identity(
    spec: &MetricSpec,
) -> Option<(MetricKind, &podscale_core::api::MetricIdentifier)> {
    if let Some(p) = &spec.pods {
        return Some((MetricKind::Pods, &p.metric));
    }
    if let Some(o) = &spec.object {
        return Some((MetricKind::Object, &o.metric));
    }
    spec.external
        .as_ref()
        .map(|e| (MetricKind::External, &e.metric))
}

#[allow(clippy::too_many_arguments)] // one call site; the reading's whole context
async fn read_custom(
    config: &Config,
    sources: &Sources,
    req: &Request<'_>,
    namespace: &str,
    pods: Option<&[String]>,
    selector: Option<&str>,
    spec: &MetricSpec,
    kind: MetricSourceType,
) -> MetricReading {
    let mut reading = MetricReading {
        type_: spec.type_.clone(),
        name: String::new(),
        source: "none".into(),
        query: None,
        samples: Vec::new(),
        missing: Vec::new(),
        dropped: Vec::new(),
        error: None,
        notes: Vec::new(),
        engine_reports_empty: false,
    };
    let Some((mkind, ident)) = metric_identity(spec) else {
        reading.error = Some(format!(
            "invalid {} metric source: the {} field is not set",
            kind.as_str(),
            kind.as_str().to_ascii_lowercase()
        ));
        return reading;
    };
    reading.name.clone_from(&ident.name);
    let fallback = config.kubernetes.as_ref().is_some_and(|k| k.fallback);
    if config.metric(mkind, &ident.name).is_none()
        && fallback
        && let Some(kube) = &sources.kube
    {
        read_api(&mut reading, kube, namespace, selector, spec, mkind, ident).await;
        return reading;
    }
    let Some(metric) = config.metric(mkind, &ident.name) else {
        reading.error = Some(format!(
            "{} has no {} metric named {:?} (add it under `metrics:` with type: {})",
            config.file_name(),
            mkind.hpa_type(),
            ident.name,
            match mkind {
                MetricKind::Pods => "pods",
                MetricKind::Object => "object",
                MetricKind::External => "external",
            }
        ));
        return reading;
    };
    let object = spec
        .object
        .as_ref()
        .map(|o| o.described_object.clone())
        .unwrap_or_default();
    let ctx = Context {
        namespace,
        pods,
        selector: ident.selector.as_ref(),
        name: &ident.name,
        max_age: metric.max_age,
        window: None,
        object_kind: &object.kind,
        object_name: &object.name,
    };
    let output = match metric.source() {
        SourceKind::Prometheus => read_prometheus(config, sources, metric, &ctx).await,
        SourceKind::Scrape => read_scrape(config, sources, metric, req).await,
    };
    reading.source = output.source.into();
    reading.query = output.query;
    reading.dropped = output.dropped;
    reading.notes = output.notes;
    apply_rules(&mut reading, metric, output.values, pods, req.now);
    reading
}

/// A metric the config does not list, from the custom or external metrics API, passed
/// on as the API answered it (an empty list included: the engine words that failure
/// exactly as upstream).
async fn read_api(
    reading: &mut MetricReading,
    kube: &KubeMetrics,
    namespace: &str,
    selector: Option<&str>,
    spec: &MetricSpec,
    kind: MetricKind,
    ident: &podscale_core::api::MetricIdentifier,
) {
    let sample = |pod: Option<String>,
                  labels: BTreeMap<String, String>,
                  q: Quantity,
                  ts: Option<Timestamp>| SampleReading {
        pod,
        container: None,
        labels,
        value: q.as_approximate_f64(),
        quantity: q,
        timestamp: ts.unwrap_or_default(),
        truncated_to_zero: false,
    };
    let (api, result) = match kind {
        MetricKind::Pods => (
            "custom.metrics.k8s.io",
            kube.pods_metric(namespace, &ident.name, selector, ident.selector.as_ref())
                .await
                .map(|items| {
                    items
                        .into_iter()
                        .map(|i| sample(Some(i.pod_name), BTreeMap::new(), i.value, i.timestamp))
                        .collect::<Vec<_>>()
                }),
        ),
        MetricKind::Object => {
            let object = spec
                .object
                .as_ref()
                .map(|o| o.described_object.clone())
                .unwrap_or_default();
            (
                "custom.metrics.k8s.io",
                kube.object_metric(namespace, &object, &ident.name, ident.selector.as_ref())
                    .await
                    .map(|(q, ts)| vec![sample(None, BTreeMap::new(), q, ts)]),
            )
        }
        MetricKind::External => (
            "external.metrics.k8s.io",
            kube.external_metric(namespace, &ident.name, ident.selector.as_ref())
                .await
                .map(|items| {
                    items
                        .into_iter()
                        .map(|i| sample(None, i.metric_labels, i.value, i.timestamp))
                        .collect::<Vec<_>>()
                }),
        ),
    };
    reading.source = api.into();
    match result {
        Err(e) => reading.error = Some(e.to_string()),
        Ok(samples) if samples.is_empty() => {
            reading.error = Some(format!(
                "no metrics returned from {} metrics API",
                if api.starts_with("custom") {
                    "custom"
                } else {
                    "external"
                }
            ));
            reading.engine_reports_empty = true;
        }
        Ok(samples) => reading.samples = samples,
    }
}

async fn read_prometheus(
    config: &Config,
    sources: &Sources,
    metric: &MetricConfig,
    ctx: &Context<'_>,
) -> SourceOutput {
    let default_label = config
        .prometheus
        .as_ref()
        .map_or("pod", |p| p.pod_label.as_str());
    let pod_label = metric.pod_label.as_deref().unwrap_or(default_label);
    let mut out = SourceOutput {
        source: "prometheus",
        query: None,
        values: Ok(Vec::new()),
        dropped: Vec::new(),
        notes: Vec::new(),
    };
    let Some(template) = metric.query_template(default_label) else {
        out.values = Err("no query or preset".into());
        return out;
    };
    let query = match template::render(&template, ctx) {
        Ok(q) => q,
        Err(e) => {
            out.values = Err(format!("cannot fill in the query: {e}"));
            return out;
        }
    };
    out.query = Some(query.clone());
    let Some(client) = &sources.prometheus else {
        out.values = Err("no Prometheus is configured".into());
        return out;
    };
    match client.query(&query, None).await {
        Err(e) => out.values = Err(e.to_string()),
        Ok(response)
            if metric.kind == MetricKind::Pods
                && matches!(
                    response.result,
                    crate::prometheus::QueryResult::Scalar { .. }
                ) =>
        {
            out.values = Err(format!(
                "the query returned a scalar; a Pods metric needs an instant vector with one series per pod, labelled {pod_label:?} (e.g. sum by ({pod_label}) (...))"
            ));
        }
        Ok(response) => {
            out.notes.extend(
                response
                    .warnings
                    .into_iter()
                    .map(|w| format!("prometheus warning: {w}")),
            );
            let mut values = Vec::new();
            for s in response.result.into_samples() {
                let mut labels = s.labels;
                labels.remove("__name__");
                let pod = if metric.kind == MetricKind::Pods {
                    let Some(pod) = labels.get(pod_label).cloned() else {
                        out.dropped.push(Dropped {
                            what: format_labels(&labels),
                            reason: format!(
                                "no {pod_label:?} label to name the pod (aggregate `by ({pod_label})`, or set podLabel)"
                            ),
                        });
                        continue;
                    };
                    Some(pod)
                } else {
                    None
                };
                values.push(Raw {
                    pod,
                    container: None,
                    labels,
                    value: s.value,
                    quantity: None,
                    timestamp: s.timestamp,
                });
            }
            out.values = Ok(values);
        }
    }
    out
}

async fn read_scrape(
    config: &Config,
    sources: &Sources,
    metric: &MetricConfig,
    req: &Request<'_>,
) -> SourceOutput {
    let mut out = SourceOutput {
        source: "scrape",
        query: None,
        values: Ok(Vec::new()),
        dropped: Vec::new(),
        notes: Vec::new(),
    };
    let scrape = metric
        .scrape
        .as_ref()
        .expect("a scrape metric has a scrape block");
    let preset = metric.preset().map(|p| p.series);
    let own;
    let series: &[&str] = match &scrape.series {
        Some(s) => {
            own = [s.as_str()];
            &own
        }
        None => preset.unwrap_or_default(),
    };
    let aggregate = scrape
        .aggregate
        .or_else(|| metric.preset().map(|p| p.aggregate))
        .unwrap_or(Aggregate::Sum);
    out.query = Some(format!(
        "{} {}{}{}",
        aggregate.promql(),
        series.join(" or "),
        if scrape.labels.is_empty() { "" } else { " " },
        format_labels(&scrape.labels)
    ));
    let Some(pods) = req.pods else {
        out.values = Err(
            "a direct scrape needs the pods and their addresses (--pods name=ip:port,...)".into(),
        );
        return out;
    };
    let scheme = match scrape.scheme {
        config::Scheme::Http => "http",
        config::Scheme::Https => "https",
    };
    let mut targets = Vec::new();
    for pod in pods {
        let Some(address) = &pod.address else {
            out.dropped.push(Dropped {
                what: pod.name.clone(),
                reason: "no address to scrape (give name=ip:port)".into(),
            });
            continue;
        };
        let host_port = if has_port(address) {
            address.clone()
        } else if let Some(port) = scrape.port {
            if address.contains(':') {
                format!("[{address}]:{port}") // a bare IPv6 address
            } else {
                format!("{address}:{port}")
            }
        } else {
            out.dropped.push(Dropped {
                what: pod.name.clone(),
                reason: format!("address {address:?} has no port and scrape.port is not set"),
            });
            continue;
        };
        targets.push(ScrapeTarget {
            pod: pod.name.clone(),
            url: format!("{scheme}://{host_port}{}", scrape.path),
        });
    }
    let timeout = scrape.timeout.unwrap_or(config.scrape.timeout);
    let outcomes = sources.scraper.scrape(targets, timeout).await;
    let mut values = Vec::new();
    let mut failures = Vec::new();
    let answered = outcomes.len();
    for o in outcomes {
        let body = match o.result {
            Ok(b) => b,
            Err(e) => {
                failures.push(e.to_string());
                out.dropped.push(Dropped {
                    what: o.pod,
                    reason: format!("missing: {e}"),
                });
                continue;
            }
        };
        match crate::scrape::extract(&body.text, body.format, series, &scrape.labels, aggregate) {
            Err(e) => {
                failures.push(format!("pod {}: invalid exposition: {e}", o.pod));
                out.dropped.push(Dropped {
                    what: o.pod,
                    reason: format!("missing: invalid exposition: {e}"),
                });
            }
            Ok(x) => match x.value {
                Some(value) => values.push(Raw {
                    pod: Some(o.pod),
                    container: None,
                    labels: BTreeMap::new(),
                    value,
                    quantity: None,
                    timestamp: x
                        .timestamp_ms
                        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
                        .unwrap_or(o.at),
                }),
                None if x.matched > 0 => out.dropped.push(Dropped {
                    what: o.pod,
                    reason: format!("{}: no data", x.non_finite.join(", ")),
                }),
                None => out.dropped.push(Dropped {
                    what: o.pod,
                    reason: format!("no series {} in its /metrics", series.join(" or ")),
                }),
            },
        }
    }
    // An External metric read from the pods: one value per pod, labelled with it, or
    // one combined value when the config says `across`.
    if metric.kind == MetricKind::External {
        for v in &mut values {
            if let Some(pod) = v.pod.take() {
                v.labels.insert("pod".into(), pod);
            }
        }
        if let Some(across) = scrape.across
            && let Some(value) = across.apply(&values.iter().map(|v| v.value).collect::<Vec<_>>())
        {
            let timestamp = values.iter().map(|v| v.timestamp).min().unwrap_or(req.now);
            out.notes
                .push(format!("{} over {} pods", across.promql(), values.len()));
            values = vec![Raw {
                pod: None,
                container: None,
                labels: BTreeMap::new(),
                value,
                quantity: None,
                timestamp,
            }];
        }
    }
    if values.is_empty() && answered > 0 && failures.len() == answered {
        let more = if failures.len() > 1 {
            format!(" (and {} more pods failed)", failures.len() - 1)
        } else {
            String::new()
        };
        out.values = Err(format!("no pod answered: {}{more}", failures[0]));
    } else {
        out.values = Ok(values);
    }
    out
}

/// Whether an address names a port (`host:port`, `[v6]:port`).
fn has_port(address: &str) -> bool {
    if let Some(rest) = address.strip_prefix('[') {
        return rest
            .split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':'));
    }
    address.matches(':').count() == 1
}

fn format_labels(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", template::escape_string(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// The rules of the module docs, applied to one metric's values.
fn apply_rules(
    reading: &mut MetricReading,
    metric: &MetricConfig,
    values: Result<Vec<Raw>, String>,
    pods: Option<&[String]>,
    now: Timestamp,
) {
    let fill = |reading: &mut MetricReading, v: f64| -> Result<Vec<Raw>, String> {
        if metric.kind != MetricKind::Pods {
            return Ok(vec![Raw {
                pod: None,
                container: None,
                labels: BTreeMap::new(),
                value: v,
                quantity: None,
                timestamp: now,
            }]);
        }
        let Some(pods) = pods else {
            return Err("emptyAs on a pods metric needs the list of pods (--pods)".into());
        };
        reading.notes.push(format!("every pod reads emptyAs = {v}"));
        Ok(pods
            .iter()
            .map(|p| Raw {
                pod: Some(p.clone()),
                container: None,
                labels: BTreeMap::new(),
                value: v,
                quantity: None,
                timestamp: now,
            })
            .collect())
    };
    let values = match values {
        Ok(v) => v,
        Err(e) => match (metric.on_error, metric.empty_as) {
            (OnError::EmptyAs, Some(v)) => {
                reading.notes.push(format!(
                    "the source failed ({e}); onError: emptyAs uses {v}"
                ));
                match fill(reading, v) {
                    Ok(v) => v,
                    Err(e2) => {
                        reading.error = Some(format!("{e}; {e2}"));
                        return;
                    }
                }
            }
            _ => {
                reading.error = Some(e);
                return;
            }
        },
    };
    // Series the source dropped (no pod label, …) were read too: the result was
    // not empty.
    let read_any = !values.is_empty() || !reading.dropped.is_empty();
    // Prometheus answers in no particular order; a reading should read the same twice.
    let mut values = values;
    values.sort_by(|a, b| (&a.pod, &a.labels).cmp(&(&b.pod, &b.labels)));
    let mut kept: Vec<Raw> = Vec::with_capacity(values.len());
    let mut seen_pods = BTreeSet::new();
    for v in values {
        let what = || v.pod.clone().unwrap_or_else(|| format_labels(&v.labels));
        if !v.value.is_finite() {
            reading.dropped.push(Dropped {
                what: what(),
                reason: format!("{}: no data", crate::exposition::format_value(v.value)),
            });
            continue;
        }
        if let Some(max_age) = metric.max_age {
            let age = now.duration_since(v.timestamp).unsigned_abs();
            if now > v.timestamp && age > max_age {
                reading.dropped.push(Dropped {
                    what: what(),
                    reason: format!(
                        "sample is {} old, older than maxAge {}",
                        config::format_duration(std::time::Duration::from_millis(
                            u64::try_from(age.as_millis()).unwrap_or(u64::MAX)
                        )),
                        config::format_duration(max_age)
                    ),
                });
                continue;
            }
        }
        if let Some(pod) = &v.pod
            && !seen_pods.insert(pod.clone())
        {
            reading.dropped.push(Dropped {
                what: pod.clone(),
                reason: "a second series for this pod (aggregate by pod)".into(),
            });
            continue;
        }
        kept.push(v);
    }
    if metric.kind == MetricKind::Object && kept.len() > 1 {
        reading.error = Some(format!(
            "the query returned {} series; an Object metric needs exactly one (aggregate it, e.g. sum(...))",
            kept.len()
        ));
        return;
    }
    if kept.is_empty() {
        match metric.empty_as {
            Some(v) => {
                reading
                    .notes
                    .push(format!("empty result read as emptyAs = {v}"));
                match fill(reading, v) {
                    Ok(v) => kept = v,
                    Err(e) => {
                        reading.error = Some(e);
                        return;
                    }
                }
            }
            None => {
                let why = if read_any {
                    "every sample was NaN, stale or unusable (see dropped)"
                } else if metric.source() == SourceKind::Scrape {
                    "no pod exposed the series"
                } else {
                    "the query returned an empty result"
                };
                reading.error = Some(format!(
                    "no data: {why}; an empty result is not 0 (set emptyAs: 0 to read it as 0)"
                ));
                return;
            }
        }
    }
    if metric.kind == MetricKind::Pods
        && let Some(pods) = pods
    {
        reading.missing = pods
            .iter()
            .filter(|p| !seen_pods.contains(*p) && !kept.iter().any(|k| k.pod.as_ref() == Some(p)))
            .cloned()
            .collect();
    }
    reading.samples = kept
        .into_iter()
        .map(|r| {
            let q = r.quantity.unwrap_or_else(|| quantity(r.value));
            SampleReading {
                pod: r.pod,
                container: r.container,
                labels: if metric.kind == MetricKind::Pods {
                    BTreeMap::new()
                } else {
                    r.labels
                },
                value: r.value,
                truncated_to_zero: r.quantity.is_none() && r.value != 0.0 && q.milli_value() == 0,
                quantity: q,
                timestamp: r.timestamp,
            }
        })
        .collect();
    let below = reading
        .samples
        .iter()
        .filter(|s| s.truncated_to_zero)
        .count();
    if below > 0 {
        // prometheus-adapter: NewMilliQuantity(int64(value*1000)), so the HPA sees 0 too.
        reading.notes.push(format!(
            "{below} of {} samples are below 0.001 (1m) and read as 0: values are truncated to milli-units, as prometheus-adapter does",
            reading.samples.len()
        ));
    }
}

/// Resource metrics: one answer shared by every Resource/ContainerResource metric.
async fn read_resources(
    config: &Config,
    sources: &Sources,
    req: &Request<'_>,
    namespace: &str,
    pods: Option<&[String]>,
    selector: Option<&str>,
    specs: &[MetricSpec],
) -> (Fetched<ResourceMetricsList>, MetricReading) {
    let mut reading = MetricReading {
        type_: "Resource".into(),
        name: String::new(),
        source: "none".into(),
        query: None,
        samples: Vec::new(),
        missing: Vec::new(),
        dropped: Vec::new(),
        error: None,
        notes: Vec::new(),
        engine_reports_empty: false,
    };
    let r = &config.resources;
    match r.source {
        ResourceSource::Local => {
            let e = "resources.source is local: resource metrics come from the local runtime, not from podscale metrics".to_owned();
            reading.error = Some(e.clone());
            (Fetched::Error { error: e }, reading)
        }
        ResourceSource::MetricsApi => {
            reading.source = "metrics.k8s.io".into();
            let Some(kube) = &sources.kube else {
                let e = "the resource metrics API (metrics.k8s.io) needs a Kubernetes connection: add a `kubernetes:` section, or use resources.source: prometheus".to_owned();
                reading.error = Some(e.clone());
                return (Fetched::Error { error: e }, reading);
            };
            match kube.pod_metrics(namespace, selector).await {
                Err(e) => {
                    let e = e.to_string();
                    reading.error = Some(e.clone());
                    (Fetched::Error { error: e }, reading)
                }
                Ok(list) => {
                    for p in &list.pods {
                        for c in &p.containers {
                            for (resource, q) in &c.usage {
                                reading.samples.push(SampleReading {
                                    pod: Some(p.name.clone()),
                                    container: Some(c.name.clone()),
                                    labels: [("resource".to_owned(), resource.clone())].into(),
                                    value: q.as_approximate_f64(),
                                    quantity: *q,
                                    timestamp: p.timestamp.unwrap_or(req.now),
                                    truncated_to_zero: false,
                                });
                            }
                        }
                    }
                    if let Some(pods) = pods {
                        reading.missing = pods
                            .iter()
                            .filter(|n| !list.pods.iter().any(|p| &p.name == *n))
                            .cloned()
                            .collect();
                    }
                    // An empty list goes to the engine as it came, as upstream.
                    (Fetched::Data(list), reading)
                }
            }
        }
        ResourceSource::Prometheus => {
            reading.source = "prometheus".into();
            let window = r.window.unwrap_or(std::time::Duration::from_secs(60));
            let wanted: BTreeSet<&str> = specs
                .iter()
                .filter_map(|s| {
                    s.resource
                        .as_ref()
                        .map(|r| r.name.as_str())
                        .or_else(|| s.container_resource.as_ref().map(|c| c.name.as_str()))
                })
                .collect();
            let ctx = Context {
                namespace,
                pods,
                window: Some(window),
                ..Context::default()
            };
            let Some(client) = &sources.prometheus else {
                let e = "no Prometheus is configured".to_owned();
                reading.error = Some(e.clone());
                return (Fetched::Error { error: e }, reading);
            };
            let mut per_pod: BTreeMap<String, BTreeMap<String, BTreeMap<String, Quantity>>> =
                BTreeMap::new();
            let mut stamps: BTreeMap<String, Timestamp> = BTreeMap::new();
            let mut queries = Vec::new();
            for resource in wanted {
                let template = match resource {
                    "cpu" => r.cpu_query.as_deref().unwrap_or(config::DEFAULT_CPU_QUERY),
                    "memory" => r
                        .memory_query
                        .as_deref()
                        .unwrap_or(config::DEFAULT_MEMORY_QUERY),
                    other => {
                        reading.notes.push(format!(
                            "resource {other:?} has no Prometheus query: no data"
                        ));
                        continue;
                    }
                };
                let query = match template::render(template, &ctx) {
                    Ok(q) => q,
                    Err(e) => {
                        let e = format!("cannot fill in the {resource} query: {e}");
                        reading.error = Some(e.clone());
                        return (Fetched::Error { error: e }, reading);
                    }
                };
                queries.push(query.clone());
                let response = match client.query(&query, None).await {
                    Ok(r) => r,
                    Err(e) => {
                        let e = e.to_string();
                        reading.error = Some(e.clone());
                        reading.query = Some(queries.join("\n"));
                        return (Fetched::Error { error: e }, reading);
                    }
                };
                for s in response.result.into_samples() {
                    let (Some(pod), Some(container)) =
                        (s.labels.get("pod"), s.labels.get("container"))
                    else {
                        reading.dropped.push(Dropped {
                            what: format_labels(&s.labels),
                            reason: "no pod and container labels".into(),
                        });
                        continue;
                    };
                    if !s.value.is_finite() {
                        reading.dropped.push(Dropped {
                            what: format!("{pod}/{container}"),
                            reason: format!(
                                "{resource} {}: no data",
                                crate::exposition::format_value(s.value)
                            ),
                        });
                        continue;
                    }
                    #[allow(clippy::cast_possible_truncation)] // saturating by design
                    let q = if resource == "cpu" {
                        // Cores, held in nanocores as metrics-server reports them.
                        Quantity::new_scaled((s.value * 1e9) as i64, -9)
                    } else {
                        Quantity::new(s.value as i64, QuantityFormat::BinarySI)
                    };
                    reading.samples.push(SampleReading {
                        pod: Some(pod.clone()),
                        container: Some(container.clone()),
                        labels: [("resource".to_owned(), resource.to_owned())].into(),
                        value: s.value,
                        quantity: q,
                        timestamp: s.timestamp,
                        truncated_to_zero: false,
                    });
                    stamps.insert(pod.clone(), s.timestamp);
                    per_pod
                        .entry(pod.clone())
                        .or_default()
                        .entry(container.clone())
                        .or_default()
                        .insert(resource.to_owned(), q);
                }
            }
            reading.query = Some(queries.join("\n"));
            if let Some(pods) = pods {
                reading.missing = pods
                    .iter()
                    .filter(|p| !per_pod.contains_key(*p))
                    .cloned()
                    .collect();
            }
            let window = podscale_core::duration::GoDuration(
                i64::try_from(window.as_nanos()).unwrap_or(i64::MAX),
            );
            let list = ResourceMetricsList {
                pods: per_pod
                    .into_iter()
                    .map(|(pod, containers)| PodMetrics {
                        timestamp: stamps.get(&pod).copied().or(Some(req.now)),
                        name: pod,
                        window: Some(window),
                        containers: containers
                            .into_iter()
                            .map(|(name, usage)| ContainerMetrics { name, usage })
                            .collect(),
                    })
                    .collect(),
            };
            (Fetched::Data(list), reading)
        }
    }
}

/// The metrics APIs' answers, from the readings (see the module docs).
fn observed(
    specs: &[MetricSpec],
    readings: &[MetricReading],
    resource: Option<Fetched<ResourceMetricsList>>,
) -> ObservedMetrics {
    let mut pods: Vec<PodsMetricValues> = Vec::new();
    let mut objects: Vec<ObjectMetricValue> = Vec::new();
    let mut externals: Vec<ExternalMetricValues> = Vec::new();
    let mut errors: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (spec, r) in specs.iter().zip(readings) {
        let api = match r.type_.as_str() {
            "Pods" => "pods",
            "Object" => "object",
            "External" => "external",
            _ => continue,
        };
        *counts.entry(api).or_default() += 1;
        if let Some(e) = r.error.as_ref().filter(|_| !r.engine_reports_empty) {
            errors
                .entry(api)
                .or_default()
                .push((r.name.clone(), e.clone()));
        }
        // This metric's own failure travels with its entry, so the engine reports the
        // real message even when other metrics of the same API answered.
        let error = r.error.clone().filter(|_| !r.engine_reports_empty);
        match api {
            "pods" => pods.push(PodsMetricValues {
                metric_name: r.name.clone(),
                error,
                items: r
                    .samples
                    .iter()
                    .filter_map(|s| {
                        Some(PodMetricValue {
                            pod_name: s.pod.clone()?,
                            value: s.quantity,
                            timestamp: Some(s.timestamp),
                            window_seconds: None,
                        })
                    })
                    .collect(),
            }),
            "object" => {
                let target: CrossVersionObjectReference = spec
                    .object
                    .as_ref()
                    .map(|o| o.described_object.clone())
                    .unwrap_or_default();
                let described_object = DescribedObject {
                    api_version: target.api_version.clone(),
                    kind: target.kind.clone(),
                    name: target.name.clone(),
                };
                if error.is_some() {
                    objects.push(ObjectMetricValue {
                        described_object,
                        metric_name: r.name.clone(),
                        value: Default::default(),
                        timestamp: None,
                        error,
                    });
                } else {
                    objects.extend(r.samples.first().map(|s| ObjectMetricValue {
                        described_object,
                        metric_name: r.name.clone(),
                        value: s.quantity,
                        timestamp: Some(s.timestamp),
                        error: None,
                    }));
                }
            }
            _ => externals.push(ExternalMetricValues {
                metric_name: r.name.clone(),
                error,
                selector: spec
                    .external
                    .as_ref()
                    .and_then(|e| e.metric.selector.clone()),
                items: r
                    .samples
                    .iter()
                    .map(|s| ExternalMetricValue {
                        value: s.quantity,
                        metric_labels: s.labels.clone(),
                        timestamp: Some(s.timestamp),
                    })
                    .collect(),
            }),
        }
    }
    fn answer<T>(
        api: &str,
        data: T,
        counts: &BTreeMap<&str, usize>,
        errors: &BTreeMap<&str, Vec<(String, String)>>,
    ) -> Option<Fetched<T>> {
        let n = *counts.get(api)?;
        match errors.get(api) {
            // One failed metric's message as it is; several, each named.
            Some(e) if e.len() == n && n == 1 => Some(Fetched::Error {
                error: e[0].1.clone(),
            }),
            Some(e) if e.len() == n => Some(Fetched::Error {
                error: e
                    .iter()
                    .map(|(name, e)| format!("{name}: {e}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
            _ => Some(Fetched::Data(data)),
        }
    }
    ObservedMetrics {
        resource,
        pods: answer("pods", pods, &counts, &errors),
        object: answer("object", objects, &counts, &errors),
        external: answer("external", externals, &counts, &errors),
    }
}

/// Presets, for `podscale metrics --help`-style listings.
pub fn preset_names() -> Vec<&'static str> {
    presets::PRESETS.iter().map(|p| p.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pods_flag_parses() {
        let p = PodInfo::parse_list("a=10.0.0.1:8000, b=10.0.0.2,c").expect("parses");
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].address.as_deref(), Some("10.0.0.1:8000"));
        assert_eq!(p[2].address, None);
        assert!(PodInfo::parse_list("=1.2.3.4").is_err());
        for (bad, why) in [
            ("", "empty list (expected name=ip:port,...)"),
            ("a,,b", "entry 2 is empty (expected name=ip:port,...)"),
            ("a,", "entry 2 is empty (expected name=ip:port,...)"),
            ("a=1.2.3.4,b,a=1.2.3.5", "pod \"a\" is given twice"),
            ("a=", "\"a=\": empty address (expected name=ip:port)"),
        ] {
            assert_eq!(PodInfo::parse_list(bad), Err(why.to_owned()), "{bad:?}");
        }
    }

    #[test]
    fn ports_are_recognised() {
        assert!(has_port("10.0.0.1:80"));
        assert!(!has_port("10.0.0.1"));
        assert!(has_port("[::1]:80"));
        assert!(!has_port("::1"));
    }

    #[test]
    fn values_become_truncated_milli_quantities() {
        assert_eq!(quantity(1.5).milli_value(), 1500);
        assert_eq!(quantity(0.0004).milli_value(), 0);
        assert_eq!(quantity(-2.0009).milli_value(), -2000);
        assert_eq!(quantity(1e300).milli_value(), i64::MAX);
    }
}
