//! Migration from [prometheus-adapter]: reads its config (`rules`, `externalRules`,
//! `resourceRules`) and writes the equivalent `podscale.yaml` ([`Config`]).
//!
//! What each part becomes, mirroring the adapter's own code (`pkg/config`,
//! `pkg/naming`, `pkg/custom-provider`, `pkg/resourceprovider`, v0.12):
//! - **Discovery** (`seriesQuery`, `seriesFilters`, `name.matches`): the adapter lists
//!   the series of `seriesQuery` (`/api/v1/series`, the last 10 minutes by default),
//!   keeps those whose name passes every filter and `name.matches`, and serves one
//!   metric per name. A static conversion cannot list a family of series without
//!   Prometheus, so [`convert`] takes what [`discover`] found (the same names and label
//!   names, through Prometheus's label APIs so that a broad rule stays cheap); without it,
//!   a rule converts when its `seriesQuery` names its metrics outright
//!   (`vllm:num_requests_waiting{…}`, `{__name__="x"}`, `{__name__=~"a|b"}`), and
//!   every other rule is reported ("needs --prometheus to discover names").
//! - **Naming** (`name.as`): the capture groups of `name.matches` expanded as Go's
//!   `Regexp.Expand` does (`$1`, `${1}`, `$name`); `as` defaults to `$0` without
//!   groups and `$1` with one, and is required with more, as upstream.
//! - **Association** (`resources.overrides`, `resources.template`): the label that
//!   names the pod makes a `type: pods` metric (with `podLabel` when it is not
//!   `pod`); one other overridden resource (a Service, an Ingress…) makes a
//!   `type: object` metric; `externalRules` make `type: external` metrics.
//! - **Querying** (`metricsQuery`, a Go template with `<<`/`>>` delimiters): `<<.Series>>`
//!   becomes the series name; `<<.LabelMatchers>>` the namespace and pod (or object)
//!   matchers with podscale's placeholders (`namespace="{{namespace}}",pod=~"{{pods}}"`),
//!   plus the HPA's metric selector (`{{selector}}`), which the adapter also puts in
//!   the label matchers: it is added at the end of the same `{…}`, where PromQL allows
//!   a trailing comma when the selector is empty; `<<.GroupBy>>` the pod (or object)
//!   label, and nothing for external metrics, as upstream. The rest of the query is
//!   kept as written: a counter read as `rate(…[5m])` stays exactly that.
//! - **`resourceRules`**: `containerQuery` becomes `resources.cpuQuery`/`memoryQuery`
//!   with `resources.source: prometheus`, grouped by pod and container label (podscale
//!   reads the labels `pod` and `container`, so others are renamed with
//!   `label_replace`); `window` becomes `resources.window`. `nodeQuery` serves node
//!   metrics, which an HPA never reads.
//!
//! What cannot be translated is reported with its `file:line:col` ([`Note`]), never
//! dropped: template actions other than the three fields, regexes that do not compile,
//! rules mapping several object kinds, and rules the adapter itself cannot serve.
//!
//! [prometheus-adapter]: https://github.com/kubernetes-sigs/prometheus-adapter
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use podscale_manifest::{Diagnostic, Document, Pos, Positions};
use regex::Regex;
use serde::Deserialize;

use crate::config::{
    Config, MetricConfig, MetricKind, OnError, PrometheusConfig, ResourceSource, ResourcesConfig,
};
use crate::template;

/// The Prometheus URL a conversion writes when none is given: the Helm chart's default
/// (`prometheus.url: http://prometheus.default.svc`, `prometheus.port: 9090`).
pub const DEFAULT_PROMETHEUS_URL: &str = "http://prometheus.default.svc:9090";
/// How far back [`discover`] lists series: the adapter's `--metrics-max-age`, which
/// defaults to `--metrics-relist-interval` (10m).
pub const DISCOVERY_LOOKBACK: Duration = Duration::from_secs(10 * 60);
/// The most metrics one conversion writes; past it the rest are reported (a broad rule
/// such as the Helm chart's `{namespace!=""}` can match thousands of series, and a
/// `podscale.yaml` is read up to 4 MiB).
pub const MAX_METRICS: usize = 5_000;

/// A prometheus-adapter config (`--config` of the adapter), as its `pkg/config` reads
/// it: unknown fields are errors (`yaml.UnmarshalStrict`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdapterConfig {
    #[serde(default)]
    pub rules: Option<Vec<Rule>>,
    #[serde(default)]
    pub external_rules: Option<Vec<Rule>>,
    #[serde(default)]
    pub resource_rules: Option<ResourceRules>,
    /// Where each field sits in the file, for messages.
    #[serde(skip)]
    source: SourceMap,
}

/// One discovery rule (`DiscoveryRule`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub series_query: Option<String>,
    #[serde(default)]
    pub series_filters: Option<Vec<RegexFilter>>,
    #[serde(default)]
    pub resources: Option<ResourceMapping>,
    #[serde(default)]
    pub name: Option<NameMapping>,
    #[serde(default)]
    pub metrics_query: Option<String>,
}

/// `seriesFilters[]`: exactly one of `is` and `isNot`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexFilter {
    #[serde(default)]
    pub is: Option<String>,
    #[serde(default)]
    pub is_not: Option<String>,
}

/// `resources`: how labels name Kubernetes objects.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceMapping {
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub overrides: Option<BTreeMap<String, GroupResource>>,
    /// External rules only: whether the HPA's namespace is matched (default true).
    #[serde(default)]
    pub namespaced: Option<bool>,
}

/// A Kubernetes group-resource (`{group: apps, resource: deployment}`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupResource {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub resource: String,
}

/// `name`: the API name of a series.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameMapping {
    #[serde(default)]
    pub matches: Option<String>,
    #[serde(default, rename = "as")]
    pub as_: Option<String>,
}

/// `resourceRules`: CPU and memory for the resource metrics API.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRules {
    #[serde(default)]
    pub cpu: Option<ResourceRule>,
    #[serde(default)]
    pub memory: Option<ResourceRule>,
    /// A Prometheus duration (`3m`, `1h30m`, `1d`).
    #[serde(default)]
    pub window: Option<String>,
}

/// One of `resourceRules.cpu` / `resourceRules.memory`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceRule {
    #[serde(default)]
    pub container_query: Option<String>,
    #[serde(default)]
    pub node_query: Option<String>,
    #[serde(default)]
    pub resources: Option<ResourceMapping>,
    #[serde(default)]
    pub container_label: Option<String>,
}

/// Why an adapter config cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AdapterConfigError {
    /// Unreadable, not YAML, or not the config's shape (`file:line:col: field: …`).
    #[error(transparent)]
    Manifest(#[from] podscale_manifest::ManifestError),
    #[error("{file}: no document found")]
    Empty { file: String },
    #[error(
        "{file}:{line}:{column}: data: a ConfigMap with no prometheus-adapter config (expected a `config.yaml` key)"
    )]
    NoConfigInConfigMap {
        file: String,
        line: usize,
        column: usize,
    },
}

/// Where the config's fields are in the file. For a ConfigMap, the config is the
/// text of `data."config.yaml"`, so positions are shifted into the file; a quoted
/// (not block) string cannot be mapped line by line and every position is its start.
#[derive(Debug, Clone, Default, PartialEq)]
struct SourceMap {
    file: String,
    positions: Positions,
    shift: Option<Shift>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Shift {
    at: Pos,
    exact: bool,
}

impl SourceMap {
    fn locate(&self, path: &str) -> Pos {
        let p = self.positions.locate(path);
        match self.shift {
            None => p,
            // Every line of a block scalar is indented as its first.
            Some(Shift { at, exact: true }) => {
                Pos::new(p.line + at.line - 1, p.column + at.column - 1)
            }
            Some(Shift { at, exact: false }) => at,
        }
    }

    fn shift_error(&self, e: podscale_manifest::ManifestError) -> podscale_manifest::ManifestError {
        use podscale_manifest::ManifestError as E;
        let Some(shift) = self.shift else { return e };
        let map = |line: usize, column: usize| {
            if shift.exact {
                (line + shift.at.line - 1, column + shift.at.column - 1)
            } else {
                (shift.at.line, shift.at.column)
            }
        };
        match e {
            E::Syntax {
                file,
                line,
                column,
                message,
            } => {
                let (line, column) = map(line, column);
                E::Syntax {
                    file,
                    line,
                    column,
                    message,
                }
            }
            E::Deserialize {
                file,
                line,
                column,
                field,
                message,
            } => {
                let (line, column) = map(line, column);
                E::Deserialize {
                    file,
                    line,
                    column,
                    field,
                    message,
                }
            }
            other => other,
        }
    }
}

impl AdapterConfig {
    /// Reads an adapter config file (`-` reads standard input), bounded as every input
    /// file is (`podscale_manifest::limits`). The file may be the config itself or the
    /// ConfigMap holding it (`data."config.yaml"`, as the Helm chart renders it).
    ///
    /// # Errors
    /// Unreadable, too large, not YAML, or not the config's shape, with `file:line:col`.
    pub fn load(path: &Path) -> Result<Self, AdapterConfigError> {
        let (name, source) = if path == Path::new("-") {
            let name = crate::config::STDIN_NAME;
            (name.to_owned(), podscale_manifest::read_stdin(name)?)
        } else {
            (
                path.display().to_string(),
                podscale_manifest::read_file(path)?,
            )
        };
        Self::from_source(&source, &name)
    }

