//! The Prometheus HTTP API client: instant queries (`/api/v1/query`, GET or POST) and
//! series lookups (`/api/v1/series`, for `podscale adapter convert`), with a per-attempt
//! timeout, retries with jittered exponential backoff, bearer-token
//! or basic auth and TLS options. Errors keep Prometheus's own message
//! (`bad_data: 1:5: parse error: …`) or the transport's (`connection refused`).
use std::collections::BTreeMap;
use std::time::Duration;

use std::cell::Cell;
use std::marker::PhantomData;

use jiff::Timestamp;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::SourceError;
use crate::config::{self, HttpMethod, PrometheusConfig};
use crate::http::{self, Jitter, Length};

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
    /// `…/api/v1/query`, without the URL's credentials (they travel as basic auth).
    endpoint: reqwest::Url,
    /// `…/api/v1/series`, likewise.
    series_endpoint: reqwest::Url,
    /// `…/api/v1/labels`, likewise.
    labels_endpoint: reqwest::Url,
    /// The configured URL for messages, credentials redacted.
    base: String,
    method: HttpMethod,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    auth: http::Auth,
    /// The URL's own secrets (userinfo, token-like query values), scrubbed from
    /// whatever the server answers.
    secrets: http::Secrets,
    jitter: Jitter,
    max_response: u64,
    max_series: usize,
}

/// The most of an error answer read: Prometheus's error envelopes are a few hundred
/// bytes; what is longer is a proxy's page or garbage, of which the start is enough.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// The most of a server's message shown in an error.
const MESSAGE_LIMIT: usize = 512;
/// Warnings kept from one answer, and their length.
const MAX_WARNINGS: usize = 10;

impl PrometheusClient {
    /// A client for the configured server. Files (CA, token, password) are read here
    /// once, except the bearer token, which is re-read at each query so a rotated
    /// token is picked up. Credentials in the URL (`http://user:pw@host`) become basic
    /// auth and never appear in messages.
    ///
    /// # Errors
    /// An unreadable CA or password file, or a URL that does not parse.
    pub fn new(config: &PrometheusConfig) -> Result<Self, SourceError> {
        let raw = config.url.trim_end_matches('/');
        let base = config::redact_url(raw);
        // url's ParseError does not repeat the input, and the URL is shown redacted.
        let mut endpoint = reqwest::Url::parse(&format!("{raw}/api/v1/query"))
            .map_err(|e| SourceError::Config(format!("prometheus.url {base:?}: {e}")))?;
        let mut secrets = http::Secrets::default();
        let url_user = if endpoint.username().is_empty() && endpoint.password().is_none() {
            None
        } else {
            let user = endpoint.username().to_owned();
            let password = endpoint.password().unwrap_or_default().to_owned();
            for s in [&password, &http::percent_decode(&password)] {
                secrets.add(s);
            }
            if password.is_empty() {
                // A lone userinfo is often a token.
                secrets.add(&user);
                secrets.add(&http::percent_decode(&user));
            }
            // Setting them empty cannot fail on an http(s) URL with a host.
            let _ = endpoint.set_username("");
            let _ = endpoint.set_password(None);
            Some((http::percent_decode(&user), http::percent_decode(&password)))
        };
        for (name, value) in endpoint.query_pairs() {
            if config::is_secret_param(&name) {
                secrets.add(&value);
            }
        }
        let auth = http::Auth::from_config(config, url_user)?;
        let http = http::client(config.tls.as_ref(), None)?;
        // `…/api/v1/query` always has a last segment to replace.
        let sibling = |name: &str| {
            let mut url = endpoint.clone();
            url.set_path(
                &endpoint
                    .path()
                    .replacen("/api/v1/query", &format!("/api/v1/{name}"), 1),
            );
            url
        };
        let series_endpoint = sibling("series");
        let labels_endpoint = sibling("labels");
        Ok(Self {
            http,
            endpoint,
            series_endpoint,
            labels_endpoint,
            base,
            method: config.method,
            timeout: config.timeout,
            retries: config.retries,
            backoff: config.retry_backoff,
            auth,
            secrets,
            jitter: Jitter::new(),
            max_response: config.max_response_size,
            max_series: config.max_series,
        })
    }

