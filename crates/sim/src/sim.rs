//! The event loop of one run: requests arrive, replicas serve them, pods start and stop,
//! the pipeline samples, and the controller syncs, all in one simulated timeline.
//!
//! Three sources of events are merged in time order without one big queue:
//! - the next arrival, read lazily from the traffic;
//! - the next replica event, the minimum of a tournament tree over replicas;
//! - the next *tick*: a pod lifecycle event, a scrape, a sync or a series step.
//!
//! At equal times ticks run first, then replica events, then arrivals. Nothing reads a
//! clock or depends on hashing order, so a run is a pure function of its inputs and seed.
use crate::cluster::Cluster;
use crate::cluster::Queued;
use crate::controller::{HpaController, current_value};
use crate::model::Model;
use crate::oracle::Oracle;
use crate::pipeline::MetricPlan;
use crate::policy::Policy;
use crate::series::{Row, RunSeries};
use crate::stats::{Feasibility, Recorder, Slo, Tag};
use crate::summary::{Percentiles, Summary, round3};
use crate::traffic::Traffic;
use crate::units::{format_duration, group_thousands};
use crate::{Error, Limits, Result};

/// Scale events closer than this, in opposite directions, count as a flap.
const FLAP_WINDOW: f64 = 300.0;

/// How long a run goes on after the traffic ends, at most, for the requests still in
/// service or queued to finish. The controller keeps syncing and replicas keep costing
/// until the last request completes, so that a policy is charged for the tail of a burst
/// (a minute or more) as the oracle is. Requests still unfinished past this limit are
/// served to their end without that time being counted.
pub const DRAIN_LIMIT: f64 = 3600.0;

/// How a run is set up, apart from the policy and the traffic.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub model: Model,
    pub slo: Slo,
    pub cost_per_replica_hour: f64,
    /// Series step (seconds); `None` picks one giving at most about 1,500 rows.
    pub step: Option<f64>,
    /// Ready replicas at t = 0; `None` = what the oracle runs in its first window,
    /// within the policy's `minReplicas..=maxReplicas`. Above `maxReplicas`,
    /// `maxReplicas` (where the HPA would bring it at its first sync).
    pub initial_replicas: Option<u32>,
    pub seed: u64,
    /// Bounds on the run's size.
    pub limits: Limits,
}

impl SimConfig {
    pub fn new(model: Model) -> Self {
        Self {
            model,
            slo: Slo::default(),
            cost_per_replica_hour: 1.0,
            step: None,
            initial_replicas: None,
            seed: 1,
            limits: Limits::DEFAULT,
        }
    }

    /// The series step for a horizon.
    pub fn step_for(&self, horizon: f64) -> f64 {
        if let Some(s) = self.step {
            return s;
        }
        const NICE: [f64; 14] = [
            1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
            7200.0,
        ];
        let want = horizon / 1500.0;
        NICE.into_iter().find(|&s| s >= want).unwrap_or(86_400.0)
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub summary: Summary,
    pub series: RunSeries,
}

/// Periodic ticks as integer counts, so that times do not drift.
#[derive(Debug, Clone, Copy)]
struct Ticker {
    period: f64,
    phase: f64,
    k: u64,
}

impl Ticker {
    fn new(period: f64, phase: f64) -> Self {
        Self {
            period,
            phase,
            k: 0,
        }
    }

    fn next(&self) -> f64 {
        if self.period > 0.0 {
            self.phase + self.k as f64 * self.period
        } else {
            f64::INFINITY
        }
    }

    fn advance(&mut self) {
        self.k += 1;
    }
}

/// One policy's run.
struct Run<'a> {
    cfg: &'a SimConfig,
    oracle: Oracle,
    cluster: Cluster,
    controller: HpaController,
    rec: Recorder,
    horizon: f64,
    desired: i32,
    min_replicas: i32,
    max_replicas: i32,
    sync: Ticker,
    metrics_server: Ticker,
    prometheus: Ticker,
    step: Ticker,
    /// Scrape at each sync instead of on their own schedule (interval 0).
    scrape_resources_at_sync: bool,
    scrape_series_at_sync: bool,
    metric_values: Vec<f64>,
    rows: Vec<Row>,
    step_arrivals: u64,
    step_completed: u64,
    step_timed_out: u64,
    feasibility: Feasibility,
    scale_ups: u64,
    scale_downs: u64,
    flaps: u64,
    last_scale: Option<(f64, bool)>,
    at_max_since: Option<f64>,
    at_max_seconds: f64,
    peak_replicas: u32,
    max_requests: u64,
    max_rows: u64,
}

