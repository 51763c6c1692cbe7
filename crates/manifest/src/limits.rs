//! How much input podscale reads, and how to raise the limit.
//!
//! Every file podscale reads (manifests, scenarios, `podscale.yaml`, model files) goes
//! through [`crate::parse_documents`], which refuses text longer than
//! [`max_input_bytes`], and should be read with [`read_file`] / [`read_stdin`], which
//! stop reading past the limit instead of loading a huge file first.
//!
//! The default, [`DEFAULT_MAX_INPUT_BYTES`] (256 MiB), is over 25 times a day of
//! captured decisions (about 10 MB). Parsing keeps the JSON value and the position of
//! every node, a few times the input in memory, so the limit also bounds memory. Set
//! [`MAX_INPUT_BYTES_ENV`] (`PODSCALE_MAX_INPUT_BYTES`) to a number of bytes to change
//! it. Alias expansion inside a document is bounded separately (see [`crate::parse`]).

use std::io::Read;
use std::path::Path;

use crate::{ManifestError, Result};

/// The environment variable that overrides [`DEFAULT_MAX_INPUT_BYTES`].
pub const MAX_INPUT_BYTES_ENV: &str = "PODSCALE_MAX_INPUT_BYTES";

/// Largest input read by default: 256 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 256 << 20;

/// The input limit in bytes: [`MAX_INPUT_BYTES_ENV`] when set, else
/// [`DEFAULT_MAX_INPUT_BYTES`].
///
/// # Errors
/// [`ManifestError::Limit`] when the variable is set but is not a positive integer.
pub fn max_input_bytes() -> Result<u64> {
    match std::env::var(MAX_INPUT_BYTES_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_MAX_INPUT_BYTES),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ManifestError::Limit {
                variable: MAX_INPUT_BYTES_ENV,
                value: crate::diagnostic::shorten(&text).into_owned(),
            }),
        },
        Err(std::env::VarError::NotUnicode(raw)) => Err(ManifestError::Limit {
            variable: MAX_INPUT_BYTES_ENV,
            value: crate::diagnostic::shorten(&raw.to_string_lossy()).into_owned(),
        }),
    }
}

/// Refuses an input of `size` bytes when it is over the limit.
pub(crate) fn check_size(size: u64, file: &str) -> Result<()> {
    let limit = max_input_bytes()?;
    if size > limit {
        return Err(ManifestError::TooLarge {
            file: file.to_owned(),
            size,
            limit,
        });
    }
    Ok(())
}

/// Reads a UTF-8 file whole, refusing one over [`max_input_bytes`] without reading it.
///
/// # Errors
/// [`ManifestError::TooLarge`] past the limit, [`ManifestError::Read`] when the file
/// cannot be read or is not UTF-8.
pub fn read_file(path: &Path) -> Result<String> {
    let file = path.display().to_string();
    let read_error = |source| ManifestError::Read {
        file: file.clone(),
        source,
    };
    let handle = std::fs::File::open(path).map_err(read_error)?;
    // The size on disk first, so a huge regular file is refused without reading it;
    // the bounded read below still catches files that grow and pipes that report 0.
    if let Ok(meta) = handle.metadata() {
        check_size(meta.len(), &file)?;
    }
    read_bounded(handle, &file)
}

/// Reads standard input whole (labelled `file` in errors), refusing more than
/// [`max_input_bytes`].
///
/// # Errors
/// As [`read_file`].
pub fn read_stdin(file: &str) -> Result<String> {
    read_bounded(std::io::stdin().lock(), file)
}

/// Reads at most the limit plus one byte, so an endless stream ends in an error.
///
/// # Errors
/// As [`read_file`].
pub fn read_bounded(reader: impl Read, file: &str) -> Result<String> {
    let limit = max_input_bytes()?;
    let mut text = String::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_string(&mut text)
        .map_err(|source| ManifestError::Read {
            file: file.to_owned(),
            source,
        })?;
    check_size(text.len() as u64, file)?;
    Ok(text)
}
