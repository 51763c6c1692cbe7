//! The load generator against the emulator over loopback.
use std::net::SocketAddr;
use std::time::Duration;

use podscale_emulate::{Config as EmuConfig, Emulator, Faults};
use podscale_load::{Config, Mode, RequestShape, run};
use podscale_model::Model;
use podscale_sim::traffic::Pattern;

/// A fast server: a request of 16 prompt tokens and 4 output tokens takes about 5 ms.
async fn emulator(faults: &[&str]) -> Emulator {
    let model = Model::load(
        Some("server:\n  prefillTokensPerSecond: 100000\n  decodeStep: {1: 1ms, 256: 2ms}\n"),
        "fast.yaml",
    )
    .expect("model");
    let mut c = EmuConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), model);
    c.cpu_scale = 0.0;
    let mut f = Faults::default();
    for spec in faults {
        f.add(spec).expect("fault");
    }
    c.faults = f;
    Emulator::start(c).await.expect("start")
}

fn constant(rate: f64) -> Mode {
    Mode::Open {
        pattern: Pattern::Constant { rate },
    }
}

/// The stall test, scaled down: a 1 s stall in a 4 s run at 200 requests/s.
/// An open-loop generator sees about a fifth of the requests wait up to a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_open_loop_latency_and_counts_add_up() {
    let emu = emulator(&["stall=1s@1s"]).await;
    let url = format!("http://{}/v1/completions", emu.local_addr());
    let mut cfg = Config::new(&url, constant(200.0), 4.0).expect("config");
    cfg.shape = RequestShape {
        prompt_tokens: 16,
        max_tokens: 4,
        ..RequestShape::default()
    };
    let mut samples = Vec::new();
    let report = run(cfg, &mut |p| samples.push(p)).await.expect("run");
    assert_eq!(
        report.sent,
        report.completed + report.error_total(),
        "{report:?}"
    );
    assert_eq!(report.sent, 800, "{report:?}");
    assert_eq!(report.error_total(), 0, "{report:?}");
    let latency = report.latency.expect("latencies");
    assert!(
        latency.p99 >= 0.5,
        "p99 {} s: the stall was hidden",
        latency.p99
    );
    assert!(latency.max >= 0.9, "{latency:?}");
    // Most requests did not meet the stall.
    assert!(latency.p50 < 0.5, "{latency:?}");
    assert!(samples.len() >= 3, "progress was reported {samples:?}");
    // The recent window saw the stall's requests complete (at ~2 s, within 5 s of
    // every later sample), and never counts more than has completed.
    let worst = samples
        .iter()
        .filter_map(|p| p.recent_p99)
        .fold(0.0, f64::max);
    assert!(worst >= 0.5, "recent p99 {worst}: {samples:?}");
    assert!(
        samples.iter().all(|p| p.recent_completed <= p.completed),
        "{samples:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_reports_ttft_and_errors_are_counted_by_kind() {
    let emu = emulator(&["error-rate=0.5"]).await;
    let url = format!("http://{}/v1/chat/completions", emu.local_addr());
    let mut cfg = Config::new(&url, constant(100.0), 1.0).expect("config");
    cfg.shape = RequestShape {
        prompt_tokens: 8,
        max_tokens: 20,
        stream: true,
        model: None,
    };
    let report = run(cfg, &mut |_| {}).await.expect("run");
    assert_eq!(report.sent, 100);
    assert_eq!(
        report.sent,
        report.completed + report.error_total(),
        "{report:?}"
    );
    let failed = report.errors.get("status_500").copied().unwrap_or(0);
    assert!((20..=80).contains(&failed), "{report:?}");
    let ttft = report.ttft.expect("ttft");
    let latency = report.latency.expect("latency");
    // 20 tokens at 1 ms a step after the first: the first bytes come well before the end.
    assert!(ttft.p50 < latency.p50, "{ttft:?} vs {latency:?}");
    // Tokens come one decode step apart: 1 ms alone, up to 2 ms in a batch (less when
    // the reader falls behind and events arrive together).
    let itl = report.itl.expect("inter-token latency");
    assert!(itl.p50 > 0.0 && itl.p50 < 0.05, "{itl:?}");

    // Closed loop against a server that is gone: connection errors, counted.
    drop(emu);
    let mut cfg =
        Config::new("http://127.0.0.1:9/", Mode::Closed { concurrency: 2 }, 0.2).expect("config");
    cfg.timeout = Duration::from_secs(2);
    let report = run(cfg, &mut |_| {}).await.expect("run");
    assert!(report.sent > 0);
    assert_eq!(report.completed, 0);
    assert_eq!(
        report.errors.get("connect").copied(),
        Some(report.sent),
        "{report:?}"
    );
}