/// Simulates one policy on the traffic.
///
/// `oracle` is the traffic's ([`Oracle::compute`], the same for every policy); one not
/// computed (e.g. [`Oracle::calibrate`]'s) is computed here. `progress` is called now
/// and then with the share of simulated time done (0..1).
///
/// # Errors
/// A metric the model cannot produce, or a trace that fails while streaming.
pub fn run(
    policy: &Policy,
    traffic: &Traffic,
    cfg: &SimConfig,
    oracle: Oracle,
    progress: &mut dyn FnMut(f64),
) -> Result<RunOutput> {
    let plan = MetricPlan::for_hpa(&policy.hpa, &cfg.model, &policy.name)?;
    let min_replicas = podscale_core::defaults::min_replicas(&policy.hpa);
    let max_replicas = policy.hpa.spec.max_replicas;
    let limits = cfg.limits;
    check_size(policy, traffic, cfg)?;
    let oracle = if oracle.is_computed() {
        oracle
    } else {
        Oracle::compute(traffic, cfg, &mut |_| {})?
    };
    let initial = match cfg.initial_replicas {
        // The HPA brings a count above maxReplicas down to it at its first sync.
        Some(n) => i32::try_from(n).unwrap_or(i32::MAX).min(max_replicas),
        None => warm_start(&oracle).clamp(min_replicas, max_replicas.max(min_replicas)),
    };
    let model = &cfg.model;
    let cluster = Cluster::new(model, policy.deployment(), initial.max(0) as u32, cfg.seed);
    let ms = model.pipeline.metrics_server.resolution.0;
    let prom = model.pipeline.prometheus.scrape_interval.0;
    let sync = model.effective_sync_period();
    let step = cfg.step_for(traffic.horizon).max(1e-3);
    let retain = plan.retain + prom.max(sync) + 1.0;
    let columns = plan.columns.clone();
    let controller = HpaController::new(policy.hpa.clone(), model, plan);
    let mut run = Run {
        cfg,
        oracle,
        cluster,
        controller,
        rec: Recorder::new(cfg.slo),
        horizon: traffic.horizon,
        desired: initial,
        min_replicas,
        max_replicas,
        sync: Ticker::new(sync, sync),
        metrics_server: Ticker::new(ms, ms / 2.0),
        prometheus: Ticker::new(prom, prom / 2.0),
        step: Ticker::new(step, step),
        scrape_resources_at_sync: ms <= 0.0,
        scrape_series_at_sync: prom <= 0.0,
        metric_values: vec![f64::NAN; columns.len()],
        rows: Vec::new(),
        step_arrivals: 0,
        step_completed: 0,
        step_timed_out: 0,
        feasibility: Feasibility::new(
            &cfg.slo,
            &crate::replica::ServerParams::from_model(&cfg.model),
        ),
        scale_ups: 0,
        scale_downs: 0,
        flaps: 0,
        last_scale: None,
        at_max_since: None,
        at_max_seconds: 0.0,
        peak_replicas: initial.max(0) as u32,
        max_requests: limits.max_requests,
        max_rows: limits.max_series_rows,
    };
    if run.desired >= run.max_replicas {
        run.at_max_since = Some(0.0);
    }
    // Warm pods have been scraped before: take the baselines at t = 0.
    run.cluster.scrape_resources(0.0);
    run.cluster.scrape_series(0.0, retain, &mut run.rec);
    run.main_loop(traffic, retain, progress)?;
    let end = run.drain(retain)?;
    Ok(run.finish(policy, columns, step, end))
}

