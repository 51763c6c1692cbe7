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

/// A temporary file under the target directory (removed when dropped).
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!("{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("writes");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn validate_refuses_an_empty_file_like_kubectl_apply() {
    for (name, contents) in [
        ("empty.yaml", ""),
        ("comments.yaml", "# nothing here\n---\n"),
    ] {
        let file = TempFile::new(name, contents.as_bytes());
        let out = podscale(&["validate", file.path()]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "error: {}: no objects passed to validate",
                file.path()
            )),
            "{stderr}"
        );
    }
    let out = podscale_stdin(&["validate", "-"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no objects passed to validate"));
}

/// The embedded example scenario as JSON, `n` times in one array.
fn example_array(n: usize) -> String {
    let example = include_str!("../src/example-scenario.yaml");
    let docs = podscale_manifest::parse_documents(example, "example").expect("parses");
    let one = serde_json::to_string_pretty(&docs[0].value).expect("serializes");
    format!("[\n{}\n]\n", vec![one; n].join(",\n"))
}

#[test]
fn explain_reads_a_day_of_captured_decisions() {
    // 3 000 scenarios (about 15 MB of JSON): more nodes than the old fixed budget of
    // 250 000 that refused such files.
    let file = TempFile::new("day.json", example_array(3000).as_bytes());
    let out = podscale(&["explain", "-o", "json", file.path()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let outputs: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(outputs.as_array().map(Vec::len), Some(3000));
    let out = podscale(&["validate", file.path()]);
    // Scenarios are not HPAs: skipped, but read without a size error.
    assert!(
        !text(&out.stderr).contains("expands to"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn input_over_the_size_limit_is_refused_with_the_variable_to_raise_it() {
    let file = TempFile::new("big.json", example_array(3).as_bytes());
    let run = |limit: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_podscale"))
            .args(args)
            .env("PODSCALE_MAX_INPUT_BYTES", limit)
            .output()
            .expect("runs")
    };
    for args in [
        &["explain", file.path()][..],
        &["validate", file.path()][..],
    ] {
        let out = run("1000", args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{}: input larger than 1000 bytes (set PODSCALE_MAX_INPUT_BYTES to raise the limit)",
                file.path()
            )),
            "{stderr}"
        );
        assert!(run("100000", args).status.code() != Some(101));
    }
    assert!(run("100000", &["explain", file.path()]).status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(["explain", "-"])
        .env("PODSCALE_MAX_INPUT_BYTES", "1000")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut stdin = child.stdin.take().expect("stdin");
    // More than the limit; podscale stops reading, so a write may see a closed pipe.
    let _ = stdin.write_all(&vec![b' '; 100_000]);
    drop(stdin);
    let out = child.wait_with_output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("standard input: input larger than 1000 bytes"),
        "{}",
        text(&out.stderr)
    );
    let out = run("lots", &["explain", file.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("PODSCALE_MAX_INPUT_BYTES=\"lots\": expected a positive number of bytes"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_huge_invalid_value_is_cut_in_the_diagnostic() {
    let huge = "9".repeat(5 << 20);
    let manifest = format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: web\nspec:\n  \
         scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}\n  maxReplicas: 3\n  \
         minReplicas: \"{huge}\"\n"
    );
    let file = TempFile::new("huge-value.yaml", manifest.as_bytes());
    let out = podscale(&["validate", file.path()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.len() < 1000, "{} bytes of output", stdout.len());
    assert!(stdout.contains("(5242880 bytes)"), "{stdout}");
    let out = podscale(&["explain", file.path()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.len() < 2000,
        "{} bytes of error",
        out.stderr.len()
    );
}

#[test]
fn aliases_of_a_large_string_are_refused_quickly() {
    let mut bomb = format!("big: &big \"{}\"\nuses:\n", "x".repeat(1 << 20));
    bomb.push_str(&"- *big\n".repeat(2000));
    let file = TempFile::new("bomb.yaml", bomb.as_bytes());
    for command in ["validate", "explain"] {
        let out = podscale(&[command, file.path()]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            all.contains("copy more than 16777216 bytes of text"),
            "{all}"
        );
    }
}

/// `podscale adapter convert` prints a podscale.yaml that `podscale adapter` itself
/// reads back; `--adapter-config` without a Prometheus says what to give.
#[test]
fn adapter_convert_prints_a_config_and_adapter_config_needs_a_prometheus() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../metrics/tests/fixtures/prometheus-adapter/vllm-pods-rules.yaml"
    );
    let out = podscale(&["adapter", "convert", fixture]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    assert!(
        yaml.contains(
            "query: 'sum(vllm:num_requests_waiting{namespace=\"{{namespace}}\",pod=~\"{{pods}}\",{{selector}}}) by (pod)'"
        ),
        "{yaml}"
    );
    assert!(
        yaml.contains("name: 'vllm_requests_waiting_by_model'"),
        "{yaml}"
    );
    assert!(text(&out.stderr).contains("2 metrics converted"));

    let json = podscale(&["adapter", "convert", fixture, "-o", "json"]);
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(v["metrics"].as_array().map(Vec::len), Some(2));

    let serve = podscale(&["adapter", "--adapter-config", fixture, "--secure-port", "0"]);
    assert!(!serve.status.success());
    assert!(
        text(&serve.stderr).contains("give --prometheus-url URL or prometheus.url in --config"),
        "{}",
        text(&serve.stderr)
    );

    // Flags of the server are not flags of `convert`.
    let mixed = podscale(&["adapter", "--secure-port", "1", "convert", fixture]);
    assert!(!mixed.status.success());
}
