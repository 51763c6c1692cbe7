//! `podscale.yaml`: where each metric an HPA names comes from.
//!
//! ```yaml
//! prometheus:
//!   url: http://127.0.0.1:9090
//!   timeout: 5s             # per attempt
//!   method: GET             # or POST (long queries)
//!   retries: 2              # after the first attempt, with jittered exponential backoff
//!   retryBackoff: 200ms
//!   maxResponseSize: 16MiB  # reading stops there; larger answers are errors
//!   maxSeries: 10000        # more series in one answer is an error
//!   podLabel: pod           # the result label that names a pod
//!   bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
//!   basicAuth: { username: podscale, passwordFile: /etc/podscale/password }
//!   tls: { caFile: /etc/podscale/ca.pem, insecureSkipVerify: false }
//! scrape:                   # defaults for direct scrapes
//!   timeout: 2s
//!   concurrency: 64
//! metrics:
//!   - name: inference_queue_depth          # the name used in the HPA's Pods metric
//!     type: pods
//!     query: sum by (pod) (vllm:num_requests_waiting{namespace="{{namespace}}", pod=~"{{pods}}"})
//!   - name: gpu_utilization_avg            # the name used in the HPA's External metric
//!     type: external
//!     preset: dcgm/gpu-utilization
//!     maxAge: 1m
//!   - name: tgi_queue                      # read straight from each pod, no Prometheus
//!     type: pods
//!     scrape: { port: 8080, path: /metrics, series: tgi_queue_size }
//! resources:
//!   source: metrics-api     # or prometheus, or local (not read by podscale metrics)
//! kubernetes:               # optional: Metrics Server, Prometheus Adapter, real pods
//!   kubeconfig: ~/.kube/config
//!   fallback: true          # metrics not listed above come from the metrics APIs
//!   maxResponseSize: 16MiB  # per API answer; reading stops there
//!   maxItems: 20000         # pods in the target's list, values in a metrics answer
//! deployments:              # what `podscale run --local` starts (see [`deployment`])
//!   - name: web             # an HPA's scaleTargetRef.name
//!     command: ./server --port {port} --replica {replica}
//!     ports: { base: 8100, count: 8 }
//!     readiness: { path: /health }
//!     resources: { requests: { cpu: 500m, memory: 256Mi } }
//!     front: { port: 8080 }
//! ```
//!
//! The file is read with [`podscale_manifest`], so a shape error is reported as
//! `file:line:col: field: message`, and [`validate`] checks the rest the same way.
//!
//! Semantics the engine relies on:
//! - an empty result, or one that is NaN, is **no data**: the metric fails, and a
//!   failing metric never lets the HPA scale down. `emptyAs: 0` opts a metric into
//!   reading an empty result as that value instead;
//! - `maxAge`: samples older than this are missing (a pod without a fresh sample is a
//!   missing pod, as the engine treats pods the metrics API has no sample for);
//! - `onError: fail` (the default) reports a source failure as the metrics API's
//!   error, so the HPA sets `ScalingActive=False` and keeps its replicas;
//!   `onError: emptyAs` uses the `emptyAs` value instead (which allows a scale-down on
//!   a broken source: opt in knowingly).
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use podscale_manifest::{Diagnostic, Document};
use serde::{Deserialize, Deserializer, Serialize};

use crate::presets;
use crate::template;

pub mod deployment;
pub use deployment::LocalDeployment;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub prometheus: Option<PrometheusConfig>,
    #[serde(default)]
    pub scrape: ScrapeDefaults,
    #[serde(default)]
    pub metrics: Vec<MetricConfig>,
    #[serde(default)]
    pub resources: ResourcesConfig,
    /// Read through the Kubernetes APIs too (Metrics Server, a Prometheus Adapter, the
    /// target's scale and pods).
    #[serde(default)]
    pub kubernetes: Option<KubernetesConfig>,
    /// The local deployments `podscale run --local` can start: an HPA's
    /// `scaleTargetRef.name` picks one. Other commands do not read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<LocalDeployment>,
    /// The file it was read from, for messages (set by [`Config::from_source`]).
    #[serde(skip)]
    pub file: String,
}

/// The Kubernetes connection.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesConfig {
    /// A kubeconfig file; default `$KUBECONFIG`, `~/.kube/config`, or in-cluster.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    #[serde(default)]
    pub context: Option<String>,
    /// Read the HPA's metrics that `metrics:` does not list from
    /// `custom.metrics.k8s.io` / `external.metrics.k8s.io`, as the HPA controller does.
    #[serde(default = "yes")]
    pub fallback: bool,
    /// List the target's pods (scale subresource selector) when `--pods` is not given.
    #[serde(default = "yes")]
    pub pods: bool,
    /// Per API call.
    #[serde(
        default = "default_prometheus_timeout",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub timeout: Duration,
    /// The largest answer read from the Kubernetes API (`16MiB`, or bytes): reading
    /// stops there with an error.
    #[serde(
        default = "default_max_response_size",
        deserialize_with = "byte_size",
        serialize_with = "ser_byte_size"
    )]
    pub max_response_size: u64,
    /// The most items one list may hold (the target's pods, a metrics answer's values).
    #[serde(default = "default_max_items")]
    pub max_items: usize,
}

fn default_max_items() -> usize {
    20_000
}

fn yes() -> bool {
    true
}

