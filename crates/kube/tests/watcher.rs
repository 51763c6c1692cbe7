//! `podscale run` end to end against the in-process fake API server (see `common`):
//! the real wiring of `run::run` — the kube-runtime watch of Autoscalers feeding the
//! runtime's Controller, the HPA watch, KubeTarget, KubeRecorder and the external
//! metrics API read through the controller's connection — on tokio's paused clock.
mod common;

use std::time::Duration;

use common::{FakeApi, autoscaler, hpa, with_web};
use podscale_core::ControllerSettings;
use podscale_kube::annotate::ANNOTATION;
use podscale_kube::run::{LoopConfig, RunOptions, run};
use podscale_metrics::config::Config;
use serde_json::Value;
use tokio::sync::watch;

fn options() -> RunOptions {
    RunOptions {
        namespace: Some("default".into()),
        shadow: false,
        shadow_annotate: false,
        lease: None,
        metrics_addr: None,
        settings: ControllerSettings::default(),
        loop_config: LoopConfig {
            jitter: 0.0,
            ..LoopConfig::default()
        },
        // No `--config`: metrics come from the metrics APIs.
        metrics: Config::default(),
        identity: "test".into(),
    }
}

fn scale_reads(api: &FakeApi) -> usize {
    api.lock()
        .log
        .iter()
        .filter(|l| l.starts_with("GET") && l.ends_with("/deployments/web/scale"))
        .count()
}

