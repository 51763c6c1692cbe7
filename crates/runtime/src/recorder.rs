//! Where the outcome of a sync goes: the autoscaler's status (with the controller's
//! history, so a restart keeps stabilization windows) and its events.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use podscale_core::api::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use podscale_core::conditions::Event;
use podscale_core::history::History;

use crate::target::Key;

/// A status write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// Status and events of autoscalers.
pub trait Recorder: Send + Sync + 'static {
    /// Writes the autoscaler's status and the controller's history. Only called when
    /// the status changed semantically or the history did (`updateStatusIfNeeded`).
    fn write_status(
        &self,
        key: &Key,
        hpa: &HorizontalPodAutoscaler,
        status: &HorizontalPodAutoscalerStatus,
        history: &History,
    ) -> impl Future<Output = Result<(), RecordError>> + Send;

    /// Records an event about the autoscaler. Best effort, as client-go's recorder.
    fn event(
        &self,
        key: &Key,
        hpa: &HorizontalPodAutoscaler,
        event: &Event,
    ) -> impl Future<Output = ()> + Send;

    /// What this sync decided, after its status and events: called once per sync that
    /// reached a decision, while this instance may write. Nothing by default; shadow
    /// mode can publish it (e.g. as an annotation on the HPA). Best effort, as events.
    fn recommendation(
        &self,
        key: &Key,
        hpa: &HorizontalPodAutoscaler,
        recommendation: &Recommendation,
    ) -> impl Future<Output = ()> + Send {
        let _ = (key, hpa, recommendation);
        std::future::ready(())
    }
}

/// The outcome of one sync, as a recommendation: what the loop would set the target's
/// replicas to, from what, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    /// The replica count the decision wants (the current one when it wants no change).
    pub desired_replicas: i32,
    /// The target's `spec.replicas` when read.
    pub current_replicas: i32,
    /// Why: upstream's rescale reason (`cpu resource utilization (percentage of
    /// request) above target`, …) when it would rescale, else the reason of the
    /// condition that explains why not (`ScaleDownStabilized`, `TooManyReplicas`,
    /// `FailedGetExternalMetric`, `DesiredWithinRange`, …).
    pub reason: String,
    /// When the decision was made (the loop's clock).
    pub time: jiff::Timestamp,
}

/// What a [`MemoryRecorder`] holds for one autoscaler.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recorded {
    pub status: Option<HorizontalPodAutoscalerStatus>,
    pub history: History,
    pub status_writes: u64,
    pub events: Vec<Event>,
}

/// A recorder that keeps everything in memory (the local runtime's status API and the
/// tests read it). Events are kept up to a bound per autoscaler, oldest dropped first.
#[derive(Debug, Clone, Default)]
pub struct MemoryRecorder {
    inner: Arc<Mutex<HashMap<Key, Recorded>>>,
    max_events: usize,
}

impl MemoryRecorder {
    /// Keeps at most `max_events` events per autoscaler (at least 1).
    pub fn new(max_events: usize) -> Self {
        Self {
            inner: Arc::default(),
            max_events: max_events.max(1),
        }
    }

    pub fn get(&self, key: &Key) -> Option<Recorded> {
        self.lock().get(key).cloned()
    }

    pub fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = self.lock().keys().cloned().collect();
        keys.sort();
        keys
    }

    pub fn remove(&self, key: &Key) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Recorded>> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Recorder for MemoryRecorder {
    async fn write_status(
        &self,
        key: &Key,
        _hpa: &HorizontalPodAutoscaler,
        status: &HorizontalPodAutoscalerStatus,
        history: &History,
    ) -> Result<(), RecordError> {
        let mut map = self.lock();
        let r = map.entry(key.clone()).or_default();
        r.status = Some(status.clone());
        r.history = history.clone();
        r.status_writes += 1;
        Ok(())
    }

    async fn event(&self, key: &Key, _hpa: &HorizontalPodAutoscaler, event: &Event) {
        let mut map = self.lock();
        let r = map.entry(key.clone()).or_default();
        if r.events.len() >= self.max_events.max(1) {
            r.events.remove(0);
        }
        r.events.push(event.clone());
    }
}
