//! The Prometheus HTTP API client: instant queries (`/api/v1/query`, GET or POST),
//! with a per-attempt timeout, retries with jittered exponential backoff, bearer-token
//! or basic auth and TLS options. Errors keep Prometheus's own message
//! (`bad_data: 1:5: parse error: …`) or the transport's (`connection refused`).
use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

use crate::SourceError;
use crate::config::{HttpMethod, PrometheusConfig};
use crate::http::{self, Jitter};

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub timestamp: Timestamp,
}

/// What an instant query returned.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    Vector(Vec<VectorSample>),
    Scalar { value: f64, timestamp: Timestamp },
}

impl QueryResult {
    /// The result as samples (a scalar is one sample without labels).
    pub fn into_samples(self) -> Vec<VectorSample> {
        match self {
            Self::Vector(v) => v,
            Self::Scalar { value, timestamp } => vec![VectorSample {
                labels: BTreeMap::new(),
                value,
                timestamp,
            }],
        }
    }
}

/// A query's result and the warnings Prometheus attached.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    pub result: QueryResult,
    pub warnings: Vec<String>,
}

/// A Prometheus server.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    /// `…/api/v1/query`.
    endpoint: reqwest::Url,
    base: String,
    method: HttpMethod,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    auth: http::Auth,
    jitter: Jitter,
}

impl PrometheusClient {
    /// A client for the configured server. Files (CA, token, password) are read here
    /// once, except the bearer token, which is re-read at each query so a rotated
    /// token is picked up.
    ///
    /// # Errors
    /// An unreadable CA or password file, or a URL that does not parse.
    pub fn new(config: &PrometheusConfig) -> Result<Self, SourceError> {
        let base = config.url.trim_end_matches('/').to_owned();
        let endpoint = reqwest::Url::parse(&format!("{base}/api/v1/query"))
            .map_err(|e| SourceError::Config(format!("prometheus.url {:?}: {e}", config.url)))?;
        let http = http::client(config.tls.as_ref(), None)?;
        Ok(Self {
            http,
            endpoint,
            base,
            method: config.method,
            timeout: config.timeout,
            retries: config.retries,
            backoff: config.retry_backoff,
            auth: http::Auth::from_config(config)?,
            jitter: Jitter::new(),
        })
    }

    /// The server's base URL, as configured (without a trailing slash).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Runs an instant query at `time` (server time when `None`).
    ///
    /// # Errors
    /// The server could not be reached or did not answer in time (after all
    /// retries), or answered with an error, which is passed on with its message.
    pub async fn query(
        &self,
        promql: &str,
        time: Option<Timestamp>,
    ) -> Result<QueryResponse, SourceError> {
        let mut params: Vec<(&str, String)> = vec![("query", promql.to_owned())];
        if let Some(t) = time {
            params.push(("time", format_time(t)));
        }
        // Ask Prometheus to give up when we do, so a slow query does not keep running.
        params.push(("timeout", format!("{}ms", self.timeout.as_millis().max(1))));
        let mut attempt = 0;
        loop {
            match self.attempt(&params).await {
                Ok(r) => return Ok(r),
                Err(e) if e.retryable() && attempt < self.retries => {
                    let wait = self.jitter.backoff(self.backoff, attempt);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e.with_attempts(attempt + 1)),
            }
        }
    }

    async fn attempt(&self, params: &[(&str, String)]) -> Result<QueryResponse, SourceError> {
        let request = match self.method {
            HttpMethod::Get => {
                let mut url = self.endpoint.clone();
                url.query_pairs_mut()
                    .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
                self.http.get(url)
            }
            HttpMethod::Post => {
                // Form-encode with the URL serializer: no extra dependency.
                let mut scratch = reqwest::Url::parse("http://x/").expect("a valid literal URL");
                scratch
                    .query_pairs_mut()
                    .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
                let body = scratch.query().unwrap_or_default().to_owned();
                self.http
                    .post(self.endpoint.clone())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
        };
        let request = self.auth.apply(request)?.timeout(self.timeout);
        let what = || format!("prometheus at {}", self.base);
        let response = request
            .send()
            .await
            .map_err(|e| SourceError::from_reqwest(&what(), &e, self.timeout))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| SourceError::from_reqwest(&what(), &e, self.timeout))?;
        parse_response(&what(), status.as_u16(), &body)
    }
}