    /// Parses config text; `file` names it in messages.
    ///
    /// # Errors
    /// As [`AdapterConfig::load`].
    pub fn from_source(source: &str, file: &str) -> Result<Self, AdapterConfigError> {
        let docs = podscale_manifest::parse_documents(source, file)?;
        let Some(doc) = docs.first() else {
            return Err(AdapterConfigError::Empty {
                file: file.to_owned(),
            });
        };
        if doc.kind() == Some("ConfigMap") {
            return Self::from_config_map(source, doc, file);
        }
        let mut config: AdapterConfig = podscale_manifest::deserialize(doc, file)?;
        config.source = SourceMap {
            file: file.to_owned(),
            positions: doc.positions.clone(),
            shift: None,
        };
        Ok(config)
    }

    fn from_config_map(
        source: &str,
        doc: &Document,
        file: &str,
    ) -> Result<Self, AdapterConfigError> {
        let path = "data.config.yaml";
        let Some(text) = doc
            .value
            .get("data")
            .and_then(|d| d.get("config.yaml"))
            .and_then(|v| v.as_str())
        else {
            let at = doc.positions.locate("data");
            return Err(AdapterConfigError::NoConfigInConfigMap {
                file: file.to_owned(),
                line: at.line,
                column: at.column,
            });
        };
        let at = doc.positions.locate(path);
        // A block scalar (`|`) starts at its first content line, indented: each of its
        // lines is a line of the file. A quoted one is not mapped line by line.
        let first = source.lines().nth(at.line.saturating_sub(1)).unwrap_or("");
        let starts = first.chars().nth(at.column.saturating_sub(1));
        let exact = !matches!(starts, Some('"' | '\'')) && !text.is_empty();
        let map = SourceMap {
            file: file.to_owned(),
            positions: Positions::default(),
            shift: Some(Shift { at, exact }),
        };
        let inner =
            podscale_manifest::parse_documents(text, file).map_err(|e| map.shift_error(e))?;
        let Some(inner) = inner.first() else {
            return Err(AdapterConfigError::Empty {
                file: file.to_owned(),
            });
        };
        let mut config: AdapterConfig =
            podscale_manifest::deserialize(inner, file).map_err(|e| map.shift_error(e))?;
        config.source = SourceMap {
            positions: inner.positions.clone(),
            ..map
        };
        Ok(config)
    }

    /// The file it was read from.
    pub fn file(&self) -> &str {
        &self.source.file
    }

    /// Every distinct `seriesQuery`, in order: what [`discover`] lists (the adapter
    /// also asks once per distinct query).
    pub fn series_queries(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.all_rules()
            .filter_map(|(_, r)| r.series_query.as_deref())
            .filter(|q| seen.insert(*q))
            .collect()
    }

    fn all_rules(&self) -> impl Iterator<Item = (String, &Rule)> {
        let custom = self.rules.iter().flatten().enumerate();
        let external = self.external_rules.iter().flatten().enumerate();
        custom
            .map(|(i, r)| (format!("rules[{i}]"), r))
            .chain(external.map(|(i, r)| (format!("externalRules[{i}]"), r)))
    }
}

/// One series as discovery sees it: its name and label names (the adapter strips the
/// values, `pkg/config`'s docs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub name: String,
    pub labels: BTreeSet<String>,
}

impl Series {
    /// From a label set as `/api/v1/series` returns it; `None` without `__name__`.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Self> {
        let name = labels.get("__name__")?.clone();
        Some(Self {
            name,
            labels: labels
                .keys()
                .filter(|k| *k != "__name__")
                .cloned()
                .collect(),
        })
    }
}

/// The series one `seriesQuery` matched: one [`Series`] per name, with the union of
/// its series' label names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesInfo {
    pub series_query: String,
    pub series: Vec<Series>,
    /// Names found but not examined, past [`MAX_METRICS`] lookups (reported).
    pub unexamined: usize,
}

/// Why [`discover`] failed.
#[cfg(feature = "sources")]
#[derive(Debug, thiserror::Error)]
#[error("listing the series of seriesQuery {query:?}")]
pub struct DiscoverError {
    pub query: String,
    #[source]
    pub source: crate::SourceError,
}

/// Lists the series of every distinct `seriesQuery` over the last `lookback` (the
/// adapter's `--metrics-max-age`; [`DISCOVERY_LOOKBACK`] by default), as the adapter's
/// discovery does, in a way that scales to a cluster's Prometheus: rather than every
/// series (`/api/v1/series` of the Helm chart's `{namespace!=""}` is most of the
/// TSDB), the query's metric names (`/api/v1/label/__name__/values`), then, for each
/// name some rule keeps, its label names (`/api/v1/labels`), which tell whether it has
/// a pod label. Each answer is bounded by the client's `maxSeries` and
/// `maxResponseSize`; at most [`MAX_METRICS`] names are examined in all.
///
/// # Errors
/// The first lookup that fails, naming its selector.
#[cfg(feature = "sources")]
pub async fn discover(
    client: &crate::prometheus::PrometheusClient,
    config: &AdapterConfig,
    lookback: Duration,
) -> Result<Vec<SeriesInfo>, DiscoverError> {
    let now = jiff::Timestamp::now();
    let start = jiff::SignedDuration::try_from(lookback)
        .ok()
        .and_then(|d| now.checked_sub(d).ok());
    let mut out = Vec::new();
    let mut budget = MAX_METRICS;
    for query in config.series_queries() {
        let failed = |source| DiscoverError {
            query: query.to_owned(),
            source,
        };
        let names = client
            .labels(Some("__name__"), query, start, None)
            .await
            .map_err(failed)?
            .values;
        // Only the names a rule of this query keeps cost a lookup.
        let filters: Vec<Option<Vec<(Regex, bool)>>> = config
            .all_rules()
            .filter(|(_, r)| r.series_query.as_deref() == Some(query))
            .map(|(_, r)| name_filters(r))
            .collect();
        let kept: Vec<String> = names
            .into_iter()
            .filter(|n| {
                filters.iter().any(|f| {
                    f.as_ref()
                        .is_none_or(|f| f.iter().all(|(r, positive)| r.is_match(n) == *positive))
                })
            })
            .collect();
        let mut info = SeriesInfo {
            series_query: query.to_owned(),
            series: Vec::new(),
            unexamined: 0,
        };
        for name in kept {
            if budget == 0 {
                info.unexamined += 1;
                continue;
            }
            budget -= 1;
            let selector = with_name(query, &name);
            let labels = client
                .labels(None, &selector, start, None)
                .await
                .map_err(|source| DiscoverError {
                    query: selector.clone(),
                    source,
                })?
                .values;
            info.series.push(Series {
                name,
                labels: labels.into_iter().filter(|l| l != "__name__").collect(),
            });
        }
        out.push(info);
    }
    Ok(out)
}

/// A rule's name filters (`seriesFilters`, then `name.matches`); `None` when one does
/// not compile (then [`convert`] reports the rule, and discovery keeps every name).
#[cfg(feature = "sources")]
fn name_filters(rule: &Rule) -> Option<Vec<(Regex, bool)>> {
    let mut out = Vec::new();
    for f in rule.series_filters.iter().flatten() {
        match (f.is.as_deref(), f.is_not.as_deref()) {
            (Some(a), None) => out.push((Regex::new(a).ok()?, true)),
            (None, Some(b)) => out.push((Regex::new(b).ok()?, false)),
            _ => return None,
        }
    }
    if let Some(m) = rule
        .name
        .as_ref()
        .and_then(|n| n.matches.as_deref())
        .filter(|m| !m.is_empty())
    {
        out.push((Regex::new(m).ok()?, true));
    }
    Some(out)
}

/// `query` narrowed to the series called `name`: `{__name__="name",…}` with the
/// query's own matchers. A query that names its metric (`x{…}`) or does not parse is
/// kept as it is.
#[cfg(feature = "sources")]
fn with_name(query: &str, name: &str) -> String {
    let trimmed = query.trim();
    let Some(inner) = trimmed
        .strip_prefix('{')
        .filter(|_| closing_brace(trimmed, 1) == Some(trimmed.len() - 1))
        .map(|rest| &rest[..rest.len() - 1])
    else {
        return query.to_owned();
    };
    let name = format!("__name__=\"{}\"", template::escape_string(name));
    if inner.trim().is_empty() {
        format!("{{{name}}}")
    } else {
        format!("{{{name},{inner}}}")
    }
}

/// Why [`convert_file`] failed.
#[cfg(feature = "sources")]
#[derive(Debug, thiserror::Error)]
pub enum ConvertFileError {
    #[error(transparent)]
    Read(#[from] AdapterConfigError),
    #[error(transparent)]
    Discover(#[from] DiscoverError),
}

/// Reads an adapter config and converts it, discovering its rules' series on `client`
/// when given (what `--adapter-config FILE` needs): [`AdapterConfig::load`],
/// [`discover`] over [`DISCOVERY_LOOKBACK`], [`convert`]. The result's
/// `prometheus.url` is the Helm chart's default: set the real one
/// ([`Conversion::set_prometheus_url`]) or keep the caller's own Prometheus settings.
///
/// # Errors
/// The file cannot be read, or a discovery lookup failed.
#[cfg(feature = "sources")]
pub async fn convert_file(
    path: &Path,
    client: Option<&crate::prometheus::PrometheusClient>,
) -> Result<Conversion, ConvertFileError> {
    let config = AdapterConfig::load(path)?;
    let series = match client {
        Some(c) => Some(discover(c, &config, DISCOVERY_LOOKBACK).await?),
        None => None,
    };
    Ok(convert(&config, series.as_deref()))
}

/// How much a [`Note`] matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Converted, with a difference worth knowing.
    Info,
    /// Not converted: the output lacks what the adapter served.
    NotTranslated,
}

/// A finding of a conversion, at the place in the adapter config it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub severity: Severity,
    pub diagnostic: Diagnostic,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.severity {
            Severity::Info => "note: ",
            Severity::NotTranslated => "not translated: ",
        })?;
        self.diagnostic.fmt(f)
    }
}

