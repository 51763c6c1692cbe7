//! `podscale get autoscalers` and `podscale describe autoscaler NAME`, as kubectl
//! prints HPAs.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::ValueEnum;

/// Output of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GetOutput {
    Wide,
    Yaml,
    Json,
}

/// Connection flags.
#[derive(Debug, clap::Args)]
pub struct Conn {
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Namespace (default: the kubeconfig context's).
    #[arg(short, long)]
    pub namespace: Option<String>,
}

/// Arguments of `podscale get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// `autoscalers` (or `autoscaler`, `psa`).
    pub resource: String,
    /// One autoscaler's name.
    pub name: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    #[arg(short, long, value_enum)]
    pub output: Option<GetOutput>,
    #[command(flatten)]
    pub conn: Conn,
}

/// Arguments of `podscale describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// `autoscaler` (or `autoscalers`, `psa`).
    pub resource: String,
    pub name: String,
    #[command(flatten)]
    pub conn: Conn,
}

fn check_resource(r: &str) -> Result<()> {
    match r {
        "autoscalers"
        | "autoscaler"
        | "psa"
        | "autoscalers.podscale.dev"
        | "autoscaler.podscale.dev" => Ok(()),
        other => bail!(
            "the server doesn't have a resource type {other:?} here: podscale gets autoscalers (psa)"
        ),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn get(args: &GetArgs) -> Result<ExitCode> {
    check_resource(&args.resource)?;
    runtime()?.block_on(async {
        let client = podscale_kube::run::connect(
            args.conn.kubeconfig.as_ref(),
            args.conn.context.as_deref(),
        )
        .await?;
        let ns = args
            .conn
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let items = match &args.name {
            Some(name) => vec![podscale_kube::get::get(&client, &ns, name).await?],
            None => {
                podscale_kube::get::list(&client, (!args.all_namespaces).then_some(ns.as_str()))
                    .await?
            }
        };
        let single = args.name.is_some();
        match args.output {
            Some(GetOutput::Json) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&podscale_kube::get::as_document(&items, single))?
                );
            }
            Some(GetOutput::Yaml) => {
                print!(
                    "{}",
                    serde_saphyr::to_string(&podscale_kube::get::as_document(&items, single))?
                );
            }
            Some(GetOutput::Wide) | None => {
                if items.is_empty() {
                    if args.all_namespaces {
                        eprintln!("No resources found");
                    } else {
                        eprintln!("No resources found in {ns} namespace.");
                    }
                } else {
                    print!(
                        "{}",
                        podscale_kube::get::get_table(
                            &items,
                            args.all_namespaces,
                            jiff::Timestamp::now()
                        )
                    );
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn describe(args: &DescribeArgs) -> Result<ExitCode> {
    check_resource(&args.resource)?;
    runtime()?.block_on(async {
        let client = podscale_kube::run::connect(
            args.conn.kubeconfig.as_ref(),
            args.conn.context.as_deref(),
        )
        .await?;
        let ns = args
            .conn
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let a = podscale_kube::get::get(&client, &ns, &args.name).await?;
        // Events are informative: describe still prints the object without them.
        let events = podscale_kube::get::events(&client, &a)
            .await
            .unwrap_or_default();
        print!(
            "{}",
            podscale_kube::get::describe_text(&a, &events, jiff::Timestamp::now())
        );
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
