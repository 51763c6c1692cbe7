//! `podscale validate`: API-server validation of HPA manifests.
use std::process::ExitCode;

use anyhow::Result;

use crate::input;

pub fn run(files: &[String]) -> Result<ExitCode> {
    let mut problems = 0usize;
    let mut checked = 0usize;
    for file in files {
        let source = match input::read(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e:#}");
                problems += 1;
                continue;
            }
        };
        let docs = match podscale_manifest::parse_documents(&source, file) {
            Ok(d) => d,
            Err(e) => {
                println!("{e}");
                problems += 1;
                continue;
            }
        };
        if docs.is_empty() {
            // `kubectl apply -f empty.yaml`: `error: no objects passed to apply`, exit 1.
            eprintln!("error: {file}: no objects passed to validate");
            problems += 1;
            continue;
        }
        for doc in &docs {
            if doc.kind() != Some("HorizontalPodAutoscaler") {
                eprintln!(
                    "{file}: skipped {} (not a HorizontalPodAutoscaler)",
                    doc.describe()
                );
                continue;
            }
            checked += 1;
            for d in podscale_manifest::validate_hpa(doc, file) {
                println!("{d}");
                problems += 1;
            }
        }
    }
    if problems > 0 {
        eprintln!("{problems} problem(s) found");
        return Ok(ExitCode::from(1));
    }
    eprintln!("{checked} HorizontalPodAutoscaler(s) valid");
    Ok(ExitCode::SUCCESS)
}
