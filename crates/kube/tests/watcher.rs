//! `podscale run` end to end against the in-process fake API server (see `common`):
//! the real wiring of `run::run` — the kube-runtime watch of Autoscalers feeding the
//! runtime's Controller, the HPA watch, KubeTarget, KubeRecorder and the external
//! metrics API read through the controller's connection — on tokio's paused clock.
mod common;

use std::time::Duration;

use common::{FakeApi, autoscaler, with_web};
use podscale_core::ControllerSettings;
use podscale_kube::run::{LoopConfig, RunOptions, run};
use podscale_metrics::config::Config;
use serde_json::Value;
use tokio::sync::watch;

fn options() -> RunOptions {
    RunOptions {
        namespace: Some("default".into()),
        shadow: false,
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
