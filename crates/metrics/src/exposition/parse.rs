//! The line parser behind [`Parser`]. It works on bytes: every delimiter is ASCII, so
//! slicing at one never splits a UTF-8 character.
use std::borrow::Cow;

use super::{
    Entry, Exemplar, Format, LabelPair, Labels, MetricType, Normalize, ParseError, Sample,
};

const METRIC_START: u8 = 1;
const METRIC_CHAR: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL_CHAR: u8 = 8;

/// Character classes of the unquoted name grammars, one table lookup per byte.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut v = 0;
        if alpha || b == b':' {
            v |= METRIC_START | METRIC_CHAR;
        }
        if digit {
            v |= METRIC_CHAR | LABEL_CHAR;
        }
        if alpha {
            v |= LABEL_START | LABEL_CHAR;
        }
        t[c] = v;
        c += 1;
    }
    t
};

pub(super) fn is_metric_start(b: u8) -> bool {
    CLASS[b as usize] & METRIC_START != 0
}
pub(super) fn is_metric_char(b: u8) -> bool {
    CLASS[b as usize] & METRIC_CHAR != 0
}
pub(super) fn is_label_start(b: u8) -> bool {
    CLASS[b as usize] & LABEL_START != 0
}
pub(super) fn is_label_char(b: u8) -> bool {
    CLASS[b as usize] & LABEL_CHAR != 0
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Reads an exposition body entry by entry (see the [module docs](super)).
///
/// The iterator stops after the first error. For OpenMetrics it yields
/// [`Entry::Eof`] for `# EOF` and an error if the body ends without it or goes on
/// after it.
#[derive(Debug, Clone)]
pub struct Parser<'a> {
    src: &'a str,
    format: Format,
    /// Byte offset of the next line.
    pos: usize,
    /// 1-based number of the next line.
    line: usize,
    /// The type of the last `# TYPE` line, for the labels Prometheus normalizes.
    last_type: Option<MetricType>,
    eof_seen: bool,
    done: bool,
}

impl<'a> Parser<'a> {
    pub fn new(src: &'a str, format: Format) -> Self {
        Self {
            src,
            format,
            pos: 0,
            line: 1,
            last_type: None,
            eof_seen: false,
            done: false,
        }
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The samples only, skipping metadata and comments.
    pub fn samples(self) -> impl Iterator<Item = Result<Sample<'a>, ParseError>> {
        self.filter_map(|entry| match entry {
            Ok(Entry::Sample(s)) => Some(Ok(s)),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let bytes = self.src.as_bytes();
            if self.pos >= bytes.len() {
                self.done = true;
                if self.format == Format::OpenMetrics && !self.eof_seen {
                    return Some(Err(ParseError {
                        line: self.line,
                        column: 1,
                        message: "OpenMetrics body does not end with \"# EOF\" (truncated?)".into(),
                    }));
                }
                return None;
            }
            let start = self.pos;
            let mut end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |k| start + k);
            self.pos = end + 1;
            let line_no = self.line;
            self.line += 1;
            // `\r\n` line ends: carriage returns before the newline are not content.
            while end > start && bytes[end - 1] == b'\r' {
                end -= 1;
            }
            let mut cur = Cursor {
                src: self.src,
                b: bytes,
                i: start,
                end,
                line_start: start,
                line: line_no,
            };
            cur.skip_blanks();
            if self.eof_seen {
                self.done = true;
                return Some(Err(cur.error("content after \"# EOF\"")));
            }
            if cur.at_end() {
                continue;
            }
            let result = if cur.peek() == b'#' {
                cur.comment(self.format)
            } else {
                let normalize = Normalize::for_type(self.last_type);
                cur.sample(self.format, normalize).map(Entry::Sample)
            };
            match result {
                Ok(Entry::Eof) => self.eof_seen = true,
                Ok(Entry::Type { kind, .. }) => self.last_type = Some(kind),
                Err(_) => self.done = true,
                Ok(_) => {}
            }
            return Some(result);
        }
    }
}

