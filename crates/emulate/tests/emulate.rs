//! The emulator over loopback HTTP: timing against the model, metrics, SSE, drain,
//! startup delay and faults.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use podscale_emulate::{Config, Emulator, Faults};
use podscale_model::Model;
use serde_json::{Value, json};

/// A small, fast model: 1000 prompt tokens/s, 20 ms decode steps alone, 40 ms at 4,
/// two batch slots.
fn model(max_batch: u32) -> Model {
    let yaml = format!(
        "server:\n  maxBatch: {max_batch}\n  prefillTokensPerSecond: 1000\n  decodeStep: {{1: 20ms, 4: 40ms}}\n  kvCacheTokens: 100000\n"
    );
    Model::load(Some(&yaml), "test-model.yaml").expect("valid model")
}

fn config(model: Model) -> Config {
    let mut c = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)), model);
    c.cpu_scale = 0.0;
    c
}

struct Reply {
    status: u16,
    body: String,
    /// When the first body chunk arrived (for streams: the first token).
    first_chunk: Option<Duration>,
    elapsed: Duration,
}

async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Reply {
    let start = Instant::now();
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .expect("request");
    let resp = send.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut out = Vec::new();
    let mut first_chunk = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("body frame");
        if let Ok(data) = frame.into_data() {
            // The first event carrying a token (a chat stream opens with an empty role delta).
            if first_chunk.is_none() && data.windows(5).any(|w| w == b"lorem") {
                first_chunk = Some(start.elapsed());
            }
            out.extend_from_slice(&data);
        }
    }
    Reply {
        status,
        body: String::from_utf8(out).expect("utf-8"),
        first_chunk,
        elapsed: start.elapsed(),
    }
}

fn completion(prompt_tokens: u32, max_tokens: u32, stream: bool) -> Value {
    json!({"model": "podscale-emulator", "prompt": "hello", "max_tokens": max_tokens,
           "stream": stream, "usage": {"prompt_tokens": prompt_tokens}})
}

/// Parses an SSE body strictly: `data: <json>` events separated by blank lines, ending
/// with `data: [DONE]`. Returns the JSON events.
fn parse_sse(body: &str) -> Vec<Value> {
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let events: Vec<&str> = body.trim_end_matches("\n\n").split("\n\n").collect();
    let (last, rest) = events.split_last().expect("events");
    assert_eq!(*last, "data: [DONE]");
    rest.iter()
        .map(|e| {
            let data = e
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not an event: {e:?}"));
            assert!(!data.contains('\n'), "{data}");
            serde_json::from_str(data).unwrap_or_else(|err| panic!("{err}: {data}"))
        })
        .collect()
}

