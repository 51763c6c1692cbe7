//! One inference replica: a continuous-batching LLM server (vLLM / TGI style).
//!
//! ## The model
//! - Requests wait in the replica's FIFO queue until they are **admitted**: a batch slot
//!   is free (`maxBatch`) and their prompt plus output fit in the KV cache beside the
//!   admitted ones. A request waiting longer than the queue timeout is dropped.
//! - Admitted requests are **prefilled** one at a time at `prefillTokensPerSecond`; the
//!   prefill yields the first token (TTFT). Decoding pauses while a prompt is prefilled.
//! - Then every decoding request gains one token per **decode step**, whose duration
//!   depends on the batch size. All decoding requests advance together, so the replica
//!   keeps one clock `v` = tokens generated per sequence since the batch was last empty,
//!   advancing at `1 / step(n)` per second; a request needing `k` more tokens finishes
//!   when `v` reaches `v_start + k`. Each request thus costs O(log n) work, not one
//!   event per token.
//!
//! Alone on a replica, a request of `i` prompt and `o` output tokens takes
//! `i / prefill + (o - 1) × step(1)`: its service time.
//!
//! The same code runs in simulated time (`podscale simulate`, where the recorder counts
//! outcomes) and in wall-clock time (`podscale emulate`, where the observer answers HTTP
//! requests): each request carries a tag `T` (`()` in the simulator, free of cost) that
//! comes back in the [`Observer`] calls.
use std::collections::VecDeque;

use crate::model::Model;

/// What a replica reports as requests move through it. The simulator's recorder counts;
/// the emulator answers the request a tag names.
pub trait Observer<T> {
    /// `n` requests joined a queue.
    fn enqueued(&mut self, n: u64);
    /// `n` requests left a queue (admitted, timed out or aborted).
    fn dequeued(&mut self, n: u64);
    /// A request waited `secs` before admission (or before timing out).
    fn waited(&mut self, secs: f64);
    /// A request waited past the queue timeout and was dropped.
    fn timed_out(&mut self, tag: T);
    /// `n` requests were killed (end of the termination grace period).
    fn aborted(&mut self, n: u64);
    /// A request's prefill finished: its first token is out at `now`.
    #[inline]
    fn first_token(&mut self, tag: T, now: f64) {
        let _ = (tag, now);
    }
    /// A request finished, `e2e` seconds after arriving, its first token after `ttft`.
    fn complete(&mut self, tag: T, e2e: f64, ttft: f64);
}

/// Tolerance (tokens) when comparing the decode clock to a finish point.
const EPS_TOKENS: f64 = 1e-7;

/// The server parameters shared by all replicas, in the form the hot loop wants.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerParams {
    pub max_batch: usize,
    /// Seconds per prompt token.
    pub prefill_seconds_per_token: f64,
    /// `step[n]`: decode step time with `n` sequences (index 0 unused).
    pub step: Vec<f64>,
    /// `1 / step[n]`: tokens per second per sequence (the hot loop multiplies).
    pub rate: Vec<f64>,
    pub kv_capacity: u64,
    pub queue_timeout: f64,
}

impl ServerParams {
    pub fn from_model(model: &Model) -> Self {
        let s = &model.server;
        let max_batch = s.max_batch as usize;
        let points: Vec<(f64, f64)> = s
            .decode_step
            .iter()
            .map(|(&b, t)| (f64::from(b), t.0))
            .collect();
        let step: Vec<f64> = (0..=max_batch)
            .map(|n| interpolate(&points, n.max(1) as f64))
            .collect();
        Self {
            max_batch,
            prefill_seconds_per_token: 1.0 / s.prefill_tokens_per_second,
            rate: step.iter().map(|t| 1.0 / t).collect(),
            step,
            kv_capacity: s.kv_cache_tokens,
            queue_timeout: model.service.queue_timeout.0,
        }
    }

