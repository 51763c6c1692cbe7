//! # podscale-kube
//!
//! podscale on Kubernetes: everything that talks to an API server. The control loop is
//! [`podscale_runtime::Controller`]; this crate only implements its traits over the
//! Kubernetes API and wires them to a watch of the autoscalers.
//!
//! ## Layout
//! - [`crd`]: the `Autoscaler` resource (`podscale.dev/v1alpha1`); [`schema`]: its CRD.
//! - [`convert`]: an `autoscaling/v2` HPA manifest becomes an Autoscaler.
#![forbid(unsafe_code)]

pub mod convert;
pub mod crd;
pub mod schema;
