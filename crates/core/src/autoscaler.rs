//! [`Autoscaler`]: the engine's stateful face for a control loop, still pure (no I/O,
//! no clock). It holds what kube-controller-manager keeps per HPA — the object itself
//! (spec and last written status) and the in-memory history of recommendations and
//! scale events — plus the controller settings.
//!
//! A loop drives it in the order `reconcileAutoscaler` does its I/O:
//!
//! 1. read the target's `/scale`; on failure call [`Autoscaler::failed_get_scale`];
//! 2. list pods and read metrics into an [`Observed`];
//! 3. [`Autoscaler::decide`] (pure: nothing changes yet);
//! 4. if [`Decision::rescale`], update `/scale`; then [`Autoscaler::commit`] on success
//!    or [`Autoscaler::commit_failed_rescale`] on failure — the decision carries what each
//!    path needs, so the caller keeps no copy of the old history;
//! 5. write `status` when [`Decision::status_changed`], record the events, and requeue
//!    (with backoff when [`Decision::retry_with_backoff`]).
//!
//! Unlike kube-controller-manager, whose history is lost on restart, the history here
//! is data ([`History`]) that a controller can persist (e.g. in the object's status) and
//! restore with [`Autoscaler::with_history`].
use jiff::Timestamp;

use crate::api::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use crate::conditions::Event;
use crate::history::History;
use crate::observed::Observed;
use crate::reconcile::{self, Decision};
use crate::settings::ControllerSettings;

/// One autoscaler as a controller holds it between syncs.
#[derive(Debug, Clone, PartialEq)]
pub struct Autoscaler {
    hpa: HorizontalPodAutoscaler,
    history: History,
    settings: ControllerSettings,
}

/// What a failed read of the target's scale produced (`FailedGetScale`).
#[derive(Debug, Clone, PartialEq)]
pub struct FailedGetScale {
    /// The status to write (`AbleToScale=False/FailedGetScale`).
    pub status: HorizontalPodAutoscalerStatus,
    /// Whether it differs from the status read, i.e. must be written.
    pub status_changed: bool,
    /// `Warning FailedGetScale` with the error.
    pub event: Event,
}

impl Autoscaler {
    /// A never-seen autoscaler: its first sync records `{currentReplicas, now}` as the
    /// initial recommendation (`recordInitialRecommendation`).
    pub fn new(hpa: HorizontalPodAutoscaler, settings: ControllerSettings) -> Self {
        Self::with_history(hpa, History::default(), settings)
    }

    /// An autoscaler whose history was persisted (e.g. after a controller restart or a
    /// leader change): stabilization windows and rate limits carry on as if the
    /// controller had never stopped.
    pub fn with_history(
        hpa: HorizontalPodAutoscaler,
        history: History,
        settings: ControllerSettings,
    ) -> Self {
        Self {
            hpa,
            history,
            settings,
        }
    }

    pub fn hpa(&self) -> &HorizontalPodAutoscaler {
        &self.hpa
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn settings(&self) -> &ControllerSettings {
        &self.settings
    }

    /// The status as last committed (or as the object carried it).
    pub fn status(&self) -> Option<&HorizontalPodAutoscalerStatus> {
        self.hpa.status.as_ref()
    }

    /// The user changed the object (spec, labels, …): keep the history, as
    /// kube-controller-manager keeps its in-memory maps across updates of an HPA. The
    /// status kept is the one this controller last committed unless the new object
    /// carries one.
    pub fn update_hpa(&mut self, mut hpa: HorizontalPodAutoscaler) {
        if hpa.status.is_none() {
            hpa.status = self.hpa.status.take();
        }
        self.hpa = hpa;
    }

    pub fn set_settings(&mut self, settings: ControllerSettings) {
        self.settings = settings;
    }

    /// One decision on what was observed at `now`. Pure: this autoscaler does not
    /// change until the decision is committed.
    pub fn decide(&self, observed: &Observed, now: Timestamp) -> Decision {
        reconcile::reconcile(&self.hpa, observed, &self.history, now, &self.settings)
    }

    /// The decision was applied: the scale was updated (or needed no update). Its
    /// status and history become this autoscaler's.
    pub fn commit(&mut self, decision: &Decision) {
        self.history = decision.history.clone();
        self.hpa.status = Some(decision.status.clone());
    }

    /// The scale update failed with `error`: upstream's failure path (`Warning
    /// FailedRescale`, `AbleToScale=False/FailedUpdateScale`, the previous desired count
    /// kept, no scale event recorded, this sync's recommendation kept). Turns `decision`
    /// into what must be written and recorded, and commits it.
    pub fn commit_failed_rescale(&mut self, decision: &mut Decision, error: &str, now: Timestamp) {
        decision.rescale_failed(error, now);
        self.commit(decision);
    }

    /// The target's scale could not be read: nothing else happens in this sync.
    pub fn failed_get_scale(&mut self, error: &str, now: Timestamp) -> FailedGetScale {
        let (status, status_changed, event) = reconcile::failed_get_scale(&self.hpa, error, now);
        self.hpa.status = Some(status.clone());
        FailedGetScale {
            status,
            status_changed,
            event,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Direction;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn hpa() -> HorizontalPodAutoscaler {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                     "maxReplicas": 10, "minReplicas": 1, "behavior": {},
                     "metrics": [{"type": "Pods", "pods": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]}
        }))
        .expect("hpa")
    }

