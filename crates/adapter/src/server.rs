//! The HTTPS server: routing of the metrics APIs and discovery, delegated auth on
//! every path but the health checks, bounds (connections, requests in flight, TLS
//! handshake and header timeouts, a deadline per request), and the adapter's own
//! `/metrics`, `/healthz`, `/livez`, `/readyz`.
//!
//! Paths, as custom-metrics-apiserver installs them (`installer/cmhandlers.go`,
//! `emhandlers.go`):
//! - `/apis/custom.metrics.k8s.io/{version}/namespaces/{ns}/{resource}/{name}/{metric}`
//!   (`name` may be `*`, with `labelSelector`),
//! - `/apis/custom.metrics.k8s.io/{version}/namespaces/{ns}/metrics/{metric}` (the
//!   namespace itself),
//! - `/apis/custom.metrics.k8s.io/{version}/{resource}/{name}/{metric}` (cluster-scoped),
//! - `/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}`,
//! - and the discovery documents above them.
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::api::{self, ApiError, reasons};
use crate::auth::{Attributes, Credentials, Delegated};
use crate::catalogue;
use crate::read::{PodsQuery, Reader};

/// Bounds of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Open connections; more wait to be accepted.
    pub max_connections: usize,
    /// Requests being answered at once; more are answered 429 at once
    /// (the API server's `--max-requests-inflight`).
    pub max_in_flight: usize,
    /// A TLS handshake, and a request's headers, must arrive within this.
    pub handshake_timeout: Duration,
    /// One request, sources included; past it, 504 `Timeout`.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_in_flight: 400,
            handshake_timeout: Duration::from_secs(10),
            request_timeout: crate::read::DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

type Labels = Vec<(String, String)>;

/// The adapter's own metrics.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    requests: Family<Labels, Counter>,
    in_flight: Gauge,
    auth_failures: Family<Labels, Counter>,
}

impl Stats {
    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("podscale_adapter");
        r.register(
            "requests",
            "Requests answered, by API group and HTTP status code",
            self.requests.clone(),
        );
        r.register(
            "requests_in_flight",
            "Requests being answered",
            self.in_flight.clone(),
        );
        r.register(
            "auth_failures",
            "Requests refused, by reason (Unauthorized, Forbidden, InternalError)",
            self.auth_failures.clone(),
        );
        r
    }

    fn count(&self, group: &str, code: u16) {
        self.requests
            .get_or_create(&vec![
                ("group".into(), group.into()),
                ("code".into(), code.to_string()),
            ])
            .inc();
    }
}

/// What every request handler shares.
#[derive(Debug)]
pub struct State {
    pub reader: Reader,
    /// `None` only in tests that exercise the APIs alone (`--authentication-skip`
    /// does not exist: the CLI always delegates).
    pub auth: Option<Delegated>,
    pub limits: Limits,
    pub stats: Stats,
    in_flight: Arc<Semaphore>,
}

impl State {
    pub fn new(reader: Reader, auth: Option<Delegated>, limits: Limits) -> Self {
        Self {
            reader,
            auth,
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            limits,
            stats: Stats::default(),
        }
    }
}

type Response = http::Response<Full<Bytes>>;

fn json_response(code: u16, body: &serde_json::Value) -> Response {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a status and a header that are valid")
}

fn text_response(code: u16, content_type: &str, body: String) -> Response {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("a status and a header that are valid")
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.status())
}

