//! The OpenAI-compatible HTTP side: `/v1/completions`, `/v1/chat/completions` (JSON or
//! server-sent events), `/v1/models`, `/health`, `/metrics`.
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::Shared;
use crate::engine::{AbortOnDrop, Cmd, InFlight, Progress};
use crate::metrics::{Snapshot, render};

pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Largest request body read (a prompt of about 250k tokens).
const MAX_BODY: usize = 1 << 20;
/// `max_tokens` when a request gives none (the OpenAI completions default).
const DEFAULT_MAX_TOKENS: u32 = 16;
/// The filler each generated token adds to the text.
const TOKEN_TEXT: &str = " lorem";

pub(crate) async fn serve(inner: Shared, listener: TcpListener, stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(inner.cfg.max_connections));
    let mut stopping = stop.clone();
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let stream = tokio::select! {
            _ = stopping.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let inner = Arc::clone(&inner);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let inner = Arc::clone(&inner);
                async move { Ok::<_, Infallible>(handle(inner, req).await) }
            });
            // HTTP/1.1, or HTTP/2 with prior knowledge (h2c: the client's preface says
            // which), as `vllm serve` (uvicorn/h11) does not, but proxies and load
            // generators in front of it may.
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = &mut conn => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    full(status, "application/json", v.to_string())
}

/// An error in the OpenAI shape (`{"error": {"message", "type", "code"}}`).
fn error(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "code": status.as_u16()}}),
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn handle(inner: Shared, req: Request<Incoming>) -> Response<Body> {
    let version = if req.version() == hyper::Version::HTTP_2 {
        &inner.http2_requests
    } else {
        &inner.http1_requests
    };
    version.fetch_add(1, Ordering::Relaxed);
    // A stall answers nothing, not even probes: like a process paused by a long GC.
    if let Some(until) = inner.clock.stalled_until() {
        tokio::time::sleep_until(until.into()).await;
    }
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => {
            if inner.draining.load(Ordering::Acquire) {
                full(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "draining\n")
            } else if !inner.is_ready() {
                full(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "loading the model\n",
                )
            } else {
                full(StatusCode::OK, "text/plain", "ok\n")
            }
        }
        (&Method::GET, "/v1/models") => json_response(
            StatusCode::OK,
            &json!({"object": "list", "data": [{
                "id": inner.cfg.served_model_name,
                "object": "model",
                "created": unix_now(),
                "owned_by": "podscale",
                "root": inner.cfg.served_model_name,
                "max_model_len": inner.params.kv_capacity,
            }]}),
        ),
        (&Method::GET, "/metrics") => metrics(&inner).await,
        (&Method::POST, "/v1/completions") => completion(inner, req, false).await,
        (&Method::POST, "/v1/chat/completions") => completion(inner, req, true).await,
        (_, "/health" | "/v1/models" | "/metrics" | "/v1/completions" | "/v1/chat/completions") => {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "BadRequestError",
                "method not allowed",
            )
        }
        _ => error(StatusCode::NOT_FOUND, "NotFoundError", "not found"),
    }
}

async fn metrics(inner: &Shared) -> Response<Body> {
    let snap = if inner.cfg.instant {
        Snapshot {
            waiting: 0,
            running: 0,
            kv_usage: 0.0,
            prompt_tokens: inner.instant_prompt.load(Ordering::Relaxed),
            generation_tokens: inner.instant_generation.load(Ordering::Relaxed),
            success: inner.instant_success.load(Ordering::Relaxed),
            aborted: 0,
            errors: 0,
            ttft: inner.instant_ttft.snapshot(),
            e2e: inner.instant_e2e.snapshot(),
            http_requests: Default::default(),
        }
    } else {
        let (tx, rx) = oneshot::channel();
        if inner.tx.send(Cmd::Snapshot(tx)).await.is_err() {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "model stopped",
            );
        }
        match rx.await {
            Ok(s) => s,
            Err(_) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "model stopped",
                );
            }
        }
    };
    let mut snap = snap;
    snap.errors += inner.errors.load(Ordering::Relaxed);
    snap.http_requests = [
        ("HTTP/1.1", inner.http1_requests.load(Ordering::Relaxed)),
        ("HTTP/2", inner.http2_requests.load(Ordering::Relaxed)),
    ];
    full(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        render(&snap, &inner.cfg.served_model_name),
    )
}

