//! `podscale load`: an open-loop load generator that measures latency from the intended
//! send time.
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use podscale_load::{Config, Mode, Progress, RequestShape};
use podscale_model::units::{format_duration, parse_duration};
use podscale_sim::traffic::{PATTERN_HELP, Pattern};

/// Output format of `load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadOutput {
    Text,
    Json,
}

/// Send requests to an OpenAI-compatible endpoint (or any HTTP URL) and report latency.
///
/// Open loop by default: requests leave on schedule (--rate or --pattern) whether or not
/// earlier ones have returned, and latency counts from when each was due, so a stalled
/// server shows its stall (no coordinated omission). --concurrency N runs a closed loop
/// instead (N workers, each waiting for its answer: wrk's model), for comparison.
/// URLs ending in /v1/completions or /v1/chat/completions get an OpenAI request
/// (--prompt-tokens, --max-tokens, --stream); other URLs a plain GET.
///
/// Examples:
///   podscale load http://127.0.0.1:8000/v1/completions --rate 100 --duration 30s
///   podscale load http://127.0.0.1:8000/v1/chat/completions --stream \
///       --pattern step:from=10,to=100,at=30s --duration 60s -o json
///   podscale load http://127.0.0.1:8000/health --concurrency 64 --duration 10s
///   podscale load http://127.0.0.1:8000/v1/completions --http2 --rate 5000
///   podscale load https://inference.example.com/v1/completions --rate 10
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The URL: http:// or https:// (verified against the system's trust store, or
    /// --cacert).
    pub url: String,
    /// Requests per second (open loop).
    #[arg(long, conflicts_with_all = ["pattern", "concurrency"])]
    pub rate: Option<f64>,
    /// A rate that changes over the run (the simulator's patterns; R in requests/s):
    /// constant:rate=R | step:from=R,to=R[,at=T] | ramp:from=R,to=R |
    /// spike:base=R,peak=R[,at=T][,for=T] | sine:mean=R[,amplitude=R][,period=T].
    #[arg(long, conflicts_with = "concurrency")]
    pub pattern: Option<String>,
    /// Replay a traffic file (the simulator's formats: a per-request trace
    /// `timestamp_seconds,input_tokens,output_tokens` or a rate envelope
    /// `timestamp_seconds,requests_per_second`): token counts become the prompt length
    /// and `max_tokens`.
    #[arg(short, long, value_name = "FILE", conflicts_with_all = ["rate", "pattern", "concurrency"])]
    pub trace: Option<std::path::PathBuf>,
    /// Multiplies the trace's times (0.5 plays it twice as fast).
    #[arg(long, default_value_t = 1.0, requires = "trace")]
    pub time_scale: f64,
    /// Closed loop: this many workers, each sending when its last request returned.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// How long to send (default 10s; a trace's own length).
    #[arg(short, long, value_parser = parse_secs)]
    pub duration: Option<f64>,
    /// Open loop: most requests in flight; one due beyond it is not sent and counts as
    /// an error (max_in_flight).
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,
    /// Most connections open at once (default 1000; 4 with --http2). HTTP/1.1
    /// (keep-alive) carries one request at a time on each: a request due when all are
    /// busy waits for one, its latency counting from when it was due. HTTP/2 carries
    /// many at once on each (up to the server's stream limit).
    #[arg(long)]
    pub connections: Option<usize>,
    /// HTTP/2 instead of HTTP/1.1: requests are multiplexed as streams over
    /// --connections connections. Over http:// with prior knowledge (h2c), over
    /// https:// by ALPN (a server that does not offer h2 gives `no_h2` errors).
    #[arg(long)]
    pub http2: bool,
    /// https:// only: trust the CA certificates in this PEM file instead of the
    /// system's (a private CA, a self-signed server).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Per-request timeout, from its intended send time.
    #[arg(long, value_parser = parse_secs, default_value = "60s")]
    pub timeout: f64,
    /// Prompt length in tokens (about 4 characters each).
    #[arg(long, default_value_t = 64)]
    pub prompt_tokens: u32,
    /// `max_tokens` of each request.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// Stream the answers (SSE) and report time to first token.
    #[arg(long)]
    pub stream: bool,
    /// The `model` field of each request.
    #[arg(long)]
    pub model: Option<String>,
    /// Output format of the final report.
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: LoadOutput,
    /// Async worker threads (default: the CPUs available).
    #[arg(long)]
    pub workers: Option<usize>,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    parse_duration(s)
}

