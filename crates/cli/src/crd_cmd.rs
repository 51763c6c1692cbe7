//! `podscale crd`: print the Autoscaler CustomResourceDefinition (`deploy/crd.yaml`).
use std::process::ExitCode;

use anyhow::Result;

pub fn run() -> Result<ExitCode> {
    print!("{}", podscale_kube::schema::crd_yaml()?);
    Ok(ExitCode::SUCCESS)
}
