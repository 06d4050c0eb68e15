//! The batch submitter against a scripted batch provider on loopback: both providers'
//! whole flow (create, poll while in progress, results), per-request errors (a 429 or
//! 529 re-queued, a 400 dead), expired batches re-queued, results mapped back by
//! `custom_id` whatever their order, batch prices in the stored results and the
//! metrics, and a stop between recording and creating reconciled on the next round.

mod fake;
mod tempdir;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use breakwater_core::{Cost, Price, PriceTable, RouteConfig, TaskKind, Usage};
use breakwater_http::batch::{BatchConfig, BatchCounts};
use breakwater_http::queue::{DrainConfig, Queue, QueueError, Task, TaskState};
use breakwater_http::wire::{Provider, Request};
use breakwater_http::{CallOptions, Client, Deferred, Error};
use fake::{FakeServer, Received, Reply, json, response};
use parking_lot::Mutex;
use serde_json::{Value, json as value};
use tempdir::TempDir;

/// What the scripted provider answers for one request of a batch, by the text of its
/// last user turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// An answer.
    Ok,
    /// An error with this status.
    Fails(u16),
    /// Never ran: the batch expired first.
    Expired,
}

/// A batch as the scripted provider holds it.
struct Held {
    /// `(custom_id, the user's text)`, in the order sent.
    items: Vec<(String, String)>,
    polls: u32,
}

/// A stateful batch provider (Anthropic or OpenAI wire format). Each request's fate
/// is read from its prompt: "fail 529 …", "fail 400 …", "expire …", else answered,
/// and a request's "fail" applies to its first batch only (a retry succeeds).
/// Batches end after `polls` status requests that said "in progress"; results come
/// in reverse order.
struct Provider2 {
    kind: Provider,
    polls: u32,
    /// OpenAI: a batch in which a request expired ends `expired` rather than
    /// `completed`.
    expire_batch: bool,
    /// The create request answers with this status instead.
    create_status: Option<u16>,
    /// The create request never answers.
    create_hangs: bool,
    batches: BTreeMap<String, Held>,
    files: BTreeMap<String, Vec<u8>>,
    failed_once: Vec<String>,
}

impl Provider2 {
    fn new(kind: Provider) -> Provider2 {
        Provider2 {
            kind,
            polls: 1,
            expire_batch: false,
            create_status: None,
            create_hangs: false,
            batches: BTreeMap::new(),
            files: BTreeMap::new(),
            failed_once: Vec::new(),
        }
    }

    fn start(
        self,
    ) -> (
        Arc<Mutex<Provider2>>,
        impl std::future::Future<Output = FakeServer>,
    ) {
        let state = Arc::new(Mutex::new(self));
        let shared = Arc::clone(&state);
        let server = FakeServer::start_with(Arc::new(move |request: &Received, url: &str| {
            shared.lock().handle(request, url)
        }));
        (state, server)
    }

