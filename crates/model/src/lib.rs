//! # podscale-model
//!
//! The inference-server model that `podscale simulate` runs in simulated time and
//! `podscale emulate` runs in wall-clock time, so that the two agree by construction.
//!
//! - [`model`]: the model file ([`model::DEFAULT_MODEL_YAML`] documents every field; a
//!   user's file is merged over it).
//! - [`profiles`]: named models (8B on a 24 GB or an 80 GB GPU, 70B tensor-parallel on 4
//!   or 8 GPUs), numbers derived in their comments; `--model NAME|FILE` resolves here.
//! - [`replica`]: one continuous-batching server: batch slots, prefill, decode steps
//!   growing with the batch, KV-cache admission, a waiting queue.
//! - [`dist`]: start-up time distributions; [`units`]: durations as people write them;
//!   [`histogram`]: bounded log-linear latency histograms.
#![forbid(unsafe_code)]

pub mod dist;
pub mod histogram;
pub mod model;
pub mod profiles;
pub mod replica;
pub mod units;

pub use model::Model;
pub use replica::{Observer, Queued, Replica, ServerParams};

/// Why a model file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file that cannot be parsed (`file:line:col: message`).
    #[error(transparent)]
    Manifest(#[from] podscale_manifest::ManifestError),
    /// A model file with values out of range.
    #[error("{file}: {message}")]
    Model { file: String, message: String },
}

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
