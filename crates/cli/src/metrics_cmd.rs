//! `podscale metrics`: read every metric of an HPA once, as the controller would, from
//! the sources `podscale.yaml` names, print each metric's samples or error, and
//! optionally write the observed state as a scenario for `podscale explain`.
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_metrics::collect::{self, PodInfo, Reading, Request, Sources};
use podscale_metrics::config::Config;

use crate::Output;
use crate::input;

/// Arguments of `podscale metrics`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The HPA manifest (YAML or JSON). With several HPAs in the file, pick one with --name.
    pub hpa: String,
    /// Where each metric comes from (see crates/metrics/src/config.rs for the format);
    /// `-` reads it from standard input (at most 4 MiB).
    #[arg(long, default_value = "podscale.yaml")]
    pub config: String,
    /// The target's pods and where to reach them: `name=ip:port,name2=ip,...`.
    /// Needed for direct scrapes unless the config's `kubernetes:` section lists them;
    /// without either, the pods are those the per-pod results name.
    #[arg(long)]
    pub pods: Option<String>,
    /// The HPA's `metadata.name`, when the file holds several HPAs.
    #[arg(long)]
    pub name: Option<String>,
    /// The target's current replica count, for --scenario (default: the number of pods).
    #[arg(long)]
    pub replicas: Option<i32>,
    /// Write the observed state as a scenario (`.json`: JSON, otherwise YAML) that
    /// `podscale explain` evaluates.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = MetricsOutput::Text)]
    pub output: MetricsOutput,
}

/// Output format of `podscale metrics` (its own, so `--help` describes this command's
/// JSON, not `explain`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsOutput {
    /// For a person (the default).
    Text,
    /// JSON, for programs: each metric's samples, drops, notes and error, and the
    /// engine's input (`observed`).
    Json,
    /// The same data as YAML.
    Yaml,
}

