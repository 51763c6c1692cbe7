//! `podscale`: the command line. Each subcommand lives in its own module; this file
//! only parses arguments and maps errors to exit codes (1: bad input or failed checks,
//! 2: usage errors, as clap reports them).
#![forbid(unsafe_code)]

mod adapter_cmd;
mod adapter_convert_cmd;
mod convert_cmd;
mod crd_cmd;
mod demo_cmd;
mod emulate_cmd;
mod explain;
mod get_cmd;
mod input;
mod load_cmd;
mod local_cmd;
mod metrics_cmd;
mod run_cmd;
mod simulate;
mod tune_cmd;
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
    /// Search an HPA's knobs on a trace for the cheapest policy meeting an SLO goal.
    ///
    /// Starting from MANIFEST, every candidate (each metric's target, min/max replicas,
    /// stabilization windows, scale-up/down policies: --free picks which) is validated as
    /// `podscale validate` does and replayed through the simulator on the trace. Prints
    /// the cheapest candidate whose SLO attainment reaches the goal, and the Pareto front
    /// of replica-hours against SLO attainment; -o yaml prints the tuned manifest alone.
    /// --holdout keeps the end of the trace from the search and says how the winner does
    /// there. Deterministic for a --seed, whatever --threads.
    ///
    /// Examples:
    ///   podscale tune examples/manifests/inference-hpa-resource.yaml --budget 40
    ///   podscale tune hpa.yaml --trace mooncake.csv --holdout 0.25 --report tune.html
    ///   podscale tune hpa.yaml --free targets,min --slo ttft=1s,e2e=20s,goal=95% -o yaml
    #[command(verbatim_doc_comment)]
    Tune(tune_cmd::Args),
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
    /// Serve the custom and external metrics APIs from podscale.yaml (an aggregated API
    /// server in place of prometheus-adapter).
    ///
    /// Every metric podscale.yaml lists is served: Pods metrics at
    /// custom.metrics.k8s.io (v1beta1, v1beta2) `/namespaces/NS/pods/*/NAME`, Object
    /// metrics at `/namespaces/NS/RESOURCE/NAME/METRIC`, External metrics at
    /// external.metrics.k8s.io/v1beta1 `/namespaces/NS/NAME`, with the values
    /// `podscale metrics` reads. HTTPS (self-signed without --tls-cert-file), with the
    /// API server's delegated authentication and authorization. Manifests: deploy/adapter/.
    ///
    /// Examples:
    ///   podscale adapter --config podscale.yaml
    ///   podscale adapter --config podscale.yaml --tls-cert-file tls.crt --tls-private-key-file tls.key
    ///   podscale adapter --adapter-config prometheus-adapter.yaml --prometheus-url http://prometheus:9090
    ///   podscale adapter convert prometheus-adapter.yaml --prometheus http://localhost:9090
    #[command(verbatim_doc_comment, args_conflicts_with_subcommands = true)]
    Adapter(adapter_cmd::Args),
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
    /// Run autoscalers on one control loop: in Kubernetes, or on this machine (--local).
    ///
    /// Kubernetes: watches podscale.dev Autoscalers (or, with --shadow, standard HPAs)
    /// and syncs each one every sync period exactly as kube-controller-manager syncs an
    /// HPA, with the metric sources of podscale.yaml; writes /scale, status (with the
    /// history, so a restart keeps stabilization windows) and events.
    ///
    /// --local: scales a local deployment (real processes behind a front proxy that
    /// routes to ready replicas) under an HPA file. The HPA's scaleTargetRef names one
    /// of the `deployments:` of --config podscale.yaml (command template with {port}
    /// and {replica}, environment, readiness and metrics paths, CPU and memory
    /// requests, front and status ports; -d FILE reads one from a file of its own).
    /// Resource metrics come from /proc; Pods and External metrics from each replica's
    /// /metrics or from the config's metrics. The status port serves `podscale get`,
    /// `podscale describe` and Prometheus /metrics. Ctrl-C or SIGTERM stops every
    /// process it started; none outlive it, even if podscale is killed.
    ///
    /// Examples:
    ///   podscale run --kubeconfig ~/.kube/config --config podscale.yaml
    ///   podscale run --shadow        what podscale would do next to your HPAs
    ///   podscale run --shadow --shadow-annotate   ... also as an annotation on each HPA
    ///   podscale run --leader-election --metrics-addr 0.0.0.0:9090
    ///   podscale run --local --config examples/local/podscale.yaml examples/local/hpa.yaml
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// List autoscalers as `kubectl get hpa` lists HPAs: Autoscalers in a cluster
    /// (`podscale get autoscalers -A`), or those of a running `podscale run --local`
    /// (`podscale get --local`).
    ///
    /// Examples:
    ///   podscale get autoscalers -A
    ///   podscale get --local -w
    #[command(verbatim_doc_comment)]
    Get(GetArgs),
    /// Show one autoscaler as `kubectl describe hpa` shows an HPA: metrics against their
    /// targets, conditions, events.
    ///
    /// Examples:
    ///   podscale describe autoscaler web -n prod
    ///   podscale describe --local web-hpa
    #[command(verbatim_doc_comment)]
    Describe(DescribeArgs),
    // (Their help is their Args' doc comments.)
    Emulate(emulate_cmd::Args),
    Load(load_cmd::Args),
    Demo(demo_cmd::Args),
}