#[test]
fn bad_urls_and_settings_are_refused() {
    for bad in ["localhost:8000", "ftp://x/", "http://"] {
        assert!(Config::new(bad, constant(1.0), 1.0).is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_is_replayed_with_its_token_counts() {
    let emu = emulator(&[]).await;
    let dir = std::env::temp_dir().join(format!("podscale-load-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("trace.csv");
    let mut csv = String::from("timestamp_seconds,input_tokens,output_tokens\n");
    let (mut inputs, mut outputs) = (0, 0);
    for i in 0..20u32 {
        let (input, output) = (10 + i, 1 + i % 5);
        inputs += input;
        outputs += output;
        csv.push_str(&format!("{},{input},{output}\n", f64::from(i) * 0.02));
    }
    std::fs::write(&path, csv).expect("write trace");
    let traffic = podscale_sim::Traffic::prepare(
        &podscale_sim::TrafficSpec::Trace(podscale_sim::TraceSource::Path(path)),
        podscale_sim::TrafficOptions::default(),
    )
    .expect("trace");
    let url = format!("http://{}/v1/completions", emu.local_addr());
    let duration = traffic.horizon + 1.0;
    let cfg = Config::new(
        &url,
        Mode::Trace {
            traffic: Box::new(traffic),
        },
        duration,
    )
    .expect("config");
    let report = run(cfg, &mut |_| {}).await.expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(report.sent, 20, "{report:?}");
    assert_eq!(report.completed, 20, "{report:?}");
    // The emulator counted exactly the trace's tokens (a prompt of N tokens is 4N
    // characters, which it reads back as N).
    let metrics = metrics_text(emu.local_addr()).await;
    assert!(
        metrics.contains(&format!(
            "vllm:prompt_tokens_total{{model_name=\"podscale-emulator\"}} {inputs}\n"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "vllm:generation_tokens_total{{model_name=\"podscale-emulator\"}} {outputs}\n"
        )),
        "{metrics}"
    );
}

/// `/metrics` over a raw HTTP/1.1 exchange.
async fn metrics_text(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

/// The emulator's count of requests received over `version` (`HTTP/1.1`, `HTTP/2`).
async fn requests_over(emu: &Emulator, version: &str) -> u64 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(emu.local_addr())
        .await
        .expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).await.expect("read");
    let line = format!("podscale_emulator_http_requests_total{{version=\"{version}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line}in {text}"))
}

/// `--http2`: many requests multiplexed on two h2c connections, open and closed loop;
/// every one of them reached the server over HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_multiplexes_requests_and_counts_add_up() {
    let emu = emulator(&[]).await;
    let url = format!("http://{}/v1/chat/completions", emu.local_addr());
    let mut cfg = Config::new(&url, constant(300.0), 1.0).expect("config");
    cfg.http2 = true;
    cfg.connections = 2;
    cfg.shape = RequestShape {
        prompt_tokens: 8,
        max_tokens: 8,
        stream: true,
        model: None,
    };
    let report = run(cfg, &mut |_| {}).await.expect("run");
    assert_eq!(report.protocol, "HTTP/2");
    assert_eq!(report.sent, 300, "{report:?}");
    assert_eq!(report.completed, 300, "{report:?}");
    assert!(report.ttft.is_some(), "{report:?}");

    let mut cfg = Config::new(&url, Mode::Closed { concurrency: 16 }, 0.5).expect("config");
    cfg.http2 = true;
    cfg.connections = 2;
    let closed = run(cfg, &mut |_| {}).await.expect("run");
    assert_eq!(closed.error_total(), 0, "{closed:?}");
    assert!(closed.completed > 0, "{closed:?}");
    assert_eq!(closed.sent, closed.completed);

    assert_eq!(
        requests_over(&emu, "HTTP/2").await,
        report.sent + closed.sent
    );
    // Only this scrape came over HTTP/1.1.
    assert_eq!(requests_over(&emu, "HTTP/1.1").await, 2);
}

/// A TLS server (the test CA's certificate for localhost and 127.0.0.1, ALPN `h2` and
/// `http/1.1`) answering every request with 200; it counts the HTTP/2 ones.
async fn tls_server() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let h2 = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&h2);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let h2 = std::sync::Arc::clone(&counter);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    if req.version() == hyper::Version::HTTP_2 {
                        h2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(b"ok\n")),
                        ))
                    }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let _ = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, h2)
}

/// https:// with `--cacert`: HTTP/1.1, and HTTP/2 chosen by ALPN; without the CA the
/// certificate is refused (counted as `tls` errors), and a bad CA file is a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_verifies_the_server_and_negotiates_http2_by_alpn() {
    let (addr, h2) = tls_server().await;
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls/ca.pem");
    for (host, http2) in [("localhost", false), ("127.0.0.1", true)] {
        let url = format!("https://{host}:{}/", addr.port());
        let mut cfg = Config::new(&url, constant(100.0), 0.5).expect("config");
        cfg.ca_file = Some(ca.clone());
        cfg.http2 = http2;
        cfg.connections = 2;
        let report = run(cfg, &mut |_| {}).await.expect("run");
        assert_eq!(report.sent, 50, "{report:?}");
        assert_eq!(report.completed, 50, "{report:?}");
    }
    assert_eq!(h2.load(std::sync::atomic::Ordering::Relaxed), 50);

    // The system's trust store does not know the test CA.
    let url = format!("https://localhost:{}/", addr.port());
    let mut cfg = Config::new(&url, constant(100.0), 0.1).expect("config");
    cfg.connections = 2;
    let report = run(cfg, &mut |_| {}).await.expect("run");
    assert_eq!(report.completed, 0, "{report:?}");
    assert_eq!(
        report.errors.get("tls").copied(),
        Some(report.sent),
        "{report:?}"
    );

    for (path, want) in [
        (std::path::PathBuf::from("/nonexistent/ca.pem"), "--cacert"),
        (
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"),
            "no certificate",
        ),
    ] {
        let mut cfg = Config::new(&url, constant(1.0), 0.1).expect("config");
        cfg.ca_file = Some(path);
        let err = run(cfg, &mut |_| {}).await.expect_err("a bad CA file");
        assert!(err.to_string().contains(want), "{err}");
    }
}
