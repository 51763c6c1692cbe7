//! `podscale run`: the wiring. A kube-runtime watcher of Autoscalers (or, in shadow
//! mode, of standard `autoscaling/v2` HPAs) feeds [`Update`]s to the runtime's
//! [`Controller`] — the one control loop — over [`KubeTarget`], [`KubeRecorder`] and
//! [`CollectSource`]; a Lease decides which instance may write; the admin server
//! publishes the loop's counters.
use std::collections::HashSet;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler as KHpa;
use kube::api::Api;
use kube::runtime::{WatchStreamExt as _, reflector, watcher};
use kube::{Client, Resource, ResourceExt as _};
use podscale_core::ControllerSettings;
use podscale_metrics::collect::Sources;
use podscale_metrics::config::Config;
use podscale_metrics::kubernetes::KubeMetrics;
pub use podscale_runtime::LoopConfig;
use podscale_runtime::{
    Clock, Controller, Key, MemoryRecorder, MetricSource, Recorder, ScaleTarget, Shadow,
    TokioClock, Update,
};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

use crate::admin::{self, Render};
use crate::annotate::AnnotatingRecorder;
use crate::crd::Autoscaler;
use crate::recorder::{KubeRecorder, Uids};
use crate::source::CollectSource;
use crate::target::{KubeTarget, error_chain};

/// Why `podscale run` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error("leader election: {0}")]
    Lease(String),
    #[error("admin server on {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Leader election settings.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    pub name: String,
    pub namespace: String,
    pub identity: String,
}

/// What `podscale run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `None`: every namespace.
    pub namespace: Option<String>,
    pub shadow: bool,
    /// In shadow mode, also write each HPA's recommendation on it as the
    /// `podscale.dev/recommendation` annotation (when it changes). Needs `patch` on
    /// `horizontalpodautoscalers`.
    pub shadow_annotate: bool,
    pub lease: Option<LeaseOptions>,
    pub metrics_addr: Option<SocketAddr>,
    pub settings: ControllerSettings,
    pub loop_config: LoopConfig,
    pub metrics: Config,
    /// This instance's name, for events' `reportingInstance`.
    pub identity: String,
}

/// A client from a kubeconfig (`None`: `$KUBECONFIG`, `~/.kube/config`, or in-cluster)
/// and a context.
///
/// # Errors
/// No usable configuration.
pub async fn connect(
    kubeconfig: Option<&PathBuf>,
    context: Option<&str>,
) -> Result<Client, RunError> {
    podscale_metrics::http::install_crypto_provider();
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                RunError::Config(format!(
                    "kubeconfig {}: {}",
                    path.display(),
                    error_chain(&e)
                ))
            })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| {
                    RunError::Config(format!(
                        "kubeconfig {}: {}",
                        path.display(),
                        error_chain(&e)
                    ))
                })?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| RunError::Config(format!("kubeconfig: {}", error_chain(&e))))?,
        None => kube::Config::infer().await.map_err(|e| {
            RunError::Config(format!("no Kubernetes configuration: {}", error_chain(&e)))
        })?,
    };
    Client::try_from(config).map_err(|e| {
        RunError::Config(format!(
            "cannot build the Kubernetes client: {}",
            error_chain(&e)
        ))
    })
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Feeds the runtime from a watch of `K`: every object seen becomes an
/// [`Update::Apply`] (or a delete when `convert` refuses it), a deleted object an
/// [`Update::Delete`]; after each (re)list, objects that vanished meanwhile are deleted.
/// `ready` turns true after the first list.
pub async fn feed<K, F>(
    api: Api<K>,
    convert: F,
    updates: mpsc::Sender<Update>,
    uids: Option<Uids>,
    ready: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    K::DynamicType: Default,
    F: Fn(&K) -> Result<Update, String>,
{
    let stream = watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut known: HashSet<Key> = HashSet::new();
    let mut listing: Option<HashSet<Key>> = None;
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            e = stream.next() => match e {
                Some(e) => e,
                None => break,
            },
        };
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "Watch failed; retrying with backoff.");
                continue;
            }
        };
        let mut send = Vec::new();
        match event {
            watcher::Event::Init => listing = Some(HashSet::new()),
            watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                let key = Key::new(
                    obj.namespace().unwrap_or_else(|| "default".into()),
                    obj.name_any(),
                );
                if let Some(l) = &mut listing {
                    l.insert(key.clone());
                }
                if let Some(u) = &uids {
                    u.set(key.clone(), obj.uid());
                }
                match convert(&obj) {
                    Ok(update) => {
                        known.insert(key);
                        send.push(update);
                    }
                    Err(e) => {
                        tracing::warn!(autoscaler = %key, error = %e, "Not syncing this autoscaler.");
                        if known.remove(&key) {
                            send.push(Update::Delete(key));
                        }
                    }
                }
            }
            watcher::Event::Delete(obj) => {
                let key = Key::new(
                    obj.namespace().unwrap_or_else(|| "default".into()),
                    obj.name_any(),
                );
                known.remove(&key);
                if let Some(u) = &uids {
                    u.set(key.clone(), None);
                }
                send.push(Update::Delete(key));
            }
            watcher::Event::InitDone => {
                if let Some(seen) = listing.take() {
                    for gone in known
                        .iter()
                        .filter(|k| !seen.contains(k))
                        .cloned()
                        .collect::<Vec<_>>()
                    {
                        known.remove(&gone);
                        send.push(Update::Delete(gone));
                    }
                }
                if !ready.swap(true, Ordering::Relaxed) {
                    tracing::info!(autoscalers = known.len(), "Listed; syncing.");
                }
            }
        }
        for u in send {
            if updates.send(u).await.is_err() {
                return;
            }
        }
    }
}

