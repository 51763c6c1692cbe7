//! [`ReplicaSet`]: the local deployment's processes, with a scale subresource.
//!
//! `set_replicas` only changes the desired count; the set then does what the
//! ReplicaSet controller and the kubelet do for pods: it starts missing replicas,
//! restarts crashed ones with backoff (counted, like `restartCount`), probes readiness,
//! and stops surplus ones gracefully — first out of the proxy's rotation, then its
//! proxied requests drain, then SIGTERM to its process group, then SIGKILL after the
//! stop timeout.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jiff::Timestamp;
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::{Container, Pod, ResourceRequirements};
use podscale_runtime::{Scale, ScaleTarget, TargetError};
use rustix::process::Signal;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::guard::{Guard, signal_group};
use crate::spec::LocalDeployment;

/// The label every replica carries (`app=NAME`), and the scale's selector.
pub const APP_LABEL: &str = "app";

/// A replica's phase, as a pod's: `Pending` until its readiness probe first passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    Pending,
    Running,
}

/// What is known of one replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaInfo {
    pub index: u16,
    pub name: String,
    pub port: u16,
    /// The process group (= the process id of `/bin/sh -c COMMAND`), while running.
    pub pgid: Option<u32>,
    pub phase: Phase,
    pub ready: bool,
    pub created: Timestamp,
    /// When `ready` last changed (creation, until the first probe passes).
    pub ready_transition: Timestamp,
    pub restarts: u32,
    /// Set when the replica is being stopped (a pod's `deletionTimestamp`).
    pub deletion: Option<Timestamp>,
    /// Requests the proxy has in flight to it.
    pub outstanding: usize,
}

#[derive(Debug)]
struct Replica {
    info: ReplicaInfo,
    outstanding: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct State {
    desired: i32,
    replicas: BTreeMap<u16, Replica>,
    /// Shutting down: nothing is started any more.
    closed: bool,
}

#[derive(Debug)]
struct Inner {
    spec: LocalDeployment,
    guard: Guard,
    state: Mutex<State>,
    /// Signalled whenever a replica is removed or changes readiness.
    changed: Notify,
    probe: Client<HttpConnector, Empty<Bytes>>,
    restarts: AtomicU64,
    started: AtomicU64,
}

/// The local deployment's replicas. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct ReplicaSet {
    inner: Arc<Inner>,
}

/// A request in flight to one replica: counted until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why the replica set could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the orphan guard (/bin/sh): {0}")]
    Guard(std::io::Error),
}

