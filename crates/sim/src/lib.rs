//! # podscale-sim
//!
//! `podscale simulate`: replays request traffic against HPA policies, running the
//! decision engine of [`podscale_core`] at every sync over a model of LLM inference
//! replicas, pod start-up and the metrics pipeline. It answers, offline and in seconds,
//! what a policy would have done to latency and cost.
//!
//! ## Layout
//! - [`traffic`] and [`trace`]: requests from a trace, a rate envelope or a pattern.
//! - [`model`]: the server model file and its documented defaults
//!   ([`model::DEFAULT_MODEL_YAML`]); [`dist`]: start-up time distributions.
//! - [`replica`]: one continuous-batching server; [`cluster`]: pods, their lifecycle,
//!   scale-down order and least-outstanding routing.
//! - [`pipeline`]: metrics-server and Prometheus sampling, and what queries return.
//! - [`controller`]: builds the engine's `Observed` state and calls `reconcile`.
//! - [`sim`]: the event loop of one run; [`oracle`]: the replicas a clairvoyant,
//!   instant controller would need.
//! - [`stats`], [`histogram`], [`summary`], [`series`]: what a run measures.
//! - [`render`] (text table and sparklines) and [`report`] (HTML with SVG charts).
//!
//! ## Example
//! ```
//! use podscale_sim::{Model, Oracle, Policy, SimConfig, Traffic, TrafficOptions, TrafficSpec};
//!
//! let traffic = Traffic::prepare(
//!     &TrafficSpec::Pattern("constant:rate=1".into()),
//!     TrafficOptions { duration: Some(600.0), ..TrafficOptions::default() },
//! )?;
//! let cfg = SimConfig::new(Model::default_model());
//! let oracle = Oracle::calibrate(&podscale_sim::replica::ServerParams::from_model(&cfg.model),
//!     &traffic.mix, &cfg.slo, cfg.seed);
//! let out = podscale_sim::run(&Policy::embedded(), &traffic, &cfg, oracle, &mut |_| {})?;
//! assert_eq!(out.summary.requests, out.summary.completed + out.summary.timed_out
//!     + out.summary.aborted + out.summary.rejected);
//! # Ok::<(), podscale_sim::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod cluster;
pub mod controller;
pub mod dist;
pub mod histogram;
pub mod model;
pub mod oracle;
pub mod pipeline;
pub mod policy;
pub mod render;
pub mod replica;
pub mod report;
pub mod series;
pub mod sim;
pub mod stats;
pub mod summary;
pub mod trace;
pub mod traffic;
pub mod units;

use podscale_manifest::Diagnostic;

pub use model::Model;
pub use oracle::Oracle;
pub use policy::Policy;
pub use sim::{RunOutput, SimConfig, run};
pub use stats::Slo;
pub use summary::Summary;
pub use trace::{TraceError, TraceSource};
pub use traffic::{ArrivalProcess, Traffic, TrafficOptions, TrafficSpec};

/// Why a simulation could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A manifest or model file that cannot be parsed (`file:line:col: message`).
    #[error(transparent)]
    Manifest(#[from] podscale_manifest::ManifestError),
    /// An HPA manifest the API server would reject: the `podscale validate` messages.
    #[error("{}", invalid_manifest(.file, .diagnostics))]
    InvalidManifest {
        file: String,
        diagnostics: Vec<Diagnostic>,
    },
    /// A model file with values out of range.
    #[error("{file}: {message}")]
    Model { file: String, message: String },
    /// A bad traffic file (`file:line: message`).
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// A bad traffic option or pattern.
    #[error("{0}")]
    Traffic(String),
    /// A policy the simulator cannot run (e.g. a metric it does not produce).
    #[error("{0}")]
    Policy(String),
    /// A file that cannot be read or written.
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

fn invalid_manifest(file: &str, diagnostics: &[Diagnostic]) -> String {
    let mut s = format!(
        "{file}: not a valid HorizontalPodAutoscaler ({} problem(s), as `podscale validate` reports them):",
        diagnostics.len()
    );
    for d in diagnostics {
        s.push('\n');
        s.push_str(&d.to_string());
    }
    s
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
