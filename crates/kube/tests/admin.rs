//! The admin server answers /metrics, /healthz and /readyz over real HTTP.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use podscale_kube::admin::{Render, render, serve_on};
use podscale_runtime::stats::StatsSnapshot;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("writes");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("reads");
    out
}

#[tokio::test]
async fn metrics_health_and_readiness() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("addr");
    let ready = Arc::new(AtomicBool::new(false));
    let stats = StatsSnapshot {
        syncs: 7,
        rescales: 2,
        ..StatsSnapshot::default()
    };
    let r: Render = Arc::new(move || render(&stats, &[], true, &|_| None, false));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_on(listener, r, Arc::clone(&ready), async move {
        let _ = stop_rx.await;
    }));
    let m = get(addr, "/metrics").await;
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");
    assert!(m.contains("podscale_syncs_total 7\n"), "{m}");
    assert!(m.contains("podscale_rescales_total 2\n"), "{m}");
    assert!(m.contains("podscale_leader 1\n"), "{m}");
    assert!(!m.contains("shadow_recommended"), "{m}");
    assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 503"));
    ready.store(true, Ordering::Relaxed);
    assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
    let _ = stop_tx.send(());
    server.await.expect("joins").expect("serves");
}
