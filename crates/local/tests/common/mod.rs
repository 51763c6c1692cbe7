//! The end-to-end tests' fixtures. The test binary runs itself as each of them (the
//! `fixture_entry` test, ignored unless `PODSCALE_FIXTURE` is set):
//!
//! - `server`: a tiny inference-like HTTP server on `$PORT`. `/health` (503 when set
//!   unhealthy or draining), `/metrics` (`inference_queue_depth` = requests in flight plus
//!   a settable base), `/work?ms=N`, `/stream?n=K&ms=M` (server-sent events),
//!   `/whoami`, `/echo` (the body's length), `/crash`, `/set?depth=N&healthy=0|1&refuse=0|1` (refuse: 503 to work).
//!   On SIGTERM it drains like a well-behaved server: unhealthy, new requests 503,
//!   in-flight ones finish, then it exits. With `FIXTURE_WORKER=1` it forks a
//!   `sleep` worker, to check that whole groups are stopped.
//! - `supervise`: runs a local deployment (`PODSCALE_FIXTURE_SPEC`, `..._HPA`) as
//!   `podscale run --local` does until SIGTERM/SIGINT, writing its replicas' process
//!   groups to `PODSCALE_FIXTURE_OUT` once they run.
#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

pub const ENV: &str = "PODSCALE_FIXTURE";

/// The command that runs this test binary as the fixture server.
pub fn server_command() -> String {
    let exe = std::env::current_exe().unwrap();
    format!(
        "{ENV}=server exec '{}' fixture_entry --exact --ignored --nocapture --test-threads=1 -q",
        exe.display()
    )
}

/// Runs the fixture named by `PODSCALE_FIXTURE`, if any (never returns then).
pub fn fixture_main() {
    let Ok(role) = std::env::var(ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    match role.as_str() {
        "server" => rt.block_on(server()),
        "supervise" => rt.block_on(supervise()),
        other => panic!("unknown fixture {other}"),
    }
    std::process::exit(0);
}

#[derive(Default)]
struct State {
    in_flight: AtomicI64,
    base: AtomicI64,
    unhealthy: AtomicBool,
    refuse: AtomicBool,
    draining: AtomicBool,
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

fn text(status: StatusCode, s: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(s)).boxed_unsync());
    *r.status_mut() = status;
    r
}

fn query(uri: &hyper::Uri, key: &str) -> Option<i64> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

