//! The `Autoscaler` custom resource (`podscale.dev/v1alpha1`, short name `psa`): an
//! `autoscaling/v2` HorizontalPodAutoscaler spec, verbatim, plus an optional
//! `podscale:` block; its status is the HPA status plus the controller's history
//! (unstabilized recommendations and scale events), so a restart or a change of leader
//! keeps the stabilization windows that kube-controller-manager loses.
//!
//! The resource type implements [`kube::Resource`] by hand and the CRD's OpenAPI
//! schema is written out in [`crate::schema`]: the core API types stay free of
//! Kubernetes-client derives.
use std::borrow::Cow;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use podscale_core::api::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, HorizontalPodAutoscalerStatus,
    ObjectMeta as CoreMeta,
};
use podscale_core::history::History;
use podscale_core::{ControllerSettings, quantity::Quantity};
use podscale_runtime::{AutoscalerOptions, Update};
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "podscale.dev";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "Autoscaler";
pub const PLURAL: &str = "autoscalers";
pub const SHORT_NAME: &str = "psa";
pub const API_VERSION: &str = "podscale.dev/v1alpha1";

/// `podscale.dev/v1alpha1` `Autoscaler`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Autoscaler {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: AutoscalerSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<AutoscalerStatus>,
}

/// The HPA spec, field for field, and podscale's own settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerSpec {
    #[serde(flatten)]
    pub hpa: HorizontalPodAutoscalerSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub podscale: Option<PodscaleOptions>,
}

/// The `podscale:` block: settings kube-controller-manager only has as process flags.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodscaleOptions {
    /// Time between syncs of this autoscaler (`30s`, `1m`); default: the controller's
    /// (`--horizontal-pod-autoscaler-sync-period`, 15 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_period: Option<String>,
    /// The default tolerance of this autoscaler (`--horizontal-pod-autoscaler-tolerance`,
    /// 0.1); `behavior.scaleUp/scaleDown.tolerance` still take precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Quantity>,
    /// What a metric that cannot be read does. `Hold` (the only policy, upstream's):
    /// `ScalingActive=False` and the replica count is kept; with several metrics, the
    /// ones read may still scale up, never down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_failure_policy: Option<String>,
}

/// The HPA status, two columns `kubectl get` prints, and the controller's history.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerStatus {
    #[serde(flatten)]
    pub hpa: HorizontalPodAutoscalerStatus,
    /// `Kind/name` of the target (the REFERENCE column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Current/target per metric, as `kubectl get hpa` prints them (the TARGETS column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<String>,
    /// The controller's memory: restored when an instance first sees the autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
}

impl kube::Resource for Autoscaler {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        API_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A `podscale:` setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.podscale.{field}: {message}")]
pub struct OptionsError {
    pub field: &'static str,
    pub message: String,
}

/// The longest sync period accepted: past it stabilization windows stop meaning much.
pub const MAX_SYNC_PERIOD: Duration = Duration::from_secs(3600);

impl PodscaleOptions {
    /// The runtime's per-autoscaler options, over the controller-wide `settings`.
    ///
    /// # Errors
    /// A sync period that is not a duration in (0, 1h], a tolerance outside [0, 1),
    /// an unknown metric failure policy.
    pub fn to_runtime(
        &self,
        settings: &ControllerSettings,
    ) -> Result<AutoscalerOptions, OptionsError> {
        let mut out = AutoscalerOptions::default();
        if let Some(p) = &self.sync_period {
            let d = podscale_metrics::config::parse_duration(p).map_err(|e| OptionsError {
                field: "syncPeriod",
                message: e,
            })?;
            if d.is_zero() || d > MAX_SYNC_PERIOD {
                return Err(OptionsError {
                    field: "syncPeriod",
                    message: format!("{p:?}: must be more than 0 and at most 1h"),
                });
            }
            out.sync_period = Some(d);
        }
        if let Some(t) = &self.tolerance {
            let v = t.as_approximate_f64();
            if !(0.0..1.0).contains(&v) {
                return Err(OptionsError {
                    field: "tolerance",
                    message: format!("{t}: must be at least 0 and less than 1"),
                });
            }
            out.settings = Some(ControllerSettings {
                tolerance: v,
                ..settings.clone()
            });
        }
        match self.metric_failure_policy.as_deref() {
            None | Some("Hold") => {}
            Some(other) => {
                return Err(OptionsError {
                    field: "metricFailurePolicy",
                    message: format!("Unsupported value: {other:?}: supported values: \"Hold\""),
                });
            }
        }
        Ok(out)
    }
}

impl Autoscaler {
    /// The autoscaler as the engine reads it: an `autoscaling/v2` HPA with this
    /// object's name, namespace, labels, annotations, spec and status.
    pub fn to_hpa(&self) -> HorizontalPodAutoscaler {
        let m = &self.metadata;
        HorizontalPodAutoscaler {
            api_version: Some("autoscaling/v2".into()),
            kind: Some("HorizontalPodAutoscaler".into()),
            metadata: CoreMeta {
                name: m.name.clone(),
                namespace: m.namespace.clone(),
                labels: m.labels.clone(),
                annotations: m.annotations.clone(),
            },
            spec: self.spec.hpa.clone(),
            status: self.status.as_ref().map(|s| s.hpa.clone()),
        }
    }

    /// The runtime's update for this object: the HPA, the history its status keeps and
    /// its `podscale:` options over the controller-wide `settings`.
    ///
    /// # Errors
    /// An unusable `podscale:` block.
    pub fn to_update(&self, settings: &ControllerSettings) -> Result<Update, OptionsError> {
        let options = match &self.spec.podscale {
            Some(p) => p.to_runtime(settings)?,
            None => AutoscalerOptions::default(),
        };
        Ok(Update::Apply {
            hpa: Box::new(self.to_hpa()),
            history: self.history(),
            options,
        })
    }

    /// The history persisted in the status, if any.
    pub fn history(&self) -> Option<History> {
        self.status.as_ref().and_then(|s| s.history.clone())
    }

    /// `Kind/name` of the target, as `kubectl get hpa` prints REFERENCE.
    pub fn reference(&self) -> String {
        let r = &self.spec.hpa.scale_target_ref;
        format!("{}/{}", r.kind, r.name)
    }
}

/// Every autoscaler a controller knows of needs an apiVersion/kind when written out.
pub fn with_type_meta(mut a: Autoscaler) -> Autoscaler {
    a.api_version = Some(API_VERSION.into());
    a.kind = Some(KIND.into());
    a
}
