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
#[derive(Clone, Default)]
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

// By hand, so a `{:?}` of a client never shows a password.
impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::BearerFile(p) => f.debug_tuple("BearerFile").field(p).finish(),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"xxxxx")
                .finish(),
        }
    }
}

impl Auth {
    /// The auth a Prometheus config asks for; a password file is read now. `url_user`
    /// is the (percent-decoded) userinfo of the configured URL, used when the config
    /// sets no other credentials.
    ///
    /// # Errors
    /// An unreadable password file.
    pub fn from_config(
        config: &PrometheusConfig,
        url_user: Option<(String, String)>,
    ) -> Result<Self, SourceError> {
        if let Some(b) = &config.basic_auth {
            let password = match (&b.password, &b.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => read_secret_file(f).map_err(|e| {
                    SourceError::Config(format!("basicAuth.passwordFile {}: {e}", f.display()))
                })?,
                (None, None) => String::new(),
            };
            return Ok(Self::Basic {
                username: b.username.clone(),
                password,
            });
        }
        if let Some(f) = &config.bearer_token_file {
            return Ok(Self::BearerFile(f.clone()));
        }
        Ok(
            url_user.map_or(Self::None, |(username, password)| Self::Basic {
                username,
                password,
            }),
        )
    }

    /// Adds the credentials to a request, and returns the secrets it sent, so that
    /// whatever the server echoes of them can be scrubbed from messages.
    ///
    /// # Errors
    /// The token file cannot be read.
    pub fn apply(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(reqwest::RequestBuilder, Secrets), SourceError> {
        let mut secrets = Secrets::default();
        let request = match self {
            Self::None => request,
            Self::BearerFile(path) => {
                let token = read_secret_file(path).map_err(|e| {
                    SourceError::Config(format!("bearerTokenFile {}: {e}", path.display()))
                })?;
                let token = token.trim().to_owned();
                secrets.add(&token);
                request.bearer_auth(token)
            }
            Self::Basic { username, password } => {
                secrets.add(password);
                secrets.add(&base64(format!("{username}:{password}").as_bytes()));
                request.basic_auth(username, Some(password))
            }
        };
        Ok((request, secrets))
    }
}

/// Largest secret file read (a token is a few KiB).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads a password or token file, bounded; the trailing newline is not part of it.
fn read_secret_file(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut s = String::new();
    f.take(MAX_SECRET_FILE + 1)
        .read_to_string(&mut s)
        .map_err(|e| e.to_string())?;
    if s.len() as u64 > MAX_SECRET_FILE {
        return Err(format!("larger than {MAX_SECRET_FILE} bytes"));
    }
    Ok(s.trim_end_matches(['\n', '\r']).to_owned())
}

/// The secrets one request carried. Servers echo requests (a proxy's error page, a
/// debugging endpoint): every message built from what a server said goes through
/// [`Secrets::scrub`] before anyone sees it.
#[derive(Clone, Default)]
pub struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

impl Secrets {
    pub fn add(&mut self, secret: &str) {
        if !secret.is_empty() && !self.0.iter().any(|s| s == secret) {
            self.0.push(secret.to_owned());
            // Longest first, so a secret containing another is replaced whole.
            self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    pub fn extend(&mut self, other: &Secrets) {
        for s in &other.0 {
            self.add(s);
        }
    }

    /// `text` with every secret replaced by `xxxxx`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "xxxxx");
            }
        }
        out
    }

    /// The beginning of a server's answer for a message: scrubbed, then cut to `max`
    /// bytes with `… (N bytes)` (see [`truncate_message`]). Only the first 64 KiB are
    /// looked at, so a huge body costs nothing here; a secret cut by the end of what
    /// is shown is removed too, not shown in part.
    pub fn excerpt(&self, bytes: &[u8], max: usize, received: Length) -> String {
        const WINDOW: usize = 64 * 1024;
        let window = &bytes[..bytes.len().min(WINDOW)];
        let text = String::from_utf8_lossy(window);
        let text = text.trim();
        // The length reported is the answer's, not the scrubbed text's.
        let (total, more) = match received {
            Length::Whole if window.len() < bytes.len() => (bytes.len() as u64, false),
            Length::Whole => (text.len() as u64, false),
            Length::Exact(n) => (n, false),
            Length::AtLeast(n) => (n, true),
        };
        let scrubbed = self.scrub(text);
        // One line, and no escape sequences a server could paint a terminal with.
        let scrubbed: String = if scrubbed.contains(char::is_control) {
            scrubbed
                .chars()
                .flat_map(|c| {
                    let escaped: Vec<char> = if c.is_control() {
                        c.escape_default().collect()
                    } else {
                        vec![c]
                    };
                    escaped
                })
                .collect()
        } else {
            scrubbed
        };
        if scrubbed.len() <= max && !more && total == text.len() as u64 {
            return scrubbed;
        }
        let mut cut = max.min(scrubbed.len());
        while !scrubbed.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut head = scrubbed[..cut].to_owned();
        // A secret cut by the end of what is shown: drop its beginning too.
        for s in &self.0 {
            for k in (1..s.len()).rev() {
                if s.is_char_boundary(k) && head.ends_with(&s[..k]) {
                    head.truncate(head.len() - k);
                    break;
                }
            }
        }
        let more = if more { "more than " } else { "" };
        format!("{}… ({more}{total} bytes)", head.trim_end())
    }

