//! The front proxy: one address for clients, the ready replicas behind it.
//!
//! - Only **ready** replicas that are not stopping get requests (a Service's
//!   endpoints: ready pods, terminating ones removed).
//! - Least outstanding requests: the replica with the fewest requests in flight
//!   through the proxy (what inference gateways do; round robin piles long
//!   generations onto one replica).
//! - Responses stream through frame by frame (server-sent events, token streams).
//! - A replica that refuses a request — connection refused, or 503 (a draining
//!   server's answer) — is skipped for another, when the request body is small enough
//!   to have been buffered (`front.maxRetryBody`); up to `front.maxAttempts` replicas.
//!   A larger or unsized body streams to one replica and is never replayed.
//! - Bounded like the rest (`front.*`): a request's whole life is capped
//!   (`requestTimeout`, 10 min by default: a replica that has not answered by then gets
//!   the client a 504, a stream still running then is cut); a client has
//!   `headerReadTimeout` to send its headers (hyper's timer, 30 s by default), and a
//!   body larger than `maxRequestBody` is answered 413 — before it reaches a replica
//!   when its length is declared, as soon as it grows past the limit when it is not.
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};

use crate::replicas::{InFlight, ReplicaSet};

/// An error of a body the proxy passes on.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A body as the proxy passes it on.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// How the proxy answered a request: proxied (whatever the replica answered), or
/// answered by the proxy itself, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A replica answered (any status).
    Proxied,
    /// 503: no ready replica.
    NoReplica,
    /// 503: every replica tried refused it.
    Refused,
    /// 502: the replica failed (connection reset, invalid answer).
    Failed,
    /// 504: the replica had not answered within `front.requestTimeout`.
    Timeout,
    /// 413: the body is larger than `front.maxRequestBody`.
    TooLarge,
    /// 400 or 408: an unreadable or too slow request.
    BadRequest,
}

impl Outcome {
    pub const ALL: [Self; 7] = [
        Self::Proxied,
        Self::NoReplica,
        Self::Refused,
        Self::Failed,
        Self::Timeout,
        Self::TooLarge,
        Self::BadRequest,
    ];

    /// The value of the `outcome` label of `podscale_local_proxy_requests_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Proxied => "proxied",
            Self::NoReplica => "no_replica",
            Self::Refused => "refused",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::TooLarge => "too_large",
            Self::BadRequest => "bad_request",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What the proxy has done so far.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    requests: AtomicU64,
    retries: AtomicU64,
    /// Answered by the proxy itself with 502/503/504 (no replica, all refused, failed,
    /// timed out).
    failed: AtomicU64,
    /// Per [`Outcome`], in [`Outcome::ALL`]'s order.
    outcomes: [AtomicU64; 7],
    /// Streamed answers cut at `front.requestTimeout`.
    cut: AtomicU64,
    /// Requests being served now (a streamed answer until it ends).
    in_flight: AtomicI64,
}

/// A snapshot of [`ProxyCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStats {
    pub requests: u64,
    pub retries: u64,
    pub failed: u64,
    /// 504s, and streamed answers cut, at `front.requestTimeout`.
    #[serde(default)]
    pub timeouts: u64,
    /// 4xx answers of the proxy itself (413, 400, 408).
    #[serde(default)]
    pub rejected: u64,
    #[serde(default)]
    pub in_flight: i64,
}

impl ProxyCounters {
    pub fn snapshot(&self) -> ProxyStats {
        let n = |o: Outcome| self.outcome(o);
        ProxyStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            timeouts: n(Outcome::Timeout) + self.cut.load(Ordering::Relaxed),
            rejected: n(Outcome::TooLarge) + n(Outcome::BadRequest),
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }

    /// Requests answered with `outcome` so far.
    pub fn outcome(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome.index()].load(Ordering::Relaxed)
    }

    /// Streamed answers cut at `front.requestTimeout`.
    pub fn streams_cut(&self) -> u64 {
        self.cut.load(Ordering::Relaxed)
    }
}

/// Counts a request in flight through the proxy until dropped (with its answer's body).
struct ProxyInFlight(Arc<ProxyCounters>);

impl ProxyInFlight {
    fn new(counters: &Arc<ProxyCounters>) -> Self {
        counters.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(counters))
    }
}

impl Drop for ProxyInFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The proxy's state, shared by its connections.
#[derive(Debug)]
pub struct Proxy {
    replicas: ReplicaSet,
    client: Client<HttpConnector, ProxyBody>,
    max_retry_body: u64,
    max_attempts: u32,
    max_connections: usize,
    request_timeout: Duration,
    header_read_timeout: Duration,
    max_request_body: u64,
    counters: Arc<ProxyCounters>,
}

/// Headers of one hop, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers the Connection header names are hop-by-hop too.
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for h in HOP_BY_HOP
        .iter()
        .copied()
        .chain(named.iter().map(String::as_str))
    {
        headers.remove(h);
    }
    headers.remove(header::TRANSFER_ENCODING);
}