/// `podscale run`: the Kubernetes flags, or `--local` and its own.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Run on this machine: replicas are local processes, defined in the config's
    /// `deployments:`.
    #[arg(long)]
    local: bool,
    /// (--local) The HPA manifest (autoscaling/v2); its scaleTargetRef names the deployment.
    #[arg(requires = "local")]
    hpa: Option<String>,
    /// (--local) A local deployment in a file of its own (command, ports, probes,
    /// requests, front and status ports), instead of the config's `deployments:`.
    #[arg(short, long, value_name = "FILE", requires = "local")]
    deployment: Option<String>,
    /// (--local) The HPA to use when the manifest holds several.
    #[arg(long, requires = "local")]
    name: Option<String>,
    /// (--local) Replicas to start with (default: the HPA's minReplicas).
    #[arg(long, requires = "local")]
    replicas: Option<i32>,
    /// Where each metric comes from (podscale.yaml). Without it: in Kubernetes, the
    /// metrics APIs; locally, each replica's metrics path.
    #[arg(short, long, value_name = "FILE")]
    config: Option<String>,
    /// Time between syncs of one autoscaler (kube-controller-manager's default: 15s).
    #[arg(long, default_value = "15s")]
    sync_period: String,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, conflicts_with = "local")]
    kubeconfig: Option<std::path::PathBuf>,
    /// Kubeconfig context.
    #[arg(long, conflicts_with = "local")]
    context: Option<String>,
    /// The namespace to watch, or `all`.
    #[arg(short, long, default_value = "all")]
    namespace: String,
    /// Watch standard autoscaling/v2 HPAs and publish what podscale would do as
    /// metrics; write nothing.
    #[arg(long, conflicts_with = "local")]
    shadow: bool,
    /// With --shadow: also write each HPA's recommendation on it, as the annotation
    /// `podscale.dev/recommendation` (JSON: desiredReplicas, currentReplicas, time,
    /// reason), only when it changes. Needs `patch` on horizontalpodautoscalers; spec,
    /// status and /scale are never written.
    #[arg(long, requires = "shadow")]
    shadow_annotate: bool,
    /// Write only while holding a Lease, so several replicas can run.
    #[arg(long, conflicts_with = "local")]
    leader_election: bool,
    /// The Lease's name.
    #[arg(long, default_value = "podscale")]
    lease_name: String,
    /// The Lease's namespace (default: $POD_NAMESPACE, else the kubeconfig's).
    #[arg(long)]
    lease_namespace: Option<String>,
    /// The admin server (/metrics, /healthz, /readyz); `off` to disable.
    #[arg(long, default_value = "127.0.0.1:9090")]
    metrics_addr: String,
}

fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if args.local {
        let sync_period = local_cmd::parse_sync_period(&args.sync_period)
            .map_err(|e| anyhow::anyhow!("--sync-period: {e}"))?;
        let Some(hpa) = args.hpa else {
            anyhow::bail!(
                "podscale run --local needs an HPA file: podscale run --local --config podscale.yaml HPA.yaml"
            );
        };
        let deployment = args.deployment;
        return local_cmd::run_local(&local_cmd::LocalRunArgs {
            hpa,
            deployment,
            config: args.config,
            name: args.name,
            sync_period,
            replicas: args.replicas,
        });
    }
    run_cmd::run(&run_cmd::Args {
        kubeconfig: args.kubeconfig,
        context: args.context,
        config: args.config,
        namespace: args.namespace,
        shadow: args.shadow,
        shadow_annotate: args.shadow_annotate,
        leader_election: args.leader_election,
        lease_name: args.lease_name,
        lease_namespace: args.lease_namespace,
        metrics_addr: args.metrics_addr,
        sync_period: args.sync_period,
    })
}

