//! What a provider says is quoted in errors and logs as a bounded excerpt: a huge
//! error code, message or detail, an error event in a stream, a validator's reason
//! that quotes the answer, a queued task's reason — each cut to at most 512 bytes
//! with a marker, in the values, their `Display`, and every `tracing` line.

mod fake;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use breakwater_core::{RouteConfig, TaskKind};
use breakwater_http::queue::{DrainConfig, Queue, Task, TaskState};
use breakwater_http::sse::SseParser;
use breakwater_http::validate::Validator;
use breakwater_http::wire::{Provider, Request, StreamItem, WireError};
use breakwater_http::{CallOptions, Client, StreamEvent};
use fake::{FakeServer, Reply, json};
use futures_util::StreamExt;
use parking_lot::Mutex;
use tracing_subscriber::fmt::MakeWriter;

/// The most a quote may take: 512 bytes and its marker.
const QUOTED: usize = 512 + 32;
/// Filler runs this long must never appear whole in an error or a log.
const RUN: usize = 600;

fn huge(c: char, len: usize) -> String {
    std::iter::repeat_n(c, len).collect()
}

/// No run of `RUN` filler characters in `text`, and at least one quote was cut.
fn assert_quoted(what: &str, text: &str) {
    for c in ['C', 'M', 'D', 'é'] {
        assert!(
            !text.contains(&huge(c, RUN)),
            "{what}: a long run of {c:?} survived ({} bytes)",
            text.len()
        );
    }
    assert!(text.contains("… [cut: "), "{what}: {text}");
}