fn local_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{message}\n")))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A streamed answer cut at `front.requestTimeout`.
#[derive(Debug, thiserror::Error)]
#[error("the answer was cut: the request took longer than front.requestTimeout ({0})")]
pub struct StreamCut(String);

/// A streamed request body that grew past `front.maxRequestBody`.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than front.maxRequestBody ({0})")]
pub struct BodyTooLarge(String);

/// A replica's response body, counting its request as in flight (on its replica and
/// through the proxy) until the body is done or dropped — a streamed answer keeps its
/// replica busy — and cut with an error at the request's deadline (the client sees
/// the answer end early, as from a proxy's `proxy_read_timeout`).
struct Tracked {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    counters: Arc<ProxyCounters>,
    done: bool,
    _in_flight: InFlight,
    _proxy_in_flight: ProxyInFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let past = match Pin::new(&mut this.inner).poll_frame(cx) {
            // A stream that never waits is checked against the clock as it goes.
            Poll::Ready(Some(Ok(frame))) => {
                if Instant::now() < this.deadline.deadline() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                true
            }
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                this.done = true;
                return Poll::Ready(None);
            }
            // Waiting on the replica: wake up at the deadline too.
            Poll::Pending => this.deadline.as_mut().poll(cx).is_ready(),
        };
        if !past {
            return Poll::Pending;
        }
        this.done = true;
        this.counters.cut.fetch_add(1, Ordering::Relaxed);
        let limit = podscale_metrics::config::format_duration(this.timeout);
        Poll::Ready(Some(Err(StreamCut(limit).into())))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body streamed to a replica, failing once it grows past `limit` bytes; it
/// then leaves the client's body in `leftover`, for [`drain`].
struct Capped {
    inner: Option<Incoming>,
    remaining: u64,
    limit: u64,
    leftover: Arc<std::sync::Mutex<Option<Incoming>>>,
}

