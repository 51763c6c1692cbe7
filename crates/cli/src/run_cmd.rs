//! `podscale run`: the Kubernetes controller (see `podscale_kube::run`).
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use podscale_core::ControllerSettings;
use podscale_kube::run::{LeaseOptions, LoopConfig, RunOptions};
use podscale_metrics::config::{Config, parse_duration};

/// Arguments of `podscale run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long)]
    pub context: Option<String>,
    /// Where each metric comes from (podscale.yaml); without it, metrics are read from
    /// the Kubernetes metrics APIs only.
    #[arg(long)]
    pub config: Option<String>,
    /// The namespace to watch, or `all`.
    #[arg(short, long, default_value = "all")]
    pub namespace: String,
    /// Watch standard autoscaling/v2 HPAs and publish what podscale would do as
    /// metrics; write nothing.
    #[arg(long)]
    pub shadow: bool,
    /// With --shadow: also write each HPA's recommendation on it, as the annotation
    /// `podscale.dev/recommendation` (only when it changes; needs `patch` on
    /// horizontalpodautoscalers). Spec, status and /scale are never written.
    #[arg(long, requires = "shadow")]
    pub shadow_annotate: bool,
    /// Write only while holding a Lease, so several replicas can run.
    #[arg(long)]
    pub leader_election: bool,
    /// The Lease's name.
    #[arg(long, default_value = "podscale")]
    pub lease_name: String,
    /// The Lease's namespace (default: $POD_NAMESPACE, else the kubeconfig's).
    #[arg(long)]
    pub lease_namespace: Option<String>,
    /// The admin server (/metrics, /healthz, /readyz); `off` to disable.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub metrics_addr: String,
    /// Default time between syncs of one autoscaler (a `podscale:` block may override).
    #[arg(long, default_value = "15s")]
    pub sync_period: String,
}

fn identity() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| format!("podscale-{}", std::process::id()))
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let metrics = match &args.config {
        Some(path) => Config::load(path).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => Config::default(),
    };
    let sync_period =
        parse_duration(&args.sync_period).map_err(|e| anyhow::anyhow!("--sync-period: {e}"))?;
    if sync_period.is_zero() || sync_period > Duration::from_secs(3600) {
        bail!("--sync-period: must be more than 0 and at most 1h");
    }
    let metrics_addr: Option<SocketAddr> = match args.metrics_addr.as_str() {
        "off" | "" => None,
        a => Some(
            a.parse()
                .with_context(|| format!("--metrics-addr {a:?}: expected host:port"))?,
        ),
    };
    podscale_kube::run::init_logging();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client =
            podscale_kube::run::connect(args.kubeconfig.as_ref(), args.context.as_deref()).await?;
        let identity = identity();
        let lease = args.leader_election.then(|| LeaseOptions {
            name: args.lease_name.clone(),
            namespace: args
                .lease_namespace
                .clone()
                .or_else(|| {
                    std::env::var("POD_NAMESPACE")
                        .ok()
                        .filter(|s| !s.is_empty())
                })
                .unwrap_or_else(|| client.default_namespace().to_owned()),
            identity: identity.clone(),
        });
        let opts = RunOptions {
            namespace: (args.namespace != "all").then(|| args.namespace.clone()),
            shadow: args.shadow,
            shadow_annotate: args.shadow_annotate,
            lease,
            metrics_addr,
            settings: ControllerSettings {
                sync_period_seconds: i64::try_from(sync_period.as_secs()).unwrap_or(15),
                ..ControllerSettings::default()
            },
            loop_config: LoopConfig {
                sync_period,
                ..LoopConfig::default()
            },
            metrics,
            identity,
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            podscale_kube::run::wait_for_signal().await;
            eprintln!("podscale: stopping (finishing the syncs in progress)");
            let _ = stop_tx.send(true);
        });
        podscale_kube::run::run(client, opts, stop_rx).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
