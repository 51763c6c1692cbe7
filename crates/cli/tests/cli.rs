//! Black-box tests of the `podscale` binary: exit codes, formats, and that bad input
//! gets one clear error naming file, position and field.
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn podscale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(args)
        .output()
        .expect("runs")
}

fn podscale_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("writes");
    child.wait_with_output().expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn explain_without_a_file_explains_the_embedded_example() {
    let out = podscale(&["explain"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("cpu resource utilization (percentage of request)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Decision: scale Deployment/inference-server from 4 to 6"),
        "{stdout}"
    );
    assert!(stdout.contains("SuccessfulRescale"), "{stdout}");
}

#[test]
fn explain_json_follows_the_scenario_spec() {
    let out = podscale(&[
        "explain",
        &repo("crates/core/tests/scenarios/examples/hz-007.json"),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["id"], "hz-007");
    assert_eq!(v["desiredReplicas"], 4);
    assert_eq!(v["metrics"][0]["current"]["averageUtilization"], 60);
    assert_eq!(v["status"]["conditions"][0]["reason"], "SucceededRescale");
    assert_eq!(v["statusChanged"], true);
    assert!(
        v["events"][0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("New size: 4; reason: "))
    );
}

#[test]
fn explain_yaml_output_and_arrays_keep_input_order() {
    let a = std::fs::read_to_string(repo("crates/core/tests/scenarios/examples/stab-002.json"))
        .expect("reads");
    let b = std::fs::read_to_string(repo("crates/core/tests/scenarios/examples/norm-024.json"))
        .expect("reads");
    let out = podscale_stdin(
        &["explain", "-", "-o", "json"],
        format!("[{a},{b}]").as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["id"], "stab-002");
    assert_eq!(v[1]["id"], "norm-024");
    assert_eq!(v[1]["desiredReplicas"], 5);
    let out = podscale(&["explain", "-o", "yaml"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("desiredReplicas: 6"));
}

#[test]
fn validate_accepts_the_seed_manifests() {
    let out = podscale(&[
        "validate",
        &repo("examples/manifests/inference-hpa-resource.yaml"),
        &repo("examples/manifests/inference-hpa-custom.yaml"),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn validate_reports_every_problem_with_its_position() {
    let manifest = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: web\n  minReplicas: 5\n  maxReplicas: 3\n  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 4000\n";
    let out = podscale_stdin(&["validate", "-"], manifest.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("-:11:16: spec.maxReplicas: "), "{stdout}");
    assert!(
        stdout.contains("-:14:35: spec.behavior.scaleDown.stabilizationWindowSeconds: "),
        "{stdout}"
    );
}

#[test]
fn malformed_input_is_one_clear_error_not_a_panic() {
    for (input, needle) in [
        ("now: [unclosed\n", "-:"),
        (
            "{\"now\": \"2024-01-01T00:00:00Z\", \"currentReplicas\": \"x\", \"hpa\": {}}",
            "currentReplicas",
        ),
        (
            "now: 2024-01-01T00:00:00Z\ncurrentReplicas: 1\nhpa:\n  spec:\n    maxReplicas: 99999999999\n",
            "hpa.spec.maxReplicas",
        ),
        ("\u{0}\u{1}\u{2}garbage", "-"),
    ] {
        let out = podscale_stdin(&["explain", "-"], input.as_bytes());
        assert_eq!(
            out.status.code(),
            Some(1),
            "input {input:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(stderr.contains(needle), "input {input:?}: {stderr}");
    }
}

#[test]
fn usage_errors_exit_with_2() {
    assert_eq!(podscale(&["explain", "-o", "xml"]).status.code(), Some(2));
    assert_eq!(podscale(&["validate"]).status.code(), Some(2));
    assert_eq!(podscale(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn missing_files_are_reported_by_name() {
    let out = podscale(&["explain", "/nonexistent/scenario.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("/nonexistent/scenario.yaml"));
}
