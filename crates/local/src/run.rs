//! Everything `podscale run --local` starts, started together and stopped together:
//! the replicas (with the orphan guard), the control loop, the front proxy and the
//! status API.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use podscale_core::ControllerSettings;
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::defaults;
use podscale_metrics::config::Config;
pub use podscale_runtime::LoopConfig;
use podscale_runtime::{AutoscalerOptions, Controller, Key, TokioClock, Update};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::metrics::LocalMetrics;
use crate::proxy::{Proxy, ProxyCounters};
use crate::replicas::{ReplicaSet, StartError};
use crate::spec::LocalDeployment;
use crate::status::{self, AutoscalerStatus, LocalRecorder, StatusDoc};

/// Loop settings of a local run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunOptions {
    /// The loop's timing (sync period 15 s by default, as kube-controller-manager).
    pub loop_config: LoopConfig,
    /// The controller's settings (tolerance, stabilization, CPU initialization, …).
    pub settings: ControllerSettings,
    /// Replicas to start with; default the HPA's `minReplicas`.
    pub initial_replicas: Option<i32>,
    /// Bind the front proxy and the status API to port 0 (any free port) instead of
    /// the configured ones (tests).
    pub ephemeral_ports: bool,
}

/// Why a local run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "the HPA's scaleTargetRef is {kind} {name:?}, but the local deployment is {deployment:?}"
    )]
    TargetMismatch {
        kind: String,
        name: String,
        deployment: String,
    },
    #[error(
        "the HPA's maxReplicas ({max}) is more than the local deployment has ports for (ports.count: {ports})"
    )]
    TooManyReplicas { max: i32, ports: u16 },
    #[error("initial replicas {0}: must be between 0 and ports.count")]
    Initial(i32),
    #[error("cannot listen on {what} {addr}")]
    Listen {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot set up the metric sources")]
    Metrics(#[from] podscale_metrics::SourceError),
}

type LocalController = Controller<ReplicaSet, LocalMetrics, LocalRecorder, TokioClock>;

/// A running local deployment.
#[derive(Debug)]
pub struct Running {
    replicas: ReplicaSet,
    controller: LocalController,
    recorder: LocalRecorder,
    counters: Arc<ProxyCounters>,
    front: SocketAddr,
    status: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    _updates: mpsc::Sender<Update>,
    key: Key,
    created: Timestamp,
    target: String,
}

/// Starts the local deployment and its autoscaler. Call inside a multi-threaded tokio
/// runtime.
///
/// # Errors
/// The HPA does not target the deployment or allows more replicas than it has ports,
/// a port is taken, the guard or a metric source cannot be set up.
pub async fn start(
    spec: LocalDeployment,
    hpa: HorizontalPodAutoscaler,
    config: Config,
    options: RunOptions,
) -> Result<Running, RunError> {
    let r = &hpa.spec.scale_target_ref;
    if r.name != spec.name {
        return Err(RunError::TargetMismatch {
            kind: r.kind.clone(),
            name: r.name.clone(),
            deployment: spec.name.clone(),
        });
    }
    if hpa.spec.max_replicas > i32::from(spec.ports.count) {
        return Err(RunError::TooManyReplicas {
            max: hpa.spec.max_replicas,
            ports: spec.ports.count,
        });
    }
    let initial = options
        .initial_replicas
        .unwrap_or_else(|| defaults::min_replicas(&hpa));
    if !(0..=i32::from(spec.ports.count)).contains(&initial) {
        return Err(RunError::Initial(initial));
    }
    let listen = |what: &'static str, addr: String| async move {
        TcpListener::bind(&addr)
            .await
            .map_err(|source| RunError::Listen { what, addr, source })
    };
    let (front_port, status_port) = if options.ephemeral_ports {
        (0, 0)
    } else {
        (spec.front.port, spec.status.port)
    };
    let front_ip: std::net::IpAddr = spec
        .front
        .address
        .parse()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let front_listener = listen(
        "the front port",
        SocketAddr::new(front_ip, front_port).to_string(),
    )
    .await?;
    // Loopback only: the status API has no authentication.
    let status_listener = listen("the status port", format!("127.0.0.1:{status_port}")).await?;
    let front = front_listener
        .local_addr()
        .map_err(|source| RunError::Listen {
            what: "the front port",
            addr: front_port.to_string(),
            source,
        })?;
    let status_addr = status_listener
        .local_addr()
        .map_err(|source| RunError::Listen {
            what: "the status port",
            addr: status_port.to_string(),
            source,
        })?;

    let target = format!("{}/{}", r.kind, spec.name);
    let replicas = ReplicaSet::start(spec, initial)?;
    let metrics = LocalMetrics::new(replicas.clone(), config, &hpa)?;
    let recorder = LocalRecorder::default();
    let controller = Controller::new(
        replicas.clone(),
        metrics,
        recorder.clone(),
        TokioClock::new(),
        options.loop_config.clone(),
        options.settings.clone(),
    );
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (updates, updates_rx) = mpsc::channel(4);
    let key = Key::of(&hpa);
    let _ = updates
        .send(Update::Apply {
            hpa: Box::new(hpa),
            history: None,
            options: AutoscalerOptions::default(),
        })
        .await;
    let mut tasks = Vec::new();
    {
        let c = controller.clone();
        let rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move { c.run(updates_rx, rx).await }));
    }
    let proxy = Arc::new(Proxy::new(replicas.clone()));
    let counters = proxy.counters();
    tasks.push(tokio::spawn(
        proxy.serve(front_listener, shutdown_rx.clone()),
    ));
    let mut running = Running {
        replicas,
        controller,
        recorder,
        counters,
        front,
        status: status_addr,
        shutdown,
        tasks,
        _updates: updates,
        key,
        created: Timestamp::now(),
        target,
    };
    let doc = running.doc_fn();
    let metrics = running.metrics_fn();
    running.tasks.push(tokio::spawn(status::serve(
        status_listener,
        doc,
        metrics,
        shutdown_rx,
    )));
    Ok(running)
}

