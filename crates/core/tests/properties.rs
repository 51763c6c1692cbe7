//! Properties of the whole decision (`reconcile`) over random inputs: an autoscaler with
//! one to three metrics (Resource cpu/memory, Pods, External), pods in every state (about
//! as many as the current replica count), samples missing for some pods, recorded history, optional `behavior`, and
//! metric sources that fail.
//!
//! Two generators feed them. [`Range::Valid`] stays inside what the API server admits
//! and what the metrics APIs return in practice, with the current count inside
//! `[minReplicas, maxReplicas]`; [`Range::Wild`] takes any number (`i64::MAX` milli,
//! zero and negative targets, 0 replicas, timestamps at the ends of time) and is only
//! used to show nothing panics.
//!
//! A failing property prints the shrunk input as a scenario JSON, which can be saved
//! under `tests/scenarios/` as a golden case once the expected outcome is known.
use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use podscale_core::api::{
    CrossVersionObjectReference, ExternalMetricSource, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, HorizontalPodAutoscalerStatus,
    HpaScalingPolicy, HpaScalingRules, MetricIdentifier, MetricSpec, MetricTarget, ObjectMeta,
    PodsMetricSource, ResourceMetricSource, policy_type, select_policy, target_type,
};
use podscale_core::calculator::Rule;
use podscale_core::conditions::reasons;
use podscale_core::duration::GoDuration;
use podscale_core::history::{Direction, History, Recommendation, ScaleEvent};
use podscale_core::observed::{
    Container, ContainerMetrics, ExternalMetricValue, ExternalMetricValues, Fetched,
    ObservedMetrics, Pod, PodMetricValue, PodMetrics, PodsMetricValues, ResourceMetricsList,
    ResourceRequirements,
};
use podscale_core::reconcile::Path;
use podscale_core::scenario::StageInput;
use podscale_core::{ControllerSettings, Decision, Quantity, Scenario, Stage, reconcile};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

/// Every valid scenario is seen at this instant; wild ones move it.
const NOW: &str = "2024-06-01T12:00:00Z";
/// The Pods metrics and External metrics the generated autoscalers may name.
const POD_METRICS: [&str; 2] = ["qps", "latency"];
const EXTERNAL_METRICS: [&str; 2] = ["queue", "lag"];

fn now() -> Timestamp {
    NOW.parse().expect("NOW is an RFC 3339 timestamp")
}

// ---------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------

/// How wide the generated numbers range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    /// What the API server admits and the metrics APIs return in practice.
    Valid,
    /// Anything, edges first: only for "never panics".
    Wild,
}

fn wild_i64() -> BoxedStrategy<i64> {
    prop_oneof![
        Just(0i64),
        Just(1),
        Just(-1),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(i64::MAX / 100),
        0i64..=10_000,
        any::<i64>(),
    ]
    .boxed()
}

fn wild_i32() -> BoxedStrategy<i32> {
    prop_oneof![
        Just(0i32),
        Just(1),
        Just(-1),
        Just(i32::MAX),
        Just(i32::MIN),
        0i32..=200,
        any::<i32>(),
    ]
    .boxed()
}

/// A target or request in milli-units.
fn milli(r: Range) -> BoxedStrategy<i64> {
    match r {
        // Mostly one band with usage (so ratios land near 1), sometimes anything sane.
        Range::Valid => prop_oneof![8 => 500i64..=2_000, 1 => 1i64..=10_000_000].boxed(),
        Range::Wild => wild_i64(),
    }
}

/// A sampled usage in milli-units (zero is a real reading).
fn usage(r: Range) -> BoxedStrategy<i64> {
    match r {
        Range::Valid => prop_oneof![8 => 0i64..=2_000, 1 => 0i64..=10_000_000].boxed(),
        Range::Wild => wild_i64(),
    }
}

/// A utilization target in percent.
fn percent(r: Range) -> BoxedStrategy<i32> {
    match r {
        Range::Valid => prop_oneof![4 => 50i32..=150, 1 => 1i32..=400].boxed(),
        Range::Wild => wild_i32(),
    }
}

/// How long ago something happened, in seconds.
fn age(r: Range) -> BoxedStrategy<i64> {
    match r {
        // Half within the default CPU initialization period, so both branches run.
        Range::Valid => prop_oneof![0i64..=600, 0i64..=7_200].boxed(),
        Range::Wild => wild_i64(),
    }
}

