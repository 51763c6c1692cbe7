//! The metrics pipeline between the replicas and the controller: what metrics-server and
//! Prometheus (through an adapter) have sampled, and what a query at sync time returns.
//!
//! - **metrics-server** scrapes every `resolution`. A sample's CPU is the average over the
//!   time since the previous scrape (its `window`), memory the working set at the scrape;
//!   so a container has CPU metrics from its second scrape on.
//! - **Prometheus** scrapes a pod's server every `scrapeInterval` once the server is up
//!   (model loaded). A gauge query returns the latest sample no older than `staleness`;
//!   `rate(x[w])` is `(last − first) / (t_last − t_first)` over the samples in the last
//!   `w`, and needs two of them (Prometheus also extrapolates to the window's edges; we
//!   do not, which changes nothing for steady counters).
use std::collections::VecDeque;

use podscale_core::api::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, LabelSelector, MetricSourceType,
};
use podscale_core::defaults;

use crate::model::{Aggregate, MetricSource, Model, Series};
use crate::{Error, Result};

/// One Prometheus scrape of one pod: every series, in [`Series::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub t: f64,
    pub values: [f64; Series::ALL.len()],
}

/// A metrics-server sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResourceSample {
    pub t: f64,
    pub window: f64,
    pub cpu_cores: f64,
    pub memory_bytes: f64,
}

/// What the pipeline holds about one pod.
#[derive(Debug, Clone, Default)]
pub struct PodScrapes {
    prom: VecDeque<Snapshot>,
    ms_previous: Option<(f64, f64)>,
    pub ms_latest: Option<ResourceSample>,
}

impl PodScrapes {
    /// A metrics-server scrape: `cpu_total` is the container's cumulative CPU seconds.
    pub fn scrape_resources(&mut self, t: f64, cpu_total: f64, memory_bytes: f64) {
        if let Some((t0, c0)) = self.ms_previous
            && t > t0
        {
            self.ms_latest = Some(ResourceSample {
                t,
                window: t - t0,
                cpu_cores: ((cpu_total - c0) / (t - t0)).max(0.0),
                memory_bytes,
            });
        }
        self.ms_previous = Some((t, cpu_total));
    }

    /// A Prometheus scrape; samples older than `retain` seconds are forgotten.
    pub fn scrape_series(&mut self, snap: Snapshot, retain: f64) {
        if self.prom.back().is_some_and(|s| s.t >= snap.t) {
            self.prom.pop_back();
        }
        self.prom.push_back(snap);
        while self.prom.len() > 2 && self.prom.front().is_some_and(|s| s.t < snap.t - retain) {
            self.prom.pop_front();
        }
    }

    /// The value a query for `m` returns at `now`, if any.
    pub fn query(&self, m: &MetricSource, now: f64, staleness: f64) -> Option<(f64, f64)> {
        let i = m.series.index();
        let last = self.prom.back()?;
        if now - last.t > staleness {
            return None;
        }
        match m.rate {
            None => Some((last.values[i] * m.scale, last.t)),
            Some(w) => {
                let first = self.prom.iter().find(|s| s.t >= now - w.0 - 1e-9)?;
                if first.t >= last.t {
                    return None;
                }
                let rate = (last.values[i] - first.values[i]) / (last.t - first.t);
                Some((rate.max(0.0) * m.scale, last.t))
            }
        }
    }
}

/// One metric of the policy, resolved against the model.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// Resource or ContainerResource: from metrics-server.
    Resource,
    Pods {
        name: String,
        source: MetricSource,
    },
    External {
        name: String,
        selector: Option<LabelSelector>,
        source: MetricSource,
    },
    Object {
        name: String,
        object: CrossVersionObjectReference,
        source: MetricSource,
    },
}

/// A metric as shown in series, tables and charts.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricColumn {
    /// `cpu utilization`, `inference_queue_depth`.
    pub label: String,
    /// The target's number (percent for Utilization).
    pub target: f64,
    /// `%` for Utilization targets, else empty.
    pub unit: &'static str,
}

