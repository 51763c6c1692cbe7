//! `podscale get` and `podscale describe`, printed as `kubectl get hpa` and
//! `kubectl describe hpa` print them (kubectl's `printHorizontalPodAutoscaler`,
//! `formatHPAMetrics` and `describeHorizontalPodAutoscalerV2`), with the local
//! replicas added to `describe`.
use jiff::Timestamp;
use podscale_core::api::{HorizontalPodAutoscaler, MetricSourceType, MetricSpec, MetricStatus};
use podscale_core::defaults;

use crate::replicas::Phase;
use crate::status::{AutoscalerStatus, StatusDoc};

/// Columns padded to their widest cell, three spaces apart (kubectl's tabwriter).
fn table(rows: &[Vec<String>], indent: &str) -> String {
    podscale_runtime::print::table(rows, indent, 3)
}

pub use podscale_runtime::print::human_duration;

fn age(now: Timestamp, then: Timestamp) -> String {
    human_duration(now.duration_since(then))
}

fn q(v: Option<&podscale_core::quantity::Quantity>) -> String {
    v.map_or_else(|| "<unknown>".into(), ToString::to_string)
}

/// One metric as `current/target` (kubectl's `formatHPAMetrics`).
fn target_cell(spec: &MetricSpec, status: Option<&MetricStatus>) -> String {
    let unknown = || "<unknown>".to_owned();
    match spec.source_type() {
        Some(MetricSourceType::External) => {
            let Some(e) = &spec.external else {
                return "<unknown type>".into();
            };
            let cur = status.and_then(|s| s.external.as_ref()).map(|s| &s.current);
            if let Some(t) = &e.target.average_value {
                let c = cur
                    .and_then(|c| c.average_value.as_ref())
                    .map_or_else(unknown, ToString::to_string);
                format!("{c}/{t} (avg)")
            } else {
                let c = cur.map_or_else(unknown, |c| q(c.value.as_ref()));
                format!("{c}/{}", q(e.target.value.as_ref()))
            }
        }
        Some(MetricSourceType::Pods) => {
            let Some(p) = &spec.pods else {
                return "<unknown type>".into();
            };
            let c = status
                .and_then(|s| s.pods.as_ref())
                .map_or_else(unknown, |s| q(s.current.average_value.as_ref()));
            format!("{c}/{}", q(p.target.average_value.as_ref()))
        }
        Some(MetricSourceType::Object) => {
            let Some(o) = &spec.object else {
                return "<unknown type>".into();
            };
            let cur = status.and_then(|s| s.object.as_ref()).map(|s| &s.current);
            if let Some(t) = &o.target.average_value {
                let c = cur.map_or_else(unknown, |c| q(c.average_value.as_ref()));
                format!("{c}/{t} (avg)")
            } else {
                let c = cur.map_or_else(unknown, |c| q(c.value.as_ref()));
                format!("{c}/{}", q(o.target.value.as_ref()))
            }
        }
        Some(MetricSourceType::Resource | MetricSourceType::ContainerResource) => {
            let (name, target) = match (&spec.resource, &spec.container_resource) {
                (Some(r), _) => (r.name.as_str(), &r.target),
                (None, Some(c)) => (c.name.as_str(), &c.target),
                _ => return "<unknown type>".into(),
            };
            let cur = status.and_then(|s| {
                s.resource
                    .as_ref()
                    .map(|r| &r.current)
                    .or(s.container_resource.as_ref().map(|r| &r.current))
            });
            if let Some(t) = &target.average_value {
                let c = cur.map_or_else(unknown, |c| q(c.average_value.as_ref()));
                format!("{name}: {c}/{t}")
            } else {
                let c = cur
                    .and_then(|c| c.average_utilization)
                    .map_or_else(unknown, |u| format!("{u}%"));
                let t = target
                    .average_utilization
                    .map_or_else(|| "<auto>".into(), |u| format!("{u}%"));
                format!("{name}: {c}/{t}")
            }
        }
        None => "<unknown type>".into(),
    }
}

