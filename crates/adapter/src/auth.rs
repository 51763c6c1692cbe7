//! Delegated authentication and authorization, as every aggregated API server does
//! it (`k8s.io/apiserver` `DelegatingAuthenticationOptions` /
//! `DelegatingAuthorizationOptions`):
//!
//! 1. **Front proxy** (`requestheader`): a client certificate signed by the
//!    `requestheader-client-ca-file` of the `extension-apiserver-authentication`
//!    ConfigMap, with a common name in `requestheader-allowed-names` (when that list
//!    is not empty), vouches for the user named in the `requestheader-username-headers`
//!    (`X-Remote-User`), with the groups and extras of the other headers. This is how
//!    the API server's aggregator forwards every request.
//! 2. **Client certificate** signed by the ConfigMap's `client-ca-file`: the user is
//!    the common name, the groups the organizations.
//! 3. **Bearer token**: a `TokenReview` against the API server.
//!
//! Then a `SubjectAccessReview` decides, with the attributes the API server's
//! `RequestInfoFactory` derives from the path (`/namespaces/ns/pods/*/m` is verb `get`
//! of resource `pods`, name `*`, subresource `m`; discovery paths are non-resource
//! requests). Decisions are cached for [`CACHE_TTL`] (upstream's default token and
//! authorization cache TTLs), keyed by a digest of the token (never the token), in a
//! bounded map. A request with no credentials is refused (401). The ConfigMap is
//! re-read every [`AUTH_REFRESH`], so a rotated CA is followed without a restart.
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use serde::Deserialize;
use serde_json::json;

use crate::api::ApiError;
use crate::{Error, tls};

/// How often the `extension-apiserver-authentication` ConfigMap is re-read, so a
/// rotated front-proxy or client CA is followed without a restart (upstream's CA
/// controllers resync every minute).
pub const AUTH_REFRESH: Duration = Duration::from_secs(60);
/// How long a TokenReview or SubjectAccessReview answer is reused (upstream's
/// `--authentication-token-webhook-cache-ttl` and authorization cache TTLs, 10 s).
pub const CACHE_TTL: Duration = Duration::from_secs(10);
/// The most cached decisions of each kind; past it, expired ones are dropped, then all.
pub const CACHE_ENTRIES: usize = 4096;
/// The group of every authenticated user.
pub const SYSTEM_AUTHENTICATED: &str = "system:authenticated";
/// The ConfigMap every aggregated API server reads (`kube-system`).
pub const AUTH_CONFIGMAP: &str = "extension-apiserver-authentication";

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The front proxy's settings (the `requestheader-*` keys of the ConfigMap).
#[derive(Debug, Clone, Default)]
pub struct RequestHeader {
    pub client_ca: Vec<CertificateDer<'static>>,
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_headers_prefix: Vec<String>,
}

/// What authentication trusts.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `client-ca-file`: CAs of client certificates naming users directly.
    pub client_ca: Vec<CertificateDer<'static>>,
    pub request_header: Option<RequestHeader>,
}

impl AuthConfig {
    /// Reads `kube-system/extension-apiserver-authentication`.
    ///
    /// # Errors
    /// The ConfigMap cannot be read (missing RBAC: the
    /// `extension-apiserver-authentication-reader` Role) or holds an unusable CA.
    pub async fn from_cluster(client: &kube::Client, timeout: Duration) -> Result<Self, Error> {
        let path = format!("/api/v1/namespaces/kube-system/configmaps/{AUTH_CONFIGMAP}");
        let request = http::Request::get(&path)
            .body(Vec::new())
            .map_err(|e| Error::Auth(format!("GET {path}: {e}")))?;
        let cm: ConfigMap = tokio::time::timeout(timeout, client.request(request))
            .await
            .map_err(|_| Error::Auth(format!("GET {path}: no answer within {timeout:?}")))?
            .map_err(|e| Error::Auth(format!("GET {path}: {e}")))?;
        Self::from_data(&cm.data)
    }

