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
        "infeasible",
        "oracleSloAttainment",
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
    // The oracle meets the goal it claims.
    assert!(
        v["oracleSloAttainment"].as_f64().is_some_and(|a| a >= 0.99),
        "{v}"
    );
}

#[test]
fn a_length_aware_slo_is_accepted_and_reported() {
    let mut args = vec![
        "simulate",
        "--slo",
        "ttft=1s+0.2ms/token,tpot=80ms,e2e=60s",
        "-o",
        "json",
    ];
    args.extend(SHORT);
    let out = podscale(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["slo"]["ttft"], 1.0);
    assert_eq!(v["slo"]["tpot"], 0.08);
    assert_eq!(v["slo"]["e2e"], 60.0);
    assert!(v["infeasible"].is_u64(), "{v}");
    let mut args = vec!["simulate", "--slo", "ttft=1s+0.2ms/token,tpot=80ms"];
    args.extend(SHORT);
    let stdout = text(&podscale(&args).stdout);
    assert!(
        stdout.contains("TTFT ≤ 1s + 0.2ms/token, TPOT ≤ 80ms, latency ≤ 30s"),
        "{stdout}"
    );
}

#[test]
fn a_bad_slo_names_the_offending_character() {
    let (code, stderr) = refused(&["simulate", "--slo", "ttft=2s,tpot=80x"]);
    assert_eq!(code, Some(2), "a usage error");
    assert!(
        stderr.contains("at character 16 of `ttft=2s,tpot=80x`: unknown unit `x`"),
        "{stderr}"
    );
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

/// Runs `podscale` with `stdin` as standard input.
fn podscale_stdin(args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_podscale"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let mut input = child.stdin.take().expect("stdin");
    // The command may refuse before reading it all: a broken pipe is not this test's concern.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("runs")
}

/// Runs `podscale` under an address-space limit (KiB), as `ulimit -v` sets it.
fn podscale_limited(kib: u64, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_podscale"))
        .args(args)
        .output()
        .expect("runs sh")
}

/// Exit code and stderr; asserts no panic.
fn refused(args: &[&str]) -> (Option<i32>, String) {
    let out = podscale(args);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    (out.status.code(), stderr)
}

#[test]
fn flags_out_of_range_are_refused_with_their_range() {
    for (args, code, want) in [
        (vec!["--step", "0"], 2, "the step must be at least 1ms"),
        (
            vec!["--arrivals", "gamma:1e5"],
            2,
            "coefficient of variation must be from 0.01 to 10, found 100000",
        ),
        (vec!["--arrivals", "gamma:1e-300"], 2, "found 1e-300"),
        (vec!["--arrivals", "gamma:1e300"], 2, "found 1e300"),
        (
            vec!["--pattern", "spike:base=1,peak=1e12"],
            1,
            "peak must be from 0 to 1,000,000 requests per second, found 1e12",
        ),
        (
            vec!["--pattern", "constant:rate=1e308"],
            1,
            "rate must be from 0 to 1,000,000",
        ),
        (
            vec!["--time-scale", "1e300"],
            1,
            "--time-scale must be from 0.001 to 1000, found 1e300",
        ),
        (
            vec!["--loop", "4294967295"],
            1,
            "--loop must be from 1 to 100,000, found 4294967295",
        ),
        (vec!["--duration", &"9".repeat(400)], 2, "invalid duration"),
        (vec!["--sync-period", "1ns"], 2, "invalid duration"),
        (
            vec!["--sync-period", "1ms"],
            1,
            "controller.syncPeriod (--sync-period) must be 0 or from 1s to 1h, found 1ms",
        ),
    ] {
        let mut all = vec!["simulate"];
        all.extend(&args);
        let (got, stderr) = refused(&all);
        assert_eq!(got, Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {want:?} not in {stderr}");
    }
    let huge_days = format!("{}d", "9".repeat(400));
    let (code, stderr) = refused(&["simulate", "--duration", &huge_days]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("too large"), "{stderr}");
}

#[test]
fn a_run_past_a_limit_is_refused_with_the_numbers_and_the_flag_that_raises_it() {
    let (code, stderr) = refused(&[
        "simulate",
        "--pattern",
        "constant:rate=1000",
        "--duration",
        "1h",
        "--max-requests",
        "1000000",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.trim(),
        "error: the traffic has about 3,600,000 requests, more than the limit of 1,000,000; \
         shorten it with --duration, raise the limit with --max-requests"
    );

    let (code, stderr) = refused(&["simulate", "--step", "1ms"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(
            "a series step of 1ms over 58m22s is 3,502,000 rows, more than the limit of 200,000"
        ) && stderr.contains("--max-series-rows"),
        "{stderr}"
    );

    let (code, stderr) = refused(&[
        "simulate",
        "--pattern",
        "constant:rate=1",
        "--duration",
        "40d",
    ]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("the traffic lasts 40d, more than the limit of 31d")
            && stderr.contains("--max-simulated-time"),
        "{stderr}"
    );

    let path = temp("big-hpa.yaml");
    let source = std::fs::read_to_string(repo("examples/manifests/inference-hpa-resource.yaml"))
        .expect("reads")
        .replace("maxReplicas: 20", "maxReplicas: 1000000");
    std::fs::write(&path, source).expect("writes");
    let p = path.display().to_string();
    let (code, stderr) = refused(&["simulate", &p]);
    assert_eq!(code, Some(1));
    assert!(
        stderr
            .contains("maxReplicas is 1,000,000, more than the limit of 10,000 replicas simulated")
            && stderr.contains("--max-replicas-simulated"),
        "{stderr}"
    );
    // Raised, the same run goes.
    let mut args = vec![
        "simulate",
        &p,
        "--max-replicas-simulated",
        "1000000",
        "-o",
        "json",
    ];
    args.extend(SHORT);
    let out = podscale(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn initial_replicas_above_max_replicas_start_at_max_replicas() {
    let mut args = vec!["simulate", "--initial-replicas", "1000000", "-o", "json"];
    args.extend(SHORT);
    let out = podscale(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["peakReplicas"], 20, "{v}");
    assert!(
        text(&out.stderr).contains("--initial-replicas 1000000 is above maxReplicas 20"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_file_without_line_breaks_is_refused_within_a_memory_limit() {
    // 300 MB address space: enough for the binary, not for /dev/zero read whole.
    let out = podscale_limited(300 * 1024, &["simulate", "--trace", "/dev/zero"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/dev/zero:1: line longer than 4096 bytes: not a traffic file"),
        "{stderr}"
    );
    let out = podscale_limited(300 * 1024, &["simulate", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("larger than 16 MiB"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn traces_far_from_zero_are_read_relative_to_their_first_row_or_refused() {
    let epoch = temp("epoch.csv");
    std::fs::write(
        &epoch,
        "timestamp_seconds,input_tokens,output_tokens\n1700000000.5,100,50\n1700000010,200,20\n\
         1700003600,100,10\n",
    )
    .expect("writes");
    let p = epoch.display().to_string();
    let out = podscale(&["simulate", "--trace", &p]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("(3 requests over 1h; times relative to the first row's 1700000000.5 s)"),
        "{}",
        text(&out.stdout)
    );
    let out = podscale(&["simulate", "--trace", &p, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let seconds = v["simulatedSeconds"].as_f64().expect("number");
    assert!((3600.0..3700.0).contains(&seconds), "{v}");

    let far = temp("far.csv");
    std::fs::write(&far, "timestamp_seconds\n0\n1e300\n").expect("writes");
    let (code, stderr) = refused(&["simulate", "--trace", &far.display().to_string()]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("the traffic lasts 1e300s, more than the limit of 31d"),
        "{stderr}"
    );

    let envelope = temp("fast-envelope.csv");
    std::fs::write(
        &envelope,
        "timestamp_seconds,requests_per_second\n0,1e9\n600,1\n",
    )
    .expect("writes");
    let e = envelope.display().to_string();
    let (code, stderr) = refused(&["simulate", "--trace", &e]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.trim(),
        format!(
            "error: {e}:2: requests_per_second: must be from 0 to 1,000,000 requests per \
             second, found `1e9`"
        )
    );
}

#[test]
fn no_requests_is_no_slo_attainment_not_100_percent() {
    let out = podscale(&[
        "simulate",
        "--pattern",
        "constant:rate=0",
        "--duration",
        "10m",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("n/a (no requests)"), "{stdout}");
    assert!(!stdout.contains("100%"), "{stdout}");
    let out = podscale(&[
        "simulate",
        "--pattern",
        "constant:rate=0",
        "--duration",
        "10m",
        "-o",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["sloAttainment"].is_null(), "{v}");
}

#[test]
fn an_os_error_is_printed_once() {
    let (code, stderr) = refused(&["simulate", "/nonexistent/hpa.yaml"]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
    let (code, stderr) = refused(&["simulate", "--trace", "/nonexistent/t.csv"]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
    let (code, stderr) = refused(&["simulate", "--model", "/nonexistent/m.yaml"]);
    assert_eq!(code, Some(1));
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
}

#[test]
fn a_dash_reads_the_trace_the_manifest_or_the_model_from_standard_input() {
    let trace = "timestamp_seconds,input_tokens,output_tokens\n0,100,50\n1,200,20\n2,100,10\n";
    let out = podscale_stdin(
        &["simulate", "--trace", "-", "-o", "json"],
        trace.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["requests"], 3, "{v}");

    let manifest =
        std::fs::read(repo("examples/manifests/inference-hpa-custom.yaml")).expect("reads");
    let mut args = vec!["simulate", "-", "-o", "json"];
    args.extend(SHORT);
    let out = podscale_stdin(&args, &manifest);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["policy"], "stdin", "{v}");
    assert_eq!(v["manifest"], "stdin", "{v}");

    let mut args = vec!["simulate", "--model", "-", "-o", "json"];
    args.extend(SHORT);
    let out = podscale_stdin(&args, b"server: {maxBatch: 0}\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("stdin: server.maxBatch must be at least 1"),
        "{}",
        text(&out.stderr)
    );

    // Standard input is read whole (it is replayed per policy), but only so far.
    let zeros = vec![0u8; 65 << 20];
    let out = podscale_stdin(&["simulate", "--trace", "-"], &zeros);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("standard input is larger than 64 MiB"),
        "{}",
        text(&out.stderr)
    );

    let out = podscale_stdin(&["simulate", "-", "--trace", "-"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("standard input can be read once"),
        "{}",
        text(&out.stderr)
    );
}
