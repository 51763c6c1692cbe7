//! End to end on loopback, with real processes: the fixture server (this test binary
//! run as a replica, see `common`), the real proxy, the real control loop on a 1 s
//! sync period. Bounds on waiting are generous; nothing asserts on wall-clock speed.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{client, get, server_command, wait_for};
use podscale_local::proxy::Proxy;
use podscale_local::run::{self, RunOptions};
use podscale_local::{LocalDeployment, ReplicaSet};

/// Not a test: the entry of the fixtures this binary runs as (see `common`).
#[test]
#[ignore = "fixture entry point, run by the tests themselves"]
fn fixture_entry() {
    common::fixture_main();
}

/// A deployment of the fixture server on a port range of its own per test (tests of
/// this binary run in parallel).
fn spec(base: u16, extra: &str) -> LocalDeployment {
    let text = format!(
        "name: llm\ncommand: \"{}\"\nports: {{ base: {base}, count: 8 }}\nreadiness: {{ period: 100ms, timeout: 1s, failureThreshold: 1 }}\nfront: {{ port: 1 }}\nstatus: {{ port: 2 }}\nstopTimeout: 10s\nrestartBackoff: {{ initial: 100ms, max: 1s }}\n{extra}",
        server_command().replace('"', "\\\"")
    );
    LocalDeployment::from_source(&text, "test.yaml").unwrap()
}

const HPA: &str = r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: { name: llm }
spec:
  scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: llm }
  minReplicas: 1
  maxReplicas: 4
  metrics:
    - type: Pods
      pods:
        metric: { name: inference_queue_depth }
        target: { type: AverageValue, averageValue: "2" }
  behavior:
    scaleUp: { stabilizationWindowSeconds: 0 }
    scaleDown:
      stabilizationWindowSeconds: 0
      policies: [{ type: Pods, value: 4, periodSeconds: 1 }]
"#;

fn options() -> RunOptions {
    RunOptions {
        loop_config: podscale_runtime::LoopConfig {
            sync_period: Duration::from_secs(1),
            jitter: 0.0,
            ..Default::default()
        },
        ephemeral_ports: true,
        ..Default::default()
    }
}

