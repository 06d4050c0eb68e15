//! The tower layer around real services: a reqwest `service_fn` talking to a scripted
//! loopback server (real clock, short durations), and in-memory `service_fn`s under
//! tokio's paused clock where the timing is the point.

mod fake;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use breakwater_core::breaker::{RejectReason, State};
use breakwater_core::plan::{EntryEvent, Skip};
use breakwater_core::{
    Backoff, BreakerConfig, ClassKind, Hints, Jitter, Key, Outcome, Registry, RegistryConfig,
};
use breakwater_http::tower::{BreakwaterError, BreakwaterLayer, CallDeadline, ConfigError};
use fake::{FakeServer, Reply, response};
use parking_lot::Mutex;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

type HttpResult = Result<http::Response<String>, BreakwaterError<reqwest::Error>>;

fn registry(breaker: Option<BreakerConfig>) -> Arc<Registry> {
    Arc::new(
        Registry::new(RegistryConfig {
            breaker,
            ..RegistryConfig::default()
        })
        .expect("valid registry"),
    )
}

/// Trips after two failures in a row and stays open for a minute.
fn touchy_breaker() -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: Some(2),
        open: Backoff {
            jitter: Jitter::None,
            ..Backoff::exponential(Duration::from_secs(60), Duration::from_secs(60))
        },
        ..BreakerConfig::default()
    }
}

fn fast_backoff() -> Backoff {
    Backoff::exponential(Duration::from_millis(5), Duration::from_millis(20))
}

/// A real HTTP service: a reqwest client behind `service_fn`, counting its calls.
fn http_service(
    calls: Arc<AtomicU32>,
) -> impl Service<
    http::Request<String>,
    Response = http::Response<String>,
    Error = reqwest::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest");
    service_fn(move |request: http::Request<String>| {
        let client = client.clone();
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let response = client.execute(reqwest::Request::try_from(request)?).await?;
            let mut out = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                out = out.header(name, value);
            }
            let body = response.text().await?;
            Ok(out.body(body).expect("valid response"))
        }
    })
}

fn get(url: &str) -> http::Request<String> {
    http::Request::get(url)
        .body(String::new())
        .expect("valid request")
}

fn status(code: u16, headers: &[(&str, &str)]) -> Reply {
    Reply::Raw(response(code, headers, b"body"))
}

async fn call<S>(service: &mut S, request: http::Request<String>) -> HttpResult
where
    S: Service<
            http::Request<String>,
            Response = http::Response<String>,
            Error = BreakwaterError<reqwest::Error>,
        >,
{
    service.ready().await?.call(request).await
}

