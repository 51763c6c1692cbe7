//! `podscale get autoscalers` and `podscale describe autoscaler`, printed the way
//! kubectl prints HorizontalPodAutoscalers (`printHorizontalPodAutoscaler` and
//! `describeHorizontalPodAutoscalerV2` in kubectl).
use std::fmt::Write as _;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event as KEvent;
use kube::api::{Api, ListParams};
use podscale_core::api::{MetricSpec, MetricStatus};
use podscale_core::defaults;
use serde_json::{Value, json};

use crate::crd::{API_VERSION, Autoscaler, KIND, with_type_meta};
use crate::print::{age, table, table_with, targets};
use crate::target::error_chain;

/// A failed API call, with its message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GetError(pub String);

fn api_error(e: &kube::Error) -> GetError {
    match e {
        kube::Error::Api(s)
            if s.code == 404
                && s.message
                    .contains("the server could not find the requested resource") =>
        {
            GetError(format!(
                "{}: the Autoscaler CRD is not installed (podscale crd | kubectl apply -f -)",
                s.message
            ))
        }
        kube::Error::Api(s) => GetError(s.message.clone()),
        other => GetError(error_chain(other)),
    }
}

/// Lists Autoscalers (`None`: every namespace), sorted by namespace and name.
///
/// # Errors
/// The API call failed.
pub async fn list(
    client: &kube::Client,
    namespace: Option<&str>,
) -> Result<Vec<Autoscaler>, GetError> {
    let api: Api<Autoscaler> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut items = api
        .list(&ListParams::default())
        .await
        .map_err(|e| api_error(&e))?
        .items;
    items.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    Ok(items)
}

/// One Autoscaler.
///
/// # Errors
/// The API call failed (not found included).
pub async fn get(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Autoscaler, GetError> {
    let api: Api<Autoscaler> = Api::namespaced(client.clone(), namespace);
    api.get(name).await.map_err(|e| api_error(&e))
}

fn specs_and_statuses(a: &Autoscaler) -> (Vec<MetricSpec>, Vec<MetricStatus>) {
    let specs = defaults::metrics(&a.to_hpa());
    let statuses = a
        .status
        .as_ref()
        .and_then(|s| s.hpa.current_metrics.clone())
        .unwrap_or_default();
    (specs, statuses)
}

/// The `kubectl get hpa` table.
pub fn get_table(items: &[Autoscaler], all_namespaces: bool, now: Timestamp) -> String {
    let mut header: Vec<String> = [
        "NAME",
        "REFERENCE",
        "TARGETS",
        "MINPODS",
        "MAXPODS",
        "REPLICAS",
        "AGE",
    ]
    .map(String::from)
    .to_vec();
    if all_namespaces {
        header.insert(0, "NAMESPACE".into());
    }
    let mut rows = vec![header];
    for a in items {
        let (specs, statuses) = specs_and_statuses(a);
        let mut row = vec![
            a.metadata.name.clone().unwrap_or_default(),
            a.reference(),
            targets(&specs, &statuses),
            a.spec
                .hpa
                .min_replicas
                .map_or_else(|| "<unset>".into(), |m| m.to_string()),
            a.spec.hpa.max_replicas.to_string(),
            a.status
                .as_ref()
                .map_or(0, |s| s.hpa.current_replicas)
                .to_string(),
            age(a.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
        ];
        if all_namespaces {
            row.insert(0, a.metadata.namespace.clone().unwrap_or_default());
        }
        rows.push(row);
    }
    table(&rows)
}

/// Objects as `kubectl get -o json|yaml` prints them: one object, or a `List`.
pub fn as_document(items: &[Autoscaler], single: bool) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|a| serde_json::to_value(with_type_meta(a.clone())).unwrap_or(Value::Null))
        .collect();
    if single && items.len() == 1 {
        return items.into_iter().next().unwrap_or(Value::Null);
    }
    json!({ "apiVersion": "v1", "kind": "List", "metadata": { "resourceVersion": "" }, "items": items })
}