/// How to reach Prometheus.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.monitoring:9090` (a path prefix is kept).
    pub url: String,
    /// Per attempt, connection included.
    #[serde(
        default = "default_prometheus_timeout",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub timeout: Duration,
    #[serde(default)]
    pub method: HttpMethod,
    /// Further attempts after a failed one (connection errors, timeouts, 5xx, 429).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Base of the exponential backoff between attempts; each wait is jittered.
    #[serde(
        default = "default_backoff",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub retry_backoff: Duration,
    /// The label of a per-pod result that names the pod.
    #[serde(default = "default_pod_label")]
    pub pod_label: String,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// The largest answer read from Prometheus (`16MiB`, or bytes): reading stops
    /// there with an error, so a runaway result or error page cannot take the memory.
    #[serde(
        default = "default_max_response_size",
        deserialize_with = "byte_size",
        serialize_with = "ser_byte_size"
    )]
    pub max_response_size: u64,
    /// The most series one query may return; more is an error (a query that forgot
    /// to aggregate), not a reading.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
}

impl PrometheusConfig {
    /// A server at `url` with every other setting at its default.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            timeout: default_prometheus_timeout(),
            method: HttpMethod::default(),
            retries: default_retries(),
            retry_backoff: default_backoff(),
            pod_label: default_pod_label(),
            bearer_token_file: None,
            basic_auth: None,
            tls: None,
            max_response_size: default_max_response_size(),
            max_series: default_max_series(),
        }
    }
}

/// HTTP method of instant queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Post,
}

/// HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

/// TLS options for `https://` URLs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// Extra CA certificates (PEM) to trust, besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate: for tests only.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Defaults of direct scrapes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScrapeDefaults {
    /// Per pod; a pod that has not answered by then is missing.
    #[serde(
        default = "default_scrape_timeout",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub timeout: Duration,
    /// How many pods are scraped at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

impl Default for ScrapeDefaults {
    fn default() -> Self {
        Self {
            timeout: default_scrape_timeout(),
            concurrency: default_concurrency(),
        }
    }
}

/// Which HPA metric type a configured metric serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MetricKind {
    /// A `Pods` metric: one value per pod.
    Pods,
    /// An `Object` metric: one value describing an object.
    Object,
    /// An `External` metric: a list of values.
    External,
}

impl MetricKind {
    /// The HPA metric source type this kind serves.
    pub fn hpa_type(self) -> &'static str {
        match self {
            Self::Pods => "Pods",
            Self::Object => "Object",
            Self::External => "External",
        }
    }
}

/// What to do when the source of a metric fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OnError {
    /// Report the error: the HPA marks `ScalingActive=False` and keeps its replicas.
    #[default]
    Fail,
    /// Use the metric's `emptyAs` value.
    EmptyAs,
}

/// How several series combine into one value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Aggregate {
    #[default]
    Sum,
    Avg,
    Max,
    Min,
}

impl Aggregate {
    /// The PromQL aggregation operator.
    pub fn promql(self) -> &'static str {
        match self {
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Max => "max",
            Self::Min => "min",
        }
    }

    /// Combines finite values (NaN ones are skipped by the caller).
    pub fn apply(self, values: &[f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        Some(match self {
            Self::Sum => values.iter().sum(),
            #[allow(clippy::cast_precision_loss)] // a count of series
            Self::Avg => values.iter().sum::<f64>() / values.len() as f64,
            Self::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Self::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        })
    }
}

/// One metric an HPA may name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricConfig {
    /// The metric name the HPA uses (`spec.metrics[].pods.metric.name`, …).
    pub name: String,
    #[serde(rename = "type")]
    pub kind: MetricKind,
    /// PromQL, with placeholders (see [`crate::template`]).
    #[serde(default)]
    pub query: Option<String>,
    /// A built-in preset (see [`crate::presets`]) instead of `query`, or supplying the
    /// series of a `scrape`.
    #[serde(default)]
    pub preset: Option<String>,
    /// Read from each pod's own endpoint instead of Prometheus.
    #[serde(default)]
    pub scrape: Option<ScrapeConfig>,
    /// Overrides `prometheus.podLabel` for this metric.
    #[serde(default)]
    pub pod_label: Option<String>,
    /// Samples older than this are missing.
    #[serde(
        default,
        deserialize_with = "opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_age: Option<Duration>,
    /// The value of an empty (or all-NaN) result; without it, an empty result is no data.
    #[serde(default)]
    pub empty_as: Option<f64>,
    #[serde(default)]
    pub on_error: OnError,
}

/// A direct scrape of each pod.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScrapeConfig {
    /// The pod's port, unless the pod's address names one.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default)]
    pub scheme: Scheme,
    /// The series to read; a preset's series (and aliases) when absent.
    #[serde(default)]
    pub series: Option<String>,
    /// Only series with these labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How a pod's matching series combine (default: the preset's, else sum).
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
    /// External metrics only: how the pods' values combine into one value. Absent, the
    /// External answer lists one value per pod (labelled `pod`), which an
    /// `AverageValue` target averages over the replicas, as the HPA does.
    #[serde(default)]
    pub across: Option<Aggregate>,
    /// Overrides `scrape.timeout`.
    #[serde(
        default,
        deserialize_with = "opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
}

/// URL scheme of a direct scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

/// Where CPU and memory (Resource metrics) come from.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcesConfig {
    #[serde(default)]
    pub source: ResourceSource,
    /// Prometheus source: per-pod, per-container CPU cores.
    #[serde(default)]
    pub cpu_query: Option<String>,
    /// Prometheus source: per-pod, per-container memory bytes.
    #[serde(default)]
    pub memory_query: Option<String>,
    /// The rate window of the CPU query (`{{window}}`), reported as the sample window.
    #[serde(
        default,
        deserialize_with = "opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Duration>,
}

