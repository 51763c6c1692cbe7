//! The Kubernetes metrics APIs through kube, so an existing Metrics Server or
//! Prometheus Adapter keeps working: `metrics.k8s.io` PodMetrics (per container),
//! `custom.metrics.k8s.io` (pods and object metrics) and `external.metrics.k8s.io` —
//! the same calls, with the same selectors, that kube-controller-manager's
//! `metrics/client.go` makes. Also the scale subresource and the pod list, so a
//! reading captures the target's real pods.
//!
//! **Served versions.** As upstream's `k8s.io/metrics/pkg/client/custom_metrics`
//! (`discovery.go`, `multi_client.go`), the version of each metrics API is
//! discovered from the API server (`GET /apis/<group>`) rather than assumed: the
//! group's preferred version when podscale knows it, else the first served version it
//! knows (`custom.metrics.k8s.io`: `v1beta2`, `v1beta1`; the others: `v1beta1`), and a
//! `v1beta1` `MetricValueList` is converted to `v1beta2` (`metricName`/`selector`
//! → `metric: {name, selector}`, `window` → `windowSeconds`). The choice is cached
//! and rediscovered after [`DEFAULT_DISCOVERY_REFRESH`] (upstream invalidates it every
//! HPA sync period, `PeriodicallyInvalidate`) and, unlike upstream, also right after a
//! 404, so an adapter upgraded from `v1beta1` to `v1beta2` is followed at once.
//!
//! **Bounds.** Every call is wrapped in a timeout; every response body is streamed
//! and refused past [`Limits::max_body_bytes`] (never buffered whole); lists are
//! refused past [`Limits::max_items`] while they are parsed; the pod list is read in
//! pages ([`Limits::page_size`], `limit`/`continue`, as kubectl's `--chunk-size`).
//! An API error keeps the API server's message, truncated when it is long.
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body::Body as _;
use jiff::Timestamp;
use podscale_core::api::{CrossVersionObjectReference, LabelSelector};
use podscale_core::duration::GoDuration;
use podscale_core::observed::{
    Container, ContainerMetrics, ExternalMetricValue, Pod, PodMetricValue, PodMetrics,
    ResourceMetricsList, ResourceRequirements,
};
use podscale_core::quantity::Quantity;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::SourceError;
use crate::http::Length;

/// How often the served versions are rediscovered: the HPA controller's default
/// `--horizontal-pod-autoscaler-sync-period`, the interval at which
/// kube-controller-manager calls `custom_metrics.PeriodicallyInvalidate`.
pub const DEFAULT_DISCOVERY_REFRESH: Duration = Duration::from_secs(15);

/// Bounds on what the Kubernetes API may send back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest response body read, in bytes; a larger one is an error (default
    /// 16 MiB: a 500-pod page or a 20 000-item metric list fits well within it).
    pub max_body_bytes: usize,
    /// The most items a list may hold (pods across pages, metric values); more is an
    /// error, detected while parsing (default 20 000).
    pub max_items: usize,
    /// Pods per page of the pod list (default 500, kubectl's `--chunk-size`).
    pub page_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 << 20,
            max_items: 20_000,
            page_size: 500,
        }
    }
}

/// How much of an error body an error message quotes (as for Prometheus).
const ERROR_EXCERPT_BYTES: usize = 512;
/// How much of an error body is kept to find the API server's `Status` in it (a
/// `Status` is a few hundred bytes; the rest is only counted).
const ERROR_BODY_KEPT: usize = 64 << 10;

/// One of the metrics APIs, and the versions of it podscale reads, most preferred
/// first (upstream's `MetricVersions` for the custom metrics API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsApi {
    pub group: &'static str,
    /// How upstream names it in its errors ("custom metrics API").
    pub title: &'static str,
    pub versions: &'static [&'static str],
}

/// `metrics.k8s.io` (Metrics Server), `v1beta1` as upstream's resource metrics client.
pub const RESOURCE_METRICS: MetricsApi = MetricsApi {
    group: "metrics.k8s.io",
    title: "resource metrics API",
    versions: &["v1beta1"],
};

