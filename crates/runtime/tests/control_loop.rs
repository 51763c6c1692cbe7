//! The control loop against an in-memory target and metric source, on tokio's paused
//! clock: minutes of syncs run in milliseconds and no test sleeps for real.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use podscale_core::ControllerSettings;
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::{Fetched, ObservedMetrics, Pod};
use podscale_runtime::controller::Update;
use podscale_runtime::recorder::Recorded;
use podscale_runtime::sync::LoopConfig;
use podscale_runtime::{
    AutoscalerOptions, Clock, Controller, Key, MemoryRecorder, MetricSource, Scale, ScaleTarget,
    Shadow, TargetError, TokioClock,
};
use tokio::sync::{mpsc, watch};

const START: &str = "2024-06-01T12:00:00Z";

#[derive(Debug, Default)]
struct TargetState {
    replicas: i32,
    get_failures: VecDeque<TargetError>,
    set_failures: VecDeque<TargetError>,
    get_calls: Vec<Timestamp>,
    set_calls: Vec<i32>,
}

/// A Deployment-like target whose pods are all Running and Ready.
#[derive(Debug, Clone)]
struct FakeTarget {
    state: Arc<Mutex<TargetState>>,
    clock: TokioClock,
}

impl FakeTarget {
    fn new(replicas: i32, clock: TokioClock) -> Self {
        Self {
            state: Arc::new(Mutex::new(TargetState {
                replicas,
                ..TargetState::default()
            })),
            clock,
        }
    }

    fn replicas(&self) -> i32 {
        self.state.lock().expect("lock").replicas
    }

    fn with<R>(&self, f: impl FnOnce(&mut TargetState) -> R) -> R {
        f(&mut self.state.lock().expect("lock"))
    }
}

impl ScaleTarget for FakeTarget {
    async fn get_scale(&self, _hpa: &HorizontalPodAutoscaler) -> Result<Scale, TargetError> {
        let now = self.clock.now();
        self.with(|s| {
            s.get_calls.push(now);
            if let Some(e) = s.get_failures.pop_front() {
                return Err(e);
            }
            Ok(Scale {
                spec_replicas: s.replicas,
                status_replicas: s.replicas,
                selector: Some("app=web".into()),
            })
        })
    }

    async fn list_pods(
        &self,
        _hpa: &HorizontalPodAutoscaler,
        _selector: Option<&str>,
    ) -> Result<Vec<Pod>, TargetError> {
        let n = self.replicas();
        Ok((0..n)
            .map(|i| {
                serde_json::from_value(serde_json::json!({
                    "name": format!("web-{i}"), "labels": {"app": "web"}, "phase": "Running", "ready": true,
                    "startTime": "2024-06-01T11:00:00Z", "readyTransitionTime": "2024-06-01T11:00:00Z"
                }))
                .expect("pod")
            })
            .collect())
    }

    async fn set_replicas(
        &self,
        _hpa: &HorizontalPodAutoscaler,
        replicas: i32,
    ) -> Result<(), TargetError> {
        self.with(|s| {
            s.set_calls.push(replicas);
            if let Some(e) = s.set_failures.pop_front() {
                return Err(e);
            }
            s.replicas = replicas;
            Ok(())
        })
    }
}

/// `queue` per pod: a fixed value, an error, or a read that never answers.
#[derive(Debug, Clone)]
enum Reading {
    Value(f64),
    Down(String),
    Hang,
}

#[derive(Debug, Clone)]
struct FakeMetrics(Arc<Mutex<Reading>>);

impl FakeMetrics {
    fn new(r: Reading) -> Self {
        Self(Arc::new(Mutex::new(r)))
    }
    fn set(&self, r: Reading) {
        *self.0.lock().expect("lock") = r;
    }
}

impl MetricSource for FakeMetrics {
    async fn read(
        &self,
        _hpa: &HorizontalPodAutoscaler,
        pods: &[Pod],
        now: Timestamp,
    ) -> ObservedMetrics {
        let reading = self.0.lock().expect("lock").clone();
        let items = match reading {
            Reading::Hang => {
                std::future::pending::<()>().await;
                unreachable!("pending never completes")
            }
            Reading::Down(e) => return serde_json::from_value(serde_json::json!({"pods": {"error": e}})).expect("metrics"),
            Reading::Value(v) => pods
                .iter()
                .map(|p| serde_json::json!({"podName": p.name, "value": format!("{v}"), "timestamp": now.to_string()}))
                .collect::<Vec<_>>(),
        };
        let m: ObservedMetrics = serde_json::from_value(
            serde_json::json!({"pods": [{"metricName": "queue", "items": items}]}),
        )
        .expect("metrics");
        assert!(matches!(m.pods, Some(Fetched::Data(_))));
        m
    }
}

