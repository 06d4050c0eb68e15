//! The response cache in the client, against the scripted loopback server: an answer
//! stored on success is served, flagged and aged, when the providers fail; never to
//! another tenant; never past its TTL.

mod fake;

use std::time::Duration;

use breakwater_core::plan::FailReason;
use breakwater_core::{ClassKind, Key, RouteConfig, TaskKind};
use breakwater_http::cache::ResponseCache;
use breakwater_http::wire::{Provider, Request};
use breakwater_http::{CallOptions, Client, Completion, StreamEvent};
use fake::{FakeServer, Reply, json};
use futures_util::StreamExt;

const ROUTE: &str = r#"
    name = "chat"
    [backoff]
    base_ms = 5
    cap_ms = 20
    [[step]]
    provider = "a"
    model = "m-a"
    attempts = 1
    timeout_ms = 5000
    [[step]]
    provider = "b"
    model = "m-b"
    attempts = 1
    timeout_ms = 5000
"#;

/// A client with Anthropic at `a`, OpenAI at `b`, the two-step route `chat` (one
/// attempt each) and `cache`, if given.
fn client(a: &str, b: &str, cache: Option<ResponseCache>) -> Client {
    let mut builder = Client::builder()
        .provider("a", Provider::Anthropic, a, "sk-test-a")
        .provider("b", Provider::OpenAi, b, "sk-test-b")
        .route(RouteConfig::from_toml(ROUTE).expect("route"))
        .seed(11)
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        );
    if let Some(cache) = cache {
        builder = builder.cache(cache);
    }
    builder.build().expect("client")
}

fn request() -> Request {
    Request::new(64).system("Be brief.").user("Say hello.")
}

/// A loopback port with nothing listening on it.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}")
}

fn unavailable() -> Reply {
    json(
        503,
        &[],
        r#"{"type":"error","error":{"type":"api_error","message":"down"}}"#,
    )
}

async fn call(client: &Client, tenant: &str) -> Completion {
    client
        .complete_with(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
            CallOptions::new().tenant(tenant),
            |_| {},
        )
        .await
        .expect("interactive calls degrade rather than fail")
}

/// Both providers failed: a 503 at `a`, a refused connection at `b`.
fn assert_every_provider_failed(done: &Completion) {
    let classes: Vec<(usize, ClassKind)> = done
        .history
        .attempts()
        .map(|(step, _, class)| (step, class.kind()))
        .collect();
    assert_eq!(
        classes,
        [(0, ClassKind::Retriable), (1, ClassKind::Retriable)]
    );
    assert!(
        matches!(done.degraded, Some(FailReason::Exhausted { .. })),
        "{:?}",
        done.degraded
    );
    assert_eq!(done.attempts, 2);
}