/// Token count of a text: about four characters a token (English BPE), at least one.
fn tokens_of_text(s: &str) -> u64 {
    (s.chars().count() as u64).div_ceil(4).max(1)
}

/// Prompt tokens: `usage.prompt_tokens` in the request when given (a hint for
/// emulation), else estimated from the prompt or messages.
fn prompt_tokens(body: &Value, chat: bool) -> Result<u64, String> {
    if let Some(n) = body.pointer("/usage/prompt_tokens") {
        return n
            .as_u64()
            .ok_or_else(|| "usage.prompt_tokens must be a non-negative integer".into());
    }
    if chat {
        let msgs = body
            .get("messages")
            .and_then(Value::as_array)
            .ok_or("`messages` (an array) is required")?;
        let mut n = 0;
        for m in msgs {
            // A few tokens of chat template per message.
            n += 4;
            match m.get("content") {
                Some(Value::String(s)) => n += tokens_of_text(s),
                Some(Value::Array(parts)) => {
                    for p in parts {
                        if let Some(t) = p.get("text").and_then(Value::as_str) {
                            n += tokens_of_text(t);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(n)
    } else {
        match body.get("prompt") {
            Some(Value::String(s)) => Ok(tokens_of_text(s)),
            Some(Value::Array(items)) => match items.first() {
                Some(Value::Number(_)) => Ok(items.len() as u64),
                Some(Value::String(s)) if items.len() == 1 => Ok(tokens_of_text(s)),
                Some(Value::Array(t)) if items.len() == 1 => Ok(t.len() as u64),
                None => Err("`prompt` is empty".into()),
                _ => Err("one prompt per request (a string or a list of token ids)".into()),
            },
            _ => Err("`prompt` (a string or a list of token ids) is required".into()),
        }
    }
}

/// A parsed completion request.
struct Job {
    input: u32,
    output: u32,
    stream: bool,
    include_usage: bool,
    chat: bool,
    id: u64,
}

/// A refused request: status, OpenAI error type, message.
type Refusal = (StatusCode, &'static str, String);

fn parse_job(inner: &Shared, bytes: &[u8], chat: bool) -> Result<Job, Refusal> {
    let bad = |m: &str| (StatusCode::BAD_REQUEST, "BadRequestError", m.to_owned());
    let body: Value =
        serde_json::from_slice(bytes).map_err(|e| bad(&format!("invalid JSON body: {e}")))?;
    if !body.is_object() {
        return Err(bad("the body must be a JSON object"));
    }
    if let Some(m) = body.get("model").and_then(Value::as_str)
        && m != inner.cfg.served_model_name
    {
        return Err((
            StatusCode::NOT_FOUND,
            "NotFoundError",
            format!("The model `{m}` does not exist."),
        ));
    }
    let input = prompt_tokens(&body, chat).map_err(|m| bad(&m))?;
    let max = body
        .get("max_completion_tokens")
        .filter(|_| chat)
        .or_else(|| body.get("max_tokens"))
        .filter(|v| !v.is_null());
    let output = match max {
        None => u64::from(DEFAULT_MAX_TOKENS),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => n,
            _ => return Err(bad("max_tokens must be a positive integer")),
        },
    };
    let cap = inner.params.kv_capacity;
    if input.saturating_add(output) > cap {
        // vLLM's wording for a request longer than the context.
        return Err(bad(&format!(
            "This model's maximum context length is {cap} tokens. However, you requested \
             {} tokens ({input} in the messages, {output} in the completion). Please reduce \
             the length of the messages or completion.",
            input.saturating_add(output)
        )));
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("stream must be true or false")),
    };
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Job {
        // Both fit in u32: their sum is at most the KV capacity... which is a u64, so
        // clamp rather than trust it.
        input: u32::try_from(input).unwrap_or(u32::MAX),
        output: u32::try_from(output).unwrap_or(u32::MAX),
        stream,
        include_usage,
        chat,
        id: inner.next_id.fetch_add(1, Ordering::Relaxed),
    })
}

async fn completion(inner: Shared, req: Request<Incoming>, chat: bool) -> Response<Body> {
    // vLLM times a request from its arrival at the server (`arrival_time`).
    let arrived = Instant::now();
    if inner.draining.load(Ordering::Acquire) {
        inner.errors.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            "the server is shutting down",
        );
    }
    if !inner.is_ready() {
        inner.errors.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            "the model is loading",
        );
    }
    let Some(guard) = inner.enter() else {
        inner.errors.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
            &format!(
                "the server holds {} requests, its limit",
                inner.cfg.max_outstanding
            ),
        );
    };
    let bytes = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return if e.is::<http_body_util::LengthLimitError>() {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "BadRequestError",
                    &format!("the body is larger than {MAX_BODY} bytes"),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    "BadRequestError",
                    "cannot read the body",
                )
            };
        }
    };
    let job = match parse_job(&inner, &bytes, chat) {
        Ok(j) => j,
        Err((status, kind, message)) => return error(status, kind, &message),
    };
    if inner.cfg.faults.error_rate > 0.0 && inner.random() < inner.cfg.faults.error_rate {
        inner.errors.fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "injected fault (error-rate)",
        );
    }
    if inner.cfg.instant {
        // The answer is ready now: its first token and its end are the same instant.
        let took = arrived.elapsed().as_secs_f64();
        inner.instant_ttft.record(took);
        inner.instant_e2e.record(took);
        inner.instant_success.fetch_add(1, Ordering::Relaxed);
        inner
            .instant_prompt
            .fetch_add(u64::from(job.input), Ordering::Relaxed);
        inner
            .instant_generation
            .fetch_add(u64::from(job.output), Ordering::Relaxed);
        if job.stream {
            let mut out = Vec::new();
            let mut sse = Sse::new(&inner, &job);
            out.extend_from_slice(&sse.tokens(0, job.output));
            out.extend_from_slice(&sse.finish());
            return sse_response(Full::new(Bytes::from(out)).boxed_unsync());
        }
        return json_response(StatusCode::OK, &final_json(&inner, &job));
    }
    let (tx, mut rx) = watch::channel(Progress::Queued);
    let cmd = Cmd::Arrive {
        id: job.id,
        input: job.input,
        output: job.output,
        stream: job.stream,
        arrived: Instant::now(),
        tx,
    };
    if inner.tx.send(cmd).await.is_err() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "model stopped",
        );
    }
    // From here the model holds the request: if this handler is dropped (hyper drops
    // it when the client closes the connection) or the stream's reader goes away, the
    // guard aborts it.
    let mut abort = AbortOnDrop {
        tx: inner.tx.clone(),
        id: job.id,
        armed: true,
    };
    if job.stream {
        let (body_tx, body_rx) = mpsc::channel::<Bytes>(64);
        let inner2 = Arc::clone(&inner);
        tokio::spawn(stream_task(inner2, job, rx, body_tx, (guard, abort)));
        return sse_response(ChannelBody { rx: body_rx }.boxed_unsync());
    }
    loop {
        let state = *rx.borrow_and_update();
        match state {
            Progress::Done => {
                abort.armed = false;
                return json_response(StatusCode::OK, &final_json(&inner, &job));
            }
            Progress::TimedOut => {
                abort.armed = false;
                return timed_out();
            }
            Progress::Queued | Progress::Tokens(_) => {}
        }
        if rx.changed().await.is_err() {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "model stopped",
            );
        }
    }
}

