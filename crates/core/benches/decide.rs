//! Decisions per second: one autoscaler with three metrics (cpu Utilization, a Pods
//! AverageValue metric, an External AverageValue metric) over 100 pods, some unready
//! and some without samples so the conservative (fill-in) path runs, with `behavior`
//! and a recorded history so normalization does real work.
//!
//! Three stages side by side, each reported as decisions (elements) per second:
//! - `reconcile`: the full decision (`reconcile::reconcile`);
//! - `replica_calculation`: the metric stage alone (`reconcile::metric_stage`);
//! - `normalization`: stabilization, rate limits and the clamp alone (`normalize::normalize`).
//!
//! Run with `cargo bench -p podscale-core --bench decide`.
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use podscale_core::calculator::Rule;
use podscale_core::normalize::{self, NormalizeArgs};
use podscale_core::reconcile::{self, Path};
use podscale_core::{Scenario, defaults};
use serde_json::{Value, json};

const NOW: &str = "2024-06-01T12:00:00Z";
const PODS: usize = 100;
/// `web-0` … `web-2`: Running but never became Ready (unready for cpu).
const UNREADY: usize = 3;
/// The index of the one Pending pod (unready for every metric).
const PENDING: usize = 3;
/// The last four pods have no cpu or qps samples (missing).
const MISSING: usize = 4;

fn pod(i: usize) -> Value {
    let ready = i >= UNREADY;
    json!({
        "name": format!("web-{i}"),
        "labels": {"app": "web"},
        "phase": if i == PENDING { "Pending" } else { "Running" },
        "ready": ready,
        "startTime": "2024-06-01T11:00:00Z",
        "readyTransitionTime": "2024-06-01T11:00:00Z",
        "containers": [
            {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}}},
            {"name": "proxy", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
        ]
    })
}

fn sampled(i: usize) -> bool {
    i < PODS - MISSING
}

/// cpu around 80 % of requests against a 60 % target: a scale-up with unready and
/// missing pods, so both get filled in.
fn cpu_sample(i: usize) -> Value {
    json!({
        "name": format!("web-{i}"),
        "timestamp": NOW,
        "window": "30s",
        "containers": [
            {"name": "app", "usage": {"cpu": format!("{}m", 400 + (i * 7) % 60)}},
            {"name": "proxy", "usage": {"cpu": "50m"}}
        ]
    })
}

fn qps_sample(i: usize) -> Value {
    json!({"podName": format!("web-{i}"), "value": format!("{}", 110 + i % 30), "timestamp": NOW})
}

fn recommendation(seconds_ago: i64, replicas: i32) -> Value {
    let time = NOW.parse::<Timestamp>().expect("NOW parses")
        - jiff::SignedDuration::from_secs(seconds_ago);
    json!({"time": time, "replicas": replicas})
}

fn scenario() -> Scenario {
    let pods: Vec<Value> = (0..PODS).map(pod).collect();
    let cpu: Vec<Value> = (0..PODS).filter(|i| sampled(*i)).map(cpu_sample).collect();
    let qps: Vec<Value> = (0..PODS).filter(|i| sampled(*i)).map(qps_sample).collect();
    let recommendations: Vec<Value> = (0..10)
        .map(|k| recommendation(30 * k, 120 + 3 * i32::try_from(k).expect("small")))
        .collect();
    let text = json!({
        "id": "bench-3-metrics-100-pods",
        "now": NOW,
        "hpa": {
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 10,
                "maxReplicas": 300,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"},
                        "target": {"type": "AverageValue", "averageValue": "100"}}},
                    {"type": "External", "external": {"metric": {"name": "queue_depth"},
                        "target": {"type": "AverageValue", "averageValue": "30"}}}
                ],
                "behavior": {
                    "scaleUp": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                        "policies": [{"type": "Pods", "value": 10, "periodSeconds": 60},
                                     {"type": "Percent", "value": 20, "periodSeconds": 60}]},
                    "scaleDown": {"stabilizationWindowSeconds": 300,
                        "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}
                }
            },
            "status": {"currentReplicas": PODS, "desiredReplicas": PODS}
        },
        "currentReplicas": PODS,
        "selector": "app=web",
        "pods": pods,
        "metrics": {
            "resource": {"pods": cpu},
            "pods": [{"metricName": "qps", "items": qps}],
            "external": [{"metricName": "queue_depth", "items": [{"value": "4200", "timestamp": NOW}]}]
        },
        "history": {
            "recommendations": recommendations,
            "scaleEvents": [
                {"time": "2024-06-01T11:59:30Z", "replicaChange": 6, "direction": "up"},
                {"time": "2024-06-01T11:58:00Z", "replicaChange": 4, "direction": "up"},
                {"time": "2024-06-01T11:50:00Z", "replicaChange": 3, "direction": "down"}
            ]
        }
    });
    serde_json::from_value(text).expect("the benchmark scenario loads")
}

fn decide(c: &mut Criterion) {
    let s = scenario();
    let observed = s.observed();
    let history = s.history.clone().unwrap_or_default();

    // The fixture must exercise what it claims to; a broken one would measure nothing.
    let d = reconcile::reconcile(&s.hpa, &observed, &history, s.now, &s.controller);
    assert_eq!(
        d.path,
        Path::Normalized,
        "the decision reaches normalization: {:?}",
        d.error
    );
    let metrics = d.metrics.as_deref().expect("metrics were evaluated");
    assert!(
        metrics.iter().all(|m| m.error.is_none()),
        "every metric succeeds"
    );
    let cpu_rule = metrics[0].detail.as_ref().expect("cpu has a working").rule;
    assert!(
        !matches!(cpu_rule, Rule::Scaled | Rule::WithinTolerance),
        "cpu takes the conservative path, took {cpu_rule:?}"
    );
    assert!(
        d.rescale,
        "the decision scales, so events and scale history are written"
    );
    let proposal = d.recommendation.expect("the metric stage proposed");
    let n = d.normalized.as_ref().expect("normalization ran");
    eprintln!(
        "fixture: {PODS} pods, proposals {:?} (cpu rule {cpu_rule:?}) → recommendation {proposal} \
         → stabilized {} → desired {} ({})",
        metrics.iter().map(|m| m.proposal).collect::<Vec<_>>(),
        n.stabilized,
        d.desired_replicas,
        n.scaling_limited.reason,
    );

    let behavior = defaults::behavior(&s.hpa, &s.controller);
    let args = NormalizeArgs {
        behavior: behavior.as_ref(),
        settings: &s.controller,
        min_replicas: defaults::min_replicas(&s.hpa),
        max_replicas: s.hpa.spec.max_replicas,
        current_replicas: s.current_replicas,
        prenormalized: proposal,
        now: s.now,
    };

    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("reconcile", |b| {
        b.iter(|| {
            reconcile::reconcile(
                black_box(&s.hpa),
                black_box(&observed),
                black_box(&history),
                s.now,
                &s.controller,
            )
        });
    });
    group.bench_function("replica_calculation", |b| {
        b.iter(|| {
            reconcile::metric_stage(
                black_box(&s.hpa),
                black_box(&observed),
                s.now,
                &s.controller,
            )
        });
    });
    // `normalize` updates the history it is given, so each call gets a fresh copy
    // (made outside the timed section).
    group.bench_function("normalization", |b| {
        b.iter_batched_ref(
            || history.clone(),
            |h| normalize::normalize(black_box(&args), h),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