impl Running {
    /// The front proxy's address.
    pub fn front_addr(&self) -> SocketAddr {
        self.front
    }

    /// The status API's address.
    pub fn status_addr(&self) -> SocketAddr {
        self.status
    }

    pub fn replicas(&self) -> &ReplicaSet {
        &self.replicas
    }

    pub fn controller(&self) -> &LocalController {
        &self.controller
    }

    /// What the status API answers now.
    pub fn status_doc(&self) -> StatusDoc {
        (self.doc_fn())()
    }

    /// What `/metrics` answers now.
    pub fn metrics_text(&self) -> String {
        (self.metrics_fn())()
    }

    fn metrics_fn(&self) -> impl Fn() -> String + Send + Sync + 'static {
        let controller = self.controller.clone();
        let replicas = self.replicas.clone();
        let counters = Arc::clone(&self.counters);
        move || {
            crate::prom::render(&crate::prom::Sources {
                stats: &controller.stats().snapshot(),
                views: &controller.views(),
                replicas: &replicas.replicas(),
                restarts: replicas.restarts(),
                proxy: &counters,
            })
        }
    }

    fn doc_fn(&self) -> impl Fn() -> StatusDoc + Send + Sync + 'static {
        let controller = self.controller.clone();
        let recorder = self.recorder.clone();
        let replicas = self.replicas.clone();
        let counters = Arc::clone(&self.counters);
        let created = self.created;
        let target = self.target.clone();
        let key = self.key.clone();
        move || {
            let mut autoscalers: Vec<AutoscalerStatus> = controller
                .views()
                .into_iter()
                .map(|(key, view)| AutoscalerStatus {
                    events: recorder.events(&key),
                    hpa: view.hpa,
                    created,
                    syncs: view.syncs,
                    last_error: view.last.and_then(|l| l.error),
                })
                .collect();
            if autoscalers.is_empty() {
                // Before the first sync: the object without status yet.
                autoscalers.extend(controller.view(&key).map(|v| AutoscalerStatus {
                    hpa: v.hpa,
                    created,
                    syncs: 0,
                    last_error: None,
                    events: Vec::new(),
                }));
            }
            StatusDoc {
                now: Timestamp::now(),
                autoscalers,
                target: target.clone(),
                replicas: replicas.replicas(),
                restarts: replicas.restarts(),
                proxy: counters.snapshot(),
            }
        }
    }

    /// Stops everything: the loop finishes its current sync, the proxy stops
    /// accepting, then every replica drains and stops (within the stop timeout).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
        }
        self.replicas.shutdown().await;
    }
}

/// Why an HPA manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HpaError {
    #[error(transparent)]
    Manifest(#[from] podscale_manifest::ManifestError),
    #[error("{file}: no HorizontalPodAutoscaler named {name:?}")]
    NotFound { file: String, name: String },
    #[error("{file}: no HorizontalPodAutoscaler in this file")]
    None { file: String },
    #[error("{file}: {count} HorizontalPodAutoscalers ({names}); pick one by name")]
    Several {
        file: String,
        count: usize,
        names: String,
    },
    #[error("invalid HPA:\n{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<podscale_manifest::Diagnostic>),
}

/// The one HPA of a manifest file's text, validated as the API server would.
///
/// # Errors
/// Not YAML/JSON, no HPA (or several), or an invalid one; positioned messages.
pub fn parse_hpa(source: &str, file: &str) -> Result<HorizontalPodAutoscaler, HpaError> {
    parse_hpa_named(source, file, None)
}

/// As [`parse_hpa`], picking the HPA called `name` when given.
///
/// # Errors
/// As [`parse_hpa`], or no HPA has that name.
pub fn parse_hpa_named(
    source: &str,
    file: &str,
    name: Option<&str>,
) -> Result<HorizontalPodAutoscaler, HpaError> {
    let docs = podscale_manifest::parse_documents(source, file)?;
    let hpas: Vec<_> = docs
        .iter()
        .filter(|d| d.kind() == Some("HorizontalPodAutoscaler"))
        .filter(|d| name.is_none() || d.name() == name)
        .collect();
    let doc = match (hpas.as_slice(), name) {
        ([doc], _) => *doc,
        ([], Some(n)) => {
            return Err(HpaError::NotFound {
                file: file.into(),
                name: n.into(),
            });
        }
        ([], None) => return Err(HpaError::None { file: file.into() }),
        (many, _) => {
            return Err(HpaError::Several {
                file: file.into(),
                count: many.len(),
                names: many
                    .iter()
                    .filter_map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    let problems = podscale_manifest::validate_hpa(doc, file);
    if !problems.is_empty() {
        return Err(HpaError::Invalid(problems));
    }
    Ok(podscale_manifest::deserialize(doc, file)?)
}

/// Runs until SIGINT (Ctrl-C) or SIGTERM, then stops everything it started.
pub async fn until_signal(running: Running) {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            tracing::error!("Cannot install signal handlers: stopping.");
        }
    }
    tracing::info!("Stopping: draining replicas.");
    running.stop().await;
}
