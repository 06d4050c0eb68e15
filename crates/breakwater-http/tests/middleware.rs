//! The `reqwest-middleware` middleware against a scripted loopback server. Real clock,
//! short durations.

mod fake;

use std::sync::Arc;
use std::time::Duration;

use breakwater_core::breaker::RejectReason;
use breakwater_core::budget::RatioConfig;
use breakwater_core::plan::{EntryEvent, Skip};
use breakwater_core::{
    Backoff, BudgetConfig, ClassKind, Key, Outcome, Registry, RegistryConfig, TimeoutPhase,
};
use breakwater_http::middleware::{BreakwaterMiddleware, CallReport, breakwater_error};
use breakwater_http::tower::{BreakwaterError, CallDeadline};
use fake::{FakeServer, Reply, response};
use reqwest_middleware::ClientWithMiddleware;
use tokio::time::Instant;

fn registry(config: RegistryConfig) -> Arc<Registry> {
    Arc::new(Registry::new(config).expect("valid registry"))
}

fn client(middleware: BreakwaterMiddleware) -> ClientWithMiddleware {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest");
    reqwest_middleware::ClientBuilder::new(http)
        .with(middleware)
        .build()
}

fn middleware(registry: Arc<Registry>) -> breakwater_http::middleware::MiddlewareBuilder {
    BreakwaterMiddleware::builder(registry)
        .attempts(3)
        .backoff(Backoff::exponential(
            Duration::from_millis(5),
            Duration::from_millis(20),
        ))
        .deadline(Duration::from_secs(5))
}

fn status(code: u16, headers: &[(&str, &str)]) -> Reply {
    Reply::Raw(response(code, headers, b"body"))
}

/// The server's key under the default `host_key`.
fn host_key(server: &FakeServer) -> Key {
    Key::new(server.url().trim_start_matches("http://"), "*")
}