    /// The ConfigMap's data.
    ///
    /// # Errors
    /// A CA that is not PEM, or a list that is not a JSON array of strings.
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<Self, Error> {
        let pem = |key: &str| -> Result<Vec<CertificateDer<'static>>, Error> {
            match data.get(key) {
                Some(p) if !p.trim().is_empty() => tls::certificates_from_pem(p.as_bytes())
                    .map_err(|e| Error::Auth(format!("{AUTH_CONFIGMAP}: {key}: {e}"))),
                _ => Ok(Vec::new()),
            }
        };
        let list = |key: &str| -> Result<Vec<String>, Error> {
            match data.get(key) {
                Some(s) if !s.trim().is_empty() => serde_json::from_str(s).map_err(|e| {
                    Error::Auth(format!(
                        "{AUTH_CONFIGMAP}: {key}: not a JSON list of strings: {e}"
                    ))
                }),
                _ => Ok(Vec::new()),
            }
        };
        let rh_ca = pem("requestheader-client-ca-file")?;
        let request_header = if rh_ca.is_empty() {
            None
        } else {
            Some(RequestHeader {
                client_ca: rh_ca,
                allowed_names: list("requestheader-allowed-names")?,
                username_headers: list("requestheader-username-headers")?,
                group_headers: list("requestheader-group-headers")?,
                extra_headers_prefix: list("requestheader-extra-headers-prefix")?,
            })
        };
        Ok(Self {
            client_ca: pem("client-ca-file")?,
            request_header,
        })
    }

    /// Every CA a client certificate may chain to (for the TLS handshake).
    pub fn all_client_cas(&self) -> Vec<CertificateDer<'static>> {
        let mut out = self.client_ca.clone();
        if let Some(rh) = &self.request_header {
            out.extend(rh.client_ca.iter().cloned());
        }
        out
    }
}

#[derive(Debug, Deserialize)]
struct ConfigMap {
    #[serde(default)]
    data: BTreeMap<String, String>,
}

/// The attributes a SubjectAccessReview checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    Resource {
        verb: String,
        group: String,
        version: String,
        namespace: String,
        resource: String,
        subresource: String,
        name: String,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

impl Attributes {
    /// The API server's `RequestInfoFactory` for a GET of `path` (without the query).
    pub fn for_get(path: &str) -> Self {
        let non_resource = || Self::NonResource {
            verb: "get".into(),
            path: path.to_owned(),
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let Some(rest) = parts.strip_prefix(&["apis"]) else {
            return non_resource();
        };
        if rest.len() < 3 {
            return non_resource();
        }
        let (group, version) = (rest[0], rest[1]);
        let mut current = &rest[2..];
        let mut namespace = "";
        if current[0] == "namespaces" && current.len() > 1 {
            namespace = current[1];
            if current.len() > 2 {
                current = &current[2..];
            }
        }
        let resource = current[0];
        let name = current.get(1).copied().unwrap_or("");
        let subresource = current.get(2).copied().unwrap_or("");
        Self::Resource {
            // A GET without a name lists.
            verb: if name.is_empty() { "list" } else { "get" }.into(),
            group: group.into(),
            version: version.into(),
            namespace: namespace.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            name: name.into(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Self::Resource {
                verb,
                group,
                version,
                namespace,
                resource,
                subresource,
                name,
            } => json!({"resourceAttributes": {
                "namespace": namespace, "verb": verb, "group": group, "version": version,
                "resource": resource, "subresource": subresource, "name": name}}),
            Self::NonResource { verb, path } => {
                json!({"nonResourceAttributes": {"path": path, "verb": verb}})
            }
        }
    }

    /// The RBAC authorizer's wording of a denial.
    fn denied(&self, user: &str) -> String {
        match self {
            Self::Resource {
                verb,
                group,
                namespace,
                resource,
                subresource,
                ..
            } => {
                let res = if subresource.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}/{subresource}")
                };
                let scope = if namespace.is_empty() {
                    "at the cluster scope".to_owned()
                } else {
                    format!("in the namespace {namespace:?}")
                };
                format!(
                    "{res} is forbidden: User {user:?} cannot {verb} resource {res:?} in API group {group:?} {scope}"
                )
            }
            Self::NonResource { verb, path } => {
                format!("forbidden: User {user:?} cannot {verb} path {path:?}")
            }
        }
    }
}

struct Cache<V> {
    entries: Mutex<HashMap<Vec<u8>, (Instant, V)>>,
}

impl<V: Clone> Cache<V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &[u8]) -> Option<V> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: Vec<u8>, value: V) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_ENTRIES {
            map.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            if map.len() >= CACHE_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), value));
    }
}

