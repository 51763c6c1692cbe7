//! The server model: what one inference replica can do, how pods start and stop, what
//! they report, and how the metrics reach the controller. Its documented defaults are
//! [`DEFAULT_MODEL_YAML`]; a user's model file is merged over them field by field.
use std::collections::BTreeMap;

use podscale_core::Quantity;
use podscale_core::settings::ControllerSettings;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dist::Dist;
use crate::units::Seconds;
use crate::{Error, Result};

/// The default model, with a comment on every field (`podscale simulate --print-model`).
pub const DEFAULT_MODEL_YAML: &str = include_str!("default-model.yaml");

/// The whole model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Model {
    pub server: Server,
    pub service: Service,
    pub pod: PodTemplate,
    pub lifecycle: Lifecycle,
    pub usage: Usage,
    pub pipeline: Pipeline,
    pub controller: Controller,
    pub metrics: BTreeMap<String, MetricSource>,
}

/// One replica's inference server (continuous batching).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Server {
    pub max_batch: u32,
    pub prefill_tokens_per_second: f64,
    /// Decode step time by batch size (keys are batch sizes).
    pub decode_step: BTreeMap<u32, Seconds>,
    pub kv_cache_tokens: u64,
}

/// The service in front of the replicas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    pub queue_timeout: Seconds,
}

/// What the pods look like to the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTemplate {
    pub container: String,
    pub requests: BTreeMap<String, Quantity>,
    pub labels: BTreeMap<String, String>,
}

/// Pod start-up and shutdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lifecycle {
    pub scheduling: Dist,
    pub container_start: Dist,
    pub model_load: Dist,
    pub readiness_probe_period: Seconds,
    pub termination_grace_period: Seconds,
}

/// Resource usage of a replica, for Resource metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Usage {
    pub cpu: CpuUsage,
    pub memory: MemoryUsage,
}

/// CPU cores used, as a function of activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CpuUsage {
    pub idle_cores: f64,
    pub loading_cores: f64,
    pub busy_cores: f64,
    pub per_request_core_seconds: f64,
    pub per_token_core_seconds: f64,
}

/// Memory working set, as a function of activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryUsage {
    pub base: Quantity,
    pub per_request: Quantity,
}

/// The metrics pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pipeline {
    pub metrics_server: MetricsServer,
    pub prometheus: Prometheus,
}

/// metrics-server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricsServer {
    pub resolution: Seconds,
}

/// Prometheus and its adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Prometheus {
    pub scrape_interval: Seconds,
    pub staleness: Seconds,
}

/// kube-controller-manager's HPA settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Controller {
    pub sync_period: Seconds,
    pub tolerance: f64,
    pub cpu_initialization_period: Seconds,
    pub initial_readiness_delay: Seconds,
    pub downscale_stabilization: Seconds,
}

/// A per-pod series the simulator produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Series {
    /// Requests queued at the pod, not yet admitted (vLLM `num_requests_waiting`).
    Waiting,
    /// Requests admitted: prefilling or decoding (vLLM `num_requests_running`).
    Running,
    /// Waiting plus running.
    Outstanding,
    /// KV-cache tokens in use over capacity, 0..1.
    KvCacheUsage,
    /// Requests routed to the pod.
    RequestsTotal,
    /// Requests completed by the pod.
    CompletedTotal,
    /// Prompt tokens prefilled.
    PromptTokensTotal,
    /// Output tokens generated.
    GenerationTokensTotal,
    /// Seconds the GPU was working (prefill or decode).
    GpuBusySecondsTotal,
    /// CPU seconds used.
    CpuSecondsTotal,
}

impl Series {
    pub const ALL: [Series; 10] = [
        Series::Waiting,
        Series::Running,
        Series::Outstanding,
        Series::KvCacheUsage,
        Series::RequestsTotal,
        Series::CompletedTotal,
        Series::PromptTokensTotal,
        Series::GenerationTokensTotal,
        Series::GpuBusySecondsTotal,
        Series::CpuSecondsTotal,
    ];

    /// Counters only make sense through a rate.
    pub fn is_counter(self) -> bool {
        matches!(
            self,
            Series::RequestsTotal
                | Series::CompletedTotal
                | Series::PromptTokensTotal
                | Series::GenerationTokensTotal
                | Series::GpuBusySecondsTotal
                | Series::CpuSecondsTotal
        )
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// How an External (or Object) metric's per-pod values are returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Aggregate {
    /// One item per pod.
    #[default]
    PerPod,
    Sum,
    Avg,
    Max,
}

/// Where a named metric comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSource {
    pub series: Series,
    /// For counters: the rate() window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Seconds>,
    #[serde(default = "one")]
    pub scale: f64,
    #[serde(default)]
    pub aggregate: Aggregate,
}

fn one() -> f64 {
    1.0
}

