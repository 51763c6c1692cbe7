//! # podscale-metrics
//!
//! Reads the metrics an HPA names, from one small config (`podscale.yaml`), and
//! produces the engine's input: [`podscale_core::observed::ObservedMetrics`], the same
//! structure a scenario's `metrics` holds. No Metrics Server or Prometheus Adapter is
//! needed, though both keep working through the Kubernetes metrics APIs.
//!
//! ## Layout
//! - [`exposition`]: our own parser (and writer) of the Prometheus text format 0.0.4
//!   and OpenMetrics; zero-copy, fuzzed (`fuzz/`), benchmarked (`benches/`).
//! - [`config`]: `podscale.yaml`, validated with `file:line:col` positions;
//!   [`template`]: the `{{namespace}}`/`{{pods}}`/`{{selector}}`/`{{name}}`
//!   placeholders; [`presets`]: built-in queries for vLLM, SGLang, TGI, Triton, DCGM.
//! - [`prometheus`]: the Prometheus HTTP API client (instant queries, retries, auth).
//! - [`scrape`]: direct scrapes of pods' `/metrics`, bounded concurrency, per-pod
//!   timeout.
//! - [`collect`]: reads every metric of one HPA and maps the answers to the engine's
//!   input, applying the no-data rules (empty or NaN is no data, `maxAge`, `emptyAs`,
//!   `onError`); also builds a scenario for `podscale explain`.
//! - [`kubernetes`]: the Kubernetes metrics APIs (`metrics.k8s.io`,
//!   `custom.metrics.k8s.io`, `external.metrics.k8s.io`), the scale subresource and
//!   the pod list, through kube.
//! - [`http`]: the HTTP client, auth and backoff jitter the sources share.
//!
//! The sources (`prometheus`, `scrape`, `kubernetes`, `collect`, `http`) need the default
//! `sources` feature; without it the crate is the parser, the config and the presets.
//!
//! ## The rules that keep a broken source from scaling down
//! An empty or NaN result is **no data**, never 0 (unless a metric says `emptyAs`);
//! a pod that fails to answer a direct scrape is *missing*; a source that is down
//! yields the metrics API's error (`Fetched::Error`), so the engine sets
//! `ScalingActive=False` and keeps the replica count.
#![forbid(unsafe_code)]

use std::time::Duration;

#[cfg(feature = "sources")]
pub mod collect;
pub mod config;
pub mod exposition;
#[cfg(feature = "sources")]
pub mod http;
#[cfg(feature = "sources")]
pub mod kubernetes;
pub mod presets;
pub mod prom_adapter;
#[cfg(feature = "sources")]
pub mod prometheus;
#[cfg(feature = "sources")]
pub mod scrape;
pub mod template;

/// Why a source could not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// A setting or file the source needs is unusable.
    #[error("{0}")]
    Config(String),
    /// No connection could be made.
    #[error("{what}: cannot connect: {message}")]
    Connect { what: String, message: String },
    /// No (complete) answer in time.
    #[error("{what}: no answer within {}", config::format_duration(*.timeout))]
    Timeout { what: String, timeout: Duration },
    /// An HTTP error status without a Prometheus error body.
    #[error("{what}: HTTP {status}: {message}")]
    Http {
        what: String,
        status: u16,
        message: String,
    },
    /// Prometheus's own error (`errorType: error`).
    #[error("{what}: {error_type}: {message}")]
    Prometheus {
        what: String,
        status: u16,
        error_type: String,
        message: String,
    },
    /// An answer that is not what the API promises.
    #[error("{what}: unexpected answer: {message}")]
    Decode { what: String, message: String },
    /// An answer longer than the configured limit; reading stopped at the limit.
    #[error(
        "{what}: the answer is larger than {} (prometheus.maxResponseSize): reading stopped there; narrow the query or raise the limit",
        config::format_byte_size(*.limit)
    )]
    TooLarge { what: String, limit: u64 },
    /// The last error after several attempts.
    #[error("{inner} (after {attempts} attempts)")]
    Retried {
        attempts: u32,
        inner: Box<SourceError>,
    },
}

impl SourceError {
    /// Whether trying again may help: transport failures, timeouts, 5xx and 429, and
    /// Prometheus's `timeout`/`unavailable` — not a bad query.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout { .. } => true,
            Self::Http { status, .. } => *status >= 500 || *status == 429,
            Self::Prometheus {
                status, error_type, ..
            } => *status == 503 || error_type == "timeout" || error_type == "unavailable",
            Self::Config(_)
            | Self::Decode { .. }
            | Self::TooLarge { .. }
            | Self::Retried { .. } => false,
        }
    }

    /// A bounded label for counting failures (`connect`, `timeout`, …).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Connect { .. } => "connect",
            Self::Timeout { .. } => "timeout",
            Self::Http { .. } => "http",
            Self::Prometheus { .. } => "prometheus",
            Self::Decode { .. } => "decode",
            Self::TooLarge { .. } => "too_large",
            Self::Retried { inner, .. } => inner.metric_label(),
        }
    }

    #[cfg(feature = "sources")]
    pub(crate) fn with_attempts(self, attempts: u32) -> Self {
        if attempts > 1 {
            Self::Retried {
                attempts,
                inner: Box::new(self),
            }
        } else {
            self
        }
    }

    #[cfg(feature = "sources")]
    pub(crate) fn from_reqwest(what: &str, e: &reqwest::Error, timeout: Duration) -> Self {
        if e.is_timeout() {
            return Self::Timeout {
                what: what.to_owned(),
                timeout,
            };
        }
        // reqwest's own top line names the URL, which `what` already does.
        let chain = match std::error::Error::source(e) {
            Some(src) => http::error_chain(src),
            None => e.to_string(),
        };
        if e.is_connect() {
            Self::Connect {
                what: what.to_owned(),
                message: chain,
            }
        } else {
            Self::Http {
                what: what.to_owned(),
                status: e.status().map_or(0, |s| s.as_u16()),
                message: chain,
            }
        }
    }
}
