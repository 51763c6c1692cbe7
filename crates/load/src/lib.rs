//! # podscale-load
//!
//! `podscale load`: a load generator for OpenAI-compatible endpoints (and plain HTTP
//! URLs) that reports latency honestly.
//!
//! In the default **open loop**, request `i` is due at a fixed time `t_i` from the rate
//! (`--rate` or a `--pattern`), and leaves then whether or not earlier requests have
//! returned; its latency is measured from `t_i`, the **intended** send time, not from
//! when it actually left. A server that stalls for a second therefore shows a second of
//! latency on every request due during the stall, which a closed-loop generator (wrk,
//! `--concurrency`) hides by sending less while it waits: coordinated omission, as Gil
//! Tene named it (wrk2 fixes wrk the same way).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo};
use podscale_model::histogram::{Coarse, Fine};
use podscale_sim::traffic::Pattern;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Why a load run cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("{0}")]
    Config(String),
}

/// How requests are paced.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Requests leave on schedule at `pattern`'s rate (requests per second over time).
    Open { pattern: Pattern },
    /// Requests leave when the simulator's traffic says (a per-request trace or a rate
    /// envelope, `podscale simulate --trace`), each with its trace's token counts as
    /// prompt length and `max_tokens`.
    Trace { traffic: Box<podscale_sim::Traffic> },
    /// `n` workers, each sending its next request when the last returned (wrk's model;
    /// latency from the actual send).
    Closed { concurrency: usize },
}

/// What each request is.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestShape {
    /// Prompt length in tokens (about 4 characters each) for OpenAI endpoints.
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// `stream: true`: TTFT is the first body bytes of the answer.
    pub stream: bool,
    /// The `model` field (omitted when `None`).
    pub model: Option<String>,
}

impl Default for RequestShape {
    fn default() -> Self {
        Self {
            prompt_tokens: 64,
            max_tokens: 16,
            stream: false,
            model: None,
        }
    }
}

/// One run.
#[derive(Debug, Clone)]
pub struct Config {
    pub url: Uri,
    pub mode: Mode,
    /// Seconds of sending.
    pub duration: f64,
    /// Open loop: requests in flight at once; a request due beyond it is not sent and
    /// counts as an error (`max_in_flight`), never silently delayed.
    pub max_in_flight: usize,
    /// Per-request timeout (from the intended send time).
    pub timeout: Duration,
    /// Open loop: most connections (and so requests on the wire) at once; a request
    /// due when all are busy waits for one, its latency counting from its due time.
    /// With `http2`, the connections each carry many requests at once (streams).
    pub connections: usize,
    pub shape: RequestShape,
    /// HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3), each connection multiplexing
    /// up to the server's `SETTINGS_MAX_CONCURRENT_STREAMS` requests; else HTTP/1.1
    /// with keep-alive, one request at a time per connection. Over https:// the
    /// protocol is offered by ALPN (`h2` or `http/1.1`).
    pub http2: bool,
    /// https:// only: trust the certificates in this PEM file instead of the system's
    /// (a private CA, a self-signed server).
    pub ca_file: Option<std::path::PathBuf>,
}

/// Most requests one run may schedule (about 2 GB of task state at worst).
pub const MAX_REQUESTS: f64 = 100_000_000.0;