    /// The time a request takes alone on an idle replica.
    pub fn service_time(&self, input: u32, output: u32) -> (f64, f64) {
        let ttft = f64::from(input) * self.prefill_seconds_per_token;
        let e2e = ttft + f64::from(output.saturating_sub(1)) * self.step[1];
        (ttft, e2e)
    }

    /// Whether a request can ever be admitted.
    pub fn fits(&self, input: u32, output: u32) -> bool {
        u64::from(input) + u64::from(output) <= self.kv_capacity
    }
}

/// Piecewise-linear through sorted points, flat outside them.
fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let first = points[0];
    let last = points[points.len() - 1];
    if x <= first.0 {
        return first.1;
    }
    if x >= last.0 {
        return last.1;
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
    }
    last.1
}

/// A request waiting or prefilling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Queued<T = ()> {
    pub arrival: f64,
    pub input: u32,
    pub output: u32,
    /// Whose request this is (the simulator's requests are anonymous: `()`).
    pub tag: T,
}

/// A decoding request (its finish point is in its heap entry).
#[derive(Debug, Clone, Copy)]
struct Decoding<T> {
    v_start: f64,
    arrival: f64,
    ttft: f64,
    input: u32,
    output: u32,
    tag: T,
}

/// One entry of the [`DecodeHeap`]: a request's finish point (its bits: finish points
/// are ≥ 0, where the bits of an f64 order like its value) and where the request is.
#[derive(Debug, Clone, Copy)]
struct HeapEntry {
    finish: u64,
    index: u32,
}

/// The decoding requests, earliest finish first: a binary heap of small entries, the
/// requests themselves in a slab beside it, so that sifting moves 16 bytes, not 40.
///
/// Pushes and pops sift exactly as `std::collections::BinaryHeap` does (same moves,
/// same comparisons), so requests with equal finish points leave in the same order as
/// with a `BinaryHeap<Decoding>` ordered by earliest finish.
#[derive(Debug, Clone)]
struct DecodeHeap<T> {
    heap: Vec<HeapEntry>,
    slab: Vec<Decoding<T>>,
    /// The first free entry of the slab; a free entry's `input` holds the next one.
    free: u32,
}

/// No free slab entry.
const NO_FREE: u32 = u32::MAX;

impl<T> Default for DecodeHeap<T> {
    fn default() -> Self {
        Self {
            heap: Vec::new(),
            slab: Vec::new(),
            free: NO_FREE,
        }
    }
}

