//! `podscale adapter`: serve `custom.metrics.k8s.io` and `external.metrics.k8s.io`
//! from `podscale.yaml`'s metric sources, as an aggregated API server (see
//! `podscale_adapter`, and `deploy/adapter/`).
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use podscale_adapter::run::{Options, TlsSource};
use podscale_adapter::server::Limits;
use podscale_metrics::config::{Config, parse_duration};

/// Arguments of `podscale adapter`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where each metric comes from (podscale.yaml): every metric listed there is
    /// served; `-` reads it from standard input.
    #[arg(long, default_value = "podscale.yaml")]
    pub config: String,
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

pub fn run(args: &Args) -> Result<ExitCode> {
    let config = Config::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(podscale_adapter::run::run(options, shutdown()))?;
    Ok(ExitCode::SUCCESS)
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
