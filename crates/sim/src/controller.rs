//! The HPA controller in the loop: at every sync, what the metrics APIs would answer is
//! assembled into the engine's [`Observed`] state, and [`podscale_core::reconcile`] decides.
//! The simulator never decides itself: it only applies the engine's [`Decision`].
use std::collections::BTreeMap;

use jiff::Timestamp;
use podscale_core::api::{HorizontalPodAutoscaler, MetricValueStatus};
use podscale_core::duration::GoDuration;
use podscale_core::history::History;
use podscale_core::observed::{
    Container, ContainerMetrics, DescribedObject, ExternalMetricValue, ExternalMetricValues,
    Fetched, ObjectMetricValue, Observed, ObservedMetrics, Pod, PodMetricValue, PodMetrics,
    PodsMetricValues, ResourceMetricsList, ResourceRequirements,
};
use podscale_core::settings::ControllerSettings;
use podscale_core::{Decision, Quantity};

use crate::cluster::{Cluster, PodState, SimPod};
use crate::model::{Aggregate, Model};
use crate::pipeline::{MetricPlan, Resolved, aggregate};

/// The wall-clock instant of simulated t = 0 (any fixed instant would do).
const EPOCH_SECONDS: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z

/// Simulated seconds as a timestamp.
pub fn timestamp(t: f64) -> Timestamp {
    let nanos = i128::from(EPOCH_SECONDS) * 1_000_000_000 + (t * 1e9).round() as i128;
    Timestamp::from_nanosecond(nanos).expect("simulated times are within jiff's range")
}

fn milli(x: f64) -> Quantity {
    Quantity::from_milli((x * 1000.0).round() as i64)
}

/// One policy's controller: the HPA (whose status the engine updates), its memory, and
/// what it reads.
#[derive(Debug, Clone)]
pub struct HpaController {
    pub hpa: HorizontalPodAutoscaler,
    pub history: History,
    pub settings: ControllerSettings,
    pub plan: MetricPlan,
    container: String,
    labels: BTreeMap<String, String>,
    requests: BTreeMap<String, Quantity>,
    staleness: f64,
}

impl HpaController {
    pub fn new(hpa: HorizontalPodAutoscaler, model: &Model, plan: MetricPlan) -> Self {
        Self {
            hpa,
            history: History::default(),
            settings: model.controller_settings(),
            plan,
            container: model.pod.container.clone(),
            labels: model.pod.labels.clone(),
            requests: model.pod.requests.clone(),
            staleness: model.pipeline.prometheus.staleness.0,
        }
    }

    /// One sync: observe, reconcile, remember. Returns the engine's decision (with its
    /// history and status already taken into this controller).
    pub fn sync(&mut self, cluster: &Cluster, spec_replicas: i32, now: f64) -> Decision {
        let observed = self.observe(cluster, spec_replicas, now);
        let mut d = podscale_core::reconcile(
            &self.hpa,
            &observed,
            &self.history,
            timestamp(now),
            &self.settings,
        );
        self.history = std::mem::take(&mut d.history);
        self.hpa.status = Some(d.status.clone());
        d
    }