    fn handle(&mut self, request: &Received, url: &str) -> Reply {
        let path = request.path.as_str();
        match (request.method.as_str(), self.kind) {
            ("POST", _) if self.create_hangs => Reply::Hang,
            ("POST", Provider::Anthropic) if path == "/v1/messages/batches" => {
                if let Some(status) = self.create_status {
                    return json(
                        status,
                        &[],
                        r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
                    );
                }
                let body = request.json();
                let items = body["requests"]
                    .as_array()
                    .expect("requests")
                    .iter()
                    .map(|r| {
                        (
                            r["custom_id"].as_str().expect("custom_id").to_owned(),
                            last_user(&r["params"]["messages"]),
                        )
                    })
                    .collect();
                let id = format!("msgbatch_{}", self.batches.len() + 1);
                self.batches.insert(id.clone(), Held { items, polls: 0 });
                json(200, &[], &anthropic_batch(&id, "in_progress", None))
            }
            ("GET", Provider::Anthropic) => {
                if let Some(id) = path
                    .strip_suffix("/results")
                    .and_then(|p| p.strip_prefix("/v1/messages/batches/"))
                {
                    return self.anthropic_results(id);
                }
                let id = path.trim_start_matches("/v1/messages/batches/");
                let Some(held) = self.batches.get_mut(id) else {
                    return json(
                        404,
                        &[],
                        r#"{"type":"error","error":{"type":"not_found_error","message":"no batch"}}"#,
                    );
                };
                held.polls += 1;
                if held.polls <= self.polls {
                    return json(200, &[], &anthropic_batch(id, "in_progress", None));
                }
                let results = format!("{url}/v1/messages/batches/{id}/results");
                json(200, &[], &anthropic_batch(id, "ended", Some(&results)))
            }
            ("POST", Provider::OpenAi) if path == "/v1/files" => {
                let file = multipart_file(request);
                let id = format!("file-in-{}", self.files.len() + 1);
                self.files.insert(id.clone(), file);
                json(
                    200,
                    &[],
                    &value!({"id": id, "object": "file", "purpose": "batch"}).to_string(),
                )
            }
            ("POST", Provider::OpenAi) if path == "/v1/batches" => {
                if let Some(status) = self.create_status {
                    return json(
                        status,
                        &[],
                        r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
                    );
                }
                let body = request.json();
                assert_eq!(body["endpoint"], "/v1/chat/completions");
                assert_eq!(body["completion_window"], "24h");
                let file = &self.files[body["input_file_id"].as_str().expect("file id")];
                let items = file
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|line| {
                        let line: Value = serde_json::from_slice(line).expect("JSONL line");
                        assert_eq!(line["method"], "POST");
                        assert_eq!(line["url"], "/v1/chat/completions");
                        (
                            line["custom_id"].as_str().expect("custom_id").to_owned(),
                            last_user(&line["body"]["messages"]),
                        )
                    })
                    .collect();
                let id = format!("batch_{}", self.batches.len() + 1);
                self.batches.insert(id.clone(), Held { items, polls: 0 });
                json(
                    200,
                    &[],
                    &value!({"id": id, "object": "batch", "status": "validating"}).to_string(),
                )
            }
            ("GET", Provider::OpenAi) if path.starts_with("/v1/batches/") => {
                let id = path.trim_start_matches("/v1/batches/").to_owned();
                let Some(held) = self.batches.get_mut(&id) else {
                    return json(
                        404,
                        &[],
                        r#"{"error":{"message":"no batch","type":"invalid_request_error","code":null}}"#,
                    );
                };
                held.polls += 1;
                if held.polls <= self.polls {
                    return json(
                        200,
                        &[],
                        &value!({"id": id, "object": "batch", "status": "in_progress"}).to_string(),
                    );
                }
                self.openai_files(&id);
                let status = if self.expire_batch {
                    "expired"
                } else {
                    "completed"
                };
                let body = value!({"id": id, "object": "batch", "status": status,
                    "output_file_id": format!("file-out-{id}"), "error_file_id": format!("file-err-{id}")});
                json(200, &[], &body.to_string())
            }
            ("GET", Provider::OpenAi) if path.starts_with("/v1/files/") => {
                let id = path
                    .trim_start_matches("/v1/files/")
                    .trim_end_matches("/content");
                match self.files.get(id) {
                    Some(file) => Reply::Raw(response(
                        200,
                        &[("content-type", "application/jsonl")],
                        file,
                    )),
                    None => json(
                        404,
                        &[],
                        r#"{"error":{"message":"no file","type":"invalid_request_error","code":null}}"#,
                    ),
                }
            }
            _ => json(404, &[], r#"{"error":{"message":"unknown path"}}"#),
        }
    }

    /// The fate of a request with `text`, this time.
    fn fate(&mut self, custom_id: &str, text: &str) -> Fate {
        let key = format!("{custom_id}:{text}");
        if text.starts_with("expire") && !self.failed_once.contains(&key) {
            self.failed_once.push(key);
            return Fate::Expired;
        }
        if let Some(rest) = text.strip_prefix("fail ") {
            let status: u16 = rest[..3].parse().expect("status");
            if status == 400 || !self.failed_once.contains(&key) {
                self.failed_once.push(key);
                return Fate::Fails(status);
            }
        }
        Fate::Ok
    }

