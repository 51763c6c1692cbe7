//! The Kubernetes metrics APIs against a fake API server on loopback that answers
//! recorded responses (`tests/data/kubernetes/`: Metrics Server's PodMetricsList, a
//! Prometheus Adapter's MetricValueList and ExternalMetricValueList, a scale
//! subresource, a pod list, a NotFound status), reached through a kubeconfig file as
//! a user would.
mod support;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use podscale_core::api::{CrossVersionObjectReference, HorizontalPodAutoscaler};
use podscale_core::observed::{Fetched, PodMetricValue};
use podscale_metrics::SourceError;
use podscale_metrics::collect::{self, Request, Sources};
use podscale_metrics::config::Config;
use podscale_metrics::kubernetes::{KubeMetrics, Limits};
use serde_json::Value;
use support::{Server, TempDir};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/data/kubernetes/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Which versions of the metrics APIs the fake API server serves (in discovery and
/// for data), changeable while it runs, as when an adapter is upgraded.
#[derive(Clone)]
struct Served {
    /// `custom.metrics.k8s.io` versions, in the server's order.
    custom: Vec<&'static str>,
    /// The APIGroup's `preferredVersion` (default: the first served).
    custom_preferred: Option<&'static str>,
    /// `external.metrics.k8s.io` and `metrics.k8s.io` (`v1beta1`) are registered.
    others: bool,
}

impl Served {
    fn custom(versions: &[&'static str]) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            custom: versions.to_vec(),
            custom_preferred: None,
            others: true,
        }))
    }
}

/// An `APIGroup` as `GET /apis/<group>` answers it.
fn api_group(group: &str, versions: &[&str], preferred: Option<&str>) -> String {
    let gv = |v: &str| serde_json::json!({"groupVersion": format!("{group}/{v}"), "version": v});
    let mut body = serde_json::json!({
        "kind": "APIGroup", "apiVersion": "v1", "name": group,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
    });
    if let Some(p) = preferred.or(versions.first().copied()) {
        body["preferredVersion"] = gv(p);
    }
    body.to_string()
}

/// The API server's answer to a path it does not serve.
const NO_RESOURCE: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#;

/// Answers by path, as the API server would: discovery of the metrics API groups
/// per `served`, the custom metrics in the served versions' own formats; anything
/// else is a 404 Status.
fn fake_api_serving(served: Arc<Mutex<Served>>) -> Server {
    let routes: Vec<(&'static str, String)> = vec![
        (
            "/apis/apps/v1/namespaces/ai-inference/deployments/inference-server/scale",
            fixture("scale.json"),
        ),
        (
            "/api/v1/namespaces/ai-inference/pods?",
            fixture("pods.json"),
        ),
        (
            "/apis/metrics.k8s.io/v1beta1/namespaces/ai-inference/pods?",
            fixture("podmetrics.json"),
        ),
        (
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/gpu_utilization_avg?",
            fixture("external.json"),
        ),
    ];
    let custom: Vec<(&'static str, &'static str, String)> = vec![
        (
            "v1beta2",
            "/namespaces/ai-inference/pods/*/inference_queue_depth?",
            fixture("custom-pods.json"),
        ),
        (
            "v1beta1",
            "/namespaces/ai-inference/pods/*/inference_queue_depth?",
            fixture("custom-pods-v1beta1.json"),
        ),
        (
            "v1beta2",
            "/namespaces/ai-inference/ingresses.networking.k8s.io/main/requests_per_second",
            fixture("object.json"),
        ),
        (
            "v1beta1",
            "/namespaces/ai-inference/ingresses.networking.k8s.io/main/requests_per_second",
            fixture("object-v1beta1.json"),
        ),
    ];
    let not_found = fixture("not-found.json");
    Server::start(Arc::new(move |head: &str| {
        let path = head.split(' ').nth(1).unwrap_or("");
        let served = served.lock().expect("lock").clone();
        let json = |status: u16, body: String| (status, "application/json".into(), body);
        if let Some(group) = path.strip_prefix("/apis/")
            && !group.contains('/')
        {
            return match group {
                "custom.metrics.k8s.io" if !served.custom.is_empty() => json(
                    200,
                    api_group(group, &served.custom, served.custom_preferred),
                ),
                "external.metrics.k8s.io" | "metrics.k8s.io" if served.others => {
                    json(200, api_group(group, &["v1beta1"], None))
                }
                _ => json(404, NO_RESOURCE.into()),
            };
        }
        if let Some(rest) = path.strip_prefix("/apis/custom.metrics.k8s.io/") {
            let (version, rest) = rest.split_once('/').unwrap_or((rest, ""));
            let rest = format!("/{rest}");
            if !served.custom.contains(&version) {
                return json(404, NO_RESOURCE.into());
            }
            return match custom
                .iter()
                .find(|(v, prefix, _)| *v == version && rest.starts_with(prefix))
            {
                Some((_, _, body)) => json(200, body.clone()),
                None => json(404, not_found.clone()),
            };
        }
        if !served.others
            && (path.starts_with("/apis/external.metrics.k8s.io/")
                || path.starts_with("/apis/metrics.k8s.io/"))
        {
            return json(404, NO_RESOURCE.into());
        }
        match routes.iter().find(|(prefix, _)| path.starts_with(prefix)) {
            Some((_, body)) => json(200, body.clone()),
            None => json(404, not_found.clone()),
        }
    }))
}

