//! Agreement with the Prometheus server's own scrape parsers, case by case.
//!
//! The cases are ported from Prometheus's `model/textparse` tests (3.x, `main` of
//! 2026-08): `promparse_test.go` (`TestPromParse`, `TestUTF8PromParse`,
//! `TestPromParseErrors`, `TestPromNullByteHandling`) for the text format and
//! `openmetricsparse_test.go` (`TestOpenMetricsParse`, `TestOpenMetricsParse_UTF8`,
//! `TestOpenMetricsParseErrors`) for OpenMetrics, plus a few read straight off the
//! lexers (`promlex.l`, `openmetricslex.l`) where the tests are silent. Each case says
//! what Prometheus does with it in each format and whether podscale does the same;
//! the few places where podscale is knowingly more lenient are marked as such (a
//! scrape that Prometheus fails is not the one to guard against), so any other
//! disagreement fails the test.
use podscale_metrics::exposition::{Entry, Format, parse};

/// What Prometheus does with a body, and whether podscale agrees.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    /// Prometheus reads it; podscale reads the same entries (rendered as [`render`]).
    Accept(&'static str),
    /// Prometheus fails the scrape; so does podscale.
    Reject,
    /// Prometheus fails the scrape; podscale reads it (documented leniency).
    Lenient,
}
use Verdict::{Accept, Lenient, Reject};

struct Case {
    /// Where the case comes from.
    upstream: &'static str,
    body: &'static str,
    text: Verdict,
    /// OpenMetrics; the body gets `# EOF\n` appended unless it has one.
    om: Verdict,
}

/// Samples as Prometheus tests list them (`name{a="b"} value [@ts]`, labels in the
/// order written), help as `HELP name "text"`, other entries as their kind.
fn render(entries: &[Entry<'_>]) -> String {
    let mut out = Vec::new();
    for e in entries {
        out.push(match e {
            Entry::Sample(s) => {
                let labels: Vec<String> =
                    s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                let mut line = format!("{}{{{}}} {:?}", s.name, labels.join(","), s.value);
                if let Some(ts) = s.timestamp_ms {
                    line += &format!(" @{ts}");
                }
                if let Some(ex) = &s.exemplar {
                    let labels: Vec<String> = ex
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v:?}"))
                        .collect();
                    line += &format!(" # {{{}}} {:?}", labels.join(","), ex.value);
                }
                line
            }
            Entry::Help { name, text } => format!("HELP {name} {text:?}"),
            Entry::Type { name, kind } => format!("TYPE {name} {kind:?}"),
            Entry::Unit { name, unit } => format!("UNIT {name} {unit}"),
            Entry::Comment(_) => "COMMENT".into(),
            Entry::Eof => continue,
        });
    }
    out.join("\n")
}