/// Where a converted metric came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `rules[3]`, `externalRules[0]`.
    pub rule: String,
    /// The rule's position in the file.
    pub at: Pos,
    /// The Prometheus series it reads.
    pub series: String,
}

/// The result of [`convert`].
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The podscale config (its `prometheus.url` is [`DEFAULT_PROMETHEUS_URL`]: set
    /// the real one).
    pub config: Config,
    /// Where each of `config.metrics` came from (same order).
    pub origins: Vec<Origin>,
    /// What was not translated, or translated with a difference; in file order.
    pub notes: Vec<Note>,
    /// The adapter config's file.
    pub file: String,
}

/// Converts an adapter config. `series`: what [`discover`] found for the rules'
/// `seriesQuery`s; a rule whose query is not in it converts statically when its
/// `seriesQuery` names its series, and is reported otherwise.
pub fn convert(config: &AdapterConfig, series: Option<&[SeriesInfo]>) -> Conversion {
    let mut c = Converter {
        src: &config.source,
        notes: Vec::new(),
        metrics: Vec::new(),
        overflow: 0,
        index: BTreeMap::new(),
    };
    let mut reported = BTreeSet::new();
    for (path, rule) in config.all_rules() {
        let external = path.starts_with("externalRules");
        let discovered = rule
            .series_query
            .as_deref()
            .and_then(|q| series?.iter().find(|s| s.series_query == q));
        if let Some(found) = discovered
            && found.unexamined > 0
            && reported.insert(found.series_query.clone())
        {
            c.note(
                Severity::NotTranslated,
                &format!("{path}.seriesQuery"),
                format!(
                    "{} of its metric names were not examined: discovery examines at most {MAX_METRICS} names; narrow the seriesQuery",
                    found.unexamined
                ),
            );
        }
        c.rule(&path, rule, external, discovered);
    }
    if c.overflow > 0 {
        c.note(
            Severity::NotTranslated,
            "",
            format!(
                "{} more metrics were not written: a conversion writes at most {MAX_METRICS}; narrow the rules' seriesQuery",
                c.overflow
            ),
        );
    }
    let mut resources = ResourcesConfig::default();
    if let Some(rr) = &config.resource_rules {
        c.resource_rules(rr, &mut resources);
    }
    let mut notes = c.notes;
    notes.sort_by_key(|n| (n.diagnostic.line, n.diagnostic.column));
    let (metrics, origins) = c.metrics.into_iter().unzip();
    Conversion {
        config: Config {
            prometheus: Some(PrometheusConfig::new(DEFAULT_PROMETHEUS_URL)),
            metrics,
            resources,
            ..Config::default()
        },
        origins,
        notes,
        file: config.source.file.clone(),
    }
}

struct Converter<'a> {
    src: &'a SourceMap,
    notes: Vec<Note>,
    metrics: Vec<(MetricConfig, Origin)>,
    overflow: usize,
    /// Where each (type, name) is in `metrics`.
    index: BTreeMap<(MetricKind, String), usize>,
}

/// The labels a rule's `resources` name.
#[derive(Debug, Default)]
struct Labels {
    pod: Option<String>,
    namespace: Option<String>,
    /// Whether `namespace` comes from an override (then namespaces are objects too).
    namespace_override: bool,
    /// Overridden resources other than pods and namespaces: (label, resource, cluster-scoped).
    objects: Vec<(String, String, bool)>,
}

