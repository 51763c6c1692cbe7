//! kube-controller-manager's HPA settings (flags and package constants).
use serde::{Deserialize, Serialize};

/// The controller's settings; every field defaults to kube-controller-manager's
/// production default (`RecommendedDefaultHPAControllerConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ControllerSettings {
    /// `--horizontal-pod-autoscaler-tolerance`.
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`.
    pub cpu_initialization_period_seconds: i64,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`.
    pub initial_readiness_delay_seconds: i64,
    /// `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub downscale_stabilization_window_seconds: i64,
    /// `scaleUpLimitFactor` (legacy path only).
    pub legacy_scale_up_limit_factor: f64,
    /// `scaleUpLimitMinimum` (legacy path only).
    pub legacy_scale_up_limit_minimum: f64,
    /// Feature gate `HPAConfigurableTolerance`.
    pub configurable_tolerance_enabled: bool,
    /// `--horizontal-pod-autoscaler-sync-period` (used by loops that drive the engine).
    pub sync_period_seconds: i64,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            tolerance: 0.1,
            cpu_initialization_period_seconds: 300,
            initial_readiness_delay_seconds: 30,
            downscale_stabilization_window_seconds: 300,
            legacy_scale_up_limit_factor: 2.0,
            legacy_scale_up_limit_minimum: 4.0,
            configurable_tolerance_enabled: true,
            sync_period_seconds: 15,
        }
    }
}

impl ControllerSettings {
    /// The default tolerance in force: a configured 0 means the 0.1 default, as the
    /// config defaulting of kube-controller-manager does.
    pub fn effective_tolerance(&self) -> f64 {
        if self.tolerance == 0.0 {
            0.1
        } else {
            self.tolerance
        }
    }
}
