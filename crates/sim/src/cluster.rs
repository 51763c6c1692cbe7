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
use crate::replica::{self, ServerParams};
use crate::stats::{Recorder, Tag};

/// A simulated request waiting or prefilling (tagged with its size and window).
pub type Queued = replica::Queued<Tag>;
/// A simulated replica.
type Replica = replica::Replica<Tag>;

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
/// A node is `time bits << 64 | slot` in a `u128`: for times ≥ 0 the bits of an `f64`
/// order like the times, so nodes order like `(time, slot)`, equal times going to the
/// lower slot.
///
/// The tree is [`ARITY`]-ary, the children of a node in one cache-aligned group, so that
/// a few hundred replicas take three levels. Node 1 is the root, node `k`'s children are
/// group `k` (nodes `ARITY·k ..`), and the leaves are nodes `cap .. 2·cap`.
#[derive(Debug, Clone)]
pub struct MinTree {
    /// Leaves: a power of [`ARITY`].
    cap: usize,
    groups: Vec<Group>,
}

/// Children per node of the [`MinTree`] (a power of two).
const ARITY: usize = 8;
const ARITY_SHIFT: u32 = ARITY.trailing_zeros();
const ARITY_MASK: usize = ARITY - 1;

/// The children of one node.
#[derive(Debug, Clone, Copy)]
#[repr(align(64))]
struct Group([u128; ARITY]);

impl Group {
    /// The least child. Times are compared alone, the earlier child winning ties: the
    /// children of a node cover increasing slots, so this is the least `(time, slot)`.
    #[inline]
    fn min(&self) -> u128 {
        #[inline]
        fn pick(a: (u64, usize), b: (u64, usize)) -> (u64, usize) {
            if b.0 < a.0 { b } else { a }
        }
        let x = &self.0;
        let t = |j: usize| ((x[j] >> 64) as u64, j);
        let (_, j) = pick(
            pick(pick(t(0), t(1)), pick(t(2), t(3))),
            pick(pick(t(4), t(5)), pick(t(6), t(7))),
        );
        x[j]
    }
}

const EMPTY_NODE_TIME: u64 = 0x7ff0_0000_0000_0000; // +∞

#[inline]
fn node(t: f64, slot: usize) -> u128 {
    debug_assert!(t >= 0.0, "event times are not negative");
    (u128::from(t.to_bits()) << 64) | slot as u128
}

impl MinTree {
    pub fn new(cap: usize) -> Self {
        let mut leaves = ARITY;
        while leaves < cap {
            leaves *= ARITY;
        }
        let mut tree = Self {
            cap: leaves,
            groups: vec![Group([0; ARITY]); 2 * leaves / ARITY],
        };
        for i in 0..leaves {
            *tree.node_mut(leaves + i) = (u128::from(EMPTY_NODE_TIME) << 64) | i as u128;
        }
        tree.rebuild();
        tree
    }

    #[inline]
    fn node_mut(&mut self, k: usize) -> &mut u128 {
        &mut self.groups[k >> ARITY_SHIFT].0[k & ARITY_MASK]
    }

    /// Recomputes every inner node from the leaves, level by level (level `l` is nodes
    /// `ARITY^l .. 2·ARITY^l`).
    fn rebuild(&mut self) {
        let mut level = self.cap / ARITY;
        while level >= 1 {
            for k in level..2 * level {
                let w = self.groups[k].min();
                *self.node_mut(k) = w;
            }
            level /= ARITY;
        }
    }

    /// Sets slot `i`'s next event time (`f64::INFINITY`: none).
    ///
    /// Climbing from the leaf, a node changes only when the new value beats it (it
    /// becomes the new value) or when the old value was its winner (it becomes the least
    /// of its children again); otherwise nothing above changes either.
    #[inline]
    pub fn set(&mut self, i: usize, t: f64) {
        if i >= self.cap {
            self.grow(i + 1);
        }
        let mut k = i + self.cap;
        let mut new = node(t, i);
        let n = self.node_mut(k);
        let mut old = *n;
        if old == new {
            return;
        }
        *n = new;
        while k > 1 {
            let parent = k >> ARITY_SHIFT;
            let was = *self.node_mut(parent);
            if new < was {
                // The new value beats every other child too.
            } else if old == was {
                // The winner got later: the least child wins now.
                new = self.groups[parent].min();
            } else {
                return;
            }
            *self.node_mut(parent) = new;
            old = was;
            k = parent;
        }
    }

