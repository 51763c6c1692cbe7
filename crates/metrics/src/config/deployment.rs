//! `deployments:` in `podscale.yaml`: the local deployments `podscale run --local`
//! starts, one per HPA `scaleTargetRef.name`.
//!
//! ```yaml
//! deployments:
//!   - name: llm                      # the scale target's name (HPA scaleTargetRef.name)
//!     command: ./server --port {port} --id {replica}
//!     env: { MODEL: tiny }
//!     ports: { base: 8100, count: 16 }   # replica i listens on base + i
//!     readiness: { path: /health, period: 1s, timeout: 1s, failureThreshold: 3 }
//!     metricsPath: /metrics
//!     resources: { requests: { cpu: 500m, memory: 256Mi } }
//!     front:                           # the front proxy: one address, ready replicas
//!       port: 8080
//!       requestTimeout: 10m            # a request's whole life, response streamed included
//!       headerReadTimeout: 30s
//!       maxRequestBody: 64MiB          # larger: 413
//!     status: { port: 9412 }
//!     stopTimeout: 30s
//!     restartBackoff: { initial: 1s, max: 1m }
//! ```
//!
//! The same fields also make a standalone deployment file (one deployment, no
//! `deployments:` around it: [`LocalDeployment::from_source`]). Every field is
//! bounded; a value out of range is reported as `file:line:col: field: message`.
use std::collections::BTreeMap;
use std::time::Duration;

use super::{
    ConfigError, MAX_CONFIG_BYTES, format_byte_size, format_duration, parse_byte_size,
    parse_duration,
};
use podscale_core::quantity::Quantity;
use podscale_manifest::{Diagnostic, Document};
use serde::{Deserialize, Deserializer, Serialize};

/// The bounds of each field.
pub mod limits {
    use std::time::Duration;
    pub const MAX_NAME: usize = 63;
    pub const MAX_COMMAND: usize = 16 * 1024;
    pub const MAX_ENV: usize = 256;
    pub const MAX_ENV_VALUE: usize = 32 * 1024;
    /// Replica processes one machine runs at most.
    pub const MAX_PORTS: u16 = 1024;
    pub const MAX_PATH: usize = 2048;
    pub const MIN_PERIOD: Duration = Duration::from_millis(100);
    pub const MAX_PERIOD: Duration = Duration::from_secs(300);
    pub const MAX_FAILURE_THRESHOLD: u32 = 100;
    pub const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(3600);
    pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
    pub const MIN_BACKOFF: Duration = Duration::from_millis(10);
    pub const MAX_RETRY_BODY: u64 = 16 * 1024 * 1024;
    pub const MAX_ATTEMPTS: u32 = 10;
    pub const MAX_CONNECTIONS: usize = 100_000;
    /// A day: longer than any generation; past it a request is stuck, not slow.
    pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
    pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_millis(100);
    pub const MAX_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(600);
    pub const MIN_REQUEST_BODY: u64 = 1024;
    pub const MAX_REQUEST_BODY: u64 = 16 * 1024 * 1024 * 1024;
}

/// A set of identical local processes, scaled like a Deployment.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalDeployment {
    /// The target's name: the HPA's `scaleTargetRef.name` must match it. Replicas are
    /// called `NAME-0`, `NAME-1`, … (a DNS-1123 label, at most 63 characters).
    pub name: String,
    /// Run by `/bin/sh -c` in the deployment's working directory. `{port}` becomes the
    /// replica's port, `{replica}` its index, `{name}` its name.
    pub command: String,
    /// Extra environment of every replica (besides `PORT`, `REPLICA`, `POD_NAME`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The replicas' ports: replica `i` listens on `base + i`, so at most `count`
    /// replicas run (`maxReplicas` must not exceed it).
    pub ports: Ports,
    #[serde(default)]
    pub readiness: Readiness,
    /// Where each replica serves its Prometheus metrics (scraped for Pods and External
    /// metrics the metrics config does not describe).
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    /// Each replica's requests (the denominator of `Utilization` targets).
    #[serde(default)]
    pub resources: Resources,
    pub front: Front,
    #[serde(default)]
    pub status: Status,
    /// How long a stopping replica may drain (first its proxied requests, then after
    /// SIGTERM) before SIGKILL (a pod's `terminationGracePeriodSeconds`, 30 s).
    #[serde(
        default = "default_stop_timeout",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub stop_timeout: Duration,
    #[serde(default)]
    pub restart_backoff: RestartBackoff,
}