/// The source of Resource metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceSource {
    /// `metrics.k8s.io` (Metrics Server).
    #[default]
    MetricsApi,
    /// cAdvisor series in Prometheus.
    Prometheus,
    /// Supplied by the local runtime; `podscale metrics` reads none.
    Local,
}

/// The default CPU query of `resources.source: prometheus` (cores per container).
pub const DEFAULT_CPU_QUERY: &str = r#"sum by (pod, container) (rate(container_cpu_usage_seconds_total{namespace="{{namespace}}", pod=~"{{pods}}", container!="", container!="POD"}[{{window}}]))"#;
/// The default memory query of `resources.source: prometheus` (bytes per container).
pub const DEFAULT_MEMORY_QUERY: &str = r#"sum by (pod, container) (container_memory_working_set_bytes{namespace="{{namespace}}", pod=~"{{pods}}", container!="", container!="POD"})"#;

/// Default of `prometheus.maxResponseSize`: far above any sane instant-vector answer
/// (10,000 series with labels is about 2 MiB), far below what hurts.
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 16 * MIB;
/// Default of `prometheus.maxSeries`: more series than any HPA target has pods.
pub const DEFAULT_MAX_SERIES: usize = 10_000;
/// Largest config file read (a config is a few KiB).
pub const MAX_CONFIG_BYTES: u64 = 4 * MIB;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// The accepted range of each bounded setting.
mod limits {
    use super::{GIB, KIB};
    use std::time::Duration;
    /// A query slower than this is useless to an HPA that syncs every 15 s.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    pub const MAX_RETRIES: u32 = 10;
    /// Each wait is capped at 10 s (`http::Jitter`): a larger base means nothing.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
    pub const MIN_RESPONSE: u64 = KIB;
    pub const MAX_RESPONSE: u64 = GIB;
    pub const MAX_SERIES: usize = 1_000_000;
    pub const MAX_CONCURRENCY: usize = 10_000;
    pub const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);
    /// Local deployments in one file (each is a set of processes on this machine).
    pub const MAX_DEPLOYMENTS: usize = 100;
}

fn default_prometheus_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_scrape_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_retries() -> u32 {
    2
}
fn default_backoff() -> Duration {
    Duration::from_millis(200)
}
fn default_concurrency() -> usize {
    64
}
fn default_max_response_size() -> u64 {
    DEFAULT_MAX_RESPONSE_SIZE
}
fn default_max_series() -> usize {
    DEFAULT_MAX_SERIES
}
fn default_pod_label() -> String {
    "pod".into()
}
fn default_path() -> String {
    "/metrics".into()
}

/// Parses a Go duration string (`5s`, `1m30s`, `250ms`) that must be positive.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = podscale_core::duration::GoDuration::parse(s)?;
    let nanos = u64::try_from(d.as_nanos()).map_err(|_| format!("duration {s:?} is negative"))?;
    if nanos == 0 {
        return Err(format!("duration {s:?} must be greater than 0"));
    }
    Ok(Duration::from_nanos(nanos))
}

/// A duration written the way [`parse_duration`] reads it (`1.5s`, `30s`, `250ms`).
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?
        .map(|s| parse_duration(&s).map_err(serde::de::Error::custom))
        .transpose()
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

#[allow(clippy::ref_option)] // serde's signature
fn ser_opt_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

/// Parses a size: bytes (`1048576`), or a number with a unit: `B`, `KiB`/`KB`,
/// `MiB`/`MB`, `GiB`/`GB`. As Prometheus's `body_size_limit` (alecthomas/units
/// `Base2Bytes`), `KB`, `MB` and `GB` are powers of 1024.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("size {s:?}: expected a number of bytes or e.g. 16MiB"))?;
    let unit_size = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "KB" | "K" => KIB,
        "MiB" | "MB" | "M" => MIB,
        "GiB" | "GB" | "G" => GIB,
        other => {
            return Err(format!(
                "size {s:?}: unknown unit {other:?} (B, KiB, MiB, GiB)"
            ));
        }
    };
    n.checked_mul(unit_size)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

/// A size written the way [`parse_byte_size`] reads it (`16MiB`, `1500B`).
pub fn format_byte_size(n: u64) -> String {
    for (unit, size) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{}{unit}", n / size);
        }
    }
    format!("{n}B")
}

fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a size such as 16MiB, or a number of bytes")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("size {v} is negative")))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
            parse_byte_size(v).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn ser_byte_size<S: serde::Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_byte_size(*n))
}

/// Why a config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable, not YAML/JSON, or not the config's shape: the reader's error,
    /// unchanged, with its cause as its source (`cannot read podscale.yaml` → `No such
    /// file or directory`), so a report prints each cause once.
    #[error(transparent)]
    Manifest(podscale_manifest::ManifestError),
    #[error("{file}: no document found")]
    Empty { file: String },
    #[error(
        "{file}: larger than {} (a config is a few KiB)",
        format_byte_size(MAX_CONFIG_BYTES)
    )]
    TooLarge { file: String },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

impl From<podscale_manifest::ManifestError> for ConfigError {
    fn from(e: podscale_manifest::ManifestError) -> Self {
        Self::Manifest(e)
    }
}

/// How messages name standard input (`--config -`).
pub const STDIN_NAME: &str = "<stdin>";