/// A position inside one line.
struct Cursor<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    /// End of the line (exclusive, before `\n` / `\r\n`).
    end: usize,
    line_start: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.i >= self.end
    }

    fn peek(&self) -> u8 {
        if self.i < self.end {
            self.b[self.i]
        } else {
            b'\n'
        }
    }

    fn skip_blanks(&mut self) {
        while self.i < self.end && is_blank(self.b[self.i]) {
            self.i += 1;
        }
    }

    /// Skips at least one blank; false if there was none.
    fn require_blanks(&mut self) -> bool {
        let before = self.i;
        self.skip_blanks();
        self.i > before
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.i, message)
    }

    fn error_at(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            column: at.saturating_sub(self.line_start) + 1,
            message: message.into(),
        }
    }

    fn describe_here(&self) -> String {
        if self.at_end() {
            "end of line".into()
        } else {
            let c = self.src[self.i..].chars().next().unwrap_or('?');
            format!("{c:?}")
        }
    }

    /// A token up to the next blank or the end of the line.
    fn token(&mut self) -> &'a str {
        let start = self.i;
        while self.i < self.end && !is_blank(self.b[self.i]) {
            self.i += 1;
        }
        &self.src[start..self.i]
    }

    /// An unquoted metric name or a quoted string, for `# HELP` / `# TYPE` / `# UNIT`.
    fn metadata_name(&mut self) -> Result<Cow<'a, str>, ParseError> {
        if self.peek() == b'"' {
            return self.quoted();
        }
        let start = self.i;
        if !is_metric_start(self.peek()) {
            return Err(self.error(format!(
                "expected a metric name, found {}",
                self.describe_here()
            )));
        }
        while self.i < self.end && is_metric_char(self.b[self.i]) {
            self.i += 1;
        }
        Ok(Cow::Borrowed(&self.src[start..self.i]))
    }

    /// A `#` line.
    fn comment(&mut self, format: Format) -> Result<Entry<'a>, ParseError> {
        self.i += 1; // '#'
        let text_start = self.i;
        let comment = |c: &Self| Ok(Entry::Comment(&c.src[text_start..c.end]));
        if !self.require_blanks() {
            return comment(self);
        }
        let keyword_at = self.i;
        let keyword = self.token();
        match keyword {
            "HELP" | "TYPE" => {}
            "UNIT" if format == Format::OpenMetrics => {}
            "EOF" if format == Format::OpenMetrics => {
                self.skip_blanks();
                if !self.at_end() {
                    return Err(self.error("unexpected text after \"# EOF\""));
                }
                return Ok(Entry::Eof);
            }
            _ => return comment(self),
        }
        // `promlex` only enters the metadata states on `HELP[\t ]+` / `TYPE[\t ]+`; a
        // keyword that ends the line is consumed as a comment. OpenMetrics has no
        // free comments: there it is an error.
        if format == Format::Text && self.at_end() {
            return comment(self);
        }
        if !self.require_blanks() {
            return Err(self.error(format!("expected a metric name after \"# {keyword}\"")));
        }
        let name = self.metadata_name()?;
        let after_name = self.i;
        if keyword == "HELP" {
            // Both lexers cut the text one character after the name (`buf()[1:]`):
            // blanks beyond the first are part of it. A text-format line whose rest
            // is only blanks has an empty text.
            if self.at_end() {
                return Ok(Entry::Help {
                    name,
                    text: Cow::Borrowed(""),
                });
            }
            if !is_blank(self.peek()) {
                return Err(self.error(format!(
                    "expected a blank after the metric name, found {}",
                    self.describe_here()
                )));
            }
            let mut raw = &self.src[self.i + 1..self.end];
            if format == Format::Text && raw.bytes().all(is_blank) {
                raw = "";
            }
            let text = unescape_help(raw, format);
            return Ok(Entry::Help { name, text });
        }
        let had_blank = self.require_blanks();
        if !had_blank && !self.at_end() {
            return Err(self.error(format!(
                "expected a blank after the metric name, found {}",
                self.describe_here()
            )));
        }
        match keyword {
            "TYPE" => {
                let at = self.i;
                let word = self.token();
                self.skip_blanks();
                if !self.at_end() {
                    return Err(self.error("unexpected text after the metric type"));
                }
                match MetricType::parse(word, format) {
                    Some(kind) => Ok(Entry::Type { name, kind }),
                    None if word.is_empty() => {
                        Err(self.error_at(after_name, "missing metric type"))
                    }
                    None => Err(self.error_at(at, format!("invalid metric type {word:?}"))),
                }
            }
            _ => {
                debug_assert_eq!(keyword, "UNIT", "keyword at {keyword_at}");
                let unit = self.token();
                self.skip_blanks();
                if !self.at_end() {
                    return Err(self.error("unexpected text after the unit"));
                }
                Ok(Entry::Unit {
                    name,
                    unit: Cow::Borrowed(unit),
                })
            }
        }
    }

    /// A quoted string at the cursor, unescaped; the cursor ends after the closing quote.
    fn quoted(&mut self) -> Result<Cow<'a, str>, ParseError> {
        match scan_quoted(self.b, self.i, self.end) {
            Ok((content_end, escaped)) => {
                let raw = &self.src[self.i + 1..content_end];
                self.i = content_end + 1;
                Ok(unescape_quoted(raw, escaped))
            }
            Err(at) => Err(self.error_at(at, "unterminated quoted string")),
        }
    }

    /// A sample line.
    fn sample(&mut self, format: Format, normalize: Normalize) -> Result<Sample<'a>, ParseError> {
        let mut name: Option<Cow<'a, str>> = None;
        if is_metric_start(self.peek()) {
            let start = self.i;
            self.i += 1;
            while self.i < self.end && is_metric_char(self.b[self.i]) {
                self.i += 1;
            }
            name = Some(Cow::Borrowed(&self.src[start..self.i]));
            // Blanks may separate the name from its labels (as `expfmt` allows).
            let after_name = self.i;
            self.skip_blanks();
            if self.peek() != b'{' {
                self.i = after_name;
            }
        } else if self.peek() != b'{' {
            return Err(self.error(format!(
                "expected a metric name or '{{', found {}",
                self.describe_here()
            )));
        }
        let mut labels = Labels::default();
        let braces = self.peek() == b'{';
        if braces {
            labels = Labels::from_validated(self.label_set(format, &mut name)?, normalize);
        }
        let Some(name) = name else {
            return Err(self.error("sample without a metric name"));
        };
        // In the text format the value may follow the closing brace directly
        // (`a{b="c"}1`): `promlex` goes from `}` to its value state, which takes
        // `[^{ \t\n]+` with no blank first. OpenMetrics needs the space.
        let glued = braces && format == Format::Text && !self.at_end();
        if !self.require_blanks() && !glued {
            return Err(self.error(format!(
                "expected a blank before the value, found {}",
                self.describe_here()
            )));
        }
        let value = self.value()?;
        let mut sample = Sample {
            name,
            labels,
            value,
            timestamp_ms: None,
            exemplar: None,
        };
        let had_blank = self.require_blanks();
        if self.at_end() {
            return Ok(sample);
        }
        if !had_blank {
            return Err(self.error(format!(
                "expected a blank after the value, found {}",
                self.describe_here()
            )));
        }
        if self.peek() != b'#' {
            sample.timestamp_ms = Some(self.timestamp(format)?);
            let had_blank = self.require_blanks();
            if self.at_end() {
                return Ok(sample);
            }
            if !had_blank || self.peek() != b'#' {
                return Err(self.error(format!(
                    "unexpected {} after the timestamp",
                    self.describe_here()
                )));
            }
        }
        if format != Format::OpenMetrics {
            return Err(self.error("exemplars are only allowed in OpenMetrics"));
        }
        self.i += 1; // '#'
        self.skip_blanks();
        if self.peek() != b'{' {
            return Err(self.error("expected '{' to open the exemplar's labels"));
        }
        let mut no_name = None;
        let labels = Labels::from_validated(
            self.label_set(Format::OpenMetrics, &mut no_name)?,
            Normalize::None,
        );
        if no_name.is_some() {
            return Err(self.error("an exemplar has no metric name"));
        }
        if !self.require_blanks() {
            return Err(self.error("expected a blank before the exemplar value"));
        }
        let value = self.value()?;
        self.skip_blanks();
        let timestamp_ms = if self.at_end() {
            None
        } else {
            let ts = self.timestamp(Format::OpenMetrics)?;
            self.skip_blanks();
            if !self.at_end() {
                return Err(self.error("unexpected text after the exemplar"));
            }
            Some(ts)
        };
        sample.exemplar = Some(Exemplar {
            labels,
            value,
            timestamp_ms,
        });
        Ok(sample)
    }

    /// `{…}` at the cursor; returns the label text (see [`Labels`]). A quoted string
    /// followed by `,` or `}` is the metric name, wherever it stands (`parseLVals` in
    /// both Prometheus parsers); it is stored in `name`, which must be empty. In the
    /// text format the comma between labels is optional, as in `promparse` (its own
    /// comment calls this "not clear if intended", its tests pin it); OpenMetrics
    /// requires it.
    fn label_set(
        &mut self,
        format: Format,
        name: &mut Option<Cow<'a, str>>,
    ) -> Result<&'a str, ParseError> {
        self.i += 1; // '{'
        self.skip_blanks();
        let mut raw_start = self.i;
        let mut first = true;
        loop {
            match self.peek() {
                b'}' => break,
                b'"' => {
                    let at = self.i;
                    let s = self.quoted()?;
                    self.skip_blanks();
                    if self.peek() == b'=' {
                        self.label_value()?;
                    } else {
                        if !matches!(self.peek(), b',' | b'}') {
                            return Err(self.error(format!(
                                "expected '=' or, after a quoted metric name, ',' or '}}', found {}",
                                self.describe_here()
                            )));
                        }
                        if name.is_some() {
                            return Err(self.error_at(at, "the metric name is already set"));
                        }
                        *name = Some(s);
                        if first {
                            // The label text starts after this name's comma; a name
                            // further on stays in it and the label reader skips it.
                            if self.peek() == b',' {
                                self.i += 1;
                                self.skip_blanks();
                            }
                            raw_start = self.i;
                            continue;
                        }
                    }
                }
                c if is_label_start(c) => {
                    self.i += 1;
                    while self.i < self.end && is_label_char(self.b[self.i]) {
                        self.i += 1;
                    }
                    self.skip_blanks();
                    self.label_value()?;
                }
                _ => {
                    return Err(self.error(format!(
                        "expected a label name or '}}', found {}",
                        self.describe_here()
                    )));
                }
            }
            first = false;
            self.skip_blanks();
            match self.peek() {
                b',' => {
                    self.i += 1;
                    self.skip_blanks();
                }
                b'}' => {}
                c if format == Format::Text && (c == b'"' || is_label_start(c)) => {}
                _ => {
                    return Err(self.error(format!(
                        "expected ',' or '}}' after a label, found {}",
                        self.describe_here()
                    )));
                }
            }
        }
        let raw = &self.src[raw_start..self.i];
        self.i += 1; // '}'
        Ok(raw)
    }

    /// `= "value"` after a label name.
    fn label_value(&mut self) -> Result<(), ParseError> {
        if self.peek() != b'=' {
            return Err(self.error(format!(
                "expected '=' after a label name, found {}",
                self.describe_here()
            )));
        }
        self.i += 1;
        self.skip_blanks();
        if self.peek() != b'"' {
            return Err(self.error(format!(
                "expected '\"' to open a label value, found {}",
                self.describe_here()
            )));
        }
        match scan_quoted(self.b, self.i, self.end) {
            Ok((content_end, _)) => {
                self.i = content_end + 1;
                Ok(())
            }
            Err(at) => Err(self.error_at(at, "unterminated label value")),
        }
    }

    fn value(&mut self) -> Result<f64, ParseError> {
        let at = self.i;
        let token = self.token();
        parse_float(token).ok_or_else(|| {
            if token.is_empty() {
                self.error_at(at, "missing value")
            } else {
                self.error_at(at, format!("invalid value {token:?}"))
            }
        })
    }

    fn timestamp(&mut self, format: Format) -> Result<i64, ParseError> {
        let at = self.i;
        let token = self.token();
        let parsed = match format {
            Format::Text => token.parse::<i64>().ok(),
            Format::OpenMetrics => seconds_to_millis(token),
        };
        parsed.ok_or_else(|| self.error_at(at, format!("invalid timestamp {token:?}")))
    }
}

