//! The Prometheus exposition formats: text format 0.0.4 and OpenMetrics 1.0, read
//! without copying and written back.
//!
//! [`Parser`] walks a scrape body line by line and yields [`Entry`] values that borrow
//! from it: names and label values are `Cow::Borrowed` unless they hold escapes, and a
//! sample's labels stay as the raw text between the braces ([`Labels`]) until someone
//! asks for them. Looking for one series in a 10 MB body therefore decodes only the
//! labels of the series with that name.
//!
//! What is accepted follows the Prometheus server's scrape parsers (`promparse`,
//! `openmetricsparse`) rather than the stricter client-side `expfmt`:
//! - label values escape `\\`, `\"` and `\n`; any other escaped character is kept as
//!   written (backslash included), as Prometheus keeps it;
//! - `=`, `,`, `{`, `}`, `#` and UTF-8 are ordinary characters inside quotes;
//! - values are Go floats (`NaN`, `+Inf`, `-Inf`, `1e3`, `.5`); a decimal that overflows
//!   is an error, as `strconv.ParseFloat`'s range error is;
//! - metric and label names may be quoted UTF-8 strings (`{"my.metric", "a.b"="c"}`,
//!   `# TYPE "my.metric" gauge`), the Prometheus 3 syntax; the quoted metric name may
//!   stand anywhere in the braces (`{q="0.9","http.status"}`), once, and not when
//!   the name is also written before them;
//! - the text format (only) also takes labels without a comma between them
//!   (`a{x="1" y="2"}`) and a value right after the closing brace (`a{b="c"}1`), as
//!   `promparse` does (its lexer has no separator rule there); OpenMetrics rejects
//!   both, as `openmetricsparse` and the OpenMetrics ABNF do;
//! - in the text format a bare `# HELP` or `# TYPE` (nothing after the keyword) is a
//!   comment, as `promlex` reads it; in OpenMetrics it is an error;
//! - `# HELP name text`: the text starts after exactly one blank (further blanks are
//!   part of it), as both Prometheus lexers cut it;
//! - the `le` label of a histogram and the `quantile` label of a summary read back
//!   normalized as Prometheus 3 stores them (`le="1"` is `"1.0"`, `quantile="0"` is
//!   `"0.0"`; see [`format_openmetrics_float`]), so a selector copied from PromQL
//!   matches the same series here;
//! - text-format timestamps are integer milliseconds; OpenMetrics timestamps are
//!   seconds, converted to milliseconds exactly for plain decimals (Prometheus
//!   multiplies by 1000 in floating point);
//! - OpenMetrics exemplars (`… # {trace_id="a"} 1.0 1520879607.789`), `# UNIT`, and
//!   the mandatory `# EOF` (a body that ends without it was cut short: an error);
//! - blanks and tabs between tokens, a trailing comma in a label set, `\r\n` line ends
//!   and blank lines are tolerated in both formats.
//!
//! Not supported: hexadecimal floats (`0x1p-2`), and native histograms (which only
//! exist in the protobuf format).
//!
//! Where Prometheus is stricter, this reader accepts a little more (a scrape that
//! Prometheus fails is not the case to guard against): negative text-format
//! timestamps (valid in the format's spec, which says int64), extra blanks around the
//! `# TYPE` keyword's type, and in OpenMetrics free `#` comments, tabs and repeated
//! blanks as separators, a leading blank, `# HELP name` without text and a `# UNIT`
//! that is not the name's suffix. `tests/exposition_upstream.rs` lists these case by
//! case next to Prometheus's own parser tests.
use std::borrow::Cow;
use std::fmt;

mod parse;
mod write;

pub use parse::Parser;
pub use write::{
    escape_label_value, format_openmetrics_float, format_value, write_entries, write_entry,
};

/// Which exposition format a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `text/plain; version=0.0.4`, the classic Prometheus text format.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The `Accept` header a scraper sends, preferring OpenMetrics as Prometheus does.
    pub const ACCEPT: &'static str = "application/openmetrics-text;version=1.0.0,\
        application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    /// The format a `Content-Type` header announces; anything that is not OpenMetrics
    /// is read as the text format (as Prometheus falls back to it).
    pub fn from_content_type(content_type: Option<&str>) -> Self {
        match content_type {
            Some(ct)
                if ct
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/openmetrics-text") =>
            {
                Self::OpenMetrics
            }
            _ => Self::Text,
        }
    }
}

/// A metric family's type, from a `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    /// OpenMetrics only.
    GaugeHistogram,
    /// OpenMetrics only.
    StateSet,
    /// OpenMetrics only.
    Info,
    /// `untyped` in the text format, `unknown` in OpenMetrics.
    Unknown,
}

impl MetricType {
    /// The keyword a `# TYPE` line uses for this type in `format`.
    pub fn as_str(self, format: Format) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
            Self::GaugeHistogram => "gaugehistogram",
            Self::StateSet => "stateset",
            Self::Info => "info",
            Self::Unknown => match format {
                Format::Text => "untyped",
                Format::OpenMetrics => "unknown",
            },
        }
    }

    /// The type a `# TYPE` keyword names in `format`, if the format has it.
    pub fn parse(keyword: &str, format: Format) -> Option<Self> {
        let kind = match keyword {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "summary" => Self::Summary,
            "untyped" if format == Format::Text => Self::Unknown,
            "unknown" if format == Format::OpenMetrics => Self::Unknown,
            "gaugehistogram" if format == Format::OpenMetrics => Self::GaugeHistogram,
            "stateset" if format == Format::OpenMetrics => Self::StateSet,
            "info" if format == Format::OpenMetrics => Self::Info,
            _ => return None,
        };
        Some(kind)
    }
}

