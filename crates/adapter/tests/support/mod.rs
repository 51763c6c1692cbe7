//! Test harness of the adapter: a fake Kubernetes API server (pods, TokenReview,
//! SubjectAccessReview) on a loopback port, the adapter itself over real HTTPS, and a
//! client that trusts its self-signed certificate.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use podscale_adapter::auth::{AuthConfig, Delegated};
use podscale_adapter::read::Reader;
use podscale_adapter::server::{self, Limits, State};
use podscale_adapter::tls::{self, Identity};
use podscale_metrics::config::Config;
use podscale_metrics::kubernetes::KubeMetrics;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The tokens the fake API server knows, and who they are.
pub const READER_TOKEN: &str = "reader-token";
pub const READER: &str = "system:serviceaccount:ai-inference:metrics-reader";
pub const STRANGER_TOKEN: &str = "stranger-token";
pub const STRANGER: &str = "system:serviceaccount:default:stranger";

/// A fake API server: pods of `ai-inference` (three labelled
/// `app=inference-server`, one `app=other`), TokenReview and SubjectAccessReview
/// (only [`READER`] is allowed). Records each request line and body.
pub struct FakeApi {
    pub url: String,
    pub requests: Arc<Mutex<Vec<(String, String)>>>,
    /// Where the metrics APIs are served (an adapter's URL): the fake API server then
    /// forwards them there, as the aggregator does.
    pub metrics_backend: Arc<Mutex<Option<String>>>,
}

fn pod(name: &str, app: &str, ip: &str) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "ai-inference", "labels": {"app": app}},
        "status": {"phase": "Running", "podIP": ip,
                   "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

fn answer(method: &str, path: &str, query: &str, body: &str) -> (u16, Value) {
    match (method, path) {
        ("GET", "/api/v1/namespaces/ai-inference/pods") => {
            let all = vec![
                pod("inference-server-0", "inference-server", "10.0.0.10"),
                pod("inference-server-1", "inference-server", "10.0.0.11"),
                pod("inference-server-2", "inference-server", "10.0.0.12"),
                pod("other-0", "other", "10.0.0.20"),
            ];
            let selector = query
                .split('&')
                .find_map(|p| p.strip_prefix("labelSelector="))
                .map(podscale_metrics::http::percent_decode)
                .unwrap_or_default();
            let items: Vec<Value> = all
                .into_iter()
                .filter(|p| match selector.split_once('=') {
                    Some((k, v)) => p["metadata"]["labels"][k] == v,
                    None => true,
                })
                .collect();
            (
                200,
                json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}),
            )
        }
        ("GET", "/apis/apps/v1/namespaces/ai-inference/deployments/inference-server/scale") => (
            200,
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": "inference-server", "namespace": "ai-inference"},
                   "spec": {"replicas": 3}, "status": {"replicas": 3, "selector": "app=inference-server"}}),
        ),
        ("GET", p) if p.starts_with("/api/v1/namespaces/") && p.contains("/pods") => (
            200,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}),
        ),
        ("POST", "/apis/authentication.k8s.io/v1/tokenreviews") => {
            let review: Value = serde_json::from_str(body).unwrap_or_default();
            let token = review["spec"]["token"].as_str().unwrap_or_default();
            let user = match token {
                READER_TOKEN => Some(READER),
                STRANGER_TOKEN => Some(STRANGER),
                _ => None,
            };
            let status = match user {
                Some(u) => json!({"authenticated": true, "user": {"username": u, "uid": "u-1",
                          "groups": ["system:serviceaccounts", "system:authenticated"]}}),
                None => json!({"authenticated": false, "error": "token not found"}),
            };
            (
                201,
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}),
            )
        }
        ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews") => {
            let review: Value = serde_json::from_str(body).unwrap_or_default();
            let user = review["spec"]["user"].as_str().unwrap_or_default();
            // `system:discovery`: discovery paths for `system:authenticated`.
            let discovery = review["spec"]["nonResourceAttributes"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/apis"))
                && review["spec"]["groups"]
                    .as_array()
                    .is_some_and(|g| g.contains(&json!("system:authenticated")));
            let allowed = user == READER || user == "system:kube-controller-manager" || discovery;
            (
                201,
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                         "status": {"allowed": allowed, "reason": if allowed { "" } else { "no RBAC policy matched" }}}),
            )
        }
        _ => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
        ),
    }
}

