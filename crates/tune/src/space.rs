//! The search space: one dimension per free knob of the seed HPA, each a short ordered
//! list of values that includes the seed's own (so the seed is a point of the space and
//! a neighbour step moves a knob by one notch). A candidate is one index per dimension.
use podscale_core::Quantity;
use podscale_core::api::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerBehavior, HpaScalingPolicy, HpaScalingRules,
    MetricSpec, MetricTarget,
};
use podscale_sim::Policy;

use crate::{Error, Result};

/// Which knobs the search may change (`--free targets,min,max,windows,policies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Free {
    pub targets: bool,
    pub min: bool,
    pub max: bool,
    pub windows: bool,
    pub policies: bool,
}

impl Free {
    pub const ALL: Free = Free {
        targets: true,
        min: true,
        max: true,
        windows: true,
        policies: true,
    };

    const NONE: Free = Free {
        targets: false,
        min: false,
        max: false,
        windows: false,
        policies: false,
    };

    /// `targets,min,max,windows,policies` (any subset, comma-separated) or `all`.
    ///
    /// # Errors
    /// An unknown knob, or none.
    pub fn parse(text: &str) -> std::result::Result<Free, String> {
        if text.trim() == "all" {
            return Ok(Self::ALL);
        }
        let mut f = Self::NONE;
        for k in text.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            match k {
                "targets" | "target" => f.targets = true,
                "min" | "minReplicas" => f.min = true,
                "max" | "maxReplicas" => f.max = true,
                "windows" | "window" => f.windows = true,
                "policies" | "policy" => f.policies = true,
                other => {
                    return Err(format!(
                        "--free: unknown knob `{other}` (knobs: targets, min, max, windows, policies, or all)"
                    ));
                }
            }
        }
        if f == Self::NONE {
            return Err(
                "--free: name at least one knob (targets, min, max, windows, policies)".into(),
            );
        }
        Ok(f)
    }
}

/// One value of one knob.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    /// `averageUtilization` of metric `metric`.
    Utilization {
        metric: usize,
        value: i32,
    },
    /// `averageValue` of metric `metric`.
    AverageValue {
        metric: usize,
        value: Quantity,
    },
    /// `value` of metric `metric`.
    Value {
        metric: usize,
        value: Quantity,
    },
    MinReplicas(i32),
    MaxReplicas(i32),
    /// A stabilization window (scale-up or scale-down).
    Window {
        up: bool,
        seconds: i32,
    },
    /// A scaling rule's policies and selectPolicy.
    Policies {
        up: bool,
        policies: Vec<HpaScalingPolicy>,
        select: Option<String>,
    },
}

impl Setting {
    fn apply(&self, hpa: &mut HorizontalPodAutoscaler) {
        match self {
            Setting::Utilization { metric, value } => {
                if let Some(t) = target_mut(hpa, *metric) {
                    t.average_utilization = Some(*value);
                }
            }
            Setting::AverageValue { metric, value } => {
                if let Some(t) = target_mut(hpa, *metric) {
                    t.average_value = Some(*value);
                }
            }
            Setting::Value { metric, value } => {
                if let Some(t) = target_mut(hpa, *metric) {
                    t.value = Some(*value);
                }
            }
            Setting::MinReplicas(n) => hpa.spec.min_replicas = Some(*n),
            Setting::MaxReplicas(n) => hpa.spec.max_replicas = *n,
            Setting::Window { up, seconds } => {
                rules_mut(hpa, *up).stabilization_window_seconds = Some(*seconds);
            }
            Setting::Policies {
                up,
                policies,
                select,
            } => {
                let r = rules_mut(hpa, *up);
                r.policies = Some(policies.clone());
                r.select_policy.clone_from(select);
            }
        }
    }