    fn observed(replicas: usize, value: &str) -> Observed {
        let pods: Vec<serde_json::Value> = (0..replicas)
            .map(|i| {
                serde_json::json!({"name": format!("p{i}"), "phase": "Running", "ready": true,
                "startTime": "2024-01-01T00:00:00Z", "readyTransitionTime": "2024-01-01T00:00:00Z"})
            })
            .collect();
        let items: Vec<serde_json::Value> = (0..replicas)
            .map(|i| serde_json::json!({"podName": format!("p{i}"), "value": value, "timestamp": "2024-01-01T01:00:00Z"}))
            .collect();
        Observed {
            spec_replicas: i32::try_from(replicas).expect("small"),
            status_replicas: i32::try_from(replicas).expect("small"),
            selector: Some("app=web".into()),
            pods: serde_json::from_value(serde_json::Value::Array(pods)).expect("pods"),
            metrics: serde_json::from_value(
                serde_json::json!({"pods": [{"metricName": "queue", "items": items}]}),
            )
            .expect("metrics"),
        }
    }

    #[test]
    fn deciding_changes_nothing_until_committed() {
        let a = Autoscaler::new(hpa(), ControllerSettings::default());
        let now = ts("2024-01-01T01:00:00Z");
        let d = a.decide(&observed(2, "30"), now);
        assert!(d.rescale);
        assert_eq!(d.desired_replicas, 6);
        assert_eq!(a.history(), &History::default());
        assert!(a.status().is_none());
        // Deciding twice gives the same decision.
        assert_eq!(a.decide(&observed(2, "30"), now), d);
    }

    #[test]
    fn commit_takes_the_decisions_history_and_status() {
        let mut a = Autoscaler::new(hpa(), ControllerSettings::default());
        let now = ts("2024-01-01T01:00:00Z");
        let d = a.decide(&observed(2, "30"), now);
        a.commit(&d);
        assert_eq!(a.status().map(|s| s.desired_replicas), Some(6));
        assert_eq!(a.history().scale_events.len(), 1);
        assert_eq!(a.history().scale_events[0].direction, Direction::Up);
        assert_eq!(a.hpa().status.as_ref(), Some(&d.status));
    }

    #[test]
    fn a_failed_rescale_keeps_the_recommendation_but_records_no_scale_event() {
        let mut a = Autoscaler::new(hpa(), ControllerSettings::default());
        let now = ts("2024-01-01T01:00:00Z");
        let mut d = a.decide(&observed(2, "30"), now);
        a.commit_failed_rescale(&mut d, "the object has been modified", now);
        assert!(!d.rescale);
        assert!(a.history().scale_events.is_empty());
        let recs = a
            .history()
            .recommendations
            .as_ref()
            .expect("recommendations");
        assert_eq!(recs.last().map(|r| r.replicas), Some(6));
        let status = a.status().expect("status");
        assert_eq!(status.desired_replicas, 0);
        assert!(d.events.iter().any(|e| e.reason == "FailedRescale"));
    }

    #[test]
    fn a_restored_history_decides_as_without_a_restart() {
        let settings = ControllerSettings::default();
        let mut running = Autoscaler::new(hpa(), settings.clone());
        let t0 = ts("2024-01-01T01:00:00Z");
        let d = running.decide(&observed(4, "30"), t0);
        assert_eq!(d.desired_replicas, 8);
        running.commit(&d);
        // 5 s later, still overloaded: the scale-up policies (100% or 4 pods per 15 s)
        // count the +4 just made, so the running controller holds at 8.
        let t1 = ts("2024-01-01T01:00:05Z");
        let restarted = Autoscaler::with_history(
            running.hpa().clone(),
            running.history().clone(),
            settings.clone(),
        );
        let forgetful = Autoscaler::new(running.hpa().clone(), settings);
        let obs = observed(8, "30");
        assert_eq!(restarted.decide(&obs, t1), running.decide(&obs, t1));
        assert_eq!(running.decide(&obs, t1).desired_replicas, 8);
        // Without the history, kube-controller-manager's restart forgets the scale event.
        assert_ne!(
            forgetful.decide(&obs, t1).desired_replicas,
            running.decide(&obs, t1).desired_replicas
        );
    }

    #[test]
    fn failed_get_scale_writes_able_to_scale_false_once() {
        let mut a = Autoscaler::new(hpa(), ControllerSettings::default());
        let now = ts("2024-01-01T01:00:00Z");
        let f = a.failed_get_scale("deployments.apps \"web\" not found", now);
        assert!(f.status_changed);
        assert_eq!(f.event.reason, "FailedGetScale");
        let again = a.failed_get_scale("deployments.apps \"web\" not found", now);
        assert!(!again.status_changed);
    }

    #[test]
    fn updating_the_spec_keeps_history_and_status() {
        let mut a = Autoscaler::new(hpa(), ControllerSettings::default());
        let now = ts("2024-01-01T01:00:00Z");
        let d = a.decide(&observed(2, "30"), now);
        a.commit(&d);
        let mut h = hpa();
        h.spec.max_replicas = 3;
        a.update_hpa(h);
        assert_eq!(a.hpa().spec.max_replicas, 3);
        assert_eq!(a.history().scale_events.len(), 1);
        assert!(a.status().is_some());
    }
}
