//! The client against a scripted loopback server: every provider's success, and the
//! faults the plan must ride out. Real clock, short durations.

mod fake;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use breakwater_core::plan::{EntryEvent, FailReason};
use breakwater_core::{ClassKind, Key, Notice, RequestOptions, RouteConfig, TaskKind};
use breakwater_http::wire::{PromptVariant, Provider, Request};
use breakwater_http::{Client, Error};
use fake::{FakeServer, Reply, json};
use tokio::time::Instant;

const KEY_A: &str = "sk-test-SECRET-a-0123456789";
const KEY_B: &str = "sk-test-SECRET-b-9876543210";

/// A client with providers `a` (at `a_url`, speaking `a_kind`) and `b`, the route
/// `chat` given in TOML, fast backoff, and the prompt variants `claude` and `gpt`.
fn client(a: (Provider, &str), b: (Provider, &str), route: &str) -> Client {
    let config = RouteConfig::from_toml(route).expect("route parses");
    Client::builder()
        .provider("a", a.0, a.1, KEY_A)
        .provider("b", b.0, b.1, KEY_B)
        .route(config)
        .prompt_variant(
            "claude",
            PromptVariant::with_system("You are Claude. Be brief."),
        )
        .prompt_variant("gpt", PromptVariant::with_system("You are GPT. Be brief."))
        .seed(7)
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        )
        .build()
        .expect("client builds")
}

fn request() -> Request {
    Request::new(64)
        .system("Default system.")
        .user("Say hello.")
}

/// A route with one step at `a` (model `m-a`) and one at `b` (model `m-b`); `extra`
/// goes at the top (route-level tables must come before the steps).
fn two_steps(a_attempts: u32, a_timeout_ms: u64, extra: &str) -> String {
    format!(
        r#"
        name = "chat"
        {extra}
        [backoff]
        base_ms = 10
        cap_ms = 50
        [[step]]
        provider = "a"
        model = "m-a"
        attempts = {a_attempts}
        timeout_ms = {a_timeout_ms}
        prompt_variant = "claude"
        [[step]]
        provider = "b"
        model = "m-b"
        attempts = 2
        timeout_ms = 5000
        prompt_variant = "gpt"
        "#
    )
}

fn plan_table(min_attempt_ms: u64, slow_ms: u64) -> String {
    format!("[plan]\nmin_attempt_ms = {min_attempt_ms}\nslow_notice_ms = {slow_ms}\n")
}

/// A loopback port with nothing listening on it.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    format!("http://{addr}")
}

fn classes(history: &breakwater_core::plan::History) -> Vec<(usize, ClassKind)> {
    history
        .attempts()
        .map(|(step, _, c)| (step, c.kind()))
        .collect()
}

