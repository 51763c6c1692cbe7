//! `podscale simulate`: replay traffic through the engine over simulated replicas.
//! Argument handling, the progress bar and output files; the simulation is
//! `podscale-sim`.
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::{Args as ClapArgs, ValueEnum};
use podscale_sim::model::DEFAULT_MODEL_YAML;
use podscale_sim::render::{self, Header};
use podscale_sim::units::{format_duration, group_thousands, parse_duration, trim_float};
use podscale_sim::{
    ArrivalProcess, Limits, Model, Oracle, Policy, RunOutput, SimConfig, Slo, TraceSource, Traffic,
    TrafficOptions, TrafficSpec,
};

use crate::input;

/// Largest traffic file read from standard input (kept in memory: it is read once, and
/// played once per policy). A file is streamed instead, whatever its size.
const MAX_STDIN_TRACE_BYTES: u64 = 64 << 20;
/// Largest server model file.
const MAX_MODEL_BYTES: u64 = 1 << 20;
/// What standard input is called in messages and policy names.
const STDIN: &str = "stdin";

/// Output format of `simulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Summary table (and sparklines when no file is written).
    Text,
    /// The summary as JSON: one object, or an array when comparing.
    Json,
}

/// `podscale simulate` arguments.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// HPA manifests to simulate (default: the embedded seed CPU + memory manifest; `-`
    /// for standard input). Several files, or a file with several HPAs, are compared on
    /// the same traffic.
    #[arg(value_name = "MANIFEST")]
    manifests: Vec<String>,
    /// Report the manifests side by side (implied by more than one).
    #[arg(long)]
    compare: bool,
    /// Traffic file: a per-request trace (timestamp_seconds[,input_tokens,output_tokens])
    /// or a rate envelope (timestamp_seconds,requests_per_second). Default: the embedded
    /// Azure LLM 2023 conversation trace (1 hour). `-` for standard input. Timestamps are
    /// read relative to the first row's.
    #[arg(short, long, value_name = "FILE", conflicts_with = "pattern")]
    trace: Option<PathBuf>,
    /// Synthetic traffic instead of a trace: constant:rate=R | step:from=R,to=R[,at=T] |
    /// ramp:from=R,to=R | spike:base=R,peak=R[,at=T][,for=T] |
    /// sine:mean=R[,amplitude=R][,period=T] (R in requests/s).
    #[arg(short, long, value_name = "SPEC")]
    pattern: Option<String>,
    /// How long a pattern runs (default 1h; a sine's period), or where a trace is cut.
    #[arg(short, long, value_name = "DURATION", value_parser = parse_secs)]
    duration: Option<f64>,
    /// How arrivals are drawn from a rate (envelope or pattern): poisson or gamma:CV.
    #[arg(long, value_name = "PROCESS", default_value = "poisson", value_parser = ArrivalProcess::parse)]
    arrivals: ArrivalProcess,
    /// Multiply every time of the traffic (0.5 plays it twice as fast, at twice the rate).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    time_scale: f64,
    /// Play the traffic N times back to back.
    #[arg(long = "loop", value_name = "N", default_value_t = 1)]
    loops: u32,
    /// Seed of every random draw (arrivals, request sizes, start-up times).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Server model: a profile name (see --list-models), or a model file (YAML; `-` for
    /// standard input) merged over the defaults (see --print-model).
    #[arg(short, long, value_name = "NAME|FILE")]
    model: Option<PathBuf>,
    /// Print the default server model, every field documented, and exit.
    #[arg(long)]
    print_model: bool,
    /// List the named model profiles (--model NAME) and exit.
    #[arg(long)]
    list_models: bool,
    /// Service-level objective: ttft=DUR[+DUR/token][,tpot=DUR][,e2e=DUR][,goal=PCT],
    /// e.g. ttft=1s+0.2ms/token,tpot=80ms,e2e=60s: the TTFT bound may grow with the
    /// prompt; tpot bounds the time per output token after the first. goal: the share
    /// of feasible requests the oracle serves within it. Requests that cannot meet it
    /// even alone on an idle replica are counted apart, as infeasible.
    #[arg(long, value_name = "SPEC", default_value = "ttft=2s,e2e=30s,goal=99%", value_parser = Slo::parse)]
    slo: Slo,
    /// The oracle's window: per window, the fewest ready replicas, started instantly,
    /// that meet the SLO goal for the requests arriving in it.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_secs)]
    oracle_window: f64,
    /// Price of one replica-hour, for the cost line.
    #[arg(long, value_name = "USD", default_value_t = 1.0)]
    cost_per_replica_hour: f64,
    /// Ready replicas at the start (default: what the oracle runs in its first window,
    /// within minReplicas..maxReplicas, as if the HPA had been running).
    #[arg(long, value_name = "N")]
    initial_replicas: Option<u32>,
    /// Override the controller's sync period (0: an ideal controller, every second).
    #[arg(long, value_name = "DURATION", value_parser = parse_secs)]
    sync_period: Option<f64>,
    /// Override the Prometheus scrape interval and metrics-server resolution (0: sample
    /// at each sync).
    #[arg(long, value_name = "DURATION", value_parser = parse_secs)]
    scrape_interval: Option<f64>,
    /// Time step of the series, charts and sparklines (default: about 1,500 steps).
    #[arg(long, value_name = "DURATION", value_parser = parse_step)]
    step: Option<f64>,
    /// Refuse a run of more requests per policy than this (expected, then counted).
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_requests)]
    max_requests: u64,
    /// Refuse a policy whose maxReplicas is more than this.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_replicas)]
    max_replicas_simulated: u32,
    /// Refuse traffic longer than this (after --time-scale and --loop).
    #[arg(long, value_name = "DURATION", default_value = "31d", value_parser = parse_secs)]
    max_simulated_time: f64,
    /// Refuse a series (--step) of more rows per policy than this.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_series_rows)]
    max_series_rows: u64,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Write the time series (one row per step and policy) to this CSV file.
    #[arg(long, value_name = "FILE.csv")]
    series: Option<PathBuf>,
    /// Write a self-contained HTML report with SVG charts to this file.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    parse_duration(s)
}

