//! Against a real Prometheus (see `support`): per-pod, object, external and scalar
//! queries, empty and NaN results, staleness on backfilled history, Prometheus's own
//! error messages, POST queries, basic auth; and the whole path from the seed's HPA
//! manifest to the engine's decision.
mod support;

use std::time::Duration;

use jiff::Timestamp;
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::Fetched;
use podscale_metrics::collect::{self, PodInfo, Request, Sources};
use podscale_metrics::config::{Config, HttpMethod, PrometheusConfig};
use podscale_metrics::prometheus::{PrometheusClient, QueryResult};
use support::{Exporter, Prometheus, PrometheusOptions};

const EXPOSITION: &str = r#"# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{namespace="ai-inference",pod="inference-server-0",model_name="org/m \"q\", v=2"} 120
vllm:num_requests_waiting{namespace="ai-inference",pod="inference-server-1",model_name="m"} 80
vllm:num_requests_waiting{namespace="ai-inference",pod="inference-server-2",model_name="m"} 100
vllm:num_requests_waiting{namespace="other",pod="inference-server-9",model_name="m"} 1000
DCGM_FI_DEV_GPU_UTIL{deployment="inference-server",gpu="0"} 90
DCGM_FI_DEV_GPU_UTIL{deployment="inference-server",gpu="1"} 70
DCGM_FI_DEV_GPU_UTIL{deployment="other",gpu="0"} 5
queue_nan{namespace="ai-inference",pod="inference-server-0"} NaN
queue_nan{namespace="ai-inference",pod="inference-server-1"} NaN
ingress_requests_per_second{namespace="ai-inference",ingress="main"} 42
container_cpu_usage_seconds_total{namespace="ai-inference",pod="inference-server-0",container="vllm"} 1000
container_cpu_usage_seconds_total{namespace="ai-inference",pod="inference-server-0",container="POD"} 1
container_memory_working_set_bytes{namespace="ai-inference",pod="inference-server-0",container="vllm"} 34359738368
container_memory_working_set_bytes{namespace="ai-inference",pod="inference-server-1",container="vllm"} 17179869184
"#;

fn hpa() -> HorizontalPodAutoscaler {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/manifests/inference-hpa-custom.yaml"
    );
    let source = std::fs::read_to_string(file).expect("the seed's custom-metrics HPA");
    let docs = podscale_manifest::parse_documents(&source, file).expect("parses");
    podscale_manifest::deserialize(&docs[0], file).expect("an HPA")
}

fn pods() -> Vec<PodInfo> {
    (0..3)
        .map(|i| PodInfo {
            name: format!("inference-server-{i}"),
            address: None,
        })
        .collect()
}

fn config(url: &str, metrics: &str) -> Config {
    let src =
        format!("prometheus:\n  url: {url}\n  timeout: 5s\n  retries: 0\nmetrics:\n{metrics}");
    Config::from_source(&src, "podscale.yaml").unwrap_or_else(|e| panic!("{e}\n{src}"))
}

async fn read(config: &Config, hpa: &HorizontalPodAutoscaler) -> collect::Reading {
    let sources = Sources::from_config(config).expect("clients");
    let pods = pods();
    collect::read(
        config,
        &sources,
        &Request {
            hpa,
            pods: Some(&pods),
            now: Timestamp::now(),
        },
    )
    .await
}

