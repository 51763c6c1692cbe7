//! Direct scrapes of pods' own `/metrics`: many pods at once (a bounded number in
//! flight), each with its own deadline; a pod that does not answer in time, answers
//! with an error status or with a body that does not parse is *missing* — the engine
//! then applies its missing-pod rules, exactly as for a pod the metrics API has no
//! sample for.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::SourceError;
use crate::config::Aggregate;
use crate::exposition::{Format, ParseError, Parser};

/// Largest body read from a pod; a larger one is an error (a pod's metrics are small;
/// this bounds the memory one misbehaving pod can take).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// One pod to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    pub pod: String,
    pub url: String,
}

/// A pod's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub text: String,
    pub format: Format,
}

/// What scraping one pod gave.
#[derive(Debug, Clone)]
pub struct ScrapeOutcome {
    pub pod: String,
    pub url: String,
    pub result: Result<Body, SourceError>,
    /// When the answer was complete (the sample time of series without a timestamp).
    pub at: Timestamp,
    pub took: Duration,
}

/// Scrapes pods with at most `concurrency` requests in flight.
#[derive(Debug, Clone)]
pub struct Scraper {
    http: reqwest::Client,
    /// Bounds the requests in flight, so a 1,000-pod deployment does not open 1,000
    /// connections at once (nor exhaust file descriptors).
    concurrency: usize,
}

impl Scraper {
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(concurrency: usize) -> Result<Self, SourceError> {
        Ok(Self {
            http: crate::http::client(None, Some(0))?,
            concurrency: concurrency.max(1),
        })
    }

    /// Scrapes every target, each within `timeout` (connection included); the
    /// outcomes come back in the targets' order. Must run inside a tokio runtime.
    pub async fn scrape(
        &self,
        targets: Vec<ScrapeTarget>,
        timeout: Duration,
    ) -> Vec<ScrapeOutcome> {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = JoinSet::new();
        let n = targets.len();
        for (i, target) in targets.into_iter().enumerate() {
            let http = self.http.clone();
            let permits = Arc::clone(&permits);
            tasks.spawn(async move {
                // The semaphore is never closed, so acquiring only waits.
                let _permit = permits.acquire_owned().await;
                let start = Instant::now();
                let what = format!("pod {} at {}", target.pod, target.url);
                let result =
                    match tokio::time::timeout(timeout, fetch(&http, &target.url, &what, timeout))
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => Err(SourceError::Timeout { what, timeout }),
                    };
                (
                    i,
                    ScrapeOutcome {
                        pod: target.pod,
                        url: target.url,
                        result,
                        at: Timestamp::now(),
                        took: start.elapsed(),
                    },
                )
            });
        }
        let mut out: Vec<Option<ScrapeOutcome>> = (0..n).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((i, outcome)) = joined {
                out[i] = Some(outcome);
            }
        }
        out.into_iter().flatten().collect()
    }
}

async fn fetch(
    http: &reqwest::Client,
    url: &str,
    what: &str,
    timeout: Duration,
) -> Result<Body, SourceError> {
    let mut response = http
        .get(url)
        .header("accept", Format::ACCEPT)
        .send()
        .await
        .map_err(|e| SourceError::from_reqwest(what, &e, timeout))?;
    let status = response.status();
    if !status.is_success() {
        return Err(SourceError::Http {
            what: what.to_owned(),
            status: status.as_u16(),
            message: status.canonical_reason().unwrap_or("error").to_owned(),
        });
    }
    let format = Format::from_content_type(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
    );
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| SourceError::from_reqwest(what, &e, timeout))?
    {
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(SourceError::Decode {
                what: what.to_owned(),
                message: format!("body larger than {MAX_BODY_BYTES} bytes"),
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(bytes).map_err(|e| SourceError::Decode {
        what: what.to_owned(),
        message: format!("body is not UTF-8: {e}"),
    })?;
    Ok(Body { text, format })
}

/// What one pod's body says about a series.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// The combined value of the matching samples; `None` when none matched or all
    /// were NaN/±Inf (no data).
    pub value: Option<f64>,
    /// The series name that matched (the first of `series` with samples).
    pub series: Option<String>,
    /// Matching samples, NaN ones included.
    pub matched: usize,
    /// The oldest timestamp among the used samples, if they carry any.
    pub timestamp_ms: Option<i64>,
    /// The values skipped as no data, each kind once: `NaN`, `+Inf`, `-Inf`.
    pub non_finite: Vec<&'static str>,
}

/// How a value that is not a number is named in messages.
fn non_finite_name(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "+Inf"
    } else {
        "-Inf"
    }
}

