//! Metrics through the `metrics` facade (recorded with `metrics-util`'s
//! `DebuggingRecorder`), breaker transitions as metrics and `tracing` events, and API
//! keys that never show: not in `Debug`, `Display`, errors, captured `tracing` output
//! or metric labels.
//!
//! Each test runs its own current-thread runtime inside a thread-local recorder and a
//! thread-local subscriber, so the tests of this binary do not see each other's data.

mod fake;

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use breakwater_core::alert::{AlertConfig, Scope, Signal};
use breakwater_core::{
    Backoff, BreakerConfig, Jitter, Key, Price, PriceTable, Registry, RegistryConfig,
    RequestOptions, RouteConfig, TaskKind, Usage,
};
use breakwater_http::Client;
use breakwater_http::middleware::BreakwaterMiddleware;
use breakwater_http::telemetry;
use breakwater_http::tower::{BreakwaterError, BreakwaterLayer};
use breakwater_http::wire::{Provider, Request};
use fake::{FakeServer, Reply, json, response};
use futures_util::StreamExt;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use parking_lot::Mutex;
use tower::{Layer, Service, ServiceExt, service_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

const KEY: &str = "sk-test-KNOWN-SECRET-0123456789";
const SECRET: &str = "KNOWN-SECRET";

/// One metric series as recorded.
#[derive(Debug)]
struct Series {
    name: String,
    labels: Vec<(String, String)>,
    value: DebugValue,
}

/// What a run recorded: its metrics and its `tracing` output.
struct Recorded {
    series: Vec<Series>,
    trace: String,
}

impl Recorded {
    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        self.series
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| &s.value)
    }

    /// The counter's value; 0 if it was never touched.
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.find(name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            Some(other) => panic!("{name} is not a counter: {other:?}"),
        }
    }

    /// The histogram's samples.
    fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        match self.find(name, labels) {
            Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.into_inner()).collect(),
            None => Vec::new(),
            Some(other) => panic!("{name} is not a histogram: {other:?}"),
        }
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// Runs `test` on a current-thread runtime (its clock paused if `paused`) with a
/// recorder and a subscriber that capture everything, at every level, with every
/// span's fields when it closes.
fn recorded<F: Future>(paused: bool, test: F) -> (F::Output, Recorded) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(paused)
        .build()
        .expect("runtime");
    let out = metrics::with_local_recorder(&recorder, || {
        tracing::subscriber::with_default(subscriber, || {
            telemetry::describe();
            runtime.block_on(test)
        })
    });
    let series = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _unit, _description, value)| Series {
            name: key.key().name().to_owned(),
            labels: key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect(),
            value,
        })
        .collect();
    let trace = String::from_utf8_lossy(&buffer.0.lock()).into_owned();
    (out, Recorded { series, trace })
}

/// A client with providers `a` (Anthropic) and `b` (OpenAI) at `url`, both with
/// [`KEY`], and the route `chat`: `a` then `b`, fast backoff.
fn client(url: &str, a_attempts: u32) -> Client {
    let route = RouteConfig::from_toml(&format!(
        r#"
        name = "chat"
        [backoff]
        base_ms = 5
        cap_ms = 20
        [[step]]
        provider = "a"
        model = "m-a"
        attempts = {a_attempts}
        timeout_ms = 5000
        [[step]]
        provider = "b"
        model = "m-b"
        attempts = 2
        timeout_ms = 5000
        "#
    ))
    .expect("route parses");
    Client::builder()
        .provider("a", Provider::Anthropic, url, KEY)
        .provider("b", Provider::OpenAi, url, KEY)
        .route(route)
        .prices(PriceTable::new().with("m-a", Price::per_million(3.0, 15.0)))
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        )
        .build()
        .expect("client builds")
}

fn prompt() -> Request {
    Request::new(64).user("Say hello.")
}

fn status(code: u16) -> Reply {
    Reply::Raw(response(code, &[], b"{}"))
}