fn status(api: &FakeApi) -> Value {
    api.lock()
        .autoscalers
        .get("web")
        .map(|a| a["status"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test(start_paused = true)]
async fn the_watch_feeds_creates_updates_and_deletes_into_the_loop() {
    let api = FakeApi::default();
    {
        let mut s = api.lock();
        // The Deployment and its pods exist; the Autoscaler does not yet.
        *s = std::mem::take(&mut *with_web(2).lock());
        s.delete_autoscaler("web");
        s.external.insert("queue".into(), 60);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let controller = tokio::spawn(run(api.client(), options(), stop_rx));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(scale_reads(&api), 0, "nothing to sync yet");
    {
        let s = api.lock();
        assert!(
            s.log
                .iter()
                .any(|l| l.contains("/autoscalers?") && l.contains("watch=true")),
            "the Autoscalers are watched: {:?}",
            s.log
        );
    }

    // Created: synced at once (no jitter), the scale written, the status written.
    api.lock().put_autoscaler(autoscaler("web"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(api.lock().scale_updates, vec![6]);
    let st = status(&api);
    assert_eq!(st["desiredReplicas"], 6, "{st}");
    assert_eq!(st["currentReplicas"], 2);
    assert!(
        api.lock()
            .events
            .iter()
            .any(|e| e["reason"] == "SuccessfulRescale"),
        "an event"
    );

    // Updated: the new spec (at most 4 replicas) is taken at the next sync, 15 s after
    // the first; the status the controller wrote is kept on the object.
    {
        let mut s = api.lock();
        let mut a = s.autoscalers["web"].clone();
        a["spec"]["maxReplicas"] = 4.into();
        s.put_autoscaler(a);
    }
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(api.lock().scale_updates, vec![6, 4]);
    assert_eq!(api.lock().deployments["web"].replicas, 4);
    let st = status(&api);
    assert_eq!(st["desiredReplicas"], 4, "{st}");
    // Upstream's path for a target above the new maximum.
    assert!(
        api.lock().events.iter().any(|e| e["message"]
            == "New size: 4; reason: Current number of replicas above Spec.MaxReplicas"),
        "{:?}",
        api.lock().events
    );

    // Deleted: its task stops — no more reads of the target, whatever the metric says.
    api.lock().delete_autoscaler("web");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reads = scale_reads(&api);
    let patches = api.lock().status_patches.len();
    api.lock().external.insert("queue".into(), 10);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(scale_reads(&api), reads, "no sync after the delete");
    assert_eq!(api.lock().status_patches.len(), patches);
    assert_eq!(api.lock().deployments["web"].replicas, 4);

    stop_tx.send(true).expect("stop");
    let result = tokio::time::timeout(Duration::from_secs(30), controller)
        .await
        .expect("stops on shutdown")
        .expect("joined");
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn autoscalers_that_exist_before_the_start_are_listed_and_synced() {
    let api = with_web(2);
    api.lock().external.insert("queue".into(), 60);
    let (stop_tx, stop_rx) = watch::channel(false);
    let controller = tokio::spawn(run(api.client(), options(), stop_rx));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(api.lock().scale_updates, vec![6]);
    // The external metrics API was asked, through the controller's connection.
    assert!(
        api.lock()
            .log
            .iter()
            .any(|l| l == "GET /apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue"),
        "{:?}",
        api.lock().log
    );
    stop_tx.send(true).expect("stop");
    let result = tokio::time::timeout(Duration::from_secs(30), controller)
        .await
        .expect("stops on shutdown")
        .expect("joined");
    assert!(result.is_ok(), "{result:?}");
}

/// Shadow mode over standard HPA `web` (Deployment `web` at 2 replicas, the external
/// metric `queue` at `queue`): the Autoscaler of `with_web` is gone, the HPA is there.
fn shadow_api(queue: i64) -> FakeApi {
    let api = with_web(2);
    {
        let mut s = api.lock();
        s.delete_autoscaler("web");
        s.hpas.push(hpa("web"));
        s.external.insert("queue".into(), queue);
    }
    api
}

fn shadow_options(annotate: bool) -> RunOptions {
    RunOptions {
        shadow: true,
        shadow_annotate: annotate,
        ..options()
    }
}

/// The annotation on HPA `web`, parsed.
fn annotation(api: &FakeApi) -> Option<Value> {
    let s = api.lock();
    let a = s.hpas[0]["metadata"]["annotations"][ANNOTATION].as_str()?;
    Some(serde_json::from_str(a).expect("the annotation is JSON"))
}

/// Every request that is not a read, `METHOD path`.
fn writes(api: &FakeApi) -> Vec<String> {
    api.lock()
        .log
        .iter()
        .filter(|l| !l.starts_with("GET "))
        .cloned()
        .collect()
}

async fn stop(
    stop_tx: watch::Sender<bool>,
    controller: tokio::task::JoinHandle<Result<(), podscale_kube::run::RunError>>,
) {
    stop_tx.send(true).expect("stop");
    let result = tokio::time::timeout(Duration::from_secs(30), controller)
        .await
        .expect("stops on shutdown")
        .expect("joined");
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test(start_paused = true)]
async fn shadow_annotate_writes_the_recommendation_on_the_hpa_only_when_it_changes() {
    let api = shadow_api(60);
    let (stop_tx, stop_rx) = watch::channel(false);
    let controller = tokio::spawn(run(api.client(), shadow_options(true), stop_rx));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The first sync: 60 / 10 = 6 replicas, from 2, limited to 4 (an HPA without a
    // behavior scales up to max(2 × current, 4), upstream's `scaleUpLimitFactor` and
    // `scaleUpLimitMinimum`); written on the HPA.
    let a = annotation(&api).expect("annotated after the first sync");
    assert_eq!(a["desiredReplicas"], 4, "{a}");
    assert_eq!(a["currentReplicas"], 2, "{a}");
    assert_eq!(
        a["reason"], "external metric queue(nil) above target",
        "{a}"
    );
    let time = a["time"].as_str().expect("time");
    assert!(time.parse::<jiff::Timestamp>().is_ok(), "{time}");
    // Only the annotation, as a merge patch: no spec, no status.
    let written = api.lock().hpas[0]["metadata"]["annotations"][ANNOTATION].clone();
    assert_eq!(
        api.lock().hpa_patches,
        vec![serde_json::json!({"metadata": {"annotations": {ANNOTATION: written}}})]
    );

    // Four more syncs with the same recommendation: no more writes.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(scale_reads(&api) >= 5, "synced: {}", scale_reads(&api));
    assert_eq!(
        api.lock().hpa_patches.len(),
        1,
        "{:?}",
        api.lock().hpa_patches
    );

    // The built-in HPA scales the Deployment to 4: from 4, 60 / 10 = 6 is within the
    // limit (8). A new recommendation, written once.
    {
        let mut s = api.lock();
        let d = s.deployments.get_mut("web").expect("web");
        d.replicas = 4;
        d.resource_version += 1;
        s.pods = (0..4)
            .map(|i| common::pod(&format!("web-{i}"), true))
            .collect();
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    let a = annotation(&api).expect("annotated");
    assert_eq!(a["desiredReplicas"], 6, "{a}");
    assert_eq!(a["currentReplicas"], 4, "{a}");
    assert_eq!(
        api.lock().hpa_patches.len(),
        2,
        "{:?}",
        api.lock().hpa_patches
    );

    // Never a write to /scale, to the status, or of anything else.
    assert!(api.lock().scale_updates.is_empty());
    assert_eq!(api.lock().deployments["web"].replicas, 4);
    assert_eq!(
        writes(&api),
        vec![
            "PATCH /apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web?&fieldManager=podscale".to_owned();
            2
        ]
    );
    stop(stop_tx, controller).await;
}

#[tokio::test(start_paused = true)]
async fn shadow_annotate_does_not_rewrite_what_the_hpa_already_says() {
    // A restart: the HPA carries the annotation an earlier run wrote (another time).
    let api = shadow_api(60);
    {
        let mut s = api.lock();
        s.hpas[0]["metadata"]["annotations"] = serde_json::json!({ANNOTATION:
            r#"{"desiredReplicas":4,"currentReplicas":2,"time":"2020-01-01T00:00:00Z","reason":"external metric queue(nil) above target"}"#});
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let controller = tokio::spawn(run(api.client(), shadow_options(true), stop_rx));
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(scale_reads(&api) >= 3, "synced: {}", scale_reads(&api));
    assert!(writes(&api).is_empty(), "{:?}", writes(&api));
    stop(stop_tx, controller).await;
}

#[tokio::test(start_paused = true)]
async fn shadow_annotate_does_not_rewrite_while_the_watch_lags_behind_its_own_patch() {
    let api = shadow_api(60);
    api.lock().hpa_watch_lags = true;
    let (stop_tx, stop_rx) = watch::channel(false);
    let controller = tokio::spawn(run(api.client(), shadow_options(true), stop_rx));
    tokio::time::sleep(Duration::from_secs(46)).await;
    assert!(scale_reads(&api) >= 4, "synced: {}", scale_reads(&api));
    assert_eq!(
        api.lock().hpa_patches.len(),
        1,
        "{:?}",
        api.lock().hpa_patches
    );
    assert_eq!(annotation(&api).expect("annotated")["desiredReplicas"], 4);
    stop(stop_tx, controller).await;
}

#[tokio::test(start_paused = true)]
async fn shadow_without_annotate_writes_nothing() {
    let api = shadow_api(60);
    let (stop_tx, stop_rx) = watch::channel(false);
    let controller = tokio::spawn(run(api.client(), shadow_options(false), stop_rx));
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(scale_reads(&api) >= 3, "synced: {}", scale_reads(&api));
    assert!(writes(&api).is_empty(), "{:?}", writes(&api));
    assert!(annotation(&api).is_none());
    assert_eq!(api.lock().deployments["web"].replicas, 2);
    stop(stop_tx, controller).await;
}

#[tokio::test]
async fn shadow_annotate_without_shadow_is_refused() {
    let api = shadow_api(60);
    let (_stop_tx, stop_rx) = watch::channel(false);
    let opts = RunOptions {
        shadow_annotate: true,
        ..options()
    };
    let err = run(api.client(), opts, stop_rx).await.expect_err("refused");
    assert!(
        err.to_string().contains("--shadow-annotate needs --shadow"),
        "{err}"
    );
    assert!(api.lock().log.is_empty(), "{:?}", api.lock().log);
}