impl Converter<'_> {
    fn note(&mut self, severity: Severity, path: &str, message: String) {
        let at = self.src.locate(path);
        self.notes.push(Note {
            severity,
            diagnostic: Diagnostic {
                file: self.src.file.clone(),
                line: at.line,
                column: at.column,
                field: path.to_owned(),
                message,
            },
        });
    }

    fn skip(&mut self, path: &str, message: String) {
        self.note(Severity::NotTranslated, path, message);
    }

    #[allow(clippy::too_many_lines)] // one rule, step by step as the adapter reads it
    fn rule(&mut self, path: &str, rule: &Rule, external: bool, discovered: Option<&SeriesInfo>) {
        let at = |field: &str| format!("{path}.{field}");
        // Querying: the template must be one podscale can rewrite.
        let query_text = rule.metrics_query.as_deref().unwrap_or("");
        if query_text.trim().is_empty() {
            self.skip(
                &at("metricsQuery"),
                "Required value: the adapter's query for it is empty too (\"empty query produced by metrics query template\")".into(),
            );
            return;
        }
        let query = match parse_go_template(query_text) {
            Ok(q) => q,
            Err(e) => return self.skip(&at("metricsQuery"), e),
        };
        for piece in &query {
            if let Piece::Text(t) = piece
                && let Some(p) = template::placeholders(t).first()
            {
                return self.skip(
                    &at("metricsQuery"),
                    format!(
                        "the query contains {{{{{p}}}}}, which podscale would read as its own placeholder"
                    ),
                );
            }
        }
        let uses_matchers = query.contains(&Piece::Field("LabelMatchers".into()));
        // Naming.
        let name = rule.name.clone().unwrap_or_default();
        let matches = name.matches.as_deref().filter(|m| !m.is_empty());
        let name_re = match Regex::new(matches.unwrap_or(".*")) {
            Ok(r) => r,
            Err(e) => {
                return self.skip(
                    &at("name.matches"),
                    format!(
                        "Invalid value: {:?}: {}",
                        matches.unwrap_or(""),
                        one_line(&e)
                    ),
                );
            }
        };
        let as_ = match name.as_.as_deref().filter(|a| !a.is_empty()) {
            Some(a) => a.to_owned(),
            // pkg/naming/metric_namer.go: $0 without capture groups, $1 with one.
            None => match name_re.captures_len() {
                1 => "$0".to_owned(),
                2 => "$1".to_owned(),
                _ => {
                    return self.skip(
                        &at("name"),
                        format!(
                            "Required value: must specify an 'as' value for name matcher {:?} (it has several capture groups)",
                            matches.unwrap_or("")
                        ),
                    );
                }
            },
        };
        // Discovery filters: every seriesFilter, then name.matches (upstream appends it).
        let mut filters: Vec<(Regex, bool)> = Vec::new();
        for (j, f) in rule.series_filters.iter().flatten().enumerate() {
            let fpath = format!("{path}.seriesFilters[{j}]");
            let (raw, positive) = match (f.is.as_deref(), f.is_not.as_deref()) {
                (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
                    return self.skip(
                        &fpath,
                        format!("Forbidden: cannot have both an `is` ({a:?}) and `isNot` ({b:?}) expression in a single filter"),
                    );
                }
                (Some(a), _) if !a.is_empty() => (a, true),
                (_, Some(b)) if !b.is_empty() => (b, false),
                _ => {
                    return self.skip(
                        &fpath,
                        "Required value: must have either an `is` or `isNot` expression in a filter".into(),
                    );
                }
            };
            match Regex::new(raw) {
                Ok(r) => filters.push((r, positive)),
                Err(e) => {
                    return self.skip(
                        &format!("{fpath}.{}", if positive { "is" } else { "isNot" }),
                        format!("Invalid value: {raw:?}: {}", one_line(&e)),
                    );
                }
            }
        }
        if matches.is_some() {
            filters.push((name_re.clone(), true));
        }
        let passes = |n: &str| {
            filters
                .iter()
                .all(|(r, positive)| r.is_match(n) == *positive)
        };
        // Association.
        let mapping = rule.resources.clone().unwrap_or_default();
        let labels = match resource_labels(&mapping) {
            Ok(l) => l,
            Err(e) => return self.skip(&at("resources.template"), e),
        };
        // Which series.
        let series_query = rule.series_query.as_deref().unwrap_or("");
        if series_query.trim().is_empty() {
            return self.skip(
                &at("seriesQuery"),
                "Required value: the series selector the adapter lists the rule's series with"
                    .into(),
            );
        }
        let names: Vec<(String, Option<BTreeSet<String>>)> = if let Some(found) = discovered {
            let mut by_name: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
            for s in &found.series {
                by_name
                    .entry(&s.name)
                    .or_default()
                    .extend(s.labels.iter().cloned());
            }
            let total = by_name.len();
            let kept: Vec<_> = by_name
                .into_iter()
                .filter(|(n, _)| passes(n))
                .map(|(n, l)| (n.to_owned(), Some(l)))
                .collect();
            if kept.is_empty() {
                self.note(
                    Severity::Info,
                    &at("seriesQuery"),
                    if total == 0 {
                        "Prometheus has no series for it (in the lookback): the adapter serves no metric from this rule either".into()
                    } else {
                        format!(
                            "none of its {total} series names passes seriesFilters and name.matches: the adapter serves no metric from this rule either"
                        )
                    },
                );
                return;
            }
            kept
        } else {
            match selector_names(series_query) {
                Err(e) => {
                    return self.skip(
                        &at("seriesQuery"),
                        format!("Invalid value: {series_query:?}: not a series selector: {e}"),
                    );
                }
                Ok(None) => {
                    return self.skip(
                        &at("seriesQuery"),
                        format!(
                            "{series_query:?} matches a family of series: needs --prometheus to discover names"
                        ),
                    );
                }
                Ok(Some(names)) => {
                    let (kept, dropped): (Vec<_>, Vec<_>) =
                        names.into_iter().partition(|n| passes(n));
                    if !dropped.is_empty() {
                        self.note(
                            Severity::Info,
                            &at("seriesQuery"),
                            format!(
                                "series {} do not pass seriesFilters and name.matches: no metric for them (nor from the adapter)",
                                quoted_list(&dropped)
                            ),
                        );
                    }
                    kept.into_iter().map(|n| (n, None)).collect()
                }
            }
        };
        // The kinds of metric the rule serves.
        let selector_ok = |need: &str, l: &Option<BTreeSet<String>>| {
            l.as_ref().is_none_or(|set| set.contains(need))
        };
        let rule_at = self.src.locate(path);
        if external {
            let namespaced = mapping.namespaced.unwrap_or(true);
            let matchers = if namespaced {
                let Some(ns) = &labels.namespace else {
                    return self.skip(
                        &at("resources"),
                        "a namespaced external rule (the default) with no namespace label: the adapter cannot build its query (\"no generic resource label form specified for this metric\"); map the namespace in resources.overrides or set resources.namespaced: false".into(),
                    );
                };
                format!("{ns}=\"{{{{namespace}}}}\"")
            } else {
                String::new()
            };
            for (series, _) in &names {
                let Some(api) = self.api_name(&at("name"), &name_re, &as_, series) else {
                    continue;
                };
                match fill(&query, series, &matchers, "") {
                    Ok(q) => self.add(MetricKind::External, api, q, None, path, rule_at, series),
                    Err(e) => return self.skip(&at("metricsQuery"), e),
                }
            }
            return;
        }
        let object = match labels.objects.as_slice() {
            // Only the namespace is mapped: the metric describes Namespace objects (as
            // vLLM's production-stack rule, read by an HPA's Object metric).
            [] if labels.pod.is_none() && labels.namespace_override => labels
                .namespace
                .clone()
                .map(|ns| (ns, "namespace".to_owned(), true)),
            [] => None,
            [one] => Some(one.clone()),
            several => {
                let kinds: Vec<String> = several.iter().map(|(_, r, _)| r.clone()).collect();
                self.skip(
                    &at("resources.overrides"),
                    format!(
                        "maps several object kinds ({}): a podscale Object metric has one query per name; write one per kind by hand with {{{{objectKind}}}}/{{{{objectName}}}}",
                        kinds.join(", ")
                    ),
                );
                if labels.pod.is_none() {
                    return;
                }
                None
            }
        };
        if labels.pod.is_none() && object.is_none() {
            return self.skip(
                &at("resources"),
                "maps no pod or object label (resources.overrides or resources.template): the adapter serves no pods or object metric from it".into(),
            );
        }
        if mapping.template.is_some() && labels.objects.is_empty() {
            self.note(
                Severity::Info,
                &at("resources.template"),
                "the template also makes any label named after a resource (service, deployment, …) an object: only the pod mapping is converted; write Object metrics by hand".into(),
            );
        }
        let mut no_pod_label = Vec::new();
        for (series, seen_labels) in &names {
            let Some(api) = self.api_name(&at("name"), &name_re, &as_, series) else {
                continue;
            };
            let mut served = false;
            if let Some(pod) = &labels.pod
                && selector_ok(pod, seen_labels)
            {
                let Some(ns) = &labels.namespace else {
                    return self.skip(
                        &at("resources"),
                        "no namespace label (resources.overrides or resources.template): the adapter cannot build a pods query (\"unable to convert resource namespaces into label\")".into(),
                    );
                };
                let matchers = format!("{ns}=\"{{{{namespace}}}}\",{pod}=~\"{{{{pods}}}}\"");
                match fill(&query, series, &matchers, pod) {
                    Ok(q) => {
                        let pod_label = (pod != "pod").then(|| pod.clone());
                        self.add(
                            MetricKind::Pods,
                            api.clone(),
                            q,
                            pod_label,
                            path,
                            rule_at,
                            series,
                        );
                        served = true;
                    }
                    Err(e) => return self.skip(&at("metricsQuery"), e),
                }
            }
            if let Some((label, resource, cluster)) = &object
                && selector_ok(label, seen_labels)
            {
                let matchers = match (&labels.namespace, cluster) {
                    (Some(ns), false) => {
                        format!("{ns}=\"{{{{namespace}}}}\",{label}=\"{{{{objectName}}}}\"")
                    }
                    (None, false) => {
                        return self.skip(
                            &at("resources"),
                            format!("no namespace label: the adapter cannot build a query for namespaced {resource} objects"),
                        );
                    }
                    (_, true) => format!("{label}=\"{{{{objectName}}}}\""),
                };
                match fill(&query, series, &matchers, label) {
                    Ok(mut q) => {
                        if !uses_matchers {
                            // The adapter picks the described object's series out of the
                            // answer by its label (pkg/custom-provider); podscale's Object
                            // metric takes the one series the query returns.
                            q = format!(
                                "({q}) and on({label}) label_replace(vector(1), \"{label}\", \"{{{{objectName}}}}\", \"\", \"\")"
                            );
                        }
                        self.add(
                            MetricKind::Object,
                            api.clone(),
                            q,
                            None,
                            path,
                            rule_at,
                            series,
                        );
                        served = true;
                    }
                    Err(e) => return self.skip(&at("metricsQuery"), e),
                }
            }
            if !served {
                no_pod_label.push(series.clone());
            }
        }
        if object.is_some() {
            let (_, resource, _) = object
                .as_ref()
                .map_or(("", "", false), |(l, r, c)| (l.as_str(), r.as_str(), *c));
            self.note(
                Severity::Info,
                &at("resources.overrides"),
                format!(
                    "its Object metrics answer for any described object's name; the adapter served them for {resource} objects only"
                ),
            );
        }
        if !no_pod_label.is_empty() {
            self.note(
                Severity::Info,
                &at("resources"),
                format!(
                    "series {} carry none of the rule's pod or object labels: the adapter serves them for no pod or object either",
                    quoted_list(&no_pod_label)
                ),
            );
        }
    }

    /// The API name of `series` (`name.as` expanded), or a note.
    fn api_name(&mut self, path: &str, re: &Regex, as_: &str, series: &str) -> Option<String> {
        let Some(caps) = re.captures(series) else {
            self.skip(
                path,
                format!(
                    "series name {series:?} did not match expected pattern {:?}",
                    re.as_str()
                ),
            );
            return None;
        };
        let mut out = String::new();
        caps.expand(as_, &mut out);
        if out.is_empty() {
            self.skip(
                path,
                format!("name.as {as_:?} gives series {series:?} an empty name"),
            );
            return None;
        }
        Some(out)
    }

    #[allow(clippy::too_many_arguments)] // one metric and where it came from
    fn add(
        &mut self,
        kind: MetricKind,
        name: String,
        query: String,
        pod_label: Option<String>,
        rule: &str,
        at: Pos,
        series: &str,
    ) {
        let origin = Origin {
            rule: rule.to_owned(),
            at,
            series: series.to_owned(),
        };
        let metric = MetricConfig {
            name,
            kind,
            query: Some(query),
            preset: None,
            scrape: None,
            pod_label,
            max_age: None,
            empty_as: None,
            on_error: OnError::Fail,
        };
        // The adapter keeps the last rule's series for a name (`SetSeries` overwrites
        // its map entry), so a later duplicate replaces the earlier one.
        if let Some(&i) = self.index.get(&(kind, metric.name.clone())) {
            let (old, old_origin) = &self.metrics[i];
            let message = format!(
                "{} metric {:?} (series {:?}) replaces the one from {} at line {} (series {:?}): the adapter's later rule wins",
                kind.hpa_type(),
                old.name,
                series,
                old_origin.rule,
                old_origin.at.line,
                old_origin.series
            );
            self.metrics[i] = (metric, origin);
            self.note(Severity::Info, rule, message);
            return;
        }
        if self.metrics.len() >= MAX_METRICS {
            self.overflow += 1;
            return;
        }
        self.index
            .insert((kind, metric.name.clone()), self.metrics.len());
        self.metrics.push((metric, origin));
    }

    fn resource_rules(&mut self, rr: &ResourceRules, out: &mut ResourcesConfig) {
        let mut queries = Vec::new();
        for (field, rule) in [("cpu", &rr.cpu), ("memory", &rr.memory)] {
            let path = format!("resourceRules.{field}");
            let Some(rule) = rule else {
                self.skip(
                    &path,
                    "Required value: the adapter needs both cpu and memory; resources stay with the metrics API".into(),
                );
                return;
            };
            match self.resource_query(&path, rule) {
                Some(q) => queries.push(q),
                None => return,
            }
            if rule
                .node_query
                .as_deref()
                .is_some_and(|q| !q.trim().is_empty())
            {
                self.note(
                    Severity::Info,
                    &format!("{path}.nodeQuery"),
                    "node metrics (kubectl top node) are not read by podscale: an HPA reads pods only".into(),
                );
            }
        }
        let window = match rr.window.as_deref().map(parse_prometheus_duration) {
            None => None,
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                self.skip(
                    "resourceRules.window",
                    format!(
                        "Invalid value: {:?}: {e}",
                        rr.window.as_deref().unwrap_or("")
                    ),
                );
                return;
            }
        };
        let mut queries = queries.into_iter();
        out.source = ResourceSource::Prometheus;
        out.cpu_query = queries.next();
        out.memory_query = queries.next();
        out.window = window;
    }

    fn resource_query(&mut self, path: &str, rule: &ResourceRule) -> Option<String> {
        let qpath = format!("{path}.containerQuery");
        let text = rule.container_query.as_deref().unwrap_or("");
        if text.trim().is_empty() {
            self.skip(
                &qpath,
                "Required value: resources stay with the metrics API".into(),
            );
            return None;
        }
        let pieces = match parse_go_template(text) {
            Ok(p) => p,
            Err(e) => {
                self.skip(&qpath, e);
                return None;
            }
        };
        let mapping = rule.resources.clone().unwrap_or_default();
        let labels = match resource_labels(&mapping) {
            Ok(l) => l,
            Err(e) => {
                self.skip(&format!("{path}.resources.template"), e);
                return None;
            }
        };
        let (Some(pod), Some(ns)) = (&labels.pod, &labels.namespace) else {
            self.skip(
                &format!("{path}.resources"),
                "no pod or namespace label (resources.overrides or resources.template): the adapter cannot build the pods' query".into(),
            );
            return None;
        };
        let container = rule
            .container_label
            .as_deref()
            .filter(|c| !c.is_empty())
            .unwrap_or("container");
        let matchers = format!("{ns}=\"{{{{namespace}}}}\",{pod}=~\"{{{{pods}}}}\"");
        // pkg/resourceprovider: Build("", pods, namespace, [containerLabel], …).
        let mut q = match fill_with(&pieces, "", &matchers, &format!("{pod},{container}"), false) {
            Ok(q) => q,
            Err(e) => {
                self.skip(&qpath, e);
                return None;
            }
        };
        // podscale reads the labels `pod` and `container` of each result.
        for (want, have) in [("pod", pod.as_str()), ("container", container)] {
            if have != want {
                q = format!(
                    "label_replace({q}, \"{want}\", \"$1\", \"{}\", \"(.*)\")",
                    template::escape_string(have)
                );
            }
        }
        Some(q)
    }
}