    fn anthropic_results(&mut self, id: &str) -> Reply {
        let items = self.batches[id].items.clone();
        let mut lines = String::new();
        for (custom_id, text) in items.iter().rev() {
            let result = match self.fate(custom_id, text) {
                Fate::Ok => {
                    value!({"type": "succeeded", "message": {"id": "msg", "type": "message", "role": "assistant",
                    "content": [{"type": "text", "text": format!("answer to {text}")}], "stop_reason": "end_turn",
                    "usage": {"input_tokens": 1000, "output_tokens": 200}}})
                }
                Fate::Fails(status) => {
                    let kind = match status {
                        429 => "rate_limit_error",
                        529 => "overloaded_error",
                        _ => "invalid_request_error",
                    };
                    value!({"type": "errored", "error": {"type": "error", "error": {"type": kind, "message": "no"}}})
                }
                Fate::Expired => value!({"type": "expired"}),
            };
            lines.push_str(&value!({"custom_id": custom_id, "result": result}).to_string());
            lines.push('\n');
        }
        Reply::Raw(response(
            200,
            &[("content-type", "application/x-jsonl")],
            lines.as_bytes(),
        ))
    }

    /// Writes the output and error files of OpenAI batch `id`; says whether a
    /// request in it expired.
    fn openai_files(&mut self, id: &str) -> bool {
        let mut expired = false;
        let items = self.batches[id].items.clone();
        let (mut output, mut errors) = (String::new(), String::new());
        for (custom_id, text) in items.iter().rev() {
            let fate = self.fate(custom_id, text);
            expired |= fate == Fate::Expired;
            let line = match fate {
                Fate::Ok => {
                    value!({"id": "req", "custom_id": custom_id, "error": null, "response": {"status_code": 200, "body": {
                    "id": "chatcmpl", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant",
                    "content": format!("answer to {text}")}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 1000, "completion_tokens": 200}}}})
                }
                Fate::Fails(status) => {
                    let code = if status == 429 {
                        "rate_limit_exceeded"
                    } else {
                        "invalid_value"
                    };
                    value!({"id": "req", "custom_id": custom_id, "error": null, "response": {"status_code": status,
                        "body": {"error": {"message": "no", "type": "invalid_request_error", "code": code}}}})
                }
                Fate::Expired => value!({"id": "req", "custom_id": custom_id, "response": null,
                    "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}),
            };
            let file = if fate == Fate::Ok {
                &mut output
            } else {
                &mut errors
            };
            file.push_str(&line.to_string());
            file.push('\n');
        }
        self.files
            .insert(format!("file-out-{id}"), output.into_bytes());
        self.files
            .insert(format!("file-err-{id}"), errors.into_bytes());
        expired
    }
}

fn anthropic_batch(id: &str, status: &str, results: Option<&str>) -> String {
    value!({"id": id, "type": "message_batch", "processing_status": status,
        "request_counts": {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        "results_url": results})
    .to_string()
}

/// The text of the last user turn of `messages`.
fn last_user(messages: &Value) -> String {
    messages
        .as_array()
        .expect("messages")
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .expect("a user turn")
        .to_owned()
}

/// The `file` part of a `multipart/form-data` upload, checking `purpose=batch`.
fn multipart_file(request: &Received) -> Vec<u8> {
    let kind = request.header("content-type").expect("content type");
    let boundary = kind.split("boundary=").nth(1).expect("boundary");
    let body = String::from_utf8(request.body.clone()).expect("UTF-8 upload");
    assert!(body.contains("name=\"purpose\"\r\n\r\nbatch\r\n"), "{body}");
    let file = body
        .split("filename=\"batch.jsonl\"")
        .nth(1)
        .expect("file part");
    let start = file.find("\r\n\r\n").expect("part head") + 4;
    let end = file
        .find(&format!("\r\n--{boundary}--"))
        .expect("closing boundary");
    file.as_bytes()[start..end].to_vec()
}

/// A client with route `jobs` of one step at `url`, priced $3/$15 per million.
fn client(kind: Provider, url: &str, queue: &Queue) -> Client {
    let route = RouteConfig::from_toml(
        r#"
        name = "jobs"
        [[step]]
        provider = "p"
        model = "m"
        attempts = 1
        timeout_ms = 5000
        "#,
    )
    .expect("route");
    Client::builder()
        .provider("p", kind, url, "sk-test")
        .route(route)
        .prices(PriceTable::new().with("m", Price::per_million(3.0, 15.0)))
        .queue(queue.clone())
        .seed(9)
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        )
        .build()
        .expect("client")
}

fn config() -> BatchConfig {
    BatchConfig {
        poll: Duration::from_millis(20),
        request_timeout: Duration::from_secs(5),
        ..BatchConfig::default()
    }
}

