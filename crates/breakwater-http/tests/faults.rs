//! Fault injection end to end: the client against a scripted loopback server that
//! misbehaves in every way the README's reliability table lists. Each case must end in
//! a defined outcome (the class of the failed attempt, then a fallback, a retry or a
//! loud failure), never a panic, never past the deadline; and when every case has run,
//! no task and no socket is left behind.
//!
//! One test function runs the cases in order, so that the process's open file
//! descriptors can be counted without other tests opening sockets meanwhile; a failing
//! case is named in the panic message.

mod fake;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use breakwater_core::plan::FailReason;
use breakwater_core::{Class, ClassKind, RequestOptions, RouteConfig, TaskKind};
use breakwater_http::wire::{Provider, Request};
use breakwater_http::{Client, Completion, Error, StreamEvent};
use fake::{FakeServer, Reply, head, json, response};
use futures_util::StreamExt;
use tokio::time::Instant;

/// Step `a`: two attempts of at most 400 ms; step `b`: one attempt.
const ROUTE: &str = r#"
    name = "chat"
    [plan]
    min_attempt_ms = 50
    [backoff]
    base_ms = 10
    cap_ms = 40
    [[step]]
    provider = "a"
    model = "m-a"
    attempts = 2
    timeout_ms = 400
    [[step]]
    provider = "b"
    model = "m-b"
    attempts = 1
    timeout_ms = 2000
"#;

/// The deadline of every case but the last.
const DEADLINE: Duration = Duration::from_secs(5);

/// The slack allowed past a deadline for the scheduler to wake the task.
const SLACK: Duration = Duration::from_millis(150);

const TEXT_START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n";
const STOP: &str = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
const OVERLOADED: &str = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

fn delta(text: &str) -> String {
    format!(
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{text}\"}}}}\n\n"
    )
}

fn sse_head() -> Vec<u8> {
    head(200, &[("content-type", "text/event-stream")], None)
}

/// A DNS resolver that answers as RFC 6761 asks for `.invalid` names, without asking
/// any server: no test reaches the network, not even a DNS server.
struct NoSuchHost;

impl reqwest::dns::Resolve for NoSuchHost {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            Err::<reqwest::dns::Addrs, _>(format!("{host}: no such host (RFC 6761)").into())
        })
    }
}

fn client(a_url: &str, b_url: &str) -> Client {
    Client::builder()
        .provider("a", Provider::Anthropic, a_url, "sk-test-SECRET-a")
        .provider("b", Provider::OpenAi, b_url, "sk-test-SECRET-b")
        .route(RouteConfig::from_toml(ROUTE).expect("route parses"))
        .seed(11)
        .error_body_limit(64 * 1024)
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .dns_resolver(Arc::new(NoSuchHost))
                .build()
                .expect("reqwest"),
        )
        .build()
        .expect("client builds")
}

fn request() -> Request {
    Request::new(32).user("Say hello.")
}

/// What one case ended as: the class of step `a`'s first attempt and how the call ended.
#[derive(Debug)]
struct Observed {
    first: Option<Class>,
    end: End,
    elapsed: Duration,
}

#[derive(Debug, PartialEq)]
enum End {
    /// Answered by this step, with this text.
    Answered(usize, String),
    Failed(FailReason),
    StreamBroken(u32, String),
}

fn observe(result: Result<Completion, Error>, elapsed: Duration) -> Observed {
    let (history, end) = match result {
        Ok(done) => {
            let step = usize::from(done.fallback);
            (done.history, End::Answered(step, done.text))
        }
        Err(Error::Failed {
            reason, history, ..
        }) => (history, End::Failed(reason)),
        Err(Error::StreamBroken {
            tokens_delivered,
            partial,
            history,
            ..
        }) => (history, End::StreamBroken(tokens_delivered, partial)),
        Err(other) => panic!("unexpected error {other}"),
    };
    let first = history.attempts().next().map(|(_, _, class)| class);
    Observed {
        first,
        end,
        elapsed,
    }
}