impl Config {
    /// A run against `url` (`http://` or `https://`; HTTP/1.1 with keep-alive).
    ///
    /// # Errors
    /// [`Error::Url`] for anything but an absolute `http://` or `https://` URL.
    pub fn new(url: &str, mode: Mode, duration: f64) -> Result<Self, Error> {
        let bad = |message: &str| Error::Url {
            url: url.into(),
            message: message.into(),
        };
        let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(bad("give an absolute http:// or https:// URL")),
        }
        if uri.host().is_none() {
            return Err(bad("no host"));
        }
        Ok(Self {
            url: uri,
            mode,
            duration,
            max_in_flight: 10_000,
            timeout: Duration::from_secs(60),
            connections: 1000,
            shape: RequestShape::default(),
            http2: false,
            ca_file: None,
        })
    }

    fn check(&self) -> Result<(), Error> {
        if !(self.duration.is_finite() && self.duration > 0.0) {
            return Err(Error::Config("--duration must be positive".into()));
        }
        match &self.mode {
            Mode::Open { pattern } => {
                let expected = expected_requests(pattern, self.duration);
                if expected > MAX_REQUESTS {
                    return Err(Error::Config(format!(
                        "the run would send about {expected:.0} requests, more than the limit of {MAX_REQUESTS:.0}: shorten --duration or lower the rate"
                    )));
                }
            }
            Mode::Trace { traffic } => {
                if traffic.expected_requests > MAX_REQUESTS {
                    return Err(Error::Config(format!(
                        "the trace has about {:.0} requests, more than the limit of {MAX_REQUESTS:.0}: cut it with --duration",
                        traffic.expected_requests
                    )));
                }
            }
            Mode::Closed { concurrency } => {
                if *concurrency == 0 || *concurrency > 100_000 {
                    return Err(Error::Config(
                        "--concurrency must be from 1 to 100000".into(),
                    ));
                }
            }
        }
        if self.connections == 0 || self.connections > 100_000 {
            return Err(Error::Config(
                "--connections must be from 1 to 100000".into(),
            ));
        }
        if self.max_in_flight == 0 {
            return Err(Error::Config("--max-in-flight must be at least 1".into()));
        }
        Ok(())
    }
}

/// The rate at `t` of a pattern running for `duration` (a ramp spans the duration).
pub fn rate_at(pattern: &Pattern, t: f64, duration: f64) -> f64 {
    match *pattern {
        Pattern::Ramp { from, to } => from + (to - from) * (t / duration).clamp(0.0, 1.0),
        ref p => p.rate_at(t),
    }
}

fn expected_requests(pattern: &Pattern, duration: f64) -> f64 {
    let steps = 1000;
    let dt = duration / f64::from(steps);
    (0..steps)
        .map(|i| rate_at(pattern, (f64::from(i) + 0.5) * dt, duration) * dt)
        .sum()
}

/// Latency percentiles, seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Fine) -> Option<Self> {
        Some(Self {
            p50: h.quantile(0.5)?,
            p90: h.quantile(0.9)?,
            p99: h.quantile(0.99)?,
            max: h.max(),
        })
    }
}

/// What a run measured. `sent = completed + Σ errors`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub url: String,
    /// `open` or `closed`.
    pub mode: &'static str,
    /// `HTTP/1.1` or `HTTP/2`.
    pub protocol: &'static str,
    /// Requests scheduled (open loop) or sent (closed loop).
    pub sent: u64,
    /// Answered with a 2xx status and a complete body.
    pub completed: u64,
    /// Failures by kind: `status_503`, `connect`, `tls` (handshake, certificate),
    /// `no_h2` (an https server that does not offer HTTP/2), `timeout`, `io`,
    /// `max_in_flight`.
    pub errors: BTreeMap<String, u64>,
    /// Seconds from the first send to the last answer.
    pub elapsed: f64,
    /// Completed requests per second of `elapsed`.
    pub throughput: f64,
    /// From the intended send time (open loop) or the actual one (closed loop).
    pub latency: Option<Percentiles>,
    /// To the first body bytes (streaming requests only).
    pub ttft: Option<Percentiles>,
    /// Inter-token latency (streaming requests only): per request, the time from its
    /// first to its last token event over the gaps between them.
    pub itl: Option<Percentiles>,
}

impl Report {
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A progress sample, about once a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub elapsed: f64,
    pub sent: u64,
    pub completed: u64,
    pub errors: u64,
    pub in_flight: usize,
    /// Latency percentiles so far.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// Requests completed in the recent window ([`RECENT_WINDOW`]: this second and the
    /// ones before it), and their latency percentiles: what the server does now, which
    /// the cumulative percentiles hide once a run is long.
    pub recent_completed: u64,
    pub recent_p50: Option<f64>,
    pub recent_p99: Option<f64>,
}

/// The recent window of [`Progress`], in whole seconds: the current second (partly
/// elapsed) and the `RECENT_WINDOW - 1` before it, so 4 to 5 s of completions, like a
/// Prometheus `rate(...[5s])` over a histogram's buckets.
pub const RECENT_WINDOW: usize = 5;

/// Latencies by the second they completed in, for the last [`RECENT_WINDOW`] seconds:
/// a ring of histograms, each reused (cleared) when its second comes round again, so
/// recording stays a few integer operations and memory stays fixed. Coarse ones
/// (≤ 6.3 % error, 6.5 kB each): the window is for watching, the report has the
/// precise percentiles.
#[derive(Debug, Clone)]
struct Recent {
    /// (second since the start, latencies completed in it); `u64::MAX` = unused.
    slots: Vec<(u64, Coarse)>,
}

