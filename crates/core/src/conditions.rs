//! Conditions, reasons and events, with kube-controller-manager's exact strings:
//! dashboards and runbooks match on them.
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::HorizontalPodAutoscalerCondition;

pub const ABLE_TO_SCALE: &str = "AbleToScale";
pub const SCALING_ACTIVE: &str = "ScalingActive";
pub const SCALING_LIMITED: &str = "ScalingLimited";

/// Condition and event reasons.
pub mod reasons {
    pub const FAILED_GET_SCALE: &str = "FailedGetScale";
    pub const SUCCEEDED_GET_SCALE: &str = "SucceededGetScale";
    pub const READY_FOR_NEW_SCALE: &str = "ReadyForNewScale";
    pub const SCALE_DOWN_STABILIZED: &str = "ScaleDownStabilized";
    pub const SCALE_UP_STABILIZED: &str = "ScaleUpStabilized";
    pub const SUCCEEDED_RESCALE: &str = "SucceededRescale";
    pub const FAILED_UPDATE_SCALE: &str = "FailedUpdateScale";
    pub const VALID_METRIC_FOUND: &str = "ValidMetricFound";
    pub const SCALING_DISABLED: &str = "ScalingDisabled";
    pub const INVALID_SELECTOR: &str = "InvalidSelector";
    pub const SELECTOR_REQUIRED: &str = "SelectorRequired";
    pub const AMBIGUOUS_SELECTOR: &str = "AmbiguousSelector";
    pub const FAILED_GET_RESOURCE_METRIC: &str = "FailedGetResourceMetric";
    pub const FAILED_GET_CONTAINER_RESOURCE_METRIC: &str = "FailedGetContainerResourceMetric";
    pub const FAILED_GET_PODS_METRIC: &str = "FailedGetPodsMetric";
    pub const FAILED_GET_OBJECT_METRIC: &str = "FailedGetObjectMetric";
    pub const FAILED_GET_EXTERNAL_METRIC: &str = "FailedGetExternalMetric";
    pub const INVALID_METRIC_SOURCE_TYPE: &str = "InvalidMetricSourceType";
    pub const DESIRED_WITHIN_RANGE: &str = "DesiredWithinRange";
    pub const TOO_MANY_REPLICAS: &str = "TooManyReplicas";
    pub const TOO_FEW_REPLICAS: &str = "TooFewReplicas";
    pub const SCALE_UP_LIMIT: &str = "ScaleUpLimit";
    pub const SCALE_DOWN_LIMIT: &str = "ScaleDownLimit";
    pub const SUCCESSFUL_RESCALE: &str = "SuccessfulRescale";
    pub const FAILED_RESCALE: &str = "FailedRescale";
    pub const FAILED_COMPUTE_METRICS_REPLICAS: &str = "FailedComputeMetricsReplicas";
    pub const FAILED_UPDATE_STATUS: &str = "FailedUpdateStatus";
}

/// A condition without a transition time (set when it lands in a list).
pub fn new(
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
) -> HorizontalPodAutoscalerCondition {
    HorizontalPodAutoscalerCondition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        last_transition_time: None,
        reason: reason.into(),
        message: message.into(),
    }
}

/// `setConditionInList`: update the condition of that type in place (bumping
/// `lastTransitionTime` only when the status changes) or append it.
pub fn set(
    list: &mut Vec<HorizontalPodAutoscalerCondition>,
    cond: HorizontalPodAutoscalerCondition,
    now: Timestamp,
) {
    match list.iter_mut().find(|c| c.type_ == cond.type_) {
        Some(existing) => {
            if existing.status != cond.status {
                existing.last_transition_time = Some(now);
            }
            existing.status = cond.status;
            existing.reason = cond.reason;
            existing.message = cond.message;
        }
        None => list.push(HorizontalPodAutoscalerCondition {
            last_transition_time: Some(now),
            ..cond
        }),
    }
}

/// Event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

/// An event the controller records on the autoscaler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub type_: EventType,
    pub reason: String,
    pub message: String,
}

impl Event {
    pub fn warning(reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_: EventType::Warning,
            reason: reason.into(),
            message: message.into(),
        }
    }

    pub fn normal(reason: &str, message: impl Into<String>) -> Self {
        Self {
            type_: EventType::Normal,
            reason: reason.into(),
            message: message.into(),
        }
    }
}