/// Runs `complete` with step `a` at `a_url` and step `b` at a server that answers.
async fn complete(a_url: &str, deadline: Duration) -> Observed {
    let b = FakeServer::start(vec![json(200, &[], fake::OPENAI_OK)]).await;
    let client = client(a_url, &b.url());
    let start = Instant::now();
    let result = client
        .complete("chat", &request(), TaskKind::Critical, deadline)
        .await;
    let observed = observe(result, start.elapsed());
    b.shutdown().await;
    observed
}

/// Runs `complete` against a server at step `a` that plays `script`.
async fn complete_against(script: Vec<Reply>) -> Observed {
    let a = FakeServer::start(script).await;
    let observed = complete(&a.url(), DEADLINE).await;
    a.shutdown().await;
    observed
}

/// Runs `stream` against a server at step `a` that plays `script`; collects the text.
async fn stream_against(script: Vec<Reply>) -> Observed {
    let a = FakeServer::start(script).await;
    let b = FakeServer::start(vec![json(200, &[], fake::OPENAI_OK)]).await;
    let client = client(&a.url(), &b.url());
    let start = Instant::now();
    let mut events = Box::pin(client.stream(
        "chat",
        &request(),
        TaskKind::Critical,
        DEADLINE,
        RequestOptions::default(),
    ));
    let mut text = String::new();
    let mut error = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(StreamEvent::Delta(t)) => text.push_str(&t),
            Ok(StreamEvent::Done { .. }) => {}
            Ok(_) => {}
            Err(e) => error = Some(e),
        }
    }
    let elapsed = start.elapsed();
    a.shutdown().await;
    b.shutdown().await;
    match error {
        Some(e) => observe(Err(e), elapsed),
        None => Observed {
            first: None,
            end: End::Answered(0, text),
            elapsed,
        },
    }
}

fn rate_limited(retry_after: &[(&str, &str)]) -> Reply {
    let body = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    json(429, retry_after, body)
}

fn anthropic_ok() -> Reply {
    json(200, &[], fake::ANTHROPIC_OK)
}