/// Scans the quoted string whose opening quote is at `open`. Returns the index of the
/// closing quote and whether a backslash occurs inside, or the index where the line
/// ended first.
fn scan_quoted(b: &[u8], open: usize, end: usize) -> Result<(usize, bool), usize> {
    let mut j = open + 1;
    let mut escaped = false;
    while j < end {
        match b[j] {
            b'"' => return Ok((j, escaped)),
            b'\\' => {
                escaped = true;
                j += 2;
            }
            _ => j += 1,
        }
    }
    Err(end)
}

/// Unescapes the content of a quoted string (`\\`, `\"`, `\n`; other escapes stay).
fn unescape_quoted(raw: &str, escaped: bool) -> Cow<'_, str> {
    if !escaped {
        return Cow::Borrowed(raw);
    }
    unescape(raw, true)
}

/// `# HELP` text: the text format unescapes `\\` and `\n`; OpenMetrics also `\"`.
fn unescape_help(raw: &str, format: Format) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    unescape(raw, format == Format::OpenMetrics)
}

fn unescape(raw: &str, quote: bool) -> Cow<'_, str> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// The next label of a validated label text from byte `pos`, and where the one after
/// starts. `None` at the end (or, which validation rules out, on malformed text). A
/// quoted string not followed by `=` is the metric name and is skipped.
pub(super) fn next_label(raw: &str, pos: usize) -> Option<(LabelPair<'_>, usize)> {
    let b = raw.as_bytes();
    let end = b.len();
    let mut i = pos;
    let name = loop {
        while i < end && (is_blank(b[i]) || b[i] == b',') {
            i += 1;
        }
        if i >= end {
            return None;
        }
        if b[i] != b'"' {
            let start = i;
            while i < end && is_label_char(b[i]) {
                i += 1;
            }
            break Cow::Borrowed(&raw[start..i]);
        }
        let (close, escaped) = scan_quoted(b, i, end).ok()?;
        let open = i;
        i = close + 1;
        while i < end && is_blank(b[i]) {
            i += 1;
        }
        if i < end && b[i] == b'=' {
            break unescape_quoted(&raw[open + 1..close], escaped);
        }
    };
    while i < end && (is_blank(b[i]) || b[i] == b'=') {
        i += 1;
    }
    let (close, escaped) = scan_quoted(b, i, end).ok()?;
    let value = unescape_quoted(&raw[i + 1..close], escaped);
    Some(((name, value), close + 1))
}

