//! What `kubectl get hpa` prints, for Autoscalers: the TARGETS column
//! (`formatHPAMetrics` in kubernetes/pkg/printers/internalversion/printers.go), the
//! AGE column (`duration.HumanDuration`) and the table layout.
use jiff::Timestamp;
use podscale_core::api::{MetricSpec, MetricStatus, MetricValueStatus};
use podscale_core::quantity::Quantity;

const UNKNOWN: &str = "<unknown>";

fn q(v: Option<&Quantity>) -> String {
    v.map_or_else(|| "<nil>".into(), ToString::to_string)
}

fn current(
    v: Option<&MetricValueStatus>,
    f: impl Fn(&MetricValueStatus) -> Option<String>,
) -> String {
    v.and_then(f).unwrap_or_else(|| UNKNOWN.into())
}

/// `formatHPAMetrics`: `current/target` per metric, at most two, then `+ N more...`;
/// `<none>` without metrics. Statuses are matched to specs by position, as upstream.
pub fn targets(specs: &[MetricSpec], statuses: &[MetricStatus]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let mut list = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let st = statuses.get(i);
        let text = match spec.type_.as_str() {
            "External" => {
                let t = spec.external.as_ref().map(|e| &e.target);
                let cur = st.and_then(|s| s.external.as_ref()).map(|s| &s.current);
                match t.and_then(|t| t.average_value.as_ref()) {
                    Some(avg) => format!(
                        "{}/{} (avg)",
                        current(cur, |c| c.average_value.as_ref().map(ToString::to_string)),
                        avg
                    ),
                    None => format!(
                        "{}/{}",
                        current(cur, |c| Some(q(c.value.as_ref()))),
                        q(t.and_then(|t| t.value.as_ref()))
                    ),
                }
            }
            "Pods" => {
                let t = spec.pods.as_ref().map(|p| &p.target);
                let cur = st.and_then(|s| s.pods.as_ref()).map(|s| &s.current);
                format!(
                    "{}/{}",
                    current(cur, |c| Some(q(c.average_value.as_ref()))),
                    q(t.and_then(|t| t.average_value.as_ref()))
                )
            }
            "Object" => {
                let t = spec.object.as_ref().map(|o| &o.target);
                let cur = st.and_then(|s| s.object.as_ref()).map(|s| &s.current);
                match t.and_then(|t| t.average_value.as_ref()) {
                    Some(avg) => format!(
                        "{}/{} (avg)",
                        current(cur, |c| c.average_value.as_ref().map(ToString::to_string)),
                        avg
                    ),
                    None => format!(
                        "{}/{}",
                        current(cur, |c| Some(q(c.value.as_ref()))),
                        q(t.and_then(|t| t.value.as_ref()))
                    ),
                }
            }
            "Resource" | "ContainerResource" => {
                let (name, t, cur) = if spec.type_ == "Resource" {
                    let r = spec.resource.as_ref();
                    (
                        r.map(|r| r.name.clone()).unwrap_or_default(),
                        r.map(|r| &r.target),
                        st.and_then(|s| s.resource.as_ref()).map(|s| &s.current),
                    )
                } else {
                    let r = spec.container_resource.as_ref();
                    (
                        r.map(|r| r.name.clone()).unwrap_or_default(),
                        r.map(|r| &r.target),
                        st.and_then(|s| s.container_resource.as_ref())
                            .map(|s| &s.current),
                    )
                };
                match t.and_then(|t| t.average_value.as_ref()) {
                    Some(avg) => format!(
                        "{name}: {}/{avg}",
                        current(cur, |c| Some(q(c.average_value.as_ref())))
                    ),
                    None => format!(
                        "{name}: {}/{}",
                        current(cur, |c| c.average_utilization.map(|u| format!("{u}%"))),
                        t.and_then(|t| t.average_utilization)
                            .map_or_else(|| "<auto>".into(), |u| format!("{u}%"))
                    ),
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(text);
    }
    let count = list.len();
    if count > 2 {
        list.truncate(2);
        format!("{} + {} more...", list.join(", "), count - 2)
    } else {
        list.join(", ")
    }
}

pub use podscale_runtime::print::human_duration;

/// The age of an object created at `created`, seen at `now`.
pub fn age(created: Option<Timestamp>, now: Timestamp) -> String {
    created.map_or_else(
        || "<unknown>".into(),
        |c| human_duration(now.duration_since(c)),
    )
}

/// A table as `kubectl get` prints one: columns padded to the widest cell plus three
/// spaces.
pub fn table(rows: &[Vec<String>]) -> String {
    table_with(rows, 3)
}

/// A table with `pad` spaces between columns (`kubectl describe` uses 2).
pub fn table_with(rows: &[Vec<String>], pad: usize) -> String {
    podscale_runtime::print::table(rows, "", pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Vec<MetricSpec> {
        serde_json::from_value(json).expect("specs")
    }

    #[test]
    fn targets_print_as_kubectl_prints_them() {
        let specs = spec(serde_json::json!([
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
            {"type": "Pods", "pods": {"metric": {"name": "q"}, "target": {"type": "AverageValue", "averageValue": "50"}}},
            {"type": "External", "external": {"metric": {"name": "e"}, "target": {"type": "AverageValue", "averageValue": "70"}}}
        ]));
        assert_eq!(
            targets(&specs, &[]),
            "cpu: <unknown>/80%, <unknown>/50 + 1 more..."
        );
        let statuses: Vec<MetricStatus> = serde_json::from_value(serde_json::json!([
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 23, "averageValue": "230m"}}},
            {"type": "Pods", "pods": {"metric": {"name": "q"}, "current": {"averageValue": "12"}}}
        ]))
        .expect("statuses");
        assert_eq!(targets(&specs[..2], &statuses), "cpu: 23%/80%, 12/50");
        assert_eq!(targets(&specs[2..], &[]), "<unknown>/70 (avg)");
        assert_eq!(targets(&[], &[]), "<none>");
    }

    #[test]
    fn ages_read_like_kubectl() {
        let s = jiff::SignedDuration::from_secs;
        assert_eq!(human_duration(s(59)), "59s");
        assert_eq!(human_duration(s(119)), "119s");
        assert_eq!(human_duration(s(150)), "2m30s");
        assert_eq!(human_duration(s(3600 * 5 + 60)), "5h1m");
        assert_eq!(human_duration(s(3600 * 30)), "30h");
        assert_eq!(human_duration(s(86400 * 3)), "3d");
        assert_eq!(human_duration(s(86400 * 400)), "400d");
    }

    #[test]
    fn tables_pad_columns_by_three() {
        let t = table(&[
            vec!["NAME".into(), "REFERENCE".into()],
            vec!["web".into(), "Deployment/web".into()],
        ]);
        assert_eq!(t, "NAME   REFERENCE\nweb    Deployment/web\n");
    }
}