/// The fake API server of a cluster whose custom metrics adapter serves `v1beta2`.
fn fake_api() -> Server {
    fake_api_serving(Served::custom(&["v1beta2"]))
}

fn paths(api: &Server) -> Vec<String> {
    api.requests
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|r| r.split(' ').nth(1).map(str::to_owned))
        .collect()
}

fn kubeconfig(dir: &TempDir, port: u16) -> std::path::PathBuf {
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\n\
             users:\n- name: me\n  user: {{}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: me, namespace: ai-inference}}\n\
             current-context: fake\n"
        ),
    )
    .expect("write kubeconfig");
    path
}

/// The seed's custom-metrics HPA plus a CPU and an Ingress metric, and one metric no
/// adapter serves.
fn hpa() -> HorizontalPodAutoscaler {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "inference-server-hpa", "namespace": "ai-inference"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "inference-server"},
            "minReplicas": 3,
            "maxReplicas": 50,
            "metrics": [
                {"type": "Pods", "pods": {"metric": {"name": "inference_queue_depth"},
                    "target": {"type": "AverageValue", "averageValue": "50"}}},
                {"type": "External", "external": {"metric": {"name": "gpu_utilization_avg",
                    "selector": {"matchLabels": {"deployment": "inference-server"}}},
                    "target": {"type": "AverageValue", "averageValue": "70"}}},
                {"type": "Resource", "resource": {"name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Object", "object": {"metric": {"name": "requests_per_second"},
                    "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
                    "target": {"type": "Value", "value": "100"}}}
            ]
        }
    }))
    .expect("an HPA")
}