/// Serves HTTPS on `listener` until `shutdown` completes.
///
/// # Errors
/// Accepting connections fails for good (the listener is broken).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let connections = Arc::new(Semaphore::new(state.limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return Ok(()),
            p = Arc::clone(&connections).acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, _) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            r = listener.accept() => match r {
                Ok(c) => c,
                // A connection that failed before it was accepted (reset, out of
                // descriptors for a moment): keep serving the others.
                Err(e) => {
                    tracing::warn!(error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _permit = permit;
            let timeout = state.limits.handshake_timeout;
            let Ok(Ok(tls)) = tokio::time::timeout(timeout, acceptor.accept(stream)).await else {
                return;
            };
            let peer: Option<Arc<Vec<CertificateDer<'static>>>> = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| Arc::new(c.iter().map(|c| c.clone().into_owned()).collect()));
            let service = hyper::service::service_fn(move |req| {
                let state = Arc::clone(&state);
                let peer = peer.clone();
                async move {
                    Ok::<_, Infallible>(
                        handle(&state, peer.as_deref().map(Vec::as_slice), req).await,
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// Answers one request (also the entry point of tests that skip TLS).
pub async fn handle<B>(
    state: &State,
    peer: Option<&[CertificateDer<'static>]>,
    req: http::Request<B>,
) -> Response {
    let path = req.uri().path().to_owned();
    let group = group_label(&path);
    let response = handle_inner(state, peer, &req).await;
    state.stats.count(group, response.status().as_u16());
    if response.status().is_server_error() {
        tracing::warn!(path = %path, status = response.status().as_u16(), "Request failed.");
    }
    response
}

fn group_label(path: &str) -> &'static str {
    if path.starts_with("/apis/custom.metrics.k8s.io") {
        api::CUSTOM_GROUP
    } else if path.starts_with("/apis/external.metrics.k8s.io") {
        api::EXTERNAL_GROUP
    } else if path.starts_with("/apis") {
        "discovery"
    } else {
        "other"
    }
}

async fn handle_inner<B>(
    state: &State,
    peer: Option<&[CertificateDer<'static>]>,
    req: &http::Request<B>,
) -> Response {
    let path = req.uri().path();
    // Health checks are open, as upstream's `AlwaysAllowPaths`.
    if matches!(path, "/healthz" | "/livez" | "/readyz") {
        return text_response(200, "text/plain; charset=utf-8", "ok".into());
    }
    if req.method() != http::Method::GET {
        return error_response(&ApiError::new(
            405,
            reasons::METHOD_NOT_ALLOWED,
            format!(
                "the server does not allow this method on the requested resource: {}",
                req.method()
            ),
        ));
    }
    let Ok(_permit) = Arc::clone(&state.in_flight).try_acquire_owned() else {
        return error_response(&ApiError::new(
            429,
            reasons::TOO_MANY_REQUESTS,
            "Too many requests, please try again later.",
        ));
    };
    state.stats.in_flight.inc();
    let result = tokio::time::timeout(state.limits.request_timeout, async {
        if let Some(auth) = &state.auth {
            let creds = Credentials {
                peer_certificates: peer,
                headers: Some(req.headers()),
            };
            let user = auth.authenticate(&creds).await?;
            auth.authorize(&user, &Attributes::for_get(path)).await?;
        }
        route(state, path, req.uri().query().unwrap_or("")).await
    })
    .await;
    state.stats.in_flight.dec();
    match result {
        Err(_) => error_response(&ApiError::new(
            504,
            reasons::TIMEOUT,
            format!(
                "the server was unable to return a response in the time allotted ({})",
                podscale_metrics::config::format_duration(state.limits.request_timeout)
            ),
        )),
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            if matches!(e.code, 401 | 403) {
                state
                    .stats
                    .auth_failures
                    .get_or_create(&vec![("reason".into(), e.reason.into())])
                    .inc();
            }
            error_response(&e)
        }
    }
}

/// Go's `url.ParseQuery` value of `key` (`+` is a space).
fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (podscale_metrics::http::percent_decode(&k.replace('+', " ")) == key)
            .then(|| podscale_metrics::http::percent_decode(&v.replace('+', " ")))
    })
}

fn not_found() -> ApiError {
    ApiError::new(
        404,
        reasons::NOT_FOUND,
        "the server could not find the requested resource",
    )
}

async fn route(state: &State, path: &str, query: &str) -> Result<Response, ApiError> {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(podscale_metrics::http::percent_decode)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let catalogue = state.reader.catalogue();
    match s.as_slice() {
        ["metrics"] => {
            let mut out = String::new();
            encode(&mut out, &state.stats.registry())
                .map_err(|e| ApiError::internal(format!("encoding metrics: {e}")))?;
            Ok(text_response(
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                out,
            ))
        }
        ["apis"] => Ok(json_response(200, &api::api_group_list())),
        ["apis", api::CUSTOM_GROUP] => Ok(json_response(
            200,
            &api::api_group(api::CUSTOM_GROUP, &api::CUSTOM_VERSIONS),
        )),
        ["apis", api::EXTERNAL_GROUP] => Ok(json_response(
            200,
            &api::api_group(api::EXTERNAL_GROUP, &[api::EXTERNAL_VERSION]),
        )),
        ["apis", api::CUSTOM_GROUP, version, rest @ ..]
            if api::CUSTOM_VERSIONS.contains(version) =>
        {
            custom(state, version, rest, query).await
        }
        ["apis", api::EXTERNAL_GROUP, api::EXTERNAL_VERSION] => {
            Ok(json_response(200, &catalogue.external_resources()))
        }
        [
            "apis",
            api::EXTERNAL_GROUP,
            api::EXTERNAL_VERSION,
            "namespaces",
            ns,
            metric,
        ] => {
            let selector = selector_param(query, "labelSelector")?;
            let values = state.reader.external(ns, metric, selector).await?;
            Ok(json_response(200, &api::external_value_list(&values)))
        }
        _ => Err(not_found()),
    }
}

fn selector_param(
    query: &str,
    key: &str,
) -> Result<Option<podscale_core::api::LabelSelector>, ApiError> {
    match query_param(query, key) {
        Some(s) if !s.is_empty() => api::parse_label_selector(&s)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}"))),
        _ => Ok(None),
    }
}

async fn custom(
    state: &State,
    version: &str,
    rest: &[&str],
    query: &str,
) -> Result<Response, ApiError> {
    let reader = &state.reader;
    let list =
        |values: &[api::Value]| Ok(json_response(200, &api::metric_value_list(version, values)));
    match rest {
        [] => Ok(json_response(
            200,
            &reader.catalogue().custom_resources(version),
        )),
        ["namespaces", ns, "metrics", metric] => {
            let ms = selector_param(query, "metricLabelSelector")?;
            let res = catalogue::object_resource("namespaces").expect("in the table");
            // The namespace is the object, and also fills in `{{namespace}}`.
            list(&reader.object(ns, res, ns, metric, ms).await?)
        }
        ["namespaces", ns, "pods", name, metric] => {
            let ms = selector_param(query, "metricLabelSelector")?;
            let q = if *name == "*" {
                let sel = query_param(query, "labelSelector").unwrap_or_default();
                podscale_core::labels::parse(&sel).map_err(|e| {
                    ApiError::bad_request(format!("invalid labelSelector: {}", e.0))
                })?;
                PodsQuery::Selector(sel)
            } else {
                PodsQuery::Named((*name).to_owned())
            };
            list(&reader.pods(ns, &q, metric, ms).await?)
        }
        ["namespaces", ns, resource, name, metric] => {
            object_route(state, version, ns, resource, name, metric, query, true).await
        }
        [resource, name, metric] => {
            object_route(state, version, "", resource, name, metric, query, false).await
        }
        _ => Err(not_found()),
    }
}

#[allow(clippy::too_many_arguments)] // one route's parts
async fn object_route(
    state: &State,
    version: &str,
    namespace: &str,
    resource: &str,
    name: &str,
    metric: &str,
    query: &str,
    namespaced: bool,
) -> Result<Response, ApiError> {
    let Some(res) = catalogue::object_resource(resource).filter(|r| r.namespaced == namespaced)
    else {
        return Err(ApiError::metric_not_found(resource, metric));
    };
    if name == "*" {
        // prometheus-adapter lists the objects; podscale's Object metrics describe one
        // named object, as an HPA's `describedObject` does.
        return Err(ApiError::bad_request(format!(
            "{}: podscale's Object metrics describe one named object; name it instead of *",
            res.group_resource()
        )));
    }
    let ms = selector_param(query, "metricLabelSelector")?;
    let values = state
        .reader
        .object(namespace, res, name, metric, ms)
        .await?;
    Ok(json_response(
        200,
        &api::metric_value_list(version, &values),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_as_go_does() {
        let q = "labelSelector=app%3Dweb%2Ctier+in+(a%2Cb)&metricLabelSelector=";
        assert_eq!(
            query_param(q, "labelSelector").as_deref(),
            Some("app=web,tier in (a,b)")
        );
        assert_eq!(query_param(q, "metricLabelSelector").as_deref(), Some(""));
        assert_eq!(query_param(q, "other"), None);
    }
}
