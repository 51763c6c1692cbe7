//! The HPA controller in the loop: at every sync, what the metrics APIs would answer is
//! assembled into the engine's [`Observed`] state, and the engine's
//! [`podscale_core::Autoscaler`] — the same one the control loop of the Kubernetes
//! controller and the local runtime drives — decides.
//! The simulator never decides itself: it only applies the engine's [`Decision`].
use std::collections::BTreeMap;

use jiff::Timestamp;
use podscale_core::api::{HorizontalPodAutoscaler, MetricValueStatus};
use podscale_core::duration::GoDuration;
use podscale_core::observed::{
    Container, ContainerMetrics, DescribedObject, ExternalMetricValue, ExternalMetricValues,
    Fetched, ObjectMetricValue, Observed, Pod, PodMetricValue, PodMetrics, PodsMetricValues,
    ResourceMetricsList, ResourceRequirements,
};
use podscale_core::{Autoscaler, Decision, Quantity};

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

/// A metric value as the real pipeline hands it to the HPA: the engine's one
/// conversion, truncating to thousandths as prometheus-adapter does.
fn milli(x: f64) -> Quantity {
    Quantity::from_metric_value(x)
}

/// One policy's controller: the HPA (whose status the engine updates), its memory, and
/// what it reads.
#[derive(Debug, Clone)]
pub struct HpaController {
    /// The HPA (with the status the engine last wrote), its history and the settings.
    pub autoscaler: Autoscaler,
    pub plan: MetricPlan,
    container: String,
    labels: BTreeMap<String, String>,
    requests: BTreeMap<String, Quantity>,
    staleness: f64,
    /// The last observation, updated in place at each sync: with hundreds of pods,
    /// rebuilding every name and map each time would cost more than the decision.
    observed: Observed,
}

impl HpaController {
    pub fn new(hpa: HorizontalPodAutoscaler, model: &Model, plan: MetricPlan) -> Self {
        Self {
            autoscaler: Autoscaler::new(hpa, model.controller_settings()),
            plan,
            container: model.pod.container.clone(),
            labels: model.pod.labels.clone(),
            requests: model.pod.requests.clone(),
            staleness: model.pipeline.prometheus.staleness.0,
            observed: Observed::default(),
        }
    }

    /// One sync: observe, reconcile, remember. Returns the engine's decision (with its
    /// history and status already taken into this controller).
    pub fn sync(&mut self, cluster: &Cluster, spec_replicas: i32, now: f64) -> Decision {
        let mut observed = std::mem::take(&mut self.observed);
        self.observe_into(&mut observed, cluster, spec_replicas, now);
        // The simulated scale update always succeeds: commit at once.
        let d = self.autoscaler.decide(&observed, timestamp(now));
        self.autoscaler.commit(&d);
        self.observed = observed;
        d
    }

    /// What the controller sees at `now`.
    pub fn observe(&self, cluster: &Cluster, spec_replicas: i32, now: f64) -> Observed {
        let mut o = Observed::default();
        self.observe_into(&mut o, cluster, spec_replicas, now);
        o
    }

