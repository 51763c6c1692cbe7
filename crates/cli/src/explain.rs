//! `podscale explain`: evaluate scenarios and tell why.
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use podscale_core::Scenario;
use podscale_core::scenario::ExplainOutput;

use crate::Output;
use crate::input;

const EXAMPLE: &str = include_str!("example-scenario.yaml");

pub fn run(file: Option<&str>, output: Output) -> Result<ExitCode> {
    let (name, source) = match file {
        Some(f) => (f.to_string(), input::read(f)?),
        None => ("(embedded example)".to_string(), EXAMPLE.to_string()),
    };
    // Parsed once: a day of captured decisions is a large file.
    let docs = podscale_manifest::parse_documents(&source, &name)?;
    drop(source);
    if let Some(doc) = docs
        .iter()
        .find(|d| d.kind() == Some("HorizontalPodAutoscaler"))
    {
        anyhow::bail!(
            "{name}: {} is an HPA manifest, not a scenario. `explain` needs the state a decision \
             was made in: wrap the manifest as `hpa:` in a scenario with `now`, `currentReplicas`, \
             `pods` and `metrics` (see `podscale explain -o yaml` output and the scenarios under \
             crates/core/tests/scenarios/); to check the manifest itself, run `podscale validate {name}`",
            doc.describe()
        );
    }
    let (scenarios, single) = input::from_documents::<Scenario>(&docs, &name)?;
    drop(docs);
    let mut outputs: Vec<ExplainOutput> = Vec::with_capacity(scenarios.len());
    let mut texts = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        let eval = s.evaluate().with_context(|| {
            format!(
                "{name}: scenario {}",
                s.id.clone().unwrap_or_else(|| i.to_string())
            )
        })?;
        if output == Output::Text {
            texts.push(podscale_core::explain::render(s, &eval));
        }
        outputs.push(eval.output);
    }
    match output {
        Output::Text => print!("{}", texts.join("\n")),
        Output::Json => {
            let text = if single {
                serde_json::to_string_pretty(&outputs[0])?
            } else {
                serde_json::to_string_pretty(&outputs)?
            };
            println!("{text}");
        }
        Output::Yaml => {
            let text = if single {
                serde_saphyr::to_string(&outputs[0])?
            } else {
                serde_saphyr::to_string(&outputs)?
            };
            print!("{text}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