/// A standard HPA as the engine reads it (the same JSON shape).
///
/// # Errors
/// An object the engine's types cannot read.
pub fn hpa_from_k8s(h: &KHpa) -> Result<podscale_core::api::HorizontalPodAutoscaler, String> {
    let v = serde_json::to_value(h).map_err(|e| e.to_string())?;
    let mut hpa: podscale_core::api::HorizontalPodAutoscaler =
        serde_json::from_value(v).map_err(|e| e.to_string())?;
    hpa.api_version = Some("autoscaling/v2".into());
    hpa.kind = Some("HorizontalPodAutoscaler".into());
    Ok(hpa)
}

/// Runs the controller until `shutdown` turns true.
///
/// # Errors
/// Unusable settings, a lease that cannot be set up, an admin address that cannot be
/// bound.
pub async fn run(
    client: Client,
    opts: RunOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let mut opts = opts;
    if opts.shadow_annotate && !opts.shadow {
        return Err(RunError::Config(
            "--shadow-annotate needs --shadow (it annotates standard HPAs)".into(),
        ));
    }
    // The controller reads the metrics APIs through its own connection: a config
    // without a `kubernetes:` section (or no config at all) gets the default one, so a
    // metric `metrics:` does not list is read from custom.metrics.k8s.io /
    // external.metrics.k8s.io as the HPA controller reads it, instead of failing with
    // "podscale.yaml has no external metric named …".
    if opts.metrics.kubernetes.is_none() {
        opts.metrics.kubernetes = Some(
            serde_json::from_value(serde_json::json!({}))
                .map_err(|e| RunError::Config(format!("metric sources: {e}")))?,
        );
    }
    let mut sources = Sources::from_config(&opts.metrics)
        .map_err(|e| RunError::Config(format!("metric sources: {e}")))?;
    // The metrics APIs through the controller's own connection, bounded as the config
    // says.
    sources.kube = opts.metrics.kubernetes.as_ref().map(|k| {
        KubeMetrics::new(client.clone(), k.timeout).with_limits(
            podscale_metrics::kubernetes::Limits {
                max_body_bytes: usize::try_from(k.max_response_size).unwrap_or(usize::MAX),
                max_items: k.max_items,
                ..Default::default()
            },
        )
    });

    // Leadership: the lease task releases the lease once every receiver is dropped.
    let (may_write, lease_task, _always) = match &opts.lease {
        Some(l) => {
            let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &l.name)
                .with_namespace(&l.namespace)
                .with_identity(&l.identity)
                .build()
                .await
                .map_err(|e| RunError::Lease(error_chain(&e)))?;
            let (rx, task) = manager.watch().await;
            tracing::info!(lease = %format!("{}/{}", l.namespace, l.name), identity = %l.identity, "Leader election on.");
            (rx, Some(task), None)
        }
        None => {
            let (tx, rx) = watch::channel(true);
            (rx, None, Some(tx))
        }
    };

    let ready = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel(256);
    let ns = opts.namespace.as_deref();
    let clock = TokioClock::new();
    let result = if opts.shadow {
        let target = Shadow::new(KubeTarget::new(client.clone()));
        let source = CollectSource::new(opts.metrics.clone(), sources, target.inner().addresses());
        let uids = Uids::default();
        let recorder = if opts.shadow_annotate {
            AnnotatingRecorder::new(MemoryRecorder::new(32), client.clone(), uids.clone())
        } else {
            AnnotatingRecorder::off(MemoryRecorder::new(32))
        };
        let controller = Controller::with_leadership(
            target,
            source,
            recorder,
            clock,
            opts.loop_config.clone(),
            opts.settings.clone(),
            may_write.clone(),
        );
        let feeder = feed(
            api::<KHpa>(&client, ns),
            |h: &KHpa| {
                hpa_from_k8s(h).map(|hpa| Update::Apply {
                    hpa: Box::new(hpa),
                    history: None,
                    options: Default::default(),
                })
            },
            tx,
            Some(uids),
            Arc::clone(&ready),
            shutdown.clone(),
        );
        let c = controller.clone();
        let lead = may_write.clone();
        let render: Render = Arc::new(move || {
            let views = c.views();
            // What podscale would set the target to is the last sync's decision, even
            // when it needed no write (the target already had it): not the last value
            // the Shadow was asked to write, which would stay stale then.
            let recommended = |k: &Key| {
                views
                    .binary_search_by(|(key, _)| key.cmp(k))
                    .ok()
                    .and_then(|i| views[i].1.last.as_ref())
                    .and_then(|last| last.desired_replicas)
            };
            admin::render(
                &c.stats().snapshot(),
                &views,
                *lead.borrow(),
                &recommended,
                true,
            )
        });
        drive(controller, feeder, rx, render, &opts, ready, shutdown).await
    } else {
        // The standard HPAs, to refuse workloads one of them already scales.
        let (store, writer) = reflector::store();
        let hpa_watch = reflector(
            writer,
            watcher(api::<KHpa>(&client, ns), watcher::Config::default()),
        )
        .default_backoff()
        .for_each(|_| async {});
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = hpa_watch => {}
                _ = stop.changed() => {}
            }
        });
        let target = KubeTarget::new(client.clone()).refusing_hpa_targets(store);
        let source = CollectSource::new(opts.metrics.clone(), sources, target.addresses());
        let uids = Uids::default();
        let recorder = KubeRecorder::new(client.clone(), Some(opts.identity.clone()), uids.clone());
        let controller = Controller::with_leadership(
            target,
            source,
            recorder,
            clock,
            opts.loop_config.clone(),
            opts.settings.clone(),
            may_write.clone(),
        );
        let settings = opts.settings.clone();
        let feeder = feed(
            api::<Autoscaler>(&client, ns),
            // An unusable `podscale:` block is reported on the object (event and
            // ScalingActive=False/InvalidOptions), not only in this log.
            move |a: &Autoscaler| {
                Ok(a.to_update(&settings).unwrap_or_else(|e| Update::Invalid {
                    hpa: Box::new(a.to_hpa()),
                    message: e.to_string(),
                }))
            },
            tx,
            Some(uids),
            Arc::clone(&ready),
            shutdown.clone(),
        );
        let c = controller.clone();
        let lead = may_write.clone();
        let render: Render = Arc::new(move || {
            admin::render(
                &c.stats().snapshot(),
                &c.views(),
                *lead.borrow(),
                &|_: &Key| None,
                false,
            )
        });
        drive(controller, feeder, rx, render, &opts, ready, shutdown).await
    };
    drop(may_write);
    drop(_always);
    if let Some(task) = lease_task {
        // Dropping every receiver makes the lease task release the lease; wait a bit.
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => tracing::info!("Lease released."),
            Ok(Ok(Err(e))) => tracing::warn!(error = %error_chain(&e), "Cannot release the lease."),
            Ok(Err(_)) | Err(_) => tracing::warn!("The lease task did not finish in time."),
        }
    }
    result
}

async fn drive<T, M, R, C>(
    controller: Controller<T, M, R, C>,
    feeder: impl std::future::Future<Output = ()>,
    rx: mpsc::Receiver<Update>,
    render: Render,
    opts: &RunOptions,
    ready: Arc<AtomicBool>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), RunError>
where
    T: ScaleTarget,
    M: MetricSource,
    R: Recorder,
    C: Clock,
{
    let admin = async {
        match opts.metrics_addr {
            Some(addr) => admin::serve(addr, render, ready, shutdown.clone())
                .await
                .map_err(|source| RunError::Admin { addr, source }),
            None => Ok(()),
        }
    };
    let ((), (), admin) = tokio::join!(controller.run(rx, shutdown.clone()), feeder, admin);
    admin
}

/// Waits for SIGINT or SIGTERM (what Kubernetes sends before killing a pod).
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Logs to standard error: `info` and up, `debug` with `PODSCALE_DEBUG=1`.
pub fn init_logging() {
    let level = if std::env::var_os("PODSCALE_DEBUG").is_some_and(|v| v == "1") {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