/// The start of `text`, for failure messages.
fn head(text: &str) -> &str {
    let mut end = text.len().min(2048);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn assert_field(what: &str, field: Option<&str>, whole: usize) {
    let field = field.unwrap_or_else(|| panic!("{what}: missing"));
    assert!(field.len() <= QUOTED, "{what}: {} bytes", field.len());
    assert!(
        field.ends_with(&format!("[cut: {whole} bytes]")),
        "{what}: {field}"
    );
}

#[test]
fn every_wire_quotes_a_bounded_excerpt_of_a_huge_error() {
    let (code, message, detail) = (huge('C', 20_000), huge('M', 200_000), huge('D', 9_000));
    let bodies = [
        (
            Provider::Anthropic,
            format!(
                r#"{{"type":"error","error":{{"type":"{code}","message":"{message}","details":{{"error_code":"{detail}"}}}}}}"#
            ),
        ),
        (
            Provider::OpenAi,
            format!(r#"{{"error":{{"message":"{message}","type":"{detail}","code":"{code}"}}}}"#),
        ),
        (
            Provider::Gemini,
            format!(
                r#"{{"error":{{"code":429,"status":"{code}","message":"{message}","details":[{{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{{"quotaId":"{detail}"}}]}}]}}}}"#
            ),
        ),
    ];
    for (provider, body) in &bodies {
        let what = format!("{provider:?}");
        let error = provider.parse_error(500, body.as_bytes());
        assert!(error.recognized, "{what}");
        assert_field(&format!("{what} code"), error.code.as_deref(), code.len());
        assert_field(
            &format!("{what} message"),
            error.message.as_deref(),
            200_000,
        );
        assert_field(&format!("{what} detail"), error.detail.as_deref(), 9_000);
        let shown = error.to_string();
        assert!(shown.len() <= 3 * QUOTED, "{what}: {} bytes", shown.len());
        assert_quoted(&what, &shown);

        // The same body with a success status, and as an error event in a stream.
        match provider.parse_response(body.as_bytes()) {
            Err(error @ WireError::ErrorBody(_)) => {
                let shown = error.to_string();
                assert!(shown.len() <= 3 * QUOTED, "{what}: {}", shown.len());
                assert_quoted(&what, &shown);
            }
            other => panic!("{what}: {other:?}"),
        }
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        let sse = format!("event: error\ndata: {body}\n\n");
        parser.push(sse.as_bytes(), &mut events).expect("SSE");
        let items = provider
            .stream_decoder()
            .decode(&events[0])
            .expect("decodes");
        let [StreamItem::Error { code: c, message }] = items.as_slice() else {
            panic!("{what}: {items:?}")
        };
        assert_field(&format!("{what} stream code"), c.as_deref(), code.len());
        assert_field(
            &format!("{what} stream message"),
            message.as_deref(),
            200_000,
        );
    }
    // A malformed body's reason is bounded too, whatever it holds.
    let shown = WireError::Malformed(huge('M', 50_000)).to_string();
    assert!(shown.len() <= QUOTED + 32, "{}", shown.len());
    assert_quoted("malformed", &shown);
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

fn client(url: &str) -> Client {
    let route = |name: &str, validator: &str| {
        RouteConfig::from_toml(&format!(
            r#"
            name = "{name}"
            {validator}
            [[step]]
            provider = "a"
            model = "m-a"
            attempts = 1
            timeout_ms = 5000
            "#
        ))
        .expect("route")
    };
    Client::builder()
        .provider("a", Provider::Anthropic, url, "sk-test-a")
        .route(route("plain", ""))
        .route(route("checked", r#"validator = "echo""#))
        // Errors this large are read whole, so that their text reaches the quotes.
        .error_body_limit(4 << 20)
        .validator(
            "echo",
            Validator::custom(|text| Err(format!("the answer was {text}"))),
        )
        .seed(5)
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        )
        .build()
        .expect("client")
}

/// Through the client, with every event at every level captured: a huge error body,
/// the same in a 200, a stream's error event, a validator quoting a huge answer and
/// a queued task that dies of a huge error. Every error's `Display` and every log
/// line stays bounded.
#[test]
fn errors_and_logs_through_the_client_stay_bounded() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("quote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let shown = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let code = huge('C', 20_000);
            let message = huge('M', 300_000);
            let error =
                format!(r#"{{"type":"error","error":{{"type":"{code}","message":"{message}"}}}}"#);
            let answer = fake::ANTHROPIC_OK.replace("Hello from Claude", &huge('é', 100_000));
            let sse = format!("event: error\ndata: {error}\n\n");
            let server = FakeServer::start(vec![
                json(400, &[], &error),
                json(200, &[], &error),
                Reply::Raw(fake::response(
                    200,
                    &[("content-type", "text/event-stream")],
                    sse.as_bytes(),
                )),
                json(200, &[], &answer),
                json(400, &[], &error),
            ])
            .await;
            let client = client(&server.url());
            let request = Request::new(32).user("hi");
            let deadline = Duration::from_secs(5);
            let mut shown = Vec::new();
            // Refused (400), then an error in a 200 (degraded: an empty answer).
            for route in ["plain", "plain"] {
                let result = client
                    .complete(route, &request, TaskKind::Interactive, deadline)
                    .await;
                shown.push(match result {
                    Ok(done) => format!("{done:?}"),
                    Err(error) => format!("{error}\n{error:?}"),
                });
            }
            let mut stream = Box::pin(client.stream(
                "plain",
                &request,
                TaskKind::Interactive,
                deadline,
                CallOptions::default(),
            ));
            while let Some(event) = stream.next().await {
                match event {
                    Err(error) => shown.push(format!("{error}\n{error:?}")),
                    Ok(StreamEvent::Done { .. }) => panic!("the stream broke"),
                    Ok(_) => {}
                }
            }
            drop(stream);
            let result = client
                .complete("checked", &request, TaskKind::Interactive, deadline)
                .await;
            assert!(result.as_ref().map_or(true, |done| done.is_degraded()));
            shown.push(match result {
                Ok(done) => format!("{done:?}"),
                Err(error) => format!("{error}\n{error:?}"),
            });

            let queue = Queue::open(dir.join("q.db")).expect("queue");
            let task = Task::new("k", "plain", TaskKind::Deferrable, request, deadline);
            queue.enqueue(&task).expect("enqueue");
            let stats = queue
                .drain_once(&client, &DrainConfig::default())
                .await
                .expect("sweep");
            assert_eq!(stats.dead, 1);
            let dead = queue.get("k").expect("read").expect("stored");
            assert_eq!(dead.state, TaskState::Dead);
            shown.push(dead.reason.unwrap_or_default());
            server.shutdown().await;
            shown
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
    for text in &shown {
        assert!(
            text.len() <= 8 * 1024,
            "{} bytes: {}",
            text.len(),
            head(text)
        );
        for c in ['C', 'M', 'é'] {
            assert!(!text.contains(&huge(c, RUN)), "{c:?} in {}", head(text));
        }
    }
    let log = String::from_utf8(buffer.0.lock().clone()).expect("UTF-8 log");
    assert!(log.contains("invalid output"), "the validator's event");
    assert!(log.contains("queued task failed"), "the drain's event");
    for line in log.lines() {
        assert!(
            line.len() <= 4 * 1024,
            "{} bytes: {}",
            line.len(),
            head(line)
        );
    }
    assert_quoted("the log", &log);
}
