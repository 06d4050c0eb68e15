//! The durable queue with the client and its drain, against the scripted loopback
//! server; and a crash test: a child process enqueueing tasks is killed with SIGKILL
//! twenty times, and every task it acknowledged is there exactly once and delivered.

mod fake;
mod killed;
mod tempdir;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use breakwater_core::{
    Backoff, BreakerConfig, Jitter, Key, Registry, RegistryConfig, RouteConfig, TaskKind,
};
use breakwater_http::queue::{DrainConfig, Queue, Task, TaskState};
use breakwater_http::wire::{Provider, Request};
use breakwater_http::{CallOptions, Client, Deferred, Error, clock};
use fake::{FakeServer, Reply, json};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use tempdir::TempDir;

/// A route `jobs` of one Anthropic step at `url`, one attempt, deferrable work queued.
fn client(url: &str, queue: Option<Queue>, registry: Option<Arc<Registry>>) -> Client {
    let route = RouteConfig::from_toml(
        r#"
        name = "jobs"
        [[step]]
        provider = "a"
        model = "m-a"
        attempts = 1
        timeout_ms = 5000
        "#,
    )
    .expect("route");
    let mut builder = Client::builder()
        .provider("a", Provider::Anthropic, url, "sk-test-a")
        .route(route)
        .seed(5)
        .http_client(
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("reqwest"),
        );
    if let Some(queue) = queue {
        builder = builder.queue(queue);
    }
    if let Some(registry) = registry {
        builder = builder.registry(registry);
    }
    builder.build().expect("client")
}

fn job(key: &str) -> Request {
    Request::new(32).user(format!("deliver {key}"))
}

fn unavailable() -> Reply {
    json(503, &[], r#"{"type":"error","error":{"type":"api_error"}}"#)
}

/// The key each request the server received was for (`deliver <key>`), counted.
fn deliveries(server: &FakeServer) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    for received in server.received() {
        let body = received.json();
        let text = body["messages"][0]["content"].as_str().unwrap_or("");
        if let Some(key) = text.strip_prefix("deliver ") {
            *counts.entry(key.to_owned()).or_default() += 1;
        }
    }
    counts
}

async fn defer(client: &Client, key: &str, tenant: &str) -> Error {
    client
        .complete_with(
            "jobs",
            &job(key),
            TaskKind::Deferrable,
            Duration::from_secs(5),
            CallOptions::new().tenant(tenant).idempotency_key(key),
            |_| {},
        )
        .await
        .expect_err("the provider is down: queued")
}

