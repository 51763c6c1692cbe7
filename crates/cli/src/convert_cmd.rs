//! `podscale convert FILE`: autoscaling/v2 HPA manifests become podscale Autoscalers.
use std::process::ExitCode;

use anyhow::Result;

use crate::input;

pub fn run(file: &str) -> Result<ExitCode> {
    let source = input::read(file)?;
    let (objects, skipped) = podscale_kube::convert::convert_manifest(&source, file)?;
    for s in skipped {
        eprintln!("{file}: skipped {s} (not a HorizontalPodAutoscaler)");
    }
    print!("{}", podscale_kube::convert::to_yaml(&objects)?);
    Ok(ExitCode::SUCCESS)
}
