//! [`Controller`]: one task per autoscaler, each syncing on its period (with jitter),
//! backing off after failures, taking spec updates between syncs, idle while another
//! instance holds the lease, and finishing its current sync on shutdown.
//!
//! As in kube-controller-manager, one autoscaler is never synced by two workers at
//! once, and an update of the object does not trigger an extra sync: it is taken at the
//! next one (`enqueueHPA` adds the key with the resync delay).
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::history::History;
use podscale_core::{Autoscaler, ControllerSettings};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::recorder::Recorder;
use crate::source::MetricSource;
use crate::stats::Stats;
use crate::sync::{LoopConfig, Parts, Persisted, Retry, SyncReport};
use crate::target::{Key, ScaleTarget};

/// Per-autoscaler settings beyond the HPA spec (the `podscale:` block of our CRD).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutoscalerOptions {
    /// Overrides the loop's sync period for this autoscaler.
    pub sync_period: Option<Duration>,
    /// Overrides the controller settings (tolerance, windows, …) for this autoscaler.
    pub settings: Option<ControllerSettings>,
}

/// A change to the set of autoscalers.
#[derive(Debug, Clone)]
pub enum Update {
    /// Create or change an autoscaler. `history` restores the controller's memory (e.g.
    /// from the object's status) when this instance does not know the autoscaler yet.
    Apply {
        hpa: Box<HorizontalPodAutoscaler>,
        history: Option<History>,
        options: AutoscalerOptions,
    },
    /// The autoscaler is gone: forget it (upstream deletes its recommendations and
    /// scale events).
    Delete(Key),
    /// The object cannot be used as written (an invalid `podscale:` block, say): stop
    /// syncing it, and say why where its user looks — a `Warning` event and
    /// `ScalingActive=False` with [`INVALID_OPTIONS`] in its status — rather than only
    /// in the controller's log.
    Invalid {
        hpa: Box<HorizontalPodAutoscaler>,
        message: String,
    },
}

/// The reason of the event and condition for an [`Update::Invalid`] autoscaler.
pub const INVALID_OPTIONS: &str = "InvalidOptions";

/// What the controller knows of one autoscaler, for status views.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// The object, with the status last committed.
    pub hpa: HorizontalPodAutoscaler,
    pub history: History,
    pub last: Option<SyncReport>,
    pub syncs: u64,
}

#[derive(Debug)]
struct Shared<T, M, R, C> {
    target: T,
    metrics: M,
    recorder: R,
    clock: C,
    config: LoopConfig,
    settings: ControllerSettings,
    stats: Stats,
    views: Mutex<HashMap<Key, View>>,
    may_write: watch::Receiver<bool>,
}

/// The control loop over many autoscalers.
#[derive(Debug)]
pub struct Controller<T, M, R, C> {
    shared: Arc<Shared<T, M, R, C>>,
}

impl<T, M, R, C> Clone for Controller<T, M, R, C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

enum TaskMsg {
    Apply(Box<HorizontalPodAutoscaler>, AutoscalerOptions),
}

impl<T: ScaleTarget, M: MetricSource, R: Recorder, C: Clock> Controller<T, M, R, C> {
    /// A controller that may always write (no leader election).
    pub fn new(
        target: T,
        metrics: M,
        recorder: R,
        clock: C,
        config: LoopConfig,
        settings: ControllerSettings,
    ) -> Self {
        let (tx, rx) = watch::channel(true);
        // Nobody revokes the permission: keep the sender alive with the receiver.
        std::mem::forget(tx);
        Self::with_leadership(target, metrics, recorder, clock, config, settings, rx)
    }

