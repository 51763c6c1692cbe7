//! The front proxy's bounds, against misbehaving replicas (the fixture server, see
//! `common`): a replica slower than `front.requestTimeout` (504), a stream running past
//! it (cut), a body over `front.maxRequestBody` (413, declared or streamed), a client
//! that never finishes its headers (closed after `front.headerReadTimeout`). Waits are
//! bounded generously; nothing asserts on wall-clock speed.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{server_command, wait_for};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use podscale_local::proxy::{Outcome, Proxy};
use podscale_local::{LocalDeployment, ReplicaSet};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Not a test: the entry of the fixtures this binary runs as (see `common`).
#[test]
#[ignore = "fixture entry point, run by the tests themselves"]
fn fixture_entry() {
    common::fixture_main();
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A body of unknown length (sent chunked), one frame per chunk.
struct Chunks(VecDeque<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fn declared(n: usize) -> Body {
    Full::new(Bytes::from(vec![b'x'; n])).boxed_unsync()
}

fn chunked(chunks: usize, size: usize) -> Body {
    Chunks((0..chunks).map(|_| Bytes::from(vec![b'y'; size])).collect()).boxed_unsync()
}

/// POST `body` to `url`: status and body text.
async fn post(c: &Client<HttpConnector, Body>, url: &str, body: Body) -> (u16, String) {
    let req = hyper::Request::post(url).body(body).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), c.request(req))
        .await
        .expect("an answer within 30s")
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&text).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_bounds_each_request() {
    let text = format!(
        "name: llm\ncommand: \"{}\"\nports: {{ base: 21600, count: 2 }}\nreadiness: {{ period: 100ms, timeout: 1s }}\nfront:\n  port: 1\n  requestTimeout: 1s\n  headerReadTimeout: 300ms\n  maxRequestBody: 4KiB\n  maxRetryBody: 1KiB\nstatus: {{ port: 2 }}\nstopTimeout: 5s\n",
        server_command().replace('"', "\\\"")
    );
    let spec = LocalDeployment::from_source(&text, "test.yaml").unwrap();
    let set = ReplicaSet::start(spec, 1).unwrap();
    wait_for(30, "a ready replica", || {
        set.replicas().iter().any(|r| r.ready)
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let front = format!("http://{addr}");
    let proxy = Arc::new(Proxy::new(set.clone()));
    let counters = proxy.counters();
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(proxy.serve(listener, stop_rx));
    let c: Client<HttpConnector, Body> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let echo = format!("{front}/echo");

    // Within the limit, declared or chunked, bodies reach the replica whole.
    assert_eq!(
        post(&c, &echo, declared(3072)).await,
        (200, "3072\n".into())
    );
    assert_eq!(
        post(&c, &echo, chunked(4, 512)).await,
        (200, "2048\n".into())
    );
    assert_eq!(counters.outcome(Outcome::Proxied), 2);

    // Over it: 413, from the declared length before anything is sent, or as soon as a
    // chunked body grows past it.
    let (status, text) = post(&c, &echo, declared(8192)).await;
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains("larger than front.maxRequestBody (4KiB)"),
        "{text}"
    );
    let (status, text) = post(&c, &echo, chunked(16, 1024)).await;
    assert_eq!(status, 413, "{text}");
    assert_eq!(counters.outcome(Outcome::TooLarge), 2);

    // A replica slower than requestTimeout: 504, and the replica is free again.
    let (status, text) = post(&c, &format!("{front}/work?ms=60000"), declared(0)).await;
    assert_eq!(status, 504, "{text}");
    assert_eq!(
        text,
        "replica 0 did not answer within front.requestTimeout (1s)\n"
    );
    assert_eq!(counters.outcome(Outcome::Timeout), 1);
    assert!(set.replicas().iter().all(|r| r.outstanding == 0));

    // A stream still running at requestTimeout is cut: the first event arrives, then
    // the answer ends with an error instead of its terminating chunk.
    let req = hyper::Request::get(format!("{front}/stream?n=1000&ms=100"))
        .body(declared(0))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"data: 0\n\n");
    let rest = tokio::time::timeout(Duration::from_secs(30), body.collect())
        .await
        .expect("cut within 30s");
    assert!(rest.is_err(), "the stream ran to its end");
    assert_eq!(counters.streams_cut(), 1);
    wait_for(30, "the cut stream's replica to be free", || {
        set.replicas().iter().all(|r| r.outstanding == 0)
    })
    .await;

    // A client that never finishes its headers is disconnected.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /whoami HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection was still open after 30s");
    // Nothing reached a replica: no request was counted.
    assert_eq!(counters.snapshot().requests, 6);

    // Every request is done: nothing in flight through the proxy.
    wait_for(30, "no request in flight", || {
        counters.snapshot().in_flight == 0
    })
    .await;
    let stats = counters.snapshot();
    assert_eq!((stats.timeouts, stats.rejected, stats.failed), (2, 2, 1));
    set.shutdown().await;
}