fn hpa(behavior: Option<serde_json::Value>) -> HorizontalPodAutoscaler {
    let mut spec = serde_json::json!({
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 20,
        "metrics": [{"type": "Pods", "pods": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]
    });
    if let Some(b) = behavior {
        spec["behavior"] = b;
    }
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "ml"}, "spec": spec
    }))
    .expect("hpa")
}

type TestController<T> = Controller<T, FakeMetrics, MemoryRecorder, TokioClock>;

struct Harness<T: ScaleTarget> {
    controller: TestController<T>,
    updates: mpsc::Sender<Update>,
    shutdown: watch::Sender<bool>,
    run: tokio::task::JoinHandle<()>,
}

fn config() -> LoopConfig {
    LoopConfig {
        jitter: 0.0,
        ..LoopConfig::default()
    }
}

async fn start<T: ScaleTarget + Clone>(
    target: T,
    metrics: FakeMetrics,
    config: LoopConfig,
    may_write: Option<watch::Receiver<bool>>,
    hpa: HorizontalPodAutoscaler,
    history: Option<podscale_core::history::History>,
) -> Harness<T> {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let recorder = MemoryRecorder::new(100);
    let settings = ControllerSettings::default();
    let controller = match may_write {
        Some(rx) => {
            Controller::with_leadership(target, metrics, recorder, clock, config, settings, rx)
        }
        None => Controller::new(target, metrics, recorder, clock, config, settings),
    };
    let (tx, rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let c = controller.clone();
    let run = tokio::spawn(async move { c.run(rx, stop_rx).await });
    tx.send(Update::Apply {
        hpa: Box::new(hpa),
        history,
        options: AutoscalerOptions::default(),
    })
    .await
    .expect("send");
    Harness {
        controller,
        updates: tx,
        shutdown: stop_tx,
        run,
    }
}

impl<T: ScaleTarget> Harness<T> {
    fn recorded(&self) -> Recorded {
        self.controller
            .recorder()
            .get(&Key::new("ml", "web"))
            .unwrap_or_default()
    }

    async fn stop(self) {
        self.shutdown.send(true).expect("stop");
        self.run.await.expect("run ends");
    }
}

fn condition(r: &Recorded, type_: &str) -> (String, String) {
    let c = r
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {r:?}"));
    (c.status.clone(), c.reason.clone())
}

async fn wait(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

#[tokio::test(start_paused = true)]
async fn an_overloaded_target_is_scaled_up_with_status_and_events() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Value(30.0)),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(1).await;
    // 2 pods at 30 against 10: 6, limited by the legacy scale-up rate max(2×2, 4) = 4.
    assert_eq!(target.replicas(), 4);
    let r = h.recorded();
    assert_eq!(r.status.as_ref().map(|s| s.desired_replicas), Some(4));
    assert_eq!(condition(&r, "ScalingActive").1, "ValidMetricFound");
    assert!(
        r.events.iter().any(|e| e.reason == "SuccessfulRescale"
            && e.message == "New size: 4; reason: pods metric queue above target"),
        "{:?}",
        r.events
    );
    // The next sync, 15 s later: 4 pods at 30 ask for 12, the rate allows max(2×4, 4) = 8.
    wait(15).await;
    assert_eq!(target.replicas(), 8);
    assert_eq!(h.controller.stats().snapshot().rescales, 2);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_scale_down_waits_for_the_stabilization_window() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(8, clock);
    let metrics = FakeMetrics::new(Reading::Value(10.0));
    let h = start(
        target.clone(),
        metrics.clone(),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(20).await;
    assert_eq!(target.replicas(), 8);
    metrics.set(Reading::Value(2.0));
    // The 300 s window still holds the earlier recommendation of 8.
    wait(250).await;
    assert_eq!(target.replicas(), 8);
    assert_eq!(
        condition(&h.recorded(), "AbleToScale").1,
        "ScaleDownStabilized"
    );
    wait(90).await;
    assert_eq!(target.replicas(), 2);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_metric_keeps_the_replicas_and_marks_scaling_inactive() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(5, clock);
    let metrics = FakeMetrics::new(Reading::Down("prometheus: connection refused".into()));
    let h = start(target.clone(), metrics, config(), None, hpa(None), None).await;
    wait(100).await;
    assert_eq!(target.replicas(), 5);
    assert!(target.with(|s| s.set_calls.is_empty()));
    let r = h.recorded();
    assert_eq!(
        condition(&r, "ScalingActive"),
        ("False".to_string(), "FailedGetPodsMetric".to_string())
    );
    assert!(
        r.events
            .iter()
            .any(|e| e.reason == "FailedComputeMetricsReplicas")
    );
    // Metric failures retry with backoff, sooner than the period: 1, 2, 4, 8, 15, 15 …
    let calls = target.with(|s| s.get_calls.len());
    assert!(calls > 100 / 15 + 1, "only {calls} syncs in 100 s");
    assert!(h.controller.stats().snapshot().metric_failures >= 5);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_metrics_read_that_hangs_times_out_and_changes_nothing() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(3, clock);
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Hang),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(30).await;
    assert_eq!(target.replicas(), 3);
    assert_eq!(condition(&h.recorded(), "ScalingActive").0, "False");
    assert!(h.controller.stats().snapshot().timeouts >= 1);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_conflict_on_the_scale_update_is_retried_on_fresh_reads() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    target.with(|s| {
        s.set_failures
            .push_back(TargetError::Conflict("the object has been modified".into()))
    });
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Value(30.0)),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(1).await;
    assert_eq!(target.replicas(), 4);
    assert_eq!(target.with(|s| s.set_calls.clone()), [4, 4]);
    // Read twice: once per attempt.
    assert_eq!(target.with(|s| s.get_calls.len()), 2);
    let stats = h.controller.stats().snapshot();
    assert_eq!(
        (
            stats.conflicts_retried,
            stats.rescales,
            stats.rescale_failures
        ),
        (1, 1, 0)
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_scale_update_takes_the_upstream_failure_path() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    target.with(|s| {
        s.set_failures
            .push_back(TargetError::Permanent("forbidden".into()))
    });
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Value(30.0)),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(1).await;
    assert_eq!(target.replicas(), 2);
    let r = h.recorded();
    assert_eq!(
        condition(&r, "AbleToScale"),
        ("False".into(), "FailedUpdateScale".into())
    );
    assert!(r.events.iter().any(|e| e.reason == "FailedRescale"));
    // The next sync succeeds.
    wait(15).await;
    assert_eq!(target.replicas(), 4);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn api_errors_back_off_exponentially() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    target.with(|s| {
        for _ in 0..6 {
            s.get_failures
                .push_back(TargetError::Transient("429 Too Many Requests".into()));
        }
    });
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Value(10.0)),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(200).await;
    let times = target.with(|s| s.get_calls.clone());
    let gaps: Vec<i64> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs())
        .collect();
    // 1, 2, 4, 8, 16, 32 s after each failure, then the 15 s period once it succeeds.
    assert_eq!(&gaps[..7], &[1, 2, 4, 8, 16, 32, 15], "{gaps:?}");
    let r = h.recorded();
    assert_eq!(condition(&r, "AbleToScale").0, "True");
    assert!(r.events.iter().any(|e| e.reason == "FailedGetScale"));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_status_is_not_rewritten_when_nothing_changed() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(4, clock);
    let cfg = LoopConfig {
        history_flush_interval: Duration::from_secs(3600),
        ..config()
    };
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Value(10.0)),
        cfg,
        None,
        hpa(None),
        None,
    )
    .await;
    wait(600).await;
    let r = h.recorded();
    let syncs = h.controller.stats().snapshot().syncs;
    assert!(syncs >= 40, "{syncs} syncs");
    assert_eq!(
        r.status_writes, 1,
        "steady state wrote the status {} times",
        r.status_writes
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_steady_history_is_flushed_at_the_configured_interval() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(4, clock);
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Value(10.0)),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(600).await;
    let writes = h.recorded().status_writes;
    // One for the first status, then one a minute for the moving timestamps.
    assert!((9..=12).contains(&writes), "{writes} writes in 10 min");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_with_the_persisted_history_decides_as_without_a_restart() {
    // One pod per minute at most: after a scale-up, the next must wait a minute.
    let slow = || {
        hpa(Some(
            serde_json::json!({"scaleUp": {"stabilizationWindowSeconds": 0,
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}),
        ))
    };
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    let metrics = FakeMetrics::new(Reading::Value(50.0));
    let h = start(
        target.clone(),
        metrics.clone(),
        config(),
        None,
        slow(),
        None,
    )
    .await;
    wait(1).await;
    assert_eq!(target.replicas(), 3);
    let history = h.recorded().history;
    assert_eq!(history.scale_events.len(), 1);
    h.stop().await;
    // A new controller (a restart, a new leader) restores the history from status: the
    // scale event of a second ago still limits it.
    let restored = start(
        target.clone(),
        metrics.clone(),
        config(),
        None,
        slow(),
        Some(history),
    )
    .await;
    wait(30).await;
    assert_eq!(
        target.replicas(),
        3,
        "the rate limit must survive the restart"
    );
    wait(45).await;
    assert_eq!(target.replicas(), 4);
    restored.stop().await;
    // Without it (kube-controller-manager after a restart), the limit is forgotten.
    let forgetful = start(target.clone(), metrics, config(), None, slow(), None).await;
    wait(1).await;
    assert_eq!(target.replicas(), 5);
    forgetful.stop().await;
}

#[tokio::test(start_paused = true)]
async fn losing_the_lease_stops_all_writes() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    let metrics = FakeMetrics::new(Reading::Value(10.0));
    let (lease_tx, lease_rx) = watch::channel(true);
    let h = start(
        target.clone(),
        metrics.clone(),
        config(),
        Some(lease_rx),
        hpa(None),
        None,
    )
    .await;
    wait(20).await;
    let before = h.recorded();
    lease_tx.send(false).expect("lease");
    metrics.set(Reading::Value(50.0));
    wait(120).await;
    assert_eq!(target.replicas(), 2, "a follower never scales");
    assert!(target.with(|s| s.set_calls.is_empty()));
    let after = h.recorded();
    assert_eq!(after.status_writes, before.status_writes);
    assert_eq!(after.events.len(), before.events.len());
    assert!(h.controller.stats().snapshot().skipped_not_leader > 0);
    // Leadership regained: it scales again.
    lease_tx.send(true).expect("lease");
    wait(20).await;
    assert!(target.replicas() > 2);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shadow_mode_records_and_never_writes() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    let shadow = Shadow::new(target.clone());
    let h = start(
        shadow,
        FakeMetrics::new(Reading::Value(30.0)),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(60).await;
    assert_eq!(target.replicas(), 2);
    assert!(target.with(|s| s.set_calls.is_empty()));
    assert_eq!(
        h.controller.target().recommendation(&Key::new("ml", "web")),
        Some(4)
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn updates_apply_at_the_next_sync_and_deletes_forget() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Value(30.0)),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(1).await;
    assert_eq!(target.replicas(), 4);
    let mut capped = hpa(None);
    capped.spec.max_replicas = 5;
    h.updates
        .send(Update::Apply {
            hpa: Box::new(capped),
            history: None,
            options: AutoscalerOptions::default(),
        })
        .await
        .expect("send");
    wait(60).await;
    assert_eq!(target.replicas(), 5);
    h.updates
        .send(Update::Delete(Key::new("ml", "web")))
        .await
        .expect("send");
    wait(1).await;
    let syncs = h.controller.stats().snapshot().syncs;
    wait(120).await;
    assert_eq!(
        h.controller.stats().snapshot().syncs,
        syncs,
        "a deleted autoscaler is not synced"
    );
    assert!(h.controller.view(&Key::new("ml", "web")).is_none());
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_per_autoscaler_sync_period_overrides_the_default() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Value(10.0)),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    h.updates
        .send(Update::Apply {
            hpa: Box::new(hpa(None)),
            history: None,
            options: AutoscalerOptions {
                sync_period: Some(Duration::from_secs(1)),
                settings: None,
            },
        })
        .await
        .expect("send");
    wait(16).await;
    let before = target.with(|s| s.get_calls.len());
    wait(10).await;
    let after = target.with(|s| s.get_calls.len());
    assert!(
        (9..=11).contains(&(after - before)),
        "{} syncs in 10 s",
        after - before
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_every_task() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Value(10.0)),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(1).await;
    let stop = h.shutdown.clone();
    stop.send(true).expect("stop");
    tokio::time::timeout(Duration::from_secs(60), h.run)
        .await
        .expect("run returns after shutdown")
        .expect("no panic");
}