fn enqueue(queue: &Queue, texts: &[&str]) -> Vec<String> {
    texts
        .iter()
        .map(|text| {
            let key = format!("key-{text}");
            let task = Task::new(
                &key,
                "jobs",
                TaskKind::Deferrable,
                Request::new(64).user(*text),
                Duration::from_secs(30),
            )
            .via_batch();
            assert!(queue.enqueue(&task).expect("enqueue").created);
            key
        })
        .collect()
}

/// The stored state, attempts and result of the task with key `key`.
fn state(queue: &Queue, key: &str) -> (TaskState, u32, Option<String>) {
    let stored = queue.get(key).expect("read").expect("stored");
    (stored.state, stored.task.attempts, stored.result)
}

/// The batch price of one answer of the scripted provider: 1,000 in, 200 out.
fn one_answer() -> breakwater_core::BatchCost {
    Price::per_million(3.0, 15.0).batch_cost(Usage::new(1000, 200))
}

async fn full_flow(kind: Provider, transient: u16) {
    let dir = TempDir::new(&format!("flow-{}", kind.name()));
    let queue = Queue::open(dir.file("queue.db")).expect("queue");
    let (_state, server) = Provider2::new(kind).start();
    let server = server.await;
    let client = client(kind, &server.url(), &queue);
    let failing = format!("fail {transient} later");
    let keys = enqueue(&queue, &["one", &failing, "fail 400 never", "two"]);

    // Round 1: one batch of the four, each under a custom id of its own.
    let first = queue.batch_round(&client, &config()).await.expect("round");
    assert_eq!((first.batches_submitted, first.tasks_submitted), (1, 4));
    assert_eq!(
        queue.batch_counts().expect("counts"),
        BatchCounts {
            submitted: 1,
            ..BatchCounts::default()
        }
    );
    // Round 2: still in progress; the held tasks are not sent again.
    let second = queue.batch_round(&client, &config()).await.expect("round");
    assert_eq!((second.running, second.batches_submitted), (1, 0));
    // Round 3: ended. Two answers, the transient failure back in the queue (and in a
    // new batch at once), the 400 dead.
    let third = queue.batch_round(&client, &config()).await.expect("round");
    assert_eq!(
        (
            third.batches_ended,
            third.delivered,
            third.requeued,
            third.dead
        ),
        (1, 2, 1, 1)
    );
    assert_eq!((third.batches_submitted, third.tasks_submitted), (1, 1));
    assert_eq!(
        state(&queue, &keys[0]),
        (TaskState::Done, 0, Some("answer to one".into()))
    );
    assert_eq!(
        state(&queue, &keys[3]),
        (TaskState::Done, 0, Some("answer to two".into()))
    );
    let (s, attempts, _) = state(&queue, &keys[1]);
    assert_eq!((s, attempts), (TaskState::Pending, 1));
    let dead = queue.get(&keys[2]).expect("read").expect("stored");
    assert_eq!(dead.state, TaskState::Dead);
    assert_eq!(
        dead.reason.as_deref(),
        Some("non-retriable error: invalid_request")
    );
    // Rounds 4 and 5: the retry is answered.
    queue.batch_round(&client, &config()).await.expect("round");
    let fifth = queue.batch_round(&client, &config()).await.expect("round");
    assert_eq!(fifth.delivered, 1);
    assert_eq!(
        state(&queue, &keys[1]),
        (TaskState::Done, 1, Some(format!("answer to {failing}")))
    );
    assert_eq!(queue.counts().expect("counts").pending, 0);
    assert_eq!(
        queue.batch_counts().expect("counts"),
        BatchCounts {
            ended: 2,
            ..BatchCounts::default()
        }
    );

    // Billed at the batch price, with the synchronous price beside it.
    let bill = one_answer();
    assert_eq!(bill.batch, Cost::from_dollars(0.003));
    let done = queue.get(&keys[0]).expect("read").expect("stored");
    let billed = done.billed.expect("billed");
    assert_eq!(billed.usage, Usage::new(1000, 200));
    assert_eq!(
        (billed.cost, billed.synchronous_cost),
        (bill.batch, bill.synchronous)
    );
    assert_eq!(done.answered_by.as_deref(), Some("p/m"));
    let metrics = client.metrics();
    assert_eq!(metrics.batch_results, 3);
    assert_eq!(
        Cost::from_dollars(metrics.batch_saving_dollars),
        Cost::from_dollars(3.0 * 0.003)
    );
    assert_eq!(metrics.requests, 0);

    // Every request went to the batch endpoints with the API key; custom ids name tasks.
    let received = server.received();
    assert!(received.iter().all(|r| {
        r.header(auth_header(kind))
            .is_some_and(|v| v.contains("sk-test"))
    }));
    assert!(
        !received
            .iter()
            .any(|r| r.path.ends_with("/messages") || r.path.ends_with("/completions"))
    );
    server.shutdown().await;
}

