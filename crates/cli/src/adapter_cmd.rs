//! `podscale adapter`: serve `custom.metrics.k8s.io` and `external.metrics.k8s.io`
//! from `podscale.yaml`'s metric sources, as an aggregated API server (see
//! `podscale_adapter`, and `deploy/adapter/`).
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use podscale_adapter::run::{Options, TlsSource};
use podscale_adapter::server::Limits;
use podscale_metrics::config::{Config, PrometheusConfig, parse_duration};
use podscale_metrics::prom_adapter;

use crate::adapter_convert_cmd;

/// Arguments of `podscale adapter`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<AdapterCommand>,
    /// Where each metric comes from (podscale.yaml): every metric listed there is
    /// served; `-` reads it from standard input [default: podscale.yaml, unless
    /// --adapter-config is given].
    #[arg(long)]
    pub config: Option<String>,
    /// A prometheus-adapter config (its `--config` file, or the ConfigMap holding it):
    /// its rules are served too, their series discovered on the Prometheus of --config
    /// or --prometheus-url at start-up. Metrics that podscale.yaml also lists keep
    /// podscale.yaml's definition. `podscale adapter convert FILE` shows the result.
    #[arg(long, value_name = "FILE")]
    pub adapter_config: Option<PathBuf>,
    /// The Prometheus server (as prometheus-adapter's --prometheus-url); overrides
    /// `prometheus.url` of --config.
    #[arg(long, value_name = "URL")]
    pub prometheus_url: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long)]
    pub context: Option<String>,
    /// The HTTPS port.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The serving certificate (PEM); without it, a self-signed one is generated.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The serving certificate's private key (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Extra names (DNS or IP) of the self-signed certificate, besides localhost and
    /// 127.0.0.1; repeatable.
    #[arg(
        long = "tls-san",
        value_name = "NAME",
        conflicts_with = "tls_cert_file"
    )]
    pub tls_sans: Vec<String>,
    /// How long one request may take, sources included (then 504).
    #[arg(long, default_value = "30s")]
    pub request_timeout: String,
    /// Requests answered at once; more are refused with 429.
    #[arg(long, default_value_t = 400)]
    pub max_requests_inflight: usize,
}

/// Subcommands of `podscale adapter`.
#[derive(Debug, clap::Subcommand)]
pub enum AdapterCommand {
    /// Print the podscale.yaml equivalent to a prometheus-adapter config.
    ///
    /// Each rule becomes one metric per series name it serves; what cannot be
    /// translated is listed on standard error with its file:line:col (and as comments
    /// at the top of the output). With --prometheus, rules matching a family of series
    /// (the Helm chart's defaults) are expanded by listing the series there.
    ///
    /// Examples:
    ///   podscale adapter convert adapter-config.yaml > podscale.yaml
    ///   kubectl get cm -n monitoring prometheus-adapter -o yaml > cm.yaml && podscale adapter convert cm.yaml --prometheus http://localhost:9090
    #[command(verbatim_doc_comment)]
    Convert {
        /// The prometheus-adapter config, or a ConfigMap with `data."config.yaml"`.
        file: PathBuf,
        /// Discover the series of broad rules on this Prometheus.
        #[arg(long, value_name = "URL")]
        prometheus: Option<String>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: adapter_convert_cmd::Format,
    },
}

pub fn run(args: &Args) -> Result<ExitCode> {
    if let Some(AdapterCommand::Convert {
        file,
        prometheus,
        output,
    }) = &args.command
    {
        adapter_convert_cmd::run(file, prometheus.as_deref(), *output)?;
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let config = runtime.block_on(load_config(args))?;
    let request_timeout = parse_duration(&args.request_timeout)
        .map_err(|e| anyhow::anyhow!("--request-timeout: {e}"))?;
    if request_timeout > std::time::Duration::from_secs(600) {
        bail!("--request-timeout: must be at most 10m");
    }
    if !(1..=100_000).contains(&args.max_requests_inflight) {
        bail!("--max-requests-inflight: must be between 1 and 100000");
    }
    let tls = match (&args.tls_cert_file, &args.tls_private_key_file) {
        (Some(cert), Some(key)) => TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => {
            let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
            names.extend(args.tls_sans.iter().cloned());
            TlsSource::SelfSigned { names }
        }
    };
    let options = Options {
        config,
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        bind: SocketAddr::new(args.bind_address, args.secure_port),
        tls,
        limits: Limits {
            max_in_flight: args.max_requests_inflight,
            request_timeout,
            ..Limits::default()
        },
    };
    podscale_kube::run::init_logging();
    runtime.block_on(podscale_adapter::run::run(options, shutdown()))?;
    Ok(ExitCode::SUCCESS)
}

/// podscale.yaml, with `--prometheus-url` applied and the rules of `--adapter-config`
/// added (podscale.yaml's own definition of a metric wins).
async fn load_config(args: &Args) -> Result<Config> {
    let mut config = match (&args.config, &args.adapter_config) {
        (Some(path), _) => Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        (None, None) => Config::load("podscale.yaml").map_err(|e| anyhow::anyhow!("{e}"))?,
        (None, Some(_)) => Config::default(),
    };
    if let Some(url) = &args.prometheus_url {
        match &mut config.prometheus {
            Some(p) => p.url.clone_from(url),
            None => config.prometheus = Some(PrometheusConfig::new(url)),
        }
    }
    let Some(file) = &args.adapter_config else {
        return Ok(config);
    };
    let Some(prometheus) = &config.prometheus else {
        bail!(
            "--adapter-config: the rules are read from Prometheus: give --prometheus-url URL or prometheus.url in --config"
        );
    };
    podscale_metrics::http::install_crypto_provider();
    let client = podscale_metrics::prometheus::PrometheusClient::new(prometheus)
        .context("--prometheus-url: cannot set up the client")?;
    let conversion = prom_adapter::convert_file(file, Some(&client))
        .await
        .with_context(|| format!("--adapter-config {}", file.display()))?;
    // Logging is not set up yet: what was not translated goes to standard error, as
    // `podscale adapter convert` prints it.
    for note in &conversion.notes {
        eprintln!("{note}");
    }
    let added = merge(&mut config, conversion.config);
    eprintln!(
        "{}: serving {added} metric(s) from its rules",
        file.display()
    );
    if config.metrics.is_empty() {
        bail!("--adapter-config {}: no metric to serve", file.display());
    }
    Ok(config)
}

/// Adds `converted`'s metrics that `config` does not define (same name and type), and
/// its resource queries when `config` has none; returns how many metrics were added.
fn merge(config: &mut Config, converted: Config) -> usize {
    let mut added = 0;
    for metric in converted.metrics {
        let defined = config
            .metrics
            .iter()
            .any(|m| m.name == metric.name && m.kind == metric.kind);
        if !defined {
            config.metrics.push(metric);
            added += 1;
        }
    }
    if config.resources == Default::default() {
        config.resources = converted.resources;
    }
    added
}

/// Ctrl-C or SIGTERM (what the kubelet sends).
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