fn digest(parts: &[&[u8]]) -> Vec<u8> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    ctx.finish().as_ref().to_vec()
}

/// What authentication trusts now (replaced whole when the ConfigMap is re-read).
struct Trust {
    config: AuthConfig,
    request_header_verifier: Option<Arc<dyn ClientCertVerifier>>,
    client_ca_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl Trust {
    fn new(config: AuthConfig) -> Result<Self, Error> {
        Ok(Self {
            request_header_verifier: verifier(
                config
                    .request_header
                    .as_ref()
                    .map_or(&[][..], |r| &r.client_ca[..]),
            )?,
            client_ca_verifier: verifier(&config.client_ca)?,
            config,
        })
    }
}

/// Authenticates and authorizes requests through the API server.
pub struct Delegated {
    client: kube::Client,
    timeout: Duration,
    trust: RwLock<Arc<Trust>>,
    tokens: Cache<Result<User, String>>,
    decisions: Cache<Result<(), String>>,
}

impl std::fmt::Debug for Delegated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delegated")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn verifier(cas: &[CertificateDer<'static>]) -> Result<Option<Arc<dyn ClientCertVerifier>>, Error> {
    if cas.is_empty() {
        return Ok(None);
    }
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca.clone())
            .map_err(|e| Error::Auth(format!("unusable client CA: {e}")))?;
    }
    let v = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .map_err(|e| Error::Auth(format!("unusable client CA: {e}")))?;
    Ok(Some(v))
}

/// The request's credentials, as the server saw them.
#[derive(Debug, Clone, Default)]
pub struct Credentials<'a> {
    /// The client certificate chain (end entity first), when one was presented.
    pub peer_certificates: Option<&'a [CertificateDer<'static>]>,
    pub headers: Option<&'a http::HeaderMap>,
}

impl Delegated {
    /// # Errors
    /// A CA of `config` is unusable.
    pub fn new(client: kube::Client, timeout: Duration, config: AuthConfig) -> Result<Self, Error> {
        Ok(Self {
            trust: RwLock::new(Arc::new(Trust::new(config)?)),
            client,
            timeout,
            tokens: Cache::new(),
            decisions: Cache::new(),
        })
    }

    fn trust(&self) -> Arc<Trust> {
        Arc::clone(&self.trust.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// What authentication trusts now.
    pub fn config(&self) -> AuthConfig {
        self.trust().config.clone()
    }

    /// Trusts `config` from now on (the ConfigMap was re-read).
    ///
    /// # Errors
    /// A CA is unusable: the old settings stay.
    pub fn reload(&self, config: AuthConfig) -> Result<(), Error> {
        let trust = Arc::new(Trust::new(config)?);
        *self.trust.write().unwrap_or_else(PoisonError::into_inner) = trust;
        Ok(())
    }

    /// The client used for the reviews.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Who is asking, or 401.
    ///
    /// # Errors
    /// No usable credentials (401), or the API server could not be asked (500).
    pub async fn authenticate(&self, creds: &Credentials<'_>) -> Result<User, ApiError> {
        let mut user = self.authenticate_inner(creds).await?;
        // As the API server's `AuthenticatedGroupAdder`: every authenticated user is in
        // `system:authenticated`, which is what `system:discovery` and
        // `system:public-info-viewer` are bound to (the aggregator's own requests for
        // `/apis` and `/openapi/v2` carry no groups).
        if !user.groups.iter().any(|g| g == SYSTEM_AUTHENTICATED) {
            user.groups.push(SYSTEM_AUTHENTICATED.to_owned());
        }
        Ok(user)
    }

    async fn authenticate_inner(&self, creds: &Credentials<'_>) -> Result<User, ApiError> {
        let empty = http::HeaderMap::new();
        let headers = creds.headers.unwrap_or(&empty);
        let trust = self.trust();
        if let Some(chain) = creds.peer_certificates
            && let Some((end_entity, intermediates)) = chain.split_first()
        {
            if let (Some(v), Some(rh)) =
                (&trust.request_header_verifier, &trust.config.request_header)
                && v.verify_client_cert(end_entity, intermediates, UnixTime::now())
                    .is_ok()
            {
                let subject = tls::subject(end_entity);
                let cn = subject.common_name.unwrap_or_default();
                if !rh.allowed_names.is_empty() && !rh.allowed_names.contains(&cn) {
                    return Err(unauthorized(&format!(
                        "client certificate common name {cn:?} is not one of requestheader-allowed-names"
                    )));
                }
                if let Some(user) = request_header_user(rh, headers) {
                    return Ok(user);
                }
            }
            if let Some(v) = &trust.client_ca_verifier
                && v.verify_client_cert(end_entity, intermediates, UnixTime::now())
                    .is_ok()
            {
                let subject = tls::subject(end_entity);
                if let Some(name) = subject.common_name {
                    return Ok(User {
                        name,
                        groups: subject.organizations,
                        ..User::default()
                    });
                }
            }
        }
        if let Some(token) = bearer_token(headers) {
            return self.token_review(token).await;
        }
        Err(unauthorized("no credentials"))
    }

    async fn token_review(&self, token: &str) -> Result<User, ApiError> {
        let key = digest(&[b"token", token.as_bytes()]);
        if let Some(cached) = self.tokens.get(&key) {
            return cached.map_err(|m| unauthorized(&m));
        }
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        });
        let review: Review<TokenReviewStatus> = self
            .post("/apis/authentication.k8s.io/v1/tokenreviews", &body)
            .await?;
        let status = review.status.unwrap_or_default();
        let decision = match status.user {
            Some(u) if status.authenticated => Ok(User {
                name: u.username,
                uid: u.uid,
                groups: u.groups,
                extra: u.extra,
            }),
            _ => Err(if status.error.is_empty() {
                "invalid bearer token".to_owned()
            } else {
                format!("invalid bearer token, {}", status.error)
            }),
        };
        self.tokens.put(key, decision.clone());
        decision.map_err(|m| unauthorized(&m))
    }