impl Config {
    /// Reads and validates a config file; `-` reads standard input. At most
    /// [`MAX_CONFIG_BYTES`] are read.
    ///
    /// # Errors
    /// The file cannot be read or parsed, is too large, does not have the config's
    /// shape, or fails [`validate`]; every message names the file (`<stdin>` for `-`)
    /// and, past reading, carries `file:line:col`.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        use std::io::Read as _;
        let (name, reader): (&str, Box<dyn std::io::Read>) = if path == "-" {
            (STDIN_NAME, Box::new(std::io::stdin().lock()))
        } else {
            let f = std::fs::File::open(path).map_err(|source| {
                podscale_manifest::ManifestError::Read {
                    file: path.to_owned(),
                    source,
                }
            })?;
            (path, Box::new(f))
        };
        let mut source = String::new();
        reader
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut source)
            .map_err(|source| podscale_manifest::ManifestError::Read {
                file: name.to_owned(),
                source,
            })?;
        if source.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                file: name.to_owned(),
            });
        }
        Self::from_source(&source, name)
    }

    /// Parses and validates config text; `file` names it in messages.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn from_source(source: &str, file: &str) -> Result<Self, ConfigError> {
        let docs = podscale_manifest::parse_documents(source, file)?;
        let Some(doc) = docs.first() else {
            return Err(ConfigError::Empty {
                file: file.to_owned(),
            });
        };
        let mut config: Config = podscale_manifest::deserialize(doc, file)?;
        let problems = validate(&config, doc, file);
        if problems.is_empty() {
            config.file = file.to_owned();
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The name of the file this config was read from (`podscale.yaml`, `<stdin>`),
    /// for messages.
    pub fn file_name(&self) -> &str {
        if self.file.is_empty() {
            "the config"
        } else {
            &self.file
        }
    }

    /// The local deployment called `name` (an HPA's `scaleTargetRef.name`).
    pub fn deployment(&self, name: &str) -> Option<&LocalDeployment> {
        self.deployments.iter().find(|d| d.name == name)
    }

    /// The configured metric an HPA metric of `kind` called `name` reads.
    pub fn metric(&self, kind: MetricKind, name: &str) -> Option<&MetricConfig> {
        self.metrics
            .iter()
            .find(|m| m.kind == kind && m.name == name)
    }
}

/// Where a metric's values come from, once validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Prometheus,
    Scrape,
}

impl MetricConfig {
    /// Where this metric is read from.
    pub fn source(&self) -> SourceKind {
        if self.scrape.is_some() {
            SourceKind::Scrape
        } else {
            SourceKind::Prometheus
        }
    }

    /// The preset this metric uses, if any (and known).
    pub fn preset(&self) -> Option<&'static presets::Preset> {
        self.preset.as_deref().and_then(presets::find)
    }

    /// The query template this metric runs on Prometheus.
    pub fn query_template(&self, default_pod_label: &str) -> Option<String> {
        if let Some(q) = &self.query {
            return Some(q.clone());
        }
        let pod_label = self.pod_label.as_deref().unwrap_or(default_pod_label);
        self.preset()
            .map(|p| p.query(self.kind, pod_label, self.max_age.is_some()))
    }
}

