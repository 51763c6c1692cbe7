//! A small in-process API server answering real Kubernetes shapes: discovery of
//! `apps/v1`, the `/scale` subresource of Deployments (with `resourceVersion`
//! conflicts), pod lists (filtered by an `app=NAME` selector when pods are
//! synthesized), Autoscalers listed and watched (with resource versions, replayed
//! from the requested version as the API server's watch cache does), their status
//! patches, HPAs (listed and watched; a merge patch of one changes it and is sent to
//! the HPA watches as MODIFIED), events, and the external
//! metrics API. Each test gets its own; `kube::Client::new` talks to it through a
//! tower service, no socket; [`FakeApi::serve`] also serves it over TCP (benchmarks).
#![allow(dead_code)]
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// What the fake answers with: a whole body, or a watch stream.
pub type Body = axum::body::Body;

/// Watch events kept for watches that start from an older version (the API server's
/// watch cache); older versions get `410 Gone`, as there.
const WATCH_CACHE: usize = 50_000;

#[derive(Debug, Clone)]
pub struct Deployment {
    pub replicas: i32,
    pub resource_version: u64,
    pub selector: String,
}

#[derive(Debug, Default)]
pub struct State {
    pub deployments: HashMap<String, Deployment>,
    pub pods: Vec<Value>,
    pub autoscalers: HashMap<String, Value>,
    pub hpas: Vec<Value>,
    /// Bodies of status patches, in order.
    pub status_patches: Vec<Value>,
    /// Bodies of HPA patches (`PATCH …/horizontalpodautoscalers/NAME`), in order.
    pub hpa_patches: Vec<Value>,
    /// Events created.
    pub events: Vec<Value>,
    /// Replica counts of successful scale updates.
    pub scale_updates: Vec<i32>,
    /// Answer this many scale updates with 409, each time as if someone else wrote.
    pub conflicts: u32,
    pub conflicts_answered: u32,
    /// Every request, `METHOD path?query` (unless `quiet`).
    pub log: Vec<String>,
    /// Do not log requests (benchmarks make millions).
    pub quiet: bool,
    /// Requests answered, by `METHOD kind` (`GET scale`, `PATCH status`, …).
    pub calls: HashMap<String, u64>,
    /// External metric values by metric name (`external.metrics.k8s.io`).
    pub external: HashMap<String, i64>,
    /// Instead of `pods`, answer a pod list for `app=NAME` with one Running, Ready
    /// pod per replica of Deployment `NAME`.
    pub synthesize_pods: bool,
    /// The last resource version handed out.
    pub resource_version: u64,
    /// Autoscaler watch events (resource version, JSON line), oldest first.
    pub autoscaler_events: VecDeque<(u64, Bytes)>,
    /// Open Autoscaler watches.
    pub watchers: Vec<mpsc::UnboundedSender<Bytes>>,
    /// Open HPA watches: sent the HPAs patched after they opened.
    pub hpa_watchers: Vec<mpsc::UnboundedSender<Bytes>>,
    /// Do not tell the HPA watches about patches (a watch that lags behind).
    pub hpa_watch_lags: bool,
}

impl State {
    /// Stamps `obj` with a new resource version and tells the Autoscaler watches.
    fn publish(&mut self, kind: &str, obj: &mut Value) {
        self.resource_version += 1;
        let rv = self.resource_version;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let mut line = json!({"type": kind, "object": obj}).to_string();
        line.push('\n');
        let line = Bytes::from(line);
        if self.autoscaler_events.len() >= WATCH_CACHE {
            self.autoscaler_events.pop_front();
        }
        self.autoscaler_events.push_back((rv, line.clone()));
        self.watchers.retain(|w| w.send(line.clone()).is_ok());
    }

    /// Creates or replaces Autoscaler `name` (ADDED or MODIFIED on the watches).
    pub fn put_autoscaler(&mut self, mut obj: Value) {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let kind = if self.autoscalers.contains_key(&name) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.publish(kind, &mut obj);
        self.autoscalers.insert(name, obj);
    }

    /// Deletes Autoscaler `name` (DELETED on the watches).
    pub fn delete_autoscaler(&mut self, name: &str) {
        if let Some(mut obj) = self.autoscalers.remove(name) {
            self.publish("DELETED", &mut obj);
        }
    }

    fn count(&mut self, call: &str) {
        *self.calls.entry(call.to_owned()).or_default() += 1;
    }
}

#[derive(Debug, Clone, Default)]
pub struct FakeApi(pub Arc<Mutex<State>>);

fn json_response(code: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = code;
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn status(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}),
    )
}