    /// Short text for tables: `cpu=60%`, `min=2`, `up=100%/15s`.
    pub fn describe(&self, names: &[String]) -> String {
        let name = |i: &usize| {
            names
                .get(*i)
                .cloned()
                .unwrap_or_else(|| format!("metric{i}"))
        };
        match self {
            Setting::Utilization { metric, value } => format!("{}={value}%", name(metric)),
            Setting::AverageValue { metric, value } | Setting::Value { metric, value } => {
                format!("{}={value}", name(metric))
            }
            Setting::MinReplicas(n) => format!("min={n}"),
            Setting::MaxReplicas(n) => format!("max={n}"),
            Setting::Window { up, seconds } => {
                format!("{}Window={seconds}s", if *up { "up" } else { "down" })
            }
            Setting::Policies {
                up,
                policies,
                select,
            } => {
                let ps: Vec<String> = policies
                    .iter()
                    .map(|p| {
                        let unit = if p.type_ == "Percent" { "%" } else { " pods" };
                        format!("{}{unit}/{}s", p.value, p.period_seconds)
                    })
                    .collect();
                let sel = match select.as_deref() {
                    Some("Min") if ps.len() > 1 => " min",
                    _ => "",
                };
                format!("{}={}{sel}", if *up { "up" } else { "down" }, ps.join("+"))
            }
        }
    }
}

/// The metric target of metric `i`, whatever its source type.
fn target_mut(hpa: &mut HorizontalPodAutoscaler, i: usize) -> Option<&mut MetricTarget> {
    let m = hpa.spec.metrics.as_mut()?.get_mut(i)?;
    target_of(m)
}

fn target_of(m: &mut MetricSpec) -> Option<&mut MetricTarget> {
    match m.type_.as_str() {
        "Resource" => m.resource.as_mut().map(|r| &mut r.target),
        "ContainerResource" => m.container_resource.as_mut().map(|r| &mut r.target),
        "Pods" => m.pods.as_mut().map(|r| &mut r.target),
        "Object" => m.object.as_mut().map(|r| &mut r.target),
        "External" => m.external.as_mut().map(|r| &mut r.target),
        _ => None,
    }
}

/// A short name for metric `m`: the resource or metric name.
fn metric_name(m: &MetricSpec) -> String {
    let name = match m.type_.as_str() {
        "Resource" => m.resource.as_ref().map(|r| r.name.clone()),
        "ContainerResource" => m.container_resource.as_ref().map(|r| r.name.clone()),
        "Pods" => m.pods.as_ref().map(|r| r.metric.name.clone()),
        "Object" => m.object.as_ref().map(|r| r.metric.name.clone()),
        "External" => m.external.as_ref().map(|r| r.metric.name.clone()),
        _ => None,
    };
    name.unwrap_or_else(|| m.type_.clone())
}

fn rules_mut(hpa: &mut HorizontalPodAutoscaler, up: bool) -> &mut HpaScalingRules {
    let b = hpa
        .spec
        .behavior
        .get_or_insert_with(HorizontalPodAutoscalerBehavior::default);
    let r = if up {
        &mut b.scale_up
    } else {
        &mut b.scale_down
    };
    r.get_or_insert_with(HpaScalingRules::default)
}

fn policy(type_: &str, value: i32, period_seconds: i32) -> HpaScalingPolicy {
    HpaScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds,
    }
}

/// Scale-up rates tried: Kubernetes' default (the larger of 4 pods and 100 % every
/// 15 s, as `GenerateHPAScaleUpRules`), gentler and steeper percentages, and a fixed
/// step.
fn up_presets() -> Vec<(Vec<HpaScalingPolicy>, Option<String>)> {
    vec![
        (vec![policy("Percent", 50, 15)], None),
        (vec![policy("Percent", 100, 15)], None),
        (
            vec![policy("Pods", 4, 15), policy("Percent", 100, 15)],
            Some("Max".into()),
        ),
        (vec![policy("Percent", 200, 15)], None),
        (vec![policy("Percent", 400, 15)], None),
        (vec![policy("Percent", 900, 15)], None),
    ]
}

