//! Property tests: no input makes reading or validating panic, and every reported
//! position lies inside the input.

use podscale_manifest::{Diagnostic, ValidationOptions, parse_documents, validate_hpa_with};
use proptest::prelude::*;

const MANIFEST: &str = include_str!("data/inference-hpa-resource.yaml");

/// YAML fragments that, glued together at random, reach far more of the parser and
/// validator than uniformly random text.
const TOKENS: &[&str] = &[
    "\n",
    " ",
    "  ",
    "\t",
    "- ",
    ": ",
    ":",
    ",",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "#",
    "---\n",
    "...\n",
    "|",
    ">",
    "&a ",
    "*a",
    "<<: ",
    "!!int ",
    "!!str ",
    "!x ",
    "~",
    "null",
    "0",
    "-1",
    "1.5",
    "0x1F",
    "1e999",
    ".inf",
    "yes",
    "apiVersion: autoscaling/v2\n",
    "kind: HorizontalPodAutoscaler\n",
    "metadata:",
    "name: ",
    "spec:",
    "maxReplicas: ",
    "minReplicas: ",
    "scaleTargetRef:",
    "metrics:",
    "type: ",
    "Pods",
    "Resource",
    "External",
    "Object",
    "ContainerResource",
    "pods:",
    "resource:",
    "target:",
    "averageValue: ",
    "averageUtilization: ",
    "behavior:",
    "scaleUp:",
    "policies:",
    "selector:",
    "matchExpressions:",
    "tolerance: ",
    "é",
    "\u{FEFF}",
    "%YAML 1.2\n",
];

/// Runs everything a caller would run on `source`, checking the positions it reports.
fn exercise(source: &str) {
    let line_count = source.lines().count().max(1) + 1;
    let Ok(docs) = parse_documents(source, "f.yaml") else {
        return;
    };
    for doc in &docs {
        for (_, node) in doc.positions.iter() {
            assert!(
                node.value.line >= 1 && node.value.line <= line_count,
                "{node:?}"
            );
            assert!(node.value.column >= 1);
        }
        for options in [ValidationOptions::default(), ValidationOptions::upstream()] {
            let diagnostics: Vec<Diagnostic> = validate_hpa_with(doc, "f.yaml", &options);
            for d in &diagnostics {
                assert!(d.line >= 1 && d.line <= line_count, "{d}");
                assert!(d.column >= 1, "{d}");
            }
            assert!(
                diagnostics
                    .windows(2)
                    .all(|w| (w[0].line, w[0].column) <= (w[1].line, w[1].column))
            );
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(source in "\\PC*") {
        exercise(&source);
    }

    #[test]
    fn arbitrary_unicode_never_panics(source in any::<String>()) {
        exercise(&source);
    }

    #[test]
    fn yaml_shaped_garbage_never_panics(parts in prop::collection::vec(prop::sample::select(TOKENS), 0..80)) {
        exercise(&parts.concat());
    }

    #[test]
    fn a_mangled_manifest_never_panics(
        at in 0usize..MANIFEST.len(),
        cut in 0usize..40,
        token in prop::sample::select(TOKENS),
    ) {
        let mut source = MANIFEST.to_owned();
        let start = (0..=at).rev().find(|&i| source.is_char_boundary(i)).unwrap_or(0);
        let end = (start + cut).min(source.len());
        let end = (end..=source.len()).find(|&i| source.is_char_boundary(i)).unwrap_or(source.len());
        source.replace_range(start..end, token);
        exercise(&source);
    }
}
