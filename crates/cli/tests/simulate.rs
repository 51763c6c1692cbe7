//! Black-box tests of `podscale simulate`: the first run a newcomer makes, the JSON
//! summary's keys, comparing both seed manifests, the series and report files, and one
//! clear error for bad input.
use std::path::PathBuf;
use std::process::{Command, Output};

fn podscale(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(args)
        .output()
        .expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("podscale-cli-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A short synthetic load keeps these tests fast.
const SHORT: [&str; 4] = ["--pattern", "step:from=1,to=4,at=10m", "--duration", "20m"];

#[test]
fn simulate_without_arguments_runs_the_seed_policy_on_the_embedded_trace() {
    let out = podscale(&["simulate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for want in [
        "azure_llm_2023_conv.csv (embedded) (19,366 requests",
        "inference-hpa-resource",
        "latency p50/p95/p99",
        "SLO attainment",
        "oracle replica-hours",
        "replicas (started",
        "oracle  ",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    // No progress bar when stderr is not a terminal.
    assert!(!text(&out.stderr).contains('['), "{}", text(&out.stderr));
}

#[test]
fn json_output_has_the_documented_keys() {
    let mut args = vec!["simulate", "-o", "json"];
    args.extend(SHORT);
    let out = podscale(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for key in [
        "requests",
        "completed",
        "timedOut",
        "latency",
        "ttft",
        "sloAttainment",
        "replicaSeconds",
        "oracleReplicaSeconds",
        "scaleUps",
        "scaleDowns",
        "flaps",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    for p in ["p50", "p95", "p99"] {
        assert!(v["latency"][p].is_number(), "{v}");
        assert!(v["ttft"][p].is_number(), "{v}");
    }
    assert!(v["requests"].as_u64().is_some_and(|n| n > 2000), "{v}");
    assert!(v["replicaSeconds"].as_f64().is_some_and(|s| s > 0.0), "{v}");
}

#[test]
fn compare_runs_both_seed_manifests_on_the_same_traffic() {
    let resource = repo("examples/manifests/inference-hpa-resource.yaml");
    let custom = repo("examples/manifests/inference-hpa-custom.yaml");
    let mut args = vec!["simulate", "--compare", &resource, &custom, "-o", "json"];
    args.extend(SHORT);
    let out = podscale(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let runs = v.as_array().expect("an array when comparing");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["policy"], "inference-hpa-resource");
    assert_eq!(runs[1]["policy"], "inference-hpa-custom");
    assert_eq!(runs[0]["requests"], runs[1]["requests"], "same traffic");
    assert_eq!(
        runs[0]["oracleReplicaSeconds"],
        runs[1]["oracleReplicaSeconds"]
    );

    let mut args = vec!["simulate", "--compare", &resource, &custom];
    args.extend(SHORT);
    let out = podscale(&args);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("inference-hpa-resource") && stdout.contains("inference-hpa-custom"),
        "{stdout}"
    );
}

#[test]
fn series_and_report_files_are_written() {
    let csv = temp("series.csv");
    let html = temp("report.html");
    let (csv_s, html_s) = (csv.display().to_string(), html.display().to_string());
    let custom = repo("examples/manifests/inference-hpa-custom.yaml");
    let resource = repo("examples/manifests/inference-hpa-resource.yaml");
    let mut args = vec![
        "simulate", &resource, &custom, "--series", &csv_s, "--report", &html_s,
    ];
    args.extend(SHORT);
    let out = podscale(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let series = std::fs::read_to_string(&csv).expect("series written");
    let header = series.lines().next().expect("header");
    for col in [
        "time_seconds,policy,arrivals",
        "replicas_desired,replicas_ready,replicas_starting",
        "oracle_replicas",
        "latency_p95",
        "cpu_utilization,cpu_utilization_target",
        "inference_queue_depth,inference_queue_depth_target",
        "gpu_utilization_avg",
    ] {
        assert!(header.contains(col), "{col} not in {header}");
    }
    assert!(series.lines().any(|l| l.contains(",inference-hpa-custom,")));
    let report = std::fs::read_to_string(&html).expect("report written");
    assert!(report.starts_with("<!DOCTYPE html>"));
    assert!(
        report.matches("<svg").count() >= 6,
        "charts: load, replicas, metrics, latency, queue"
    );
    assert!(report.contains("inference-hpa-custom"));
    assert!(!report.contains("src=\"http"), "self-contained");
    // Files asked for: no sparklines on the terminal.
    assert!(!text(&out.stdout).contains("replicas (started"));
}

#[test]
fn a_bad_trace_line_is_one_error_naming_file_and_line() {
    let path = temp("bad.csv");
    std::fs::write(
        &path,
        "timestamp_seconds,input_tokens,output_tokens\n0,1,2\n1,x,2\n",
    )
    .expect("writes");
    let p = path.display().to_string();
    let out = podscale(&["simulate", "--trace", &p]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!("error: {p}:3: input_tokens: not a whole number of tokens: `x`")
    );
}

#[test]
fn an_invalid_manifest_gets_the_validate_messages() {
    let path = temp("bad-hpa.yaml");
    let source = std::fs::read_to_string(repo("examples/manifests/inference-hpa-resource.yaml"))
        .expect("reads")
        .replace("minReplicas: 2", "minReplicas: 30");
    std::fs::write(&path, source).expect("writes");
    let p = path.display().to_string();
    let out = podscale(&["simulate", &p]);
    assert_eq!(out.status.code(), Some(1));
    let validate = podscale(&["validate", &p]);
    let stderr = text(&out.stderr);
    for line in text(&validate.stdout).lines() {
        assert!(stderr.contains(line), "{line:?} not in {stderr}");
    }
    assert!(stderr.contains("spec.maxReplicas"), "{stderr}");
}

#[test]
fn help_teaches_with_examples_and_the_model_prints() {
    let out = podscale(&["simulate", "--help"]);
    let help = text(&out.stdout);
    assert!(help.contains("Examples:"), "{help}");
    assert!(help.contains("podscale simulate --compare"), "{help}");
    assert!(help.contains("--time-scale"), "{help}");
    let out = podscale(&["simulate", "--print-model"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("kvCacheTokens: 32768"));
}
