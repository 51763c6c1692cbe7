//! The oracle: the replicas a controller that knew the future and started pods
//! instantly would have run to meet the SLO, computed with the simulator itself.
//!
//! Per window ([`WINDOW`], 60 s by default), the oracle picks the fewest Ready replicas,
//! started at the window's start, such that the feasible requests arriving in that
//! window meet the SLO's goal in the pooled cluster: the same least-outstanding
//! routing, the same replicas, and the queues carried from window to window. A
//! window's requests are followed past its end, without later arrivals, until enough
//! have met the SLO or enough have missed it. Surplus replicas leave as on a
//! scale-down: they finish what they hold, not counted. The search starts from the
//! previous window's count and gallops (±1, 2, 4…) then bisects to the fewest.
//!
//! The schedule is then replayed on the whole trace, later arrivals included, and its
//! attainment reported: the oracle meets the goal it claims. Should the replay miss
//! the goal (later arrivals slow a window's stragglers), the windows that missed it get
//! more replicas (one, or 1 %, 2 %, 4 % … of their count) and the replay runs again.
//!
//! Its cost is Σ replicas × window length over the traffic: no start-up, no drain, no
//! tail after the traffic, so it is a lower bound a real controller cannot reach.
//! Requests that cannot meet the SLO even alone ([`Feasibility`]) need nothing.
use rand::SeedableRng as _;
use rand::rngs::ChaCha8Rng;
use rand_distr::{Distribution as _, Exp1};

use crate::cluster::{Cluster, Queued};
use crate::replica::{Replica, ServerParams};
use crate::sim::SimConfig;
use crate::stats::{Feasibility, Recorder, Slo, Tag};
use crate::traffic::{TokenMix, Traffic};
use crate::units::{format_duration, group_thousands};
use crate::{Error, Result};

/// The oracle's default window (seconds).
pub const WINDOW: f64 = 60.0;

/// Requests simulated per calibration point ([`Oracle::calibrate`]).
const CALIBRATION_REQUESTS: usize = 4000;

/// Replays of the schedule that may raise windows which missed the goal.
const REPAIR_ROUNDS: u32 = 8;

/// The oracle's schedule and what it achieves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Oracle {
    /// Requests per second one replica serves within the SLO, when calibrated
    /// ([`Oracle::calibrate`]); 0 for a computed oracle.
    pub capacity: f64,
    /// The window (seconds).
    pub window: f64,
    /// Ready replicas in each window from t = 0; empty until computed.
    pub schedule: Vec<u32>,
    /// The traffic's length (seconds).
    pub horizon: f64,
    /// Σ replicas × window length over the traffic.
    pub replica_seconds: f64,
    /// The replayed schedule's share of feasible requests that met the SLO (`None`
    /// without feasible requests).
    pub attainment: Option<f64>,
    pub requests: u64,
    /// Requests that cannot meet the SLO even alone on an idle replica.
    pub infeasible: u64,
    /// Windows given more replicas after a replay missed the goal.
    pub repairs: u64,
}

/// The oracle's cluster and what it has counted, at a window's boundary.
#[derive(Clone)]
struct State {
    cluster: Cluster,
    rec: Recorder,
}

/// One window's requests.
struct Window {
    index: usize,
    start: f64,
    end: f64,
    requests: Vec<(f64, u32, u32)>,
    /// Requests of the window that fit a replica (are routed).
    routed: u64,
    /// The window's feasible requests that must meet the SLO.
    need: u64,
}

impl Oracle {
    /// Computes the oracle of the traffic with [`WINDOW`].
    ///
    /// # Errors
    /// A trace that fails while streaming, more requests than the limit, or a window
    /// needing more replicas than `--max-replicas-simulated`.
    pub fn compute(
        traffic: &Traffic,
        cfg: &SimConfig,
        progress: &mut dyn FnMut(f64),
    ) -> Result<Oracle> {
        Self::compute_with_window(traffic, cfg, WINDOW, progress)
    }

