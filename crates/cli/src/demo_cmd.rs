//! `podscale demo`: the seed's exercise on one machine (see the `podscale-demo` crate).
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use podscale_demo::{Options, View};
use podscale_metrics::config::parse_duration;

/// Output format of `demo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoOutput {
    Text,
    Json,
}

/// Watch podscale scale an inference service on this machine: no set-up, no GPU.
///
/// Starts emulated OpenAI-compatible inference servers (`podscale emulate`) behind the
/// local runtime's proxy (`podscale run --local`), under an HPA like the seed's: CPU
/// utilization 70 % and `inference_queue_depth` 2 per replica, 1 to 10 replicas, a
/// short scale-down window. Then sends load (`podscale load`) through quiet → ramp →
/// peak → quiet while showing the replicas (desired and ready), each metric against
/// its target, the request rate and the p99 latency; plain lines when the output is
/// not a terminal. Ends with the reaction time (load step → first scale-up decision),
/// the ready time (→ a new replica ready), the peak replicas, the failed requests and
/// the scale-down. Exit code 1 if any request failed. Ctrl-C stops everything.
///
/// Examples:
///   podscale demo
///   podscale demo --duration 60s -o json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// How long the load runs (20s to 1h); the replicas' start and drain come on top.
    #[arg(short, long, default_value = "2m", value_parser = parse_demo_duration)]
    pub duration: Duration,
    /// Time between the autoscaler's syncs.
    #[arg(long, default_value = "1s", value_parser = crate::local_cmd::parse_sync_period)]
    pub sync_period: Duration,
    /// Where to write the HTML report (the charts of `podscale simulate --report`).
    #[arg(long, value_name = "FILE", default_value = "podscale-demo.html")]
    pub report: PathBuf,
    /// Write no HTML report.
    #[arg(long, conflicts_with = "report")]
    pub no_report: bool,
    /// Output of the summary: text, or JSON (the live view then goes to standard error).
    #[arg(short, long, value_enum, default_value_t = DemoOutput::Text)]
    pub output: DemoOutput,
}

fn parse_demo_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < podscale_demo::MIN_DURATION || d > podscale_demo::MAX_DURATION {
        return Err(format!("{s}: must be between 20s and 1h"));
    }
    Ok(d)
}

pub fn run(args: &Args) -> Result<ExitCode> {
    podscale_metrics::http::install_crypto_provider();
    let exe = std::env::current_exe().context("cannot find the podscale binary to run replicas")?;
    let mut view = match args.output {
        DemoOutput::Text => View::new(Box::new(std::io::stdout()), std::io::stdout().is_terminal()),
        DemoOutput::Json => View::new(Box::new(std::io::stderr()), std::io::stderr().is_terminal()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = rt.block_on(podscale_demo::run(
        Options {
            duration: args.duration,
            exe,
            sync_period: args.sync_period,
        },
        &mut view,
    ))?;
    let summary = &outcome.summary;
    let report = if args.no_report {
        None
    } else {
        let html = podscale_demo::report_html(&outcome)
            .map_err(|e| anyhow::anyhow!("cannot draw the report: {e}"))?;
        std::fs::write(&args.report, html)
            .with_context(|| format!("cannot write {}", args.report.display()))?;
        Some(args.report.display().to_string())
    };
    match args.output {
        DemoOutput::Text => {
            print!("{}", summary.render_text());
            if let Some(r) = &report {
                println!("  {:<16}{r}", "report");
            }
        }
        DemoOutput::Json => {
            println!("{}", serde_json::to_string_pretty(summary)?);
            if let Some(r) = &report {
                eprintln!("podscale demo: report written to {r}");
            }
        }
    }
    Ok(if summary.failed_requests == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_is_bounded() {
        assert_eq!(parse_demo_duration("40s"), Ok(Duration::from_secs(40)));
        assert!(parse_demo_duration("5s").is_err());
        assert!(parse_demo_duration("2h").is_err());
        assert!(parse_demo_duration("long").is_err());
    }
}
