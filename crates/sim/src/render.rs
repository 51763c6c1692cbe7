//! The terminal view: a summary table with one column per policy, and sparklines of
//! load, replicas, queue and latency over the run.
use std::fmt::Write as _;

use crate::series::RunSeries;
use crate::sim::RunOutput;
use crate::summary::Summary;
use crate::units::{format_duration, group_thousands, trim_float};

/// Context printed above the table.
#[derive(Debug, Clone)]
pub struct Header {
    pub traffic: String,
    pub model: String,
    pub slo: String,
    pub oracle: String,
    pub seed: u64,
}

fn secs(x: Option<f64>) -> String {
    x.map_or_else(|| "–".into(), format_duration)
}

fn pct(x: f64) -> String {
    format!("{}%", trim_float(x * 100.0, 1))
}

/// SLO attainment, or what it is without requests.
fn attainment(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a (no requests)".into(), pct)
}

/// The summary table.
pub fn table(runs: &[RunOutput], header: &Header) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "podscale simulate · {}", header.traffic);
    let _ = writeln!(out, "model: {}", header.model);
    let _ = writeln!(
        out,
        "SLO: {} · oracle: {} · seed {}",
        header.slo, header.oracle, header.seed
    );
    out.push('\n');
    let rows = summary_rows(runs);
    let label_width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let widths: Vec<usize> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            rows.iter()
                .map(|(_, cells)| cells[i].chars().count())
                .chain([r.summary.policy.chars().count()])
                .max()
                .unwrap_or(0)
                + 3
        })
        .collect();
    let _ = write!(out, "{:label_width$}", "");
    for (r, w) in runs.iter().zip(&widths) {
        let _ = write!(out, "{:>w$}", r.summary.policy);
    }
    out.push('\n');
    for (label, cells) in &rows {
        let _ = write!(out, "{label:label_width$}");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(out, "{c:>w$}");
        }
        out.push('\n');
    }
    out
}

/// The table's rows: a label and one cell per run.
pub fn summary_rows(runs: &[RunOutput]) -> Vec<(&'static str, Vec<String>)> {
    type Cell = fn(&Summary) -> String;
    let rows: Vec<(&'static str, Cell)> = vec![
        ("requests", |s| group_thousands(s.requests)),
        ("completed", |s| {
            format!(
                "{} ({})",
                group_thousands(s.completed),
                pct(s.completed as f64 / s.requests.max(1) as f64)
            )
        }),
        ("timed out / aborted", |s| {
            let mut t = format!(
                "{} / {}",
                group_thousands(s.timed_out),
                group_thousands(s.aborted)
            );
            if s.rejected > 0 {
                let _ = write!(t, " (+{} too large)", group_thousands(s.rejected));
            }
            t
        }),
        ("latency p50/p95/p99", |s| {
            format!(
                "{} / {} / {}",
                secs(s.latency.p50),
                secs(s.latency.p95),
                secs(s.latency.p99)
            )
        }),
        ("TTFT p50/p95/p99", |s| {
            format!(
                "{} / {} / {}",
                secs(s.ttft.p50),
                secs(s.ttft.p95),
                secs(s.ttft.p99)
            )
        }),
        ("SLO attainment", |s| {
            let mut t = attainment(s.slo_attainment);
            if s.infeasible > 0 {
                let _ = write!(
                    t,
                    " (of feasible; {} infeasible)",
                    group_thousands(s.infeasible)
                );
            }
            t
        }),
        ("replica-hours (cost)", |s| {
            format!(
                "{} (${})",
                trim_float(s.replica_hours, 2),
                trim_float(s.cost, 2)
            )
        }),
        ("mean / peak replicas", |s| {
            format!("{} / {}", trim_float(s.mean_replicas, 1), s.peak_replicas)
        }),
        ("oracle replica-hours", |s| {
            format!(
                "{} (policy ×{}; oracle attains {})",
                trim_float(s.oracle_replica_seconds / 3600.0, 2),
                trim_float(s.oracle_ratio, 2),
                attainment(s.oracle_slo_attainment)
            )
        }),
        ("scale-ups / downs", |s| {
            format!("{} / {}", s.scale_ups, s.scale_downs)
        }),
        ("flaps (reversal < 5m)", |s| s.flaps.to_string()),
        ("peak queue", |s| group_thousands(s.peak_queue)),
        ("time at maxReplicas", |s| {
            format!(
                "{} (max {})",
                format_duration(s.time_at_max_replicas),
                s.max_replicas
            )
        }),
    ];
    rows.iter()
        .map(|(label, f)| (*label, runs.iter().map(|r| f(&r.summary)).collect()))
        .collect()
}

