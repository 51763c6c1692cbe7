//! Fuzzes the exposition parser: it must never panic, and whatever it accepts must
//! survive a write/re-read round trip unchanged (in both formats).
#![no_main]

use libfuzzer_sys::fuzz_target;
use podscale_metrics::exposition::{Entry, Format, parse, write_entries};

fn same(a: &[Entry<'_>], b: &[Entry<'_>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Entry::Sample(x), Entry::Sample(y)) => {
                let v = |a: f64, b: f64| (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
                x.name == y.name
                    && x.labels == y.labels
                    && v(x.value, y.value)
                    && x.timestamp_ms == y.timestamp_ms
                    && match (&x.exemplar, &y.exemplar) {
                        (None, None) => true,
                        (Some(a), Some(b)) => {
                            a.labels == b.labels
                                && v(a.value, b.value)
                                && a.timestamp_ms == b.timestamp_ms
                        }
                        _ => false,
                    }
            }
            _ => x == y,
        })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Text, Format::OpenMetrics] {
        let Ok(entries) = parse(text, format) else {
            continue;
        };
        for e in &entries {
            if let Entry::Sample(s) = e {
                // Decoding validated labels never fails or panics.
                let n = s.labels.iter().count();
                assert_eq!(n, s.labels.len());
                if let Some((k, v)) = s.labels.iter().next() {
                    assert_eq!(s.labels.get(&k), Some(v));
                }
            }
        }
        let written = write_entries(&entries, format);
        let reread = parse(&written, format)
            .unwrap_or_else(|e| panic!("our own output does not parse: {e}\n{written}"));
        assert!(
            same(&entries, &reread),
            "round trip changed:\n{text:?}\n{written:?}"
        );
    }
});
