//! Table tests for the exposition parser: every tricky case the formats allow, each
//! with what must come out, and the errors for what they do not allow.
use std::borrow::Cow;

use podscale_metrics::exposition::{
    Entry, Format, MetricType, ParseError, Parser, Sample, parse, write_entries,
};

/// A sample as `name{a="1",b="2"} value [ts] [# {labels} value ts]`, in a canonical form
/// that shows exactly what was decoded.
fn show(s: &Sample<'_>) -> String {
    let labels: Vec<String> = s
        .labels
        .iter()
        .map(|(k, v)| format!("{k:?}={v:?}"))
        .collect();
    let mut out = format!("{:?}{{{}}} {:?}", s.name, labels.join(","), s.value);
    if let Some(ts) = s.timestamp_ms {
        out += &format!(" @{ts}");
    }
    if let Some(ex) = &s.exemplar {
        let labels: Vec<String> = ex
            .labels
            .iter()
            .map(|(k, v)| format!("{k:?}={v:?}"))
            .collect();
        out += &format!(" ex{{{}}} {:?}", labels.join(","), ex.value);
        if let Some(ts) = ex.timestamp_ms {
            out += &format!(" @{ts}");
        }
    }
    out
}

fn one_sample(line: &str, format: Format) -> String {
    let mut src = format!("{line}\n");
    if format == Format::OpenMetrics {
        src += "# EOF\n";
    }
    let entries = parse(&src, format).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    match &entries[0] {
        Entry::Sample(s) => show(s),
        other => panic!("{line:?}: not a sample: {other:?}"),
    }
}

fn error(src: &str, format: Format) -> ParseError {
    match parse(src, format) {
        Ok(entries) => panic!("{src:?} parsed: {entries:?}"),
        Err(e) => e,
    }
}

