//! The Deployment's pods and the Service in front of them: pod start-up and shutdown,
//! the ReplicaSet controller's choice of pods on scale-down, least-outstanding routing,
//! and the next replica event to run.
//!
//! ## Pod lifecycle
//! Created → (scheduling delay) bound to a node, `startTime` set, phase `Pending` →
//! (container start) phase `Running`, not Ready, loading the model (its CPU counts as
//! loading) → (model load) the server answers and is scraped → (next readiness probe)
//! Ready, and receives requests. A pod costs replica-seconds from binding to its end.
//!
//! On scale-down, pods are chosen as the ReplicaSet controller ranks them: unscheduled
//! before scheduled, Pending before Running, not Ready before Ready, then the most
//! recently Ready, then the newest. A pod that is not Ready goes at once; a Ready one
//! leaves the endpoints, finishes what it holds and ends, or is killed when the
//! termination grace period runs out (its requests are aborted).
use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use rand::SeedableRng as _;
use rand::rngs::ChaCha8Rng;

use crate::model::{Lifecycle, Model, Series, Usage};
use crate::pipeline::{PodScrapes, Snapshot};
use crate::replica::{Queued, Replica, ServerParams};
use crate::stats::Recorder;

/// Where a pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    /// Created; maybe bound to a node, container not running yet.
    Pending,
    /// Container running, model loading or waiting for the readiness probe.
    Starting,
    Ready,
    /// Deleted, finishing its requests.
    Draining,
    /// Ended; the slot is free.
    Gone,
}

/// One simulated pod.
#[derive(Debug, Clone)]
pub struct SimPod {
    pub name: String,
    pub state: PodState,
    /// Bumped when the slot is reused, so old lifecycle events are ignored.
    generation: u32,
    pub created: f64,
    pub scheduled: Option<f64>,
    pub container_started: Option<f64>,
    pub loaded: Option<f64>,
    pub ready_at: Option<f64>,
    pub deleted: Option<f64>,
    start_delay: f64,
    load_delay: f64,
    pub replica: Replica,
    pub scrapes: PodScrapes,
}

impl SimPod {
    /// Whether the server is up and scraped by Prometheus.
    pub fn server_up(&self) -> bool {
        self.loaded.is_some() && self.state != PodState::Gone
    }