/// At most this much of a refused body is read and discarded, for at most
/// [`DRAIN_TIME`], so that the client, still sending, reads the 413 instead of a
/// connection reset (nginx's lingering close: `lingering_time`, 30 s).
const DRAIN_BYTES: u64 = 16 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and discards what the client still sends of a refused body (bounded), in the
/// background: the answer goes out at once, and the connection is kept if the whole
/// body was read, closed otherwise.
fn drain(mut body: Incoming) {
    tokio::spawn(async move {
        let mut left = DRAIN_BYTES;
        let read = async {
            while let Some(Ok(frame)) = body.frame().await {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                if n > left {
                    return;
                }
                left -= n;
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIME, read).await;
    });
}

impl Body for Capped {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.remaining {
                        *this
                            .leftover
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = this.inner.take();
                        let limit = podscale_metrics::config::format_byte_size(this.limit);
                        return Poll::Ready(Some(Err(BodyTooLarge(limit).into())));
                    }
                    this.remaining -= n;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            other => other.map(|_| None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// Whether an error, or one of its causes, is `E`.
fn caused_by<E: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(x) = cur {
        if x.is::<E>() {
            return true;
        }
        cur = x.source();
    }
    false
}

impl Proxy {
    pub fn new(replicas: ReplicaSet) -> Self {
        let front = replicas.spec().front.clone();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self {
            replicas,
            client,
            max_retry_body: front.max_retry_body,
            max_attempts: front.max_attempts,
            max_connections: front.max_connections,
            request_timeout: front.request_timeout,
            header_read_timeout: front.header_read_timeout,
            max_request_body: front.max_request_body,
            counters: Arc::default(),
        }
    }

    pub fn counters(&self) -> Arc<ProxyCounters> {
        Arc::clone(&self.counters)
    }

    /// Serves connections from `listener` until `shutdown` turns `true`; then stops
    /// accepting and lets each connection finish its current request.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.max_connections));
        let mut stop = shutdown.clone();
        loop {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let (stream, peer) = tokio::select! {
                _ = stop.changed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "Front proxy cannot accept.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let this = Arc::clone(&self);
            let this_header_timeout = self.header_read_timeout;
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req| {
                    let this = Arc::clone(&this);
                    async move { Ok::<_, Infallible>(this.handle(req, peer).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(this_header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = &mut conn => {}
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
            });
        }
    }

    /// Proxies one request.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let in_flight = ProxyInFlight::new(&self.counters);
        let response = self.forward(req, peer, in_flight).await;
        let outcome = response
            .extensions()
            .get::<Local>()
            .map_or(Outcome::Proxied, |l| l.0);
        self.counters.outcomes[outcome.index()].fetch_add(1, Ordering::Relaxed);
        if response.status().is_server_error() && outcome != Outcome::Proxied {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        response
    }

    #[allow(clippy::too_many_lines)] // one request's path, read top to bottom
    async fn forward(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
        proxy_in_flight: ProxyInFlight,
    ) -> Response<ProxyBody> {
        let deadline = Instant::now() + self.request_timeout;
        let timeout = podscale_metrics::config::format_duration(self.request_timeout);
        let max_body = podscale_metrics::config::format_byte_size(self.max_request_body);
        let (mut parts, body) = req.into_parts();
        // A declared length over the limit is refused before any of it is sent on.
        if body.size_hint().lower() > self.max_request_body {
            drain(body);
            return mark(
                Outcome::TooLarge,
                local_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the request body is larger than front.maxRequestBody ({max_body})"),
                ),
            );
        }
        strip_hop_by_hop(&mut parts.headers);
        if let Ok(v) = HeaderValue::from_str(&peer.ip().to_string()) {
            parts.headers.append("x-forwarded-for", v);
        }
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        // Buffer a small body so that it can be sent again.
        let small = body
            .size_hint()
            .upper()
            .is_some_and(|n| n <= self.max_retry_body);
        let mut streaming = None;
        let leftover = Arc::default();
        let buffered = if small {
            let limit = usize::try_from(self.max_retry_body).unwrap_or(usize::MAX);
            match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect()).await {
                Ok(Ok(c)) => Some(c.to_bytes()),
                Ok(Err(e)) => {
                    return mark(
                        Outcome::BadRequest,
                        local_response(
                            StatusCode::BAD_REQUEST,
                            &format!("cannot read the request body: {e}"),
                        ),
                    );
                }
                Err(_) => {
                    return mark(
                        Outcome::BadRequest,
                        local_response(
                            StatusCode::REQUEST_TIMEOUT,
                            &format!(
                                "the request body did not arrive within front.requestTimeout ({timeout})"
                            ),
                        ),
                    );
                }
            }
        } else {
            streaming = Some(Capped {
                inner: Some(body),
                remaining: self.max_request_body,
                limit: self.max_request_body,
                leftover: Arc::clone(&leftover),
            });
            None
        };
        let mut tried = Vec::new();
        for attempt in 1..=self.max_attempts {
            let Some((index, port, in_flight)) = self.replicas.pick(&tried) else {
                break;
            };
            tried.push(index);
            let body: ProxyBody = match (&buffered, streaming.take()) {
                (Some(b), _) => Full::new(b.clone()).map_err(|e| match e {}).boxed_unsync(),
                (None, Some(s)) => s.boxed_unsync(),
                (None, None) => break,
            };
            let Ok(uri) = format!("http://127.0.0.1:{port}{path}").parse::<hyper::Uri>() else {
                return mark(
                    Outcome::BadRequest,
                    local_response(StatusCode::BAD_REQUEST, "invalid request path"),
                );
            };
            let mut out = Request::new(body);
            *out.method_mut() = parts.method.clone();
            *out.uri_mut() = uri;
            *out.headers_mut() = parts.headers.clone();
            let can_retry = buffered.is_some() && attempt < self.max_attempts;
            let Ok(answer) = tokio::time::timeout_at(deadline, self.client.request(out)).await
            else {
                // Not retried: the replica may be working on it.
                tracing::debug!(replica = index, "Proxied request timed out.");
                return mark(
                    Outcome::Timeout,
                    local_response(
                        StatusCode::GATEWAY_TIMEOUT,
                        &format!(
                            "replica {index} did not answer within front.requestTimeout ({timeout})"
                        ),
                    ),
                );
            };
            match answer {
                Ok(resp) if resp.status() == StatusCode::SERVICE_UNAVAILABLE && can_retry => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                }
                Ok(resp) => {
                    let (mut rparts, rbody) = resp.into_parts();
                    strip_hop_by_hop(&mut rparts.headers);
                    let body = Tracked {
                        inner: rbody,
                        deadline: Box::pin(tokio::time::sleep_until(deadline)),
                        timeout: self.request_timeout,
                        counters: Arc::clone(&self.counters),
                        done: false,
                        _in_flight: in_flight,
                        _proxy_in_flight: proxy_in_flight,
                    };
                    return Response::from_parts(rparts, body.boxed_unsync());
                }
                Err(e) if caused_by::<BodyTooLarge>(&e) => {
                    let rest = leftover
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take();
                    if let Some(rest) = rest {
                        drain(rest);
                    }
                    return mark(
                        Outcome::TooLarge,
                        local_response(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            &format!(
                                "the request body is larger than front.maxRequestBody ({max_body})"
                            ),
                        ),
                    );
                }
                Err(e) if e.is_connect() && can_retry => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::debug!(replica = index, error = %e, "Proxied request failed.");
                    return mark(
                        Outcome::Failed,
                        local_response(
                            StatusCode::BAD_GATEWAY,
                            &format!("replica {index} failed: {}", error_chain(&e)),
                        ),
                    );
                }
            }
        }
        if tried.is_empty() {
            mark(
                Outcome::NoReplica,
                local_response(StatusCode::SERVICE_UNAVAILABLE, "no ready replica"),
            )
        } else {
            mark(
                Outcome::Refused,
                local_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no ready replica accepted the request",
                ),
            )
        }
    }
}

/// Marks a response the proxy made itself, with why.
#[derive(Debug, Clone, Copy)]
struct Local(Outcome);

fn mark(outcome: Outcome, mut r: Response<ProxyBody>) -> Response<ProxyBody> {
    r.extensions_mut().insert(Local(outcome));
    r
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}
