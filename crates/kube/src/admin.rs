//! The admin server: `/metrics` (Prometheus text format, through prometheus-client),
//! `/healthz` (the process serves) and `/readyz` (the autoscalers were listed, so
//! every one of them is being synced).
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use podscale_runtime::Key;
use podscale_runtime::controller::View;
use podscale_runtime::stats::StatsSnapshot;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// What `/metrics` shows at one scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

type Labels = Vec<(String, String)>;

/// The exposition of the loop's counters and every autoscaler's replicas. Labels are
/// bounded by the autoscalers that exist (namespace, name), never by values.
/// `recommended`: in shadow mode, what podscale would have set, per autoscaler.
pub fn render(
    stats: &StatsSnapshot,
    views: &[(Key, View)],
    leader: bool,
    recommended: &dyn Fn(&Key) -> Option<i32>,
    shadow: bool,
) -> String {
    // prometheus-client ends each help text with a period itself.
    let mut r = Registry::with_prefix("podscale");
    for (name, help, v) in stats.counters() {
        let c: Counter = Counter::default();
        c.inc_by(v);
        r.register(name, help, c);
    }
    let g = |v: i64| {
        let g: Gauge = Gauge::default();
        g.set(v);
        g
    };
    r.register(
        "leader",
        "1 while this instance may write (holds the lease, or runs without election)",
        g(i64::from(leader)),
    );
    r.register(
        "shadow",
        "1 in shadow mode (standard HPAs watched, nothing written)",
        g(i64::from(shadow)),
    );
    r.register(
        "autoscalers",
        "Autoscalers known",
        g(i64::try_from(views.len()).unwrap_or(i64::MAX)),
    );
    let current = Family::<Labels, Gauge>::default();
    let desired = Family::<Labels, Gauge>::default();
    let rec = Family::<Labels, Gauge>::default();
    let syncs = Family::<Labels, Counter>::default();
    let failing = Family::<Labels, Gauge>::default();
    for (key, view) in views {
        let l: Labels = vec![
            ("namespace".into(), key.namespace.clone()),
            ("name".into(), key.name.clone()),
        ];
        if let Some(last) = &view.last {
            if let Some(c) = last.current_replicas {
                current.get_or_create(&l).set(i64::from(c));
            }
            if let Some(d) = last.desired_replicas {
                desired.get_or_create(&l).set(i64::from(d));
            }
            failing
                .get_or_create(&l)
                .set(i64::from(last.error.is_some()));
        }
        syncs.get_or_create(&l).inc_by(view.syncs);
        if let Some(n) = recommended(key) {
            rec.get_or_create(&l).set(i64::from(n));
        }
    }
    r.register(
        "autoscaler_current_replicas",
        "The target's spec.replicas at the last sync",
        current,
    );
    r.register(
        "autoscaler_desired_replicas",
        "The replica count decided at the last sync",
        desired,
    );
    r.register("autoscaler_syncs", "Syncs of this autoscaler", syncs);
    r.register(
        "autoscaler_failing",
        "1 if the last sync of this autoscaler reported an error",
        failing,
    );
    if shadow {
        r.register(
            "shadow_recommended_replicas",
            "What podscale would have set the target to (shadow mode: never written)",
            rec,
        );
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &r);
    out
}

/// Serves the admin endpoints on `addr` until `shutdown` turns true.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    render: Render,
    ready: Arc<AtomicBool>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "Admin server listening (/metrics, /healthz, /readyz).");
    serve_on(listener, render, ready, async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    })
    .await
}

/// Serves on a bound listener until `stop` completes (tests bind port 0).
///
/// # Errors
/// The server fails.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    render: Render,
    ready: Arc<AtomicBool>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let render = Arc::clone(&render);
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(move || {
                let ready = Arc::clone(&ready);
                async move {
                    if ready.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok\n").into_response()
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "autoscalers not listed yet\n",
                        )
                            .into_response()
                    }
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}