async fn server() {
    let port: u16 = std::env::var("PORT").unwrap().parse().unwrap();
    let name = std::env::var("POD_NAME").unwrap_or_default();
    if std::env::var("FIXTURE_WORKER").is_ok_and(|v| v == "1") {
        // A forked worker that ignores SIGTERM: only SIGKILL of the group ends it.
        let _ = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("trap '' TERM; sleep 300")
            .spawn();
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let state = Arc::new(State::default());
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    loop {
        let stream = tokio::select! {
            _ = term.recv() => break,
            a = listener.accept() => match a { Ok((s, _)) => s, Err(_) => continue },
        };
        let state = Arc::clone(&state);
        let name = name.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let state = Arc::clone(&state);
                let name = name.clone();
                async move { Ok::<_, Infallible>(route(req, &state, &name).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
    // Draining: keep answering (503) while in-flight work finishes, then exit.
    state.draining.store(true, Ordering::SeqCst);
    let drain = async {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&state);
                let name = name.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        let name = name.clone();
                        async move { Ok::<_, Infallible>(route(req, &state, &name).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    };
    let wait = async {
        while state.in_flight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::select! {
        () = drain => {}
        () = wait => {}
    }
}

async fn route(req: Request<hyper::body::Incoming>, s: &State, name: &str) -> Response<Body> {
    let uri = req.uri().clone();
    match uri.path() {
        "/health" => {
            if s.unhealthy.load(Ordering::SeqCst) || s.draining.load(Ordering::SeqCst) {
                text(StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n".into())
            } else {
                text(StatusCode::OK, "ok\n".into())
            }
        }
        "/metrics" => {
            let depth = s.in_flight.load(Ordering::SeqCst) + s.base.load(Ordering::SeqCst);
            text(
                StatusCode::OK,
                format!("# TYPE inference_queue_depth gauge\ninference_queue_depth {depth}\n"),
            )
        }
        "/set" => {
            if let Some(d) = query(&uri, "depth") {
                s.base.store(d, Ordering::SeqCst);
            }
            if let Some(h) = query(&uri, "healthy") {
                s.unhealthy.store(h == 0, Ordering::SeqCst);
            }
            if let Some(r) = query(&uri, "refuse") {
                s.refuse.store(r == 1, Ordering::SeqCst);
            }
            text(StatusCode::OK, "set\n".into())
        }
        "/crash" => std::process::exit(3),
        // Reads the whole body; answers its length.
        "/echo" => match req.into_body().collect().await {
            Ok(b) => text(StatusCode::OK, format!("{}\n", b.to_bytes().len())),
            Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
        },
        _ if s.draining.load(Ordering::SeqCst) || s.refuse.load(Ordering::SeqCst) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n".into())
        }
        "/whoami" => text(StatusCode::OK, name.to_owned()),
        "/work" => {
            s.in_flight.fetch_add(1, Ordering::SeqCst);
            let ms = query(&uri, "ms").unwrap_or(100);
            tokio::time::sleep(Duration::from_millis(u64::try_from(ms).unwrap_or(0))).await;
            s.in_flight.fetch_sub(1, Ordering::SeqCst);
            text(StatusCode::OK, format!("done {name}\n"))
        }
        "/stream" => {
            let n = query(&uri, "n").unwrap_or(3);
            let ms = u64::try_from(query(&uri, "ms").unwrap_or(50)).unwrap_or(0);
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
            tokio::spawn(async move {
                for i in 0..n {
                    let _ = tx.send(Bytes::from(format!("data: {i}\n\n"))).await;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
            });
            let mut r = Response::new(ChannelBody(rx).boxed_unsync());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/event-stream"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// A body fed by a channel: each message is one frame, sent as it comes.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

async fn supervise() {
    let spec = std::env::var("PODSCALE_FIXTURE_SPEC").unwrap();
    let hpa = std::env::var("PODSCALE_FIXTURE_HPA").unwrap();
    let out = std::env::var("PODSCALE_FIXTURE_OUT").unwrap();
    let spec = podscale_local::LocalDeployment::from_source(&spec, "spec.yaml").unwrap();
    let hpa = podscale_local::run::parse_hpa(&hpa, "hpa.yaml").unwrap();
    let options = podscale_local::run::RunOptions {
        ephemeral_ports: true,
        loop_config: podscale_runtime::LoopConfig {
            sync_period: Duration::from_secs(1),
            ..Default::default()
        },
        ..Default::default()
    };
    let running = podscale_local::run::start(spec, hpa, Default::default(), options)
        .await
        .unwrap();
    let want = running.replicas().desired();
    let replicas = running.replicas().clone();
    tokio::spawn(async move {
        loop {
            let r = replicas.replicas();
            if r.len() == usize::try_from(want).unwrap() && r.iter().all(|r| r.ready) {
                let groups: Vec<String> = r
                    .iter()
                    .filter_map(|r| r.pgid.map(|p| p.to_string()))
                    .collect();
                let guard = replicas.guard_pid().unwrap_or(0);
                std::fs::write(&out, format!("{guard} {}", groups.join(" "))).unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    podscale_local::run::until_signal(running).await;
}

/// A plain HTTP client for the tests.
pub fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// GET `url`: status and body (or the error).
pub async fn get(
    c: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
) -> Result<(u16, String), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let resp = tokio::time::timeout(Duration::from_secs(30), c.get(uri))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Polls `f` every 50 ms until it holds; panics with `what` after `secs` (a generous
/// bound, not a timing assertion).
pub async fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
