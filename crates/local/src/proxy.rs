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
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::replicas::{InFlight, ReplicaSet};

/// A body as the proxy passes it on.
pub type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// What the proxy has done so far.
#[derive(Debug, Default)]
pub struct ProxyCounters {
    requests: AtomicU64,
    retries: AtomicU64,
    /// Answered by the proxy itself with 502/503 (no replica, all refused, failed).
    failed: AtomicU64,
}

/// A snapshot of [`ProxyCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyStats {
    pub requests: u64,
    pub retries: u64,
    pub failed: u64,
}

impl ProxyCounters {
    pub fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
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

/// A replica's response body, counting its request as in flight until the body is
/// done (or dropped): a streamed answer keeps its replica busy.
struct Tracked {
    inner: Incoming,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
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
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req| {
                    let this = Arc::clone(&this);
                    async move { Ok::<_, Infallible>(this.handle(req, peer).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
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
        let response = self.forward(req, peer).await;
        if response.extensions().get::<Local>().is_some() {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        response
    }

    async fn forward(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        let (mut parts, body) = req.into_parts();
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
        let buffered = if small {
            let limit = usize::try_from(self.max_retry_body).unwrap_or(usize::MAX);
            match Limited::new(body, limit).collect().await {
                Ok(c) => Some(c.to_bytes()),
                Err(e) => {
                    return mark(local_response(
                        StatusCode::BAD_REQUEST,
                        &format!("cannot read the request body: {e}"),
                    ));
                }
            }
        } else {
            streaming = Some(body);
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
                return mark(local_response(
                    StatusCode::BAD_REQUEST,
                    "invalid request path",
                ));
            };
            let mut out = Request::new(body);
            *out.method_mut() = parts.method.clone();
            *out.uri_mut() = uri;
            *out.headers_mut() = parts.headers.clone();
            let can_retry = buffered.is_some() && attempt < self.max_attempts;
            match self.client.request(out).await {
                Ok(resp) if resp.status() == StatusCode::SERVICE_UNAVAILABLE && can_retry => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                }
                Ok(resp) => {
                    let (mut rparts, rbody) = resp.into_parts();
                    strip_hop_by_hop(&mut rparts.headers);
                    let body = Tracked {
                        inner: rbody,
                        _in_flight: in_flight,
                    };
                    return Response::from_parts(rparts, body.boxed_unsync());
                }
                Err(e) if e.is_connect() && can_retry => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::debug!(replica = index, error = %e, "Proxied request failed.");
                    return mark(local_response(
                        StatusCode::BAD_GATEWAY,
                        &format!("replica {index} failed: {}", error_chain(&e)),
                    ));
                }
            }
        }
        mark(local_response(
            StatusCode::SERVICE_UNAVAILABLE,
            if tried.is_empty() {
                "no ready replica"
            } else {
                "no ready replica accepted the request"
            },
        ))
    }
}

/// Marks a response the proxy made itself (counted as failed).
#[derive(Debug, Clone, Copy)]
struct Local;

fn mark(mut r: Response<ProxyBody>) -> Response<ProxyBody> {
    r.extensions_mut().insert(Local);
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
