//! The model side: one task owns the [`Replica`] and runs it on the [`Clock`]; HTTP
//! handlers hand it requests and wait for their progress on a watch channel.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use podscale_model::{Observer, Queued, Replica, ServerParams};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::metrics::{AtomicHistogram, E2E_BUCKETS, PromHistogram, Snapshot, TTFT_BUCKETS};
use crate::{Config, Error, Shared};

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    Queued,
    /// Tokens generated so far (the first comes out of the prefill).
    Tokens(u32),
    Done,
    /// Waited past the model's `service.queueTimeout`.
    TimedOut,
}

pub(crate) enum Cmd {
    Arrive {
        id: u64,
        input: u32,
        output: u32,
        stream: bool,
        arrived: Instant,
        tx: watch::Sender<Progress>,
    },
    /// The client went away: drop the request wherever it is.
    Abort(u64),
    Snapshot(oneshot::Sender<Snapshot>),
}

/// Aborts its request when dropped while armed: the handler (or stream) was dropped
/// because the client disconnected, so the model should stop working on it, as vLLM
/// aborts a request whose connection closed.
#[derive(Debug)]
pub(crate) struct AbortOnDrop {
    pub(crate) tx: mpsc::Sender<Cmd>,
    pub(crate) id: u64,
    pub(crate) armed: bool,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let cmd = Cmd::Abort(self.id);
        if let Err(mpsc::error::TrySendError::Full(cmd)) = self.tx.try_send(cmd) {
            // The model task is busy: hand the abort to a task rather than lose it.
            let tx = self.tx.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = tx.send(cmd).await;
                });
            }
        }
    }
}

/// State shared by the HTTP handlers and the model task.
#[derive(Debug)]
pub struct Inner {
    pub(crate) cfg: Config,
    pub(crate) params: ServerParams,
    pub(crate) clock: Clock,
    pub(crate) ready_at: Instant,
    pub(crate) tx: mpsc::Sender<Cmd>,
    pub(crate) draining: AtomicBool,
    pub(crate) in_flight: AtomicUsize,
    idle: Notify,
    pub(crate) next_id: AtomicU64,
    /// Requests answered with an error by the HTTP side (injected, refused).
    pub(crate) errors: AtomicU64,
    /// `--instant` counters (no model task involved).
    pub(crate) instant_success: AtomicU64,
    pub(crate) instant_prompt: AtomicU64,
    pub(crate) instant_generation: AtomicU64,
    /// `--instant` latencies (TTFT = e2e: the whole answer goes at once).
    pub(crate) instant_ttft: AtomicHistogram,
    pub(crate) instant_e2e: AtomicHistogram,
    /// Requests by protocol (HTTP/1.x, HTTP/2).
    pub(crate) http1_requests: AtomicU64,
    pub(crate) http2_requests: AtomicU64,
    rng: AtomicU64,
    burner: Burner,
}

impl Inner {
    pub(crate) fn is_ready(&self) -> bool {
        Instant::now() >= self.ready_at
    }