impl<T: Copy> DecodeHeap<T> {
    #[inline]
    fn len(&self) -> usize {
        self.heap.len()
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The earliest finish point.
    #[inline]
    fn peek(&self) -> Option<f64> {
        self.heap.first().map(|e| f64::from_bits(e.finish))
    }

    /// Whether `a` ranks at most `b` in the max-heap (which holds the earliest finish at
    /// the top): `a` finishes at or after `b`.
    #[inline]
    fn le(a: HeapEntry, b: HeapEntry) -> bool {
        a.finish >= b.finish
    }

    fn push(&mut self, finish_v: f64, d: Decoding<T>) {
        let index = if self.free == NO_FREE {
            self.slab.push(d);
            (self.slab.len() - 1) as u32
        } else {
            let i = self.free;
            self.free = self.slab[i as usize].input;
            self.slab[i as usize] = d;
            i
        };
        let old_len = self.heap.len();
        self.heap.push(HeapEntry {
            finish: finish_v.to_bits(),
            index,
        });
        self.sift_up(0, old_len);
    }

    fn pop(&mut self) -> Option<Decoding<T>> {
        let mut item = self.heap.pop()?;
        if !self.heap.is_empty() {
            std::mem::swap(&mut item, &mut self.heap[0]);
            self.sift_down_to_bottom(0);
        }
        let entry = &mut self.slab[item.index as usize];
        let d = *entry;
        entry.input = self.free;
        self.free = item.index;
        Some(d)
    }

    /// Takes out the first request `f` picks, wherever it is in the heap. The heap is
    /// rebuilt (O(batch), for rare aborts), so the order of the others is kept.
    fn remove_where(&mut self, f: impl Fn(&Decoding<T>) -> bool) -> Option<Decoding<T>> {
        let pos = self
            .heap
            .iter()
            .position(|e| f(&self.slab[e.index as usize]))?;
        let entry = self.heap.swap_remove(pos);
        for (i, e) in std::mem::take(&mut self.heap).into_iter().enumerate() {
            self.heap.push(e);
            self.sift_up(0, i);
        }
        let slot = &mut self.slab[entry.index as usize];
        let d = *slot;
        slot.input = self.free;
        self.free = entry.index;
        Some(d)
    }

    fn clear(&mut self) {
        self.heap.clear();
        self.slab.clear();
        self.free = NO_FREE;
    }

    /// `BinaryHeap::sift_up`.
    #[inline]
    fn sift_up(&mut self, start: usize, mut pos: usize) {
        let elem = self.heap[pos];
        while pos > start {
            let parent = (pos - 1) / 2;
            if Self::le(elem, self.heap[parent]) {
                break;
            }
            self.heap[pos] = self.heap[parent];
            pos = parent;
        }
        self.heap[pos] = elem;
    }

    /// `BinaryHeap::sift_down_to_bottom`.
    #[inline]
    fn sift_down_to_bottom(&mut self, mut pos: usize) {
        let end = self.heap.len();
        let start = pos;
        let elem = self.heap[pos];
        let mut child = 2 * pos + 1;
        while child <= end.saturating_sub(2) {
            child += usize::from(Self::le(self.heap[child], self.heap[child + 1]));
            self.heap[pos] = self.heap[child];
            pos = child;
            child = 2 * pos + 1;
        }
        if child == end - 1 {
            self.heap[pos] = self.heap[child];
            pos = child;
        }
        self.heap[pos] = elem;
        self.sift_up(start, pos);
    }
}

/// Cumulative counters of a replica (what Prometheus scrapes).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub requests: f64,
    pub completed: f64,
    pub prompt_tokens: f64,
    pub generation_tokens: f64,
    pub gpu_busy_seconds: f64,
}

/// One replica's server state.
#[derive(Debug, Clone)]
pub struct Replica<T = ()> {
    waiting: VecDeque<Queued<T>>,
    /// Admitted, awaiting or doing prefill; the front is being prefilled.
    prefill: VecDeque<Queued<T>>,
    prefill_end: f64,
    decode: DecodeHeap<T>,
    /// Tokens generated per decoding sequence since the batch was last empty.
    v: f64,
    /// When `v` and `busy` were last brought up to date.
    last: f64,
    /// Σ v_start and Σ input over decoding requests (for token counts in O(1)).
    sum_v_start: f64,
    sum_input_decoding: f64,
    kv_reserved: u64,
    busy: f64,
    requests: u64,
    completed: u64,
    prompt_tokens: u64,
    generated_done: u64,
}

impl<T: Copy> Replica<T> {
    pub fn new(now: f64) -> Self {
        Self {
            waiting: VecDeque::new(),
            prefill: VecDeque::new(),
            prefill_end: f64::INFINITY,
            decode: DecodeHeap::default(),
            v: 0.0,
            last: now,
            sum_v_start: 0.0,
            sum_input_decoding: 0.0,
            kv_reserved: 0,
            busy: 0.0,
            requests: 0,
            completed: 0,
            prompt_tokens: 0,
            generated_done: 0,
        }
    }

    /// Brings the decode clock and busy time up to `now`.
    #[inline]
    pub fn advance(&mut self, now: f64, p: &ServerParams) {
        let dt = now - self.last;
        if dt <= 0.0 {
            return;
        }
        if !self.prefill.is_empty() {
            self.busy += dt;
        } else if !self.decode.is_empty() {
            self.busy += dt;
            self.v += dt * p.rate[self.decode.len()];
        }
        self.last = now;
    }