/// Scale-down rates tried: one pod a minute up to Kubernetes' default (100 % every 15 s,
/// as `GenerateHPAScaleDownRules`).
fn down_presets() -> Vec<(Vec<HpaScalingPolicy>, Option<String>)> {
    vec![
        (vec![policy("Pods", 1, 60)], None),
        (vec![policy("Percent", 5, 60)], None),
        (vec![policy("Percent", 10, 60)], None),
        (vec![policy("Percent", 20, 60)], None),
        (vec![policy("Percent", 50, 60)], None),
        (vec![policy("Percent", 100, 15)], None),
    ]
}

/// One knob and its values, in order.
#[derive(Debug, Clone)]
pub struct Dimension {
    pub name: String,
    pub values: Vec<Setting>,
    /// The index of the seed's value.
    pub seed: usize,
}

/// The search space around a seed policy.
#[derive(Debug, Clone)]
pub struct Space {
    pub seed: Policy,
    pub dims: Vec<Dimension>,
    metric_names: Vec<String>,
}

/// Inserts `seed` among sorted, deduplicated `values` and returns its index.
fn with_seed<T: PartialOrd + Copy>(mut values: Vec<T>, seed: T) -> (Vec<T>, usize) {
    values.push(seed);
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values.dedup_by(|a, b| a.partial_cmp(&b) == Some(std::cmp::Ordering::Equal));
    let i = values
        .iter()
        .position(|v| v.partial_cmp(&seed) == Some(std::cmp::Ordering::Equal))
        .expect("the seed was inserted");
    (values, i)
}