#[tokio::test]
async fn a_queued_call_is_stored_before_it_returns_and_stored_once() {
    let dir = TempDir::new("stored");
    let server = FakeServer::start(vec![unavailable(), unavailable()]).await;
    let queue = Queue::open(dir.file("q.db")).expect("open");
    let client = client(&server.url(), Some(queue.clone()), None);

    let error = defer(&client, "report-7", "acme").await;
    let Error::Queued {
        deferred, history, ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert!(deferred.is_durable(), "{deferred:?}");
    let Deferred::Stored { id, key, created } = deferred else {
        panic!("{deferred:?}")
    };
    assert_eq!((key.as_str(), *created), ("report-7", true));
    assert_eq!(history.attempts().count(), 1, "the attempt history is kept");
    assert!(error.to_string().contains("queued durably"), "{error}");
    // Committed: another handle on the file sees it, as it was sent.
    let stored = Queue::open(dir.file("q.db"))
        .expect("reopen")
        .get("report-7")
        .expect("read")
        .expect("stored");
    assert_eq!(stored.id, *id);
    assert_eq!(stored.state, TaskState::Pending);
    assert_eq!(
        (stored.task.route.as_str(), stored.task.tenant.as_str()),
        ("jobs", "acme")
    );
    assert_eq!(stored.task.kind, TaskKind::Deferrable);
    assert_eq!(stored.task.request, job("report-7"));
    assert_eq!(stored.task.deadline, Duration::from_secs(5));
    assert_eq!(stored.task.attempts, 1);
    assert!(stored.task.enqueued_at_ms > 1_600_000_000_000);

    // The caller retries the same call with the same key: stored once.
    let again = defer(&client, "report-7", "acme").await;
    let Error::Queued { deferred, .. } = &again else {
        panic!("{again:?}")
    };
    assert_eq!(
        deferred,
        &Deferred::Stored {
            id: *id,
            key: "report-7".into(),
            created: false
        }
    );
    assert_eq!(queue.counts().expect("counts").pending, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_queue_the_call_says_it_is_not_durable() {
    let server = FakeServer::start(vec![unavailable()]).await;
    let client = client(&server.url(), None, None);
    let error = defer(&client, "k", "").await;
    let Error::Queued { deferred, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(deferred, &Deferred::NotQueued);
    assert!(!deferred.is_durable());
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_without_a_key_gets_a_fresh_one() {
    let dir = TempDir::new("fresh-key");
    let server = FakeServer::start(vec![unavailable(), unavailable()]).await;
    let queue = Queue::open(dir.file("q.db")).expect("open");
    let client = client(&server.url(), Some(queue.clone()), None);
    let mut keys = Vec::new();
    for _ in 0..2 {
        let error = client
            .complete(
                "jobs",
                &job("x"),
                TaskKind::Deferrable,
                Duration::from_secs(5),
            )
            .await
            .expect_err("queued");
        let Error::Queued { deferred, .. } = error else {
            panic!("{error:?}")
        };
        keys.push(deferred.key().expect("a key").to_owned());
    }
    assert_ne!(keys[0], keys[1]);
    assert_eq!(queue.counts().expect("counts").pending, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn the_drain_waits_for_the_breaker_then_delivers_once() {
    let dir = TempDir::new("breaker");
    let queue = Queue::open(dir.file("q.db")).expect("open");
    let task = Task::new(
        "nightly",
        "jobs",
        TaskKind::Deferrable,
        job("nightly"),
        Duration::from_secs(5),
    )
    .tenant("acme");
    assert!(queue.enqueue(&task).expect("enqueue").created);

    let server = FakeServer::start(vec![json(200, &[], fake::ANTHROPIC_OK)]).await;
    let registry = Arc::new(
        Registry::new(RegistryConfig {
            breaker: Some(BreakerConfig {
                open: Backoff {
                    base: Duration::from_millis(300),
                    multiplier: 2.0,
                    cap: Duration::from_millis(300),
                    jitter: Jitter::None,
                },
                ..BreakerConfig::default()
            }),
            ..RegistryConfig::default()
        })
        .expect("registry"),
    );
    let client = client(
        &server.url(),
        Some(queue.clone()),
        Some(Arc::clone(&registry)),
    );
    let breaker = registry
        .breaker(&Key::new("a", "m-a"))
        .expect("breakers on");
    breaker.force_open(clock::read().now);

    // While the breaker is open, a sweep holds the task and sends nothing.
    let config = DrainConfig {
        idle: Duration::from_millis(20),
        ..DrainConfig::default()
    };
    let held = queue.drain_once(&client, &config).await.expect("sweep");
    assert_eq!((held.held, held.delivered), (1, 0));
    assert!(server.received().is_empty());

    let drainer = queue.drain(client.clone(), config);
    wait_until_drained(&queue).await;
    let stats = drainer.stop().await.expect("drain ran");
    assert_eq!(stats.delivered, 1);
    assert_eq!(
        deliveries(&server),
        BTreeMap::from([("nightly".to_owned(), 1)])
    );
    let done = queue.get("nightly").expect("read").expect("stored");
    assert_eq!(done.state, TaskState::Done);
    assert_eq!(done.result.as_deref(), Some("Hello from Claude"));
    assert_eq!(done.answered_by.as_deref(), Some("a/m-a"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_drain_requeues_what_comes_back_and_buries_what_cannot_succeed() {
    let dir = TempDir::new("verdicts");
    let queue = Queue::open(dir.file("q.db")).expect("open");
    for key in ["bad", "flaky", "lost"] {
        let mut task = Task::new(
            key,
            "jobs",
            TaskKind::Deferrable,
            job(key),
            Duration::from_secs(5),
        );
        if key == "lost" {
            task.route = "no-such-route".into();
        }
        queue.enqueue(&task).expect("enqueue");
    }
    // `bad` meets a 400; `flaky` a 503 twice.
    let server = FakeServer::start(vec![
        json(
            400,
            &[],
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"no"}}"#,
        ),
        unavailable(),
        unavailable(),
    ])
    .await;
    let client = client(&server.url(), None, None);
    let config = DrainConfig {
        max_attempts: 2,
        ..DrainConfig::default()
    };
    let first = queue.drain_once(&client, &config).await.expect("sweep");
    assert_eq!((first.delivered, first.requeued, first.dead), (0, 1, 2));
    let bad = queue.get("bad").expect("read").expect("stored");
    assert_eq!(bad.state, TaskState::Dead);
    assert!(
        bad.reason
            .as_deref()
            .is_some_and(|r| r.contains("non-retriable")),
        "{:?}",
        bad.reason
    );
    let lost = queue.get("lost").expect("read").expect("stored");
    assert_eq!(lost.state, TaskState::Dead);
    assert!(
        lost.reason
            .as_deref()
            .is_some_and(|r| r.contains("no-such-route"))
    );
    let flaky = queue.get("flaky").expect("read").expect("stored");
    assert_eq!((flaky.state, flaky.task.attempts), (TaskState::Pending, 1));
    assert!(
        flaky
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("queued again"))
    );
    // The second time it comes back it reaches max_attempts: given up, not retried
    // forever.
    let second = queue.drain_once(&client, &config).await.expect("sweep");
    assert_eq!((second.requeued, second.dead), (0, 1));
    let flaky = queue.get("flaky").expect("read").expect("stored");
    assert_eq!((flaky.state, flaky.task.attempts), (TaskState::Dead, 2));
    assert_eq!(server.received().len(), 3, "dead tasks are not replayed");
    server.shutdown().await;
}

#[tokio::test]
async fn stopping_the_drain_abandons_the_call_in_flight_and_keeps_the_task() {
    let dir = TempDir::new("stop");
    let queue = Queue::open(dir.file("q.db")).expect("open");
    let task = Task::new(
        "slow",
        "jobs",
        TaskKind::Deferrable,
        job("slow"),
        Duration::from_secs(30),
    );
    queue.enqueue(&task).expect("enqueue");
    let server = FakeServer::start(vec![Reply::Hang]).await;
    let client = client(&server.url(), None, None);
    let drainer = queue.drain(client, DrainConfig::default());
    // Wait until the replay is out (the server has the request), then stop.
    for _ in 0..500 {
        if !server.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.received().len(), 1);
    let stats = drainer.stop().await.expect("stopped");
    assert_eq!((stats.delivered, stats.requeued, stats.dead), (0, 0, 0));
    let kept = queue.get("slow").expect("read").expect("stored");
    assert_eq!((kept.state, kept.task.attempts), (TaskState::Pending, 0));
    server.shutdown().await;
}

/// Polls until no task is pending (at most 15 s).
async fn wait_until_drained(queue: &Queue) {
    for _ in 0..1500 {
        if queue.counts().expect("counts").pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the drain did not finish: {:?}", queue.counts());
}

// ---- The crash test ----

/// Set in the child's environment: `<queue path>|<first index>`.
const CHILD: &str = "BREAKWATER_QUEUE_CRASH_CHILD";
/// How many tasks a child enqueues before it idles, waiting to be killed.
const PER_CHILD: u64 = 40;
const KILLS: usize = 20;
const SEED: u64 = 0x5EED_CA5E;

/// The child: enqueue `t-<i>` from the first index on, printing `@@ack t-<i> <created>`
/// after each `enqueue` returns; then idle until killed.
fn child(spec: &str) -> ! {
    let (path, first) = spec.split_once('|').expect("spec");
    let first: u64 = first.parse().expect("index");
    let queue = Queue::open(path).expect("child opens the queue");
    let mut out = std::io::stdout().lock();
    for i in first..first + PER_CHILD {
        let key = format!("t-{i}");
        let task = Task::new(
            &key,
            "jobs",
            TaskKind::Deferrable,
            job(&key),
            Duration::from_secs(5),
        );
        let enqueued = queue.enqueue(&task).expect("child enqueues");
        // Marked: libtest may have written part of a line of its own before it.
        writeln!(out, "@@ack {key} {}", enqueued.created).expect("stdout");
        out.flush().expect("flush");
    }
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// Runs one child from `first`, kills it with SIGKILL after it acknowledged `acks`
/// tasks and a further `extra`, and returns the acknowledgements it printed.
fn run_and_kill(path: &Path, first: u64, acks: usize, extra: Duration) -> Vec<(String, bool)> {
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "acknowledged_tasks_survive_sigkill",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, format!("{}|{first}", path.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let (status, acked) = killed::kill_after_acks(child, acks, Duration::from_secs(5), extra);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    }
    acked
}

#[test]
fn acknowledged_tasks_survive_sigkill() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
    }
    let dir = TempDir::new("crash");
    let path = dir.file("q.db");
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut acked: BTreeMap<String, u32> = BTreeMap::new();
    let mut next = 0u64;
    let mut duplicates = 0;
    for kill in 0..KILLS {
        let acks = (rng.next_u32() % 12) as usize;
        let extra = Duration::from_micros(u64::from(rng.next_u32() % 3000));
        let got = run_and_kill(&path, next, acks, extra);
        for (key, created) in &got {
            *acked.entry(key.clone()).or_default() += 1;
            duplicates += usize::from(!created);
        }
        // Start the next child just after the last acknowledged index: a task that
        // was committed but not acknowledged is enqueued again, and must be stored once.
        if let Some((key, _)) = got.last() {
            next = key[2..].parse::<u64>().expect("index") + 1;
        }
        eprintln!(
            "kill {kill}: {} acks after waiting for {acks} (+{extra:?})",
            got.len()
        );
    }
    assert!(
        acked.len() >= 40,
        "too few acknowledgements: {}",
        acked.len()
    );

    let queue = Queue::open(&path).expect("the queue opens after 20 kills");
    let stored = queue.tasks(TaskState::Pending).expect("read");
    let mut present: BTreeMap<String, u32> = BTreeMap::new();
    for task in &stored {
        *present.entry(task.task.key.clone()).or_default() += 1;
        assert_eq!(task.task.request, job(&task.task.key));
    }
    for key in acked.keys() {
        assert_eq!(present.get(key), Some(&1), "acknowledged {key} stored once");
    }
    // At most one committed but unacknowledged task per kill.
    assert!(
        present.len() <= acked.len() + KILLS,
        "{} > {} + {KILLS}",
        present.len(),
        acked.len()
    );
    eprintln!(
        "{} acknowledged, {} stored, {duplicates} re-enqueued keys stored once",
        acked.len(),
        present.len()
    );

    // Drain them all through a loopback server that counts deliveries per key.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let replies = vec![json(200, &[], fake::ANTHROPIC_OK); present.len()];
        let server = FakeServer::start(replies).await;
        let client = client(&server.url(), None, None);
        let drainer = queue.drain(
            client,
            DrainConfig {
                idle: Duration::from_millis(20),
                ..DrainConfig::default()
            },
        );
        wait_until_drained(&queue).await;
        let stats = drainer.stop().await.expect("drain ran");
        assert_eq!(stats.delivered, present.len() as u64);
        let delivered = deliveries(&server);
        assert_eq!(delivered.len(), present.len());
        for key in acked.keys() {
            assert_eq!(delivered.get(key), Some(&1), "{key} delivered exactly once");
        }
        assert!(delivered.values().all(|&n| n == 1), "{delivered:?}");
        assert_eq!(queue.counts().expect("counts").done, present.len() as u64);
        server.shutdown().await;
    });
}