fn timed_out() -> Response<Body> {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableError",
        "the request waited past the queue timeout",
    )
}

fn sse_response(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

fn usage(job: &Job) -> Value {
    json!({
        "prompt_tokens": job.input,
        "completion_tokens": job.output,
        "total_tokens": u64::from(job.input) + u64::from(job.output),
    })
}

fn final_json(inner: &Shared, job: &Job) -> Value {
    let text = TOKEN_TEXT.repeat(job.output as usize);
    if job.chat {
        json!({
            "id": format!("chatcmpl-{}", job.id),
            "object": "chat.completion",
            "created": unix_now(),
            "model": inner.cfg.served_model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "logprobs": null, "finish_reason": "length"}],
            "usage": usage(job),
        })
    } else {
        json!({
            "id": format!("cmpl-{}", job.id),
            "object": "text_completion",
            "created": unix_now(),
            "model": inner.cfg.served_model_name,
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "length"}],
            "usage": usage(job),
        })
    }
}

/// Server-sent events in OpenAI's streaming shape.
struct Sse<'a> {
    inner: &'a Shared,
    job: &'a Job,
    created: u64,
    started: bool,
}

impl<'a> Sse<'a> {
    fn new(inner: &'a Shared, job: &'a Job) -> Self {
        Self {
            inner,
            job,
            created: unix_now(),
            started: false,
        }
    }

