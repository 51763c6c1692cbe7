//! `podscale adapter`: connect to the cluster, read the front proxy's settings, load or
//! generate the serving certificate, and serve until told to stop.
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use podscale_metrics::config::Config;
use podscale_metrics::kubernetes::{KubeMetrics, Limits as KubeLimits};

use crate::Error;
use crate::auth::{AUTH_REFRESH, AuthConfig, Delegated};
use crate::read::Reader;
use crate::server::{self, Limits, State};
use crate::tls::{self, Identity};

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// `--tls-cert-file` and `--tls-private-key-file`.
    Files { cert: PathBuf, key: PathBuf },
    /// Generated at start for these names (DNS names or IPs).
    SelfSigned { names: Vec<String> },
}

/// Everything `podscale adapter` needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: Config,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub bind: SocketAddr,
    pub tls: TlsSource,
    pub limits: Limits,
}

/// The default time of one Kubernetes API call (TokenReview, SubjectAccessReview, a
/// page of pods), unless `kubernetes.timeout` says otherwise.
pub const DEFAULT_KUBE_TIMEOUT: Duration = Duration::from_secs(10);

async fn kube_client(opts: &Options) -> Result<kube::Client, Error> {
    podscale_metrics::http::install_crypto_provider();
    let kopts = kube::config::KubeConfigOptions {
        context: opts.context.clone(),
        ..Default::default()
    };
    let mut config = match &opts.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| Error::Kube(format!("kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &kopts)
                .await
                .map_err(|e| Error::Kube(format!("kubeconfig {}: {e}", path.display())))?
        }
        None if opts.context.is_some() => kube::Config::from_kubeconfig(&kopts)
            .await
            .map_err(|e| Error::Kube(format!("kubeconfig: {e}")))?,
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::Kube(format!("no Kubernetes configuration: {e}")))?,
    };
    // As `KubeMetrics::connect`: report an API error at once rather than retry it
    // past the caller's deadline.
    config.default_retry = false;
    kube::Client::try_from(config)
        .map_err(|e| Error::Kube(format!("cannot build the Kubernetes client: {e}")))
}

/// Serves until `shutdown` completes.
///
/// # Errors
/// The cluster, the authentication ConfigMap, the certificate or the port is unusable.
pub async fn run(opts: Options, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let client = kube_client(&opts).await?;
    let (timeout, kube_limits) = match &opts.config.kubernetes {
        Some(k) => (
            k.timeout,
            KubeLimits {
                max_body_bytes: usize::try_from(k.max_response_size).unwrap_or(usize::MAX),
                max_items: k.max_items,
                ..KubeLimits::default()
            },
        ),
        None => (DEFAULT_KUBE_TIMEOUT, KubeLimits::default()),
    };
    let auth_config = AuthConfig::from_cluster(&client, timeout).await?;
    if auth_config.request_header.is_none() {
        tracing::warn!(
            configmap = crate::auth::AUTH_CONFIGMAP,
            "No requestheader-client-ca-file: requests forwarded by the API server's aggregator cannot be authenticated."
        );
    }
    let client_cas = tls::ClientCas::new(&auth_config.all_client_cas())?;
    let auth = Delegated::new(client.clone(), timeout, auth_config)?;
    let kube = KubeMetrics::new(client, timeout).with_limits(kube_limits);
    let reader = Reader::new(Arc::new(opts.config), Some(kube))?;
    let identity = match &opts.tls {
        TlsSource::Files { cert, key } => Identity::from_files(cert, key)?,
        TlsSource::SelfSigned { names } => Identity::self_signed(names)?,
    };
    let tls = Arc::new(tls::server_config(identity, Arc::clone(&client_cas))?);
    let listener = tokio::net::TcpListener::bind(opts.bind)
        .await
        .map_err(|e| Error::Listen(opts.bind, e))?;
    let catalogue = reader.catalogue();
    tracing::info!(
        address = %opts.bind,
        pods_metrics = catalogue.pods.len(),
        object_metrics = catalogue.objects.len(),
        external_metrics = catalogue.external.len(),
        "Serving custom.metrics.k8s.io and external.metrics.k8s.io."
    );
    let state = Arc::new(State::new(reader, Some(auth), opts.limits));
    let refresh = tokio::spawn(refresh_trust(Arc::clone(&state), client_cas, timeout));
    let served = server::serve(listener, tls, state, shutdown).await;
    refresh.abort();
    served.map_err(|e| Error::Listen(opts.bind, e))
}

/// Re-reads the authentication ConfigMap every [`AUTH_REFRESH`]; a failed read keeps
/// what was trusted.
async fn refresh_trust(state: Arc<State>, client_cas: Arc<tls::ClientCas>, timeout: Duration) {
    let Some(auth) = &state.auth else { return };
    loop {
        tokio::time::sleep(AUTH_REFRESH).await;
        match AuthConfig::from_cluster(auth.client(), timeout).await {
            Ok(config) => {
                let cas = config.all_client_cas();
                if let Err(e) = auth.reload(config).and_then(|()| client_cas.set(&cas)) {
                    tracing::warn!(error = %e, "Keeping the previous authentication settings.");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot re-read the authentication settings; keeping the previous ones.");
            }
        }
    }
}
