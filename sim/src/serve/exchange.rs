//! One request, start to end: route, check, read, ask the model, answer in its time.
//!
//! The mapping of the model's answers to HTTP is in the [`serve`](super) module doc.

use std::sync::Arc;
use std::time::Duration;

use breakwater_core::Time;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::batch;
use super::catalog::{Target, Unroutable};
use super::clock::unix_secs;
use super::filler;
use super::http::{Body, Severed};
use super::route::{self, Miss, Operation, query_param};
use super::state::{Admission, Admitted, Shared};
use super::wire::{Answer, Problem, Stop, Wire};
use crate::provider::{Response as ModelResponse, ServiceId, Started};

/// Handles one request. `Err` severs the connection without an answer.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Severed> {
    let (parts, body) = request.into_parts();
    let endpoint = match route::parse(parts.method.as_str(), parts.uri.path()) {
        Ok(endpoint) => endpoint,
        Err(Miss::NotFound) => {
            let message = format!(
                "Invalid URL ({} {}): serve answers POST /v1/messages, POST /v1/chat/completions and POST /v1beta/models/{{model}}:generateContent (or :streamGenerateContent?alt=sse; /v1/models/ too), the batch APIs /v1/messages/batches, /v1/files and /v1/batches, each also under /<provider>/",
                parts.method,
                parts.uri.path()
            );
            let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
            return Ok(json_response(404, &[], &body));
        }
        Err(Miss::MethodNotAllowed(wire)) => return Ok(error(wire, &Problem::MethodNotAllowed)),
        Err(Miss::BadGeminiMethod(call)) => {
            let problem = Problem::NotFound(format!(
                "`{call}` is not {{model}}:generateContent or {{model}}:streamGenerateContent"
            ));
            return Ok(error(Wire::Gemini, &problem));
        }
    };
    let wire = endpoint.wire;
    let query = parts.uri.query();
    if let Err(problem) = wire.check_headers(&parts.headers, query) {
        return Ok(error(wire, &problem));
    }
    let bytes = match read_body(body, &parts.headers, shared.body_limit).await {
        Ok(bytes) => bytes,
        Err(Some(problem)) => return Ok(error(wire, &problem)),
        Err(None) => return Err(Severed),
    };
    if let Operation::Batch(op) = &endpoint.operation {
        return Ok(batch::respond(
            &shared,
            &endpoint,
            op,
            &parts.headers,
            &bytes,
        ));
    }
    let mut ask = match wire.parse(&bytes) {
        Ok(ask) => ask,
        Err(problem) => return Ok(error(wire, &problem)),
    };
    let model = match &endpoint.operation {
        Operation::Generate | Operation::Batch(_) => ask.model.clone().unwrap_or_default(),
        Operation::GenerateContent { model, stream } => {
            if *stream && query_param(query, "alt").as_deref() != Some("sse") {
                let problem = Problem::BadRequest(
                    "serve streams Gemini answers as server-sent events only: add ?alt=sse".into(),
                );
                return Ok(error(wire, &problem));
            }
            ask.stream = *stream;
            model.clone()
        }
    };
    let target = match shared.catalog.resolve(endpoint.prefix.as_deref(), &model) {
        Ok(target) => target,
        Err(Unroutable::NotFound(m)) => return Ok(error(wire, &Problem::NotFound(m))),
        Err(Unroutable::Ambiguous(m)) => return Ok(error(wire, &Problem::BadRequest(m))),
    };
    let admitted = shared.arrive(target, ask.text_bytes, ask.max_tokens);
    let answer = answer(wire, target, &model, &admitted, ask.include_usage);
    let reply = Success {
        wire,
        answer,
        stream: ask.stream,
        text_seed: admitted.text_seed,
    };
    match admitted.admission {
        Admission::Answered { at, response } => {
            wait_until(&shared, at).await?;
            answered(&shared, target, reply, response).await
        }
        Admission::Hung => {
            shared.stopped().await;
            Err(Severed)
        }
        Admission::Started(started) => {
            let job = Job::new(&shared, target.slot, started.id);
            serve_job(shared, job, reply, started).await
        }
        Admission::Queued { id, start } => {
            let job = Job::new(&shared, target.slot, id);
            let started = tokio::select! {
                started = start => started.map_err(|_| Severed)?,
                () = shared.stopped() => return Err(Severed),
            };
            serve_job(shared, job, reply, started).await
        }
    }
}