/// Checks what the types cannot: one source per metric, known presets and
/// placeholders, unique names, consistent auth options. Every finding is positioned.
pub fn validate(config: &Config, doc: &Document, file: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut report = |path: &str, message: String| {
        let pos = doc.positions.locate(path);
        out.push(Diagnostic {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            field: path.to_owned(),
            message,
        });
    };
    // A value over its range, shown as written (`100000h`, not `360000000s`).
    let too_large = |path: &str, fallback: String, max: String| {
        let written = written(doc, path).unwrap_or(fallback);
        format!("Invalid value: {written}: must be at most {max}")
    };
    let mut durations: Vec<(String, Duration, Duration)> = Vec::new();
    if let Some(p) = &config.prometheus {
        if let Err(msg) = reqwest_free_url_check(&p.url) {
            report(
                "prometheus.url",
                // Redacted: the URL may carry a password or a token.
                format!("Invalid value: {:?}: {msg}", redact_url(&p.url)),
            );
        }
        if url_has_userinfo(&p.url) && (p.basic_auth.is_some() || p.bearer_token_file.is_some()) {
            report(
                "prometheus.url",
                "Forbidden: credentials in the URL and basicAuth or bearerTokenFile: set one"
                    .into(),
            );
        }
        durations.push(("prometheus.timeout".into(), p.timeout, limits::MAX_TIMEOUT));
        durations.push((
            "prometheus.retryBackoff".into(),
            p.retry_backoff,
            limits::MAX_BACKOFF,
        ));
        if p.retries > limits::MAX_RETRIES {
            report(
                "prometheus.retries",
                too_large(
                    "prometheus.retries",
                    p.retries.to_string(),
                    limits::MAX_RETRIES.to_string(),
                ),
            );
        }
        if !(limits::MIN_RESPONSE..=limits::MAX_RESPONSE).contains(&p.max_response_size) {
            let written = written(doc, "prometheus.maxResponseSize")
                .unwrap_or(p.max_response_size.to_string());
            report(
                "prometheus.maxResponseSize",
                format!(
                    "Invalid value: {written}: must be between {} and {}",
                    format_byte_size(limits::MIN_RESPONSE),
                    format_byte_size(limits::MAX_RESPONSE)
                ),
            );
        }
        if !(1..=limits::MAX_SERIES).contains(&p.max_series) {
            report(
                "prometheus.maxSeries",
                format!(
                    "Invalid value: {}: must be between 1 and {}",
                    p.max_series,
                    limits::MAX_SERIES
                ),
            );
        }
        if !crate::exposition::is_legacy_label_name(&p.pod_label) {
            report(
                "prometheus.podLabel",
                format!(
                    "Invalid value: {:?}: not a Prometheus label name",
                    p.pod_label
                ),
            );
        }
        if let Some(auth) = &p.basic_auth {
            match (&auth.password, &auth.password_file) {
                (Some(_), Some(_)) => report(
                    "prometheus.basicAuth",
                    "Forbidden: set password or passwordFile, not both".into(),
                ),
                (None, None) => report(
                    "prometheus.basicAuth",
                    "Required value: password or passwordFile".into(),
                ),
                _ => {}
            }
            if p.bearer_token_file.is_some() {
                report(
                    "prometheus.bearerTokenFile",
                    "Forbidden: set bearerTokenFile or basicAuth, not both".into(),
                );
            }
        }
    }
    if config.scrape.concurrency == 0 {
        report(
            "scrape.concurrency",
            "Invalid value: 0: must be greater than 0".into(),
        );
    }
    if config.scrape.concurrency > limits::MAX_CONCURRENCY {
        report(
            "scrape.concurrency",
            too_large(
                "scrape.concurrency",
                config.scrape.concurrency.to_string(),
                limits::MAX_CONCURRENCY.to_string(),
            ),
        );
    }
    durations.push((
        "scrape.timeout".into(),
        config.scrape.timeout,
        limits::MAX_TIMEOUT,
    ));
    if let Some(k) = &config.kubernetes {
        durations.push(("kubernetes.timeout".into(), k.timeout, limits::MAX_TIMEOUT));
        if !(limits::MIN_RESPONSE..=limits::MAX_RESPONSE).contains(&k.max_response_size) {
            let written = written(doc, "kubernetes.maxResponseSize")
                .unwrap_or(k.max_response_size.to_string());
            report(
                "kubernetes.maxResponseSize",
                format!(
                    "Invalid value: {written}: must be between {} and {}",
                    format_byte_size(limits::MIN_RESPONSE),
                    format_byte_size(limits::MAX_RESPONSE)
                ),
            );
        }
        if !(1..=limits::MAX_SERIES).contains(&k.max_items) {
            report(
                "kubernetes.maxItems",
                format!(
                    "Invalid value: {}: must be between 1 and {}",
                    k.max_items,
                    limits::MAX_SERIES
                ),
            );
        }
    }
    if let Some(w) = config.resources.window {
        durations.push(("resources.window".into(), w, limits::MAX_WINDOW));
    }
    let mut seen: BTreeSet<(MetricKind, &str)> = BTreeSet::new();
    for (i, m) in config.metrics.iter().enumerate() {
        let at = |field: &str| format!("metrics[{i}].{field}");
        if m.name.is_empty() {
            report(&at("name"), "Required value".into());
        }
        if !seen.insert((m.kind, m.name.as_str())) {
            report(
                &at("name"),
                format!(
                    "Duplicate value: {:?}: another {} metric has this name",
                    m.name,
                    m.kind.hpa_type()
                ),
            );
        }
        if let Some(name) = &m.preset
            && presets::find(name).is_none()
        {
            let known: Vec<String> = presets::PRESETS
                .iter()
                .map(|p| format!("{:?}", p.name))
                .collect();
            report(
                &at("preset"),
                format!(
                    "Unsupported value: {name:?}: supported values: {}",
                    known.join(", ")
                ),
            );
        }
        match (&m.query, &m.preset, &m.scrape) {
            (Some(_), Some(_), _) => report(
                &at("preset"),
                "Forbidden: set query or preset, not both".into(),
            ),
            (Some(_), _, Some(_)) => report(
                &at("scrape"),
                "Forbidden: a metric is read by query (Prometheus) or by scrape, not both".into(),
            ),
            (None, None, None) => report(
                &format!("metrics[{i}]"),
                "Required value: one of query, preset or scrape".into(),
            ),
            _ => {}
        }
        if let Some(q) = &m.query {
            if let Err(e) = template::check(q) {
                report(&at("query"), format!("Invalid value: {e}"));
            }
            let uses_max_age = template::placeholders(q).contains(&"maxAge");
            if m.max_age.is_some() && !uses_max_age {
                report(
                    &at("maxAge"),
                    "Forbidden: a PromQL result carries the evaluation time, not its samples' \
                     times; with maxAge, read the series through {{maxAge}}, e.g. \
                     last_over_time(series[{{maxAge}}])"
                        .into(),
                );
            }
            if uses_max_age && m.max_age.is_none() {
                report(
                    &at("query"),
                    "Invalid value: the query uses {{maxAge}} but the metric sets no maxAge".into(),
                );
            }
        }
        if m.source() == SourceKind::Prometheus
            && (m.query.is_some() || m.preset.is_some())
            && config.prometheus.is_none()
        {
            report(
                &at("query"),
                "Required value: a query needs the top-level `prometheus:` section".into(),
            );
        }
        if let Some(s) = &m.scrape {
            if m.kind == MetricKind::Object {
                report(
                    &at("scrape"),
                    format!(
                        "Forbidden: only pods and external metrics can be scraped from pods, not {}",
                        m.kind.hpa_type()
                    ),
                );
            }
            if s.across.is_some() && m.kind != MetricKind::External {
                report(
                    &at("scrape.across"),
                    "Forbidden: `across` combines pods into one External value; a pods metric keeps one value per pod".into(),
                );
            }
            if s.series.is_none() && m.preset.is_none() {
                report(
                    &at("scrape.series"),
                    "Required value: the series to read (or a preset)".into(),
                );
            }
            if m.preset().is_some_and(|p| p.rate) {
                report(
                    &at("preset"),
                    "Forbidden: this preset reads a rate, which needs Prometheus".into(),
                );
            }
            if !s.path.starts_with('/') {
                report(
                    &at("scrape.path"),
                    format!("Invalid value: {:?}: must start with '/'", s.path),
                );
            }
        }
        if let Some(v) = m.empty_as
            && !v.is_finite()
        {
            report(
                &at("emptyAs"),
                format!("Invalid value: {v}: must be a finite number"),
            );
        }
        if m.on_error == OnError::EmptyAs && m.empty_as.is_none() {
            report(
                &at("onError"),
                "Invalid value: \"emptyAs\": the metric sets no emptyAs value".into(),
            );
        }
        if let Some(d) = m.max_age {
            durations.push((at("maxAge"), d, limits::MAX_WINDOW));
        }
        if let Some(d) = m.scrape.as_ref().and_then(|s| s.timeout) {
            durations.push((at("scrape.timeout"), d, limits::MAX_TIMEOUT));
        }
        if let Some(l) = &m.pod_label
            && !crate::exposition::is_legacy_label_name(l)
        {
            report(
                &at("podLabel"),
                format!("Invalid value: {l:?}: not a Prometheus label name"),
            );
        }
    }
    let r = &config.resources;
    if r.source == ResourceSource::Prometheus && config.prometheus.is_none() {
        report(
            "resources.source",
            "Invalid value: \"prometheus\": needs the top-level `prometheus:` section".into(),
        );
    }
    for (field, q) in [("cpuQuery", &r.cpu_query), ("memoryQuery", &r.memory_query)] {
        if let Some(q) = q {
            if r.source != ResourceSource::Prometheus {
                report(
                    &format!("resources.{field}"),
                    "Forbidden: only used with source: prometheus".into(),
                );
            }
            if let Err(e) = template::check(q) {
                report(&format!("resources.{field}"), format!("Invalid value: {e}"));
            }
        }
    }
    for (path, d, max) in durations {
        if d > max {
            report(
                &path,
                too_large(&path, format_duration(d), format_limit(max)),
            );
        }
    }
    if config.deployments.len() > limits::MAX_DEPLOYMENTS {
        report(
            "deployments",
            format!(
                "Too many: {}: must have at most {} entries",
                config.deployments.len(),
                limits::MAX_DEPLOYMENTS
            ),
        );
    }
    let mut names = BTreeSet::new();
    for (i, d) in config.deployments.iter().enumerate() {
        if !names.insert(d.name.as_str()) {
            report(
                &format!("deployments[{i}].name"),
                format!(
                    "Duplicate value: {:?}: another deployment has this name",
                    d.name
                ),
            );
        }
    }
    for (i, d) in config.deployments.iter().enumerate() {
        out.extend(d.validate_at(doc, file, &format!("deployments[{i}].")));
    }
    out.sort_by_key(|d| (d.line, d.column));
    out
}

