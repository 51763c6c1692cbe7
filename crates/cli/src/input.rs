//! Reading user files: JSON or YAML with positions, so every error names the file,
//! line, column and field.
use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde::de::DeserializeOwned;

/// Reads a file (`-` = standard input) to a string, refusing input over
/// `PODSCALE_MAX_INPUT_BYTES` (see `podscale_manifest::limits`) without reading it all.
pub fn read(path: &str) -> Result<String> {
    if path == "-" {
        return Ok(podscale_manifest::read_stdin("standard input")?);
    }
    Ok(podscale_manifest::read_file(Path::new(path))?)
}

/// Reads a file (`-` = standard input) to bytes, at most `limit` of them: past it, an
/// error naming the limit, so that `/dev/zero` or an endless pipe cannot take all memory.
pub fn read_limited(path: &str, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let (name, read) = if path == "-" {
        let r = std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes);
        ("standard input".to_string(), r)
    } else {
        let r = std::fs::File::open(path).and_then(|f| f.take(limit + 1).read_to_end(&mut bytes));
        (path.to_string(), r)
    };
    read.with_context(|| format!("cannot read {name}"))?;
    if bytes.len() as u64 > limit {
        anyhow::bail!("{name} is larger than {} MiB", limit >> 20);
    }
    Ok(bytes)
}

/// Every document as `T`; a top-level array yields one `T` per element. Returns the
/// values and whether the input was a single object (not an array).
pub fn from_documents<T: DeserializeOwned>(
    docs: &[podscale_manifest::Document],
    file: &str,
) -> Result<(Vec<T>, bool)> {
    if docs.is_empty() {
        anyhow::bail!("{file}: no document found");
    }
    let single = docs.len() == 1 && !docs[0].value.is_array();
    let mut out = Vec::new();
    for doc in docs {
        if doc.value.is_array() {
            let items: Vec<T> = podscale_manifest::deserialize(doc, file)?;
            out.extend(items);
        } else {
            out.push(podscale_manifest::deserialize(doc, file)?);
        }
    }
    Ok((out, single))
}