    /// When this replica next has something to do (∞ when idle).
    #[inline]
    pub fn next_event(&self, p: &ServerParams) -> f64 {
        if !self.prefill.is_empty() {
            self.prefill_end
        } else if let Some(finish_v) = self.decode.peek() {
            self.last + (finish_v - self.v).max(0.0) * p.step[self.decode.len()]
        } else {
            f64::INFINITY
        }
    }

    /// A request routed here.
    #[inline]
    pub fn arrive(
        &mut self,
        req: Queued<T>,
        now: f64,
        p: &ServerParams,
        rec: &mut impl Observer<T>,
    ) {
        self.advance(now, p);
        self.requests += 1;
        rec.enqueued(1);
        if self.waiting.is_empty() {
            // Alone in the queue: what `admit` would do, without the round trip.
            if !self.admit_one(req, now, p, rec) {
                self.waiting.push_back(req);
            }
            return;
        }
        self.waiting.push_back(req);
        self.admit(now, p, rec);
    }

    /// Handles what is due at `now` (a prefill or decode completion), then admits.
    pub fn on_event(&mut self, now: f64, p: &ServerParams, rec: &mut impl Observer<T>) {
        self.advance(now, p);
        if let Some(&head) = self.prefill.front() {
            if self.prefill_end <= now + 1e-9 {
                self.prefill.pop_front();
                let ttft = now - head.arrival;
                self.prompt_tokens += u64::from(head.input);
                rec.first_token(head.tag, now);
                if head.output <= 1 {
                    self.finish(head, ttft, now, rec);
                } else {
                    self.decode.push(
                        self.v + f64::from(head.output - 1),
                        Decoding {
                            v_start: self.v,
                            arrival: head.arrival,
                            ttft,
                            input: head.input,
                            output: head.output,
                            tag: head.tag,
                        },
                    );
                    self.sum_v_start += self.v;
                    self.sum_input_decoding += f64::from(head.input);
                }
                self.prefill_end = match self.prefill.front() {
                    Some(next) => now + f64::from(next.input) * p.prefill_seconds_per_token,
                    None => f64::INFINITY,
                };
            }
        } else if let Some(finish_v) = self.decode.peek() {
            let due = self.last + (finish_v - self.v) * p.step[self.decode.len()];
            if due <= now + 1e-9 && finish_v > self.v {
                // The event was scheduled for this finish: absorb rounding in `v`.
                self.v = finish_v;
            }
            while let Some(finish_v) = self.decode.peek() {
                if finish_v > self.v + EPS_TOKENS {
                    break;
                }
                let Some(d) = self.decode.pop() else { break };
                self.sum_v_start -= d.v_start;
                self.sum_input_decoding -= f64::from(d.input);
                let q = Queued {
                    arrival: d.arrival,
                    input: d.input,
                    output: d.output,
                    tag: d.tag,
                };
                self.finish(q, d.ttft, now, rec);
            }
            if self.decode.is_empty() {
                // Restart the clock so it never grows large enough to lose precision.
                self.v = 0.0;
                self.sum_v_start = 0.0;
                self.sum_input_decoding = 0.0;
            }
        }
        self.admit(now, p, rec);
    }

    #[inline]
    fn finish(&mut self, q: Queued<T>, ttft: f64, now: f64, rec: &mut impl Observer<T>) {
        self.kv_reserved -= u64::from(q.input) + u64::from(q.output);
        self.completed += 1;
        self.generated_done += u64::from(q.output);
        rec.complete(q.tag, now - q.arrival, ttft);
    }

    /// Admits waiting requests in order while a batch slot and KV room are free; drops
    /// those that waited past the timeout.
    fn admit(&mut self, now: f64, p: &ServerParams, rec: &mut impl Observer<T>) {
        while let Some(&head) = self.waiting.front() {
            if !self.admit_one(head, now, p, rec) {
                break;
            }
            self.waiting.pop_front();
        }
    }

