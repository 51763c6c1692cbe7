//! API defaulting of `autoscaling/v2` (`pkg/apis/autoscaling/v2/defaults.go`) and the
//! controller's own substitutions, producing the rules the algorithm actually runs on.
use crate::api::{
    HorizontalPodAutoscaler, HpaScalingPolicy, HpaScalingRules, MetricSpec, policy_type,
    select_policy,
};
use crate::settings::ControllerSettings;

/// Scaling rules after defaulting: every field present.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingRules {
    pub stabilization_window_seconds: i32,
    pub select_policy: String,
    pub policies: Vec<HpaScalingPolicy>,
    /// `tolerance` as written (`None` = use the controller default).
    pub tolerance: Option<f64>,
}

/// Behavior after defaulting (only exists when the user wrote `behavior`).
#[derive(Debug, Clone, PartialEq)]
pub struct Behavior {
    pub scale_up: ScalingRules,
    pub scale_down: ScalingRules,
}

/// The per-direction tolerances handed to every metric (`Tolerances`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    pub scale_down: f64,
    pub scale_up: f64,
}

impl Tolerances {
    /// `Tolerances.isWithin`: the inclusive band `[1 - down, 1 + up]`.
    pub fn is_within(self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

fn policy(type_: &str, value: i32, period_seconds: i32) -> HpaScalingPolicy {
    HpaScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds,
    }
}

/// `GenerateHPAScaleUpRules` + `copyHPAScalingRules`: a field the user set wins,
/// `policies` is replaced only when the user's list is absent (an empty list stays empty).
fn complete(user: Option<&HpaScalingRules>, default: ScalingRules) -> ScalingRules {
    let Some(user) = user else { return default };
    ScalingRules {
        stabilization_window_seconds: user
            .stabilization_window_seconds
            .unwrap_or(default.stabilization_window_seconds),
        select_policy: user.select_policy.clone().unwrap_or(default.select_policy),
        policies: user.policies.clone().unwrap_or(default.policies),
        tolerance: user.tolerance.map(|q| q.as_approximate_f64()),
    }
}

/// The defaulted behavior, or `None` for the legacy path (no `behavior` written).
/// A nil `scaleDown.stabilizationWindowSeconds` takes the controller's
/// `--horizontal-pod-autoscaler-downscale-stabilization` value
/// (`maybeInitScaleDownStabilizationWindow`).
pub fn behavior(hpa: &HorizontalPodAutoscaler, settings: &ControllerSettings) -> Option<Behavior> {
    let b = hpa.spec.behavior.as_ref()?;
    let up_default = ScalingRules {
        stabilization_window_seconds: 0,
        select_policy: select_policy::MAX.into(),
        policies: vec![
            policy(policy_type::PODS, 4, 15),
            policy(policy_type::PERCENT, 100, 15),
        ],
        tolerance: None,
    };
    let down_window =
        i32::try_from(settings.downscale_stabilization_window_seconds).unwrap_or(i32::MAX);
    let down_default = ScalingRules {
        stabilization_window_seconds: down_window,
        select_policy: select_policy::MAX.into(),
        policies: vec![policy(policy_type::PERCENT, 100, 15)],
        tolerance: None,
    };
    Some(Behavior {
        scale_up: complete(b.scale_up.as_ref(), up_default),
        scale_down: complete(b.scale_down.as_ref(), down_default),
    })
}

/// `minReplicas`, defaulting to 1.
pub fn min_replicas(hpa: &HorizontalPodAutoscaler) -> i32 {
    hpa.spec.min_replicas.unwrap_or(1)
}

/// `spec.metrics`, or the default CPU 80 % metric when empty.
pub fn metrics(hpa: &HorizontalPodAutoscaler) -> Vec<MetricSpec> {
    match &hpa.spec.metrics {
        Some(m) if !m.is_empty() => m.clone(),
        _ => vec![MetricSpec::default_cpu()],
    }
}

/// The tolerances for this HPA (KEP-4951 `tolerancesForHpa`): a direction whose
/// `behavior.*.tolerance` is set uses it when the feature gate is on; otherwise the
/// controller-wide default.
pub fn tolerances(hpa: &HorizontalPodAutoscaler, settings: &ControllerSettings) -> Tolerances {
    let default = settings.effective_tolerance();
    let mut t = Tolerances {
        scale_down: default,
        scale_up: default,
    };
    if settings.configurable_tolerance_enabled
        && let Some(b) = &hpa.spec.behavior
    {
        if let Some(q) = b.scale_up.as_ref().and_then(|r| r.tolerance) {
            t.scale_up = q.as_approximate_f64();
        }
        if let Some(q) = b.scale_down.as_ref().and_then(|r| r.tolerance) {
            t.scale_down = q.as_approximate_f64();
        }
    }
    t
}