    /// What the controller sees at `now`.
    pub fn observe(&self, cluster: &Cluster, spec_replicas: i32, now: f64) -> Observed {
        let live: Vec<&SimPod> = cluster
            .pods
            .iter()
            .filter(|p| p.state != PodState::Gone)
            .collect();
        let pods = live.iter().map(|p| self.pod(p)).collect();
        let mut metrics = ObservedMetrics::default();
        if self.plan.needs_resources {
            let items = live
                .iter()
                .filter_map(|p| {
                    let s = p.scrapes.ms_latest?;
                    let usage = BTreeMap::from([
                        ("cpu".to_string(), milli(s.cpu_cores)),
                        ("memory".to_string(), milli(s.memory_bytes)),
                    ]);
                    Some(PodMetrics {
                        name: p.name.clone(),
                        timestamp: Some(timestamp(s.t)),
                        window: Some(GoDuration((s.window * 1e9).round() as i64)),
                        containers: vec![ContainerMetrics {
                            name: self.container.clone(),
                            usage,
                        }],
                    })
                })
                .collect();
            metrics.resource = Some(Fetched::Data(ResourceMetricsList { pods: items }));
        }
        let mut pods_values = Vec::new();
        let mut external = Vec::new();
        let mut object = Vec::new();
        for r in &self.plan.resolved {
            match r {
                Resolved::Resource => {}
                Resolved::Pods { name, source } => {
                    let items = live
                        .iter()
                        .filter_map(|p| {
                            let (v, t) = p.scrapes.query(source, now, self.staleness)?;
                            Some(PodMetricValue {
                                pod_name: p.name.clone(),
                                value: milli(v),
                                timestamp: Some(timestamp(t)),
                                window_seconds: source.rate.map(|w| w.0.round() as i64),
                            })
                        })
                        .collect();
                    pods_values.push(PodsMetricValues {
                        metric_name: name.clone(),
                        items,
                    });
                }
                Resolved::External {
                    name,
                    selector,
                    source,
                } => {
                    let per_pod: Vec<(f64, f64)> = live
                        .iter()
                        .filter_map(|p| p.scrapes.query(source, now, self.staleness))
                        .collect();
                    let items = if source.aggregate == Aggregate::PerPod {
                        per_pod
                            .iter()
                            .map(|&(v, t)| ExternalMetricValue {
                                value: milli(v),
                                metric_labels: BTreeMap::new(),
                                timestamp: Some(timestamp(t)),
                            })
                            .collect()
                    } else {
                        let values: Vec<f64> = per_pod.iter().map(|x| x.0).collect();
                        aggregate(&values, source.aggregate)
                            .map(|v| ExternalMetricValue {
                                value: milli(v),
                                metric_labels: BTreeMap::new(),
                                timestamp: Some(timestamp(now)),
                            })
                            .into_iter()
                            .collect()
                    };
                    external.push(ExternalMetricValues {
                        metric_name: name.clone(),
                        selector: selector.clone(),
                        items,
                    });
                }
                Resolved::Object {
                    name,
                    object: target,
                    source,
                } => {
                    let values: Vec<f64> = live
                        .iter()
                        .filter_map(|p| p.scrapes.query(source, now, self.staleness).map(|x| x.0))
                        .collect();
                    if let Some(v) = aggregate(&values, source.aggregate) {
                        object.push(ObjectMetricValue {
                            described_object: DescribedObject {
                                api_version: target.api_version.clone(),
                                kind: target.kind.clone(),
                                name: target.name.clone(),
                            },
                            metric_name: name.clone(),
                            value: milli(v),
                            timestamp: Some(timestamp(now)),
                        });
                    }
                }
            }
        }
        if !pods_values.is_empty() {
            metrics.pods = Some(Fetched::Data(pods_values));
        }
        if !external.is_empty() {
            metrics.external = Some(Fetched::Data(external));
        }
        if !object.is_empty() {
            metrics.object = Some(Fetched::Data(object));
        }
        Observed {
            spec_replicas,
            status_replicas: cluster.active() as i32,
            selector: None,
            pods,
            metrics,
        }
    }

    /// A simulated pod as the API server would show it.
    fn pod(&self, p: &SimPod) -> Pod {
        let ts = |t: Option<f64>| t.map(timestamp);
        let (phase, ready, transition) = match p.state {
            PodState::Pending => ("Pending", p.scheduled.map(|_| false), p.scheduled),
            PodState::Starting => ("Running", Some(false), p.scheduled),
            PodState::Ready | PodState::Draining => ("Running", Some(true), p.ready_at),
            PodState::Gone => ("Succeeded", Some(false), p.deleted),
        };
        Pod {
            name: p.name.clone(),
            labels: self.labels.clone(),
            phase: phase.into(),
            ready,
            start_time: ts(p.scheduled),
            ready_transition_time: ts(transition),
            deletion_timestamp: ts(p.deleted),
            containers: vec![Container {
                name: self.container.clone(),
                resources: Some(ResourceRequirements {
                    requests: Some(self.requests.clone()),
                    limits: None,
                }),
                restart_policy: None,
            }],
            init_containers: Vec::new(),
            resources: None,
        }
    }
}

/// A metric's current value as the engine reported it (percent for utilization).
pub fn current_value(v: &MetricValueStatus) -> Option<f64> {
    if let Some(u) = v.average_utilization {
        return Some(f64::from(u));
    }
    v.average_value
        .or(v.value)
        .map(|q| q.as_approximate_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_time_maps_to_fixed_timestamps() {
        assert_eq!(timestamp(0.0).to_string(), "2025-01-01T00:00:00Z");
        assert_eq!(timestamp(90.5).to_string(), "2025-01-01T00:01:30.5Z");
        assert_eq!(timestamp(-3600.0).to_string(), "2024-12-31T23:00:00Z");
    }
}
