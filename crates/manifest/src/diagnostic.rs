//! A validation finding, worded as the Kubernetes API server words field errors.
//!
//! The wording follows `k8s.io/apimachinery/pkg/util/validation/field` (`errors.go`):
//! `Required value[: detail]`, `Forbidden: detail`, `Invalid value: <value>: detail`,
//! `Unsupported value: <value>: supported values: "A", "B"`. A bad value is shown as
//! `ErrorBody` shows it: numbers and booleans bare, strings quoted, anything else as
//! JSON (shortened here when long, so one message stays on one line).

use std::fmt;

use serde_json::Value;

use crate::position::{Pos, Positions};

/// One problem found in a manifest, displayed `file:line:col: field: message`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// The file, as given to the validator.
    pub file: String,
    /// 1-based line of the offending value (or of the parent's key when the field is
    /// missing).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The field, as Kubernetes names it: `spec.metrics[0].resource.target.averageUtilization`.
    /// Empty for a problem with the document as a whole.
    pub field: String,
    /// What is wrong, in Kubernetes' words: `Invalid value: 0: must be greater than 0`.
    pub message: String,
}

impl Diagnostic {
    /// Where the problem is.
    pub fn pos(&self) -> Pos {
        Pos::new(self.line, self.column)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Where a [`FieldError`] should be reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// At the node at this path (see [`Positions::locate`]).
    Node(String),
    /// At the key that holds the node at this path (for errors about a map key, such
    /// as an invalid label name).
    Key(String),
}

/// A field error before it has a file and a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// The field as displayed.
    pub field: String,
    /// What to point at.
    pub anchor: Anchor,
    /// The message body (`Required value: ...`).
    pub message: String,
}

impl FieldError {
    fn at(field: &str, message: String) -> Self {
        Self {
            field: field.to_owned(),
            anchor: Anchor::Node(field.to_owned()),
            message,
        }
    }

    /// Points the error at another node than the field it names.
    pub fn anchored(mut self, anchor: Anchor) -> Self {
        self.anchor = anchor;
        self
    }

    /// `field.Required`: `Required value` or `Required value: detail`.
    pub fn required(field: &str, detail: &str) -> Self {
        Self::at(field, with_detail("Required value", detail))
    }

    /// `field.Forbidden`: `Forbidden: detail`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::at(field, with_detail("Forbidden", detail))
    }

    /// `field.Invalid`: `Invalid value: <value>: detail`.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Self {
        Self::at(
            field,
            with_detail(&format!("Invalid value: {}", bad_value(value)), detail),
        )
    }

    /// `field.NotSupported`: `Unsupported value: <value>: supported values: "A", "B"`.
    pub fn not_supported(field: &str, value: &Value, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        let detail = format!("supported values: {}", list.join(", "));
        Self::at(
            field,
            format!("Unsupported value: {}: {detail}", bad_value(value)),
        )
    }

    /// A field the schema of its object does not have, as strict field validation
    /// (kubectl's default) reports it.
    pub fn unknown(field: &str) -> Self {
        Self::at(field, "field not declared in schema".to_owned())
    }

    pub fn into_diagnostic(self, file: &str, positions: &Positions) -> Diagnostic {
        let pos = match &self.anchor {
            Anchor::Node(path) => positions.locate(path),
            Anchor::Key(path) => positions
                .key(path)
                .unwrap_or_else(|| positions.locate(path)),
        };
        Diagnostic {
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            field: self.field,
            message: self.message,
        }
    }
}

fn with_detail(head: &str, detail: &str) -> String {
    if detail.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {detail}")
    }
}

/// Longest rendering of an object or array value before it is shortened.
const MAX_VALUE_CHARS: usize = 60;

/// Characters of a long string kept in a message; the rest is counted, not shown, so
/// a 50 MB value gives a one-line error.
pub const MAX_SHOWN_CHARS: usize = 100;

/// A bad value as `field.Error.ErrorBody` prints it (shortened when long).
pub(crate) fn bad_value(value: &Value) -> String {
    match value {
        Value::String(s) => quote_short(s),
        Value::Array(_) | Value::Object(_) => {
            // Rendered through a writer that stops early: a huge object is never
            // serialized whole just to be cut.
            let mut out = Capped::new(MAX_VALUE_CHARS + 1);
            let _ = serde_json::to_writer(&mut out, value);
            let json = out.text;
            if json.chars().count() > MAX_VALUE_CHARS {
                let head: String = json.chars().take(MAX_VALUE_CHARS - 3).collect();
                format!("{head}...")
            } else {
                json
            }
        }
        other => other.to_string(),
    }
}

/// Keeps the first `max` characters written to it, then refuses more.
struct Capped {
    text: String,
    max: usize,
}