/// Refuses, before any work, a run larger than the limits: more replicas than
/// `--max-replicas-simulated`, more series rows than `--max-series-rows`.
fn check_size(policy: &Policy, traffic: &Traffic, cfg: &SimConfig) -> Result<()> {
    let limits = &cfg.limits;
    let max_replicas = policy.hpa.spec.max_replicas;
    if i64::from(max_replicas) > i64::from(limits.max_replicas) {
        return Err(Error::Limit {
            what: format!("{}: maxReplicas is", policy.name),
            amount: group_thousands(max_replicas.max(0) as u64),
            limit: format!(
                "{} replicas simulated",
                group_thousands(u64::from(limits.max_replicas))
            ),
            advice: "lower maxReplicas, or ".into(),
            flag: "--max-replicas-simulated",
        });
    }
    let step = cfg.step_for(traffic.horizon).max(1e-3);
    let rows = traffic.horizon / step;
    if rows > limits.max_series_rows as f64 {
        return Err(Error::Limit {
            what: format!(
                "a series step of {} over {} is",
                format_duration(step),
                format_duration(traffic.horizon)
            ),
            amount: format!("{} rows", group_thousands(rows.ceil() as u64)),
            limit: group_thousands(limits.max_series_rows),
            advice: "give a longer --step, or ".into(),
            flag: "--max-series-rows",
        });
    }
    Ok(())
}

pub(crate) fn too_many_requests(limit: u64) -> Error {
    Error::Limit {
        what: "the traffic generated".into(),
        amount: format!("more than {} requests", group_thousands(limit)),
        limit: group_thousands(limit),
        advice: "shorten it with --duration, ".into(),
        flag: "--max-requests",
    }
}

/// The replicas the oracle runs in its first window: a run starts as if the HPA had
/// been running before, not from `minReplicas` under full load.
fn warm_start(oracle: &Oracle) -> i32 {
    i32::try_from(oracle.replicas_at(0.0)).unwrap_or(i32::MAX)
}

