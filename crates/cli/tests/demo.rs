//! `podscale demo` end to end: real `podscale emulate` replicas behind the local
//! runtime's proxy, real load, real scaling; and nothing left behind, also when the
//! demo is stopped by SIGTERM halfway.
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::Duration;

fn podscale() -> Command {
    Command::new(env!("CARGO_BIN_EXE_podscale"))
}

/// Processes whose command line mentions the demo's scratch directory: the replicas
/// of the demo with process id `pid` (`--model /tmp/podscale-demo-PID/model.yaml`).
fn replicas_of(pid: u32) -> Vec<String> {
    let marker = format!("podscale-demo-{pid}/");
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(" emulate ") && cmdline.contains(&marker) {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

#[test]
fn the_demo_scales_up_fails_no_request_and_leaves_nothing_behind() {
    let report =
        std::env::temp_dir().join(format!("podscale-demo-test-{}.html", std::process::id()));
    let child = podscale()
        .args(["demo", "--duration", "40s", "-o", "json", "--report"])
        .arg(&report)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn podscale demo");
    let pid = child.id();
    let out = child.wait_with_output().expect("podscale demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(
        summary["peakReplicas"].as_i64().is_some_and(|n| n > 1),
        "{summary:#}\n{stderr}"
    );
    assert_eq!(summary["failedRequests"], 0, "{summary:#}\n{stderr}");
    assert!(
        summary["requests"].as_u64().is_some_and(|n| n > 0),
        "{summary:#}"
    );
    assert!(summary["reactionSeconds"].as_f64().is_some(), "{summary:#}");
    assert!(summary["readySeconds"].as_f64().is_some(), "{summary:#}");
    // Plain lines (not a terminal): the view went to standard error, one line a sample.
    assert!(stderr.contains("inference_queue_depth"), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
    // The HTML report: the simulator's charts, drawn from the demo's samples.
    let html = std::fs::read_to_string(&report).expect("the report");
    let _ = std::fs::remove_file(&report);
    assert!(html.contains("<h1>podscale demo</h1>"), "{html}");
    assert!(html.matches("<svg").count() >= 4, "charts: {html}");
    assert!(html.contains("inference_queue_depth as the controller read it"));
    // The load's p50/p99 over the last seconds, sampled once a second.
    assert!(
        html.contains("Latency: p99 (thick) and p50 (thin)"),
        "{html}"
    );
    let left = replicas_of(pid);
    assert!(left.is_empty(), "replicas left behind: {left:?}");
    let scratch = std::env::temp_dir().join(format!("podscale-demo-{pid}"));
    assert!(!scratch.exists(), "{} left behind", scratch.display());
}

#[test]
fn sigterm_stops_the_demo_and_every_replica() {
    let mut child = podscale()
        .args(["demo", "--duration", "10m", "--no-report"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn podscale demo");
    let pid = child.id();
    // Wait (bounded) until its first replica runs.
    let mut seen = false;
    for _ in 0..600 {
        if !replicas_of(pid).is_empty() {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen, "no replica started");
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(!status.success(), "an interrupted demo is not a success");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let left = replicas_of(pid);
    assert!(left.is_empty(), "replicas left behind: {left:?}");
    let scratch = std::env::temp_dir().join(format!("podscale-demo-{pid}"));
    assert!(!scratch.exists(), "{} left behind", scratch.display());
}

#[test]
fn a_duration_out_of_range_is_refused() {
    let out = podscale()
        .args(["demo", "--duration", "5s"])
        .output()
        .expect("podscale demo");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("must be between 20s and 1h"), "{stderr}");
}