/// The TARGETS column: at most 2 metrics, then `+ N more...` (kubectl).
pub fn targets(hpa: &HorizontalPodAutoscaler) -> String {
    let specs = defaults::metrics(hpa);
    if specs.is_empty() {
        return "<none>".into();
    }
    let statuses = hpa
        .status
        .as_ref()
        .and_then(|s| s.current_metrics.clone())
        .unwrap_or_default();
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| target_cell(s, statuses.get(i).filter(|st| st.type_ == s.type_)))
        .collect();
    const MAX: usize = 2;
    if list.len() > MAX {
        format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX)
    } else {
        list.join(", ")
    }
}

/// `podscale get`: one line per autoscaler.
pub fn get(doc: &StatusDoc, header: bool) -> String {
    let mut rows = Vec::new();
    if header {
        rows.push(
            [
                "NAME",
                "REFERENCE",
                "TARGETS",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "AGE",
            ]
            .map(String::from)
            .to_vec(),
        );
    }
    for a in &doc.autoscalers {
        let h = &a.hpa;
        let r = &h.spec.scale_target_ref;
        rows.push(vec![
            h.metadata.name.clone().unwrap_or_default(),
            format!("{}/{}", r.kind, r.name),
            targets(h),
            h.spec
                .min_replicas
                .map_or_else(|| "<unset>".into(), |m| m.to_string()),
            h.spec.max_replicas.to_string(),
            h.status
                .as_ref()
                .map_or(0, |s| s.current_replicas)
                .to_string(),
            age(doc.now, a.created),
        ]);
    }
    table(&rows, "")
}

fn metric_lines(hpa: &HorizontalPodAutoscaler) -> Vec<(String, String)> {
    let statuses = hpa
        .status
        .as_ref()
        .and_then(|s| s.current_metrics.clone())
        .unwrap_or_default();
    defaults::metrics(hpa)
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let st = statuses.get(i).filter(|s| s.type_ == spec.type_);
            let cur = st.and_then(MetricStatus::current);
            let unknown = || "<unknown>".to_owned();
            match spec.source_type() {
                Some(MetricSourceType::Pods) => {
                    let p = spec.pods.as_ref();
                    (
                        format!("\"{}\" on pods:", p.map_or("", |p| p.metric.name.as_str())),
                        format!(
                            "{} / {}",
                            cur.map_or_else(unknown, |c| q(c.average_value.as_ref())),
                            q(p.and_then(|p| p.target.average_value.as_ref()))
                        ),
                    )
                }
                Some(MetricSourceType::External) => {
                    let e = spec.external.as_ref();
                    let name = e.map_or("", |e| e.metric.name.as_str());
                    match e.and_then(|e| e.target.average_value.as_ref()) {
                        Some(t) => (
                            format!("\"{name}\" (target average value):"),
                            format!(
                                "{} / {t}",
                                cur.map_or_else(unknown, |c| q(c.average_value.as_ref()))
                            ),
                        ),
                        None => (
                            format!("\"{name}\" (target value):"),
                            format!(
                                "{} / {}",
                                cur.map_or_else(unknown, |c| q(c.value.as_ref())),
                                q(e.and_then(|e| e.target.value.as_ref()))
                            ),
                        ),
                    }
                }
                Some(MetricSourceType::Object) => {
                    let o = spec.object.as_ref();
                    let name = o.map_or(String::new(), |o| {
                        format!(
                            "\"{}\" on {}/{}",
                            o.metric.name, o.described_object.kind, o.described_object.name
                        )
                    });
                    match o.and_then(|o| o.target.average_value.as_ref()) {
                        Some(t) => (
                            format!("{name} (target average value):"),
                            format!(
                                "{} / {t}",
                                cur.map_or_else(unknown, |c| q(c.average_value.as_ref()))
                            ),
                        ),
                        None => (
                            format!("{name} (target value):"),
                            format!(
                                "{} / {}",
                                cur.map_or_else(unknown, |c| q(c.value.as_ref())),
                                q(o.and_then(|o| o.target.value.as_ref()))
                            ),
                        ),
                    }
                }
                Some(MetricSourceType::Resource | MetricSourceType::ContainerResource) => {
                    let (label, target) = match (&spec.resource, &spec.container_resource) {
                        (Some(r), _) => (format!("resource {} on pods", r.name), &r.target),
                        (None, Some(c)) => (
                            format!(
                                "resource {} of container \"{}\" on pods",
                                c.name, c.container
                            ),
                            &c.target,
                        ),
                        _ => return ("<unknown type>".into(), String::new()),
                    };
                    if let Some(t) = &target.average_value {
                        (
                            format!("{label}:"),
                            format!(
                                "{} / {t}",
                                cur.map_or_else(unknown, |c| q(c.average_value.as_ref()))
                            ),
                        )
                    } else {
                        let c = cur
                            .and_then(|c| c.average_utilization)
                            .map_or_else(unknown, |u| {
                                format!("{u}% ({})", q(cur.and_then(|c| c.average_value.as_ref())))
                            });
                        let t = target
                            .average_utilization
                            .map_or_else(|| "<auto>".into(), |u| format!("{u}%"));
                        (
                            format!("{label}  (as a percentage of request):"),
                            format!("{c} / {t}"),
                        )
                    }
                }
                None => (format!("\"{}\" (unknown type):", spec.type_), String::new()),
            }
        })
        .collect()
}

