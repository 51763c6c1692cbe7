//! The Kubernetes implementations of the runtime's traits against an in-process API
//! server answering real shapes (see `common`): scale up, a failing metric, a 409 on
//! `/scale`, status with history, shadow mode, and a workload a standard HPA scales.
mod common;

use std::time::Duration;

use common::{FakeApi, with_web};
use kube::runtime::reflector;
use kube::runtime::watcher;
use podscale_core::observed::{
    ExternalMetricValue, ExternalMetricValues, Fetched, ObservedMetrics, Pod,
};
use podscale_core::quantity::Quantity;
use podscale_core::{Autoscaler as Engine, ControllerSettings};
use podscale_kube::crd::Autoscaler;
use podscale_kube::recorder::{KubeRecorder, Uids};
use podscale_kube::source::CollectSource;
use podscale_kube::target::KubeTarget;
use podscale_metrics::collect::Sources;
use podscale_metrics::config::Config;
use podscale_runtime::{
    Controller, Key, LoopConfig, MemoryRecorder, MetricSource, Shadow, TokioClock, Update,
};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

/// A metric source answering the External metric `queue` with a fixed value.
#[derive(Debug, Clone)]
struct Queue(i64);

impl MetricSource for Queue {
    async fn read(
        &self,
        _hpa: &podscale_core::api::HorizontalPodAutoscaler,
        _pods: &[Pod],
        now: jiff::Timestamp,
    ) -> ObservedMetrics {
        ObservedMetrics {
            external: Some(Fetched::Data(vec![ExternalMetricValues {
                metric_name: "queue".into(),
                selector: None,
                items: vec![ExternalMetricValue {
                    value: Quantity::parse(&self.0.to_string()).expect("quantity"),
                    metric_labels: Default::default(),
                    timestamp: Some(now),
                }],
                error: None,
            }])),
            ..ObservedMetrics::default()
        }
    }
}

fn config() -> LoopConfig {
    LoopConfig {
        jitter: 0.0,
        ..LoopConfig::default()
    }
}

fn object(api: &FakeApi, name: &str) -> Autoscaler {
    serde_json::from_value(api.lock().autoscalers[name].clone()).expect("autoscaler")
}

fn engine(api: &FakeApi) -> Engine {
    let a = object(api, "web");
    Engine::with_history(
        a.to_hpa(),
        a.history().unwrap_or_default(),
        ControllerSettings::default(),
    )
}

