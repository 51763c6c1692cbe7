//! `podscale emulate` and `podscale load` as processes over loopback: the stall test
//! (open-loop latency survives a 1 s stall), SIGTERM drain, --print-model.
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn podscale() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podscale"))
}

/// A model file with fast timing (about 5 ms a request).
fn fast_model(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("fast.yaml");
    std::fs::write(
        &path,
        "server:\n  prefillTokensPerSecond: 100000\n  decodeStep: {1: 1ms, 256: 2ms}\n",
    )
    .expect("write model");
    path
}

/// Starts an emulator on a free port; returns it and its address (read from the line
/// it prints on start).
fn start_emulator(extra: &[&str]) -> (Child, String, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    let model = fast_model(&dir.0);
    let (child, addr) = start_emulator_with(&model, extra);
    (child, addr, dir)
}

/// Starts an emulator of `model` on a free port; returns it and its address.
fn start_emulator_with(model: &std::path::Path, extra: &[&str]) -> (Child, String) {
    let mut child = podscale()
        .args(["emulate", "--port", "0", "--cpu-scale", "0", "--model"])
        .arg(model)
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn podscale emulate");
    let mut line = String::new();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    stderr.read_line(&mut line).expect("start line");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    // Keep reading stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
    });
    (child, addr)
}