/// `now` minus `secs`, pinned to the ends of time.
fn ago(now: Timestamp, secs: i64) -> Timestamp {
    now.checked_sub(SignedDuration::from_secs(secs))
        .unwrap_or(if secs > 0 {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
}

// ---------------------------------------------------------------------------------------
// The autoscaler
// ---------------------------------------------------------------------------------------

fn target(
    type_: &str,
    value: Option<i64>,
    average: Option<i64>,
    percent: Option<i32>,
) -> MetricTarget {
    MetricTarget {
        type_: type_.into(),
        value: value.map(Quantity::from_milli),
        average_value: average.map(Quantity::from_milli),
        average_utilization: percent,
    }
}

fn resource_spec(name: &str, target: MetricTarget) -> MetricSpec {
    MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: name.into(),
            target,
        }),
        ..MetricSpec::default()
    }
}

fn pods_spec(name: &str, average: i64) -> MetricSpec {
    MetricSpec {
        type_: "Pods".into(),
        pods: Some(PodsMetricSource {
            metric: MetricIdentifier {
                name: name.into(),
                selector: None,
            },
            target: target(target_type::AVERAGE_VALUE, None, Some(average), None),
        }),
        ..MetricSpec::default()
    }
}

fn external_spec(name: &str, target: MetricTarget) -> MetricSpec {
    MetricSpec {
        type_: "External".into(),
        external: Some(ExternalMetricSource {
            metric: MetricIdentifier {
                name: name.into(),
                selector: None,
            },
            target,
        }),
        ..MetricSpec::default()
    }
}

/// One metric: Resource cpu/memory (Utilization or AverageValue), Pods AverageValue,
/// External Value or AverageValue.
fn metric_spec(r: Range) -> BoxedStrategy<MetricSpec> {
    let resource = || prop_oneof![Just("cpu"), Just("memory")];
    let pod_metric = prop::sample::select(POD_METRICS.to_vec());
    let external = || prop::sample::select(EXTERNAL_METRICS.to_vec());
    prop_oneof![
        3 => (resource(), percent(r)).prop_map(|(name, p)| {
            resource_spec(name, target(target_type::UTILIZATION, None, None, Some(p)))
        }),
        1 => (resource(), milli(r)).prop_map(|(name, m)| {
            resource_spec(name, target(target_type::AVERAGE_VALUE, None, Some(m), None))
        }),
        2 => (pod_metric, milli(r)).prop_map(|(name, m)| pods_spec(name, m)),
        1 => (external(), milli(r)).prop_map(|(name, m)| {
            external_spec(name, target(target_type::VALUE, Some(m), None, None))
        }),
        1 => (external(), milli(r)).prop_map(|(name, m)| {
            external_spec(name, target(target_type::AVERAGE_VALUE, None, Some(m), None))
        }),
    ]
    .boxed()
}

/// One to three metrics, fewer more often: the maximum of three proposals is rarely
/// a scale-down.
fn metric_specs(r: Range) -> BoxedStrategy<Vec<MetricSpec>> {
    prop_oneof![3 => Just(1usize), 2 => Just(2), 1 => Just(3)]
        .prop_flat_map(move |n| prop::collection::vec(metric_spec(r), n))
        .boxed()
}

fn policy(r: Range) -> BoxedStrategy<HpaScalingPolicy> {
    let make = |type_: &str, value: i32, period_seconds: i32| HpaScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds,
    };
    match r {
        Range::Valid => prop_oneof![
            (1i32..=20, 1i32..=1_800).prop_map(move |(v, p)| make(policy_type::PODS, v, p)),
            (1i32..=300, 1i32..=1_800).prop_map(move |(v, p)| make(policy_type::PERCENT, v, p)),
        ]
        .boxed(),
        Range::Wild => (
            prop_oneof![
                Just(policy_type::PODS),
                Just(policy_type::PERCENT),
                Just("Cheddar")
            ],
            wild_i32(),
            wild_i32(),
        )
            .prop_map(move |(t, v, p)| make(t, v, p))
            .boxed(),
    }
}

/// One direction's `HPAScalingRules`, every field optional as a user writes it.
fn scaling_rules(r: Range) -> BoxedStrategy<Option<HpaScalingRules>> {
    let (window, policies, tolerance) = match r {
        // The API server wants at least one policy and a tolerance ≥ 0.
        Range::Valid => ((0i32..=3_600).boxed(), 1usize..=3, (0i64..=500).boxed()),
        Range::Wild => (wild_i32(), 0usize..=3, wild_i64()),
    };
    let select = prop_oneof![
        Just(select_policy::MAX),
        Just(select_policy::MIN),
        Just(select_policy::DISABLED),
    ];
    prop::option::weighted(
        0.7,
        (
            prop::option::of(window),
            prop::option::of(select),
            prop::option::of(prop::collection::vec(policy(r), policies)),
            prop::option::weighted(0.3, tolerance),
        )
            .prop_map(|(window, select, policies, tolerance)| HpaScalingRules {
                stabilization_window_seconds: window,
                select_policy: select.map(Into::into),
                policies,
                tolerance: tolerance.map(Quantity::from_milli),
            }),
    )
    .boxed()
}