fn auth_header(kind: Provider) -> &'static str {
    match kind {
        Provider::Anthropic => "x-api-key",
        _ => "authorization",
    }
}

#[tokio::test]
async fn anthropic_batches_deliver_requeue_529s_and_bury_400s() {
    full_flow(Provider::Anthropic, 529).await;
}

#[tokio::test]
async fn openai_batches_deliver_requeue_429s_and_bury_400s() {
    full_flow(Provider::OpenAi, 429).await;
}

#[tokio::test]
async fn custom_ids_map_results_back_whatever_their_order() {
    let dir = TempDir::new("mapping");
    let queue = Queue::open(dir.file("queue.db")).expect("queue");
    let (state_, server) = Provider2::new(Provider::Anthropic).start();
    let server = server.await;
    let client = client(Provider::Anthropic, &server.url(), &queue);
    let texts: Vec<String> = (0..20).map(|i| format!("question {i}")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let keys = enqueue(&queue, &refs);
    for _ in 0..3 {
        queue.batch_round(&client, &config()).await.expect("round");
    }
    for (key, text) in keys.iter().zip(&texts) {
        assert_eq!(state(&queue, key).2, Some(format!("answer to {text}")));
    }
    // The custom ids sent are the task ids, and the results came back reversed.
    let sent: Vec<String> = state_.lock().batches["msgbatch_1"]
        .items
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    let ids: Vec<i64> = keys
        .iter()
        .map(|k| queue.get(k).expect("read").expect("stored").id)
        .collect();
    assert_eq!(
        sent,
        ids.iter().map(|id| format!("bw-{id}")).collect::<Vec<_>>()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn expired_requests_go_out_again_without_an_attempt() {
    for kind in [Provider::Anthropic, Provider::OpenAi] {
        let dir = TempDir::new(&format!("expired-{}", kind.name()));
        let queue = Queue::open(dir.file("queue.db")).expect("queue");
        let mut provider = Provider2::new(kind);
        provider.polls = 0;
        provider.expire_batch = kind == Provider::OpenAi;
        let (_state, server) = provider.start();
        let server = server.await;
        let client = client(kind, &server.url(), &queue);
        let keys = enqueue(&queue, &["answered", "expire me", "expire me too"]);
        queue.batch_round(&client, &config()).await.expect("round");
        let ended = queue.batch_round(&client, &config()).await.expect("round");
        assert_eq!(
            (ended.delivered, ended.released, ended.requeued),
            (1, 2, 0),
            "{kind:?}"
        );
        // Back in a new batch at once, attempts unchanged.
        assert_eq!(ended.tasks_submitted, 2);
        let expired = queue.get(&keys[1]).expect("read").expect("stored");
        assert_eq!(
            (expired.state, expired.task.attempts),
            (TaskState::Pending, 0)
        );
        assert!(
            expired
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("expired")),
            "{:?}",
            expired.reason
        );
        let last = queue.batch_round(&client, &config()).await.expect("round");
        assert_eq!(last.delivered, 2, "{kind:?}");
        assert_eq!(queue.counts().expect("counts").done, 3);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_failed_create_is_judged_by_the_taxonomy() {
    for (kind, status) in [(Provider::Anthropic, 529), (Provider::OpenAi, 429)] {
        let dir = TempDir::new(&format!("create-{}", kind.name()));
        let queue = Queue::open(dir.file("queue.db")).expect("queue");
        let mut provider = Provider2::new(kind);
        provider.create_status = Some(status);
        let (state_, server) = provider.start();
        let server = server.await;
        let client = client(kind, &server.url(), &queue);
        let keys = enqueue(&queue, &["a", "b"]);
        let round = queue.batch_round(&client, &config()).await.expect("round");
        assert_eq!(
            (
                round.batches_abandoned,
                round.requeued,
                round.batches_submitted
            ),
            (1, 2, 0)
        );
        assert_eq!(state(&queue, &keys[0]).1, 1);
        state_.lock().create_status = None;
        for _ in 0..3 {
            queue.batch_round(&client, &config()).await.expect("round");
        }
        assert_eq!(queue.counts().expect("counts").done, 2, "{kind:?}");
        server.shutdown().await;
    }
}

#[tokio::test]
async fn a_stop_before_the_provider_confirms_is_reconciled() {
    let dir = TempDir::new("reconcile");
    let queue = Queue::open(dir.file("queue.db")).expect("queue");
    let mut provider = Provider2::new(Provider::Anthropic);
    provider.create_hangs = true;
    let (state_, server) = provider.start();
    let server = server.await;
    let client = client(Provider::Anthropic, &server.url(), &queue);
    let keys = enqueue(&queue, &["x", "y"]);
    let submitter = queue.submit_batches(client.clone(), config());
    // Wait until the batch is recorded and its create request is out, then stop.
    for _ in 0..500 {
        if queue.batch_counts().expect("counts").submitting == 1 && !server.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    submitter.stop().await.expect("stopped");
    assert_eq!(queue.batch_counts().expect("counts").submitting, 1);
    // The tasks are held by the unconfirmed batch: the drain does not take them.
    let drained = queue
        .drain_once(
            &client,
            &DrainConfig {
                batch_tasks: true,
                ..DrainConfig::default()
            },
        )
        .await
        .expect("drain");
    assert_eq!(drained.delivered, 0);

    state_.lock().create_hangs = false;
    let round = queue.batch_round(&client, &config()).await.expect("round");
    assert_eq!(
        (
            round.batches_abandoned,
            round.batches_submitted,
            round.tasks_submitted
        ),
        (1, 1, 2)
    );
    queue.batch_round(&client, &config()).await.expect("round");
    queue.batch_round(&client, &config()).await.expect("round");
    for key in &keys {
        assert_eq!(state(&queue, key).0, TaskState::Done);
    }
    assert_eq!(
        queue.batch_counts().expect("counts"),
        BatchCounts {
            abandoned: 1,
            ended: 1,
            ..BatchCounts::default()
        }
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_drain_leaves_batch_tasks_unless_told() {
    let dir = TempDir::new("drain");
    let queue = Queue::open(dir.file("queue.db")).expect("queue");
    let server = FakeServer::start(vec![json(200, &[], fake::ANTHROPIC_OK)]).await;
    let client = client(Provider::Anthropic, &server.url(), &queue);
    let keys = enqueue(&queue, &["later"]);
    let stats = queue
        .drain_once(&client, &DrainConfig::default())
        .await
        .expect("drain");
    assert_eq!(stats.delivered, 0);
    assert!(server.received().is_empty());
    let config = DrainConfig {
        batch_tasks: true,
        ..DrainConfig::default()
    };
    let stats = queue.drain_once(&client, &config).await.expect("drain");
    assert_eq!(stats.delivered, 1);
    let done = queue.get(&keys[0]).expect("read").expect("stored");
    // Synchronous, at the standard price: nothing saved.
    let billed = done.billed.expect("billed");
    assert_eq!(billed.cost, billed.synchronous_cost);
    assert_eq!(
        billed.cost,
        Price::per_million(3.0, 15.0).cost(Usage::new(12, 5))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_deferrable_call_can_fall_into_a_batch() {
    let dir = TempDir::new("fall");
    let queue = Queue::open(dir.file("queue.db")).expect("queue");
    let server = FakeServer::start(vec![json(
        529,
        &[],
        r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
    )])
    .await;
    let client = client(Provider::Anthropic, &server.url(), &queue);
    let options = CallOptions::new().idempotency_key("nightly-1").via_batch();
    let error = client
        .complete_with(
            "jobs",
            &Request::new(16).user("hi"),
            TaskKind::Deferrable,
            Duration::from_secs(2),
            options,
            |_| {},
        )
        .await
        .expect_err("queued");
    let Error::Queued {
        deferred: Deferred::Stored { key, .. },
        ..
    } = error
    else {
        panic!("{error:?}");
    };
    assert!(queue.get(&key).expect("read").expect("stored").task.batch);
    // Only deferrable tasks go to a batch.
    let interactive = Task::new(
        "k",
        "jobs",
        TaskKind::Interactive,
        Request::new(1),
        Duration::from_secs(1),
    )
    .via_batch();
    assert!(matches!(
        queue.enqueue(&interactive),
        Err(QueueError::BadTask { .. })
    ));
    server.shutdown().await;
}