impl From<MetricsOutput> for Output {
    fn from(o: MetricsOutput) -> Self {
        match o {
            MetricsOutput::Text => Self::Text,
            MetricsOutput::Json => Self::Json,
            MetricsOutput::Yaml => Self::Yaml,
        }
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    podscale_metrics::http::install_crypto_provider();
    if args.config == "-" && args.hpa == "-" {
        bail!("the HPA and --config cannot both be read from standard input (-)");
    }
    let config = Config::load(&args.config)?;
    let hpa = load_hpa(&args.hpa, args.name.as_deref())?;
    let pods = args
        .pods
        .as_deref()
        .map(PodInfo::parse_list)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--pods: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let sources = runtime
        .block_on(Sources::connect(&config))
        .context("cannot set up the metric sources")?;
    let reading = runtime.block_on(collect::read(
        &config,
        &sources,
        &Request {
            hpa: &hpa,
            pods: pods.as_deref(),
            now: jiff::Timestamp::now(),
        },
    ));
    match Output::from(args.output) {
        Output::Text => print!("{}", render(&reading, pods.is_some())),
        Output::Json => println!("{}", serde_json::to_string_pretty(&reading)?),
        Output::Yaml => print!("{}", serde_saphyr::to_string(&reading)?),
    }
    if let Some(path) = &args.scenario {
        let scenario = reading.scenario(&hpa, args.replicas);
        let text = if path.ends_with(".json") {
            serde_json::to_string_pretty(&scenario)? + "\n"
        } else {
            serde_saphyr::to_string(&scenario)?
        };
        std::fs::write(path, text).with_context(|| format!("cannot write {path}"))?;
        eprintln!("wrote {path}: evaluate it with `podscale explain {path}`");
    }
    Ok(if reading.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The one HPA of a manifest file (or the one called `name`), validated.
fn load_hpa(file: &str, name: Option<&str>) -> Result<HorizontalPodAutoscaler> {
    let source = input::read(file)?;
    let docs = podscale_manifest::parse_documents(&source, file)?;
    let hpas: Vec<_> = docs
        .iter()
        .filter(|d| d.kind() == Some("HorizontalPodAutoscaler"))
        .filter(|d| name.is_none() || d.name() == name)
        .collect();
    let doc = match (hpas.as_slice(), name) {
        ([doc], _) => *doc,
        ([], Some(n)) => bail!("{file}: no HorizontalPodAutoscaler named {n:?}"),
        ([], None) => bail!("{file}: no HorizontalPodAutoscaler in this file"),
        (many, _) => {
            let names: Vec<&str> = many.iter().filter_map(|d| d.name()).collect();
            bail!(
                "{file}: {} HorizontalPodAutoscalers ({}); pick one with --name",
                many.len(),
                names.join(", ")
            )
        }
    };
    let problems = podscale_manifest::validate_hpa(doc, file);
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        bail!("invalid HPA:\n{}", lines.join("\n"));
    }
    Ok(podscale_manifest::deserialize(doc, file)?)
}

/// The reading for a person: each metric, its query, its samples, what was dropped
/// and why, and its error.
fn render(r: &Reading, pods_given: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "HPA {}/{} read at {}", r.namespace, r.hpa, r.now);
    let origin = if pods_given {
        "given"
    } else if r.scale.is_some() {
        "listed by the target's selector"
    } else {
        "named by the results"
    };
    let _ = writeln!(
        out,
        "pods ({origin}): {}",
        if r.pods.is_empty() {
            "none".to_owned()
        } else {
            r.pods.join(", ")
        }
    );
    if let Some(s) = &r.scale {
        let _ = writeln!(
            out,
            "scale: {} replicas ({} in status), selector {}",
            s.spec_replicas,
            s.status_replicas,
            s.selector.as_deref().unwrap_or("(none)")
        );
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    for (i, m) in r.metrics.iter().enumerate() {
        let _ = writeln!(
            out,
            "\n{}. {} metric {} from {}",
            i + 1,
            m.type_,
            m.name,
            m.source
        );
        if let Some(q) = &m.query {
            for (k, line) in q.lines().enumerate() {
                let _ = writeln!(
                    out,
                    "   {} {line}",
                    if k == 0 { "query:" } else { "      " }
                );
            }
        }
        for s in &m.samples {
            let who = match (&s.pod, &s.container) {
                (Some(p), Some(c)) => format!("{p}/{c}"),
                (Some(p), None) => p.clone(),
                _ if s.labels.is_empty() => "(value)".to_owned(),
                _ => {
                    let l: Vec<String> =
                        s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                    format!("{{{}}}", l.join(","))
                }
            };
            let _ = writeln!(
                out,
                "   {who:<32} {:>14}  at {}{}",
                s.quantity.to_string(),
                s.timestamp,
                if s.truncated_to_zero {
                    format!(
                        "  (read {}: below 1m, truncated to 0)",
                        podscale_metrics::exposition::format_value(s.value)
                    )
                } else {
                    String::new()
                }
            );
        }
        for d in &m.dropped {
            let _ = writeln!(out, "   dropped {}: {}", d.what, d.reason);
        }
        if !m.missing.is_empty() {
            let _ = writeln!(out, "   missing pods: {}", m.missing.join(", "));
        }
        for n in &m.notes {
            let _ = writeln!(out, "   note: {n}");
        }
        if let Some(e) = &m.error {
            let _ = writeln!(out, "   error: {e}");
        }
    }
    if r.has_errors() {
        let _ = writeln!(
            out,
            "\nSome metrics failed: the HPA sets ScalingActive=False for them and never scales down on a failed metric."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: a, namespace: ns}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: a}
  maxReplicas: 3
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: b, namespace: ns}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: b}
  maxReplicas: 0
";

    fn file(text: &str) -> (std::path::PathBuf, String) {
        let path = std::env::temp_dir().join(format!(
            "podscale-metrics-cmd-{}-{}.yaml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).expect("write");
        let name = path.display().to_string();
        (path, name)
    }

    #[test]
    fn several_hpas_need_a_name_and_each_is_validated() {
        let (path, name) = file(TWO);
        let e = load_hpa(&name, None).expect_err("ambiguous");
        assert!(
            e.to_string()
                .ends_with("2 HorizontalPodAutoscalers (a, b); pick one with --name"),
            "{e}"
        );
        assert_eq!(
            load_hpa(&name, Some("a"))
                .expect("valid")
                .metadata
                .name
                .as_deref(),
            Some("a")
        );
        let e = load_hpa(&name, Some("b")).expect_err("invalid");
        assert!(
            e.to_string().contains("spec.maxReplicas: Invalid value: 0"),
            "{e}"
        );
        let _ = std::fs::remove_file(path);
    }
}
