//! Typed deserialization of a parsed document, with errors that point into the source.
//!
//! serde reports *what* went wrong; `serde_path_to_error` tracks *which field* it was
//! working on. We turn that field into a Kubernetes-style path and look it up in the
//! document's positions, falling back to the nearest ancestor that exists (a missing
//! field is reported where its parent is).

use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use crate::diagnostic::{shorten, shorten_quoted};
use crate::parse::Document;
use crate::position;
use crate::{ManifestError, Result};

/// Deserializes `doc.value` into `T`.
///
/// # Errors
/// [`ManifestError::Deserialize`], displayed `file:line:col: field.path: message`, with
/// the path of the field serde failed on (`spec.metrics[0].type: unknown variant ...`)
/// and the position of that field, or of its nearest existing ancestor.
pub fn deserialize<T: DeserializeOwned>(doc: &Document, file: &str) -> Result<T> {
    serde_path_to_error::deserialize(&doc.value).map_err(|err| {
        let field = field_path(err.path());
        let pos = doc.positions.locate(&field);
        // serde quotes the offending value whole; a huge one is cut (see `shorten`).
        let message = err.into_inner().to_string();
        ManifestError::Deserialize {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            field: shorten(&field).into_owned(),
            message: shorten_quoted(&message).into_owned(),
        }
    })
}

/// `serde_path_to_error`'s path written as our field paths (`a.b[0].c`).
fn field_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out = position::index(&out, *index),
            Segment::Map { key } => out = position::child(&out, key),
            Segment::Enum { variant } => out = position::child(&out, variant),
            Segment::Unknown => out = position::child(&out, "?"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_documents;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Spec {
        max_replicas: i32,
        #[serde(default)]
        metrics: Vec<Metric>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Metric {
        #[serde(rename = "type")]
        kind: Kind,
    }

    #[derive(Debug, Deserialize)]
    enum Kind {
        Pods,
        Resource,
    }

    #[derive(Debug, Deserialize)]
    struct Hpa {
        spec: Spec,
    }

    fn error(source: &str) -> String {
        let docs = parse_documents(source, "hpa.yaml").expect("parses");
        deserialize::<Hpa>(&docs[0], "hpa.yaml")
            .expect_err("must fail")
            .to_string()
    }

    #[test]
    fn a_good_document_deserializes() {
        let docs = parse_documents("spec:\n  maxReplicas: 3\n  metrics:\n  - type: Pods\n", "f")
            .expect("must succeed");
        let hpa: Hpa = deserialize(&docs[0], "f").expect("deserializes");
        assert_eq!(hpa.spec.max_replicas, 3);
        assert!(matches!(hpa.spec.metrics[0].kind, Kind::Pods));
    }

    #[test]
    fn a_wrong_type_points_at_the_value() {
        assert_eq!(
            error("spec:\n  maxReplicas: ten\n"),
            "hpa.yaml:2:16: spec.maxReplicas: invalid type: string \"ten\", expected i32"
        );
    }

    #[test]
    fn an_error_inside_a_sequence_names_the_item() {
        assert_eq!(
            error("spec:\n  maxReplicas: 3\n  metrics:\n  - type: Object\n"),
            "hpa.yaml:4:11: spec.metrics[0].type: unknown variant `Object`, expected `Pods` or `Resource`"
        );
    }

    #[test]
    fn a_missing_field_points_at_the_parent_key() {
        assert_eq!(
            error("spec:\n  metrics: []\n"),
            "hpa.yaml:1:1: spec: missing field `maxReplicas`"
        );
    }

    #[test]
    fn a_huge_wrong_value_is_cut_in_the_message() {
        let source = format!("spec:\n  maxReplicas: \"{}\"\n", "9".repeat(1 << 20));
        let shown = error(&source);
        assert_eq!(
            shown,
            format!(
                "hpa.yaml:2:16: spec.maxReplicas: invalid type: string \"{}…\" (1048576 bytes), expected i32",
                "9".repeat(100)
            )
        );
    }

    #[test]
    fn an_unknown_field_is_reported_at_itself() {
        assert_eq!(
            error("spec:\n  maxReplicas: 3\n  replicas: 2\n"),
            "hpa.yaml:3:13: spec.replicas: unknown field `replicas`, expected `maxReplicas` or `metrics`"
        );
    }
}
