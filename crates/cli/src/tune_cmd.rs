//! `podscale tune`: argument handling, the progress line and the output; the search is
//! `podscale-tune`.
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args as ClapArgs, ValueEnum};
use podscale_sim::render::Header;
use podscale_sim::units::{format_duration, group_thousands, parse_duration, trim_float};
use podscale_sim::{
    ArrivalProcess, Limits, Policy, SimConfig, Slo, TraceSource, Traffic, TrafficOptions,
    TrafficSpec,
};
use podscale_tune::{Evaluate as _, Free, Outcome, Score, SearchOptions, SimEvaluator, Space};
use serde::Serialize;

/// Output format of `tune`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The result, the Pareto front and the holdout, for a person.
    Table,
    /// Only the winning manifest, ready for `kubectl apply -f -`.
    Yaml,
    /// Everything as JSON.
    Json,
}

/// `podscale tune` arguments.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The seed HPA manifest (one HorizontalPodAutoscaler): the starting point, and the
    /// values every knob not freed keeps.
    #[arg(value_name = "MANIFEST")]
    manifest: String,
    /// Traffic file: a per-request trace or a rate envelope, as `podscale simulate
    /// --trace`. Default: the embedded Azure LLM 2023 conversation trace (1 hour).
    #[arg(short, long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Use only the first DURATION of the trace (holdout included).
    #[arg(short, long, value_name = "DURATION", value_parser = parse_secs)]
    duration: Option<f64>,
    /// Multiply every time of the traffic (0.5 plays it twice as fast).
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    time_scale: f64,
    /// How arrivals are drawn from a rate envelope: poisson or gamma:CV.
    #[arg(long, value_name = "PROCESS", default_value = "poisson", value_parser = ArrivalProcess::parse)]
    arrivals: ArrivalProcess,
    /// Service-level objective, as `podscale simulate --slo`; the goal is the SLO
    /// attainment the tuned policy must reach on the searched traffic.
    #[arg(long, value_name = "SPEC", default_value = "ttft=2s,e2e=30s,goal=99%", value_parser = Slo::parse)]
    slo: Slo,
    /// Server model: a profile name (`podscale simulate --list-models`) or a model file.
    #[arg(short, long, value_name = "NAME|FILE")]
    model: Option<String>,
    /// Knobs the search may change: any of targets, min, max, windows, policies
    /// (comma-separated), or all.
    #[arg(long, value_name = "KNOBS", default_value = "all", value_parser = Free::parse)]
    free: Free,
    /// Candidates simulated at most, the seed included.
    #[arg(long, value_name = "N", default_value_t = 60)]
    budget: usize,
    /// Simulations run at once.
    #[arg(long, value_name = "N", default_value_t = 2)]
    threads: usize,
    /// Seed of the search and of every simulated random draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the last FRACTION of the trace from the search (0.25: the last quarter) and
    /// judge the winner on it.
    #[arg(long, value_name = "FRACTION")]
    holdout: Option<f64>,
    /// Refuse traffic of more requests than this per simulation.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_requests)]
    max_requests: u64,
    /// Highest maxReplicas tried.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_replicas_simulated: u32,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Write an HTML page with the front and the winner's replay against the seed's.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    parse_duration(s)
}