    /// A uniform draw from [0, 1) (splitmix64 over a shared counter: cheap, lock-free,
    /// good enough for an error-rate fault).
    pub(crate) fn random(&self) -> f64 {
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Counts a request in flight until the guard drops; `None` past the limit.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<InFlight> {
        let n = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if n >= self.cfg.max_outstanding {
            self.leave();
            return None;
        }
        Some(InFlight(Arc::clone(self)))
    }

    fn leave(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Burns the CPU `core_seconds` of work cost (scaled by `--cpu-scale`).
    pub(crate) fn burn(&self, core_seconds: f64) {
        self.burner.add(core_seconds * self.cfg.cpu_scale);
    }
}

/// A request in flight (what a drain waits for).
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// What a drain left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Requests in flight when the drain began.
    pub in_flight_at_start: usize,
    /// Requests still unfinished when the drain timed out (0: none lost).
    pub unfinished: usize,
}

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    inner: Shared,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// Binds `cfg.addr` and starts serving (on the current Tokio runtime).
    ///
    /// # Errors
    /// [`Error::Bind`] when the address cannot be listened on.
    pub async fn start(cfg: Config) -> Result<Self, Error> {
        let listener = TcpListener::bind(cfg.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: cfg.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: cfg.addr,
            source,
        })?;
        let start = Instant::now();
        let ready = cfg.startup_delay.as_secs_f64();
        let clock = Clock::new(
            start,
            cfg.faults.stalls.clone(),
            cfg.faults.slow_start,
            ready,
        );
        let (tx, rx) = mpsc::channel(4096);
        let seed = start.elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
        let inner = Arc::new(Inner {
            params: ServerParams::from_model(&cfg.model),
            burner: Burner::new(if cfg.cpu_scale > 0.0 {
                cfg.cpu_threads
            } else {
                0
            }),
            ready_at: start + cfg.startup_delay,
            cfg,
            clock,
            tx,
            draining: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            next_id: AtomicU64::new(1),
            errors: AtomicU64::new(0),
            instant_success: AtomicU64::new(0),
            instant_prompt: AtomicU64::new(0),
            instant_generation: AtomicU64::new(0),
            instant_ttft: AtomicHistogram::new(TTFT_BUCKETS),
            instant_e2e: AtomicHistogram::new(E2E_BUCKETS),
            http1_requests: AtomicU64::new(0),
            http2_requests: AtomicU64::new(0),
            rng: AtomicU64::new(seed),
        });
        tokio::spawn(run_model(Arc::clone(&inner), rx));
        let (stop, stop_rx) = watch::channel(false);
        let accept = tokio::spawn(crate::http::serve(Arc::clone(&inner), listener, stop_rx));
        Ok(Self {
            inner,
            addr,
            stop,
            accept,
        })
    }

    /// The address served (the port chosen when `--port 0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// Graceful drain (SIGTERM): `/health` turns 503 and new requests are refused with
    /// 503, in-flight requests finish (up to `timeout`), then the server stops.
    pub async fn drain(self, timeout: Duration) -> DrainReport {
        self.inner.draining.store(true, Ordering::Release);
        let at_start = self.in_flight();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let idle = self.inner.idle.notified();
            if self.in_flight() == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
        let unfinished = self.in_flight();
        let _ = self.stop.send(true);
        let _ = self.accept.await;
        DrainReport {
            in_flight_at_start: at_start,
            unfinished,
        }
    }
}

/// One request the model holds.
#[derive(Debug)]
struct Slot {
    tx: watch::Sender<Progress>,
    stream: bool,
    arrived: Instant,
    sent: u32,
}

/// The model task's state: the requests and what `/metrics` reports.
#[derive(Debug)]
struct State {
    slots: HashMap<u64, Slot>,
    ttft: PromHistogram,
    e2e: PromHistogram,
    success: u64,
    timed_out: u64,
    /// Requests dropped because their client went away.
    aborted: u64,
}

impl Observer<u64> for State {
    fn enqueued(&mut self, _: u64) {}
    fn dequeued(&mut self, _: u64) {}
    fn waited(&mut self, _: f64) {}
    fn aborted(&mut self, _: u64) {}

    fn timed_out(&mut self, tag: u64) {
        self.timed_out += 1;
        if let Some(slot) = self.slots.remove(&tag) {
            slot.tx.send_replace(Progress::TimedOut);
        }
    }

    fn first_token(&mut self, tag: u64, _now: f64) {
        if let Some(slot) = self.slots.get_mut(&tag) {
            // Wall time, as a client sees it (a stall counts).
            self.ttft.record(slot.arrived.elapsed().as_secs_f64());
            slot.sent = 1;
            if slot.stream {
                slot.tx.send_replace(Progress::Tokens(1));
            }
        }
    }

    fn complete(&mut self, tag: u64, _e2e: f64, _ttft: f64) {
        self.success += 1;
        if let Some(slot) = self.slots.remove(&tag) {
            self.e2e.record(slot.arrived.elapsed().as_secs_f64());
            slot.tx.send_replace(Progress::Done);
        }
    }
}

/// Most model events handled before looking at new arrivals again.
const MAX_EVENTS_PER_TURN: usize = 100_000;

/// Runs the model up to `now`: every event due by then at its own model time, as the
/// simulator does. A timer wakes the task about once a millisecond, so events closer
/// together than that (prefills of short prompts) are caught up in one turn instead of
/// each waiting for a timer tick, which would slow the server down.
fn catch_up(replica: &mut Replica<u64>, now: f64, p: &ServerParams, st: &mut State) {
    let mut n = 0;
    loop {
        let t = replica.next_event(p);
        if t > now || n >= MAX_EVENTS_PER_TURN {
            break;
        }
        replica.on_event(t, p, st);
        n += 1;
    }
    replica.purge_expired(now, p, st);
    replica.advance(now, p);
}