impl Space {
    /// Builds the space around `seed` with the `free` knobs; `max_replicas` caps the
    /// maxReplicas tried (the simulator's `--max-replicas-simulated`).
    ///
    /// # Errors
    /// When no knob is free for this HPA (e.g. only targets, and it has no metrics).
    pub fn new(seed: &Policy, free: Free, max_replicas: u32) -> Result<Space> {
        let hpa = &seed.hpa;
        let mut dims = Vec::new();
        let metrics = hpa.spec.metrics.clone().unwrap_or_default();
        let metric_names: Vec<String> = metrics.iter().map(metric_name).collect();
        let cap = i32::try_from(max_replicas).unwrap_or(i32::MAX).max(1);
        if free.targets {
            for (i, m) in metrics.iter().enumerate() {
                let mut m = m.clone();
                let Some(t) = target_of(&mut m) else { continue };
                let name = metric_names[i].clone();
                if let Some(u) = t.average_utilization {
                    let tried: Vec<i32> = [0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.25, 1.4]
                        .iter()
                        .map(|f| ((f64::from(u) * f).round() as i32).clamp(1, 100))
                        .collect();
                    let (values, s) = with_seed(tried, u);
                    dims.push(Dimension {
                        name,
                        values: values
                            .into_iter()
                            .map(|value| Setting::Utilization { metric: i, value })
                            .collect(),
                        seed: s,
                    });
                } else if let Some(q) = t.average_value.or(t.value) {
                    let average = t.average_value.is_some();
                    let milli = q.milli_value().max(1);
                    let tried: Vec<i64> = [0.25, 0.4, 0.6, 0.8, 1.25, 1.6, 2.5, 4.0]
                        .iter()
                        .map(|f| ((milli as f64 * f).round() as i64).max(1))
                        // Whole units read better when the seed is whole.
                        .map(|v| {
                            if milli % 1000 == 0 && v >= 1000 {
                                v / 1000 * 1000
                            } else {
                                v
                            }
                        })
                        .collect();
                    let (values, s) = with_seed(tried, milli);
                    dims.push(Dimension {
                        name,
                        values: values
                            .into_iter()
                            .map(|v| {
                                let value = Quantity::from_milli(v);
                                if average {
                                    Setting::AverageValue { metric: i, value }
                                } else {
                                    Setting::Value { metric: i, value }
                                }
                            })
                            .collect(),
                        seed: s,
                    });
                }
            }
        }
        let seed_min = podscale_core::defaults::min_replicas(hpa);
        let seed_max = hpa.spec.max_replicas;
        if free.min {
            let tried: Vec<i32> = [1, 2, 3, 4, 6, 8, 12, 16]
                .into_iter()
                .filter(|&n| n <= seed_max.max(1).min(cap))
                .collect();
            let (values, s) = with_seed(tried, seed_min);
            dims.push(Dimension {
                name: "minReplicas".into(),
                values: values.into_iter().map(Setting::MinReplicas).collect(),
                seed: s,
            });
        }
        if free.max {
            let tried: Vec<i32> = [0.5, 0.75, 1.5, 2.0]
                .iter()
                .map(|f| ((f64::from(seed_max) * f).round() as i32).clamp(1, cap))
                .collect();
            let (values, s) = with_seed(tried, seed_max);
            dims.push(Dimension {
                name: "maxReplicas".into(),
                values: values.into_iter().map(Setting::MaxReplicas).collect(),
                seed: s,
            });
        }
        let rules = |up: bool| {
            hpa.spec.behavior.as_ref().and_then(|b| {
                if up {
                    b.scale_up.clone()
                } else {
                    b.scale_down.clone()
                }
            })
        };
        if free.windows {
            for (up, tried, default) in [
                (true, vec![0, 15, 30, 60, 120, 300], 0),
                (false, vec![0, 30, 60, 120, 300, 600, 900], 300),
            ] {
                // Without a window in the manifest, the controller's default applies
                // (0 up; 5 minutes down, --horizontal-pod-autoscaler-downscale-stabilization).
                let seed_window = rules(up)
                    .and_then(|r| r.stabilization_window_seconds)
                    .unwrap_or(default);
                let (values, s) = with_seed(tried, seed_window);
                dims.push(Dimension {
                    name: if up {
                        "scaleUp window"
                    } else {
                        "scaleDown window"
                    }
                    .into(),
                    values: values
                        .into_iter()
                        .map(|seconds| Setting::Window { up, seconds })
                        .collect(),
                    seed: s,
                });
            }
        }
        if free.policies {
            for up in [true, false] {
                let mut presets = if up { up_presets() } else { down_presets() };
                let default = if up { 2 } else { presets.len() - 1 };
                let seed_value = rules(up)
                    .and_then(|r| r.policies.map(|p| (p, r.select_policy)))
                    .map(|(p, sel)| (p, sel.filter(|s| s != "Max")));
                let s = match seed_value {
                    None => default,
                    Some((p, sel)) => {
                        let same = |(q, qs): &(Vec<HpaScalingPolicy>, Option<String>)| {
                            *q == p && qs.clone().filter(|s| s != "Max") == sel
                        };
                        match presets.iter().position(same) {
                            Some(i) => i,
                            None => {
                                presets.insert(0, (p, sel));
                                0
                            }
                        }
                    }
                };
                dims.push(Dimension {
                    name: if up {
                        "scaleUp policies"
                    } else {
                        "scaleDown policies"
                    }
                    .into(),
                    values: presets
                        .into_iter()
                        .map(|(policies, select)| Setting::Policies {
                            up,
                            policies,
                            select,
                        })
                        .collect(),
                    seed: s,
                });
            }
        }
        dims.retain(|d| d.values.len() > 1);
        if dims.is_empty() {
            return Err(Error::Options(format!(
                "{}: no free knob has more than one value to try (see --free)",
                seed.name
            )));
        }
        Ok(Space {
            seed: seed.clone(),
            dims,
            metric_names,
        })
    }

    /// The seed's point.
    pub fn seed_point(&self) -> Vec<usize> {
        self.dims.iter().map(|d| d.seed).collect()
    }

    /// How many points the space has (saturating).
    pub fn size(&self) -> u64 {
        self.dims
            .iter()
            .fold(1u64, |n, d| n.saturating_mul(d.values.len() as u64))
    }