/// One line of an exposition.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry<'a> {
    /// A sample: one series' value.
    Sample(Sample<'a>),
    /// `# HELP name text` (text unescaped).
    Help {
        name: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    /// `# TYPE name type`.
    Type {
        name: Cow<'a, str>,
        kind: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics).
    Unit {
        name: Cow<'a, str>,
        unit: Cow<'a, str>,
    },
    /// Any other `#` line: the text after the `#`, as written.
    Comment(&'a str),
    /// `# EOF` (OpenMetrics): the end of the exposition.
    Eof,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The series name (for a histogram bucket, `…_bucket`).
    pub name: Cow<'a, str>,
    pub labels: Labels<'a>,
    /// The value; may be NaN or ±Inf.
    pub value: f64,
    /// Milliseconds since the Unix epoch, when the line carries a timestamp.
    pub timestamp_ms: Option<i64>,
    /// The OpenMetrics exemplar, if any.
    pub exemplar: Option<Exemplar<'a>>,
}

/// An OpenMetrics exemplar (`# {trace_id="…"} value timestamp`).
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar<'a> {
    pub labels: Labels<'a>,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
}

/// A label set, kept as the validated text between the braces and decoded on demand.
///
/// Equality compares the decoded pairs in order, so `{a="1"}` equals `{ a = "1" , }`.
#[derive(Clone, Copy, Default)]
pub struct Labels<'a> {
    raw: &'a str,
    normalize: Normalize,
}

/// The label whose value Prometheus rewrites when it ingests a sample.
///
/// Prometheus 3 (`normalizeFloatsInLabelValues` in `model/textparse`, since 3.0.0,
/// prometheus#15164) reformats the `le` label of a `histogram` sample and the
/// `quantile` label of a `summary` sample with `labels.FormatOpenMetricsFloat`, in the
/// text and OpenMetrics parsers alike (not for `gaugehistogram`). The type is that of
/// the last `# TYPE` line read, whatever family it named: Prometheus keeps it across
/// families (a "knowingly broken" case its own tests pin, `wind_speed` in
/// `TestPromParse`), and so do we, to store the same label values it does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Normalize {
    #[default]
    None,
    Le,
    Quantile,
}

impl Normalize {
    /// What to normalize in the samples that follow a `# TYPE … kind` line.
    pub(crate) fn for_type(kind: Option<MetricType>) -> Self {
        match kind {
            Some(MetricType::Histogram) => Self::Le,
            Some(MetricType::Summary) => Self::Quantile,
            _ => Self::None,
        }
    }

    fn label(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Le => Some("le"),
            Self::Quantile => Some("quantile"),
        }
    }
}

impl<'a> Labels<'a> {
    /// Labels over text that [`Parser`] has validated.
    pub(crate) fn from_validated(raw: &'a str, normalize: Normalize) -> Self {
        Self { raw, normalize }
    }

    /// The label pairs, in the order written, unescaped; a histogram's `le` and a
    /// summary's `quantile` normalized as Prometheus stores them (module docs).
    pub fn iter(&self) -> LabelIter<'a> {
        LabelIter {
            raw: self.raw,
            pos: 0,
            normalize: self.normalize.label(),
        }
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether there is no label.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The number of labels.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The raw text between the braces, as written (without a quoted metric name that
    /// comes first; one further on stays in).
    pub fn as_raw(&self) -> &'a str {
        self.raw
    }
}

impl PartialEq for Labels<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A label's name and value, unescaped.
pub type LabelPair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Iterator over the pairs of [`Labels`].
#[derive(Debug, Clone)]
pub struct LabelIter<'a> {
    raw: &'a str,
    pos: usize,
    /// The label whose value is normalized, if any.
    normalize: Option<&'static str>,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = LabelPair<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let ((name, value), next) = parse::next_label(self.raw, self.pos)?;
        self.pos = next;
        let value = match self.normalize {
            Some(label) if name == label => normalize_float(value),
            _ => value,
        };
        Some((name, value))
    }
}

/// `normalizeFloatsInLabelValues`: a value that Go's `strconv.ParseFloat` reads is
/// rewritten with `FormatOpenMetricsFloat`; anything else stays as written.
fn normalize_float(value: Cow<'_, str>) -> Cow<'_, str> {
    let Some(v) = parse::parse_go_float(&value) else {
        return value;
    };
    let normal = write::openmetrics_float(v);
    if normal.as_str() == value {
        value
    } else {
        Cow::Owned(normal.as_str().to_owned())
    }
}

/// Why a body could not be read: the first offending line, where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in bytes.
    pub column: usize,
    pub message: String,
}

/// Parses a whole body into entries (stopping at the first error).
///
/// # Errors
/// The first malformed line, as a [`ParseError`].
pub fn parse(src: &str, format: Format) -> Result<Vec<Entry<'_>>, ParseError> {
    Parser::new(src, format).collect()
}

/// Reads a sample value as the formats (and Prometheus's JSON API) write it: a Go
/// float, `NaN`, `+Inf`, `-Inf`.
pub fn parse_value(s: &str) -> Option<f64> {
    parse::parse_float(s)
}

/// Whether `name` is a metric name that needs no quotes (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_legacy_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && parse::is_metric_start(b[0])
        && b[1..].iter().all(|&c| parse::is_metric_char(c))
}

/// Whether `name` is a label name that needs no quotes (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_legacy_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty() && parse::is_label_start(b[0]) && b[1..].iter().all(|&c| parse::is_label_char(c))
}