    fn chunk(&self, choice: Value, usage: Option<Value>) -> Vec<u8> {
        let (id, object) = if self.job.chat {
            (format!("chatcmpl-{}", self.job.id), "chat.completion.chunk")
        } else {
            (format!("cmpl-{}", self.job.id), "text_completion")
        };
        let mut v = json!({
            "id": id, "object": object, "created": self.created,
            "model": self.inner.cfg.served_model_name,
            "choices": if choice.is_null() { json!([]) } else { json!([choice]) },
        });
        if let Some(u) = usage {
            v["usage"] = u;
        }
        let mut out = b"data: ".to_vec();
        out.extend_from_slice(v.to_string().as_bytes());
        out.extend_from_slice(b"\n\n");
        out
    }

    /// Events for tokens `from..to` (one event each, as vLLM streams them).
    fn tokens(&mut self, from: u32, to: u32) -> Vec<u8> {
        let mut out = Vec::new();
        if self.job.chat && !self.started {
            out.extend(self.chunk(
                json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}),
                None,
            ));
        }
        self.started = true;
        for i in from..to {
            let last = i + 1 == self.job.output;
            let finish = if last { json!("length") } else { Value::Null };
            let choice = if self.job.chat {
                json!({"index": 0, "delta": {"content": TOKEN_TEXT}, "logprobs": null, "finish_reason": finish})
            } else {
                json!({"index": 0, "text": TOKEN_TEXT, "logprobs": null, "finish_reason": finish})
            };
            out.extend(self.chunk(choice, None));
        }
        out
    }

    /// The usage event (when asked for) and `[DONE]`.
    fn finish(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.job.include_usage {
            out.extend(self.chunk(Value::Null, Some(usage(self.job))));
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        out
    }
}

async fn stream_task(
    inner: Shared,
    job: Job,
    mut rx: watch::Receiver<Progress>,
    tx: mpsc::Sender<Bytes>,
    (guard, mut abort): (InFlight, AbortOnDrop),
) {
    let _guard = guard;
    let mut sse = Sse::new(&inner, &job);
    let mut sent = 0u32;
    loop {
        let state = *rx.borrow_and_update();
        let (upto, done) = match state {
            Progress::Queued => (0, false),
            Progress::Tokens(n) => (n.min(job.output), false),
            Progress::Done => (job.output, true),
            Progress::TimedOut => {
                abort.armed = false;
                let msg = json!({"error": {"message": "the request waited past the queue timeout",
                                            "type": "ServiceUnavailableError", "code": 503}});
                let _ = tx
                    .send(Bytes::from(format!("data: {msg}\n\ndata: [DONE]\n\n")))
                    .await;
                return;
            }
        };
        if upto > sent {
            let bytes = sse.tokens(sent, upto);
            sent = upto;
            if tx.send(Bytes::from(bytes)).await.is_err() {
                // The client went away: `abort` drops the request from the model.
                return;
            }
        }
        if done {
            abort.armed = false;
            let _ = tx.send(Bytes::from(sse.finish())).await;
            return;
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() {
                return;
            },
            // The client went away while the request waits or between tokens.
            () = tx.closed() => return,
        }
    }
}

/// A response body fed by a channel (the SSE stream).
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_tokens_come_from_the_hint_the_text_or_the_token_ids() {
        let v = json!({"prompt": "abcdefgh", "usage": {"prompt_tokens": 300}});
        assert_eq!(prompt_tokens(&v, false), Ok(300));
        assert_eq!(prompt_tokens(&json!({"prompt": "abcdefghi"}), false), Ok(3));
        assert_eq!(
            prompt_tokens(&json!({"prompt": [1, 2, 3, 4, 5]}), false),
            Ok(5)
        );
        let chat = json!({"messages": [{"role": "user", "content": "abcd"}]});
        assert_eq!(prompt_tokens(&chat, true), Ok(5));
        assert!(prompt_tokens(&json!({"prompt": 7}), false).is_err());
        assert!(prompt_tokens(&json!({}), true).is_err());
    }
}