    /// Whether the container runs (metrics-server sees it).
    pub fn container_running(&self) -> bool {
        self.container_started.is_some() && self.state != PodState::Gone
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LifeKind {
    Scheduled,
    ContainerStarted,
    Loaded,
    Ready,
    GraceExpired,
}

#[derive(Debug, Clone, Copy)]
struct LifeEvent {
    t: f64,
    seq: u64,
    slot: usize,
    generation: u32,
    kind: LifeKind,
}

impl PartialEq for LifeEvent {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for LifeEvent {}
impl PartialOrd for LifeEvent {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for LifeEvent {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .t
            .total_cmp(&self.t)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// The earliest of many replicas' next-event times: a tournament tree, O(log n) to
/// update one replica (less when the winner above does not change) and O(1) to read the
/// minimum.
///
/// A node is `time bits << 32 | slot` in a `u128`: for times ≥ 0 the bits of an `f64`
/// order like the times, so a node's winner is the plain (branch-free) `min` of its
/// children, and equal times go to the lower slot.
#[derive(Debug, Clone)]
pub struct MinTree {
    cap: usize,
    nodes: Vec<u128>,
}

const EMPTY_NODE_TIME: u64 = 0x7ff0_0000_0000_0000; // +∞

#[inline]
fn node(t: f64, slot: usize) -> u128 {
    debug_assert!(t >= 0.0, "event times are not negative");
    (u128::from(t.to_bits()) << 32) | slot as u128
}

impl MinTree {
    pub fn new(cap: usize) -> Self {
        let cap = cap.next_power_of_two().max(2);
        let mut nodes = vec![0; 2 * cap];
        for (i, n) in nodes[cap..].iter_mut().enumerate() {
            *n = (u128::from(EMPTY_NODE_TIME) << 32) | i as u128;
        }
        for k in (1..cap).rev() {
            nodes[k] = nodes[2 * k].min(nodes[2 * k + 1]);
        }
        Self { cap, nodes }
    }

    /// Sets slot `i`'s next event time (`f64::INFINITY`: none).
    #[inline]
    pub fn set(&mut self, i: usize, t: f64) {
        if i >= self.cap {
            self.grow(i + 1);
        }
        let mut k = i + self.cap;
        let leaf = node(t, i);
        if self.nodes[k] == leaf {
            return;
        }
        self.nodes[k] = leaf;
        while k > 1 {
            let sibling = self.nodes[k ^ 1];
            let w = self.nodes[k].min(sibling);
            k /= 2;
            if self.nodes[k] == w {
                return;
            }
            self.nodes[k] = w;
        }
    }

    fn grow(&mut self, need: usize) {
        let mut bigger = MinTree::new(need.max(2 * self.cap));
        bigger.nodes[bigger.cap..bigger.cap + self.cap]
            .copy_from_slice(&self.nodes[self.cap..2 * self.cap]);
        for k in (1..bigger.cap).rev() {
            bigger.nodes[k] = bigger.nodes[2 * k].min(bigger.nodes[2 * k + 1]);
        }
        *self = bigger;
    }

    /// (earliest time, its slot).
    #[inline]
    pub fn min(&self) -> (f64, usize) {
        let n = self.nodes[1];
        (f64::from_bits((n >> 32) as u64), (n & 0xffff_ffff) as usize)
    }
}

const NONE: u32 = u32::MAX;

/// Ready replicas bucketed by their outstanding requests, for least-outstanding routing
/// in O(1): intrusive doubly-linked lists, one per count. Within a count, the replica
/// that reached it first is chosen first, so equally loaded replicas take turns.
#[derive(Debug, Clone, Default)]
struct Buckets {
    head: Vec<u32>,
    tail: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Each slot's bucket, or NONE when the slot is not routable.
    bucket: Vec<u32>,
    /// No bucket below this is occupied.
    min: usize,
    len: usize,
}

impl Buckets {
    fn ensure(&mut self, slot: usize, count: usize) {
        if self.bucket.len() <= slot {
            self.bucket.resize(slot + 1, NONE);
            self.next.resize(slot + 1, NONE);
            self.prev.resize(slot + 1, NONE);
        }
        if self.head.len() <= count {
            self.head.resize(count + 1, NONE);
            self.tail.resize(count + 1, NONE);
        }
    }

    fn remove(&mut self, slot: usize) {
        let Some(&b) = self.bucket.get(slot) else {
            return;
        };
        if b == NONE {
            return;
        }
        let (p, n) = (self.prev[slot], self.next[slot]);
        if p == NONE {
            self.head[b as usize] = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NONE {
            self.tail[b as usize] = p;
        } else {
            self.prev[n as usize] = p;
        }
        self.bucket[slot] = NONE;
        self.len -= 1;
    }

    /// Puts `slot` in bucket `count` (at the back), or leaves it when already there.
    #[inline]
    fn set(&mut self, slot: usize, count: usize) {
        if self.bucket.get(slot).is_some_and(|&b| b as usize == count) {
            return;
        }
        self.remove(slot);
        self.ensure(slot, count);
        let t = self.tail[count];
        self.prev[slot] = t;
        self.next[slot] = NONE;
        if t == NONE {
            self.head[count] = slot as u32;
        } else {
            self.next[t as usize] = slot as u32;
        }
        self.tail[count] = slot as u32;
        self.bucket[slot] = count as u32;
        self.len += 1;
        if count < self.min {
            self.min = count;
        }
    }

    /// The least loaded replica.
    #[inline]
    fn pick(&mut self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        while self.head[self.min] == NONE {
            self.min += 1;
        }
        Some(self.head[self.min] as usize)
    }
}

/// Pod counts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Created, not Ready (Pending or Starting).
    pub starting: u32,
    pub ready: u32,
    pub draining: u32,
}

/// The Deployment, its pods and the Service.
#[derive(Debug)]
pub struct Cluster {
    pub params: ServerParams,
    lifecycle: Lifecycle,
    usage: Usage,
    memory_base: f64,
    memory_per_request: f64,
    pub pods: Vec<SimPod>,
    free: Vec<usize>,
    /// Next event time of each replica.
    pub tree: MinTree,
    /// Ready replicas by outstanding requests.
    routing: Buckets,
    /// Requests waiting at the Service because no replica is ready.
    pending: VecDeque<Queued>,
    life: BinaryHeap<LifeEvent>,
    life_seq: u64,
    rng: ChaCha8Rng,
    next_id: u64,
    base_name: String,
    /// Pods bound to a node and not yet ended: what costs money.
    billable: u32,
    billable_since: f64,
    replica_seconds: f64,
    frozen: bool,
}

impl Cluster {
    /// A cluster with `initial` Ready pods, warm since long before t = 0.
    pub fn new(model: &Model, deployment: &str, initial: u32, seed: u64) -> Self {
        let mut c = Self {
            params: ServerParams::from_model(model),
            lifecycle: model.lifecycle.clone(),
            usage: model.usage.clone(),
            memory_base: model.usage.memory.base.as_approximate_f64(),
            memory_per_request: model.usage.memory.per_request.as_approximate_f64(),
            pods: Vec::new(),
            free: Vec::new(),
            tree: MinTree::new(16),
            routing: Buckets::default(),
            pending: VecDeque::new(),
            life: BinaryHeap::new(),
            life_seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_11fe),
            next_id: 0,
            base_name: deployment.to_string(),
            billable: 0,
            billable_since: 0.0,
            replica_seconds: 0.0,
            frozen: false,
        };
        let warm = -3600.0;
        for _ in 0..initial {
            let slot = c.new_pod(warm);
            let p = &mut c.pods[slot];
            p.scheduled = Some(warm);
            p.container_started = Some(warm);
            p.loaded = Some(warm);
            p.replica = Replica::new(0.0);
            c.billable += 1;
            c.make_ready(slot, warm, None);
        }
        c
    }

    fn new_pod(&mut self, now: f64) -> usize {
        self.next_id += 1;
        let start_delay = self.lifecycle.container_start.sample(&mut self.rng);
        let load_delay = self.lifecycle.model_load.sample(&mut self.rng);
        let pod = SimPod {
            name: format!("{}-{:05}", self.base_name, self.next_id),
            state: PodState::Pending,
            generation: 0,
            created: now,
            scheduled: None,
            container_started: None,
            loaded: None,
            ready_at: None,
            deleted: None,
            start_delay,
            load_delay,
            replica: Replica::new(now),
            scrapes: PodScrapes::default(),
        };
        match self.free.pop() {
            Some(slot) => {
                let generation = self.pods[slot].generation + 1;
                self.pods[slot] = SimPod { generation, ..pod };
                slot
            }
            None => {
                self.pods.push(pod);
                self.pods.len() - 1
            }
        }
    }

    fn push_life(&mut self, t: f64, slot: usize, kind: LifeKind) {
        self.life_seq += 1;
        self.life.push(LifeEvent {
            t,
            seq: self.life_seq,
            slot,
            generation: self.pods[slot].generation,
            kind,
        });
    }

    /// When the next pod lifecycle event is due.
    pub fn next_life(&self) -> f64 {
        self.life.peek().map_or(f64::INFINITY, |e| e.t)
    }

    /// Runs the lifecycle events due at `now`.
    pub fn run_life(&mut self, now: f64, rec: &mut Recorder) {
        while let Some(&ev) = self.life.peek() {
            if ev.t > now {
                break;
            }
            self.life.pop();
            let pod = &self.pods[ev.slot];
            if pod.generation != ev.generation || pod.state == PodState::Gone {
                continue;
            }
            match ev.kind {
                LifeKind::Scheduled => {
                    self.integrate(ev.t);
                    self.billable += 1;
                    let pod = &mut self.pods[ev.slot];
                    pod.scheduled = Some(ev.t);
                    let at = ev.t + pod.start_delay;
                    self.push_life(at, ev.slot, LifeKind::ContainerStarted);
                }
                LifeKind::ContainerStarted => {
                    let pod = &mut self.pods[ev.slot];
                    pod.container_started = Some(ev.t);
                    pod.state = PodState::Starting;
                    let at = ev.t + pod.load_delay;
                    self.push_life(at, ev.slot, LifeKind::Loaded);
                }
                LifeKind::Loaded => {
                    let period = self.lifecycle.readiness_probe_period.0;
                    let pod = &mut self.pods[ev.slot];
                    pod.loaded = Some(ev.t);
                    pod.replica = Replica::new(ev.t);
                    let started = pod.container_started.unwrap_or(ev.t);
                    let ready = if period > 0.0 {
                        started + ((ev.t - started) / period).ceil() * period
                    } else {
                        ev.t
                    };
                    if ready <= ev.t {
                        self.make_ready(ev.slot, ev.t, Some(rec));
                    } else {
                        self.push_life(ready, ev.slot, LifeKind::Ready);
                    }
                }
                LifeKind::Ready => self.make_ready(ev.slot, ev.t, Some(rec)),
                LifeKind::GraceExpired => {
                    if self.pods[ev.slot].state == PodState::Draining {
                        self.pods[ev.slot].replica.abort_all(ev.t, rec);
                        self.gone(ev.slot, ev.t);
                    }
                }
            }
        }
    }

    fn make_ready(&mut self, slot: usize, now: f64, rec: Option<&mut Recorder>) {
        let pod = &mut self.pods[slot];
        pod.state = PodState::Ready;
        pod.ready_at = Some(now);
        self.update_routing(slot);
        if let Some(rec) = rec {
            self.dispatch_pending(now, rec);
        }
    }

    fn gone(&mut self, slot: usize, now: f64) {
        self.integrate(now);
        let pod = &mut self.pods[slot];
        if pod.scheduled.is_some() {
            self.billable -= 1;
        }
        pod.state = PodState::Gone;
        pod.scrapes = PodScrapes::default();
        pod.replica = Replica::new(now);
        self.tree.set(slot, f64::INFINITY);
        self.routing.remove(slot);
        self.free.push(slot);
    }

    fn integrate(&mut self, now: f64) {
        if self.frozen {
            return;
        }
        if now > self.billable_since {
            self.replica_seconds += f64::from(self.billable) * (now - self.billable_since);
            self.billable_since = now;
        }
    }

    /// Stops counting replica-seconds at `horizon` (the traffic's end).
    pub fn freeze_cost(&mut self, horizon: f64) {
        self.integrate(horizon);
        self.frozen = true;
    }

    /// Replica-seconds so far (bound pods × time).
    pub fn replica_seconds(&mut self, now: f64) -> f64 {
        self.integrate(now);
        self.replica_seconds
    }

    /// Pods that have not been deleted (what `scale.status.replicas` counts).
    pub fn active(&self) -> u32 {
        self.pods
            .iter()
            .filter(|p| {
                matches!(
                    p.state,
                    PodState::Pending | PodState::Starting | PodState::Ready
                )
            })
            .count() as u32
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for p in &self.pods {
            match p.state {
                PodState::Pending | PodState::Starting => c.starting += 1,
                PodState::Ready => c.ready += 1,
                PodState::Draining => c.draining += 1,
                PodState::Gone => {}
            }
        }
        c
    }

    /// Sets the Deployment's replica count: creates pods, or deletes them in the
    /// ReplicaSet controller's order.
    pub fn scale_to(&mut self, n: u32, now: f64, rec: &mut Recorder) {
        let active = self.active();
        if n > active {
            for _ in active..n {
                let slot = self.new_pod(now);
                let delay = self.lifecycle.scheduling.sample(&mut self.rng);
                self.push_life(now + delay, slot, LifeKind::Scheduled);
            }
            return;
        }
        let mut victims: Vec<usize> = (0..self.pods.len())
            .filter(|&i| {
                matches!(
                    self.pods[i].state,
                    PodState::Pending | PodState::Starting | PodState::Ready
                )
            })
            .collect();
        victims.sort_by(|&a, &b| delete_order(&self.pods[a], &self.pods[b]));
        for slot in victims.into_iter().take((active - n) as usize) {
            self.delete(slot, now, rec);
        }
    }

    fn delete(&mut self, slot: usize, now: f64, rec: &mut Recorder) {
        if self.pods[slot].state != PodState::Ready {
            self.gone(slot, now);
            return;
        }
        self.routing.remove(slot);
        let pod = &mut self.pods[slot];
        pod.state = PodState::Draining;
        pod.deleted = Some(now);
        let grace = self.lifecycle.termination_grace_period.0;
        if pod.replica.is_idle() {
            self.gone(slot, now);
        } else if grace <= 0.0 {
            pod.replica.abort_all(now, rec);
            self.gone(slot, now);
        } else {
            self.push_life(now + grace, slot, LifeKind::GraceExpired);
        }
    }

    /// Routes a request to the ready replica with the fewest outstanding requests (ties:
    /// in turn), or queues it at the Service when none is ready.
    #[inline]
    pub fn route(&mut self, req: Queued, now: f64, rec: &mut Recorder) {
        let Some(slot) = self.routing.pick() else {
            self.pending.push_back(req);
            rec.enqueued(1);
            return;
        };
        let pod = &mut self.pods[slot];
        pod.replica.arrive(req, now, &self.params, rec);
        self.tree.set(slot, pod.replica.next_event(&self.params));
        self.update_routing(slot);
    }

    /// Re-keys a Ready replica after its outstanding count changed.
    #[inline]
    fn update_routing(&mut self, slot: usize) {
        let pod = &self.pods[slot];
        if pod.state == PodState::Ready {
            self.routing.set(slot, pod.replica.outstanding());
        }
    }

    /// Runs replica `slot`'s due event.
    #[inline]
    pub fn replica_event(&mut self, slot: usize, now: f64, rec: &mut Recorder) {
        let pod = &mut self.pods[slot];
        let before = pod.replica.outstanding();
        pod.replica.on_event(now, &self.params, rec);
        if pod.state == PodState::Draining && pod.replica.is_idle() {
            self.gone(slot, now);
        } else {
            let t = pod.replica.next_event(&self.params);
            let changed = pod.replica.outstanding() != before;
            self.tree.set(slot, t);
            if changed {
                self.update_routing(slot);
            }
        }
    }

    fn dispatch_pending(&mut self, now: f64, rec: &mut Recorder) {
        while let Some(req) = self.pending.pop_front() {
            rec.dequeued(1);
            if req.arrival + self.params.queue_timeout < now {
                rec.waited(self.params.queue_timeout);
                rec.timed_out(1);
                continue;
            }
            // Its wait goes on at the replica and is counted there, from its arrival.
            self.route(req, now, rec);
        }
    }

    /// Drops requests that waited past the timeout, at the Service and at the replicas.
    pub fn purge_expired(&mut self, now: f64, rec: &mut Recorder) {
        while let Some(req) = self.pending.front() {
            if req.arrival + self.params.queue_timeout >= now {
                break;
            }
            self.pending.pop_front();
            rec.dequeued(1);
            rec.waited(self.params.queue_timeout);
            rec.timed_out(1);
        }
        for slot in 0..self.pods.len() {
            if self.pods[slot].state != PodState::Gone {
                self.pods[slot]
                    .replica
                    .purge_expired(now, &self.params, rec);
                self.update_routing(slot);
            }
        }
    }

    /// Gives up on requests still waiting at the Service (end of the run).
    pub fn expire_pending(&mut self, rec: &mut Recorder) {
        let n = self.pending.len() as u64;
        for _ in 0..n {
            rec.waited(self.params.queue_timeout);
        }
        self.pending.clear();
        rec.dequeued(n);
        rec.timed_out(n);
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Requests running on all replicas.
    pub fn running(&self) -> usize {
        self.pods
            .iter()
            .filter(|p| p.state != PodState::Gone)
            .map(|p| p.replica.running())
            .sum()
    }

    /// A container's cumulative CPU seconds at `now` (its replica advanced to `now`).
    fn cpu_total(&self, pod: &SimPod, now: f64) -> f64 {
        let Some(started) = pod.container_started else {
            return 0.0;
        };
        let cpu = &self.usage.cpu;
        let load_end = pod.loaded.unwrap_or(now).min(now);
        let c = pod.replica.counters();
        cpu.idle_cores * (now - started)
            + cpu.loading_cores * (load_end - started).max(0.0)
            + cpu.busy_cores * c.gpu_busy_seconds
            + cpu.per_request_core_seconds * c.completed
            + cpu.per_token_core_seconds * c.generation_tokens
    }

    /// A metrics-server scrape of every running container.
    pub fn scrape_resources(&mut self, now: f64) {
        for i in 0..self.pods.len() {
            if !self.pods[i].container_running() {
                continue;
            }
            self.advance(i, now);
            let cpu = self.cpu_total(&self.pods[i], now);
            let memory = self.memory_base
                + self.memory_per_request * self.pods[i].replica.outstanding() as f64;
            self.pods[i].scrapes.scrape_resources(now, cpu, memory);
        }
    }

    /// A Prometheus scrape of every server that is up.
    pub fn scrape_series(&mut self, now: f64, retain: f64, rec: &mut Recorder) {
        for i in 0..self.pods.len() {
            if !self.pods[i].server_up() {
                continue;
            }
            self.advance(i, now);
            self.pods[i].replica.purge_expired(now, &self.params, rec);
            self.update_routing(i);
            let r = &self.pods[i].replica;
            let c = r.counters();
            let mut values = [0.0; Series::ALL.len()];
            values[Series::Waiting.index()] = r.waiting() as f64;
            values[Series::Running.index()] = r.running() as f64;
            values[Series::Outstanding.index()] = r.outstanding() as f64;
            values[Series::KvCacheUsage.index()] = r.kv_usage(&self.params);
            values[Series::RequestsTotal.index()] = c.requests;
            values[Series::CompletedTotal.index()] = c.completed;
            values[Series::PromptTokensTotal.index()] = c.prompt_tokens;
            values[Series::GenerationTokensTotal.index()] = c.generation_tokens;
            values[Series::GpuBusySecondsTotal.index()] = c.gpu_busy_seconds;
            let cpu = self.cpu_total(&self.pods[i], now);
            values[Series::CpuSecondsTotal.index()] = cpu;
            self.pods[i]
                .scrapes
                .scrape_series(Snapshot { t: now, values }, retain);
        }
    }

    fn advance(&mut self, slot: usize, now: f64) {
        let pod = &mut self.pods[slot];
        pod.replica.advance(now, &self.params);
        let t = pod.replica.next_event(&self.params);
        self.tree.set(slot, t);
    }
}

/// The ReplicaSet controller's deletion order (`ActivePodsWithRanks`, simplified): the
/// first pods in this order are deleted first.
fn delete_order(a: &SimPod, b: &SimPod) -> Ordering {
    let key = |p: &SimPod| {
        (
            p.scheduled.is_some(),
            p.container_started.is_some(),
            p.state == PodState::Ready,
        )
    };
    key(a)
        .cmp(&key(b))
        // More recently ready first, then newer first.
        .then_with(|| {
            b.ready_at
                .unwrap_or(f64::MIN)
                .total_cmp(&a.ready_at.unwrap_or(f64::MIN))
        })
        .then_with(|| b.created.total_cmp(&a.created))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Slo;

    #[test]
    fn the_min_tree_tracks_the_earliest_slot_and_grows() {
        let mut t = MinTree::new(2);
        t.set(0, 5.0);
        t.set(1, 3.0);
        assert_eq!(t.min(), (3.0, 1));
        t.set(7, 1.0);
        assert_eq!(t.min(), (1.0, 7));
        t.set(7, f64::INFINITY);
        assert_eq!(t.min(), (3.0, 1));
    }

    fn quick_model() -> Model {
        Model::load(
            Some(
                "lifecycle:\n  scheduling: {constant: 1s}\n  containerStart: {constant: 2s}\n  modelLoad: {constant: 10s}\n  readinessProbePeriod: 5s\n",
            ),
            "m.yaml",
        )
        .expect("valid")
    }

    #[test]
    fn a_new_pod_is_ready_at_the_first_probe_after_its_model_loads() {
        let model = quick_model();
        let mut rec = Recorder::new(Slo::default());
        let mut c = Cluster::new(&model, "srv", 1, 1);
        c.scale_to(2, 0.0, &mut rec);
        assert_eq!(
            c.counts(),
            Counts {
                starting: 1,
                ready: 1,
                draining: 0
            }
        );
        // scheduled at 1, container at 3, loaded at 13, probes at 3, 8, 13 → ready at 13.
        let mut t = 0.0;
        while c.counts().ready < 2 {
            t = c.next_life();
            c.run_life(t, &mut rec);
        }
        assert_eq!(t, 13.0);
        assert_eq!(c.pods[1].scheduled, Some(1.0));
    }

    #[test]
    fn scale_down_removes_starting_pods_first_then_the_newest_ready() {
        let model = quick_model();
        let mut rec = Recorder::new(Slo::default());
        let mut c = Cluster::new(&model, "srv", 2, 1);
        c.scale_to(3, 0.0, &mut rec);
        c.scale_to(2, 0.5, &mut rec);
        assert_eq!(
            c.counts(),
            Counts {
                starting: 0,
                ready: 2,
                draining: 0
            }
        );
        c.scale_to(1, 1.0, &mut rec);
        assert_eq!(c.counts().ready, 1);
        assert_eq!(c.active(), 1);
    }

    #[test]
    fn a_draining_pod_finishes_its_requests_then_ends() {
        let model = quick_model();
        let mut rec = Recorder::new(Slo::default());
        let mut c = Cluster::new(&model, "srv", 1, 1);
        c.route(
            Queued {
                arrival: 0.0,
                input: 100,
                output: 20,
            },
            0.0,
            &mut rec,
        );
        c.scale_to(0, 0.0, &mut rec);
        assert_eq!(c.counts().draining, 1);
        loop {
            let (t, slot) = c.tree.min();
            if !t.is_finite() {
                break;
            }
            c.replica_event(slot, t, &mut rec);
        }
        assert_eq!(rec.completed, 1);
        assert_eq!(c.counts(), Counts::default());
    }
}
