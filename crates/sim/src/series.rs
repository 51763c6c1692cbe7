//! The time series of a run: one row per step (`--series FILE.csv`, the charts and the
//! sparklines). Memory grows with the number of steps, never with requests.
use std::fmt::Write as _;

use crate::pipeline::MetricColumn;

/// One step of a run: counts over the step, levels at its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// End of the step (seconds).
    pub t: f64,
    /// Requests that arrived during the step.
    pub arrivals: u64,
    pub completed: u64,
    /// Timed out or aborted during the step.
    pub timed_out: u64,
    /// Requests waiting (Service and replica queues) at the end.
    pub waiting: u64,
    pub running: u64,
    pub desired: i32,
    pub ready: u32,
    pub starting: u32,
    pub draining: u32,
    pub oracle: f64,
    /// Of requests completed during the step (NaN when none).
    pub latency_p50: f64,
    pub latency_p95: f64,
    pub ttft_p50: f64,
    pub ttft_p95: f64,
    /// Each metric's value at the last sync (NaN when unavailable), as the engine read it.
    pub metrics: Vec<f64>,
}

/// The series of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSeries {
    pub policy: String,
    pub step: f64,
    pub columns: Vec<MetricColumn>,
    pub rows: Vec<Row>,
}

fn num(out: &mut String, x: f64) {
    if x.is_finite() {
        let r = (x * 1000.0).round() / 1000.0;
        let _ = write!(out, "{r}");
    }
}

/// Column name for a metric label: `cpu utilization` → `cpu_utilization`.
pub fn column_name(label: &str) -> String {
    label
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Writes runs as one CSV: a `policy` column, then the counts, then every metric of
/// every policy (`<metric>` and `<metric>_target`; empty where a policy lacks it).
pub fn to_csv(runs: &[&RunSeries]) -> String {
    let mut metric_names: Vec<String> = Vec::new();
    for r in runs {
        for c in &r.columns {
            let n = column_name(&c.label);
            if !metric_names.contains(&n) {
                metric_names.push(n);
            }
        }
    }
    let mut out = String::from(
        "time_seconds,policy,arrivals,arrival_rate,completed,timed_out,waiting,running,\
         replicas_desired,replicas_ready,replicas_starting,replicas_draining,oracle_replicas,\
         latency_p50,latency_p95,ttft_p50,ttft_p95",
    );
    for n in &metric_names {
        let _ = write!(out, ",{n},{n}_target");
    }
    out.push('\n');
    for r in runs {
        let index: Vec<Option<usize>> = metric_names
            .iter()
            .map(|n| r.columns.iter().position(|c| column_name(&c.label) == *n))
            .collect();
        let mut prev_t = 0.0;
        for row in &r.rows {
            let dt = (row.t - prev_t).max(1e-9);
            prev_t = row.t;
            num(&mut out, row.t);
            let _ = write!(out, ",{},{},", r.policy.replace(',', ";"), row.arrivals);
            num(&mut out, row.arrivals as f64 / dt);
            let _ = write!(
                out,
                ",{},{},{},{},{},{},{},{},",
                row.completed,
                row.timed_out,
                row.waiting,
                row.running,
                row.desired,
                row.ready,
                row.starting,
                row.draining
            );
            num(&mut out, row.oracle);
            for x in [row.latency_p50, row.latency_p95, row.ttft_p50, row.ttft_p95] {
                out.push(',');
                num(&mut out, x);
            }
            for i in &index {
                out.push(',');
                if let Some(i) = *i {
                    num(&mut out, row.metrics[i]);
                    out.push(',');
                    num(&mut out, r.columns[i].target);
                } else {
                    out.push(',');
                }
            }
            out.push('\n');
        }
    }
    out
}
