//! `podscale run --local` as a user runs it: the local deployment comes from
//! `podscale.yaml` (`deployments:`), the HPA's scaleTargetRef picks it. Real processes
//! (Python's HTTP server, as `examples/local/`), real HTTP on loopback; waits are
//! bounded generously, nothing asserts on wall-clock speed.
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn podscale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(args)
        .output()
        .expect("runs")
}

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("podscale-cli-local-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn run_local_says_where_the_deployment_is_missing() {
    let hpa = repo("examples/local/hpa.yaml");
    let out = podscale(&["run", "--local", &hpa]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs the local deployment \"web\" (the HPA's scaleTargetRef): --config podscale.yaml with a `deployments:` entry named \"web\", or -d DEPLOYMENT.yaml"),
        "{err}"
    );

    let dir = temp_dir("missing");
    let other = dir.join("podscale.yaml");
    std::fs::write(
        &other,
        "deployments:\n  - name: api\n    command: x {port}\n    ports: { base: 18100 }\n    front: { port: 18080 }\n",
    )
    .expect("writes");
    let out = podscale(&[
        "run",
        "--local",
        "--config",
        other.to_str().expect("a UTF-8 path"),
        &hpa,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("defines no deployment named \"web\" (the HPA's scaleTargetRef.name); it defines \"api\""),
        "{err}"
    );

    // A bad deployment is reported where it is written, before anything starts.
    std::fs::write(
        &other,
        "deployments:\n  - name: web\n    command: x {port}\n    ports: { base: 18100, count: 8 }\n    front: { port: 18101, maxRequestBody: 1B }\n",
    )
    .expect("writes");
    let out = podscale(&[
        "run",
        "--local",
        "--config",
        other.to_str().expect("a UTF-8 path"),
        &hpa,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = other.display();
    for want in [
        format!(
            "{file}:5:20: deployments[0].front.port: Invalid value: 18101: inside the replicas' ports (18100..18107)"
        ),
        format!("{file}:5:43: deployments[0].front.maxRequestBody: Invalid value: 1B"),
    ] {
        assert!(err.contains(&want), "{want:?} not in:\n{err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A port free now (the kernel's pick).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binds")
        .port()
}

/// `count` consecutive ports free now.
fn free_range(count: u16) -> u16 {
    for _ in 0..100 {
        let base = free_port();
        if base > 65535 - count {
            continue;
        }
        let held: Vec<_> = (base..base + count)
            .map(|p| TcpListener::bind(("127.0.0.1", p)))
            .collect();
        if held.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no {count} consecutive free ports");
}

/// `GET path` on `port` (HTTP/1.0): status and body, or `None` if nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn run_local_starts_the_deployment_podscale_yaml_defines() {
    let dir = temp_dir("run");
    let (base, front, status) = (free_range(4), free_port(), free_port());
    let config = dir.join("podscale.yaml");
    std::fs::write(
        &config,
        format!(
            "deployments:\n  - name: web\n    command: exec python3 -m http.server {{port}} --bind 127.0.0.1\n    env: {{ PYTHONDONTWRITEBYTECODE: \"1\" }}\n    ports: {{ base: {base}, count: 4 }}\n    readiness: {{ path: /, period: 200ms }}\n    resources: {{ requests: {{ cpu: 100m, memory: 64Mi }} }}\n    front: {{ port: {front}, requestTimeout: 1m }}\n    status: {{ port: {status} }}\n    stopTimeout: 5s\n"
        ),
    )
    .expect("writes");
    let mut child = Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(["run", "--local", "--config"])
        .arg(&config)
        .arg(repo("examples/local/hpa.yaml"))
        .args(["--sync-period", "1s"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");

    // The front proxy answers once the replica is ready.
    let (code, _) = wait_for(60, "the front proxy to answer 200", || {
        http_get(front, "/").filter(|(c, _)| *c == 200)
    });
    assert_eq!(code, 200);
    // Replica 0 listens on the base port of the config's deployment.
    assert_eq!(http_get(base, "/").map(|(c, _)| c), Some(200));

    // podscale get reads the status API.
    let got = podscale(&[
        "get",
        "--local",
        "--status-addr",
        &format!("127.0.0.1:{status}"),
    ]);
    let table = String::from_utf8_lossy(&got.stdout);
    assert!(got.status.success(), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("web-hpa") && l.contains("Deployment/web")),
        "{table}"
    );

    // Its /metrics counts the proxied request.
    let (code, metrics) = http_get(status, "/metrics").expect("metrics answer");
    assert_eq!(code, 200);
    assert!(
        metrics.lines().any(|l| l
            .starts_with("podscale_local_proxy_requests_total{outcome=\"proxied\"} ")
            && !l.ends_with(" 0")),
        "{metrics}"
    );

    // SIGTERM stops everything it started.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let exit = wait_for(60, "podscale to exit", || child.try_wait().expect("waits"));
    let mut err = String::new();
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert!(exit.success(), "{exit:?}: {err}");
    assert!(
        http_get(base, "/").is_none(),
        "the replica outlived podscale"
    );
    let _ = std::fs::remove_dir_all(dir);
}
