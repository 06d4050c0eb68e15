//! `Client::stream` against the scripted loopback server: an `overloaded_error` event
//! before the first token is retried; after it, the stream breaks with the partial text.

mod fake;

use std::time::Duration;

use breakwater_core::{ClassKind, Key, RequestOptions, RouteConfig, TaskKind};
use breakwater_http::wire::{Provider, Request};
use breakwater_http::{Client, Error, StreamEvent};
use fake::{FakeServer, Reply};
use futures_util::StreamExt;

const OVERLOADED_EVENT: &str = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n";

fn sse(body: &str) -> Reply {
    Reply::Raw(fake::response(
        200,
        &[("content-type", "text/event-stream")],
        body.as_bytes(),
    ))
}

fn fixture(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read_to_string(full).expect("fixture")
}

fn client(url: &str) -> Client {
    client_with(
        url,
        r#"
        name = "chat"
        [backoff]
        base_ms = 10
        cap_ms = 50
        [[step]]
        provider = "a"
        model = "m-a"
        attempts = 3
        timeout_ms = 5000
        "#,
    )
}

/// A client of one Anthropic provider at `url` with the route written in `route`.
fn client_with(url: &str, route: &str) -> Client {
    let route = RouteConfig::from_toml(route).expect("route");
    Client::builder()
        .provider("a", Provider::Anthropic, url, "sk-test-SECRET")
        .route(route)
        .seed(3)
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        )
        .build()
        .expect("client")
}

async fn collect(client: &Client) -> Vec<Result<StreamEvent, Error>> {
    let request = Request::new(64).user("Tell me a story.");
    client
        .stream(
            "chat",
            &request,
            TaskKind::Critical,
            Duration::from_secs(5),
            RequestOptions::default(),
        )
        .collect()
        .await
}

#[tokio::test]
async fn overloaded_before_the_first_token_is_retried() {
    let server = FakeServer::start(vec![
        sse(&format!("{START}{OVERLOADED_EVENT}")),
        sse(&fixture("anthropic/stream_ok.sse")),
    ])
    .await;
    let client = client(&server.url());
    let items = collect(&client).await;
    let text: String = items
        .iter()
        .filter_map(|item| match item {
            Ok(StreamEvent::Delta(text)) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(text.starts_with("Hello"), "{items:?}");
    assert!(
        !items
            .iter()
            .any(|i| matches!(i, Ok(StreamEvent::Restarted)))
    );
    assert_eq!(
        items.first().and_then(|i| i.as_ref().ok()),
        Some(&StreamEvent::Source(Key::new("a", "m-a")))
    );
    let Some(Ok(StreamEvent::Done { attempts, key, .. })) = items.last() else {
        panic!("{items:?}")
    };
    assert_eq!((*attempts, key), (2, &Key::new("a", "m-a")));
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].json()["stream"], true);
    let per_key = &client.metrics().per_key;
    assert_eq!(per_key[0].overloaded, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn overloaded_after_the_first_token_breaks_the_stream() {
    let server = FakeServer::start(vec![
        sse(&fixture("anthropic/stream_overloaded.sse")),
        sse(&fixture("anthropic/stream_ok.sse")),
    ])
    .await;
    let client = client(&server.url());
    let items = collect(&client).await;
    let Some(Err(Error::StreamBroken {
        tokens_delivered,
        partial,
        key,
        history,
        ..
    })) = items.last()
    else {
        panic!("{items:?}")
    };
    assert_eq!(*tokens_delivered, 2);
    assert_eq!(partial, "Once upon a time");
    assert_eq!(key, &Some(Key::new("a", "m-a")));
    let classes: Vec<ClassKind> = history.attempts().map(|(_, _, c)| c.kind()).collect();
    assert_eq!(classes, [ClassKind::Overloaded]);
    assert_eq!(server.received().len(), 1, "never retried");
    let error = items.last().and_then(|i| i.as_ref().err()).expect("error");
    assert_eq!(error.to_string(), "stream broken after 2 tokens");
    server.shutdown().await;
}

#[tokio::test]
async fn the_slow_notice_reaches_the_stream_while_an_attempt_is_in_flight() {
    // The provider sends its first token, then nothing more (no length: the body runs
    // until the connection closes, which it never does).
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
    let delta = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Once\"}}\n\n";
    let server = FakeServer::start(vec![Reply::RawThenHang(
        format!("{head}{START}{delta}").into_bytes(),
    )])
    .await;
    let client = client_with(
        &server.url(),
        r#"
        name = "chat"
        [plan]
        slow_notice_ms = 200
        [[step]]
        provider = "a"
        model = "m-a"
        attempts = 1
        timeout_ms = 600
        "#,
    );
    let events = collect(&client).await;
    // The notice arrives at its threshold, while the attempt is still streaming: after
    // the first token and before the attempt times out and the stream breaks.
    let delta_at = events
        .iter()
        .position(|e| matches!(e, Ok(StreamEvent::Delta(_))))
        .expect("the first token");
    let notice_at = events
        .iter()
        .position(|e| matches!(e, Ok(StreamEvent::Notice(_))))
        .expect("a notice during the attempt");
    assert!(delta_at < notice_at, "{events:?}");
    assert!(
        matches!(events.last(), Some(Err(Error::StreamBroken { .. }))),
        "{events:?}"
    );
    server.shutdown().await;
}