/// `custom.metrics.k8s.io`: `v1beta2`, else `v1beta1` (upstream's `MetricVersions`).
pub const CUSTOM_METRICS: MetricsApi = MetricsApi {
    group: "custom.metrics.k8s.io",
    title: "custom metrics API",
    versions: &["v1beta2", "v1beta1"],
};

/// `external.metrics.k8s.io`, `v1beta1` only (upstream's external metrics client).
pub const EXTERNAL_METRICS: MetricsApi = MetricsApi {
    group: "external.metrics.k8s.io",
    title: "external metrics API",
    versions: &["v1beta1"],
};

/// A client for the metrics APIs of one cluster.
#[derive(Clone)]
pub struct KubeMetrics {
    client: kube::Client,
    /// Bounds each API call, body included: a hung aggregated API server (a common
    /// failure of metrics adapters) must not hang the reading.
    timeout: Duration,
    limits: Limits,
    discovery_refresh: Duration,
    /// The version chosen for each metrics API group, and when it was discovered;
    /// shared by clones (upstream's `apiVersionsFromDiscovery.prefVersion`). Held
    /// while discovering, as upstream holds its write lock, so concurrent readings
    /// discover once.
    discovered: Arc<tokio::sync::Mutex<HashMap<&'static str, (&'static str, Instant)>>>,
}

