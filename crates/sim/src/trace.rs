//! Reading traffic files in the `shared/traces` format: per-request traces
//! (`timestamp_seconds[,input_tokens,output_tokens]`) and rate envelopes
//! (`timestamp_seconds,requests_per_second[,…]`). A file is checked whole before a run
//! ([`scan`]) so that a bad line is one clear `file:line: message` error, then streamed
//! during the run ([`RequestReader`]) so memory does not grow with the trace.
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;

use rand::rngs::ChaCha8Rng;
use rand::{Rng as _, SeedableRng as _};

/// The trace shipped with podscale: one hour of the Azure LLM inference trace 2023,
/// conversation service (CC-BY 4.0, Patel et al., "Splitwise", ISCA 2024).
pub const EMBEDDED_TRACE: &str = include_str!("../data/azure_llm_2023_conv.csv");
/// Its name in messages.
pub const EMBEDDED_TRACE_NAME: &str = "azure_llm_2023_conv.csv (embedded)";

/// Most token pairs kept from a trace to draw request sizes from.
const TOKEN_SAMPLE: usize = 20_000;

/// Longest line accepted, in bytes. Rows are under 100 bytes; the cap keeps a file with
/// no line break (`/dev/zero`) from being read into memory whole.
pub const MAX_LINE_BYTES: usize = 4096;

/// Most rows of a rate envelope (kept in memory): 19 years of 10-minute windows.
pub const MAX_ENVELOPE_ROWS: u64 = 1_000_000;

/// Highest rate accepted, in requests per second, in an envelope or a pattern.
pub const MAX_RATE: f64 = 1e6;

/// A bad line in a traffic file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct TraceError {
    pub file: String,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: u64,
    pub message: String,
}

/// Where a traffic file's bytes come from.
#[derive(Debug, Clone)]
pub enum TraceSource {
    Embedded,
    Path(PathBuf),
    /// Bytes already read (standard input, which cannot be read twice), and their name.
    Memory {
        name: String,
        bytes: Arc<[u8]>,
    },
}

impl TraceSource {
    pub fn name(&self) -> String {
        match self {
            Self::Embedded => EMBEDDED_TRACE_NAME.into(),
            Self::Path(p) => p.display().to_string(),
            Self::Memory { name, .. } => name.clone(),
        }
    }

    fn open(&self) -> Result<Box<dyn BufRead + Send>, TraceError> {
        match self {
            Self::Embedded => Ok(Box::new(EMBEDDED_TRACE.as_bytes())),
            Self::Memory { bytes, .. } => Ok(Box::new(std::io::Cursor::new(bytes.clone()))),
            Self::Path(p) => File::open(p)
                .map(|f| Box::new(BufReader::with_capacity(1 << 16, f)) as Box<dyn BufRead + Send>)
                .map_err(|e| TraceError {
                    file: p.display().to_string(),
                    line: 0,
                    message: format!("cannot read: {e}"),
                }),
        }
    }
}

/// What kind of traffic file it is, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// One row per request; `tokens` when it has `input_tokens,output_tokens`.
    Requests { tokens: bool },
    /// One row per window: the rate from this timestamp to the next.
    Envelope,
}

/// Column positions, from the header.
#[derive(Debug, Clone, Copy)]
struct Columns {
    timestamp: usize,
    input: Option<usize>,
    output: Option<usize>,
    rate: Option<usize>,
    count: usize,
}