fn ready(set: &ReplicaSet) -> usize {
    set.replicas()
        .iter()
        .filter(|r| r.ready && r.deletion.is_none())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scales_up_under_load_and_down_without_a_failed_request() {
    let hpa = run::parse_hpa(HPA, "hpa.yaml").unwrap();
    let running = run::start(spec(21100, ""), hpa, Default::default(), options())
        .await
        .unwrap();
    let set = running.replicas().clone();
    wait_for(30, "the first replica to be ready", || ready(&set) == 1).await;
    let front = format!("http://{}", running.front_addr());

    // Load: 8 clients always waiting on a 300 ms request; queue depth 8 over 1 replica
    // wants ceil(8 / 2) = 4 replicas.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let load = |clients: usize, ms: u64| {
        (0..clients)
            .map(|_| {
                let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
                let url = format!("{front}/work?ms={ms}");
                tokio::spawn(async move {
                    let c = client();
                    while !stop.load(Ordering::SeqCst) {
                        match get(&c, &url).await {
                            Ok((200, _)) => ok.fetch_add(1, Ordering::SeqCst),
                            other => {
                                eprintln!("failed request: {other:?}");
                                failed.fetch_add(1, Ordering::SeqCst)
                            }
                        };
                    }
                })
            })
            .collect::<Vec<_>>()
    };
    let heavy = load(8, 300);
    wait_for(60, "a scale-up to 4 ready replicas", || ready(&set) == 4).await;
    let doc = running.status_doc();
    let status = doc.autoscalers[0].hpa.status.clone().unwrap();
    assert!(status.desired_replicas >= 2, "{status:?}");

    // Light load while scaling down: in flight requests to stopped replicas drain.
    stop.store(true, Ordering::SeqCst);
    for h in heavy {
        h.await.unwrap();
    }
    stop.store(false, Ordering::SeqCst);
    let light = load(1, 50);
    wait_for(60, "a scale-down to 1 replica", || {
        set.replicas().len() == 1 && set.desired() == 1
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for h in light {
        h.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0, "failed proxied requests");
    assert!(ok.load(Ordering::SeqCst) > 10);
    let doc = running.status_doc();
    assert_eq!(doc.proxy.failed, 0);
    let reasons: Vec<&str> = doc.autoscalers[0]
        .events
        .iter()
        .map(|e| e.reason.as_str())
        .collect();
    assert!(reasons.contains(&"SuccessfulRescale"), "{reasons:?}");
    // The status API over HTTP, rendered as kubectl would.
    let client = podscale_local::status::StatusClient::new(&running.status_addr().to_string());
    let fetched = client.status().await.unwrap();
    assert_eq!(fetched.autoscalers.len(), 1);
    let table = podscale_local::render::get(&fetched, true);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME   REFERENCE        TARGETS"),
        "{table}"
    );
    assert!(lines[1].starts_with("llm    Deployment/llm   "), "{table}");
    let described = podscale_local::render::describe(&fetched, &fetched.autoscalers[0]);
    assert!(
        described.contains("\"inference_queue_depth\" on pods:"),
        "{described}"
    );
    assert!(described.contains("SuccessfulRescale"), "{described}");
    assert!(described.contains("llm-0"), "{described}");
    // Its own /metrics, scraped and parsed as Prometheus would (both formats).
    let (code, body) = get(
        &common::client(),
        &format!("http://{}/metrics", running.status_addr()),
    )
    .await
    .unwrap();
    assert_eq!(code, 200, "{body}");
    use podscale_metrics::exposition::{self, Entry, Format};
    assert!(
        exposition::parse(&body, Format::OpenMetrics).is_ok(),
        "{body}"
    );
    let entries = exposition::parse(&body, Format::Text).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| {
        entries
            .iter()
            .find_map(|e| match e {
                Entry::Sample(s)
                    if s.name == name
                        && labels
                            .iter()
                            .all(|(k, v)| s.labels.get(k).as_deref() == Some(*v)) =>
                {
                    Some(s.value)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{body}"))
    };
    assert!(value("podscale_syncs_total", &[]) >= 2.0);
    assert!(value("podscale_decisions_total", &[]) >= 2.0);
    assert!(value("podscale_rescales_total", &[]) >= 2.0);
    let llm = [("namespace", "default"), ("name", "llm")];
    assert_eq!(value("podscale_autoscaler_desired_replicas", &llm), 1.0);
    // The replicas the last sync found: 1, or 4 if that sync was the scale-down's.
    let current = value("podscale_autoscaler_current_replicas", &llm);
    assert!(current == 1.0 || current == 4.0, "{current}");
    let depth = value(
        "podscale_autoscaler_metric_current",
        &[
            ("name", "llm"),
            ("metric", "inference_queue_depth"),
            ("type", "Pods"),
            ("field", "averageValue"),
        ],
    );
    assert!(depth >= 0.0, "{depth}");
    #[allow(clippy::cast_precision_loss)] // a test's request count
    let proxied = ok.load(Ordering::SeqCst) as f64;
    let outcome = |o: &str| value("podscale_local_proxy_requests_total", &[("outcome", o)]);
    assert_eq!(outcome("proxied"), proxied);
    assert_eq!(
        outcome("no_replica") + outcome("timeout") + outcome("failed"),
        0.0
    );
    assert_eq!(value("podscale_local_proxy_in_flight", &[]), 0.0);
    assert_eq!(value("podscale_local_replica_restarts_total", &[]), 0.0);
    assert_eq!(value("podscale_local_ready_replicas", &[]), 1.0);
    assert_eq!(
        value("podscale_local_replicas", &[("phase", "running")]),
        1.0
    );

    let groups: Vec<u32> = set.replicas().iter().filter_map(|r| r.pgid).collect();
    running.stop().await;
    assert!(set.replicas().is_empty());
    for g in groups {
        assert!(
            !podscale_local::guard::group_alive(g),
            "group {g} left running"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_replica_is_restarted_and_counted() {
    let set = ReplicaSet::start(spec(21200, ""), 1).unwrap();
    wait_for(30, "the replica to be ready", || ready(&set) == 1).await;
    let first = set.replicas()[0].clone();
    let _ = get(&client(), &format!("http://127.0.0.1:{}/crash", first.port)).await;
    wait_for(30, "the restart", || {
        set.replicas()
            .first()
            .is_some_and(|r| r.restarts == 1 && r.ready && r.pgid != first.pgid)
    })
    .await;
    assert_eq!(set.restarts(), 1);
    // Same slot: name and port are kept, as a container restarts inside its pod.
    let now = set.replicas()[0].clone();
    assert_eq!(
        (now.name.as_str(), now.port),
        (first.name.as_str(), first.port)
    );
    assert_eq!(set.pods()[0].phase, "Running");
    // Resource metrics of the running replica, from /proc.
    let hpa = run::parse_hpa(HPA, "hpa.yaml").unwrap();
    let metrics = podscale_local::LocalMetrics::new(set.clone(), Default::default(), &hpa).unwrap();
    let list = metrics.resource_metrics(jiff::Timestamp::now());
    assert_eq!(list.pods.len(), 1);
    let usage = &list.pods[0].containers[0].usage;
    assert!(usage["memory"].value() > 1024 * 1024, "{usage:?}");
    assert!(usage.contains_key("cpu"));
    set.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_routes_to_ready_replicas_only_and_retries_refusals() {
    let set = ReplicaSet::start(spec(21300, ""), 2).unwrap();
    wait_for(30, "two ready replicas", || ready(&set) == 2).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = format!("http://{}", listener.local_addr().unwrap());
    let proxy = Arc::new(Proxy::new(set.clone()));
    let counters = proxy.counters();
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(proxy.serve(listener, stop_rx));
    let c = client();

    // Both replicas serve while both are ready.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (s, who) = get(&c, &format!("{front}/whoami")).await.unwrap();
        assert_eq!(s, 200);
        seen.insert(who);
    }
    // Least outstanding with nothing outstanding picks the lowest index; concurrent
    // requests spread.
    let reqs: Vec<_> = (0..4)
        .map(|_| {
            let url = format!("{front}/work?ms=200");
            tokio::spawn(async move { get(&client(), &url).await.unwrap().1 })
        })
        .collect();
    for r in reqs {
        seen.insert(
            r.await
                .unwrap()
                .trim()
                .trim_start_matches("done ")
                .to_owned(),
        );
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    // llm-1 turns unready: no request reaches it any more.
    let port1 = set.replicas()[1].port;
    get(&c, &format!("http://127.0.0.1:{port1}/set?healthy=0"))
        .await
        .unwrap();
    wait_for(30, "llm-1 to be unready", || {
        set.replicas().iter().any(|r| r.index == 1 && !r.ready)
    })
    .await;
    for _ in 0..30 {
        let (s, who) = get(&c, &format!("{front}/whoami")).await.unwrap();
        assert_eq!((s, who.as_str()), (200, "llm-0"));
    }

    // llm-1 ready again but refusing (503): every request still succeeds, on llm-0.
    get(
        &c,
        &format!("http://127.0.0.1:{port1}/set?healthy=1&refuse=1"),
    )
    .await
    .unwrap();
    wait_for(30, "llm-1 to be ready", || ready(&set) == 2).await;
    let work = format!("{front}/work?ms=50");
    for _ in 0..10 {
        // Concurrent pairs, so that llm-1 (then least loaded) is picked first.
        let a = get(&c, &work);
        let b = get(&c, &work);
        let (a, b) = tokio::join!(a, b);
        assert_eq!(a.unwrap(), (200, "done llm-0\n".into()));
        assert_eq!(b.unwrap(), (200, "done llm-0\n".into()));
    }
    assert!(counters.snapshot().retries > 0);
    assert_eq!(counters.snapshot().failed, 0);

    // Server-sent events stream through as they are produced.
    let resp = c
        .get(format!("{front}/stream?n=3&ms=300").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let first = http_body_util::BodyExt::frame(&mut body)
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(&first[..], b"data: 0\n\n");
    // The stream counts as in flight until it ends.
    assert!(set.replicas().iter().any(|r| r.outstanding == 1));
    let rest = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&rest[..], b"data: 1\n\ndata: 2\n\n");
    set.shutdown().await;
}

/// Runs this binary as a supervisor of 2 replicas, each forking a worker that ignores
/// SIGTERM; returns the child, the guard's pid and the replicas' process groups.
async fn supervisor(base: u16, tag: &str) -> (std::process::Child, u32, Vec<u32>) {
    let out = std::env::temp_dir().join(format!("podscale-local-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let spec = format!(
        "name: llm\ncommand: \"FIXTURE_WORKER=1 {}\"\nports: {{ base: {base}, count: 4 }}\nreadiness: {{ period: 100ms }}\nfront: {{ port: 1 }}\nstatus: {{ port: 2 }}\nstopTimeout: 2s\n",
        server_command().replace('"', "\\\"")
    );
    let hpa = HPA.replace("minReplicas: 1", "minReplicas: 2");
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["fixture_entry", "--exact", "--ignored", "--nocapture", "-q"])
        .env(common::ENV, "supervise")
        .env("PODSCALE_FIXTURE_SPEC", spec)
        .env("PODSCALE_FIXTURE_HPA", hpa)
        .env("PODSCALE_FIXTURE_OUT", &out)
        .spawn()
        .unwrap();
    wait_for(60, "the supervisor's replicas", || out.exists()).await;
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let mut ids = text.split_whitespace().map(|s| s.parse::<u32>().unwrap());
    let guard = ids.next().unwrap();
    let groups: Vec<u32> = ids.collect();
    assert_eq!(groups.len(), 2, "{text}");
    for &g in &groups {
        // The server and its forked worker.
        assert!(podscale_local::procfs::group_members(g).count() >= 2);
    }
    (child, guard, groups)
}

fn all_gone(groups: &[u32]) -> bool {
    groups
        .iter()
        .all(|&g| !podscale_local::guard::group_alive(g))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_orphans_after_sigkill_of_the_supervisor() {
    let (mut child, guard, groups) = supervisor(21400, "kill").await;
    child.kill().unwrap(); // SIGKILL: no handler runs.
    child.wait().unwrap();
    wait_for(30, "the orphan guard to kill every replica group", || {
        all_gone(&groups)
    })
    .await;
    wait_for(30, "the guard to exit", || {
        !std::path::Path::new(&format!("/proc/{guard}/stat")).exists()
            || podscale_local::procfs::group_members(guard)
                .next()
                .is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_orphans_after_sigterm_of_the_supervisor() {
    let (mut child, _guard, groups) = supervisor(21500, "term").await;
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    // A clean stop: replicas drained and gone before the supervisor exits.
    assert!(status.success(), "{status:?}");
    assert!(all_gone(&groups));
}