/// `podscale get`: a cluster's Autoscalers, or a local runtime's autoscalers.
#[derive(Debug, clap::Args)]
struct GetArgs {
    /// `autoscalers` (or `autoscaler`, `psa`); with --local, may be left out.
    resource: Option<String>,
    /// One autoscaler's name.
    name: Option<String>,
    /// Read a running `podscale run --local` instead of a cluster.
    #[arg(long)]
    local: bool,
    /// (--local) The status API of the local runtime.
    #[arg(long, env = "PODSCALE_STATUS_ADDR", default_value = local_cmd::DEFAULT_STATUS_ADDR)]
    status_addr: String,
    /// (--local) After listing, watch for changes.
    #[arg(short, long, requires = "local")]
    watch: bool,
    /// Every namespace.
    #[arg(short = 'A', long, conflicts_with_all = ["namespace", "local"])]
    all_namespaces: bool,
    /// Output: `wide`, `yaml` or `json` (in a cluster); `json` with --local.
    #[arg(short, long)]
    output: Option<String>,
    #[command(flatten)]
    conn: get_cmd::Conn,
}

/// The local runtime names its autoscalers; a leading resource word is optional.
fn local_name(resource: Option<String>, name: Option<String>) -> Option<String> {
    match (resource, name) {
        (Some(r), n) if matches!(r.as_str(), "autoscalers" | "autoscaler" | "psa" | "hpa") => n,
        (Some(r), None) => Some(r),
        (r, n) => n.or(r),
    }
}

fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    if args.local {
        let output = match args.output.as_deref() {
            None | Some("text") => local_cmd::GetOutput::Text,
            Some("json") => local_cmd::GetOutput::Json,
            Some(o) => anyhow::bail!("-o {o}: with --local, one of text, json"),
        };
        return local_cmd::run_get(&local_cmd::GetArgs {
            name: local_name(args.resource, args.name),
            status_addr: args.status_addr,
            watch: args.watch,
            output,
        });
    }
    let Some(resource) = args.resource else {
        anyhow::bail!(
            "name a resource type: podscale get autoscalers (or --local for a local runtime)"
        );
    };
    let output = match args.output.as_deref() {
        None => None,
        Some("wide") => Some(get_cmd::GetOutput::Wide),
        Some("yaml") => Some(get_cmd::GetOutput::Yaml),
        Some("json") => Some(get_cmd::GetOutput::Json),
        Some(o) => anyhow::bail!("-o {o}: one of wide, yaml, json"),
    };
    get_cmd::get(&get_cmd::GetArgs {
        resource,
        name: args.name,
        all_namespaces: args.all_namespaces,
        output,
        conn: args.conn,
    })
}

/// `podscale describe`.
#[derive(Debug, clap::Args)]
struct DescribeArgs {
    /// `autoscaler` (or `autoscalers`, `psa`); with --local, may be left out.
    resource: String,
    /// The autoscaler's name.
    name: Option<String>,
    /// Read a running `podscale run --local` instead of a cluster.
    #[arg(long)]
    local: bool,
    /// (--local) The status API of the local runtime.
    #[arg(long, env = "PODSCALE_STATUS_ADDR", default_value = local_cmd::DEFAULT_STATUS_ADDR)]
    status_addr: String,
    /// (--local) Print again every 2 seconds.
    #[arg(short, long, requires = "local")]
    watch: bool,
    #[command(flatten)]
    conn: get_cmd::Conn,
}

fn describe(args: DescribeArgs) -> anyhow::Result<ExitCode> {
    if args.local {
        let Some(name) = local_name(Some(args.resource), args.name) else {
            anyhow::bail!("name the autoscaler: podscale describe --local NAME");
        };
        return local_cmd::run_describe(&local_cmd::DescribeArgs {
            name,
            status_addr: args.status_addr,
            watch: args.watch,
        });
    }
    let Some(name) = args.name else {
        anyhow::bail!("name the autoscaler: podscale describe autoscaler NAME");
    };
    get_cmd::describe(&get_cmd::DescribeArgs {
        resource: args.resource,
        name,
        conn: args.conn,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Explain { file, output } => explain::run(file.as_deref(), output),
        Command::Validate { files } => validate::run(&files),
        Command::Simulate(args) => simulate::run(&args),
        Command::Tune(args) => tune_cmd::run(&args),
        Command::Metrics(args) => metrics_cmd::run(&args),
        Command::Adapter(args) => adapter_cmd::run(&args),
        Command::Crd => crd_cmd::run(),
        Command::Convert { file } => convert_cmd::run(&file),
        Command::Run(args) => run(args),
        Command::Get(args) => get(args),
        Command::Describe(args) => describe(args),
        Command::Emulate(args) => emulate_cmd::run(&args),
        Command::Load(args) => load_cmd::run(&args),
        Command::Demo(args) => demo_cmd::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
