//! The model's invariants, pinned end to end through the public API: below capacity a
//! request takes its service time; Little's law holds for the queue; a pod's start-up
//! delay delays capacity; a 0 s pipeline and sync is an ideal controller; a run is a
//! function of its seed; every request has exactly one fate; bad input is refused with
//! one clear message.
use std::path::PathBuf;

use podscale_sim::replica::ServerParams;
use podscale_sim::series::Row;
use podscale_sim::{
    Error, Model, Oracle, Policy, RunOutput, SimConfig, TraceSource, Traffic, TrafficOptions,
    TrafficSpec,
};

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("podscale-sim-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writes");
    path
}

/// A manifest scaling `inference-server` on one Pods metric.
fn pods_policy(metric: &str, target: &str, min: i32, max: i32) -> Policy {
    let source = format!(
        "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: test, namespace: ai}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: inference-server}}
  minReplicas: {min}
  maxReplicas: {max}
  metrics:
    - type: Pods
      pods:
        metric: {{name: \"{metric}\"}}
        target: {{type: AverageValue, averageValue: \"{target}\"}}
"
    );
    Policy::from_source(&source, "test.yaml")
        .expect("valid manifest")
        .remove(0)
}

fn model(yaml: &str) -> Model {
    Model::load(Some(yaml), "model.yaml").expect("valid model")
}

fn run(policy: &Policy, traffic: &Traffic, cfg: &SimConfig) -> RunOutput {
    let oracle = Oracle::compute(traffic, cfg, &mut |_| {}).expect("oracle");
    podscale_sim::run(policy, traffic, cfg, oracle, &mut |_| {}).expect("runs")
}

fn pattern(spec: &str, duration: f64, seed: u64) -> Traffic {
    Traffic::prepare(
        &TrafficSpec::Pattern(spec.into()),
        TrafficOptions {
            duration: Some(duration),
            seed,
            ..TrafficOptions::default()
        },
    )
    .expect("valid traffic")
}

/// A per-request trace of identical requests with exponential gaps (xorshift, fixed seed).
fn poisson_trace(name: &str, rate: f64, duration: f64, input: u32, output: u32) -> Traffic {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut t = 0.0;
    let mut text = String::from("timestamp_seconds,input_tokens,output_tokens\n");
    while t < duration {
        text.push_str(&format!("{t:.6},{input},{output}\n"));
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        t += -u.ln() / rate;
    }
    let path = temp_file(name, &text);
    Traffic::prepare(
        &TrafficSpec::Trace(TraceSource::Path(path)),
        TrafficOptions::default(),
    )
    .expect("valid trace")
}

fn accounted(out: &RunOutput) {
    let s = &out.summary;
    assert_eq!(
        s.requests,
        s.completed + s.timed_out + s.aborted + s.rejected,
        "every request has exactly one fate: {s:?}"
    );
}

#[test]
fn below_capacity_latency_equals_service_time() {
    // One request every 30 s, each alone on its replica.
    let mut text = String::from("timestamp_seconds,input_tokens,output_tokens\n");
    for i in 0..60 {
        text.push_str(&format!("{},400,101\n", i * 30));
    }
    let traffic = Traffic::prepare(
        &TrafficSpec::Trace(TraceSource::Path(temp_file("sparse.csv", &text))),
        TrafficOptions::default(),
    )
    .expect("valid");
    let cfg = SimConfig::new(Model::default_model());
    let out = run(
        &pods_policy("vllm:num_requests_running", "4", 2, 2),
        &traffic,
        &cfg,
    );
    accounted(&out);
    // 400 prompt tokens at 4,000 tok/s, then 100 decode steps of 30 ms.
    let (ttft, e2e) = (0.1, 0.1 + 100.0 * 0.030);
    let s = &out.summary;
    assert_eq!(s.completed, 60);
    for got in [s.latency.p50, s.latency.p99] {
        let got = got.expect("completed requests");
        assert!(
            (got - e2e).abs() / e2e < 0.02,
            "latency {got} vs service time {e2e}"
        );
    }
    let got = s.ttft.p99.expect("completed requests");
    assert!((got - ttft).abs() / ttft < 0.02, "TTFT {got} vs {ttft}");
    assert_eq!(s.slo_attainment, Some(1.0));
    assert_eq!(s.mean_queue_wait, 0.0);
}

#[test]
fn littles_law_holds_for_the_queue() {
    // Four batch slots make a queue form well below the prefill bound; a long timeout
    // keeps every request in it until admitted.
    let cfg = SimConfig {
        step: Some(1.0),
        initial_replicas: Some(1),
        ..SimConfig::new(model(
            "server: {maxBatch: 4}\nservice: {queueTimeout: 10h}\n",
        ))
    };
    let traffic = poisson_trace("poisson.csv", 2.0, 7200.0, 200, 50);
    let out = run(
        &pods_policy("vllm:num_requests_running", "1000", 1, 1),
        &traffic,
        &cfg,
    );
    accounted(&out);
    assert_eq!(out.summary.timed_out, 0);
    let rows = &out.series.rows;
    let l = rows.iter().map(|r| r.waiting as f64).sum::<f64>() / rows.len() as f64;
    let lambda = out.summary.requests as f64 / out.summary.simulated_seconds;
    let w = out.summary.mean_queue_wait;
    assert!(
        l > 1.0,
        "the queue must be non-trivial for the test to mean something: L = {l}"
    );
    let lw = lambda * w;
    assert!(
        (l - lw).abs() / l < 0.05,
        "Little's law: L = {l:.3} but λW = {lambda:.3} × {w:.3} = {lw:.3}"
    );
}

fn first_row(rows: &[Row], from: f64, pred: impl Fn(&Row) -> bool) -> f64 {
    rows.iter()
        .find(|r| r.t >= from && pred(r))
        .map_or(f64::INFINITY, |r| r.t)
}

#[test]
fn a_pods_start_up_delay_delays_capacity() {
    let traffic = pattern("step:from=0.5,to=4,at=10m", 1800.0, 1);
    let policy = pods_policy("vllm:num_requests_running", "4", 1, 20);
    let mut results = Vec::new();
    for load in [20.0, 300.0] {
        let cfg = SimConfig {
            step: Some(1.0),
            initial_replicas: Some(1),
            ..SimConfig::new(model(&format!(
                "lifecycle:\n  scheduling: {{constant: 2s}}\n  containerStart: {{constant: 10s}}\n  \
                 modelLoad: {{constant: {load}s}}\n  readinessProbePeriod: 5s\n"
            )))
        };
        let out = run(&policy, &traffic, &cfg);
        accounted(&out);
        let rows = &out.series.rows;
        let decided = first_row(rows, 0.0, |r| r.desired > 1);
        let ready = first_row(rows, decided, |r| r.ready > 1);
        // Scheduling, container start and model load, then the probe (on a 5 s grid from
        // the container's start, so exact here).
        let want = 2.0 + 10.0 + load;
        assert!(
            (ready - decided - want).abs() <= 1.0,
            "load {load}s: scaled at {decided}, ready at {ready}, want {want}s later"
        );
        results.push(out.summary);
    }
    let (fast, slow) = (&results[0], &results[1]);
    assert!(
        slow.latency.p99 > fast.latency.p99 && slow.slo_attainment <= fast.slo_attainment,
        "slower start-up must hurt: {:?} vs {:?}",
        slow.latency,
        fast.latency
    );
}

#[test]
fn a_zero_second_pipeline_and_sync_is_an_ideal_controller() {
    let ideal = model(
        "controller: {syncPeriod: 0}\npipeline:\n  metricsServer: {resolution: 0}\n  \
         prometheus: {scrapeInterval: 0}\nlifecycle:\n  scheduling: {constant: 0}\n  \
         containerStart: {constant: 0}\n  modelLoad: {constant: 0}\n  readinessProbePeriod: 0\n",
    );
    let traffic = pattern("step:from=1,to=6,at=10m", 1200.0, 3);
    let policy = pods_policy("vllm:num_requests_running", "4", 1, 30);
    let cfg = SimConfig {
        step: Some(1.0),
        initial_replicas: Some(2),
        ..SimConfig::new(ideal)
    };
    let out = run(&policy, &traffic, &cfg);
    accounted(&out);
    // The controller read exactly the state of the moment it decided.
    let mut compared = 0;
    for r in &out.series.rows {
        // Rows at syncs (whole seconds): the last row is at the moment the last request
        // completed, after the last sync.
        let at_sync = r.t.fract() == 0.0;
        if at_sync && r.starting == 0 && r.draining == 0 && r.ready > 0 && r.metrics[0].is_finite()
        {
            let truth = r.running as f64 / f64::from(r.ready);
            assert!(
                (r.metrics[0] - truth).abs() <= 0.0011,
                "at {}: read {} but {} were running on {} pods",
                r.t,
                r.metrics[0],
                r.running,
                r.ready
            );
            compared += 1;
        }
    }
    assert!(compared > 1000, "{compared}");
    // It reacts to the step within a sync; the default pipeline cannot.
    let before = |rows: &[Row]| rows.iter().rfind(|r| r.t < 600.0).map_or(0, |r| r.desired);
    let ideal_up = first_row(&out.series.rows, 600.0, |r| {
        r.desired > before(&out.series.rows)
    });
    let default_cfg = SimConfig {
        step: Some(1.0),
        initial_replicas: Some(2),
        ..SimConfig::new(Model::default_model())
    };
    let slow = run(&policy, &traffic, &default_cfg);
    let slow_up = first_row(&slow.series.rows, 600.0, |r| {
        r.desired > before(&slow.series.rows)
    });
    assert!(
        ideal_up - 600.0 <= 3.0,
        "ideal controller scaled at {ideal_up}"
    );
    assert!(
        slow_up - 600.0 >= 7.0,
        "the default pipeline scaled at {slow_up}"
    );
    assert!(
        out.summary.latency.p99 <= slow.summary.latency.p99,
        "the ideal controller is no worse: {:?} vs {:?}",
        out.summary.latency,
        slow.summary.latency
    );
}

#[test]
fn a_run_is_a_function_of_its_seed() {
    let cfg = SimConfig::new(Model::default_model());
    let a = pattern("sine:mean=3,amplitude=2,period=30m", 1800.0, 7);
    let b = pattern("sine:mean=3,amplitude=2,period=30m", 1800.0, 7);
    let c = pattern("sine:mean=3,amplitude=2,period=30m", 1800.0, 8);
    let policy = Policy::embedded();
    let (x, y, z) = (
        run(&policy, &a, &cfg),
        run(&policy, &b, &cfg),
        run(&policy, &c, &cfg),
    );
    assert_eq!(x.summary, y.summary);
    // Compared as CSV text: the series holds NaN (no sample), which is not equal to itself.
    let csv = |o: &RunOutput| podscale_sim::series::to_csv(&[&o.series]);
    assert_eq!(csv(&x), csv(&y));
    assert_ne!(x.summary.requests, z.summary.requests);
}

#[test]
fn overload_times_out_and_scale_down_drains_without_losing_requests() {
    // Too much load for the replicas allowed: requests time out.
    let cfg = SimConfig {
        initial_replicas: Some(1),
        ..SimConfig::new(model("service: {queueTimeout: 20s}\n"))
    };
    let traffic = pattern("constant:rate=10", 900.0, 1);
    let out = run(
        &pods_policy("vllm:num_requests_waiting", "5", 1, 2),
        &traffic,
        &cfg,
    );
    accounted(&out);
    assert!(out.summary.timed_out > 0);
    assert!(out.summary.peak_queue > 0);
    // A spike then quiet: replicas are deleted while busy, and drain (or abort).
    let cfg = SimConfig {
        initial_replicas: Some(1),
        ..SimConfig::new(model(
            "lifecycle: {terminationGracePeriod: 5s}\ncontroller: {downscaleStabilization: 0}\n",
        ))
    };
    let traffic = pattern("spike:base=0.2,peak=6,at=5m,for=10m", 2400.0, 1);
    let out = run(
        &pods_policy("vllm:num_requests_running", "4", 1, 20),
        &traffic,
        &cfg,
    );
    accounted(&out);
    assert!(out.summary.scale_downs > 0, "{:?}", out.summary);
    assert!(out.summary.replica_seconds < out.summary.peak_replicas as f64 * 2400.0);
}

#[test]
fn bad_traces_name_the_file_and_line() {
    let prepare = |name: &str, text: &str| {
        let path = temp_file(name, text);
        let e = Traffic::prepare(
            &TrafficSpec::Trace(TraceSource::Path(path.clone())),
            TrafficOptions::default(),
        )
        .expect_err("bad trace");
        (path.display().to_string(), e.to_string())
    };
    let (file, e) = prepare(
        "malformed.csv",
        "timestamp_seconds,input_tokens,output_tokens\n0,1,2\n0.5,7,x\n",
    );
    assert_eq!(
        e,
        format!("{file}:3: output_tokens: not a whole number of tokens: `x`")
    );
    let (file, e) = prepare("unsorted.csv", "timestamp_seconds\n0\n2\n1\n");
    assert!(
        e.starts_with(&format!("{file}:4: timestamp_seconds 1 is before")),
        "{e}"
    );
    let (file, e) = prepare("nocolumn.csv", "ts,input_tokens,output_tokens\n0,1,2\n");
    assert!(
        e.starts_with(&format!("{file}:1: missing column `timestamp_seconds`")),
        "{e}"
    );
}

#[test]
fn manifests_the_validator_rejects_are_refused_with_its_messages() {
    let bad = podscale_sim::policy::EMBEDDED_MANIFEST
        .replace("averageUtilization: 70", "averageUtilization: 0");
    let e = Policy::from_source(&bad, "hpa.yaml").expect_err("invalid");
    assert!(matches!(e, Error::InvalidManifest { .. }));
    let text = e.to_string();
    assert!(
        text.contains(
            "hpa.yaml:19:31: spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"
        ),
        "{text}"
    );
}

#[test]
fn a_metric_the_model_does_not_produce_is_refused_before_running() {
    let cfg = SimConfig::new(Model::default_model());
    let traffic = pattern("constant:rate=1", 60.0, 1);
    let oracle = Oracle::default();
    let policy = pods_policy("tokens_in_flight", "4", 1, 3);
    let e = podscale_sim::run(&policy, &traffic, &cfg, oracle, &mut |_| {}).expect_err("unmapped");
    let text = e.to_string();
    assert!(
        text.contains("the Pods metric `tokens_in_flight` is not simulated"),
        "{text}"
    );
    assert!(text.contains("vllm:num_requests_waiting"), "{text}");
}

#[test]
fn a_run_lasts_until_its_last_request_completes_and_pays_for_it() {
    // A burst: 40 requests in the first second, each 1,000 decode steps (30 s or more).
    let mut text = String::from("timestamp_seconds,input_tokens,output_tokens\n");
    for i in 0..40 {
        text.push_str(&format!("{},400,1001\n", f64::from(i) / 40.0));
    }
    let traffic = Traffic::prepare(
        &TrafficSpec::Trace(TraceSource::Path(temp_file("burst.csv", &text))),
        TrafficOptions::default(),
    )
    .expect("valid");
    assert_eq!(traffic.horizon, 1.0);
    let cfg = SimConfig {
        initial_replicas: Some(2),
        ..SimConfig::new(Model::default_model())
    };
    let out = run(
        &pods_policy("vllm:num_requests_running", "40", 2, 2),
        &traffic,
        &cfg,
    );
    accounted(&out);
    let s = &out.summary;
    assert_eq!(s.completed, 40, "{s:?}");
    // Every request took 1,000 steps of at least 30 ms: the run went on past them.
    let slowest = s.latency.p99.expect("completed");
    assert!(slowest >= 30.0, "{s:?}");
    assert!(s.simulated_seconds >= slowest, "{s:?}");
    assert!(s.simulated_seconds < traffic.horizon + podscale_sim::DRAIN_LIMIT);
    // Two replicas the whole time, drain included, and the series reaches the end.
    assert!(
        (s.replica_seconds - 2.0 * s.simulated_seconds).abs() < 0.01,
        "{s:?}"
    );
    let last = out.series.rows.last().expect("rows");
    assert!(
        (last.t - s.simulated_seconds).abs() < 1e-3,
        "{} vs {s:?}",
        last.t
    );
    // The oracle is the traffic's, not stretched by the drain: the policy pays more.
    assert!(s.oracle_ratio > 1.0, "{s:?}");
}

#[test]
fn the_request_limit_is_checked_while_running_too() {
    let traffic = pattern("constant:rate=5", 600.0, 1);
    let cfg = SimConfig {
        limits: podscale_sim::Limits {
            max_requests: 1000,
            ..podscale_sim::Limits::DEFAULT
        },
        ..SimConfig::new(Model::default_model())
    };
    let oracle = Oracle::calibrate(
        &ServerParams::from_model(&cfg.model),
        &traffic.mix,
        &cfg.slo,
        cfg.seed,
    );
    let err = podscale_sim::run(&Policy::embedded(), &traffic, &cfg, oracle, &mut |_| {})
        .expect_err("about 3,000 requests");
    assert!(
        matches!(
            err,
            Error::Limit {
                flag: "--max-requests",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(
            "the traffic generated more than 1,000 requests, more than the limit of 1,000"
        ),
        "{err}"
    );
    // And before running, from the expected count.
    let err = Traffic::prepare(
        &TrafficSpec::Pattern("constant:rate=5".into()),
        TrafficOptions {
            duration: Some(600.0),
            limits: cfg.limits,
            ..TrafficOptions::default()
        },
    )
    .expect_err("3,000 expected");
    assert!(err.to_string().contains("about 3,000 requests"), "{err}");
}

#[test]
fn an_io_error_prints_its_cause_once() {
    let err = Policy::load("/nonexistent/hpa.yaml").expect_err("no file");
    assert_eq!(err.to_string(), "cannot read /nonexistent/hpa.yaml");
    let source = std::error::Error::source(&err).expect("the OS error is the source");
    assert!(source.to_string().contains("No such file"), "{source}");
}