fn uids() -> Uids {
    let u = Uids::default();
    u.set(Key::new("default", "web"), Some("uid-web".into()));
    u
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn reasons(api: &FakeApi) -> Vec<String> {
    api.lock()
        .events
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn scales_a_deployment_up_and_writes_hpa_status_and_events() {
    let api = with_web(2);
    let client = api.client();
    let c = Controller::new(
        KubeTarget::new(client.clone()),
        Queue(60),
        KubeRecorder::new(client, Some("test".into()), uids()),
        TokioClock::new(),
        config(),
        ControllerSettings::default(),
    );
    let report = c.sync_once(&mut engine(&api)).await;
    assert!(report.rescaled, "{report:?}");
    let s = api.lock();
    assert_eq!(s.scale_updates, vec![6]);
    assert_eq!(s.deployments["web"].replicas, 6);
    let status = &s.autoscalers["web"]["status"];
    assert_eq!(status["desiredReplicas"], 6);
    assert_eq!(status["currentReplicas"], 2);
    assert_eq!(status["reference"], "Deployment/web");
    // 60 over the 2 replicas read: the average upstream reports.
    assert_eq!(status["targets"], "30/10 (avg)");
    assert_eq!(
        condition(status, "AbleToScale")["reason"],
        "SucceededRescale"
    );
    assert_eq!(
        condition(status, "ScalingActive")["reason"],
        "ValidMetricFound"
    );
    let event = &s.events[0];
    assert_eq!(event["reason"], "SuccessfulRescale");
    assert_eq!(
        event["message"],
        // Upstream prints the selector with %+v: nil when there is none.
        "New size: 6; reason: external metric queue(nil) above target"
    );
    assert_eq!(event["type"], "Normal");
    assert_eq!(event["involvedObject"]["kind"], "Autoscaler");
    assert_eq!(event["involvedObject"]["uid"], "uid-web");
    assert_eq!(event["source"]["component"], "podscale");
    assert_eq!(event["count"], 1);
}

#[tokio::test]
async fn a_failing_metric_keeps_the_replicas_with_scaling_active_false() {
    let api = with_web(3);
    let client = api.client();
    // Prometheus on a port nobody listens on: the real adapter over collect::read.
    let cfg = Config::from_source(
        "prometheus: {url: 'http://127.0.0.1:1', timeout: 1s, retries: 0}\nmetrics:\n- {name: queue, type: external, query: 'sum(queue)'}\n",
        "podscale.yaml",
    )
    .expect("config");
    let sources = Sources::from_config(&cfg).expect("sources");
    let target = KubeTarget::new(client.clone());
    let source = CollectSource::new(cfg, sources, target.addresses());
    let c = Controller::new(
        target,
        source,
        KubeRecorder::new(client, None, uids()),
        TokioClock::new(),
        config(),
        ControllerSettings::default(),
    );
    let mut e = engine(&api);
    let report = c.sync_once(&mut e).await;
    assert!(!report.rescaled);
    // The same failure again: one event, its count bumped (client-go's correlator).
    c.sync_once(&mut e).await;
    assert!(report.error.is_some());
    let s = api.lock();
    assert!(s.scale_updates.is_empty());
    assert!(!s.log.iter().any(|l| l.starts_with("PUT")), "{:?}", s.log);
    let status = &s.autoscalers["web"]["status"];
    let active = condition(status, "ScalingActive");
    assert_eq!(active["status"], "False");
    assert_eq!(active["reason"], "FailedGetExternalMetric");
    // Upstream leaves desiredReplicas as it was (never computed here) on a failure.
    assert_eq!(status["currentReplicas"], 3);
    drop(s);
    // Upstream records both, on every failed sync.
    assert_eq!(
        reasons(&api),
        ["FailedGetExternalMetric", "FailedComputeMetricsReplicas"]
    );
    assert!(api.lock().events.iter().all(|e| e["count"] == 2));
}

#[tokio::test]
async fn a_conflict_on_scale_is_retried_on_fresh_reads() {
    let api = with_web(2);
    api.lock().conflicts = 1;
    let client = api.client();
    let c = Controller::new(
        KubeTarget::new(client.clone()),
        Queue(60),
        KubeRecorder::new(client, None, uids()),
        TokioClock::new(),
        config(),
        ControllerSettings::default(),
    );
    let report = c.sync_once(&mut engine(&api)).await;
    assert!(report.rescaled, "{report:?}");
    let s = api.lock();
    assert_eq!(s.conflicts_answered, 1);
    assert_eq!(s.scale_updates, vec![6]);
    let gets = s
        .log
        .iter()
        .filter(|l| l.starts_with("GET") && l.ends_with("/scale"))
        .count();
    assert_eq!(
        gets, 2,
        "the scale is read again after the conflict: {:?}",
        s.log
    );
    assert_eq!(c.stats().snapshot().conflicts_retried, 1);
}

#[tokio::test]
async fn the_status_keeps_the_history_and_a_new_instance_restores_it() {
    let api = with_web(2);
    let client = api.client();
    let c = Controller::new(
        KubeTarget::new(client.clone()),
        Queue(60),
        KubeRecorder::new(client, None, uids()),
        TokioClock::new(),
        config(),
        ControllerSettings::default(),
    );
    let mut first = engine(&api);
    c.sync_once(&mut first).await;
    let stored = object(&api, "web");
    let history = stored.history().expect("history in the status");
    assert_eq!(&history, first.history());
    assert_eq!(history.scale_events.len(), 1);
    assert_eq!(history.scale_events[0].replica_change, 4);
    assert!(
        !history
            .recommendations
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    );
    // A second instance (after a restart or a leader change) gets it with the object.
    match stored
        .to_update(&ControllerSettings::default())
        .expect("update")
    {
        Update::Apply {
            history: restored, ..
        } => assert_eq!(restored.as_ref(), Some(&history)),
        other => panic!("an apply, not {other:?}"),
    }
    // The merge patch replaced the status: absent fields were sent as null.
    let patch = &api.lock().status_patches[0];
    assert!(patch["status"].get("lastScaleTime").is_some());
}

#[tokio::test(start_paused = true)]
async fn shadow_mode_recommends_and_never_writes() {
    let api = with_web(2);
    let client = api.client();
    let recorder = MemoryRecorder::new(16);
    let c = Controller::new(
        Shadow::new(KubeTarget::new(client)),
        Queue(60),
        recorder.clone(),
        TokioClock::new(),
        config(),
        ControllerSettings::default(),
    );
    let (tx, rx) = mpsc::channel(4);
    let (stop_tx, stop_rx) = watch::channel(false);
    tx.send(
        object(&api, "web")
            .to_update(&ControllerSettings::default())
            .expect("update"),
    )
    .await
    .expect("sent");
    let run = tokio::spawn({
        let c = c.clone();
        async move { c.run(rx, stop_rx).await }
    });
    tokio::time::sleep(Duration::from_secs(40)).await;
    stop_tx.send(true).expect("stop");
    run.await.expect("joined");
    let key = Key::new("default", "web");
    assert_eq!(c.target().recommendation(&key), Some(6));
    let s = api.lock();
    assert!(
        s.log.iter().all(|l| l.starts_with("GET")),
        "only reads: {:?}",
        s.log
    );
    assert!(s.scale_updates.is_empty() && s.status_patches.is_empty() && s.events.is_empty());
    assert_eq!(s.deployments["web"].replicas, 2);
    assert!(recorder.get(&key).is_some_and(|r| r.status_writes >= 1));
}

/// A shadow controller over Autoscaler `web` whose scale-up policy allows 4 pods per
/// 60 s, with the External metric `queue` at `queue`; runs until the returned sender
/// stops it.
async fn shadow_loop(
    api: &FakeApi,
    queue: i64,
) -> (
    Controller<Shadow<KubeTarget>, Queue, MemoryRecorder, TokioClock>,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    api.lock().autoscalers.get_mut("web").expect("web")["spec"]["behavior"] = serde_json::json!(
        {"scaleUp": {"stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}}
    );
    let c = Controller::new(
        Shadow::new(KubeTarget::new(api.client())),
        Queue(queue),
        MemoryRecorder::new(16),
        TokioClock::new(),
        config(),
        ControllerSettings::default(),
    );
    let (tx, rx) = mpsc::channel(4);
    let (stop_tx, stop_rx) = watch::channel(false);
    tx.send(
        object(api, "web")
            .to_update(&ControllerSettings::default())
            .expect("update"),
    )
    .await
    .expect("sent");
    let run = tokio::spawn({
        let c = c.clone();
        async move { c.run(rx, stop_rx).await }
    });
    (c, stop_tx, run)
}

fn desired(c: &Controller<Shadow<KubeTarget>, Queue, MemoryRecorder, TokioClock>) -> Option<i32> {
    c.view(&Key::new("default", "web"))
        .and_then(|v| v.last)
        .and_then(|l| l.desired_replicas)
}

#[tokio::test(start_paused = true)]
async fn shadow_decisions_are_not_limited_by_scales_it_only_pretended() {
    // Nobody scales the Deployment: the real controller, given that history, would
    // recommend 6 (2 + the 4 pods the policy allows) at every sync. A shadow that
    // counted its own pretend write as a scale event would find the policy budget
    // spent and recommend 2 from the second sync on.
    let api = with_web(2);
    let (c, stop, run) = shadow_loop(&api, 60).await;
    // Syncs at 0, 15, 30 and 45 s; each looked at one second later.
    let mut seen = Vec::new();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..4 {
        seen.push(desired(&c));
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    stop.send(true).expect("stop");
    run.await.expect("joined");
    assert_eq!(seen, [Some(6); 4]);
    assert_eq!(
        c.view(&Key::new("default", "web")).map(|v| v.syncs),
        Some(5)
    );
    assert!(
        c.view(&Key::new("default", "web"))
            .is_some_and(|v| v.history.scale_events.is_empty()),
        "no scale event for a write that never happened"
    );
    assert!(api.lock().scale_updates.is_empty());
}

#[tokio::test(start_paused = true)]
async fn shadow_counts_the_scale_changes_it_sees_on_the_target() {
    // At 5 s the built-in HPA scales the Deployment 2 -> 6 (spending its 4 pods per
    // 60 s). Given that history the real controller keeps 6 until the minute is over,
    // although the metric asks for 10; a shadow that ignored the change would say 10.
    let api = with_web(2);
    let (c, stop, run) = shadow_loop(&api, 100).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = desired(&c);
    tokio::time::sleep(Duration::from_secs(4)).await;
    {
        let mut s = api.lock();
        s.deployments.get_mut("web").expect("web").replicas = 6;
        s.pods = (0..6)
            .map(|i| common::pod(&format!("web-{i}"), true))
            .collect();
    }
    tokio::time::sleep(Duration::from_secs(11)).await;
    let after_change = desired(&c);
    // The change was seen at 15 s: the budget it spent is free again from 75 s.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after_the_period = desired(&c);
    stop.send(true).expect("stop");
    run.await.expect("joined");
    assert_eq!(first, Some(6));
    assert_eq!(after_change, Some(6));
    assert_eq!(after_the_period, Some(10));
    let events = c
        .view(&Key::new("default", "web"))
        .map(|v| v.history.scale_events)
        .unwrap_or_default();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].replica_change, 4);
    assert!(api.lock().scale_updates.is_empty());
}

#[tokio::test]
async fn a_workload_a_standard_hpa_scales_is_refused() {
    let api = with_web(2);
    let client = api.client();
    let (store, mut writer) = reflector::store();
    let hpa: k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-hpa", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 5}
    }))
    .expect("hpa");
    writer.apply_watcher_event(&watcher::Event::Apply(hpa));
    let c = Controller::new(
        KubeTarget::new(client.clone()).refusing_hpa_targets(store),
        Queue(60),
        KubeRecorder::new(client, None, uids()),
        TokioClock::new(),
        config(),
        ControllerSettings::default(),
    );
    let report = c.sync_once(&mut engine(&api)).await;
    assert!(!report.rescaled);
    let s = api.lock();
    assert!(s.scale_updates.is_empty());
    assert!(
        !s.log.iter().any(|l| l.contains("/scale")),
        "not even read: {:?}",
        s.log
    );
    let status = &s.autoscalers["web"]["status"];
    let able = condition(status, "AbleToScale");
    assert_eq!(able["status"], "False");
    assert_eq!(able["reason"], "FailedGetScale");
    let msg = able["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("HorizontalPodAutoscaler \"web-hpa\" already scales it"),
        "{msg}"
    );
    assert_eq!(s.events[0]["reason"], "FailedGetScale");
    assert_eq!(s.events[0]["type"], "Warning");
}

#[tokio::test]
async fn errors_map_to_what_the_loop_does_next() {
    use podscale_runtime::ScaleTarget as _;
    let api = with_web(2);
    let target = KubeTarget::new(api.client());
    let mut hpa = object(&api, "web").to_hpa();
    hpa.spec.scale_target_ref.name = "missing".into();
    let e = target.get_scale(&hpa).await.expect_err("404");
    assert_eq!(e.kind(), "permanent");
    assert_eq!(e.to_string(), "deployments.apps \"missing\" not found");
    hpa.spec.scale_target_ref.kind = "ControllerRevision".into();
    let e = target.get_scale(&hpa).await.expect_err("no scale");
    assert!(e.to_string().contains("has no scale subresource"), "{e}");
    hpa.spec.scale_target_ref.kind = "Gizmo".into();
    let e = target.get_scale(&hpa).await.expect_err("no kind");
    assert_eq!(
        e.to_string(),
        "no matches for kind \"Gizmo\" in version \"apps/v1\""
    );
}