    /// Computes the oracle with windows of `window` seconds.
    ///
    /// # Errors
    /// As [`Oracle::compute`]; a window that is not a positive number of seconds.
    pub fn compute_with_window(
        traffic: &Traffic,
        cfg: &SimConfig,
        window: f64,
        progress: &mut dyn FnMut(f64),
    ) -> Result<Oracle> {
        if !(window >= 1.0 && window.is_finite()) {
            return Err(Error::Traffic(format!(
                "the oracle window must be at least 1s, not {}",
                format_duration(window)
            )));
        }
        let search = Search::new(traffic, cfg, window)?;
        search.run(traffic, progress)
    }

    /// Ready replicas the oracle runs at time `t` (0 past the traffic).
    pub fn replicas_at(&self, t: f64) -> u32 {
        if self.window <= 0.0 || t < 0.0 || t >= self.horizon {
            return 0;
        }
        let w = (t / self.window) as usize;
        self.schedule.get(w).copied().unwrap_or(0)
    }

    /// The mean of the oracle's replicas over `[from, to)`.
    pub fn mean_replicas(&self, from: f64, to: f64) -> f64 {
        let (from, to) = (from.max(0.0), to.min(self.horizon));
        if self.window <= 0.0 || to <= from {
            return f64::NAN;
        }
        let mut sum = 0.0;
        let mut t = from;
        while t < to {
            let w = (t / self.window) as usize;
            let next = ((w + 1) as f64 * self.window).min(to);
            sum += f64::from(self.schedule.get(w).copied().unwrap_or(0)) * (next - t);
            if next <= t {
                break;
            }
            t = next;
        }
        sum / (to - from)
    }

    /// Whether the schedule has been computed.
    pub fn is_computed(&self) -> bool {
        !self.schedule.is_empty()
    }

    /// Calibrates one replica's capacity for this request mix and SLO: the highest
    /// Poisson rate at which one replica serves the goal share of the feasible requests.
    /// A rough estimate, kept for callers of earlier versions: the oracle itself is
    /// [`Oracle::compute`], which [`crate::run`] calls when given a calibrated one.
    pub fn calibrate(params: &ServerParams, mix: &TokenMix, slo: &Slo, seed: u64) -> Oracle {
        let check = Feasibility::new(slo, params);
        let feasible = mix
            .pairs
            .iter()
            .filter(|&&(i, o)| check.feasible(i, o))
            .count() as f64
            / mix.pairs.len().max(1) as f64;
        let need = slo.goal * feasible;
        let (mean_in, _) = mix.means();
        // Prefill alone bounds the throughput from above.
        let mut hi = 1.0 / (mean_in.max(1.0) * params.prefill_seconds_per_token);
        let mut lo = 0.0;
        if attainment(params, mix, slo, hi, seed) >= need {
            return Oracle {
                capacity: hi,
                ..Oracle::default()
            };
        }
        for _ in 0..16 {
            let mid = (lo + hi) / 2.0;
            if attainment(params, mix, slo, mid, seed) >= need {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Oracle {
            capacity: lo.max(1e-6),
            ..Oracle::default()
        }
    }

    /// Replicas a calibrated capacity gives `arrivals` requests in `len` seconds.
    pub fn replicas_for(&self, arrivals: u64, len: f64) -> f64 {
        if len <= 0.0 {
            return 0.0;
        }
        (arrivals as f64 / (len * self.capacity)).ceil().max(1.0)
    }
}

/// The share of requests meeting the SLO on one replica at `rate` (same seed for every
/// rate, so the comparison between rates is not noise).
fn attainment(params: &ServerParams, mix: &TokenMix, slo: &Slo, rate: f64, seed: u64) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0_7ac1e);
    let mut rec = Recorder::new(*slo);
    let mut r = Replica::<Tag>::new(0.0);
    let mut t = 0.0;
    let mut sent = 0usize;
    let mut next_arrival = {
        let g: f64 = Exp1.sample(&mut rng);
        g / rate
    };
    loop {
        let next_event = r.next_event(params);
        if sent < CALIBRATION_REQUESTS && next_arrival <= next_event {
            t = next_arrival;
            let i = ((u128::from(rand::Rng::next_u64(&mut rng)) * mix.pairs.len() as u128) >> 64)
                as usize;
            let (input, output) = mix.pairs[i];
            sent += 1;
            if params.fits(input, output) {
                r.arrive(
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
                    params,
                    &mut rec,
                );
            }
            let g: f64 = Exp1.sample(&mut rng);
            next_arrival = t + g / rate;
        } else if next_event.is_finite() {
            t = next_event;
            r.on_event(t, params, &mut rec);
        } else {
            break;
        }
    }
    let _ = t;
    rec.met_slo as f64 / sent.max(1) as f64
}