impl fmt::Debug for KubeMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeMetrics")
            .field("timeout", &self.timeout)
            .field("limits", &self.limits)
            .field("discovery_refresh", &self.discovery_refresh)
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
    /// Wraps a client (tests build one over a fake API server), with the default
    /// [`Limits`] and [`DEFAULT_DISCOVERY_REFRESH`].
    pub fn new(client: kube::Client, timeout: Duration) -> Self {
        Self {
            client,
            timeout,
            limits: Limits::default(),
            discovery_refresh: DEFAULT_DISCOVERY_REFRESH,
            discovered: Arc::default(),
        }
    }

    /// The same client with other bounds on responses.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The same client, rediscovering the metrics APIs' served versions after `every`
    /// (`Duration::ZERO`: before every call).
    #[must_use]
    pub fn with_discovery_refresh(mut self, every: Duration) -> Self {
        self.discovery_refresh = every;
        self
    }

    /// The bounds on responses.
    pub fn limits(&self) -> Limits {
        self.limits
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
        // kube retries 429/503/504 by default, up to 15 times with a backoff growing
        // to 1000 s: within the per-call timeout that turns an aggregated API that is
        // down (503, the usual state of a broken adapter) into "no answer within …"
        // and hides the server's message. client-go, which the HPA uses, retries only
        // when the server sends Retry-After; podscale reports the error at once.
        let mut config = config;
        config.default_retry = false;
        let client = kube::Client::try_from(config)
            .map_err(|e| SourceError::Config(format!("cannot build the Kubernetes client: {e}")))?;
        Ok(Self::new(client, timeout))
    }

    /// `GET path`: the body of a 2xx answer, at most `max_body_bytes` of it, all
    /// within the timeout; any other status is an error with the API server's message.
    async fn get(&self, path: &str) -> Result<Vec<u8>, SourceError> {
        let what = format!("GET {path}");
        match tokio::time::timeout(self.timeout, self.get_unbounded_in_time(path, &what)).await {
            Err(_) => Err(SourceError::Timeout {
                what,
                timeout: self.timeout,
            }),
            Ok(r) => r,
        }
    }

    async fn get_unbounded_in_time(&self, path: &str, what: &str) -> Result<Vec<u8>, SourceError> {
        let request = http::Request::get(path)
            .header(http::header::ACCEPT, "application/json")
            .body(kube::client::Body::empty())
            .map_err(|e| SourceError::Config(format!("{what}: {e}")))?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| SourceError::Connect {
                what: what.to_owned(),
                message: transport_error(&e),
            })?;
        let status = response.status();
        let declared = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let limit = self.limits.max_body_bytes;
        if status.is_success() {
            // Refused before reading a byte when the size is announced.
            if let Some(n) = declared.filter(|&n| n > limit as u64) {
                return Err(too_large(what, limit, Some(n)));
            }
            let (body, _, complete) = read_capped(response.into_body(), limit, limit, what).await?;
            if !complete {
                return Err(too_large(what, limit, None));
            }
            return Ok(body);
        }
        // An error: keep what can hold a `Status`, count the rest up to the limit
        // (a misbehaving proxy's endless error page must not be buffered either).
        let (body, seen, complete) =
            read_capped(response.into_body(), ERROR_BODY_KEPT, limit, what).await?;
        let size = match (complete, declared) {
            (true, _) if body.len() == seen => Length::Whole,
            (true, _) => Length::Exact(seen as u64),
            (false, Some(n)) => Length::Exact(n),
            (false, None) => Length::AtLeast(limit as u64),
        };
        Err(SourceError::Http {
            what: what.to_owned(),
            status: status.as_u16(),
            message: error_message(&body, size, status),
        })
    }

    /// The version of `api` to call: cached, or discovered from `GET /apis/<group>`
    /// as upstream's `apiVersionsFromDiscovery.PreferredVersion` chooses it.
    async fn served_version(&self, api: &MetricsApi) -> Result<&'static str, SourceError> {
        let mut discovered = self.discovered.lock().await;
        if let Some(&(version, at)) = discovered.get(api.group)
            && at.elapsed() < self.discovery_refresh
        {
            return Ok(version);
        }
        let version = self.discover(api).await?;
        discovered.insert(api.group, (version, Instant::now()));
        Ok(version)
    }

    async fn discover(&self, api: &MetricsApi) -> Result<&'static str, SourceError> {
        let path = format!("/apis/{}", api.group);
        let body = match self.get(&path).await {
            Err(SourceError::Http { status: 404, .. }) => {
                return Err(SourceError::Http {
                    what: format!("GET {path}"),
                    status: 404,
                    message: format!(
                        "no {} ({}) is registered with the API server: no APIService \
                         serves it, so no metrics adapter is installed for it{}",
                        api.title,
                        api.group,
                        if api.group == RESOURCE_METRICS.group {
                            " (Metrics Server)"
                        } else {
                            " (e.g. Prometheus Adapter, KEDA)"
                        }
                    ),
                });
            }
            other => other?,
        };
        let group: ApiGroup = decode(&path, &body)?;
        choose_version(api, &group).ok_or_else(|| SourceError::Decode {
            what: format!("GET {path}"),
            message: format!(
                "the {} ({}) serves {}, none of the versions podscale reads ({})",
                api.title,
                api.group,
                if group.versions.is_empty() {
                    "no version".to_owned()
                } else {
                    group
                        .versions
                        .iter()
                        .map(|v| v.version.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                api.versions.join(", ")
            ),
        })
    }

    async fn invalidate(&self, api: &MetricsApi) {
        self.discovered.lock().await.remove(api.group);
    }

    /// `GET /apis/<group>/<served version><rest>`: the path, the version and the body.
    /// A 404 invalidates the cached version; when rediscovery finds another version
    /// served (or none), that decides, else the 404 stands (the metric itself is
    /// unknown).
    async fn get_metrics(
        &self,
        api: &MetricsApi,
        rest: &str,
    ) -> Result<(String, &'static str, Vec<u8>), SourceError> {
        let version = self.served_version(api).await?;
        let path = format!("/apis/{}/{version}{rest}", api.group);
        match self.get(&path).await {
            Ok(body) => Ok((path, version, body)),
            Err(e @ SourceError::Http { status: 404, .. }) => {
                self.invalidate(api).await;
                let again = self.served_version(api).await?;
                if again == version {
                    return Err(e);
                }
                let path = format!("/apis/{}/{again}{rest}", api.group);
                let body = self.get(&path).await?;
                Ok((path, again, body))
            }
            Err(e) => Err(e),
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
        let rest = format!(
            "/namespaces/{}/pods{}",
            segment(namespace),
            query(&[("labelSelector", selector)])
        );
        let (path, _, body) = self.get_metrics(&RESOURCE_METRICS, &rest).await?;
        let list: List<PodMetricsItem> = self.decode_list(&path, &body)?;
        Ok(ResourceMetricsList {
            pods: list
                .items
                .unwrap_or_default()
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

    /// `custom.metrics.k8s.io` values of `metric` for the pods matching `selector`
    /// (`GetRawMetric`), in the served version, converted to `v1beta2`.
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
        let rest = format!(
            "/namespaces/{}/pods/*/{}{}",
            segment(namespace),
            segment(metric),
            query(&[
                ("labelSelector", selector),
                ("metricLabelSelector", metric_selector.as_deref()),
            ])
        );
        let (path, version, body) = self.get_metrics(&CUSTOM_METRICS, &rest).await?;
        let items = self
            .custom_values(&path, version, &body)?
            .unwrap_or_default();
        Ok(items
            .into_iter()
            .map(|i| PodMetricValue {
                pod_name: i.described_object.name,
                value: i.value,
                timestamp: i.timestamp,
                window_seconds: i.window_seconds,
            })
            .collect())
    }

    /// A custom metrics answer as `v1beta2` items (`None`: not a list).
    fn custom_values(
        &self,
        path: &str,
        version: &str,
        body: &[u8],
    ) -> Result<Option<Vec<MetricValue>>, SourceError> {
        Ok(if version == "v1beta1" {
            self.decode_list::<MetricValueV1beta1>(path, body)?
                .items
                .map(|items| items.into_iter().map(MetricValue::from).collect())
        } else {
            self.decode_list::<MetricValue>(path, body)?.items
        })
    }

    /// `custom.metrics.k8s.io` value of `metric` describing one object
    /// (`GetObjectMetric`): the value and its timestamp.
    ///
    /// # Errors
    /// The API failed, or did not answer exactly one value.
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
        let rest = if object.kind == "Namespace" {
            format!(
                "/namespaces/{}/metrics/{}{q}",
                segment(&object.name),
                segment(metric)
            )
        } else {
            format!(
                "/namespaces/{}/{}/{}/{}{q}",
                segment(namespace),
                group_resource(object),
                segment(&object.name),
                segment(metric)
            )
        };
        let (path, version, body) = self.get_metrics(&CUSTOM_METRICS, &rest).await?;
        // The API answers a MetricValueList (a single MetricValue from old adapters).
        let items = match self.custom_values(&path, version, &body)? {
            Some(items) => items,
            None if version == "v1beta1" => {
                vec![decode::<MetricValueV1beta1>(&path, &body)?.into()]
            }
            None => vec![decode::<MetricValue>(&path, &body)?],
        };
        // Upstream's `GetForObject` insists on exactly one value.
        match <[MetricValue; 1]>::try_from(items) {
            Ok([item]) => Ok((item.value, item.timestamp)),
            Err(items) => Err(SourceError::Decode {
                what: format!("GET {path}"),
                message: format!(
                    "the custom metrics API server returned {} results when we asked for exactly one",
                    items.len()
                ),
            }),
        }
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
        let rest = format!(
            "/namespaces/{}/{}{}",
            segment(namespace),
            segment(metric),
            query(&[("labelSelector", selector.as_deref())])
        );
        let (path, _, body) = self.get_metrics(&EXTERNAL_METRICS, &rest).await?;
        let list: List<ExternalItem> = self.decode_list(&path, &body)?;
        Ok(list
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| ExternalMetricValue {
                value: i.value,
                metric_labels: i.metric_labels.unwrap_or_default(),
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
        let v: Value = decode(&path, &self.get(&path).await?)?;
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

    /// The pods matching `selector`, as the HPA reads them, with their IPs: read in
    /// pages of [`Limits::page_size`], at most [`Limits::max_items`] in all.
    ///
    /// # Errors
    /// The API failed, or the list is longer than the limit.
    pub async fn pods(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<(Pod, Option<String>)>, SourceError> {
        let page = self.limits.page_size.max(1).to_string();
        let mut pods = Vec::new();
        let mut token: Option<String> = None;
        // Every page but the last holds at least one pod, or the server is looping.
        let max_pages = self.limits.max_items / self.limits.page_size.max(1) + 2;
        for _ in 0..max_pages {
            let path = format!(
                "/api/v1/namespaces/{}/pods{}",
                segment(namespace),
                query(&[
                    ("labelSelector", Some(selector)),
                    ("limit", Some(&page)),
                    ("continue", token.as_deref()),
                ])
            );
            let body = self.get(&path).await?;
            let room = self.limits.max_items - pods.len();
            let list: List<Value> = decode_list(&path, &body, room, self.limits.max_items)?;
            pods.extend(list.items.unwrap_or_default().iter().map(pod_from_json));
            match list.continue_token {
                Some(t) => token = Some(t),
                None => return Ok(pods),
            }
        }
        Err(SourceError::Decode {
            what: format!(
                "GET /api/v1/namespaces/{}/pods (labelSelector {selector})",
                segment(namespace)
            ),
            message: format!("the list did not end after {max_pages} pages of at most {page} pods"),
        })
    }

    fn decode_list<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &[u8],
    ) -> Result<List<T>, SourceError> {
        decode_list(path, body, self.limits.max_items, self.limits.max_items)
    }
}

/// Upstream's `chooseVersion`: the group's preferred version when it is one podscale
/// reads, else the first served version it reads, in the server's order.
fn choose_version(api: &MetricsApi, group: &ApiGroup) -> Option<&'static str> {
    let known = |gv: &GroupVersion| {
        api.versions.iter().copied().find(|v| {
            gv.group_version == format!("{}/{v}", api.group)
                || (gv.group_version.is_empty() && gv.version == *v)
        })
    };
    group
        .preferred_version
        .as_ref()
        .and_then(known)
        .or_else(|| group.versions.iter().find_map(known))
}

/// Reads `body` keeping at most `keep` bytes and reading at most `limit`: the bytes
/// kept, how many were read, and whether the body ended within `limit`. Stops reading (and drops the
/// connection) past `limit`, so an endless body costs `limit` bytes at most.
async fn read_capped(
    mut body: kube::client::Body,
    keep: usize,
    limit: usize,
    what: &str,
) -> Result<(Vec<u8>, usize, bool), SourceError> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| SourceError::Connect {
            what: what.to_owned(),
            message: format!("reading the answer: {}", transport_error(&e)),
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        seen = seen.saturating_add(data.len());
        let room = keep.saturating_sub(kept.len());
        kept.extend_from_slice(&data[..data.len().min(room)]);
        if seen > limit {
            return Ok((kept, seen, false));
        }
    }
    Ok((kept, seen, true))
}

/// A transport failure's causes, without kube's wrapper labels (`ServiceError: `,
/// `HyperError: `), which name kube's types, not the failure.
fn transport_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Service(inner) => crate::http::error_chain(inner.as_ref()),
        kube::Error::HyperError(inner) => crate::http::error_chain(inner),
        other => crate::http::error_chain(other),
    }
}

fn too_large(what: &str, limit: usize, declared: Option<u64>) -> SourceError {
    let limit = crate::config::format_byte_size(limit as u64);
    SourceError::Decode {
        what: what.to_owned(),
        message: match declared {
            Some(n) => format!(
                "the answer is {n} bytes, larger than {limit} \
                 (kubernetes.maxResponseSize): not read"
            ),
            None => format!(
                "the answer is larger than {limit} (kubernetes.maxResponseSize): \
                 reading stopped there"
            ),
        },
    }
}

/// The API server's `Status` message when the body is one, else the body's text;
/// either cut to [`ERROR_EXCERPT_BYTES`] with the full size noted, control
/// characters escaped (as Prometheus's error bodies are shown).
fn error_message(body: &[u8], size: Length, status: http::StatusCode) -> String {
    #[derive(Deserialize)]
    struct Status {
        #[serde(default)]
        message: String,
        #[serde(default)]
        reason: String,
    }
    let excerpt = |bytes: &[u8], size| {
        crate::http::Secrets::default().excerpt(bytes, ERROR_EXCERPT_BYTES, size)
    };
    if let Ok(s) = serde_json::from_slice::<Status>(body)
        && !(s.message.is_empty() && s.reason.is_empty())
    {
        let m = if s.message.is_empty() {
            s.reason
        } else {
            s.message
        };
        return excerpt(m.as_bytes(), Length::Whole);
    }
    if body.trim_ascii().is_empty() {
        return status.canonical_reason().unwrap_or("no message").to_owned();
    }
    excerpt(body, size)
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

fn decode<T: serde::de::DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, SourceError> {
    serde_json::from_slice(body).map_err(|e| SourceError::Decode {
        what: format!("GET {path}"),
        message: e.to_string(),
    })
}

/// A Kubernetes list: its `items` (`None` when the answer has none, e.g. a single
/// object) and `metadata.continue`, refusing more than `room` items while parsing
/// (`max` is the limit the error names).
fn decode_list<T: for<'de> Deserialize<'de>>(
    path: &str,
    body: &[u8],
    room: usize,
    max: usize,
) -> Result<List<T>, SourceError> {
    let exceeded = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = ListSeed {
        room,
        exceeded: &exceeded,
        item: PhantomData,
    }
    .deserialize(&mut de)
    .and_then(|list| de.end().map(|()| list));
    result.map_err(|e| SourceError::Decode {
        what: format!("GET {path}"),
        message: if exceeded.get() {
            format!("the list holds more than {max} items (kubernetes.maxItems)")
        } else {
            e.to_string()
        },
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

/// What podscale reads of a list.
struct List<T> {
    items: Option<Vec<T>>,
    continue_token: Option<String>,
}

struct ListSeed<'a, T> {
    room: usize,
    exceeded: &'a Cell<bool>,
    item: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ListSeed<'_, T> {
    type Value = List<T>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ListSeed<'_, T> {
    type Value = List<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes list object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        #[derive(Deserialize)]
        struct ListMeta {
            #[serde(default, rename = "continue")]
            continue_token: Option<String>,
        }
        let mut list = List {
            items: None,
            continue_token: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "items" => {
                    list.items = Some(map.next_value_seed(ItemsSeed {
                        room: self.room,
                        exceeded: self.exceeded,
                        item: PhantomData::<T>,
                    })?);
                }
                "metadata" => {
                    let meta: Option<ListMeta> = map.next_value()?;
                    list.continue_token = meta
                        .and_then(|m| m.continue_token)
                        .filter(|t| !t.is_empty());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(list)
    }
}

/// `items`, at most `room` of them; `null` (Go's nil slice) is empty.
struct ItemsSeed<'a, T> {
    room: usize,
    exceeded: &'a Cell<bool>,
    item: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for ItemsSeed<'_, T> {
    type Value = Vec<T>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for ItemsSeed<'_, T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of items")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.room).min(1024));
        while let Some(item) = seq.next_element()? {
            if items.len() == self.room {
                self.exceeded.set(true);
                return Err(de::Error::custom("too many items"));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// `GET /apis/<group>`: an `APIGroup`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiGroup {
    #[serde(default)]
    versions: Vec<GroupVersion>,
    #[serde(default)]
    preferred_version: Option<GroupVersion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupVersion {
    #[serde(default)]
    group_version: String,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
struct PodMetricsItem {
    metadata: Meta,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(default)]
    window: Option<GoDuration>,
    #[serde(default, deserialize_with = "null_as_default")]
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
    #[serde(default, deserialize_with = "null_as_default")]
    usage: BTreeMap<String, Quantity>,
}

/// A `custom.metrics.k8s.io/v1beta2` `MetricValue` (what podscale reads of it).
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

/// A `custom.metrics.k8s.io/v1beta1` `MetricValue`: `metricName` and `selector` at
/// the top level (`metric: {name, selector}` in `v1beta2`, which podscale does not
/// read) and the window as `window`, not `windowSeconds`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetricValueV1beta1 {
    #[serde(default)]
    described_object: DescribedRef,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    #[serde(default)]
    window: Option<i64>,
    value: Quantity,
}

/// Upstream's generated `Convert_v1beta1_MetricValue_To_custom_metrics_MetricValue`
/// (then to `v1beta2`), for the fields podscale reads.
impl From<MetricValueV1beta1> for MetricValue {
    fn from(v: MetricValueV1beta1) -> Self {
        Self {
            described_object: v.described_object,
            timestamp: v.timestamp,
            window_seconds: v.window,
            value: v.value,
        }
    }
}

#[derive(Deserialize, Default)]
struct DescribedRef {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExternalItem {
    #[serde(default)]
    metric_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    timestamp: Option<Timestamp>,
    value: Quantity,
}

/// Go encodes a nil slice or map as `null`.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: de::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use podscale_core::api::LabelSelectorRequirement;

    fn group(versions: &[&str], preferred: Option<&str>) -> ApiGroup {
        let gv = |v: &str| GroupVersion {
            group_version: format!("custom.metrics.k8s.io/{v}"),
            version: v.to_owned(),
        };
        ApiGroup {
            versions: versions.iter().map(|v| gv(v)).collect(),
            preferred_version: preferred.map(gv),
        }
    }

    #[test]
    fn versions_are_chosen_as_upstreams_choose_version() {
        let choose = |versions: &[&str], preferred| {
            choose_version(&CUSTOM_METRICS, &group(versions, preferred))
        };
        assert_eq!(
            choose(&["v1beta2", "v1beta1"], Some("v1beta2")),
            Some("v1beta2")
        );
        assert_eq!(
            choose(&["v1beta2", "v1beta1"], Some("v1beta1")),
            Some("v1beta1")
        );
        // An unknown preferred version: the first known one, in the server's order.
        assert_eq!(
            choose(&["v2alpha1", "v1beta1", "v1beta2"], Some("v2alpha1")),
            Some("v1beta1")
        );
        assert_eq!(choose(&["v1beta1"], None), Some("v1beta1"));
        assert_eq!(choose(&["v1alpha1"], Some("v1alpha1")), None);
        assert_eq!(choose(&[], None), None);
        // Another group's versions never match.
        assert_eq!(
            choose_version(&EXTERNAL_METRICS, &group(&["v1beta1"], None)),
            None
        );
    }

    #[test]
    fn error_messages_are_the_status_message_or_a_bounded_excerpt() {
        let ok = http::StatusCode::NOT_FOUND;
        let status = br#"{"kind":"Status","message":"the server could not find the requested resource","reason":"NotFound","code":404}"#;
        assert_eq!(
            error_message(status, Length::Exact(status.len() as u64), ok),
            "the server could not find the requested resource"
        );
        assert_eq!(
            error_message(b"404 page not found\n", Length::Whole, ok),
            "404 page not found"
        );
        assert_eq!(error_message(b"", Length::Exact(0), ok), "Not Found");
        let long = "é".repeat(400); // 800 bytes, 2 per character
        assert_eq!(
            error_message(long.as_bytes(), Length::Exact(800), ok),
            format!("{}… (800 bytes)", "é".repeat(256))
        );
        assert_eq!(
            error_message(b"a\x1b[31mred", Length::AtLeast(1 << 20), ok),
            "a\\u{1b}[31mred… (more than 1048576 bytes)"
        );
    }

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
