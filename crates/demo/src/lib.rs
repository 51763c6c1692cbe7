//! # podscale-demo
//!
//! `podscale demo`: the seed's exercise on one machine, with no set-up. It starts the
//! local runtime ([`podscale_local::run`]) with `podscale emulate` replicas (the podscale
//! binary itself, so nothing else is needed), an HPA like the seed's (CPU utilization
//! 70 % and `inference_queue_depth` as a Pods AverageValue, 1–10 replicas, a short
//! scale-down window so the demo finishes), and drives it in-process with
//! [`podscale_load`] through quiet → ramp → peak → quiet, while a view shows the
//! replicas, each metric against its target, the request rate and the p99 latency.
//! At the end: reaction time, ready time, peak replicas, failed requests and the
//! scale-down, as a [`Summary`]. Everything it started is stopped, also on Ctrl-C.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use podscale_core::api::{HorizontalPodAutoscaler, MetricSourceType};
use podscale_core::{ControllerSettings, defaults};
use podscale_load::{Mode, Progress, RequestShape};
use podscale_local::run::{self, LoopConfig, RunOptions, Running};
use podscale_local::status::StatusDoc;
use podscale_local::{LocalDeployment, ReplicaSet};
use podscale_model::units::format_duration;
use podscale_sim::pipeline::MetricColumn;
use podscale_sim::series::{Row, RunSeries};
use podscale_sim::traffic::Pattern;
use serde::Serialize;

/// The demo's HPA: the seed's two signals, CPU utilization and queue depth. The
/// scale-down window is set from `--duration` (see [`Plan`]); the rest is the API's
/// defaults (scale up by 100 % or 4 pods per 15 s, whichever is more).
pub const DEMO_HPA: &str = r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: demo-hpa
  namespace: default
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: demo
  minReplicas: 1
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
    - type: Pods
      pods:
        metric:
          name: inference_queue_depth
        target:
          type: AverageValue
          averageValue: "2"
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 30
"#;

/// The emulated server: a small model, so a replica serves about 4 requests/s
/// (4 batch slots, 16 output tokens at ~60 ms a step) and a queue forms under a few
/// requests/s more; CPU is mostly per request, so utilization follows the load
/// (20 m idle + 35 m per request/s against a 200 m request: 70 % at ~3.4 requests/s,
/// so CPU holds a little headroom once the queue-driven scale-up has drained the queue).
pub const DEMO_MODEL: &str = r#"# podscale demo: a small emulated model (see `podscale emulate --print-model`).
server:
  maxBatch: 4
  prefillTokensPerSecond: 4000
  decodeStep:
    1: 50ms
    4: 60ms
usage:
  cpu:
    idleCores: 0.02
    loadingCores: 0.05
    busyCores: 0.0
    perRequestCoreSeconds: 0.035
    perTokenCoreSeconds: 0.0
"#;

/// Replicas' model load time: long enough to see the wait for a new replica.
const STARTUP_DELAY: &str = "2s";
/// Request rates (requests/s): quiet, and the peak (~3 replicas' capacity).
const QUIET_RATE: f64 = 1.0;
const PEAK_RATE: f64 = 12.0;
/// Shortest and longest demo.
pub const MIN_DURATION: Duration = Duration::from_secs(20);
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// How long the first replica may take to turn ready.
const FIRST_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--duration must be between {} and {}", format_duration(MIN_DURATION.as_secs_f64()), format_duration(MAX_DURATION.as_secs_f64()))]
    Duration,
    #[error("cannot find 10 free ports on 127.0.0.1 for the replicas")]
    NoPorts,
    #[error("cannot write the demo's files in {dir}")]
    Files { dir: String, source: std::io::Error },
    #[error("the embedded {0} is invalid: {1}")]
    Embedded(&'static str, String),
    #[error(transparent)]
    Run(#[from] run::RunError),
    #[error("the first replica was not ready after {}s (its output: {log})", FIRST_READY_TIMEOUT.as_secs())]
    NotReady { log: String },
    #[error("load: {0}")]
    Load(#[from] podscale_load::Error),
    #[error("interrupted")]
    Interrupted,
}

/// The phases of the load, in seconds from the start of the load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub quiet: f64,
    pub ramp: f64,
    pub peak: f64,
    pub after: f64,
    /// The HPA's scale-down stabilization window (the API default is 5 minutes, too
    /// long for a demo).
    pub scale_down_window: i32,
}

impl Plan {
    /// Splits `duration`: 10 % quiet, 20 % ramp, 30 % peak, 40 % quiet again (room for
    /// the scale-down window, a third of it, and the drain).
    ///
    /// # Errors
    /// [`Error::Duration`] outside [`MIN_DURATION`]..=[`MAX_DURATION`].
    pub fn new(duration: Duration) -> Result<Self, Error> {
        if duration < MIN_DURATION || duration > MAX_DURATION {
            return Err(Error::Duration);
        }
        let d = duration.as_secs_f64();
        let after = d * 0.4;
        Ok(Self {
            quiet: d * 0.1,
            ramp: d * 0.2,
            peak: d * 0.3,
            after,
            scale_down_window: ((after / 3.0).round() as i32).clamp(5, 60),
        })
    }

    pub fn total(&self) -> f64 {
        self.quiet + self.ramp + self.peak + self.after
    }

    /// The phase at `t` seconds into the load.
    pub fn phase_at(&self, t: f64) -> &'static str {
        if t < self.quiet {
            "quiet"
        } else if t < self.quiet + self.ramp {
            "ramp"
        } else if t < self.quiet + self.ramp + self.peak {
            "peak"
        } else {
            "quiet"
        }
    }

    /// (start, length, pattern) of each load phase.
    fn phases(&self) -> [(f64, f64, Pattern); 4] {
        let ramp_at = self.quiet;
        let peak_at = ramp_at + self.ramp;
        let after_at = peak_at + self.peak;
        [
            (0.0, self.quiet, Pattern::Constant { rate: QUIET_RATE }),
            (
                ramp_at,
                self.ramp,
                Pattern::Ramp {
                    from: QUIET_RATE,
                    to: PEAK_RATE,
                },
            ),
            (peak_at, self.peak, Pattern::Constant { rate: PEAK_RATE }),
            (after_at, self.after, Pattern::Constant { rate: QUIET_RATE }),
        ]
    }
}

