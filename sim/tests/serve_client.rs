//! `breakwater-http`'s client against `serve`'s 529 storm: a fallback route rides it
//! out.

mod serve_common;

use std::time::Duration;

use breakwater_core::{RouteConfig, TaskKind};
use breakwater_http::wire::Provider;
use breakwater_http::{Client, StreamEvent};
use futures_util::StreamExt;
use serve_common::{SERVE_529, hello, http, start};

/// The adapter rides out the storm: every request falls back to `openai`.
#[tokio::test]
async fn the_client_falls_back_through_the_storm() {
    let server = start(SERVE_529, |c| c.start(Duration::from_secs(12)).speed(2.0)).await;
    let route = RouteConfig::from_toml(
        r#"
        name = "chat"
        [backoff]
        base_ms = 10
        cap_ms = 40
        [[step]]
        provider = "anthropic"
        model = "claude-sonnet-4-5"
        attempts = 2
        timeout_ms = 5000
        [[step]]
        provider = "openai"
        model = "gpt-4o-mini"
        attempts = 2
        timeout_ms = 5000
        "#,
    )
    .expect("route parses");
    let client = Client::builder()
        .provider(
            "anthropic",
            Provider::Anthropic,
            server.provider_url("anthropic"),
            "k-a",
        )
        .provider(
            "openai",
            Provider::OpenAi,
            server.provider_url("openai"),
            "k-o",
        )
        .route(route)
        .seed(11)
        .http_client(http())
        .build()
        .expect("client builds");
    let request = hello();
    let calls = (0..12).map(|_| {
        client.complete(
            "chat",
            &request,
            TaskKind::Interactive,
            Duration::from_secs(10),
        )
    });
    let results = futures_util::future::join_all(calls).await;
    for result in &results {
        let done = result.as_ref().expect("served");
        assert!(done.fallback && !done.is_degraded());
        assert_eq!(
            done.key.as_ref().map(|k| k.provider().to_owned()),
            Some("openai".to_owned())
        );
        assert!(!done.text.is_empty() && done.usage.output > 0);
    }
    let m = client.metrics();
    assert_eq!((m.requests, m.successes, m.failed), (12, 12, 0));
    assert_eq!(m.fallbacks, 12);
    let anthropic = m
        .per_key
        .iter()
        .find(|k| k.provider == "anthropic")
        .expect("anthropic was tried");
    assert_eq!(anthropic.successes, 0);
    assert!(anthropic.overloaded >= 1);
    let anthropic_attempts = anthropic.attempts;
    // A stream rides it out too.
    let mut stream = Box::pin(client.stream(
        "chat",
        &request,
        TaskKind::Interactive,
        Duration::from_secs(10),
        breakwater_http::CallOptions::default(),
    ));
    let mut streamed = String::new();
    let mut finished = None;
    while let Some(event) = stream.next().await {
        match event.expect("no error") {
            StreamEvent::Delta(t) => streamed.push_str(&t),
            StreamEvent::Done { key, fallback, .. } => finished = Some((key, fallback)),
            _ => {}
        }
    }
    let (key, fallback) = finished.expect("the stream finished");
    assert!(fallback && key.provider() == "openai" && !streamed.is_empty());
    let anthropic_attempts = client
        .metrics()
        .per_key
        .iter()
        .find(|k| k.provider == "anthropic")
        .map_or(anthropic_attempts, |k| k.attempts);
    let stats = server.stats();
    assert_eq!(stats[0].1.overloaded, anthropic_attempts);
    assert_eq!(stats[0].1.arrivals, anthropic_attempts);
    assert_eq!(stats[1].1.arrivals, 13);
    server.shutdown().await;
}