/// A short list of names for a message.
fn quoted_list(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut out: Vec<String> = names.iter().take(SHOWN).map(|n| format!("{n:?}")).collect();
    if names.len() > SHOWN {
        out.push(format!("and {} more", names.len() - SHOWN));
    }
    out.join(", ")
}

/// A regex error on one line (the regex crate draws a multi-line caret diagram).
fn one_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| l.trim_start().starts_with("error:"))
        .map_or_else(
            || text.lines().last().unwrap_or("").trim().to_owned(),
            |l| l.trim().to_owned(),
        )
}

/// A piece of a Go template with `<<`/`>>` delimiters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `<<.Name>>`.
    Field(String),
}

const QUERY_FIELDS: &[&str] = &["Series", "LabelMatchers", "GroupBy"];

/// Splits a template into text and `<<.Field>>` actions, as Go's `text/template`
/// with `Delims("<<", ">>")` does for the subset podscale translates: fields, trim
/// markers (`<<- .Series ->>`) and comments (`<</* … */>>`). Any other action
/// (pipelines, functions, `range`, `if`, `.LabelValuesByName`) is an error naming it.
fn parse_go_template(src: &str) -> Result<Vec<Piece>, String> {
    let mut out: Vec<Piece> = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(open) = rest.find("<<") {
        let mut text = &rest[..open];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find(">>") else {
            return Err(format!(
                "Invalid value: unclosed action {:?}",
                shorten(&rest[open..])
            ));
        };
        let mut body = &after[..close];
        // Go: "{{- " trims the text before, " -}}" the text after (a space must follow or
        // precede the dash).
        let trim_before = body.starts_with("- ") || body == "-";
        if trim_before {
            body = &body[1..];
            text = text.trim_end();
        }
        trim_next = body.ends_with(" -");
        if trim_next {
            body = &body[..body.len() - 1];
        }
        if !text.is_empty() {
            out.push(Piece::Text(text.to_owned()));
        }
        let action = body.trim();
        if action.starts_with("/*") && action.ends_with("*/") {
            // A comment.
        } else if let Some(field) = action.strip_prefix('.')
            && QUERY_FIELDS.contains(&field)
        {
            out.push(Piece::Field(field.to_owned()));
        } else if let Some(field) = action.strip_prefix('.')
            && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !field.is_empty()
        {
            return Err(format!(
                "Forbidden: <<.{field}>>: podscale translates <<.Series>>, <<.LabelMatchers>> and <<.GroupBy>> only"
            ));
        } else {
            return Err(format!(
                "Forbidden: unsupported template action <<{}>>: podscale translates <<.Series>>, <<.LabelMatchers>> and <<.GroupBy>> only",
                shorten(body)
            ));
        }
        rest = &after[close + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        out.push(Piece::Text(text.to_owned()));
    }
    Ok(out)
}

fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

/// The labels a `resources` block names for pods, namespaces and other objects, as
/// `pkg/naming/resource_converter.go` resolves them: an override first, else the
/// template with `.Group` (dots and dashes made underscores; empty for core) and the
/// singular `.Resource`.
fn resource_labels(mapping: &ResourceMapping) -> Result<Labels, String> {
    let mut labels = Labels::default();
    let template = match mapping.template.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => {
            let pieces = parse_resource_template(t)?;
            // pkg/naming/lbl_res.go: the label extractor needs `.Resource`.
            if !pieces.contains(&Piece::Field("Resource".into())) {
                return Err(format!(
                    "Invalid value: {t:?}: must include at least `<<.Resource>>` in the label template"
                ));
            }
            Some(pieces)
        }
    };
    let render = |resource: &str| {
        template.as_ref().map(|pieces| {
            pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => t.as_str(),
                    Piece::Field(f) if f == "Resource" => resource,
                    Piece::Field(_) => "",
                })
                .collect::<String>()
        })
    };
    for (label, gr) in mapping.overrides.iter().flatten() {
        let group = gr.group.as_deref().unwrap_or("");
        let core = group.is_empty() || group == "core";
        let resource = singular(&gr.resource.to_ascii_lowercase());
        match (core, resource.as_str()) {
            (true, "pod") => labels.pod = Some(label.clone()),
            (true, "namespace") => {
                labels.namespace = Some(label.clone());
                labels.namespace_override = true;
            }
            _ => {
                let cluster = core && matches!(resource.as_str(), "node" | "persistentvolume");
                let named = if core {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                labels.objects.push((label.clone(), named, cluster));
            }
        }
    }
    if labels.pod.is_none() {
        labels.pod = render("pod");
    }
    if labels.namespace.is_none() {
        labels.namespace = render("namespace");
    }
    Ok(labels)
}

fn parse_resource_template(t: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("<<") {
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after
            .find(">>")
            .ok_or_else(|| format!("Invalid value: {t:?}: unclosed action"))?;
        match after[..close].trim() {
            ".Group" => out.push(Piece::Field("Group".into())),
            ".Resource" => out.push(Piece::Field("Resource".into())),
            other => {
                return Err(format!(
                    "Forbidden: unsupported template action <<{other}>>: podscale translates <<.Group>> and <<.Resource>> only"
                ));
            }
        }
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_owned()));
    }
    Ok(out)
}

/// A resource name made singular, as the REST mapper does for the common kinds.
fn singular(resource: &str) -> String {
    if let Some(stem) = resource.strip_suffix("ies") {
        return format!("{stem}y");
    }
    for suffix in ["sses", "ches", "shes", "xes"] {
        if let Some(stem) = resource.strip_suffix(suffix) {
            return format!("{stem}{}", &suffix[..suffix.len() - 2]);
        }
    }
    if let Some(stem) = resource.strip_suffix("ses")
        && stem.ends_with("res")
    {
        // ingresses
        return format!("{stem}s");
    }
    resource
        .strip_suffix('s')
        .filter(|s| !s.ends_with('s'))
        .unwrap_or(resource)
        .to_owned()
}

/// The query for one series: the template filled in, with the HPA's metric selector
/// joined to the label matchers.
fn fill(pieces: &[Piece], series: &str, matchers: &str, group_by: &str) -> Result<String, String> {
    fill_with(pieces, series, matchers, group_by, true)
}

fn fill_with(
    pieces: &[Piece],
    series: &str,
    matchers: &str,
    group_by: &str,
    with_selector: bool,
) -> Result<String, String> {
    let mut out = String::new();
    let mut marks = Vec::new();
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Field(f) => match f.as_str() {
                "Series" => out.push_str(series),
                "LabelMatchers" => {
                    out.push_str(matchers);
                    marks.push(out.len());
                }
                _ => out.push_str(group_by),
            },
        }
    }
    if with_selector {
        // The closing brace of each `{…}` holding the label matchers, last first so
        // the earlier offsets stay valid.
        let mut ends = Vec::new();
        for m in marks {
            ends.push(closing_brace(&out, m).ok_or(
                "Forbidden: <<.LabelMatchers>> is not inside a {…} selector, where podscale adds the HPA's metric selector",
            )?);
        }
        ends.sort_unstable();
        ends.dedup();
        for end in ends.into_iter().rev() {
            let before = out[..end].trim_end();
            let sep = if before.ends_with('{') || before.ends_with(',') {
                ""
            } else {
                ","
            };
            out.insert_str(end, &format!("{sep}{{{{selector}}}}"));
        }
    }
    template::check(&out)
        .map_err(|e| format!("the converted query is not a valid template: {e}"))?;
    Ok(out)
}