    /// The head of the queue leaves it, timed out or admitted (true), or stays (false).
    #[inline]
    fn admit_one(
        &mut self,
        head: Queued<T>,
        now: f64,
        p: &ServerParams,
        rec: &mut impl Observer<T>,
    ) -> bool {
        if head.arrival + p.queue_timeout < now {
            rec.dequeued(1);
            rec.waited(p.queue_timeout);
            rec.timed_out(head.tag);
            return true;
        }
        let need = u64::from(head.input) + u64::from(head.output);
        if self.prefill.len() + self.decode.len() >= p.max_batch
            || self.kv_reserved + need > p.kv_capacity
        {
            return false;
        }
        rec.dequeued(1);
        rec.waited(now - head.arrival);
        self.kv_reserved += need;
        if self.prefill.is_empty() {
            self.prefill_end = now + f64::from(head.input) * p.prefill_seconds_per_token;
        }
        self.prefill.push_back(head);
        true
    }

    /// Drops queued requests that waited past the timeout (so gauges do not count them).
    pub fn purge_expired(&mut self, now: f64, p: &ServerParams, rec: &mut impl Observer<T>) {
        while let Some(head) = self.waiting.front() {
            if head.arrival + p.queue_timeout >= now {
                break;
            }
            let tag = head.tag;
            self.waiting.pop_front();
            rec.dequeued(1);
            rec.waited(p.queue_timeout);
            rec.timed_out(tag);
        }
    }

    /// Drops the request tagged `tag` wherever it is (its client went away): it leaves
    /// the queue, or frees its batch slot and KV cache, as vLLM aborts a request whose
    /// connection closed (`AsyncLLM.abort`); the tokens it generated still count.
    /// Returns whether the replica held it.
    pub fn abort(&mut self, tag: T, now: f64, p: &ServerParams, rec: &mut impl Observer<T>) -> bool
    where
        T: PartialEq,
    {
        self.advance(now, p);
        if let Some(i) = self.waiting.iter().position(|q| q.tag == tag) {
            if let Some(q) = self.waiting.remove(i) {
                rec.dequeued(1);
                rec.waited(now - q.arrival);
            }
            rec.aborted(1);
            return true;
        }
        if let Some(i) = self.prefill.iter().position(|q| q.tag == tag) {
            let Some(q) = self.prefill.remove(i) else {
                return false;
            };
            self.kv_reserved -= u64::from(q.input) + u64::from(q.output);
            if i == 0 {
                // The next one's prefill starts now.
                self.prefill_end = match self.prefill.front() {
                    Some(next) => now + f64::from(next.input) * p.prefill_seconds_per_token,
                    None => f64::INFINITY,
                };
            }
        } else if let Some(d) = self.decode.remove_where(|d| d.tag == tag) {
            self.sum_v_start -= d.v_start;
            self.sum_input_decoding -= f64::from(d.input);
            self.kv_reserved -= u64::from(d.input) + u64::from(d.output);
            let done = (self.v - d.v_start + EPS_TOKENS).floor().max(0.0);
            self.generated_done += (1.0 + done).min(f64::from(d.output)) as u64;
            if self.decode.is_empty() {
                self.v = 0.0;
                self.sum_v_start = 0.0;
                self.sum_input_decoding = 0.0;
            }
        } else {
            return false;
        }
        rec.aborted(1);
        // The freed slot and KV room go to the queue's head at once.
        self.admit(now, p, rec);
        true
    }

    /// Kills everything the replica holds (end of the termination grace period).
    pub fn abort_all(&mut self, now: f64, rec: &mut impl Observer<T>) {
        let queued = self.waiting.len() as u64;
        for q in &self.waiting {
            rec.waited(now - q.arrival);
        }
        rec.dequeued(queued);
        rec.aborted(queued + (self.prefill.len() + self.decode.len()) as u64);
        self.waiting.clear();
        self.prefill.clear();
        self.decode.clear();
        self.prefill_end = f64::INFINITY;
        self.kv_reserved = 0;
        self.v = 0.0;
        self.sum_v_start = 0.0;
        self.sum_input_decoding = 0.0;
    }

