//! The oracle is a real bound: it meets the goal it claims when its schedule is
//! replayed, no fixed replica count meeting the goal costs less, on Poisson traffic it
//! is close to the smallest such fixed count, a run's warm start is its first window,
//! and requests that cannot meet the SLO at all are counted apart.
use std::path::PathBuf;

use podscale_sim::{
    Model, Oracle, Policy, RunOutput, SimConfig, Slo, TraceSource, Traffic, TrafficOptions,
    TrafficSpec,
};

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("podscale-oracle-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writes");
    path
}

/// A manifest on the queue depth, `min..=max` replicas.
fn policy(min: i32, max: i32) -> Policy {
    let source = format!(
        "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: fixed, namespace: ai}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: inference-server}}
  minReplicas: {min}
  maxReplicas: {max}
  metrics:
    - type: Pods
      pods:
        metric: {{name: inference_queue_depth}}
        target: {{type: AverageValue, averageValue: \"2\"}}
"
    );
    Policy::from_source(&source, "fixed.yaml")
        .expect("valid manifest")
        .remove(0)
}

/// Replicas of four batch slots: a few requests per second need several replicas.
fn small_model() -> Model {
    Model::load(
        Some("server:\n  maxBatch: 4\n  decodeStep:\n    1: 30ms\n    4: 40ms\n"),
        "small.yaml",
    )
    .expect("valid model")
}

/// Poisson arrivals of same-sized requests, as a trace.
fn poisson(name: &str, rate: f64, duration: f64, input: u32, output: u32, seed: u64) -> Traffic {
    let mut text = String::from("timestamp_seconds,input_tokens,output_tokens\n");
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut t = 0.0;
    while t < duration {
        text.push_str(&format!("{t:.6},{input},{output}\n"));
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let u = ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        t += -u.ln() / rate;
    }
    Traffic::prepare(
        &TrafficSpec::Trace(TraceSource::Path(temp_file(name, &text))),
        TrafficOptions::default(),
    )
    .expect("valid trace")
}

fn run(policy: &Policy, traffic: &Traffic, cfg: &SimConfig, oracle: &Oracle) -> RunOutput {
    podscale_sim::run(policy, traffic, cfg, oracle.clone(), &mut |_| {}).expect("runs")
}

/// The smallest fixed replica count whose run meets the goal.
fn smallest_fixed(traffic: &Traffic, cfg: &SimConfig, oracle: &Oracle) -> u32 {
    (1..=40)
        .find(|&n| {
            let cfg = SimConfig {
                initial_replicas: Some(n),
                ..cfg.clone()
            };
            let s = run(&policy(n as i32, n as i32), traffic, &cfg, oracle).summary;
            assert_eq!(s.peak_replicas, n, "a fixed count stays fixed");
            s.slo_attainment.expect("requests") >= cfg.slo.goal
        })
        .expect("some fixed count meets the goal")
}

#[test]
fn the_oracle_meets_its_goal_and_no_fixed_count_meeting_it_costs_less() {
    let traffic = poisson("poisson.csv", 5.0, 1200.0, 400, 100, 7);
    let cfg = SimConfig::new(small_model());
    let oracle = Oracle::compute(&traffic, &cfg, &mut |_| {}).expect("oracle");
    assert!(
        oracle.attainment.expect("feasible requests") >= cfg.slo.goal,
        "{oracle:?}"
    );
    assert_eq!(oracle.schedule.len(), 20, "one count per minute");
    assert_eq!(oracle.infeasible, 0);
    let n = smallest_fixed(&traffic, &cfg, &oracle);
    let fixed_cost = f64::from(n) * traffic.horizon;
    assert!(
        oracle.replica_seconds <= fixed_cost,
        "oracle {} > {n} fixed replicas {fixed_cost}",
        oracle.replica_seconds
    );
    // Poisson traffic at a constant rate: the oracle is close to the fixed count that
    // queueing theory (Erlang) sizes, each minute meeting the goal on its own.
    let mean = oracle.replica_seconds / traffic.horizon;
    assert!(
        mean >= f64::from(n) - 1.5 && mean <= f64::from(n) + 0.5,
        "oracle mean {mean} vs fixed {n}: {:?}",
        oracle.schedule
    );
    // A policy run reports the same oracle.
    let s = run(&policy(1, 40), &traffic, &cfg, &oracle).summary;
    assert_eq!(
        s.oracle_slo_attainment,
        oracle.attainment.map(|a| (a * 1e4).round() / 1e4)
    );
    assert!(s.oracle_ratio > 0.0);
}

#[test]
fn the_oracle_follows_a_burst_and_still_meets_its_goal() {
    let traffic = Traffic::prepare(
        &TrafficSpec::Pattern("spike:base=1,peak=8,at=5m,for=4m".into()),
        TrafficOptions {
            duration: Some(900.0),
            seed: 3,
            ..TrafficOptions::default()
        },
    )
    .expect("valid");
    let cfg = SimConfig::new(small_model());
    let oracle = Oracle::compute(&traffic, &cfg, &mut |_| {}).expect("oracle");
    assert!(
        oracle.attainment.expect("requests") >= cfg.slo.goal,
        "{oracle:?}"
    );
    let before = oracle.replicas_at(60.0);
    let during = oracle.replicas_at(420.0);
    let after = oracle.replicas_at(840.0);
    assert!(during > before && during > after, "{:?}", oracle.schedule);
}

#[test]
fn the_warm_start_is_the_oracles_first_window_within_the_policys_bounds() {
    let traffic = poisson("warm.csv", 5.0, 600.0, 400, 100, 11);
    let cfg = SimConfig::new(small_model());
    let oracle = Oracle::compute(&traffic, &cfg, &mut |_| {}).expect("oracle");
    let first = oracle.replicas_at(0.0);
    assert!(first >= 2, "{:?}", oracle.schedule);
    let ready_at_start = |p: &Policy| {
        let out = run(p, &traffic, &cfg, &oracle);
        out.series.rows[0].ready
    };
    assert_eq!(ready_at_start(&policy(1, 40)), first);
    assert_eq!(ready_at_start(&policy(1, first as i32 - 1)), first - 1);
    assert_eq!(ready_at_start(&policy(first as i32 + 3, 40)), first + 3);
}

#[test]
fn requests_that_cannot_meet_the_slo_alone_are_infeasible_not_misses() {
    // Light traffic: 400-token prompts (0.1 s of prefill), 12,000-token ones (3 s, over
    // a 2 s TTFT bound) and 40,000-token ones (beyond the 32,768-token KV cache).
    let mut text = String::from("timestamp_seconds,input_tokens,output_tokens\n");
    for i in 0..90 {
        let input = match i % 3 {
            0 => 400,
            1 => 12_000,
            _ => 40_000,
        };
        text.push_str(&format!("{},{input},20\n", i * 10));
    }
    let traffic = Traffic::prepare(
        &TrafficSpec::Trace(TraceSource::Path(temp_file("sizes.csv", &text))),
        TrafficOptions::default(),
    )
    .expect("valid");
    let mut cfg = SimConfig::new(Model::default_model());
    let oracle = Oracle::compute(&traffic, &cfg, &mut |_| {}).expect("oracle");
    assert_eq!(oracle.infeasible, 60);
    let s = run(&policy(2, 4), &traffic, &cfg, &oracle).summary;
    assert_eq!((s.infeasible, s.rejected), (60, 30));
    assert_eq!(s.slo_attainment, Some(1.0), "over the feasible requests");
    assert_eq!(s.oracle_slo_attainment, Some(1.0));
    // A TTFT bound growing with the prompt makes the long prompts feasible.
    cfg.slo = Slo::parse("ttft=1s+0.2ms/token,e2e=30s").expect("valid");
    let oracle = Oracle::compute(&traffic, &cfg, &mut |_| {}).expect("oracle");
    let s = run(&policy(2, 4), &traffic, &cfg, &oracle).summary;
    assert_eq!((s.infeasible, s.rejected), (30, 30));
    assert_eq!(s.slo_attainment, Some(1.0));
    // A TPOT bound below the fastest decode step makes every multi-token request
    // infeasible: none is a miss, and there is no attainment to speak of.
    cfg.slo = Slo::parse("ttft=2s,tpot=10ms").expect("valid");
    let oracle = Oracle::compute(&traffic, &cfg, &mut |_| {}).expect("oracle");
    assert_eq!(oracle.attainment, None);
    let s = run(&policy(2, 4), &traffic, &cfg, &oracle).summary;
    assert_eq!((s.infeasible, s.slo_attainment), (90, None));
}

#[test]
fn a_computed_oracle_is_a_function_of_its_inputs() {
    let traffic = poisson("same.csv", 3.0, 300.0, 400, 100, 5);
    let cfg = SimConfig::new(small_model());
    let a = Oracle::compute(&traffic, &cfg, &mut |_| {}).expect("oracle");
    let b = Oracle::compute(&traffic, &cfg, &mut |_| {}).expect("oracle");
    assert_eq!(a, b);
    let wide = Oracle::compute_with_window(&traffic, &cfg, 300.0, &mut |_| {}).expect("oracle");
    assert_eq!(wide.schedule.len(), 1);
    assert!(Oracle::compute_with_window(&traffic, &cfg, 0.5, &mut |_| {}).is_err());
}