#[test]
fn samples_in_both_formats() {
    let cases: &[(&str, &str)] = &[
        // plain
        ("up 1", r#""up"{} 1.0"#),
        (
            "vllm:num_requests_waiting 3",
            r#""vllm:num_requests_waiting"{} 3.0"#,
        ),
        ("_x 0.5", r#""_x"{} 0.5"#),
        // labels, empty set, trailing comma, blanks everywhere
        (r#"m{} 2"#, r#""m"{} 2.0"#),
        (r#"m{a="1",} 2"#, r#""m"{"a"="1"} 2.0"#),
        (r#"m { a = "1" , b="2" } 2"#, r#""m"{"a"="1","b"="2"} 2.0"#),
        ("m\t{a=\"1\"}\t\t7", r#""m"{"a"="1"} 7.0"#),
        // tricky label values: = , " { } # and escapes
        (r#"m{q="a=b,c"} 1"#, r#""m"{"q"="a=b,c"} 1.0"#),
        (r#"m{q="say \"hi\""} 1"#, r#""m"{"q"="say \"hi\""} 1.0"#),
        (r#"m{q="back\\slash"} 1"#, r#""m"{"q"="back\\slash"} 1.0"#),
        (r#"m{q="line\nbreak"} 1"#, r#""m"{"q"="line\nbreak"} 1.0"#),
        (r#"m{q="}{#"} 1"#, r#""m"{"q"="}{#"} 1.0"#),
        (r#"m{q=""} 1"#, r#""m"{"q"=""} 1.0"#),
        (r#"m{q="ünï☃de"} 1"#, r#""m"{"q"="ünï☃de"} 1.0"#),
        // an unknown escape is kept as written, as the Prometheus server keeps it
        (r#"m{q="tab\there"} 1"#, r#""m"{"q"="tab\\there"} 1.0"#),
        // values
        ("m NaN", r#""m"{} NaN"#),
        ("m +Inf", r#""m"{} inf"#),
        ("m -Inf", r#""m"{} -inf"#),
        ("m Inf", r#""m"{} inf"#),
        ("m 1e3", r#""m"{} 1000.0"#),
        ("m -1.5E-3", r#""m"{} -0.0015"#),
        ("m .5", r#""m"{} 0.5"#),
        ("m 12345678901234567890", r#""m"{} 1.2345678901234567e19"#),
        ("m -0", r#""m"{} -0.0"#),
        // UTF-8 names (Prometheus 3 quoting)
        (r#"{"my.metric"} 1"#, r#""my.metric"{} 1.0"#),
        (r#"{"my.metric",a="b"} 1"#, r#""my.metric"{"a"="b"} 1.0"#),
        (
            r#"{ "my.metric" , "la.bel"="v" } 1"#,
            r#""my.metric"{"la.bel"="v"} 1.0"#,
        ),
        (
            r#"m{"quoted label"="v",b="w"} 1"#,
            r#""m"{"quoted label"="v","b"="w"} 1.0"#,
        ),
        (r#"{"esc\"aped"} 1"#, r#""esc\"aped"{} 1.0"#),
        // trailing blanks, CR LF
        ("m 1   ", r#""m"{} 1.0"#),
        ("m 1\r", r#""m"{} 1.0"#),
    ];
    for format in [Format::Text, Format::OpenMetrics] {
        for (line, want) in cases {
            assert_eq!(&one_sample(line, format), want, "{format:?}: {line:?}");
        }
    }
}

#[test]
fn text_format_timestamps_are_integer_milliseconds() {
    assert_eq!(
        one_sample("m 1 1700000000123", Format::Text),
        r#""m"{} 1.0 @1700000000123"#
    );
    assert_eq!(one_sample("m 1 -5", Format::Text), r#""m"{} 1.0 @-5"#);
    let e = error("m 1 1.5\n", Format::Text);
    assert_eq!(e.to_string(), "line 1, column 5: invalid timestamp \"1.5\"");
}

#[test]
fn openmetrics_timestamps_are_seconds() {
    assert_eq!(
        one_sample("m 1 1520879607.789", Format::OpenMetrics),
        r#""m"{} 1.0 @1520879607789"#
    );
    assert_eq!(
        one_sample("m 1 1520879607", Format::OpenMetrics),
        r#""m"{} 1.0 @1520879607000"#
    );
    let e = error("m 1 NaN\n# EOF\n", Format::OpenMetrics);
    assert_eq!(e.to_string(), "line 1, column 5: invalid timestamp \"NaN\"");
}

#[test]
fn openmetrics_exemplars() {
    let cases: &[(&str, &str)] = &[
        (
            r#"foo_bucket{le="0.01"} 17 # {trace_id="KOO5S4vxi0o"} 0.67"#,
            r#""foo_bucket"{"le"="0.01"} 17.0 ex{"trace_id"="KOO5S4vxi0o"} 0.67"#,
        ),
        (
            r##"foo_bucket{le="+Inf"} 17 1520879607.789 # {trace_id="a",s="#"} 9 1520879607.789"##,
            r##""foo_bucket"{"le"="+Inf"} 17.0 @1520879607789 ex{"trace_id"="a","s"="#"} 9.0 @1520879607789"##,
        ),
        (r#"foo_total 5 # {} 1"#, r#""foo_total"{} 5.0 ex{} 1.0"#),
    ];
    for (line, want) in cases {
        assert_eq!(&one_sample(line, Format::OpenMetrics), want, "{line:?}");
    }
    let e = error("m 1 # {a=\"b\"} 1\n", Format::Text);
    assert_eq!(
        e.to_string(),
        "line 1, column 5: exemplars are only allowed in OpenMetrics"
    );
}

#[test]
fn metadata_lines() {
    let src = "# HELP vllm:num_requests_waiting Number of requests waiting \\\\ queued.\\nSecond line\n\
               # TYPE vllm:num_requests_waiting gauge\n\
               # TYPE \"my.metric\" untyped\n\
               # HELP m\n\
               #just a comment\n\
               # another one\n\
               \n\
               # UNIT m seconds\n";
    let entries = parse(src, Format::Text).expect("parses");
    assert_eq!(
        entries,
        vec![
            Entry::Help {
                name: "vllm:num_requests_waiting".into(),
                text: "Number of requests waiting \\ queued.\nSecond line".into(),
            },
            Entry::Type {
                name: "vllm:num_requests_waiting".into(),
                kind: MetricType::Gauge,
            },
            Entry::Type {
                name: "my.metric".into(),
                kind: MetricType::Unknown,
            },
            Entry::Help {
                name: "m".into(),
                text: "".into(),
            },
            Entry::Comment("just a comment"),
            Entry::Comment(" another one"),
            // UNIT is OpenMetrics: in the text format it is a comment.
            Entry::Comment(" UNIT m seconds"),
        ]
    );
}

#[test]
fn openmetrics_metadata_and_eof() {
    let src = "# TYPE foo histogram\n# UNIT foo seconds\n# HELP foo A \\\"quoted\\\" help.\n\
               foo_bucket{le=\"+Inf\"} 1\n# TYPE s stateset\n# EOF\n";
    let entries = parse(src, Format::OpenMetrics).expect("parses");
    assert_eq!(entries.len(), 6);
    assert_eq!(
        entries[1],
        Entry::Unit {
            name: "foo".into(),
            unit: "seconds".into()
        }
    );
    assert_eq!(
        entries[2],
        Entry::Help {
            name: "foo".into(),
            text: "A \"quoted\" help.".into()
        }
    );
    assert_eq!(
        entries[4],
        Entry::Type {
            name: "s".into(),
            kind: MetricType::StateSet
        }
    );
    assert_eq!(entries[5], Entry::Eof);
}

#[test]
fn a_truncated_openmetrics_body_is_an_error() {
    let e = error("foo 1\nfoo 2\n", Format::OpenMetrics);
    assert_eq!(e.line, 3);
    assert!(e.message.contains("# EOF"), "{e}");
    let e = error("foo 1\n# EOF\nfoo 2\n", Format::OpenMetrics);
    assert_eq!(e.to_string(), "line 3, column 1: content after \"# EOF\"");
    // A final newline after # EOF (or none) is fine.
    assert!(parse("# EOF", Format::OpenMetrics).is_ok());
}

#[test]
fn malformed_lines_are_reported_where_they_break() {
    let cases: &[(&str, &str)] = &[
        (
            "m\n",
            "line 1, column 2: expected a blank before the value, found end of line",
        ),
        ("m \n", "line 1, column 3: missing value"),
        ("m abc\n", "line 1, column 3: invalid value \"abc\""),
        ("m 1e400\n", "line 1, column 3: invalid value \"1e400\""),
        (
            "m{a=\"1} 2\n",
            "line 1, column 10: unterminated label value",
        ),
        (
            "m{a=1} 2\n",
            "line 1, column 5: expected '\"' to open a label value, found '1'",
        ),
        (
            "m{a} 2\n",
            "line 1, column 4: expected '=' after a label name, found '}'",
        ),
        (
            "m{a=\"1\" b=\"2\"} 2\n",
            "line 1, column 9: expected ',' or '}' after a label, found 'b'",
        ),
        (
            "m{1a=\"1\"} 2\n",
            "line 1, column 3: expected a label name or '}', found '1'",
        ),
        (
            "m{a=\"1\"\n",
            "line 1, column 8: expected ',' or '}' after a label, found end of line",
        ),
        (
            "1m 2\n",
            "line 1, column 1: expected a metric name or '{', found '1'",
        ),
        (
            "{a=\"b\"} 1\n",
            "line 1, column 8: sample without a metric name",
        ),
        (
            "m{\"x\"} 1\n",
            "line 1, column 3: a quoted metric name must come first and only once",
        ),
        (
            "{a=\"1\",\"x\"} 1\n",
            "line 1, column 8: a quoted metric name must come first and only once",
        ),
        (
            "m 1 2 3\n",
            "line 1, column 7: unexpected '3' after the timestamp",
        ),
        ("# TYPE m\n", "line 1, column 9: missing metric type"),
        (
            "# TYPE m gaugehistogram\n",
            "line 1, column 10: invalid metric type \"gaugehistogram\"",
        ),
        (
            "# TYPE m gauge extra\n",
            "line 1, column 16: unexpected text after the metric type",
        ),
        (
            "# HELP\n",
            "line 1, column 7: expected a metric name after \"# HELP\"",
        ),
        (
            "# HELP 9 x\n",
            "line 1, column 8: expected a metric name, found '9'",
        ),
        (
            "ok 1\nm{a=\"\\\"} 2\n",
            "line 2, column 11: unterminated label value",
        ),
    ];
    for (src, want) in cases {
        assert_eq!(&error(src, Format::Text).to_string(), want, "{src:?}");
    }
}

#[test]
fn the_parser_stops_at_the_first_error() {
    let results: Vec<_> = Parser::new("a 1\nb x\nc 3\n", Format::Text).collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert!(results[1].is_err());
}

#[test]
fn names_and_values_borrow_unless_escaped() {
    let src = "m{a=\"plain\",b=\"esc\\\"aped\"} 1\n";
    let entries = parse(src, Format::Text).expect("parses");
    let Entry::Sample(s) = &entries[0] else {
        panic!("not a sample")
    };
    assert!(matches!(s.name, Cow::Borrowed(_)));
    let pairs: Vec<_> = s.labels.iter().collect();
    assert!(matches!(pairs[0].1, Cow::Borrowed("plain")));
    assert!(matches!(&pairs[1].1, Cow::Owned(v) if v == "esc\"aped"));
    assert_eq!(s.labels.get("b").as_deref(), Some("esc\"aped"));
    assert_eq!(s.labels.get("c"), None);
    assert_eq!(s.labels.len(), 2);
}

#[test]
fn writing_uses_quotes_only_where_names_need_them() {
    let src = "{\"my.metric\",\"a.b\"=\"x\\ny\",c=\"q\\\"\"} NaN 5\nplain{} +Inf\n";
    let entries = parse(src, Format::Text).expect("parses");
    assert_eq!(
        write_entries(&entries, Format::Text),
        "{\"my.metric\",\"a.b\"=\"x\\ny\",c=\"q\\\"\"} NaN 5\nplain +Inf\n"
    );
    assert_eq!(
        write_entries(&entries, Format::OpenMetrics),
        "{\"my.metric\",\"a.b\"=\"x\\ny\",c=\"q\\\"\"} NaN 0.005\nplain +Inf\n# EOF\n"
    );
}

#[test]
fn content_type_selects_the_format() {
    assert_eq!(
        Format::from_content_type(Some(
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        )),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type(Some("text/plain; version=0.0.4")),
        Format::Text
    );
    assert_eq!(Format::from_content_type(None), Format::Text);
}
