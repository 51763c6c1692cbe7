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

/// A float as Prometheus writes it into a label value: `labels.FormatOpenMetricsFloat`,
/// which is Go's `strconv.FormatFloat(v, 'g', -1, 64)` with `.0` appended when the
/// result has neither `.` nor `e`. So `1` is `1.0`, `0` and `-0` are `0.0`, `0.25`
/// stays, `100000` is `100000.0`, `1e6` is `1e+06`, `0.00001` is `1e-05`, and NaN,
/// +Inf, -Inf are `NaN`, `+Inf`, `-Inf`.
pub fn format_openmetrics_float(v: f64) -> String {
    openmetrics_float(v).as_str().to_owned()
}

/// [`format_openmetrics_float`] into a stack buffer: label reading compares with it
/// and allocates only when the value written differs.
pub(crate) fn openmetrics_float(v: f64) -> FloatBuf {
    let mut out = FloatBuf::default();
    if v.is_nan() {
        out.push_str("NaN");
        return out;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return out;
    }
    if v == 0.0 {
        // Go's `f == 0` holds for -0 too.
        out.push_str("0.0");
        return out;
    }
    // Rust's `{:e}` gives the shortest digits that read back to `v`, the digits Go's
    // shortest formatting picks: `d[.ddd]e[-]x`.
    let mut sci = FloatBuf::default();
    let _ = write!(sci, "{:e}", v.abs());
    let (mantissa, exp) = sci.as_str().split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits = [0u8; 24];
    let mut nd = 0;
    for d in mantissa.bytes().filter(u8::is_ascii_digit) {
        if nd < digits.len() {
            digits[nd] = d;
            nd += 1;
        }
    }
    let digits = &digits[..nd];
    if v < 0.0 {
        out.push(b'-');
    }
    // strconv `%g` with the shortest precision: exponent form when the exponent is
    // below -4 or at least 6 (`eprec = 6` when shortest, in `formatDigits`).
    if !(-4..6).contains(&exp) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            digits[1..].iter().for_each(|&d| out.push(d));
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        // At least two exponent digits, as Go's `fmtE` writes them.
        let _ = write!(out, "{:02}", exp.unsigned_abs());
        return out;
    }
    // `fmtF` with as many decimals as the digits need.
    let nd = i32::try_from(nd).unwrap_or(i32::MAX);
    let dp = exp + 1; // digits before the decimal point
    let digit = |j: i32| {
        usize::try_from(j)
            .ok()
            .and_then(|j| digits.get(j))
            .map_or(b'0', |&d| d)
    };
    if dp > 0 {
        (0..dp).for_each(|j| out.push(digit(j)));
    } else {
        out.push(b'0');
    }
    let decimals = (nd - dp).max(0);
    if decimals > 0 {
        out.push(b'.');
        (0..decimals).for_each(|i| out.push(digit(dp + i)));
    } else {
        out.push_str(".0");
    }
    out
}

/// ASCII text on the stack, long enough for any `f64` as `{:e}` or as Go writes it
/// (at most 17 digits, a sign, a point and a 5-character exponent).
pub(crate) struct FloatBuf {
    buf: [u8; 40],
    len: usize,
}

impl Default for FloatBuf {
    fn default() -> Self {
        Self {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl FloatBuf {
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    fn push(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn push_str(&mut self, s: &str) {
        s.bytes().for_each(|b| self.push(b));
    }
}

impl std::fmt::Write for FloatBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.len + s.len() > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.push_str(s);
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::format_openmetrics_float;

    /// Go's `strconv.FormatFloat(v, 'g', -1, 64)` for these, plus `.0` where
    /// `FormatOpenMetricsFloat` adds it.
    #[test]
    fn floats_are_spelled_as_prometheus_spells_them() {
        for (v, want) in [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (-1.0, "-1.0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (0.25, "0.25"),
            (0.1, "0.1"),
            (2.5, "2.5"),
            (10.0, "10.0"),
            (100_000.0, "100000.0"),
            (123_456.0, "123456.0"),
            (999_999.5, "999999.5"),
            (1e6, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (123_456_789.0, "1.23456789e+08"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (0.0001, "0.0001"),
            (0.000_123, "0.000123"),
            (0.00001, "1e-05"),
            (-0.000_015, "-1.5e-05"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.005, "0.005"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(format_openmetrics_float(v), want, "{v:e}");
        }
    }
}