/// Every metric the policy reads, and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPlan {
    pub resolved: Vec<Resolved>,
    pub columns: Vec<MetricColumn>,
    /// Whether metrics-server data is needed.
    pub needs_resources: bool,
    /// How long Prometheus samples must be kept for the rate windows.
    pub retain: f64,
}

impl MetricPlan {
    /// Resolves the policy's metrics.
    ///
    /// # Errors
    /// A metric the simulator cannot produce: an unmapped name, a resource other than
    /// cpu and memory, a container the model's pod does not have.
    pub fn for_hpa(hpa: &HorizontalPodAutoscaler, model: &Model, policy: &str) -> Result<Self> {
        let mut resolved = Vec::new();
        let mut columns = Vec::new();
        let mut retain: f64 = 0.0;
        let lookup = |name: &str, kind: &str| -> Result<MetricSource> {
            model.metrics.get(name).cloned().ok_or_else(|| {
                let known: Vec<&str> = model.metrics.keys().map(String::as_str).collect();
                Error::Policy(format!(
                    "{policy}: the {kind} metric `{name}` is not simulated. Map it to a series in a \
                     model file (--model) under `metrics:`, e.g. `{name}: {{series: waiting}}`; \
                     names mapped now: {}",
                    known.join(", ")
                ))
            })
        };
        for spec in defaults::metrics(hpa) {
            let (r, label, target) = match spec.source_type() {
                Some(MetricSourceType::Resource) => {
                    let src = spec.resource.as_ref().ok_or_else(|| {
                        Error::Policy(format!("{policy}: a Resource metric has no `resource`"))
                    })?;
                    check_resource(&src.name, policy)?;
                    (Resolved::Resource, src.name.clone(), &src.target)
                }
                Some(MetricSourceType::ContainerResource) => {
                    let src = spec.container_resource.as_ref().ok_or_else(|| {
                        Error::Policy(format!(
                            "{policy}: a ContainerResource metric has no `containerResource`"
                        ))
                    })?;
                    check_resource(&src.name, policy)?;
                    if src.container != model.pod.container {
                        return Err(Error::Policy(format!(
                            "{policy}: the ContainerResource metric names container `{}`, but the \
                             model's pod runs `{}` (set pod.container in a model file)",
                            src.container, model.pod.container
                        )));
                    }
                    (
                        Resolved::Resource,
                        format!("{} {}", src.container, src.name),
                        &src.target,
                    )
                }
                Some(MetricSourceType::Pods) => {
                    let src = spec.pods.as_ref().ok_or_else(|| {
                        Error::Policy(format!("{policy}: a Pods metric has no `pods`"))
                    })?;
                    let source = lookup(&src.metric.name, "Pods")?;
                    retain = retain.max(source.rate.map_or(0.0, |w| w.0));
                    (
                        Resolved::Pods {
                            name: src.metric.name.clone(),
                            source,
                        },
                        src.metric.name.clone(),
                        &src.target,
                    )
                }
                Some(MetricSourceType::External) => {
                    let src = spec.external.as_ref().ok_or_else(|| {
                        Error::Policy(format!("{policy}: an External metric has no `external`"))
                    })?;
                    let source = lookup(&src.metric.name, "External")?;
                    retain = retain.max(source.rate.map_or(0.0, |w| w.0));
                    (
                        Resolved::External {
                            name: src.metric.name.clone(),
                            selector: src.metric.selector.clone(),
                            source,
                        },
                        src.metric.name.clone(),
                        &src.target,
                    )
                }
                Some(MetricSourceType::Object) => {
                    let src = spec.object.as_ref().ok_or_else(|| {
                        Error::Policy(format!("{policy}: an Object metric has no `object`"))
                    })?;
                    let mut source = lookup(&src.metric.name, "Object")?;
                    if source.aggregate == Aggregate::PerPod {
                        source.aggregate = Aggregate::Sum;
                    }
                    retain = retain.max(source.rate.map_or(0.0, |w| w.0));
                    (
                        Resolved::Object {
                            name: src.metric.name.clone(),
                            object: src.described_object.clone(),
                            source,
                        },
                        src.metric.name.clone(),
                        &src.target,
                    )
                }
                None => {
                    return Err(Error::Policy(format!(
                        "{policy}: unknown metric type `{}`",
                        spec.type_
                    )));
                }
            };
            let (target, unit, suffix) = if let Some(u) = target.average_utilization {
                (f64::from(u), "%", " utilization")
            } else if let Some(q) = target.average_value {
                (q.as_approximate_f64(), "", "")
            } else if let Some(q) = target.value {
                (q.as_approximate_f64(), "", "")
            } else {
                (f64::NAN, "", "")
            };
            let label = if matches!(r, Resolved::Resource) {
                format!(
                    "{label}{}",
                    if suffix.is_empty() {
                        " average"
                    } else {
                        suffix
                    }
                )
            } else {
                label
            };
            columns.push(MetricColumn {
                label,
                target,
                unit,
            });
            resolved.push(r);
        }
        let needs_resources = resolved.iter().any(|r| matches!(r, Resolved::Resource));
        Ok(Self {
            resolved,
            columns,
            needs_resources,
            retain,
        })
    }
}