/// What the demo measured (`-o json` prints it as is).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// From the load step (the ramp's start) to the first scale-up decision.
    pub reaction_seconds: Option<f64>,
    /// From the load step to the first new replica ready.
    pub ready_seconds: Option<f64>,
    /// Most replicas the HPA asked for.
    pub peak_replicas: i32,
    /// Most replicas ready at once.
    pub peak_ready_replicas: usize,
    /// Requests that did not get a complete 2xx answer.
    pub failed_requests: u64,
    /// Requests sent.
    pub requests: u64,
    /// Failures by kind (`status_503`, `timeout`, …).
    pub errors: std::collections::BTreeMap<String, u64>,
    /// From the end of the peak to the first scale-down decision.
    pub scale_down_seconds: Option<f64>,
    /// Replicas at the end (the HPA's minimum once it has scaled down).
    pub final_replicas: i32,
    pub min_replicas: i32,
    /// The worst phase's p99 latency.
    pub p99_seconds: Option<f64>,
    pub duration_seconds: f64,
    pub scale_down_window_seconds: i32,
    /// Replica restarts (crashes) during the demo.
    pub restarts: u64,
}

impl Summary {
    /// The summary for a person.
    pub fn render_text(&self) -> String {
        let secs = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |s| format!("{s:.1}s"));
        let mut out = String::new();
        out.push_str("Summary\n");
        let mut line = |k: &str, v: String| out.push_str(&format!("  {k:<16}{v}\n"));
        line(
            "reaction time",
            format!(
                "{}  (load step → first scale-up decision)",
                secs(self.reaction_seconds)
            ),
        );
        line(
            "ready time",
            format!(
                "{}  (load step → first new replica ready)",
                secs(self.ready_seconds)
            ),
        );
        line(
            "peak replicas",
            format!(
                "{} desired, {} ready",
                self.peak_replicas, self.peak_ready_replicas
            ),
        );
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        line(
            "failed requests",
            format!(
                "{} of {}{}",
                self.failed_requests,
                self.requests,
                if errors.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", errors.join(", "))
                }
            ),
        );
        line(
            "p99 latency",
            self.p99_seconds
                .map(|p| format!("{}  (worst phase)", format_duration(p)))
                .unwrap_or_else(|| "-".to_owned()),
        );
        let down = match self.scale_down_seconds {
            Some(s) => format!(
                "first scale-down {s:.1}s after the peak (window {}s); {} replica(s) at the end (min {})",
                self.scale_down_window_seconds, self.final_replicas, self.min_replicas
            ),
            None => format!(
                "none yet (window {}s); {} replica(s) at the end",
                self.scale_down_window_seconds, self.final_replicas
            ),
        };
        line("scale-down", down);
        if self.restarts > 0 {
            line("restarts", self.restarts.to_string());
        }
        out
    }
}

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub duration: Duration,
    /// The podscale binary (its `emulate` subcommand runs the replicas).
    pub exe: PathBuf,
    /// The control loop's sync period (1 s by default for the demo).
    pub sync_period: Duration,
}

/// One sample of the live view.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub elapsed: f64,
    pub phase: &'static str,
    pub desired: i32,
    pub ready: usize,
    /// Each metric: (name, current, target).
    pub metrics: Vec<(String, String, String)>,
    /// Requests answered per second over the last interval.
    pub rate: f64,
    /// The current phase's p99 so far.
    pub p99: Option<f64>,
    /// Latency of the requests completed in the last seconds
    /// ([`podscale_load::RECENT_WINDOW`]): p50 and p99.
    pub recent_p50: Option<f64>,
    pub recent_p99: Option<f64>,
    pub sent: u64,
    pub errors: u64,
}

impl Sample {
    /// One line: what the view shows.
    pub fn line(&self) -> String {
        let metrics: Vec<String> = self
            .metrics
            .iter()
            .map(|(n, c, t)| format!("{n} {c}/{t}"))
            .collect();
        format!(
            "{:>5}  {:<5}  replicas {:>2} desired {:>2} ready  {}  load {:>5.1} req/s  p99 {:<7} (last {}s)  phase p99 {:<7}  failed {}",
            format!("{:.0}s", self.elapsed),
            self.phase,
            self.desired,
            self.ready,
            metrics.join("  "),
            self.rate,
            self.recent_p99
                .map_or_else(|| "-".to_owned(), format_duration),
            podscale_load::RECENT_WINDOW,
            self.p99.map_or_else(|| "-".to_owned(), format_duration),
            self.errors
        )
    }
}

/// The demo's HPA with the plan's scale-down window.
///
/// # Errors
/// [`Error::Embedded`] if the embedded manifest does not parse (a bug).
pub fn demo_hpa(plan: &Plan) -> Result<HorizontalPodAutoscaler, Error> {
    let mut hpa = run::parse_hpa(DEMO_HPA, "demo-hpa.yaml")
        .map_err(|e| Error::Embedded("HPA", e.to_string()))?;
    if let Some(down) = hpa
        .spec
        .behavior
        .as_mut()
        .and_then(|b| b.scale_down.as_mut())
    {
        down.stabilization_window_seconds = Some(plan.scale_down_window);
    }
    Ok(hpa)
}