/// A series step: at least a millisecond (rows are bounded by --max-series-rows too).
fn parse_step(s: &str) -> Result<f64, String> {
    let v = parse_duration(s)?;
    if v < 1e-3 {
        return Err("the step must be at least 1ms".into());
    }
    Ok(v)
}

/// Reads a file, or standard input for `-`, at most `limit` bytes, as text.
fn read_text(path: &str, limit: u64) -> Result<String> {
    let bytes = input::read_limited(path, limit)?;
    let name = if path == "-" { STDIN } else { path };
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{name}: not UTF-8 text"))
}

pub fn run(args: &Args) -> Result<ExitCode> {
    if args.print_model {
        print!("{DEFAULT_MODEL_YAML}");
        return Ok(ExitCode::SUCCESS);
    }
    if args.list_models {
        print!("{}", podscale_model::profiles::list());
        return Ok(ExitCode::SUCCESS);
    }
    let stdin_users = args.manifests.iter().filter(|m| *m == "-").count()
        + [&args.trace, &args.model]
            .iter()
            .filter(|p| p.as_deref() == Some(std::path::Path::new("-")))
            .count();
    if stdin_users > 1 {
        anyhow::bail!(
            "standard input can be read once: give `-` for one of MANIFEST, --trace and --model"
        );
    }
    let mut model = match &args.model {
        // A profile name, or a file (bounded, with the profiles named when missing).
        Some(path) if path.as_os_str() != "-" => {
            podscale_model::profiles::resolve(&path.to_string_lossy())?.model
        }
        Some(path) => {
            let path = path.display().to_string();
            let source = read_text(&path, MAX_MODEL_BYTES)?;
            let name = if path == "-" { STDIN } else { &path };
            Model::load(Some(&source), name)?
        }
        None => Model::default_model(),
    };
    if let Some(p) = args.sync_period {
        model.controller.sync_period = podscale_sim::units::Seconds(p);
    }
    if let Some(s) = args.scrape_interval {
        model.pipeline.prometheus.scrape_interval = podscale_sim::units::Seconds(s);
        model.pipeline.metrics_server.resolution = podscale_sim::units::Seconds(s);
    }
    model.check_intervals().map_err(anyhow::Error::msg)?;
    let limits = Limits {
        max_requests: args.max_requests,
        max_replicas: args.max_replicas_simulated,
        max_seconds: args.max_simulated_time,
        max_series_rows: args.max_series_rows,
    };

    let mut policies = Vec::new();
    if args.manifests.is_empty() {
        policies.push(Policy::embedded());
    }
    for m in &args.manifests {
        if m == "-" {
            let text = read_text(m, podscale_sim::policy::MAX_MANIFEST_BYTES)?;
            policies.extend(Policy::from_source(&text, STDIN)?);
        } else {
            policies.extend(Policy::load(m)?);
        }
    }
    if args.compare && policies.len() < 2 {
        anyhow::bail!(
            "--compare needs at least two policies: give several manifests, e.g. \
             `podscale simulate --compare a.yaml b.yaml`"
        );
    }
    podscale_sim::policy::dedup_names(&mut policies);

    let spec = match (&args.trace, &args.pattern) {
        (_, Some(p)) => TrafficSpec::Pattern(p.clone()),
        (Some(t), None) if t.as_os_str() == "-" => {
            // Read once, bounded, then replayed from memory for every policy.
            let bytes = input::read_limited("-", MAX_STDIN_TRACE_BYTES)
                .context("--trace -: write a larger trace to a file (files are streamed)")?;
            TrafficSpec::Trace(TraceSource::Memory {
                name: STDIN.into(),
                bytes: bytes.into(),
            })
        }
        (Some(t), None) => TrafficSpec::Trace(TraceSource::Path(t.clone())),
        (None, None) => TrafficSpec::Trace(TraceSource::Embedded),
    };
    let traffic = Traffic::prepare(
        &spec,
        TrafficOptions {
            time_scale: args.time_scale,
            loops: args.loops,
            arrivals: args.arrivals,
            seed: args.seed,
            duration: args.duration,
            limits,
        },
    )?;

    let cfg = SimConfig {
        model,
        slo: args.slo,
        cost_per_replica_hour: args.cost_per_replica_hour,
        step: args.step,
        initial_replicas: args.initial_replicas,
        seed: args.seed,
        limits,
    };
    if let Some(n) = args.initial_replicas {
        for p in &policies {
            let max = p.hpa.spec.max_replicas;
            if i64::from(n) > i64::from(max) {
                eprintln!(
                    "note: {}: --initial-replicas {n} is above maxReplicas {max}; starting at \
                     {max}, as the HPA would scale to at its first sync",
                    p.name
                );
            }
        }
    }
    // Check every policy against the model before spending time on any run.
    for p in &policies {
        podscale_sim::pipeline::MetricPlan::for_hpa(&p.hpa, &cfg.model, &p.name)?;
    }
    if args.oracle_window < 1.0 {
        anyhow::bail!("--oracle-window must be at least 1s");
    }
    let oracle = compute_oracle(&traffic, &cfg, args.oracle_window)?;
    let oracle_text = format!(
        "{} replica-hours, the fewest ready replicas per {} meeting the goal, attaining {}{}",
        trim_float(oracle.replica_seconds / 3600.0, 2),
        format_duration(oracle.window),
        oracle.attainment.map_or_else(
            || "n/a".to_string(),
            |a| format!("{}%", trim_float(a * 100.0, 2))
        ),
        if oracle.infeasible > 0 {
            format!(
                " ({} of {} requests infeasible)",
                group_thousands(oracle.infeasible),
                group_thousands(oracle.requests)
            )
        } else {
            String::new()
        }
    );

    let runs = run_all(&policies, &traffic, &cfg, &oracle)?;

    let header = Header {
        traffic: traffic.description.clone(),
        model: cfg.model.describe(),
        slo: cfg.slo.describe(),
        oracle: oracle_text,
        seed: cfg.seed,
    };
    if let Some(path) = &args.series {
        let series: Vec<_> = runs.iter().map(|r| &r.series).collect();
        std::fs::write(path, podscale_sim::series::to_csv(&series))
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.report {
        let html = podscale_sim::report::html(&runs, &header)
            .map_err(|e| anyhow::anyhow!("cannot draw the report: {e}"))?;
        std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    match args.output {
        Format::Json => {
            let text = if runs.len() == 1 {
                serde_json::to_string_pretty(&runs[0].summary)?
            } else {
                let all: Vec<_> = runs.iter().map(|r| &r.summary).collect();
                serde_json::to_string_pretty(&all)?
            };
            println!("{text}");
        }
        Format::Text => {
            print!("{}", render::table(&runs, &header));
            print!("\n{}", render::verdicts(&runs));
            if args.series.is_none() && args.report.is_none() {
                print!("{}", render::sparklines(&runs, 64));
            }
            if args.manifests.is_empty() {
                println!(
                    "\nNext: compare policies on the same traffic, with charts:\n  podscale simulate \
                     --compare examples/manifests/inference-hpa-resource.yaml \
                     examples/manifests/inference-hpa-custom.yaml --report report.html"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Computes the traffic's oracle, with a progress bar on stderr.
fn compute_oracle(traffic: &Traffic, cfg: &SimConfig, window: f64) -> Result<Oracle> {
    let done = AtomicU64::new(0);
    let started = Instant::now();
    let mut bar = Bar::new(traffic, "oracle");
    let result = std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            Oracle::compute_with_window(traffic, cfg, window, &mut |f| {
                done.store(f.to_bits(), Ordering::Relaxed);
            })
        });
        while !handle.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            bar.show(
                started.elapsed(),
                &[f64::from_bits(done.load(Ordering::Relaxed))],
            );
        }
        bar.clear();
        handle.join()
    });
    let oracle =
        result.map_err(|_| anyhow::anyhow!("the oracle failed unexpectedly (a bug)"))??;
    let elapsed = started.elapsed().as_secs_f64();
    if elapsed > 1.0 && std::io::stderr().is_terminal() {
        eprintln!("computed the oracle in {elapsed:.1}s");
    }
    Ok(oracle)
}

/// Runs every policy (in parallel, one thread each) with a progress bar on stderr.
fn run_all(
    policies: &[Policy],
    traffic: &Traffic,
    cfg: &SimConfig,
    oracle: &Oracle,
) -> Result<Vec<RunOutput>> {
    let progress: Vec<AtomicU64> = policies.iter().map(|_| AtomicU64::new(0)).collect();
    let started = Instant::now();
    let mut bar = Bar::new(traffic, "simulated");
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = policies
            .iter()
            .zip(&progress)
            .map(|(p, done)| {
                scope.spawn(move || {
                    podscale_sim::run(p, traffic, cfg, oracle.clone(), &mut |f| {
                        done.store(f.to_bits(), Ordering::Relaxed);
                    })
                })
            })
            .collect();
        while !handles
            .iter()
            .all(std::thread::ScopedJoinHandle::is_finished)
        {
            std::thread::sleep(Duration::from_millis(50));
            let fractions: Vec<f64> = progress
                .iter()
                .map(|a| f64::from_bits(a.load(Ordering::Relaxed)))
                .collect();
            bar.show(started.elapsed(), &fractions);
        }
        bar.clear();
        handles
            .into_iter()
            .map(std::thread::ScopedJoinHandle::join)
            .collect::<Vec<_>>()
    });
    let mut out = Vec::new();
    for r in results {
        // A panic is a bug, but one policy's should not take the whole process down
        // with an abort message: report it as an error.
        let r = r.map_err(|_| anyhow::anyhow!("a simulation failed unexpectedly (a bug)"))?;
        out.push(r?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let requests: u64 = out.iter().map(|r| r.summary.requests).sum();
    if elapsed > 1.0 && std::io::stderr().is_terminal() {
        eprintln!(
            "simulated {} requests in {:.1}s ({} requests/s)",
            group_thousands(requests),
            elapsed,
            group_thousands((requests as f64 / elapsed) as u64)
        );
    }
    Ok(out)
}

/// A one-line progress bar on stderr: shown only on a terminal, and only once a run has
/// taken more than a second.
struct Bar {
    enabled: bool,
    shown: bool,
    horizon: f64,
    /// What is being done, e.g. `simulated`.
    what: &'static str,
}

impl Bar {
    fn new(traffic: &Traffic, what: &'static str) -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
            shown: false,
            horizon: traffic.horizon,
            what,
        }
    }

    fn show(&mut self, elapsed: Duration, fractions: &[f64]) {
        if !self.enabled || elapsed < Duration::from_secs(1) || fractions.is_empty() {
            return;
        }
        let f = fractions.iter().sum::<f64>() / fractions.len() as f64;
        let width = 30;
        let filled = ((f * width as f64).round() as usize).min(width);
        let eta = if f > 0.01 {
            format!(
                ", about {} left",
                format_duration((elapsed.as_secs_f64() * (1.0 - f) / f).ceil())
            )
        } else {
            String::new()
        };
        eprint!(
            "\r[{}{}] {:>3}% of {} {}{eta}   ",
            "#".repeat(filled),
            " ".repeat(width - filled),
            (f * 100.0).floor(),
            format_duration(self.horizon),
            self.what
        );
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r{}\r", " ".repeat(90));
            self.shown = false;
        }
    }
}