const CASES: &[Case] = &[
    // --- TestPromParse / TestOpenMetricsParse: accepted bodies ---------------------
    Case {
        upstream: "TestPromParse, TestOpenMetricsParse: summary quantiles",
        body: "# TYPE go_gc_duration_seconds summary\n\
               go_gc_duration_seconds{quantile=\"0\"} 4.9351e-05\n\
               go_gc_duration_seconds{quantile=\"0.5\",a=\"b\"} 8.3835e-05\n",
        text: Accept(
            "TYPE go_gc_duration_seconds Summary\n\
             go_gc_duration_seconds{quantile=\"0.0\"} 4.9351e-5\n\
             go_gc_duration_seconds{quantile=\"0.5\",a=\"b\"} 8.3835e-5",
        ),
        om: Accept(
            "TYPE go_gc_duration_seconds Summary\n\
             go_gc_duration_seconds{quantile=\"0.0\"} 4.9351e-5\n\
             go_gc_duration_seconds{quantile=\"0.5\",a=\"b\"} 8.3835e-5",
        ),
    },
    Case {
        upstream: "TestPromParse: trailing comma and blanks in the label set",
        body: "m{quantile=\"0.25\",} 1\nm{quantile=\"0.8\", a=\"b\"} 1\nm{ quantile=\"0.9\", a=\"b\"} 1\n",
        text: Accept(
            "m{quantile=\"0.25\"} 1.0\nm{quantile=\"0.8\",a=\"b\"} 1.0\nm{quantile=\"0.9\",a=\"b\"} 1.0",
        ),
        // `{S}` is the only blank the OpenMetrics lexer knows, and not inside braces.
        om: Lenient,
    },
    Case {
        upstream: "TestPromParse: histogram buckets, le normalized",
        body: "# TYPE h histogram\n\
               h_bucket{handler=\"/\",le=\"1\"} 423\n\
               h_bucket{handler=\"/\",le=\"+Inf\"} 1423\n",
        text: Accept(
            "TYPE h Histogram\nh_bucket{handler=\"/\",le=\"1.0\"} 423.0\n\
             h_bucket{handler=\"/\",le=\"+Inf\"} 1423.0",
        ),
        om: Accept(
            "TYPE h Histogram\nh_bucket{handler=\"/\",le=\"1.0\"} 423.0\n\
             h_bucket{handler=\"/\",le=\"+Inf\"} 1423.0",
        ),
    },
    Case {
        upstream: "TestPromParse: `le` outside a histogram stays (testmetric{le=\"10\"})",
        body: "# TYPE some_counter_total counter\ntestmetric{le=\"10\"} 1\n",
        text: Accept("TYPE some_counter_total Counter\ntestmetric{le=\"10\"} 1.0"),
        om: Accept("TYPE some_counter_total Counter\ntestmetric{le=\"10\"} 1.0"),
    },
    Case {
        upstream: "TestOpenMetricsParse: gauge histogram buckets are not normalized",
        body: "# TYPE gh gaugehistogram\ngh_bucket{le=\"1\"} 1\n",
        text: Reject,
        om: Accept("TYPE gh GaugeHistogram\ngh_bucket{le=\"1\"} 1.0"),
    },
    Case {
        upstream: "TestPromParse: the type carries over to wind_speed (knowingly broken)",
        body: "# TYPE h histogram\nh_count 1\nwind_speed_bucket{le=\"2\"} 1\n",
        text: Accept("TYPE h Histogram\nh_count{} 1.0\nwind_speed_bucket{le=\"2.0\"} 1.0"),
        om: Accept("TYPE h Histogram\nh_count{} 1.0\nwind_speed_bucket{le=\"2.0\"} 1.0"),
    },
    Case {
        upstream: "TestPromParse: comments, `#` alone, a comment starting like HELP",
        body: "# Hrandom comment starting with prefix of HELP\n#\n\
               # comment with escaped \\n newline\nm 1\n",
        text: Accept("COMMENT\nCOMMENT\nCOMMENT\nm{} 1.0"),
        // OpenMetrics has no free comments.
        om: Lenient,
    },
    Case {
        upstream: "TestPromParse: `# HELP nohelp1` and `# HELP nohelp2 ` have empty help",
        body: "# HELP nohelp1\n# HELP nohelp2 \n",
        text: Accept("HELP nohelp1 \"\"\nHELP nohelp2 \"\""),
        // OpenMetrics: `# HELP m` is "expected text in HELP".
        om: Lenient,
    },
    Case {
        upstream: "TestOpenMetricsParse: `# HELP nohelp1 ` and escapes in help",
        body: "# HELP nohelp1 \n# HELP help2 escape \\ \\n \\\\ \\\" \\x chars\n",
        text: Accept("HELP nohelp1 \"\"\nHELP help2 \"escape \\\\ \\n \\\\ \\\\\\\" \\\\x chars\""),
        om: Accept("HELP nohelp1 \"\"\nHELP help2 \"escape \\\\ \\n \\\\ \\\" \\\\x chars\""),
    },
    Case {
        upstream: "TestPromParse: `# \\tTYPE` (tab after #)",
        body: "# \tTYPE m summary\n",
        text: Accept("TYPE m Summary"),
        om: Lenient,
    },
    Case {
        upstream: "TestPromParse: blanks between name, braces, `=` and values",
        body: "go_gc_duration_seconds { quantile= \"1.0\", a= \"b\", } 8.3835e-05\n\
               go_gc_duration_seconds { quantile = \"1.0\", a = \"b\" } 8.3835e-05\n",
        text: Accept(
            "go_gc_duration_seconds{quantile=\"1.0\",a=\"b\"} 8.3835e-5\n\
             go_gc_duration_seconds{quantile=\"1.0\",a=\"b\"} 8.3835e-5",
        ),
        om: Lenient,
    },
    Case {
        upstream: "TestPromParse: labels without a comma (issue 7 item 7)",
        body: "go_gc_duration_seconds { quantile = \"2.0\" a = \"b\" } 8.3835e-05\n",
        text: Accept("go_gc_duration_seconds{quantile=\"2.0\",a=\"b\"} 8.3835e-5"),
        om: Reject,
    },
    Case {
        upstream: "TestOpenMetricsParseErrors: a{b=\"c\"d=\"e\"} (accepted by promlex)",
        body: "a{b=\"c\"d=\"e\"} 1\n",
        text: Accept("a{b=\"c\",d=\"e\"} 1.0"),
        om: Reject,
    },
    Case {
        upstream: "TestPromParse: a tab before the value, blanks before the timestamp",
        body: "some:aggregate:rate5m{a_b=\"c\"}\t1\ngo_goroutines 33  \t123123\n",
        text: Accept("some:aggregate:rate5m{a_b=\"c\"} 1.0\ngo_goroutines{} 33.0 @123123"),
        om: Lenient,
    },
    Case {
        upstream: "promlex.l `<sValue>[^{ \\t\\n]+`: a value right after `}` (item 6)",
        body: "a{b=\"c\"}1\n",
        text: Accept("a{b=\"c\"} 1.0"),
        // openmetricslex.l `<sValue>{S}[^ \n]+`
        om: Reject,
    },
    Case {
        upstream: "promlex.l `<sComment>HELP[\\t ]+`: a bare `# HELP`, `# TYPE` (item 9)",
        body: "# HELP\n# TYPE\nm 1\n",
        text: Accept("COMMENT\nCOMMENT\nm{} 1.0"),
        om: Reject,
    },
    Case {
        upstream: "TestPromParse, TestOpenMetricsParse: names with `_` and `:`",
        body: "_metric_starting_with_underscore 1\n\
               testmetric{_label_starting_with_underscore=\"foo\"} 1\n\
               testmetric{label=\"\\\"bar\\\"\"} 1\n",
        text: Accept(
            "_metric_starting_with_underscore{} 1.0\n\
             testmetric{_label_starting_with_underscore=\"foo\"} 1.0\n\
             testmetric{label=\"\\\"bar\\\"\"} 1.0",
        ),
        om: Accept(
            "_metric_starting_with_underscore{} 1.0\n\
             testmetric{_label_starting_with_underscore=\"foo\"} 1.0\n\
             testmetric{label=\"\\\"bar\\\"\"} 1.0",
        ),
    },
    Case {
        upstream: "TestPromParse, TestOpenMetricsParse: NUL bytes in help and label values",
        body: "# HELP metric foo\0bar\nnull_byte_metric{a=\"abc\0\"} 1\n",
        text: Accept("HELP metric \"foo\\0bar\"\nnull_byte_metric{a=\"abc\\0\"} 1.0"),
        om: Accept("HELP metric \"foo\\0bar\"\nnull_byte_metric{a=\"abc\\0\"} 1.0"),
    },
    Case {
        upstream: "TestOpenMetricsParse: timestamps in seconds, exemplars",
        body: "go_goroutines 33 123.123\nhhh_bucket{le=\"+Inf\"} 1 # {id=\"histogram-bucket-test\"} 4\n",
        text: Reject,
        om: Accept(
            "go_goroutines{} 33.0 @123123\n\
             hhh_bucket{le=\"+Inf\"} 1.0 # {id=\"histogram-bucket-test\"} 4.0",
        ),
    },
    Case {
        upstream: "TestOpenMetricsParse: `nan` in any case",
        body: "# TYPE nansum summary\nnansum{quantile=\"0.95\"} nan\nnansum{quantile=\"0.99\"} NaN\n",
        text: Accept(
            "TYPE nansum Summary\nnansum{quantile=\"0.95\"} NaN\nnansum{quantile=\"0.99\"} NaN",
        ),
        om: Accept(
            "TYPE nansum Summary\nnansum{quantile=\"0.95\"} NaN\nnansum{quantile=\"0.99\"} NaN",
        ),
    },
    // --- TestUTF8PromParse / TestOpenMetricsParse_UTF8 -----------------------------
    Case {
        upstream: "TestUTF8PromParse: quoted names, quantile normalized",
        body: "# TYPE \"go.gc_duration_seconds\" summary\n\
               {\"go.gc_duration_seconds\",quantile=\"0\"} 4.9351e-05\n\
               {\"go.gc_duration_seconds\", quantile=\"0.9\", a=\"b\"} 8.3835e-05\n\
               {\"go.gc_duration_seconds_count\"} 99\n",
        text: Accept(
            "TYPE go.gc_duration_seconds Summary\n\
             go.gc_duration_seconds{quantile=\"0.0\"} 4.9351e-5\n\
             go.gc_duration_seconds{quantile=\"0.9\",a=\"b\"} 8.3835e-5\n\
             go.gc_duration_seconds_count{} 99.0",
        ),
        om: Lenient,
    },
    Case {
        upstream: "TestOpenMetricsParse_UTF8: a quoted name after a label (item 8)",
        body: "{q=\"0.9\",\"http.status\",a=\"b\"} 8.3835e-05\n",
        text: Accept("http.status{q=\"0.9\",a=\"b\"} 8.3835e-5"),
        om: Accept("http.status{q=\"0.9\",a=\"b\"} 8.3835e-5"),
    },
    Case {
        upstream: "TestUTF8PromParse, TestOpenMetricsParse_UTF8: escapes in quoted names",
        body: "{\"Heizölrückstoßabdämpfung 10€ metric with \\\"interesting\\\" {character\\nchoices}\",\"strange©™\\n'quoted' \\\"name\\\"\"=\"6\"} 10.0\n",
        text: Accept(
            "Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}{strange©™\n'quoted' \"name\"=\"6\"} 10.0",
        ),
        om: Accept(
            "Heizölrückstoßabdämpfung 10€ metric with \"interesting\" {character\nchoices}{strange©™\n'quoted' \"name\"=\"6\"} 10.0",
        ),
    },
    Case {
        upstream: "TestOpenMetricsParse_UTF8: a quoted label name in an exemplar",
        body: "quotedexemplar_count 1 # {\"id.thing\"=\"histogram-count-test\",other=\"hello\"} 4\n",
        text: Reject,
        om: Accept(
            "quotedexemplar_count{} 1.0 # {id.thing=\"histogram-count-test\",other=\"hello\"} 4.0",
        ),
    },
    // --- TestPromParseErrors / TestOpenMetricsParseErrors --------------------------
    Case {
        upstream: "ParseErrors: a",
        body: "a\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: a{b='c'} 1",
        body: "a{b='c'} 1\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: a{b=",
        body: "a{b=\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: {\"a\", \"b = \"c\"}",
        body: "{\"a\", \"b = \"c\"}\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: {\"a\",b\\nc=\"d\"} 1",
        body: "{\"a\",b\\nc=\"d\"} 1\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: a true",
        body: "a true\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: unterminated value",
        body: "something_weird{problem=\"\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: empty label name",
        body: "empty_label_name{=\"\"} 0\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: {A}0",
        body: "{A}0\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: foo 1_2",
        body: "foo 1_2\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: foo 0x1p-3",
        body: "foo 0x1p-3\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: foo 0x1P-3",
        body: "foo 0x1P-3\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: foo 0 1_2",
        body: "foo 0 1_2\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: metric name not set",
        body: "{a=\"ok\"} 1\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: metric name not set",
        body: "{b=\"c\",} 1\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: # TYPE #",
        body: "# TYPE #\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "ParseErrors: # HELP #",
        body: "# HELP #\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: a{,b=\"c\"}",
        body: "a{,b=\"c\"} 1\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: a{b=\"c\",,d=\"e\"}",
        body: "a{b=\"c\",,d=\"e\"} 1\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: a 1 1 1",
        body: "a 1 1 1\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: a 1 1z",
        body: "a 1 1z\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: # TYPE m",
        body: "# TYPE m\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: # TYPE with a blank only",
        body: "# TYPE \n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: # HELP with a blank only",
        body: "# HELP \n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: # TYPE u untyped",
        body: "# TYPE u untyped\n",
        text: Accept("TYPE u Unknown"),
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: a 1 NaN (timestamp)",
        body: "a 1 NaN\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: a 1 -Inf (timestamp)",
        body: "a 1 -Inf\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: a 1 2 #",
        body: "a 1 2 #\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: exemplar {aa=bb}",
        body: "custom_metric_total 1 # {aa=bb}\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: exemplar without value",
        body: "custom_metric_total 1 # {aa=\"bb\"}\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: exemplar {bb}",
        body: "custom_metric_total 1 # {bb}\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: exemplar value 1_2",
        body: "custom_metric_total 1 # {aa=\"bb\"} 1_2\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: exemplar value true",
        body: "custom_metric_total 1 # {aa=\"bb\"} true\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "OpenMetricsParseErrors: exemplar timestamp NaN",
        body: "# TYPE hhh histogram\nhhh_bucket{le=\"+Inf\"} 1 # {aa=\"bb\"} 4 NaN\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "PromNullByteHandling: a{b=\\0\"ssss\"}",
        body: "a{b=\0\"ssss\"} 1\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "PromNullByteHandling: a{b\\0=\"hiih\"}",
        body: "a{b\0=\"hiih\"}\t1\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "PromNullByteHandling: a\\0{b=\"ddd\"}",
        body: "a\0{b=\"ddd\"} 1\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "PromNullByteHandling: a 0 1\\0",
        body: "a 0 1\0\n",
        text: Reject,
        om: Reject,
    },
    Case {
        upstream: "parseLVals: a second metric name",
        body: "m{\"x\"} 1\n",
        text: Reject,
        om: Reject,
    },
    // --- Where podscale is more lenient than Prometheus ----------------------------
    Case {
        upstream: "promlex.l `<sTimestamp>{D}+`: a negative timestamp (valid int64 per the spec)",
        body: "m 1 -5\n",
        text: Lenient,
        om: Accept("m{} 1.0 @-5000"),
    },
    Case {
        upstream: "OpenMetricsParseErrors: # TYPE c counter␠ / # TYPE c  counter",
        body: "# TYPE c counter \n# TYPE c  counter\n",
        text: Lenient,
        om: Lenient,
    },
    Case {
        upstream: "OpenMetricsParseErrors: #  TYPE, #\\tTYPE, a\\t1, a 1\\t2, a 1 2␠, leading blank",
        body: "#  TYPE c counter\n#\tTYPE c counter\na\t1\na 1\t2\na 1 2 \n a 1\n",
        text: Accept("TYPE c Counter\nTYPE c Counter\na{} 1.0\na{} 1.0 @2\na{} 1.0 @2\na{} 1.0"),
        om: Lenient,
    },
    Case {
        upstream: "OpenMetricsParseErrors: # UNIT metric suffix (unit not the name's suffix)",
        body: "# UNIT metric suffix\n",
        text: Accept("COMMENT"),
        om: Lenient,
    },
];

#[test]
fn podscale_agrees_with_prometheus_case_by_case() {
    let mut failures = Vec::new();
    for case in CASES {
        for (format, verdict) in [(Format::Text, case.text), (Format::OpenMetrics, case.om)] {
            let body = if format == Format::OpenMetrics && !case.body.contains("# EOF") {
                format!("{}# EOF\n", case.body)
            } else {
                case.body.to_owned()
            };
            let got = parse(&body, format);
            let ok = match (verdict, &got) {
                (Accept(want), Ok(entries)) => render(entries) == want,
                (Reject, Err(_)) | (Lenient, Ok(_)) => true,
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{} ({format:?}): want {verdict:?}, got {:?}",
                    case.upstream,
                    got.map(|e| render(&e))
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
