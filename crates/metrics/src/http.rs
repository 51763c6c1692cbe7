//! What the HTTP sources share: the client (one TLS provider, ring), authentication,
//! and the jitter of retry backoff.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::SourceError;
use crate::config::{PrometheusConfig, TlsConfig};

/// Installs ring as the process's rustls provider unless one is installed already
/// (the binary may have done it first; then this is a no-op).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client with the TLS options applied. `pool` caps idle connections per
/// host (scrapes talk to each pod once, so they keep none).
///
/// # Errors
/// An unreadable or invalid CA file, or a client the TLS stack refuses to build.
pub fn client(
    tls: Option<&TlsConfig>,
    pool: Option<usize>,
) -> Result<reqwest::Client, SourceError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder();
    if let Some(idle) = pool {
        builder = builder.pool_max_idle_per_host(idle).no_proxy();
    }
    if let Some(tls) = tls {
        if let Some(path) = &tls.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| SourceError::Config(format!("tls.caFile {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| SourceError::Config(format!("tls.caFile {}: {e}", path.display())))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if tls.insecure_skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
    }
    builder
        .build()
        .map_err(|e| SourceError::Config(format!("cannot build the HTTP client: {e}")))
}

/// How requests authenticate.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// The token is read from the file at each request (tokens rotate).
    BearerFile(std::path::PathBuf),
    Basic {
        username: String,
        password: String,
    },
}

impl Auth {
    /// The auth a Prometheus config asks for; a password file is read now.
    ///
    /// # Errors
    /// An unreadable password file.
    pub fn from_config(config: &PrometheusConfig) -> Result<Self, SourceError> {
        if let Some(b) = &config.basic_auth {
            let password = match (&b.password, &b.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => std::fs::read_to_string(f)
                    .map_err(|e| {
                        SourceError::Config(format!("basicAuth.passwordFile {}: {e}", f.display()))
                    })?
                    .trim_end_matches(['\n', '\r'])
                    .to_owned(),
                (None, None) => String::new(),
            };
            return Ok(Self::Basic {
                username: b.username.clone(),
                password,
            });
        }
        Ok(config
            .bearer_token_file
            .clone()
            .map_or(Self::None, Self::BearerFile))
    }

    /// Adds the credentials to a request.
    ///
    /// # Errors
    /// The token file cannot be read.
    pub fn apply(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, SourceError> {
        Ok(match self {
            Self::None => request,
            Self::BearerFile(path) => {
                let token = std::fs::read_to_string(path).map_err(|e| {
                    SourceError::Config(format!("bearerTokenFile {}: {e}", path.display()))
                })?;
                request.bearer_auth(token.trim())
            }
            Self::Basic { username, password } => request.basic_auth(username, Some(password)),
        })
    }
}

/// Randomness for backoff jitter: a shared xorshift, seeded from the clock. Jitter
/// spreads the retries of many autoscalers that failed together; it needs no quality.
#[derive(Debug, Clone)]
pub struct Jitter(Arc<AtomicU64>);

impl Jitter {
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64)
            | 1;
        Self(Arc::new(AtomicU64::new(seed)))
    }

    fn next_unit(&self) -> f64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)] // 53 random bits
        let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
        unit
    }

    /// The wait before retry `attempt` (0-based): `base × 2^attempt`, scaled by a
    /// random factor in [0.5, 1.5), capped at 10 s.
    pub fn backoff(&self, base: Duration, attempt: u32) -> Duration {
        let exp = base.saturating_mul(1u32 << attempt.min(10));
        exp.mul_f64(0.5 + self.next_unit())
            .min(Duration::from_secs(10))
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::new()
    }
}

/// The chain of causes of an error, joined: reqwest's top message alone ("error
/// sending request") does not say that the connection was refused.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_within_its_jitter() {
        let j = Jitter::new();
        for attempt in 0..4 {
            let d = j.backoff(Duration::from_millis(100), attempt);
            let nominal = 100.0 * f64::from(1u32 << attempt);
            let ms = d.as_secs_f64() * 1000.0;
            assert!(ms >= nominal * 0.5 && ms < nominal * 1.5, "{attempt}: {ms}");
        }
        assert_eq!(
            j.backoff(Duration::from_secs(5), 9),
            Duration::from_secs(10)
        );
    }
}
