//! `podscale`: the command line. Each subcommand lives in its own module; this file
//! only parses arguments and maps errors to exit codes (1: bad input or failed checks,
//! 2: usage errors, as clap reports them).
#![forbid(unsafe_code)]

mod explain;
mod input;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// An autoscaler for AI inference services that means exactly what the Kubernetes
/// HorizontalPodAutoscaler means.
#[derive(Debug, Parser)]
#[command(name = "podscale", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A decision explained for a person.
    Text,
    /// The `explain` JSON of shared/spec/scenario.md.
    Json,
    /// The same data as YAML.
    Yaml,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain an autoscaling decision: why the HPA chose this replica count.
    ///
    /// FILE is a scenario (JSON or YAML; one object or an array): an autoscaling/v2
    /// HorizontalPodAutoscaler, the target's replica count, its pods, what the metrics APIs
    /// returned and the controller's memory of earlier decisions. podscale evaluates it
    /// exactly as kube-controller-manager would and shows each metric's reading against its
    /// target, its proposal, and the rule that shaped the final count.
    ///
    /// Without FILE, an embedded example (an inference server under a burst) is explained.
    ///
    /// Examples:
    ///   podscale explain
    ///   podscale explain scenario.yaml -o json
    #[command(verbatim_doc_comment)]
    Explain {
        /// Scenario file (`-` for standard input). Default: the embedded example.
        file: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Check HPA manifests the way the Kubernetes API server validates them.
    ///
    /// Every problem is printed as `file:line:col: field: message`; the exit code is 1 if
    /// any manifest is invalid. Multi-document YAML is accepted; documents that are not
    /// HorizontalPodAutoscalers are skipped.
    ///
    /// Example:
    ///   podscale validate examples/manifests/*.yaml
    #[command(verbatim_doc_comment)]
    Validate {
        /// Manifest files (YAML or JSON).
        #[arg(required = true)]
        files: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain { file, output } => explain::run(file.as_deref(), output),
        Command::Validate { files } => validate::run(&files),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
