//! Proxy overhead: latency (p50, p99) and requests/s straight to one replica and
//! through the front proxy, same load, printed side by side in one table (one pair of
//! rows per client count). Run (optimised builds give the real figures):
//!
//! ```sh
//! cargo run -p podscale-local --example proxy_bench --release -- [CLIENTS,CLIENTS…] [SECONDS]
//! ```
//!
//! Default: 1 and 16 clients (latency alone, then under concurrency), 5 s each. The
//! replica is this binary run as a minimal HTTP server (`serve PORT`), so the backend
//! is cheap and the difference is the proxy's. Each client waits for its answer
//! before sending again (closed loop), over keep-alive connections.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use podscale_local::LocalDeployment;
use podscale_local::proxy::Proxy;
use podscale_local::replicas::ReplicaSet;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if args.get(1).map(String::as_str) == Some("serve") {
        rt.block_on(serve(args[2].parse().unwrap()));
        return;
    }
    let clients: Vec<usize> = args.get(1).map_or_else(
        || vec![1, 16],
        |s| s.split(',').map(|n| n.parse().unwrap()).collect(),
    );
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    rt.block_on(bench(&clients, secs));
}

async fn serve(port: u16) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    loop {
        let (s, _) = listener.accept().await.unwrap();
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok\n"))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}

async fn load(url: String, clients: usize, secs: u64) -> (Vec<Duration>, f64) {
    let c: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let url: hyper::Uri = url.parse().unwrap();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    let r = c.get(url.clone()).await.unwrap();
                    assert_eq!(r.status(), 200);
                    let _ = r.into_body().collect().await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rps = all.len() as f64 / start.elapsed().as_secs_f64();
    all.sort();
    (all, rps)
}

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() as f64 - 1.0) * p) as usize]
}

async fn bench(clients: &[usize], secs: u64) {
    let exe = std::env::current_exe().unwrap();
    let spec = LocalDeployment::from_source(
        &format!(
            "name: bench\ncommand: \"exec '{}' serve {{port}}\"\nports: {{ base: 24100, count: 1 }}\nreadiness: {{ path: /, period: 100ms }}\nfront: {{ port: 1 }}\nstatus: {{ port: 2 }}\n",
            exe.display()
        ),
        "bench.yaml",
    )
    .unwrap();
    let set = ReplicaSet::start(spec, 1).unwrap();
    while !set.replicas().iter().any(|r| r.ready) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = listener.local_addr().unwrap();
    let proxy = Arc::new(Proxy::new(set.clone()));
    let (_stop, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(proxy.serve(listener, rx));
    println!("1 replica, {secs} s per row, closed-loop clients on keep-alive connections\n");
    println!("| clients | path   |     req/s |      p50 |      p99 |");
    println!("|--------:|:-------|----------:|---------:|---------:|");
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
    for &n in clients {
        let (direct, direct_rps) = load("http://127.0.0.1:24100/".into(), n, secs).await;
        let (proxied, proxied_rps) = load(format!("http://{front}/"), n, secs).await;
        for (name, v, rps) in [
            ("direct", &direct, direct_rps),
            ("proxy", &proxied, proxied_rps),
        ] {
            println!(
                "| {n:>7} | {name:<6} | {rps:>9.0} | {:>8} | {:>8} |",
                us(pct(v, 0.5)),
                us(pct(v, 0.99))
            );
        }
        println!(
            "| {n:>7} | added  | {:>+8.0}% | {:>8} | {:>8} |",
            (proxied_rps / direct_rps - 1.0) * 100.0,
            format!(
                "+{}",
                us(pct(&proxied, 0.5).saturating_sub(pct(&direct, 0.5)))
            ),
            format!(
                "+{}",
                us(pct(&proxied, 0.99).saturating_sub(pct(&direct, 0.99)))
            )
        );
    }
    set.shutdown().await;
}