/// The index of the `}` closing the selector open at `from`, skipping strings.
fn closing_brace(s: &str, from: usize) -> Option<usize> {
    let b = s.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The metric names a series selector matches, when it names them: `name{…}`,
/// `{__name__="name"}`, `{__name__=~"a|b"}` (an alternation of literals; PromQL
/// anchors regexes), narrowed by other `__name__` matchers. `Ok(None)` for a family
/// that only Prometheus can list.
fn selector_names(sel: &str) -> Result<Option<Vec<String>>, String> {
    let mut p = SelParser {
        s: sel.as_bytes(),
        src: sel,
        i: 0,
    };
    p.ws();
    let mut names: Option<BTreeSet<String>> = None;
    let mut name_matchers: Vec<(String, String)> = Vec::new();
    if p.peek()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
    {
        names = Some(BTreeSet::from([p.ident()]));
    }
    p.ws();
    if p.peek() == Some(b'{') {
        p.i += 1;
        loop {
            p.ws();
            match p.peek() {
                Some(b'}') => {
                    p.i += 1;
                    break;
                }
                None => return Err("unclosed {".into()),
                _ => {}
            }
            let label = if matches!(p.peek(), Some(b'"' | b'\'' | b'`')) {
                p.string()?
            } else {
                p.ident()
            };
            if label.is_empty() {
                return Err(format!("unexpected character at {}", p.i + 1));
            }
            p.ws();
            let op = p.op();
            if op.is_empty() {
                // Prometheus 3: a lone quoted string is the metric name.
                name_matchers.push(("=".into(), label));
            } else {
                p.ws();
                let value = p.string()?;
                if label == "__name__" {
                    name_matchers.push((op.to_owned(), value));
                }
            }
            p.ws();
            match p.peek() {
                Some(b',') => p.i += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected , or }} at {}", p.i + 1)),
            }
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected text at {}", p.i + 1));
    }
    if names.is_none() && name_matchers.is_empty() && sel.trim().is_empty() {
        return Err("empty".into());
    }
    // Equality and literal alternations name series; the rest narrow them.
    let mut narrowing = Vec::new();
    for (op, value) in name_matchers {
        let named: Option<BTreeSet<String>> = match op.as_str() {
            "=" => Some(BTreeSet::from([value.clone()])),
            "=~" => literal_alternation(&value).map(|v| v.into_iter().collect()),
            _ => None,
        };
        match named {
            Some(set) => {
                names = Some(match names {
                    None => set,
                    Some(have) => have.intersection(&set).cloned().collect(),
                });
            }
            None => narrowing.push((op, value)),
        }
    }
    let Some(names) = names else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for n in names {
        let mut keep = true;
        for (op, value) in &narrowing {
            let re = Regex::new(&format!("^(?:{value})$")).map_err(|e| one_line(&e))?;
            keep &= match op.as_str() {
                "!=" => n != *value,
                "=~" => re.is_match(&n),
                "!~" => !re.is_match(&n),
                _ => true,
            };
        }
        if keep {
            out.push(n);
        }
    }
    Ok(Some(out))
}

/// `a|b\.c` → `["a", "b.c"]` when every alternative is a literal (optionally `^…$`).
fn literal_alternation(re: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for alt in re.split('|') {
        let alt = alt.strip_prefix('^').unwrap_or(alt);
        let alt = alt
            .strip_suffix('$')
            .filter(|a| !a.ends_with('\\'))
            .unwrap_or(alt);
        let mut lit = String::new();
        let mut chars = alt.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e) if "\\.+*?()|[]{}^$".contains(e) => lit.push(e),
                    _ => return None,
                },
                c if ".+*?()[]{}^$".contains(c) => return None,
                c => lit.push(c),
            }
        }
        if lit.is_empty() {
            return None;
        }
        out.push(lit);
    }
    Some(out)
}

struct SelParser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl SelParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn ident(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
        {
            self.i += 1;
        }
        self.src[start..self.i].to_owned()
    }
    fn op(&mut self) -> &'static str {
        for op in ["=~", "!~", "!=", "="] {
            if self.src[self.i..].starts_with(op) {
                self.i += op.len();
                return op;
            }
        }
        ""
    }
    /// A PromQL string: `"…"` and `'…'` with escapes, `` `…` `` raw.
    fn string(&mut self) -> Result<String, String> {
        let Some(q) = self.peek().filter(|c| matches!(c, b'"' | b'\'' | b'`')) else {
            return Err(format!("expected a string at {}", self.i + 1));
        };
        self.i += 1;
        let mut out = String::new();
        let rest = &self.src[self.i..];
        let mut chars = rest.char_indices();
        while let Some((k, c)) = chars.next() {
            if c == q as char {
                self.i += k + 1;
                return Ok(out);
            }
            if c == '\\' && q != b'`' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, e)) => out.push(e),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err("unterminated string".into())
    }
}

/// A Prometheus duration (`model.Duration`): `1h30m`, `3m`, `1d`, `1w`, `1y`, `500ms`.
fn parse_prometheus_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("not a valid duration string: {s:?}");
    if s.is_empty() || s == "0" {
        return Err(err());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            "w" => Duration::from_secs(7 * 86_400),
            "y" => Duration::from_secs(365 * 86_400),
            _ => return Err(err()),
        };
        let part = unit
            .checked_mul(u32::try_from(n).map_err(|_| err())?)
            .ok_or_else(err)?;
        total = total.checked_add(part).ok_or_else(err)?;
        rest = &rest[unit_len..];
    }
    if total.is_zero() {
        return Err(err());
    }
    Ok(total)
}

impl Conversion {
    /// Sets `prometheus.url` (the adapter's `--prometheus-url`, which its config file
    /// does not hold). Credentials (`user:password@`) and a query string are left out
    /// of the written URL, so a secret never lands in the output; returns whether
    /// anything was left out (then say so: set `basicAuth` or `bearerTokenFile`).
    pub fn set_prometheus_url(&mut self, url: &str) -> bool {
        let start = url.find("://").map_or(0, |i| i + 3);
        let end = url[start..]
            .find(['?', '#'])
            .map_or(url.len(), |i| start + i);
        let host_start = url[start..end]
            .split('/')
            .next()
            .and_then(|authority| authority.rfind('@'))
            .map_or(start, |at| start + at + 1);
        let clean = format!("{}{}", &url[..start], &url[host_start..end]);
        let left_out = clean.len() != url.len();
        self.config.prometheus = Some(PrometheusConfig::new(&clean));
        left_out
    }

    /// Whether anything was not translated.
    pub fn incomplete(&self) -> bool {
        self.notes
            .iter()
            .any(|n| n.severity == Severity::NotTranslated)
    }

    /// The `podscale.yaml` text: each metric preceded by the rule and series it came
    /// from, and what was not translated listed at the top, so the file keeps it.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "# podscale.yaml converted from the prometheus-adapter config {}\n",
            self.file
        ));
        let skipped: Vec<&Note> = self
            .notes
            .iter()
            .filter(|n| n.severity == Severity::NotTranslated)
            .collect();
        if !skipped.is_empty() {
            out.push_str("#\n# Not translated (see the adapter config at these places):\n");
            for n in skipped {
                for line in n.diagnostic.to_string().lines() {
                    out.push_str(&format!("#   {line}\n"));
                }
            }
        }
        if let Some(p) = &self.config.prometheus {
            out.push_str("prometheus:\n");
            out.push_str(&format!("  url: {}\n", yaml_str(&p.url, 4)));
        }
        if self.config.metrics.is_empty() {
            out.push_str("metrics: []\n");
        } else {
            out.push_str("metrics:\n");
        }
        for (m, o) in self.config.metrics.iter().zip(&self.origins) {
            let origin = format!("{} ({}:{}): series {}", o.rule, self.file, o.at, o.series);
            out.push_str(&format!("  # {}\n", origin.replace(['\n', '\r'], " ")));
            out.push_str(&format!("  - name: {}\n", yaml_str(&m.name, 6)));
            out.push_str(&format!(
                "    type: {}\n",
                match m.kind {
                    MetricKind::Pods => "pods",
                    MetricKind::Object => "object",
                    MetricKind::External => "external",
                }
            ));
            if let Some(q) = &m.query {
                out.push_str(&format!("    query: {}\n", yaml_str(q, 6)));
            }
            if let Some(l) = &m.pod_label {
                out.push_str(&format!("    podLabel: {}\n", yaml_str(l, 6)));
            }
        }
        let r = &self.config.resources;
        if r.source == ResourceSource::Prometheus {
            out.push_str("resources:\n  source: prometheus\n");
            if let Some(q) = &r.cpu_query {
                out.push_str(&format!("  cpuQuery: {}\n", yaml_str(q, 4)));
            }
            if let Some(q) = &r.memory_query {
                out.push_str(&format!("  memoryQuery: {}\n", yaml_str(q, 4)));
            }
            if let Some(w) = r.window {
                out.push_str(&format!(
                    "  window: {}\n",
                    crate::config::format_duration(w)
                ));
            }
        }
        out
    }
}