/// The oracle's computation over one traffic.
struct Search<'a> {
    cfg: &'a SimConfig,
    window: f64,
    windows: usize,
    horizon: f64,
    check: Feasibility,
    /// The model with pods that drain as long as they need (the oracle kills nothing).
    model: crate::model::Model,
    max_replicas: u32,
}

impl<'a> Search<'a> {
    fn new(traffic: &Traffic, cfg: &'a SimConfig, window: f64) -> Result<Self> {
        let horizon = traffic.horizon.max(0.0);
        let windows = (horizon / window).ceil().max(1.0);
        if windows > u32::MAX as f64 {
            return Err(Error::Traffic(format!(
                "{} oracle windows of {} are too many; give a longer window",
                group_thousands(windows as u64),
                format_duration(window)
            )));
        }
        let mut model = cfg.model.clone();
        model.lifecycle.termination_grace_period = crate::units::Seconds(1e12);
        let params = ServerParams::from_model(&model);
        Ok(Self {
            cfg,
            window,
            windows: windows as usize,
            horizon,
            check: Feasibility::new(&cfg.slo, &params),
            model,
            max_replicas: cfg.limits.max_replicas.max(1),
        })
    }

    fn start_state(&self, windows: usize) -> State {
        State {
            cluster: Cluster::new(&self.model, "oracle", 0, self.cfg.seed),
            rec: Recorder::with_windows(self.cfg.slo, windows),
        }
    }

