//! The adapter over HTTPS against a real Prometheus (started as the metric-source
//! tests start it) and a fake API server: discovery, every endpoint in both custom
//! metrics versions with the values Prometheus holds, the errors (unknown metric,
//! no data, a source that is down), and the adapter's own endpoints.
#[path = "../../metrics/tests/support/mod.rs"]
mod prom;
mod support;

use prom::{Exporter, Prometheus, PrometheusOptions};
use serde_json::json;
use support::{FakeApi, by_pod, client, config, get, start_adapter};

const EXPOSITION: &str = r#"# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{namespace="ai-inference",pod="inference-server-0"} 120
vllm:num_requests_waiting{namespace="ai-inference",pod="inference-server-1"} 80.5
vllm:num_requests_waiting{namespace="ai-inference",pod="inference-server-2"} 100
vllm:num_requests_waiting{namespace="ai-inference",pod="other-0"} 7
vllm:num_requests_waiting{namespace="other",pod="inference-server-0"} 1000
DCGM_FI_DEV_GPU_UTIL{deployment="inference-server",gpu="0"} 90
DCGM_FI_DEV_GPU_UTIL{deployment="inference-server",gpu="1"} 71
DCGM_FI_DEV_GPU_UTIL{deployment="other",gpu="0"} 5
queue_nan{namespace="ai-inference",pod="inference-server-0"} NaN
ingress_requests_per_second{namespace="ai-inference",ingress="main"} 42.25
namespace_load{namespace="ai-inference"} 3
"#;

fn metrics_yaml(url: &str) -> String {
    format!(
        r#"prometheus:
  url: {url}
  timeout: 5s
  retries: 0
metrics:
  - name: inference_queue_depth
    type: pods
    query: sum by (pod) (vllm:num_requests_waiting{{namespace="{{{{namespace}}}}", pod=~"{{{{pods}}}}"}})
  - name: queue_nan
    type: pods
    query: sum by (pod) (queue_nan{{namespace="{{{{namespace}}}}", pod=~"{{{{pods}}}}"}})
  - name: gpu_utilization_avg
    type: external
    preset: dcgm/gpu-utilization
  - name: gpu_per_card
    type: external
    query: DCGM_FI_DEV_GPU_UTIL{{ {{{{selector}}}} }}
  - name: nothing_external
    type: external
    query: absent_series_xyz
  - name: requests_per_second
    type: object
    query: sum(ingress_requests_per_second{{namespace="{{{{namespace}}}}", ingress="{{{{objectName}}}}"}})
  - name: load
    type: object
    query: sum(namespace_load{{namespace="{{{{objectName}}}}"}})
  - name: load_by_namespace
    type: object
    query: sum(namespace_load{{namespace="{{{{namespace}}}}"}})
"#
    )
}

