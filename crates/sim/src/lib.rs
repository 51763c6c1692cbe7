//! # podscale-sim
//!
//! `podscale simulate`: replays request traffic against HPA policies, running the
//! decision engine of [`podscale_core`] at every sync over a model of LLM inference
//! replicas, pod start-up and the metrics pipeline. It answers, offline and in seconds,
//! what a policy would have done to latency and cost.
//!
//! ## Layout
//! - [`traffic`] and [`trace`]: requests from a trace, a rate envelope or a pattern.
//! - [`model`] (from `podscale-model`, shared with `podscale emulate`): the server model file and its documented defaults
//!   ([`model::DEFAULT_MODEL_YAML`]); [`dist`]: start-up time distributions.
//! - [`replica`]: one continuous-batching server; [`cluster`]: pods, their lifecycle,
//!   scale-down order and least-outstanding routing.
//! - [`pipeline`]: metrics-server and Prometheus sampling, and what queries return.
//! - [`controller`]: builds the engine's `Observed` state and calls `reconcile`.
//! - [`sim`]: the event loop of one run; [`oracle`]: the fewest replicas a clairvoyant,
//!   instant controller needs to meet the SLO goal, found and replayed with the simulator.
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
//! // The traffic's oracle, computed once and shared by every policy's run.
//! let oracle = Oracle::compute(&traffic, &cfg, &mut |_| {})?;
//! assert!(oracle.attainment >= Some(cfg.slo.goal));
//! let out = podscale_sim::run(&Policy::embedded(), &traffic, &cfg, oracle.clone(), &mut |_| {})?;
//! assert_eq!(out.summary.requests, out.summary.completed + out.summary.timed_out
//!     + out.summary.aborted + out.summary.rejected);
//! assert_eq!(out.summary.oracle_replica_seconds, (oracle.replica_seconds * 1e3).round() / 1e3);
//! # Ok::<(), podscale_sim::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod cluster;
pub mod controller;
pub mod oracle;
pub mod pipeline;
pub mod policy;
pub mod render;
pub mod report;
pub mod series;
pub mod sim;
pub mod stats;
pub mod summary;
pub mod trace;
pub mod traffic;

// The server model lives in `podscale-model`, shared with `podscale emulate`; these
// re-exports keep the simulator's paths.
pub use podscale_model::{dist, histogram, model, replica, units};

use podscale_manifest::Diagnostic;

pub use model::Model;
pub use oracle::Oracle;
pub use policy::Policy;
pub use sim::DRAIN_LIMIT;
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
    /// A file that cannot be read or written. The OS error is the source, not part of
    /// the message, so a chain prints it once.
    #[error("cannot read {file}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// A run bigger than a limit: what it would take, the limit, and the flag that
    /// raises it.
    #[error("{what} {amount}, more than the limit of {limit}; {advice}raise the limit with {flag}")]
    Limit {
        /// What is too big, e.g. `the traffic has about`.
        what: String,
        amount: String,
        limit: String,
        /// What else the user can do (ends with `, or ` when set).
        advice: String,
        flag: &'static str,
    },
}

impl From<podscale_model::Error> for Error {
    fn from(e: podscale_model::Error) -> Self {
        match e {
            podscale_model::Error::Manifest(e) => Error::Manifest(e),
            podscale_model::Error::Model { file, message } => Error::Model { file, message },
        }
    }
}

/// Bounds on the size of one run, so that hostile or mistaken input is refused with the
/// numbers instead of taking unbounded time or memory. Each has a CLI flag to raise it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Requests one run may simulate (`--max-requests`): the expected number is checked
    /// before the run, the actual number during it.
    pub max_requests: u64,
    /// Replicas one run may hold: `maxReplicas` of every policy, and
    /// `--initial-replicas` (`--max-replicas-simulated`).
    pub max_replicas: u32,
    /// Simulated seconds of traffic, loops included (`--max-simulated-time`).
    pub max_seconds: f64,
    /// Rows of the time series per policy (`--max-series-rows`).
    pub max_series_rows: u64,
}

impl Limits {
    /// 300 million requests (the 14-day ServeGen envelope is about 250 million), 10,000
    /// replicas, 31 days, 200,000 series rows (a day at 1 s steps).
    pub const DEFAULT: Limits = Limits {
        max_requests: 300_000_000,
        max_replicas: 10_000,
        max_seconds: 31.0 * 86_400.0,
        max_series_rows: 200_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
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