/// Picks `series` (the first name with matching samples wins: aliases) with `labels`
/// out of a body and combines the finite values with `aggregate`.
///
/// # Errors
/// The body does not parse.
pub fn extract(
    body: &str,
    format: Format,
    series: &[&str],
    labels: &BTreeMap<String, String>,
    aggregate: Aggregate,
) -> Result<Extracted, ParseError> {
    // One pass: per candidate name, the finite values and timestamps seen.
    // (matching samples, finite values, oldest timestamp, kinds of non-finite values)
    type Found = (usize, Vec<f64>, Option<i64>, Vec<&'static str>);
    let mut found: Vec<Found> = vec![(0, Vec::new(), None, Vec::new()); series.len()];
    for sample in Parser::new(body, format).samples() {
        let sample = sample?;
        let Some(k) = series.iter().position(|s| *s == sample.name) else {
            continue;
        };
        if !labels
            .iter()
            .all(|(name, want)| sample.labels.get(name).is_some_and(|v| v == want.as_str()))
        {
            continue;
        }
        let entry = &mut found[k];
        entry.0 += 1;
        if sample.value.is_finite() {
            entry.1.push(sample.value);
            if let Some(ts) = sample.timestamp_ms {
                entry.2 = Some(entry.2.map_or(ts, |t: i64| t.min(ts)));
            }
        } else {
            let name = non_finite_name(sample.value);
            if !entry.3.contains(&name) {
                entry.3.push(name);
            }
        }
    }
    let pick = found.iter().position(|(n, ..)| *n > 0);
    Ok(match pick {
        Some(k) => Extracted {
            value: aggregate.apply(&found[k].1),
            series: Some(series[k].to_owned()),
            matched: found[k].0,
            timestamp_ms: found[k].2,
            non_finite: found[k].3.clone(),
        },
        None => Extracted {
            value: None,
            series: None,
            matched: 0,
            timestamp_ms: None,
            non_finite: Vec::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "\
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name=\"a=b,c\",engine=\"0\"} 3
vllm:num_requests_waiting{model_name=\"x\",engine=\"1\"} 4 1700000000000
vllm:gpu_cache_usage_perc{engine=\"0\"} 0.5
vllm:gpu_cache_usage_perc{engine=\"1\"} NaN
";

    fn no_labels() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn sums_the_matching_series_of_a_pod() {
        let e = extract(
            BODY,
            Format::Text,
            &["vllm:num_requests_waiting"],
            &no_labels(),
            Aggregate::Sum,
        )
        .expect("parses");
        assert_eq!(e.value, Some(7.0));
        assert_eq!(e.matched, 2);
        assert_eq!(e.timestamp_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn label_values_with_separators_match_exactly() {
        let labels = [("model_name".to_owned(), "a=b,c".to_owned())].into();
        let e = extract(
            BODY,
            Format::Text,
            &["vllm:num_requests_waiting"],
            &labels,
            Aggregate::Sum,
        )
        .expect("parses");
        assert_eq!(e.value, Some(3.0));
    }

    #[test]
    fn an_alias_is_used_when_the_new_name_is_absent_and_nan_is_skipped() {
        let e = extract(
            BODY,
            Format::Text,
            &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
            &no_labels(),
            Aggregate::Max,
        )
        .expect("parses");
        assert_eq!(e.series.as_deref(), Some("vllm:gpu_cache_usage_perc"));
        assert_eq!(e.value, Some(0.5));
        assert_eq!(e.matched, 2);
    }

    #[test]
    fn only_nan_is_no_data() {
        let e = extract(
            "m NaN\n",
            Format::Text,
            &["m"],
            &no_labels(),
            Aggregate::Sum,
        )
        .expect("parses");
        assert_eq!(e.value, None);
        assert_eq!(e.matched, 1);
        assert_eq!(e.non_finite, ["NaN"]);
    }

    #[test]
    fn infinities_are_named_as_such() {
        let e = extract(
            "m{a=\"1\"} +Inf\nm{a=\"2\"} -Inf\nm{a=\"3\"} +Inf\n",
            Format::Text,
            &["m"],
            &no_labels(),
            Aggregate::Sum,
        )
        .expect("parses");
        assert_eq!(e.value, None);
        assert_eq!(e.non_finite, ["+Inf", "-Inf"]);
    }
}