    /// Whether `user` may do what `attrs` say, or 403.
    ///
    /// # Errors
    /// Denied (403), or the API server could not be asked (500).
    pub async fn authorize(&self, user: &User, attrs: &Attributes) -> Result<(), ApiError> {
        let mut spec = attrs.json();
        let spec_obj = spec.as_object_mut().expect("attributes are an object");
        spec_obj.insert("user".into(), json!(user.name));
        if !user.uid.is_empty() {
            spec_obj.insert("uid".into(), json!(user.uid));
        }
        spec_obj.insert("groups".into(), json!(user.groups));
        if !user.extra.is_empty() {
            spec_obj.insert("extra".into(), json!(user.extra));
        }
        let key = digest(&[b"sar", spec.to_string().as_bytes()]);
        let decision = if let Some(cached) = self.decisions.get(&key) {
            cached
        } else {
            let body = json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": spec,
            });
            let review: Review<AccessReviewStatus> = self
                .post("/apis/authorization.k8s.io/v1/subjectaccessreviews", &body)
                .await?;
            let status = review.status.unwrap_or_default();
            let decision = if status.allowed && !status.denied {
                Ok(())
            } else {
                let mut message = attrs.denied(&user.name);
                if !status.reason.is_empty() {
                    message = format!("{message}: {}", status.reason);
                }
                Err(message)
            };
            self.decisions.put(key, decision.clone());
            decision
        };
        decision.map_err(|m| ApiError::new(403, crate::api::reasons::FORBIDDEN, m))
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, ApiError> {
        let request = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).expect("JSON values serialize"))
            .map_err(|e| ApiError::internal(format!("POST {path}: {e}")))?;
        match tokio::time::timeout(self.timeout, self.client.request::<T>(request)).await {
            Err(_) => Err(ApiError::internal(format!(
                "POST {path}: no answer within {}",
                podscale_metrics::config::format_duration(self.timeout)
            ))),
            Ok(Err(e)) => Err(ApiError::internal(format!("POST {path}: {e}"))),
            Ok(Ok(v)) => Ok(v),
        }
    }
}

fn unauthorized(why: &str) -> ApiError {
    ApiError::new(
        401,
        crate::api::reasons::UNAUTHORIZED,
        format!("Unauthorized: {why}"),
    )
}

fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The user the front proxy names (`requestheader.NewAuthenticator`): the first
/// username header present; groups from every group header; extras from headers
/// under the prefixes (lower-cased key, percent-decoded as upstream).
fn request_header_user(rh: &RequestHeader, headers: &http::HeaderMap) -> Option<User> {
    let name = rh
        .username_headers
        .iter()
        .find_map(|h| headers.get(h.as_str())?.to_str().ok())
        .filter(|n| !n.is_empty())?;
    let mut groups = Vec::new();
    for h in &rh.group_headers {
        for v in headers.get_all(h.as_str()) {
            if let Ok(v) = v.to_str() {
                groups.push(v.to_owned());
            }
        }
    }
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in headers {
        for prefix in &rh.extra_headers_prefix {
            let k = key.as_str();
            if k.len() > prefix.len() && k[..prefix.len()].eq_ignore_ascii_case(prefix) {
                let name = podscale_metrics::http::percent_decode(&k[prefix.len()..]);
                if let Ok(v) = value.to_str() {
                    extra
                        .entry(name.to_lowercase())
                        .or_default()
                        .push(v.to_owned());
                }
            }
        }
    }
    Some(User {
        name: name.to_owned(),
        uid: String::new(),
        groups,
        extra,
    })
}

#[derive(Debug, Deserialize)]
struct Review<S> {
    #[serde(default = "Option::default")]
    status: Option<S>,
}

#[derive(Debug, Default, Deserialize)]
struct TokenReviewStatus {
    #[serde(default)]
    authenticated: bool,
    #[serde(default)]
    user: Option<UserInfo>,
    #[serde(default)]
    error: String,
}

#[derive(Debug, Default, Deserialize)]
struct UserInfo {
    #[serde(default)]
    username: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    extra: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct AccessReviewStatus {
    #[serde(default)]
    allowed: bool,
    #[serde(default)]
    denied: bool,
    #[serde(default)]
    reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_the_attributes_the_api_server_would_check() {
        assert_eq!(
            Attributes::for_get(
                "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ai/pods/*/inference_queue_depth"
            ),
            Attributes::Resource {
                verb: "get".into(),
                group: "custom.metrics.k8s.io".into(),
                version: "v1beta1".into(),
                namespace: "ai".into(),
                resource: "pods".into(),
                subresource: "inference_queue_depth".into(),
                name: "*".into(),
            }
        );
        assert_eq!(
            Attributes::for_get("/apis/external.metrics.k8s.io/v1beta1/namespaces/ai/gpu"),
            Attributes::Resource {
                verb: "list".into(),
                group: "external.metrics.k8s.io".into(),
                version: "v1beta1".into(),
                namespace: "ai".into(),
                resource: "gpu".into(),
                subresource: String::new(),
                name: String::new(),
            }
        );
        assert_eq!(
            Attributes::for_get("/apis/custom.metrics.k8s.io/v1beta1"),
            Attributes::NonResource {
                verb: "get".into(),
                path: "/apis/custom.metrics.k8s.io/v1beta1".into()
            }
        );
    }

    #[test]
    fn the_front_proxy_names_the_user_in_its_headers() {
        let rh = RequestHeader {
            username_headers: vec!["X-Remote-User".into()],
            group_headers: vec!["X-Remote-Group".into()],
            extra_headers_prefix: vec!["X-Remote-Extra-".into()],
            ..RequestHeader::default()
        };
        let mut h = http::HeaderMap::new();
        assert_eq!(request_header_user(&rh, &h), None);
        h.insert(
            "x-remote-user",
            "system:serviceaccount:kube-system:hpa".parse().expect("v"),
        );
        h.append(
            "x-remote-group",
            "system:serviceaccounts".parse().expect("v"),
        );
        h.append("x-remote-group", "system:authenticated".parse().expect("v"));
        h.insert("x-remote-extra-scopes%2Fa", "x".parse().expect("v"));
        let user = request_header_user(&rh, &h).expect("a user");
        assert_eq!(user.name, "system:serviceaccount:kube-system:hpa");
        assert_eq!(
            user.groups,
            vec!["system:serviceaccounts", "system:authenticated"]
        );
        assert_eq!(user.extra.get("scopes/a"), Some(&vec!["x".to_owned()]));
    }

    #[test]
    fn only_bearer_tokens_are_tokens() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, "Basic abc".parse().expect("v"));
        assert_eq!(bearer_token(&h), None);
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer  t0k ".parse().expect("v"),
        );
        assert_eq!(bearer_token(&h), Some("t0k"));
    }
}
