//! The status API: a small JSON API on a loopback port, what `podscale get` and
//! `podscale describe` read, and its client.
//!
//! - `GET /api/v1/status`: every autoscaler (its object with the status last
//!   committed, its events), the replicas, the proxy's counters.
//! - `GET /metrics`: the Prometheus exposition ([`crate::prom`]).
//! - `GET /healthz`: `ok`.
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full, Limited};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jiff::Timestamp;
use podscale_core::api::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use podscale_core::conditions::{Event, EventType};
use podscale_core::history::History;
use podscale_runtime::recorder::RecordError;
use podscale_runtime::{Key, Recorder};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::proxy::ProxyStats;
use crate::replicas::ReplicaInfo;

/// Largest status answer the client reads.
pub const MAX_STATUS_BYTES: usize = 16 * 1024 * 1024;
/// Events kept per autoscaler (oldest dropped first).
pub const MAX_EVENTS: usize = 100;

/// One event, with repeats folded as client-go's event correlator does (`count`,
/// first and last seen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedEvent {
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: u32,
    pub first_timestamp: Timestamp,
    pub last_timestamp: Timestamp,
}

/// One autoscaler, as the status API reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerStatus {
    /// The object, with `status` as last committed.
    pub hpa: HorizontalPodAutoscaler,
    /// When this podscale started managing it (the object's creation, locally).
    pub created: Timestamp,
    pub syncs: u64,
    /// The last sync's error, if it had one.
    pub last_error: Option<String>,
    pub events: Vec<RecordedEvent>,
}

/// Everything `GET /api/v1/status` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDoc {
    pub now: Timestamp,
    pub autoscalers: Vec<AutoscalerStatus>,
    /// The local deployment's name and kind (`Deployment`).
    pub target: String,
    pub replicas: Vec<ReplicaInfo>,
    /// Crash restarts over all replicas so far.
    pub restarts: u64,
    pub proxy: ProxyStats,
}

/// A recorder for the local runtime: statuses live in the controller's views; events
/// are kept here, with timestamps and repeat counts, bounded per autoscaler.
#[derive(Debug, Clone, Default)]
pub struct LocalRecorder {
    events: Arc<Mutex<HashMap<Key, Vec<RecordedEvent>>>>,
}

impl LocalRecorder {
    pub fn events(&self, key: &Key) -> Vec<RecordedEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
            .unwrap_or_default()
    }
}

impl Recorder for LocalRecorder {
    async fn write_status(
        &self,
        _key: &Key,
        _hpa: &HorizontalPodAutoscaler,
        _status: &HorizontalPodAutoscalerStatus,
        _history: &History,
    ) -> Result<(), RecordError> {
        Ok(())
    }

    async fn event(&self, key: &Key, _hpa: &HorizontalPodAutoscaler, event: &Event) {
        let now = Timestamp::now();
        let type_ = match event.type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let mut map = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let list = map.entry(key.clone()).or_default();
        if let Some(e) = list
            .iter_mut()
            .find(|e| e.type_ == type_ && e.reason == event.reason && e.message == event.message)
        {
            e.count = e.count.saturating_add(1);
            e.last_timestamp = now;
            return;
        }
        if list.len() >= MAX_EVENTS {
            list.remove(0);
        }
        list.push(RecordedEvent {
            type_: type_.into(),
            reason: event.reason.clone(),
            message: event.message.clone(),
            count: 1,
            first_timestamp: now,
            last_timestamp: now,
        });
    }
}

/// Serves the status API on `listener` until `shutdown` turns `true`; `doc` builds the
/// JSON answer, `metrics` the `/metrics` exposition.
pub async fn serve<F, M>(listener: TcpListener, doc: F, metrics: M, shutdown: watch::Receiver<bool>)
where
    F: Fn() -> StatusDoc + Send + Sync + 'static,
    M: Fn() -> String + Send + Sync + 'static,
{
    let doc = Arc::new(doc);
    let metrics = Arc::new(metrics);
    let mut stop = shutdown.clone();
    loop {
        let stream = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let doc = Arc::clone(&doc);
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let doc = Arc::clone(&doc);
                let metrics = Arc::clone(&metrics);
                async move {
                    Ok::<_, Infallible>(answer(req.uri().path(), req.method(), &*doc, &*metrics))
                }
            });
            // Bounded as the front proxy: a client must send its headers in time.
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The exposition's content type, as the Kubernetes controller's admin server sends it.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

fn answer(
    path: &str,
    method: &hyper::Method,
    doc: &dyn Fn() -> StatusDoc,
    metrics: &dyn Fn() -> String,
) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (method, path) {
        (&hyper::Method::GET, "/api/v1/status") => match serde_json::to_vec(&doc()) {
            Ok(b) => (StatusCode::OK, "application/json", b),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                e.to_string().into_bytes(),
            ),
        },
        (&hyper::Method::GET, "/metrics") => (StatusCode::OK, EXPOSITION, metrics().into_bytes()),
        (&hyper::Method::GET, "/healthz") => (StatusCode::OK, "text/plain", b"ok\n".to_vec()),
        (&hyper::Method::GET, _) => (StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            b"only GET\n".to_vec(),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Why the status API could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{addr}: cannot connect: is `podscale run --local` running? ({message})")]
    Connect { addr: String, message: String },
    #[error("{addr}: no answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("{addr}: HTTP {status}")]
    Http { addr: String, status: u16 },
    #[error("{addr}: unexpected answer: {message}")]
    Decode { addr: String, message: String },
}

/// A client of the status API.
#[derive(Debug, Clone)]
pub struct StatusClient {
    addr: String,
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl StatusClient {
    /// A client of the API at `addr` (`127.0.0.1:9412`).
    pub fn new(addr: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        Self {
            addr: addr.to_owned(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: Duration::from_secs(5),
        }
    }

    /// Reads `GET /api/v1/status` (at most [`MAX_STATUS_BYTES`]).
    ///
    /// # Errors
    /// Not reachable, too slow, an error status, or not a status document.
    pub async fn status(&self) -> Result<StatusDoc, ClientError> {
        let addr = self.addr.clone();
        let uri: hyper::Uri = format!("http://{addr}/api/v1/status").parse().map_err(
            |e: hyper::http::uri::InvalidUri| ClientError::Decode {
                addr: addr.clone(),
                message: format!("invalid address: {e}"),
            },
        )?;
        let fut = async {
            let resp = self
                .client
                .get(uri)
                .await
                .map_err(|e| ClientError::Connect {
                    addr: addr.clone(),
                    message: e.to_string(),
                })?;
            if !resp.status().is_success() {
                return Err(ClientError::Http {
                    addr: addr.clone(),
                    status: resp.status().as_u16(),
                });
            }
            let body = Limited::new(resp.into_body(), MAX_STATUS_BYTES)
                .collect()
                .await
                .map_err(|e| ClientError::Decode {
                    addr: addr.clone(),
                    message: e.to_string(),
                })?
                .to_bytes();
            serde_json::from_slice(&body).map_err(|e| ClientError::Decode {
                addr: addr.clone(),
                message: e.to_string(),
            })
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| ClientError::Timeout {
                addr: addr.clone(),
                timeout: self.timeout,
            })?
    }
}