/// Quotes `s` for `/bin/sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The demo's local deployment: `podscale emulate` on `ports_base + i`.
///
/// # Errors
/// [`Error::Embedded`] if the deployment does not validate (a bug).
pub fn demo_deployment(exe: &Path, dir: &Path, ports_base: u16) -> Result<LocalDeployment, Error> {
    let exe = sh_quote(&exe.to_string_lossy());
    let model = sh_quote(&dir.join("model.yaml").to_string_lossy());
    let log = sh_quote(&dir.join("replica-").to_string_lossy());
    // The front and status ports are placeholders: the demo binds any free ones
    // (`RunOptions::ephemeral_ports`), so it runs beside anything else.
    // `exec`, so the replica is the emulator itself; its messages go to a log file,
    // not over the live view.
    let command = format!(
        "exec {exe} emulate --port {{port}} --model {model} --served-model-name demo \
         --startup-delay {STARTUP_DELAY} --cpu-threads 1 --workers 1 --drain-timeout 10s \
         >>{log}{{replica}}.log 2>&1"
    );
    let yaml = format!(
        "name: demo\n\
         command: {}\n\
         ports: {{ base: {ports_base}, count: 10 }}\n\
         readiness: {{ path: /health, period: 250ms, timeout: 1s }}\n\
         metricsPath: /metrics\n\
         resources: {{ requests: {{ cpu: 200m, memory: 64Mi }} }}\n\
         front: {{ port: 8080 }}\n\
         status: {{ port: 9412 }}\n\
         stopTimeout: 15s\n",
        serde_json::Value::String(command)
    );
    LocalDeployment::from_source(&yaml, "demo-deployment.yaml")
        .map_err(|e| Error::Embedded("deployment", e.to_string()))
}

/// Ten consecutive free ports below the kernel's ephemeral range (so the load's own
/// connections cannot take them).
fn free_ports() -> Result<u16, Error> {
    let seed = std::process::id() as u16;
    for attempt in 0..200u16 {
        let base = 20_000 + (seed.wrapping_add(attempt.wrapping_mul(97)) % 1200) * 10;
        let all_free = (0..10).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return Ok(base);
        }
    }
    Err(Error::NoPorts)
}

/// The demo's scratch directory (model file, replica logs), removed at the end.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self, Error> {
        let dir = std::env::temp_dir().join(format!("podscale-demo-{}", std::process::id()));
        let err = |source| Error::Files {
            dir: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(err)?;
        std::fs::write(dir.join("model.yaml"), DEMO_MODEL).map_err(err)?;
        Ok(Self(dir))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.0.join("replica-0.log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        if tail.is_empty() {
            "none".into()
        } else {
            tail.join(" | ")
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Load progress of each phase (the load runs one open loop per phase).
#[derive(Debug, Default)]
struct LoadState {
    phases: [Option<Progress>; 4],
}

impl LoadState {
    /// (sent, failed) over the phases so far.
    fn totals(&self) -> (u64, u64) {
        self.phases
            .iter()
            .flatten()
            .fold((0, 0), |(s, e), p| (s + p.sent, e + p.errors))
    }

    /// The p99 of the latest phase that has one.
    fn p99(&self) -> Option<f64> {
        self.phases.iter().rev().flatten().find_map(|p| p.p99)
    }

    /// (p50, p99) of the last seconds, from the latest phase that completed requests
    /// in them (at a phase change the next phase has just started; the last one's
    /// stragglers are still in its own window).
    fn recent(&self) -> (Option<f64>, Option<f64>) {
        self.phases
            .iter()
            .rev()
            .flatten()
            .find(|p| p.recent_completed > 0)
            .map_or((None, None), |p| (p.recent_p50, p.recent_p99))
    }
}

/// The metrics of the HPA's status: (name, current, target).
fn metric_cells(hpa: &HorizontalPodAutoscaler) -> Vec<(String, String, String)> {
    let statuses = hpa
        .status
        .as_ref()
        .and_then(|s| s.current_metrics.clone())
        .unwrap_or_default();
    defaults::metrics(hpa)
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let status = statuses.get(i).filter(|s| s.type_ == spec.type_);
            match spec.source_type() {
                Some(MetricSourceType::Resource) => {
                    let (name, target) = spec.resource.as_ref().map_or_else(
                        || ("resource".to_owned(), "?".to_owned()),
                        |r| {
                            (
                                r.name.clone(),
                                r.target
                                    .average_utilization
                                    .map_or_else(|| "?".into(), |u| format!("{u}%")),
                            )
                        },
                    );
                    let current = status
                        .and_then(|s| s.resource.as_ref())
                        .and_then(|r| r.current.average_utilization)
                        .map_or_else(|| "<unknown>".into(), |u| format!("{u}%"));
                    (name, current, target)
                }
                Some(MetricSourceType::Pods) => {
                    let (name, target) = spec.pods.as_ref().map_or_else(
                        || ("pods".to_owned(), "?".to_owned()),
                        |p| {
                            (
                                p.metric.name.clone(),
                                p.target
                                    .average_value
                                    .as_ref()
                                    .map_or_else(|| "?".into(), ToString::to_string),
                            )
                        },
                    );
                    let current = status
                        .and_then(|s| s.pods.as_ref())
                        .and_then(|p| p.current.average_value.as_ref())
                        .map_or_else(|| "<unknown>".into(), ToString::to_string);
                    (name, current, target)
                }
                _ => ("metric".into(), "?".into(), "?".into()),
            }
        })
        .collect()
}

/// What the demo measured, and its time series (one row a second) for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub summary: Summary,
    pub series: RunSeries,
    /// The load's latency over the last seconds, sampled with each row.
    pub latency: Vec<LatencyPoint>,
}