fn behavior(r: Range) -> BoxedStrategy<Option<HorizontalPodAutoscalerBehavior>> {
    prop::option::of(
        (scaling_rules(r), scaling_rules(r)).prop_map(|(scale_up, scale_down)| {
            HorizontalPodAutoscalerBehavior {
                scale_up,
                scale_down,
            }
        }),
    )
    .boxed()
}

/// (`minReplicas`, `maxReplicas`, current replicas).
fn bounds(r: Range) -> BoxedStrategy<(Option<i32>, i32, i32)> {
    match r {
        // min ≤ current ≤ max, min ≥ 1 (scale to zero is an alpha gate).
        Range::Valid => (prop::option::weighted(0.9, 1i32..=10), 0i32..=20, 0i32..=20)
            .prop_map(|(min, span, at)| {
                let low = min.unwrap_or(1);
                (min, low + span, low + at % (span + 1))
            })
            .boxed(),
        Range::Wild => (prop::option::of(wild_i32()), wild_i32(), wild_i32()).boxed(),
    }
}

fn settings(r: Range) -> BoxedStrategy<ControllerSettings> {
    match r {
        Range::Valid => (
            prop::sample::select(vec![0.0, 0.05, 0.1, 0.3]),
            prop::sample::select(vec![0i64, 120, 300]),
            prop::sample::select(vec![0i64, 10, 30]),
            prop::sample::select(vec![0i64, 60, 300]),
            prop::sample::select(vec![2.0, 8.0]),
            any::<bool>(),
        )
            .prop_map(
                |(tolerance, cpu_init, readiness, window, factor, gate)| ControllerSettings {
                    tolerance,
                    cpu_initialization_period_seconds: cpu_init,
                    initial_readiness_delay_seconds: readiness,
                    downscale_stabilization_window_seconds: window,
                    legacy_scale_up_limit_factor: factor,
                    configurable_tolerance_enabled: gate,
                    ..ControllerSettings::default()
                },
            )
            .boxed(),
        Range::Wild => {
            let float = || {
                prop_oneof![
                    Just(0.0),
                    Just(-1.0),
                    Just(f64::NAN),
                    Just(f64::INFINITY),
                    Just(f64::NEG_INFINITY),
                    Just(f64::MAX),
                    any::<f64>(),
                ]
            };
            (
                float(),
                wild_i64(),
                wild_i64(),
                wild_i64(),
                float(),
                float(),
                any::<bool>(),
            )
                .prop_map(
                    |(tolerance, cpu_init, readiness, window, factor, minimum, gate)| {
                        ControllerSettings {
                            tolerance,
                            cpu_initialization_period_seconds: cpu_init,
                            initial_readiness_delay_seconds: readiness,
                            downscale_stabilization_window_seconds: window,
                            legacy_scale_up_limit_factor: factor,
                            legacy_scale_up_limit_minimum: minimum,
                            configurable_tolerance_enabled: gate,
                            ..ControllerSettings::default()
                        }
                    },
                )
                .boxed()
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pods and samples
// ---------------------------------------------------------------------------------------

/// One pod and what the metrics APIs report for it, before it is laid out as data.
#[derive(Debug, Clone)]
struct PodDraw {
    phase: &'static str,
    ready: Option<bool>,
    started_ago: Option<i64>,
    ready_changed_ago: Option<i64>,
    deleting: bool,
    /// Labelled for another workload: the scale selector must drop it.
    foreign: bool,
    cpu_request: Option<i64>,
    memory_request: Option<i64>,
    /// `None`: no sample for this pod (both `None`: absent from the resource metrics list).
    cpu_usage: Option<i64>,
    memory_usage: Option<i64>,
    /// One sample per name in [`POD_METRICS`].
    custom: [Option<i64>; 2],
    sampled_ago: i64,
    window_seconds: i64,
}

fn pod_draw(r: Range) -> BoxedStrategy<PodDraw> {
    let phase = prop_oneof![
        12 => Just("Running"),
        1 => Just("Pending"),
        1 => Just("Failed"),
        1 => Just("Succeeded"),
    ];
    let ready = prop_oneof![6 => Just(Some(true)), 2 => Just(Some(false)), 1 => Just(None)];
    let request = || prop::option::weighted(0.995, milli(r));
    let sample = || prop::option::weighted(0.93, usage(r));
    let (sampled_ago, window) = match r {
        Range::Valid => (
            (0i64..=90).boxed(),
            prop::sample::select(vec![15i64, 30, 60]).boxed(),
        ),
        Range::Wild => (wild_i64(), wild_i64()),
    };
    (
        (
            phase,
            ready,
            prop::option::weighted(0.95, age(r)),
            prop::option::weighted(0.95, age(r)),
            prop::bool::weighted(0.05),
            prop::bool::weighted(0.05),
        ),
        (
            request(),
            request(),
            sample(),
            sample(),
            sample(),
            sample(),
            sampled_ago,
            window,
        ),
    )
        .prop_map(
            |(
                (phase, ready, started_ago, ready_changed_ago, deleting, foreign),
                (cpu_request, memory_request, cpu, memory, qps, latency, sampled_ago, window),
            )| PodDraw {
                phase,
                ready,
                started_ago,
                ready_changed_ago,
                deleting,
                foreign,
                cpu_request,
                memory_request,
                cpu_usage: cpu,
                memory_usage: memory,
                custom: [qps, latency],
                sampled_ago,
                window_seconds: window,
            },
        )
        .boxed()
}

fn quantities(entries: &[(&str, Option<i64>)]) -> BTreeMap<String, Quantity> {
    entries
        .iter()
        .filter_map(|(name, milli)| Some(((*name).to_string(), Quantity::from_milli((*milli)?))))
        .collect()
}

fn pod(name: &str, d: &PodDraw, now: Timestamp) -> Pod {
    let app = if d.foreign { "other" } else { "web" };
    Pod {
        name: name.into(),
        labels: BTreeMap::from([("app".to_string(), app.to_string())]),
        phase: d.phase.into(),
        ready: d.ready,
        start_time: d.started_ago.map(|s| ago(now, s)),
        ready_transition_time: d.ready_changed_ago.map(|s| ago(now, s)),
        deletion_timestamp: d.deleting.then_some(now),
        containers: vec![Container {
            name: "app".into(),
            resources: Some(ResourceRequirements {
                requests: Some(quantities(&[
                    ("cpu", d.cpu_request),
                    ("memory", d.memory_request),
                ])),
                limits: None,
            }),
            restart_policy: None,
        }],
        init_containers: Vec::new(),
        resources: None,
    }
}

/// What the metrics APIs return beyond per-pod samples.
#[derive(Debug, Clone)]
struct Sources {
    /// One list of values per name in [`EXTERNAL_METRICS`]; `None`: nothing returned.
    external: [Option<Vec<i64>>; 2],
    /// A sample for a pod the selector does not list (a superfluous metric).
    superfluous: Option<i64>,
    /// Each API answers with an error: resource, custom (Pods), external.
    broken: [bool; 3],
}

fn sources(r: Range) -> BoxedStrategy<Sources> {
    let values = || prop::option::weighted(0.9, prop::collection::vec(usage(r), 1..=3));
    let broken = || prop::bool::weighted(0.08);
    (
        values(),
        values(),
        prop::option::weighted(0.1, usage(r)),
        [broken(), broken(), broken()],
    )
        .prop_map(|(queue, lag, superfluous, broken)| Sources {
            external: [queue, lag],
            superfluous,
            broken,
        })
        .boxed()
}

fn api_error<T>() -> Fetched<T> {
    Fetched::Error {
        error: "the server is currently unable to handle the request".into(),
    }
}

fn observed_metrics(pods: &[PodDraw], sources: &Sources, now: Timestamp) -> ObservedMetrics {
    let mut resource = Vec::new();
    let mut custom: [Vec<PodMetricValue>; 2] = [Vec::new(), Vec::new()];
    for (i, d) in pods.iter().enumerate() {
        let name = format!("web-{i}");
        let timestamp = Some(ago(now, d.sampled_ago));
        if d.cpu_usage.is_some() || d.memory_usage.is_some() {
            resource.push(PodMetrics {
                name: name.clone(),
                timestamp,
                window: Some(GoDuration::from_secs(d.window_seconds)),
                containers: vec![ContainerMetrics {
                    name: "app".into(),
                    usage: quantities(&[("cpu", d.cpu_usage), ("memory", d.memory_usage)]),
                }],
            });
        }
        for (values, sample) in custom.iter_mut().zip(d.custom) {
            if let Some(v) = sample {
                values.push(PodMetricValue {
                    pod_name: name.clone(),
                    value: Quantity::from_milli(v),
                    timestamp,
                    window_seconds: Some(d.window_seconds),
                });
            }
        }
    }
    if let Some(v) = sources.superfluous {
        resource.push(PodMetrics {
            name: "gone-0".into(),
            timestamp: Some(now),
            window: Some(GoDuration::from_secs(60)),
            containers: vec![ContainerMetrics {
                name: "app".into(),
                usage: quantities(&[("cpu", Some(v)), ("memory", Some(v))]),
            }],
        });
    }
    let pods_values = POD_METRICS
        .iter()
        .zip(custom)
        .map(|(name, items)| PodsMetricValues {
            metric_name: (*name).into(),
            items,
            error: None,
        })
        .collect();
    let external_values = EXTERNAL_METRICS
        .iter()
        .zip(&sources.external)
        .filter_map(|(name, values)| {
            Some(ExternalMetricValues {
                metric_name: (*name).into(),
                selector: None,
                items: values
                    .as_ref()?
                    .iter()
                    .map(|v| ExternalMetricValue {
                        value: Quantity::from_milli(*v),
                        metric_labels: BTreeMap::new(),
                        timestamp: Some(now),
                    })
                    .collect(),
                error: None,
            })
        })
        .collect();
    let [resource_broken, pods_broken, external_broken] = sources.broken;
    ObservedMetrics {
        resource: Some(if resource_broken {
            api_error()
        } else {
            Fetched::Data(ResourceMetricsList { pods: resource })
        }),
        pods: Some(if pods_broken {
            api_error()
        } else {
            Fetched::Data(pods_values)
        }),
        object: None,
        external: Some(if external_broken {
            api_error()
        } else {
            Fetched::Data(external_values)
        }),
    }
}

// ---------------------------------------------------------------------------------------
// History and the whole scenario
// ---------------------------------------------------------------------------------------

fn history(r: Range, now: Timestamp) -> BoxedStrategy<History> {
    let (replicas, change) = match r {
        Range::Valid => ((0i32..=40).boxed(), (1i32..=20).boxed()),
        Range::Wild => (wild_i32(), wild_i32()),
    };
    let direction = prop_oneof![Just(Direction::Up), Just(Direction::Down)];
    (
        prop::option::weighted(0.8, prop::collection::vec((age(r), replicas), 0..=6)),
        prop::collection::vec((age(r), change, direction), 0..=4),
    )
        .prop_map(move |(recommendations, events)| History {
            recommendations: recommendations.map(|rs| {
                rs.into_iter()
                    .map(|(secs, replicas)| Recommendation {
                        time: ago(now, secs),
                        replicas,
                    })
                    .collect()
            }),
            scale_events: events
                .into_iter()
                .map(|(secs, replica_change, direction)| ScaleEvent {
                    time: ago(now, secs),
                    replica_change,
                    direction,
                })
                .collect(),
        })
        .boxed()
}

fn instant(r: Range) -> BoxedStrategy<Timestamp> {
    match r {
        Range::Valid => Just(now()).boxed(),
        Range::Wild => prop_oneof![
            Just(now()),
            Just(Timestamp::MIN),
            Just(Timestamp::MAX),
            (0i64..=4_000_000_000).prop_map(|s| Timestamp::from_second(s).expect("within range")),
        ]
        .boxed(),
    }
}

/// A reconcile-stage scenario.
fn scenario(r: Range) -> BoxedStrategy<Scenario> {
    (instant(r), bounds(r))
        .prop_flat_map(move |(now, bounds)| {
            // About as many pods as the target has replicas, give or take a few.
            let pods = match r {
                Range::Valid => {
                    let current = usize::try_from(bounds.2).expect("valid counts are positive");
                    current.saturating_sub(3)..=current + 3
                }
                Range::Wild => 0..=20,
            };
            (
                (metric_specs(r), Just(bounds), behavior(r), settings(r)),
                (
                    prop::collection::vec(pod_draw(r), pods),
                    sources(r),
                    history(r, now),
                    any::<bool>(),
                    any::<bool>(),
                ),
                Just(now),
            )
        })
        .prop_map(
            |(
                (metrics, (min, max, current), behavior, controller),
                (pods, sources, history, has_status, status_is_pods),
                now,
            )| {
                let status_replicas =
                    status_is_pods.then(|| i32::try_from(pods.len()).expect("a few dozen pods"));
                Scenario {
                    id: Some("property".into()),
                    stage: Stage::Reconcile,
                    controller,
                    now,
                    hpa: HorizontalPodAutoscaler {
                        api_version: Some("autoscaling/v2".into()),
                        kind: Some("HorizontalPodAutoscaler".into()),
                        metadata: ObjectMeta {
                            name: Some("web".into()),
                            namespace: Some("default".into()),
                            ..ObjectMeta::default()
                        },
                        spec: HorizontalPodAutoscalerSpec {
                            scale_target_ref: CrossVersionObjectReference {
                                kind: "Deployment".into(),
                                name: "web".into(),
                                api_version: Some("apps/v1".into()),
                            },
                            min_replicas: min,
                            max_replicas: max,
                            metrics: Some(metrics),
                            behavior,
                        },
                        status: has_status.then(|| HorizontalPodAutoscalerStatus {
                            current_replicas: current,
                            desired_replicas: current,
                            ..HorizontalPodAutoscalerStatus::default()
                        }),
                    },
                    current_replicas: current,
                    status_replicas,
                    selector: Some("app=web".into()),
                    metrics: observed_metrics(&pods, &sources, now),
                    pods: pods
                        .iter()
                        .enumerate()
                        .map(|(i, d)| pod(&format!("web-{i}"), d, now))
                        .collect(),
                    history: Some(history),
                    input: None,
                }
            },
        )
        .boxed()
}

fn decide(s: &Scenario) -> Decision {
    reconcile(
        &s.hpa,
        &s.observed(),
        &s.history.clone().unwrap_or_default(),
        s.now,
        &s.controller,
    )
}

/// The scenario as JSON, for failure messages (save it to reproduce with `explain`).
fn shown(s: &Scenario) -> String {
    serde_json::to_string(s).expect("a scenario serializes")
}

fn explain_json(s: &Scenario) -> String {
    let e = s.evaluate().expect("a reconcile-stage scenario evaluates");
    serde_json::to_string(&e.output).expect("the output serializes")
}

fn min_replicas(s: &Scenario) -> i32 {
    s.hpa.spec.min_replicas.unwrap_or(1)
}

fn any_metric_failed(d: &Decision) -> bool {
    d.metrics
        .as_ref()
        .is_some_and(|m| m.iter().any(|e| e.error.is_some()))
}

/// How a metric's source is made to fail.
#[derive(Debug, Clone, Copy)]
enum Breakage {
    /// The metrics API answers with an error.
    ApiError,
    /// The metrics API answers, but without this metric's samples.
    NoSamples,
}

/// Makes metric `index`'s source fail, as `breakage` says.
fn break_metric(s: &mut Scenario, index: usize, breakage: Breakage) {
    let metrics = s
        .hpa
        .spec
        .metrics
        .as_ref()
        .expect("generated autoscalers list metrics");
    let spec = &metrics[index % metrics.len()];
    let observed = &mut s.metrics;
    match (spec.type_.as_str(), breakage) {
        ("Resource", Breakage::ApiError) => observed.resource = Some(api_error()),
        ("Resource", Breakage::NoSamples) => {
            observed.resource = Some(Fetched::Data(ResourceMetricsList::default()));
        }
        ("Pods", Breakage::ApiError) => observed.pods = Some(api_error()),
        ("Pods", Breakage::NoSamples) => {
            let name = &spec
                .pods
                .as_ref()
                .expect("a Pods metric has its source")
                .metric
                .name;
            if let Some(Fetched::Data(entries)) = &mut observed.pods {
                entries.retain(|e| e.metric_name != *name);
            }
        }
        ("External", Breakage::ApiError) => observed.external = Some(api_error()),
        ("External", Breakage::NoSamples) => {
            let name = &spec
                .external
                .as_ref()
                .expect("an External metric has its source")
                .metric
                .name;
            if let Some(Fetched::Data(entries)) = &mut observed.external {
                entries.retain(|e| e.metric_name != *name);
            }
        }
        (other, _) => unreachable!("the generator writes no {other} metrics"),
    }
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

/// A few seconds in a debug build; `PROPTEST_CASES=20000` for a longer hunt.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 128;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_desired_count_stays_within_min_and_max_when_the_current_count_is_within_them(
        s in scenario(Range::Valid),
    ) {
        let (min, max) = (min_replicas(&s), s.hpa.spec.max_replicas);
        prop_assert!(min <= s.current_replicas && s.current_replicas <= max);
        let d = decide(&s);
        prop_assert!(
            min <= d.desired_replicas && d.desired_replicas <= max,
            "desired {} outside [{min}, {max}] ({:?}) for {}",
            d.desired_replicas,
            d.path,
            shown(&s)
        );
    }

    #[test]
    fn the_same_input_always_gives_the_same_decision_and_the_same_json(
        s in scenario(Range::Valid),
    ) {
        // Debug text rather than `==`: a usage ratio may be NaN, which is never equal to itself.
        let first = format!("{:?}", decide(&s));
        let second = format!("{:?}", decide(&s));
        prop_assert_eq!(&first, &second, "for {}", shown(&s));
        let through_scenario = s.evaluate().expect("reconcile stage evaluates").decision;
        prop_assert_eq!(&first, &format!("{:?}", through_scenario.expect("reconcile keeps the decision")));
        prop_assert_eq!(explain_json(&s), explain_json(&s), "for {}", shown(&s));
    }

    #[test]
    fn a_scenario_read_back_from_its_json_decides_the_same(s in scenario(Range::Valid)) {
        let text = shown(&s);
        let back: Scenario = serde_json::from_str(&text).expect("a written scenario reads back");
        prop_assert_eq!(explain_json(&s), explain_json(&back), "for {}", text);
    }

    #[test]
    fn no_scale_down_happens_while_a_metric_is_failing(s in scenario(Range::Valid)) {
        let d = decide(&s);
        if any_metric_failed(&d) {
            prop_assert!(
                d.desired_replicas >= s.current_replicas,
                "scaled {} → {} with a failing metric ({:?}) for {}",
                s.current_replicas,
                d.desired_replicas,
                d.error,
                shown(&s)
            );
        }
    }

    #[test]
    fn making_any_one_metric_fail_never_scales_down(
        mut s in scenario(Range::Valid),
        index in 0usize..3,
        breakage in prop_oneof![Just(Breakage::ApiError), Just(Breakage::NoSamples)],
    ) {
        break_metric(&mut s, index, breakage);
        let d = decide(&s);
        let n = s.hpa.spec.metrics.as_ref().map_or(1, Vec::len);
        let evaluations = d.metrics.as_ref().expect("the metric stage runs when current is within bounds");
        prop_assert!(evaluations[index % n].error.is_some(), "metric {} did not fail for {}", index % n, shown(&s));
        prop_assert!(
            d.desired_replicas >= s.current_replicas,
            "scaled {} → {} with metric {} failing ({:?}) for {}",
            s.current_replicas,
            d.desired_replicas,
            index % n,
            d.error,
            shown(&s)
        );
    }

    #[test]
    fn the_scale_is_updated_exactly_when_the_desired_count_differs_from_the_current_one(
        s in scenario(Range::Valid),
    ) {
        let d = decide(&s);
        prop_assert_eq!(d.rescale, d.desired_replicas != s.current_replicas, "for {}", shown(&s));
        let rescaled = d.events.iter().any(|e| e.reason == reasons::SUCCESSFUL_RESCALE);
        prop_assert_eq!(rescaled, d.rescale, "for {}", shown(&s));
        if d.path != Path::MetricsFailed {
            prop_assert_eq!(d.status.desired_replicas, d.desired_replicas, "for {}", shown(&s));
        }
    }

    #[test]
    fn arbitrary_numbers_never_panic(
        s in scenario(Range::Wild),
        recommendation in wild_i32(),
    ) {
        decide(&s);
        for stage in [Stage::Reconcile, Stage::ReplicaCalculation, Stage::Normalization, Stage::Stabilization] {
            let staged = Scenario { stage, input: Some(StageInput { recommendation }), ..s.clone() };
            let e = staged.evaluate().expect("every stage has its input");
            serde_json::to_string(&e.output).expect("the output serializes");
            let _ = podscale_core::explain::render(&staged, &e);
        }
    }
}

/// The properties above only mean something if the generator reaches the branches they
/// are about; this samples it with a fixed seed and checks each one was reached.
#[test]
fn the_generator_reaches_every_branch_the_properties_are_about() {
    let mut runner = TestRunner::deterministic();
    let strategy = scenario(Range::Valid);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..400 {
        let s = strategy
            .new_tree(&mut runner)
            .expect("the generator never rejects")
            .current();
        let d = decide(&s);
        let mut see =
            |what: &'static str, yes: bool| *seen.entry(what).or_default() += usize::from(yes);
        see("scale up", d.desired_replicas > s.current_replicas);
        see("scale down", d.desired_replicas < s.current_replicas);
        see("metrics failed", d.path == Path::MetricsFailed);
        see(
            "scale up despite a failing metric",
            any_metric_failed(&d) && d.path == Path::Normalized,
        );
        see(
            "behavior",
            s.hpa.spec.behavior.is_some() && d.path == Path::Normalized,
        );
        let rules: Vec<Rule> = d
            .metrics
            .iter()
            .flatten()
            .filter_map(|m| m.detail.as_ref().map(|x| x.rule))
            .collect();
        see(
            "missing or unready pods filled in",
            rules.contains(&Rule::FilledScaled),
        );
        see(
            "direction flipped by filling in",
            rules.contains(&Rule::DirectionFlipped),
        );
        see("within tolerance", rules.contains(&Rule::WithinTolerance));
        let limited = d
            .normalized
            .as_ref()
            .map(|n| n.scaling_limited.reason.as_str());
        see(
            "scale-up rate limit",
            limited == Some(reasons::SCALE_UP_LIMIT),
        );
        see(
            "scale-down rate limit",
            limited == Some(reasons::SCALE_DOWN_LIMIT),
        );
        see(
            "clamped to max",
            limited == Some(reasons::TOO_MANY_REPLICAS),
        );
        see("clamped to min", limited == Some(reasons::TOO_FEW_REPLICAS));
        if d.desired_replicas < s.current_replicas {
            let mut broken = s.clone();
            break_metric(&mut broken, 0, Breakage::ApiError);
            see(
                "a scale-down held back by a failing metric",
                decide(&broken).desired_replicas == s.current_replicas,
            );
        }
        see(
            "stabilized",
            d.normalized
                .as_ref()
                .is_some_and(|n| Some(n.stabilized) != d.recommendation),
        );
    }
    let missed: Vec<_> = seen
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    eprintln!("branches reached in 400 scenarios: {seen:?}");
    assert!(
        missed.is_empty(),
        "the generator never reached: {missed:?} (counts: {seen:?})"
    );
}

// ---------------------------------------------------------------------------------------
// Regressions found by the properties above
// ---------------------------------------------------------------------------------------

/// Three pods whose CPU requests (each one the API server admits) add up, wrapping as
/// Go's int64 does, to -1m, and whose usage adds up to 2^61 milli: upstream's
/// `totalMetric * 100 / totalRequest` is then `MinInt64 / -1`, which Go evaluates to
/// `MinInt64` (utilization `int32(...)` = 0) and Rust's `/` panics on.
#[test]
fn cpu_requests_that_wrap_to_minus_one_do_not_panic() {
    let pod = |name: &str, request: &str| {
        serde_json::json!({
            "name": name, "labels": {"app": "web"}, "phase": "Running", "ready": true,
            "startTime": "2024-06-01T10:00:00Z", "readyTransitionTime": "2024-06-01T10:00:00Z",
            "containers": [{"name": "app", "resources": {"requests": {"cpu": request}}}]
        })
    };
    let sample = |name: &str, cpu: &str| {
        serde_json::json!({
            "name": name, "timestamp": NOW, "window": "1m0s",
            "containers": [{"name": "app", "usage": {"cpu": cpu}}]
        })
    };
    let s: Scenario = serde_json::from_value(serde_json::json!({
        "now": NOW,
        "hpa": {"spec": {
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
        }},
        "currentReplicas": 3,
        "selector": "app=web",
        "pods": [
            pod("web-0", "9223372036854775807m"),
            pod("web-1", "9223372036854775807m"),
            pod("web-2", "1m"),
        ],
        "metrics": {"resource": {"pods": [
            sample("web-0", "2305843009213693952m"),
            sample("web-1", "0"),
            sample("web-2", "0"),
        ]}}
    }))
    .expect("the scenario loads");
    let d = decide(&s);
    // Go: utilization int32(MinInt64) = 0 %, so the metric proposes ceil(0 × 3) = 0.
    let metric = &d.metrics.expect("the metric stage ran")[0];
    assert_eq!(metric.proposal, Some(0), "{:?}", metric.error);
}

/// Go's `time.ParseDuration` accepts the most negative duration (it accumulates in a
/// uint64 and negates at the end), so a window Go prints must read back.
#[test]
fn the_most_negative_go_duration_reads_back() {
    let text = GoDuration(i64::MIN).to_string();
    assert_eq!(text, "-2562047h47m16.854775808s");
    assert_eq!(GoDuration::parse(&text), Ok(GoDuration(i64::MIN)));
}