/// History 3 minutes old: inside Prometheus's 5-minute lookback, outside a 1m maxAge.
fn backfill() -> String {
    let now = Timestamp::now().as_second();
    let mut om = String::from("# TYPE old_queue gauge\n");
    for age in [240, 210, 180] {
        om += &format!(
            "old_queue{{namespace=\"ai-inference\",pod=\"inference-server-0\"}} 7 {}\n",
            now - age
        );
    }
    om + "# EOF\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_seed_hpa_metrics_from_a_real_prometheus() {
    let exporter = Exporter::start(EXPOSITION);
    let Some(prom) = Prometheus::start(PrometheusOptions {
        targets: vec![exporter.address()],
        backfill: Some(backfill()),
        ..PrometheusOptions::default()
    }) else {
        return;
    };
    prom.wait_for("ingress_requests_per_second");
    prom.wait_for("old_queue");

    // The seed's HPA: a Pods metric (queue depth, 50 per pod) and an External one
    // (GPU utilization, 70 average), one written as PromQL and one as a preset.
    let cfg = config(
        &prom.url,
        r#"  - name: inference_queue_depth
    type: pods
    query: sum by (pod) (vllm:num_requests_waiting{namespace="{{namespace}}", pod=~"{{pods}}"})
  - name: gpu_utilization_avg
    type: external
    preset: dcgm/gpu-utilization
"#,
    );
    let hpa = hpa();
    let reading = read(&cfg, &hpa).await;
    assert!(!reading.has_errors(), "{reading:#?}");
    let queue = &reading.metrics[0];
    let values: Vec<(String, f64)> = queue
        .samples
        .iter()
        .map(|s| (s.pod.clone().unwrap_or_default(), s.value))
        .collect();
    assert_eq!(
        values,
        vec![
            ("inference-server-0".to_owned(), 120.0),
            ("inference-server-1".to_owned(), 80.0),
            ("inference-server-2".to_owned(), 100.0),
        ]
    );
    let gpu = &reading.metrics[1];
    assert_eq!(gpu.samples.len(), 1);
    assert_eq!(gpu.samples[0].value, 80.0);
    assert_eq!(
        gpu.query.as_deref(),
        Some(r#"avg (DCGM_FI_DEV_GPU_UTIL{deployment="inference-server"})"#)
    );

    // The engine decides on exactly this input: queue 100 per pod against 50 wants 6.
    let scenario = reading.scenario(&hpa, Some(3));
    let eval = scenario.evaluate().expect("evaluates");
    assert_eq!(eval.output.desired_replicas, Some(6), "{:#?}", eval.output);
    // And the scenario round-trips through JSON, as `podscale explain` reads it.
    let json = serde_json::to_string(&scenario).expect("serializes");
    let back: podscale_core::Scenario = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back.evaluate().expect("evaluates").output, eval.output);

    // An empty result is no data: the metric fails and the HPA cannot scale down.
    let cfg_empty = config(
        &prom.url,
        r#"  - name: inference_queue_depth
    type: pods
    query: sum by (pod) (no_such_series{pod=~"{{pods}}"})
  - name: gpu_utilization_avg
    type: external
    query: avg(DCGM_FI_DEV_GPU_UTIL{deployment="other"})
"#,
    );
    let reading = read(&cfg_empty, &hpa).await;
    let err = reading.metrics[0].error.as_deref().expect("an error");
    assert!(err.contains("the query returned an empty result"), "{err}");
    assert!(matches!(reading.observed.pods, Some(Fetched::Error { .. })));
    // GPU at 5% alone would scale down to the minimum; the failed metric forbids it.
    let eval = reading
        .scenario(&hpa, Some(5))
        .evaluate()
        .expect("evaluates");
    assert_eq!(eval.output.desired_replicas, Some(5), "{:#?}", eval.output);
    let active = eval
        .output
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "ScalingActive"))
        .expect("ScalingActive");
    assert_eq!(active.status, "False");

    // NaN is no data too; emptyAs: 0 turns an empty result into zeros on purpose.
    let cfg_nan = config(
        &prom.url,
        r#"  - name: inference_queue_depth
    type: pods
    query: sum by (pod) (queue_nan{pod=~"{{pods}}"})
  - name: gpu_utilization_avg
    type: external
    query: avg(no_such_series)
    emptyAs: 0
"#,
    );
    let reading = read(&cfg_nan, &hpa).await;
    let m = &reading.metrics[0];
    assert!(
        m.error.as_deref().is_some_and(|e| e.contains("NaN")),
        "{m:#?}"
    );
    assert_eq!(m.dropped.len(), 2);
    assert_eq!(m.dropped[0].reason, "NaN: no data");
    let gpu = &reading.metrics[1];
    assert_eq!(gpu.error, None);
    assert_eq!(gpu.samples[0].value, 0.0);

    // maxAge: the backfilled series is 3 minutes old.
    let cfg_age = config(
        &prom.url,
        r#"  - name: inference_queue_depth
    type: pods
    query: sum by (pod) (last_over_time(old_queue{pod=~"{{pods}}"}[{{maxAge}}]))
    maxAge: 1m
  - name: gpu_utilization_avg
    type: external
    query: sum by (pod) (last_over_time(old_queue{pod=~"{{pods}}"}[{{maxAge}}]))
    maxAge: 10m
"#,
    );
    let reading = read(&cfg_age, &hpa).await;
    assert!(
        reading.metrics[0].error.is_some(),
        "{:#?}",
        reading.metrics[0]
    );
    assert_eq!(reading.metrics[1].samples[0].value, 7.0);

    // An Object metric, with the object's name in the query.
    let mut hpa_obj = hpa.clone();
    let spec: podscale_core::api::MetricSpec = serde_json::from_value(serde_json::json!({
        "type": "Object",
        "object": {
            "metric": {"name": "requests_per_second"},
            "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
            "target": {"type": "Value", "value": "10"}
        }
    }))
    .expect("a metric spec");
    hpa_obj.spec.metrics = Some(vec![spec]);
    let cfg_obj = config(
        &prom.url,
        r#"  - name: requests_per_second
    type: object
    query: sum(ingress_requests_per_second{namespace="{{namespace}}", ingress="{{objectName}}"})
"#,
    );
    let reading = read(&cfg_obj, &hpa_obj).await;
    assert_eq!(reading.metrics[0].samples[0].value, 42.0, "{reading:#?}");
    let Some(Fetched::Data(objects)) = &reading.observed.object else {
        panic!("no object answer: {:?}", reading.observed);
    };
    assert_eq!(objects[0].described_object.name, "main");
    assert_eq!(objects[0].value.milli_value(), 42_000);

    // Resource metrics from cAdvisor series, as metrics.k8s.io would report them.
    prom.wait_for("rate(container_cpu_usage_seconds_total[1m])");
    let mut hpa_res = hpa.clone();
    hpa_res.spec.metrics = None; // the default: CPU at 80% of requests
    let mut cfg_res = config(&prom.url, "  []");
    cfg_res.resources.source = podscale_metrics::config::ResourceSource::Prometheus;
    let reading = read(&cfg_res, &hpa_res).await;
    assert_eq!(reading.metrics[0].source, "prometheus");
    let Some(Fetched::Data(list)) = &reading.observed.resource else {
        panic!("resource answer: {:?}", reading.observed.resource);
    };
    // One pod has CPU (a constant counter: rate 0); the POD container is excluded.
    assert_eq!(list.pods.len(), 1, "{list:?}");
    assert_eq!(list.pods[0].containers[0].name, "vllm");
    assert_eq!(list.pods[0].containers[0].usage["cpu"].milli_value(), 0);
    assert_eq!(
        reading.metrics[0].missing,
        vec!["inference-server-1", "inference-server-2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_decodes_answers_and_passes_on_prometheus_errors() {
    let exporter = Exporter::start(EXPOSITION);
    let Some(prom) = Prometheus::start(PrometheusOptions {
        targets: vec![exporter.address()],
        ..PrometheusOptions::default()
    }) else {
        return;
    };
    prom.wait_for("DCGM_FI_DEV_GPU_UTIL");
    for method in [HttpMethod::Get, HttpMethod::Post] {
        let client = PrometheusClient::new(&PrometheusConfig {
            method,
            ..prom_config(&prom.url)
        })
        .expect("client");
        // A label value with '=', ',' and quotes survives the round trip.
        let r = client
            .query(
                r#"vllm:num_requests_waiting{model_name="org/m \"q\", v=2"}"#,
                None,
            )
            .await
            .expect("query");
        let QueryResult::Vector(v) = r.result else {
            panic!("not a vector")
        };
        assert_eq!(v.len(), 1, "{method:?}");
        assert_eq!(v[0].value, 120.0);
        // Scalars.
        let r = client
            .query("scalar(sum(DCGM_FI_DEV_GPU_UTIL))", None)
            .await
            .expect("query");
        assert!(
            matches!(r.result, QueryResult::Scalar { value, .. } if value == 165.0),
            "{r:?}"
        );
        // Prometheus's own message for a bad query, without retrying it.
        let e = client.query("sum(", None).await.expect_err("bad query");
        let text = e.to_string();
        assert!(
            text.contains("bad_data") && text.contains("parse error"),
            "{text}"
        );
        assert!(!text.contains("attempts"), "{text}");
    }
}

fn prom_config(url: &str) -> PrometheusConfig {
    PrometheusConfig {
        timeout: Duration::from_secs(5),
        retries: 1,
        retry_backoff: Duration::from_millis(10),
        ..PrometheusConfig::new(url)
    }
}

/// bcrypt (cost 4, so the test stays fast) of "s3cret-pw".
const HASH: &str = "$2b$04$6LrNt1Ya9CBS5N3UA7KntePDj6lAzriVkWBUmzviWCrBqI9KfEUK.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_against_prometheus_web_config() {
    let web = format!("basic_auth_users:\n  podscale: '{HASH}'\n");
    let Some(prom) = Prometheus::start(PrometheusOptions {
        web_config: Some(&web),
        // base64("podscale:s3cret-pw")
        authorization: Some("Basic cG9kc2NhbGU6czNjcmV0LXB3".into()),
        ..PrometheusOptions::default()
    }) else {
        return;
    };
    let dir = support::TempDir::new("auth");
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "s3cret-pw\n").expect("write");
    let cfg = |password: Option<&str>, file: bool| PrometheusConfig {
        basic_auth: Some(podscale_metrics::config::BasicAuth {
            username: "podscale".into(),
            password: password.map(str::to_owned),
            password_file: file.then(|| password_file.clone()),
        }),
        retries: 0,
        ..prom_config(&prom.url)
    };
    let ok = PrometheusClient::new(&cfg(None, true)).expect("client");
    let r = ok.query("vector(1)", None).await.expect("authorized");
    assert_eq!(r.result.into_samples()[0].value, 1.0);

    let wrong = PrometheusClient::new(&cfg(Some("nope"), false)).expect("client");
    let e = wrong
        .query("vector(1)", None)
        .await
        .expect_err("unauthorized");
    assert!(e.to_string().contains("HTTP 401"), "{e}");

    let none = PrometheusClient::new(&PrometheusConfig {
        retries: 0,
        ..prom_config(&prom.url)
    })
    .expect("client");
    let e = none
        .query("vector(1)", None)
        .await
        .expect_err("unauthorized");
    assert!(e.to_string().contains("HTTP 401"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let dir = support::TempDir::new("tls");
    let Some((ca, cert, key)) = support::tls_files(dir.path()) else {
        return;
    };
    let web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        cert.display(),
        key.display()
    );
    let Some(prom) = Prometheus::start(PrometheusOptions {
        web_config: Some(&web),
        tls: true,
        ..PrometheusOptions::default()
    }) else {
        return;
    };
    let url = prom.url.replace("http://", "https://");
    let with = |tls: Option<podscale_metrics::config::TlsConfig>| {
        PrometheusClient::new(&PrometheusConfig {
            tls,
            // Until its storage is ready Prometheus answers 503: retried.
            retries: 10,
            retry_backoff: Duration::from_millis(100),
            ..prom_config(&url)
        })
        .expect("client")
    };
    let trusted = with(Some(podscale_metrics::config::TlsConfig {
        ca_file: Some(ca),
        insecure_skip_verify: false,
    }));
    let r = trusted.query("vector(1)", None).await.expect("trusted CA");
    assert_eq!(r.result.into_samples()[0].value, 1.0);

    let untrusted = PrometheusClient::new(&PrometheusConfig {
        retries: 0,
        ..prom_config(&url)
    })
    .expect("client");
    let e = untrusted
        .query("vector(1)", None)
        .await
        .expect_err("unknown CA");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");

    let insecure = with(Some(podscale_metrics::config::TlsConfig {
        ca_file: None,
        insecure_skip_verify: true,
    }));
    insecure
        .query("vector(1)", None)
        .await
        .expect("insecureSkipVerify");
}

