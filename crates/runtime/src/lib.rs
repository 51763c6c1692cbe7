//! # podscale-runtime
//!
//! The one control loop of podscale: for every autoscaler, once per sync period,
//! **observe** (the target's scale, its pods, the metrics), **decide** (the pure engine,
//! [`podscale_core::Autoscaler`]), **act** (update the scale) and **commit** (status,
//! events, history). The Kubernetes controller and the local runtime are two sets of
//! implementations of the same small traits; neither has a loop of its own.
//!
//! ## Layout
//! - [`target`]: [`ScaleTarget`] — read the scale and selector, list pods, write replicas.
//! - [`source`]: [`MetricSource`] — what the metrics APIs answer for one autoscaler.
//! - [`recorder`]: [`Recorder`] — status (with the controller's history) and events;
//!   [`MemoryRecorder`] keeps them in memory.
//! - [`clock`]: [`Clock`] — the time the engine sees and the sleeps the loop takes;
//!   [`TokioClock`] follows tokio's clock, so tests run on paused time and never sleep.
//! - [`shadow`]: [`Shadow`] — a target wrapper that records what would be written and
//!   never writes.
//! - [`sync`]: one sync of one autoscaler, with timeouts, retries and the upstream
//!   failure paths.
//! - [`print`]: kubectl's ages and table layout, for the status views.
//! - [`controller`]: [`Controller`] — one task per autoscaler, sync period with jitter,
//!   backoff, updates, leadership gating, graceful shutdown; [`Stats`] counts it all.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod clock;
pub mod controller;
pub mod print;
pub mod recorder;
pub mod shadow;
pub mod source;
pub mod stats;
pub mod sync;
pub mod target;

pub use clock::{Clock, TokioClock};
pub use controller::{AutoscalerOptions, Controller, Update};
pub use recorder::{MemoryRecorder, Recommendation, Recorder};
pub use shadow::Shadow;
pub use source::MetricSource;
pub use stats::Stats;
pub use sync::{LoopConfig, SyncReport};
pub use target::{Key, Scale, ScaleTarget, TargetError};
