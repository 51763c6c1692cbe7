//! `podscale run --local`, `podscale get` and `podscale describe`: the autoscaler on
//! one machine (see the `podscale-local` crate), and its status as kubectl shows HPAs.
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use podscale_local::run::{self, RunOptions};
use podscale_local::status::{StatusClient, StatusDoc};
use podscale_local::{LocalDeployment, render};
use podscale_metrics::config::{Config, parse_duration};

/// Where `get` and `describe` find a running `podscale run --local` by default.
pub const DEFAULT_STATUS_ADDR: &str = "127.0.0.1:9412";

/// `podscale run --local`: run a local deployment under an HPA.
#[derive(Debug, clap::Args)]
pub struct LocalRunArgs {
    /// The HPA manifest (autoscaling/v2); its scaleTargetRef names the deployment.
    pub hpa: String,
    /// A local deployment in a file of its own, instead of the config's `deployments:`
    /// (it wins over a config deployment of the same name).
    #[arg(short, long, value_name = "FILE")]
    pub deployment: Option<String>,
    /// podscale.yaml: the local deployment the HPA targets (`deployments:`) and where
    /// its Pods/Object/External metrics come from (`metrics:`; without one, Pods and
    /// External metrics are scraped from each replica's metricsPath).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<String>,
    /// The HPA to use when the manifest holds several.
    #[arg(long)]
    pub name: Option<String>,
    /// Time between syncs (kube-controller-manager's default: 15s).
    #[arg(long, default_value = "15s", value_parser = parse_sync_period)]
    pub sync_period: Duration,
    /// Replicas to start with (default: the HPA's minReplicas).
    #[arg(long)]
    pub replicas: Option<i32>,
}

pub fn parse_sync_period(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err(format!("{s}: must be between 100ms and 1h"));
    }
    Ok(d)
}

/// `podscale get`: the local autoscalers, as `kubectl get hpa`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// Only this autoscaler.
    pub name: Option<String>,
    /// The status API of a running `podscale run --local`.
    #[arg(long, env = "PODSCALE_STATUS_ADDR", default_value = DEFAULT_STATUS_ADDR)]
    pub status_addr: String,
    /// After listing, watch for changes (a new line when a row changes).
    #[arg(short, long)]
    pub watch: bool,
    /// Print the status API's answer as JSON instead.
    #[arg(short, long, value_enum, default_value_t = GetOutput::Text)]
    pub output: GetOutput,
}

/// `get`'s output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GetOutput {
    Text,
    Json,
}

/// `podscale describe NAME`: one local autoscaler in detail, as `kubectl describe hpa`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    pub name: String,
    /// The status API of a running `podscale run --local`.
    #[arg(long, env = "PODSCALE_STATUS_ADDR", default_value = DEFAULT_STATUS_ADDR)]
    pub status_addr: String,
    /// Print again every 2 seconds.
    #[arg(short, long)]
    pub watch: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs until Ctrl-C or SIGTERM, then stops every replica it started.
