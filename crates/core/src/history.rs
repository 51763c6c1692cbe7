//! The controller's in-memory state per autoscaler: unstabilized recommendations and
//! scale events (kube-controller-manager keeps these in maps keyed by HPA and loses
//! them on restart).
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A timestamped unstabilized recommendation (`timestampedRecommendation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recommendation {
    pub time: Timestamp,
    pub replicas: i32,
}

/// Which way a scale event went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// A timestamped scale event (`timestampedScaleEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleEvent {
    pub time: Timestamp,
    pub replica_change: i32,
    pub direction: Direction,
}

/// The controller's memory of one autoscaler.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// `None`: the controller has never seen this autoscaler (it will record
    /// `{currentReplicas, now}` first); `Some(vec![])`: known, but empty.
    #[serde(default)]
    pub recommendations: Option<Vec<Recommendation>>,
    #[serde(default)]
    pub scale_events: Vec<ScaleEvent>,
}

impl History {
    pub(crate) fn events(&self, direction: Direction) -> impl Iterator<Item = &ScaleEvent> {
        self.scale_events
            .iter()
            .filter(move |e| e.direction == direction)
    }
}