/// A YAML scalar for any string, its lines (if several) indented by `indent`: a
/// literal block (`|`, `|-`) for a query over several lines, single-quoted (nothing to
/// escape but `'`) for one line, double-quoted JSON for what neither writes exactly
/// (control characters, leading spaces, several trailing newlines).
fn yaml_str(s: &str, indent: usize) -> String {
    let body = s.strip_suffix('\n').unwrap_or(s);
    let blockable = s.contains('\n')
        && !body.is_empty()
        && !body.ends_with('\n')
        && !body.starts_with([' ', '\t', '\n'])
        && !body.chars().any(|c| c.is_control() && c != '\n');
    if blockable {
        let pad = " ".repeat(indent);
        let mut out = String::from(if body.len() == s.len() { "|-" } else { "|" });
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
                out.push_str(line);
            }
        }
        out
    } else if s.chars().any(char::is_control) {
        serde_json::Value::String(s.to_owned()).to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> AdapterConfig {
        AdapterConfig::from_source(src, "adapter.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn messages(c: &Conversion) -> Vec<String> {
        c.notes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn go_templates_split_into_fields() {
        assert_eq!(
            parse_go_template("sum(<<.Series>>{<<.LabelMatchers>>}) by (<< .GroupBy >>)"),
            Ok(vec![
                Piece::Text("sum(".into()),
                Piece::Field("Series".into()),
                Piece::Text("{".into()),
                Piece::Field("LabelMatchers".into()),
                Piece::Text("}) by (".into()),
                Piece::Field("GroupBy".into()),
                Piece::Text(")".into()),
            ])
        );
        assert_eq!(
            parse_go_template("a <<- .Series ->> b<</* c */>>"),
            Ok(vec![
                Piece::Text("a".into()),
                Piece::Field("Series".into()),
                Piece::Text("b".into()),
            ])
        );
        let e = parse_go_template("<<range .GroupBySlice>>x<<end>>").expect_err("range");
        assert!(
            e.starts_with("Forbidden: unsupported template action <<range .GroupBySlice>>"),
            "{e}"
        );
        let e = parse_go_template("<<.LabelValuesByName>>").expect_err("field");
        assert!(e.starts_with("Forbidden: <<.LabelValuesByName>>"), "{e}");
        assert!(parse_go_template("x <<.Series").is_err());
    }

    #[test]
    fn selectors_name_their_series_or_not() {
        let names = |s: &str| selector_names(s).expect(s);
        assert_eq!(
            names(r#"vllm:num_requests_waiting{namespace!="",pod!=""}"#),
            Some(vec!["vllm:num_requests_waiting".into()])
        );
        assert_eq!(
            names(r#"{__name__="queue_depth",topic!=""}"#),
            Some(vec!["queue_depth".into()])
        );
        assert_eq!(
            names(r#"{__name__=~"^a_total$|b\\.c"}"#),
            Some(vec!["a_total".into(), "b.c".into()])
        );
        assert_eq!(names(r#"{__name__=~"^container_.*",pod!=""}"#), None);
        assert_eq!(names(r#"{namespace!="",__name__!~"^container_.*"}"#), None);
        assert_eq!(
            names(r#"{__name__=~"a|container_x",__name__!~"container_.*"}"#),
            Some(vec!["a".into()])
        );
        assert_eq!(names(r#"{"vllm:x", pod!=''}"#), Some(vec!["vllm:x".into()]));
        assert!(selector_names("x{pod=}").is_err());
        assert!(selector_names("x{pod=\"a\"").is_err());
    }

    #[test]
    fn label_matchers_take_the_selector_in_their_braces() {
        let q = parse_go_template(
            r#"sum(rate(<<.Series>>{<<.LabelMatchers>>,container!="POD"}[5m])) by (<<.GroupBy>>)"#,
        )
        .expect("parses");
        assert_eq!(
            fill(&q, "container_cpu_usage_seconds_total", r#"namespace="{{namespace}}",pod=~"{{pods}}""#, "pod"),
            Ok(r#"sum(rate(container_cpu_usage_seconds_total{namespace="{{namespace}}",pod=~"{{pods}}",container!="POD",{{selector}}}[5m])) by (pod)"#.into())
        );
        let q =
            parse_go_template("sum(<<.Series>>{<<.LabelMatchers>>}) by (name)").expect("parses");
        assert_eq!(
            fill(&q, "queue_depth", "", ""),
            Ok("sum(queue_depth{{{selector}}}) by (name)".into())
        );
        let q = parse_go_template(r#"x{a="}",<<.LabelMatchers>>}"#).expect("parses");
        assert_eq!(fill(&q, "x", "", ""), Ok(r#"x{a="}",{{selector}}}"#.into()));
        let q = parse_go_template("sum(x) by (<<.LabelMatchers>>)").expect("parses");
        assert!(fill(&q, "x", "a=\"b\"", "").is_err());
    }

    #[test]
    fn resource_labels_follow_overrides_then_the_template() {
        let m = ResourceMapping {
            template: Some("kube_<<.Group>>_<<.Resource>>".into()),
            overrides: Some(BTreeMap::from([(
                "svc".to_owned(),
                GroupResource {
                    group: None,
                    resource: "services".into(),
                },
            )])),
            namespaced: None,
        };
        let l = resource_labels(&m).expect("labels");
        assert_eq!(l.pod.as_deref(), Some("kube__pod"));
        assert_eq!(l.namespace.as_deref(), Some("kube__namespace"));
        assert_eq!(l.objects, vec![("svc".into(), "service".into(), false)]);
        let bad = ResourceMapping {
            template: Some("<<.Resource | lower>>".into()),
            ..ResourceMapping::default()
        };
        assert!(
            resource_labels(&bad)
                .expect_err("pipeline")
                .contains("<<.Group>> and <<.Resource>>")
        );
        assert_eq!(singular("ingresses"), "ingress");
        assert_eq!(singular("policies"), "policy");
        assert_eq!(singular("pods"), "pod");
        assert_eq!(singular("pod"), "pod");
    }

    #[test]
    fn a_single_series_rule_converts_without_prometheus() {
        let c = convert(
            &parse(
                r#"rules:
- seriesQuery: 'vllm:num_requests_waiting{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name:
    matches: "^vllm:(.*)$"
    as: "vllm_${1}"
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
"#,
            ),
            None,
        );
        assert_eq!(messages(&c), Vec::<String>::new());
        assert_eq!(c.config.metrics.len(), 1);
        let m = &c.config.metrics[0];
        assert_eq!(m.name, "vllm_num_requests_waiting");
        assert_eq!(m.kind, MetricKind::Pods);
        assert_eq!(
            m.query.as_deref(),
            Some(
                r#"sum(vllm:num_requests_waiting{namespace="{{namespace}}",pod=~"{{pods}}",{{selector}}}) by (pod)"#
            )
        );
        assert_eq!(c.origins[0].at, Pos::new(2, 3));
    }

    #[test]
    fn untranslatable_rules_are_reported_with_their_place() {
        let c = convert(
            &parse(
                r#"rules:
- seriesQuery: '{__name__=~"^container_.*"}'
  resources: {overrides: {pod: {resource: pod}, namespace: {resource: namespace}}}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
- seriesQuery: 'x'
  name: {matches: "(a"}
  metricsQuery: x
- seriesQuery: 'y'
  resources: {overrides: {pod: {resource: pod}, namespace: {resource: namespace}}}
  metricsQuery: <<index .LabelValuesByName "pod">>
- seriesQuery: 'z'
  resources:
    overrides:
      namespace: {resource: namespace}
      service: {resource: service}
      ingress: {group: networking.k8s.io, resource: ingresses}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
externalRules:
- seriesQuery: '{__name__="queue_consumer_lag",name!=""}'
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (name)
"#,
            ),
            None,
        );
        assert!(c.config.metrics.is_empty(), "{:?}", c.config.metrics);
        assert_eq!(
            messages(&c),
            vec![
                r#"not translated: adapter.yaml:2:16: rules[0].seriesQuery: "{__name__=~\"^container_.*\"}" matches a family of series: needs --prometheus to discover names"#.to_owned(),
                r#"not translated: adapter.yaml:6:19: rules[1].name.matches: Invalid value: "(a": error: unclosed group"#.to_owned(),
                r#"not translated: adapter.yaml:10:17: rules[2].metricsQuery: Forbidden: unsupported template action <<index .LabelValuesByName "pod">>: podscale translates <<.Series>>, <<.LabelMatchers>> and <<.GroupBy>> only"#.to_owned(),
                "not translated: adapter.yaml:13:5: rules[3].resources.overrides: maps several object kinds (ingress.networking.k8s.io, service): a podscale Object metric has one query per name; write one per kind by hand with {{objectKind}}/{{objectName}}".to_owned(),
                "not translated: adapter.yaml:19:3: externalRules[0].resources: a namespaced external rule (the default) with no namespace label: the adapter cannot build its query (\"no generic resource label form specified for this metric\"); map the namespace in resources.overrides or set resources.namespaced: false".to_owned(),
            ]
        );
        assert!(c.incomplete());
    }

    #[test]
    fn discovered_series_become_metrics_and_later_rules_win() {
        let cfg = parse(
            r#"rules:
- seriesQuery: '{__name__=~"^http_.*",namespace!=""}'
  resources: {template: "<<.Resource>>"}
  name: {matches: "^(.*)_total$"}
  metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)
- seriesQuery: 'http_requests_total'
  resources: {template: "<<.Resource>>"}
  name: {as: http_requests}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
"#,
        );
        assert_eq!(
            cfg.series_queries(),
            vec![
                r#"{__name__=~"^http_.*",namespace!=""}"#,
                "http_requests_total"
            ]
        );
        let series = |name: &str, labels: &[&str]| Series {
            name: name.into(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        };
        let found = vec![SeriesInfo {
            series_query: r#"{__name__=~"^http_.*",namespace!=""}"#.into(),
            unexamined: 0,
            series: vec![
                series("http_requests_total", &["namespace", "pod"]),
                series("http_errors_total", &["namespace", "pod"]),
                series("http_inflight", &["namespace", "pod"]),
                series("http_cluster_total", &["namespace"]),
            ],
        }];
        let c = convert(&cfg, Some(&found));
        let names: Vec<(&str, &str)> = c
            .config
            .metrics
            .iter()
            .map(|m| (m.name.as_str(), m.query.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            names,
            vec![
                (
                    "http_errors",
                    r#"sum(rate(http_errors_total{namespace="{{namespace}}",pod=~"{{pods}}",{{selector}}}[5m])) by (pod)"#
                ),
                (
                    "http_requests",
                    r#"sum(http_requests_total{namespace="{{namespace}}",pod=~"{{pods}}",{{selector}}}) by (pod)"#
                ),
            ]
        );
        let m = messages(&c);
        assert!(
            m.iter().any(|n| n.contains(
                "series \"http_cluster_total\" carry none of the rule's pod or object labels"
            )),
            "{m:#?}"
        );
        assert!(m.iter().any(|n| n.starts_with("note: adapter.yaml:6:3: rules[1]: Pods metric \"http_requests\" (series \"http_requests_total\") replaces the one from rules[0] at line 2")), "{m:#?}");
        assert!(!c.incomplete());
    }

    #[test]
    fn resource_rules_become_prometheus_resources() {
        let c = convert(
            &parse(
                r#"resourceRules:
  cpu:
    containerQuery: |
      sum by (<<.GroupBy>>) (
        rate(container_cpu_usage_seconds_total{container!="",<<.LabelMatchers>>}[3m])
      )
    nodeQuery: sum(x{<<.LabelMatchers>>}) by (<<.GroupBy>>)
    resources:
      overrides:
        node: {resource: node}
        namespace: {resource: namespace}
        kube_pod: {resource: pod}
    containerLabel: container_name
  memory:
    containerQuery: sum by (<<.GroupBy>>) (container_memory_working_set_bytes{container!="",<<.LabelMatchers>>})
    resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  window: 3m
"#,
            ),
            None,
        );
        let r = &c.config.resources;
        assert_eq!(r.source, ResourceSource::Prometheus);
        assert_eq!(
            r.cpu_query.as_deref(),
            Some(
                "label_replace(label_replace(sum by (kube_pod,container_name) (\n  rate(container_cpu_usage_seconds_total{container!=\"\",namespace=\"{{namespace}}\",kube_pod=~\"{{pods}}\"}[3m])\n)\n, \"pod\", \"$1\", \"kube_pod\", \"(.*)\"), \"container\", \"$1\", \"container_name\", \"(.*)\")"
            )
        );
        assert_eq!(
            r.memory_query.as_deref(),
            Some(
                r#"sum by (pod,container) (container_memory_working_set_bytes{container!="",namespace="{{namespace}}",pod=~"{{pods}}"})"#
            )
        );
        assert_eq!(r.window, Some(Duration::from_secs(180)));
        assert_eq!(
            messages(&c),
            vec!["note: adapter.yaml:7:16: resourceRules.cpu.nodeQuery: node metrics (kubectl top node) are not read by podscale: an HPA reads pods only".to_owned()]
        );
    }

    #[test]
    fn the_output_round_trips_through_the_config_reader() {
        let c = convert(
            &parse(
                r#"rules:
- seriesQuery: 'up{namespace!=""}'
  resources: {overrides: {k8s_pod: {resource: pods}, k8s_ns: {resource: namespaces}}}
  name: {as: "weird 'name'"}
  metricsQuery: "sum(<<.Series>>{<<.LabelMatchers>>, a='b'}) by (<<.GroupBy>>)\n  # a comment"
- seriesQuery: 'it''s{namespace!=""}'
  metricsQuery: x
"#,
            ),
            None,
        );
        // `it's` is not a selector: reported, and the rest still round-trips.
        assert!(c.incomplete());
        let yaml = c.to_yaml();
        let back = Config::from_source(&yaml, "out.yaml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        assert_eq!(back.metrics, c.config.metrics);
        assert_eq!(back.metrics.len(), 1);
        assert_eq!(back.metrics[0].name, "weird 'name'");
        assert_eq!(back.metrics[0].pod_label.as_deref(), Some("k8s_pod"));
        assert!(
            yaml.contains("#   adapter.yaml:6:16: rules[1].seriesQuery: Invalid value"),
            "{yaml}"
        );
    }

    #[test]
    fn a_config_map_is_read_with_file_positions() {
        let src = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: adapter}\ndata:\n  config.yaml: |\n    rules:\n    - seriesQuery: '{a=\"b\"}'\n      metricsQuery: x\n";
        let cfg = AdapterConfig::from_source(src, "cm.yaml").expect("reads");
        let c = convert(&cfg, None);
        assert_eq!(
            messages(&c),
            vec!["not translated: cm.yaml:7:20: rules[0].seriesQuery: \"{a=\\\"b\\\"}\" matches a family of series: needs --prometheus to discover names".to_owned()]
        );
        let e = AdapterConfig::from_source(
            "kind: ConfigMap\ndata:\n  config.yaml: |\n    rules:\n    - seriesQuerry: x\n",
            "cm.yaml",
        )
        .expect_err("unknown field");
        assert!(e.to_string().starts_with("cm.yaml:5:"), "{e}");
    }

    #[test]
    fn shape_errors_carry_positions() {
        let e =
            AdapterConfig::from_source("rules:\n- seriesQuery: x\n  metricQuery: y\n", "a.yaml")
                .expect_err("unknown field");
        assert!(e.to_string().starts_with("a.yaml:3:"), "{e}");
    }

    #[test]
    fn credentials_in_the_prometheus_url_are_not_written() {
        let mut c = convert(&AdapterConfig::default(), None);
        assert!(c.set_prometheus_url("https://admin:hunter2@prom:9090/sub?token=T"));
        let url = c.config.prometheus.as_ref().map(|p| p.url.clone());
        assert_eq!(url.as_deref(), Some("https://prom:9090/sub"));
        assert!(!c.to_yaml().contains("hunter2"));
        assert!(!c.set_prometheus_url("http://prom:9090"));
    }

    #[test]
    fn yaml_scalars_read_back_as_written() {
        for s in [
            "sum(x{a=\"b\"}) by (pod)",
            "it's",
            "a\n  b\n",
            "a\nb",
            "a\n\n  b\n",
            "a\n\n",
            "\n  a",
            "  a\nb",
            "a\tb",
            "a\r\nb",
            "# not a comment\nx",
            "",
        ] {
            let doc = format!("k:\n  v: {}\n", yaml_str(s, 4));
            let parsed = podscale_manifest::parse_documents(&doc, "t").expect(&doc);
            assert_eq!(parsed[0].value["k"]["v"].as_str(), Some(s), "{doc}");
        }
    }

    #[cfg(feature = "sources")]
    #[test]
    fn a_broad_query_is_narrowed_to_one_name() {
        assert_eq!(
            with_name(r#"{namespace!="",__name__!~"^container_.*"}"#, "vllm:x"),
            r#"{__name__="vllm:x",namespace!="",__name__!~"^container_.*"}"#
        );
        assert_eq!(with_name(" {} ", "a"), r#"{__name__="a"}"#);
        assert_eq!(with_name("up{job=\"x\"}", "up"), "up{job=\"x\"}");
        assert_eq!(with_name("{a=\"}\"} or x", "n"), "{a=\"}\"} or x");
    }

    #[test]
    fn a_conversion_is_bounded_and_says_what_it_left_out() {
        let cfg = parse(
            r#"rules:
- seriesQuery: '{__name__=~"m_.*",namespace!=""}'
  resources: {template: "<<.Resource>>"}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
"#,
        );
        let found = vec![SeriesInfo {
            series_query: r#"{__name__=~"m_.*",namespace!=""}"#.into(),
            series: (0..=MAX_METRICS)
                .map(|i| Series {
                    name: format!("m_{i:05}"),
                    labels: ["namespace".to_owned(), "pod".to_owned()].into(),
                })
                .collect(),
            unexamined: 7,
        }];
        let c = convert(&cfg, Some(&found));
        assert_eq!(c.config.metrics.len(), MAX_METRICS);
        let m = messages(&c);
        assert!(
            m.contains(&"not translated: adapter.yaml:1:1: 1 more metrics were not written: a conversion writes at most 5000; narrow the rules' seriesQuery".to_owned()),
            "{m:#?}"
        );
        assert!(
            m.iter().any(|n| n.starts_with("not translated: adapter.yaml:2:16: rules[0].seriesQuery: 7 of its metric names were not examined")),
            "{m:#?}"
        );
    }

    #[test]
    fn prometheus_durations_parse() {
        assert_eq!(
            parse_prometheus_duration("3m"),
            Ok(Duration::from_secs(180))
        );
        assert_eq!(
            parse_prometheus_duration("1h30m"),
            Ok(Duration::from_secs(5400))
        );
        assert_eq!(
            parse_prometheus_duration("1d"),
            Ok(Duration::from_secs(86_400))
        );
        assert!(parse_prometheus_duration("3 minutes").is_err());
        assert!(parse_prometheus_duration("").is_err());
    }
}