impl Recent {
    fn new() -> Self {
        Self {
            slots: (0..RECENT_WINDOW)
                .map(|_| (u64::MAX, Coarse::new()))
                .collect(),
        }
    }

    /// Records a latency that completed during second `second`.
    fn record(&mut self, second: u64, secs: f64) {
        let (at, h) = &mut self.slots[(second % RECENT_WINDOW as u64) as usize];
        if *at != second {
            h.clear();
            *at = second;
        }
        h.record(secs);
    }

    /// Adds the latencies of the window ending with second `now` to `into`; older
    /// seconds (and any later than `now`) are left out.
    fn merge_window(&self, now: u64, into: &mut Coarse) {
        for (at, h) in &self.slots {
            if *at <= now && now - *at < RECENT_WINDOW as u64 {
                into.merge(h);
            }
        }
    }
}

#[derive(Debug)]
struct Stats {
    latency: Fine,
    ttft: Fine,
    itl: Fine,
    /// `latency` of the last seconds only (for [`Progress`]).
    recent: Recent,
    completed: u64,
    errors: BTreeMap<String, u64>,
    last_done: Instant,
}

struct Shared {
    cfg: Config,
    /// https://: the TLS set-up and the name the certificate must carry.
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    /// The HTTP/2 connections, shared by all requests (empty for HTTP/1.1): each open
    /// one, and a lock held while (re)connecting it.
    h2: Vec<(Mutex<Option<H2>>, tokio::sync::Mutex<()>)>,
    next_h2: AtomicUsize,
    addr: std::net::SocketAddr,
    /// `host[:port]` for the Host header; the request target is the path and query.
    authority: String,
    target: String,
    body: Bytes,
    method: Method,
    /// Striped so that workers seldom wait for each other's lock.
    stats: Vec<Mutex<Stats>>,
    sent: AtomicU64,
    in_flight: AtomicUsize,
    idle: Notify,
    start: Instant,
}

/// Stat stripes: enough that 2 × the cores rarely collide.
const STRIPES: usize = 32;

impl Stats {
    fn new(start: Instant) -> Self {
        Self {
            latency: Fine::new(),
            ttft: Fine::new(),
            itl: Fine::new(),
            recent: Recent::new(),
            completed: 0,
            errors: BTreeMap::new(),
            last_done: start,
        }
    }
}