/// The replicas' port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ports {
    pub base: u16,
    /// How many ports from `base` (1–1024).
    #[serde(default = "default_port_count")]
    pub count: u16,
}

/// The readiness probe: HTTP GET, ready on 200–399 (as the kubelet's httpGet probe).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Readiness {
    #[serde(default = "default_health_path")]
    pub path: String,
    #[serde(
        default = "default_period",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub period: Duration,
    #[serde(
        default = "default_period",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub timeout: Duration,
    /// Consecutive failures that make a ready replica unready (the kubelet's default, 3).
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
}

impl Default for Readiness {
    fn default() -> Self {
        Self {
            path: default_health_path(),
            period: default_period(),
            timeout: default_period(),
            failure_threshold: default_failure_threshold(),
        }
    }
}

/// Container requests, as a pod spec writes them.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub requests: BTreeMap<String, Quantity>,
}

/// The front proxy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Front {
    #[serde(default = "loopback")]
    pub address: String,
    pub port: u16,
    /// A request whose body is at most this large is buffered, so that a replica that
    /// refuses it (503, connection refused) can be skipped for another; larger or
    /// unsized bodies are streamed and sent once.
    #[serde(
        default = "default_retry_body",
        deserialize_with = "byte_size",
        serialize_with = "ser_byte_size"
    )]
    pub max_retry_body: u64,
    /// Replicas tried per request at most.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Client connections served at once; more wait to be accepted.
    #[serde(default = "default_connections")]
    pub max_connections: usize,
    /// A request's whole life through the proxy: its body read, the replica's answer,
    /// the answer streamed back. A replica that has not answered by then gets the
    /// client a 504; a stream still running then is cut. Generous by default (10 min),
    /// for long generations.
    #[serde(
        default = "default_request_timeout",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub request_timeout: Duration,
    /// A client has this long to send a request's headers, else its connection is
    /// closed (a slow-loris client cannot hold a connection; hyper's default, 30 s).
    #[serde(
        default = "default_header_read_timeout",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub header_read_timeout: Duration,
    /// The largest request body accepted; a larger one is answered 413 (nginx's
    /// `client_max_body_size`), before any of it reaches a replica when its length is
    /// declared.
    #[serde(
        default = "default_max_request_body",
        deserialize_with = "byte_size",
        serialize_with = "ser_byte_size"
    )]
    pub max_request_body: u64,
}

impl Front {
    /// A front proxy on `port` with every other setting at its default.
    pub fn on_port(port: u16) -> Self {
        Self {
            address: loopback(),
            port,
            max_retry_body: default_retry_body(),
            max_attempts: default_attempts(),
            max_connections: default_connections(),
            request_timeout: default_request_timeout(),
            header_read_timeout: default_header_read_timeout(),
            max_request_body: default_max_request_body(),
        }
    }
}

/// The status API (loopback only: it has no authentication).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Status {
    #[serde(default = "default_status_port")]
    pub port: u16,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            port: default_status_port(),
        }
    }
}

/// Restarts of a crashed replica wait `initial`, doubling up to `max` (the kubelet's
/// CrashLoopBackOff: 10 s to 5 min). A replica that ran for `2 × max` starts over at
/// `initial` (the kubelet resets after 10 min of running).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestartBackoff {
    #[serde(
        default = "default_backoff_initial",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub initial: Duration,
    #[serde(
        default = "default_backoff_max",
        deserialize_with = "duration",
        serialize_with = "ser_duration"
    )]
    pub max: Duration,
}

impl Default for RestartBackoff {
    fn default() -> Self {
        Self {
            initial: default_backoff_initial(),
            max: default_backoff_max(),
        }
    }
}