#[tokio::test(start_paused = true)]
async fn an_invalid_autoscaler_is_not_synced_and_says_why() {
    let clock = TokioClock::starting_at(START.parse().expect("ts"));
    let target = FakeTarget::new(2, clock);
    let h = start(
        target.clone(),
        FakeMetrics::new(Reading::Value(30.0)),
        config(),
        None,
        hpa(None),
        None,
    )
    .await;
    wait(1).await;
    assert_eq!(target.replicas(), 4);
    let message = "spec.podscale.syncPeriod: \"0s\": must be more than 0 and at most 1h";
    h.updates
        .send(Update::Invalid {
            hpa: Box::new(hpa(None)),
            message: message.into(),
        })
        .await
        .expect("send");
    wait(1).await;
    let syncs = h.controller.stats().snapshot().syncs;
    wait(120).await;
    assert_eq!(
        h.controller.stats().snapshot().syncs,
        syncs,
        "an invalid autoscaler is not synced"
    );
    assert_eq!(target.replicas(), 4);
    let r = h.recorded();
    assert_eq!(
        condition(&r, "ScalingActive"),
        ("False".to_string(), "InvalidOptions".to_string())
    );
    assert!(
        r.events
            .iter()
            .any(|e| e.reason == "InvalidOptions" && e.message == message)
    );
    h.stop().await;
}
