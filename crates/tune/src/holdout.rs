//! The holdout: the last part of a trace, kept from the search, on which the winner is
//! judged once, so that a policy fitted to the searched part's quirks shows it. The
//! split is by time (`--holdout 0.25`: the last quarter), as a forecast is validated on
//! what comes after the data it was fitted to.
use std::fmt::Write as _;
use std::sync::Arc;

use podscale_sim::trace::{self, RequestReader, TraceKind, TraceSource};
use podscale_sim::units::format_duration;
use podscale_sim::{Traffic, TrafficOptions, TrafficSpec};

use crate::{Error, Result};

/// Largest holdout part held in memory, as CSV text.
pub const MAX_HOLDOUT_BYTES: usize = 256 << 20;
/// Range of `--holdout`.
pub const FRACTION: std::ops::RangeInclusive<f64> = 0.05..=0.9;

/// A trace split by time.
#[derive(Debug, Clone)]
pub struct Split {
    /// The part searched: from the start to `cut`.
    pub train: Traffic,
    /// The rest, its times starting at 0.
    pub holdout: Traffic,
    /// Where the split is (seconds of played time).
    pub cut: f64,
}

/// Splits `source` (played with `options`) at `1 - fraction` of its length. A rate
/// envelope is split at a window's start.
///
/// # Errors
/// A fraction outside [`FRACTION`], an unreadable trace, a holdout with no request,
/// and one larger than [`MAX_HOLDOUT_BYTES`].
pub fn split(source: &TraceSource, options: TrafficOptions, fraction: f64) -> Result<Split> {
    if !FRACTION.contains(&fraction) {
        return Err(Error::Options(format!(
            "--holdout must be from {} to {} (the share of the trace kept from the search), found {fraction}",
            FRACTION.start(),
            FRACTION.end()
        )));
    }
    if options.loops != 1 {
        return Err(Error::Options(
            "--holdout splits one pass of the trace: play it once".into(),
        ));
    }
    let spec = TrafficSpec::Trace(source.clone());
    let whole = Traffic::prepare(&spec, options)?;
    let scale = options.time_scale;
    let end = whole.horizon / scale;
    let mut cut = end * (1.0 - fraction);
    let info =
        trace::scan(source, options.limits.max_requests).map_err(podscale_sim::Error::from)?;
    let mut csv = String::new();
    let too_big = || Error::Limit {
        what: "the holdout part takes",
        amount: "more memory".into(),
        limit: format!(
            "{} MiB; shorten the trace with --duration",
            MAX_HOLDOUT_BYTES >> 20
        ),
    };
    let mut rows = 0u64;
    match info.kind {
        TraceKind::Envelope => {
            let w = &info.windows;
            let first = w.first().map_or(0.0, |x| x.0);
            // Split at the first window starting at or after the cut, so that every
            // window of both parts keeps its width.
            if let Some(&(start, _)) = w.iter().find(|(s, _)| s - first >= cut) {
                cut = start - first;
            }
            csv.push_str("timestamp_seconds,requests_per_second\n");
            for &(start, rate) in w.iter() {
                let t = start - first;
                if t < cut || t >= end {
                    continue;
                }
                let _ = writeln!(csv, "{},{rate}", t - cut);
                rows += 1;
            }
        }
        TraceKind::Requests { tokens } => {
            csv.push_str(if tokens {
                "timestamp_seconds,input_tokens,output_tokens\n"
            } else {
                "timestamp_seconds\n"
            });
            let mut reader = RequestReader::open(source, info.first_timestamp)
                .map_err(podscale_sim::Error::from)?;
            while let Some((t, size)) = reader.next_request().map_err(podscale_sim::Error::from)? {
                if t < cut {
                    continue;
                }
                if t >= end {
                    break;
                }
                match size {
                    Some((i, o)) => writeln!(csv, "{},{i},{o}", t - cut),
                    None => writeln!(csv, "{}", t - cut),
                }
                .map_err(|_| too_big())?;
                rows += 1;
                if csv.len() > MAX_HOLDOUT_BYTES {
                    return Err(too_big());
                }
            }
        }
    }
    if rows == 0 || cut <= 0.0 {
        return Err(Error::Options(format!(
            "--holdout {fraction}: the last part of {} (after {}) has no traffic, or the \
             first none; choose another share",
            source.name(),
            format_duration(cut * scale)
        )));
    }
    let train = Traffic::prepare(
        &spec,
        TrafficOptions {
            duration: Some(cut * scale),
            ..options
        },
    )?;
    let holdout_source = TraceSource::Memory {
        name: format!(
            "{} after {} (holdout)",
            source.name(),
            format_duration(cut * scale)
        ),
        bytes: Arc::from(csv.into_bytes()),
    };
    let holdout = Traffic::prepare(
        &TrafficSpec::Trace(holdout_source),
        TrafficOptions {
            duration: None,
            ..options
        },
    )?;
    Ok(Split {
        train,
        holdout,
        cut: cut * scale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_trace_splits_into_a_first_and_a_last_part() {
        let whole = Traffic::prepare(
            &TrafficSpec::Trace(TraceSource::Embedded),
            TrafficOptions::default(),
        )
        .expect("whole");
        let s = split(&TraceSource::Embedded, TrafficOptions::default(), 0.25).expect("split");
        assert!((s.cut - whole.horizon * 0.75).abs() < 1e-9);
        assert!(s.train.horizon <= s.cut + 1e-9);
        let count = |t: &Traffic| {
            let mut a = t.arrivals().expect("arrivals");
            std::iter::from_fn(|| a.next_request()).count() as f64
        };
        let (a, b) = (count(&s.train), count(&s.holdout));
        assert_eq!(
            a + b,
            whole.expected_requests,
            "every request is in one part"
        );
        assert!(b > 0.1 * whole.expected_requests && b < 0.4 * whole.expected_requests);
        assert!(s.holdout.description.contains("holdout"));
    }

    #[test]
    fn a_bad_share_is_refused() {
        let err = split(&TraceSource::Embedded, TrafficOptions::default(), 0.99)
            .expect_err("too big")
            .to_string();
        assert!(err.contains("--holdout must be from 0.05 to 0.9"), "{err}");
    }
}