/// A success in the making: what to render and how.
struct Success {
    wire: Wire,
    answer: Answer,
    stream: bool,
    text_seed: u64,
}

/// A job at the model whose client is still there; dropping it unfinished tells the
/// model the client left.
struct Job {
    shared: Arc<Shared>,
    slot: usize,
    id: ServiceId,
    finished: bool,
}

impl Job {
    fn new(shared: &Arc<Shared>, slot: usize, id: ServiceId) -> Job {
        Job {
            shared: Arc::clone(shared),
            slot,
            id,
            finished: false,
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.abandon(self.slot, self.id);
        }
    }
}

fn answer(
    wire: Wire,
    target: Target,
    model: &str,
    admitted: &Admitted,
    include_usage: bool,
) -> Answer {
    let (slot, n) = (target.slot, admitted.serial);
    Answer {
        id: match wire {
            Wire::Anthropic => format!("msg_serve_{slot}_{n}"),
            Wire::OpenAi => format!("chatcmpl-serve-{slot}-{n}"),
            Wire::Gemini => format!("serve-{slot}-{n}"),
        },
        model: model.to_owned(),
        input_tokens: admitted.input_tokens,
        output_tokens: admitted.output_tokens,
        stop: if admitted.hit_limit {
            Stop::MaxTokens
        } else {
            Stop::Finished
        },
        include_usage,
        created: unix_secs(),
    }
}

/// An answer the model gave without service, now due.
async fn answered(
    shared: &Arc<Shared>,
    target: Target,
    reply: Success,
    response: ModelResponse,
) -> Result<Response<Body>, Severed> {
    let problem = match response {
        // A flaky provider's success: all of it at once.
        ModelResponse::Ok { .. } => {
            let tokens = filler::tokens(reply.text_seed, reply.answer.output_tokens);
            return Ok(if reply.stream {
                let w = reply.wire;
                let mut text = w.stream_head(&reply.answer);
                text.push_str(&w.stream_text(&reply.answer, &tokens.concat()));
                text.push_str(&w.stream_tail(&reply.answer));
                sse_response(reply.wire, &reply.answer, Body::full(text))
            } else {
                success(&reply, &tokens.concat())
            });
        }
        ModelResponse::RateLimited { retry_after } => Problem::RateLimited {
            retry_after: shared.clock.real(retry_after),
            limits: shared.catalog.limits(target),
        },
        ModelResponse::QuotaExhausted => Problem::QuotaExhausted,
        ModelResponse::Overloaded => Problem::Overloaded,
        ModelResponse::ServerError { status } => Problem::ServerError { status },
        ModelResponse::ConnectFailed => return Err(Severed),
        // Row answers never come from served providers.
        ModelResponse::RowRead { .. }
        | ModelResponse::RowWritten { .. }
        | ModelResponse::WriteConflict { .. } => Problem::ServerError { status: 500 },
    };
    Ok(error(reply.wire, &problem))
}

/// A job in service: the whole answer at `done_at`, or a stream from now on.
async fn serve_job(
    shared: Arc<Shared>,
    mut job: Job,
    reply: Success,
    started: Started,
) -> Result<Response<Body>, Severed> {
    let tokens = filler::tokens(reply.text_seed, reply.answer.output_tokens);
    if !reply.stream {
        wait_until(&shared, started.done_at).await?;
        job.finished = true;
        return Ok(success(&reply, &tokens.concat()));
    }
    let (tx, rx) = mpsc::channel(16);
    let response = sse_response(reply.wire, &reply.answer, Body::Stream(rx));
    tokio::spawn(pace(shared, job, reply, tokens, started, tx));
    Ok(response)
}