    fn grow(&mut self, need: usize) {
        let mut bigger = MinTree::new(need.max(ARITY * self.cap));
        for i in 0..self.cap {
            let leaf = *self.node_mut(self.cap + i);
            *bigger.node_mut(bigger.cap + i) = leaf;
        }
        bigger.rebuild();
        *self = bigger;
    }

    /// (earliest time, its slot).
    #[inline]
    pub fn min(&self) -> (f64, usize) {
        let n = self.groups[0].0[1];
        (f64::from_bits((n >> 64) as u64), (n & 0xffff_ffff) as usize)
    }
}

const NONE: u32 = u32::MAX;

/// Ready replicas bucketed by their outstanding requests, for least-outstanding routing
/// in O(1): intrusive doubly-linked lists, one per count. Within a count, the replica
/// that reached it first is chosen first, so equally loaded replicas take turns.
#[derive(Debug, Clone, Default)]
struct Buckets {
    /// `[head, tail]` of each count's list.
    ends: Vec<[u32; 2]>,
    /// Each slot's neighbours and bucket (NONE when the slot is not routable).
    links: Vec<Link>,
    /// No bucket below this is occupied.
    min: usize,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Link {
    next: u32,
    prev: u32,
    bucket: u32,
}

const UNLINKED: Link = Link {
    next: NONE,
    prev: NONE,
    bucket: NONE,
};

impl Buckets {
    /// Whether `slot` is routable.
    #[inline]
    fn contains(&self, slot: usize) -> bool {
        self.links.get(slot).is_some_and(|l| l.bucket != NONE)
    }

    fn remove(&mut self, slot: usize) {
        if self.contains(slot) {
            self.unlink(slot);
        }
    }

    /// Takes a routable `slot` out of its list.
    #[inline]
    fn unlink(&mut self, slot: usize) {
        let Link { next, prev, bucket } = self.links[slot];
        if prev == NONE {
            self.ends[bucket as usize][0] = next;
        } else {
            self.links[prev as usize].next = next;
        }
        if next == NONE {
            self.ends[bucket as usize][1] = prev;
        } else {
            self.links[next as usize].prev = prev;
        }
        self.links[slot].bucket = NONE;
        self.len -= 1;
    }

