//! Shadow mode's opt-in annotation (`podscale run --shadow --shadow-annotate`): after
//! each sync, what podscale would do is written on the standard HPA itself as
//! `metadata.annotations["podscale.dev/recommendation"]`, so `kubectl get hpa -o yaml`
//! shows it next to what the built-in controller did.
//!
//! The write is a JSON merge patch of that one annotation: spec, status and `/scale` are
//! never touched (RBAC: `patch` on `horizontalpodautoscalers`, granted only for this
//! flag). It is made only when the recommendation changed (desired or current replicas,
//! or the reason; not the time alone), so a steady HPA costs no write per sync.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler as KHpa;
use kube::api::{Api, Patch, PatchParams};
use podscale_core::api::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use podscale_core::conditions::Event;
use podscale_core::history::History;
use podscale_runtime::recorder::RecordError;
use podscale_runtime::{Key, Recommendation, Recorder};
use serde_json::{Value, json};

use crate::recorder::Uids;
use crate::target::error_chain;

/// The annotation written on each HPA.
pub const ANNOTATION: &str = "podscale.dev/recommendation";

/// A reason longer than this is cut (with `…`): an annotation is for a glance, and the
/// value stays small whatever a metric's name.
const MAX_REASON_CHARS: usize = 256;

/// The annotation's value: `{"desiredReplicas":6,"currentReplicas":3,"time":"…","reason":"…"}`
/// (`time` in RFC 3339, seconds, UTC, as Kubernetes writes times).
pub fn value(r: &Recommendation) -> String {
    json!({
        "desiredReplicas": r.desired_replicas,
        "currentReplicas": r.current_replicas,
        "time": r.time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "reason": truncate(&r.reason, MAX_REASON_CHARS),
    })
    .to_string()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// What decides whether to write again: everything but the time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    desired: i64,
    current: i64,
    reason: String,
}

impl Written {
    fn of(r: &Recommendation) -> Self {
        Self {
            desired: i64::from(r.desired_replicas),
            current: i64::from(r.current_replicas),
            reason: truncate(&r.reason, MAX_REASON_CHARS),
        }
    }

    /// The annotation as found on an object; `None` if absent or not ours to read (a
    /// hand-edited value is simply replaced).
    fn parse(annotation: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(annotation).ok()?;
        Some(Self {
            desired: v.get("desiredReplicas")?.as_i64()?,
            current: v.get("currentReplicas")?.as_i64()?,
            reason: v.get("reason")?.as_str()?.to_owned(),
        })
    }
}

/// What was written on an HPA, with the UID of the object it was written on.
type WrittenOn = (Option<String>, Written);

/// A [`Recorder`] for shadow mode: status and events go to the wrapped recorder (in
/// memory: shadow mode writes no status on HPAs it does not own), recommendations to
/// the HPA's annotation.
#[derive(Clone)]
pub struct AnnotatingRecorder<R> {
    inner: R,
    /// `None`: annotate nothing (shadow mode without `--shadow-annotate`).
    client: Option<kube::Client>,
    uids: Uids,
    /// The last value written, by HPA, with the UID of the object it was written on:
    /// the watch may not have delivered our own patch by the next sync, and a recreated
    /// HPA (another UID) must be written again. One small entry per HPA annotated.
    written: Arc<Mutex<HashMap<Key, WrittenOn>>>,
}

impl<R> std::fmt::Debug for AnnotatingRecorder<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnotatingRecorder").finish_non_exhaustive()
    }
}

impl<R> AnnotatingRecorder<R> {
    /// `uids`: the UIDs of the HPAs watched (see [`crate::run::feed`]).
    pub fn new(inner: R, client: kube::Client, uids: Uids) -> Self {
        Self {
            inner,
            client: Some(client),
            uids,
            written: Arc::default(),
        }
    }

    /// Passes status and events to `inner` and writes no annotation.
    pub fn off(inner: R) -> Self {
        Self {
            inner,
            client: None,
            uids: Uids::default(),
            written: Arc::default(),
        }
    }

    pub fn inner(&self) -> &R {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, WrittenOn>> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<R: Recorder + Clone> Recorder for AnnotatingRecorder<R> {
    async fn write_status(
        &self,
        key: &Key,
        hpa: &HorizontalPodAutoscaler,
        status: &HorizontalPodAutoscalerStatus,
        history: &History,
    ) -> Result<(), RecordError> {
        self.inner.write_status(key, hpa, status, history).await
    }

    async fn event(&self, key: &Key, hpa: &HorizontalPodAutoscaler, event: &Event) {
        self.inner.event(key, hpa, event).await;
    }

    async fn recommendation(
        &self,
        key: &Key,
        hpa: &HorizontalPodAutoscaler,
        recommendation: &Recommendation,
    ) {
        let Some(client) = &self.client else {
            return;
        };
        let now = Written::of(recommendation);
        let on_object = hpa
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION))
            .and_then(|a| Written::parse(a));
        if on_object.as_ref() == Some(&now) {
            return;
        }
        let uid = self.uids.get(key);
        if self
            .lock()
            .get(key)
            .is_some_and(|(u, w)| *u == uid && *w == now)
        {
            // Written already; the watch has not brought the patched object yet.
            return;
        }
        let api: Api<KHpa> = Api::namespaced(client.clone(), &key.namespace);
        let patch = json!({"metadata": {"annotations": {ANNOTATION: value(recommendation)}}});
        let params = PatchParams {
            field_manager: Some("podscale".into()),
            ..PatchParams::default()
        };
        match api.patch(&key.name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => {
                tracing::debug!(autoscaler = %key, desired = recommendation.desired_replicas, "Recommendation annotated.");
                self.lock().insert(key.clone(), (uid, now));
            }
            Err(e) => {
                // Best effort: the next sync tries again (nothing was cached).
                tracing::warn!(autoscaler = %key, error = %error_chain(&e), "Cannot annotate the HPA with the recommendation.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(reason: &str) -> Recommendation {
        Recommendation {
            desired_replicas: 6,
            current_replicas: 3,
            reason: reason.into(),
            time: "2026-01-01T00:00:01.5Z".parse().expect("time"),
        }
    }

    #[test]
    fn the_value_is_small_json_with_a_kubernetes_time() {
        let v: Value =
            serde_json::from_str(&value(&rec("All metrics below target"))).expect("json");
        assert_eq!(
            v,
            json!({"desiredReplicas": 6, "currentReplicas": 3, "time": "2026-01-01T00:00:01Z",
                   "reason": "All metrics below target"})
        );
    }

    #[test]
    fn a_long_reason_is_cut_and_still_compares_equal_to_what_was_written() {
        let long = "x".repeat(10_000);
        let v = value(&rec(&long));
        assert!(v.len() < 400, "{}", v.len());
        assert_eq!(Written::parse(&v), Some(Written::of(&rec(&long))));
    }

    #[test]
    fn a_foreign_or_broken_annotation_is_not_ours() {
        assert_eq!(Written::parse("six"), None);
        assert_eq!(Written::parse(r#"{"desiredReplicas":"6"}"#), None);
    }
}