    /// The server's base URL, as configured (without a trailing slash), with its
    /// credentials redacted.
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
        self.retrying(&self.endpoint, &params, parse_response).await
    }

    /// The series matching `selector` (`/api/v1/series?match[]=…`) between `start`
    /// and `end` (Prometheus's defaults when `None`: its whole retention), each as its
    /// label set (`__name__` included). As prometheus-adapter's discovery does
    /// (`pkg/custom-provider/provider.go`, `updateMetrics`), one selector per call.
    ///
    /// Bounded like a query: at most `prometheus.maxSeries` series (more is an error;
    /// Prometheus 2.49+ is also asked to stop there with `limit`) and
    /// `prometheus.maxResponseSize` bytes.
    ///
    /// # Errors
    /// As [`PrometheusClient::query`], and past the series limit.
    pub async fn series(
        &self,
        selector: &str,
        start: Option<Timestamp>,
        end: Option<Timestamp>,
    ) -> Result<SeriesResponse, SourceError> {
        let mut params: Vec<(&str, String)> = vec![("match[]", selector.to_owned())];
        if let Some(t) = start {
            params.push(("start", format_time(t)));
        }
        if let Some(t) = end {
            params.push(("end", format_time(t)));
        }
        // One more than the limit, so that "exactly at the limit" and "past it" differ.
        params.push(("limit", self.max_series.saturating_add(1).to_string()));
        self.retrying(&self.series_endpoint, &params, parse_series_response)
            .await
    }

    /// The label names of the series matching `selector` (`/api/v1/labels?match[]=…`),
    /// or, with `label`, that label's values (`/api/v1/label/<label>/values`): what a
    /// series lookup would tell, in a few bytes instead of one label set per series.
    /// Bounded by `prometheus.maxSeries` names (values) and `maxResponseSize`.
    ///
    /// # Errors
    /// As [`PrometheusClient::series`]; a `label` that is not a label name.
    pub async fn labels(
        &self,
        label: Option<&str>,
        selector: &str,
        start: Option<Timestamp>,
        end: Option<Timestamp>,
    ) -> Result<StringsResponse, SourceError> {
        let endpoint = match label {
            None => self.labels_endpoint.clone(),
            Some(l) if crate::exposition::is_legacy_label_name(l) => {
                let mut url = self.labels_endpoint.clone();
                let path =
                    url.path()
                        .replacen("/api/v1/labels", &format!("/api/v1/label/{l}/values"), 1);
                url.set_path(&path);
                url
            }
            Some(l) => {
                return Err(SourceError::Config(format!(
                    "{l:?} is not a Prometheus label name"
                )));
            }
        };
        let mut params: Vec<(&str, String)> = vec![("match[]", selector.to_owned())];
        if let Some(t) = start {
            params.push(("start", format_time(t)));
        }
        if let Some(t) = end {
            params.push(("end", format_time(t)));
        }
        params.push(("limit", self.max_series.saturating_add(1).to_string()));
        self.retrying(&endpoint, &params, parse_strings_response)
            .await
    }

    async fn retrying<T: Scrubbed>(
        &self,
        endpoint: &reqwest::Url,
        params: &[(&str, String)],
        parse: ParseFn<T>,
    ) -> Result<T, SourceError> {
        let mut attempt = 0;
        loop {
            match self.attempt(endpoint, params, parse).await {
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

    async fn attempt<T: Scrubbed>(
        &self,
        endpoint: &reqwest::Url,
        params: &[(&str, String)],
        parse: ParseFn<T>,
    ) -> Result<T, SourceError> {
        let request = match self.method {
            HttpMethod::Get => {
                let mut url = endpoint.clone();
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
                    .post(endpoint.clone())
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
            }
        };
        let (request, mut secrets) = self.auth.apply(request)?;
        secrets.extend(&self.secrets);
        let result = self
            .exchange(request.timeout(self.timeout), &secrets, parse)
            .await;
        // Every message passes the scrubber once more (transport errors included).
        match result {
            Ok(mut r) => {
                for w in r.warnings_mut() {
                    *w = secrets.scrub(w);
                }
                Ok(r)
            }
            Err(e) => Err(secrets.scrub_error(e)),
        }
    }

    async fn exchange<T>(
        &self,
        request: reqwest::RequestBuilder,
        secrets: &http::Secrets,
        parse: ParseFn<T>,
    ) -> Result<T, SourceError> {
        let what = || format!("prometheus at {}", self.base);
        let reqwest_error =
            |e: reqwest::Error| SourceError::from_reqwest(&what(), &e, self.timeout);
        let mut response = request.send().await.map_err(reqwest_error)?;
        let status = response.status();
        let announced = response.content_length();
        let limit = if status.is_success() {
            self.max_response
        } else {
            ERROR_BODY_LIMIT.min(self.max_response)
        };
        let too_large = || SourceError::TooLarge {
            what: what(),
            limit: self.max_response,
        };
        if status.is_success() && announced.is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let (body, truncated) =
            http::read_body(&mut response, usize::try_from(limit).unwrap_or(usize::MAX))
                .await
                .map_err(reqwest_error)?;
        drop(response);
        if truncated && status.is_success() {
            return Err(too_large());
        }
        let received = match (truncated, announced) {
            (false, _) => Length::Whole,
            (true, Some(n)) => Length::Exact(n),
            (true, None) => Length::AtLeast(body.len() as u64),
        };
        parse(
            &what(),
            status.as_u16(),
            &body,
            received,
            &Limits {
                max_series: self.max_series,
                secrets,
            },
        )
    }
}

/// How one endpoint's answer is decoded.
type ParseFn<T> = fn(&str, u16, &[u8], Length, &Limits<'_>) -> Result<T, SourceError>;

/// An answer whose warnings pass the scrubber.
trait Scrubbed {
    fn warnings_mut(&mut self) -> &mut [String];
}

impl Scrubbed for QueryResponse {
    fn warnings_mut(&mut self) -> &mut [String] {
        &mut self.warnings
    }
}

impl Scrubbed for StringsResponse {
    fn warnings_mut(&mut self) -> &mut [String] {
        &mut self.warnings
    }
}

impl Scrubbed for SeriesResponse {
    fn warnings_mut(&mut self) -> &mut [String] {
        &mut self.warnings
    }
}

/// What a label lookup returned: label names or values, and Prometheus's warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct StringsResponse {
    pub values: Vec<String>,
    pub warnings: Vec<String>,
}

/// What a series lookup returned: each series' label set, and Prometheus's warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesResponse {
    pub series: Vec<BTreeMap<String, String>>,
    pub warnings: Vec<String>,
}

fn format_time(t: Timestamp) -> String {
    let ms = t.as_millisecond();
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// What bounds the decoding of one answer, and what it must not show.
struct Limits<'a> {
    max_series: usize,
    secrets: &'a http::Secrets,
}

/// Decodes an answer envelope and checks its status: an error envelope (or what is
/// not one) becomes the error it says; `data` is read as `shape` says.
fn parse_envelope(
    what: &str,
    status: u16,
    body: &[u8],
    received: Length,
    limits: &Limits<'_>,
    shape: Shape,
) -> Result<Envelope, SourceError> {
    let over = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = EnvelopeSeed {
        max_series: limits.max_series,
        over: &over,
        shape,
    }
    .deserialize(&mut de)
    .and_then(|e| de.end().map(|()| e));
    if over.get() {
        let (what_returned, items, advice) = match shape {
            Shape::Query => ("query", "series", "aggregate it (e.g. sum by (pod) (...))"),
            Shape::Series => ("series lookup", "series", "narrow the series selector"),
            Shape::Strings => ("label lookup", "values", "narrow the series selector"),
        };
        return Err(SourceError::Decode {
            what: what.to_owned(),
            message: format!(
                "the {what_returned} returned more than {} {items} (prometheus.maxSeries): {advice} or raise the limit",
                limits.max_series
            ),
        });
    }
    let excerpt = |b: &[u8], r| limits.secrets.excerpt(b, MESSAGE_LIMIT, r);
    let envelope = match parsed {
        Ok(e) if e.status.is_some() => e,
        _ => {
            let shown = excerpt(body, received);
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
    if envelope.status.as_deref() != Some("success") {
        return Err(SourceError::Prometheus {
            what: what.to_owned(),
            status,
            error_type: excerpt(
                envelope.error_type.as_deref().unwrap_or("error").as_bytes(),
                Length::Whole,
            ),
            message: excerpt(
                envelope
                    .error
                    .as_deref()
                    .unwrap_or("(no message)")
                    .as_bytes(),
                Length::Whole,
            ),
        });
    }
    Ok(envelope)
}

/// Reads an `/api/v1/labels` or `/api/v1/label/…/values` answer.
fn parse_strings_response(
    what: &str,
    status: u16,
    body: &[u8],
    received: Length,
    limits: &Limits<'_>,
) -> Result<StringsResponse, SourceError> {
    let envelope = parse_envelope(what, status, body, received, limits, Shape::Strings)?;
    let excerpt = |b: &[u8]| limits.secrets.excerpt(b, MESSAGE_LIMIT, Length::Whole);
    let warnings = envelope
        .warnings
        .iter()
        .map(|w| excerpt(w.as_bytes()))
        .collect();
    let values = envelope.strings.ok_or_else(|| SourceError::Decode {
        what: what.to_owned(),
        message: "no `data` list".into(),
    })?;
    Ok(StringsResponse { values, warnings })
}

/// What an answer's `data` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A query result (`resultType`, `result`).
    Query,
    /// Label sets (`/api/v1/series`).
    Series,
    /// Strings (`/api/v1/labels`, `/api/v1/label/…/values`).
    Strings,
}

/// Reads an `/api/v1/series` answer.
fn parse_series_response(
    what: &str,
    status: u16,
    body: &[u8],
    received: Length,
    limits: &Limits<'_>,
) -> Result<SeriesResponse, SourceError> {
    let envelope = parse_envelope(what, status, body, received, limits, Shape::Series)?;
    let excerpt = |b: &[u8]| limits.secrets.excerpt(b, MESSAGE_LIMIT, Length::Whole);
    let warnings = envelope
        .warnings
        .iter()
        .map(|w| excerpt(w.as_bytes()))
        .collect();
    let series = envelope.series.ok_or_else(|| SourceError::Decode {
        what: what.to_owned(),
        message: "no `data` list of series".into(),
    })?;
    Ok(SeriesResponse { series, warnings })
}

/// Reads an `/api/v1/query` answer (success or Prometheus's error envelope). `body`
/// may be only the beginning of an error answer (`received` says).
fn parse_response(
    what: &str,
    status: u16,
    body: &[u8],
    received: Length,
    limits: &Limits<'_>,
) -> Result<QueryResponse, SourceError> {
    let envelope = parse_envelope(what, status, body, received, limits, Shape::Query)?;
    let excerpt = |b: &[u8], r| limits.secrets.excerpt(b, MESSAGE_LIMIT, r);
    let warnings = envelope
        .warnings
        .iter()
        .map(|w| excerpt(w.as_bytes(), Length::Whole))
        .collect();
    let decode = |m: &str| SourceError::Decode {
        what: what.to_owned(),
        message: m.to_owned(),
    };
    let data = envelope.data.ok_or_else(|| decode("no `data`"))?;
    let result_type = data
        .result_type
        .ok_or_else(|| decode("no `data.resultType`"))?;
    let items = data.result.ok_or_else(|| decode("no `data.result`"))?;
    let result = match result_type.as_str() {
        "vector" => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let Element::Series {
                    metric,
                    value: Some(value),
                } = item
                else {
                    return Err(decode("a vector element has no [time, value] pair"));
                };
                let (value, timestamp) = sample_pair(value)
                    .ok_or_else(|| decode("a vector element has no [time, value] pair"))?;
                out.push(VectorSample {
                    labels: metric,
                    value,
                    timestamp,
                });
            }
            QueryResult::Vector(out)
        }
        "scalar" => {
            let pair = match items.as_slice() {
                [Element::Number(t), Element::Text(v)] => Some((*t, v.clone())),
                _ => None,
            };
            let (value, timestamp) = pair
                .and_then(sample_pair)
                .ok_or_else(|| decode("malformed scalar"))?;
            QueryResult::Scalar { value, timestamp }
        }
        other => {
            let other = excerpt(other.as_bytes(), Length::Whole);
            return Err(decode(&format!(
                "the query returned a {other}; podscale needs an instant vector or a scalar"
            )));
        }
    };
    Ok(QueryResponse { result, warnings })
}