/// The latency of the requests completed in the [`podscale_load::RECENT_WINDOW`]
/// seconds before `t` (seconds from the start of the load); `None` when none did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyPoint {
    pub t: f64,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

/// The metrics as the report's charts show them: CPU in percent of the request, the
/// queue depth per replica.
fn metric_columns(hpa: &HorizontalPodAutoscaler) -> Vec<MetricColumn> {
    metric_cells(hpa)
        .into_iter()
        .map(|(name, _, target)| {
            let percent = target.ends_with('%');
            MetricColumn {
                target: parse_cell(&target),
                label: if percent {
                    format!("{name} utilization")
                } else {
                    name
                },
                unit: if percent { "%" } else { "" },
            }
        })
        .collect()
}

/// A cell's number (`45%` → 45, `2200m` → 2.2); NaN when unknown.
fn parse_cell(cell: &str) -> f64 {
    let cell = cell.trim_end_matches('%');
    podscale_core::quantity::Quantity::parse(cell).map_or(f64::NAN, |q| q.as_approximate_f64())
}

/// One row of the series: the second that just ended.
fn row(doc: &StatusDoc, s: &Sample, arrivals: u64) -> Row {
    let metrics: Vec<f64> = s.metrics.iter().map(|(_, c, _)| parse_cell(c)).collect();
    // The queue: the Pods metric's average over the replicas that reported it.
    let waiting = s
        .metrics
        .iter()
        .find(|(n, _, _)| n == "inference_queue_depth")
        .map(|(_, c, _)| parse_cell(c))
        .filter(|q| q.is_finite())
        .map_or(0, |q| (q * s.ready as f64).round() as u64);
    let live = doc.replicas.iter().filter(|r| r.deletion.is_none());
    Row {
        t: s.elapsed,
        arrivals,
        completed: 0,
        timed_out: 0,
        waiting,
        running: 0,
        desired: s.desired,
        ready: u32::try_from(s.ready).unwrap_or(u32::MAX),
        starting: u32::try_from(live.filter(|r| !r.ready).count()).unwrap_or(u32::MAX),
        draining: u32::try_from(doc.replicas.iter().filter(|r| r.deletion.is_some()).count())
            .unwrap_or(u32::MAX),
        oracle: f64::NAN,
        latency_p50: f64::NAN,
        latency_p95: f64::NAN,
        ttft_p50: f64::NAN,
        ttft_p95: f64::NAN,
        metrics,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTML report: the summary, then the same charts as `podscale simulate --report`
/// (load, replicas, each metric against its target, the queue), drawn from the live
/// samples, and the load's latency (p50 and p99 over the last seconds) before the
/// queue, where the simulator's report has its latency chart.
///
/// # Errors
/// When the charts cannot be drawn (not expected with the SVG backend).
pub fn report_html(outcome: &Outcome) -> Result<String, String> {
    let x_max = outcome.series.rows.last().map_or(1.0, |r| r.t).max(1.0);
    let mut charts = podscale_sim::report::charts(&[&outcome.series], x_max, None)?;
    if let Some(svg) = latency_chart(&outcome.latency, x_max)? {
        // The simulator's last chart is the queue; latency goes before it, as there.
        let at = charts.len().saturating_sub(1);
        charts.insert(at, svg);
    }
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <title>podscale demo report</title>\n<style>\n\
         body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}\n\
         h1{font-size:1.5em}pre{background:#f6f6f6;padding:1em}\n\
         figure{margin:1.5em 0}.note{color:#555;font-size:.9em}\n</style></head><body>\n\
         <h1>podscale demo</h1>\n",
    );
    out.push_str(&format!(
        "<pre>{}</pre>\n",
        escape(&outcome.summary.render_text())
    ));
    for svg in charts {
        out.push_str(&format!("<figure>{svg}</figure>\n"));
    }
    out.push_str(
        "<p class=\"note\">Real processes: <code>podscale emulate</code> replicas behind \
         the local runtime's proxy, scaled by podscale's control loop (the algorithm of \
         kube-controller-manager) every sync; sampled once a second. The queue is the \
         average <code>inference_queue_depth</code> times the ready replicas.</p>\n\
         </body></html>\n",
    );
    Ok(out)
}

/// The latency chart, drawn like the simulator's (same size, fonts, axes), or `None`
/// when no request completed.
fn latency_chart(points: &[LatencyPoint], x_max: f64) -> Result<Option<String>, String> {
    use plotters::prelude::*;
    let y_max = points
        .iter()
        .flat_map(|p| [p.p50, p.p99])
        .flatten()
        .filter(|y| y.is_finite())
        .fold(0.0, f64::max);
    if y_max <= 0.0 {
        return Ok(None);
    }
    // Minutes past 3 minutes, as the simulator's charts.
    let (unit, unit_name) = if x_max >= 180.0 {
        (60.0, "minutes")
    } else {
        (1.0, "seconds")
    };
    let blue = RGBColor(31, 119, 180);
    type Value = fn(&LatencyPoint) -> Option<f64>;
    let lines: [(&str, u32, Value); 2] = [("p99", 2, |p| p.p99), ("p50", 1, |p| p.p50)];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let title = format!(
            "Latency: p99 (thick) and p50 (thin) of the requests completed in the last {}s",
            podscale_load::RECENT_WINDOW
        );
        let mut c = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..(x_max / unit).max(1e-9), 0f64..y_max * 1.3)
            .map_err(|e| e.to_string())?;
        c.configure_mesh()
            .x_labels(12)
            .y_labels(6)
            .x_label_formatter(&|x| podscale_model::units::trim_float(*x, 2))
            .y_label_formatter(&|y| podscale_model::units::trim_float(*y, 3))
            .x_desc(unit_name)
            .y_desc("seconds")
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, width, value) in lines {
            let style = ShapeStyle {
                color: blue.to_rgba(),
                filled: false,
                stroke_width: width,
            };
            // A gap where no request completed (split at missing values).
            let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for p in points {
                match value(p) {
                    Some(y) if y.is_finite() => {
                        if let Some(run) = runs.last_mut() {
                            run.push((p.t / unit, y));
                        }
                    }
                    _ => runs.push(Vec::new()),
                }
            }
            let mut labelled = false;
            for run in runs.into_iter().filter(|r| !r.is_empty()) {
                let anno = c
                    .draw_series(LineSeries::new(run, style))
                    .map_err(|e| e.to_string())?;
                if !labelled {
                    labelled = true;
                    anno.label(name).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], blue.stroke_width(width))
                    });
                }
            }
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(Some(svg))
}

