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
//! - [`api`]: the `autoscaling/v2` types as a user writes them; [`defaults`]: API
//!   defaulting and the rules the algorithm runs on.
//! - [`observed`]: pods and metrics API answers; [`history`]: the controller's memory.
//! - [`calculator`]: one metric's proposal; [`metrics`]: all metrics and their maximum.
//! - [`normalize`]: stabilization, rate limits and the clamp.
//! - [`reconcile`]: one full decision → [`reconcile::Decision`].
//! - [`autoscaler`]: [`Autoscaler`], the stateful face a control loop drives
//!   (decide, then commit or take the failure path).
//! - [`scenario`]: a decision captured as data, and `explain`'s JSON output.
//! - [`explain`]: the decision told to a person.
#![forbid(unsafe_code)]

pub mod api;
pub mod autoscaler;
pub mod calculator;
pub mod conditions;
pub mod defaults;
pub mod duration;
pub mod explain;
pub mod history;
pub mod labels;
pub mod metrics;
pub mod normalize;
pub mod observed;
pub mod quantity;
pub mod reconcile;
pub mod scenario;
pub mod settings;

pub use autoscaler::{Autoscaler, FailedGetScale};
pub use quantity::Quantity;
pub use reconcile::{Decision, reconcile};
pub use scenario::{ExplainOutput, Scenario, Stage};
pub use settings::ControllerSettings;
