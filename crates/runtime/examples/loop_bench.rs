//! How much the control loop costs per autoscaler: N autoscalers (default 10,000) on
//! in-memory targets and metric sources, so what is measured is the loop and the
//! engine, not an API server.
//!
//! 1. Throughput: tokio's clock paused, 10 simulated minutes at a 15 s sync period;
//!    reports syncs per CPU-second.
//! 2. Steady state on the real clock: 30 s at a 15 s sync period (jitter on), reporting
//!    CPU use and peak RSS — what a controller with N autoscalers costs.
//!
//! `cargo run --release -p podscale-runtime --example loop_bench -- [N] [SECONDS]`
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use podscale_core::ControllerSettings;
use podscale_core::api::HorizontalPodAutoscaler;
use podscale_core::observed::{ObservedMetrics, Pod};
use podscale_runtime::controller::Update;
use podscale_runtime::sync::LoopConfig;
use podscale_runtime::{
    AutoscalerOptions, Controller, MemoryRecorder, MetricSource, Scale, ScaleTarget, TargetError,
    TokioClock,
};
use tokio::sync::{mpsc, watch};

/// Every autoscaler's target: 4 ready pods (replicas kept per autoscaler name).
#[derive(Debug, Default)]
struct Targets(std::sync::Mutex<std::collections::HashMap<String, Arc<AtomicI32>>>);

impl Targets {
    fn replicas(&self, hpa: &HorizontalPodAutoscaler) -> Arc<AtomicI32> {
        let name = hpa.metadata.name.clone().unwrap_or_default();
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(m.entry(name).or_insert_with(|| Arc::new(AtomicI32::new(4))))
    }
}

#[derive(Debug, Clone)]
struct Fake(Arc<Targets>, Arc<Vec<Pod>>);

impl ScaleTarget for Fake {
    async fn get_scale(&self, hpa: &HorizontalPodAutoscaler) -> Result<Scale, TargetError> {
        let r = self.0.replicas(hpa).load(Ordering::Relaxed);
        Ok(Scale {
            spec_replicas: r,
            status_replicas: r,
            selector: Some("app=web".into()),
        })
    }
    async fn list_pods(
        &self,
        hpa: &HorizontalPodAutoscaler,
        _: Option<&str>,
    ) -> Result<Vec<Pod>, TargetError> {
        let n = usize::try_from(self.0.replicas(hpa).load(Ordering::Relaxed)).unwrap_or(0);
        Ok(self.1.iter().take(n).cloned().collect())
    }
    async fn set_replicas(&self, hpa: &HorizontalPodAutoscaler, r: i32) -> Result<(), TargetError> {
        self.0.replicas(hpa).store(r, Ordering::Relaxed);
        Ok(())
    }
}

impl MetricSource for Fake {
    async fn read(
        &self,
        _: &HorizontalPodAutoscaler,
        pods: &[Pod],
        now: Timestamp,
    ) -> ObservedMetrics {
        let items: Vec<serde_json::Value> = pods
            .iter()
            .map(|p| serde_json::json!({"podName": p.name, "value": "10", "timestamp": now.to_string()}))
            .collect();
        serde_json::from_value(
            serde_json::json!({"pods": [{"metricName": "queue", "items": items}]}),
        )
        .unwrap_or_default()
    }
}

fn hpa(i: usize) -> HorizontalPodAutoscaler {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("hpa-{i}"), "namespace": "bench"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("d-{i}")},
                 "minReplicas": 1, "maxReplicas": 20,
                 "metrics": [{"type": "Pods", "pods": {"metric": {"name": "queue"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]}
    }))
    .unwrap_or_default()
}

fn pods() -> Vec<Pod> {
    (0..20)
        .map(|i| {
            serde_json::from_value(
                serde_json::json!({"name": format!("p-{i}"), "labels": {"app": "web"},
                "phase": "Running", "ready": true, "startTime": "2024-01-01T00:00:00Z",
                "readyTransitionTime": "2024-01-01T00:00:00Z"}),
            )
            .unwrap_or_default()
        })
        .collect()
}

/// (user + system CPU seconds, peak RSS in MiB) of this process.
fn usage() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

async fn run(n: usize, paused: bool, secs: u64) -> (u64, f64, f64, f64) {
    let fake = Fake(Arc::default(), Arc::new(pods()));
    let config = LoopConfig {
        jitter: if paused { 0.0 } else { 0.1 },
        ..LoopConfig::default()
    };
    let c = Controller::new(
        fake.clone(),
        fake,
        MemoryRecorder::new(10),
        TokioClock::new(),
        config,
        ControllerSettings::default(),
    );
    let (tx, rx) = mpsc::channel(1024);
    let (stop_tx, stop_rx) = watch::channel(false);
    let runner = c.clone();
    let handle = tokio::spawn(async move { runner.run(rx, stop_rx).await });
    for i in 0..n {
        let _ = tx
            .send(Update::Apply {
                hpa: Box::new(hpa(i)),
                history: None,
                options: AutoscalerOptions::default(),
            })
            .await;
    }
    let (cpu0, _) = usage();
    let wall = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let syncs = c.stats().snapshot().syncs;
    let (cpu1, rss) = usage();
    let elapsed = wall.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let _ = handle.await;
    (syncs, cpu1 - cpu0, elapsed, rss)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let rt = |paused: bool| {
        let mut b = tokio::runtime::Builder::new_current_thread();
        b.enable_time();
        if paused {
            b.start_paused(true);
        }
        b.build().expect("runtime")
    };
    let (syncs, cpu, _, rss) = rt(true).block_on(run(n, true, 600));
    println!("| run | autoscalers | syncs | CPU s | syncs per CPU-second | peak RSS |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| paused clock, 10 simulated min | {n} | {syncs} | {cpu:.2} | {:.0} | {rss:.0} MiB |",
        syncs as f64 / cpu.max(1e-9)
    );
    let (syncs, cpu, wall, rss) = rt(false).block_on(run(n, false, secs));
    println!(
        "| real clock, {secs} s at 15 s sync | {n} | {syncs} | {cpu:.2} ({:.1}% of one core) | {:.0} | {rss:.0} MiB |",
        100.0 * cpu / wall,
        syncs as f64 / cpu.max(1e-9)
    );
}