/// One sentence per policy: how it did, what it did, what it read.
pub fn verdicts(runs: &[RunOutput]) -> String {
    let mut out = String::new();
    for r in runs {
        let s = &r.summary;
        let action = if s.scale_ups + s.scale_downs == 0 {
            "never scaled".to_string()
        } else {
            format!(
                "scaled {} times up and {} down{}",
                s.scale_ups,
                s.scale_downs,
                if s.time_at_max_replicas > 0.0 {
                    format!(
                        ", {} at maxReplicas",
                        format_duration(s.time_at_max_replicas)
                    )
                } else {
                    String::new()
                }
            )
        };
        let read: Vec<String> = r
            .series
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let (lo, hi) = r
                    .series
                    .rows
                    .iter()
                    .map(|row| row.metrics[i])
                    .filter(|x| x.is_finite())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                        (a.min(x), b.max(x))
                    });
                lo.is_finite().then(|| {
                    format!(
                        "{} read {}–{}{} against {}{}",
                        c.label,
                        trim_float(lo, 1),
                        trim_float(hi, 1),
                        c.unit,
                        trim_float(c.target, 2),
                        c.unit
                    )
                })
            })
            .collect();
        let _ = writeln!(
            out,
            "→ {}: {}, with {}× the oracle's replica-hours; it {}{}.",
            s.policy,
            s.slo_attainment.map_or_else(
                || "no requests arrived".into(),
                |x| format!("{} of feasible requests met the SLO", pct(x))
            ),
            trim_float(s.oracle_ratio, 2),
            action,
            if read.is_empty() {
                String::new()
            } else {
                format!(" ({})", read.join(", "))
            }
        );
    }
    out
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Averages `values` into `width` buckets (NaN ignored).
fn resample(values: &[f64], width: usize) -> Vec<f64> {
    if values.is_empty() || width == 0 {
        return Vec::new();
    }
    let n = values.len();
    let width = width.min(n);
    (0..width)
        .map(|b| {
            let from = b * n / width;
            let to = ((b + 1) * n / width).max(from + 1);
            let (sum, count) = values[from..to]
                .iter()
                .filter(|x| x.is_finite())
                .fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
            if count == 0 {
                f64::NAN
            } else {
                sum / count as f64
            }
        })
        .collect()
}

/// One sparkline on a 0..`max` scale (blank for NaN and zero).
pub fn sparkline(values: &[f64], width: usize, max: f64) -> String {
    resample(values, width)
        .iter()
        .map(|&v| {
            if !v.is_finite() || v <= 0.0 || max <= 0.0 {
                ' '
            } else {
                let i = ((v / max) * 8.0).ceil() as usize;
                BARS[i.clamp(1, 8) - 1]
            }
        })
        .collect()
}

fn max_of<'a>(it: impl Iterator<Item = &'a [f64]>) -> f64 {
    it.flat_map(|v| v.iter().copied())
        .filter(|x| x.is_finite())
        .fold(0.0, f64::max)
}

/// Sparklines of every run, on shared scales.
pub fn sparklines(runs: &[RunOutput], width: usize) -> String {
    let Some(first) = runs.first() else {
        return String::new();
    };
    let series: Vec<&RunSeries> = runs.iter().map(|r| &r.series).collect();
    let name_width = series
        .iter()
        .map(|s| s.policy.chars().count())
        .max()
        .unwrap_or(0)
        .max(8)
        + 4;
    let col = |s: &RunSeries, f: &dyn Fn(&crate::series::Row) -> f64| -> Vec<f64> {
        s.rows.iter().map(f).collect()
    };
    let mut out = String::new();
    let step = first.series.step;
    let load = col(&first.series, &|r| r.arrivals as f64 / step);
    let load_max = max_of([load.as_slice()].into_iter());
    let _ = writeln!(
        out,
        "\n{:name_width$}{}  peak {} req/s over {}",
        "load",
        sparkline(&load, width, load_max),
        trim_float(load_max, 1),
        format_duration(first.summary.simulated_seconds),
    );
    let ready: Vec<Vec<f64>> = series
        .iter()
        .map(|s| col(s, &|r| f64::from(r.ready + r.starting)))
        .collect();
    let oracle = col(&first.series, &|r| r.oracle);
    let rmax = max_of(ready.iter().map(Vec::as_slice).chain([oracle.as_slice()]));
    let _ = writeln!(out, "replicas (started; scale 0..{})", trim_float(rmax, 0));
    for (s, v) in series.iter().zip(&ready) {
        let _ = writeln!(
            out,
            "  {:w$}{}",
            s.policy,
            sparkline(v, width, rmax),
            w = name_width - 2
        );
    }
    let _ = writeln!(
        out,
        "  {:w$}{}",
        "oracle",
        sparkline(&oracle, width, rmax),
        w = name_width - 2
    );
    let queues: Vec<Vec<f64>> = series
        .iter()
        .map(|s| col(s, &|r| r.waiting as f64))
        .collect();
    let qmax = max_of(queues.iter().map(Vec::as_slice));
    let _ = writeln!(out, "queue (waiting; scale 0..{})", trim_float(qmax, 0));
    for (s, v) in series.iter().zip(&queues) {
        let _ = writeln!(
            out,
            "  {:w$}{}",
            s.policy,
            sparkline(v, width, qmax),
            w = name_width - 2
        );
    }
    let lat: Vec<Vec<f64>> = series.iter().map(|s| col(s, &|r| r.latency_p95)).collect();
    let lmax = max_of(lat.iter().map(Vec::as_slice));
    let _ = writeln!(out, "latency p95 (scale 0..{})", format_duration(lmax));
    for (s, v) in series.iter().zip(&lat) {
        let _ = writeln!(
            out,
            "  {:w$}{}",
            s.policy,
            sparkline(v, width, lmax),
            w = name_width - 2
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_maximum_and_blank_zeros() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 4.0, 8.0], 5, 8.0), " ▁▂▄█");
        assert_eq!(sparkline(&[1.0, 1.0, 8.0, 8.0], 2, 8.0), "▁█");
        assert_eq!(sparkline(&[f64::NAN], 3, 1.0), " ");
    }
}