async fn run_model(inner: Shared, mut rx: mpsc::Receiver<Cmd>) {
    let p = inner.params.clone();
    let clock = &inner.clock;
    let mut replica: Replica<u64> = Replica::new(clock.now());
    let mut st = State {
        slots: HashMap::new(),
        ttft: PromHistogram::new(TTFT_BUCKETS),
        e2e: PromHistogram::new(E2E_BUCKETS),
        success: 0,
        timed_out: 0,
        aborted: 0,
    };
    let cpu = inner.cfg.model.usage.cpu.clone();
    let mut last = replica.counters();
    loop {
        let now = clock.now();
        catch_up(&mut replica, now, &p, &mut st);
        let mut streaming = false;
        for (tag, tokens) in replica.decoding() {
            if let Some(slot) = st.slots.get_mut(&tag)
                && slot.stream
            {
                streaming = true;
                if tokens > slot.sent {
                    slot.sent = tokens;
                    slot.tx.send_replace(Progress::Tokens(tokens));
                }
            }
        }
        // The work done since the last turn costs CPU as the model's `usage.cpu` says.
        let c = replica.counters();
        inner.burn(
            (c.gpu_busy_seconds - last.gpu_busy_seconds) * cpu.busy_cores
                + (c.completed - last.completed) * cpu.per_request_core_seconds
                + (c.generation_tokens - last.generation_tokens) * cpu.per_token_core_seconds,
        );
        last = c;

        let mut wake = replica.next_event(&p);
        if streaming {
            wake = wake.min(now + replica.step_time(&p));
        }
        if replica.waiting() > 0 {
            wake = wake.min(now + 1.0);
        }
        let deadline = clock
            .instant_at(wake)
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Cmd::Arrive { id, input, output, stream, arrived, tx }) => {
                    st.slots.insert(id, Slot { tx, stream, arrived, sent: 0 });
                    let now = clock.now();
                    catch_up(&mut replica, now, &p, &mut st);
                    replica.arrive(Queued { arrival: now, input, output, tag: id }, now, &p, &mut st);
                }
                Some(Cmd::Abort(id)) => {
                    // Gone before it finished (a late abort finds nothing: not counted).
                    if st.slots.remove(&id).is_some() {
                        let now = clock.now();
                        catch_up(&mut replica, now, &p, &mut st);
                        if replica.abort(id, now, &p, &mut st) {
                            st.aborted += 1;
                        }
                    }
                }
                Some(Cmd::Snapshot(reply)) => {
                    let now = clock.now();
                    catch_up(&mut replica, now, &p, &mut st);
                    let c = replica.counters();
                    let _ = reply.send(Snapshot {
                        waiting: replica.waiting(),
                        running: replica.running(),
                        kv_usage: replica.kv_usage(&p),
                        prompt_tokens: c.prompt_tokens as u64,
                        generation_tokens: c.generation_tokens.floor() as u64,
                        success: st.success,
                        aborted: st.aborted,
                        errors: st.timed_out,
                        ttft: st.ttft.clone(),
                        e2e: st.e2e.clone(),
                        http_requests: Default::default(),
                    });
                }
            },
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Threads that spin to use the CPU the model's work costs, so that CPU utilization is
/// a real signal for a Resource-metric HPA.
#[derive(Debug)]
struct Burner {
    owed_ns: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: usize,
}

/// Most CPU owed per thread; work beyond is forgotten (the emulator cannot keep up).
const MAX_OWED_SECONDS_PER_THREAD: f64 = 10.0;

impl Burner {
    fn new(threads: usize) -> Self {
        let owed_ns = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        for i in 0..threads {
            let owed = Arc::clone(&owed_ns);
            let stop = Arc::clone(&stop);
            let _ = std::thread::Builder::new()
                .name(format!("cpu-burn-{i}"))
                .spawn(move || burn_loop(&owed, &stop));
        }
        Self {
            owed_ns,
            stop,
            threads,
        }
    }

    fn add(&self, core_seconds: f64) {
        if self.threads == 0 || core_seconds.is_nan() || core_seconds <= 0.0 {
            return;
        }
        let cap = (MAX_OWED_SECONDS_PER_THREAD * self.threads as f64 * 1e9) as u64;
        let add = (core_seconds * 1e9).min(cap as f64) as u64;
        let _ = self
            .owed_ns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_add(add).min(cap))
            });
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn burn_loop(owed: &AtomicU64, stop: &AtomicBool) {
    const SLICE_NS: u64 = 5_000_000;
    let mut x: u64 = 1;
    while !stop.load(Ordering::Acquire) {
        let take = owed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v > 0).then(|| v - v.min(SLICE_NS))
            })
            .map_or(0, |v| v.min(SLICE_NS));
        if take == 0 {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let t = Instant::now();
        let d = Duration::from_nanos(take);
        while t.elapsed() < d {
            for _ in 0..1000 {
                x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
        }
    }
}
