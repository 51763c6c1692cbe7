//! The evaluation boundary: a policy in, its SLO attainment and replica-hours out. The
//! search knows nothing else about the simulator, so another evaluator (a different
//! simulator API, a cached or remote one) only has to implement [`Evaluate`].
use podscale_sim::{Oracle, Policy, RunOutput, SimConfig, Traffic};
use serde::Serialize;

use crate::Result;

/// What a policy is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// Share of requests served within the SLO; `None` when the traffic had no request.
    pub slo_attainment: Option<f64>,
    pub replica_hours: f64,
}

impl Score {
    /// Attainment for comparisons: no request means nothing was missed.
    pub fn attainment(&self) -> f64 {
        self.slo_attainment.unwrap_or(1.0)
    }

    /// Whether the score meets `goal`.
    pub fn meets(&self, goal: f64) -> bool {
        self.attainment() >= goal
    }
}

/// Scores a policy. `Sync`: the search calls it from several threads at once.
pub trait Evaluate: Sync {
    /// # Errors
    /// When the policy cannot be run (e.g. a metric the model does not produce).
    fn evaluate(&self, policy: &Policy) -> Result<Score>;

    /// The SLO attainment a candidate must reach.
    fn goal(&self) -> f64;
}

/// Runs the simulator: one traffic, one configuration, one oracle (computed once, as
/// it depends on the traffic and the model, not on the policy).
#[derive(Debug, Clone)]
pub struct SimEvaluator {
    pub traffic: Traffic,
    pub cfg: SimConfig,
    pub oracle: Oracle,
}

impl SimEvaluator {
    /// Computes the hindsight oracle for the traffic, as `podscale simulate` does.
    ///
    /// # Errors
    /// As [`Oracle::compute`]; [`crate::Error::AllInfeasible`] when no request can meet
    /// the SLO (every policy would "meet" the goal over zero feasible requests).
    pub fn new(traffic: Traffic, cfg: SimConfig) -> Result<Self> {
        let oracle = Oracle::compute(&traffic, &cfg, &mut |_| {})?;
        if oracle.requests > 0 && oracle.infeasible == oracle.requests {
            return Err(crate::Error::AllInfeasible {
                requests: oracle.requests,
            });
        }
        Ok(Self {
            traffic,
            cfg,
            oracle,
        })
    }

    /// The whole run (summary and series), for reports.
    ///
    /// # Errors
    /// As [`podscale_sim::run`].
    pub fn run(&self, policy: &Policy) -> Result<RunOutput> {
        Ok(podscale_sim::run(
            policy,
            &self.traffic,
            &self.cfg,
            self.oracle.clone(),
            &mut |_| {},
        )?)
    }
}

impl Evaluate for SimEvaluator {
    fn evaluate(&self, policy: &Policy) -> Result<Score> {
        let out = self.run(policy)?;
        Ok(Score {
            slo_attainment: out.summary.slo_attainment,
            replica_hours: out.summary.replica_hours,
        })
    }

    fn goal(&self) -> f64 {
        self.cfg.slo.goal
    }
}