impl Run<'_> {
    fn next_tick(&self) -> f64 {
        self.cluster
            .next_life()
            .min(self.sync.next())
            .min(self.metrics_server.next())
            .min(self.prometheus.next())
            .min(self.step.next())
    }

    fn main_loop(
        &mut self,
        traffic: &Traffic,
        retain: f64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<()> {
        let mut arrivals = traffic.arrivals()?;
        let mut next = arrivals.next_request();
        let mut next_tick = self.next_tick();
        let mut iterations: u32 = 0;
        let horizon = self.horizon;
        loop {
            let t_arrival = next.map_or(f64::INFINITY, |r| r.t);
            let (t_replica, slot) = self.cluster.tree.min();
            if next_tick <= t_arrival && next_tick <= t_replica {
                if next_tick > horizon {
                    break;
                }
                self.tick(next_tick, retain);
                next_tick = self.next_tick();
                continue;
            }
            if t_replica <= t_arrival {
                if t_replica > horizon {
                    break;
                }
                self.cluster.replica_event(slot, t_replica, &mut self.rec);
            } else {
                let Some(req) = next else {
                    break; // unreachable: a finite arrival time comes from a request
                };
                if self.rec.arrived >= self.max_requests {
                    return Err(too_many_requests(self.max_requests));
                }
                self.arrive(req.t, req.input, req.output);
                next = arrivals.next_request();
            }
            iterations = iterations.wrapping_add(1);
            if iterations.trailing_zeros() >= 16 {
                progress((t_arrival.min(t_replica) / horizon).clamp(0.0, 1.0));
            }
        }
        if let Some(e) = arrivals.take_error() {
            return Err(Error::Trace(e));
        }
        progress(1.0);
        Ok(())
    }

    #[inline]
    fn arrive(&mut self, t: f64, input: u32, output: u32) {
        self.rec.arrived += 1;
        self.step_arrivals += 1;
        if !self.feasibility.feasible(input, output) {
            self.rec.infeasible += 1;
            if !self.feasibility.fits(input, output) {
                self.rec.rejected += 1;
                return;
            }
        }
        self.cluster.route(
            Queued {
                arrival: t,
                input,
                output,
                tag: Tag {
                    input,
                    output,
                    window: 0,
                },
            },
            t,
            &mut self.rec,
        );
    }

    fn tick(&mut self, t: f64, retain: f64) {
        if self.cluster.next_life() <= t {
            self.cluster.run_life(t, &mut self.rec);
        }
        if self.metrics_server.next() <= t {
            self.cluster.scrape_resources(t);
            self.metrics_server.advance();
        }
        if self.prometheus.next() <= t {
            self.cluster.scrape_series(t, retain, &mut self.rec);
            self.prometheus.advance();
        }
        if self.sync.next() <= t {
            if self.scrape_resources_at_sync {
                self.cluster.scrape_resources(t);
            }
            if self.scrape_series_at_sync {
                self.cluster.scrape_series(t, retain, &mut self.rec);
            }
            self.sync_controller(t);
            self.sync.advance();
        }
        if self.step.next() <= t {
            self.record_row(t);
            self.step.advance();
        }
    }

    fn sync_controller(&mut self, t: f64) {
        let d = self.controller.sync(&self.cluster, self.desired, t);
        if let Some(evals) = &d.metrics {
            for (slot, e) in self.metric_values.iter_mut().zip(evals) {
                *slot = e
                    .status
                    .current()
                    .and_then(current_value)
                    .unwrap_or(f64::NAN);
            }
        } else {
            self.metric_values.fill(f64::NAN);
        }
        if d.rescale && d.desired_replicas != self.desired {
            let up = d.desired_replicas > self.desired;
            if up {
                self.scale_ups += 1;
            } else {
                self.scale_downs += 1;
            }
            if let Some((t0, was_up)) = self.last_scale
                && was_up != up
                && t - t0 <= FLAP_WINDOW
            {
                self.flaps += 1;
            }
            self.last_scale = Some((t, up));
            self.desired = d.desired_replicas;
            self.cluster
                .scale_to(self.desired.max(0) as u32, t, &mut self.rec);
            self.peak_replicas = self.peak_replicas.max(self.cluster.active());
            match (self.desired >= self.max_replicas, self.at_max_since) {
                (true, None) => self.at_max_since = Some(t),
                (false, Some(since)) => {
                    self.at_max_seconds += t - since;
                    self.at_max_since = None;
                }
                _ => {}
            }
        }
    }

    fn record_row(&mut self, t: f64) {
        self.cluster.purge_expired(t, &mut self.rec);
        let counts = self.cluster.counts();
        let q = |h: &crate::histogram::Coarse, p: f64| h.quantile(p).unwrap_or(f64::NAN);
        let row = Row {
            t,
            arrivals: self.step_arrivals,
            completed: self.rec.completed - self.step_completed,
            timed_out: self.rec.timed_out + self.rec.aborted - self.step_timed_out,
            waiting: self.rec.queued,
            running: self.cluster.running() as u64,
            desired: self.desired,
            ready: counts.ready,
            starting: counts.starting,
            draining: counts.draining,
            oracle: f64::NAN,
            latency_p50: q(&self.rec.step_latency, 0.5),
            latency_p95: q(&self.rec.step_latency, 0.95),
            ttft_p50: q(&self.rec.step_ttft, 0.5),
            ttft_p95: q(&self.rec.step_ttft, 0.95),
            metrics: self.metric_values.clone(),
        };
        self.rows.push(row);
        self.step_arrivals = 0;
        self.step_completed = self.rec.completed;
        self.step_timed_out = self.rec.timed_out + self.rec.aborted;
        self.rec.step_latency.clear();
        self.rec.step_ttft.clear();
    }

    /// After the traffic's end: the controller, the pipeline and the series go on until
    /// the last request has its fate, or [`DRAIN_LIMIT`] has passed; that end is the
    /// run's. Past it, no more syncs and no more cost: pods finish what they hold.
    /// Returns the end.
    fn drain(&mut self, retain: f64) -> Result<f64> {
        let limit = self.horizon + DRAIN_LIMIT;
        let mut end = self.horizon;
        while self.rec.settled() < self.rec.arrived {
            let (t_replica, slot) = self.cluster.tree.min();
            let next_tick = self.next_tick();
            let t = next_tick.min(t_replica);
            if t > limit {
                end = limit;
                break;
            }
            if next_tick <= t_replica {
                self.tick(next_tick, retain);
            } else {
                self.cluster.replica_event(slot, t_replica, &mut self.rec);
            }
            end = end.max(t);
            if self.rows.len() as u64 > self.max_rows {
                break;
            }
        }
        if let Some(since) = self.at_max_since.take() {
            self.at_max_seconds += end - since;
        }
        if self.rows.last().is_none_or(|r| r.t < end - 1e-9) {
            self.record_row(end);
        }
        if self.rows.len() as u64 > self.max_rows {
            return Err(Error::Limit {
                what: "the series has".into(),
                amount: format!("{} rows", group_thousands(self.rows.len() as u64)),
                limit: group_thousands(self.max_rows),
                advice: "give a longer --step, or ".into(),
                flag: "--max-series-rows",
            });
        }
        self.cluster.freeze_cost(end);
        loop {
            let (t_replica, slot) = self.cluster.tree.min();
            let t_life = self.cluster.next_life();
            if t_life <= t_replica && t_life.is_finite() {
                self.cluster.run_life(t_life, &mut self.rec);
            } else if t_replica.is_finite() {
                self.cluster.replica_event(slot, t_replica, &mut self.rec);
            } else {
                break;
            }
        }
        self.cluster.expire_pending(&mut self.rec);
        debug_assert_eq!(
            self.rec.settled(),
            self.rec.arrived,
            "every request has a fate"
        );
        Ok(end)
    }

    fn finish(
        mut self,
        policy: &Policy,
        columns: Vec<crate::pipeline::MetricColumn>,
        step: f64,
        end: f64,
    ) -> RunOutput {
        // The oracle is the traffic's: the same for every policy, over the traffic's
        // length. The policy's cost runs to the end of its run, drain included.
        let horizon = self.horizon;
        let oracle_seconds = self.oracle.replica_seconds;
        for row in &mut self.rows {
            row.oracle = if row.t - step >= horizon {
                f64::NAN // after the traffic: nothing to serve
            } else {
                self.oracle.mean_replicas(row.t - step, row.t)
            };
        }
        let replica_seconds = self.cluster.replica_seconds(end);
        let rec = &self.rec;
        let pct = |h: &crate::histogram::Fine| Percentiles {
            p50: h.quantile(0.5).map(round3),
            p95: h.quantile(0.95).map(round3),
            p99: h.quantile(0.99).map(round3),
        };
        let hours = replica_seconds / 3600.0;
        let summary = Summary {
            policy: policy.name.clone(),
            manifest: policy.file.clone(),
            requests: rec.arrived,
            completed: rec.completed,
            timed_out: rec.timed_out,
            aborted: rec.aborted,
            rejected: rec.rejected,
            latency: pct(&rec.latency),
            ttft: pct(&rec.ttft),
            infeasible: rec.infeasible,
            // Over the feasible requests; none, no attainment (not 100 %).
            slo_attainment: rec.attainment().map(round4),
            oracle_slo_attainment: self.oracle.attainment.map(round4),
            slo: rec.slo,
            replica_seconds: round3(replica_seconds),
            replica_hours: round3(hours),
            cost: (hours * self.cfg.cost_per_replica_hour * 100.0).round() / 100.0,
            cost_per_replica_hour: self.cfg.cost_per_replica_hour,
            mean_replicas: round3(replica_seconds / end.max(1e-9)),
            peak_replicas: self.peak_replicas,
            oracle_replica_seconds: round3(oracle_seconds),
            oracle_ratio: if oracle_seconds > 0.0 {
                round3(replica_seconds / oracle_seconds)
            } else {
                0.0
            },
            scale_ups: self.scale_ups,
            scale_downs: self.scale_downs,
            flaps: self.flaps,
            peak_queue: rec.peak_queued,
            mean_queue_wait: round3(rec.queue_wait_sum / rec.queue_waits.max(1) as f64),
            time_at_max_replicas: round3(self.at_max_seconds),
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            simulated_seconds: round3(end),
        };
        RunOutput {
            summary,
            series: RunSeries {
                policy: policy.name.clone(),
                step,
                columns,
                rows: self.rows,
            },
        }
    }
}

/// Rounds a share to four decimals (a hundredth of a percent).
fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}
