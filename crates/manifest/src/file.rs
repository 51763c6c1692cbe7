//! Validating a whole file: every HPA in it, and a note for every other document.
//!
//! A file handed to `kubectl apply` often holds a Deployment, a Service and the HPA
//! together. Documents whose `kind` is something else are skipped, and the report says
//! which (`Deployment/inference-server`), so a CLI can tell the user what it did not
//! check. A document without any `kind` is validated as an HPA (and told that `kind`
//! is required): in a file given to an HPA tool, that is what it most likely is.

use std::path::Path;

use crate::Result;
use crate::diagnostic::Diagnostic;
use crate::parse::{Document, parse_documents};
use crate::position::Pos;
use crate::validation::{ValidationOptions, validate_hpa_with};

/// What happened to one document of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Validated as an HPA; no diagnostics means it is valid.
    Validated(Vec<Diagnostic>),
    /// Not validated, with the reason (`"Deployment/web is not a HorizontalPodAutoscaler"`).
    Skipped(String),
}

/// One non-empty document of a file and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentReport {
    /// 0-based index in the stream (see [`Document::index`]).
    pub index: usize,
    /// Where the document's content starts.
    pub start: Pos,
    /// `Kind/name` as kubectl writes it (see [`Document::describe`]).
    pub object: String,
    /// Validated or skipped.
    pub outcome: Outcome,
}

impl DocumentReport {
    /// The diagnostics of a validated document; empty for a skipped one.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match &self.outcome {
            Outcome::Validated(diagnostics) => diagnostics,
            Outcome::Skipped(_) => &[],
        }
    }
}

/// The result of validating every document of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file, as displayed in diagnostics.
    pub file: String,
    /// Its non-empty documents, in order.
    pub documents: Vec<DocumentReport>,
}

impl FileReport {
    /// Every diagnostic of the file, in document order.
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.documents.iter().flat_map(DocumentReport::diagnostics)
    }

    /// Whether no validated document has a problem.
    pub fn is_valid(&self) -> bool {
        self.diagnostics().next().is_none()
    }

    /// How many documents were validated as HPAs.
    pub fn validated(&self) -> usize {
        self.documents
            .iter()
            .filter(|d| matches!(d.outcome, Outcome::Validated(_)))
            .count()
    }

    /// The skipped documents.
    pub fn skipped(&self) -> impl Iterator<Item = &DocumentReport> {
        self.documents
            .iter()
            .filter(|d| matches!(d.outcome, Outcome::Skipped(_)))
    }
}

/// Reads `path` and validates every HPA in it with the default [`ValidationOptions`].
///
/// # Errors
/// [`ManifestError::Read`](crate::ManifestError::Read) when the file cannot be read (or is not UTF-8),
/// [`ManifestError::TooLarge`](crate::ManifestError::TooLarge) past the input limit, [`ManifestError::Syntax`](crate::ManifestError::Syntax) when it
/// is not valid YAML/JSON.
pub fn validate_file(path: &Path) -> Result<FileReport> {
    validate_file_with(path, &ValidationOptions::default())
}

/// [`validate_file`] with explicit options.
///
/// # Errors
/// As [`validate_file`].
pub fn validate_file_with(path: &Path, options: &ValidationOptions) -> Result<FileReport> {
    let file = path.display().to_string();
    let source = crate::limits::read_file(path)?;
    validate_source(&source, &file, options)
}

/// Validates every HPA in `source`, labelling diagnostics with `file`.
///
/// # Errors
/// [`ManifestError::Syntax`](crate::ManifestError::Syntax) when `source` is not valid YAML/JSON.
pub fn validate_source(
    source: &str,
    file: &str,
    options: &ValidationOptions,
) -> Result<FileReport> {
    let documents = parse_documents(source, file)?
        .iter()
        .map(|doc| DocumentReport {
            index: doc.index,
            start: doc.start(),
            object: doc.describe(),
            outcome: outcome(doc, file, options),
        })
        .collect();
    Ok(FileReport {
        file: file.to_owned(),
        documents,
    })
}

fn outcome(doc: &Document, file: &str, options: &ValidationOptions) -> Outcome {
    if !doc.value.is_object() {
        return Outcome::Skipped(
            "not a Kubernetes object (a mapping with apiVersion and kind)".into(),
        );
    }
    match doc.value.get("kind") {
        Some(kind) if kind.as_str() != Some("HorizontalPodAutoscaler") && !kind.is_null() => {
            Outcome::Skipped(format!(
                "{} is not a HorizontalPodAutoscaler",
                doc.describe()
            ))
        }
        _ => Outcome::Validated(validate_hpa_with(doc, file, options)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 0
---
- just
- a list
";

    #[test]
    fn other_kinds_are_skipped_and_named() {
        let report = validate_source(MIXED, "all.yaml", &ValidationOptions::default())
            .expect("must succeed");
        assert_eq!(report.documents.len(), 3);
        assert_eq!(
            report.documents[0].outcome,
            Outcome::Skipped("Deployment/web is not a HorizontalPodAutoscaler".into())
        );
        assert_eq!(report.documents[1].object, "HorizontalPodAutoscaler/web");
        assert_eq!(report.documents[1].start, Pos::new(6, 1));
        let shown: Vec<String> = report.diagnostics().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec!["all.yaml:12:16: spec.maxReplicas: Invalid value: 0: must be greater than 0"]
        );
        assert!(matches!(report.documents[2].outcome, Outcome::Skipped(_)));
        assert_eq!(report.validated(), 1);
        assert_eq!(report.skipped().count(), 2);
        assert!(!report.is_valid());
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let err = validate_file(Path::new("/nonexistent/hpa.yaml")).expect_err("must fail");
        assert_eq!(err.to_string(), "cannot read /nonexistent/hpa.yaml");
        // The reason is the source, once: not also in the message.
        let reason = std::error::Error::source(&err).expect("has a source");
        assert!(reason.to_string().contains("No such file"), "{reason}");
        assert!(err.position().is_none());
    }
}