fn default_metrics_path() -> String {
    "/metrics".into()
}
fn default_health_path() -> String {
    "/health".into()
}
fn default_period() -> Duration {
    Duration::from_secs(1)
}
fn default_failure_threshold() -> u32 {
    3
}
fn default_port_count() -> u16 {
    64
}
fn default_stop_timeout() -> Duration {
    Duration::from_secs(30)
}
fn loopback() -> String {
    "127.0.0.1".into()
}
fn default_retry_body() -> u64 {
    64 * 1024
}
fn default_attempts() -> u32 {
    3
}
fn default_connections() -> usize {
    4096
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_request_body() -> u64 {
    64 * 1024 * 1024
}
fn default_status_port() -> u16 {
    9412
}
fn default_backoff_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(60)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        N(u64),
        S(String),
    }
    match Size::deserialize(d)? {
        Size::N(n) => Ok(n),
        Size::S(s) => parse_byte_size(&s).map_err(serde::de::Error::custom),
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn ser_byte_size<S: serde::Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_byte_size(*n))
}

impl LocalDeployment {
    /// Reads and validates a standalone deployment file (at most [`MAX_CONFIG_BYTES`]).
    ///
    /// # Errors
    /// Unreadable, too large, not YAML/JSON, not a deployment's shape, or out of range;
    /// past reading every message carries `file:line:col: field`.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        use std::io::Read as _;
        let read_err = |source| podscale_manifest::ManifestError::Read {
            file: path.to_owned(),
            source,
        };
        let f = std::fs::File::open(path).map_err(read_err)?;
        let mut text = String::new();
        f.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                file: path.to_owned(),
            });
        }
        Self::from_source(&text, path)
    }

    /// Parses and validates deployment text; `file` names it in messages.
    ///
    /// # Errors
    /// As [`LocalDeployment::load`].
    pub fn from_source(source: &str, file: &str) -> Result<Self, ConfigError> {
        let docs = podscale_manifest::parse_documents(source, file)?;
        let Some(doc) = docs.first() else {
            return Err(ConfigError::Empty {
                file: file.to_owned(),
            });
        };
        let spec: Self = podscale_manifest::deserialize(doc, file)?;
        let problems = spec.validate(doc, file);
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The replicas' command with the placeholders filled in.
    pub fn command_for(&self, index: u16, port: u16) -> String {
        self.command
            .replace("{port}", &port.to_string())
            .replace("{replica}", &index.to_string())
            .replace("{name}", &self.replica_name(index))
    }

    pub fn replica_name(&self, index: u16) -> String {
        format!("{}-{index}", self.name)
    }

    /// The port of replica `index` (within `ports`, which validation ensures).
    pub fn port_of(&self, index: u16) -> u16 {
        self.ports.base.saturating_add(index)
    }

    /// Checks what the types cannot; every finding is positioned.
    pub fn validate(&self, doc: &Document, file: &str) -> Vec<Diagnostic> {
        self.validate_at(doc, file, "")
    }

    /// As [`LocalDeployment::validate`], for a deployment at `prefix` in the document
    /// (`deployments[0].`): field paths in messages carry the prefix.
    pub fn validate_at(&self, doc: &Document, file: &str, prefix: &str) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let mut report = |path: &str, message: String| {
            let path = format!("{prefix}{path}");
            let pos = doc.positions.locate(&path);
            out.push(Diagnostic {
                file: file.to_owned(),
                line: pos.line,
                column: pos.column,
                field: path,
                message,
            });
        };
        if !is_dns_label(&self.name) {
            report(
                "name",
                format!(
                    "Invalid value: {:?}: must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most {} characters)",
                    self.name,
                    limits::MAX_NAME
                ),
            );
        }
        if self.command.trim().is_empty() {
            report("command", "Required value: the command to run".into());
        } else if self.command.len() > limits::MAX_COMMAND {
            report(
                "command",
                format!("Too long: must be at most {} bytes", limits::MAX_COMMAND),
            );
        }
        if self.env.len() > limits::MAX_ENV {
            report(
                "env",
                format!(
                    "Too many: {}: must have at most {} entries",
                    self.env.len(),
                    limits::MAX_ENV
                ),
            );
        }
        for (k, v) in &self.env {
            let path = format!("env.{k}");
            if k.is_empty()
                || k.starts_with(|c: char| c.is_ascii_digit())
                || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                report(
                    &path,
                    format!(
                        "Invalid value: {k:?}: an environment variable name is letters, digits and '_', not starting with a digit"
                    ),
                );
            }
            if v.len() > limits::MAX_ENV_VALUE || v.contains('\0') {
                report(
                    &path,
                    format!(
                        "Invalid value: must be at most {} bytes, without NUL",
                        limits::MAX_ENV_VALUE
                    ),
                );
            }
        }
        if self.ports.base == 0 {
            report(
                "ports.base",
                "Invalid value: 0: must be between 1 and 65535".into(),
            );
        }
        if self.ports.count == 0 || self.ports.count > limits::MAX_PORTS {
            report(
                "ports.count",
                format!(
                    "Invalid value: {}: must be between 1 and {}",
                    self.ports.count,
                    limits::MAX_PORTS
                ),
            );
        } else if u32::from(self.ports.base) + u32::from(self.ports.count) - 1 > 65535 {
            report(
                "ports.count",
                format!(
                    "Invalid value: {}: ports {}..{} go past 65535",
                    self.ports.count,
                    self.ports.base,
                    u32::from(self.ports.base) + u32::from(self.ports.count) - 1
                ),
            );
        }
        let ports =
            u32::from(self.ports.base)..u32::from(self.ports.base) + u32::from(self.ports.count);
        for (path, port) in [
            ("front.port", self.front.port),
            ("status.port", self.status.port),
        ] {
            if port == 0 {
                report(path, "Invalid value: 0: must be between 1 and 65535".into());
            } else if ports.contains(&u32::from(port)) {
                report(
                    path,
                    format!(
                        "Invalid value: {port}: inside the replicas' ports ({}..{})",
                        ports.start,
                        ports.end - 1
                    ),
                );
            }
        }
        if self.front.port != 0 && self.front.port == self.status.port {
            report(
                "status.port",
                format!("Duplicate value: {}: also front.port", self.status.port),
            );
        }
        if self.front.address.parse::<std::net::IpAddr>().is_err() {
            report(
                "front.address",
                format!(
                    "Invalid value: {:?}: must be an IP address (127.0.0.1, 0.0.0.0, ::1)",
                    self.front.address
                ),
            );
        }
        for (path, p) in [
            ("readiness.path", &self.readiness.path),
            ("metricsPath", &self.metrics_path),
        ] {
            if !p.starts_with('/')
                || p.len() > limits::MAX_PATH
                || p.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                report(
                    path,
                    format!(
                        "Invalid value: {p:?}: must be a URL path starting with '/', without spaces, at most {} bytes",
                        limits::MAX_PATH
                    ),
                );
            }
        }
        let durations = [
            (
                "readiness.period",
                self.readiness.period,
                limits::MIN_PERIOD,
                limits::MAX_PERIOD,
            ),
            (
                "readiness.timeout",
                self.readiness.timeout,
                limits::MIN_PERIOD,
                limits::MAX_PERIOD,
            ),
            (
                "stopTimeout",
                self.stop_timeout,
                Duration::ZERO,
                limits::MAX_STOP_TIMEOUT,
            ),
            (
                "front.requestTimeout",
                self.front.request_timeout,
                limits::MIN_REQUEST_TIMEOUT,
                limits::MAX_REQUEST_TIMEOUT,
            ),
            (
                "front.headerReadTimeout",
                self.front.header_read_timeout,
                limits::MIN_PERIOD,
                limits::MAX_HEADER_READ_TIMEOUT,
            ),
            (
                "restartBackoff.initial",
                self.restart_backoff.initial,
                limits::MIN_BACKOFF,
                limits::MAX_BACKOFF,
            ),
            (
                "restartBackoff.max",
                self.restart_backoff.max,
                limits::MIN_BACKOFF,
                limits::MAX_BACKOFF,
            ),
        ];
        for (path, d, min, max) in durations {
            if d < min || d > max {
                report(
                    path,
                    format!(
                        "Invalid value: {}: must be between {} and {}",
                        format_duration(d),
                        format_duration(min),
                        format_duration(max)
                    ),
                );
            }
        }
        if self.restart_backoff.initial > self.restart_backoff.max {
            report(
                "restartBackoff.initial",
                "Invalid value: must not exceed restartBackoff.max".into(),
            );
        }
        if self.readiness.failure_threshold == 0
            || self.readiness.failure_threshold > limits::MAX_FAILURE_THRESHOLD
        {
            report(
                "readiness.failureThreshold",
                format!(
                    "Invalid value: {}: must be between 1 and {}",
                    self.readiness.failure_threshold,
                    limits::MAX_FAILURE_THRESHOLD
                ),
            );
        }
        if self.front.max_retry_body > limits::MAX_RETRY_BODY {
            report(
                "front.maxRetryBody",
                format!(
                    "Invalid value: must be at most {}",
                    format_byte_size(limits::MAX_RETRY_BODY)
                ),
            );
        }
        if !(limits::MIN_REQUEST_BODY..=limits::MAX_REQUEST_BODY)
            .contains(&self.front.max_request_body)
        {
            report(
                "front.maxRequestBody",
                format!(
                    "Invalid value: {}: must be between {} and {}",
                    format_byte_size(self.front.max_request_body),
                    format_byte_size(limits::MIN_REQUEST_BODY),
                    format_byte_size(limits::MAX_REQUEST_BODY)
                ),
            );
        } else if self.front.max_retry_body > self.front.max_request_body {
            report(
                "front.maxRetryBody",
                "Invalid value: must not exceed front.maxRequestBody".into(),
            );
        }
        if self.front.max_attempts == 0 || self.front.max_attempts > limits::MAX_ATTEMPTS {
            report(
                "front.maxAttempts",
                format!(
                    "Invalid value: {}: must be between 1 and {}",
                    self.front.max_attempts,
                    limits::MAX_ATTEMPTS
                ),
            );
        }
        if self.front.max_connections == 0 || self.front.max_connections > limits::MAX_CONNECTIONS {
            report(
                "front.maxConnections",
                format!(
                    "Invalid value: {}: must be between 1 and {}",
                    self.front.max_connections,
                    limits::MAX_CONNECTIONS
                ),
            );
        }
        for (k, q) in &self.resources.requests {
            let path = format!("resources.requests.{k}");
            if !matches!(k.as_str(), "cpu" | "memory") {
                report(
                    &path,
                    format!("Unsupported value: {k:?}: supported values: \"cpu\", \"memory\""),
                );
            } else if q.checked_milli_value().is_none_or(|m| m <= 0) {
                report(&path, format!("Invalid value: {q}: must be greater than 0"));
            }
        }
        out
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= limits::MAX_NAME
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: llm\ncommand: ./server --port {port}\nports: { base: 8100, count: 4 }\nfront: { port: 8080 }\n";

    #[test]
    fn defaults_and_placeholders() {
        let d = LocalDeployment::from_source(GOOD, "d.yaml").expect("valid");
        assert_eq!(d.readiness.path, "/health");
        assert_eq!(d.metrics_path, "/metrics");
        assert_eq!(d.stop_timeout, Duration::from_secs(30));
        assert_eq!(d.status.port, 9412);
        assert_eq!(d.port_of(2), 8102);
        assert_eq!(d.command_for(2, 8102), "./server --port 8102");
        assert_eq!(d.replica_name(3), "llm-3");
    }

    #[test]
    fn errors_are_positioned_and_bounded() {
        let src = "name: LLM\ncommand: x\nports: { base: 65530, count: 10 }\nfront: { port: 8080, maxAttempts: 0 }\nstopTimeout: 2h\nreadiness: { path: health }\nresources: { requests: { gpu: 1 } }\n";
        let e = LocalDeployment::from_source(src, "d.yaml")
            .expect_err("invalid")
            .to_string();
        for want in [
            "d.yaml:1:7: name: Invalid value: \"LLM\"",
            "d.yaml:3:30: ports.count: Invalid value: 10: ports 65530..65539 go past 65535",
            "front.maxAttempts: Invalid value: 0",
            "d.yaml:5:14: stopTimeout: Invalid value: 7200s: must be between 0s and 3600s",
            "readiness.path: Invalid value: \"health\"",
            "resources.requests.gpu: Unsupported value",
        ] {
            assert!(e.contains(want), "{want:?} not in:\n{e}");
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = LocalDeployment::from_source(&format!("{GOOD}stopTimeout: soon\n"), "d.yaml")
            .expect_err("bad duration")
            .to_string();
        assert!(e.starts_with("d.yaml:5:14: stopTimeout:"), "{e}");
        let e = LocalDeployment::from_source(&format!("{GOOD}replicas: 3\n"), "d.yaml")
            .expect_err("unknown field")
            .to_string();
        assert!(e.contains("unknown field `replicas`"), "{e}");
    }

    #[test]
    fn front_bounds_default_and_are_checked() {
        let d = LocalDeployment::from_source(GOOD, "d.yaml").expect("valid");
        assert_eq!(d.front.request_timeout, Duration::from_secs(600));
        assert_eq!(d.front.header_read_timeout, Duration::from_secs(30));
        assert_eq!(d.front.max_request_body, 64 * 1024 * 1024);
        assert_eq!(d.front, Front::on_port(8080));
        let src = "name: llm\ncommand: x\nports: { base: 8100 }\nfront:\n  port: 8080\n  requestTimeout: 48h\n  headerReadTimeout: 1ms\n  maxRequestBody: 100B\n";
        let e = LocalDeployment::from_source(src, "d.yaml")
            .expect_err("out of range")
            .to_string();
        for want in [
            "d.yaml:6:19: front.requestTimeout: Invalid value: 172800s: must be between 100ms and 86400s",
            "d.yaml:7:22: front.headerReadTimeout: Invalid value: 1ms",
            "d.yaml:8:19: front.maxRequestBody: Invalid value: 100B: must be between 1KiB and 16GiB",
        ] {
            assert!(e.contains(want), "{want:?} not in:\n{e}");
        }
        let e = LocalDeployment::from_source(
            &format!("{GOOD}  maxRequestBody: 1KiB\n")
                .replace("front: { port: 8080 }\n", "front:\n  port: 8080\n"),
            "d.yaml",
        )
        .expect_err("retry body over request body")
        .to_string();
        assert!(
            e.contains("front.maxRetryBody: Invalid value: must not exceed front.maxRequestBody"),
            "{e}"
        );
    }

    #[test]
    fn podscale_yaml_holds_deployments_with_positioned_errors() {
        let good = "metrics: []\ndeployments:\n  - name: web\n    command: ./server --port {port}\n    ports: { base: 18100, count: 8 }\n    env: { MODEL: tiny }\n    readiness: { path: /ready }\n    metricsPath: /stats\n    resources: { requests: { cpu: 100m, memory: 64Mi } }\n    front: { port: 18080 }\n";
        let c = crate::config::Config::from_source(good, "podscale.yaml").expect("valid");
        let d = c.deployment("web").expect("defined");
        assert_eq!(d.readiness.path, "/ready");
        assert_eq!(d.metrics_path, "/stats");
        assert_eq!(d.env["MODEL"], "tiny");
        assert_eq!(d.resources.requests["cpu"].to_string(), "100m");
        assert_eq!(d.front.port, 18080);
        assert!(c.deployment("api").is_none());

        let bad = "deployments:\n  - name: web\n    command: x\n    ports: { base: 18100, count: 8 }\n    front: { port: 18103 }\n  - name: web\n    command: ''\n    ports: { base: 18200 }\n    front: { port: 18080, requestTimeout: soon }\n";
        let e = crate::config::Config::from_source(bad, "podscale.yaml")
            .expect_err("bad duration")
            .to_string();
        assert!(
            e.starts_with("podscale.yaml:9:43: deployments[1].front.requestTimeout:"),
            "{e}"
        );
        let bad = bad.replace(", requestTimeout: soon", "");
        let e = crate::config::Config::from_source(&bad, "podscale.yaml")
            .expect_err("invalid")
            .to_string();
        for want in [
            "podscale.yaml:5:20: deployments[0].front.port: Invalid value: 18103: inside the replicas' ports (18100..18107)",
            "podscale.yaml:6:11: deployments[1].name: Duplicate value: \"web\"",
            "podscale.yaml:7:14: deployments[1].command: Required value",
        ] {
            assert!(e.contains(want), "{want:?} not in:\n{e}");
        }
    }
}
