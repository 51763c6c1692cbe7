//! `podscale`: the command line. Each subcommand lives in its own module; this file
//! only parses arguments and maps errors to exit codes (1: bad input or failed checks,
//! 2: usage errors, as clap reports them).
#![forbid(unsafe_code)]

mod convert_cmd;
mod crd_cmd;
mod explain;
mod get_cmd;
mod input;
mod metrics_cmd;
mod run_cmd;
mod simulate;
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
    /// For a person (the default).
    Text,
    /// JSON, for programs (`explain`: the output of the scenario spec, field for field).
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
    /// Replay traffic through HPA policies over simulated inference replicas.
    ///
    /// Every sync runs the same decision engine as `explain` on what the metrics pipeline
    /// would report (metrics-server, Prometheus through an adapter) from a model of
    /// continuous-batching LLM servers: batch slots, prefill, decode steps, KV cache,
    /// least-outstanding routing, pod scheduling, model load and readiness, graceful drain.
    /// It prints, per policy: requests completed and timed out, latency and TTFT
    /// percentiles, SLO attainment, replica-hours and cost, scale events and flaps, and
    /// the oracle (replicas a clairvoyant controller with instant pods would have needed).
    ///
    /// Traffic: a per-request trace or a rate envelope (--trace), or a synthetic
    /// --pattern; by default the embedded Azure LLM 2023 conversation trace. The server
    /// model's defaults describe an 8B model on one 24 GB GPU: print them with
    /// --print-model, override fields with --model FILE. Deterministic for a --seed.
    ///
    /// Examples:
    ///   podscale simulate
    ///       the seed CPU + memory HPA on the embedded one-hour trace
    ///   podscale simulate --compare examples/manifests/inference-hpa-resource.yaml \
    ///       examples/manifests/inference-hpa-custom.yaml --report report.html
    ///       two policies on the same traffic, with an HTML report
    ///   podscale simulate hpa.yaml --pattern step:from=2,to=8,at=20m --duration 1h
    ///       a synthetic step in load
    ///   podscale simulate hpa.yaml --trace servegen_language_m_large_rate_10min.csv \
    ///       --arrivals gamma:2 --time-scale 0.01 -o json
    ///       a 14-day rate envelope compressed 100×, bursty arrivals, JSON summary
    ///   podscale simulate hpa.yaml --sync-period 0 --scrape-interval 0 --series out.csv
    ///       an ideal controller, with the time series written to a CSV file
    ///   podscale simulate --print-model > model.yaml
    ///       start a model file from the documented defaults
    #[command(verbatim_doc_comment)]
    Simulate(simulate::Args),
    /// Read every metric of an HPA once, from Prometheus or the pods themselves.
    ///
    /// `podscale.yaml` says where each metric the HPA names comes from (a PromQL query, a
    /// built-in preset for vLLM, SGLang, TGI, Triton or DCGM, or a direct scrape of each
    /// pod's /metrics). Prints each metric's samples (per pod, object or external, with
    /// timestamps) or its error; exit code 1 if any metric failed. An empty or NaN result
    /// is no data, never 0, unless the metric says `emptyAs`.
    ///
    /// Examples:
    ///   podscale metrics --config podscale.yaml examples/manifests/inference-hpa-custom.yaml
    ///   podscale metrics hpa.yaml --pods vllm-0=10.0.0.5:8000,vllm-1=10.0.0.6:8000 -o json
    ///   podscale metrics hpa.yaml --scenario now.yaml && podscale explain now.yaml
    #[command(verbatim_doc_comment)]
    Metrics(metrics_cmd::Args),
    /// Print the Autoscaler CustomResourceDefinition (podscale.dev/v1alpha1).
    ///
    /// Example:
    ///   podscale crd | kubectl apply -f -
    #[command(verbatim_doc_comment)]
    Crd,
    /// Turn autoscaling/v2 HorizontalPodAutoscaler manifests into podscale Autoscalers.
    ///
    /// Only apiVersion and kind change; name, namespace, labels, annotations and the spec
    /// are kept, what the API server set is dropped. Other kinds are skipped (noted on
    /// standard error).
    ///
    /// Example:
    ///   podscale convert hpa.yaml | kubectl apply -f -
    #[command(verbatim_doc_comment)]
    Convert {
        /// Manifest file (`-` for standard input).
        file: String,
    },
    /// Run the Kubernetes controller: scale workloads as Autoscalers say.
    ///
    /// Watches podscale.dev Autoscalers and syncs each one every sync period, exactly
    /// as kube-controller-manager syncs an HPA, with the metric sources of
    /// podscale.yaml; writes /scale, status (with history) and events.
    ///
    /// Examples:
    ///   podscale run --kubeconfig ~/.kube/config --config podscale.yaml
    ///   podscale run --shadow        what podscale would do next to your HPAs
    ///   podscale run --leader-election --metrics-addr 0.0.0.0:9090
    #[command(verbatim_doc_comment)]
    Run(run_cmd::Args),
    /// List Autoscalers as `kubectl get hpa` lists HPAs.
    ///
    /// Example:
    ///   podscale get autoscalers -A
    #[command(verbatim_doc_comment)]
    Get(get_cmd::GetArgs),
    /// Show an Autoscaler as `kubectl describe hpa` shows an HPA.
    ///
    /// Example:
    ///   podscale describe autoscaler web -n prod
    #[command(verbatim_doc_comment)]
    Describe(get_cmd::DescribeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain { file, output } => explain::run(file.as_deref(), output),
        Command::Validate { files } => validate::run(&files),
        Command::Simulate(args) => simulate::run(&args),
        Command::Metrics(args) => metrics_cmd::run(&args),
        Command::Crd => crd_cmd::run(),
        Command::Convert { file } => convert_cmd::run(&file),
        Command::Run(args) => run_cmd::run(&args),
        Command::Get(args) => get_cmd::get(&args),
        Command::Describe(args) => get_cmd::describe(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