/// The parts of Prometheus's answer envelope podscale reads.
#[derive(Default)]
struct Envelope {
    status: Option<String>,
    error_type: Option<String>,
    error: Option<String>,
    data: Option<Data>,
    /// The `data` of a series lookup.
    series: Option<Vec<BTreeMap<String, String>>>,
    /// The `data` of a label lookup.
    strings: Option<Vec<String>>,
    /// At most [`MAX_WARNINGS`].
    warnings: Vec<String>,
}

#[derive(Default)]
struct Data {
    result_type: Option<String>,
    result: Option<Vec<Element>>,
}

/// One element of `data.result`: a series of a vector (or matrix), or a part of a
/// scalar's `[time, "value"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Element {
    Number(f64),
    Text(String),
    Series {
        #[serde(default)]
        metric: BTreeMap<String, String>,
        #[serde(default)]
        value: Option<(f64, String)>,
    },
    Other(IgnoredAny),
}

// The envelope is decoded with seeds rather than derived types so that the series
// limit applies while decoding: a result of millions of series fails at series
// `maxSeries + 1`, before it takes memory.
struct EnvelopeSeed<'a> {
    max_series: usize,
    over: &'a Cell<bool>,
    shape: Shape,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Envelope, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = Envelope;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("Prometheus's answer envelope")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut e = Envelope::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => e.status = map.next_value()?,
                "errorType" => e.error_type = map.next_value()?,
                "error" => e.error = map.next_value()?,
                "data" if self.shape == Shape::Strings => {
                    e.strings = Some(map.next_value_seed(Bounded {
                        max: self.max_series,
                        over: Some(self.over),
                        _t: PhantomData::<String>,
                    })?);
                }
                "data" if self.shape == Shape::Series => {
                    e.series = Some(map.next_value_seed(Bounded {
                        max: self.max_series,
                        over: Some(self.over),
                        _t: PhantomData::<BTreeMap<String, String>>,
                    })?);
                }
                "data" => {
                    e.data = Some(map.next_value_seed(DataSeed {
                        max_series: self.max_series,
                        over: self.over,
                    })?);
                }
                "warnings" => {
                    e.warnings = map.next_value_seed(Bounded {
                        max: MAX_WARNINGS,
                        over: None,
                        _t: PhantomData::<String>,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(e)
    }
}

struct DataSeed<'a> {
    max_series: usize,
    over: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = Data;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Data, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = Data;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a query result")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let mut data = Data::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resultType" => data.result_type = map.next_value()?,
                "result" => {
                    data.result = Some(map.next_value_seed(Bounded {
                        max: self.max_series,
                        over: Some(self.over),
                        _t: PhantomData::<Element>,
                    })?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(data)
    }
}

/// A list of at most `max` items: past it, either an error (flagging `over`) or, with
/// no flag, the rest are skipped.
struct Bounded<'a, T> {
    max: usize,
    over: Option<&'a Cell<bool>>,
    _t: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Bounded<'_, T> {
    type Value = Vec<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<'_, T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::new();
        loop {
            if out.len() == self.max {
                if let Some(over) = self.over {
                    if seq.next_element::<IgnoredAny>()?.is_some() {
                        over.set(true);
                        return Err(serde::de::Error::custom("too many series"));
                    }
                    return Ok(out);
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(out);
            }
            match seq.next_element::<T>()? {
                Some(x) => out.push(x),
                None => return Ok(out),
            }
        }
    }
}

