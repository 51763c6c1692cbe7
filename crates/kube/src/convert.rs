//! `podscale convert`: an `autoscaling/v2` HorizontalPodAutoscaler manifest becomes a
//! `podscale.dev/v1alpha1` Autoscaler — same metadata (name, namespace, labels,
//! annotations), same spec; only apiVersion and kind change. What the API server set
//! (status, uid, resourceVersion, managedFields, …) is dropped, as `kubectl apply`
//! would need.
use serde_json::{Map, Value};

use crate::crd::{API_VERSION, KIND};

/// Why a document cannot be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("{0}")]
    Parse(String),
    #[error("{file}: document {index}: {message}")]
    Document {
        file: String,
        index: usize,
        message: String,
    },
    #[error("{file}: no autoscaling/v2 HorizontalPodAutoscaler found{}", skipped_note(.skipped))]
    Empty { file: String, skipped: Vec<String> },
}

fn skipped_note(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!(" (skipped {})", skipped.join(", "))
    }
}

/// The metadata fields kept: what a user writes, not what the API server sets.
const KEPT_METADATA: &[&str] = &["name", "namespace", "labels", "annotations"];

/// Converts one HPA object (as JSON).
///
/// # Errors
/// Not an `autoscaling/v2` HorizontalPodAutoscaler, or without a name or spec.
pub fn convert_value(v: &Value) -> Result<Value, String> {
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "HorizontalPodAutoscaler" {
        return Err(format!("kind {kind:?} is not HorizontalPodAutoscaler"));
    }
    if api_version != "autoscaling/v2" {
        return Err(format!(
            "apiVersion {api_version:?}: only autoscaling/v2 converts field for field (convert autoscaling/v1 with `kubectl convert` first)"
        ));
    }
    let meta = v.get("metadata").and_then(Value::as_object);
    let mut metadata = Map::new();
    for k in KEPT_METADATA {
        if let Some(x) = meta.and_then(|m| m.get(*k)) {
            // `kubectl.kubernetes.io/last-applied-configuration` names the HPA: drop it.
            if *k == "annotations"
                && let Some(a) = x.as_object()
            {
                let a: Map<String, Value> = a
                    .iter()
                    .filter(|(k, _)| *k != "kubectl.kubernetes.io/last-applied-configuration")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !a.is_empty() {
                    metadata.insert((*k).into(), Value::Object(a));
                }
                continue;
            }
            metadata.insert((*k).into(), x.clone());
        }
    }
    if !metadata.get("name").is_some_and(Value::is_string) {
        return Err("metadata.name: Required value".into());
    }
    let spec = v
        .get("spec")
        .filter(|s| s.is_object())
        .ok_or("spec: Required value")?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), API_VERSION.into());
    out.insert("kind".into(), KIND.into());
    out.insert("metadata".into(), Value::Object(metadata));
    out.insert("spec".into(), spec.clone());
    Ok(Value::Object(out))
}

/// Converts every HPA of a manifest file (YAML, several documents, or JSON; a `List`
/// is unpacked). Other kinds are skipped and reported in the second list.
///
/// # Errors
/// Unparseable input, an HPA that cannot be converted, or no HPA at all.
pub fn convert_manifest(
    source: &str,
    file: &str,
) -> Result<(Vec<Value>, Vec<String>), ConvertError> {
    let docs = podscale_manifest::parse_documents(source, file)
        .map_err(|e| ConvertError::Parse(e.to_string()))?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for doc in &docs {
        let items: Vec<&Value> = match doc.value.get("items").and_then(Value::as_array) {
            Some(items)
                if doc
                    .value
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List")) =>
            {
                items.iter().collect()
            }
            _ => vec![&doc.value],
        };
        for v in items {
            let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
            if kind != "HorizontalPodAutoscaler" {
                let name = v
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                skipped.push(format!("{kind}/{name}"));
                continue;
            }
            out.push(convert_value(v).map_err(|message| ConvertError::Document {
                file: file.into(),
                index: doc.index,
                message,
            })?);
        }
    }
    if out.is_empty() {
        return Err(ConvertError::Empty {
            file: file.into(),
            skipped,
        });
    }
    Ok((out, skipped))
}

/// Converted objects as multi-document YAML.
///
/// # Errors
/// Only if the YAML writer fails.
pub fn to_yaml(objects: &[Value]) -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&serde_saphyr::to_string(o)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HPA: &str = r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: prod
  uid: 1234
  resourceVersion: "7"
  labels: {app: web}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: "{}"
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 10
status:
  currentReplicas: 3
---
apiVersion: v1
kind: Service
metadata: {name: web}
"#;

    #[test]
    fn an_hpa_becomes_an_autoscaler_with_the_same_spec() {
        let (out, skipped) = convert_manifest(HPA, "hpa.yaml").expect("converts");
        assert_eq!(skipped, vec!["Service/web".to_string()]);
        assert_eq!(out.len(), 1);
        let a = &out[0];
        assert_eq!(a["apiVersion"], "podscale.dev/v1alpha1");
        assert_eq!(a["kind"], "Autoscaler");
        assert_eq!(a["metadata"]["name"], "web");
        assert_eq!(a["metadata"]["namespace"], "prod");
        assert!(a["metadata"].get("uid").is_none());
        assert!(a["metadata"].get("annotations").is_none());
        assert!(a.get("status").is_none());
        assert_eq!(a["spec"]["maxReplicas"], 10);
        let typed: crate::crd::Autoscaler = serde_json::from_value(a.clone()).expect("typed");
        assert_eq!(typed.spec.hpa.scale_target_ref.name, "web");
    }

    #[test]
    fn other_versions_and_kinds_are_refused_clearly() {
        let v1 = "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: a}\nspec: {maxReplicas: 2}\n";
        let e = convert_manifest(v1, "a.yaml")
            .expect_err("v1 refused")
            .to_string();
        assert!(
            e.contains("a.yaml: document 0: apiVersion \"autoscaling/v1\""),
            "{e}"
        );
        let e = convert_manifest("kind: Service\n", "s.yaml")
            .expect_err("no hpa")
            .to_string();
        assert_eq!(
            e,
            "s.yaml: no autoscaling/v2 HorizontalPodAutoscaler found (skipped Service/)"
        );
        let e = convert_manifest("kind: [", "b.yaml")
            .expect_err("bad yaml")
            .to_string();
        assert!(e.contains("b.yaml"), "{e}");
    }
}