    fn run(&self, traffic: &Traffic, progress: &mut dyn FnMut(f64)) -> Result<Oracle> {
        let goal = self.cfg.slo.goal;
        let mut arrivals = traffic.arrivals()?;
        let mut next = arrivals.next_request();
        let mut state = self.start_state(1);
        let mut schedule = Vec::with_capacity(self.windows);
        let mut needs = Vec::with_capacity(self.windows);
        let mut prev = 1u32;
        let mut seen = 0u64;
        let mut w = Window {
            index: 0,
            start: 0.0,
            end: 0.0,
            requests: Vec::new(),
            routed: 0,
            need: 0,
        };
        for index in 0..self.windows {
            w.index = index;
            w.start = index as f64 * self.window;
            w.end = ((index + 1) as f64 * self.window).min(self.horizon);
            w.requests.clear();
            w.routed = 0;
            let last = index + 1 == self.windows;
            let mut feasible = 0u64;
            while let Some(r) = next {
                if r.t >= w.end && !last {
                    break;
                }
                seen += 1;
                if seen > self.cfg.limits.max_requests {
                    return Err(crate::sim::too_many_requests(self.cfg.limits.max_requests));
                }
                if self.check.fits(r.input, r.output) {
                    w.routed += 1;
                }
                feasible += u64::from(self.check.feasible(r.input, r.output));
                w.requests.push((r.t, r.input, r.output));
                next = arrivals.next_request();
            }
            w.need = (goal * feasible as f64 - 1e-9).ceil().max(0.0) as u64;
            needs.push(w.need);
            // Counts of this window only: the recorder's single slot is this window.
            state.rec.windows = vec![Default::default()];
            state.rec.window_base = index as u32;
            let (n, after) = self.fewest(&state, &w, prev)?;
            schedule.push(n);
            state = after;
            prev = n;
            if index % 64 == 0 {
                progress(index as f64 / self.windows as f64 * 0.8);
            }
        }
        if let Some(e) = arrivals.take_error() {
            return Err(Error::Trace(e));
        }
        // Replay, raising the windows that missed the goal while the whole misses it.
        let mut repairs = 0;
        let mut round = 0;
        let rec = loop {
            let rec = self.replay(traffic, &schedule)?;
            let total_need: u64 = needs.iter().sum();
            let feasible = rec.arrived - rec.infeasible;
            let met_goal = feasible == 0
                || rec.met_slo as f64 >= goal * feasible as f64 - 1e-9
                || rec.met_slo >= total_need;
            if met_goal || round == REPAIR_ROUNDS {
                break rec;
            }
            round += 1;
            // One more replica, or a share of the window's count doubling each round
            // (1 %, 2 %, 4 % …), so that a large cluster near saturation converges in
            // a few replays.
            let share = 0.01 * f64::from(1u32 << (round - 1).min(16));
            for (i, c) in rec.windows.iter().enumerate() {
                if c.met < needs[i] && schedule[i] < self.max_replicas {
                    let bump = (f64::from(schedule[i]) * share).ceil().max(1.0) as u32;
                    schedule[i] = schedule[i].saturating_add(bump).min(self.max_replicas);
                    repairs += 1;
                }
            }
            progress(0.8 + 0.2 * f64::from(round) / f64::from(REPAIR_ROUNDS + 1));
        };
        progress(1.0);
        let replica_seconds = schedule
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let start = i as f64 * self.window;
                f64::from(n) * (self.horizon - start).clamp(0.0, self.window)
            })
            .sum();
        Ok(Oracle {
            capacity: 0.0,
            window: self.window,
            schedule,
            horizon: self.horizon,
            replica_seconds,
            attainment: rec.attainment(),
            requests: rec.arrived,
            infeasible: rec.infeasible,
            repairs,
        })
    }

    /// The fewest replicas meeting the window's need from `base`, and the state at the
    /// window's end with them. Starts from `guess` (the previous window's count).
    fn fewest(&self, base: &State, w: &Window, guess: u32) -> Result<(u32, State)> {
        let guess = guess.clamp(1, self.max_replicas);
        // (known to fail, known to meet with its state)
        let (mut lo, mut hi) = match self.try_count(base, w, guess) {
            Some(s) => {
                if guess == 1 {
                    return Ok((1, s));
                }
                // Most windows need what the previous one did: one more trial settles it.
                match self.try_count(base, w, guess - 1) {
                    None => return Ok((guess, s)),
                    Some(s1) => {
                        // Gallop down (traffic falls over a few windows, not to 0).
                        let mut hi = (guess - 1, s1);
                        let mut step = 2u32;
                        loop {
                            if hi.0 == 1 {
                                return Ok(hi);
                            }
                            let n = hi.0.saturating_sub(step).max(1);
                            match self.try_count(base, w, n) {
                                Some(s) => hi = (n, s),
                                None => break (n, hi),
                            }
                            step = step.saturating_mul(2);
                        }
                    }
                }
            }
            None => {
                let mut lo = guess;
                let mut step = 1u32;
                loop {
                    if lo >= self.max_replicas {
                        return Err(Error::Limit {
                            what: format!(
                                "the oracle needs, at {}, more replicas than",
                                format_duration(w.start)
                            ),
                            amount: group_thousands(u64::from(self.max_replicas)),
                            limit: format!(
                                "{} replicas simulated",
                                group_thousands(u64::from(self.max_replicas))
                            ),
                            advice: "loosen the SLO, or ".into(),
                            flag: "--max-replicas-simulated",
                        });
                    }
                    let n = lo.saturating_add(step).min(self.max_replicas);
                    if let Some(s) = self.try_count(base, w, n) {
                        break (lo, (n, s));
                    }
                    lo = n;
                    step = step.saturating_mul(2);
                }
            }
        };
        while hi.0 - lo > 1 {
            let mid = lo + (hi.0 - lo) / 2;
            match self.try_count(base, w, mid) {
                Some(s) => hi = (mid, s),
                None => lo = mid,
            }
        }
        Ok(hi)
    }

    /// Runs the window from `base` with `n` replicas: the state at its end when its
    /// requests meet the need, `None` when they cannot.
    fn try_count(&self, base: &State, w: &Window, n: u32) -> Option<State> {
        let mut st = base.clone();
        st.cluster.set_ready_now(n, w.start, &mut st.rec);
        let fails = |rec: &Recorder| {
            let c = rec.windows[0];
            c.met + (w.routed - c.settled) < w.need
        };
        for &(t, input, output) in &w.requests {
            Self::events_until(&mut st, t, true);
            self.arrive(&mut st, t, input, output, w.index);
            if fails(&st.rec) {
                return None;
            }
        }
        Self::events_until(&mut st, w.end, false);
        let c = st.rec.windows[0];
        if c.met >= w.need {
            return Some(st);
        }
        if fails(&st.rec) {
            return None;
        }
        // Follow the window's requests past its end, alone, until the need is decided.
        let at_end = st.clone();
        loop {
            let (t, slot) = st.cluster.tree.min();
            if !t.is_finite() {
                break;
            }
            st.cluster.replica_event(slot, t, &mut st.rec);
            let c = st.rec.windows[0];
            if c.met >= w.need {
                return Some(at_end);
            }
            if c.met + (w.routed - c.settled) < w.need {
                return None;
            }
        }
        (st.rec.windows[0].met >= w.need).then_some(at_end)
    }

    /// Replica events due before `t` (at `t` too when `inclusive`: events before an
    /// arrival at the same time, as in a run).
    fn events_until(st: &mut State, t: f64, inclusive: bool) {
        loop {
            let (te, slot) = st.cluster.tree.min();
            if !te.is_finite() || te > t || (!inclusive && te >= t) {
                break;
            }
            st.cluster.replica_event(slot, te, &mut st.rec);
        }
    }

    fn arrive(&self, st: &mut State, t: f64, input: u32, output: u32, window: usize) {
        st.rec.arrived += 1;
        let fits = self.check.fits(input, output);
        if !self.check.feasible(input, output) {
            st.rec.infeasible += 1;
        }
        if !fits {
            st.rec.rejected += 1;
            return;
        }
        st.cluster.route(
            Queued {
                arrival: t,
                input,
                output,
                tag: Tag {
                    input,
                    output,
                    window: window as u32,
                },
            },
            t,
            &mut st.rec,
        );
    }

    /// Plays the whole traffic with the schedule; counts per window.
    fn replay(&self, traffic: &Traffic, schedule: &[u32]) -> Result<Recorder> {
        let mut st = self.start_state(self.windows);
        let mut arrivals = traffic.arrivals()?;
        let mut next = arrivals.next_request();
        for (index, &n) in schedule.iter().enumerate() {
            let start = index as f64 * self.window;
            let end = ((index + 1) as f64 * self.window).min(self.horizon);
            let last = index + 1 == schedule.len();
            Self::events_until(&mut st, start, false);
            st.cluster.set_ready_now(n, start, &mut st.rec);
            while let Some(r) = next {
                if r.t >= end && !last {
                    break;
                }
                Self::events_until(&mut st, r.t, true);
                self.arrive(&mut st, r.t, r.input, r.output, index);
                next = arrivals.next_request();
            }
        }
        if let Some(e) = arrivals.take_error() {
            return Err(Error::Trace(e));
        }
        Self::events_until(&mut st, f64::INFINITY, true);
        Ok(st.rec)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ServerParams {
        ServerParams {
            max_batch: 8,
            prefill_seconds_per_token: 0.001,
            step: vec![0.01; 9],
            rate: vec![100.0; 9],
            kv_capacity: 10_000,
            queue_timeout: 60.0,
        }
    }

    #[test]
    fn capacity_falls_as_the_slo_tightens() {
        let mix = TokenMix {
            pairs: vec![(100, 50)],
            origin: "test".into(),
        };
        let loose = Slo {
            ttft: 5.0,
            e2e: 10.0,
            goal: 0.9,
            ..Slo::default()
        };
        let tight = Slo {
            ttft: 0.15,
            e2e: 1.0,
            goal: 0.9,
            ..Slo::default()
        };
        let a = Oracle::calibrate(&params(), &mix, &loose, 1).capacity;
        let b = Oracle::calibrate(&params(), &mix, &tight, 1).capacity;
        // Per request: 0.1 s of prefill, and decode shared by up to 8: under 10 req/s.
        assert!(a > 3.0 && a <= 10.0, "{a}");
        assert!(b < a, "{b} vs {a}");
        let o = Oracle {
            capacity: a,
            ..Oracle::default()
        };
        assert_eq!(o.replicas_for(0, 60.0), 1.0);
        assert_eq!(o.replicas_for((a * 60.0 * 3.0) as u64, 60.0), 3.0);
    }
}
