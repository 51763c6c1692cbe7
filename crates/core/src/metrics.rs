//! The metric stage: each metric spec's proposal and status, then the maximum
//! (`horizontal.go` `computeReplicasForMetrics`, `computeReplicasForMetric`,
//! `computeStatusFor*Metric`, and `metrics/client.go` for how API answers become samples).
use jiff::Timestamp;

use crate::api::{
    ContainerResourceMetricStatus, CrossVersionObjectReference, ExternalMetricStatus,
    HorizontalPodAutoscalerCondition, MetricIdentifier, MetricSourceType, MetricSpec, MetricStatus,
    MetricTarget, MetricValueStatus, ObjectMetricStatus, PodsMetricStatus, ResourceMetricStatus,
    target_type,
};
use crate::calculator::{Detail, PodSamples, ReplicaCalculator, Sample};
use crate::conditions::{self, reasons};
use crate::labels;
use crate::observed::{Fetched, ObservedMetrics};
use crate::quantity::Quantity;

/// What one metric spec produced.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricEvaluation {
    /// The spec's `type`, as written.
    pub type_: String,
    /// The human name used in messages, e.g. `cpu resource utilization (percentage of request)`.
    pub name: Option<String>,
    pub proposal: Option<i32>,
    /// The `status.currentMetrics` entry (the zero value when the metric failed).
    pub status: MetricStatus,
    /// The error returned for this metric (what the reconcile reports).
    pub error: Option<String>,
    /// The condition reason of a failure (`FailedGetResourceMetric`, …).
    pub error_reason: Option<&'static str>,
    /// The message of the Warning event and of the `ScalingActive=False` condition.
    pub event_message: Option<String>,
    /// How the proposal was reached.
    pub detail: Option<Detail>,
    /// Human description of the target, e.g. `50%` or `15 per pod`.
    pub target: Option<String>,
}

/// Inputs of the metric stage.
#[derive(Debug, Clone, Copy)]
pub struct MetricContext<'a> {
    pub calc: ReplicaCalculator<'a>,
    pub metrics: &'a ObservedMetrics,
    pub namespace: &'a str,
    pub spec_replicas: i32,
    pub status_replicas: i32,
}

/// The outcome of the metric stage.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsOutcome {
    pub evaluations: Vec<MetricEvaluation>,
    /// `Ok((replicas, metric name))`, or the error message when the stage failed.
    pub result: Result<(i32, String), String>,
    /// Some metrics failed but the valid ones gave a count that is used (not a
    /// scale-down): upstream's `computeReplicasForMetrics` returns that count *and*
    /// `invalid metrics (N invalid out of M), first error is: …`, and
    /// `reconcileAutoscaler` scales, then returns the error so the key is requeued with
    /// rate limiting. `None` when every metric was valid or the stage failed.
    pub partial_error: Option<String>,
    /// The `ScalingActive` condition to set (ValidMetricFound or the first failure's).
    pub condition: HorizontalPodAutoscalerCondition,
}

struct Failure {
    error: String,
    reason: &'static str,
    event_message: String,
}

fn fail(
    reason: &'static str,
    event_message: impl Into<String>,
    error: impl Into<String>,
) -> Failure {
    Failure {
        reason,
        event_message: event_message.into(),
        error: error.into(),
    }
}

/// Same message for the event and the returned error.
fn fail_same(reason: &'static str, msg: String) -> Failure {
    fail(reason, msg.clone(), msg)
}

struct Success {
    proposal: i32,
    name: String,
    status: MetricStatus,
    detail: Detail,
    target: String,
}

