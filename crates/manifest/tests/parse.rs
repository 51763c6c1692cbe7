//! Black-box tests of reading manifests: positions, types, streams, errors, files.

use std::path::Path;

use podscale_manifest::{
    ManifestError, Outcome, Pos, ValidationOptions, deserialize, parse_documents, validate_file,
    validate_source,
};
use serde_json::json;

#[test]
fn the_shared_manifests_parse_with_positions_for_every_field() {
    let source = include_str!("data/inference-hpa-resource.yaml");
    let docs = parse_documents(source, "r.yaml").expect("parses");
    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert_eq!(doc.kind(), Some("HorizontalPodAutoscaler"));
    assert_eq!(doc.name(), Some("inference-server-hpa"));
    assert_eq!(doc.namespace(), Some("ai-inference"));
    assert_eq!(
        doc.describe(),
        "HorizontalPodAutoscaler/inference-server-hpa"
    );
    let p = &doc.positions;
    assert_eq!(p.value("metadata.name"), Some(Pos::new(4, 9)));
    assert_eq!(p.key("metadata.name"), Some(Pos::new(4, 3)));
    assert_eq!(p.value("spec.minReplicas"), Some(Pos::new(11, 16)));
    assert_eq!(
        p.value("spec.metrics[0].resource.target.averageUtilization"),
        Some(Pos::new(19, 31))
    );
    assert_eq!(
        p.value("spec.metrics[1].resource.name"),
        Some(Pos::new(22, 15))
    );
    assert_eq!(
        p.value("spec.behavior.scaleUp.policies[0].periodSeconds"),
        Some(Pos::new(38, 26))
    );
    assert_eq!(
        doc.value["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        json!(70)
    );

    // Every recorded position is inside the file.
    let lines: Vec<&str> = source.lines().collect();
    for (path, node) in p.iter() {
        let line = lines[node.value.line - 1];
        assert!(
            node.value.column <= line.chars().count() + 1,
            "{path}: {node:?}"
        );
    }
}

#[test]
fn quoted_numbers_stay_strings_and_plain_ones_become_numbers() {
    let docs = parse_documents(include_str!("data/inference-hpa-custom.yaml"), "c.yaml")
        .expect("must succeed");
    let target = &docs[0].value["spec"]["metrics"][0]["pods"]["target"];
    assert_eq!(target["averageValue"], json!("50"));
    assert_eq!(docs[0].value["spec"]["maxReplicas"], json!(50));
}

#[test]
fn yaml_syntax_errors_name_file_line_and_column() {
    let cases = [
        (
            "spec:\n  maxReplicas: [1, 2\n  minReplicas: 1\n",
            "bad.yaml:3:14: illegal placement of ':' indicator",
        ),
        ("a: \"unterminated\n", "bad.yaml:1:4: unclosed quote"),
        (
            "a: b\n c: d\n",
            "bad.yaml:2:3: mapping values are not allowed in this context",
        ),
        ("a: *nowhere\n", "bad.yaml:1:4: unknown anchor 'nowhere'"),
    ];
    for (source, expected) in cases {
        let err = parse_documents(source, "bad.yaml").expect_err(source);
        assert!(matches!(err, ManifestError::Syntax { .. }), "{err:?}");
        assert_eq!(err.to_string(), expected, "{source:?}");
    }
}

#[test]
fn a_syntax_error_in_a_later_document_fails_the_file() {
    let err = parse_documents("a: 1\n---\nb: [\n", "multi.yaml").expect_err("must fail");
    assert_eq!(err.to_string(), "multi.yaml:3:4: unclosed bracket '['");
}

#[test]
fn multi_document_files_keep_stream_indices() {
    let source = "a: 1\n---\n---\nkind: Service\n...\n---\nc: [1, 2]\n";
    let docs = parse_documents(source, "m.yaml").expect("must succeed");
    let summary: Vec<(usize, Pos)> = docs.iter().map(|d| (d.index, d.start())).collect();
    assert_eq!(
        summary,
        vec![
            (0, Pos::new(1, 1)),
            (2, Pos::new(4, 1)),
            (3, Pos::new(7, 1))
        ]
    );
    assert_eq!(docs[2].positions.value("c[1]"), Some(Pos::new(7, 8)));
}

#[test]
fn anchors_can_share_a_target_between_metrics() {
    let source = "\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 4
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: &half {type: Utilization, averageUtilization: 0}
  - type: Resource
    resource:
      name: memory
      target: *half
";
    let docs = parse_documents(source, "a.yaml").expect("must succeed");
    let shown: Vec<String> = podscale_manifest::validate_hpa(&docs[0], "a.yaml")
        .iter()
        .map(ToString::to_string)
        .collect();
    // The alias is reported where its content is written.
    assert_eq!(
        shown,
        vec![
            "a.yaml:11:61: spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            "a.yaml:11:61: spec.metrics[1].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
        ]
    );
}

#[test]
fn deserialize_reports_the_failing_field_where_it_is_written() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Spec {
        min_replicas: Option<u32>,
        max_replicas: u32,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Hpa {
        spec: Spec,
    }
    let docs = parse_documents("spec:\n  minReplicas: -2\n  maxReplicas: 3\n", "d.yaml")
        .expect("must succeed");
    let err = deserialize::<Hpa>(&docs[0], "d.yaml").expect_err("must fail");
    assert_eq!(
        err.to_string(),
        "d.yaml:2:16: spec.minReplicas: invalid value: integer `-2`, expected u32"
    );
    assert_eq!(err.position(), Some(Pos::new(2, 16)));
}

#[test]
fn validate_file_reads_and_validates_the_shared_manifests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for name in ["inference-hpa-resource.yaml", "inference-hpa-custom.yaml"] {
        let report = validate_file(&dir.join(name)).expect("reads");
        assert_eq!(report.documents.len(), 1);
        assert_eq!(report.documents[0].outcome, Outcome::Validated(vec![]));
        assert!(report.is_valid());
    }
}

#[test]
fn a_document_without_kind_is_validated_as_an_hpa() {
    let report = validate_source(
        "metadata: {name: x}\n",
        "k.yaml",
        &ValidationOptions::default(),
    )
    .expect("must succeed");
    let shown: Vec<String> = report.diagnostics().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        vec![
            "k.yaml:1:1: apiVersion: Required value",
            "k.yaml:1:1: kind: Required value",
            "k.yaml:1:1: spec.maxReplicas: Required value",
            "k.yaml:1:1: spec.scaleTargetRef.kind: Required value",
            "k.yaml:1:1: spec.scaleTargetRef.name: Required value",
            "k.yaml:1:1: spec.scaleTargetRef.apiVersion: Required value: must specify the target's API group and version, such as apps/v1",
        ]
    );
}