/// Queries that need no exporter: every value comes from PromQL itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_values_from_a_real_prometheus() {
    let Some(prom) = Prometheus::start(PrometheusOptions::default()) else {
        return;
    };
    let hpa = hpa();
    let pod =
        |v: &str| format!(r#"label_replace(vector({v}), "pod", "inference-server-0", "", "")"#);
    let metrics = |pods_query: &str, external_query: &str| {
        format!(
            "  - name: inference_queue_depth\n    type: pods\n    query: '{pods_query}'\n  - name: gpu_utilization_avg\n    type: external\n    query: '{external_query}'\n"
        )
    };

    // 0.0004 reads as 0 (the adapter truncates to milli-units), and says so.
    let cfg = config(&prom.url, &metrics(&pod("0.0004"), "vector(0.0004)"));
    let reading = read(&cfg, &hpa).await;
    assert!(!reading.has_errors(), "{reading:#?}");
    for m in &reading.metrics {
        assert_eq!(m.samples[0].quantity.milli_value(), 0, "{m:#?}");
        assert!(m.samples[0].truncated_to_zero, "{m:#?}");
        assert!(
            m.notes
                .iter()
                .any(|n| n.starts_with("1 of 1 samples are below 0.001 (1m) and read as 0")),
            "{m:#?}"
        );
    }
    let json = serde_json::to_value(&reading).expect("json");
    assert_eq!(json["metrics"][0]["samples"][0]["truncatedToZero"], true);
    // 0.001 is exactly 1m: not flagged (and no field in the JSON).
    let cfg = config(&prom.url, &metrics(&pod("0.001"), "vector(0.001)"));
    let reading = read(&cfg, &hpa).await;
    assert!(!reading.metrics[0].samples[0].truncated_to_zero);
    let json = serde_json::to_value(&reading).expect("json");
    assert!(
        json["metrics"][0]["samples"][0]
            .get("truncatedToZero")
            .is_none()
    );

    // +Inf and -Inf are named for what they are, and are no data.
    let cfg = config(&prom.url, &metrics(&pod("1/0"), "vector(-1/0)"));
    let reading = read(&cfg, &hpa).await;
    assert_eq!(reading.metrics[0].dropped[0].reason, "+Inf: no data");
    assert_eq!(reading.metrics[1].dropped[0].reason, "-Inf: no data");
    assert!(
        reading.metrics[0]
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("no data: every sample was NaN")),
        "{reading:#?}"
    );

    // A scalar cannot name pods: said so, not "an empty result". An External metric
    // reads it as one value.
    let cfg = config(
        &prom.url,
        &metrics("scalar(vector(3))", "scalar(vector(3))"),
    );
    let reading = read(&cfg, &hpa).await;
    assert_eq!(
        reading.metrics[0].error.as_deref(),
        Some(
            "the query returned a scalar; a Pods metric needs an instant vector with one series per pod, labelled \"pod\" (e.g. sum by (pod) (...))"
        ),
        "{reading:#?}"
    );
    assert_eq!(reading.metrics[1].samples[0].value, 3.0, "{reading:#?}");

    // More series than maxSeries: refused with the limit named.
    let src = format!(
        "prometheus:\n  url: {}\n  retries: 0\n  maxSeries: 2\nmetrics:\n{}",
        prom.url,
        metrics(
            r#"label_replace(vector(1) or vector(2) * on() group_left() vector(0) or label_replace(vector(3), "x", "1", "", "") or label_replace(vector(4), "x", "2", "", ""), "pod", "p", "", "")"#,
            "vector(1)"
        )
    );
    let cfg = Config::from_source(&src, "podscale.yaml").expect("valid");
    let reading = read(&cfg, &hpa).await;
    let e = reading.metrics[0].error.as_deref().unwrap_or_default();
    assert!(
        e.ends_with("the query returned more than 2 series (prometheus.maxSeries): aggregate it (e.g. sum by (pod) (...)) or raise the limit"),
        "{reading:#?}"
    );
}