/// Sends a stream's events in the model's time: the head now, token `i` of `n` at
/// `first_token_at + i × (done_at − first_token_at) / n` (tokens already due go out
/// together), the tail at `done_at`.
async fn pace(
    shared: Arc<Shared>,
    mut job: Job,
    reply: Success,
    tokens: Vec<&'static str>,
    started: Started,
    tx: mpsc::Sender<Result<Bytes, Severed>>,
) {
    let (wire, answer) = (reply.wire, &reply.answer);
    let head = wire.stream_head(answer);
    if !head.is_empty() && tx.send(Ok(head.into())).await.is_err() {
        return;
    }
    let span = started
        .done_at
        .saturating_duration_since(started.first_token_at);
    let n = tokens.len();
    let due = |i: usize| {
        let share = span.as_nanos() * i as u128 / n.max(1) as u128;
        started.first_token_at + Duration::from_nanos(u64::try_from(share).unwrap_or(u64::MAX))
    };
    let mut i = 0;
    while i < n {
        if !wait_or_leave(&shared, &tx, due(i)).await {
            return;
        }
        let now = shared.clock.now();
        let mut j = i + 1;
        while j < n && due(j) <= now {
            j += 1;
        }
        let text = wire.stream_text(answer, &tokens[i..j].concat());
        if tx.send(Ok(text.into())).await.is_err() {
            return;
        }
        i = j;
    }
    if !wait_or_leave(&shared, &tx, started.done_at).await {
        return;
    }
    job.finished = true;
    let _ = tx.send(Ok(wire.stream_tail(answer).into())).await;
}

/// Waits until virtual time `t`; `false` if the client left or the server is stopping
/// (then the stream is cut).
async fn wait_or_leave(
    shared: &Shared,
    tx: &mpsc::Sender<Result<Bytes, Severed>>,
    t: Time,
) -> bool {
    tokio::select! {
        () = shared.clock.sleep_until(t) => true,
        () = tx.closed() => false,
        () = shared.stopped() => {
            // Cut the connection rather than end the body as if it were complete.
            let _ = tx.send(Err(Severed)).await;
            false
        }
    }
}

/// Waits until virtual time `t`, or severs when the server stops first.
async fn wait_until(shared: &Shared, t: Time) -> Result<(), Severed> {
    tokio::select! {
        () = shared.clock.sleep_until(t) => Ok(()),
        () = shared.stopped() => Err(Severed),
    }
}

/// Reads the body up to `limit` bytes. `Err(Some(413))` past it; `Err(None)` when the
/// client broke off.
async fn read_body(
    body: Incoming,
    headers: &hyper::HeaderMap,
    limit: usize,
) -> Result<Bytes, Option<Problem>> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(Some(Problem::TooLarge { limit }));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Some(Problem::TooLarge { limit }))
        }
        Err(_) => Err(None),
    }
}

fn success(reply: &Success, text: &str) -> Response<Body> {
    let body = reply.wire.body(&reply.answer, text);
    json_response(200, &request_id(reply.wire, &reply.answer), &body)
}

fn request_id(wire: Wire, answer: &Answer) -> Vec<(&'static str, String)> {
    match wire {
        Wire::Anthropic => vec![("request-id", format!("req_{}", answer.id))],
        Wire::OpenAi => vec![("x-request-id", format!("req_{}", answer.id))],
        Wire::Gemini => Vec::new(),
    }
}

fn sse_response(wire: Wire, answer: &Answer, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    for (name, value) in request_id(wire, answer) {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// The wire's error answer for `problem`.
pub(crate) fn error(wire: Wire, problem: &Problem) -> Response<Body> {
    let reply = wire.error(problem);
    json_response(reply.status, &reply.headers, &reply.body)
}

/// A JSON answer with `status` and extra `headers`.
pub(crate) fn json_response(
    status: u16,
    headers: &[(&'static str, String)],
    body: &Value,
) -> Response<Body> {
    let mut response = Response::new(Body::full(body.to_string()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == 529 {
        // Not in the IANA registry, so hyper knows no reason phrase for it.
        response
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(b"Site Overloaded"));
    }
    let map = response.headers_mut();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(*name, value);
        }
    }
    response
}