fn ready_count(doc: &StatusDoc) -> usize {
    doc.replicas
        .iter()
        .filter(|r| r.ready && r.deletion.is_none())
        .count()
}

/// What the monitor tracks to compute the summary.
#[derive(Debug, Default)]
struct Track {
    peak_desired: i32,
    peak_ready: usize,
    /// The first scale-up decision after the load step.
    scale_up: Option<Timestamp>,
    /// The first replica ready after that decision.
    new_ready: Option<Timestamp>,
    /// The first scale-down decision after the peak.
    scale_down: Option<Timestamp>,
    last_desired: i32,
}

impl Track {
    fn observe(&mut self, doc: &StatusDoc, desired: i32, step: Timestamp, peak_end: Timestamp) {
        self.peak_desired = self.peak_desired.max(desired);
        self.peak_ready = self.peak_ready.max(ready_count(doc));
        // The decision's time: the HPA's lastScaleTime, else when it was seen.
        let decided = doc
            .autoscalers
            .first()
            .and_then(|a| a.hpa.status.as_ref())
            .and_then(|s| s.last_scale_time)
            .unwrap_or(doc.now);
        if desired > self.last_desired && self.scale_up.is_none() && doc.now >= step {
            self.scale_up = Some(decided.max(step));
        }
        if desired < self.last_desired && self.scale_down.is_none() && doc.now >= peak_end {
            self.scale_down = Some(decided.max(peak_end));
        }
        if let (Some(up), None) = (self.scale_up, self.new_ready) {
            self.new_ready = doc
                .replicas
                .iter()
                .filter(|r| r.ready && r.created >= up)
                .map(|r| r.ready_transition)
                .min();
        }
        self.last_desired = desired;
    }
}

/// Seconds from `a` to `b` (0 if before), to the millisecond.
fn secs_between(a: Timestamp, b: Timestamp) -> f64 {
    ms(b.duration_since(a).as_secs_f64().max(0.0))
}