#[test]
fn the_client_reports_requests_attempts_waits_tokens_and_cost() {
    let ((), rec) = recorded(false, async {
        let server = FakeServer::start(vec![status(529), json(200, &[], fake::ANTHROPIC_OK)]).await;
        let done = client(&server.url(), 2)
            .complete(
                "chat",
                &prompt(),
                TaskKind::Interactive,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(done.attempts, 2);
        server.shutdown().await;
    });
    let a = [("provider", "a"), ("model", "m-a")];
    let with = |extra: (&'static str, &'static str)| {
        let mut labels = a.to_vec();
        labels.push(extra);
        labels
    };
    assert_eq!(
        rec.counter(
            telemetry::REQUESTS_TOTAL,
            &[
                ("route", "chat"),
                ("kind", "interactive"),
                ("resolution", "success")
            ]
        ),
        1
    );
    assert_eq!(
        rec.counter(telemetry::ATTEMPTS_TOTAL, &with(("class", "overloaded"))),
        1
    );
    assert_eq!(
        rec.counter(telemetry::ATTEMPTS_TOTAL, &with(("class", "success"))),
        1
    );
    assert_eq!(
        rec.samples(telemetry::ATTEMPT_DURATION_SECONDS, &a).len(),
        2
    );
    let waits = rec.samples(telemetry::WAIT_SECONDS, &with(("source", "backoff")));
    assert_eq!(waits.len(), 1);
    assert!(waits[0] <= 0.020, "within the backoff's cap: {waits:?}");
    assert_eq!(
        rec.counter(telemetry::TOKENS_TOTAL, &with(("direction", "input"))),
        12
    );
    assert_eq!(
        rec.counter(telemetry::TOKENS_TOTAL, &with(("direction", "output"))),
        5
    );
    let cost = Price::per_million(3.0, 15.0).cost(Usage::new(12, 5));
    assert!(cost.nanodollars() > 0);
    assert_eq!(
        rec.counter(telemetry::COST_NANODOLLARS_TOTAL, &a),
        cost.nanodollars()
    );
    assert_eq!(
        rec.samples(
            telemetry::REQUEST_DURATION_SECONDS,
            &[("route", "chat"), ("resolution", "success")]
        )
        .len(),
        1
    );
    assert_eq!(
        rec.counter(telemetry::FALLBACKS_TOTAL, &[("route", "chat")]),
        0
    );
}

#[test]
fn fallbacks_and_degraded_results_are_counted() {
    let ((), rec) = recorded(false, async {
        let server = FakeServer::start(vec![
            status(503),
            json(200, &[], fake::OPENAI_OK),
            status(503),
            status(503),
            status(503),
        ])
        .await;
        let client = client(&server.url(), 1);
        let first = client
            .complete(
                "chat",
                &prompt(),
                TaskKind::Interactive,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert!(first.fallback);
        let second = client
            .complete(
                "chat",
                &prompt(),
                TaskKind::Interactive,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert!(second.is_degraded());
        server.shutdown().await;
    });
    assert_eq!(
        rec.counter(telemetry::FALLBACKS_TOTAL, &[("route", "chat")]),
        2
    );
    assert_eq!(
        rec.counter(
            telemetry::DEGRADED_TOTAL,
            &[("route", "chat"), ("from", "empty")]
        ),
        1
    );
    let resolution = |r| {
        rec.counter(
            telemetry::REQUESTS_TOTAL,
            &[
                ("route", "chat"),
                ("kind", "interactive"),
                ("resolution", r),
            ],
        )
    };
    assert_eq!((resolution("success"), resolution("degraded")), (1, 1));
    let b = |class| [("provider", "b"), ("model", "m-b"), ("class", class)];
    assert_eq!(rec.counter(telemetry::ATTEMPTS_TOTAL, &b("success")), 1);
    assert_eq!(rec.counter(telemetry::ATTEMPTS_TOTAL, &b("retriable")), 2);
}

/// Trips after two failures in a row, open for exactly a minute, closes after two
/// good probes.
fn touchy_registry() -> Arc<Registry> {
    Arc::new(
        Registry::new(RegistryConfig {
            breaker: Some(BreakerConfig {
                consecutive_failures: Some(2),
                open: Backoff {
                    jitter: Jitter::None,
                    ..Backoff::exponential(Duration::from_secs(60), Duration::from_secs(60))
                },
                ..BreakerConfig::default()
            }),
            ..RegistryConfig::default()
        })
        .expect("valid registry"),
    )
}

#[test]
fn breaker_transitions_are_counted_and_traced() {
    let ((), rec) = recorded(true, async {
        // 503 twice, then 200s.
        let calls = Arc::new(AtomicU32::new(0));
        let inner = service_fn({
            let calls = Arc::clone(&calls);
            move |_: http::Request<String>| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let code = if n < 2 { 503 } else { 200 };
                async move {
                    Ok::<_, std::convert::Infallible>(
                        http::Response::builder()
                            .status(code)
                            .body(String::new())
                            .expect("valid response"),
                    )
                }
            }
        });
        let layer = BreakwaterLayer::builder(Key::new("memory", "v1"), touchy_registry())
            .attempts(1)
            .build()
            .unwrap();
        let mut service = layer.layer(inner);
        let mut send = async || {
            let request = http::Request::new(String::new());
            service.ready().await.unwrap().call(request).await
        };
        assert!(send().await.is_err());
        assert!(send().await.is_err()); // trips
        assert!(send().await.is_err()); // rejected, not sent
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(send().await.is_ok()); // a probe
        assert!(send().await.is_ok()); // the second good probe closes it
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    });
    let transitions = |to, cause| {
        rec.counter(
            telemetry::BREAKER_TRANSITIONS_TOTAL,
            &[("key", "memory/v1"), ("to", to), ("cause", cause)],
        )
    };
    assert_eq!(transitions("open", "consecutive_failures"), 1);
    assert_eq!(transitions("half_open", "open_elapsed"), 1);
    assert_eq!(transitions("closed", "probes_succeeded"), 1);
    assert_eq!(
        rec.counter(
            telemetry::SKIPS_TOTAL,
            &[
                ("provider", "memory"),
                ("model", "v1"),
                ("reason", "breaker")
            ]
        ),
        1
    );
    let requests = |resolution| {
        rec.counter(
            telemetry::REQUESTS_TOTAL,
            &[
                ("route", "memory/v1"),
                ("kind", "critical"),
                ("resolution", resolution),
            ],
        )
    };
    assert_eq!((requests("failed"), requests("success")), (3, 2));
    let opened = rec
        .trace
        .lines()
        .find(|line| line.contains("circuit breaker transition") && line.contains("to=open"))
        .unwrap_or_else(|| panic!("no transition event in:\n{}", rec.trace));
    assert!(
        opened.contains("WARN") && opened.contains("key=memory/v1"),
        "{opened}"
    );
    assert!(opened.contains("cause=consecutive_failures"), "{opened}");
}

/// Everything that might show a key: the trace, every label, and what the test
/// collected of `Debug` and `Display`.
fn assert_no_secret(rec: &Recorded, shown: &[String]) {
    assert!(!rec.trace.is_empty(), "the subscriber captured something");
    assert!(!rec.trace.contains(SECRET), "trace:\n{}", rec.trace);
    assert!(!rec.series.is_empty(), "the recorder captured something");
    for series in &rec.series {
        for (key, value) in &series.labels {
            assert!(
                !key.contains(SECRET) && !value.contains(SECRET),
                "{series:?}"
            );
        }
    }
    for text in shown {
        assert!(!text.is_empty());
        assert!(!text.contains(SECRET), "{text}");
    }
}

#[test]
fn the_api_key_shows_nowhere_in_the_client() {
    let (shown, rec) = recorded(false, async {
        let server = FakeServer::start(vec![
            json(200, &[], fake::ANTHROPIC_OK),
            json(401, &[], r#"{"error":{"type":"authentication_error","message":"bad key sk-test-KNOWN-SECRET-0123456789"}}"#),
            Reply::Raw(fake::head(200, &[("content-type", "text/event-stream")], None)),
        ])
        .await;
        let client = client(&server.url(), 1);
        let mut shown = vec![format!("{client:?}"), format!("{:?}", client.metrics())];
        let done = client
            .complete(
                "chat",
                &prompt(),
                TaskKind::Critical,
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        shown.push(format!("{done:?}"));
        // The provider echoes the key in its error message: it is not kept.
        let error = client
            .complete(
                "chat",
                &prompt(),
                TaskKind::Critical,
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        shown.extend([
            error.to_string(),
            format!("{error:?}"),
            format!("{error:#?}"),
        ]);
        let mut events = Box::pin(client.stream(
            "chat",
            &prompt(),
            TaskKind::Critical,
            Duration::from_secs(5),
            RequestOptions::default(),
        ));
        while let Some(event) = events.next().await {
            shown.push(match event {
                Ok(event) => format!("{event:?}"),
                Err(error) => format!("{error} {error:?}"),
            });
        }
        // The server saw the key where it belongs, in the header.
        let got = server.received();
        assert_eq!(got[0].header("x-api-key"), Some(KEY));
        server.shutdown().await;
        shown
    });
    assert!(
        rec.trace.contains("breakwater.request"),
        "spans were captured"
    );
    assert_no_secret(&rec, &shown);
}

#[test]
fn the_api_key_shows_nowhere_in_the_layer_or_the_middleware() {
    let (shown, rec) = recorded(false, async {
        let server = FakeServer::start(vec![status(503), status(503)]).await;
        let registry = Arc::new(Registry::new(RegistryConfig::default()).unwrap());
        let middleware = BreakwaterMiddleware::builder(Arc::clone(&registry))
            .attempts(2)
            .backoff(Backoff::exponential(
                Duration::from_millis(5),
                Duration::from_millis(20),
            ))
            .build()
            .unwrap();
        let mut shown = vec![format!("{middleware:?}")];
        let http = reqwest_middleware::ClientBuilder::new(
            reqwest::Client::builder().no_proxy().build().unwrap(),
        )
        .with(middleware)
        .build();
        // A key in the header and, as some APIs take it, in the query string.
        let error = http
            .get(format!("{}/v1/models?key={KEY}", server.url()))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap_err();
        shown.extend([error.to_string(), format!("{error:?}")]);
        // Nothing listens here: the reqwest error comes back, without its URL.
        let dead = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            drop(listener);
            format!("http://{addr}/v1?key={KEY}")
        };
        let error = http.get(dead).bearer_auth(KEY).send().await.unwrap_err();
        let inner = breakwater_http::middleware::breakwater_error(&error).expect("ours");
        shown.extend([
            error.to_string(),
            format!("{error:?}"),
            inner.to_string(),
            format!("{inner:#?}"),
        ]);
        match inner {
            BreakwaterError::Exhausted {
                error: Some(source),
                ..
            } => shown.push(format!("{source} {source:?}")),
            other => panic!("expected exhaustion with the reqwest error, got {other:?}"),
        }
        let layer = BreakwaterLayer::builder(Key::new("svc", "v1"), registry)
            .build()
            .unwrap();
        shown.push(format!("{layer:?}"));
        assert_eq!(server.received().len(), 2);
        server.shutdown().await;
        shown
    });
    assert_no_secret(&rec, &shown);
}

#[test]
fn a_retry_rate_above_the_threshold_raises_one_alert_with_its_cause() {
    let (alerts, rec) = recorded(false, async {
        // Every request needs a retry: a 503, then the answer.
        let mut script = Vec::new();
        for _ in 0..4 {
            script.push(status(503));
            script.push(json(200, &[], fake::ANTHROPIC_OK));
        }
        let server = FakeServer::start(script).await;
        let route = RouteConfig::from_toml(
            r#"
            name = "chat"
            [backoff]
            base_ms = 1
            cap_ms = 2
            [[step]]
            provider = "a"
            model = "m-a"
            attempts = 2
            timeout_ms = 5000
            "#,
        )
        .expect("route");
        let client = Client::builder()
            .provider("a", Provider::Anthropic, server.url(), KEY)
            .route(route)
            .alerts(AlertConfig {
                min_attempts: 6,
                ..AlertConfig::default()
            })
            .http_client(
                reqwest::Client::builder()
                    .no_proxy()
                    .build()
                    .expect("reqwest"),
            )
            .build()
            .expect("client");
        for _ in 0..4 {
            client
                .complete(
                    "chat",
                    &prompt(),
                    TaskKind::Interactive,
                    Duration::from_secs(5),
                )
                .await
                .expect("answered on the retry");
        }
        server.shutdown().await;
        client.alerts()
    });
    assert_eq!(
        alerts,
        [(Scope::Key(Key::new("a", "m-a")), Signal::RetryRate)]
    );
    let labels = [
        ("scope", "a/m-a"),
        ("signal", "retry_rate"),
        ("state", "raised"),
    ];
    assert_eq!(
        rec.counter(telemetry::ALERTS_TOTAL, &labels),
        1,
        "raised once"
    );
    let active = rec.find(
        telemetry::ALERT_ACTIVE,
        &[("scope", "a/m-a"), ("signal", "retry_rate")],
    );
    assert!(
        matches!(active, Some(DebugValue::Gauge(v)) if v.into_inner() == 1.0),
        "{active:?}"
    );
    assert!(rec.trace.contains("WARN"), "{}", rec.trace);
    assert!(
        rec.trace
            .contains("mostly 529/503/5xx/timeouts: provider overload"),
        "{}",
        rec.trace
    );
}
