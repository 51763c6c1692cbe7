//! Named model profiles: server models for common model and GPU pairings, each a model
//! file merged over the defaults with its numbers derived in comments from public figures
//! (the model's architecture for weight and KV-cache bytes, the GPU's memory, bandwidth
//! and compute, published vLLM benchmarks). `--model NAME|FILE` picks one by name, or
//! reads a file; `podscale simulate --list-models` lists them.
use std::io::Read as _;
use std::path::Path;

use crate::model::{DEFAULT_MODEL_YAML, Model};
use crate::{Error, Result};

/// Largest model file read from disk (a model file is a few kilobytes).
pub const MAX_MODEL_BYTES: u64 = 1 << 20;

/// One named profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// What `--model` takes.
    pub name: &'static str,
    /// One line for `--list-models`.
    pub summary: &'static str,
    /// The model file (merged over the defaults; the default profile is the defaults).
    pub yaml: &'static str,
}

/// The name of the default model's profile.
pub const DEFAULT_PROFILE: &str = "llama3-8b-24gb";

const PROFILES: [Profile; 4] = [
    Profile {
        name: DEFAULT_PROFILE,
        summary: "Llama-3.1-8B, bf16, vLLM on one 24 GB GPU (A10G/L4): 32,768 KV tokens (the default)",
        yaml: DEFAULT_MODEL_YAML,
    },
    Profile {
        name: "llama3-8b-80gb-128k",
        summary: "Llama-3.1-8B, bf16, vLLM on one 80 GB GPU (H100) with 128k context: 434,503 KV tokens",
        yaml: include_str!("profiles/llama3-8b-80gb-128k.yaml"),
    },
    Profile {
        name: "llama3-70b-4x80gb",
        summary: "Llama-3.1-70B, bf16, vLLM tensor-parallel over 4 × 80 GB GPUs (H100): 460,390 KV tokens",
        yaml: include_str!("profiles/llama3-70b-4x80gb.yaml"),
    },
    Profile {
        name: "llama3-70b-8x80gb",
        summary: "Llama-3.1-70B, bf16, vLLM tensor-parallel over 8 × 80 GB GPUs (H100): 1,351,680 KV tokens",
        yaml: include_str!("profiles/llama3-70b-8x80gb.yaml"),
    },
];

/// Every profile, the default first.
pub fn profiles() -> &'static [Profile] {
    &PROFILES
}

/// The profile of this name (`default` names the default profile).
pub fn find(name: &str) -> Option<&'static Profile> {
    let name = if name == "default" {
        DEFAULT_PROFILE
    } else {
        name
    };
    PROFILES.iter().find(|p| p.name == name)
}

impl Profile {
    /// The profile's model.
    ///
    /// # Errors
    /// None for the embedded profiles (the tests load each); the type is the loader's.
    pub fn model(&self) -> Result<Model> {
        if self.yaml == DEFAULT_MODEL_YAML {
            return Model::load(None, self.name);
        }
        Model::load(Some(self.yaml), self.name)
    }
}

/// A model resolved from `--model NAME|FILE`.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub model: Model,
    /// The profile's name, or the file's stem.
    pub name: String,
    /// Whether it came from a named profile (else from a file).
    pub profile: bool,
}

/// Resolves `--model NAME|FILE`: a profile name first, else a model file (at most
/// [`MAX_MODEL_BYTES`]) merged over the defaults. A name wins over a file of the same
/// name in the working directory; write `./NAME` for the file.
///
/// # Errors
/// A name that is neither a profile nor a readable file (the message lists the
/// profiles), a file that is too large or not UTF-8, and every error of [`Model::load`].
pub fn resolve(name_or_path: &str) -> Result<Resolved> {
    if let Some(p) = find(name_or_path) {
        return Ok(Resolved {
            model: p.model()?,
            name: p.name.into(),
            profile: true,
        });
    }
    let path = Path::new(name_or_path);
    let fail = |message: String| Error::Model {
        file: name_or_path.into(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            fail(format!(
                "neither a model profile ({}) nor a file ({e})",
                PROFILES.map(|p| p.name).join(", ")
            ))
        } else {
            fail(format!("cannot read: {e}"))
        }
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_MODEL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(fail(format!(
            "larger than {} KiB: not a model file",
            MAX_MODEL_BYTES >> 10
        )));
    }
    let source = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))?;
    let model = Model::load(Some(&source), name_or_path)?;
    let name = path
        .file_stem()
        .map_or_else(|| name_or_path.into(), |s| s.to_string_lossy().into_owned());
    Ok(Resolved {
        model,
        name,
        profile: false,
    })
}

