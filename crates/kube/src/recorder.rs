//! [`KubeRecorder`]: the runtime's [`Recorder`] over the API server. The status goes to
//! the Autoscaler's status subresource (a merge patch that sets every field the
//! controller owns, absent ones to `null`, so it replaces the status as upstream's
//! `UpdateStatus` does), with the controller's history and the two columns
//! `kubectl get` prints. Events carry kube-controller-manager's reasons and messages as
//! `v1` Events (what `kubectl describe` lists), deduplicated like client-go's
//! `EventCorrelator`: the same reason and message again bumps `count` and
//! `lastTimestamp` of the event already written. (kube-runtime's recorder folds events
//! with the same reason but different messages into one series, which would show
//! "New size: 5" for a later rescale to 6.)
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::{Event as KEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
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
    instance: Option<String>,
    uids: Uids,
    /// Events written, by (autoscaler, type, reason, message): name, count. Bounded.
    written: Arc<Mutex<HashMap<EventId, (String, i32)>>>,
}

/// An event's identity for deduplication: autoscaler, type, reason, message.
type EventId = (Key, String, String, String);

/// At most this many distinct events are remembered for deduplication (client-go's
/// LRU holds 4096).
const MAX_REMEMBERED_EVENTS: usize = 4096;

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
        Self {
            client,
            instance,
            uids,
            written: Arc::default(),
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
        let type_ = match event.type_ {
            CoreEventType::Normal => "Normal",
            CoreEventType::Warning => "Warning",
        };
        // The API server caps an event's message at 1 kB.
        let message = truncate(&event.message, 1024);
        let now = Time(jiff::Timestamp::now());
        let api: Api<KEvent> = Api::namespaced(self.client.clone(), &key.namespace);
        let id = (
            key.clone(),
            type_.to_owned(),
            event.reason.clone(),
            message.clone(),
        );
        let seen = self
            .written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        if let Some((name, count)) = seen {
            let patch = serde_json::json!({ "count": count + 1, "lastTimestamp": now });
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                self.remember(id, name, count + 1);
                return;
            }
        }
        let name = format!("{}.{:x}", key.name, now.0.as_nanosecond());
        let e = KEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(key.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: self.reference(key),
            reason: Some(event.reason.clone()),
            message: Some(message),
            type_: Some(type_.into()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource {
                component: Some("podscale".into()),
                host: None,
            }),
            reporting_component: Some("podscale".into()),
            reporting_instance: self.instance.clone(),
            ..KEvent::default()
        };
        match api.create(&PostParams::default(), &e).await {
            Ok(_) => self.remember(id, name, 1),
            // Best effort, as client-go's recorder: an event lost is not a failed sync.
            Err(err) => {
                tracing::debug!(autoscaler = %key, error = %err, reason = %event.reason, "Cannot record an event.");
            }
        }
    }
}

impl KubeRecorder {
    fn remember(&self, id: EventId, name: String, count: i32) {
        let mut m = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() >= MAX_REMEMBERED_EVENTS && !m.contains_key(&id) {
            m.clear();
        }
        m.insert(id, (name, count));
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