    /// A controller that writes only while `may_write` is `true` (the leader lease is
    /// held); while it is `false`, autoscalers are not synced at all.
    pub fn with_leadership(
        target: T,
        metrics: M,
        recorder: R,
        clock: C,
        config: LoopConfig,
        settings: ControllerSettings,
        may_write: watch::Receiver<bool>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                target,
                metrics,
                recorder,
                clock,
                config,
                settings,
                stats: Stats::default(),
                views: Mutex::default(),
                may_write,
            }),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn target(&self) -> &T {
        &self.shared.target
    }

    pub fn recorder(&self) -> &R {
        &self.shared.recorder
    }

    /// What is known of every autoscaler, by key.
    pub fn views(&self) -> Vec<(Key, View)> {
        let mut v: Vec<(Key, View)> = self
            .lock_views()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    pub fn view(&self, key: &Key) -> Option<View> {
        self.lock_views().get(key).cloned()
    }

    fn lock_views(&self) -> std::sync::MutexGuard<'_, HashMap<Key, View>> {
        self.shared
            .views
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn parts(&self) -> Parts<'_, T, M, R, C> {
        let s = &*self.shared;
        Parts {
            target: &s.target,
            metrics: &s.metrics,
            recorder: &s.recorder,
            clock: &s.clock,
            config: &s.config,
            stats: &s.stats,
            may_write: &s.may_write,
        }
    }

    /// One sync of one autoscaler, outside the loop (one-shot runs and tests).
    pub async fn sync_once(&self, autoscaler: &mut Autoscaler) -> SyncReport {
        let key = Key::of(autoscaler.hpa());
        let mut persisted = Persisted::default();
        self.parts().sync(&key, autoscaler, &mut persisted).await
    }

    /// Runs until `shutdown` turns `true`: applies `updates` and syncs every autoscaler
    /// on its period. On shutdown each autoscaler finishes the sync it is in (every call
    /// in it has a timeout), then this returns.
    pub async fn run(&self, mut updates: mpsc::Receiver<Update>, shutdown: watch::Receiver<bool>) {
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut senders: HashMap<Key, mpsc::Sender<TaskMsg>> = HashMap::new();
        let mut stop = shutdown.clone();
        let mut updates_open = true;
        loop {
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
                update = updates.recv(), if updates_open => match update {
                    None => updates_open = false,
                    Some(Update::Apply { hpa, history, options }) => {
                        let key = Key::of(&hpa);
                        if let Some(tx) = senders.get(&key)
                            && tx.send(TaskMsg::Apply(hpa.clone(), options.clone())).await.is_ok()
                        {
                            continue;
                        }
                        let (tx, rx) = mpsc::channel(8);
                        senders.insert(key.clone(), tx);
                        let this = self.clone();
                        let shutdown = shutdown.clone();
                        tasks.spawn(async move {
                            this.autoscaler_task(key, *hpa, history, options, rx, shutdown).await;
                        });
                    }
                    Some(Update::Delete(key)) => {
                        // Dropping the sender ends that task after its current sync.
                        senders.remove(&key);
                        self.lock_views().remove(&key);
                    }
                    Some(Update::Invalid { hpa, message }) => {
                        let key = Key::of(&hpa);
                        senders.remove(&key);
                        self.lock_views().remove(&key);
                        self.record_invalid(&key, &hpa, &message).await;
                    }
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        drop(senders);
        while tasks.join_next().await.is_some() {}
    }

    /// Writes why an autoscaler is not synced: a `Warning` event and, if the status
    /// does not say so already, `ScalingActive=False/InvalidOptions`.
    async fn record_invalid(&self, key: &Key, hpa: &HorizontalPodAutoscaler, message: &str) {
        let s = &*self.shared;
        if !*s.may_write.borrow() {
            return;
        }
        tracing::warn!(autoscaler = %key, error = %message, "Not syncing this autoscaler.");
        let now = s.clock.now();
        let mut status = hpa.status.clone().unwrap_or_default();
        let mut conds = status.conditions.take().unwrap_or_default();
        let condition = podscale_core::conditions::new(
            podscale_core::conditions::SCALING_ACTIVE,
            false,
            INVALID_OPTIONS,
            message,
        );
        let unchanged = conds.iter().any(|c| {
            c.type_ == condition.type_
                && c.status == condition.status
                && c.reason == condition.reason
                && c.message == condition.message
        });
        podscale_core::conditions::set(&mut conds, condition, now);
        status.conditions = Some(conds);
        let timeout = s.config.call_timeout;
        if !unchanged {
            let history = History::default();
            let write = s.recorder.write_status(key, hpa, &status, &history);
            if let Ok(Err(e)) | Err(e) = crate::clock::timeout(&s.clock, timeout, write)
                .await
                .map_err(|e| crate::recorder::RecordError(e.to_string()))
            {
                tracing::warn!(autoscaler = %key, error = %e, "Cannot write the autoscaler's status.");
            }
        }
        let event = podscale_core::conditions::Event::warning(INVALID_OPTIONS, message);
        let _ = crate::clock::timeout(&s.clock, timeout, s.recorder.event(key, hpa, &event)).await;
    }

    async fn autoscaler_task(
        &self,
        key: Key,
        hpa: HorizontalPodAutoscaler,
        history: Option<History>,
        options: AutoscalerOptions,
        mut rx: mpsc::Receiver<TaskMsg>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let s = &*self.shared;
        let settings = options
            .settings
            .clone()
            .unwrap_or_else(|| s.settings.clone());
        let mut period = options.sync_period.unwrap_or(s.config.sync_period);
        let mut autoscaler = Autoscaler::with_history(hpa, history.unwrap_or_default(), settings);
        let mut persisted = Persisted::default();
        let mut backoff = Backoff::new(s.config.backoff_base, s.config.backoff_max);
        let mut jitter = Jitter::new(&key);
        let mut syncs = 0u64;
        // The first sync comes at once, spread by jitter so a restart with thousands of
        // autoscalers does not read every metric in the same instant.
        let first = period.mul_f64(s.config.jitter.clamp(0.0, 1.0) * jitter.next());
        let mut sleep = Box::pin(s.clock.sleep(first));
        loop {
            tokio::select! {
                biased;
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
                msg = rx.recv() => match msg {
                    Some(TaskMsg::Apply(hpa, options)) => {
                        autoscaler.update_hpa(*hpa);
                        if let Some(settings) = options.settings {
                            autoscaler.set_settings(settings);
                        }
                        period = options.sync_period.unwrap_or(s.config.sync_period);
                    }
                    None => break,
                },
                () = sleep.as_mut() => {
                    let report = self.parts().sync(&key, &mut autoscaler, &mut persisted).await;
                    syncs += 1;
                    let delay = match report.retry {
                        Retry::Period | Retry::NotLeader => {
                            backoff.reset();
                            period.mul_f64(1.0 + s.config.jitter.clamp(0.0, 1.0) * jitter.next())
                        }
                        Retry::MetricBackoff => backoff.fail(period),
                        Retry::ApiBackoff => backoff.fail(Duration::MAX),
                    };
                    tracing::debug!(autoscaler = %key, ?delay, retry = ?report.retry, "Synced.");
                    if report.retry != Retry::NotLeader {
                        self.lock_views().insert(key.clone(), View {
                            hpa: autoscaler.hpa().clone(),
                            history: autoscaler.history().clone(),
                            last: Some(report),
                            syncs,
                        });
                    }
                    sleep = Box::pin(s.clock.sleep(delay));
                }
            }
        }
    }
}

/// A small deterministic generator per autoscaler (xorshift64*): jitter needs spread,
/// not cryptographic randomness, and determinism keeps tests reproducible.
#[derive(Debug, Clone)]
struct Jitter(u64);

impl Jitter {
    fn new(key: &Key) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        Self(h.finish() | 1)
    }

    /// A number in [0, 1).
    fn next(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}