impl Shared {
    fn stats(&self, worker: usize) -> std::sync::MutexGuard<'_, Stats> {
        self.stats[worker % self.stats.len()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn error(&self, worker: usize, kind: String) {
        let mut s = self.stats(worker);
        *s.errors.entry(kind).or_default() += 1;
        s.last_done = Instant::now();
    }

    /// All stripes merged.
    fn merged(&self) -> Stats {
        self.merged_with_recent(0, &mut Coarse::new())
    }

    /// All stripes merged, and the recent window ending with second `now` added to
    /// `recent` under the same locks (so it never holds more than `completed`).
    fn merged_with_recent(&self, now: u64, recent: &mut Coarse) -> Stats {
        let mut all = Stats::new(self.start);
        for i in 0..self.stats.len() {
            let s = self.stats(i);
            s.recent.merge_window(now, recent);
            all.latency.merge(&s.latency);
            all.ttft.merge(&s.ttft);
            all.itl.merge(&s.itl);
            all.completed += s.completed;
            for (k, v) in &s.errors {
                *all.errors.entry(k.clone()).or_default() += v;
            }
            all.last_done = all.last_done.max(s.last_done);
        }
        all
    }

    fn done(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    fn progress(&self, start: Instant) -> Progress {
        let mut recent = Coarse::new();
        let s = self.merged_with_recent(self.second(Instant::now()), &mut recent);
        Progress {
            elapsed: start.elapsed().as_secs_f64(),
            sent: self.sent.load(Ordering::Relaxed),
            completed: s.completed,
            errors: s.errors.values().sum(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            p50: s.latency.quantile(0.5),
            p99: s.latency.quantile(0.99),
            recent_completed: recent.count(),
            recent_p50: recent.quantile(0.5),
            recent_p99: recent.quantile(0.99),
        }
    }

    /// Whole seconds from the start to `t` (the recent window's slots).
    fn second(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_secs()
    }
}

/// The request body for OpenAI endpoints (by path), or none (a plain GET).
fn body_for(uri: &Uri, shape: &RequestShape) -> Option<serde_json::Value> {
    let path = uri.path().trim_end_matches('/');
    // About one token per 4 characters, for the emulator and for BPE tokenizers alike.
    let prompt = "hey ".repeat(shape.prompt_tokens as usize);
    let mut v = if path.ends_with("/chat/completions") {
        serde_json::json!({"messages": [{"role": "user", "content": prompt}]})
    } else if path.ends_with("/completions") {
        serde_json::json!({"prompt": prompt})
    } else {
        return None;
    };
    v["max_tokens"] = shape.max_tokens.into();
    if shape.stream {
        v["stream"] = true.into();
    }
    if let Some(m) = &shape.model {
        v["model"] = m.clone().into();
    }
    Some(v)
}

/// Runs the load; `progress` is called about once a second.
///
/// # Errors
/// [`Error::Config`] for a run that cannot be set up.
pub async fn run(
    cfg: Config,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Report, Error> {
    cfg.check()?;
    let host = cfg.url.host().unwrap_or_default().to_owned();
    let https = cfg.url.scheme_str() == Some("https");
    let port = cfg.url.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tls = if https {
        Some(tls_connector(&cfg, host.trim_matches(['[', ']']))?)
    } else {
        if cfg.ca_file.is_some() {
            return Err(Error::Config("--cacert is for https:// URLs".into()));
        }
        None
    };
    let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Error::Config(format!("cannot resolve {host}")))?;
    let authority = cfg
        .url
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let target = cfg
        .url
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let (method, body) = match body_for(&cfg.url, &cfg.shape) {
        Some(v) => (Method::POST, Bytes::from(v.to_string())),
        None => (Method::GET, Bytes::new()),
    };
    let start = Instant::now();
    let h2 = if cfg.http2 {
        (0..cfg.connections)
            .map(|_| (Mutex::new(None), tokio::sync::Mutex::new(())))
            .collect()
    } else {
        Vec::new()
    };
    let shared = Arc::new(Shared {
        tls,
        h2,
        next_h2: AtomicUsize::new(0),
        cfg,
        addr,
        authority,
        target,
        body,
        method,
        stats: (0..STRIPES)
            .map(|_| Mutex::new(Stats::new(start)))
            .collect(),
        start,
        sent: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        idle: Notify::new(),
    });
    let end = start + Duration::from_secs_f64(shared.cfg.duration);
    let sender = match shared.cfg.mode.clone() {
        Mode::Open { pattern } => tokio::spawn(open_loop(
            Arc::clone(&shared),
            Schedule::Pattern { pattern, t: 0.0 },
            start,
        )),
        Mode::Trace { traffic } => {
            let arrivals = traffic
                .arrivals()
                .map_err(|e| Error::Config(e.to_string()))?;
            tokio::spawn(open_loop(
                Arc::clone(&shared),
                Schedule::Trace(Box::new(arrivals)),
                start,
            ))
        }
        Mode::Closed { concurrency } => {
            tokio::spawn(closed_loop(Arc::clone(&shared), concurrency, end))
        }
    };
    let mut ticker =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tokio::pin!(sender);
    loop {
        tokio::select! {
            _ = &mut sender => break,
            _ = ticker.tick() => progress(shared.progress(start)),
        }
    }
    // Everything is sent: wait for what is in flight (each request has its timeout).
    loop {
        let idle = shared.idle.notified();
        if shared.in_flight.load(Ordering::Acquire) == 0 {
            break;
        }
        tokio::select! {
            () = idle => {}
            _ = ticker.tick() => progress(shared.progress(start)),
        }
    }
    let s = shared.merged();
    let elapsed = s.last_done.duration_since(start).as_secs_f64().max(1e-9);
    Ok(Report {
        url: shared.cfg.url.to_string(),
        mode: match shared.cfg.mode {
            Mode::Open { .. } | Mode::Trace { .. } => "open",
            Mode::Closed { .. } => "closed",
        },
        protocol: if shared.cfg.http2 {
            "HTTP/2"
        } else {
            "HTTP/1.1"
        },
        sent: shared.sent.load(Ordering::Relaxed),
        completed: s.completed,
        errors: s.errors.clone(),
        elapsed,
        throughput: s.completed as f64 / elapsed,
        latency: Percentiles::of(&s.latency),
        ttft: Percentiles::of(&s.ttft),
        itl: Percentiles::of(&s.itl),
    })
}

/// When requests are due (seconds from the start), with token counts from a trace.
enum Schedule {
    Pattern { pattern: Pattern, t: f64 },
    Trace(Box<podscale_sim::traffic::Arrivals>),
}

impl Schedule {
    fn next(&mut self, duration: f64) -> Option<(f64, Option<(u32, u32)>)> {
        match self {
            Self::Pattern { pattern, t } => loop {
                // (Less a rounding margin: 800 steps of 1/200 s add up to a hair under 4 s.)
                if *t >= duration - 1e-9 {
                    return None;
                }
                let rate = rate_at(pattern, *t, duration);
                if rate.is_nan() || rate <= 0.0 {
                    // Nothing due: look again a little later.
                    *t += 0.01;
                    continue;
                }
                let due = *t;
                *t += 1.0 / rate;
                return Some((due, None));
            },
            Self::Trace(arrivals) => {
                let r = arrivals.next_request()?;
                (r.t < duration).then_some((r.t, Some((r.input, r.output))))
            }
        }
    }
}

/// Requests due and not yet taken by a connection (open loop).
#[derive(Debug, Default)]
struct Queue {
    due: Mutex<std::collections::VecDeque<(Instant, Option<Bytes>)>>,
    ready: Notify,
    finished: AtomicBool,
}

impl Queue {
    fn pop(&self) -> Option<(Instant, Option<Bytes>)> {
        self.due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    }
}

/// Sends on schedule: request `i` is due at `t_i`, spaced `1 / rate(t)` apart, and goes
/// out on the first free connection (`connections` of them, as wrk2 does); its latency
/// counts from `t_i` however long it waited for one.
async fn open_loop(shared: Arc<Shared>, mut schedule: Schedule, start: Instant) {
    let queue = Arc::new(Queue::default());
    // HTTP/2: no worker per connection, each request is a task of its own (a stream on
    // one of the shared connections); `max_in_flight` bounds them.
    let worker_count = if shared.cfg.http2 {
        0
    } else {
        shared.cfg.connections
    };
    let mut spawned = 0usize;
    let workers: Vec<_> = (0..worker_count)
        .map(|worker| {
            let shared = Arc::clone(&shared);
            let queue = Arc::clone(&queue);
            tokio::spawn(async move {
                let mut link = Link::H1(None);
                loop {
                    if let Some((due, body)) = queue.pop() {
                        one(&shared, worker, &mut link, due, body).await;
                        continue;
                    }
                    if queue.finished.load(Ordering::Acquire) {
                        return;
                    }
                    // notify_one keeps a permit for a worker not yet waiting, so no
                    // request is missed; the timeout only bounds the wait at the end.
                    let _ =
                        tokio::time::timeout(Duration::from_millis(100), queue.ready.notified())
                            .await;
                }
            })
        })
        .collect();
    let duration = shared.cfg.duration;
    while let Some((t, tokens)) = schedule.next(duration) {
        let due = start + Duration::from_secs_f64(t);
        // A timer fires about every millisecond: send everything already due at once;
        // latency still counts from each request's own due time.
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        shared.sent.fetch_add(1, Ordering::Relaxed);
        if shared.in_flight.fetch_add(1, Ordering::AcqRel) >= shared.cfg.max_in_flight {
            shared.error(0, "max_in_flight".into());
            shared.done();
        } else {
            let body = tokens.and_then(|(input, output)| {
                let shape = RequestShape {
                    prompt_tokens: input,
                    max_tokens: output.max(1),
                    ..shared.cfg.shape.clone()
                };
                body_for(&shared.cfg.url, &shape).map(|v| Bytes::from(v.to_string()))
            });
            if shared.cfg.http2 {
                let shared = Arc::clone(&shared);
                spawned = spawned.wrapping_add(1);
                let worker = spawned;
                tokio::spawn(async move {
                    one(&shared, worker, &mut Link::H2, due, body).await;
                });
                continue;
            }
            queue
                .due
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push_back((due, body));
            queue.ready.notify_one();
        }
    }
    queue.finished.store(true, Ordering::Release);
    queue.ready.notify_waiters();
    for w in workers {
        let _ = w.await;
    }
}

/// `concurrency` workers, each with its connection, sending when the last answer is in.
async fn closed_loop(shared: Arc<Shared>, concurrency: usize, end: Instant) {
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut link = if shared.cfg.http2 {
                    Link::H2
                } else {
                    Link::H1(None)
                };
                while Instant::now() < end {
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                    shared.in_flight.fetch_add(1, Ordering::AcqRel);
                    one(&shared, worker, &mut link, Instant::now(), None).await;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

type H1 = SendRequest<Full<Bytes>>;
type H2 = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

/// Where a request goes: the worker's own HTTP/1.1 connection (opened when needed), or
/// one of the shared HTTP/2 connections.
enum Link {
    H1(Option<H1>),
    H2,
}

impl Link {
    /// Forgets a connection that may still carry an earlier answer (HTTP/1.1); an
    /// HTTP/2 stream is reset on its own when dropped.
    fn reset(&mut self) {
        if let Self::H1(c) = self {
            *c = None;
        }
    }
}

/// Sends one request due at `due` on `link` and records its fate.
async fn one(shared: &Shared, worker: usize, link: &mut Link, due: Instant, body: Option<Bytes>) {
    let outcome =
        tokio::time::timeout_at(due + shared.cfg.timeout, exchange(shared, link, due, body)).await;
    match outcome {
        Ok(Ok(Timing { latency, ttft, itl })) => {
            let now = Instant::now();
            let second = shared.second(now);
            let mut s = shared.stats(worker);
            s.completed += 1;
            s.latency.record(latency);
            s.recent.record(second, latency);
            if let Some(t) = ttft {
                s.ttft.record(t);
            }
            if let Some(t) = itl {
                s.itl.record(t);
            }
            s.last_done = now;
        }
        Ok(Err(kind)) => {
            link.reset();
            shared.error(worker, kind);
        }
        Err(_) => {
            // The answer may still come on this connection: do not reuse it.
            link.reset();
            shared.error(worker, "timeout".into());
        }
    }
    shared.done();
}

async fn tcp(addr: std::net::SocketAddr) -> Result<tokio::net::TcpStream, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|_| "connect".to_owned())?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The TLS session over `stream` (https://), or `None` for http://.
async fn tls(
    shared: &Shared,
    stream: tokio::net::TcpStream,
) -> Result<
    Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, tokio::net::TcpStream>,
    String,
> {
    let Some((connector, name)) = &shared.tls else {
        return Ok(Err(stream));
    };
    let tls = connector
        .connect(name.clone(), stream)
        .await
        .map_err(|_| "tls".to_owned())?;
    if shared.cfg.http2 && tls.get_ref().1.alpn_protocol() != Some(b"h2") {
        // The server did not take `h2` in ALPN: it does not speak HTTP/2 over TLS.
        return Err("no_h2".into());
    }
    Ok(Ok(tls))
}

async fn connect(shared: &Shared) -> Result<H1, String> {
    let stream = tcp(shared.addr).await?;
    let err = |_| "connect".to_owned();
    let (send, conn) = match tls(shared, stream).await? {
        Ok(tls) => {
            let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                .await
                .map_err(err)?;
            tokio::spawn(conn);
            return Ok(send);
        }
        Err(tcp) => hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(err)?,
    };
    tokio::spawn(conn);
    Ok(send)
}

async fn connect_h2(shared: &Shared) -> Result<H2, String> {
    let stream = tcp(shared.addr).await?;
    let err = |_| "connect".to_owned();
    let exec = TokioExecutor::new();
    let (send, conn) = match tls(shared, stream).await? {
        Ok(tls) => {
            let (send, conn) = hyper::client::conn::http2::handshake(exec, TokioIo::new(tls))
                .await
                .map_err(err)?;
            tokio::spawn(conn);
            return Ok(send);
        }
        Err(tcp) => hyper::client::conn::http2::handshake(exec, TokioIo::new(tcp))
            .await
            .map_err(err)?,
    };
    tokio::spawn(conn);
    Ok(send)
}

/// Largest `--cacert` file read.
const MAX_CA_FILE: u64 = 4 << 20;

/// The TLS client set-up for https://: ring (the workspace's one provider), the system's
/// trust store (rustls-platform-verifier, as reqwest and kube use) or `--cacert`'s
/// certificates, ALPN offering the protocol asked for.
fn tls_connector(
    cfg: &Config,
    host: &str,
) -> Result<
    (
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    ),
    Error,
> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let tls_err = |e: rustls::Error| Error::Config(format!("cannot set up TLS: {e}"));
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(tls_err)?;
    let mut config = match &cfg.ca_file {
        Some(path) => {
            let shown = path.display();
            let read = || -> Result<Vec<u8>, String> {
                use std::io::Read as _;
                let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
                let mut bytes = Vec::new();
                f.take(MAX_CA_FILE + 1)
                    .read_to_end(&mut bytes)
                    .map_err(|e| e.to_string())?;
                if bytes.len() as u64 > MAX_CA_FILE {
                    return Err(format!("larger than {MAX_CA_FILE} bytes"));
                }
                Ok(bytes)
            };
            let bytes = read().map_err(|e| Error::Config(format!("--cacert {shown}: {e}")))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.map_err(|e| {
                    Error::Config(format!("--cacert {shown}: not PEM certificates: {e}"))
                })?;
                roots.add(cert).map_err(|e| {
                    Error::Config(format!("--cacert {shown}: a certificate is invalid: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(Error::Config(format!(
                    "--cacert {shown}: no certificate in it"
                )));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .with_platform_verifier()
            .map_err(tls_err)?
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![if cfg.http2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| Error::Config(format!("{host:?} is not a valid TLS server name")))?;
    Ok((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
}

impl Shared {
    /// The next HTTP/2 connection in turn, (re)opened if it is not open: one open at a
    /// time per slot, so a server that went away is not hit by a connect per request.
    async fn h2(&self) -> Result<H2, String> {
        let i = self.next_h2.fetch_add(1, Ordering::Relaxed) % self.h2.len().max(1);
        let Some((open, connecting)) = self.h2.get(i) else {
            return Err("connect".into());
        };
        let current = || {
            open.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .filter(|c| !c.is_closed())
                .cloned()
        };
        // Each request takes a connection: a short lock, no await, in the common case.
        if let Some(c) = current() {
            return Ok(c);
        }
        let _connecting = connecting.lock().await;
        if let Some(c) = current() {
            // Another request reconnected it meanwhile.
            return Ok(c);
        }
        let c = connect_h2(self).await?;
        *open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c.clone());
        Ok(c)
    }
}

fn request<U>(shared: &Shared, uri: U) -> hyper::http::request::Builder
where
    Uri: TryFrom<U>,
    <Uri as TryFrom<U>>::Error: Into<hyper::http::Error>,
{
    let req = Request::builder().method(shared.method.clone()).uri(uri);
    if shared.method == Method::POST {
        req.header("content-type", "application/json")
    } else {
        req
    }
}

/// What one answer took, seconds.
struct Timing {
    latency: f64,
    /// To the first body bytes (streaming only).
    ttft: Option<f64>,
    /// Mean gap between token events (streaming, two events or more).
    itl: Option<f64>,
}

/// Server-sent events carrying JSON (tokens, usage), not `data: [DONE]`.
fn json_events(data: &[u8]) -> u32 {
    data.windows(7).filter(|w| *w == b"data: {").count() as u32
}

/// One request and its whole answer.
async fn exchange(
    shared: &Shared,
    link: &mut Link,
    due: Instant,
    body: Option<Bytes>,
) -> Result<Timing, String> {
    let body = Full::new(body.unwrap_or_else(|| shared.body.clone()));
    let resp = match link {
        Link::H1(conn) => {
            let reusable = match conn.as_mut() {
                Some(c) => c.ready().await.is_ok(),
                None => false,
            };
            if !reusable {
                // None yet, or closed by the server while idle.
                *conn = Some(connect(shared).await?);
            }
            let Some(c) = conn.as_mut() else {
                return Err("connect".into());
            };
            // Origin form and a Host header (RFC 9112 §3.2).
            let req = request(shared, shared.target.as_str())
                .header("host", shared.authority.as_str())
                .body(body)
                .map_err(|_| "request".to_owned())?;
            c.send_request(req).await.map_err(|_| "io".to_owned())?
        }
        Link::H2 => {
            let mut c = shared.h2().await?;
            // The whole URI: :scheme and :authority come from it (RFC 9113 §8.3.1).
            let req = request(shared, shared.cfg.url.clone())
                .body(body)
                .map_err(|_| "request".to_owned())?;
            // Waits while the server's stream limit is reached.
            c.ready().await.map_err(|_| "io".to_owned())?;
            c.send_request(req).await.map_err(|_| "io".to_owned())?
        }
    };
    let status = resp.status();
    let mut body = resp.into_body();
    let stream = shared.cfg.shape.stream;
    let mut ttft = None;
    // Gaps are counted from the events after the first frame: a chat stream's first
    // frame also carries the role delta, which is no token.
    let (mut events, mut first_frame_events, mut last_event) = (0u32, None, 0.0);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| "io".to_owned())?;
        if let Some(d) = frame.data_ref().filter(|d| !d.is_empty()) {
            let now = due.elapsed().as_secs_f64();
            ttft.get_or_insert(now);
            if stream {
                let n = json_events(d);
                if n > 0 {
                    first_frame_events.get_or_insert(n);
                    events += n;
                    last_event = now;
                }
            }
        }
    }
    let latency = due.elapsed().as_secs_f64();
    if !status.is_success() {
        return Err(format!("status_{}", status.as_u16()));
    }
    let gaps = events - first_frame_events.unwrap_or(events);
    let itl = match ttft {
        Some(first) if stream && gaps >= 1 => Some((last_event - first) / f64::from(gaps)),
        _ => None,
    };
    Ok(Timing {
        latency,
        ttft: ttft.filter(|_| stream),
        itl,
    })
}

/// The final report as text.
pub fn render_text(r: &Report) -> String {
    use std::fmt::Write as _;
    let ms = |x: f64| podscale_model::units::format_duration(x);
    let pct = |p: &Option<Percentiles>| match p {
        Some(p) => format!(
            "p50 {}  p90 {}  p99 {}  max {}",
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.max)
        ),
        None => "-".into(),
    };
    let mut out = String::new();
    let _ = writeln!(out, "{} ({} loop, {})", r.url, r.mode, r.protocol);
    let _ = writeln!(out, "  sent        {}", r.sent);
    let _ = writeln!(
        out,
        "  completed   {}  ({:.1}/s over {})",
        r.completed,
        r.throughput,
        ms(r.elapsed)
    );
    let errors: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(
        out,
        "  errors      {}{}",
        r.error_total(),
        if errors.is_empty() {
            String::new()
        } else {
            format!("  ({})", errors.join(", "))
        }
    );
    let _ = writeln!(out, "  latency     {}", pct(&r.latency));
    if r.ttft.is_some() {
        let _ = writeln!(out, "  ttft        {}", pct(&r.ttft));
    }
    if r.itl.is_some() {
        let _ = writeln!(out, "  itl         {}", pct(&r.itl));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(r: &Recent, now: u64) -> Coarse {
        let mut h = Coarse::new();
        r.merge_window(now, &mut h);
        h
    }

    #[test]
    fn the_recent_window_forgets_latencies_older_than_it() {
        let mut r = Recent::new();
        // A stall: 2 s latencies during seconds 0..3, then 10 ms ones from second 3.
        for second in 0..3 {
            for _ in 0..100 {
                r.record(second, 2.0);
            }
        }
        let stall = window(&r, 2);
        assert_eq!(stall.count(), 300);
        assert!(stall.quantile(0.5).is_some_and(|p| p > 1.8), "{stall:?}");
        for second in 3..8 {
            for _ in 0..100 {
                r.record(second, 0.010);
            }
            let w = window(&r, second);
            // The window holds seconds second-4..=second: the stall's share shrinks…
            let stalled = (0..3).filter(|s| second - s < RECENT_WINDOW as u64).count();
            assert_eq!(
                w.count(),
                100 * (stalled as u64 + (second - 2)),
                "at {second}"
            );
        }
        // …and is gone once its seconds have left the window.
        let w = window(&r, 7);
        assert_eq!(w.count(), 500);
        assert!(w.quantile(0.99).is_some_and(|p| p < 0.011), "{w:?}");
        // A quiet spell empties it: nothing completed in the last 5 s.
        assert_eq!(window(&r, 12).count(), 0);
        assert_eq!(window(&r, 12).quantile(0.99), None);
        // A slot reused by a later second starts empty.
        r.record(13, 0.5);
        assert_eq!(window(&r, 13).count(), 1);
    }
}
