//! Round trip: any exposition we can write reads back to what was written, in both
//! formats, and writing what was read reproduces the same text.
use podscale_metrics::exposition::{
    Entry, Format, MetricType, escape_label_value, format_value, is_legacy_label_name,
    is_legacy_metric_name, parse, write_entries,
};
use proptest::prelude::*;

/// An exemplar: labels, value, timestamp.
type ExemplarModel = (Vec<(String, String)>, f64, Option<i64>);

/// What a test means to expose, independent of the crate's types.
#[derive(Debug, Clone)]
enum Line {
    Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
        timestamp_ms: Option<i64>,
        exemplar: Option<ExemplarModel>,
    },
    Help(String, String),
    Type(String, MetricType),
    Unit(String, String),
    Comment(String),
}

/// Names and values with every character that needs care, and some that do not.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z=,\"\\\\\n{}# \t☃é]{0,12}", any::<String>(),]
}

fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z_:][a-zA-Z0-9_:]{0,24}",
        1 => tricky_string().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z_][a-zA-Z0-9_]{0,12}",
        1 => tricky_string().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

fn labels() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((label_name(), tricky_string()), 0..5)
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::num::f64::ANY,
        (0u32..100_000).prop_map(f64::from),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
    ]
}

fn line(format: Format) -> impl Strategy<Value = Line> {
    let kinds: Vec<MetricType> = match format {
        Format::Text => vec![
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::Summary,
            MetricType::Unknown,
        ],
        Format::OpenMetrics => vec![
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::Summary,
            MetricType::Unknown,
            MetricType::GaugeHistogram,
            MetricType::StateSet,
            MetricType::Info,
        ],
    };
    let exemplar = if format == Format::OpenMetrics {
        prop::option::of((labels(), value(), prop::option::of(any::<i64>()))).boxed()
    } else {
        Just(None).boxed()
    };
    let help_text = tricky_string().prop_filter("no leading blank, no CR", |s| {
        !s.starts_with([' ', '\t']) && !s.contains('\r')
    });
    let unit = if format == Format::OpenMetrics {
        (metric_name(), "[a-z_]{0,8}")
            .prop_map(|(n, u)| Line::Unit(n, u))
            .boxed()
    } else {
        Just(Line::Comment("x".into())).boxed()
    };
    prop_oneof![
        6 => (metric_name(), labels(), value(), prop::option::of(any::<i64>()), exemplar).prop_map(
            |(name, labels, value, timestamp_ms, exemplar)| Line::Sample {
                name,
                labels,
                value,
                timestamp_ms,
                exemplar,
            }
        ),
        1 => (metric_name(), help_text).prop_map(|(n, t)| Line::Help(n, t)),
        1 => (metric_name(), prop::sample::select(kinds)).prop_map(|(n, k)| Line::Type(n, k)),
        1 => unit,
        1 => "x[ -~]{0,20}".prop_map(Line::Comment),
    ]
}