fn scale_json(ns: &str, name: &str, d: &Deployment) -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": d.resource_version.to_string()},
        "spec": {"replicas": d.replicas},
        "status": {"replicas": d.replicas, "selector": d.selector},
    })
}

/// JSON merge patch (RFC 7386).
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

impl FakeApi {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn client(&self) -> kube::Client {
        let api = self.clone();
        let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
            let api = api.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Ok::<_, Infallible>(api.answer(&parts.method, &parts.uri, &body))
            }
        });
        kube::Client::new(svc, "default")
    }

    /// Serves the fake over HTTP on `listener` (plain HTTP/1.1, no TLS) until the
    /// process ends.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let app = axum::Router::new().fallback(
            move |method: http::Method, uri: http::Uri, body: Bytes| {
                let api = self.clone();
                async move { api.answer(&method, &uri, &body) }
            },
        );
        axum::serve(listener, app).await
    }

    /// The answer to one request.
    pub fn answer(&self, method: &http::Method, uri: &http::Uri, body: &[u8]) -> Response<Body> {
        let mut s = self.lock();
        if !s.quiet {
            s.log.push(format!(
                "{method} {}",
                uri.path_and_query().map_or(uri.path(), |p| p.as_str())
            ));
        }
        let watch = query(uri, "watch").is_some_and(|v| v == "true" || v == "1");
        let path = uri.path();
        let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (method.as_str(), watch, seg.as_slice()) {
            ("GET", true, ["apis", "podscale.dev", "v1alpha1", "autoscalers"])
            | (
                "GET",
                true,
                [
                    "apis",
                    "podscale.dev",
                    "v1alpha1",
                    "namespaces",
                    _,
                    "autoscalers",
                ],
            ) => {
                s.count("WATCH autoscalers");
                let from: u64 = query(uri, "resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if s.autoscaler_events
                    .front()
                    .is_some_and(|(rv, _)| *rv > from + 1)
                    && from != 0
                {
                    return status(410, "Expired", &format!("too old resource version: {from}"))
                        .map(Body::new);
                }
                let (tx, rx) = mpsc::unbounded_channel();
                for (_, line) in s.autoscaler_events.iter().filter(|(rv, _)| *rv > from) {
                    let _ = tx.send(line.clone());
                }
                s.watchers.push(tx);
                return stream(rx);
            }
            ("GET", true, ["apis", "autoscaling", "v2", "horizontalpodautoscalers"])
            | (
                "GET",
                true,
                [
                    "apis",
                    "autoscaling",
                    "v2",
                    "namespaces",
                    _,
                    "horizontalpodautoscalers",
                ],
            ) => {
                s.count("WATCH horizontalpodautoscalers");
                let (tx, rx) = mpsc::unbounded_channel();
                s.hpa_watchers.push(tx);
                return stream(rx);
            }
            _ => {}
        }
        self.answer_whole(&mut s, method, uri, body).map(Body::new)
    }

    fn answer_fake(&self, s: &mut State, seg: &[&str]) -> Response<Full<Bytes>> {
        match seg {
            ["fake", "calls"] => json_response(StatusCode::OK, &json!(s.calls)),
            _ => status(404, "NotFound", "no such fake endpoint"),
        }
    }

    fn answer_whole(
        &self,
        s: &mut State,
        method: &http::Method,
        uri: &http::Uri,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let path = uri.path();
        let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let kind = match seg.as_slice() {
            ["fake", ..] => return self.answer_fake(s, &seg),
            [.., "scale"] => "scale",
            [.., "status"] => "status",
            [.., "pods"] => "pods",
            [.., "events"] | [.., "events", _] => "events",
            ["apis", "external.metrics.k8s.io", ..] => "external metrics",
            [.., "autoscalers"] => "autoscalers",
            [.., "horizontalpodautoscalers"] => "horizontalpodautoscalers",
            _ => "other",
        };
        s.count(&format!("{method} {kind}"));
        match (method.as_str(), seg.as_slice()) {
            ("GET", ["apis", "podscale.dev", "v1alpha1", "autoscalers"])
            | (
                "GET",
                [
                    "apis",
                    "podscale.dev",
                    "v1alpha1",
                    "namespaces",
                    _,
                    "autoscalers",
                ],
            ) => {
                let mut items: Vec<&Value> = s.autoscalers.values().collect();
                items.sort_by_key(|a| {
                    a["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                });
                json_response(
                    StatusCode::OK,
                    &json!({"apiVersion": "podscale.dev/v1alpha1", "kind": "AutoscalerList",
                            "metadata": {"resourceVersion": s.resource_version.to_string()}, "items": items}),
                )
            }
            ("GET", ["apis", "autoscaling", "v2", "horizontalpodautoscalers"])
            | (
                "GET",
                [
                    "apis",
                    "autoscaling",
                    "v2",
                    "namespaces",
                    _,
                    "horizontalpodautoscalers",
                ],
            ) => json_response(
                StatusCode::OK,
                &json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList",
                            "metadata": {"resourceVersion": s.resource_version.to_string()}, "items": s.hpas}),
            ),
            ("GET", ["apis", "external.metrics.k8s.io"]) => json_response(
                StatusCode::OK,
                &json!({"kind": "APIGroup", "apiVersion": "v1", "name": "external.metrics.k8s.io",
                        "versions": [{"groupVersion": "external.metrics.k8s.io/v1beta1", "version": "v1beta1"}],
                        "preferredVersion": {"groupVersion": "external.metrics.k8s.io/v1beta1", "version": "v1beta1"}}),
            ),
            (
                "GET",
                [
                    "apis",
                    "external.metrics.k8s.io",
                    "v1beta1",
                    "namespaces",
                    _ns,
                    metric,
                ],
            ) => match s.external.get(*metric) {
                Some(v) => json_response(
                    StatusCode::OK,
                    &json!({"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1",
                                "metadata": {}, "items": [{"metricName": metric, "metricLabels": {},
                                "timestamp": jiff::Timestamp::now().to_string(), "value": v.to_string()}]}),
                ),
                None => status(404, "NotFound", &format!("no metric {metric:?}")),
            },
            ("GET", ["apis", "apps", "v1"]) => json_response(
                StatusCode::OK,
                &json!({
                    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
                    "resources": [
                        {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
                         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]},
                        {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling",
                         "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]},
                        {"name": "controllerrevisions", "singularName": "controllerrevision", "namespaced": true,
                         "kind": "ControllerRevision", "verbs": ["get", "list"]}
                    ]
                }),
            ),
            (
                "GET",
                [
                    "apis",
                    "apps",
                    "v1",
                    "namespaces",
                    ns,
                    "deployments",
                    name,
                    "scale",
                ],
            ) => match s.deployments.get(*name) {
                Some(d) => json_response(StatusCode::OK, &scale_json(ns, name, d)),
                None => status(
                    404,
                    "NotFound",
                    &format!("deployments.apps \"{name}\" not found"),
                ),
            },
            (
                "PUT",
                [
                    "apis",
                    "apps",
                    "v1",
                    "namespaces",
                    ns,
                    "deployments",
                    name,
                    "scale",
                ],
            ) => {
                let conflict = s.conflicts > 0;
                let Some(d) = s.deployments.get_mut(*name) else {
                    return status(
                        404,
                        "NotFound",
                        &format!("deployments.apps \"{name}\" not found"),
                    );
                };
                let rv = body
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if conflict {
                    // Someone else changed the Deployment first.
                    d.resource_version += 1;
                }
                if conflict || rv != d.resource_version.to_string() {
                    if conflict {
                        s.conflicts -= 1;
                        s.conflicts_answered += 1;
                    }
                    return status(
                        409,
                        "Conflict",
                        &format!(
                            "Operation cannot be fulfilled on deployments.apps \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                        ),
                    );
                }
                let replicas = body
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0) as i32;
                d.replicas = replicas;
                d.resource_version += 1;
                let out = scale_json(ns, name, d);
                s.scale_updates.push(replicas);
                json_response(StatusCode::OK, &out)
            }
            ("GET", ["api", "v1", "namespaces", _ns, "pods"]) if s.synthesize_pods => {
                let app = query(uri, "labelSelector")
                    .and_then(|l| l.strip_prefix("app=").map(str::to_owned))
                    .unwrap_or_default();
                let n = s.deployments.get(&app).map_or(0, |d| d.replicas);
                let items: Vec<Value> = (0..n)
                    .map(|i| pod_of(&app, &format!("{app}-{i}"), true))
                    .collect();
                json_response(
                    StatusCode::OK,
                    &json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            ("GET", ["api", "v1", "namespaces", _ns, "pods"]) => json_response(
                StatusCode::OK,
                &json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": s.pods}),
            ),
            (
                "PATCH",
                [
                    "apis",
                    "podscale.dev",
                    "v1alpha1",
                    "namespaces",
                    _ns,
                    "autoscalers",
                    name,
                    "status",
                ],
            ) => {
                s.status_patches.push(body.clone());
                let Some(obj) = s.autoscalers.get_mut(*name) else {
                    return status(
                        404,
                        "NotFound",
                        &format!("autoscalers.podscale.dev \"{name}\" not found"),
                    );
                };
                merge(obj, &body);
                let mut out = obj.clone();
                // A status write is a change of the object: watches see it.
                s.publish("MODIFIED", &mut out);
                s.autoscalers.insert((*name).to_owned(), out.clone());
                json_response(StatusCode::OK, &out)
            }
            (
                "PATCH",
                [
                    "apis",
                    "autoscaling",
                    "v2",
                    "namespaces",
                    _ns,
                    "horizontalpodautoscalers",
                    name,
                ],
            ) => {
                s.hpa_patches.push(body.clone());
                let Some(i) = s.hpas.iter().position(|h| h["metadata"]["name"] == *name) else {
                    return status(
                        404,
                        "NotFound",
                        &format!("horizontalpodautoscalers.autoscaling \"{name}\" not found"),
                    );
                };
                let mut out = s.hpas[i].clone();
                merge(&mut out, &body);
                s.resource_version += 1;
                out["metadata"]["resourceVersion"] = json!(s.resource_version.to_string());
                s.hpas[i] = out.clone();
                let mut line = json!({"type": "MODIFIED", "object": out}).to_string();
                line.push('\n');
                let line = Bytes::from(line);
                if !s.hpa_watch_lags {
                    s.hpa_watchers.retain(|w| w.send(line.clone()).is_ok());
                }
                json_response(StatusCode::OK, &out)
            }
            ("POST", ["api", "v1", "namespaces", _ns, "events"]) => {
                s.events.push(body.clone());
                json_response(StatusCode::CREATED, &body)
            }
            ("PATCH", ["api", "v1", "namespaces", _ns, "events", name]) => {
                let Some(e) = s.events.iter_mut().find(|e| e["metadata"]["name"] == *name) else {
                    return status(404, "NotFound", &format!("events \"{name}\" not found"));
                };
                merge(e, &body);
                let out = e.clone();
                json_response(StatusCode::OK, &out)
            }
            _ => status(
                404,
                "NotFound",
                &format!("the server could not find the requested resource ({method} {path})"),
            ),
        }
    }
}

/// The value of query parameter `name`, percent-decoded.
fn query(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(c) => {
                    out.push(c);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A watch answer: the lines sent on `rx`, as they come.
fn stream(rx: mpsc::UnboundedReceiver<Bytes>) -> Response<Body> {
    let lines = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<_, Infallible>(line), rx))
    });
    let mut r = Response::new(Body::from_stream(lines));
    r.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// A Running pod of `app=web`.
pub fn pod(name: &str, ready: bool) -> Value {
    pod_of("web", name, ready)
}

/// A Running pod of `app=APP`, Ready since 2026-01-01T00:01:00Z.
pub fn pod_of(app: &str, name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "500m"}}}]},
        "status": {
            "phase": "Running", "podIP": "10.0.0.1",
            "startTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "lastTransitionTime": "2026-01-01T00:01:00Z"}]
        }
    })
}