impl Model {
    /// The documented default model.
    pub fn default_model() -> Model {
        Self::load(None, "(default model)").expect("the embedded default model is valid")
    }

    /// Loads a user's model file merged over the defaults; `None` = the defaults alone.
    ///
    /// # Errors
    /// [`Error::Manifest`] with `file:line:col: field: message` for a field of the wrong
    /// shape or an unknown field; [`Error::Model`] for values out of range.
    pub fn load(user: Option<&str>, file: &str) -> Result<Model> {
        let mut base = podscale_manifest::parse_documents(DEFAULT_MODEL_YAML, "default-model")
            .map_err(Error::Manifest)?;
        let mut doc = base.pop().expect("the default model is one document");
        if let Some(source) = user {
            let mut docs = podscale_manifest::parse_documents(source, file)?;
            if docs.len() != 1 {
                return Err(Error::Model {
                    file: file.into(),
                    message: format!("expected one YAML document, found {}", docs.len()),
                });
            }
            let user_doc = docs.pop().expect("one document");
            if !user_doc.value.is_object() {
                return Err(Error::Model {
                    file: file.into(),
                    message: "a model file is a mapping (server:, lifecycle:, …)".into(),
                });
            }
            merge(&mut doc.value, user_doc.value, "");
            doc.positions = user_doc.positions;
        }
        let model: Model = podscale_manifest::deserialize(&doc, file)?;
        model.validate().map_err(|message| Error::Model {
            file: file.into(),
            message,
        })?;
        Ok(model)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let s = &self.server;
        if s.max_batch == 0 {
            return Err("server.maxBatch must be at least 1".into());
        }
        if s.prefill_tokens_per_second.is_nan() || s.prefill_tokens_per_second <= 0.0 {
            return Err("server.prefillTokensPerSecond must be positive".into());
        }
        if s.decode_step.is_empty() {
            return Err("server.decodeStep needs at least one `batch: time` point".into());
        }
        if s.decode_step.keys().any(|&b| b == 0) {
            return Err("server.decodeStep: batch sizes start at 1".into());
        }
        if s.decode_step.values().any(|t| t.0 <= 0.0) {
            return Err("server.decodeStep: step times must be positive".into());
        }
        if s.kv_cache_tokens == 0 {
            return Err("server.kvCacheTokens must be positive".into());
        }
        for (name, d) in [
            ("scheduling", &self.lifecycle.scheduling),
            ("containerStart", &self.lifecycle.container_start),
            ("modelLoad", &self.lifecycle.model_load),
        ] {
            d.validate().map_err(|e| format!("lifecycle.{name}: {e}"))?;
        }
        for resource in ["cpu", "memory"] {
            match self.pod.requests.get(resource) {
                Some(q) if q.milli_value() > 0 => {}
                _ => {
                    return Err(format!(
                        "pod.requests.{resource} must be set and positive (Utilization targets divide by it)"
                    ));
                }
            }
        }
        self.check_intervals()?;
        let c = &self.controller;
        if c.tolerance.is_nan() || c.tolerance < 0.0 {
            return Err("controller.tolerance must be 0 or more".into());
        }
        for (name, m) in &self.metrics {
            match (m.series.is_counter(), m.rate) {
                (true, None) => {
                    return Err(format!(
                        "metrics.{name}: series {:?} is a counter: give it a rate window (rate: 1m)",
                        m.series
                    ));
                }
                (false, Some(_)) => {
                    return Err(format!(
                        "metrics.{name}: series {:?} is a gauge: remove `rate`",
                        m.series
                    ));
                }
                (true, Some(w)) if w.0 <= 0.0 => {
                    return Err(format!("metrics.{name}: the rate window must be positive"));
                }
                _ => {}
            }
            if !m.scale.is_finite() {
                return Err(format!("metrics.{name}: scale must be a finite number"));
            }
        }
        Ok(())
    }

    /// The controller settings handed to the engine.
    pub fn controller_settings(&self) -> ControllerSettings {
        let c = &self.controller;
        ControllerSettings {
            tolerance: c.tolerance,
            cpu_initialization_period_seconds: c.cpu_initialization_period.0.round() as i64,
            initial_readiness_delay_seconds: c.initial_readiness_delay.0.round() as i64,
            downscale_stabilization_window_seconds: c.downscale_stabilization.0.round() as i64,
            sync_period_seconds: c.sync_period.0.round() as i64,
            ..ControllerSettings::default()
        }
    }

