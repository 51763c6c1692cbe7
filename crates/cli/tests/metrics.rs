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