#[tokio::test]
async fn a_cached_answer_is_served_flagged_with_its_age_when_every_provider_fails() {
    let server = FakeServer::start(vec![json(200, &[], fake::ANTHROPIC_OK), unavailable()]).await;
    let cache = ResponseCache::new(Duration::from_secs(20 * 60), 100);
    let client = client(&server.url(), &dead_url().await, Some(cache.clone()));

    let fresh = call(&client, "acme").await;
    assert_eq!(fresh.text, "Hello from Claude");
    assert!(!fresh.is_degraded() && fresh.from_cache.is_none());
    assert_eq!(cache.len(), 1);

    tokio::time::sleep(Duration::from_millis(60)).await;
    let served = call(&client, "acme").await;
    assert_eq!(served.text, "Hello from Claude");
    assert_eq!(served.stop_reason.as_deref(), Some("end_turn"));
    assert!(served.is_degraded());
    assert_eq!(served.key, None, "no provider answered this call");
    let hit = served.from_cache.as_ref().expect("served from the cache");
    assert_eq!(hit.key, Key::new("a", "m-a"));
    assert!(
        hit.age >= Duration::from_millis(60) && hit.age < cache.ttl(),
        "{:?}",
        hit.age
    );
    assert_every_provider_failed(&served);
    assert_eq!(client.metrics().degraded_cache, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn another_tenant_never_gets_the_cached_answer() {
    let server = FakeServer::start(vec![
        json(200, &[], fake::ANTHROPIC_OK),
        unavailable(),
        unavailable(),
    ])
    .await;
    let client = client(
        &server.url(),
        &dead_url().await,
        Some(ResponseCache::default()),
    );
    assert_eq!(call(&client, "acme").await.text, "Hello from Claude");

    // The identical request for another tenant: the structured empty result.
    let other = call(&client, "globex").await;
    assert_eq!(other.text, "");
    assert!(other.is_degraded() && other.from_cache.is_none());
    assert_every_provider_failed(&other);
    // The anonymous tenant is a tenant too.
    let anonymous = client
        .complete(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
        )
        .await
        .expect("degraded");
    assert!(anonymous.from_cache.is_none() && anonymous.text.is_empty());
    // The owner still gets it: the entry was there all along.
    let owner = call(&client, "acme").await;
    assert_eq!(owner.text, "Hello from Claude");
    assert!(owner.from_cache.is_some());
    let metrics = client.metrics();
    assert_eq!((metrics.degraded_empty, metrics.degraded_cache), (2, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn an_answer_expires_after_the_ttl() {
    let server = FakeServer::start(vec![json(200, &[], fake::ANTHROPIC_OK), unavailable()]).await;
    let ttl = Duration::from_millis(250);
    let client = client(
        &server.url(),
        &dead_url().await,
        Some(ResponseCache::new(ttl, 100)),
    );
    assert_eq!(call(&client, "acme").await.text, "Hello from Claude");
    tokio::time::sleep(ttl + Duration::from_millis(150)).await;
    let late = call(&client, "acme").await;
    assert!(late.is_degraded() && late.from_cache.is_none());
    assert_eq!(late.text, "");
    assert_every_provider_failed(&late);
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_cache_every_lookup_misses() {
    let server = FakeServer::start(vec![json(200, &[], fake::ANTHROPIC_OK), unavailable()]).await;
    let client = client(&server.url(), &dead_url().await, None);
    assert_eq!(call(&client, "acme").await.text, "Hello from Claude");
    let second = call(&client, "acme").await;
    assert!(second.is_degraded() && second.from_cache.is_none());
    assert_every_provider_failed(&second);
    server.shutdown().await;
}

#[tokio::test]
async fn a_streamed_answer_is_cached_and_served_to_a_later_stream() {
    let body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/anthropic/stream_ok.sse"),
    )
    .expect("fixture");
    let server = FakeServer::start(vec![
        Reply::Raw(fake::response(
            200,
            &[("content-type", "text/event-stream")],
            &body,
        )),
        unavailable(),
    ])
    .await;
    let client = client(
        &server.url(),
        &dead_url().await,
        Some(ResponseCache::default()),
    );
    let stream = |client: &Client| {
        client
            .stream(
                "chat",
                &request(),
                TaskKind::Interactive,
                Duration::from_secs(5),
                CallOptions::new().tenant("acme"),
            )
            .collect::<Vec<_>>()
    };
    let first = stream(&client).await;
    let text: String = first
        .iter()
        .filter_map(|item| match item {
            Ok(StreamEvent::Delta(text)) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(text.starts_with("Hello"), "{first:?}");
    assert!(matches!(first.last(), Some(Ok(StreamEvent::Done { .. }))));

    let second = stream(&client).await;
    let [
        Ok(StreamEvent::Cached {
            text: cached,
            hit,
            reason,
        }),
    ] = second.as_slice()
    else {
        panic!("{second:?}")
    };
    assert_eq!(cached, &text);
    assert_eq!(hit.key, Key::new("a", "m-a"));
    assert!(matches!(reason, FailReason::Exhausted { .. }), "{reason:?}");
    // A `complete` with the same tenant and request shares the entry.
    let done = call(&client, "acme").await;
    assert_eq!(done.text, text);
    server.shutdown().await;
}

async fn call_first(client: &Client, tenant: &str, options: CallOptions) -> Completion {
    client
        .complete_with(
            "chat",
            &request(),
            TaskKind::Interactive,
            Duration::from_secs(5),
            options.tenant(tenant),
            |_| {},
        )
        .await
        .expect("an answer")
}

#[tokio::test]
async fn cache_first_answers_an_idempotent_request_before_any_attempt() {
    // The server answers twice; a third request would get the script's 500.
    let server = FakeServer::start(vec![
        json(200, &[], fake::ANTHROPIC_OK),
        json(200, &[], fake::ANTHROPIC_OK),
    ])
    .await;
    let cache = ResponseCache::new(Duration::from_secs(20 * 60), 100);
    let client = client(&server.url(), &dead_url().await, Some(cache.clone()));

    // A miss runs the chain and stores the answer.
    let first = call_first(&client, "acme", CallOptions::new().cache_first()).await;
    assert_eq!(first.text, "Hello from Claude");
    assert!(first.from_cache.is_none() && first.attempts == 1);

    // A hit returns at once: no attempt, not degraded, flagged with its age.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let hit = call_first(&client, "acme", CallOptions::new().cache_first()).await;
    assert_eq!(hit.text, "Hello from Claude");
    assert_eq!((hit.attempts, hit.is_degraded()), (0, false));
    assert!(hit.history.is_empty());
    let from = hit.from_cache.expect("from the cache");
    assert_eq!(from.key, Key::new("a", "m-a"));
    assert!(from.age >= Duration::from_millis(30), "{:?}", from.age);
    assert_eq!(server.received().len(), 1, "the hit sent nothing");

    // Another tenant's identical request misses and goes to the provider.
    let other = call_first(&client, "globex", CallOptions::new().cache_first()).await;
    assert!(other.from_cache.is_none());
    assert_eq!(server.received().len(), 2);

    // Without cache-first, the cache serves only on degradation: the chain runs (and
    // meets the script's end, then the dead second step, so it degrades to the cache).
    let plain = call(&client, "acme").await;
    assert!(plain.is_degraded() && plain.from_cache.is_some());
    assert_eq!(server.received().len(), 3);

    // The two uses are counted apart.
    let metrics = client.metrics();
    assert_eq!(metrics.cache_first_hits, 1);
    assert_eq!(metrics.degraded_cache, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_explicit_cache_key_is_shared_by_different_requests_of_one_tenant() {
    let server = FakeServer::start(vec![json(200, &[], fake::ANTHROPIC_OK)]).await;
    let client = client(
        &server.url(),
        &dead_url().await,
        Some(ResponseCache::default()),
    );
    let keyed = || CallOptions::new().cache_first_with_key("daily-digest-2026-11-29");
    let first = call_first(&client, "acme", keyed()).await;
    assert!(first.from_cache.is_none());
    // Another wording under the same key: the same answer, from the cache.
    let again = client
        .complete_with(
            "chat",
            &Request::new(64).user("Give me today's digest."),
            TaskKind::Interactive,
            Duration::from_secs(5),
            keyed().tenant("acme"),
            |_| {},
        )
        .await
        .expect("answer");
    assert_eq!(again.text, "Hello from Claude");
    assert!(again.from_cache.is_some());
    // The derived key of the first request is a different entry: no hit.
    let derived = call_first(&client, "acme", CallOptions::new().cache_first()).await;
    assert!(derived.from_cache.is_none(), "{derived:?}");
    assert_eq!(server.received().len(), 2);
    server.shutdown().await;
}