    /// The HPA at `point`.
    pub fn hpa(&self, point: &[usize]) -> HorizontalPodAutoscaler {
        let mut hpa = self.seed.hpa.clone();
        for (d, &i) in self.dims.iter().zip(point) {
            d.values[i].apply(&mut hpa);
        }
        hpa.status = None;
        hpa
    }

    /// The candidate at `point` as a manifest, validated as `podscale validate` does and
    /// read back as the simulator reads a file: `Ok(None)` when the API server would
    /// reject it (e.g. minReplicas above maxReplicas).
    ///
    /// # Errors
    /// When it cannot be written as YAML (not expected).
    pub fn policy(&self, point: &[usize], name: &str) -> Result<Option<(Policy, String)>> {
        let yaml =
            serde_saphyr::to_string(&self.hpa(point)).map_err(|e| Error::Yaml(e.to_string()))?;
        match Policy::from_source(&yaml, name) {
            Ok(mut ps) if ps.len() == 1 => {
                let mut p = ps.remove(0);
                p.name = name.into();
                Ok(Some((p, yaml)))
            }
            Ok(_) | Err(_) => Ok(None),
        }
    }

    /// The seed as a manifest (what the user gave, rewritten; without status).
    ///
    /// # Errors
    /// When it cannot be written as YAML (not expected).
    pub fn seed_manifest(&self) -> Result<String> {
        let mut hpa = self.seed.hpa.clone();
        hpa.status = None;
        serde_saphyr::to_string(&hpa).map_err(|e| Error::Yaml(e.to_string()))
    }

    /// What `point` changes from the seed: `cpu=60% min=2 down=10%/60s`.
    pub fn describe(&self, point: &[usize]) -> String {
        let parts: Vec<String> = self
            .dims
            .iter()
            .zip(point)
            .filter(|(d, i)| d.seed != **i)
            .map(|(d, &i)| d.values[i].describe(&self.metric_names))
            .collect();
        if parts.is_empty() {
            "(the seed)".into()
        } else {
            parts.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_is_a_point_of_the_space_and_gives_back_an_equivalent_hpa() {
        let seed = Policy::embedded();
        let space = Space::new(&seed, Free::ALL, 10_000).expect("space");
        let names: Vec<&str> = space.dims.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu",
                "memory",
                "minReplicas",
                "maxReplicas",
                "scaleUp window",
                "scaleDown window",
                "scaleUp policies",
                "scaleDown policies"
            ]
        );
        let p = space.seed_point();
        assert_eq!(space.hpa(&p).spec, seed.hpa.spec);
        assert_eq!(space.describe(&p), "(the seed)");
        let (policy, yaml) = space.policy(&p, "seed").expect("yaml").expect("valid");
        assert_eq!(policy.hpa.spec, seed.hpa.spec);
        assert!(yaml.contains("kind: HorizontalPodAutoscaler"), "{yaml}");
    }

    #[test]
    fn an_invalid_point_is_refused_by_validation() {
        let seed = Policy::embedded();
        let space = Space::new(&seed, Free::ALL, 10_000).expect("space");
        let mut p = space.seed_point();
        let min = space
            .dims
            .iter()
            .position(|d| d.name == "minReplicas")
            .expect("min");
        let max = space
            .dims
            .iter()
            .position(|d| d.name == "maxReplicas")
            .expect("max");
        p[min] = space.dims[min].values.len() - 1; // 16
        p[max] = 0; // 10
        assert!(space.policy(&p, "bad").expect("yaml").is_none());
        assert!(space.describe(&p).contains("min=16"));
    }

    #[test]
    fn free_knobs_parse_and_limit_the_dimensions() {
        let f = Free::parse("min,max").expect("valid");
        let space = Space::new(&Policy::embedded(), f, 10_000).expect("space");
        assert_eq!(space.dims.len(), 2);
        assert!(
            Free::parse("targets,speed")
                .expect_err("bad")
                .contains("`speed`")
        );
        assert!(Free::parse("").is_err());
    }
}