/// `podscale describe NAME`.
pub fn describe(doc: &StatusDoc, a: &AutoscalerStatus) -> String {
    let h = &a.hpa;
    let r = &h.spec.scale_target_ref;
    let status = h.status.clone().unwrap_or_default();
    let map = |m: &Option<std::collections::BTreeMap<String, String>>| match m {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<none>".into(),
    };
    let mut head: Vec<(String, String)> = vec![
        ("Name:".into(), h.metadata.name.clone().unwrap_or_default()),
        (
            "Namespace:".into(),
            h.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
        ),
        ("Labels:".into(), map(&h.metadata.labels)),
        ("Annotations:".into(), map(&h.metadata.annotations)),
        (
            "CreationTimestamp:".into(),
            a.created.strftime("%a, %d %b %Y %H:%M:%S %z").to_string(),
        ),
        ("Reference:".into(), format!("{}/{}", r.kind, r.name)),
        ("Metrics:".into(), "( current / target )".into()),
    ];
    head.extend(
        metric_lines(h)
            .into_iter()
            .map(|(k, v)| (format!("  {k}"), v)),
    );
    head.push((
        "Min replicas:".into(),
        defaults::min_replicas(h).to_string(),
    ));
    head.push(("Max replicas:".into(), h.spec.max_replicas.to_string()));
    head.push((
        format!("{} pods:", r.kind),
        format!(
            "{} current / {} desired",
            status.current_replicas, status.desired_replicas
        ),
    ));
    let width = head
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = String::new();
    for (k, v) in &head {
        let line = format!("{k}{}{v}", " ".repeat(width - k.chars().count()));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    match status.conditions.as_deref() {
        Some(conds) if !conds.is_empty() => {
            out.push_str("Conditions:\n");
            let mut rows = vec![
                ["Type", "Status", "Reason", "Message"]
                    .map(String::from)
                    .to_vec(),
                ["----", "------", "------", "-------"]
                    .map(String::from)
                    .to_vec(),
            ];
            rows.extend(conds.iter().map(|c| {
                vec![
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                ]
            }));
            out.push_str(&table(&rows, "  "));
        }
        _ => out.push_str("Conditions:  <none>\n"),
    }
    if let Some(e) = &a.last_error {
        out.push_str(&format!("Last sync error:  {e}\n"));
    }
    if doc.replicas.is_empty() {
        out.push_str("Replicas:  <none>\n");
    } else {
        out.push_str(&format!(
            "Replicas:  ({} restarts in all; front proxy: {} requests, {} retried, {} failed, {} timed out, {} rejected, {} in flight)\n",
            doc.restarts,
            doc.proxy.requests,
            doc.proxy.retries,
            doc.proxy.failed,
            doc.proxy.timeouts,
            doc.proxy.rejected,
            doc.proxy.in_flight
        ));
        let mut rows = vec![
            [
                "NAME",
                "PORT",
                "PID",
                "READY",
                "STATUS",
                "RESTARTS",
                "IN-FLIGHT",
                "AGE",
            ]
            .map(String::from)
            .to_vec(),
        ];
        rows.extend(doc.replicas.iter().map(|r| {
            vec![
                r.name.clone(),
                r.port.to_string(),
                r.pgid.map_or_else(|| "-".into(), |p| p.to_string()),
                if r.ready { "1/1" } else { "0/1" }.into(),
                if r.deletion.is_some() {
                    "Terminating".into()
                } else if r.pgid.is_none() && r.restarts > 0 {
                    "CrashLoopBackOff".into()
                } else {
                    match r.phase {
                        Phase::Pending => "Pending".into(),
                        Phase::Running => "Running".into(),
                    }
                },
                r.restarts.to_string(),
                r.outstanding.to_string(),
                age(doc.now, r.created),
            ]
        }));
        out.push_str(&table(&rows, "  "));
    }
    if a.events.is_empty() {
        out.push_str("Events:  <none>\n");
    } else {
        out.push_str("Events:\n");
        let mut rows = vec![
            ["Type", "Reason", "Age", "From", "Message"]
                .map(String::from)
                .to_vec(),
            ["----", "------", "----", "----", "-------"]
                .map(String::from)
                .to_vec(),
        ];
        rows.extend(a.events.iter().map(|e| {
            let age = if e.count > 1 {
                format!(
                    "{} (x{} over {})",
                    age(doc.now, e.last_timestamp),
                    e.count,
                    age(doc.now, e.first_timestamp)
                )
            } else {
                age(doc.now, e.first_timestamp)
            };
            vec![
                e.type_.clone(),
                e.reason.clone(),
                age,
                "horizontal-pod-autoscaler".into(),
                e.message.clone(),
            ]
        }));
        out.push_str(&table(&rows, "  "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    #[test]
    fn human_durations_as_kubectl() {
        for (s, want) in [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (9 * 3600, "9h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
        ] {
            assert_eq!(human_duration(SignedDuration::from_secs(s)), want);
        }
        assert_eq!(human_duration(SignedDuration::from_secs(-5)), "<invalid>");
    }

    #[test]
    fn targets_column() {
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "llm"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "llm"},
                "maxReplicas": 4,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                    {"type": "Pods", "pods": {"metric": {"name": "q"}, "target": {"type": "AverageValue", "averageValue": "2"}}},
                    {"type": "External", "external": {"metric": {"name": "e"}, "target": {"type": "Value", "value": "10"}}}
                ]
            },
            "status": {"desiredReplicas": 2, "currentReplicas": 2, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 35, "averageValue": "175m"}}},
                {"type": "Pods", "pods": {"metric": {"name": "q"}, "current": {"averageValue": "1500m"}}}
            ]}
        }))
        .expect("hpa");
        assert_eq!(targets(&hpa), "cpu: 35%/80%, 1500m/2 + 1 more...");
        let lines = metric_lines(&hpa);
        assert_eq!(
            lines[0],
            (
                "resource cpu on pods  (as a percentage of request):".into(),
                "35% (175m) / 80%".into()
            )
        );
        assert_eq!(lines[2].1, "<unknown> / 10");
    }
}