fn metric_line(spec: &MetricSpec, status: Option<&MetricStatus>) -> (String, String) {
    let unknown = || "<unknown>".to_string();
    let qs =
        |q: Option<&podscale_core::quantity::Quantity>| q.map_or_else(unknown, ToString::to_string);
    match spec.type_.as_str() {
        "External" => {
            let e = spec.external.clone().unwrap_or_default();
            let cur = status
                .and_then(|s| s.external.as_ref())
                .map(|s| s.current.clone());
            match &e.target.average_value {
                Some(avg) => (
                    format!("\"{}\" (target average value)", e.metric.name),
                    format!(
                        "{} / {avg}",
                        qs(cur.as_ref().and_then(|c| c.average_value.as_ref()))
                    ),
                ),
                None => (
                    format!("\"{}\" (target value)", e.metric.name),
                    format!(
                        "{} / {}",
                        qs(cur.as_ref().and_then(|c| c.value.as_ref())),
                        qs(e.target.value.as_ref())
                    ),
                ),
            }
        }
        "Pods" => {
            let p = spec.pods.clone().unwrap_or_default();
            let cur = status
                .and_then(|s| s.pods.as_ref())
                .map(|s| s.current.clone());
            (
                format!("\"{}\" on pods", p.metric.name),
                format!(
                    "{} / {}",
                    qs(cur.as_ref().and_then(|c| c.average_value.as_ref())),
                    qs(p.target.average_value.as_ref())
                ),
            )
        }
        "Object" => {
            let o = spec.object.clone().unwrap_or_default();
            let cur = status
                .and_then(|s| s.object.as_ref())
                .map(|s| s.current.clone());
            let on = format!("{}/{}", o.described_object.kind, o.described_object.name);
            match &o.target.average_value {
                Some(avg) => (
                    format!("\"{}\" on {on} (target average value)", o.metric.name),
                    format!(
                        "{} / {avg}",
                        qs(cur.as_ref().and_then(|c| c.average_value.as_ref()))
                    ),
                ),
                None => (
                    format!("\"{}\" on {on} (target value)", o.metric.name),
                    format!(
                        "{} / {}",
                        qs(cur.as_ref().and_then(|c| c.value.as_ref())),
                        qs(o.target.value.as_ref())
                    ),
                ),
            }
        }
        "Resource" | "ContainerResource" => {
            let (name, target, cur, container) = if spec.type_ == "Resource" {
                let r = spec.resource.clone().unwrap_or_default();
                (
                    r.name,
                    r.target,
                    status
                        .and_then(|s| s.resource.as_ref())
                        .map(|s| s.current.clone()),
                    None,
                )
            } else {
                let r = spec.container_resource.clone().unwrap_or_default();
                (
                    r.name,
                    r.target,
                    status
                        .and_then(|s| s.container_resource.as_ref())
                        .map(|s| s.current.clone()),
                    Some(r.container),
                )
            };
            let what = match &container {
                Some(c) => format!("resource {name} of container \"{c}\" on pods"),
                None => format!("resource {name} on pods"),
            };
            match &target.average_value {
                Some(avg) => (
                    what,
                    format!(
                        "{} / {avg}",
                        qs(cur.as_ref().and_then(|c| c.average_value.as_ref()))
                    ),
                ),
                None => {
                    let c = cur
                        .as_ref()
                        .and_then(|c| c.average_utilization)
                        .map_or_else(unknown, |u| {
                            let raw = cur
                                .as_ref()
                                .and_then(|c| c.average_value.as_ref())
                                .map_or_else(String::new, |v| format!(" ({v})"));
                            format!("{u}%{raw}")
                        });
                    let t = target
                        .average_utilization
                        .map_or_else(|| "<auto>".into(), |u| format!("{u}%"));
                    (
                        format!("{what}  (as a percentage of request)"),
                        format!("{c} / {t}"),
                    )
                }
            }
        }
        other => (format!("<unknown metric type {other:?}>"), String::new()),
    }
}

fn time_text(t: Option<Timestamp>) -> String {
    t.map_or_else(
        || "<unset>".into(),
        |t| t.strftime("%a, %d %b %Y %H:%M:%S %z").to_string(),
    )
}

