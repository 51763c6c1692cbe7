//! # podscale-adapter
//!
//! `podscale adapter`: an aggregated API server for `custom.metrics.k8s.io` (`v1beta1`,
//! `v1beta2`) and `external.metrics.k8s.io` (`v1beta1`) that answers from the metric
//! sources of `podscale.yaml` (Prometheus, direct scrapes), so the built-in HPA, KEDA
//! or `kubectl get --raw` read the same values `podscale metrics` reads — in place of
//! prometheus-adapter.
//!
//! ## Layout
//! - [`catalogue`]: the configured metrics by API, and the discovery documents.
//! - [`api`]: the wire shapes (`MetricValueList` in both versions,
//!   `ExternalMetricValueList`, discovery, `Status`).
//! - [`read`]: one metric for one request, through `podscale_metrics::collect` (the
//!   same rules as `podscale metrics`), and what no data or a failed source become.
//! - [`auth`]: delegated authentication (front proxy, client certificates, TokenReview)
//!   and authorization (SubjectAccessReview), cached.
//! - [`tls`]: the serving certificate (given or self-signed) and client certificates.
//! - [`server`]: routing, bounds, the adapter's own `/metrics` and health checks.
//! - [`run`]: `podscale adapter` itself: connect, read the front proxy's settings, serve.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod catalogue;
pub mod read;
pub mod run;
pub mod server;
pub mod tls;

/// Why the adapter cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build the metric sources")]
    Sources(#[source] podscale_metrics::SourceError),
    #[error("authentication: {0}")]
    Auth(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("Kubernetes: {0}")]
    Kube(String),
    #[error("cannot serve on {0}")]
    Listen(std::net::SocketAddr, #[source] std::io::Error),
}