/// `computeReplicasForMetrics` for already-validated selector and pods.
pub fn compute_replicas_for_metrics(
    ctx: &MetricContext<'_>,
    specs: &[MetricSpec],
) -> MetricsOutcome {
    let mut evaluations = Vec::with_capacity(specs.len());
    let mut replicas: i32 = 0;
    let mut metric_name = String::new();
    let mut first_failure: Option<(String, &'static str, String)> = None;
    let mut invalid = 0usize;
    for spec in specs {
        let eval = match compute_replicas_for_metric(ctx, spec) {
            Ok(s) => {
                if replicas == 0 || s.proposal > replicas {
                    replicas = s.proposal;
                    metric_name = s.name.clone();
                }
                MetricEvaluation {
                    type_: spec.type_.clone(),
                    name: Some(s.name),
                    proposal: Some(s.proposal),
                    status: s.status,
                    error: None,
                    error_reason: None,
                    event_message: None,
                    detail: Some(s.detail),
                    target: Some(s.target),
                }
            }
            Err(f) => {
                if invalid == 0 {
                    first_failure = Some((f.error.clone(), f.reason, f.event_message.clone()));
                }
                invalid += 1;
                MetricEvaluation {
                    type_: spec.type_.clone(),
                    name: None,
                    proposal: None,
                    status: MetricStatus::default(),
                    error: Some(f.error),
                    error_reason: Some(f.reason),
                    event_message: Some(f.event_message),
                    detail: None,
                    target: describe_target(spec),
                }
            }
        };
        evaluations.push(eval);
    }
    // A failing metric never allows a scale-down: if any metric is invalid and the
    // valid ones would shrink the target, the whole stage fails (current upstream).
    let invalid_error = first_failure.as_ref().map(|(error, _, _)| {
        format!(
            "invalid metrics ({invalid} invalid out of {}), first error is: {error}",
            specs.len()
        )
    });
    if let Some((_, reason, event_message)) = first_failure
        && (invalid >= specs.len() || replicas < ctx.spec_replicas)
    {
        return MetricsOutcome {
            evaluations,
            result: Err(invalid_error.unwrap_or_default()),
            partial_error: None,
            condition: conditions::new(
                conditions::SCALING_ACTIVE,
                false,
                reason,
                format!("the HPA was unable to compute the replica count: {event_message}"),
            ),
        };
    }
    let condition = conditions::new(
        conditions::SCALING_ACTIVE,
        true,
        reasons::VALID_METRIC_FOUND,
        format!("the HPA was able to successfully calculate a replica count from {metric_name}"),
    );
    MetricsOutcome {
        evaluations,
        result: Ok((replicas, metric_name)),
        partial_error: invalid_error,
        condition,
    }
}

fn describe_target(spec: &MetricSpec) -> Option<String> {
    let t = match spec.source_type()? {
        MetricSourceType::Resource => &spec.resource.as_ref()?.target,
        MetricSourceType::ContainerResource => &spec.container_resource.as_ref()?.target,
        MetricSourceType::Pods => &spec.pods.as_ref()?.target,
        MetricSourceType::Object => &spec.object.as_ref()?.target,
        MetricSourceType::External => &spec.external.as_ref()?.target,
    };
    Some(target_text(t))
}

fn target_text(t: &MetricTarget) -> String {
    if let Some(q) = &t.average_value {
        return format!("{q} (average)");
    }
    if let Some(u) = t.average_utilization {
        return format!("{u}%");
    }
    if let Some(q) = &t.value {
        return q.to_string();
    }
    "(none)".into()
}

fn compute_replicas_for_metric(
    ctx: &MetricContext<'_>,
    spec: &MetricSpec,
) -> Result<Success, Failure> {
    let Some(kind) = spec.source_type() else {
        return Err(fail_same(
            reasons::INVALID_METRIC_SOURCE_TYPE,
            format!("unknown metric source type {:?}", spec.type_),
        ));
    };
    // computeReplicasForMetric wraps each source's error once more; the Warning event
    // and the condition carry the inner message.
    let wrap = |prefix: String| {
        move |f: Failure| Failure {
            error: format!("{prefix}{}", f.error),
            ..f
        }
    };
    match kind {
        MetricSourceType::Resource => {
            let src = spec.resource.as_ref().ok_or_else(|| missing_source(kind))?;
            resource_metric(
                ctx,
                &src.name,
                "",
                &src.target,
                reasons::FAILED_GET_RESOURCE_METRIC,
            )
            .map_err(wrap(format!(
                "failed to get {} resource metric value: ",
                src.name
            )))
        }
        MetricSourceType::ContainerResource => {
            let src = spec
                .container_resource
                .as_ref()
                .ok_or_else(|| missing_source(kind))?;
            let reason = reasons::FAILED_GET_CONTAINER_RESOURCE_METRIC;
            resource_metric(ctx, &src.name, &src.container, &src.target, reason).map_err(wrap(
                format!("failed to get {} container metric value: ", src.container),
            ))
        }
        MetricSourceType::Pods => {
            let src = spec.pods.as_ref().ok_or_else(|| missing_source(kind))?;
            pods_metric(ctx, &src.metric, &src.target)
                .map_err(wrap("failed to get pods metric value: ".into()))
        }
        MetricSourceType::Object => {
            let src = spec.object.as_ref().ok_or_else(|| missing_source(kind))?;
            object_metric(ctx, &src.metric, &src.described_object, &src.target)
                .map_err(wrap("failed to get object metric value: ".into()))
        }
        MetricSourceType::External => {
            let src = spec.external.as_ref().ok_or_else(|| missing_source(kind))?;
            external_metric(ctx, &src.metric, &src.target).map_err(wrap(format!(
                "failed to get {} external metric value: ",
                src.metric.name
            )))
        }
    }
}

fn missing_source(kind: MetricSourceType) -> Failure {
    let (reason, field) = match kind {
        MetricSourceType::Resource => (reasons::FAILED_GET_RESOURCE_METRIC, "resource"),
        MetricSourceType::ContainerResource => (
            reasons::FAILED_GET_CONTAINER_RESOURCE_METRIC,
            "containerResource",
        ),
        MetricSourceType::Pods => (reasons::FAILED_GET_PODS_METRIC, "pods"),
        MetricSourceType::Object => (reasons::FAILED_GET_OBJECT_METRIC, "object"),
        MetricSourceType::External => (reasons::FAILED_GET_EXTERNAL_METRIC, "external"),
    };
    fail_same(
        reason,
        format!(
            "invalid {} metric source: the {field} field is not set",
            kind.as_str()
        ),
    )
}

fn milli(q: Quantity) -> Quantity {
    q
}

/// Resource and ContainerResource (`computeStatusForResourceMetricGeneric`).
fn resource_metric(
    ctx: &MetricContext<'_>,
    resource: &str,
    container: &str,
    target: &MetricTarget,
    reason: &'static str,
) -> Result<Success, Failure> {
    let build_status = |current: MetricValueStatus| {
        if container.is_empty() {
            MetricStatus {
                type_: "Resource".into(),
                resource: Some(ResourceMetricStatus {
                    name: resource.into(),
                    current,
                }),
                ..MetricStatus::default()
            }
        } else {
            MetricStatus {
                type_: "ContainerResource".into(),
                container_resource: Some(ContainerResourceMetricStatus {
                    name: resource.into(),
                    current,
                    container: container.into(),
                }),
                ..MetricStatus::default()
            }
        }
    };
    if let Some(avg) = target.average_value {
        let samples = resource_samples(ctx, resource, container)
            .map_err(|e| format!("unable to get metrics for resource {resource}: {e}"))
            .and_then(|s| {
                ctx.calc
                    .plain(ctx.spec_replicas, avg.milli_value(), resource, s)
            })
            .map_err(|e| fail_same(reason, format!("failed to get {resource} usage: {e}")))?;
        return Ok(Success {
            proposal: samples.replicas,
            name: format!("{resource} resource"),
            status: build_status(MetricValueStatus {
                average_value: Some(Quantity::from_milli(samples.usage)),
                ..MetricValueStatus::default()
            }),
            detail: samples.detail,
            target: target_text(target),
        });
    }
    let Some(utilization_target) = target.average_utilization else {
        return Err(fail_same(
            reason,
            "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into(),
        ));
    };
    let p = resource_samples(ctx, resource, container)
        .map_err(|e| format!("unable to get metrics for resource {resource}: {e}"))
        .and_then(|s| {
            ctx.calc.resource_utilization(
                ctx.spec_replicas,
                utilization_target,
                resource,
                container,
                s,
            )
        })
        .map_err(|e| fail_same(reason, format!("failed to get {resource} utilization: {e}")))?;
    let name = if container.is_empty() {
        format!("{resource} resource utilization (percentage of request)")
    } else {
        format!("{resource} container resource utilization (percentage of request)")
    };
    Ok(Success {
        proposal: p.replicas,
        name,
        status: build_status(MetricValueStatus {
            average_utilization: Some(p.utilization),
            average_value: Some(Quantity::from_milli(p.raw_average)),
            ..MetricValueStatus::default()
        }),
        detail: p.detail,
        target: target_text(target),
    })
}

/// `GetResourceMetric` with `getPodMetrics` / `getContainerMetrics`.
fn resource_samples(
    ctx: &MetricContext<'_>,
    resource: &str,
    container: &str,
) -> Result<PodSamples, String> {
    let list = match &ctx.metrics.resource {
        Some(Fetched::Error { error }) => {
            return Err(format!(
                "unable to fetch metrics from resource metrics API: {error}"
            ));
        }
        Some(Fetched::Data(list)) if !list.pods.is_empty() => list,
        _ => return Err("no metrics returned from resource metrics API".into()),
    };
    let mut out = PodSamples::new(ctx.calc.pods.len());
    for pm in &list.pods {
        let value = if container.is_empty() {
            // A pod with no containers, or a container lacking the resource, has no sample.
            if pm.containers.is_empty() {
                None
            } else {
                pm.containers.iter().try_fold(0i64, |acc, c| {
                    c.usage
                        .get(resource)
                        .map(|q| acc.wrapping_add(q.milli_value()))
                })
            }
        } else {
            // Current upstream: a pod without the container (or its usage) is missing,
            // not an error.
            pm.containers
                .iter()
                .find(|c| c.name == container)
                .and_then(|c| c.usage.get(resource))
                .map(|q| q.milli_value())
        };
        if let Some(value) = value {
            out.insert(
                ctx.calc.index,
                &pm.name,
                Sample {
                    value,
                    timestamp: pm.timestamp,
                    window: pm.window.map_or(0, |w| w.as_nanos()),
                },
            );
        }
    }
    Ok(out)
}

/// The default window of a custom metric without `windowSeconds` (1 minute).
const DEFAULT_METRIC_WINDOW_NANOS: i64 = 60_000_000_000;

fn pods_metric(
    ctx: &MetricContext<'_>,
    metric: &MetricIdentifier,
    target: &MetricTarget,
) -> Result<Success, Failure> {
    let reason = reasons::FAILED_GET_PODS_METRIC;
    labels::from_label_selector(metric.selector.as_ref())
        .map_err(|e| fail_same(reason, e.to_string()))?;
    let target_value = target.average_value.map_or(0, |q| q.milli_value());
    let samples = pod_custom_samples(ctx, &metric.name)
        .map_err(|e| format!("unable to get metric {}: {e}", metric.name))
        .and_then(|s| ctx.calc.plain(ctx.spec_replicas, target_value, "", s))
        .map_err(|e| fail_same(reason, e))?;
    Ok(Success {
        proposal: samples.replicas,
        name: format!("pods metric {}", metric.name),
        status: MetricStatus {
            type_: "Pods".into(),
            pods: Some(PodsMetricStatus {
                metric: metric.clone(),
                current: MetricValueStatus {
                    average_value: Some(Quantity::from_milli(samples.usage)),
                    ..MetricValueStatus::default()
                },
            }),
            ..MetricStatus::default()
        },
        detail: samples.detail,
        target: target_text(target),
    })
}

fn pod_custom_samples(ctx: &MetricContext<'_>, name: &str) -> Result<PodSamples, String> {
    let entries = match &ctx.metrics.pods {
        Some(Fetched::Error { error }) => {
            return Err(format!(
                "unable to fetch metrics from custom metrics API: {error}"
            ));
        }
        Some(Fetched::Data(entries)) => entries,
        None => return Err("no metrics returned from custom metrics API".into()),
    };
    let entry = entries.iter().find(|e| e.metric_name == name);
    if let Some(error) = entry.and_then(|e| e.error.as_ref()) {
        return Err(format!(
            "unable to fetch metrics from custom metrics API: {error}"
        ));
    }
    let Some(items) = entry.map(|e| &e.items).filter(|i| !i.is_empty()) else {
        return Err("no metrics returned from custom metrics API".into());
    };
    let mut out = PodSamples::new(ctx.calc.pods.len());
    for i in items {
        let window = i.window_seconds.map_or(DEFAULT_METRIC_WINDOW_NANOS, |s| {
            s.saturating_mul(1_000_000_000)
        });
        let sample = Sample {
            value: i.value.milli_value(),
            timestamp: i.timestamp,
            window,
        };
        out.insert(ctx.calc.index, &i.pod_name, sample);
    }
    Ok(out)
}

fn object_metric(
    ctx: &MetricContext<'_>,
    metric: &MetricIdentifier,
    object: &CrossVersionObjectReference,
    target: &MetricTarget,
) -> Result<Success, Failure> {
    let reason = reasons::FAILED_GET_OBJECT_METRIC;
    labels::from_label_selector(metric.selector.as_ref())
        .map_err(|e| fail_same(reason, e.to_string()))?;
    // The error text reproduces upstream's argument order verbatim
    // ("unable to get metric %s: %v on %s %s/%s" with kind, namespace, name, err).
    let fetch = || {
        object_value(ctx.metrics, &metric.name, object).map_err(|e| {
            format!(
                "unable to get metric {}: {} on {} {}/{e}",
                metric.name, object.kind, ctx.namespace, object.name
            )
        })
    };
    if target.type_ == target_type::VALUE && target.value.is_some() {
        let target_value = target.value.map_or(0, |q| q.milli_value());
        let (usage, _) = fetch().map_err(|e| fail_same(reason, e))?;
        let ratio = usage as f64 / target_value as f64;
        let (replicas, detail) = ctx
            .calc
            .usage_ratio_replicas(ctx.spec_replicas, ratio)
            .map_err(|e| fail_same(reason, e))?;
        return Ok(Success {
            proposal: replicas,
            name: format!("{} metric {}", object.kind, metric.name),
            status: MetricStatus {
                type_: "Object".into(),
                object: Some(ObjectMetricStatus {
                    metric: metric.clone(),
                    current: MetricValueStatus {
                        value: Some(Quantity::from_milli(usage)),
                        ..MetricValueStatus::default()
                    },
                    described_object: object.clone(),
                }),
                ..MetricStatus::default()
            },
            detail,
            target: target_text(target),
        });
    }
    if target.type_ == target_type::AVERAGE_VALUE && target.average_value.is_some() {
        let target_value = target.average_value.map_or(0, |q| q.milli_value());
        let (usage, _) = fetch().map_err(|e| {
            fail(
                reason,
                e.clone(),
                format!("failed to get {} object metric: {e}", metric.name),
            )
        })?;
        let (replicas, average, detail) =
            ctx.calc.per_pod(ctx.status_replicas, target_value, usage);
        return Ok(Success {
            proposal: replicas,
            name: format!(
                "external metric {}({})",
                metric.name,
                labels::go_format(metric.selector.as_ref())
            ),
            status: MetricStatus {
                type_: "Object".into(),
                object: Some(ObjectMetricStatus {
                    metric: metric.clone(),
                    current: MetricValueStatus {
                        average_value: Some(Quantity::from_milli(average)),
                        ..MetricValueStatus::default()
                    },
                    described_object: CrossVersionObjectReference::default(),
                }),
                ..MetricStatus::default()
            },
            detail,
            target: target_text(target),
        });
    }
    Err(fail_same(
        reason,
        "invalid object metric source: neither a value target nor an average value target was set"
            .into(),
    ))
}

fn object_value(
    metrics: &ObservedMetrics,
    name: &str,
    object: &CrossVersionObjectReference,
) -> Result<(i64, Option<Timestamp>), String> {
    let entries = match &metrics.object {
        Some(Fetched::Error { error }) => {
            return Err(format!(
                "unable to fetch metrics from custom metrics API: {error}"
            ));
        }
        Some(Fetched::Data(entries)) => entries.as_slice(),
        None => &[],
    };
    let matches_object = |e: &&crate::observed::ObjectMetricValue| {
        e.metric_name == name
            && (e.described_object.kind.is_empty() || e.described_object.kind == object.kind)
            && (e.described_object.name.is_empty()
                || object.kind == "Namespace"
                || e.described_object.name == object.name)
    };
    // The answer for exactly this object; failing that, the only answer for this metric
    // name (a captured scenario may name the object loosely).
    let by_name = || {
        let mut same = entries.iter().filter(|e| e.metric_name == name);
        match (same.next(), same.next()) {
            (Some(e), None) => Some(e),
            _ => None,
        }
    };
    let entry = entries.iter().find(matches_object).or_else(by_name).ok_or_else(|| {
        format!(
            "unable to fetch metrics from custom metrics API: the server could not find the metric {name} for {} {}",
            object.kind, object.name
        )
    })?;
    if let Some(error) = &entry.error {
        return Err(format!(
            "unable to fetch metrics from custom metrics API: {error}"
        ));
    }
    Ok((entry.value.milli_value(), entry.timestamp))
}

fn external_metric(
    ctx: &MetricContext<'_>,
    metric: &MetricIdentifier,
    target: &MetricTarget,
) -> Result<Success, Failure> {
    let reason = reasons::FAILED_GET_EXTERNAL_METRIC;
    let selector_text = labels::go_format(metric.selector.as_ref());
    let name = format!("external metric {}({selector_text})", metric.name);
    let fetch = || -> Result<Vec<i64>, String> {
        labels::from_label_selector(metric.selector.as_ref()).map_err(|e| e.to_string())?;
        external_values(ctx.metrics, metric).map_err(|e| {
            format!(
                "unable to get external metric {}/{}/{selector_text}: {e}",
                ctx.namespace, metric.name
            )
        })
    };
    let external_status = |current: MetricValueStatus| MetricStatus {
        type_: "External".into(),
        external: Some(ExternalMetricStatus {
            metric: metric.clone(),
            current,
        }),
        ..MetricStatus::default()
    };
    if let Some(avg) = target.average_value {
        let values = fetch().map_err(|e| {
            fail(
                reason,
                e.clone(),
                format!("failed to get {} external metric: {e}", metric.name),
            )
        })?;
        // GetExternalPerPodMetricReplicas: add, and on wrap-around saturate and stop.
        let mut usage: i64 = 0;
        for v in values {
            usage = usage.wrapping_add(v);
            if usage < 0 {
                usage = i64::MAX;
                break;
            }
        }
        let (replicas, average, detail) =
            ctx.calc
                .per_pod(ctx.status_replicas, avg.milli_value(), usage);
        return Ok(Success {
            proposal: replicas,
            name,
            status: external_status(MetricValueStatus {
                average_value: Some(Quantity::from_milli(average)),
                ..MetricValueStatus::default()
            }),
            detail,
            target: target_text(target),
        });
    }
    if let Some(value) = target.value {
        let values = fetch().map_err(|e| {
            fail(
                reason,
                e.clone(),
                format!("failed to get external metric {}: {e}", metric.name),
            )
        })?;
        // GetExternalMetricReplicas: saturate at MaxInt64 before a positive overflow.
        let mut usage: i64 = 0;
        for v in values {
            if v > 0 && usage > i64::MAX - v {
                usage = i64::MAX;
                break;
            }
            usage = usage.wrapping_add(v);
        }
        let ratio = usage as f64 / milli(value).milli_value() as f64;
        let (replicas, detail) = ctx
            .calc
            .usage_ratio_replicas(ctx.spec_replicas, ratio)
            .map_err(|e| {
                fail(
                    reason,
                    e.clone(),
                    format!("failed to get external metric {}: {e}", metric.name),
                )
            })?;
        return Ok(Success {
            proposal: replicas,
            name,
            status: external_status(MetricValueStatus {
                value: Some(Quantity::from_milli(usage)),
                ..MetricValueStatus::default()
            }),
            detail,
            target: target_text(target),
        });
    }
    Err(fail_same(
        reason,
        "invalid external metric source: neither a value target nor an average value target was set".into(),
    ))
}

fn external_values(
    metrics: &ObservedMetrics,
    metric: &MetricIdentifier,
) -> Result<Vec<i64>, String> {
    let entries = match &metrics.external {
        Some(Fetched::Error { error }) => {
            return Err(format!(
                "unable to fetch metrics from external metrics API: {error}"
            ));
        }
        Some(Fetched::Data(entries)) => entries.as_slice(),
        None => &[],
    };
    let same_name = || entries.iter().filter(|e| e.metric_name == metric.name);
    let entry = same_name()
        .find(|e| e.selector == metric.selector)
        .or_else(|| same_name().next());
    if let Some(error) = entry.and_then(|e| e.error.as_ref()) {
        return Err(format!(
            "unable to fetch metrics from external metrics API: {error}"
        ));
    }
    match entry {
        Some(e) if !e.items.is_empty() => {
            Ok(e.items.iter().map(|i| i.value.milli_value()).collect())
        }
        _ => Err("no metrics returned from external metrics API".into()),
    }
}