fn ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Where the live view goes.
pub struct View {
    out: Box<dyn Write + Send>,
    /// Redraw a block in place (a terminal); else one plain line per `every` samples.
    live: bool,
    lines: usize,
    every: u32,
    count: u32,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl View {
    pub fn new(out: Box<dyn Write + Send>, live: bool) -> Self {
        Self {
            out,
            live,
            lines: 0,
            every: 2,
            count: 0,
        }
    }

    fn show(&mut self, header: &str, s: &Sample) {
        if self.live {
            let metrics: Vec<String> = s
                .metrics
                .iter()
                .map(|(n, c, t)| format!("  {n:<24}{c:>10} / {t}"))
                .collect();
            let block = format!(
                "{header}\n  {:<24}{:>10}   ({:.0}s)\n  {:<24}{:>10} desired, {} ready\n{}\n  {:<24}{:>10.1} req/s (sent {}, failed {})\n  {:<24}{:>10}  (p50 {})\n  {:<24}{:>10}\n",
                "phase",
                s.phase,
                s.elapsed,
                "replicas",
                s.desired,
                s.ready,
                metrics.join("\n"),
                "load",
                s.rate,
                s.sent,
                s.errors,
                format!("p99 (last {}s)", podscale_load::RECENT_WINDOW),
                s.recent_p99.map_or_else(|| "-".to_owned(), format_duration),
                s.recent_p50.map_or_else(|| "-".to_owned(), format_duration),
                "p99 (this phase)",
                s.p99.map_or_else(|| "-".to_owned(), format_duration),
            );
            if self.lines > 0 {
                let _ = write!(self.out, "\x1b[{}A", self.lines);
            }
            for l in block.lines() {
                let _ = writeln!(self.out, "\x1b[2K{l}");
            }
            self.lines = block.lines().count();
        } else {
            self.count += 1;
            if self.count % self.every != 1 && self.every > 1 {
                return;
            }
            let _ = writeln!(self.out, "{}", s.line());
        }
        let _ = self.out.flush();
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
        self.lines = 0;
    }
}

/// Runs the demo to its end (or Ctrl-C / SIGTERM). Call inside a multi-threaded tokio
/// runtime.
///
/// # Errors
/// The duration is out of range, no free ports, the runtime cannot start, the first
/// replica never turns ready, or the user interrupted it.
pub async fn run(options: Options, view: &mut View) -> Result<Outcome, Error> {
    let plan = Plan::new(options.duration)?;
    let mut signals = Signals::install();
    let scratch = Scratch::new()?;
    let hpa = demo_hpa(&plan)?;
    let min_replicas = defaults::min_replicas(&hpa);
    let spec = demo_deployment(&options.exe, &scratch.0, free_ports()?)?;
    let run_options = RunOptions {
        loop_config: LoopConfig {
            sync_period: options.sync_period,
            ..Default::default()
        },
        settings: ControllerSettings {
            sync_period_seconds: options.sync_period.as_secs().max(1) as i64,
            ..Default::default()
        },
        initial_replicas: None,
        ephemeral_ports: true,
    };
    let running = run::start(
        spec,
        hpa,
        podscale_metrics::config::Config::default(),
        run_options,
    )
    .await?;
    let result = drive(
        &running,
        &plan,
        options.sync_period,
        min_replicas,
        &scratch,
        view,
        &mut signals,
    )
    .await;
    view.note("Stopping: draining the replicas…");
    running.stop().await;
    result
}

/// SIGINT (Ctrl-C) and SIGTERM, registered before anything starts: from then on
/// they no longer kill the process, so every replica it started gets stopped.
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self(
            signal(SignalKind::interrupt())
                .ok()
                .zip(signal(SignalKind::terminate()).ok()),
        )
    }

    async fn recv(&mut self) {
        match &mut self.0 {
            Some((int, term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            None => std::future::pending().await,
        }
    }
}

async fn drive(
    running: &Running,
    plan: &Plan,
    sync_period: Duration,
    min_replicas: i32,
    scratch: &Scratch,
    view: &mut View,
    signals: &mut Signals,
) -> Result<Outcome, Error> {
    tokio::select! {
        r = drive_inner(running, plan, sync_period, min_replicas, scratch, view) => r,
        () = signals.recv() => Err(Error::Interrupted),
    }
}

async fn wait_first_ready(replicas: &ReplicaSet, scratch: &Scratch) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + FIRST_READY_TIMEOUT;
    while !replicas
        .replicas()
        .iter()
        .any(|r| r.ready && r.deletion.is_none())
    {
        if tokio::time::Instant::now() > deadline {
            return Err(Error::NotReady {
                log: scratch.log_tail(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn drive_inner(
    running: &Running,
    plan: &Plan,
    sync_period: Duration,
    min_replicas: i32,
    scratch: &Scratch,
    view: &mut View,
) -> Result<Outcome, Error> {
    view.note(&format!(
        "podscale demo: {} emulated inference replica(s) behind http://{}, an HPA on cpu (70%) and inference_queue_depth (2 per replica), 1–10 replicas, sync every {}, scale-down window {}s.\nLoad: quiet {QUIET_RATE}/s for {}, ramp to {PEAK_RATE}/s over {}, peak for {}, quiet for {}. Status: podscale get --local --status-addr {}",
        min_replicas,
        running.front_addr(),
        format_duration(sync_period.as_secs_f64()),
        plan.scale_down_window,
        format_duration(plan.quiet),
        format_duration(plan.ramp),
        format_duration(plan.peak),
        format_duration(plan.after),
        running.status_addr(),
    ));
    wait_first_ready(running.replicas(), scratch).await?;

    let url = format!("http://{}/v1/completions", running.front_addr());
    let state = Arc::new(Mutex::new(LoadState::default()));
    let start = tokio::time::Instant::now();
    let start_ts = Timestamp::now();
    let at = |s: f64| {
        start_ts
            .checked_add(jiff::SignedDuration::from_secs_f64(s))
            .unwrap_or(start_ts)
    };
    let step = at(plan.quiet);
    let peak_end = at(plan.quiet + plan.ramp + plan.peak);
    let mut loads = Vec::new();
    for (i, (offset, length, pattern)) in plan.phases().into_iter().enumerate() {
        let mut cfg = podscale_load::Config::new(&url, Mode::Open { pattern }, length)?;
        cfg.timeout = Duration::from_secs(30);
        cfg.connections = 64;
        cfg.shape = RequestShape {
            prompt_tokens: 64,
            max_tokens: 16,
            stream: false,
            model: Some("demo".into()),
        };
        let state = Arc::clone(&state);
        loads.push(tokio::spawn(async move {
            tokio::time::sleep_until(start + Duration::from_secs_f64(offset)).await;
            let s = Arc::clone(&state);
            let mut progress = move |p: Progress| {
                s.lock().unwrap_or_else(PoisonError::into_inner).phases[i] = Some(p);
            };
            podscale_load::run(cfg, &mut progress).await
        }));
    }

    let mut track = Track {
        last_desired: running.replicas().desired(),
        ..Track::default()
    };
    let header = "podscale demo (Ctrl-C stops it)";
    let mut ticker =
        tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let mut last_proxied = 0u64;
    let mut rows = Vec::new();
    let mut latency = Vec::new();
    let mut last_t = 0.0f64;
    let total = plan.total();
    loop {
        ticker.tick().await;
        let t = start.elapsed().as_secs_f64();
        let doc = running.status_doc();
        let desired = running.replicas().desired();
        track.observe(&doc, desired, step, peak_end);
        let (sent, errors, p99, (recent_p50, recent_p99)) = {
            let st = state.lock().unwrap_or_else(PoisonError::into_inner);
            let (s, e) = st.totals();
            (s, e, st.p99(), st.recent())
        };
        // Requests reaching the proxy: sampled here, not from the load's own
        // once-a-second progress, so the rate does not alias.
        let proxied = doc.proxy.requests;
        let rate = if t > last_t {
            proxied.saturating_sub(last_proxied) as f64 / (t - last_t)
        } else {
            0.0
        };
        let proxied_step = proxied.saturating_sub(last_proxied);
        last_proxied = proxied;
        last_t = t;
        let sample = Sample {
            elapsed: t,
            phase: plan.phase_at(t),
            desired,
            ready: ready_count(&doc),
            metrics: doc
                .autoscalers
                .first()
                .map(|a| metric_cells(&a.hpa))
                .unwrap_or_default(),
            rate,
            p99,
            recent_p50,
            recent_p99,
            sent,
            errors,
        };
        rows.push(row(&doc, &sample, proxied_step));
        latency.push(LatencyPoint {
            t,
            p50: recent_p50,
            p99: recent_p99,
        });
        view.show(header, &sample);
        if t >= total || loads.iter().all(tokio::task::JoinHandle::is_finished) {
            break;
        }
    }
    // The phases end on their own; wait for the answers still in flight.
    let mut reports = Vec::new();
    for l in loads {
        match l.await {
            Ok(r) => reports.push(r?),
            Err(e) => return Err(Error::Embedded("load task", e.to_string())),
        }
    }
    let doc = running.status_doc();
    track.observe(&doc, running.replicas().desired(), step, peak_end);

    let mut errors = std::collections::BTreeMap::new();
    for r in &reports {
        for (k, v) in &r.errors {
            *errors.entry(k.clone()).or_insert(0) += v;
        }
    }
    let summary = Summary {
        reaction_seconds: track.scale_up.map(|t| secs_between(step, t)),
        ready_seconds: track.new_ready.map(|t| secs_between(step, t)),
        peak_replicas: track.peak_desired,
        peak_ready_replicas: track.peak_ready,
        failed_requests: reports.iter().map(podscale_load::Report::error_total).sum(),
        requests: reports.iter().map(|r| r.sent).sum(),
        errors,
        scale_down_seconds: track.scale_down.map(|t| secs_between(peak_end, t)),
        final_replicas: running.replicas().desired(),
        min_replicas,
        p99_seconds: reports
            .iter()
            .filter_map(|r| r.latency.map(|l| ms(l.p99)))
            .reduce(f64::max),
        duration_seconds: ms(start.elapsed().as_secs_f64()),
        scale_down_window_seconds: plan.scale_down_window,
        restarts: doc.restarts,
    };
    let columns = metric_columns(&demo_hpa(plan)?);
    // A sample taken before the HPA's first status has no metrics: the charts index
    // every row by column, so give it unknown (NaN, a gap) values.
    for r in &mut rows {
        r.metrics.resize(columns.len(), f64::NAN);
    }
    Ok(Outcome {
        summary,
        series: RunSeries {
            policy: "demo-hpa".into(),
            step: 1.0,
            columns,
            rows,
        },
        latency,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use podscale_local::replicas::{Phase, ReplicaInfo};

    #[test]
    fn the_plan_splits_the_duration_and_bounds_it() {
        let p = Plan::new(Duration::from_secs(180)).expect("valid");
        assert!((p.total() - 180.0).abs() < 1e-9);
        assert_eq!(p.scale_down_window, 24);
        assert_eq!(p.phase_at(1.0), "quiet");
        assert_eq!(p.phase_at(20.0), "ramp");
        assert_eq!(p.phase_at(60.0), "peak");
        assert_eq!(p.phase_at(120.0), "quiet");
        assert!(matches!(
            Plan::new(Duration::from_secs(5)),
            Err(Error::Duration)
        ));
        assert!(matches!(
            Plan::new(Duration::from_secs(7200)),
            Err(Error::Duration)
        ));
    }

    #[test]
    fn the_embedded_hpa_and_deployment_are_valid() {
        let plan = Plan::new(Duration::from_secs(40)).expect("valid");
        let hpa = demo_hpa(&plan).expect("embedded HPA");
        assert_eq!(hpa.spec.max_replicas, 10);
        assert_eq!(
            hpa.spec
                .behavior
                .and_then(|b| b.scale_down)
                .and_then(|d| d.stabilization_window_seconds),
            Some(plan.scale_down_window)
        );
        let d = demo_deployment(
            Path::new("/opt/pod's scale/podscale"),
            Path::new("/tmp/x"),
            20_000,
        )
        .expect("embedded deployment");
        let cmd = d.command_for(3, 20_003);
        assert!(
            cmd.starts_with("exec '/opt/pod'\\''s scale/podscale' emulate --port 20003 "),
            "{cmd}"
        );
        assert!(cmd.ends_with(">>'/tmp/x/replica-'3.log 2>&1"), "{cmd}");
    }

    fn replica(index: u16, created: Timestamp, ready_at: Option<Timestamp>) -> ReplicaInfo {
        ReplicaInfo {
            index,
            name: format!("demo-{index}"),
            port: 20_000 + index,
            pgid: None,
            phase: if ready_at.is_some() {
                Phase::Running
            } else {
                Phase::Pending
            },
            ready: ready_at.is_some(),
            created,
            ready_transition: ready_at.unwrap_or(created),
            restarts: 0,
            deletion: None,
            outstanding: 0,
        }
    }

    fn doc(now: Timestamp, replicas: Vec<ReplicaInfo>) -> StatusDoc {
        StatusDoc {
            now,
            autoscalers: Vec::new(),
            target: "Deployment/demo".into(),
            replicas,
            restarts: 0,
            proxy: Default::default(),
        }
    }

    #[test]
    fn reaction_ready_and_scale_down_are_timed_from_the_load_changes() {
        let t0 = Timestamp::from_second(1_000_000).expect("valid");
        let at = |s: i64| {
            t0.checked_add(jiff::SignedDuration::from_secs(s))
                .expect("valid")
        };
        let (step, peak_end) = (at(10), at(40));
        let first = replica(0, t0, Some(at(2)));
        let mut track = Track {
            last_desired: 1,
            ..Track::default()
        };
        // Before the step nothing counts, even a change.
        track.observe(&doc(at(5), vec![first.clone()]), 1, step, peak_end);
        // The decision to go to 3 at 14 s; the new replicas start.
        let starting = vec![
            first.clone(),
            replica(1, at(14), None),
            replica(2, at(14), None),
        ];
        track.observe(&doc(at(14), starting), 3, step, peak_end);
        assert_eq!(track.scale_up, Some(at(14)));
        assert_eq!(track.new_ready, None);
        // Replica 2 turns ready at 17 s, replica 1 at 18 s: the first one counts.
        let ready = vec![
            first.clone(),
            replica(1, at(14), Some(at(18))),
            replica(2, at(14), Some(at(17))),
        ];
        track.observe(&doc(at(19), ready.clone()), 3, step, peak_end);
        assert_eq!(track.new_ready, Some(at(17)));
        assert_eq!((track.peak_desired, track.peak_ready), (3, 3));
        // A scale-down during the peak is not "after the load"; one after it is.
        track.observe(&doc(at(30), ready.clone()), 2, step, peak_end);
        assert_eq!(track.scale_down, None);
        track.observe(&doc(at(50), ready), 1, step, peak_end);
        assert_eq!(track.scale_down, Some(at(50)));
        assert_eq!(secs_between(step, at(14)), 4.0);
    }

    fn progress(recent_completed: u64, recent_p99: Option<f64>) -> Progress {
        Progress {
            elapsed: 1.0,
            sent: 10,
            completed: 10,
            errors: 0,
            in_flight: 0,
            p50: Some(0.1),
            p99: Some(0.2),
            recent_completed,
            recent_p50: recent_p99.map(|p| p / 2.0),
            recent_p99,
        }
    }

    #[test]
    fn recent_latency_comes_from_the_latest_phase_that_completed_requests() {
        let mut st = LoadState::default();
        assert_eq!(st.recent(), (None, None));
        st.phases[0] = Some(progress(40, Some(0.3)));
        assert_eq!(st.recent(), (Some(0.15), Some(0.3)));
        // The ramp has just started and completed nothing yet: still the quiet phase's.
        st.phases[1] = Some(progress(0, None));
        assert_eq!(st.recent(), (Some(0.15), Some(0.3)));
        st.phases[1] = Some(progress(3, Some(0.8)));
        assert_eq!(st.recent(), (Some(0.4), Some(0.8)));
    }

    #[test]
    fn the_report_draws_the_recent_latency_when_there_is_some() {
        let t0 = Timestamp::from_second(1_000_000).expect("valid");
        let plan = Plan::new(Duration::from_secs(40)).expect("valid");
        let rows: Vec<Row> = (1..=10)
            .map(|i| {
                let sample = Sample {
                    elapsed: f64::from(i),
                    phase: "quiet",
                    desired: 1,
                    ready: 1,
                    metrics: Vec::new(),
                    rate: 1.0,
                    p99: None,
                    recent_p50: None,
                    recent_p99: None,
                    sent: 0,
                    errors: 0,
                };
                let mut r = row(&doc(t0, Vec::new()), &sample, 1);
                r.metrics = vec![50.0, 1.0];
                r
            })
            .collect();
        let outcome = |latency: Vec<LatencyPoint>| Outcome {
            summary: Summary {
                reaction_seconds: None,
                ready_seconds: None,
                peak_replicas: 1,
                peak_ready_replicas: 1,
                failed_requests: 0,
                requests: 10,
                errors: Default::default(),
                scale_down_seconds: None,
                final_replicas: 1,
                min_replicas: 1,
                p99_seconds: None,
                duration_seconds: 10.0,
                scale_down_window_seconds: 5,
                restarts: 0,
            },
            series: RunSeries {
                policy: "demo-hpa".into(),
                step: 1.0,
                columns: metric_columns(&demo_hpa(&plan).expect("hpa")),
                rows: rows.clone(),
            },
            latency,
        };
        let title = "Latency: p99 (thick) and p50 (thin)";
        let none = report_html(&outcome(Vec::new())).expect("report");
        assert!(!none.contains(title), "no latency, no chart");
        // A gap (nothing completed at 4 s) splits the lines instead of dropping to 0.
        let points: Vec<LatencyPoint> = (1..=10)
            .map(|i| LatencyPoint {
                t: f64::from(i),
                p50: (i != 4).then_some(0.05),
                p99: (i != 4).then_some(0.25 * f64::from(i)),
            })
            .collect();
        let html = report_html(&outcome(points)).expect("report");
        assert!(html.contains(title), "{html}");
        assert_eq!(
            html.matches("<svg").count(),
            none.matches("<svg").count() + 1
        );
        // Before the queue chart, as in the simulator's report.
        let latency_at = html.find(title).expect("latency chart");
        let queue_at = html.find("Requests waiting").expect("queue chart");
        assert!(latency_at < queue_at);
    }

    #[test]
    fn the_embedded_model_loads() {
        let m = podscale_model::Model::load(Some(DEMO_MODEL), "model.yaml").expect("model");
        assert_eq!(m.server.max_batch, 4);
    }

    #[test]
    fn the_summary_names_every_measure() {
        let s = Summary {
            reaction_seconds: Some(1.5),
            ready_seconds: Some(4.0),
            peak_replicas: 4,
            peak_ready_replicas: 4,
            failed_requests: 0,
            requests: 900,
            errors: Default::default(),
            scale_down_seconds: Some(12.0),
            final_replicas: 1,
            min_replicas: 1,
            p99_seconds: Some(1.2),
            duration_seconds: 40.0,
            scale_down_window_seconds: 5,
            restarts: 0,
        };
        let json = serde_json::to_value(&s).expect("json");
        for k in [
            "reactionSeconds",
            "readySeconds",
            "peakReplicas",
            "failedRequests",
            "requests",
        ] {
            assert!(json.get(k).is_some(), "{k}");
        }
        let text = s.render_text();
        assert!(text.contains("reaction time   1.5s"), "{text}");
        assert!(text.contains("0 of 900"), "{text}");
    }
}
