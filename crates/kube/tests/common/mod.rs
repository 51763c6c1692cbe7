//! A small in-process API server answering real Kubernetes shapes: discovery of
//! `apps/v1`, the `/scale` subresource of Deployments (with `resourceVersion`
//! conflicts), pod lists, Autoscaler status patches, HPAs and events. Each test gets
//! its own; `kube::Client::new` talks to it through a tower service, no socket.
#![allow(dead_code)]
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

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
    /// Events created.
    pub events: Vec<Value>,
    /// Replica counts of successful scale updates.
    pub scale_updates: Vec<i32>,
    /// Answer this many scale updates with 409, each time as if someone else wrote.
    pub conflicts: u32,
    pub conflicts_answered: u32,
    /// Every request, `METHOD path?query`.
    pub log: Vec<String>,
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

    fn answer(&self, method: &http::Method, uri: &http::Uri, body: &[u8]) -> Response<Full<Bytes>> {
        let path = uri.path();
        let mut s = self.lock();
        s.log.push(format!(
            "{method} {}",
            uri.path_and_query().map_or(path, |p| p.as_str())
        ));
        let seg: Vec<&str> = path.trim_matches('/').split('/').collect();
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match (method.as_str(), seg.as_slice()) {
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
                let out = obj.clone();
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

/// A Running pod, Ready since `ready_since`.
pub fn pod(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
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
        s.autoscalers.insert("web".into(), autoscaler("web"));
    }
    api
}