fn columns(header: &str, file: &str) -> Result<(TraceKind, Columns), TraceError> {
    let err = |message: String| TraceError {
        file: file.into(),
        line: 1,
        message,
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let find = |n: &str| names.iter().position(|c| *c == n);
    let timestamp = find("timestamp_seconds").ok_or_else(|| {
        err(format!(
            "missing column `timestamp_seconds` (header is `{header}`; expected \
             `timestamp_seconds[,input_tokens,output_tokens]` or \
             `timestamp_seconds,requests_per_second`)"
        ))
    })?;
    let input = find("input_tokens");
    let output = find("output_tokens");
    let rate = find("requests_per_second");
    let cols = Columns {
        timestamp,
        input,
        output,
        rate,
        count: names.len(),
    };
    if rate.is_some() {
        return Ok((TraceKind::Envelope, cols));
    }
    match (input, output) {
        (Some(_), Some(_)) => Ok((TraceKind::Requests { tokens: true }, cols)),
        (None, None) => Ok((TraceKind::Requests { tokens: false }, cols)),
        (Some(_), None) => Err(err(format!(
            "missing column `output_tokens` (header is `{header}`; `input_tokens` needs it)"
        ))),
        (None, Some(_)) => Err(err(format!(
            "missing column `input_tokens` (header is `{header}`; `output_tokens` needs it)"
        ))),
    }
}

/// One parsed row.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Row {
    t: f64,
    /// Tokens, or the rate for an envelope.
    a: f64,
    b: u32,
}

fn parse_row(
    line: &str,
    cols: &Columns,
    kind: TraceKind,
    file: &str,
    line_no: u64,
) -> Result<Row, TraceError> {
    let err = |message: String| TraceError {
        file: file.into(),
        line: line_no,
        message,
    };
    let mut fields = [""; 8];
    let mut n = 0;
    for f in line.split(',') {
        if n < fields.len() {
            fields[n] = f;
        }
        n += 1;
    }
    if n != cols.count {
        return Err(err(format!(
            "expected {} fields, found {n}: `{line}`",
            cols.count
        )));
    }
    let get = |i: usize| fields.get(i).copied().unwrap_or("").trim();
    let t: f64 = get(cols.timestamp).parse().map_err(|_| {
        err(format!(
            "timestamp_seconds: not a number: `{}`",
            get(cols.timestamp)
        ))
    })?;
    if !(t.is_finite() && t >= 0.0) {
        return Err(err(format!(
            "timestamp_seconds: must be a non-negative number of seconds, found `{}`",
            get(cols.timestamp)
        )));
    }
    match kind {
        TraceKind::Envelope => {
            let i = cols.rate.unwrap_or(cols.timestamp);
            let rate: f64 = get(i)
                .parse()
                .map_err(|_| err(format!("requests_per_second: not a number: `{}`", get(i))))?;
            if !(rate.is_finite() && (0.0..=MAX_RATE).contains(&rate)) {
                return Err(err(format!(
                    "requests_per_second: must be from 0 to {} requests per second, found `{}`",
                    crate::units::group_thousands(MAX_RATE as u64),
                    get(i)
                )));
            }
            Ok(Row { t, a: rate, b: 0 })
        }
        TraceKind::Requests { tokens: false } => Ok(Row { t, a: 0.0, b: 0 }),
        TraceKind::Requests { tokens: true } => {
            let token = |name: &str, i: usize| -> Result<u32, TraceError> {
                get(i).parse::<u32>().map_err(|_| {
                    err(format!(
                        "{name}: not a whole number of tokens: `{}`",
                        get(i)
                    ))
                })
            };
            // `columns` gives this kind only with both columns.
            let input = token("input_tokens", cols.input.unwrap_or(cols.timestamp))?;
            let output = token("output_tokens", cols.output.unwrap_or(cols.timestamp))?;
            Ok(Row {
                t,
                a: f64::from(input),
                b: output,
            })
        }
    }
}

/// A traffic file, checked.
#[derive(Debug, Clone)]
pub struct TraceInfo {
    pub source: TraceSource,
    pub kind: TraceKind,
    /// Data rows.
    pub rows: u64,
    /// The first row's timestamp (seconds, as written). Times are read relative to it,
    /// as the traces format says: a trace of Unix times starts at 0, not in 1970.
    pub first_timestamp: f64,
    /// The last row's timestamp (seconds, as written).
    pub last_timestamp: f64,
    /// Up to 20,000 (input, output) pairs drawn uniformly from the trace, when it has them.
    pub token_sample: Vec<(u32, u32)>,
    /// For an envelope: (start, rate) per row.
    pub windows: Arc<Vec<(f64, f64)>>,
}