/// How the winner and the seed did on the holdout.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Holdout {
    /// Where the holdout starts (seconds of the played trace).
    from_seconds: f64,
    seed: Score,
    winner: Option<Score>,
    winner_meets_goal: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonOut<'a> {
    goal: f64,
    evaluated: usize,
    invalid_skipped: usize,
    space_size: u64,
    seed: &'a podscale_tune::Candidate,
    winner: Option<&'a podscale_tune::Candidate>,
    winner_manifest: Option<&'a str>,
    front: Vec<&'a podscale_tune::Candidate>,
    holdout: Option<&'a Holdout>,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let limits = Limits {
        max_requests: args.max_requests,
        max_replicas: args.max_replicas_simulated,
        ..Limits::DEFAULT
    };
    let mut seeds = Policy::load(&args.manifest)?;
    if seeds.len() != 1 {
        anyhow::bail!(
            "{}: holds {} HorizontalPodAutoscalers; tune one at a time",
            args.manifest,
            seeds.len()
        );
    }
    let mut seed = seeds.remove(0);
    seed.name = "seed".into();
    let model = match &args.model {
        Some(m) => podscale_model::profiles::resolve(m)?.model,
        None => podscale_sim::Model::default_model(),
    };
    let source = match &args.trace {
        Some(t) => TraceSource::Path(t.clone()),
        None => TraceSource::Embedded,
    };
    let options = TrafficOptions {
        time_scale: args.time_scale,
        loops: 1,
        arrivals: args.arrivals,
        seed: args.seed,
        duration: args.duration,
        limits,
    };
    let (train, holdout) = match args.holdout {
        Some(f) => {
            let s = podscale_tune::holdout::split(&source, options, f)?;
            (s.train, Some((s.holdout, s.cut)))
        }
        None => (
            Traffic::prepare(&TrafficSpec::Trace(source.clone()), options)?,
            None,
        ),
    };
    let cfg = SimConfig {
        model,
        slo: args.slo,
        cost_per_replica_hour: 1.0,
        step: None,
        initial_replicas: None,
        seed: args.seed,
        limits,
    };
    podscale_sim::pipeline::MetricPlan::for_hpa(&seed.hpa, &cfg.model, &args.manifest)?;
    let space = Space::new(&seed, args.free, limits.max_replicas)?;
    let search_options = SearchOptions {
        budget: args.budget,
        seed: args.seed,
        threads: args.threads,
    };
    search_options.check()?;
    let header = Header {
        traffic: train.description.clone(),
        model: cfg.model.describe(),
        slo: cfg.slo.describe(),
        oracle: String::new(),
        seed: args.seed,
    };
    let train_eval = SimEvaluator::new(train, cfg.clone())?;

    let started = Instant::now();
    let line = Mutex::new(Progress {
        enabled: std::io::stderr().is_terminal(),
        shown: false,
    });
    let progress = |done: usize, budget: usize| {
        let mut p = line
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        p.show(done, budget, started);
    };
    let outcome = podscale_tune::search(&space, &train_eval, search_options, &progress)?;
    line.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();

    let winner = outcome.winner.map(|i| &outcome.candidates[i]);
    let seed_candidate = &outcome.candidates[0];
    let holdout = match (&holdout, winner) {
        (Some((traffic, cut)), w) => {
            let eval = SimEvaluator::new(traffic.clone(), cfg.clone())?;
            let seed_score = eval.evaluate(&seed)?;
            let winner_score = w.map(|w| eval.evaluate(&w.policy)).transpose()?;
            Some(Holdout {
                from_seconds: *cut,
                seed: seed_score,
                winner_meets_goal: winner_score.map(|s| s.meets(eval.goal())),
                winner: winner_score,
            })
        }
        (None, _) => None,
    };
    let holdout_text = holdout.as_ref().map(|h| describe_holdout(h, outcome.goal));

    if let Some(path) = &args.report {
        let mut replays = vec![train_eval.run(&seed)?];
        if let Some(w) = winner {
            let mut p = w.policy.clone();
            p.name = "tuned".into();
            replays.push(train_eval.run(&p)?);
        }
        let html = podscale_tune::report::html(
            &outcome,
            &podscale_tune::report::Page {
                header: &header,
                replays: &replays,
                manifest: winner.map(|w| w.manifest.as_str()),
                holdout: holdout_text.as_deref(),
            },
        )
        .map_err(|e| anyhow::anyhow!("cannot draw the report: {e}"))?;
        std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }

    match args.output {
        Format::Yaml => {
            let Some(w) = winner else {
                anyhow::bail!("{}", no_winner(&outcome));
            };
            println!(
                "# podscale tune: {} replica-hours at {}% SLO attainment on the searched \
                 traffic (seed: {} at {}%)",
                trim_float(w.score.replica_hours, 2),
                trim_float(w.score.attainment() * 100.0, 2),
                trim_float(seed_candidate.score.replica_hours, 2),
                trim_float(seed_candidate.score.attainment() * 100.0, 2),
            );
            if let Some(t) = &holdout_text {
                println!("# holdout: {t}");
            }
            print!("{}", w.manifest);
        }
        Format::Json => {
            let out = JsonOut {
                goal: outcome.goal,
                evaluated: outcome.candidates.len(),
                invalid_skipped: outcome.invalid,
                space_size: outcome.space_size,
                seed: seed_candidate,
                winner,
                winner_manifest: winner.map(|w| w.manifest.as_str()),
                front: outcome
                    .front
                    .iter()
                    .map(|&i| &outcome.candidates[i])
                    .collect(),
                holdout: holdout.as_ref(),
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Table => print!(
            "{}",
            table(&outcome, &header, args, holdout_text.as_deref())
        ),
    }
    if winner.is_none() {
        eprintln!("{}", no_winner(&outcome));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(x: f64) -> String {
    format!("{}%", trim_float(x * 100.0, 2))
}

fn no_winner(outcome: &Outcome) -> String {
    let best = outcome
        .candidates
        .iter()
        .map(|c| c.score.attainment())
        .fold(0.0, f64::max);
    format!(
        "no candidate of {} reached the SLO goal of {} (best: {}); free more knobs \
         (--free), raise --budget or --max-replicas-simulated, or lower the goal (--slo goal=…)",
        outcome.candidates.len(),
        pct(outcome.goal),
        pct(best)
    )
}

fn describe_holdout(h: &Holdout, goal: f64) -> String {
    let part = format!("the trace after {}", format_duration(h.from_seconds));
    match (h.winner, h.winner_meets_goal) {
        (Some(w), Some(meets)) => format!(
            "on {part}, unseen by the search, the tuned policy {} the goal ({} SLO attainment, \
             {} replica-hours); the seed: {}, {} replica-hours",
            if meets { "meets" } else { "MISSES" },
            pct(w.attainment()),
            trim_float(w.replica_hours, 2),
            pct(h.seed.attainment()),
            trim_float(h.seed.replica_hours, 2),
        ),
        _ => format!(
            "on {part}: the seed {} SLO attainment, {} replica-hours (no tuned policy; goal {})",
            pct(h.seed.attainment()),
            trim_float(h.seed.replica_hours, 2),
            pct(goal)
        ),
    }
}

fn table(outcome: &Outcome, header: &Header, args: &Args, holdout: Option<&str>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "podscale tune · {}", header.traffic);
    let _ = writeln!(out, "model: {}", header.model);
    let _ = writeln!(out, "SLO: {} · goal {}", header.slo, pct(outcome.goal));
    let _ = writeln!(
        out,
        "searched {} candidates ({} invalid skipped) of {} points on {} threads · seed {}\n",
        outcome.candidates.len(),
        outcome.invalid,
        group_thousands(outcome.space_size),
        args.threads,
        args.seed
    );
    let seed = &outcome.candidates[0];
    let _ = writeln!(
        out,
        "{:<8} {:>14} {:>15}",
        "", "replica-hours", "SLO attainment"
    );
    let _ = writeln!(
        out,
        "{:<8} {:>14} {:>15}",
        "seed",
        trim_float(seed.score.replica_hours, 2),
        pct(seed.score.attainment())
    );
    if let Some(w) = outcome.winner.map(|i| &outcome.candidates[i]) {
        let change = if seed.score.replica_hours > 0.0 {
            let v = (w.score.replica_hours / seed.score.replica_hours - 1.0) * 100.0;
            let sign = if v > 0.0 { "+" } else { "" };
            format!("  ({sign}{}% replica-hours)", trim_float(v, 1))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:<8} {:>14} {:>15}{change}",
            "tuned",
            trim_float(w.score.replica_hours, 2),
            pct(w.score.attainment())
        );
        let _ = writeln!(out, "tuned: {}", w.changes);
    }
    if let Some(h) = holdout {
        let _ = writeln!(out, "holdout: {h}");
    }
    let _ = writeln!(
        out,
        "\nPareto front (fewer replica-hours against higher SLO attainment):"
    );
    let _ = writeln!(
        out,
        "{:>5} {:>14} {:>15} {:>5}  changes from the seed",
        "#", "replica-hours", "SLO attainment", "goal"
    );
    for &i in &outcome.front {
        let c = &outcome.candidates[i];
        let _ = writeln!(
            out,
            "{:>5} {:>14} {:>15} {:>5}  {}{}",
            i,
            trim_float(c.score.replica_hours, 2),
            pct(c.score.attainment()),
            if c.score.meets(outcome.goal) {
                "met"
            } else {
                "–"
            },
            c.changes,
            if Some(i) == outcome.winner {
                "  ← tuned"
            } else {
                ""
            }
        );
    }
    if outcome.winner.is_some() {
        let _ = writeln!(
            out,
            "\nNext: print the tuned manifest with -o yaml (e.g. `podscale tune {} -o yaml | kubectl apply -f -`)",
            args.manifest
        );
    }
    out
}

/// A one-line progress counter on stderr, on a terminal only.
struct Progress {
    enabled: bool,
    shown: bool,
}

impl Progress {
    fn show(&mut self, done: usize, budget: usize, started: Instant) {
        if !self.enabled {
            return;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let eta = if done > 0 && done < budget {
            format!(
                ", at most about {} left",
                format_duration((elapsed / done as f64 * (budget - done) as f64).ceil())
            )
        } else {
            String::new()
        };
        eprint!(
            "\rsimulated {done} of at most {budget} candidates in {}{eta}   ",
            format_duration(elapsed.round())
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
