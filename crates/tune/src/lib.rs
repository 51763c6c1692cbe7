//! # podscale-tune
//!
//! `podscale tune`: searches an HPA's knobs (each metric's target, min/max replicas,
//! stabilization windows, scale-up/down policies) on a traffic trace, running every
//! candidate through the simulator, and returns the cheapest policy meeting the SLO goal
//! with the Pareto front of replica-hours against SLO attainment.
//!
//! ## Layout
//! - [`space`]: the search space built from the seed manifest (which knobs are free,
//!   the values each may take) and the candidate HPAs it yields.
//! - [`eval`]: the evaluation boundary, `policy → (SLO attainment, replica-hours)`
//!   ([`Evaluate`]), and its simulator implementation ([`SimEvaluator`]).
//! - [`search`]: a seeded random sample then coordinate refinement, evaluated on
//!   several threads; every candidate is validated as `podscale validate` would before
//!   it is simulated. The same seed gives the same result on any number of threads.
//! - [`holdout`]: the time split that keeps the last part of a trace from the search.
//! - [`report`]: the HTML page (the front, and the winner's replay against the seed's).
#![forbid(unsafe_code)]

pub mod eval;
pub mod holdout;
pub mod report;
pub mod search;
pub mod space;

pub use eval::{Evaluate, Score, SimEvaluator};
pub use search::{Candidate, Outcome, SearchOptions, search};
pub use space::{Free, Space};

/// Why a tuning run could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The simulator refused the policy, the traffic or the model.
    #[error(transparent)]
    Sim(#[from] podscale_sim::Error),
    /// A bad option (the message names the flag).
    #[error("{0}")]
    Options(String),
    /// A search bigger than a limit.
    #[error("{what} {amount}, more than the limit of {limit}")]
    Limit {
        what: &'static str,
        amount: String,
        limit: String,
    },
    /// No request of the traffic can meet the SLO, whatever the policy: there is
    /// nothing to tune (attainment is over feasible requests).
    #[error(
        "every one of the {requests} requests is infeasible under this SLO (none meets it even alone on an idle replica): relax --slo or choose a larger --model"
    )]
    AllInfeasible { requests: u64 },
    /// A candidate could not be written as YAML (not expected).
    #[error("cannot write the manifest as YAML: {0}")]
    Yaml(String),
    /// A worker thread panicked (a bug).
    #[error("a simulation failed unexpectedly (a bug)")]
    Panic,
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
