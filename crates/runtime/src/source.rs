//! Where metrics come from, as the engine consumes them: what the metrics APIs (or
//! Prometheus, or the pods' own endpoints) answer for one autoscaler at one sync.
use std::future::Future;

use jiff::Timestamp;
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::{Fetched, ObservedMetrics, Pod};

/// A metric source. Failures are data, not errors: each API's answer may be
/// [`Fetched::Error`], and the engine turns that into `ScalingActive=False` and keeps
/// the replicas (a metric that cannot be read never causes a scale-down).
pub trait MetricSource: Send + Sync + 'static {
    fn read(
        &self,
        hpa: &HorizontalPodAutoscaler,
        pods: &[Pod],
        now: Timestamp,
    ) -> impl Future<Output = ObservedMetrics> + Send;
}

/// Every metrics API failing with `message` (a timeout of the whole read, the pods
/// that could not be listed): whatever the autoscaler needs, it gets this error.
pub fn all_failed(message: &str) -> ObservedMetrics {
    fn error<T>(message: &str) -> Option<Fetched<T>> {
        Some(Fetched::Error {
            error: message.to_string(),
        })
    }
    ObservedMetrics {
        resource: error(message),
        pods: error(message),
        object: error(message),
        external: error(message),
    }
}