fn format_time(t: Timestamp) -> String {
    let ms = t.as_millisecond();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// Reads an `/api/v1/query` answer (success or Prometheus's error envelope).
fn parse_response(what: &str, status: u16, body: &[u8]) -> Result<QueryResponse, SourceError> {
    let json: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let shown: String = text.chars().take(200).collect();
            return Err(SourceError::Http {
                what: what.to_owned(),
                status,
                message: if shown.is_empty() {
                    "empty response".into()
                } else {
                    shown
                },
            });
        }
    };
    if json.get("status").and_then(Value::as_str) != Some("success") {
        let error_type = json
            .get("errorType")
            .and_then(Value::as_str)
            .unwrap_or("error");
        let error = json
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("(no message)");
        return Err(SourceError::Prometheus {
            what: what.to_owned(),
            status,
            error_type: error_type.to_owned(),
            message: error.to_owned(),
        });
    }
    let warnings = json
        .get("warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let decode = |m: &str| SourceError::Decode {
        what: what.to_owned(),
        message: m.to_owned(),
    };
    let data = json.get("data").ok_or_else(|| decode("no `data`"))?;
    let result_type = data
        .get("resultType")
        .and_then(Value::as_str)
        .ok_or_else(|| decode("no `data.resultType`"))?;
    let result = data
        .get("result")
        .ok_or_else(|| decode("no `data.result`"))?;
    let result = match result_type {
        "vector" => {
            let items = result
                .as_array()
                .ok_or_else(|| decode("`data.result` is not a list"))?;
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let labels = item
                    .get("metric")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                let (value, timestamp) = sample_pair(item.get("value"))
                    .ok_or_else(|| decode("a vector element has no [time, value] pair"))?;
                out.push(VectorSample {
                    labels,
                    value,
                    timestamp,
                });
            }
            QueryResult::Vector(out)
        }
        "scalar" => {
            let (value, timestamp) =
                sample_pair(Some(result)).ok_or_else(|| decode("malformed scalar"))?;
            QueryResult::Scalar { value, timestamp }
        }
        other => {
            return Err(decode(&format!(
                "the query returned a {other}; podscale needs an instant vector or a scalar"
            )));
        }
    };
    Ok(QueryResponse { result, warnings })
}

/// `[1700000000.123, "42"]` → (42.0, timestamp).
fn sample_pair(v: Option<&Value>) -> Option<(f64, Timestamp)> {
    let pair = v?.as_array()?;
    let secs = pair.first()?.as_f64()?;
    let value = crate::exposition::parse_value(pair.get(1)?.as_str()?)?;
    #[allow(clippy::cast_possible_truncation)] // seconds with millisecond precision
    let ts = Timestamp::from_millisecond((secs * 1000.0).round() as i64).ok()?;
    Some((value, ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vector_answer_is_decoded() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"a"},"value":[1700000000.5,"3"]},
            {"metric":{"pod":"b"},"value":[1700000000.5,"NaN"]}]},
            "warnings":["w"]}"#;
        let r = parse_response("p", 200, body).expect("decodes");
        assert_eq!(r.warnings, vec!["w".to_owned()]);
        let QueryResult::Vector(v) = r.result else {
            panic!("not a vector")
        };
        assert_eq!(v[0].labels.get("pod").map(String::as_str), Some("a"));
        assert_eq!(v[0].value, 3.0);
        assert_eq!(v[0].timestamp.as_millisecond(), 1_700_000_000_500);
        assert!(v[1].value.is_nan());
    }

    #[test]
    fn prometheus_errors_keep_their_message() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#;
        let e = parse_response("prometheus at http://p", 400, body).expect_err("error");
        assert_eq!(
            e.to_string(),
            "prometheus at http://p: bad_data: 1:5: parse error: unexpected end of input"
        );
        assert!(!e.retryable());
    }

    #[test]
    fn a_non_json_answer_is_shown() {
        let e = parse_response("p", 502, b"Bad Gateway\n").expect_err("error");
        assert_eq!(e.to_string(), "p: HTTP 502: Bad Gateway");
        assert!(e.retryable());
    }

    #[test]
    fn a_matrix_is_refused_with_advice() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        let e = parse_response("p", 200, body).expect_err("error");
        assert!(e.to_string().contains("needs an instant vector"), "{e}");
    }
}