fn map_text(m: Option<&std::collections::BTreeMap<String, String>>) -> Vec<String> {
    match m {
        Some(m) if !m.is_empty() => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        _ => vec!["<none>".into()],
    }
}

/// `kubectl describe hpa`, for an Autoscaler and its events.
pub fn describe_text(a: &Autoscaler, events: &[KEvent], now: Timestamp) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let m = &a.metadata;
    rows.push(("Name:".into(), m.name.clone().unwrap_or_default()));
    rows.push(("Namespace:".into(), m.namespace.clone().unwrap_or_default()));
    for (label, vals) in [
        ("Labels:", map_text(m.labels.as_ref())),
        ("Annotations:", map_text(m.annotations.as_ref())),
    ] {
        for (i, v) in vals.into_iter().enumerate() {
            rows.push((if i == 0 { label.into() } else { String::new() }, v));
        }
    }
    rows.push((
        "CreationTimestamp:".into(),
        time_text(m.creation_timestamp.as_ref().map(|t| t.0)),
    ));
    rows.push(("Reference:".into(), a.reference()));
    rows.push(("Metrics:".into(), "( current / target )".into()));
    let (specs, statuses) = specs_and_statuses(a);
    for (i, spec) in specs.iter().enumerate() {
        let (what, value) = metric_line(spec, statuses.get(i));
        rows.push((format!("  {what}:"), value));
    }
    let status = a.status.as_ref();
    rows.push((
        "Min replicas:".into(),
        a.spec
            .hpa
            .min_replicas
            .map_or_else(|| "<unset>".into(), |m| m.to_string()),
    ));
    rows.push(("Max replicas:".into(), a.spec.hpa.max_replicas.to_string()));
    if let Some(p) = &a.spec.podscale {
        if let Some(s) = &p.sync_period {
            rows.push(("Sync period:".into(), s.clone()));
        }
        if let Some(t) = &p.tolerance {
            rows.push(("Tolerance:".into(), t.to_string()));
        }
    }
    rows.push((
        format!("{} pods:", a.spec.hpa.scale_target_ref.kind),
        format!(
            "{} current / {} desired",
            status.map_or(0, |s| s.hpa.current_replicas),
            status.map_or(0, |s| s.hpa.desired_replicas)
        ),
    ));
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let mut out = String::new();
    for (k, v) in &rows {
        let _ = writeln!(out, "{k:<width$}{v}");
    }
    let conditions = status
        .and_then(|s| s.hpa.conditions.clone())
        .unwrap_or_default();
    if !conditions.is_empty() {
        out.push_str("Conditions:\n");
        let mut t = vec![
            ["Type", "Status", "Reason", "Message"]
                .map(String::from)
                .to_vec(),
            ["----", "------", "------", "-------"]
                .map(String::from)
                .to_vec(),
        ];
        for c in &conditions {
            t.push(vec![
                c.type_.clone(),
                c.status.clone(),
                c.reason.clone(),
                c.message.clone(),
            ]);
        }
        for line in table_with(&t, 2).lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if let Some(h) = status.and_then(|s| s.history.as_ref()) {
        let recs = h.recommendations.as_deref().unwrap_or_default();
        let _ = writeln!(
            out,
            "History:                 {} recommendations, {} scale events (kept for stabilization windows and policies)",
            recs.len(),
            h.scale_events.len()
        );
    }
    if events.is_empty() {
        out.push_str("Events:  <none>\n");
        return out;
    }
    out.push_str("Events:\n");
    let mut t = vec![
        ["Type", "Reason", "Age", "From", "Message"]
            .map(String::from)
            .to_vec(),
        ["----", "------", "----", "----", "-------"]
            .map(String::from)
            .to_vec(),
    ];
    for e in events {
        let last = e
            .series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
            .or(e.last_timestamp.as_ref().map(|t| t.0))
            .or(e.event_time.as_ref().map(|t| t.0));
        let first = e
            .first_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(e.event_time.as_ref().map(|t| t.0));
        let count = e
            .series
            .as_ref()
            .map_or(e.count.unwrap_or(1), |s| s.count.unwrap_or(1));
        let age_text = if count > 1 {
            format!("{} (x{count} over {})", age(last, now), age(first, now))
        } else {
            age(last, now)
        };
        let from = e
            .reporting_component
            .clone()
            .filter(|s| !s.is_empty())
            .or(e.source.as_ref().and_then(|s| s.component.clone()))
            .unwrap_or_default();
        t.push(vec![
            e.type_.clone().unwrap_or_default(),
            e.reason.clone().unwrap_or_default(),
            age_text,
            from,
            e.message.clone().unwrap_or_default().trim().to_owned(),
        ]);
    }
    for line in table_with(&t, 2).lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// The events about an Autoscaler, oldest first (core/v1 view, as kubectl reads them).
///
/// # Errors
/// The API call failed.
pub async fn events(client: &kube::Client, a: &Autoscaler) -> Result<Vec<KEvent>, GetError> {
    let ns = a
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let api: Api<KEvent> = Api::namespaced(client.clone(), &ns);
    let mut selector = format!(
        "involvedObject.name={},involvedObject.namespace={ns},involvedObject.kind={KIND}",
        a.metadata.name.clone().unwrap_or_default()
    );
    if let Some(uid) = &a.metadata.uid {
        let _ = write!(selector, ",involvedObject.uid={uid}");
    }
    let mut items = api
        .list(&ListParams::default().fields(&selector))
        .await
        .map_err(|e| api_error(&e))?
        .items;
    items.retain(|e| {
        e.involved_object
            .api_version
            .as_deref()
            .is_none_or(|v| v == API_VERSION)
    });
    let when = |e: &KEvent| {
        e.series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_ref().map(|t| t.0))
            .or(e.last_timestamp.as_ref().map(|t| t.0))
            .or(e.event_time.as_ref().map(|t| t.0))
    };
    items.sort_by_key(when);
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Autoscaler {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "prod", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2, "maxReplicas": 10,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
            },
            "status": {
                "currentReplicas": 3, "desiredReplicas": 4,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 95, "averageValue": "475m"}}}],
                "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale", "message": "the HPA controller was able to update the target scale to 4", "lastTransitionTime": "2026-01-01T00:05:00Z"}],
                "history": {"recommendations": [{"time": "2026-01-01T00:05:00Z", "replicas": 4}], "scaleEvents": []}
            }
        }))
        .expect("autoscaler")
    }

    fn now() -> Timestamp {
        "2026-01-01T01:00:00Z".parse().expect("time")
    }

    #[test]
    fn get_prints_like_kubectl_get_hpa() {
        let t = get_table(&[sample()], false, now());
        assert_eq!(
            t,
            "NAME   REFERENCE        TARGETS        MINPODS   MAXPODS   REPLICAS   AGE\n\
             web    Deployment/web   cpu: 95%/80%   2         10        3          60m\n"
        );
        let t = get_table(&[sample()], true, now());
        assert!(t.starts_with("NAMESPACE   NAME"), "{t}");
        assert!(t.contains("\nprod        web"), "{t}");
    }

    #[test]
    fn describe_prints_like_kubectl_describe_hpa() {
        let d = describe_text(&sample(), &[], now());
        assert!(d.contains("Reference:  "), "{d}");
        assert!(
            d.contains("  resource cpu on pods  (as a percentage of request):  95% (475m) / 80%\n"),
            "{d}"
        );
        assert!(d.contains("Deployment pods:"), "{d}");
        assert!(d.contains("3 current / 4 desired"), "{d}");
        assert!(d.contains("  AbleToScale  True    SucceededRescale  the HPA controller was able to update the target scale to 4\n"), "{d}");
        assert!(d.contains("1 recommendations, 0 scale events"), "{d}");
        assert!(d.ends_with("Events:  <none>\n"), "{d}");
        let doc = as_document(&[sample()], true);
        assert_eq!(doc["kind"], "Autoscaler");
        assert_eq!(as_document(&[sample(), sample()], false)["kind"], "List");
    }
}