/// Reads and checks a whole traffic file: header, every row, sorted timestamps. Stops
/// with an error past `max_rows` lines (the caller's `--max-requests`), past
/// [`MAX_ENVELOPE_ROWS`] rows of an envelope and at a line longer than
/// [`MAX_LINE_BYTES`], so that memory and time stay bounded whatever the file holds.
///
/// # Errors
/// The first problem, as `file:line: message`.
pub fn scan(source: &TraceSource, max_rows: u64) -> Result<TraceInfo, TraceError> {
    let file = source.name();
    let mut reader = source.open()?;
    let mut line = String::new();
    let header = read_line(&mut reader, &mut line, &file, 1)?;
    let Some(header) = header else {
        return Err(TraceError {
            file,
            line: 0,
            message: "empty file: expected a header line such as \
                      `timestamp_seconds,input_tokens,output_tokens`"
                .into(),
        });
    };
    let (kind, cols) = columns(header.trim_start_matches('\u{feff}'), &file)?;
    let mut rows = 0u64;
    let mut first = 0.0f64;
    let mut last = 0.0f64;
    let mut sample = Vec::new();
    let mut windows = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(0x7261_6e64);
    let mut line_no = 1u64;
    let max_rows = match kind {
        TraceKind::Envelope => max_rows.min(MAX_ENVELOPE_ROWS),
        TraceKind::Requests { .. } => max_rows,
    };
    loop {
        line_no += 1;
        let Some(text) = read_line(&mut reader, &mut line, &file, line_no)? else {
            break;
        };
        // Blank lines count too, so that an endless stream of them also ends.
        if line_no - 1 > max_rows {
            return Err(TraceError {
                file,
                line: line_no,
                message: match kind {
                    TraceKind::Envelope if max_rows == MAX_ENVELOPE_ROWS => format!(
                        "more than {} rows: a rate envelope has at most that many windows",
                        crate::units::group_thousands(max_rows)
                    ),
                    _ => format!(
                        "more than {} rows, more requests than the limit; raise the limit \
                         with --max-requests",
                        crate::units::group_thousands(max_rows)
                    ),
                },
            });
        }
        if text.is_empty() {
            continue;
        }
        let row = parse_row(text, &cols, kind, &file, line_no)?;
        if rows > 0 && row.t < last {
            return Err(TraceError {
                file,
                line: line_no,
                message: format!(
                    "timestamp_seconds {} is before the previous row's {last}: rows must be sorted by time",
                    row.t
                ),
            });
        }
        if kind == TraceKind::Envelope && rows > 0 && row.t == last {
            return Err(TraceError {
                file,
                line: line_no,
                message: format!(
                    "timestamp_seconds {} repeats: each window starts later than the one before",
                    row.t
                ),
            });
        }
        if rows == 0 {
            first = row.t;
        }
        last = row.t;
        rows += 1;
        match kind {
            TraceKind::Envelope => windows.push((row.t, row.a)),
            TraceKind::Requests { tokens: true } => {
                let pair = (row.a as u32, row.b);
                // Reservoir sampling (algorithm R): a uniform sample of any length of trace.
                if sample.len() < TOKEN_SAMPLE {
                    sample.push(pair);
                } else {
                    let j = (rng.next_u64() % rows) as usize;
                    if j < TOKEN_SAMPLE {
                        sample[j] = pair;
                    }
                }
            }
            TraceKind::Requests { tokens: false } => {}
        }
    }
    if rows == 0 {
        return Err(TraceError {
            file,
            line: 0,
            message: "no data rows after the header".into(),
        });
    }
    Ok(TraceInfo {
        source: source.clone(),
        kind,
        rows,
        first_timestamp: first,
        last_timestamp: last,
        token_sample: sample,
        windows: Arc::new(windows),
    })
}

