//! [`KubeRecorder`]: the runtime's [`Recorder`] over the API server. The status goes to
//! the Autoscaler's status subresource (a merge patch that sets every field the
//! controller owns, absent ones to `null`, so it replaces the status as upstream's
//! `UpdateStatus` does), with the controller's history and the two columns
//! `kubectl get` prints. Events carry kube-controller-manager's reasons and messages
//! (`events.k8s.io/v1`, which `kubectl describe` shows).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event as KEvent, EventType, Recorder as EventRecorder, Reporter};
use podscale_core::api::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use podscale_core::conditions::{Event, EventType as CoreEventType};
use podscale_core::defaults;
use podscale_core::history::History;
use podscale_runtime::recorder::RecordError;
use podscale_runtime::{Key, Recorder};
use serde_json::Value;

use crate::crd::{API_VERSION, Autoscaler, AutoscalerStatus, KIND};
use crate::print;

/// The UIDs of the autoscalers being watched: an event must name its object's UID for
/// `kubectl describe` to show it.
#[derive(Debug, Clone, Default)]
pub struct Uids(Arc<Mutex<HashMap<Key, String>>>);

impl Uids {
    pub fn set(&self, key: Key, uid: Option<String>) {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match uid {
            Some(u) => m.insert(key, u),
            None => m.remove(&key),
        };
    }
    pub fn get(&self, key: &Key) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }
}

/// Writes Autoscaler status and events.
#[derive(Clone)]
pub struct KubeRecorder {
    client: kube::Client,
    events: EventRecorder,
    uids: Uids,
}

impl std::fmt::Debug for KubeRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeRecorder").finish_non_exhaustive()
    }
}

/// The status fields the controller owns: set to `null` when absent, so a merge patch
/// replaces the whole status.
const OWNED: &[&str] = &[
    "observedGeneration",
    "lastScaleTime",
    "currentReplicas",
    "desiredReplicas",
    "currentMetrics",
    "conditions",
    "reference",
    "targets",
    "history",
];

/// The status subresource's content for this status and history.
pub fn status_value(
    hpa: &HorizontalPodAutoscaler,
    status: &HorizontalPodAutoscalerStatus,
    history: &History,
) -> Result<Value, serde_json::Error> {
    let specs = defaults::metrics(hpa);
    let r = &hpa.spec.scale_target_ref;
    let s = AutoscalerStatus {
        hpa: status.clone(),
        reference: Some(format!("{}/{}", r.kind, r.name)),
        targets: Some(print::targets(
            &specs,
            status.current_metrics.as_deref().unwrap_or_default(),
        )),
        history: Some(history.clone()),
    };
    let mut v = serde_json::to_value(&s)?;
    if let Value::Object(m) = &mut v {
        for k in OWNED {
            m.entry(*k).or_insert(Value::Null);
        }
    }
    Ok(v)
}

impl KubeRecorder {
    /// `instance`: this controller's identity (the pod name), as `reportingInstance`.
    pub fn new(client: kube::Client, instance: Option<String>, uids: Uids) -> Self {
        let reporter = Reporter {
            controller: "podscale".into(),
            instance,
        };
        Self {
            events: EventRecorder::new(client.clone(), reporter),
            client,
            uids,
        }
    }

    fn reference(&self, key: &Key) -> ObjectReference {
        ObjectReference {
            api_version: Some(API_VERSION.into()),
            kind: Some(KIND.into()),
            name: Some(key.name.clone()),
            namespace: Some(key.namespace.clone()),
            uid: self.uids.get(key),
            ..ObjectReference::default()
        }
    }
}

impl Recorder for KubeRecorder {
    async fn write_status(
        &self,
        key: &Key,
        hpa: &HorizontalPodAutoscaler,
        status: &HorizontalPodAutoscalerStatus,
        history: &History,
    ) -> Result<(), RecordError> {
        let value = status_value(hpa, status, history).map_err(|e| RecordError(e.to_string()))?;
        let api: Api<Autoscaler> = Api::namespaced(self.client.clone(), &key.namespace);
        let patch = serde_json::json!({ "status": value });
        api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| RecordError(crate::target::target_error(&e).to_string()))
    }

    async fn event(&self, key: &Key, _hpa: &HorizontalPodAutoscaler, event: &Event) {
        let e = KEvent {
            type_: match event.type_ {
                CoreEventType::Normal => EventType::Normal,
                CoreEventType::Warning => EventType::Warning,
            },
            reason: event.reason.clone(),
            // events.k8s.io caps the note at 1 kB.
            note: Some(truncate(&event.message, 1024)),
            action: "Autoscale".into(),
            secondary: None,
        };
        if let Err(err) = self.events.publish(&e, &self.reference(key)).await {
            // Best effort, as client-go's recorder: an event lost is not a failed sync.
            tracing::debug!(autoscaler = %key, error = %err, reason = %event.reason, "Cannot record an event.");
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
