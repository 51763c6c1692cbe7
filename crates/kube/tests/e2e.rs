//! Against a real cluster (`KUBECONFIG`; e.g. /work/kube-lab): the CRD applies, an
//! Autoscaler fed through the watcher scales a Deployment's `/scale`, and its status
//! (HPA conditions plus history) and events are written. The metric source is a stub
//! (an External metric at 60 against an average target of 10): the metric sources have
//! their own tests against a real Prometheus.
//!
//!     KUBECONFIG=/work/kube-lab/kubeconfig cargo test -p podscale-kube --test e2e -- --ignored
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use podscale_core::ControllerSettings;
use podscale_core::observed::{
    ExternalMetricValue, ExternalMetricValues, Fetched, ObservedMetrics, Pod as EnginePod,
};
use podscale_core::quantity::Quantity;
use podscale_kube::crd::Autoscaler;
use podscale_kube::recorder::{KubeRecorder, Uids};
use podscale_kube::run::{connect, feed};
use podscale_kube::target::KubeTarget;
use podscale_runtime::{Controller, LoopConfig, MetricSource, TokioClock};
use serde_json::json;
use tokio::sync::{mpsc, watch};

#[derive(Debug, Clone)]
struct Queue;

impl MetricSource for Queue {
    async fn read(
        &self,
        _hpa: &podscale_core::api::HorizontalPodAutoscaler,
        _pods: &[EnginePod],
        now: jiff::Timestamp,
    ) -> ObservedMetrics {
        ObservedMetrics {
            external: Some(Fetched::Data(vec![ExternalMetricValues {
                metric_name: "queue".into(),
                selector: None,
                items: vec![ExternalMetricValue {
                    value: Quantity::parse("60").expect("quantity"),
                    metric_labels: Default::default(),
                    timestamp: Some(now),
                }],
                error: None,
            }])),
            ..ObservedMetrics::default()
        }
    }
}

async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut f: F) {
    for _ in 0..120 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs KUBECONFIG"]
async fn an_autoscaler_scales_a_deployment_on_a_real_api_server() {
    let client = connect(None, None).await.expect("KUBECONFIG");
    let ns = format!("podscale-e2e-{}", std::process::id());
    let pp = PatchParams::apply("podscale-e2e").force();
    let crd: CustomResourceDefinition =
        serde_json::from_value(podscale_kube::schema::crd()).expect("crd");
    Api::<CustomResourceDefinition>::all(client.clone())
        .patch("autoscalers.podscale.dev", &pp, &Patch::Apply(&crd))
        .await
        .expect("CRD applies");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns"),
        )
        .await
        .expect("namespace");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "registry.invalid/web:1"}]}}}
    }))
    .expect("deployment");
    deployments
        .create(&PostParams::default(), &d)
        .await
        .expect("deployment created");
    // No kubelet: mark the pods Running and Ready by hand, as the HPA counts only those.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    eventually("2 pods", async || {
        pods.list(&ListParams::default())
            .await
            .is_ok_and(|l| l.items.len() == 2)
    })
    .await;
    for p in pods.list(&ListParams::default()).await.expect("pods").items {
        let name = p.metadata.name.clone().expect("name");
        let status = json!({"status": {"phase": "Running", "startTime": "2026-01-01T00:00:00Z",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("pod status");
    }
    let autoscalers: Api<Autoscaler> = Api::namespaced(client.clone(), &ns);
    let a: Autoscaler = serde_json::from_value(json!({
        "apiVersion": "podscale.dev/v1alpha1", "kind": "Autoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "10"}}}],
            "behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]}},
            "podscale": {"syncPeriod": "2s"}
        }
    }))
    .expect("autoscaler");
    // The CRD may take a moment to be served.
    eventually("the Autoscaler created", async || {
        autoscalers.create(&PostParams::default(), &a).await.is_ok()
    })
    .await;

    let uids = Uids::default();
    let controller = Controller::new(
        KubeTarget::new(client.clone()),
        Queue,
        KubeRecorder::new(client.clone(), Some("e2e".into()), uids.clone()),
        TokioClock::new(),
        LoopConfig::default(),
        ControllerSettings::default(),
    );
    let (tx, rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = watch::channel(false);
    let settings = ControllerSettings::default();
    let feeder = tokio::spawn(feed(
        autoscalers.clone(),
        move |a: &Autoscaler| a.to_update(&settings).map_err(|e| e.to_string()),
        tx,
        Some(uids),
        Arc::new(AtomicBool::new(false)),
        stop_rx.clone(),
    ));
    let run = tokio::spawn({
        let c = controller.clone();
        async move { c.run(rx, stop_rx).await }
    });

    eventually("the Deployment at 6 replicas", async || {
        deployments
            .get("web")
            .await
            .is_ok_and(|d| d.spec.and_then(|s| s.replicas) == Some(6))
    })
    .await;
    eventually("the status with history", async || {
        autoscalers.get("web").await.is_ok_and(|a| {
            a.status.as_ref().is_some_and(|s| {
                s.hpa.desired_replicas == 6
                    && s.history
                        .as_ref()
                        .is_some_and(|h| !h.scale_events.is_empty())
            })
        })
    })
    .await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    eventually("SuccessfulRescale events", async || {
        events.list(&ListParams::default()).await.is_ok_and(|l| {
            l.items.iter().any(|e| {
                e.reason.as_deref() == Some("SuccessfulRescale")
                    && e.message.as_deref()
                        == Some("New size: 6; reason: external metric queue(nil) above target")
                    && e.involved_object.kind.as_deref() == Some("Autoscaler")
            })
        })
    })
    .await;
    stop_tx.send(true).expect("stop");
    let _ = run.await;
    let _ = feeder.await;
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}