/// Reads one line without its line ending; `None` at the end of the file. Reads at most
/// [`MAX_LINE_BYTES`] (and its line break): a longer line is an error, not a buffer
/// that grows with the file.
fn read_line<'a>(
    reader: &mut (dyn BufRead + Send),
    buf: &'a mut String,
    file: &str,
    line_no: u64,
) -> Result<Option<&'a str>, TraceError> {
    buf.clear();
    let limit = MAX_LINE_BYTES as u64 + 2; // room for `\r\n`
    match Read::take(&mut *reader, limit).read_line(buf) {
        Ok(0) => Ok(None),
        Ok(n) => {
            let text = buf.trim_end_matches(['\n', '\r']);
            if text.len() > MAX_LINE_BYTES || (n as u64 == limit && !buf.ends_with('\n')) {
                return Err(TraceError {
                    file: file.into(),
                    line: line_no,
                    message: format!(
                        "line longer than {MAX_LINE_BYTES} bytes: not a traffic file \
                         (rows are `timestamp_seconds[,input_tokens,output_tokens]` or \
                         `timestamp_seconds,requests_per_second`)"
                    ),
                });
            }
            Ok(Some(text))
        }
        Err(e) => Err(TraceError {
            file: file.into(),
            line: line_no,
            message: format!("cannot read: {e}"),
        }),
    }
}

/// One row of a per-request trace: its timestamp, and (input, output) tokens when the
/// trace has them.
pub type TraceRequest = (f64, Option<(u32, u32)>);

/// Streams the requests of a checked per-request trace.
pub struct RequestReader {
    reader: Box<dyn BufRead + Send>,
    buf: String,
    cols: Columns,
    kind: TraceKind,
    file: String,
    line_no: u64,
    /// Subtracted from every timestamp (the first row's).
    origin: f64,
}

impl std::fmt::Debug for RequestReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestReader")
            .field("file", &self.file)
            .field("line_no", &self.line_no)
            .finish_non_exhaustive()
    }
}

impl RequestReader {
    /// Opens the file and reads past its header; timestamps come out minus `origin`
    /// (the first row's, from [`scan`]).
    ///
    /// # Errors
    /// When the file cannot be read or its header is wrong.
    pub fn open(source: &TraceSource, origin: f64) -> Result<Self, TraceError> {
        let file = source.name();
        let mut reader = source.open()?;
        let mut buf = String::new();
        let header = read_line(&mut reader, &mut buf, &file, 1)?
            .ok_or_else(|| TraceError {
                file: file.clone(),
                line: 0,
                message: "empty file".into(),
            })?
            .trim_start_matches('\u{feff}')
            .to_string();
        let (kind, cols) = columns(&header, &file)?;
        Ok(Self {
            reader,
            buf,
            cols,
            kind,
            file,
            line_no: 1,
            origin,
        })
    }

