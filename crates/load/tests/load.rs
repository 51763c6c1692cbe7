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
    let mut samples = 0;
    let report = run(cfg, &mut |_| samples += 1).await.expect("run");
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
    assert!(samples >= 3, "progress was reported {samples} times");
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
    for bad in [
        "localhost:8000",
        "https://example.com/",
        "ftp://x/",
        "http://",
    ] {
        assert!(Config::new(bad, constant(1.0), 1.0).is_err(), "{bad}");
    }
}