/// The first sample of `name` (a metric name, or a name with its labels).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| {
            l.starts_with(name) && (name.ends_with('}') || l[name.len()..].starts_with(['{', ' ']))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_request_takes_the_models_ttft_and_e2e() {
    let m = model(4);
    let params = podscale_model::ServerParams::from_model(&m);
    let emu = Emulator::start(config(m)).await.expect("start");
    // 200 prompt tokens at 1000/s, then 20 more tokens at 20 ms: 0.2 s and 0.6 s.
    let (ttft, e2e) = params.service_time(200, 21);
    assert!((ttft - 0.2).abs() < 1e-9 && (e2e - 0.6).abs() < 1e-9);
    let r = call(
        emu.local_addr(),
        "POST",
        "/v1/completions",
        Some(completion(200, 21, true)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got_ttft = r.first_chunk.expect("a token").as_secs_f64();
    let got_e2e = r.elapsed.as_secs_f64();
    // Never faster than the model; slower only by scheduling noise (timer granularity,
    // a busy machine).
    assert!(
        got_ttft >= ttft - 0.002 && got_ttft < ttft + 0.15,
        "ttft {got_ttft} vs {ttft}"
    );
    assert!(
        got_e2e >= e2e - 0.002 && got_e2e < e2e + 0.25,
        "e2e {got_e2e} vs {e2e}"
    );
    let events = parse_sse(&r.body);
    assert_eq!(events.len(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_are_well_formed_for_completions_and_chat() {
    let emu = Emulator::start(config(model(4))).await.expect("start");
    let mut body = completion(10, 5, true);
    body["stream_options"] = json!({"include_usage": true});
    let r = call(emu.local_addr(), "POST", "/v1/completions", Some(body)).await;
    assert_eq!(r.status, 200);
    let events = parse_sse(&r.body);
    assert_eq!(events.len(), 6, "5 tokens and the usage: {}", r.body);
    for (i, e) in events[..5].iter().enumerate() {
        assert_eq!(e["object"], "text_completion");
        assert_eq!(e["choices"][0]["text"], " lorem");
        let want = if i == 4 { json!("length") } else { Value::Null };
        assert_eq!(e["choices"][0]["finish_reason"], want);
    }
    assert_eq!(events[5]["usage"]["completion_tokens"], 5);
    assert_eq!(events[5]["usage"]["prompt_tokens"], 10);

    let chat = json!({"messages": [{"role": "user", "content": "hi there"}], "max_tokens": 3, "stream": true});
    let r = call(emu.local_addr(), "POST", "/v1/chat/completions", Some(chat)).await;
    let events = parse_sse(&r.body);
    assert_eq!(events.len(), 4, "{}", r.body);
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        events
            .iter()
            .all(|e| e["object"] == "chat.completion.chunk")
    );
    assert_eq!(events[3]["choices"][0]["finish_reason"], "length");

    // Without streaming: one JSON answer with the usage.
    let chat = json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4});
    let r = call(emu.local_addr(), "POST", "/v1/chat/completions", Some(chat)).await;
    let v: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        " lorem lorem lorem lorem"
    );
    assert_eq!(v["usage"]["completion_tokens"], 4);

    let models = call(emu.local_addr(), "GET", "/v1/models", None).await;
    let v: Value = serde_json::from_str(&models.body).expect("json");
    assert_eq!(v["data"][0]["id"], "podscale-emulator");

    // Bad input gets a clear 4xx, never a hang or a crash.
    let r = call(
        emu.local_addr(),
        "POST",
        "/v1/completions",
        Some(json!({"prompt": "x", "max_tokens": 0})),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = call(
        emu.local_addr(),
        "POST",
        "/v1/completions",
        Some(json!({"prompt": "x", "model": "gpt-9"})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = call(
        emu.local_addr(),
        "POST",
        "/v1/completions",
        Some(completion(99_999, 2, false)),
    )
    .await;
    assert!(r.body.contains("maximum context length"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_load() {
    let emu = Emulator::start(config(model(2))).await.expect("start");
    let addr = emu.local_addr();
    let idle = call(addr, "GET", "/metrics", None).await.body;
    assert_eq!(metric(&idle, "vllm:num_requests_running"), 0.0);
    assert_eq!(metric(&idle, "vllm:num_requests_waiting"), 0.0);

    // Six requests of ~1 s on two slots: two run, four wait.
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            tokio::spawn(call(
                addr,
                "POST",
                "/v1/completions",
                Some(completion(10, 40, false)),
            ))
        })
        .collect();
    let mut busy = String::new();
    // Generous: on a loaded machine the six requests may take a while to be admitted.
    for _ in 0..500 {
        busy = call(addr, "GET", "/metrics", None).await.body;
        // Both slots busy *and* a queue: the six requests are spawned tasks that may
        // still be connecting when the first two are already running.
        if metric(&busy, "vllm:num_requests_running") == 2.0
            && metric(&busy, "vllm:num_requests_waiting") >= 1.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(metric(&busy, "vllm:num_requests_running"), 2.0, "{busy}");
    assert!(metric(&busy, "vllm:num_requests_waiting") >= 1.0, "{busy}");
    assert_eq!(
        metric(&busy, "inference_queue_depth"),
        metric(&busy, "vllm:num_requests_waiting")
    );
    assert!(metric(&busy, "vllm:kv_cache_usage_perc") > 0.0, "{busy}");
    for t in tasks {
        assert_eq!(t.await.expect("task").status, 200);
    }
    let after = call(addr, "GET", "/metrics", None).await.body;
    assert_eq!(metric(&after, "vllm:num_requests_running"), 0.0);
    assert_eq!(
        metric(
            &after,
            "vllm:request_success_total{model_name=\"podscale-emulator\",finished_reason=\"length\"}"
        ),
        6.0
    );
    assert_eq!(metric(&after, "vllm:generation_tokens_total"), 240.0);
    assert_eq!(metric(&after, "vllm:prompt_tokens_total"), 60.0);
    assert_eq!(
        metric(&after, "vllm:time_to_first_token_seconds_count"),
        6.0
    );
    assert_eq!(
        metric(&after, "vllm:e2e_request_latency_seconds_count"),
        6.0
    );
    // The waiting ones took longer than a lone request's 0.79 s.
    assert!(metric(&after, "vllm:e2e_request_latency_seconds_sum") > 6.0 * 0.79);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_finishes_in_flight_requests_and_refuses_new_ones() {
    let emu = Emulator::start(config(model(4))).await.expect("start");
    let addr = emu.local_addr();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            tokio::spawn(call(
                addr,
                "POST",
                "/v1/completions",
                Some(completion(10, 20, i % 2 == 0)),
            ))
        })
        .collect();
    for _ in 0..200 {
        if emu.in_flight() == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(emu.in_flight(), 10);
    let drain = tokio::spawn(emu.drain(Duration::from_secs(30)));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let refused = call(
        addr,
        "POST",
        "/v1/completions",
        Some(completion(10, 2, false)),
    )
    .await;
    assert_eq!(refused.status, 503);
    assert_eq!(call(addr, "GET", "/health", None).await.status, 503);
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.expect("task");
        assert_eq!(r.status, 200, "{}", r.body);
        if i % 2 == 0 {
            assert_eq!(parse_sse(&r.body).len(), 20);
        } else {
            let v: Value = serde_json::from_str(&r.body).expect("json");
            assert_eq!(v["usage"]["completion_tokens"], 20);
        }
    }
    let report = drain.await.expect("drain");
    assert_eq!(report.in_flight_at_start, 10);
    assert_eq!(report.unfinished, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_503_until_the_startup_delay_and_faults_misbehave() {
    let mut c = config(model(4));
    c.startup_delay = Duration::from_millis(300);
    let emu = Emulator::start(c).await.expect("start");
    let addr = emu.local_addr();
    assert_eq!(call(addr, "GET", "/health", None).await.status, 503);
    assert_eq!(
        call(
            addr,
            "POST",
            "/v1/completions",
            Some(completion(1, 1, false))
        )
        .await
        .status,
        503
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(call(addr, "GET", "/health", None).await.status, 200);

    let mut c = config(model(4));
    let mut f = Faults::default();
    f.add("error-rate=1").expect("fault");
    c.faults = f;
    let emu = Emulator::start(c).await.expect("start");
    let r = call(
        emu.local_addr(),
        "POST",
        "/v1/completions",
        Some(completion(1, 1, false)),
    )
    .await;
    assert_eq!(r.status, 500);
    let m = call(emu.local_addr(), "GET", "/metrics", None).await.body;
    assert_eq!(metric(&m, "podscale_emulator_errors_total"), 1.0);

    // A stall from 0.2 s to 0.7 s: a request sent inside it is answered after it.
    let mut c = config(model(4));
    let mut f = Faults::default();
    f.add("stall=500ms@200ms").expect("fault");
    c.faults = f;
    let emu = Emulator::start(c).await.expect("start");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = call(
        emu.local_addr(),
        "POST",
        "/v1/completions",
        Some(completion(1, 1, false)),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.elapsed >= Duration::from_millis(350), "{:?}", r.elapsed);
}

/// Completion times (seconds after a common arrival at 0) the replica model gives `n`
/// identical requests, in simulated time.
fn simulated_e2e(m: &Model, n: usize, input: u32, output: u32) -> Vec<f64> {
    use podscale_model::{Observer, Queued, Replica, ServerParams};
    struct Done(Vec<f64>);
    impl Observer<()> for Done {
        fn enqueued(&mut self, _: u64) {}
        fn dequeued(&mut self, _: u64) {}
        fn waited(&mut self, _: f64) {}
        fn timed_out(&mut self, (): ()) {}
        fn aborted(&mut self, _: u64) {}
        fn complete(&mut self, (): (), e2e: f64, _: f64) {
            self.0.push(e2e);
        }
    }
    let p = ServerParams::from_model(m);
    let mut r = Replica::new(0.0);
    let mut done = Done(Vec::new());
    for _ in 0..n {
        let q = Queued {
            arrival: 0.0,
            input,
            output,
            tag: (),
        };
        r.arrive(q, 0.0, &p, &mut done);
    }
    for _ in 0..10_000 {
        let t = r.next_event(&p);
        if !t.is_finite() {
            break;
        }
        r.on_event(t, &p, &mut done);
    }
    done.0.sort_by(f64::total_cmp);
    done.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_finishes_when_the_simulators_replica_says() {
    // Three requests at once: prefills back to back (0.1 s each), then decoding three
    // at a time, at the 3-sequence step (33 ms, between the 1 and 4 points).
    let m = model(4);
    let want = simulated_e2e(&m, 3, 100, 30);
    assert_eq!(want.len(), 3);
    assert!(want[2] > 0.3 + 29.0 * 0.033 - 0.05, "{want:?}");
    let emu = Emulator::start(config(m)).await.expect("start");
    let addr = emu.local_addr();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(call(
                addr,
                "POST",
                "/v1/completions",
                Some(completion(100, 30, false)),
            ))
        })
        .collect();
    let mut got = Vec::new();
    for t in tasks {
        let r = t.await.expect("task");
        assert_eq!(r.status, 200);
        got.push(r.elapsed.as_secs_f64());
    }
    got.sort_by(f64::total_cmp);
    for (g, w) in got.iter().zip(&want) {
        assert!(
            *g >= w - 0.01 && *g < w + 0.2,
            "emulated {got:?} vs simulated {want:?}"
        );
    }
}

/// User plus system CPU seconds of this process (/proc/self/stat, in clock ticks of
/// 1/100 s, the Linux USER_HZ).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which may hold spaces) start at `) `.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_burns_the_cpu_the_model_says() {
    let mut c = config(model(4));
    c.cpu_scale = 1.0;
    c.cpu_threads = 1;
    let emu = Emulator::start(c).await.expect("start");
    let before = cpu_seconds();
    // 1 s of decoding alone: the model's usage.cpu says busyCores 1.0 × 1 s, plus
    // 0.02 s per request and 0.001 s per token.
    let r = call(
        emu.local_addr(),
        "POST",
        "/v1/completions",
        Some(completion(1, 51, false)),
    )
    .await;
    assert_eq!(r.status, 200);
    let mut used = 0.0;
    // Up to 30 s of waiting: on a shared machine the burning thread may be starved
    // for a while; what is asserted is CPU time, not how fast it was used.
    for _ in 0..300 {
        used = cpu_seconds() - before;
        if used >= 0.7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        used >= 0.7,
        "the emulator used {used} CPU seconds for ~1.07 owed"
    );
}

/// Waits (bounded) until `/metrics` satisfies `ok`; returns the last exposition.
async fn metrics_until(addr: SocketAddr, ok: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    for _ in 0..500 {
        text = call(addr, "GET", "/metrics", None).await.body;
        if ok(&text) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    text
}

/// A client that goes away mid-request (streaming or not) gets its request aborted, as
/// vLLM does: its batch slot and KV cache are freed at once, and it is counted as
/// `finished_reason="abort"`, not as a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_gets_its_request_aborted() {
    let emu = Emulator::start(config(model(2))).await.expect("start");
    let addr = emu.local_addr();
    const ABORTED: &str =
        "vllm:request_success_total{model_name=\"podscale-emulator\",finished_reason=\"abort\"}";
    const LENGTH: &str =
        "vllm:request_success_total{model_name=\"podscale-emulator\",finished_reason=\"length\"}";
    let running = |t: &str| metric(t, "vllm:num_requests_running");

    // A stream of 1000 tokens (20 s): read its first token, then hang up.
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let conn = tokio::spawn(conn);
    let req = Request::builder()
        .method("POST")
        .uri("/v1/completions")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            completion(10, 1000, true).to_string(),
        )))
        .expect("request");
    let resp = send.send_request(req).await.expect("response");
    let mut body = resp.into_body();
    let first = body.frame().await.expect("a frame").expect("data");
    assert!(first.data_ref().is_some_and(|d| d.starts_with(b"data: ")));
    let busy = call(addr, "GET", "/metrics", None).await.body;
    assert_eq!(running(&busy), 1.0, "{busy}");
    assert!(metric(&busy, "vllm:kv_cache_usage_perc") > 0.0, "{busy}");
    drop(body);
    drop(send);
    conn.abort();
    let after = metrics_until(addr, |t| running(t) == 0.0 && metric(t, ABORTED) == 1.0).await;
    assert_eq!(running(&after), 0.0, "{after}");
    assert_eq!(metric(&after, ABORTED), 1.0, "{after}");
    assert_eq!(metric(&after, "vllm:kv_cache_usage_perc"), 0.0, "{after}");
    // It produced some tokens before it went; they count.
    assert!(
        metric(&after, "vllm:generation_tokens_total") >= 1.0,
        "{after}"
    );

    // Not streaming: the connection closes while the request runs.
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    let conn = tokio::spawn(conn);
    let req = Request::builder()
        .method("POST")
        .uri("/v1/completions")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            completion(10, 1000, false).to_string(),
        )))
        .expect("request");
    let pending = tokio::spawn(async move { send.send_request(req).await.map(|_| ()) });
    let busy = metrics_until(addr, |t| running(t) == 1.0).await;
    assert_eq!(running(&busy), 1.0, "{busy}");
    pending.abort();
    conn.abort();
    let after = metrics_until(addr, |t| running(t) == 0.0 && metric(t, ABORTED) == 2.0).await;
    assert_eq!(running(&after), 0.0, "{after}");
    assert_eq!(metric(&after, ABORTED), 2.0, "{after}");
    assert_eq!(metric(&after, LENGTH), 0.0, "{after}");
    // The freed slots serve the next request at once.
    let r = call(
        addr,
        "POST",
        "/v1/completions",
        Some(completion(10, 2, false)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let done = call(addr, "GET", "/metrics", None).await.body;
    assert_eq!(metric(&done, LENGTH), 1.0, "{done}");
    assert_eq!(emu.in_flight(), 0);
}

/// `--instant` answers at once, and its TTFT and e2e histograms still count every
/// answer (streamed or not), so dashboards on them stay meaningful.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instant_mode_records_latency_histograms() {
    let mut c = config(model(2));
    c.instant = true;
    let emu = Emulator::start(c).await.expect("start");
    let addr = emu.local_addr();
    for stream in [false, true, false] {
        let r = call(
            addr,
            "POST",
            "/v1/completions",
            Some(completion(10, 1000, stream)),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let text = call(addr, "GET", "/metrics", None).await.body;
    for h in [
        "vllm:time_to_first_token_seconds",
        "vllm:e2e_request_latency_seconds",
    ] {
        assert_eq!(metric(&text, &format!("{h}_count")), 3.0, "{text}");
        let inf = format!("{h}_bucket{{model_name=\"podscale-emulator\",le=\"+Inf\"}}");
        assert_eq!(metric(&text, &inf), 3.0, "{text}");
    }
}