    /// Puts `slot` in bucket `count` (at the back), or leaves it when already there.
    #[inline]
    fn set(&mut self, slot: usize, count: usize) {
        if slot >= self.links.len() {
            self.links.resize(slot + 1, UNLINKED);
        }
        let b = self.links[slot].bucket;
        if b as usize == count {
            return;
        }
        if b != NONE {
            self.unlink(slot);
        }
        if count >= self.ends.len() {
            self.ends.resize(count + 1, [NONE; 2]);
        }
        let tail = self.ends[count][1];
        self.links[slot] = Link {
            next: NONE,
            prev: tail,
            bucket: count as u32,
        };
        if tail == NONE {
            self.ends[count][0] = slot as u32;
        } else {
            self.links[tail as usize].next = slot as u32;
        }
        self.ends[count][1] = slot as u32;
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
        while self.ends[self.min][0] == NONE {
            self.min += 1;
        }
        Some(self.ends[self.min][0] as usize)
    }
}

/// The draws of pod start-up times. `ChaCha8Rng` is not `Clone`; a clone is the same
/// stream at the same position (seed, stream and word position).
#[derive(Debug)]
struct PodRng(ChaCha8Rng);

impl Clone for PodRng {
    fn clone(&self) -> Self {
        let mut r = ChaCha8Rng::from_seed(self.0.get_seed());
        r.set_stream(self.0.get_stream());
        r.set_word_pos(self.0.get_word_pos());
        PodRng(r)
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

/// The Deployment, its pods and the Service. Cloneable, so that the oracle can try
/// several replica counts from the same state.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub params: ServerParams,
    lifecycle: Lifecycle,
    usage: Usage,
    memory_base: f64,
    memory_per_request: f64,
    pub pods: Vec<SimPod>,
    /// Each pod's server, apart from the pods: the event loop touches only these.
    replicas: Vec<Replica>,
    free: Vec<usize>,
    /// Next event time of each replica.
    pub tree: MinTree,
    /// Ready replicas by outstanding requests.
    routing: Buckets,
    /// Requests waiting at the Service because no replica is ready.
    pending: VecDeque<Queued>,
    life: BinaryHeap<LifeEvent>,
    life_seq: u64,
    rng: PodRng,
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
            replicas: Vec::new(),
            free: Vec::new(),
            tree: MinTree::new(16),
            routing: Buckets::default(),
            pending: VecDeque::new(),
            life: BinaryHeap::new(),
            life_seq: 0,
            rng: PodRng(ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_11fe)),
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
            c.replicas[slot] = Replica::new(0.0);
            c.billable += 1;
            c.make_ready(slot, warm, None);
        }
        c
    }

    /// Sets the Ready pods to `n` at once: new pods are Ready at `now` without
    /// starting up (billed from `now`); surplus ones leave as on a scale-down. What the
    /// oracle's instant controller does.
    pub fn set_ready_now(&mut self, n: u32, now: f64, rec: &mut Recorder) {
        let active = self.active();
        if n <= active {
            self.scale_to(n, now, rec);
            return;
        }
        self.integrate(now);
        for _ in active..n {
            let slot = self.new_pod(now);
            let p = &mut self.pods[slot];
            p.scheduled = Some(now);
            p.container_started = Some(now);
            p.loaded = Some(now);
            self.billable += 1;
            self.make_ready(slot, now, Some(&mut *rec));
        }
    }

    fn new_pod(&mut self, now: f64) -> usize {
        self.next_id += 1;
        let start_delay = self.lifecycle.container_start.sample(&mut self.rng.0);
        let load_delay = self.lifecycle.model_load.sample(&mut self.rng.0);
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
            scrapes: PodScrapes::default(),
        };
        match self.free.pop() {
            Some(slot) => {
                let generation = self.pods[slot].generation + 1;
                self.pods[slot] = SimPod { generation, ..pod };
                self.replicas[slot] = Replica::new(now);
                slot
            }
            None => {
                self.pods.push(pod);
                self.replicas.push(Replica::new(now));
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
                    let started = pod.container_started.unwrap_or(ev.t);
                    self.replicas[ev.slot] = Replica::new(ev.t);
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
                        self.replicas[ev.slot].abort_all(ev.t, rec);
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
        self.routing.set(slot, self.replicas[slot].outstanding());
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
        self.replicas[slot] = Replica::new(now);
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
                let delay = self.lifecycle.scheduling.sample(&mut self.rng.0);
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
        if self.replicas[slot].is_idle() {
            self.gone(slot, now);
        } else if grace <= 0.0 {
            self.replicas[slot].abort_all(now, rec);
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
        let r = &mut self.replicas[slot];
        r.arrive(req, now, &self.params, rec);
        self.tree.set(slot, r.next_event(&self.params));
        self.routing.set(slot, r.outstanding());
    }

    /// Re-keys a Ready replica after its outstanding count changed (the routable
    /// replicas are exactly the Ready ones).
    #[inline]
    fn update_routing(&mut self, slot: usize) {
        if self.routing.contains(slot) {
            self.routing.set(slot, self.replicas[slot].outstanding());
        }
    }

    /// Runs replica `slot`'s due event.
    #[inline]
    pub fn replica_event(&mut self, slot: usize, now: f64, rec: &mut Recorder) {
        let r = &mut self.replicas[slot];
        let before = r.outstanding();
        r.on_event(now, &self.params, rec);
        if r.is_idle() && self.pods[slot].state == PodState::Draining {
            self.gone(slot, now);
        } else {
            let t = r.next_event(&self.params);
            let changed = r.outstanding() != before;
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
                rec.timed_out(req.tag);
                continue;
            }
            // Its wait goes on at the replica and is counted there, from its arrival.
            self.route(req, now, rec);
        }
    }

    /// Drops requests that waited past the timeout, at the Service and at the replicas.
    pub fn purge_expired(&mut self, now: f64, rec: &mut Recorder) {
        while let Some(&req) = self.pending.front() {
            if req.arrival + self.params.queue_timeout >= now {
                break;
            }
            self.pending.pop_front();
            rec.dequeued(1);
            rec.waited(self.params.queue_timeout);
            rec.timed_out(req.tag);
        }
        for slot in 0..self.pods.len() {
            if self.pods[slot].state != PodState::Gone {
                self.replicas[slot].purge_expired(now, &self.params, rec);
                self.update_routing(slot);
            }
        }
    }

    /// Gives up on requests still waiting at the Service (end of the run).
    pub fn expire_pending(&mut self, rec: &mut Recorder) {
        let n = self.pending.len() as u64;
        for req in self.pending.drain(..) {
            rec.waited(self.params.queue_timeout);
            rec.timed_out(req.tag);
        }
        rec.dequeued(n);
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Requests running on all replicas.
    pub fn running(&self) -> usize {
        self.pods
            .iter()
            .zip(&self.replicas)
            .filter(|(p, _)| p.state != PodState::Gone)
            .map(|(_, r)| r.running())
            .sum()
    }

    /// A container's cumulative CPU seconds at `now` (its replica advanced to `now`).
    fn cpu_total(&self, slot: usize, now: f64) -> f64 {
        let pod = &self.pods[slot];
        let Some(started) = pod.container_started else {
            return 0.0;
        };
        let cpu = &self.usage.cpu;
        let load_end = pod.loaded.unwrap_or(now).min(now);
        let c = self.replicas[slot].counters();
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
            let cpu = self.cpu_total(i, now);
            let memory =
                self.memory_base + self.memory_per_request * self.replicas[i].outstanding() as f64;
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
            self.replicas[i].purge_expired(now, &self.params, rec);
            self.update_routing(i);
            let r = &self.replicas[i];
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
            let cpu = self.cpu_total(i, now);
            values[Series::CpuSecondsTotal.index()] = cpu;
            self.pods[i]
                .scrapes
                .scrape_series(Snapshot { t: now, values }, retain);
        }
    }

    fn advance(&mut self, slot: usize, now: f64) {
        let r = &mut self.replicas[slot];
        r.advance(now, &self.params);
        let t = r.next_event(&self.params);
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

    #[test]
    fn the_min_tree_agrees_with_brute_force_ties_included() {
        use rand::Rng as _;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut tree = MinTree::new(2);
        let mut times = vec![f64::INFINITY; 700];
        for _ in 0..40_000 {
            let r = rng.next_u64();
            // Mostly the earliest slot moves later, as when a replica runs its event.
            let (t_min, slot_min) = tree.min();
            let slot = if r % 3 != 0 && t_min.is_finite() {
                slot_min
            } else {
                (r >> 32) as usize % times.len()
            };
            let t = match r % 11 {
                0 => f64::INFINITY,
                // Few distinct times, so that many tie.
                _ => f64::from((r >> 8) as u16 % 500) * 0.25,
            };
            times[slot] = t;
            tree.set(slot, t);
            let want = times
                .iter()
                .enumerate()
                .filter(|(_, t)| t.is_finite())
                .min_by(|a, b| a.1.total_cmp(b.1).then(a.0.cmp(&b.0)))
                .map(|(i, &t)| (t, i));
            let (t, i) = tree.min();
            assert_eq!(want, t.is_finite().then_some((t, i)));
        }
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
                tag: Tag::default(),
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
