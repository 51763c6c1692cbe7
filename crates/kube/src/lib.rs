//! # podscale-kube
//!
//! podscale on Kubernetes: everything that talks to an API server. The control loop is
//! [`podscale_runtime::Controller`]; this crate only implements its traits over the
//! Kubernetes API and wires them to a watch of the autoscalers.
//!
//! ## Layout
//! - [`crd`]: the `Autoscaler` resource (`podscale.dev/v1alpha1`); [`schema`]: its CRD.
//! - [`convert`]: an `autoscaling/v2` HPA manifest becomes an Autoscaler.
//! - [`target`]: [`target::KubeTarget`], the runtime's `ScaleTarget`: `/scale` of any
//!   kind that has one (discovery), the pods its selector lists, HTTP errors mapped to
//!   conflict / transient / permanent; refuses workloads a standard HPA scales.
//! - [`recorder`]: [`recorder::KubeRecorder`], the runtime's `Recorder`: status
//!   subresource (HPA status + history) and events with upstream's reasons.
//! - [`source`]: [`source::CollectSource`], the runtime's `MetricSource` over
//!   `podscale_metrics::collect`.
//! - [`run`]: `podscale run` — watchers feeding the runtime's `Controller`, leader
//!   election on a Lease driving its `may_write`, shadow mode over standard HPAs;
//!   [`admin`]: `/metrics`, `/healthz`, `/readyz`; [`annotate`]: shadow mode's opt-in
//!   `podscale.dev/recommendation` annotation on each HPA.
//! - [`print`]: what `kubectl get hpa` prints (TARGETS, AGE, tables).
#![forbid(unsafe_code)]

pub mod admin;
pub mod annotate;
pub mod convert;
pub mod crd;
pub mod get;
pub mod print;
pub mod recorder;
pub mod run;
pub mod schema;
pub mod source;
pub mod target;
