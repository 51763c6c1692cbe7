//! What `podscale run` costs against an API server: N Autoscalers (default 10,000) at
//! a 15 s sync, through HTTP to the tests' fake API server (`tests/common`), which
//! serves the Autoscalers (list and watch), each target's `/scale` and pods, and the
//! external metrics API.
//!
//! The controller is the real one — `podscale_kube::run::run`: the watch of
//! Autoscalers, KubeTarget, KubeRecorder, the metric source reading
//! `external.metrics.k8s.io`, the admin server — on one thread, as `podscale run`
//! runs it. The fake runs in a child process (this example, started again with
//! `--serve`), so the CPU and memory measured are the controller's alone.
//!
//! The first sync period (the list, first status writes) is a warm-up; then the
//! window (default 60 s: four sync periods, so it includes the history flush every
//! 60 s) is measured: reconciles per second, CPU seconds per reconcile, % of one core,
//! peak RSS, API calls per reconcile by verb and kind.
//!
//! `cargo run --release -p podscale-kube --example fake_api_bench -- [N] [WINDOW_SECONDS]`
#[path = "../tests/common/mod.rs"]
#[allow(dead_code, unused_imports, clippy::all)]
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Deployment, FakeApi, autoscaler};
use podscale_core::ControllerSettings;
use podscale_kube::run::{LoopConfig, RunOptions, run};
use podscale_metrics::config::Config;
use serde_json::Value;

const SYNC: Duration = Duration::from_secs(15);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let n = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
        return serve(n);
    }
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let window = Duration::from_secs(args.get(1).and_then(|a| a.parse().ok()).unwrap_or(60));

    // The fake API server, in a child process; it prints its port when ready and
    // exits when its standard input closes.
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--serve", &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let api: SocketAddr = line.trim().parse()?;
    let result = measure(n, window, api);
    drop(child.stdin.take());
    let _ = child.wait();
    result
}

/// The fake: `n` Deployments `w0…` at 2 replicas with synthesized pods, an Autoscaler
/// for each on the External metric `queue` (AverageValue 10, at 20: steady, as most
/// autoscalers are most of the time).
fn serve(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let api = FakeApi::default();
    {
        let mut s = api.lock();
        s.quiet = true;
        s.synthesize_pods = true;
        s.external.insert("queue".into(), 20);
        for i in 0..n {
            let name = format!("w{i}");
            s.deployments.insert(
                name.clone(),
                Deployment {
                    replicas: 2,
                    resource_version: 1,
                    selector: format!("app={name}"),
                },
            );
            let mut a = autoscaler(&name);
            a["spec"]["scaleTargetRef"]["name"] = name.clone().into();
            s.put_autoscaler(a);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?);
        std::io::stdout().flush()?;
        // Exit when the parent closes our standard input (or dies).
        std::thread::spawn(|| {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            std::process::exit(0);
        });
        api.serve(listener).await
    })?;
    Ok(())
}

/// CPU seconds (user + system) of this process and its peak RSS in MiB.
fn usage() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // utime and stime, fields 14 and 15 of stat(5), in clock ticks (100 per second on
    // Linux).
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (cpu, kib("VmHWM:") / 1024.0)
}

/// `GET path` over plain HTTP/1.0: the body.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").as_bytes())
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default())
}

/// A counter of the controller's `/metrics`.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The fake's calls by `METHOD kind`, watches left out (long-lived).
async fn calls(api: SocketAddr) -> Result<BTreeMap<String, f64>, Box<dyn std::error::Error>> {
    let v: Value = serde_json::from_str(&get(api, "/fake/calls").await?)?;
    Ok(v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !k.starts_with("WATCH"))
                .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(0.0)))
                .collect()
        })
        .unwrap_or_default())
}

fn measure(n: usize, window: Duration, api: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let (_, rss_before) = usage();
    // One thread, as `podscale run` runs.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let admin = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut config = kube::Config::new(format!("http://{api}").parse()?);
        config.default_namespace = "default".into();
        let client = kube::Client::try_from(config)?;
        let opts = RunOptions {
            namespace: None,
            shadow: false,
            shadow_annotate: false,
            lease: None,
            metrics_addr: Some(admin),
            settings: ControllerSettings::default(),
            loop_config: LoopConfig {
                sync_period: SYNC,
                ..LoopConfig::default()
            },
            metrics: Config::default(),
            identity: "bench".into(),
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let controller = tokio::spawn(run(client, opts, stop_rx));
        let started = Instant::now();
        // Warm-up: the list, and every autoscaler's first sync (spread by jitter).
        tokio::time::sleep(SYNC + Duration::from_secs(3)).await;
        let m0 = get(admin, "/metrics").await?;
        let c0 = calls(api).await?;
        let (cpu0, _) = usage();
        let t0 = Instant::now();
        tokio::time::sleep(window).await;
        let m1 = get(admin, "/metrics").await?;
        let c1 = calls(api).await?;
        let (cpu1, peak) = usage();
        let wall = t0.elapsed().as_secs_f64();
        stop_tx.send(true)?;
        let _ = tokio::time::timeout(Duration::from_secs(30), controller).await;

        let synced = counter(&m1, "podscale_autoscalers");
        let syncs = counter(&m1, "podscale_syncs_total") - counter(&m0, "podscale_syncs_total");
        let writes = counter(&m1, "podscale_status_writes_total")
            - counter(&m0, "podscale_status_writes_total");
        let timeouts =
            counter(&m1, "podscale_timeouts_total") - counter(&m0, "podscale_timeouts_total");
        let cpu = cpu1 - cpu0;
        let per_sec = syncs / wall;
        let api_calls: f64 = c1.iter().map(|(k, v)| v - c0.get(k).unwrap_or(&0.0)).sum();
        println!(
            "podscale run against the fake API server over HTTP: {n} Autoscalers, sync every {} s, {wall:.0} s measured after a {:.0} s warm-up",
            SYNC.as_secs(),
            (t0 - started).as_secs_f64()
        );
        println!();
        println!("| figure | value |");
        println!("| --- | --- |");
        println!("| autoscalers known | {synced:.0} |");
        println!(
            "| reconciles per second | {per_sec:.1} (expected {:.1}: N / sync period) |",
            n as f64 / SYNC.as_secs_f64()
        );
        println!(
            "| CPU seconds per reconcile | {:.1} µs |",
            cpu / syncs.max(1.0) * 1e6
        );
        println!("| % of one core | {:.1} % |", cpu / wall * 100.0);
        println!(
            "| reconciles per CPU-second (capacity of one core) | {:.0} |",
            syncs / cpu.max(1e-9)
        );
        println!("| peak RSS | {peak:.0} MiB ({rss_before:.0} MiB before start) |");
        println!(
            "| API calls per reconcile | {:.2} |",
            api_calls / syncs.max(1.0)
        );
        for (k, v) in &c1 {
            let d = v - c0.get(k).unwrap_or(&0.0);
            if d > 0.0 {
                println!("| … {k} | {:.3} |", d / syncs.max(1.0));
            }
        }
        println!("| status writes per reconcile | {:.3} |", writes / syncs.max(1.0));
        println!("| call timeouts | {timeouts:.0} |");
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
