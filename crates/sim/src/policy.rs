//! Policies: HPA manifests, read and validated exactly as `podscale validate` does, so a
//! manifest the API server would reject is refused with the same messages.
use std::io::Read as _;

use podscale_core::api::HorizontalPodAutoscaler;

use crate::{Error, Result};

/// The seed's CPU + memory manifest, embedded as the default policy.
pub const EMBEDDED_MANIFEST: &str = include_str!("../data/inference-hpa-resource.yaml");
const EMBEDDED_NAME: &str = "inference-hpa-resource.yaml (embedded)";

/// Largest manifest file read (so that `/dev/zero` is an error, not all of memory).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// One HPA to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Short name for tables and charts (the file's stem, plus the HPA's name when a
    /// file holds several).
    pub name: String,
    /// Where it came from.
    pub file: String,
    pub hpa: HorizontalPodAutoscaler,
}

impl Policy {
    /// The embedded seed manifest.
    pub fn embedded() -> Policy {
        Self::from_source(EMBEDDED_MANIFEST, EMBEDDED_NAME)
            .expect("the embedded manifest is valid")
            .remove(0)
    }

    /// Reads every HorizontalPodAutoscaler in a file.
    ///
    /// # Errors
    /// Unreadable or unparsable files, manifests that fail validation (with every
    /// `file:line:col: field: message`), files with no HPA.
    pub fn load(path: &str) -> Result<Vec<Policy>> {
        let io = |source| Error::Io {
            file: path.into(),
            source,
        };
        let mut source = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_MANIFEST_BYTES + 1).read_to_string(&mut source))
            .map_err(io)?;
        if source.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::Policy(format!(
                "{path}: larger than {} MiB: not a manifest",
                MAX_MANIFEST_BYTES >> 20
            )));
        }
        Self::from_source(&source, path)
    }

    /// Reads every HorizontalPodAutoscaler in `source`; `file` names it in messages.
    ///
    /// # Errors
    /// As [`Policy::load`].
    pub fn from_source(source: &str, file: &str) -> Result<Vec<Policy>> {
        let docs = podscale_manifest::parse_documents(source, file)?;
        let hpas: Vec<_> = docs
            .iter()
            .filter(|d| d.kind() == Some("HorizontalPodAutoscaler"))
            .collect();
        if hpas.is_empty() {
            return Err(Error::Policy(format!(
                "{file}: no HorizontalPodAutoscaler found (documents need `kind: HorizontalPodAutoscaler`)"
            )));
        }
        let stem = std::path::Path::new(file.split(' ').next().unwrap_or(file))
            .file_stem()
            .map_or_else(|| file.to_string(), |s| s.to_string_lossy().into_owned());
        let mut out = Vec::new();
        for doc in &hpas {
            let diagnostics = podscale_manifest::validate_hpa(doc, file);
            if !diagnostics.is_empty() {
                return Err(Error::InvalidManifest {
                    file: file.into(),
                    diagnostics,
                });
            }
            let hpa: HorizontalPodAutoscaler = podscale_manifest::deserialize(doc, file)?;
            let name = if hpas.len() > 1 {
                format!("{stem}/{}", doc.name().unwrap_or("?"))
            } else {
                stem.clone()
            };
            out.push(Policy {
                name,
                file: file.into(),
                hpa,
            });
        }
        Ok(out)
    }

    /// The Deployment the HPA scales (names the simulated pods).
    pub fn deployment(&self) -> &str {
        let n = &self.hpa.spec.scale_target_ref.name;
        if n.is_empty() { "server" } else { n }
    }
}

/// Makes policy names unique (`a`, `a#2`, …) so compared runs can be told apart.
pub fn dedup_names(policies: &mut [Policy]) {
    let mut seen: Vec<String> = Vec::new();
    for p in policies.iter_mut() {
        let base = p.name.clone();
        let mut k = 1;
        while seen.contains(&p.name) {
            k += 1;
            p.name = format!("{base}#{k}");
        }
        seen.push(p.name.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_manifest_is_the_seed_cpu_policy() {
        let p = Policy::embedded();
        assert_eq!(p.name, "inference-hpa-resource");
        assert_eq!(p.hpa.spec.max_replicas, 20);
        assert_eq!(p.deployment(), "inference-server");
    }

    #[test]
    fn an_invalid_manifest_is_refused_with_the_validate_messages() {
        let bad = EMBEDDED_MANIFEST.replace("maxReplicas: 20", "maxReplicas: 0");
        let err = Policy::from_source(&bad, "bad.yaml").expect_err("invalid");
        let text = err.to_string();
        assert!(
            text.contains(
                "bad.yaml:12:16: spec.maxReplicas: Invalid value: 0: must be greater than 0"
            ),
            "{text}"
        );
    }

    #[test]
    fn names_are_made_unique() {
        let mut ps = vec![Policy::embedded(), Policy::embedded()];
        dedup_names(&mut ps);
        assert_eq!(ps[1].name, "inference-hpa-resource#2");
    }
}
