//! Built-in presets for inference engines, so common metrics need no PromQL.
//!
//! A preset names the series an engine exports and how to combine them; from it
//! podscale writes the query for the metric's type (per pod, per object, external) or,
//! for a direct scrape, picks the series out of each pod's `/metrics`. Where an engine
//! renamed a series, the preset lists the old name as an alias: the first name that
//! has data wins (vLLM's `vllm:kv_cache_usage_perc` was `vllm:gpu_cache_usage_perc`).
use crate::config::{Aggregate, MetricKind};

/// One preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// `engine/what`, as written in `preset:`.
    pub name: &'static str,
    /// The series, preferred first, then aliases.
    pub series: &'static [&'static str],
    /// How a pod's several series (engines, models, GPUs) combine into its value.
    pub aggregate: Aggregate,
    /// Whether the series is a counter that must be read as a rate (Prometheus only).
    pub rate: bool,
    pub description: &'static str,
}

/// Every preset.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "vllm/requests-waiting",
        series: &["vllm:num_requests_waiting"],
        aggregate: Aggregate::Sum,
        rate: false,
        description: "vLLM requests waiting in the scheduler queue",
    },
    Preset {
        name: "vllm/requests-running",
        series: &["vllm:num_requests_running"],
        aggregate: Aggregate::Sum,
        rate: false,
        description: "vLLM requests running on the GPU",
    },
    Preset {
        name: "vllm/kv-cache-usage",
        series: &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
        aggregate: Aggregate::Max,
        rate: false,
        description: "vLLM KV-cache usage, 0..1 (older vLLM: vllm:gpu_cache_usage_perc)",
    },
    Preset {
        name: "sglang/requests-waiting",
        series: &["sglang:num_queue_reqs"],
        aggregate: Aggregate::Sum,
        rate: false,
        description: "SGLang requests in the waiting queue",
    },
    Preset {
        name: "sglang/requests-running",
        series: &["sglang:num_running_reqs"],
        aggregate: Aggregate::Sum,
        rate: false,
        description: "SGLang requests running",
    },
    Preset {
        name: "sglang/token-usage",
        series: &["sglang:token_usage"],
        aggregate: Aggregate::Max,
        rate: false,
        description: "SGLang KV-cache token usage, 0..1",
    },
    Preset {
        name: "tgi/queue-size",
        series: &["tgi_queue_size"],
        aggregate: Aggregate::Sum,
        rate: false,
        description: "Text Generation Inference requests waiting in the queue",
    },
    Preset {
        name: "tgi/batch-size",
        series: &["tgi_batch_current_size"],
        aggregate: Aggregate::Sum,
        rate: false,
        description: "Text Generation Inference current batch size",
    },
    Preset {
        name: "triton/pending-requests",
        series: &["nv_inference_pending_request_count"],
        aggregate: Aggregate::Sum,
        rate: false,
        description: "Triton requests received but not yet executing",
    },
    Preset {
        name: "triton/request-rate",
        series: &["nv_inference_request_success"],
        aggregate: Aggregate::Sum,
        rate: true,
        description: "Triton successful inferences per second (Prometheus only)",
    },
    Preset {
        name: "dcgm/gpu-utilization",
        series: &["DCGM_FI_DEV_GPU_UTIL"],
        aggregate: Aggregate::Avg,
        rate: false,
        description: "NVIDIA DCGM GPU utilization, percent",
    },
    Preset {
        name: "dcgm/memory-copy-utilization",
        series: &["DCGM_FI_DEV_MEM_COPY_UTIL"],
        aggregate: Aggregate::Avg,
        rate: false,
        description: "NVIDIA DCGM memory bandwidth utilization, percent",
    },
    Preset {
        name: "dcgm/framebuffer-used",
        series: &["DCGM_FI_DEV_FB_USED"],
        aggregate: Aggregate::Sum,
        rate: false,
        description: "NVIDIA DCGM framebuffer memory used, MiB",
    },
];

/// The preset called `name`.
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

impl Preset {
    /// The PromQL this preset reads for a metric of `kind`, as a template (see
    /// [`crate::template`]). Aliases are joined with `or`, so the first series with data
    /// wins per result label set. With `max_age`, each series is read through
    /// `last_over_time(…[{{maxAge}}])`, so samples older than that are absent.
    pub fn query(&self, kind: MetricKind, pod_label: &str, max_age: bool) -> String {
        let matchers = match kind {
            MetricKind::Pods => {
                format!(r#"namespace="{{{{namespace}}}}",{pod_label}=~"{{{{pods}}}}""#)
            }
            MetricKind::Object => r#"namespace="{{namespace}}""#.to_owned(),
            MetricKind::External => "{{selector}}".to_owned(),
        };
        let agg = self.aggregate.promql();
        let by = match kind {
            MetricKind::Pods => format!(" by ({pod_label})"),
            MetricKind::Object | MetricKind::External => String::new(),
        };
        let parts: Vec<String> = self
            .series
            .iter()
            .map(|s| {
                let selector = format!("{s}{{{matchers}}}");
                let inner = if self.rate {
                    "rate(SEL[{{window}}])".replace("SEL", &selector)
                } else if max_age {
                    format!("last_over_time({selector}[{{{{maxAge}}}}])")
                } else {
                    selector
                };
                format!("{agg}{by} ({inner})")
            })
            .collect();
        parts.join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pods_preset_sums_by_pod_with_aliases() {
        let p = find("vllm/kv-cache-usage").expect("exists");
        assert_eq!(
            p.query(MetricKind::Pods, "pod", false),
            r#"max by (pod) (vllm:kv_cache_usage_perc{namespace="{{namespace}}",pod=~"{{pods}}"}) or max by (pod) (vllm:gpu_cache_usage_perc{namespace="{{namespace}}",pod=~"{{pods}}"})"#
        );
    }

    #[test]
    fn max_age_reads_through_last_over_time() {
        let p = find("dcgm/gpu-utilization").expect("exists");
        assert_eq!(
            p.query(MetricKind::External, "pod", true),
            "avg (last_over_time(DCGM_FI_DEV_GPU_UTIL{{{selector}}}[{{maxAge}}]))"
        );
    }

    #[test]
    fn preset_queries_only_use_known_placeholders() {
        for p in PRESETS {
            for kind in [MetricKind::Pods, MetricKind::Object, MetricKind::External] {
                for max_age in [false, true] {
                    crate::template::check(&p.query(kind, "pod", max_age)).expect(p.name);
                }
            }
        }
    }
}
