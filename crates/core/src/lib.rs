//! # podscale-core
//!
//! The Kubernetes `autoscaling/v2` HorizontalPodAutoscaler decision algorithm, as
//! kube-controller-manager runs it, written as a pure function: no I/O, no clock, no
//! async runtime. Everything else in podscale (the `explain` command, the simulator, the
//! local runtime and the Kubernetes controller) calls into this crate, so a decision
//! means the same thing everywhere.
//!
//! ## Layout
//! - [`quantity`]: exact Kubernetes `resource.Quantity` parsing and milli-unit arithmetic.
#![forbid(unsafe_code)]

pub mod quantity;

pub use quantity::Quantity;