mod tempdir {
    /// A temporary directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "podscale-emulate-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).expect("temp dir");
            Self(p)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// One HTTP/1.1 request with `Connection: close`; the status and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

fn terminate(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -TERM failed");
}

#[test]
fn open_loop_latency_survives_a_stall_and_counts_add_up() {
    let (mut emu, addr, _dir) = start_emulator(&["--fault", "stall=1s@1s"]);
    let out = podscale()
        .args(["load", &format!("http://{addr}/v1/completions")])
        .args([
            "--rate",
            "200",
            "--duration",
            "4s",
            "--max-tokens",
            "4",
            "--prompt-tokens",
            "16",
        ])
        .args(["-o", "json"])
        .output()
        .expect("run podscale load");
    terminate(&emu);
    let _ = emu.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let sent = r["sent"].as_u64().expect("sent");
    let completed = r["completed"].as_u64().expect("completed");
    let errors: u64 = r["errors"]
        .as_object()
        .expect("errors by kind")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert_eq!(sent, completed + errors, "{r}");
    assert_eq!(sent, 800, "{r}");
    let p99 = r["latency"]["p99"].as_f64().expect("p99");
    assert!(p99 >= 0.5, "p99 {p99} s: the stall was hidden\n{r}");
    for key in ["p50", "p90", "p99", "max"] {
        assert!(r["latency"][key].is_f64(), "{key}: {r}");
    }
    assert!(r["throughput"].as_f64().expect("throughput") > 100.0, "{r}");
}

#[test]
fn sigterm_drains_in_flight_requests_and_refuses_new_ones() {
    let (mut emu, addr, _dir) = start_emulator(&[]);
    // About 0.3 s of decoding (300 tokens at 1 ms).
    let a = addr.clone();
    let slow = std::thread::spawn(move || {
        http(
            &a,
            "POST",
            "/v1/completions",
            r#"{"prompt": "hi", "max_tokens": 300}"#,
        )
    });
    // Wait until the request is in (bounded).
    for _ in 0..200 {
        let (_, m) = http(&addr, "GET", "/metrics", "");
        if m.contains("vllm:num_requests_running{model_name=\"fast\"} 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    terminate(&emu);
    std::thread::sleep(Duration::from_millis(50));
    let (status, _) = http(&addr, "POST", "/v1/completions", r#"{"prompt": "hi"}"#);
    assert_eq!(status, 503, "a new request during the drain is refused");
    let (status, body) = slow.join().expect("request thread");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"completion_tokens\":300"), "{body}");
    let code = emu.wait().expect("exit");
    assert!(code.success(), "{code:?}");
}

#[test]
fn print_model_is_the_simulators_model_and_bad_flags_are_refused() {
    let emu = podscale()
        .args(["emulate", "--print-model"])
        .output()
        .expect("run");
    let sim = podscale()
        .args(["simulate", "--print-model"])
        .output()
        .expect("run");
    assert!(emu.status.success());
    assert_eq!(emu.stdout, sim.stdout);

    let bad = podscale()
        .args(["emulate", "--fault", "stall=forever"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("stall=forever"));

    let bad = podscale()
        .args(["load", "localhost:8000", "--rate", "1"])
        .output()
        .expect("run");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("absolute http://"));
}

/// `podscale emulate` stands in for vLLM in the metric sources: `podscale metrics`
/// scrapes two emulated replicas (vLLM's series, and the seed's
/// `inference_queue_depth`), and the captured scenario explains as the HPA would
/// decide on those readings.
#[test]
fn podscale_metrics_reads_emulated_vllm_replicas_and_explain_decides_on_them() {
    let dir = tempdir::Dir::new();
    // Slow decoding (200 ms a token) keeps requests running while metrics are read.
    let model = dir.0.join("slow.yaml");
    std::fs::write(&model, "server:\n  decodeStep: {1: 200ms, 256: 400ms}\n").expect("model");
    let start = || start_emulator_with(&model, &[]);
    let (mut a, addr_a) = start();
    let (mut b, addr_b) = start();
    // Three long requests on replica a (about 20 s each); b stays idle. The threads
    // end with the emulators.
    for _ in 0..3 {
        let addr = addr_a.clone();
        std::thread::spawn(move || {
            let _ = std::panic::catch_unwind(|| {
                http(
                    &addr,
                    "POST",
                    "/v1/completions",
                    r#"{"prompt": "hi", "max_tokens": 100}"#,
                )
            });
        });
    }
    // Wait until a reports them running (bounded).
    let mut running = false;
    for _ in 0..100 {
        let (_, body) = http(&addr_a, "GET", "/metrics", "");
        if body
            .lines()
            .any(|l| l.starts_with("vllm:num_requests_running") && l.trim_end().ends_with(" 3"))
        {
            running = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(running, "replica a never reported 3 running requests");
    std::fs::write(
        dir.0.join("podscale.yaml"),
        "metrics:\n  - name: running\n    type: pods\n    scrape: {path: /metrics, series: \"vllm:num_requests_running\"}\n",
    )
    .expect("config");
    std::fs::write(
        dir.0.join("hpa.yaml"),
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: llm, namespace: default}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: llm}\n  minReplicas: 1\n  maxReplicas: 10\n  metrics:\n    - type: Pods\n      pods:\n        metric: {name: running}\n        target: {type: AverageValue, averageValue: \"1\"}\n",
    )
    .expect("hpa");
    let out = podscale()
        .current_dir(&dir.0)
        .args([
            "metrics",
            "--config",
            "podscale.yaml",
            "hpa.yaml",
            "-o",
            "json",
            "--scenario",
            "now.json",
            "--pods",
        ])
        .arg(format!("a={addr_a},b={addr_b}"))
        .output()
        .expect("podscale metrics");
    // Killed, not drained: the long requests would hold a drain for 20 s.
    let _ = a.kill();
    let _ = b.kill();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reading: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let mut samples: Vec<(String, f64)> = reading["metrics"][0]["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            (
                s["pod"].as_str().unwrap_or("").to_owned(),
                s["value"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    samples.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(samples, [("a".to_owned(), 3.0), ("b".to_owned(), 0.0)]);
    // 3 running over 2 replicas against 1 per replica: ceil(1.5 × 2) = 3.
    let out = podscale()
        .current_dir(&dir.0)
        .args(["explain", "now.json", "-o", "json"])
        .output()
        .expect("podscale explain");
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).expect("explain json");
    assert_eq!(decision["metrics"][0]["proposal"], 3, "{decision}");
    assert_eq!(decision["desiredReplicas"], 3, "{decision}");
    let _ = a.wait();
    let _ = b.wait();
}

/// `podscale load --http2` against `podscale emulate` (h2c on its one port): counts add
/// up, and the emulator saw every request over HTTP/2.
#[test]
fn load_over_http2_reaches_the_emulator_over_http2() {
    let (mut emu, addr, _dir) = start_emulator(&[]);
    let out = podscale()
        .args(["load", &format!("http://{addr}/v1/completions"), "--http2"])
        .args(["--rate", "200", "--duration", "1s", "--connections", "2"])
        .args(["--max-tokens", "4", "--prompt-tokens", "16", "-o", "json"])
        .output()
        .expect("run podscale load");
    let (status, metrics) = http(&addr, "GET", "/metrics", "");
    terminate(&emu);
    let _ = emu.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(r["protocol"], "HTTP/2", "{r:#}");
    assert_eq!(r["sent"], 200, "{r:#}");
    assert_eq!(r["completed"], 200, "{r:#}");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("podscale_emulator_http_requests_total{version=\"HTTP/2\"} 200\n"),
        "{metrics}"
    );
}
