//! Black-box test of `podscale metrics`: direct scrapes of pods' /metrics on loopback,
//! a pod that does not answer (missing, not zero), and the captured scenario replayed
//! by `podscale explain`.
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::Command;

/// Serves `body` as a Prometheus exposition to every connection until the test ends.
fn exporter(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds loopback");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binds loopback");
    l.local_addr().expect("addr").port()
}

#[test]
fn scrapes_pods_directly_and_a_silent_pod_is_missing_not_zero() {
    let dir = std::env::temp_dir().join(format!("podscale-metrics-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port =
        exporter("# TYPE tgi_queue_size gauge\ntgi_queue_size{model=\"x,y=\\\"z\\\"\"} 12\n");
    let dead = closed_port();
    std::fs::write(
        dir.join("hpa.yaml"),
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: tgi, namespace: default}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: tgi}\n  minReplicas: 1\n  maxReplicas: 10\n  metrics:\n    - type: Pods\n      pods:\n        metric: {name: tgi_queue}\n        target: {type: AverageValue, averageValue: \"5\"}\n",
    )
    .expect("writes hpa");
    std::fs::write(
        dir.join("podscale.yaml"),
        format!("scrape: {{timeout: 2s}}\nmetrics:\n  - name: tgi_queue\n    type: pods\n    scrape: {{port: {port}, path: /metrics, series: tgi_queue_size}}\n"),
    )
    .expect("writes config");
    let scenario = dir.join("now.json");
    let out = Command::new(env!("CARGO_BIN_EXE_podscale"))
        .current_dir(&dir)
        .args(["metrics", "hpa.yaml", "-o", "json", "--scenario"])
        .arg(&scenario)
        .arg("--pods")
        .arg(format!("tgi-0=127.0.0.1:{port},tgi-1=127.0.0.1:{dead}"))
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("tgi-0"), "{stdout}");
    assert!(
        stdout.contains("\"12\""),
        "the scraped value is reported: {stdout}"
    );

    // The captured state replays through the engine: tgi-1 is missing (filled with 0
    // on this scale-up), not read as 0 by the source.
    let out = Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(["explain", "-o", "json"])
        .arg(&scenario)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["metrics"][0]["current"]["averageValue"], "12", "{v}");
    assert_eq!(
        v["recommendation"], 3,
        "ceil(12·1/5 ... conservative: ceil(1.2 × 2)) = 3: {v}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reads_the_seed_pods_and_external_metrics_straight_from_the_pods() {
    let dir = std::env::temp_dir().join(format!("podscale-metrics-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let body = "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"llama\"} 90\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\nDCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 80\n";
    let ports: Vec<u16> = (0..3).map(|_| exporter(body)).collect();
    std::fs::write(
        dir.join("podscale.yaml"),
        "metrics:\n  - name: inference_queue_depth\n    type: pods\n    scrape: {path: /metrics, series: \"vllm:num_requests_waiting\"}\n  - name: gpu_utilization_avg\n    type: external\n    scrape: {path: /metrics, series: DCGM_FI_DEV_GPU_UTIL}\n",
    )
    .expect("writes config");
    let pods: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("inference-server-{i}=127.0.0.1:{p}"))
        .collect();
    let manifest = format!(
        "{}/../../examples/manifests/inference-hpa-custom.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let scenario = dir.join("now.json");
    let out = Command::new(env!("CARGO_BIN_EXE_podscale"))
        .current_dir(&dir)
        .args([
            "metrics",
            &manifest,
            "--pods",
            &pods.join(","),
            "--scenario",
        ])
        .arg(&scenario)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("inference_queue_depth") && stdout.contains("gpu_utilization_avg"),
        "{stdout}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(["explain", "-o", "json"])
        .arg(&scenario)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // Queue depth 90 per pod against 50: ceil(1.8 × 3) = 6.
    assert_eq!(v["metrics"][0]["proposal"], 6, "{v}");
    assert_eq!(v["metrics"][0]["current"]["averageValue"], "90", "{v}");
    // GPU utilization: one value per pod (240 in all) against 70 per pod: ceil(240 / 70) = 4,
    // reported as the per-replica average 80.
    assert_eq!(v["metrics"][1]["proposal"], 4, "{v}");
    assert_eq!(v["metrics"][1]["current"]["averageValue"], "80", "{v}");
    assert_eq!(v["desiredReplicas"], 6, "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fake Prometheus: answers every request with `status` and a body made by
/// `body` from the request it received (head and body), so it can echo the request
/// back as hostile servers and debugging proxies do.
fn fake_prometheus(status: u16, body: fn(&str) -> String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds loopback");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(256) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request).into_owned();
            let text = body(&request);
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    port
}

fn podscale(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_podscale"));
    cmd.current_dir(dir).args(args);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("runs");
    let mut input = child.stdin.take().expect("stdin");
    // podscale may stop reading early (a bounded read): a broken pipe is expected then.
    let _ = input.write_all(stdin.unwrap_or_default().as_bytes());
    drop(input);
    child.wait_with_output().expect("runs")
}

fn seed_hpa() -> String {
    format!(
        "{}/../../examples/manifests/inference-hpa-custom.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("podscale-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Standard base64, for the `Authorization: Basic` form of a secret.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                char::from(A[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

const METRICS: &str = "metrics:\n  - {name: inference_queue_depth, type: pods, query: 'sum by (pod) (q)'}\n  - {name: gpu_utilization_avg, type: external, query: 'avg(g)'}\n";

/// Every configured secret, with distinctive values, through every output path:
/// none may appear in stdout, stderr or the scenario file, raw or base64-encoded.
#[test]
fn no_configured_secret_reaches_any_output() {
    const URL_PASS: &str = "urlpass-7Q3Z";
    const URL_TOKEN: &str = "urltoken-H8F4";
    const BASIC_PASS: &str = "basicpass-K9W2";
    const FILE_PASS: &str = "filepass-M4X8";
    const TOKEN: &str = "bearertoken-R5T1";
    const QUERY_SECRET: &str = "qparam-J6N0";
    const PARSE_PASS: &str = "parsepass-B2V7";
    let dir = temp_dir("secrets");
    std::fs::write(dir.join("password"), format!("{FILE_PASS}\n")).expect("write");
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).expect("write");
    let mut forbidden: Vec<String> = [
        URL_PASS,
        URL_TOKEN,
        BASIC_PASS,
        FILE_PASS,
        TOKEN,
        QUERY_SECRET,
        PARSE_PASS,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for (user, pass) in [
        ("urluser", URL_PASS),
        (URL_TOKEN, ""),
        ("basicuser", BASIC_PASS),
        ("fileuser", FILE_PASS),
    ] {
        forbidden.push(base64(format!("{user}:{pass}").as_bytes()));
    }
    let echo = |request: &str| request.to_owned();
    // Success, with the request echoed into a warning Prometheus "attached".
    let ok = |request: &str| {
        serde_json::json!({
            "status": "success",
            "data": {"resultType": "vector", "result": [
                {"metric": {"pod": "inference-server-0"}, "value": [1_700_000_000, "7"]}
            ]},
            "warnings": [format!("echo: {request}")]
        })
        .to_string()
    };
    // Prometheus's error envelope, echoing the request in its message.
    let envelope = |request: &str| {
        serde_json::json!({"status": "error", "errorType": "internal", "error": format!("echo: {request}")})
            .to_string()
    };
    let servers: Vec<(&str, u16, i32)> = vec![
        ("refused", closed_port(), 1),
        ("401 echo", fake_prometheus(401, echo), 1),
        ("500 echo", fake_prometheus(500, echo), 1),
        ("503 envelope", fake_prometheus(503, envelope), 1),
        ("200 with an echoing warning", fake_prometheus(200, ok), 1),
    ];
    let auths = |port: u16| -> Vec<(&'static str, String)> {
        vec![
            (
                "URL userinfo",
                format!("  url: 'http://urluser:{URL_PASS}@127.0.0.1:{port}'\n"),
            ),
            (
                "URL token",
                format!("  url: 'http://{URL_TOKEN}@127.0.0.1:{port}/'\n"),
            ),
            (
                "basicAuth password",
                format!(
                    "  url: 'http://127.0.0.1:{port}'\n  basicAuth: {{username: basicuser, password: '{BASIC_PASS}'}}\n"
                ),
            ),
            (
                "basicAuth passwordFile",
                format!(
                    "  url: 'http://127.0.0.1:{port}'\n  basicAuth: {{username: fileuser, passwordFile: password}}\n"
                ),
            ),
            (
                "bearerTokenFile",
                format!("  url: 'http://127.0.0.1:{port}'\n  bearerTokenFile: token\n"),
            ),
        ]
    };
    let check = |what: &str, text: &str| {
        for s in &forbidden {
            assert!(!text.contains(s.as_str()), "{what}: {s:?} leaked:\n{text}");
        }
    };
    let hpa = seed_hpa();
    let mut runs = 0;
    for (mode, port, _) in &servers {
        for (auth, prometheus) in auths(*port) {
            let config = format!(
                "prometheus:\n{prometheus}  retries: 1\n  retryBackoff: 1ms\n  timeout: 5s\n{METRICS}"
            );
            std::fs::write(dir.join("podscale.yaml"), &config).expect("write");
            for (output, scenario) in [("text", "s.yaml"), ("json", "s.json"), ("yaml", "s.yaml")] {
                let _ = std::fs::remove_file(dir.join(scenario));
                let out = podscale(
                    &dir,
                    &[
                        "metrics",
                        &hpa,
                        "-o",
                        output,
                        "--scenario",
                        scenario,
                        "--pods",
                        "inference-server-0,inference-server-1",
                    ],
                    None,
                );
                let what = format!("{mode}, {auth}, -o {output}");
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stderr = String::from_utf8_lossy(&out.stderr);
                check(&what, &stdout);
                check(&what, &stderr);
                let file = std::fs::read_to_string(dir.join(scenario))
                    .unwrap_or_else(|e| panic!("{what}: no scenario ({e}): {stderr}"));
                check(&what, &file);
                // The path under test ran: the server's answer (or refusal) shows.
                let expected = match *mode {
                    "refused" => "cannot connect",
                    "401 echo" => "HTTP 401",
                    "500 echo" => "HTTP 500: GET /api/v1/query?query=",
                    "503 envelope" => "internal: echo: GET",
                    _ => "prometheus warning: echo: GET",
                };
                assert!(stdout.contains(expected), "{what}: {stdout}");
                if auth != "bearerTokenFile" && *mode != "refused" {
                    // The echoed credentials show, redacted.
                    assert!(
                        stdout.contains("authorization: Basic xxxxx"),
                        "{what}: {stdout}"
                    );
                }
                if auth.starts_with("URL") && *mode != "200 with an echoing warning" {
                    assert!(stdout.contains("xxxxx@127.0.0.1"), "{what}: {stdout}");
                }
                runs += 1;
            }
        }
    }
    assert_eq!(runs, 5 * 5 * 3);

    // Error paths before any request: a token-like query parameter (refused by
    // validation), a URL that does not parse, credentials given twice.
    for (prometheus, expected) in [
        (
            format!("  url: 'http://h:9090/?access_token={QUERY_SECRET}'\n"),
            "prometheus.url: Invalid value: \"http://h:9090/?access_token=xxxxx\": must not have a query or fragment",
        ),
        (
            format!("  url: 'http://admin:{PARSE_PASS}@[::1'\n"),
            "prometheus.url \"http://admin:xxxxx@[::1\": invalid IPv6 address",
        ),
        (
            format!(
                "  url: 'http://urluser:{URL_PASS}@h'\n  basicAuth: {{username: basicuser, password: '{BASIC_PASS}'}}\n"
            ),
            "prometheus.url: Forbidden: credentials in the URL and basicAuth or bearerTokenFile: set one",
        ),
    ] {
        std::fs::write(
            dir.join("podscale.yaml"),
            format!("prometheus:\n{prometheus}{METRICS}"),
        )
        .expect("write");
        for output in ["text", "json", "yaml"] {
            let out = podscale(&dir, &["metrics", &hpa, "-o", output], None);
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains(expected), "{stderr}");
            check(expected, &stdout);
            check(expected, &stderr);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_config_comes_from_any_file_or_stdin_and_is_named_in_messages() {
    let dir = temp_dir("config-name");
    let hpa = seed_hpa();
    // Only the Pods metric is configured: the External one is reported missing from
    // the file actually read.
    let config = "metrics:\n  - {name: inference_queue_depth, type: pods, scrape: {series: q}}\n";
    std::fs::write(dir.join("other.yaml"), config).expect("write");
    let out = podscale(
        &dir,
        &[
            "metrics",
            &hpa,
            "--config",
            "other.yaml",
            "--pods",
            "a=127.0.0.1:1",
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("error: other.yaml has no External metric named \"gpu_utilization_avg\""),
        "{stdout}"
    );
    assert!(!stdout.contains("podscale.yaml"), "{stdout}");

    let out = podscale(
        &dir,
        &["metrics", &hpa, "--config", "-", "--pods", "a=127.0.0.1:1"],
        Some(config),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("error: <stdin> has no External metric named"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A config error from stdin is positioned in "<stdin>".
    let out = podscale(
        &dir,
        &["metrics", &hpa, "--config", "-"],
        Some("prometheus: {url: http://p, retries: 99}\n"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: <stdin>:1:38: prometheus.retries: Invalid value: 99: must be at most 10"
    );
    // Standard input holds one of them only.
    let out = podscale(&dir, &["metrics", "-", "--config", "-"], Some(config));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("the HPA and --config cannot both be read from standard input"),
        "{stderr}"
    );
    // Bounded: 5 MiB on standard input is refused, not read whole.
    let big = format!("# {}\n", "x".repeat(5 << 20));
    let out = podscale(&dir, &["metrics", &hpa, "--config", "-"], Some(&big));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: <stdin>: larger than 4MiB (a config is a few KiB)"
    );
    // A missing file: its cause once, not twice.
    let out = podscale(&dir, &["metrics", &hpa, "--config", "nope.yaml"], None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: cannot read nope.yaml: No such file or directory (os error 2)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_pods_flag_refuses_empty_and_duplicate_entries() {
    let dir = temp_dir("pods-flag");
    std::fs::write(
        dir.join("podscale.yaml"),
        "metrics:\n  - {name: inference_queue_depth, type: pods, scrape: {series: q}}\n",
    )
    .expect("write");
    let hpa = seed_hpa();
    for (pods, message) in [
        ("a,a", "error: --pods: pod \"a\" is given twice"),
        (
            "a=10.0.0.1:80,b,a=10.0.0.2:80",
            "error: --pods: pod \"a\" is given twice",
        ),
        (
            "a,,b",
            "error: --pods: entry 2 is empty (expected name=ip:port,...)",
        ),
        (
            "a,",
            "error: --pods: entry 2 is empty (expected name=ip:port,...)",
        ),
        ("", "error: --pods: empty list (expected name=ip:port,...)"),
    ] {
        let out = podscale(&dir, &["metrics", &hpa, "--pods", pods], None);
        assert_eq!(out.status.code(), Some(1), "{pods:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim(),
            message,
            "{pods:?}"
        );
        assert!(out.stdout.is_empty(), "{pods:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn values_below_one_milli_are_read_as_zero_and_said_so() {
    let dir = temp_dir("below-milli");
    let port = fake_prometheus(200, |_| {
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"inference-server-0"},"value":[1700000000,"0.0004"]},{"metric":{"pod":"inference-server-1"},"value":[1700000000,"2"]}]}}"#.to_owned()
    });
    std::fs::write(
        dir.join("podscale.yaml"),
        format!("prometheus: {{url: 'http://127.0.0.1:{port}', retries: 0}}\n{METRICS}"),
    )
    .expect("write");
    let hpa = seed_hpa();
    let out = podscale(&dir, &["metrics", &hpa], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("0  at 2023-11-14T22:13:20Z  (read 0.0004: below 1m, truncated to 0)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("note: 1 of 2 samples are below 0.001 (1m) and read as 0: values are truncated to milli-units, as prometheus-adapter does"),
        "{stdout}"
    );
    for output in ["json", "yaml"] {
        let out = podscale(&dir, &["metrics", &hpa, "-o", output], None);
        let v: serde_json::Value = if output == "json" {
            serde_json::from_slice(&out.stdout).expect("json")
        } else {
            serde_saphyr::from_str(&String::from_utf8_lossy(&out.stdout)).expect("yaml")
        };
        let samples = &v["metrics"][0]["samples"];
        assert_eq!(samples[0]["truncatedToZero"], true, "{v}");
        assert_eq!(samples[0]["quantity"], "0", "{v}");
        assert!(samples[1].get("truncatedToZero").is_none(), "{v}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metrics_help_describes_its_own_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(["metrics", "--help"])
        .output()
        .expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        help.contains("json: JSON, for programs: each metric's samples"),
        "{help}"
    );
    assert!(!help.contains("explain`: the output"), "{help}");
    assert!(help.contains("(at most 4 MiB)"), "{help}");
}