impl ReplicaSet {
    /// Starts the orphan guard and `initial` replicas. Must be called inside a tokio
    /// runtime (replicas are supervised by tasks).
    ///
    /// # Errors
    /// The orphan guard cannot be started.
    pub fn start(spec: LocalDeployment, initial: i32) -> Result<Self, StartError> {
        let guard = Guard::start().map_err(StartError::Guard)?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(spec.readiness.timeout));
        let probe = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(connector);
        let set = Self {
            inner: Arc::new(Inner {
                spec,
                guard,
                state: Mutex::default(),
                changed: Notify::new(),
                probe,
                restarts: AtomicU64::new(0),
                started: AtomicU64::new(0),
            }),
        };
        set.scale_to(initial);
        Ok(set)
    }

    pub fn spec(&self) -> &LocalDeployment {
        &self.inner.spec
    }

    /// The orphan guard's process id (tests).
    pub fn guard_pid(&self) -> Option<u32> {
        self.inner.guard.pid()
    }

    /// Crash restarts so far, over all replicas (stopped ones included).
    pub fn restarts(&self) -> u64 {
        self.inner.restarts.load(Ordering::Relaxed)
    }

    /// The desired count (`spec.replicas`).
    pub fn desired(&self) -> i32 {
        self.lock().desired
    }

    /// Every replica, stopping ones included, by index.
    pub fn replicas(&self) -> Vec<ReplicaInfo> {
        self.lock()
            .replicas
            .values()
            .map(|r| ReplicaInfo {
                outstanding: r.outstanding.load(Ordering::Acquire),
                ..r.info.clone()
            })
            .collect()
    }

    /// Waits until a replica changes readiness or goes away (or `d` passes).
    pub async fn changed(&self, d: Duration) {
        let _ = tokio::time::timeout(d, self.inner.changed.notified()).await;
    }

    /// The ready replica with the fewest requests in flight (lowest index on a tie),
    /// skipping `exclude`; the returned [`InFlight`] counts the request until dropped.
    /// Selection and counting happen under the lock that stopping takes, so a replica
    /// taken out of rotation gets no request after that and its drain is complete.
    pub fn pick(&self, exclude: &[u16]) -> Option<(u16, u16, InFlight)> {
        let state = self.lock();
        let best = state
            .replicas
            .values()
            .filter(|r| r.info.ready && r.info.deletion.is_none() && r.info.pgid.is_some())
            .filter(|r| !exclude.contains(&r.info.index))
            .min_by_key(|r| (r.outstanding.load(Ordering::Acquire), r.info.index))?;
        best.outstanding.fetch_add(1, Ordering::AcqRel);
        Some((
            best.info.index,
            best.info.port,
            InFlight(Arc::clone(&best.outstanding)),
        ))
    }

    /// Sets the desired count and starts or stops replicas to match.
    pub fn scale_to(&self, replicas: i32) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.desired = replicas.max(0);
        self.reconcile(&mut state);
    }

    /// Stops every replica (gracefully, as a scale to 0) and waits until all are gone
    /// (at most the stop timeout plus a margin); no replica is started afterwards.
    pub async fn shutdown(&self) {
        {
            let mut state = self.lock();
            state.closed = true;
            state.desired = 0;
            let now = Timestamp::now();
            for r in state.replicas.values_mut() {
                if r.info.deletion.is_none() {
                    r.info.deletion = Some(now);
                }
                let _ = r.stop.send(true);
            }
        }
        let deadline = Instant::now() + self.inner.spec.stop_timeout + Duration::from_secs(5);
        while !self.lock().replicas.is_empty() && Instant::now() < deadline {
            self.changed(Duration::from_millis(50)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn reconcile(&self, state: &mut State) {
        let spec = &self.inner.spec;
        let active: Vec<&Replica> = state
            .replicas
            .values()
            .filter(|r| r.info.deletion.is_none())
            .collect();
        let desired = usize::try_from(state.desired).unwrap_or(0);
        if active.len() > desired {
            let mut ranked: Vec<&ReplicaInfo> = active.iter().map(|r| &r.info).collect();
            ranked.sort_by(|a, b| deletion_order(a, b));
            let victims: Vec<u16> = ranked
                .iter()
                .take(active.len() - desired)
                .map(|r| r.index)
                .collect();
            let now = Timestamp::now();
            for i in victims {
                if let Some(r) = state.replicas.get_mut(&i) {
                    tracing::info!(replica = %r.info.name, "Stopping replica (scale down).");
                    r.info.deletion = Some(now);
                    let _ = r.stop.send(true);
                }
            }
        } else if active.len() < desired {
            let mut missing = desired - active.len();
            for index in 0..spec.ports.count {
                if missing == 0 {
                    break;
                }
                if state.replicas.contains_key(&index) {
                    continue;
                }
                missing -= 1;
                let now = Timestamp::now();
                let (stop, stop_rx) = watch::channel(false);
                let outstanding = Arc::new(AtomicUsize::new(0));
                state.replicas.insert(
                    index,
                    Replica {
                        info: ReplicaInfo {
                            index,
                            name: spec.replica_name(index),
                            port: spec.port_of(index),
                            pgid: None,
                            phase: Phase::Pending,
                            ready: false,
                            created: now,
                            ready_transition: now,
                            restarts: 0,
                            deletion: None,
                            outstanding: 0,
                        },
                        outstanding: Arc::clone(&outstanding),
                        stop,
                    },
                );
                let this = self.clone();
                tokio::spawn(async move { this.supervise(index, stop_rx, outstanding).await });
            }
            if missing > 0 {
                // Validation keeps maxReplicas within ports.count; stopping replicas
                // still hold their ports until they are gone.
                tracing::warn!(
                    missing,
                    "No free port for more replicas until stopping ones are gone."
                );
            }
        }
    }

    fn update(&self, index: u16, f: impl FnOnce(&mut ReplicaInfo)) {
        if let Some(r) = self.lock().replicas.get_mut(&index) {
            f(&mut r.info);
        }
    }

    /// One replica's life: start, probe, restart after crashes, stop when told.
    async fn supervise(
        self,
        index: u16,
        mut stop: watch::Receiver<bool>,
        outstanding: Arc<AtomicUsize>,
    ) {
        let spec = &self.inner.spec;
        let port = spec.port_of(index);
        let mut backoff = spec.restart_backoff.initial;
        loop {
            if *stop.borrow() {
                break;
            }
            let started = Instant::now();
            let mut cmd = tokio::process::Command::new("/bin/sh");
            cmd.arg("-c")
                .arg(spec.command_for(index, port))
                .envs(&spec.env)
                .env("PORT", port.to_string())
                .env("REPLICA", index.to_string())
                .env("POD_NAME", spec.replica_name(index))
                .stdin(std::process::Stdio::null())
                .process_group(0)
                .kill_on_drop(false);
            let spawned = cmd.spawn();
            let mut child = match spawned {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(replica = index, error = %e, "Cannot start replica.");
                    if !self.crashed(index, &mut backoff, started, &mut stop).await {
                        break;
                    }
                    continue;
                }
            };
            let Some(pgid) = child.id() else {
                continue;
            };
            self.inner.guard.add(pgid);
            self.inner.started.fetch_add(1, Ordering::Relaxed);
            self.update(index, |r| r.pgid = Some(pgid));
            let mut ticker = tokio::time::interval(spec.readiness.period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failures = 0u32;
            let stopped = loop {
                tokio::select! {
                    biased;
                    _ = stop.changed() => break true,
                    status = child.wait() => {
                        tracing::warn!(replica = index, status = ?status.ok(), "Replica exited.");
                        break false;
                    }
                    _ = ticker.tick() => {
                        let ok = self.probe(port).await;
                        failures = if ok { 0 } else { failures.saturating_add(1) };
                        self.readiness(index, ok, failures);
                    }
                }
            };
            if stopped {
                self.stop(index, pgid, &mut child, &outstanding).await;
                break;
            }
            // Crashed: clear the group's stragglers before starting again.
            signal_group(pgid, Signal::KILL);
            self.inner.guard.remove(pgid);
            if !self.crashed(index, &mut backoff, started, &mut stop).await {
                break;
            }
        }
        self.lock().replicas.remove(&index);
        self.inner.changed.notify_waiters();
    }

    /// Marks a crash and waits out the backoff; `false` when told to stop meanwhile.
    async fn crashed(
        &self,
        index: u16,
        backoff: &mut Duration,
        started: Instant,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let b = self.inner.spec.restart_backoff;
        // The kubelet forgets the backoff after a container ran for long enough.
        if started.elapsed() >= b.max.saturating_mul(2) {
            *backoff = b.initial;
        }
        self.inner.restarts.fetch_add(1, Ordering::Relaxed);
        let now = Timestamp::now();
        self.update(index, |r| {
            r.restarts = r.restarts.saturating_add(1);
            r.pgid = None;
            if r.ready {
                r.ready = false;
                r.ready_transition = now;
            }
        });
        self.inner.changed.notify_waiters();
        let wait = *backoff;
        *backoff = backoff.saturating_mul(2).min(b.max);
        tokio::select! {
            _ = stop.changed() => false,
            () = tokio::time::sleep(wait) => !*stop.borrow(),
        }
    }

    fn readiness(&self, index: u16, ok: bool, failures: u32) {
        let threshold = self.inner.spec.readiness.failure_threshold;
        let now = Timestamp::now();
        let mut flipped = false;
        self.update(index, |r| {
            if ok {
                r.phase = Phase::Running;
                if !r.ready {
                    r.ready = true;
                    r.ready_transition = now;
                    flipped = true;
                }
            } else if r.ready && failures >= threshold {
                r.ready = false;
                r.ready_transition = now;
                flipped = true;
            }
        });
        if flipped {
            tracing::info!(replica = index, ready = ok, "Readiness changed.");
            self.inner.changed.notify_waiters();
        }
    }

    /// HTTP GET of the readiness path: 200–399 is ready (the kubelet's httpGet probe).
    async fn probe(&self, port: u16) -> bool {
        let spec = &self.inner.spec;
        let Ok(uri) =
            format!("http://127.0.0.1:{port}{}", spec.readiness.path).parse::<hyper::Uri>()
        else {
            return false;
        };
        match tokio::time::timeout(spec.readiness.timeout, self.inner.probe.get(uri)).await {
            Ok(Ok(resp)) => (200..400).contains(&resp.status().as_u16()),
            _ => false,
        }
    }

    /// Graceful stop: already out of rotation; wait for the proxied requests to finish,
    /// then SIGTERM the group, then SIGKILL it when the stop timeout is up.
    async fn stop(
        &self,
        index: u16,
        pgid: u32,
        child: &mut tokio::process::Child,
        outstanding: &AtomicUsize,
    ) {
        let deadline = tokio::time::Instant::now() + self.inner.spec.stop_timeout;
        while outstanding.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        signal_group(pgid, Signal::TERM);
        let exited = tokio::time::timeout_at(deadline, child.wait())
            .await
            .is_ok();
        if !exited {
            tracing::warn!(replica = index, "Replica did not stop in time: SIGKILL.");
        }
        // The leader may be gone with workers left: the group goes as a whole.
        signal_group(pgid, Signal::KILL);
        let _ = child.wait().await;
        self.inner.guard.remove(pgid);
    }

    /// The replicas as pods (`app=NAME`), stopping ones with a deletion timestamp.
    pub fn pods(&self) -> Vec<Pod> {
        let spec = &self.inner.spec;
        let requests: BTreeMap<_, _> = spec.resources.requests.clone();
        self.replicas()
            .into_iter()
            .map(|r| Pod {
                name: r.name,
                labels: [(APP_LABEL.to_owned(), spec.name.clone())].into(),
                phase: match r.phase {
                    Phase::Pending => "Pending".into(),
                    Phase::Running => "Running".into(),
                },
                ready: Some(r.ready),
                start_time: Some(r.created),
                ready_transition_time: Some(r.ready_transition),
                deletion_timestamp: r.deletion,
                containers: vec![Container {
                    name: spec.name.clone(),
                    resources: (!requests.is_empty()).then(|| ResourceRequirements {
                        requests: Some(requests.clone()),
                        limits: None,
                    }),
                    restart_policy: None,
                }],
                ..Pod::default()
            })
            .collect()
    }

    fn check_target(&self, hpa: &HorizontalPodAutoscaler) -> Result<(), TargetError> {
        let r = &hpa.spec.scale_target_ref;
        if r.name != self.inner.spec.name {
            return Err(TargetError::Permanent(format!(
                "scaleTargetRef {} {:?} is not the local deployment {:?}",
                r.kind, r.name, self.inner.spec.name
            )));
        }
        Ok(())
    }
}

/// Which of two replicas to stop first, as the ReplicaSet controller picks pods to
/// delete (`getPodsToDelete` sorts by `controller.ActivePodsWithRanks`,
/// pkg/controller/controller_utils.go): Pending before Running; not ready before
/// ready; ready for less time before ready for longer; more restarts before fewer;
/// newer before older. (All replicas share one node, so the node rank is equal;
/// exact times are compared, as before `LogarithmicScaleDown` bucketed them.) Ties:
/// higher index first.
pub fn deletion_order(a: &ReplicaInfo, b: &ReplicaInfo) -> std::cmp::Ordering {
    a.phase
        .cmp(&b.phase)
        .then(a.ready.cmp(&b.ready))
        .then_with(|| {
            if a.ready && b.ready {
                b.ready_transition.cmp(&a.ready_transition)
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .then(b.restarts.cmp(&a.restarts))
        .then(b.created.cmp(&a.created))
        .then(b.index.cmp(&a.index))
}

impl ScaleTarget for ReplicaSet {
    async fn get_scale(&self, hpa: &HorizontalPodAutoscaler) -> Result<Scale, TargetError> {
        self.check_target(hpa)?;
        let state = self.lock();
        let live = state
            .replicas
            .values()
            .filter(|r| r.info.deletion.is_none())
            .count();
        Ok(Scale {
            spec_replicas: state.desired,
            status_replicas: i32::try_from(live).unwrap_or(i32::MAX),
            selector: Some(format!("{APP_LABEL}={}", self.inner.spec.name)),
        })
    }

    async fn list_pods(
        &self,
        hpa: &HorizontalPodAutoscaler,
        _selector: Option<&str>,
    ) -> Result<Vec<Pod>, TargetError> {
        self.check_target(hpa)?;
        Ok(self.pods())
    }

    async fn set_replicas(
        &self,
        hpa: &HorizontalPodAutoscaler,
        replicas: i32,
    ) -> Result<(), TargetError> {
        self.check_target(hpa)?;
        let max = i32::from(self.inner.spec.ports.count);
        if !(0..=max).contains(&replicas) {
            return Err(TargetError::Permanent(format!(
                "{replicas} replicas: the local deployment has ports for 0 to {max} (ports.count)"
            )));
        }
        self.scale_to(replicas);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(index: u16, phase: Phase, ready: bool, secs: i64, restarts: u32) -> ReplicaInfo {
        let t = Timestamp::from_second(1_700_000_000 + secs).expect("valid");
        ReplicaInfo {
            index,
            name: format!("r-{index}"),
            port: 1,
            pgid: None,
            phase,
            ready,
            created: t,
            ready_transition: t,
            restarts,
            deletion: None,
            outstanding: 0,
        }
    }

    #[test]
    fn victims_in_replicaset_order() {
        let mut v = [
            info(0, Phase::Running, true, 0, 0),
            info(1, Phase::Running, true, 10, 0),
            info(2, Phase::Running, false, 5, 0),
            info(3, Phase::Pending, false, 1, 0),
            info(4, Phase::Running, true, 10, 2),
        ];
        v.sort_by(deletion_order);
        let order: Vec<u16> = v.iter().map(|r| r.index).collect();
        // Pending, then unready, then the most recently ready (restarts break the tie),
        // then the oldest last.
        assert_eq!(order, [3, 2, 4, 1, 0]);
    }
}
