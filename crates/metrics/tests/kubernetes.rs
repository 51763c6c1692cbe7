//! The Kubernetes metrics APIs against a fake API server on loopback that answers
//! recorded responses (`tests/data/kubernetes/`: Metrics Server's PodMetricsList, a
//! Prometheus Adapter's MetricValueList and ExternalMetricValueList, a scale
//! subresource, a pod list, a NotFound status), reached through a kubeconfig file as
//! a user would.
mod support;

use std::sync::Arc;

use jiff::Timestamp;
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::Fetched;
use podscale_metrics::collect::{self, Request, Sources};
use podscale_metrics::config::Config;
use support::{Server, TempDir};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/data/kubernetes/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Answers by path, as the API server would; anything else is a 404 Status.
fn fake_api() -> Server {
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
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ai-inference/pods/*/inference_queue_depth?",
            fixture("custom-pods.json"),
        ),
        (
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ai-inference/ingresses.networking.k8s.io/main/requests_per_second",
            fixture("object.json"),
        ),
        (
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/gpu_utilization_avg?",
            fixture("external.json"),
        ),
    ];
    let not_found = fixture("not-found.json");
    Server::start(Arc::new(move |head: &str| {
        let path = head.split(' ').nth(1).unwrap_or("");
        match routes.iter().find(|(prefix, _)| path.starts_with(prefix)) {
            Some((_, body)) => (200, "application/json".into(), body.clone()),
            None => (404, "application/json".into(), not_found.clone()),
        }
    }))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_metrics_apis_through_a_kubeconfig() {
    let api = fake_api();
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
    let requests = api.requests.lock().expect("lock").clone();
    let paths: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.split(' ').nth(1))
        .collect();
    assert!(paths.contains(
        &"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ai-inference/pods/*/inference_queue_depth?labelSelector=app%3Dinference-server"
    ), "{paths:#?}");
    assert!(paths.contains(
        &"/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/gpu_utilization_avg?labelSelector=deployment%3Dinference-server"
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
    assert!(err.contains("cannot connect"), "{err}");
}