impl Capped {
    fn new(max: usize) -> Self {
        Self {
            text: String::new(),
            max,
        }
    }
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.text.chars().count() >= self.max {
            return Err(std::io::Error::other("long enough"));
        }
        // serde_json writes whole UTF-8 sequences per call.
        self.text.push_str(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A string quoted as Go's `%q` would for printable text (JSON escaping otherwise).
pub(crate) fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// [`quote`] of a string shortened to [`MAX_SHOWN_CHARS`] characters, followed by its
/// full size when shortened: `"aaaa…" (52428800 bytes)`.
pub(crate) fn quote_short(s: &str) -> String {
    match s.char_indices().nth(MAX_SHOWN_CHARS) {
        None => quote(s),
        Some((cut, _)) => format!("{} ({} bytes)", quote(&format!("{}…", &s[..cut])), s.len()),
    }
}

/// A string for a message: unchanged when short, else its first [`MAX_SHOWN_CHARS`]
/// characters then `… (N bytes)`.
pub fn shorten(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(MAX_SHOWN_CHARS) {
        None => std::borrow::Cow::Borrowed(s),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}… ({} bytes)", &s[..cut], s.len())),
    }
}

/// A message from elsewhere (serde) with every long quoted part (`"…"` or `` `…` ``)
/// shortened as [`quote_short`] does, keeping the words around it: serde echoes the
/// whole offending value (`invalid type: string "<50 MB>", expected i32`).
pub fn shorten_quoted(message: &str) -> std::borrow::Cow<'_, str> {
    if message.chars().count() <= 2 * MAX_SHOWN_CHARS {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote_char = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=open]);
        let body = &rest[open + 1..];
        // The closing quote: the next one not escaped by a backslash (Debug escaping).
        let mut close = None;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' && quote_char == '"' {
                escaped = true;
            } else if c == quote_char {
                close = Some(i);
                break;
            }
        }
        let end = close.unwrap_or(body.len());
        let inner = &body[..end];
        match inner.char_indices().nth(MAX_SHOWN_CHARS) {
            None => out.push_str(inner),
            Some((cut, _)) => {
                out.push_str(&inner[..cut]);
                out.push('…');
                if close.is_some() {
                    out.push(quote_char);
                }
                out.push_str(&format!(" ({} bytes)", inner.len()));
                rest = close.map_or("", |c| &body[c + quote_char.len_utf8()..]);
                continue;
            }
        }
        match close {
            Some(c) => {
                out.push(quote_char);
                rest = &body[c + quote_char.len_utf8()..];
            }
            None => rest = "",
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_read_like_kubernetes_field_errors() {
        assert_eq!(FieldError::required("spec.x", "").message, "Required value");
        assert_eq!(
            FieldError::required("spec.x", "must specify a metric name").message,
            "Required value: must specify a metric name"
        );
        assert_eq!(
            FieldError::invalid("spec.maxReplicas", &json!(0), "must be greater than 0").message,
            "Invalid value: 0: must be greater than 0"
        );
        assert_eq!(
            FieldError::not_supported("t", &json!("Foo"), &["Disabled", "Max", "Min"]).message,
            "Unsupported value: \"Foo\": supported values: \"Disabled\", \"Max\", \"Min\""
        );
        assert_eq!(
            FieldError::forbidden("spec.metrics", "must populate the given metric source only")
                .message,
            "Forbidden: must populate the given metric source only"
        );
    }

    #[test]
    fn long_structured_values_are_shortened() {
        let long = json!({"a": "x".repeat(100)});
        let shown = bad_value(&long);
        assert_eq!(shown.chars().count(), MAX_VALUE_CHARS);
        assert!(shown.ends_with("..."));
        assert_eq!(bad_value(&json!([1, 2])), "[1,2]");
        assert_eq!(bad_value(&json!(true)), "true");
    }

    #[test]
    fn long_strings_are_cut_with_their_size() {
        let huge = "x".repeat(50 << 20);
        let shown = bad_value(&json!(huge));
        assert_eq!(
            shown,
            format!("\"{}…\" (52428800 bytes)", "x".repeat(MAX_SHOWN_CHARS))
        );
        let big_object = json!({ "a": huge });
        assert_eq!(bad_value(&big_object).chars().count(), MAX_VALUE_CHARS);
        assert_eq!(bad_value(&json!("short")), "\"short\"");
        // Multi-byte characters are cut on a character boundary.
        let accents = "é".repeat(150);
        assert_eq!(
            shorten(&accents),
            format!("{}… (300 bytes)", "é".repeat(MAX_SHOWN_CHARS))
        );
    }

    #[test]
    fn long_quoted_parts_of_foreign_messages_are_cut() {
        let message = format!(
            "invalid type: string \"{}\", expected i32",
            "y".repeat(5000)
        );
        assert_eq!(
            shorten_quoted(&message),
            format!(
                "invalid type: string \"{}…\" (5000 bytes), expected i32",
                "y".repeat(MAX_SHOWN_CHARS)
            )
        );
        let variant = format!("unknown variant `{}`, expected `Pods`", "z".repeat(300));
        assert_eq!(
            shorten_quoted(&variant),
            format!(
                "unknown variant `{}…` (300 bytes), expected `Pods`",
                "z".repeat(MAX_SHOWN_CHARS)
            )
        );
        assert_eq!(shorten_quoted("short \"message\""), "short \"message\"");
    }

    #[test]
    fn a_diagnostic_displays_file_line_column_field_and_message() {
        let d = Diagnostic {
            file: "hpa.yaml".into(),
            line: 12,
            column: 16,
            field: "spec.maxReplicas".into(),
            message: "Invalid value: \"ten\": must be an integer".into(),
        };
        assert_eq!(
            d.to_string(),
            "hpa.yaml:12:16: spec.maxReplicas: Invalid value: \"ten\": must be an integer"
        );
    }
}