#[tokio::test]
async fn anthropic_success() {
    let server = FakeServer::start(vec![json(200, &[], fake::ANTHROPIC_OK)]).await;
    let other = dead_url().await;
    let client = client(
        (Provider::Anthropic, &server.url()),
        (Provider::OpenAi, &other),
        &two_steps(1, 5000, ""),
    );
    let done = client
        .complete(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(done.text, "Hello from Claude");
    assert_eq!(done.key, Some(Key::new("a", "m-a")));
    assert_eq!((done.usage.input, done.usage.output), (12, 5));
    assert_eq!(done.attempts, 1);
    assert!(!done.fallback && !done.is_degraded());
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/v1/messages");
    assert_eq!(got[0].header("x-api-key"), Some(KEY_A));
    assert_eq!(got[0].header("anthropic-version"), Some("2023-06-01"));
    let body = got[0].json();
    assert_eq!(body["model"], "m-a");
    assert_eq!(body["system"], "You are Claude. Be brief.");
    assert_eq!(body["messages"][0]["content"], "Say hello.");
    assert_eq!(client.metrics().successes, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn openai_success() {
    let server = FakeServer::start(vec![json(200, &[], fake::OPENAI_OK)]).await;
    let client = client(
        (Provider::OpenAi, &server.url()),
        (Provider::OpenAi, &dead_url().await),
        &two_steps(1, 5000, ""),
    );
    let done = client
        .complete(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(done.text, "Hello from GPT");
    assert_eq!((done.usage.input, done.usage.output), (11, 4));
    let got = server.received();
    assert_eq!(got[0].path, "/v1/chat/completions");
    assert_eq!(
        got[0].header("authorization"),
        Some(format!("Bearer {KEY_A}").as_str())
    );
    assert_eq!(got[0].json()["model"], "m-a");
    server.shutdown().await;
}

#[tokio::test]
async fn gemini_success() {
    let server = FakeServer::start(vec![json(200, &[], fake::GEMINI_OK)]).await;
    let client = client(
        (Provider::Gemini, &server.url()),
        (Provider::OpenAi, &dead_url().await),
        &two_steps(1, 5000, ""),
    );
    let done = client
        .complete(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(done.text, "Hello from Gemini");
    assert_eq!((done.usage.input, done.usage.output), (10, 3));
    let got = server.received();
    assert!(
        got[0].path.contains("m-a:generateContent"),
        "{}",
        got[0].path
    );
    assert_eq!(got[0].header("x-goog-api-key"), Some(KEY_A));
    assert!(got[0].json()["contents"].is_array());
    server.shutdown().await;
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    let server = FakeServer::start(vec![
        json(
            429,
            &[("retry-after", "1")],
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        ),
        json(200, &[], fake::ANTHROPIC_OK),
    ])
    .await;
    let client = client(
        (Provider::Anthropic, &server.url()),
        (Provider::OpenAi, &dead_url().await),
        &two_steps(3, 5000, &plan_table(100, 60_000)),
    );
    let started = Instant::now();
    let done = client
        .complete(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(done.text, "Hello from Claude");
    assert_eq!(done.attempts, 2);
    assert_eq!(
        classes(&done.history),
        [(0, ClassKind::RateLimited), (0, ClassKind::Success)]
    );
    assert!(done.history.entries().any(|e| matches!(
        e.event,
        EntryEvent::Waited { wait, retry_after: true } if wait == Duration::from_secs(1)
    )));
    server.shutdown().await;
}

#[tokio::test]
async fn overloaded_html_falls_back_with_the_other_prompt_variant() {
    let primary = FakeServer::start(vec![Reply::Raw(fake::response(
        529,
        &[("content-type", "text/html")],
        b"<html><body><h1>529 Overloaded</h1></body></html>",
    ))])
    .await;
    let secondary = FakeServer::start(vec![json(200, &[], fake::OPENAI_OK)]).await;
    let client = client(
        (Provider::Anthropic, &primary.url()),
        (Provider::OpenAi, &secondary.url()),
        &two_steps(1, 5000, ""),
    );
    let done = client
        .complete(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(done.text, "Hello from GPT");
    assert_eq!(done.key, Some(Key::new("b", "m-b")));
    assert!(done.fallback);
    assert_eq!(
        classes(&done.history),
        [(0, ClassKind::Overloaded), (1, ClassKind::Success)]
    );
    let body = String::from_utf8(secondary.received()[0].body.clone()).unwrap();
    assert!(body.contains("You are GPT. Be brief."), "{body}");
    assert!(
        !body.contains("Claude") && !body.contains("Default system."),
        "{body}"
    );
    assert_eq!(
        secondary.received()[0].header("authorization"),
        Some(format!("Bearer {KEY_B}").as_str())
    );
    let metrics = client.metrics();
    assert_eq!((metrics.requests, metrics.fallbacks), (1, 1));
    primary.shutdown().await;
    secondary.shutdown().await;
}

#[tokio::test]
async fn connection_refused_moves_to_the_next_step() {
    let secondary = FakeServer::start(vec![json(200, &[], fake::OPENAI_OK)]).await;
    let client = client(
        (Provider::Anthropic, &dead_url().await),
        (Provider::OpenAi, &secondary.url()),
        &two_steps(1, 5000, ""),
    );
    let done = client
        .complete(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(done.text, "Hello from GPT");
    assert_eq!(
        classes(&done.history),
        [(0, ClassKind::Retriable), (1, ClassKind::Success)]
    );
    secondary.shutdown().await;
}

#[tokio::test]
async fn headers_that_never_come_time_the_attempt_out() {
    let primary = FakeServer::start(vec![Reply::Hang]).await;
    let secondary = FakeServer::start(vec![json(200, &[], fake::OPENAI_OK)]).await;
    let client = client(
        (Provider::Anthropic, &primary.url()),
        (Provider::OpenAi, &secondary.url()),
        &two_steps(1, 300, &plan_table(100, 200)),
    );
    let notices = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&notices);
    let started = Instant::now();
    let noticed_at = Arc::new(std::sync::Mutex::new(None));
    let noticed = Arc::clone(&noticed_at);
    let done = client
        .complete_with(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
            RequestOptions::default(),
            move |notice| {
                assert_eq!(notice, Notice::Slow);
                seen.fetch_add(1, Ordering::Relaxed);
                *noticed.lock().unwrap() = Some(started.elapsed());
            },
        )
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    assert_eq!(done.text, "Hello from GPT");
    assert_eq!(
        classes(&done.history),
        [(0, ClassKind::Retriable), (1, ClassKind::Success)]
    );
    // The slow notice (200 ms) fired once, at its threshold, while the first attempt
    // still hung (it times out at 300 ms).
    assert_eq!(notices.load(Ordering::Relaxed), 1);
    let at = noticed_at.lock().unwrap().expect("a notice arrived");
    assert!(
        at >= Duration::from_millis(200) && at < Duration::from_millis(300),
        "{at:?}"
    );
    primary.shutdown().await;
    secondary.shutdown().await;
}

#[tokio::test]
async fn truncated_json_on_200_is_retried() {
    let truncated = &fake::ANTHROPIC_OK[..60];
    let server = FakeServer::start(vec![
        json(200, &[], truncated),
        json(200, &[], fake::ANTHROPIC_OK),
    ])
    .await;
    let client = client(
        (Provider::Anthropic, &server.url()),
        (Provider::OpenAi, &dead_url().await),
        &two_steps(3, 5000, ""),
    );
    let done = client
        .complete(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(done.text, "Hello from Claude");
    assert_eq!(
        classes(&done.history),
        [(0, ClassKind::Retriable), (0, ClassKind::Success)]
    );
    assert_eq!(server.received().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn an_oversized_error_body_is_read_only_up_to_the_limit() {
    // A 400 announcing 10 MB, of which 256 KiB are sent before the server goes quiet:
    // reading past the 64 KiB limit would hang until the attempt's timeout.
    let mut bytes = fake::head(400, &[("content-type", "application/json")], Some(10 << 20));
    bytes.extend(std::iter::repeat_n(b' ', 256 << 10));
    let server = FakeServer::start(vec![Reply::RawThenHang(bytes)]).await;
    let client = client(
        (Provider::Anthropic, &server.url()),
        (Provider::OpenAi, &dead_url().await),
        &two_steps(3, 4000, ""),
    );
    let started = Instant::now();
    let error = client
        .complete(
            "chat",
            &request(),
            TaskKind::Critical,
            Duration::from_secs(10),
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let Error::Failed {
        reason, history, ..
    } = error
    else {
        panic!("{error:?}")
    };
    assert!(matches!(reason, FailReason::NonRetriable(_)), "{reason:?}");
    assert_eq!(classes(&history), [(0, ClassKind::NonRetriable)]);
    server.shutdown().await;
}

#[tokio::test]
async fn the_deadline_holds_across_waits() {
    // 429 asking for 1 s, then an attempt that hangs: the attempt's 60 s timeout is cut
    // to what is left of the 2 s deadline.
    let server = FakeServer::start(vec![
        json(
            429,
            &[("retry-after", "1")],
            r#"{"type":"error","error":{"type":"rate_limit_error"}}"#,
        ),
        Reply::Hang,
    ])
    .await;
    let client = client(
        (Provider::Anthropic, &server.url()),
        (Provider::OpenAi, &dead_url().await),
        &two_steps(5, 60_000, &plan_table(100, 60_000)),
    );
    let deadline = Duration::from_secs(2);
    let started = Instant::now();
    let error = client
        .complete("chat", &request(), TaskKind::Critical, deadline)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed <= deadline + Duration::from_millis(250),
        "{elapsed:?}"
    );
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    let Error::Failed { reason, .. } = error else {
        panic!("{error:?}")
    };
    assert!(
        matches!(reason, FailReason::DeadlineExceeded { .. }),
        "{reason:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_400_fails_at_once_with_history() {
    let server = FakeServer::start(vec![json(
        400,
        &[],
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}"#,
    )])
    .await;
    let client = client(
        (Provider::Anthropic, &server.url()),
        (Provider::OpenAi, &dead_url().await),
        &two_steps(3, 5000, ""),
    );
    let error = client
        .complete(
            "chat",
            &request(),
            TaskKind::Critical,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    let Error::Failed {
        reason,
        attempts,
        history,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*attempts, 1);
    assert!(matches!(reason, FailReason::NonRetriable(_)), "{reason:?}");
    assert_eq!(classes(history), [(0, ClassKind::NonRetriable)]);
    assert_eq!(server.received().len(), 1);
    assert_eq!(client.metrics().failed, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_interactive_request_degrades_to_an_empty_flagged_result() {
    // A 503, then a second provider that refuses connections: the chain is exhausted
    // (a 400 would fail loudly instead: the plan does not hide a bad request).
    let server = FakeServer::start(vec![json(503, &[], "{}")]).await;
    let client = client(
        (Provider::Anthropic, &server.url()),
        (Provider::OpenAi, &dead_url().await),
        &two_steps(1, 5000, ""),
    );
    let done = client
        .complete(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(done.is_degraded());
    assert_eq!(done.text, "");
    assert_eq!(done.key, None);
    assert!(
        matches!(done.degraded, Some(FailReason::Exhausted { .. })),
        "{:?}",
        done.degraded
    );
    assert_eq!(
        classes(&done.history),
        [
            (0, ClassKind::Retriable),
            (1, ClassKind::Retriable),
            (1, ClassKind::Retriable)
        ]
    );
    assert_eq!(client.metrics().degraded_empty, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn the_api_key_never_shows() {
    let server = FakeServer::start(vec![json(
        401,
        &[],
        r#"{"error":{"type":"authentication_error"}}"#,
    )])
    .await;
    let client = client(
        (Provider::Anthropic, &server.url()),
        (Provider::OpenAi, &dead_url().await),
        &two_steps(1, 5000, ""),
    );
    let debug = format!("{client:?}");
    assert!(!debug.contains("SECRET"), "{debug}");
    let error = client
        .complete(
            "chat",
            &request(),
            TaskKind::Critical,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("SECRET"), "{text}");
    }
    let unknown = client
        .complete(
            "nope",
            &request(),
            TaskKind::Critical,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::UnknownRoute(_)));
    let key = breakwater_http::ApiKey::new(KEY_A);
    assert!(!format!("{key:?} {key}").contains("SECRET"));
    let bad = Client::builder()
        .provider("a", Provider::OpenAi, "not a url", KEY_A)
        .build()
        .unwrap_err();
    assert!(!bad.to_string().contains("SECRET") && !format!("{bad:?}").contains("SECRET"));
    server.shutdown().await;
}
