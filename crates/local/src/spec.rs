//! The local deployment: what `podscale run --local` starts. It is defined in
//! `podscale.yaml` under `deployments:` (or, standalone, as a file of its own), so its
//! type and validation live with the rest of that file, in
//! [`podscale_metrics::config::deployment`]; this module re-exports them.
pub use podscale_metrics::config::deployment::*;

/// Why a deployment cannot be used: the config file's errors, positioned the same way.
pub type SpecError = podscale_metrics::config::ConfigError;