    /// One line for people: the numbers that matter most.
    pub fn describe(&self) -> String {
        let s = &self.server;
        let steps: Vec<f64> = s.decode_step.values().map(|t| t.0).collect();
        let (lo, hi) = (
            steps.first().copied().unwrap_or(0.0),
            steps.last().copied().unwrap_or(0.0),
        );
        format!(
            "batch ≤ {}, KV {} tokens, prefill {} tok/s, decode {}–{} per step; \
             pod ready after ~{} (median); sync {}, scrape {}, metrics-server {}",
            s.max_batch,
            crate::units::group_thousands(s.kv_cache_tokens),
            crate::units::group_thousands(s.prefill_tokens_per_second.round() as u64),
            crate::units::format_duration(lo),
            crate::units::format_duration(hi),
            crate::units::format_duration(
                self.lifecycle.scheduling.median()
                    + self.lifecycle.container_start.median()
                    + self.lifecycle.model_load.median()
            ),
            if self.controller.sync_period.0 > 0.0 {
                self.controller.sync_period.to_string()
            } else {
                "ideal (1s, fresh metrics)".into()
            },
            self.pipeline.prometheus.scrape_interval,
            self.pipeline.metrics_server.resolution,
        )
    }

    /// Checks the sync period and the pipeline's intervals: 0 (at each sync, or an ideal
    /// controller syncing every second) or from 1 s to 1 h. A run's work grows as the
    /// simulated time over these, so a 1 ns interval is refused rather than simulated.
    ///
    /// # Errors
    /// The field and its range.
    pub fn check_intervals(&self) -> std::result::Result<(), String> {
        for (name, v) in [
            (
                "controller.syncPeriod (--sync-period)",
                self.controller.sync_period.0,
            ),
            (
                "pipeline.prometheus.scrapeInterval (--scrape-interval)",
                self.pipeline.prometheus.scrape_interval.0,
            ),
            (
                "pipeline.metricsServer.resolution (--scrape-interval)",
                self.pipeline.metrics_server.resolution.0,
            ),
        ] {
            if !(v == 0.0 || (1.0..=3600.0).contains(&v)) {
                return Err(format!(
                    "{name} must be 0 or from 1s to 1h, found {}",
                    crate::units::format_duration(v)
                ));
            }
        }
        Ok(())
    }

    /// The sync period in force (0 → one second, the ideal controller).
    pub fn effective_sync_period(&self) -> f64 {
        let p = self.controller.sync_period.0;
        if p <= 0.0 { 1.0 } else { p }
    }
}

/// Fields replaced as a whole rather than merged key by key: a decode-step table or a
/// distribution is one value, and so is a metric's mapping.
fn replaced_whole(path: &str) -> bool {
    matches!(
        path,
        "server.decodeStep"
            | "lifecycle.scheduling"
            | "lifecycle.containerStart"
            | "lifecycle.modelLoad"
    ) || path
        .strip_prefix("metrics.")
        .is_some_and(|rest| !rest.is_empty())
}

fn merge(base: &mut Value, user: Value, path: &str) {
    match (base, user) {
        (Value::Object(b), Value::Object(u)) if !replaced_whole(path) => {
            for (k, v) in u {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v, &child),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_model_loads_and_describes_an_8b_model_on_one_gpu() {
        let m = Model::default_model();
        assert_eq!(m.server.kv_cache_tokens, 32_768);
        assert_eq!(m.server.decode_step.get(&1), Some(&Seconds(0.030)));
        assert_eq!(m.controller.sync_period, Seconds(15.0));
        assert_eq!(m.metrics["inference_queue_depth"].series, Series::Waiting);
        assert_eq!(m.metrics["gpu_utilization_avg"].scale, 100.0);
        assert_eq!(m.controller_settings().sync_period_seconds, 15);
    }

    #[test]
    fn a_user_file_overrides_only_the_fields_it_names() {
        let user = "server:\n  kvCacheTokens: 65536\n  decodeStep: {1: 10ms}\nlifecycle:\n  modelLoad: {constant: 5s}\nmetrics:\n  my_metric: {series: running}\n";
        let m = Model::load(Some(user), "m.yaml").expect("loads");
        assert_eq!(m.server.kv_cache_tokens, 65_536);
        assert_eq!(m.server.max_batch, 256);
        assert_eq!(m.server.decode_step.len(), 1);
        assert_eq!(m.lifecycle.model_load, Dist::constant(5.0));
        assert!(m.metrics.contains_key("my_metric"));
        assert!(m.metrics.contains_key("inference_queue_depth"));
    }

    #[test]
    fn unknown_fields_and_bad_values_are_reported_with_their_position() {
        let err =
            Model::load(Some("server:\n  maxBatchSize: 4\n"), "m.yaml").expect_err("unknown field");
        let text = err.to_string();
        assert!(text.starts_with("m.yaml:2:"), "{text}");
        assert!(text.contains("maxBatchSize"), "{text}");

        let err = Model::load(
            Some("lifecycle:\n  modelLoad: {constant: soon}\n"),
            "m.yaml",
        )
        .expect_err("bad duration");
        assert!(err.to_string().contains("invalid duration"), "{err}");

        let err = Model::load(Some("metrics:\n  x: {series: completedTotal}\n"), "m.yaml")
            .expect_err("counter without rate");
        assert!(err.to_string().contains("give it a rate window"), "{err}");
    }
}