#[tokio::test]
async fn two_503s_then_success() {
    let server = FakeServer::start(vec![
        status(503, &[]),
        status(503, &[]),
        Reply::Raw(response(200, &[], b"fine")),
    ])
    .await;
    let calls = Arc::new(AtomicU32::new(0));
    let layer = BreakwaterLayer::builder(Key::new("loopback", "v1"), registry(None))
        .attempts(3)
        .backoff(fast_backoff())
        .deadline(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut service = layer.layer(http_service(Arc::clone(&calls)));
    let done = call(&mut service, get(&server.url())).await.unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(done.body(), "fine");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(server.received().len(), 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_400_is_returned_as_is_and_not_retried() {
    let server = FakeServer::start(vec![status(400, &[]), status(200, &[])]).await;
    let calls = Arc::new(AtomicU32::new(0));
    let layer = BreakwaterLayer::builder(Key::new("loopback", "v1"), registry(None))
        .attempts(3)
        .backoff(fast_backoff())
        .build()
        .unwrap();
    let mut service = layer.layer(http_service(Arc::clone(&calls)));
    let answer = call(&mut service, get(&server.url())).await.unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(answer.body(), "body");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_open_breaker_rejects_without_calling_the_service() {
    let server =
        FakeServer::start(vec![status(503, &[]), status(503, &[]), status(200, &[])]).await;
    let calls = Arc::new(AtomicU32::new(0));
    let registry = registry(Some(touchy_breaker()));
    let key = Key::new("loopback", "v1");
    let layer = BreakwaterLayer::builder(key.clone(), Arc::clone(&registry))
        .attempts(1)
        .build()
        .unwrap();
    let mut service = layer.layer(http_service(Arc::clone(&calls)));
    for _ in 0..2 {
        match call(&mut service, get(&server.url())).await {
            Err(BreakwaterError::Exhausted {
                last: Some(last),
                attempts: 1,
                ..
            }) => assert_eq!(last.status(), Some(503)),
            other => panic!("expected exhaustion, got {other:?}"),
        }
    }
    let before = Instant::now();
    match call(&mut service, get(&server.url())).await {
        Err(BreakwaterError::Rejected {
            key: rejected,
            reason: RejectReason::Open,
            until: Some(until),
            history,
        }) => {
            assert_eq!(rejected, key);
            assert!(
                until > before + Duration::from_secs(30),
                "open for a minute"
            );
            assert!(history.attempts().next().is_none());
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the third call never reached it"
    );
    assert_eq!(server.received().len(), 2);
    let now = breakwater_http::clock::read().now;
    let breaker = registry.breaker(&key).unwrap();
    assert!(matches!(breaker.state(now), State::Open { .. }));
    server.shutdown().await;
}

/// A status and its headers.
type Answer = (u16, Vec<(&'static str, &'static str)>);

/// An in-memory HTTP service that answers from `script` in order (then 200s) and
/// notes when each call came.
#[derive(Clone)]
struct Scripted {
    script: Arc<Mutex<Vec<Answer>>>,
    calls: Arc<Mutex<Vec<Instant>>>,
    hang: Duration,
}

impl Scripted {
    fn new(script: Vec<Answer>, hang: Duration) -> Scripted {
        Scripted {
            script: Arc::new(Mutex::new(script.into_iter().rev().collect())),
            calls: Arc::new(Mutex::new(Vec::new())),
            hang,
        }
    }

    fn service(
        &self,
    ) -> impl Service<
        http::Request<String>,
        Response = http::Response<String>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        let this = self.clone();
        service_fn(move |_request: http::Request<String>| {
            this.calls.lock().push(Instant::now());
            let (code, headers) = this.script.lock().pop().unwrap_or((200, Vec::new()));
            let hang = this.hang;
            async move {
                tokio::time::sleep(hang).await;
                let mut out = http::Response::builder().status(code);
                for (name, value) in headers {
                    out = out.header(name, value);
                }
                Ok(out.body(String::new()).expect("valid response"))
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let script = Scripted::new(vec![(429, vec![("retry-after", "3")])], Duration::ZERO);
    let layer = BreakwaterLayer::builder(Key::new("memory", "v1"), registry(None))
        .backoff(fast_backoff())
        .deadline(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut service = layer.layer(script.service());
    let start = Instant::now();
    let done = service
        .ready()
        .await
        .unwrap()
        .call(get("http://memory/"))
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let calls = script.calls.lock().clone();
    assert_eq!(calls.len(), 2);
    // The backoff alone would have waited at most 20 ms.
    assert_eq!(calls[1] - calls[0], Duration::from_secs(3));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_past_the_deadline_ends_the_call_at_once_and_cools_the_key() {
    let script = Scripted::new(vec![(429, vec![("retry-after", "30")])], Duration::ZERO);
    let layer =
        BreakwaterLayer::builder(Key::new("memory", "v1"), registry(Some(touchy_breaker())))
            .deadline(Duration::from_secs(5))
            .build()
            .unwrap();
    let mut service = layer.layer(script.service());
    let start = Instant::now();
    let error = service
        .ready()
        .await
        .unwrap()
        .call(get("http://memory/"))
        .await
        .unwrap_err();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no wait that cannot end in time"
    );
    let BreakwaterError::DeadlineExceeded {
        last: Some(last),
        attempts: 1,
        history,
        ..
    } = &error
    else {
        panic!("expected the deadline, got {error:?}");
    };
    assert_eq!(
        last.hints(),
        Hints {
            retry_after: Some(Duration::from_secs(30)),
            should_retry: None
        }
    );
    assert!(history.entries().any(|e| matches!(
        e.event,
        EntryEvent::Skipped(Skip::WaitBeyondDeadline { wait }) if wait == Duration::from_secs(30)
    )));
    // The provider said 30 s: the next call does not go out before then.
    let next = service
        .ready()
        .await
        .unwrap()
        .call(get("http://memory/"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            next,
            BreakwaterError::Rejected {
                reason: RejectReason::CoolingDown,
                ..
            }
        ),
        "{next:?}"
    );
    assert_eq!(script.calls.lock().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_holds_and_a_request_may_shorten_it() {
    // Every call hangs for a minute; attempts may take 30 s.
    let script = Scripted::new(Vec::new(), Duration::from_secs(60));
    let layer = BreakwaterLayer::builder(Key::new("memory", "v1"), registry(None))
        .attempt_timeout(Duration::from_secs(30))
        .deadline(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut service = layer.layer(script.service());
    let mut short = get("http://memory/");
    short
        .extensions_mut()
        .insert(CallDeadline(Duration::from_millis(500)));
    for (request, deadline) in [
        (get("http://memory/"), Duration::from_secs(2)),
        (short, Duration::from_millis(500)),
    ] {
        let start = Instant::now();
        let error = service
            .ready()
            .await
            .unwrap()
            .call(request)
            .await
            .unwrap_err();
        assert_eq!(start.elapsed(), deadline);
        match error {
            BreakwaterError::DeadlineExceeded {
                last: Some(Outcome::TimedOut { .. }),
                attempts: 1,
                ..
            } => {}
            other => panic!("expected the deadline, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn any_service_with_a_classifier_of_its_own() {
    // A service of plain values: "busy" is an overload, "gone" is final.
    let answers = Arc::new(Mutex::new(vec!["done", "busy", "busy"]));
    let inner = service_fn({
        let answers = Arc::clone(&answers);
        move |_: u32| {
            let answer = answers.lock().pop().unwrap_or("gone");
            async move {
                match answer {
                    "done" => Ok(answer),
                    other => Err(other),
                }
            }
        }
    });
    let classify = |result: &Result<&'static str, &'static str>| match result {
        Ok(_) => Outcome::Success,
        Err("busy") => Outcome::Status {
            status: 503,
            error: None,
            hints: Hints::EMPTY,
        },
        Err(_) => Outcome::Status {
            status: 400,
            error: None,
            hints: Hints::EMPTY,
        },
    };
    let layer = BreakwaterLayer::builder(Key::new("values", "v1"), registry(None))
        .classify(classify)
        .backoff(fast_backoff())
        .build()
        .unwrap();
    let mut service = layer.layer(inner);
    assert_eq!(
        service.ready().await.unwrap().call(1).await.unwrap(),
        "done"
    );
    // "gone" is non-retriable: the inner error comes back as it was, after one attempt.
    match service.ready().await.unwrap().call(2).await {
        Err(BreakwaterError::Inner("gone")) => {}
        other => panic!("expected the inner error, got {other:?}"),
    }
    assert!(answers.lock().is_empty());
}

#[tokio::test]
async fn exhaustion_carries_the_last_error_and_the_history() {
    // Nothing listens: every attempt fails to connect.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let calls = Arc::new(AtomicU32::new(0));
    let layer = BreakwaterLayer::builder(Key::new("nowhere", "v1"), registry(None))
        .attempts(2)
        .backoff(fast_backoff())
        .build()
        .unwrap();
    let mut service = layer.layer(http_service(Arc::clone(&calls)));
    let error = call(&mut service, get(&url)).await.unwrap_err();
    let BreakwaterError::Exhausted {
        last: Some(Outcome::Reset),
        error: Some(source),
        attempts: 2,
        history,
        ..
    } = &error
    else {
        panic!("expected exhaustion, got {error:?}");
    };
    assert!(source.is_connect());
    let classes: Vec<ClassKind> = history.attempts().map(|(_, _, c)| c.kind()).collect();
    assert_eq!(classes, [ClassKind::Retriable, ClassKind::Retriable]);
    let text = error.to_string();
    assert!(
        text.starts_with("nowhere/v1: no success after 2 attempts (last: connection reset: "),
        "{text}"
    );
    // A tower `BoxError` takes it, as a service stack's errors must.
    let boxed: tower::BoxError = error.into();
    assert!(boxed.to_string().starts_with("nowhere/v1"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn settings_that_cannot_work_are_refused() {
    let builder = || BreakwaterLayer::builder(Key::new("k", "m"), registry(None));
    let errors = [
        builder().attempts(0).build().unwrap_err(),
        builder()
            .attempt_timeout(Duration::ZERO)
            .build()
            .unwrap_err(),
        builder().deadline(Duration::ZERO).build().unwrap_err(),
        builder()
            .backoff(Backoff::exponential(
                Duration::from_secs(2),
                Duration::from_secs(1),
            ))
            .build()
            .unwrap_err(),
    ];
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        [
            "step[0].attempts must be at least 1",
            "step[0].timeout_ms must be positive",
            "the call deadline must be positive",
            "backoff cap_ms must be ≥ base_ms",
        ]
    );
    assert!(matches!(errors[2], ConfigError::ZeroDeadline));
}

/// A service that is never ready: its channel closed.
#[derive(Clone, Debug)]
struct Closed;

impl Service<u32> for Closed {
    type Response = u32;
    type Error = tower::BoxError;
    type Future = std::future::Ready<Result<u32, tower::BoxError>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), tower::BoxError>> {
        std::task::Poll::Ready(Err("channel closed".into()))
    }

    fn call(&mut self, _request: u32) -> Self::Future {
        panic!("called without being ready")
    }
}

#[tokio::test]
async fn readiness_is_the_inner_services() {
    let layer = BreakwaterLayer::builder(Key::new("closed", "v1"), registry(None))
        .classify(|_: &Result<u32, tower::BoxError>| Outcome::Success)
        .build()
        .unwrap();
    let mut service = layer.layer(Closed);
    let error = service.ready().await.unwrap_err();
    assert!(matches!(&error, BreakwaterError::Inner(e) if e.to_string() == "channel closed"));
    let boxed: tower::BoxError = error.into();
    assert_eq!(boxed.to_string(), "channel closed");
}