async fn prometheus() -> (Exporter, Prometheus) {
    let exporter = Exporter::start(EXPOSITION);
    let p = Prometheus::start(PrometheusOptions {
        targets: vec![exporter.address()],
        ..Default::default()
    })
    .expect("prometheus");
    let p = tokio::task::spawn_blocking(move || {
        p.wait_for("namespace_load");
        p
    })
    .await
    .expect("wait");
    (exporter, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_with_the_values_prometheus_holds() {
    let (_exporter, prom) = prometheus().await;
    let api = FakeApi::start().await;
    let adapter = start_adapter(config(&metrics_yaml(&prom.url)), &api, None).await;
    let c = client(&adapter, None);

    // Discovery, as prometheus-adapter lists it.
    let (code, groups) = get(&c, &adapter, "/apis", None).await;
    assert_eq!(code, 200);
    assert_eq!(groups["kind"], "APIGroupList");
    let (code, group) = get(&c, &adapter, "/apis/custom.metrics.k8s.io", None).await;
    assert_eq!(code, 200);
    assert_eq!(
        group["preferredVersion"]["groupVersion"],
        "custom.metrics.k8s.io/v1beta2"
    );
    for version in ["v1beta1", "v1beta2"] {
        let (code, list) = get(
            &c,
            &adapter,
            &format!("/apis/custom.metrics.k8s.io/{version}"),
            None,
        )
        .await;
        assert_eq!(code, 200);
        assert_eq!(list["kind"], "APIResourceList");
        let names: Vec<&str> = list["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| r["name"].as_str().expect("name"))
            .collect();
        assert!(names.contains(&"pods/inference_queue_depth"), "{names:?}");
        assert!(names.contains(&"namespaces/load"), "{names:?}");
        assert!(names.contains(&"ingresses.networking.k8s.io/requests_per_second"));
    }
    let (code, ext) = get(&c, &adapter, "/apis/external.metrics.k8s.io/v1beta1", None).await;
    assert_eq!(code, 200);
    assert!(
        ext["resources"]
            .as_array()
            .expect("resources")
            .contains(&json!({"name": "gpu_utilization_avg", "singularName": "", "namespaced": true, "kind": "ExternalMetricValueList", "verbs": ["get"]}))
    );

    // Pods by selector: the listed pods only (not other-0, not the other namespace),
    // milli-quantities as prometheus-adapter writes them.
    let path = "/namespaces/ai-inference/pods/*/inference_queue_depth?labelSelector=app%3Dinference-server";
    let (code, v1) = get(
        &c,
        &adapter,
        &format!("/apis/custom.metrics.k8s.io/v1beta1{path}"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{v1}");
    assert_eq!(v1["kind"], "MetricValueList");
    assert_eq!(v1["apiVersion"], "custom.metrics.k8s.io/v1beta1");
    assert_eq!(
        by_pod(&v1),
        [
            ("inference-server-0", "120"),
            ("inference-server-1", "80500m"),
            ("inference-server-2", "100")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .into()
    );
    let item = &v1["items"][0];
    assert_eq!(item["metricName"], "inference_queue_depth");
    assert_eq!(
        item["describedObject"],
        json!({"kind": "Pod", "namespace": "ai-inference", "name": "inference-server-0", "apiVersion": "/v1"})
    );
    let ts = item["timestamp"].as_str().expect("timestamp");
    assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
    let (code, v2) = get(
        &c,
        &adapter,
        &format!("/apis/custom.metrics.k8s.io/v1beta2{path}"),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v2["apiVersion"], "custom.metrics.k8s.io/v1beta2");
    assert_eq!(
        v2["items"][0]["metric"],
        json!({"name": "inference_queue_depth"})
    );
    assert_eq!(by_pod(&v2), by_pod(&v1));

    // Without a selector: every pod of the namespace.
    let (_, all) = get(
        &c,
        &adapter,
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/pods/*/inference_queue_depth",
        None,
    )
    .await;
    assert_eq!(by_pod(&all).get("other-0").map(String::as_str), Some("7"));

    // One named pod.
    let (code, one) = get(&c, &adapter, "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/pods/inference-server-1/inference_queue_depth", None).await;
    assert_eq!(code, 200);
    assert_eq!(
        by_pod(&one),
        [("inference-server-1".to_owned(), "80500m".to_owned())].into()
    );

    // External, with its selector: avg(90, 71) = 80.5.
    let (code, gpu) = get(&c, &adapter, "/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/gpu_utilization_avg?labelSelector=deployment%3Dinference-server", None).await;
    assert_eq!(code, 200, "{gpu}");
    assert_eq!(gpu["kind"], "ExternalMetricValueList");
    assert_eq!(gpu["apiVersion"], "external.metrics.k8s.io/v1beta1");
    assert_eq!(gpu["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(gpu["items"][0]["metricName"], "gpu_utilization_avg");
    assert_eq!(gpu["items"][0]["value"], "80500m");
    assert_eq!(gpu["items"][0]["metricLabels"], json!({}));
    // One value per series, with its labels.
    let (_, cards) = get(&c, &adapter, "/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/gpu_per_card?labelSelector=deployment%3Dinference-server", None).await;
    let mut values: Vec<(String, String)> = cards["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["metricLabels"]["gpu"].as_str().expect("gpu").to_owned(),
                i["value"].as_str().expect("v").to_owned(),
            )
        })
        .collect();
    values.sort();
    assert_eq!(
        values,
        vec![("0".into(), "90".into()), ("1".into(), "71".into())]
    );

    // Object metrics: an Ingress, and the namespace itself.
    let (code, rps) = get(&c, &adapter, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ai-inference/ingresses.networking.k8s.io/main/requests_per_second", None).await;
    assert_eq!(code, 200, "{rps}");
    assert_eq!(rps["items"][0]["value"], "42250m");
    assert_eq!(
        rps["items"][0]["describedObject"],
        json!({"kind": "Ingress", "namespace": "ai-inference", "name": "main", "apiVersion": "networking.k8s.io/v1"})
    );
    let (code, load) = get(
        &c,
        &adapter,
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/metrics/load",
        None,
    )
    .await;
    assert_eq!(code, 200, "{load}");
    assert_eq!(load["items"][0]["value"], "3");
    assert_eq!(load["items"][0]["describedObject"]["kind"], "Namespace");
    assert_eq!(load["items"][0]["describedObject"]["name"], "ai-inference");
    assert!(
        load["items"][0]["describedObject"]
            .get("namespace")
            .is_none()
    );
    let (code, load) = get(
        &c,
        &adapter,
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/metrics/load_by_namespace",
        None,
    )
    .await;
    assert_eq!(
        (code, &load["items"][0]["value"]),
        (200, &json!("3")),
        "{load}"
    );

    // Errors: an unknown metric is 404 with the API's Status body.
    let (code, status) = get(
        &c,
        &adapter,
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/pods/*/no_such_metric",
        None,
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "the server could not find the metric no_such_metric for pods",
               "reason": "NotFound", "code": 404})
    );
    let (code, status) = get(
        &c,
        &adapter,
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/no_such_metric",
        None,
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    let (code, status) = get(
        &c,
        &adapter,
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/widgets/x/load",
        None,
    )
    .await;
    assert_eq!((code, status["reason"].as_str()), (404, Some("NotFound")));
    let (code, _) = get(
        &c,
        &adapter,
        "/apis/custom.metrics.k8s.io/v9/namespaces/ai-inference/pods/*/x",
        None,
    )
    .await;
    assert_eq!(code, 404);

    // No data is never 0: NaN or empty is an empty list, or NotFound for one object.
    let (code, nan) = get(
        &c,
        &adapter,
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/pods/*/queue_nan",
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(nan["items"], json!([]));
    let (code, status) = get(&c, &adapter, "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/pods/inference-server-0/queue_nan", None).await;
    assert_eq!(code, 404);
    assert_eq!(
        status["message"],
        "the server could not find the metric queue_nan for pods inference-server-0"
    );
    let (code, empty) = get(
        &c,
        &adapter,
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/nothing_external",
        None,
    )
    .await;
    assert_eq!((code, &empty["items"]), (200, &json!([])));
    let (code, status) = get(&c, &adapter, "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/ingresses.networking.k8s.io/absent/requests_per_second", None).await;
    assert_eq!(code, 404, "{status}");

    // A selector that does not parse is a 400.
    let (code, status) = get(&c, &adapter, "/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/gpu_utilization_avg?labelSelector=a%20in%20(", None).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (400, Some("BadRequest")),
        "{status}"
    );
    // Only GET.
    let resp = c
        .post(format!(
            "{}/apis/custom.metrics.k8s.io/v1beta1",
            adapter.url
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status().as_u16(), 405);

    // Its own endpoints.
    for path in ["/healthz", "/readyz", "/livez"] {
        let (code, body) = get(&c, &adapter, path, None).await;
        assert_eq!((code, body), (200, json!("ok")));
    }
    let (code, metrics) = get(&c, &adapter, "/metrics", None).await;
    assert_eq!(code, 200);
    let text = metrics.as_str().expect("text");
    assert!(
        text.contains(
            r#"podscale_adapter_requests_total{group="custom.metrics.k8s.io",code="404"}"#
        ),
        "{text}"
    );
    // The pods were listed with the request's selector.
    assert!(api.count("GET /api/v1/namespaces/ai-inference/pods?") >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_is_down_is_an_internal_error_never_a_value() {
    let api = FakeApi::start().await;
    let url = format!("http://127.0.0.1:{}", prom::closed_port());
    let adapter = start_adapter(config(&metrics_yaml(&url)), &api, None).await;
    let c = client(&adapter, None);
    for path in [
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/pods/*/inference_queue_depth?labelSelector=app%3Dinference-server",
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ai-inference/pods/inference-server-0/inference_queue_depth",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/gpu_utilization_avg?labelSelector=deployment%3Dinference-server",
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai-inference/metrics/load",
    ] {
        let (code, status) = get(&c, &adapter, path, None).await;
        assert_eq!(code, 500, "{path}: {status}");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["reason"], "InternalError");
        assert!(status.get("items").is_none());
        let message = status["message"].as_str().expect("message");
        assert!(message.contains("cannot connect"), "{message}");
    }
}

/// `podscale metrics` reading Prometheus directly, and reading the same metrics through
/// the adapter (the Kubernetes metrics APIs, as the HPA does: the target's scale and
/// pods, then `custom.metrics.k8s.io` and `external.metrics.k8s.io`), come to the same
/// values and the same decision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podscale_metrics_decides_the_same_through_the_adapter_as_from_prometheus() {
    use podscale_metrics::collect::{self, PodInfo, Request, Sources};
    use podscale_metrics::kubernetes::KubeMetrics;

    let (_exporter, prom) = prometheus().await;
    let api = FakeApi::start().await;
    let served = config(&metrics_yaml(&prom.url));
    let adapter = start_adapter(served.clone(), &api, None).await;
    *api.metrics_backend.lock().expect("lock") = Some(adapter.url.clone());
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/manifests/inference-hpa-custom.yaml"
    );
    let source = std::fs::read_to_string(file).expect("the seed's custom-metrics HPA");
    let docs = podscale_manifest::parse_documents(&source, file).expect("parses");
    let hpa: podscale_core::api::HorizontalPodAutoscaler =
        podscale_manifest::deserialize(&docs[0], file).expect("an HPA");
    let now = jiff::Timestamp::now();

    // Directly from Prometheus, with the target's pods given.
    let pods: Vec<PodInfo> = (0..3)
        .map(|i| PodInfo {
            name: format!("inference-server-{i}"),
            address: None,
        })
        .collect();
    let direct = collect::read(
        &served,
        &Sources::from_config(&served).expect("sources"),
        &Request {
            hpa: &hpa,
            pods: Some(&pods),
            now,
        },
    )
    .await;
    // Through the metrics APIs: no metric is configured, every one falls back.
    let via = config("kubernetes:\n  fallback: true\n");
    let mut sources = Sources::from_config(&via).expect("sources");
    sources.kube = Some(KubeMetrics::new(
        api.client(),
        std::time::Duration::from_secs(10),
    ));
    let through = collect::read(
        &via,
        &sources,
        &Request {
            hpa: &hpa,
            pods: None,
            now,
        },
    )
    .await;

    assert!(!direct.has_errors(), "{:#?}", direct.metrics);
    assert!(!through.has_errors(), "{:#?}", through.metrics);
    assert!(through.notes.is_empty(), "{:?}", through.notes);
    assert_eq!(through.metrics[0].source, "custom.metrics.k8s.io");
    assert_eq!(through.metrics[1].source, "external.metrics.k8s.io");
    let values = |r: &collect::Reading| -> Vec<Vec<(Option<String>, i64)>> {
        r.metrics
            .iter()
            .map(|m| {
                m.samples
                    .iter()
                    .map(|s| (s.pod.clone(), s.quantity.milli_value()))
                    .collect()
            })
            .collect()
    };
    assert_eq!(values(&through), values(&direct));
    assert_eq!(
        values(&direct)[0],
        vec![
            (Some("inference-server-0".into()), 120_000),
            (Some("inference-server-1".into()), 80_500),
            (Some("inference-server-2".into()), 100_000)
        ]
    );
    let decide = |r: &collect::Reading| {
        let out = r
            .scenario(&hpa, Some(3))
            .evaluate()
            .expect("evaluates")
            .output;
        (out.recommendation, out.desired_replicas)
    };
    // 300.5 / 3 pods against 50 each → 7 recommended (the GPU's 80.5 against 70 → 2),
    // 6 after the scale-up limit.
    assert_eq!(decide(&direct), (Some(7), Some(6)));
    assert_eq!(decide(&through), decide(&direct));
}

/// A source that hangs is answered `504 Timeout` at the request deadline (not held
/// forever), and requests past `max_in_flight` are refused at once with `429`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_source_times_out_and_excess_requests_are_refused() {
    let silent = prom::Silent::start();
    let api = FakeApi::start().await;
    let yaml = format!(
        "prometheus:\n  url: http://127.0.0.1:{}\n  timeout: 60s\n  retries: 0\n\
         metrics:\n  - {{name: gpu, type: external, query: 'avg(x)'}}\n",
        silent.port
    );
    let limits = podscale_adapter::server::Limits {
        max_in_flight: 1,
        request_timeout: std::time::Duration::from_secs(5),
        ..Default::default()
    };
    let adapter = support::start_adapter_with(config(&yaml), &api, None, limits).await;
    let c = client(&adapter, None);
    let path = "/apis/external.metrics.k8s.io/v1beta1/namespaces/ai-inference/gpu";
    // Sent together: whichever holds the only slot waits for the hung source.
    let (a, b) = tokio::join!(get(&c, &adapter, path, None), get(&c, &adapter, path, None));
    let mut codes = vec![(a.0, a.1["reason"].clone()), (b.0, b.1["reason"].clone())];
    codes.sort_by_key(|c| c.0);
    assert_eq!(
        codes,
        vec![(429, json!("TooManyRequests")), (504, json!("Timeout"))],
        "{a:?} {b:?}"
    );
}