/// Whether Go's `strconv.ParseFloat(s, 64)` reads `s`, and as what. Unlike a sample
/// value, no `p`/`P`/`_` filter applies (`normalizeFloatsInLabelValues` calls
/// `ParseFloat` directly). Go takes a sign before `Inf` but not before `NaN`.
/// Hexadecimal floats, which Go reads, are not: such a label value stays as written.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    if let Some(rest) = s.strip_prefix(['+', '-'])
        && rest.eq_ignore_ascii_case("nan")
    {
        return None;
    }
    parse_float(s)
}

/// Go's `strconv.ParseFloat(s, 64)` for the forms expositions use. Plain integers and
/// short decimals take an exact fast path (both operands exactly representable, one
/// correctly rounded division: Clinger's fast path).
pub(crate) fn parse_float(token: &str) -> Option<f64> {
    let b = token.as_bytes();
    if b.is_empty() {
        return None;
    }
    if let Some(v) = fast_decimal(b) {
        return Some(v);
    }
    let v: f64 = token.parse().ok()?;
    if v.is_infinite() {
        // Only a spelled-out infinity is one; a decimal that overflows is a range error.
        let body = token.trim_start_matches(['+', '-']);
        if !body.eq_ignore_ascii_case("inf") && !body.eq_ignore_ascii_case("infinity") {
            return None;
        }
    }
    Some(v)
}

