//! [`LocalMetrics`]: what the metrics APIs would answer for the local replicas.
//!
//! - Resource metrics (`metrics.k8s.io`): CPU and memory of each replica's process
//!   group from `/proc`, as Metrics Server would report a pod's containers. CPU is the
//!   rate over the time since the previous read (the sync interval), in cores; on a
//!   replica's first read, the average since it started.
//! - Pods, Object and External metrics: `podscale_metrics::collect::read`, with each
//!   replica's `127.0.0.1:PORT` as the pod address, so direct scrapes reach each
//!   replica and Prometheus queries see the replica names.
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use jiff::Timestamp;
use podscale_core::api::{HorizontalPodAutoscaler, MetricSourceType};
use podscale_core::defaults;
use podscale_core::duration::GoDuration;
use podscale_core::observed::{
    ContainerMetrics, Fetched, ObservedMetrics, Pod, PodMetrics, ResourceMetricsList,
};
use podscale_core::quantity::Quantity;
use podscale_metrics::collect::{self, PodInfo, Request, Sources};
use podscale_metrics::config::{Config, MetricConfig, MetricKind, ResourceSource, ScrapeConfig};
use podscale_runtime::MetricSource;

use crate::replicas::ReplicaSet;

/// The local runtime's metric source.
#[derive(Debug)]
pub struct LocalMetrics {
    replicas: ReplicaSet,
    config: Config,
    sources: Sources,
    /// Per replica name: (process group, CPU seconds, when read).
    previous: Mutex<HashMap<String, (u32, f64, Instant)>>,
}

/// Why the metric source could not be built.
pub type SourceError = podscale_metrics::SourceError;

impl LocalMetrics {
    /// A source reading `config`'s metrics (Prometheus, direct scrapes); Pods and
    /// External metrics of `hpa` that `config` does not describe are scraped from each
    /// replica's `metricsPath` (the series of the metric's name).
    ///
    /// # Errors
    /// A client of `config` cannot be built.
    pub fn new(
        replicas: ReplicaSet,
        mut config: Config,
        hpa: &HorizontalPodAutoscaler,
    ) -> Result<Self, SourceError> {
        config.resources.source = ResourceSource::Local;
        for spec in defaults::metrics(hpa) {
            let (kind, name) = match spec.source_type() {
                Some(MetricSourceType::Pods) => (
                    MetricKind::Pods,
                    spec.pods.as_ref().map(|p| p.metric.name.clone()),
                ),
                Some(MetricSourceType::External) => (
                    MetricKind::External,
                    spec.external.as_ref().map(|p| p.metric.name.clone()),
                ),
                _ => continue,
            };
            let Some(name) = name else { continue };
            if config.metric(kind, &name).is_none() {
                config.metrics.push(MetricConfig {
                    name: name.clone(),
                    kind,
                    query: None,
                    preset: None,
                    scrape: Some(ScrapeConfig {
                        port: None,
                        path: replicas.spec().metrics_path.clone(),
                        scheme: podscale_metrics::config::Scheme::Http,
                        series: Some(name),
                        labels: Default::default(),
                        aggregate: None,
                        across: None,
                        timeout: None,
                    }),
                    pod_label: None,
                    max_age: None,
                    empty_as: None,
                    on_error: Default::default(),
                });
            }
        }
        let sources = Sources::from_config(&config)?;
        Ok(Self {
            replicas,
            config,
            sources,
            previous: Mutex::default(),
        })
    }

    /// CPU (cores) and memory (bytes) of every running replica, as `metrics.k8s.io`
    /// would list them.
    pub fn resource_metrics(&self, now: Timestamp) -> ResourceMetricsList {
        let container = self.replicas.spec().name.clone();
        let mut previous = self.previous.lock().unwrap_or_else(PoisonError::into_inner);
        let mut seen = HashMap::new();
        let mut pods = Vec::new();
        for r in self.replicas.replicas() {
            let Some(pgid) = r.pgid else { continue };
            let Some((cpu_seconds, rss)) = crate::procfs::group_usage(pgid) else {
                continue;
            };
            let read_at = Instant::now();
            let (cores, window) = match previous.get(&r.name) {
                Some(&(p_pgid, p_cpu, p_at)) if p_pgid == pgid => {
                    let dt = read_at.duration_since(p_at).as_secs_f64();
                    if dt < 0.001 {
                        // Read twice at once: nothing new to rate.
                        seen.insert(r.name.clone(), (p_pgid, p_cpu, p_at));
                        continue;
                    }
                    // A member that exited takes its CPU time with it: never negative.
                    ((cpu_seconds - p_cpu).max(0.0) / dt, dt)
                }
                _ => {
                    let dt = now.duration_since(r.created).as_secs_f64().max(0.001);
                    (cpu_seconds / dt, dt)
                }
            };
            seen.insert(r.name.clone(), (pgid, cpu_seconds, read_at));
            #[allow(clippy::cast_possible_truncation)] // cores × 1000: small
            let cpu = Quantity::from_milli((cores * 1000.0).round() as i64);
            let memory = Quantity::new_scaled(i64::try_from(rss).unwrap_or(i64::MAX), 0);
            #[allow(clippy::cast_possible_truncation)] // seconds of a sync interval
            let window = GoDuration((window * 1e9) as i64);
            pods.push(PodMetrics {
                name: r.name,
                timestamp: Some(now),
                window: Some(window),
                containers: vec![ContainerMetrics {
                    name: container.clone(),
                    usage: [("cpu".to_owned(), cpu), ("memory".to_owned(), memory)].into(),
                }],
            });
        }
        *previous = seen;
        ResourceMetricsList { pods }
    }
}

impl MetricSource for LocalMetrics {
    async fn read(
        &self,
        hpa: &HorizontalPodAutoscaler,
        pods: &[Pod],
        now: Timestamp,
    ) -> ObservedMetrics {
        let ports: HashMap<String, u16> = self
            .replicas
            .replicas()
            .into_iter()
            .map(|r| (r.name, r.port))
            .collect();
        let infos: Vec<PodInfo> = pods
            .iter()
            .map(|p| PodInfo {
                name: p.name.clone(),
                address: ports.get(&p.name).map(|port| format!("127.0.0.1:{port}")),
            })
            .collect();
        let needs_custom = defaults::metrics(hpa).iter().any(|m| {
            !matches!(
                m.source_type(),
                Some(MetricSourceType::Resource | MetricSourceType::ContainerResource)
            )
        });
        let mut observed = if needs_custom {
            collect::read(
                &self.config,
                &self.sources,
                &Request {
                    hpa,
                    pods: Some(&infos),
                    now,
                },
            )
            .await
            .observed
        } else {
            ObservedMetrics::default()
        };
        observed.resource = Some(Fetched::Data(self.resource_metrics(now)));
        observed
    }
}