/// A metrics API request passed on to the adapter (which trusts the caller here: the
/// adapter of these tests runs without auth).
async fn forward(backend: &str, path: &str, query: &str) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client");
    let url = if query.is_empty() {
        format!("{backend}{path}")
    } else {
        format!("{backend}{path}?{query}")
    };
    match client.get(&url).send().await {
        Ok(r) => {
            let code = r.status().as_u16();
            (code, r.json().await.unwrap_or_default())
        }
        Err(e) => (
            503,
            json!({"kind": "Status", "message": e.to_string(), "code": 503}),
        ),
    }
}

impl FakeApi {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let rec = Arc::clone(&requests);
        let metrics_backend: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let backend = Arc::clone(&metrics_backend);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let rec = Arc::clone(&rec);
                let backend = Arc::clone(&backend);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let rec = Arc::clone(&rec);
                            let backend = backend.lock().expect("lock").clone();
                            async move {
                                let method = req.method().to_string();
                                let path = req.uri().path().to_owned();
                                let query = req.uri().query().unwrap_or("").to_owned();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let body = String::from_utf8_lossy(&body).into_owned();
                                rec.lock()
                                    .expect("lock")
                                    .push((format!("{method} {path}?{query}"), body.clone()));
                                let metrics_api = path.starts_with("/apis/custom.metrics.k8s.io")
                                    || path.starts_with("/apis/external.metrics.k8s.io");
                                let (code, v) = match backend {
                                    Some(url) if metrics_api => forward(&url, &path, &query).await,
                                    _ => answer(&method, &path, &query, &body),
                                };
                                Ok::<_, Infallible>(
                                    http::Response::builder()
                                        .status(code)
                                        .header("content-type", "application/json")
                                        .body(Full::new(Bytes::from(v.to_string())))
                                        .expect("response"),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            requests,
            metrics_backend,
        }
    }

    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().expect("url"));
        kube::Client::try_from(config).expect("client")
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|(line, _)| line.starts_with(prefix))
            .count()
    }
}

/// A running adapter on HTTPS.
pub struct Adapter {
    pub url: String,
    pub pem: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Adapter {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn config(yaml: &str) -> Config {
    Config::from_source(yaml, "podscale.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// Starts the adapter for `config` against `api`; `auth`: delegate authentication
/// and authorization to it with these settings (the ConfigMap's).
pub async fn start_adapter(config: Config, api: &FakeApi, auth: Option<AuthConfig>) -> Adapter {
    start_adapter_with(config, api, auth, Limits::default()).await
}

/// [`start_adapter`] with other bounds.
pub async fn start_adapter_with(
    config: Config,
    api: &FakeApi,
    auth: Option<AuthConfig>,
    limits: Limits,
) -> Adapter {
    podscale_metrics::http::install_crypto_provider();
    let kube = KubeMetrics::new(api.client(), Duration::from_secs(10));
    let reader = Reader::new(Arc::new(config), Some(kube)).expect("reader");
    let client_cas = auth
        .as_ref()
        .map(AuthConfig::all_client_cas)
        .unwrap_or_default();
    let auth =
        auth.map(|a| Delegated::new(api.client(), Duration::from_secs(10), a).expect("auth"));
    let state = Arc::new(State::new(reader, auth, limits));
    let identity =
        Identity::self_signed(&["localhost".into(), "127.0.0.1".into()]).expect("identity");
    let pem = identity.pem.clone();
    let tls = Arc::new(
        tls::server_config(identity, tls::ClientCas::new(&client_cas).expect("CAs")).expect("tls"),
    );
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, tls, state, async move {
        let _ = rx.await;
    }));
    Adapter {
        url,
        pem,
        stop: Some(tx),
    }
}

/// A client that trusts exactly the adapter's certificate.
pub fn client(adapter: &Adapter, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(adapter.pem.as_bytes()).expect("cert")])
        .timeout(Duration::from_secs(60));
    if let Some(id) = identity {
        b = b.identity(id);
    }
    b.build().expect("client")
}

/// GET `path`: the status and the JSON body.
pub async fn get(
    client: &reqwest::Client,
    adapter: &Adapter,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = client.get(format!("{}{path}", adapter.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e:?}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// `{pod: value}` of a MetricValueList.
pub fn by_pod(list: &Value) -> BTreeMap<String, String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|i| {
            (
                i["describedObject"]["name"]
                    .as_str()
                    .expect("name")
                    .to_owned(),
                i["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect()
}