/// Reads the HPA's four metrics through a kubeconfig from a cluster whose custom
/// metrics adapter serves `served`, checks the reading, and returns the paths
/// requested and the engine's recommendation.
async fn reads_the_metrics_apis(served: &[&'static str]) -> (Vec<String>, Option<i32>) {
    let api = fake_api_serving(Served::custom(served));
    let dir = TempDir::new("kube");
    let config_text = format!(
        "kubernetes:\n  kubeconfig: {}\n  timeout: 2s\nresources:\n  source: metrics-api\n",
        kubeconfig(&dir, api.port).display()
    );
    let config = Config::from_source(&config_text, "podscale.yaml").expect("valid");
    let sources = Sources::connect(&config).await.expect("connects");
    let hpa = hpa();
    let reading = collect::read(
        &config,
        &sources,
        &Request {
            hpa: &hpa,
            pods: None,
            now: "2026-11-29T10:00:05Z".parse().expect("time"),
        },
    )
    .await;
    assert!(!reading.has_errors(), "{reading:#?}");
    assert!(reading.notes.is_empty(), "{:?}", reading.notes);

    // The target's real pods, by the scale's selector.
    let scale = reading.scale.as_ref().expect("scale read");
    assert_eq!(scale.selector.as_deref(), Some("app=inference-server"));
    assert_eq!(reading.pods.len(), 3);
    assert_eq!(reading.pod_objects[2].ready, Some(false));

    let m = &reading.metrics;
    assert_eq!(m[0].source, "custom.metrics.k8s.io");
    assert_eq!(m[0].samples[1].quantity.to_string(), "80500m");
    assert_eq!(m[0].missing, Vec::<String>::new(), "only listed pods count");
    assert_eq!(m[1].source, "external.metrics.k8s.io");
    assert_eq!(m[1].samples[0].quantity.milli_value(), 80_000);
    assert_eq!(m[2].source, "metrics.k8s.io");
    assert_eq!(m[2].missing, vec!["inference-server-7d9f8b6c5-klmno"]);
    assert_eq!(m[3].samples[0].quantity.milli_value(), 42_000);

    // The calls kube-controller-manager makes, with its selectors.
    let paths = paths(&api);
    assert!(paths.contains(
        &"/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/gpu_utilization_avg?labelSelector=deployment%3Dinference-server".to_owned()
    ), "{paths:#?}");

    // The engine runs on exactly these answers, on the real pods and scale.
    let scenario = reading.scenario(&hpa, None);
    assert_eq!(scenario.current_replicas, 3);
    assert_eq!(scenario.selector.as_deref(), Some("app=inference-server"));
    let Some(Fetched::Data(list)) = &scenario.metrics.resource else {
        panic!("resource answer: {:?}", scenario.metrics.resource);
    };
    assert_eq!(list.pods.len(), 2);
    let eval = scenario.evaluate().expect("evaluates");
    let outputs = eval.output.metrics.as_ref().expect("metrics");
    assert!(outputs.iter().all(|o| o.error.is_none()), "{outputs:#?}");
    assert!(
        eval.output.desired_replicas.is_some_and(|d| d > 3),
        "{:#?}",
        eval.output
    );
    (paths, eval.output.desired_replicas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_metrics_apis_through_a_kubeconfig() {
    let (paths, desired) = reads_the_metrics_apis(&["v1beta2"]).await;
    assert!(paths.contains(
        &"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ai-inference/pods/*/inference_queue_depth?labelSelector=app%3Dinference-server".to_owned()
    ), "{paths:#?}");
    // Each API group is discovered once per reading (the choice is cached).
    for group in [
        "custom.metrics.k8s.io",
        "external.metrics.k8s.io",
        "metrics.k8s.io",
    ] {
        let n = paths
            .iter()
            .filter(|p| *p == &format!("/apis/{group}"))
            .count();
        assert_eq!(n, 1, "{group}: {paths:#?}");
    }
    assert!(desired.is_some());
}

/// An adapter that still serves only `custom.metrics.k8s.io/v1beta1` (issue 7 item
/// 11): podscale asks for `v1beta1`, converts, and recommends exactly what it does
/// from the same values served as `v1beta2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_serving_only_v1beta1_gives_the_same_recommendation() {
    let (paths, desired) = reads_the_metrics_apis(&["v1beta1"]).await;
    assert!(paths.contains(
        &"/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/pods/*/inference_queue_depth?labelSelector=app%3Dinference-server".to_owned()
    ), "{paths:#?}");
    assert!(
        paths.contains(&"/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/ingresses.networking.k8s.io/main/requests_per_second".to_owned()),
        "{paths:#?}"
    );
    assert!(!paths.iter().any(|p| p.contains("/v1beta2/")), "{paths:#?}");
    let (_, from_v1beta2) = reads_the_metrics_apis(&["v1beta2"]).await;
    assert_eq!(desired, from_v1beta2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_reach_the_engine_with_the_servers_message() {
    let api = fake_api();
    let dir = TempDir::new("kube");
    let config_text = format!(
        "kubernetes: {{kubeconfig: '{}', pods: false}}\n",
        kubeconfig(&dir, api.port).display()
    );
    let config = Config::from_source(&config_text, "podscale.yaml").expect("valid");
    let sources = Sources::connect(&config).await.expect("connects");
    let mut hpa = hpa();
    let spec: podscale_core::api::MetricSpec = serde_json::from_value(serde_json::json!(
        {"type": "Pods", "pods": {"metric": {"name": "queue_seconds"},
            "target": {"type": "AverageValue", "averageValue": "1"}}}
    ))
    .expect("spec");
    hpa.spec.metrics = Some(vec![spec]);
    let reading = collect::read(
        &config,
        &sources,
        &Request {
            hpa: &hpa,
            pods: None,
            now: Timestamp::now(),
        },
    )
    .await;
    let err = reading.metrics[0].error.as_deref().expect("an error");
    assert!(
        err.ends_with("HTTP 404: the server could not find the metric queue_seconds for pods"),
        "{err}"
    );
    let Some(Fetched::Error { error }) = &reading.observed.pods else {
        panic!("{:?}", reading.observed.pods);
    };
    assert_eq!(error, err);
    let eval = reading
        .scenario(&hpa, Some(4))
        .evaluate()
        .expect("evaluates");
    assert_eq!(eval.output.desired_replicas, Some(4));
}

#[tokio::test]
async fn an_unreachable_api_server_is_a_clear_error() {
    let dir = TempDir::new("kube");
    let config_text = format!(
        "kubernetes: {{kubeconfig: '{}', timeout: 1s}}\n",
        kubeconfig(&dir, support::closed_port()).display()
    );
    let config = Config::from_source(&config_text, "podscale.yaml").expect("valid");
    let sources = Sources::connect(&config).await.expect("connects lazily");
    let hpa = hpa();
    let reading = collect::read(
        &config,
        &sources,
        &Request {
            hpa: &hpa,
            pods: None,
            now: Timestamp::now(),
        },
    )
    .await;
    assert!(
        reading.notes[0].starts_with("cannot list the target's pods: GET /apis/apps/v1/"),
        "{:?}",
        reading.notes
    );
    let err = reading.metrics[0].error.as_deref().expect("an error");
    assert!(
        err.contains("cannot connect: client error (Connect): "),
        "{err}"
    );
    assert!(!err.contains("ServiceError"), "{err}");
}

async fn client(port: u16, dir: &TempDir) -> KubeMetrics {
    KubeMetrics::connect(Some(&kubeconfig(dir, port)), None, Duration::from_secs(20))
        .await
        .expect("a client")
}

async fn queue_depth(kube: &KubeMetrics) -> Result<Vec<PodMetricValue>, SourceError> {
    kube.pods_metric(
        "ai-inference",
        "inference_queue_depth",
        Some("app=inference-server"),
        None,
    )
    .await
}

fn ingress() -> CrossVersionObjectReference {
    CrossVersionObjectReference {
        api_version: Some("networking.k8s.io/v1".into()),
        kind: "Ingress".into(),
        name: "main".into(),
    }
}

fn count(paths: &[String], path: &str) -> usize {
    paths.iter().filter(|p| *p == path).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1beta1_values_are_converted_to_v1beta2() {
    let api = fake_api_serving(Served::custom(&["v1beta1"]));
    let dir = TempDir::new("kube");
    let kube = client(api.port, &dir).await;
    let values = queue_depth(&kube).await.expect("read");
    assert_eq!(values.len(), 2);
    assert_eq!(values[1].pod_name, "inference-server-7d9f8b6c5-fghij");
    assert_eq!(values[1].value.to_string(), "80500m");
    assert_eq!(
        values[1].window_seconds,
        Some(30),
        "v1beta1's `window` is v1beta2's `windowSeconds`"
    );
    let (value, timestamp) = kube
        .object_metric("ai-inference", &ingress(), "requests_per_second", None)
        .await
        .expect("object metric");
    assert_eq!(value.milli_value(), 42_000);
    assert_eq!(
        timestamp,
        Some("2026-11-29T10:00:01Z".parse().expect("time"))
    );
    // One discovery for both calls.
    assert_eq!(count(&paths(&api), "/apis/custom.metrics.k8s.io"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_versions_served_prefers_the_servers_preferred_version() {
    // The usual order (an adapter registering both): v1beta2 preferred.
    let served = Served::custom(&["v1beta2", "v1beta1"]);
    let api = fake_api_serving(Arc::clone(&served));
    let dir = TempDir::new("kube");
    let kube = client(api.port, &dir).await;
    assert_eq!(queue_depth(&kube).await.expect("read").len(), 2);
    let p = paths(&api);
    assert!(p.iter().any(|p| p.contains("/v1beta2/")), "{p:#?}");
    assert!(!p.iter().any(|p| p.contains("/v1beta1/")), "{p:#?}");

    // Upstream's `chooseVersion` takes the APIGroup's preferredVersion (the
    // APIServices' versionPriority) when it knows it, even if it is the older one.
    let api = fake_api_serving(Arc::new(Mutex::new(Served {
        custom: vec!["v1beta2", "v1beta1"],
        custom_preferred: Some("v1beta1"),
        others: true,
    })));
    let kube = client(api.port, &dir).await;
    assert_eq!(queue_depth(&kube).await.expect("read").len(), 2);
    let p = paths(&api);
    assert!(p.iter().any(|p| p.contains("/v1beta1/")), "{p:#?}");
    assert!(!p.iter().any(|p| p.contains("/v1beta2/")), "{p:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_adapter_registered_is_a_clear_error() {
    let api = fake_api_serving(Arc::new(Mutex::new(Served {
        custom: vec![],
        custom_preferred: None,
        others: false,
    })));
    let dir = TempDir::new("kube");
    let kube = client(api.port, &dir).await;
    let err = queue_depth(&kube)
        .await
        .expect_err("no custom metrics API")
        .to_string();
    assert_eq!(
        err,
        "GET /apis/custom.metrics.k8s.io: HTTP 404: no custom metrics API (custom.metrics.k8s.io) \
         is registered with the API server: no APIService serves it, so no metrics adapter is \
         installed for it (e.g. Prometheus Adapter, KEDA)"
    );
    let err = kube
        .external_metric("ai-inference", "gpu_utilization_avg", None)
        .await
        .expect_err("no external metrics API")
        .to_string();
    assert!(
        err.contains("no external metrics API (external.metrics.k8s.io) is registered"),
        "{err}"
    );
    let err = kube
        .pod_metrics("ai-inference", None)
        .await
        .expect_err("no Metrics Server")
        .to_string();
    assert!(
        err.contains("no resource metrics API (metrics.k8s.io) is registered")
            && err.contains("(Metrics Server)"),
        "{err}"
    );
    // No metric call was attempted at a guessed version.
    assert!(
        paths(&api).iter().all(|p| p.matches('/').count() == 2),
        "{:#?}",
        paths(&api)
    );

    // A group registered only at versions podscale does not read.
    let api = fake_api_serving(Served::custom(&["v1alpha1"]));
    let kube = client(api.port, &dir).await;
    let err = queue_depth(&kube)
        .await
        .expect_err("unknown version")
        .to_string();
    assert_eq!(
        err,
        "GET /apis/custom.metrics.k8s.io: unexpected answer: the custom metrics API \
         (custom.metrics.k8s.io) serves v1alpha1, none of the versions podscale reads \
         (v1beta2, v1beta1)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_cached_and_refreshed_after_a_404() {
    let served = Served::custom(&["v1beta1"]);
    let api = fake_api_serving(Arc::clone(&served));
    let dir = TempDir::new("kube");
    let kube = client(api.port, &dir).await;
    let before = queue_depth(&kube).await.expect("v1beta1");
    queue_depth(&kube).await.expect("v1beta1 again");
    assert_eq!(
        count(&paths(&api), "/apis/custom.metrics.k8s.io"),
        1,
        "cached"
    );

    // The adapter is upgraded: v1beta2 only. The cached v1beta1 answers 404, which
    // triggers rediscovery and one retry at the new version.
    served.lock().expect("lock").custom = vec!["v1beta2"];
    let after = queue_depth(&kube).await.expect("v1beta2 after rediscovery");
    assert_eq!(
        after
            .iter()
            .map(|v| v.value.to_string())
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|v| v.value.to_string())
            .collect::<Vec<_>>()
    );
    let p = paths(&api);
    assert_eq!(count(&p, "/apis/custom.metrics.k8s.io"), 2, "{p:#?}");
    let data: Vec<&String> = p.iter().filter(|p| p.contains("/pods/*/")).collect();
    assert_eq!(data.len(), 4, "{data:#?}");
    assert!(
        data[2].contains("/v1beta1/") && data[3].contains("/v1beta2/"),
        "{data:#?}"
    );

    // A 404 for an unknown metric at the right version stays that 404 (after one
    // rediscovery, which confirms the version).
    let err = kube
        .pods_metric("ai-inference", "queue_seconds", None, None)
        .await
        .expect_err("unknown metric")
        .to_string();
    assert!(
        err.ends_with("HTTP 404: the server could not find the metric queue_seconds for pods"),
        "{err}"
    );
    assert_eq!(count(&paths(&api), "/apis/custom.metrics.k8s.io"), 3);

    // With no cache lifetime every call rediscovers (upstream's periodic invalidation).
    let kube = kube.with_discovery_refresh(Duration::ZERO);
    queue_depth(&kube).await.expect("read");
    queue_depth(&kube).await.expect("read");
    assert_eq!(count(&paths(&api), "/apis/custom.metrics.k8s.io"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_items_are_an_empty_list() {
    // Go encodes a nil slice as `null`.
    let api = Server::start(Arc::new(|head: &str| {
        let path = head.split(' ').nth(1).unwrap_or("");
        let body = if path == "/apis/custom.metrics.k8s.io" {
            api_group("custom.metrics.k8s.io", &["v1beta2"], None)
        } else {
            r#"{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta2","metadata":{},"items":null}"#.into()
        };
        (200, "application/json".into(), body)
    }));
    let dir = TempDir::new("kube");
    let kube = client(api.port, &dir).await;
    assert!(queue_depth(&kube).await.expect("an empty list").is_empty());
}

/// A loopback API server that answers discovery for every metrics API
/// (`v1beta2` for the custom one) and hands every other request to `respond`, which
/// writes the answer itself; one thread per connection. `written` counts the body
/// bytes `respond` got out; `done` receives one message per finished response.
struct RawServer {
    port: u16,
    written: Arc<AtomicU64>,
    done: std::sync::mpsc::Receiver<()>,
}

type Respond = dyn Fn(&str, &mut TcpStream, &AtomicU64) + Send + Sync;

impl RawServer {
    fn start(respond: Arc<Respond>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let written = Arc::new(AtomicU64::new(0));
        let (tx, done) = std::sync::mpsc::channel();
        let w = Arc::clone(&written);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let (respond, w, tx) = (Arc::clone(&respond), Arc::clone(&w), tx.clone());
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|x| x == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    if let Some(group) = path.strip_prefix("/apis/")
                        && !group.contains('/')
                    {
                        let body = api_group(
                            group,
                            &[if group.starts_with("custom") {
                                "v1beta2"
                            } else {
                                "v1beta1"
                            }],
                            None,
                        );
                        let _ = write!(
                            conn,
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        return;
                    }
                    respond(&path, &mut conn, &w);
                    let _ = tx.send(());
                });
            }
        });
        Self {
            port,
            written,
            done,
        }
    }

    /// Waits (bounded) until `respond` has returned once: the client stopped reading
    /// or the server sent everything.
    fn finished(&self) -> u64 {
        self.done
            .recv_timeout(Duration::from_secs(120))
            .expect("the response ends");
        self.written.load(Ordering::Relaxed)
    }
}

/// Writes a chunked body: `start`, then `unit` repeated until the client goes
/// away or `total` bytes went out.
fn chunked(
    conn: &mut TcpStream,
    written: &AtomicU64,
    status: u16,
    start: &str,
    unit: &str,
    total: u64,
) {
    if write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return;
    }
    let block = unit.repeat((64 << 10) / unit.len().max(1));
    let mut send = |data: &str| -> bool {
        let ok = write!(conn, "{:x}\r\n{data}\r\n", data.len()).is_ok();
        if ok {
            written.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        ok
    };
    if !start.is_empty() && !send(start) {
        return;
    }
    while written.load(Ordering::Relaxed) < total {
        if !send(&block) {
            return;
        }
    }
    let _ = write!(conn, "0\r\n\r\n");
}

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

fn small_limits() -> Limits {
    Limits {
        max_body_bytes: MIB as usize,
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_not_buffered() {
    // 1 GiB of `{"value":"1"},…` without a length: the client must stop at its cap.
    let server = RawServer::start(Arc::new(
        |_path: &str, conn: &mut TcpStream, w: &AtomicU64| {
            chunked(conn, w, 200, r#"{"items":["#, r#"{"value":"1"},"#, GIB);
        },
    ));
    let dir = TempDir::new("kube");
    let kube = client(server.port, &dir).await.with_limits(small_limits());
    let err = queue_depth(&kube).await.expect_err("too large").to_string();
    assert!(
        err.ends_with(
            "unexpected answer: the answer is larger than 1MiB (kubernetes.maxResponseSize): reading stopped there"
        ),
        "{err}"
    );
    // What the server got out before the connection closed: the cap plus the
    // kernel's socket buffers, not the gigabyte.
    let sent = server.finished();
    assert!(sent < 64 * MIB, "{sent} bytes sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_gigabyte_is_refused_unread_at_the_default_limit() {
    let server = RawServer::start(Arc::new(
        |_path: &str, conn: &mut TcpStream, w: &AtomicU64| {
            if write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {GIB}\r\nConnection: close\r\n\r\n"
        )
        .is_err()
        {
            return;
        }
            let block = " ".repeat(64 << 10);
            while w.load(Ordering::Relaxed) < GIB && conn.write_all(block.as_bytes()).is_ok() {
                w.fetch_add(block.len() as u64, Ordering::Relaxed);
            }
        },
    ));
    let dir = TempDir::new("kube");
    let kube = client(server.port, &dir).await;
    assert_eq!(kube.limits(), Limits::default());
    let err = kube
        .scale(
            "ai-inference",
            &CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: "inference-server".into(),
            },
        )
        .await
        .expect_err("too large")
        .to_string();
    assert_eq!(
        err,
        "GET /apis/apps/v1/namespaces/ai-inference/deployments/inference-server/scale: \
         unexpected answer: the answer is 1073741824 bytes, larger than 16MiB \
         (kubernetes.maxResponseSize): not read"
    );
    let sent = server.finished();
    assert!(sent < 64 * MIB, "{sent} bytes sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_error_bodies_are_truncated_in_messages() {
    let server = RawServer::start(Arc::new(
        |path: &str, conn: &mut TcpStream, w: &AtomicU64| {
            if path.contains("endless") {
                chunked(conn, w, 502, "", "<html>bad gateway</html>", GIB);
            } else {
                // 128 KiB of text from a proxy in front of the adapter (a 503 is not
                // retried: the server's message is the answer).
                chunked(conn, w, 503, "", &"x".repeat(1024), 100 << 10);
            }
        },
    ));
    let dir = TempDir::new("kube");
    let kube = client(server.port, &dir).await.with_limits(small_limits());
    let err = queue_depth(&kube).await.expect_err("503").to_string();
    let (head, tail) = err.split_once("HTTP 503: ").expect(&err);
    assert!(
        head.starts_with("GET /apis/custom.metrics.k8s.io/v1beta2/"),
        "{err}"
    );
    assert_eq!(tail, format!("{}… (131072 bytes)", "x".repeat(512)));

    let err = kube
        .pods_metric("ai-inference", "endless", None, None)
        .await
        .expect_err("502")
        .to_string();
    assert!(
        err.ends_with(&format!(
            "HTTP 502: {}… (more than 1048576 bytes)",
            &"<html>bad gateway</html>".repeat(22)[..512]
        )),
        "{err}"
    );
    server.finished();
    let sent = server.finished();
    assert!(sent < 64 * MIB, "{sent} bytes sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_item_counts_are_refused() {
    let item = r#"{"describedObject":{"name":"p"},"value":"1"}"#;
    let items = [item; 11].join(",");
    let api = Server::start(Arc::new(move |head: &str| {
        let path = head.split(' ').nth(1).unwrap_or("");
        let body = if path == "/apis/custom.metrics.k8s.io" {
            api_group("custom.metrics.k8s.io", &["v1beta2"], None)
        } else {
            format!(r#"{{"kind":"MetricValueList","items":[{items}]}}"#)
        };
        (200, "application/json".into(), body)
    }));
    let dir = TempDir::new("kube");
    let kube = client(api.port, &dir).await.with_limits(Limits {
        max_items: 10,
        ..Limits::default()
    });
    let err = queue_depth(&kube).await.expect_err("too many").to_string();
    assert!(
        err.ends_with("unexpected answer: the list holds more than 10 items (kubernetes.maxItems)"),
        "{err}"
    );
    let kube = kube.with_limits(Limits {
        max_items: 11,
        ..Limits::default()
    });
    assert_eq!(queue_depth(&kube).await.expect("11 items").len(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pod_list_is_read_in_pages_and_bounded() {
    let pods: Vec<Value> =
        serde_json::from_str::<Value>(&fixture("pods.json")).expect("json")["items"]
            .as_array()
            .expect("items")
            .clone();
    let page = |items: &[Value], token: &str| {
        serde_json::json!({"kind": "PodList", "metadata": {"continue": token}, "items": items})
            .to_string()
    };
    let (first, second) = (page(&pods[..2], "page-2"), page(&pods[2..], ""));
    let api = Server::start(Arc::new(move |head: &str| {
        let path = head.split(' ').nth(1).unwrap_or("");
        let body = if path.contains("endless") {
            page(&[], "again")
        } else if path.contains("continue=page-2") {
            second.clone()
        } else {
            first.clone()
        };
        (200, "application/json".into(), body)
    }));
    let dir = TempDir::new("kube");
    let kube = client(api.port, &dir).await.with_limits(Limits {
        page_size: 2,
        max_items: 3,
        ..Limits::default()
    });
    let listed = kube
        .pods("ai-inference", "app=inference-server")
        .await
        .expect("two pages");
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2].0.name, "inference-server-7d9f8b6c5-klmno");
    let p = paths(&api);
    assert_eq!(
        p,
        [
            "/api/v1/namespaces/ai-inference/pods?labelSelector=app%3Dinference-server&limit=2",
            "/api/v1/namespaces/ai-inference/pods?labelSelector=app%3Dinference-server&limit=2&continue=page-2",
        ]
    );

    // More pods than max_items across pages.
    let kube = kube.with_limits(Limits {
        page_size: 2,
        max_items: 2,
        ..Limits::default()
    });
    let err = kube
        .pods("ai-inference", "app=inference-server")
        .await
        .expect_err("too many pods")
        .to_string();
    assert!(
        err.ends_with("the list holds more than 2 items (kubernetes.maxItems)"),
        "{err}"
    );

    // A server that never ends the list.
    let err = kube
        .pods("ai-inference", "endless")
        .await
        .expect_err("endless pages")
        .to_string();
    assert!(
        err.ends_with("unexpected answer: the list did not end after 3 pages of at most 2 pods"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_come_from_podscale_yaml() {
    let dir = TempDir::new("kube");
    let bad = "kubernetes:\n  maxResponseSize: 2GiB\n  maxItems: 0\n";
    let err = Config::from_source(bad, "podscale.yaml")
        .expect_err("out of range")
        .to_string();
    assert_eq!(
        err,
        "podscale.yaml:2:20: kubernetes.maxResponseSize: Invalid value: 2GiB: must be between 1KiB and 1GiB\n\
         podscale.yaml:3:13: kubernetes.maxItems: Invalid value: 0: must be between 1 and 1000000"
    );

    // The pod list (1703 bytes) is over a 1 KiB limit; the limit is named.
    let api = fake_api();
    let config_text = format!(
        "kubernetes:\n  kubeconfig: {}\n  maxResponseSize: 1KiB\n",
        kubeconfig(&dir, api.port).display()
    );
    let config = Config::from_source(&config_text, "podscale.yaml").expect("valid");
    let sources = Sources::connect(&config).await.expect("connects");
    let hpa = hpa();
    let reading = collect::read(
        &config,
        &sources,
        &Request {
            hpa: &hpa,
            pods: None,
            now: Timestamp::now(),
        },
    )
    .await;
    assert!(
        reading.notes.iter().any(|n| n.contains(
            "/pods?labelSelector=app%3Dinference-server&limit=500: unexpected answer: the answer is \
             1703 bytes, larger than 1KiB (kubernetes.maxResponseSize): not read"
        )),
        "{:?}",
        reading.notes
    );
}
