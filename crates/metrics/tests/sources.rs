//! The sources when things go wrong, on loopback servers: Prometheus down (connection
//! refused), hung (timeout), bearer tokens, and direct scrapes of pods that answer,
//! hang, fail or expose nothing — and what the engine decides from each.
mod support;

use std::time::{Duration, Instant};

use jiff::Timestamp;
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::Fetched;
use podscale_metrics::collect::{self, PodInfo, Request, Sources};
use podscale_metrics::config::{Config, HttpMethod, PrometheusConfig};
use podscale_metrics::prometheus::PrometheusClient;
use podscale_metrics::scrape::{ScrapeTarget, Scraper};
use support::{Endless, Exporter, Silent};

fn prom_config(url: &str) -> PrometheusConfig {
    PrometheusConfig {
        timeout: Duration::from_millis(500),
        retries: 2,
        retry_backoff: Duration::from_millis(10),
        ..PrometheusConfig::new(url)
    }
}

fn hpa() -> HorizontalPodAutoscaler {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/manifests/inference-hpa-custom.yaml"
    );
    let source = std::fs::read_to_string(file).expect("the seed's custom-metrics HPA");
    let docs = podscale_manifest::parse_documents(&source, file).expect("parses");
    podscale_manifest::deserialize(&docs[0], file).expect("an HPA")
}

fn scaling_active(eval: &podscale_core::scenario::Evaluation) -> (String, String) {
    let c = eval
        .output
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "ScalingActive"))
        .expect("ScalingActive");
    (c.status.clone(), c.reason.clone())
}

#[tokio::test]
async fn prometheus_down_is_a_clear_error_after_retries() {
    let url = format!("http://127.0.0.1:{}", support::closed_port());
    // A refused connection is immediate; a generous timeout keeps a loaded machine from
    // turning it into "no answer".
    let client = PrometheusClient::new(&PrometheusConfig {
        timeout: Duration::from_secs(10),
        ..prom_config(&url)
    })
    .expect("client");
    let e = client.query("up", None).await.expect_err("refused");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("prometheus at {url}: cannot connect")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
    assert!(text.ends_with("(after 3 attempts)"), "{text}");
    assert_eq!(e.metric_label(), "connect");
}

#[tokio::test]
async fn a_hung_prometheus_times_out() {
    let silent = Silent::start();
    let url = format!("http://127.0.0.1:{}", silent.port);
    let client = PrometheusClient::new(&PrometheusConfig {
        retries: 1,
        ..prom_config(&url)
    })
    .expect("client");
    let start = Instant::now();
    let e = client.query("up", None).await.expect_err("timeout");
    assert_eq!(
        e.to_string(),
        format!("prometheus at {url}: no answer within 500ms (after 2 attempts)")
    );
    // Bounded by the timeouts (2 × 500 ms) and not by the silent server, which never
    // answers; the bound is loose so a loaded machine does not fail it.
    assert!(start.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn a_bearer_token_is_read_from_its_file_at_each_query() {
    let fake = Exporter::with(
        200,
        "application/json",
        r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"2"]}}"#,
    );
    let dir = support::TempDir::new("token");
    let token = dir.path().join("token");
    std::fs::write(&token, "first\n").expect("write");
    let client = PrometheusClient::new(&PrometheusConfig {
        bearer_token_file: Some(token.clone()),
        method: HttpMethod::Post,
        ..prom_config(&format!("http://{}", fake.address()))
    })
    .expect("client");
    client.query("vector(2)", None).await.expect("query");
    std::fs::write(&token, "rotated").expect("write");
    client.query("vector(2)", None).await.expect("query");
    let requests = fake.requests.lock().expect("lock").clone();
    assert!(
        requests[0].starts_with("POST /api/v1/query "),
        "{}",
        requests[0]
    );
    assert!(
        requests[0].contains("authorization: Bearer first\r\n"),
        "{}",
        requests[0]
    );
    assert!(
        requests[1].contains("authorization: Bearer rotated\r\n"),
        "{}",
        requests[1]
    );
}