/// The `--list-models` text: one line per profile.
pub fn list() -> String {
    let width = PROFILES.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for p in &PROFILES {
        out.push_str(&format!("{:width$}  {}\n", p.name, p.summary));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Evaluates `a × b − c / d …` left to right (the profiles' derivations are written
    /// so); `×`/`*`, `/`, `+`, `−`/`-`.
    fn eval(expr: &str) -> f64 {
        let mut tokens = expr.split_whitespace();
        let mut acc: f64 = tokens
            .next()
            .expect("an operand")
            .parse()
            .expect("a number");
        while let Some(op) = tokens.next() {
            let x: f64 = tokens
                .next()
                .expect("an operand after an operator")
                .parse()
                .expect("a number");
            acc = match op {
                "×" | "*" => acc * x,
                "/" => acc / x,
                "+" => acc + x,
                "−" | "-" => acc - x,
                other => panic!("unknown operator {other}"),
            };
        }
        acc
    }

    /// The `# ⇒ name = expression = result` lines of a profile, checked: each result is
    /// the expression's value to the precision it is written with (whole numbers
    /// truncated, as a count of tokens is).
    fn derivations(yaml: &str) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for line in yaml.lines() {
            let Some(rest) = line.trim_start().strip_prefix("# ⇒") else {
                continue;
            };
            let parts: Vec<&str> = rest.split('=').collect();
            assert_eq!(parts.len(), 3, "`name = expr = result`: {line}");
            let name = parts[0].trim().to_string();
            let value = eval(parts[1]);
            let written = parts[2].split_whitespace().next().expect("a result");
            let result: f64 = written.parse().expect("a number");
            let ok = match written.split_once('.') {
                None => value.floor() == result || (value - result).abs() < 1e-6,
                Some((_, decimals)) => {
                    (value - result).abs() <= 0.5 * 10f64.powi(-(decimals.len() as i32)) + 1e-9
                }
            };
            assert!(ok, "{line}: the expression gives {value}");
            out.push((name, result));
        }
        out
    }

    #[test]
    fn every_profile_loads_and_validates() {
        for p in profiles() {
            let m = p.model().unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert!(m.server.kv_cache_tokens > 0, "{}", p.name);
            assert!(
                p.summary
                    .contains(&crate::units::group_thousands(m.server.kv_cache_tokens)),
                "{}: the summary names the KV tokens",
                p.name
            );
        }
        assert_eq!(
            find(DEFAULT_PROFILE).map(|p| p.model().expect("loads")),
            Some(Model::default_model())
        );
        assert_eq!(find("default").map(|p| p.name), Some(DEFAULT_PROFILE));
    }

    #[test]
    fn the_kv_arithmetic_in_each_profile_matches_its_numbers() {
        for p in profiles() {
            let d = derivations(p.yaml);
            let get = |k: &str| {
                d.iter()
                    .find(|(n, _)| n == k)
                    .map(|x| x.1)
                    .unwrap_or_else(|| panic!("{}: no ⇒ {k} line", p.name))
            };
            let m = p.model().expect("loads");
            assert_eq!(
                get("kvCacheTokens") as u64,
                m.server.kv_cache_tokens,
                "{}",
                p.name
            );
            // Llama 3 has 8 KV heads of 128 dimensions at 2 bytes: 4 KiB per layer for K
            // and V together.
            let kv = get("kvBytesPerToken");
            assert_eq!(kv % 4096.0, 0.0, "{}", p.name);
            assert!(get("weightsGiB") > 0.0 && get("kvGiB") > 0.0, "{}", p.name);
        }
    }

    #[test]
    fn the_8b_128k_profile_holds_a_whole_128k_request() {
        let m = find("llama3-8b-80gb-128k")
            .expect("exists")
            .model()
            .expect("loads");
        assert!(m.server.kv_cache_tokens >= 131_072);
        let big = find("llama3-70b-4x80gb")
            .expect("exists")
            .model()
            .expect("loads");
        assert_eq!(big.pod.requests["nvidia.com/gpu"].milli_value(), 4000);
        assert!(big.server.decode_step[&1] > m.server.decode_step[&1]);
    }

    #[test]
    fn resolve_takes_a_name_first_then_a_file() {
        let r = resolve("llama3-70b-8x80gb").expect("a profile");
        assert!(r.profile);
        assert_eq!(r.model.server.kv_cache_tokens, 1_351_680);

        let dir = std::env::temp_dir().join(format!("podscale-model-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("mine.yaml");
        std::fs::write(&file, "server:\n  kvCacheTokens: 1000\n").expect("write");
        let r = resolve(file.to_str().expect("utf-8")).expect("a file");
        assert!(!r.profile);
        assert_eq!(
            (r.name.as_str(), r.model.server.kv_cache_tokens),
            ("mine", 1000)
        );
        std::fs::remove_dir_all(&dir).ok();

        let err = resolve("llama9-1t").expect_err("neither").to_string();
        assert!(err.contains("neither a model profile"), "{err}");
        assert!(err.contains("llama3-70b-4x80gb"), "{err}");
        assert!(list().lines().count() == profiles().len());
    }
}