/// A loopback address with nothing listening on it.
async fn dead_addr() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    listener.local_addr().expect("local addr")
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Checks one case: the first attempt's class and the end.
#[track_caller]
fn check(case: &str, got: &Observed, first: Option<ClassKind>, end: &End, deadline: Duration) {
    assert_eq!(
        got.first.map(|c| c.kind()),
        first,
        "case {case:?}: first attempt's class; observed {got:?}"
    );
    assert_eq!(
        &got.end, end,
        "case {case:?}: how it ended; observed {got:?}"
    );
    assert!(
        got.elapsed <= deadline + SLACK,
        "case {case:?} ran past its deadline: {got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_ends_in_a_defined_outcome_and_leaves_nothing_behind() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    let fds_before = open_fds();
    let fallback = End::Answered(1, "Hello from GPT".into());
    let retried = End::Answered(0, "Hello from Claude".into());
    let json_head = |status, length| {
        head(
            status,
            &[("content-type", "application/json")],
            Some(length),
        )
    };

    // 1. Connection refused.
    let dead = format!("http://{}", dead_addr().await);
    let got = complete(&dead, DEADLINE).await;
    check(
        "refused",
        &got,
        Some(ClassKind::Retriable),
        &fallback,
        DEADLINE,
    );

    // 2. Reset during the headers.
    let script = vec![Reply::RawThenReset(b"HTTP/1.1 200 OK\r\ncontent-ty".to_vec()); 2];
    let got = complete_against(script).await;
    check(
        "reset in headers",
        &got,
        Some(ClassKind::Retriable),
        &fallback,
        DEADLINE,
    );

    // 3. Reset mid-body.
    let mut partial = json_head(200, fake::ANTHROPIC_OK.len());
    partial.extend_from_slice(&fake::ANTHROPIC_OK.as_bytes()[..40]);
    let got = complete_against(vec![Reply::RawThenReset(partial), anthropic_ok()]).await;
    check(
        "reset mid-body",
        &got,
        Some(ClassKind::Retriable),
        &retried,
        DEADLINE,
    );

    // 4. Headers that never come: the attempt's timeout, then a retry.
    let got = complete_against(vec![Reply::Hang, anthropic_ok()]).await;
    check(
        "no headers",
        &got,
        Some(ClassKind::Retriable),
        &retried,
        DEADLINE,
    );
    assert!(got.elapsed >= Duration::from_millis(400), "{got:?}");

    // 5. A body that never ends: bytes keep trickling, the attempt's timeout still fires.
    let mut endless = json_head(200, 1 << 20);
    endless.extend_from_slice(b"{\"id\":");
    let got = complete_against(vec![Reply::RawThenTrickle(endless), anthropic_ok()]).await;
    check(
        "endless body",
        &got,
        Some(ClassKind::Retriable),
        &retried,
        DEADLINE,
    );

    // 6. Truncated JSON on a 200.
    let cut = &fake::ANTHROPIC_OK[..fake::ANTHROPIC_OK.len() / 2];
    let got = complete_against(vec![json(200, &[], cut), anthropic_ok()]).await;
    check(
        "truncated json",
        &got,
        Some(ClassKind::Retriable),
        &retried,
        DEADLINE,
    );

    // 7. An SSE error event after two tokens: the stream breaks, partial text kept.
    let body = format!("{TEXT_START}{}{}{OVERLOADED}", delta("Hel"), delta("lo"));
    let mut bytes = sse_head();
    bytes.extend_from_slice(body.as_bytes());
    let got = stream_against(vec![Reply::Raw(bytes)]).await;
    let broken = End::StreamBroken(2, "Hello".into());
    check(
        "error event after tokens",
        &got,
        Some(ClassKind::Overloaded),
        &broken,
        DEADLINE,
    );

    // 8. 529 with an HTML body.
    let html = b"<html><body><h1>529 Site is overloaded</h1></body></html>";
    let reply = Reply::Raw(response(529, &[("content-type", "text/html")], html));
    let got = complete_against(vec![reply.clone(), reply]).await;
    check(
        "529 html",
        &got,
        Some(ClassKind::Overloaded),
        &fallback,
        DEADLINE,
    );

    // 9. 429 with Retry-After values that mean nothing: ignored, the backoff waits.
    for value in ["-1", "NaN"] {
        let script = vec![rate_limited(&[("retry-after", value)]), anthropic_ok()];
        let got = complete_against(script).await;
        check(
            value,
            &got,
            Some(ClassKind::RateLimited),
            &retried,
            DEADLINE,
        );
        assert_eq!(
            got.first.and_then(|c| c.retry_after()),
            None,
            "{value}: {got:?}"
        );
    }
    // ... an absurdly long one: clamped to the maximum (60 s), which is past the
    // deadline, so the plan moves to the next step at once instead of waiting.
    let got = complete_against(vec![rate_limited(&[("retry-after", "1e30")])]).await;
    check(
        "1e30",
        &got,
        Some(ClassKind::RateLimited),
        &fallback,
        DEADLINE,
    );
    assert_eq!(
        got.first.and_then(|c| c.retry_after()),
        Some(Duration::from_secs(60))
    );
    assert!(got.elapsed < Duration::from_secs(1), "{got:?}");
    // ... a date in the past: no hint (as the core documents), the backoff waits.
    let past = [("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")];
    let got = complete_against(vec![rate_limited(&past), anthropic_ok()]).await;
    check(
        "past date",
        &got,
        Some(ClassKind::RateLimited),
        &retried,
        DEADLINE,
    );
    assert_eq!(got.first.and_then(|c| c.retry_after()), None);
    // ... two conflicting headers: the longer wait wins; 30 s is past the deadline,
    // so the plan moves to the next step at once instead of waiting.
    let twice = [("retry-after", "1"), ("retry-after", "30")];
    let got = complete_against(vec![rate_limited(&twice)]).await;
    check(
        "conflicting",
        &got,
        Some(ClassKind::RateLimited),
        &fallback,
        DEADLINE,
    );
    assert_eq!(
        got.first.and_then(|c| c.retry_after()),
        Some(Duration::from_secs(30))
    );
    assert!(got.elapsed < Duration::from_secs(1), "{got:?}");

    // 10. A 50 MB error body: read up to the limit, then dropped.
    let huge = 50 << 20;
    let reply = Reply::RawThenFill(json_head(500, huge), huge);
    let got = complete_against(vec![reply.clone(), reply]).await;
    check(
        "50 MB error body",
        &got,
        Some(ClassKind::Retriable),
        &fallback,
        DEADLINE,
    );

    // 11. Invalid UTF-8 in a stream before any text: a failed attempt, then a retry.
    let mut bad = sse_head();
    bad.extend_from_slice(TEXT_START.as_bytes());
    bad.extend_from_slice(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\xff\xfe\"}}\n\n");
    let mut good = sse_head();
    good.extend_from_slice(format!("{TEXT_START}{}{STOP}", delta("fine")).as_bytes());
    let got = stream_against(vec![Reply::Raw(bad), Reply::Raw(good)]).await;
    check(
        "invalid utf-8",
        &got,
        None,
        &End::Answered(0, "fine".into()),
        DEADLINE,
    );
    // ... and a multi-byte character split across two TCP writes arrives whole.
    let body = format!("{TEXT_START}{}{STOP}", delta("caf\u{e9} \u{1f30a}"));
    let cut = body.find('\u{e9}').expect("é") + 1;
    let mut first = sse_head();
    first.extend_from_slice(&body.as_bytes()[..cut]);
    let got = stream_against(vec![Reply::Pieces(vec![
        first,
        body.as_bytes()[cut..].to_vec(),
    ])])
    .await;
    check(
        "split utf-8",
        &got,
        None,
        &End::Answered(0, "caf\u{e9} \u{1f30a}".into()),
        DEADLINE,
    );

    // 12. A host that does not resolve.
    let got = complete("http://breakwater-fault.invalid", DEADLINE).await;
    check(
        "unresolvable host",
        &got,
        Some(ClassKind::Retriable),
        &fallback,
        DEADLINE,
    );

    // 13. A server that accepts and closes at once.
    let got = complete_against(vec![Reply::CloseAtOnce, Reply::CloseAtOnce]).await;
    check(
        "accept and close",
        &got,
        Some(ClassKind::Retriable),
        &fallback,
        DEADLINE,
    );

    // 14. A response slower than the whole deadline: the attempt is cut at the
    // deadline and the request fails loudly, on time.
    let short = Duration::from_millis(300);
    let a = FakeServer::start(vec![Reply::Hang]).await;
    let got = complete(&a.url(), short).await;
    a.shutdown().await;
    let late = End::Failed(FailReason::DeadlineExceeded {
        last: Some(ClassKind::Retriable),
    });
    check(
        "slower than the deadline",
        &got,
        Some(ClassKind::Retriable),
        &late,
        short,
    );

    // Nothing left behind: every connection task and socket closes once the clients
    // and servers are gone (allow a moment for closing sockets to be reaped).
    let settled = Instant::now() + Duration::from_secs(5);
    loop {
        let (tasks, fds) = (metrics.num_alive_tasks(), open_fds());
        if tasks <= tasks_before && fds <= fds_before {
            break;
        }
        assert!(
            Instant::now() < settled,
            "left behind: {tasks} tasks (before: {tasks_before}), {fds} fds (before: {fds_before})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