/// An Autoscaler of Deployment `web` scaling on the External metric `queue`
/// (AverageValue 10), scaling up by at most 4 pods per 15 s.
pub fn autoscaler(name: &str) -> Value {
    json!({
        "apiVersion": "podscale.dev/v1alpha1", "kind": "Autoscaler",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10,
            // With a behavior, as the API server defaults one for HPAs: scale events
            // are recorded (upstream's storeScaleEvent needs it).
            "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]}},
            "metrics": [{"type": "External", "external": {"metric": {"name": "queue"},
                         "target": {"type": "AverageValue", "averageValue": "10"}}}]
        }
    })
}

/// A standard `autoscaling/v2` HPA `name` of Deployment `web` scaling on the External
/// metric `queue` (AverageValue 10), without a behavior (the defaults: up by 4 pods or
/// 100% per 15 s).
pub fn hpa(name: &str) -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-hpa-{name}"),
                     "resourceVersion": "1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "External", "external": {"metric": {"name": "queue"},
                         "target": {"type": "AverageValue", "averageValue": "10"}}}]
        }
    })
}

/// A fake with Deployment `web` at `replicas`, its pods Running and Ready, and
/// Autoscaler `web`.
pub fn with_web(replicas: i32) -> FakeApi {
    let api = FakeApi::default();
    {
        let mut s = api.lock();
        s.deployments.insert(
            "web".into(),
            Deployment {
                replicas,
                resource_version: 1,
                selector: "app=web".into(),
            },
        );
        s.pods = (0..replicas)
            .map(|i| pod(&format!("web-{i}"), true))
            .collect();
        s.put_autoscaler(autoscaler("web"));
    }
    api
}
