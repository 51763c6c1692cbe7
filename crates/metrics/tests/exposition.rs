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
            "m{a=\"1\" +b=\"2\"} 2\n",
            "line 1, column 9: expected ',' or '}' after a label, found '+'",
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
            "line 1, column 3: the metric name is already set",
        ),
        (
            "{\"x\",a=\"1\",\"y\"} 1\n",
            "line 1, column 12: the metric name is already set",
        ),
        (
            "{\"x\" a=\"1\"} 1\n",
            "line 1, column 6: expected '=' or, after a quoted metric name, ',' or '}', found 'a'",
        ),
        (
            "m{a=\"1\"}\n",
            "line 1, column 9: expected a blank before the value, found end of line",
        ),
        ("m{a=\"1\"}x\n", "line 1, column 9: invalid value \"x\""),
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
            "# HELP \n",
            "line 1, column 8: expected a metric name, found end of line",
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

// Issue 7, items 6-10: what the Prometheus server's text parser (`promparse`) takes and
// podscale used to refuse, failing the whole scrape.

#[test]
fn text_format_value_right_after_the_closing_brace() {
    assert_eq!(
        one_sample(r#"a{b="c"}1"#, Format::Text),
        r#""a"{"b"="c"} 1.0"#
    );
    assert_eq!(
        one_sample(r#"a{b="c"}1 1700000000000"#, Format::Text),
        r#""a"{"b"="c"} 1.0 @1700000000000"#
    );
    assert_eq!(one_sample(r#"{"a.b"}NaN"#, Format::Text), r#""a.b"{} NaN"#);
    // OpenMetrics wants the space (`<sValue>{S}[^ \n]+` in openmetricslex.l).
    let e = error("a{b=\"c\"}1\n# EOF\n", Format::OpenMetrics);
    assert_eq!(
        e.to_string(),
        "line 1, column 9: expected a blank before the value, found '1'"
    );
    // Without braces a name runs into its value: `a1` is a name.
    let e = error("a1\n", Format::Text);
    assert!(
        e.message.contains("expected a blank before the value"),
        "{e}"
    );
}

#[test]
fn text_format_labels_without_commas() {
    for (line, want) in [
        (r#"a{x="1" y="2"} 1"#, r#""a"{"x"="1","y"="2"} 1.0"#),
        (r#"a{x="1"y="2"} 1"#, r#""a"{"x"="1","y"="2"} 1.0"#),
        (
            r#"a{x="1"	"y.z"="2",w="3"} 1"#,
            r#""a"{"x"="1","y.z"="2","w"="3"} 1.0"#,
        ),
        (r#"{a="1" "m.n"} 1"#, r#""m.n"{"a"="1"} 1.0"#),
    ] {
        assert_eq!(one_sample(line, Format::Text), want, "{line:?}");
    }
    let e = error("a{x=\"1\" y=\"2\"} 1\n# EOF\n", Format::OpenMetrics);
    assert_eq!(
        e.to_string(),
        "line 1, column 9: expected ',' or '}' after a label, found 'y'"
    );
}

#[test]
fn a_quoted_metric_name_anywhere_in_the_braces() {
    for format in [Format::Text, Format::OpenMetrics] {
        for (line, want) in [
            (
                r#"{q="0.9","http.status"} 1"#,
                r#""http.status"{"q"="0.9"} 1.0"#,
            ),
            (
                r#"{q="0.9","http.status",a="b"} 1"#,
                r#""http.status"{"q"="0.9","a"="b"} 1.0"#,
            ),
            (
                r#"{q="0.9", "http.status" ,} 1"#,
                r#""http.status"{"q"="0.9"} 1.0"#,
            ),
            (
                r#"{"a.b"="1","http.status"} 1"#,
                r#""http.status"{"a.b"="1"} 1.0"#,
            ),
        ] {
            assert_eq!(one_sample(line, format), want, "{format:?}: {line:?}");
        }
    }
    // The name stays in the raw label text but is no label.
    let entries = parse("{q=\"0.9\",\"http.status\"} 1\n", Format::Text).expect("parses");
    let Entry::Sample(s) = &entries[0] else {
        panic!("not a sample")
    };
    assert_eq!(s.labels.len(), 1);
    assert_eq!(s.labels.get("http.status"), None);
    assert_eq!(s.labels.get("q").as_deref(), Some("0.9"));
}

#[test]
fn a_bare_help_or_type_is_a_comment_in_the_text_format() {
    let entries = parse("# HELP\n# TYPE\n#\tTYPE\r\nm 1\n", Format::Text).expect("parses");
    assert_eq!(
        entries[..3],
        [
            Entry::Comment(" HELP"),
            Entry::Comment(" TYPE"),
            Entry::Comment("\tTYPE"),
        ]
    );
    // With a blank after the keyword Prometheus wants a name.
    let e = error("# TYPE \n", Format::Text);
    assert_eq!(
        e.to_string(),
        "line 1, column 8: expected a metric name, found end of line"
    );
    // OpenMetrics has no free-form comment to fall back to.
    for src in ["# HELP\n# EOF\n", "# TYPE\n# EOF\n"] {
        let e = error(src, Format::OpenMetrics);
        assert!(e.message.contains("expected a metric name after"), "{e}");
    }
}

#[test]
fn help_text_starts_one_blank_after_the_name() {
    let help = |src: &str, format: Format| match &parse(src, format).expect("parses")[0] {
        Entry::Help { text, .. } => text.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(help("# HELP m  two\n", Format::Text), " two");
    assert_eq!(help("# HELP m\ttab\n", Format::Text), "tab");
    assert_eq!(help("# HELP m x  \n", Format::Text), "x  ");
    assert_eq!(help("# HELP m   \n", Format::Text), "");
    assert_eq!(help("# HELP m  two\n# EOF\n", Format::OpenMetrics), " two");
    assert_eq!(help("# HELP m \n# EOF\n", Format::OpenMetrics), "");
}

#[test]
fn le_and_quantile_read_back_as_prometheus_stores_them() {
    let body = "# TYPE h histogram\n\
                h_bucket{le=\"1\"} 1\n\
                h_bucket{le=\"0.5\"} 1\n\
                h_bucket{le=\"1e6\"} 1\n\
                h_bucket{le=\"100000\"} 1\n\
                h_bucket{le=\"+inf\"} 1\n\
                h_bucket{le=\"1e400\"} 1\n\
                h_bucket{le=\"one\"} 1\n\
                h_bucket{quantile=\"0\"} 1\n\
                # TYPE s summary\n\
                s{quantile=\"0\"} 1\n\
                s{quantile=\"-0\",le=\"1\"} 1\n\
                s{quantile=\"0.99\"} 1\n\
                s{quantile=\"1\"} 1\n\
                s{\"quantile\"=\"1\"} 1\n\
                # TYPE g gaugehistogram\n\
                g_bucket{le=\"1\"} 1\n\
                # TYPE c counter\n\
                c{le=\"1\",quantile=\"0\"} 1\n";
    for format in [Format::Text, Format::OpenMetrics] {
        let src = if format == Format::OpenMetrics {
            format!("{body}# EOF\n")
        } else {
            // `gaugehistogram` is OpenMetrics only.
            body.replace("# TYPE g gaugehistogram\ng_bucket{le=\"1\"} 1\n", "")
        };
        let got: Vec<String> = parse(&src, format)
            .unwrap_or_else(|e| panic!("{format:?}: {e}"))
            .iter()
            .filter_map(|e| match e {
                Entry::Sample(s) => Some(show(s)),
                _ => None,
            })
            .collect();
        let mut want = vec![
            r#""h_bucket"{"le"="1.0"} 1.0"#,
            r#""h_bucket"{"le"="0.5"} 1.0"#,
            r#""h_bucket"{"le"="1e+06"} 1.0"#,
            r#""h_bucket"{"le"="100000.0"} 1.0"#,
            r#""h_bucket"{"le"="+Inf"} 1.0"#,
            // Out of range or not a number: Prometheus keeps what was written.
            r#""h_bucket"{"le"="1e400"} 1.0"#,
            r#""h_bucket"{"le"="one"} 1.0"#,
            // Only `le` in a histogram, only `quantile` in a summary.
            r#""h_bucket"{"quantile"="0"} 1.0"#,
            r#""s"{"quantile"="0.0"} 1.0"#,
            r#""s"{"quantile"="0.0","le"="1"} 1.0"#,
            r#""s"{"quantile"="0.99"} 1.0"#,
            r#""s"{"quantile"="1.0"} 1.0"#,
            r#""s"{"quantile"="1.0"} 1.0"#,
        ];
        if format == Format::OpenMetrics {
            // A gauge histogram's `le` stays as written.
            want.push(r#""g_bucket"{"le"="1"} 1.0"#);
        }
        want.push(r#""c"{"le"="1","quantile"="0"} 1.0"#);
        assert_eq!(got, want, "{format:?}");
    }
    // The accessor that selectors use sees the same value.
    let entries =
        parse("# TYPE h histogram\nh_bucket{le=\"2\"} 1\n", Format::Text).expect("parses");
    let Entry::Sample(s) = &entries[1] else {
        panic!("not a sample")
    };
    assert_eq!(s.labels.get("le").as_deref(), Some("2.0"));
    // An already normal value is not copied.
    let entries =
        parse("# TYPE h histogram\nh_bucket{le=\"2.5\"} 1\n", Format::Text).expect("parses");
    let Entry::Sample(s) = &entries[1] else {
        panic!("not a sample")
    };
    assert!(matches!(s.labels.get("le"), Some(Cow::Borrowed("2.5"))));
}

#[test]
fn the_type_carries_over_to_a_family_without_one() {
    // Prometheus keeps the last `# TYPE` for the samples that follow, whatever their
    // family (`wind_speed` in promparse_test.go), so it stores `le="1.0"` here too.
    let entries = parse(
        "# TYPE h histogram\nh_sum 1\nother_bucket{le=\"1\"} 1\n",
        Format::Text,
    )
    .expect("parses");
    let Entry::Sample(s) = &entries[2] else {
        panic!("not a sample")
    };
    assert_eq!(s.labels.get("le").as_deref(), Some("1.0"));
}
