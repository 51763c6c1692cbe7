//! # podscale-manifest
//!
//! Reads the files users hand to podscale (HPA manifests, YAML or JSON, one or many
//! documents) with the exact position of every node, and validates
//! `autoscaling/v2` HorizontalPodAutoscalers the way the Kubernetes API server does,
//! reporting each problem as `file:line:col: field: message`.
//!
//! ## Layout
//! - [`parse`]: YAML/JSON text to JSON values plus a path → position map
//!   ([`parse_documents`], [`Document`]).
//! - [`position`]: positions and the Kubernetes-style field paths that key them.
//! - [`deserialize`](mod@deserialize): typed deserialization of a document, with errors
//!   that point into the source.
//! - [`diagnostic`]: a validation finding and the Kubernetes field-error wording.
//! - [`validation`]: `ValidateHorizontalPodAutoscaler` and friends, on the JSON value.
//! - [`file`](mod@file): read a file, validate every HPA in it, skip (and say so) the rest.
//!
//! ## Example
//! ```
//! use podscale_manifest::{parse_documents, validate_hpa};
//!
//! let source = "\
//! apiVersion: autoscaling/v2
//! kind: HorizontalPodAutoscaler
//! metadata: {name: web}
//! spec:
//!   scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
//!   maxReplicas: 0
//! ";
//! let docs = parse_documents(source, "hpa.yaml")?;
//! let problems = validate_hpa(&docs[0], "hpa.yaml");
//! assert_eq!(
//!     problems[0].to_string(),
//!     "hpa.yaml:6:16: spec.maxReplicas: Invalid value: 0: must be greater than 0"
//! );
//! # Ok::<(), podscale_manifest::ManifestError>(())
//! ```
#![forbid(unsafe_code)]

pub mod deserialize;
pub mod diagnostic;
pub mod file;
pub mod limits;
pub mod parse;
pub mod position;
pub mod validation;

pub use deserialize::deserialize;
pub use diagnostic::Diagnostic;
pub use file::{
    DocumentReport, FileReport, Outcome, validate_file, validate_file_with, validate_source,
};
pub use limits::{read_file, read_stdin};
pub use parse::{Document, parse_documents};
pub use position::{NodePosition, Pos, Positions};
pub use validation::{ValidationOptions, validate_hpa, validate_hpa_with};

/// Why a file could not be read, parsed or deserialized.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read. The operating system's reason is the error's
    /// [`source`](std::error::Error::source), not repeated in its message, so
    /// `{:#}` (anyhow) prints `cannot read FILE: REASON` once.
    #[error("cannot read {file}")]
    Read {
        /// The file, as given.
        file: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The input is larger than [`limits::max_input_bytes`].
    #[error(
        "{file}: input larger than {limit} bytes (set {} to raise the limit)",
        limits::MAX_INPUT_BYTES_ENV
    )]
    TooLarge {
        /// The file, as given.
        file: String,
        /// Its size, or how much was read before giving up (at least `limit + 1`).
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// The input limit's environment variable does not hold a positive integer.
    #[error("{variable}={value:?}: expected a positive number of bytes")]
    Limit {
        /// The variable ([`limits::MAX_INPUT_BYTES_ENV`]).
        variable: &'static str,
        /// Its value (shortened when long).
        value: String,
    },
    /// The text is not valid YAML/JSON, or cannot become JSON.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file, as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The document does not have the shape of the requested type.
    #[error("{file}:{line}:{column}: {}{message}", field_prefix(.field))]
    Deserialize {
        /// The file, as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// Path of the failing field (`spec.metrics[0].type`); empty for the document root.
        field: String,
        /// What serde said.
        message: String,
    },
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

impl ManifestError {
    /// Where in the file the problem is, when known (not for reading problems).
    pub fn position(&self) -> Option<Pos> {
        match self {
            Self::Read { .. } | Self::TooLarge { .. } | Self::Limit { .. } => None,
            Self::Syntax { line, column, .. } | Self::Deserialize { line, column, .. } => {
                Some(Pos::new(*line, *column))
            }
        }
    }
}

/// Result with [`ManifestError`] as the default error.
pub type Result<T, E = ManifestError> = std::result::Result<T, E>;
