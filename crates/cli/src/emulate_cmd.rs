//! `podscale emulate`: an OpenAI-compatible inference server without a GPU, timed by the
//! simulator's replica model.
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use podscale_model::Model;
use podscale_model::model::DEFAULT_MODEL_YAML;
use podscale_model::units::parse_duration;

/// Largest model file read.
const MAX_MODEL_BYTES: u64 = 1 << 20;

/// Serve an OpenAI-compatible API timed like the simulator's inference server.
///
/// `/v1/completions` and `/v1/chat/completions` (JSON, or server-sent events with
/// `stream: true`), `/v1/models`, `/health` and `/metrics` with vLLM's metric names.
/// Requests are batched, prefilled and decoded on the same replica model as
/// `podscale simulate` (batch slots, KV cache, decode steps slowing with the batch, a
/// waiting queue), in wall-clock time. Output is filler text; `max_tokens` and the
/// prompt's length (about 4 characters a token, or a `usage.prompt_tokens` hint) set
/// the timing. SIGTERM drains: new requests get 503, in-flight ones finish.
///
/// Examples:
///   podscale emulate --port 8000
///   podscale emulate --model model.yaml --startup-delay 30s
///   podscale emulate --fault stall=1s@5s --fault error-rate=0.01
///   podscale emulate --instant --cpu-scale 0      (HTTP-path benchmark)
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// A model profile (`podscale simulate --list-models`), a model file (merged over the
    /// defaults, as `podscale simulate --model`), or the name to serve under (the default
    /// model's timing).
    #[arg(long, value_name = "NAME|FILE")]
    pub model: Option<String>,
    /// The model name `/v1/models` lists (default: the --model name, or
    /// podscale-emulator).
    #[arg(long)]
    pub served_model_name: Option<String>,
    /// Print the default model file, with a comment on every field, and exit.
    #[arg(long)]
    pub print_model: bool,
    /// Model load time: `/health` is 503 and requests are refused until then.
    #[arg(long, value_parser = parse_secs, default_value = "0s")]
    pub startup_delay: f64,
    /// Inject a fault: stall=LENGTH@START (answer nothing), error-rate=P (HTTP 500),
    /// slow-start[=WINDOW] (a third of normal speed at first). Repeatable.
    #[arg(long, value_name = "SPEC")]
    pub fault: Vec<String>,
    /// Answer at once, without the model's timing (a benchmark of the HTTP path).
    #[arg(long)]
    pub instant: bool,
    /// Multiplies the CPU the model's `usage.cpu` says the work costs (0: burn none).
    #[arg(long, default_value_t = 1.0)]
    pub cpu_scale: f64,
    /// Threads that burn that CPU: the most cores it can take.
    #[arg(long, default_value_t = 2)]
    pub cpu_threads: usize,
    /// How long a drain (SIGTERM) waits for in-flight requests (default: the model's
    /// lifecycle.terminationGracePeriod).
    #[arg(long, value_parser = parse_secs)]
    pub drain_timeout: Option<f64>,
    /// Requests held at once (queued and running); more get 503.
    #[arg(long, default_value_t = 100_000)]
    pub max_outstanding: usize,
    /// Connections served at once.
    #[arg(long, default_value_t = 20_000)]
    pub max_connections: usize,
    /// Async worker threads (default: the CPUs available).
    #[arg(long)]
    pub workers: Option<usize>,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    parse_duration(s)
}

/// The model and the name to serve it under.
fn load_model(arg: Option<&str>) -> Result<(Model, Option<String>)> {
    let Some(arg) = arg else {
        return Ok((Model::default_model(), None));
    };
    if let Some(p) = podscale_model::profiles::find(arg) {
        return Ok((p.model()?, Some(p.name.to_owned())));
    }
    let path = Path::new(arg);
    let looks_like_file = path.is_file()
        || path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
    if !looks_like_file {
        return Ok((Model::default_model(), Some(arg.to_owned())));
    }
    let bytes = crate::input::read_limited(arg, MAX_MODEL_BYTES)?;
    let source = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{arg}: not UTF-8 text"))?;
    let model = Model::load(Some(&source), arg).map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    Ok((model, name))
}

pub fn run(args: &Args) -> Result<ExitCode> {
    if args.print_model {
        print!("{DEFAULT_MODEL_YAML}");
        return Ok(ExitCode::SUCCESS);
    }
    if !(args.cpu_scale.is_finite() && args.cpu_scale >= 0.0) {
        anyhow::bail!("--cpu-scale must be 0 or more");
    }
    if args.cpu_threads > 256 {
        anyhow::bail!("--cpu-threads is at most 256");
    }
    let (model, name) = load_model(args.model.as_deref())?;
    let mut faults = podscale_emulate::Faults::default();
    for f in &args.fault {
        faults.add(f)?;
    }
    let drain_timeout = args
        .drain_timeout
        .unwrap_or(model.lifecycle.termination_grace_period.0);
    let describe = model.describe();
    let mut cfg = podscale_emulate::Config::new(SocketAddr::new(args.host, args.port), model);
    if let Some(n) = args.served_model_name.clone().or(name) {
        cfg.served_model_name = n;
    }
    cfg.startup_delay = Duration::from_secs_f64(args.startup_delay);
    cfg.faults = faults;
    cfg.instant = args.instant;
    cfg.cpu_scale = args.cpu_scale;
    cfg.cpu_threads = args.cpu_threads;
    cfg.max_outstanding = args.max_outstanding.max(1);
    cfg.max_connections = args.max_connections.max(1);
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, 256);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let name = cfg.served_model_name.clone();
        let emu = podscale_emulate::Emulator::start(cfg).await?;
        eprintln!(
            "podscale emulate: serving {name} on http://{} ({})",
            emu.local_addr(),
            if args.instant {
                "instant answers".to_owned()
            } else {
                describe
            }
        );
        wait_for_signal().await;
        eprintln!(
            "podscale emulate: draining {} request(s) in flight (up to {drain_timeout}s)",
            emu.in_flight()
        );
        let report = emu.drain(Duration::from_secs_f64(drain_timeout)).await;
        if report.unfinished > 0 {
            eprintln!(
                "podscale emulate: stopped with {} request(s) unfinished",
                report.unfinished
            );
            return anyhow::Ok(ExitCode::from(1));
        }
        eprintln!("podscale emulate: drained, stopping");
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C or SIGTERM (what Kubernetes sends a pod that is scaled down).
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        // Without handlers the process would die on the signal anyway; serve on.
        _ => std::future::pending().await,
    }
}
