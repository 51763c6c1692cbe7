//! # podscale-local
//!
//! `podscale run --local`: the autoscaler on one machine, end to end — real
//! processes, real HTTP, real scaling — driven by the same control loop as the
//! Kubernetes controller ([`podscale_runtime::Controller`]). This crate is only the
//! loop's parts for one machine, and the wiring:
//!
//! - [`spec`]: the local deployment file (command, ports, probes, requests, …).
//! - [`replicas`]: [`ReplicaSet`], the scale target — one process group per replica,
//!   readiness probes, crash restarts with backoff, graceful stop in ReplicaSet order.
//! - [`guard`]: the orphan guard — no replica outlives podscale, even on SIGKILL.
//! - [`procfs`] and [`metrics`]: [`LocalMetrics`], the metric source — CPU and memory
//!   from `/proc`, Pods and External metrics through `podscale-metrics`.
//! - [`proxy`]: the front proxy — ready replicas only, least outstanding requests,
//!   streamed responses, retries on a replica that refused.
//! - [`status`]: the status API (loopback JSON) and its client; [`render`]: `get` and
//!   `describe`, printed as kubectl prints HPAs; [`prom`]: its `/metrics`.
//! - [`run`]: everything started together and stopped together.
#![forbid(unsafe_code)]

pub mod guard;
pub mod metrics;
pub mod procfs;
pub mod prom;
pub mod proxy;
pub mod render;
pub mod replicas;
pub mod run;
pub mod spec;
pub mod status;

pub use metrics::LocalMetrics;
pub use replicas::ReplicaSet;
pub use spec::LocalDeployment;
