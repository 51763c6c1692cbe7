//! [`CollectSource`]: the runtime's [`MetricSource`] over `podscale_metrics::collect`
//! — every metric of an autoscaler from Prometheus, the pods' own endpoints or the
//! Kubernetes metrics APIs, as `podscale.yaml` says. The pods are the ones the target
//! just listed, with the addresses that listing recorded.
use std::sync::Arc;

use jiff::Timestamp;
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::{ObservedMetrics, Pod};
use podscale_metrics::collect::{self, PodInfo, Request, Sources};
use podscale_metrics::config::Config;
use podscale_runtime::{Key, MetricSource};

use crate::target::PodAddresses;

/// Reads metrics through `collect::read`.
#[derive(Debug, Clone)]
pub struct CollectSource {
    config: Arc<Config>,
    sources: Arc<Sources>,
    addresses: PodAddresses,
}

impl CollectSource {
    pub fn new(config: Config, sources: Sources, addresses: PodAddresses) -> Self {
        Self {
            config: Arc::new(config),
            sources: Arc::new(sources),
            addresses,
        }
    }
}

impl MetricSource for CollectSource {
    async fn read(
        &self,
        hpa: &HorizontalPodAutoscaler,
        pods: &[Pod],
        now: Timestamp,
    ) -> ObservedMetrics {
        let key = Key::of(hpa);
        let infos: Vec<PodInfo> = pods
            .iter()
            .map(|p| PodInfo {
                name: p.name.clone(),
                address: self.addresses.get(&key, &p.name),
            })
            .collect();
        let req = Request {
            hpa,
            pods: Some(&infos),
            now,
        };
        collect::read(&self.config, &self.sources, &req)
            .await
            .observed
    }
}