/// A limit in the largest whole unit (`5m`, `24h`, `10s`).
fn format_limit(d: Duration) -> String {
    match d.as_secs() {
        s if d.subsec_nanos() == 0 && s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        s if d.subsec_nanos() == 0 && s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format_duration(d),
    }
}

/// The value at a field path (`metrics[0].maxAge`) as the file writes it.
fn written(doc: &Document, path: &str) -> Option<String> {
    let mut v = &doc.value;
    for part in path.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.strip_suffix(']')?.parse::<usize>().ok()),
            None => (part, None),
        };
        v = v.get(key)?;
        if let Some(i) = index {
            v = v.get(i)?;
        }
    }
    Some(match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Whether a URL carries credentials (`http://user:pw@host`).
fn url_has_userinfo(url: &str) -> bool {
    authority(url).contains('@')
}

/// Where a URL's authority starts and ends (after `scheme://`, up to the path, query
/// or fragment; past the last `@` before them, so a password with `/` or `@` in it
/// counts as userinfo, not path).
fn authority_bounds(url: &str) -> (usize, usize) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let before_query = rest.find(['?', '#']).unwrap_or(rest.len());
    let host_start = rest[..before_query].rfind('@').map_or(0, |i| i + 1);
    let end = rest[host_start..]
        .find(['/', '?', '#'])
        .map_or(rest.len(), |i| host_start + i);
    (start, start + end)
}

fn authority(url: &str) -> &str {
    let (a, b) = authority_bounds(url);
    &url[a..b]
}

/// Query parameters whose value is treated as a secret: any name containing one of
/// these (case-insensitive).
const SECRET_PARAMS: &[&str] = &[
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "sig",
    "credential",
    "session",
];