    /// Requests waiting plus running: what least-outstanding routing compares.
    #[inline]
    pub fn outstanding(&self) -> usize {
        self.waiting.len() + self.prefill.len() + self.decode.len()
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn running(&self) -> usize {
        self.prefill.len() + self.decode.len()
    }

    pub fn is_idle(&self) -> bool {
        self.outstanding() == 0
    }

    /// Tokens generated by the decoding requests so far (first tokens included).
    fn generated_in_flight(&self) -> f64 {
        let n = self.decode.len() as f64;
        (n + n * self.v - self.sum_v_start).max(0.0)
    }

    /// KV-cache tokens in use over capacity (call after [`Replica::advance`]).
    pub fn kv_usage(&self, p: &ServerParams) -> f64 {
        let prefilling = self.prefill.front().map_or(0.0, |q| f64::from(q.input));
        let used = self.sum_input_decoding + self.generated_in_flight() + prefilling;
        (used / p.kv_capacity as f64).clamp(0.0, 1.0)
    }

    /// The counters (call after [`Replica::advance`]).
    pub fn counters(&self) -> Counters {
        Counters {
            requests: self.requests as f64,
            completed: self.completed as f64,
            prompt_tokens: self.prompt_tokens as f64,
            generation_tokens: self.generated_done as f64 + self.generated_in_flight(),
            gpu_busy_seconds: self.busy,
        }
    }

    /// The decoding requests and the tokens each has generated so far, its first token
    /// included (call after [`Replica::advance`]): what a streaming server has sent.
    pub fn decoding(&self) -> impl Iterator<Item = (T, u32)> + '_ {
        self.decode.heap.iter().map(|e| {
            let d = &self.decode.slab[e.index as usize];
            let done = (self.v - d.v_start + EPS_TOKENS).floor().max(0.0);
            // At most `output - 1` here: the last token comes with the completion.
            let tokens = (1.0 + done).min(f64::from(d.output.saturating_sub(1)).max(1.0));
            (d.tag, tokens as u32)
        })
    }