    /// The error with every message scrubbed.
    pub fn scrub_error(&self, e: SourceError) -> SourceError {
        if self.0.is_empty() {
            return e;
        }
        match e {
            SourceError::Config(m) => SourceError::Config(self.scrub(&m)),
            SourceError::Connect { what, message } => SourceError::Connect {
                what: self.scrub(&what),
                message: self.scrub(&message),
            },
            SourceError::Timeout { what, timeout } => SourceError::Timeout {
                what: self.scrub(&what),
                timeout,
            },
            SourceError::Http {
                what,
                status,
                message,
            } => SourceError::Http {
                what: self.scrub(&what),
                status,
                message: self.scrub(&message),
            },
            SourceError::Prometheus {
                what,
                status,
                error_type,
                message,
            } => SourceError::Prometheus {
                what: self.scrub(&what),
                status,
                error_type: self.scrub(&error_type),
                message: self.scrub(&message),
            },
            SourceError::Decode { what, message } => SourceError::Decode {
                what: self.scrub(&what),
                message: self.scrub(&message),
            },
            SourceError::TooLarge { what, limit } => SourceError::TooLarge {
                what: self.scrub(&what),
                limit,
            },
            SourceError::Retried { attempts, inner } => SourceError::Retried {
                attempts,
                inner: Box::new(self.scrub_error(*inner)),
            },
        }
    }
}

/// Standard base64 (RFC 4648, padded): what an `Authorization: Basic` header holds.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes `%XX` escapes (URL userinfo); invalid escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a response body, keeping at most `limit` bytes; a longer body is not read
/// further (an endless one included). Returns the bytes kept and whether the body
/// was longer than `limit`.
///
/// # Errors
/// The transport failed while reading.
pub async fn read_body(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut bytes = Vec::with_capacity(
        response
            .content_length()
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
            .min(limit)
            .min(1 << 20),
    );
    while let Some(chunk) = response.chunk().await? {
        let room = limit - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok((bytes, true));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((bytes, false))
}

/// How long a body is, as far as is known (see [`Secrets::excerpt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// The text is the whole body.
    Whole,
    Exact(u64),
    AtLeast(u64),
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
    fn base64_matches_rfc4648() {
        // RFC 4648 §10 test vectors.
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), enc);
        }
        // The harness's header for podscale:s3cret-pw.
        assert_eq!(base64(b"podscale:s3cret-pw"), "cG9kc2NhbGU6czNjcmV0LXB3");
    }

    #[test]
    fn secrets_are_scrubbed_longest_first() {
        let mut s = Secrets::default();
        s.add("pw");
        s.add("pw-longer");
        s.add("");
        assert_eq!(s.scrub("a pw-longer and pw"), "a xxxxx and xxxxx");
        assert_eq!(format!("{s:?}"), "Secrets(2 redacted)");
    }

    #[test]
    fn excerpts_are_cut_at_a_character_boundary() {
        let none = Secrets::default();
        assert_eq!(none.excerpt(b"short", 10, Length::Whole), "short");
        assert_eq!(
            none.excerpt("ééé".as_bytes(), 3, Length::Whole),
            "é… (6 bytes)"
        );
        assert_eq!(
            none.excerpt(b"abc", 10, Length::Exact(5000)),
            "abc… (5000 bytes)"
        );
    }

    #[test]
    fn an_excerpt_shows_no_secret_even_cut_in_half() {
        let mut s = Secrets::default();
        s.add("TOKEN-123456");
        let body = format!(
            "{}TOKEN-123456 Authorization: Bearer TOKEN-123456",
            "x".repeat(10)
        );
        assert_eq!(
            s.excerpt(body.as_bytes(), 200, Length::Whole),
            "xxxxxxxxxxxxxxx Authorization: Bearer xxxxx"
        );
        // Control characters are escaped: one line, no terminal escapes.
        assert_eq!(
            s.excerpt(b"a\r\nb\x1b[31m", 100, Length::Whole),
            "a\\r\\nb\\u{1b}[31m"
        );
        // Cut inside the second copy: its beginning is not shown either.
        let e = s.excerpt(b"abc TOKEN-123", 100, Length::AtLeast(1 << 30));
        assert_eq!(e, "abc… (more than 1073741824 bytes)");
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("p%40ss%2Fw%zz"), "p@ss/w%zz");
    }

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
