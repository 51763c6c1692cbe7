//! [`Shadow`]: run the loop against a real target without ever writing to it — to see
//! what podscale would do next to the built-in HPA, or to try a policy safely.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::Pod;

use crate::target::{Key, Scale, ScaleTarget, TargetError};

/// Reads through to the wrapped target; a write is recorded as a recommendation and
/// reported as done, and the target is never touched.
///
/// The loop knows (through [`ScaleTarget::writes`]) that these writes are pretend: it
/// commits no scale event for them, since a pretend event would spend the scale-up or
/// scale-down policy budget of later syncs for a change that never happened. The scale
/// events it keeps are the changes it sees on the target (made by the built-in HPA or
/// anyone else), so each decision is the one the real controller would make given the
/// target's real scale history.
#[derive(Debug, Clone)]
pub struct Shadow<T> {
    inner: T,
    recommendations: Arc<Mutex<HashMap<Key, i32>>>,
}

impl<T> Shadow<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            recommendations: Arc::default(),
        }
    }

    /// The last replica count the loop would have written for `key`.
    pub fn recommendation(&self, key: &Key) -> Option<i32> {
        self.recommendations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .copied()
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }
}

impl<T: ScaleTarget> ScaleTarget for Shadow<T> {
    async fn get_scale(&self, hpa: &HorizontalPodAutoscaler) -> Result<Scale, TargetError> {
        self.inner.get_scale(hpa).await
    }

    async fn list_pods(
        &self,
        hpa: &HorizontalPodAutoscaler,
        selector: Option<&str>,
    ) -> Result<Vec<Pod>, TargetError> {
        self.inner.list_pods(hpa, selector).await
    }

    async fn set_replicas(
        &self,
        hpa: &HorizontalPodAutoscaler,
        replicas: i32,
    ) -> Result<(), TargetError> {
        tracing::info!(autoscaler = %Key::of(hpa), replicas, "Shadow mode: would scale, not writing.");
        self.recommendations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(Key::of(hpa), replicas);
        Ok(())
    }

    fn writes(&self) -> bool {
        false
    }
}