    /// The next request: (timestamp, tokens if the trace has them).
    ///
    /// # Errors
    /// A malformed line (cannot happen after a successful [`scan`] of the same file,
    /// unless the file changed in between).
    pub fn next_request(&mut self) -> Result<Option<TraceRequest>, TraceError> {
        loop {
            self.line_no += 1;
            let Some(text) = read_line(&mut self.reader, &mut self.buf, &self.file, self.line_no)?
            else {
                return Ok(None);
            };
            if text.is_empty() {
                continue;
            }
            let row = parse_row(text, &self.cols, self.kind, &self.file, self.line_no)?;
            let tokens = match self.kind {
                TraceKind::Requests { tokens: true } => Some((row.a as u32, row.b)),
                _ => None,
            };
            return Ok(Some((row.t - self.origin, tokens)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn scan_text(text: &str) -> Result<TraceInfo, TraceError> {
        let dir = std::env::temp_dir().join(format!(
            "podscale-sim-trace-{}-{}",
            std::process::id(),
            text.len()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("t.csv");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .expect("writes");
        let r = scan(&TraceSource::Path(path.clone()), u64::MAX);
        let _ = std::fs::remove_file(path);
        r
    }

    #[test]
    fn the_embedded_trace_is_a_checked_per_request_trace_with_tokens() {
        let info = scan(&TraceSource::Embedded, u64::MAX).expect("valid");
        assert_eq!(info.kind, TraceKind::Requests { tokens: true });
        assert_eq!(info.rows, 19_366);
        assert!((3_500.0..3_510.0).contains(&info.last_timestamp));
        assert_eq!(info.token_sample.len(), 19_366);
    }

    #[test]
    fn a_malformed_line_is_reported_with_file_and_line() {
        let e = scan_text("timestamp_seconds,input_tokens,output_tokens\n0,10,5\n1.5,abc,3\n")
            .expect_err("bad token");
        assert_eq!(e.line, 3);
        assert!(
            e.to_string()
                .contains(":3: input_tokens: not a whole number of tokens: `abc`"),
            "{e}"
        );

        let e =
            scan_text("timestamp_seconds,input_tokens,output_tokens\n0,10\n").expect_err("short");
        assert!(
            e.to_string()
                .ends_with(":2: expected 3 fields, found 2: `0,10`"),
            "{e}"
        );
    }

    #[test]
    fn unsorted_timestamps_are_rejected_at_the_offending_line() {
        let e = scan_text("timestamp_seconds\n0\n5\n4.5\n").expect_err("unsorted");
        assert_eq!(e.line, 4);
        assert!(e.message.contains("must be sorted by time"), "{e}");
    }

    #[test]
    fn a_missing_column_names_the_column_and_the_header() {
        let e = scan_text("time,input_tokens\n0,1\n").expect_err("no timestamp");
        assert_eq!(e.line, 1);
        assert!(
            e.message.contains("missing column `timestamp_seconds`"),
            "{e}"
        );
        let e = scan_text("timestamp_seconds,input_tokens\n0,1\n").expect_err("no output");
        assert!(e.message.contains("missing column `output_tokens`"), "{e}");
    }

    #[test]
    fn a_line_longer_than_the_cap_is_an_error_not_a_buffer() {
        let long = format!(
            "timestamp_seconds\n0\n{}\n1\n",
            "1".repeat(MAX_LINE_BYTES + 1)
        );
        let e = scan_text(&long).expect_err("too long");
        assert_eq!(e.line, 3);
        assert!(e.message.starts_with("line longer than 4096 bytes"), "{e}");
        // At the cap, with a CRLF ending, a line is fine (and a number).
        let at_cap = format!("timestamp_seconds\r\n{}\r\n", "0".repeat(MAX_LINE_BYTES));
        assert_eq!(scan_text(&at_cap).expect("valid").rows, 1);
        // No line break at all, and longer than the cap.
        let e = scan_text(&"7".repeat(3 * MAX_LINE_BYTES)).expect_err("too long");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn scanning_stops_past_the_row_limit_even_on_blank_lines() {
        let source = |text: String| TraceSource::Memory {
            name: "m".into(),
            bytes: text.into_bytes().into(),
        };
        let e = scan(
            &source(format!("timestamp_seconds\n{}", "\n".repeat(20))),
            10,
        )
        .expect_err("more lines than rows allowed");
        assert_eq!(e.line, 12);
        assert!(e.message.contains("--max-requests"), "{e}");
        let rows: String = (0..10).map(|i| format!("{i}\n")).collect();
        assert_eq!(
            scan(&source(format!("timestamp_seconds\n{rows}")), 10)
                .expect("fits")
                .rows,
            10
        );
    }

    #[test]
    fn an_envelope_is_recognised_by_its_rate_column() {
        let info =
            scan_text("timestamp_seconds,requests_per_second,active_clients\n0,2.5,3\n600,4,3\n")
                .expect("valid");
        assert_eq!(info.kind, TraceKind::Envelope);
        assert_eq!(*info.windows, vec![(0.0, 2.5), (600.0, 4.0)]);
    }
}
