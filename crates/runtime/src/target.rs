//! What the loop scales: anything with a scale subresource (a Deployment through the
//! Kubernetes API, a set of local processes).
use std::fmt;
use std::future::Future;

use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::Pod;

/// An autoscaler's identity: `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of an autoscaler object (`default` namespace when unset, as the API
    /// server defaults it).
    pub fn of(hpa: &HorizontalPodAutoscaler) -> Self {
        Self::new(
            hpa.metadata.namespace.as_deref().unwrap_or("default"),
            hpa.metadata.name.as_deref().unwrap_or_default(),
        )
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The target's scale subresource (`autoscaling/v1` `Scale`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scale {
    /// `spec.replicas`: the current desired count, what the engine calls current.
    pub spec_replicas: i32,
    /// `status.replicas`.
    pub status_replicas: i32,
    /// `status.selector` (a label selector string), if the target reports one.
    pub selector: Option<String>,
}

/// Why a call to the target failed; the kind decides what the loop does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The object changed under us (HTTP 409): read again and retry at once.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Worth retrying later (429, 5xx, timeouts, connection errors): back off.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help until something changes (404, 403, a bad reference).
    #[error("{0}")]
    Permanent(String),
}

impl TargetError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Conflict(_) => "conflict",
            Self::Transient(_) => "transient",
            Self::Permanent(_) => "permanent",
        }
    }
}

/// A workload with a scale subresource.
pub trait ScaleTarget: Send + Sync + 'static {
    /// Reads the scale of the autoscaler's `scaleTargetRef`.
    fn get_scale(
        &self,
        hpa: &HorizontalPodAutoscaler,
    ) -> impl Future<Output = Result<Scale, TargetError>> + Send;

    /// Lists the pods the scale's selector selects (all of the target's pods when it has
    /// no selector).
    fn list_pods(
        &self,
        hpa: &HorizontalPodAutoscaler,
        selector: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Pod>, TargetError>> + Send;

    /// Sets the target's `spec.replicas`.
    fn set_replicas(
        &self,
        hpa: &HorizontalPodAutoscaler,
        replicas: i32,
    ) -> impl Future<Output = Result<(), TargetError>> + Send;

    /// Whether [`ScaleTarget::set_replicas`] really changes the target. A target that
    /// only pretends ([`crate::Shadow`]) returns `false`: the loop then records none of
    /// its own scale events (nothing was scaled) and counts the changes it observes on
    /// the target instead, so its decisions stay those of the controller that really
    /// scales it.
    fn writes(&self) -> bool {
        true
    }
}