pub fn run_local(args: &LocalRunArgs) -> Result<ExitCode> {
    podscale_metrics::http::install_crypto_provider();
    let text =
        std::fs::read_to_string(&args.hpa).with_context(|| format!("cannot read {}", args.hpa))?;
    let hpa = run::parse_hpa_named(&text, &args.hpa, args.name.as_deref())?;
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let spec = match &args.deployment {
        Some(path) => LocalDeployment::load(path)?,
        None => pick_deployment(&config, args.config.is_some(), &hpa)?,
    };
    let options = RunOptions {
        loop_config: run::LoopConfig {
            sync_period: args.sync_period,
            ..Default::default()
        },
        initial_replicas: args.replicas,
        ..Default::default()
    };
    let rt = runtime()?;
    rt.block_on(async {
        let running = run::start(spec, hpa, config, options)
            .await
            ?;
        eprintln!(
            "podscale: front proxy on http://{}, status on http://{} (podscale get / podscale describe); Ctrl-C stops everything",
            running.front_addr(),
            running.status_addr()
        );
        run::until_signal(running).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The deployment of `config` the HPA's `scaleTargetRef` names.
fn pick_deployment(
    config: &Config,
    have_config: bool,
    hpa: &podscale_core::api::HorizontalPodAutoscaler,
) -> Result<LocalDeployment> {
    let target = &hpa.spec.scale_target_ref;
    if !have_config {
        bail!(
            "podscale run --local needs the local deployment {:?} (the HPA's scaleTargetRef): \
             --config podscale.yaml with a `deployments:` entry named {:?}, or -d DEPLOYMENT.yaml",
            target.name,
            target.name
        );
    }
    if let Some(d) = config.deployment(&target.name) {
        return Ok(d.clone());
    }
    let defined: Vec<String> = config
        .deployments
        .iter()
        .map(|d| format!("{:?}", d.name))
        .collect();
    if defined.is_empty() {
        bail!(
            "{} has no `deployments:`; the HPA's scaleTargetRef names {} {:?}: define it there (command, ports, front port, …)",
            config.file_name(),
            target.kind,
            target.name
        );
    }
    bail!(
        "{} defines no deployment named {:?} (the HPA's scaleTargetRef.name); it defines {}",
        config.file_name(),
        target.name,
        defined.join(", ")
    )
}

async fn fetch(addr: &str) -> Result<StatusDoc> {
    Ok(StatusClient::new(addr).status().await?)
}

fn only(mut doc: StatusDoc, name: Option<&str>) -> Result<StatusDoc> {
    if let Some(n) = name {
        doc.autoscalers
            .retain(|a| a.hpa.metadata.name.as_deref() == Some(n));
        if doc.autoscalers.is_empty() {
            bail!("no autoscaler named {n:?}");
        }
    }
    Ok(doc)
}

/// `podscale get [NAME] [-w]`.
pub fn run_get(args: &GetArgs) -> Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        let doc = only(fetch(&args.status_addr).await?, args.name.as_deref())?;
        if args.output == GetOutput::Json {
            println!("{}", serde_json::to_string_pretty(&doc)?);
            if !args.watch {
                return Ok(ExitCode::SUCCESS);
            }
        } else {
            print!("{}", render::get(&doc, true));
        }
        if !args.watch {
            return Ok(ExitCode::SUCCESS);
        }
        // As `kubectl get -w`: a line whenever a row changes (AGE aside).
        let key = |doc: &StatusDoc| -> Vec<String> {
            render::get(doc, false)
                .lines()
                .map(|l| l.rsplit_once(' ').map_or(l, |(a, _)| a).to_owned())
                .collect()
        };
        let mut last = key(&doc);
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let doc = only(fetch(&args.status_addr).await?, args.name.as_deref())?;
            let now = key(&doc);
            if now != last {
                if args.output == GetOutput::Json {
                    println!("{}", serde_json::to_string(&doc)?);
                } else {
                    print!("{}", render::get(&doc, false));
                }
                last = now;
            }
        }
    })
}

/// `podscale describe NAME [-w]`.
pub fn run_describe(args: &DescribeArgs) -> Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        loop {
            let doc = only(fetch(&args.status_addr).await?, Some(&args.name))?;
            print!("{}", render::describe(&doc, &doc.autoscalers[0]));
            if !args.watch {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
            println!();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_period_is_bounded() {
        assert_eq!(parse_sync_period("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_sync_period("10ms").is_err());
        assert!(parse_sync_period("2h").is_err());
        assert!(parse_sync_period("soon").is_err());
    }

    #[test]
    fn get_without_a_running_podscale_says_so() {
        let args = GetArgs {
            name: None,
            // A port nobody listens on (reserved, never bound by tests).
            status_addr: "127.0.0.1:9".into(),
            watch: false,
            output: GetOutput::Text,
        };
        let e = run_get(&args).expect_err("nothing listens").to_string();
        assert!(e.contains("is `podscale run --local` running?"), "{e}");
    }

    fn hpa(target: &str) -> podscale_core::api::HorizontalPodAutoscaler {
        let text = format!(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{ name: h }}\nspec:\n  scaleTargetRef: {{ apiVersion: apps/v1, kind: Deployment, name: {target} }}\n  maxReplicas: 2\n"
        );
        run::parse_hpa(&text, "hpa.yaml").expect("valid HPA")
    }

    #[test]
    fn the_hpa_picks_its_deployment_from_the_config() {
        let config = Config::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/local/podscale.yaml"
        ))
        .expect("the example config is valid");
        let d = pick_deployment(&config, true, &hpa("web")).expect("defined");
        assert_eq!(d.name, "web");
        assert_eq!(d.front.port, 18080);
        let e = pick_deployment(&config, true, &hpa("api"))
            .expect_err("not defined")
            .to_string();
        assert!(
            e.ends_with("defines no deployment named \"api\" (the HPA's scaleTargetRef.name); it defines \"web\""),
            "{e}"
        );
        let e = pick_deployment(&Config::default(), false, &hpa("web"))
            .expect_err("no config")
            .to_string();
        assert!(
            e.contains("--config podscale.yaml with a `deployments:` entry named \"web\", or -d"),
            "{e}"
        );
        let empty = Config::from_source("metrics: []\n", "p.yaml").expect("valid");
        let e = pick_deployment(&empty, true, &hpa("web"))
            .expect_err("no deployments")
            .to_string();
        assert!(e.starts_with("p.yaml has no `deployments:`"), "{e}");
    }
}