/// A URL safe to show: the password of its userinfo is replaced by `xxxxx`, as Go's
/// `url.URL.Redacted` (which Prometheus and kubectl use) does, and a userinfo without
/// a password (often a token) as a whole; the values of token-like query parameters
/// (`access_token`, `api_key`, `X-Amz-Signature`, …) are replaced too. Works on any
/// text, so an unparsable URL is redacted as well.
pub fn redact_url(url: &str) -> String {
    const MASK: &str = "xxxxx";
    let (a, b) = authority_bounds(url);
    let auth = &url[a..b];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..a]);
    match auth.rfind('@') {
        Some(at) => {
            let userinfo = &auth[..at];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                None => out.push_str(MASK),
            }
            out.push_str(&auth[at..]);
        }
        None => out.push_str(auth),
    }
    let rest = &url[b..];
    let (before, query_and_fragment) = match rest.find('?') {
        Some(q) => rest.split_at(q),
        None => (rest, ""),
    };
    out.push_str(before);
    if let Some(qf) = query_and_fragment.strip_prefix('?') {
        let (query, fragment) = match qf.find('#') {
            Some(h) => qf.split_at(h),
            None => (qf, ""),
        };
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_param(name) => format!("{name}={MASK}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
        out.push_str(fragment);
    }
    out
}

pub(crate) fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

