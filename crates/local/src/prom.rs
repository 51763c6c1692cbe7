//! `GET /metrics` of the status API: the local runtime in the Prometheus text format
//! (through prometheus-client, as the Kubernetes controller's admin server).
//!
//! The loop's counters and per-autoscaler gauges carry the same names as the
//! Kubernetes controller's (`podscale_syncs_total`,
//! `podscale_autoscaler_desired_replicas`, …), so one dashboard reads both; what only
//! a local run has is `podscale_local_*` (replicas, restarts, the front proxy). Labels
//! are bounded by what exists (autoscalers, their metrics, the outcomes), never by
//! request values.
use podscale_core::api::{MetricStatus, MetricValueStatus};
use podscale_runtime::Key;
use podscale_runtime::controller::View;
use podscale_runtime::stats::StatsSnapshot;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::proxy::{Outcome, ProxyCounters};
use crate::replicas::{Phase, ReplicaInfo};

type Labels = Vec<(String, String)>;

/// Everything one scrape shows.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub stats: &'a StatsSnapshot,
    pub views: &'a [(Key, View)],
    pub replicas: &'a [ReplicaInfo],
    /// Crash restarts over all replicas so far.
    pub restarts: u64,
    pub proxy: &'a ProxyCounters,
}

/// The metric's name and type of one `status.currentMetrics` entry.
fn identify(m: &MetricStatus) -> Option<(&str, &'static str)> {
    if let Some(r) = &m.resource {
        return Some((&r.name, "Resource"));
    }
    if let Some(r) = &m.container_resource {
        return Some((&r.name, "ContainerResource"));
    }
    if let Some(p) = &m.pods {
        return Some((&p.metric.name, "Pods"));
    }
    if let Some(o) = &m.object {
        return Some((&o.metric.name, "Object"));
    }
    m.external
        .as_ref()
        .map(|e| (e.metric.name.as_str(), "External"))
}

/// `(field, value)` of each value a metric status carries: utilization in percent,
/// quantities as numbers (`500m` → 0.5).
fn values(v: &MetricValueStatus) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    if let Some(u) = v.average_utilization {
        out.push(("averageUtilization", f64::from(u)));
    }
    if let Some(q) = &v.average_value {
        out.push(("averageValue", q.as_approximate_f64()));
    }
    if let Some(q) = &v.value {
        out.push(("value", q.as_approximate_f64()));
    }
    out
}

/// Renders one scrape.
#[allow(clippy::too_many_lines)] // a list of registrations
pub fn render(s: &Sources<'_>) -> String {
    // prometheus-client ends each help text with a period itself.
    let mut r = Registry::with_prefix("podscale");
    let stats = s.stats;
    // The local runtime has no API conflicts, no status writes and no leader election:
    // those counters would always read 0 here.
    const NOT_LOCAL: [&str; 4] = [
        "conflicts_retried",
        "status_writes",
        "status_write_failures",
        "skipped_not_leader",
    ];
    for (name, help, v) in stats
        .counters()
        .into_iter()
        .filter(|(name, ..)| !NOT_LOCAL.contains(name))
    {
        let c: Counter = Counter::default();
        c.inc_by(v);
        r.register(name, help, c);
    }
    let gauge = |v: i64| {
        let g: Gauge = Gauge::default();
        g.set(v);
        g
    };
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    r.register(
        "autoscalers",
        "Autoscalers known",
        gauge(count(s.views.len())),
    );

    let current = Family::<Labels, Gauge>::default();
    let desired = Family::<Labels, Gauge>::default();
    let syncs = Family::<Labels, Counter>::default();
    let failing = Family::<Labels, Gauge>::default();
    let metric = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (key, view) in s.views {
        let l: Labels = vec![
            ("namespace".into(), key.namespace.clone()),
            ("name".into(), key.name.clone()),
        ];
        if let Some(last) = &view.last {
            if let Some(c) = last.current_replicas {
                current.get_or_create(&l).set(i64::from(c));
            }
            if let Some(d) = last.desired_replicas {
                desired.get_or_create(&l).set(i64::from(d));
            }
            failing
                .get_or_create(&l)
                .set(i64::from(last.error.is_some()));
        }
        syncs.get_or_create(&l).inc_by(view.syncs);
        let statuses = view
            .hpa
            .status
            .as_ref()
            .and_then(|st| st.current_metrics.as_deref());
        for m in statuses.unwrap_or_default() {
            let (Some((name, kind)), Some(cur)) = (identify(m), m.current()) else {
                continue;
            };
            for (field, v) in values(cur) {
                let mut ml = l.clone();
                ml.push(("metric".into(), name.to_owned()));
                ml.push(("type".into(), kind.into()));
                ml.push(("field".into(), field.into()));
                metric.get_or_create(&ml).set(v);
            }
        }
    }
    r.register(
        "autoscaler_current_replicas",
        "The target's replicas at the last sync",
        current,
    );
    r.register(
        "autoscaler_desired_replicas",
        "The replica count decided at the last sync",
        desired,
    );
    r.register("autoscaler_syncs", "Syncs of this autoscaler", syncs);
    r.register(
        "autoscaler_failing",
        "1 if the last sync of this autoscaler reported an error",
        failing,
    );
    r.register(
        "autoscaler_metric_current",
        "Each metric's current value at the last sync (status.currentMetrics; field: averageUtilization in percent, averageValue, value)",
        metric,
    );

    let local = r.sub_registry_with_prefix("local");
    let phases = Family::<Labels, Gauge>::default();
    for (phase, label) in [(Phase::Pending, "pending"), (Phase::Running, "running")] {
        let n = s.replicas.iter().filter(|x| x.phase == phase).count();
        phases
            .get_or_create(&vec![("phase".into(), label.into())])
            .set(count(n));
    }
    let stopping = s.replicas.iter().filter(|x| x.deletion.is_some()).count();
    local.register(
        "stopping_replicas",
        "Replicas being stopped (draining)",
        gauge(count(stopping)),
    );
    local.register(
        "replicas",
        "Replica processes by phase (pending: started, not yet running its command)",
        phases,
    );
    let ready = s
        .replicas
        .iter()
        .filter(|x| x.ready && x.deletion.is_none())
        .count();
    local.register(
        "ready_replicas",
        "Replicas ready and not stopping (those the proxy routes to)",
        gauge(count(ready)),
    );
    let restarts: Counter = Counter::default();
    restarts.inc_by(s.restarts);
    local.register(
        "replica_restarts",
        "Crashed replicas restarted (all replicas, since start)",
        restarts,
    );
    let requests = Family::<Labels, Counter>::default();
    for o in Outcome::ALL {
        requests
            .get_or_create(&vec![("outcome".into(), o.label().into())])
            .inc_by(s.proxy.outcome(o));
    }
    local.register(
        "proxy_requests",
        "Requests through the front proxy by outcome (proxied: a replica answered; the others: the proxy answered itself)",
        requests,
    );
    let snap = s.proxy.snapshot();
    let retries: Counter = Counter::default();
    retries.inc_by(snap.retries);
    local.register(
        "proxy_retries",
        "Requests sent again to another replica after a refusal",
        retries,
    );
    let cut: Counter = Counter::default();
    cut.inc_by(s.proxy.streams_cut());
    local.register(
        "proxy_streams_cut",
        "Streamed answers cut at front.requestTimeout",
        cut,
    );
    local.register(
        "proxy_in_flight",
        "Requests being served through the proxy (a streamed answer until it ends)",
        gauge(snap.in_flight),
    );
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &r);
    out
}