/// How many bytes the client let an endless server send: the cap plus what socket
/// buffers hold (a few MiB on Linux), far below the 4 GiB the server would send.
const SENT_BOUND: usize = 64 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_stops_at_the_size_limit() {
    let server = Endless::start(200, None, br#"{"metric":{"pod":"p"},"value":[1,"1"]},"#);
    let client = PrometheusClient::new(&PrometheusConfig {
        retries: 2,
        timeout: Duration::from_secs(30),
        max_response_size: 1 << 20,
        ..prom_config(&server.url())
    })
    .expect("client");
    let e = client.query("up", None).await.expect_err("too large");
    assert_eq!(
        e.to_string(),
        format!(
            "prometheus at {}: the answer is larger than 1MiB (prometheus.maxResponseSize): reading stopped there; narrow the query or raise the limit",
            server.url()
        )
    );
    // Not retried: the same query gives the same answer.
    assert!(!e.retryable());
    let sent = server.sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < SENT_BOUND, "the client read on: {sent} bytes sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_announced_answer_is_refused_unread() {
    let server = Endless::start(200, Some(10 << 30), b"[[[[[[[[[[[[[[[[");
    let client = PrometheusClient::new(&PrometheusConfig {
        retries: 0,
        timeout: Duration::from_secs(30),
        ..prom_config(&server.url())
    })
    .expect("client");
    let e = client.query("up", None).await.expect_err("too large");
    assert!(
        e.to_string()
            .contains("larger than 16MiB (prometheus.maxResponseSize)"),
        "{e}"
    );
    let sent = server.sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < SENT_BOUND, "the client read on: {sent} bytes sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_error_page_is_shown_in_part() {
    for status in [500_u16, 400] {
        let server = Endless::start(status, None, b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        let client = PrometheusClient::new(&PrometheusConfig {
            retries: 0,
            timeout: Duration::from_secs(30),
            ..prom_config(&server.url())
        })
        .expect("client");
        let e = client.query("up", None).await.expect_err("error status");
        let text = e.to_string();
        let prefix = format!("prometheus at {}: HTTP {status}: AAAA", server.url());
        assert!(text.starts_with(&prefix), "{text}");
        // 512 bytes of the page, then how much more there was (at least what was read).
        assert!(text.ends_with("… (more than 65536 bytes)"), "{text}");
        assert!(text.len() < prefix.len() + 600, "{}", text.len());
        let sent = server.sent.load(std::sync::atomic::Ordering::Relaxed);
        assert!(sent < SENT_BOUND, "the client read on: {sent} bytes sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_series_is_refused_at_the_series_limit() {
    // 1,000,000 series (about 40 MB) announced with their length: over the default
    // size limit, so refused unread; under a raised size limit, refused at series
    // 10,001 while decoding.
    let one = r#"{"metric":{"pod":"p"},"value":[1,"1"]}"#;
    let mut body = String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    for i in 0..1_000_000 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(one);
    }
    body.push_str("]}}");
    let fake = Exporter::with(200, "application/json", &body);
    drop(body);
    let url = format!("http://{}", fake.address());
    let client = PrometheusClient::new(&PrometheusConfig {
        retries: 0,
        timeout: Duration::from_secs(30),
        ..prom_config(&url)
    })
    .expect("client");
    let e = client.query("up", None).await.expect_err("too large");
    assert!(e.to_string().contains("larger than 16MiB"), "{e}");
    let client = PrometheusClient::new(&PrometheusConfig {
        retries: 0,
        timeout: Duration::from_secs(30),
        max_response_size: 64 << 20,
        ..prom_config(&url)
    })
    .expect("client");
    let e = client.query("up", None).await.expect_err("too many series");
    assert!(
        e.to_string()
            .contains("the query returned more than 10000 series (prometheus.maxSeries)"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_prometheus_down_the_engine_keeps_the_replicas() {
    let url = format!("http://127.0.0.1:{}", support::closed_port());
    let src = format!(
        "prometheus: {{url: '{url}', retries: 0}}\nmetrics:\n\
         - {{name: inference_queue_depth, type: pods, preset: vllm/requests-waiting}}\n\
         - {{name: gpu_utilization_avg, type: external, preset: dcgm/gpu-utilization}}\n"
    );
    let config = Config::from_source(&src, "podscale.yaml").expect("valid");
    let sources = Sources::from_config(&config).expect("clients");
    let hpa = hpa();
    let pods = PodInfo::parse_list("inference-server-0,inference-server-1").expect("pods");
    let reading = collect::read(
        &config,
        &sources,
        &Request {
            hpa: &hpa,
            pods: Some(&pods),
            now: Timestamp::now(),
        },
    )
    .await;
    let Some(Fetched::Error { error }) = &reading.observed.pods else {
        panic!("pods answer: {:?}", reading.observed.pods);
    };
    assert!(error.contains("cannot connect"), "{error}");
    assert!(matches!(
        reading.observed.external,
        Some(Fetched::Error { .. })
    ));
    let eval = reading
        .scenario(&hpa, Some(7))
        .evaluate()
        .expect("evaluates");
    assert_eq!(eval.output.desired_replicas, Some(7));
    assert_eq!(
        scaling_active(&eval),
        ("False".to_owned(), "FailedGetPodsMetric".to_owned())
    );
}

const VLLM: &str = "# TYPE vllm:num_requests_waiting gauge\n\
    vllm:num_requests_waiting{model_name=\"a=b,c\",engine=\"0\"} 30\n\
    vllm:num_requests_waiting{model_name=\"x\",engine=\"1\"} 20\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_scrapes_make_unanswering_pods_missing() {
    let good = Exporter::start(VLLM);
    let om = Exporter::with(
        200,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting 90 # {trace_id=\"x\"} 1\n# EOF\n",
    );
    let failing = Exporter::with(500, "text/plain", "boom");
    let nan = Exporter::start("vllm:num_requests_waiting NaN\n");
    let hung = Silent::start();
    let src = "scrape: {timeout: 300ms, concurrency: 2}\nmetrics:\n\
               - {name: inference_queue_depth, type: pods, preset: vllm/requests-waiting, scrape: {port: 1}}\n\
               - {name: gpu_utilization_avg, type: external, query: x, emptyAs: 0}\n\
               prometheus: {url: 'http://127.0.0.1:1', retries: 0, timeout: 200ms}\n";
    let config = Config::from_source(src, "podscale.yaml").expect("valid");
    let sources = Sources::from_config(&config).expect("clients");
    let pods = PodInfo::parse_list(&format!(
        "p-good={},p-om={},p-500={},p-nan={},p-hung=127.0.0.1:{},p-noaddr",
        good.address(),
        om.address(),
        failing.address(),
        nan.address(),
        hung.port
    ))
    .expect("pods");
    let hpa = hpa();
    let start = Instant::now();
    let reading = collect::read(
        &config,
        &sources,
        &Request {
            hpa: &hpa,
            pods: Some(&pods),
            now: Timestamp::now(),
        },
    )
    .await;
    // The hung pod is cut off by the scrape timeout, not waited for (loose bound: a
    // loaded machine must not fail it).
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let m = &reading.metrics[0];
    assert_eq!(m.source, "scrape");
    let got: Vec<(String, f64)> = m
        .samples
        .iter()
        .map(|s| (s.pod.clone().unwrap_or_default(), s.value))
        .collect();
    assert_eq!(
        got,
        vec![("p-good".to_owned(), 50.0), ("p-om".to_owned(), 90.0)]
    );
    assert_eq!(m.missing, vec!["p-500", "p-nan", "p-hung", "p-noaddr"]);
    let reasons: Vec<String> = m
        .dropped
        .iter()
        .map(|d| format!("{}: {}", d.what, d.reason))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("p-500: missing:") && r.contains("HTTP 500")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("p-hung: missing:") && r.contains("no answer within 300ms")),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"p-nan: NaN: no data".to_owned()),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("p-noaddr: no address")),
        "{reasons:?}"
    );
    // The external metric's Prometheus is down, and onError defaults to fail.
    assert!(reading.metrics[1].error.is_some());

    // The engine sees two pods at 50 and 90 and four missing ones. On a scale-up,
    // missing pods count as 0 (upstream's rule), so it is conservative.
    let eval = reading
        .scenario(&hpa, Some(6))
        .evaluate()
        .expect("evaluates");
    let pods_answer = &eval.output.metrics.as_ref().expect("metrics")[0];
    assert!(pods_answer.proposal.is_some(), "{:#?}", eval.output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraping_a_thousand_endpoints() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    const N: usize = 1000;
    let body = format!("{VLLM}{}", "vllm:other_metric{a=\"b\"} 1\n".repeat(50));
    let mut targets = Vec::with_capacity(N);
    let mut servers = tokio::task::JoinSet::new();
    for i in 0..N {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        targets.push(ScrapeTarget {
            pod: format!("pod-{i}"),
            url: format!("http://127.0.0.1:{port}/metrics"),
        });
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        servers.spawn(async move {
            // Each endpoint answers one scrape.
            if let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 2048];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(response.as_bytes()).await;
                let _ = conn.shutdown().await;
            }
        });
    }
    let scraper = Scraper::new(64).expect("scraper");
    let start = Instant::now();
    // The time is reported, not asserted (machines are shared and noisy): the benchmark
    // figure lives in the notes; the test checks every endpoint was read.
    let outcomes = scraper.scrape(targets, Duration::from_secs(60)).await;
    let took = start.elapsed();
    let ok = outcomes.iter().filter(|o| o.result.is_ok()).count();
    eprintln!("scraped {ok}/{N} local endpoints in {took:?} (64 in flight)");
    assert_eq!(ok, N);
    servers.abort_all();
}