/// Highest --rate (the simulator's pattern limit).
const MAX_RATE: f64 = 1_000_000.0;

pub fn run(args: &Args) -> Result<ExitCode> {
    let mut duration = args.duration.unwrap_or(10.0);
    let mode = match (&args.rate, &args.pattern, args.concurrency) {
        _ if args.trace.is_some() => {
            let path = args.trace.clone().unwrap_or_default();
            let options = podscale_sim::TrafficOptions {
                time_scale: args.time_scale,
                duration: args.duration,
                ..podscale_sim::TrafficOptions::default()
            };
            let traffic = podscale_sim::Traffic::prepare(
                &podscale_sim::TrafficSpec::Trace(podscale_sim::TraceSource::Path(path)),
                options,
            )?;
            if args.duration.is_none() {
                duration = traffic.horizon;
            }
            Mode::Trace {
                traffic: Box::new(traffic),
            }
        }
        (_, _, Some(n)) => Mode::Closed { concurrency: n },
        (Some(r), _, _) => {
            if !(r.is_finite() && *r > 0.0 && *r <= MAX_RATE) {
                anyhow::bail!(
                    "--rate must be more than 0 and at most {MAX_RATE} requests per second"
                );
            }
            Mode::Open {
                pattern: Pattern::Constant { rate: *r },
            }
        }
        (None, Some(spec), None) => {
            let (pattern, _) = Pattern::parse(spec, Some(duration))
                .map_err(|e| anyhow::anyhow!("--pattern: {e}\n  patterns: {PATTERN_HELP}"))?;
            Mode::Open { pattern }
        }
        (None, None, None) => anyhow::bail!("give --rate, --pattern, --trace or --concurrency"),
    };
    let mut cfg = Config::new(&args.url, mode, duration)?;
    cfg.max_in_flight = args.max_in_flight;
    cfg.http2 = args.http2;
    cfg.ca_file = args.cacert.clone();
    cfg.connections = args
        .connections
        .unwrap_or(if args.http2 { 4 } else { 1000 });
    cfg.timeout = Duration::from_secs_f64(args.timeout.clamp(0.001, 86_400.0));
    cfg.shape = RequestShape {
        prompt_tokens: args.prompt_tokens,
        max_tokens: args.max_tokens.max(1),
        stream: args.stream,
        model: args.model.clone(),
    };
    if u64::from(args.prompt_tokens) > 250_000 {
        anyhow::bail!("--prompt-tokens is at most 250000");
    }
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .clamp(1, 256);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let live = std::io::stderr().is_terminal();
    let mut show = |p: Progress| {
        if live {
            let ms = |x: Option<f64>| x.map_or("-".into(), format_duration);
            // The recent window first: what the server does now; the run's so far after.
            eprint!(
                "\r\x1b[K{:>5}  sent {}  done {}  in flight {}  errors {}  last {}s p50 {} p99 {}  all p50 {} p99 {}",
                format_duration(p.elapsed.round()),
                p.sent,
                p.completed,
                p.in_flight,
                p.errors,
                podscale_load::RECENT_WINDOW,
                ms(p.recent_p50),
                ms(p.recent_p99),
                ms(p.p50),
                ms(p.p99)
            );
        }
    };
    let report = rt.block_on(podscale_load::run(cfg, &mut show))?;
    if live {
        eprint!("\r\x1b[K");
    }
    match args.output {
        LoadOutput::Text => print!("{}", podscale_load::render_text(&report)),
        LoadOutput::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(ExitCode::SUCCESS)
}