/// The test's own writer, so the parser is checked against text it did not produce.
fn render(lines: &[Line], format: Format) -> String {
    let quote = |s: &str| format!("\"{}\"", escape_label_value(s));
    let metric = |s: &str| {
        if is_legacy_metric_name(s) {
            s.to_owned()
        } else {
            quote(s)
        }
    };
    let label_set = |labels: &[(String, String)]| -> Vec<String> {
        labels
            .iter()
            .map(|(k, v)| {
                let k = if is_legacy_label_name(k) {
                    k.clone()
                } else {
                    quote(k)
                };
                format!("{k} = {}", quote(v))
            })
            .collect()
    };
    let ts = |ms: i64| match format {
        Format::Text => ms.to_string(),
        Format::OpenMetrics => format!(
            "{}{}.{:03}",
            if ms < 0 { "-" } else { "" },
            ms.unsigned_abs() / 1000,
            ms.unsigned_abs() % 1000
        ),
    };
    let mut out = String::new();
    for l in lines {
        match l {
            Line::Sample {
                name,
                labels,
                value,
                timestamp_ms,
                exemplar,
            } => {
                let mut items = Vec::new();
                if !is_legacy_metric_name(name) {
                    items.push(quote(name));
                } else {
                    out += name;
                }
                items.extend(label_set(labels));
                out += &format!("{{{}}} {}", items.join(", "), format_value(*value));
                if let Some(t) = timestamp_ms {
                    out += &format!(" {}", ts(*t));
                }
                if let Some((labels, v, t)) = exemplar {
                    out += &format!(
                        " # {{{}}} {}",
                        label_set(labels).join(","),
                        format_value(*v)
                    );
                    if let Some(t) = t {
                        out += &format!(" {}", ts(*t));
                    }
                }
            }
            Line::Help(n, t) => {
                let mut text = t.replace('\\', "\\\\").replace('\n', "\\n");
                if format == Format::OpenMetrics {
                    text = text.replace('"', "\\\"");
                }
                out += &format!("# HELP {} {text}", metric(n));
            }
            Line::Type(n, k) => out += &format!("# TYPE {} {}", metric(n), k.as_str(format)),
            Line::Unit(n, u) => out += &format!("# UNIT {} {u}", metric(n)),
            Line::Comment(c) => out += &format!("#{c}"),
        }
        out.push('\n');
    }
    if format == Format::OpenMetrics {
        out += "# EOF\n";
    }
    out
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

fn owned(labels: podscale_metrics::exposition::Labels<'_>) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn check(lines: &[Line], format: Format) -> Result<(), TestCaseError> {
    let text = render(lines, format);
    let entries = parse(&text, format).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    let mut entries_iter = entries.iter();
    for l in lines {
        let e = entries_iter.next().expect("one entry per line");
        match (l, e) {
            (
                Line::Sample {
                    name,
                    labels,
                    value,
                    timestamp_ms,
                    exemplar,
                },
                Entry::Sample(s),
            ) => {
                prop_assert_eq!(name.as_str(), &*s.name);
                prop_assert_eq!(labels, &owned(s.labels));
                prop_assert!(same_value(*value, s.value), "{} vs {}", value, s.value);
                prop_assert_eq!(*timestamp_ms, s.timestamp_ms);
                match (exemplar, &s.exemplar) {
                    (None, None) => {}
                    (Some((labels, v, t)), Some(ex)) => {
                        prop_assert_eq!(labels, &owned(ex.labels));
                        prop_assert!(same_value(*v, ex.value));
                        prop_assert_eq!(*t, ex.timestamp_ms);
                    }
                    (want, got) => prop_assert!(false, "exemplar {:?} vs {:?}", want, got),
                }
            }
            (Line::Help(n, t), Entry::Help { name, text }) => {
                prop_assert_eq!(n.as_str(), &**name);
                prop_assert_eq!(t.as_str(), &**text);
            }
            (Line::Type(n, k), Entry::Type { name, kind }) => {
                prop_assert_eq!(n.as_str(), &**name);
                prop_assert_eq!(k, kind);
            }
            (Line::Unit(n, u), Entry::Unit { name, unit }) => {
                prop_assert_eq!(n.as_str(), &**name);
                prop_assert_eq!(u.as_str(), &**unit);
            }
            (Line::Comment(c), Entry::Comment(got)) => prop_assert_eq!(c.as_str(), *got),
            (want, got) => prop_assert!(false, "{:?} read as {:?}\n{}", want, got, text),
        }
    }
    // Writing what was read gives text that reads back to the same entries, and
    // writing is a fixed point from there on.
    let written = write_entries(&entries, format);
    let reread =
        parse(&written, format).map_err(|e| TestCaseError::fail(format!("{e}\n{written}")))?;
    prop_assert_eq!(entries.len(), reread.len());
    for (a, b) in entries.iter().zip(&reread) {
        match (a, b) {
            (Entry::Sample(x), Entry::Sample(y)) => {
                prop_assert_eq!(&x.name, &y.name);
                prop_assert_eq!(x.labels, y.labels);
                prop_assert!(same_value(x.value, y.value));
                prop_assert_eq!(x.timestamp_ms, y.timestamp_ms);
            }
            _ => prop_assert_eq!(a, b),
        }
    }
    prop_assert_eq!(&write_entries(&reread, format), &written);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn text_format_round_trips(lines in prop::collection::vec(line(Format::Text), 0..12)) {
        check(&lines, Format::Text)?;
    }

    #[test]
    fn openmetrics_round_trips(lines in prop::collection::vec(line(Format::OpenMetrics), 0..12)) {
        check(&lines, Format::OpenMetrics)?;
    }
}
