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
use hyper_util::rt::TokioIo;
use podscale_model::histogram::Fine;
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
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Requests leave on schedule at `pattern`'s rate (requests per second over time).
    Open { pattern: Pattern },
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
    pub connections: usize,
    pub shape: RequestShape,
}

/// Most requests one run may schedule (about 2 GB of task state at worst).
pub const MAX_REQUESTS: f64 = 100_000_000.0;

impl Config {
    /// A run against `url` (plain `http://`; HTTP/1.1 with keep-alive).
    ///
    /// # Errors
    /// [`Error::Url`] for anything but an absolute `http://` URL.
    pub fn new(url: &str, mode: Mode, duration: f64) -> Result<Self, Error> {
        let bad = |message: &str| Error::Url {
            url: url.into(),
            message: message.into(),
        };
        let uri: Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not supported yet: use plain http://")),
            _ => return Err(bad("give an absolute http:// URL")),
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
    /// Requests scheduled (open loop) or sent (closed loop).
    pub sent: u64,
    /// Answered with a 2xx status and a complete body.
    pub completed: u64,
    /// Failures by kind: `status_503`, `connect`, `timeout`, `io`, `max_in_flight`.
    pub errors: BTreeMap<String, u64>,
    /// Seconds from the first send to the last answer.
    pub elapsed: f64,
    /// Completed requests per second of `elapsed`.
    pub throughput: f64,
    /// From the intended send time (open loop) or the actual one (closed loop).
    pub latency: Option<Percentiles>,
    /// To the first body bytes (streaming requests only).
    pub ttft: Option<Percentiles>,
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
}

#[derive(Debug)]
struct Stats {
    latency: Fine,
    ttft: Fine,
    completed: u64,
    errors: BTreeMap<String, u64>,
    last_done: Instant,
}

#[derive(Debug)]
struct Shared {
    cfg: Config,
    addr: std::net::SocketAddr,
    /// `host[:port]` for the Host header; the request target is the path and query.
    authority: String,
    target: String,
    body: Bytes,
    method: Method,
    stats: Mutex<Stats>,
    sent: AtomicU64,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Shared {
    fn error(&self, kind: String) {
        let mut s = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *s.errors.entry(kind).or_default() += 1;
        s.last_done = Instant::now();
    }

    fn done(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    fn progress(&self, start: Instant) -> Progress {
        let s = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Progress {
            elapsed: start.elapsed().as_secs_f64(),
            sent: self.sent.load(Ordering::Relaxed),
            completed: s.completed,
            errors: s.errors.values().sum(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            p50: s.latency.quantile(0.5),
            p99: s.latency.quantile(0.99),
        }
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
    let port = cfg.url.port_u16().unwrap_or(80);
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
    let shared = Arc::new(Shared {
        cfg,
        addr,
        authority,
        target,
        body,
        method,
        stats: Mutex::new(Stats {
            latency: Fine::new(),
            ttft: Fine::new(),
            completed: 0,
            errors: BTreeMap::new(),
            last_done: start,
        }),
        sent: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
        idle: Notify::new(),
    });
    let end = start + Duration::from_secs_f64(shared.cfg.duration);
    let sender = match shared.cfg.mode.clone() {
        Mode::Open { pattern } => tokio::spawn(open_loop(Arc::clone(&shared), pattern, start)),
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
    let s = shared
        .stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let elapsed = s.last_done.duration_since(start).as_secs_f64().max(1e-9);
    Ok(Report {
        url: shared.cfg.url.to_string(),
        mode: match shared.cfg.mode {
            Mode::Open { .. } => "open",
            Mode::Closed { .. } => "closed",
        },
        sent: shared.sent.load(Ordering::Relaxed),
        completed: s.completed,
        errors: s.errors.clone(),
        elapsed,
        throughput: s.completed as f64 / elapsed,
        latency: Percentiles::of(&s.latency),
        ttft: Percentiles::of(&s.ttft),
    })
}

/// Requests due and not yet taken by a connection (open loop).
#[derive(Debug, Default)]
struct Queue {
    due: Mutex<std::collections::VecDeque<Instant>>,
    ready: Notify,
    finished: AtomicBool,
}

impl Queue {
    fn pop(&self) -> Option<Instant> {
        self.due
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    }
}

/// Sends on schedule: request `i` is due at `t_i`, spaced `1 / rate(t)` apart, and goes
/// out on the first free connection (`connections` of them, as wrk2 does); its latency
/// counts from `t_i` however long it waited for one.
async fn open_loop(shared: Arc<Shared>, pattern: Pattern, start: Instant) {
    let queue = Arc::new(Queue::default());
    let workers: Vec<_> = (0..shared.cfg.connections)
        .map(|_| {
            let shared = Arc::clone(&shared);
            let queue = Arc::clone(&queue);
            tokio::spawn(async move {
                let mut conn = None;
                loop {
                    if let Some(due) = queue.pop() {
                        one(&shared, &mut conn, due).await;
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
    let mut t = 0.0;
    loop {
        let rate = rate_at(&pattern, t, duration);
        // (Less a rounding margin: 800 steps of 1/200 s add up to a hair under 4 s.)
        if t >= duration - 1e-9 {
            break;
        }
        if rate.is_nan() || rate <= 0.0 {
            // Nothing due: look again a little later.
            t += 0.01;
            continue;
        }
        let due = start + Duration::from_secs_f64(t);
        // A timer fires about every millisecond: send everything already due at once;
        // latency still counts from each request's own due time.
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        shared.sent.fetch_add(1, Ordering::Relaxed);
        if shared.in_flight.fetch_add(1, Ordering::AcqRel) >= shared.cfg.max_in_flight {
            shared.error("max_in_flight".into());
            shared.done();
        } else {
            queue
                .due
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push_back(due);
            queue.ready.notify_one();
        }
        t += 1.0 / rate;
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
        .map(|_| {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let mut conn = None;
                while Instant::now() < end {
                    shared.sent.fetch_add(1, Ordering::Relaxed);
                    shared.in_flight.fetch_add(1, Ordering::AcqRel);
                    one(&shared, &mut conn, Instant::now()).await;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
}

type Conn = SendRequest<Full<Bytes>>;

/// Sends one request due at `due` on `conn` (opened if needed) and records its fate.
async fn one(shared: &Shared, conn: &mut Option<Conn>, due: Instant) {
    let outcome =
        tokio::time::timeout_at(due + shared.cfg.timeout, exchange(shared, conn, due)).await;
    match outcome {
        Ok(Ok((latency, ttft))) => {
            let mut s = shared
                .stats
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.completed += 1;
            s.latency.record(latency);
            if let Some(t) = ttft {
                s.ttft.record(t);
            }
            s.last_done = Instant::now();
        }
        Ok(Err(kind)) => {
            *conn = None;
            shared.error(kind);
        }
        Err(_) => {
            // The answer may still come on this connection: do not reuse it.
            *conn = None;
            shared.error("timeout".into());
        }
    }
    shared.done();
}

async fn connect(addr: std::net::SocketAddr) -> Result<Conn, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|_| "connect".to_owned())?;
    let _ = stream.set_nodelay(true);
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| "connect".to_owned())?;
    tokio::spawn(conn);
    Ok(send)
}

/// One request and its whole answer: (latency, time to first body bytes when streaming).
async fn exchange(
    shared: &Shared,
    conn: &mut Option<Conn>,
    due: Instant,
) -> Result<(f64, Option<f64>), String> {
    let reusable = match conn.as_mut() {
        Some(c) => c.ready().await.is_ok(),
        None => false,
    };
    if !reusable {
        // None yet, or closed by the server while idle.
        *conn = Some(connect(shared.addr).await?);
    }
    let Some(c) = conn.as_mut() else {
        return Err("connect".into());
    };
    let mut req = Request::builder()
        .method(shared.method.clone())
        .uri(shared.target.as_str())
        .header("host", shared.authority.as_str());
    if shared.method == Method::POST {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Full::new(shared.body.clone()))
        .map_err(|_| "request".to_owned())?;
    let resp = c.send_request(req).await.map_err(|_| "io".to_owned())?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut ttft = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| "io".to_owned())?;
        if ttft.is_none() && frame.data_ref().is_some_and(|d| !d.is_empty()) {
            ttft = Some(due.elapsed().as_secs_f64());
        }
    }
    let latency = due.elapsed().as_secs_f64();
    if !status.is_success() {
        return Err(format!("status_{}", status.as_u16()));
    }
    Ok((latency, ttft.filter(|_| shared.cfg.shape.stream)))
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
    let _ = writeln!(out, "{} ({} loop)", r.url, r.mode);
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
    out
}