    /// The decode step time with the current batch (for pacing a stream).
    pub fn step_time(&self, p: &ServerParams) -> f64 {
        p.step[self.decode.len().min(p.max_batch).max(1)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts what the simulator's recorder counts.
    #[derive(Debug, Default)]
    struct Recorder {
        completed: u64,
        timed_out: u64,
        queued: u64,
        ttft_sum: f64,
    }

    impl Recorder {
        fn new() -> Self {
            Self::default()
        }
    }

    impl Observer<()> for Recorder {
        fn enqueued(&mut self, n: u64) {
            self.queued += n;
        }
        fn dequeued(&mut self, n: u64) {
            self.queued -= n;
        }
        fn waited(&mut self, _: f64) {}
        fn timed_out(&mut self, (): ()) {
            self.timed_out += 1;
        }
        fn aborted(&mut self, _: u64) {}
        fn complete(&mut self, (): (), _: f64, ttft: f64) {
            self.completed += 1;
            self.ttft_sum += ttft;
        }
    }

    fn params() -> ServerParams {
        let step = vec![0.01, 0.01, 0.012, 0.014, 0.016];
        ServerParams {
            max_batch: 4,
            prefill_seconds_per_token: 0.001,
            rate: step.iter().map(|t| 1.0 / t).collect(),
            step,
            kv_capacity: 1000,
            queue_timeout: 10.0,
        }
    }

    fn run_until_idle(r: &mut Replica, p: &ServerParams, rec: &mut Recorder) -> f64 {
        let mut now = 0.0;
        loop {
            let t = r.next_event(p);
            if !t.is_finite() {
                return now;
            }
            now = t;
            r.on_event(now, p, rec);
        }
    }

    #[test]
    fn a_lone_request_takes_its_service_time() {
        let p = params();
        let mut rec = Recorder::new();
        let mut r = Replica::new(0.0);
        r.arrive(
            Queued {
                arrival: 0.0,
                input: 100,
                output: 11,
                tag: (),
            },
            0.0,
            &p,
            &mut rec,
        );
        let end = run_until_idle(&mut r, &p, &mut rec);
        let (ttft, e2e) = p.service_time(100, 11);
        assert!((end - e2e).abs() < 1e-9, "{end} vs {e2e}");
        assert!((e2e - (0.1 + 10.0 * 0.01)).abs() < 1e-12);
        assert!((rec.ttft_sum - ttft).abs() < 1e-5);
        assert_eq!(rec.completed, 1);
        assert_eq!(r.counters().generation_tokens, 11.0);
        assert_eq!(r.counters().prompt_tokens, 100.0);
        assert!((r.counters().gpu_busy_seconds - e2e).abs() < 1e-9);
    }

    #[test]
    fn decoding_sequences_share_steps_and_slow_each_other() {
        let p = params();
        let mut rec = Recorder::new();
        let mut r = Replica::new(0.0);
        for _ in 0..2 {
            r.arrive(
                Queued {
                    arrival: 0.0,
                    input: 10,
                    output: 101,
                    tag: (),
                },
                0.0,
                &p,
                &mut rec,
            );
        }
        let end = run_until_idle(&mut r, &p, &mut rec);
        // Prefills of 10 ms run back to back (decoding pauses meanwhile), then both
        // sequences decode their 100 remaining tokens together, at 12 ms a step.
        let want = 0.02 + 100.0 * 0.012;
        assert!((end - want).abs() < 1e-9, "{end} vs {want}");
        assert_eq!(rec.completed, 2);
    }

    #[test]
    fn admission_blocks_on_batch_slots_and_kv_room() {
        let p = params();
        let mut rec = Recorder::new();
        let mut r = Replica::new(0.0);
        // Each needs 400 tokens of KV: only two fit in 1000.
        for _ in 0..3 {
            r.arrive(
                Queued {
                    arrival: 0.0,
                    input: 200,
                    output: 200,
                    tag: (),
                },
                0.0,
                &p,
                &mut rec,
            );
        }
        assert_eq!(r.running(), 2);
        assert_eq!(r.waiting(), 1);
        run_until_idle(&mut r, &p, &mut rec);
        assert_eq!(rec.completed, 3);
        assert_eq!(r.kv_reserved, 0);
    }

    #[test]
    fn requests_waiting_past_the_timeout_are_dropped() {
        let mut p = params();
        p.queue_timeout = 1.0;
        let mut rec = Recorder::new();
        let mut r = Replica::new(0.0);
        // Two long requests fill the KV cache for ~6 s; the third waits and times out.
        for _ in 0..2 {
            r.arrive(
                Queued {
                    arrival: 0.0,
                    input: 10,
                    output: 490,
                    tag: (),
                },
                0.0,
                &p,
                &mut rec,
            );
        }
        r.arrive(
            Queued {
                arrival: 0.0,
                input: 10,
                output: 10,
                tag: (),
            },
            0.0,
            &p,
            &mut rec,
        );
        run_until_idle(&mut r, &p, &mut rec);
        assert_eq!(rec.completed, 2);
        assert_eq!(rec.timed_out, 1);
        assert_eq!(rec.queued, 0);
    }

    #[test]
    fn step_times_interpolate_between_points_and_stay_flat_beyond() {
        let pts = [(1.0, 0.03), (16.0, 0.034), (64.0, 0.048)];
        assert_eq!(interpolate(&pts, 1.0), 0.03);
        assert!((interpolate(&pts, 8.5) - 0.032).abs() < 1e-12);
        assert_eq!(interpolate(&pts, 200.0), 0.048);
    }

    /// What the decode heap replaced: a `BinaryHeap` of whole requests, earliest finish
    /// first.
    #[derive(Debug, Clone, Copy)]
    struct Old {
        finish_v: f64,
        id: u32,
    }
    impl PartialEq for Old {
        fn eq(&self, other: &Self) -> bool {
            self.cmp(other) == std::cmp::Ordering::Equal
        }
    }
    impl Eq for Old {}
    impl PartialOrd for Old {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Old {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            other.finish_v.to_bits().cmp(&self.finish_v.to_bits())
        }
    }

    #[test]
    fn the_decode_heap_pops_in_the_order_of_a_binary_heap_ties_included() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(11);
        let mut ours = DecodeHeap::default();
        let mut std_heap = std::collections::BinaryHeap::new();
        for id in 0..200_000u32 {
            let r = rng.next_u64();
            if r % 5 < 3 || std_heap.is_empty() {
                // Few distinct finish points, so that many tie.
                let finish_v = f64::from((r >> 8) as u32 % 40) * 0.5;
                std_heap.push(Old { finish_v, id });
                ours.push(
                    finish_v,
                    Decoding {
                        v_start: f64::from(id),
                        arrival: 0.0,
                        ttft: 0.0,
                        input: id,
                        output: 2,
                        tag: (),
                    },
                );
            } else {
                let want = std_heap.pop().expect("not empty");
                assert_eq!(ours.peek(), Some(want.finish_v));
                let got = ours.pop().expect("not empty");
                assert_eq!(got.input, want.id);
            }
            assert_eq!(ours.len(), std_heap.len());
            if r % 10_007 == 0 {
                ours.clear();
                std_heap.clear();
            }
        }
    }

    #[test]
    fn an_aborted_request_frees_its_slot_and_kv_for_the_queue() {
        #[derive(Default)]
        struct Done(Vec<u32>, u64);
        impl Observer<u32> for Done {
            fn enqueued(&mut self, _: u64) {}
            fn dequeued(&mut self, _: u64) {}
            fn waited(&mut self, _: f64) {}
            fn timed_out(&mut self, _: u32) {}
            fn aborted(&mut self, n: u64) {
                self.1 += n;
            }
            fn complete(&mut self, tag: u32, _: f64, _: f64) {
                self.0.push(tag);
            }
        }
        let p = params();
        let mut r: Replica<u32> = Replica::new(0.0);
        let mut rec = Done::default();
        for tag in 0..6 {
            let q = Queued {
                arrival: 0.0,
                input: 10,
                output: 50,
                tag,
            };
            r.arrive(q, 0.0, &p, &mut rec);
        }
        assert_eq!((r.running(), r.waiting()), (4, 2));
        // Into the decode phase of the first ones.
        while r.next_event(&p) < 0.1 {
            let t = r.next_event(&p);
            r.on_event(t, &p, &mut rec);
        }
        let now = 0.1;
        assert!(rec.0.is_empty() && r.decode.len() == 4);
        let kv = r.kv_reserved;
        // A decoding request: its slot and KV room go to the queue's head.
        assert!(r.abort(1, now, &p, &mut rec));
        assert_eq!((r.running(), r.waiting()), (4, 1));
        assert_eq!(r.kv_reserved, kv, "one out (60 tokens), one in (60)");
        // A waiting one leaves the queue; an unknown or finished one is no-op.
        assert!(r.abort(5, now, &p, &mut rec));
        assert_eq!((r.running(), r.waiting()), (4, 0));
        assert!(!r.abort(1, now, &p, &mut rec));
        assert!(!r.abort(99, now, &p, &mut rec));
        run_until_idle_tagged(&mut r, &p, &mut rec);
        rec.0.sort_unstable();
        assert_eq!(rec.0, vec![0, 2, 3, 4]);
        assert_eq!(rec.1, 2);
        assert_eq!(r.kv_reserved, 0);
        assert_eq!(r.kv_usage(&p), 0.0);
    }

    fn run_until_idle_tagged(r: &mut Replica<u32>, p: &ServerParams, rec: &mut impl Observer<u32>) {
        loop {
            let t = r.next_event(p);
            if !t.is_finite() {
                return;
            }
            r.on_event(t, p, rec);
        }
    }
}