    /// [`HpaController::observe`], reusing the names and maps of a previous observation.
    fn observe_into(&self, o: &mut Observed, cluster: &Cluster, spec_replicas: i32, now: f64) {
        let live: Vec<&SimPod> = cluster
            .pods
            .iter()
            .filter(|p| p.state != PodState::Gone)
            .collect();
        reuse(
            &mut o.pods,
            live.iter().copied(),
            |pod, p| pod.name == p.name,
            |p| self.pod(p),
            |pod, p| self.update_pod(pod, p),
        );
        if self.plan.needs_resources {
            let mut list = match o.metrics.resource.take() {
                Some(Fetched::Data(list)) => list,
                _ => ResourceMetricsList::default(),
            };
            let sampled = live
                .iter()
                .filter_map(|p| p.scrapes.ms_latest.map(|s| (p.name.as_str(), s)));
            reuse(
                &mut list.pods,
                sampled,
                |m, (name, _)| m.name == *name,
                |(name, _)| PodMetrics {
                    name: name.to_string(),
                    timestamp: None,
                    window: None,
                    containers: vec![ContainerMetrics {
                        name: self.container.clone(),
                        usage: BTreeMap::from([
                            ("cpu".to_string(), Quantity::ZERO),
                            ("memory".to_string(), Quantity::ZERO),
                        ]),
                    }],
                },
                |m, (_, s)| {
                    m.timestamp = Some(timestamp(s.t));
                    m.window = Some(GoDuration((s.window * 1e9).round() as i64));
                    let usage = &mut m.containers[0].usage;
                    if let Some(q) = usage.get_mut("cpu") {
                        *q = Quantity::from_cpu_cores(s.cpu_cores);
                    }
                    if let Some(q) = usage.get_mut("memory") {
                        *q = Quantity::from_memory_bytes(s.memory_bytes);
                    }
                },
            );
            o.metrics.resource = Some(Fetched::Data(list));
        }
        let mut pods_values = match o.metrics.pods.take() {
            Some(Fetched::Data(v)) => v,
            _ => Vec::new(),
        };
        let mut n_pods_metrics = 0;
        let mut external = Vec::new();
        let mut object = Vec::new();
        for r in &self.plan.resolved {
            match r {
                Resolved::Resource => {}
                Resolved::Pods { name, source } => {
                    if pods_values.len() <= n_pods_metrics {
                        pods_values.push(PodsMetricValues {
                            metric_name: name.clone(),
                            items: Vec::new(),
                            error: None,
                        });
                    }
                    let entry = &mut pods_values[n_pods_metrics];
                    n_pods_metrics += 1;
                    let window = source.rate.map(|w| w.0.round() as i64);
                    let values = live.iter().filter_map(|p| {
                        p.scrapes
                            .query(source, now, self.staleness)
                            .map(|(v, t)| (p.name.as_str(), v, t))
                    });
                    reuse(
                        &mut entry.items,
                        values,
                        |item, (name, _, _)| item.pod_name == *name,
                        |(name, v, t)| PodMetricValue {
                            pod_name: name.to_string(),
                            value: milli(v),
                            timestamp: Some(timestamp(t)),
                            window_seconds: window,
                        },
                        |item, (_, v, t)| {
                            item.value = milli(v);
                            item.timestamp = Some(timestamp(t));
                        },
                    );
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
                        error: None,
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
                            error: None,
                        });
                    }
                }
            }
        }
        pods_values.truncate(n_pods_metrics);
        o.metrics.pods = (!pods_values.is_empty()).then_some(Fetched::Data(pods_values));
        o.metrics.external = (!external.is_empty()).then_some(Fetched::Data(external));
        o.metrics.object = (!object.is_empty()).then_some(Fetched::Data(object));
        o.spec_replicas = spec_replicas;
        o.status_replicas = cluster.active() as i32;
        o.selector = None;
    }

    fn update_pod(&self, pod: &mut Pod, p: &SimPod) {
        let (phase, ready, transition) = pod_status(p);
        if pod.phase != phase {
            phase.clone_into(&mut pod.phase);
        }
        pod.ready = ready;
        pod.start_time = p.scheduled.map(timestamp);
        pod.ready_transition_time = transition.map(timestamp);
        pod.deletion_timestamp = p.deleted.map(timestamp);
    }

    /// A simulated pod as the API server would show it.
    fn pod(&self, p: &SimPod) -> Pod {
        let ts = |t: Option<f64>| t.map(timestamp);
        let (phase, ready, transition) = pod_status(p);
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

/// Phase, Ready condition and its last transition, as the kubelet reports them.
fn pod_status(p: &SimPod) -> (&'static str, Option<bool>, Option<f64>) {
    match p.state {
        PodState::Pending => ("Pending", p.scheduled.map(|_| false), p.scheduled),
        PodState::Starting => ("Running", Some(false), p.scheduled),
        PodState::Ready | PodState::Draining => ("Running", Some(true), p.ready_at),
        PodState::Gone => ("Succeeded", Some(false), p.deleted),
    }
}

/// Makes `list` hold one entry per item, in order, updating an entry in place when it is
/// already the item's (`same`) and building it (`make`) otherwise.
fn reuse<T, I: Copy>(
    list: &mut Vec<T>,
    items: impl Iterator<Item = I>,
    same: impl Fn(&T, I) -> bool,
    make: impl Fn(I) -> T,
    update: impl Fn(&mut T, I),
) {
    let mut n = 0;
    for item in items {
        match list.get_mut(n) {
            Some(entry) if same(entry, item) => update(entry, item),
            Some(entry) => {
                *entry = make(item);
                update(entry, item);
            }
            None => {
                let mut entry = make(item);
                update(&mut entry, item);
                list.push(entry);
            }
        }
        n += 1;
    }
    list.truncate(n);
}

/// A metric's current value as the engine reported it (percent for utilization).
pub fn current_value(v: &MetricValueStatus) -> Option<f64> {
    if let Some(u) = v.average_utilization {
        return Some(f64::from(u));
    }
    v.average_value.or(v.value).map(|q| q.as_approximate_f64())
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