#[tokio::test]
async fn a_429_with_retry_after_then_200() {
    let server = FakeServer::start(vec![
        status(429, &[("retry-after", "1")]),
        Reply::Raw(response(200, &[], b"fine")),
    ])
    .await;
    let client = client(
        middleware(registry(RegistryConfig::default()))
            .build()
            .unwrap(),
    );
    let start = Instant::now();
    let answer = client
        .post(server.url())
        .body("{\"q\":1}")
        .send()
        .await
        .unwrap();
    // The backoff alone would have waited at most 20 ms.
    assert!(start.elapsed() >= Duration::from_secs(1));
    assert_eq!(answer.status(), 200);
    let report = answer.extensions().get::<CallReport>().cloned().unwrap();
    assert_eq!(answer.text().await.unwrap(), "fine");
    assert_eq!(report.key, host_key(&server));
    assert_eq!(report.attempts, 2);
    assert!(report.history.entries().any(|e| e.event
        == EntryEvent::Waited {
            wait: Duration::from_secs(1),
            retry_after: true
        }));
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter().all(|r| r.body == b"{\"q\":1}"),
        "the body is resent whole"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_budget_that_refuses_stops_the_retries() {
    // Each request earns half a retry, and there is no reserve: the first request may
    // not retry, the second may retry once.
    let registry = registry(RegistryConfig {
        budget: Some(BudgetConfig::Ratio(RatioConfig {
            ratio: 0.5,
            min_per_sec: 0,
            ttl: Duration::from_secs(60),
        })),
        breaker: None,
        ..RegistryConfig::default()
    });
    let server = FakeServer::start(vec![
        status(500, &[]),
        status(500, &[]),
        status(500, &[]),
        status(200, &[]),
    ])
    .await;
    let client = client(middleware(registry).build().unwrap());
    for expected_attempts in [1, 2] {
        let error = client.get(server.url()).send().await.unwrap_err();
        let Some(BreakwaterError::Exhausted {
            last: Some(last),
            attempts,
            history,
            ..
        }) = breakwater_error(&error)
        else {
            panic!("expected exhaustion, got {error:?}");
        };
        assert_eq!(*attempts, expected_attempts);
        assert_eq!(last.status(), Some(500));
        assert!(matches!(
            history.entries().last().map(|e| e.event),
            Some(EntryEvent::Skipped(Skip::Budget(_)))
        ));
    }
    assert_eq!(server.received().len(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn an_open_breaker_lets_no_request_leave() {
    let server = FakeServer::start(vec![status(200, &[])]).await;
    let registry = registry(RegistryConfig::default());
    // One breaker for every request of this client, whatever the host.
    let key = Key::new("shared-upstream", "*");
    let now = breakwater_http::clock::read().now;
    registry.breaker(&key).unwrap().force_open(now);
    let client = client(
        middleware(Arc::clone(&registry))
            .key_with(|_| Key::new("shared-upstream", "*"))
            .build()
            .unwrap(),
    );
    let error = client.get(server.url()).send().await.unwrap_err();
    match breakwater_error(&error) {
        Some(BreakwaterError::Rejected {
            key: rejected,
            reason: RejectReason::Open,
            until: Some(_),
            ..
        }) => assert_eq!(*rejected, key),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(server.received().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_body_that_cannot_be_cloned_gets_one_attempt() {
    let server = FakeServer::start(vec![status(503, &[]), status(200, &[])]).await;
    let client = client(
        middleware(registry(RegistryConfig::default()))
            .build()
            .unwrap(),
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(b"one ".to_vec()), Ok(b"two".to_vec())];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let error = client
        .post(server.url())
        .header("content-length", "7")
        .body(body)
        .send()
        .await
        .unwrap_err();
    match breakwater_error(&error) {
        Some(BreakwaterError::Exhausted {
            last: Some(last),
            attempts: 1,
            ..
        }) => assert_eq!(last.status(), Some(503)),
        other => panic!("expected one attempt, got {other:?}"),
    }
    let got = server.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b"one two");
    server.shutdown().await;
}

#[tokio::test]
async fn a_non_retriable_status_comes_back_as_it_is() {
    let server = FakeServer::start(vec![status(404, &[]), status(200, &[])]).await;
    let client = client(
        middleware(registry(RegistryConfig::default()))
            .build()
            .unwrap(),
    );
    let answer = client.get(server.url()).send().await.unwrap();
    assert_eq!(answer.status(), 404);
    let report = answer.extensions().get::<CallReport>().unwrap();
    let classes: Vec<ClassKind> = report
        .history
        .attempts()
        .map(|(_, _, c)| c.kind())
        .collect();
    assert_eq!(classes, [ClassKind::NonRetriable]);
    assert_eq!(server.received().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_may_bring_its_own_deadline() {
    let server = FakeServer::start(vec![Reply::Hang, Reply::Hang]).await;
    let client = client(
        middleware(registry(RegistryConfig::default()))
            .build()
            .unwrap(),
    );
    let start = Instant::now();
    let error = client
        .get(server.url())
        .with_extension(CallDeadline(Duration::from_millis(300)))
        .send()
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(300));
    assert!(elapsed < Duration::from_secs(5), "not the configured 5 s");
    match breakwater_error(&error) {
        Some(BreakwaterError::DeadlineExceeded {
            last:
                Some(Outcome::TimedOut {
                    phase: TimeoutPhase::BeforeHeaders,
                }),
            attempts: 1,
            ..
        }) => {}
        other => panic!("expected the deadline, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .contains("deadline exceeded after 1 attempts")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_its_error_kept() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = client(
        middleware(registry(RegistryConfig::default()))
            .attempts(2)
            .build()
            .unwrap(),
    );
    let error = client.get(&url).send().await.unwrap_err();
    match breakwater_error(&error) {
        Some(BreakwaterError::Exhausted {
            last: Some(Outcome::ConnectFailed),
            error: Some(source),
            attempts: 2,
            ..
        }) => assert!(source.is_connect()),
        other => panic!("expected exhaustion, got {other:?}"),
    }
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let registry = registry(RegistryConfig::default());
    let refused = |b: breakwater_http::middleware::MiddlewareBuilder| b.build().unwrap_err();
    assert_eq!(
        refused(BreakwaterMiddleware::builder(Arc::clone(&registry)).attempts(0)).to_string(),
        "step[0].attempts must be at least 1"
    );
    assert_eq!(
        refused(BreakwaterMiddleware::builder(Arc::clone(&registry)).deadline(Duration::ZERO))
            .to_string(),
        "the call deadline must be positive"
    );
    assert_eq!(
        refused(BreakwaterMiddleware::builder(registry).attempt_timeout(Duration::ZERO))
            .to_string(),
        "step[0].timeout_ms must be positive"
    );
}
