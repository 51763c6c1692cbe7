//! Writing entries back out, in either format. What [`Parser`](super::Parser) reads
//! from this output equals what was written (the round-trip property tests hold us to
//! it).
use std::fmt::Write as _;

use super::{Entry, Format, Labels, Sample, is_legacy_label_name, is_legacy_metric_name};

/// Writes entries, one per line; for OpenMetrics, ends with `# EOF` unless the entries
/// already do.
pub fn write_entries(entries: &[Entry<'_>], format: Format) -> String {
    let mut out = String::new();
    for e in entries {
        write_entry(&mut out, e, format);
    }
    if format == Format::OpenMetrics && !matches!(entries.last(), Some(Entry::Eof)) {
        out.push_str("# EOF\n");
    }
    out
}

/// Writes one entry and its newline.
pub fn write_entry(out: &mut String, entry: &Entry<'_>, format: Format) {
    match entry {
        Entry::Sample(s) => write_sample(out, s, format),
        Entry::Help { name, text } => {
            out.push_str("# HELP ");
            write_metadata_name(out, name);
            out.push(' ');
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '"' if format == Format::OpenMetrics => out.push_str("\\\""),
                    c => out.push(c),
                }
            }
        }
        Entry::Type { name, kind } => {
            out.push_str("# TYPE ");
            write_metadata_name(out, name);
            out.push(' ');
            out.push_str(kind.as_str(format));
        }
        Entry::Unit { name, unit } => {
            out.push_str("# UNIT ");
            write_metadata_name(out, name);
            out.push(' ');
            out.push_str(unit);
        }
        Entry::Comment(text) => {
            out.push('#');
            out.push_str(text);
        }
        Entry::Eof => out.push_str("# EOF"),
    }
    out.push('\n');
}

fn write_metadata_name(out: &mut String, name: &str) {
    if is_legacy_metric_name(name) {
        out.push_str(name);
    } else {
        write_quoted(out, name);
    }
}

fn write_sample(out: &mut String, s: &Sample<'_>, format: Format) {
    let legacy = is_legacy_metric_name(&s.name);
    if legacy {
        out.push_str(&s.name);
    }
    if !legacy || !s.labels.is_empty() {
        out.push('{');
        let mut first = true;
        if !legacy {
            write_quoted(out, &s.name);
            first = false;
        }
        write_labels(out, &s.labels, first);
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_value(s.value));
    if let Some(ts) = s.timestamp_ms {
        out.push(' ');
        write_timestamp(out, ts, format);
    }
    if let Some(ex) = &s.exemplar {
        out.push_str(" # {");
        write_labels(out, &ex.labels, true);
        out.push_str("} ");
        out.push_str(&format_value(ex.value));
        if let Some(ts) = ex.timestamp_ms {
            out.push(' ');
            write_timestamp(out, ts, Format::OpenMetrics);
        }
    }
}

fn write_labels(out: &mut String, labels: &Labels<'_>, mut first: bool) {
    for (name, value) in labels.iter() {
        if !first {
            out.push(',');
        }
        first = false;
        if is_legacy_label_name(&name) {
            out.push_str(&name);
        } else {
            write_quoted(out, &name);
        }
        out.push('=');
        write_quoted(out, &value);
    }
}

fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    out.push_str(&escape_label_value(s));
    out.push('"');
}

/// A label value escaped for the inside of quotes (`\\`, `\"`, `\n`).
pub fn escape_label_value(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A sample value as the formats write it: `NaN`, `+Inf`, `-Inf`, or the shortest
/// decimal that reads back to the same `f64`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

fn write_timestamp(out: &mut String, ms: i64, format: Format) {
    match format {
        Format::Text => {
            let _ = write!(out, "{ms}");
        }
        Format::OpenMetrics => {
            let sign = if ms < 0 { "-" } else { "" };
            let abs = ms.unsigned_abs();
            let _ = write!(out, "{sign}{}.{:03}", abs / 1000, abs % 1000);
        }
    }
}