fn check_resource(name: &str, policy: &str) -> Result<()> {
    if name == "cpu" || name == "memory" {
        Ok(())
    } else {
        Err(Error::Policy(format!(
            "{policy}: the resource `{name}` is not simulated (metrics-server reports cpu and memory)"
        )))
    }
}

/// Combines per-pod values into one.
pub fn aggregate(values: &[f64], how: Aggregate) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(match how {
        Aggregate::Sum | Aggregate::PerPod => values.iter().sum(),
        Aggregate::Avg => values.iter().sum::<f64>() / values.len() as f64,
        Aggregate::Max => values.iter().copied().fold(f64::MIN, f64::max),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Seconds;

    fn snap(t: f64, waiting: f64, completed: f64) -> Snapshot {
        let mut values = [0.0; Series::ALL.len()];
        values[Series::Waiting.index()] = waiting;
        values[Series::CompletedTotal.index()] = completed;
        Snapshot { t, values }
    }

    #[test]
    fn gauges_return_the_latest_sample_until_it_goes_stale() {
        let mut p = PodScrapes::default();
        p.scrape_series(snap(10.0, 3.0, 0.0), 60.0);
        p.scrape_series(snap(25.0, 7.0, 0.0), 60.0);
        let m = MetricSource {
            series: Series::Waiting,
            rate: None,
            scale: 1.0,
            aggregate: Aggregate::PerPod,
        };
        assert_eq!(p.query(&m, 30.0, 300.0), Some((7.0, 25.0)));
        assert_eq!(p.query(&m, 400.0, 300.0), None);
    }

    #[test]
    fn rates_need_two_samples_inside_the_window() {
        let mut p = PodScrapes::default();
        let m = MetricSource {
            series: Series::CompletedTotal,
            rate: Some(Seconds(60.0)),
            scale: 1.0,
            aggregate: Aggregate::PerPod,
        };
        p.scrape_series(snap(0.0, 0.0, 0.0), 75.0);
        assert_eq!(p.query(&m, 5.0, 300.0), None);
        for (t, c) in [
            (15.0, 30.0),
            (30.0, 60.0),
            (45.0, 90.0),
            (60.0, 120.0),
            (75.0, 150.0),
        ] {
            p.scrape_series(snap(t, 0.0, c), 75.0);
        }
        let (rate, _) = p.query(&m, 80.0, 300.0).expect("rate");
        assert!((rate - 2.0).abs() < 1e-12);
    }

    #[test]
    fn cpu_is_the_average_between_two_resource_scrapes() {
        let mut p = PodScrapes::default();
        p.scrape_resources(0.0, 100.0, 1e9);
        assert_eq!(p.ms_latest, None);
        p.scrape_resources(15.0, 130.0, 2e9);
        let s = p.ms_latest.expect("sample");
        assert_eq!((s.window, s.cpu_cores, s.memory_bytes), (15.0, 2.0, 2e9));
    }
}