const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

fn fast_decimal(b: &[u8]) -> Option<f64> {
    let (neg, digits) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut frac_digits: usize = 0;
    let mut seen_dot = false;
    let mut n_digits = 0;
    for &c in digits {
        if c.is_ascii_digit() {
            mantissa = mantissa * 10 + u64::from(c - b'0');
            n_digits += 1;
            if seen_dot {
                frac_digits += 1;
            }
        } else if c == b'.' && !seen_dot {
            seen_dot = true;
        } else {
            return None;
        }
    }
    if n_digits == 0 || n_digits > 15 {
        return None;
    }
    #[allow(clippy::cast_precision_loss)] // at most 15 digits: below 2^53, exact
    let mut v = mantissa as f64;
    if frac_digits > 0 {
        v /= POW10[frac_digits];
    }
    Some(if neg { -v } else { v })
}

/// An OpenMetrics timestamp (seconds, possibly fractional) in milliseconds. A plain
/// decimal converts exactly, truncating below the millisecond; other forms
/// (exponents) go through `f64` as Prometheus does. NaN and ±Inf are invalid.
pub(crate) fn seconds_to_millis(token: &str) -> Option<i64> {
    let b = token.as_bytes();
    let (neg, body) = match b.first()? {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let plain = !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|c| c.is_ascii_digit())
        && frac.bytes().all(|c| c.is_ascii_digit());
    if plain {
        let whole: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut millis: i64 = 0;
        for (k, c) in frac.bytes().take(3).enumerate() {
            millis += i64::from(c - b'0') * [100, 10, 1][k];
        }
        let scaled = whole.checked_mul(1000)?;
        return if neg {
            (-scaled).checked_sub(millis)
        } else {
            scaled.checked_add(millis)
        };
    }
    let v = parse_float(token)?;
    if !v.is_finite() {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)] // Prometheus: int64(ts * 1000)
    Some((v * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_agrees_with_the_standard_parser() {
        for s in [
            "0",
            "1",
            "-1",
            "123456789012345",
            "0.1",
            "3.14159",
            "-0.000001",
            "99999.99999",
            "1.",
            ".5",
            "+7",
        ] {
            assert_eq!(parse_float(s), s.parse::<f64>().ok(), "{s}");
        }
    }

    #[test]
    fn an_overflowing_decimal_is_a_range_error_but_inf_is_fine() {
        assert_eq!(parse_float("1e400"), None);
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").is_some_and(f64::is_nan));
    }

    #[test]
    fn openmetrics_timestamps_convert_exactly() {
        assert_eq!(seconds_to_millis("1520879607.789"), Some(1_520_879_607_789));
        assert_eq!(seconds_to_millis("-1.5"), Some(-1500));
        assert_eq!(seconds_to_millis("1.23456"), Some(1234));
        assert_eq!(seconds_to_millis("1e3"), Some(1_000_000));
        assert_eq!(seconds_to_millis("NaN"), None);
        assert_eq!(seconds_to_millis("."), None);
    }
}