/// `[1700000000.123, "42"]` → (42.0, timestamp).
fn sample_pair((secs, value): (f64, String)) -> Option<(f64, Timestamp)> {
    let value = crate::exposition::parse_value(&value)?;
    #[allow(clippy::cast_possible_truncation)] // seconds with millisecond precision
    let ts = Timestamp::from_millisecond((secs * 1000.0).round() as i64).ok()?;
    Some((value, ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(status: u16, body: &[u8]) -> Result<QueryResponse, SourceError> {
        parse_with(status, body, 100, &http::Secrets::default())
    }

    fn parse_with(
        status: u16,
        body: &[u8],
        max_series: usize,
        secrets: &http::Secrets,
    ) -> Result<QueryResponse, SourceError> {
        parse_response(
            "p",
            status,
            body,
            Length::Whole,
            &Limits {
                max_series,
                secrets,
            },
        )
    }

    #[test]
    fn a_vector_answer_is_decoded() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"pod":"a"},"value":[1700000000.5,"3"]},
            {"metric":{"pod":"b"},"value":[1700000000.5,"NaN"]}]},
            "warnings":["w"]}"#;
        let r = parse(200, body).expect("decodes");
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
    fn keys_in_any_order_and_a_scalar() {
        let body =
            br#"{"data":{"result":[1700000000,"+Inf"],"resultType":"scalar"},"status":"success"}"#;
        let r = parse(200, body).expect("decodes");
        assert!(
            matches!(r.result, QueryResult::Scalar { value, .. } if value == f64::INFINITY),
            "{r:?}"
        );
    }

    #[test]
    fn prometheus_errors_keep_their_message() {
        let body = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#;
        let e = parse_response(
            "prometheus at http://p",
            400,
            body,
            Length::Whole,
            &Limits {
                max_series: 1,
                secrets: &http::Secrets::default(),
            },
        )
        .expect_err("error");
        assert_eq!(
            e.to_string(),
            "prometheus at http://p: bad_data: 1:5: parse error: unexpected end of input"
        );
        assert!(!e.retryable());
    }

    #[test]
    fn a_non_json_answer_is_shown() {
        let e = parse(502, b"Bad Gateway\n").expect_err("error");
        assert_eq!(e.to_string(), "p: HTTP 502: Bad Gateway");
        assert!(e.retryable());
    }

    #[test]
    fn a_long_error_is_shown_in_part_and_scrubbed() {
        let mut secrets = http::Secrets::default();
        secrets.add("hunter2");
        let message = format!("echo: Authorization: Basic hunter2 {}", "y".repeat(5000));
        let body =
            serde_json::json!({"status": "error", "errorType": "internal", "error": message});
        let e = parse_with(500, body.to_string().as_bytes(), 1, &secrets).expect_err("error");
        let text = e.to_string();
        assert!(
            text.starts_with("p: internal: echo: Authorization: Basic xxxxx yyy"),
            "{text}"
        );
        assert!(text.ends_with("… (5035 bytes)"), "{text}");
        assert!(text.len() < 600, "{}", text.len());
        assert!(!text.contains("hunter2"));
    }

    #[test]
    fn too_many_series_is_an_error_with_the_limit() {
        let series: Vec<String> = (0..5)
            .map(|i| format!(r#"{{"metric":{{"pod":"p{i}"}},"value":[1,"1"]}}"#))
            .collect();
        let body = format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
            series.join(",")
        );
        let secrets = http::Secrets::default();
        assert!(parse_with(200, body.as_bytes(), 5, &secrets).is_ok());
        let e = parse_with(200, body.as_bytes(), 4, &secrets).expect_err("too many");
        assert_eq!(
            e.to_string(),
            "p: unexpected answer: the query returned more than 4 series (prometheus.maxSeries): aggregate it (e.g. sum by (pod) (...)) or raise the limit"
        );
        assert!(!e.retryable());
    }

    #[test]
    fn a_series_answer_is_decoded_and_bounded() {
        let body = br#"{"status":"success","data":[
            {"__name__":"vllm:num_requests_waiting","namespace":"a","pod":"p0"},
            {"__name__":"up","job":"x"}],"warnings":["w"]}"#;
        let parse = |max| {
            parse_series_response(
                "p",
                200,
                body,
                Length::Whole,
                &Limits {
                    max_series: max,
                    secrets: &http::Secrets::default(),
                },
            )
        };
        let r = parse(2).expect("decodes");
        assert_eq!(r.series.len(), 2);
        assert_eq!(
            r.series[0].get("pod").map(String::as_str),
            Some("p0"),
            "{r:?}"
        );
        assert_eq!(r.warnings, vec!["w".to_owned()]);
        let e = parse(1).expect_err("too many");
        assert_eq!(
            e.to_string(),
            "p: unexpected answer: the series lookup returned more than 1 series (prometheus.maxSeries): narrow the series selector or raise the limit"
        );
        let e = parse_series_response(
            "p",
            400,
            br#"{"status":"error","errorType":"bad_data","error":"1:2: parse error"}"#,
            Length::Whole,
            &Limits {
                max_series: 1,
                secrets: &http::Secrets::default(),
            },
        )
        .expect_err("error");
        assert_eq!(e.to_string(), "p: bad_data: 1:2: parse error");
    }

    #[test]
    fn a_label_answer_is_decoded_and_bounded() {
        let body = br#"{"status":"success","data":["namespace","pod","__name__"]}"#;
        let parse = |max| {
            parse_strings_response(
                "p",
                200,
                body,
                Length::Whole,
                &Limits {
                    max_series: max,
                    secrets: &http::Secrets::default(),
                },
            )
        };
        assert_eq!(
            parse(3).expect("decodes").values,
            vec![
                "namespace".to_owned(),
                "pod".to_owned(),
                "__name__".to_owned()
            ]
        );
        assert_eq!(
            parse(2).expect_err("too many").to_string(),
            "p: unexpected answer: the label lookup returned more than 2 values (prometheus.maxSeries): narrow the series selector or raise the limit"
        );
    }

    #[test]
    fn a_matrix_is_refused_with_advice() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}"#;
        let e = parse(200, body).expect_err("error");
        assert!(e.to_string().contains("needs an instant vector"), "{e}");
    }
}