/// A light check of a base URL, so a typo is reported with its position before any
/// request is made.
fn reqwest_free_url_check(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err("has no host");
    }
    if url.contains(['?', '#']) {
        return Err("must not have a query or fragment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(src: &str) -> String {
        match Config::from_source(src, "podscale.yaml") {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_issue_example_loads() {
        let src = r#"
prometheus:
  url: http://127.0.0.1:9090
  timeout: 5s
metrics:
  - name: inference_queue_depth
    type: pods
    query: sum by (pod) (vllm:num_requests_waiting{namespace="{{namespace}}", pod=~"{{pods}}"})
  - name: gpu_utilization_avg
    type: external
    query: avg(DCGM_FI_DEV_GPU_UTIL{ {{selector}} })
  - name: tgi_queue
    type: pods
    scrape: { port: 8080, path: /metrics, series: tgi_queue_size }
resources:
  source: metrics-api
"#;
        let c = Config::from_source(src, "podscale.yaml").expect("valid");
        assert_eq!(c.metrics.len(), 3);
        assert_eq!(
            c.prometheus.as_ref().map(|p| p.timeout),
            Some(Duration::from_secs(5))
        );
        assert_eq!(c.metrics[2].source(), SourceKind::Scrape);
        assert_eq!(
            c.metric(MetricKind::External, "gpu_utilization_avg")
                .map(|m| m.kind),
            Some(MetricKind::External)
        );
    }

    #[test]
    fn shape_errors_carry_positions() {
        assert_eq!(
            errors("prometheus:\n  url: http://x\n  timeout: 5 seconds\n"),
            "podscale.yaml:3:12: prometheus.timeout: time: unknown unit \" seconds\" in duration \"5 seconds\""
        );
        assert_eq!(
            errors("metrics:\n  - name: q\n    type: Pods\n    query: x\n"),
            "podscale.yaml:3:11: metrics[0].type: unknown variant `Pods`, expected one of `pods`, `object`, `external`"
        );
    }

    #[test]
    fn validation_errors_carry_positions() {
        let src = "\
prometheus:
  url: 127.0.0.1:9090
metrics:
  - name: q
    type: pods
    query: x{pod=~\"{{podz}}\"}
  - name: q
    type: pods
    preset: vllm/queue
  - name: e
    type: object
    scrape: {series: x}
    maxAge: 30s
    onError: emptyAs
  - name: obj
    type: object
";
        assert_eq!(
            errors(src),
            "podscale.yaml:2:8: prometheus.url: Invalid value: \"127.0.0.1:9090\": must start with http:// or https://\n\
             podscale.yaml:6:12: metrics[0].query: Invalid value: unknown placeholder {{podz}}; known: {{namespace}}, {{pods}}, {{selector}}, {{name}}, {{maxAge}}, {{window}}, {{objectKind}}, {{objectName}}\n\
             podscale.yaml:7:11: metrics[1].name: Duplicate value: \"q\": another Pods metric has this name\n\
             podscale.yaml:9:13: metrics[1].preset: Unsupported value: \"vllm/queue\": supported values: \"vllm/requests-waiting\", \"vllm/requests-running\", \"vllm/kv-cache-usage\", \"sglang/requests-waiting\", \"sglang/requests-running\", \"sglang/token-usage\", \"tgi/queue-size\", \"tgi/batch-size\", \"triton/pending-requests\", \"triton/request-rate\", \"dcgm/gpu-utilization\", \"dcgm/memory-copy-utilization\", \"dcgm/framebuffer-used\"\n\
             podscale.yaml:12:5: metrics[2].scrape: Forbidden: only pods and external metrics can be scraped from pods, not Object\n\
             podscale.yaml:14:14: metrics[2].onError: Invalid value: \"emptyAs\": the metric sets no emptyAs value\n\
             podscale.yaml:15:5: metrics[3]: Required value: one of query, preset or scrape"
        );
    }

    #[test]
    fn max_age_on_a_query_must_be_used_by_it() {
        let src = "prometheus: {url: http://p:9090}\nmetrics:\n  - name: q\n    type: pods\n    query: x\n    maxAge: 30s\n";
        assert!(errors(src).starts_with("podscale.yaml:6:13: metrics[0].maxAge: Forbidden"));
        let ok = "prometheus: {url: http://p:9090}\nmetrics:\n  - name: q\n    type: pods\n    query: last_over_time(x[{{maxAge}}])\n    maxAge: 30s\n";
        assert!(Config::from_source(ok, "f").is_ok());
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let c = Config::from_source(
            include_str!("../podscale.example.yaml"),
            "podscale.example.yaml",
        )
        .expect("valid");
        assert_eq!(c.metrics.len(), 6);
    }

    #[test]
    fn settings_out_of_range_are_positioned_errors() {
        let src = "\
prometheus:
  url: http://p:9090
  retries: 4294967295
  retryBackoff: 1000h
  timeout: 100000h
  maxResponseSize: 2GiB
  maxSeries: 0
scrape: {timeout: 1h, concurrency: 1000000}
metrics:
  - {name: q, type: pods, scrape: {series: x, timeout: 10m}}
";
        assert_eq!(
            errors(src),
            "podscale.yaml:3:12: prometheus.retries: Invalid value: 4294967295: must be at most 10\n\
             podscale.yaml:4:17: prometheus.retryBackoff: Invalid value: 1000h: must be at most 10s\n\
             podscale.yaml:5:12: prometheus.timeout: Invalid value: 100000h: must be at most 5m\n\
             podscale.yaml:6:20: prometheus.maxResponseSize: Invalid value: 2GiB: must be between 1KiB and 1GiB\n\
             podscale.yaml:7:14: prometheus.maxSeries: Invalid value: 0: must be between 1 and 1000000\n\
             podscale.yaml:8:19: scrape.timeout: Invalid value: 1h: must be at most 5m\n\
             podscale.yaml:8:36: scrape.concurrency: Invalid value: 1000000: must be at most 10000\n\
             podscale.yaml:10:56: metrics[0].scrape.timeout: Invalid value: 10m: must be at most 5m"
        );
        let ok = "prometheus:\n  url: http://p:9090\n  retries: 10\n  retryBackoff: 10s\n  timeout: 5m\n  maxResponseSize: 1048576\n  maxSeries: 1000000\n";
        let c = Config::from_source(ok, "f").expect("at the limits");
        let p = c.prometheus.expect("prometheus");
        assert_eq!(p.max_response_size, 1 << 20);
        let d = Config::from_source("prometheus: {url: http://p}\n", "f").expect("defaults");
        let p = d.prometheus.expect("prometheus");
        assert_eq!(p.max_response_size, 16 << 20);
        assert_eq!(p.max_series, 10_000);
        assert!(
            errors("prometheus: {url: http://p, maxResponseSize: 16 parsecs}\n").contains(
                "prometheus.maxResponseSize: size \"16 parsecs\": unknown unit \"parsecs\""
            )
        );
    }

    #[test]
    fn sizes_parse_in_bytes_and_binary_units() {
        assert_eq!(parse_byte_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_byte_size("16MB"), Ok(16 << 20));
        assert_eq!(parse_byte_size("1024"), Ok(1024));
        assert_eq!(parse_byte_size("2 GiB"), Ok(2 << 30));
        assert!(parse_byte_size("99999999999GiB").is_err());
        assert!(parse_byte_size("-1").is_err());
        for n in [1, 1024, 1536, 16 << 20, 1 << 30] {
            assert_eq!(parse_byte_size(&format_byte_size(n)), Ok(n));
        }
    }

    #[test]
    fn urls_are_redacted_as_go_does() {
        for (url, shown) in [
            (
                "http://admin:pw@host:9090/p",
                "http://admin:xxxxx@host:9090/p",
            ),
            ("https://TOKEN@host", "https://xxxxx@host"),
            ("http://a:p/w@ss@host/x", "http://a:xxxxx@host/x"),
            ("http://host:9090", "http://host:9090"),
            (
                "http://h/?query=up&access_token=T&X-Amz-Signature=S&a=1#f",
                "http://h/?query=up&access_token=xxxxx&X-Amz-Signature=xxxxx&a=1#f",
            ),
            ("admin:pw@host", "admin:xxxxx@host"),
            ("http://admin:pw@[::1", "http://admin:xxxxx@[::1"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let e = errors("prometheus: {url: 'http://admin:hunter2@h/?api_key=K1'}\n");
        assert_eq!(
            e,
            "podscale.yaml:1:19: prometheus.url: Invalid value: \"http://admin:xxxxx@h/?api_key=xxxxx\": must not have a query or fragment"
        );
        let e = errors(
            "prometheus: {url: 'http://u:hunter2@h', basicAuth: {username: u, password: x}}\n",
        );
        assert!(
            e.contains("prometheus.url: Forbidden: credentials in the URL and basicAuth"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn a_read_error_names_its_cause_once() {
        let e = Config::load("/nonexistent/podscale-config.yaml").expect_err("missing");
        // The message says what failed; the cause is its source, once: a report that
        // appends sources (`{:#}`) prints `cannot read FILE: No such file …`.
        let mut chain = vec![e.to_string()];
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            chain.push(s.to_string());
            source = s.source();
        }
        assert_eq!(chain[0], "cannot read /nonexistent/podscale-config.yaml");
        assert_eq!(chain.len(), 2, "{chain:?}");
        assert!(chain[1].starts_with("No such file"), "{chain:?}");
    }

    #[test]
    fn a_config_larger_than_the_limit_is_refused_unread() {
        let dir = std::env::temp_dir().join(format!("podscale-config-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("podscale.yaml");
        let f = std::fs::File::create(&path).expect("create");
        // Sparse: 1 GiB of zeros that take no disk.
        f.set_len(1 << 30).expect("set_len");
        let e = Config::load(&path.display().to_string()).expect_err("too large");
        assert_eq!(
            e.to_string(),
            format!(
                "{}: larger than 4MiB (a config is a few KiB)",
                path.display()
            )
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn durations_round_trip_through_their_text() {
        for s in ["5s", "250ms", "90s", "1500ms"] {
            let d = parse_duration(s).expect("parses");
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
