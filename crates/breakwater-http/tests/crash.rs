//! The durable queue under load, killed: a child process enqueues tasks while its
//! drain delivers them through the real client to a loopback server this test runs,
//! and is killed with SIGKILL at 100 seeded random points, each restart carrying on
//! where the last stopped. At the end every acknowledged task was delivered, nothing
//! was delivered that was not enqueued, and a key reached the server twice only when
//! a kill cut the delivery of that very key short (at least once, at most one
//! duplicate per kill).
//!
//! Replay a failing run with `BREAKWATER_CRASH_SEED=<seed>` (the seed is printed).
//! And files that are only part of a queue, or garbage, are refused with a clear error.

mod fake;
mod killed;
mod tempdir;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use breakwater_core::{RouteConfig, TaskKind};
use breakwater_http::Client;
use breakwater_http::queue::{DrainConfig, Queue, QueueError, Task, TaskState};
use breakwater_http::wire::{Provider, Request};
use fake::{FakeServer, Received, json};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use tempdir::TempDir;

/// Set in the child's environment: `<queue path>|<first index>|<server URL>`.
const CHILD: &str = "BREAKWATER_CRASH_CHILD";
/// Overrides the seed of the kill points.
const SEED_VAR: &str = "BREAKWATER_CRASH_SEED";
const DEFAULT_SEED: u64 = 0xC4A5_4ED0;
/// Kills of the loaded run.
const KILLS: usize = 100;
/// Tasks a child enqueues before it only drains, waiting to be killed.
const PER_CHILD: u64 = 12;

fn job(key: &str) -> Request {
    Request::new(32).user(format!("deliver {key}"))
}

/// A client with route `jobs`: one Anthropic step at `url`, one attempt.
fn client(url: &str) -> Client {
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
    Client::builder()
        .provider("a", Provider::Anthropic, url, "sk-test-a")
        .route(route)
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

fn drain_config() -> DrainConfig {
    DrainConfig {
        idle: Duration::from_millis(2),
        batch: 4,
        ..DrainConfig::default()
    }
}

/// The key a delivery was for (its prompt is `deliver <key>`).
fn delivered_key(received: &Received) -> Option<String> {
    let body = received.json();
    let text = body["messages"][0]["content"].as_str()?;
    text.strip_prefix("deliver ").map(str::to_owned)
}

/// The child: a drain delivering through the client while the main thread enqueues
/// `t-<i>` from the first index on, printing `@@ack t-<i> <created>` once each
/// `enqueue` returns; then it drains on until killed.
fn child(spec: &str) -> ! {
    let mut parts = spec.splitn(3, '|');
    let (path, first, url) = (
        parts.next().expect("path"),
        parts.next().expect("first").parse::<u64>().expect("index"),
        parts.next().expect("url"),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The drain and the enqueuer share the queue, as a client with a queue and its
    // drain do.
    let queue = Queue::open(path).expect("child opens the queue");
    let client = client(url);
    let _drainer = runtime.block_on(async { queue.drain(client, drain_config()) });
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

/// Runs one child from `first`, kills it with SIGKILL once it acknowledged `acks`
/// tasks and `extra` more time passed; returns the acknowledgements it printed.
fn run_and_kill(
    path: &Path,
    url: &str,
    first: u64,
    acks: usize,
    extra: Duration,
    seed: u64,
) -> Vec<(String, bool)> {
    let log = path.with_extension("child.log");
    let stderr = std::fs::File::create(&log).expect("child log");
    let child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "acknowledged_tasks_survive_100_kills_under_load",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, format!("{}|{first}|{url}", path.display()))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn child");
    let (status, acked) = killed::kill_after_acks(child, acks, Duration::from_secs(10), extra);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(
            status.signal(),
            Some(9),
            "seed {seed:#x}: the child ended by itself ({status:?}):\n{said}"
        );
    }
    acked
}

#[test]
fn acknowledged_tasks_survive_100_kills_under_load() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
    }
    let seed = std::env::var(SEED_VAR)
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("kill points seeded with {seed:#x} (replay: {SEED_VAR}={seed:x})");
    #[allow(clippy::disallowed_methods)] // the run's wall time, printed, never asserted
    let started = Instant::now();
    let dir = TempDir::new("loaded");
    let path = dir.file("q.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let ok = Arc::new(|_: &Received, _: &str| json(200, &[], fake::ANTHROPIC_OK));
    let server = runtime.block_on(FakeServer::start_with(ok));
    let url = server.url();

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut next = 0u64;
    let mut again = 0;
    for kill in 0..KILLS {
        let acks = (rng.next_u32() as usize) % (PER_CHILD as usize + 1);
        let extra = Duration::from_micros(u64::from(rng.next_u32() % 8000));
        let got = run_and_kill(&path, &url, next, acks, extra, seed);
        for (key, created) in &got {
            acked.insert(key.clone());
            again += usize::from(!created);
        }
        // The next child starts just after the last acknowledged index: a task that
        // was committed but not acknowledged is enqueued again, and stored once.
        if let Some((key, _)) = got.last() {
            next = key[2..].parse::<u64>().expect("index") + 1;
        }
        if kill % 20 == 19 {
            eprintln!(
                "{} kills: {} acknowledged, {} deliveries so far",
                kill + 1,
                acked.len(),
                server.received().len()
            );
        }
    }
    let killed_at = started.elapsed();
    assert!(
        acked.len() >= 200,
        "seed {seed:#x}: too few acknowledgements: {}",
        acked.len()
    );

    // The file opens after the last kill; a drain in this process finishes the rest.
    let queue = Queue::open(&path).expect("the queue opens after 100 kills");
    runtime.block_on(async {
        let drainer = queue.drain(client(&url), drain_config());
        for _ in 0..3000 {
            if queue.counts().expect("counts").pending == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drainer.stop().await.expect("the drain ran");
    });
    let counts = queue.counts().expect("counts");
    assert_eq!(
        (counts.pending, counts.dead),
        (0, 0),
        "seed {seed:#x}: {counts:?}"
    );
    let done = queue.tasks(TaskState::Done).expect("read");
    let stored: BTreeSet<String> = done.iter().map(|t| t.task.key.clone()).collect();
    for task in &done {
        assert_eq!(task.task.request, job(&task.task.key), "seed {seed:#x}");
        assert_eq!(task.result.as_deref(), Some("Hello from Claude"));
    }

    let received = server.received();
    let mut deliveries: BTreeMap<String, u32> = BTreeMap::new();
    for request in &received {
        let key = delivered_key(request)
            .unwrap_or_else(|| panic!("seed {seed:#x}: a request for no task: {request:?}"));
        *deliveries.entry(key).or_default() += 1;
    }
    for key in &acked {
        assert!(
            stored.contains(key),
            "seed {seed:#x}: acknowledged {key} is not done"
        );
        assert!(
            deliveries.contains_key(key),
            "seed {seed:#x}: acknowledged {key} never reached the server"
        );
    }
    // Nothing reached the server that was never enqueued, and every stored task did.
    let delivered: BTreeSet<String> = deliveries.keys().cloned().collect();
    assert_eq!(delivered, stored, "seed {seed:#x}");
    // At most one committed but unacknowledged task per kill.
    assert!(
        stored.len() <= acked.len() + KILLS,
        "seed {seed:#x}: {} stored > {} acknowledged + {KILLS}",
        stored.len(),
        acked.len()
    );
    // At least once: a second delivery of a key only when a kill cut its first one
    // short between the server's answer and the commit; the drain sends one task at a
    // time, so at most one per kill.
    let duplicates = received.len() - delivered.len();
    assert!(
        duplicates <= KILLS,
        "seed {seed:#x}: {duplicates} duplicate deliveries for {KILLS} kills"
    );
    eprintln!(
        "{KILLS} kills in {killed_at:.1?}: {} acknowledged ({again} re-enqueued keys stored \
         once), {} stored, {} deliveries, {duplicates} repeated a key a kill cut short",
        acked.len(),
        stored.len(),
        received.len()
    );
    runtime.block_on(server.shutdown());
}

/// Files that are only part of a queue, garbage, or a queue cut at a page: refused
/// with an error naming the problem, and left as they were; never an empty queue.
#[test]
fn partial_and_garbage_files_are_refused_never_read_as_empty() {
    let dir = TempDir::new("partial");
    let good = dir.file("good.db");
    {
        let queue = Queue::open(&good).expect("open");
        for i in 0..200 {
            let key = format!("k-{i}");
            let task = Task::new(
                &key,
                "jobs",
                TaskKind::Deferrable,
                job(&key),
                Duration::from_secs(5),
            );
            queue.enqueue(&task).expect("enqueue");
        }
    }
    let bytes = std::fs::read(&good).expect("read");
    let page = 4096;
    assert!(bytes.len() >= 8 * page, "{}", bytes.len());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        // Shorter than a page: SQLite alone would take these for an empty database.
        ("one byte".into(), bytes[..1].to_vec()),
        ("the magic string".into(), bytes[..16].to_vec()),
        ("a page less a byte".into(), bytes[..511].to_vec()),
        ("the header only".into(), bytes[..100].to_vec()),
        ("the first page".into(), bytes[..page].to_vec()),
        (
            "cut at a page".into(),
            bytes[..bytes.len() - 2 * page].to_vec(),
        ),
        ("cut mid-page".into(), bytes[..bytes.len() - 1000].to_vec()),
        ("zeros".into(), vec![0; bytes.len()]),
    ];
    let mut garbage = vec![0u8; bytes.len()];
    rng.fill_bytes(&mut garbage);
    cases.push(("random bytes".into(), garbage));
    let mut header_kept = bytes[..100].to_vec();
    header_kept.resize(bytes.len(), 0);
    rng.fill_bytes(&mut header_kept[100..]);
    cases.push(("a good header, random pages".into(), header_kept));
    for (name, content) in cases {
        let path = dir.file(&format!("{}.db", name.replace(' ', "-")));
        std::fs::write(&path, &content).expect("write");
        let error = Queue::open(&path).map(|q| q.counts()).expect_err(&name);
        assert!(
            matches!(
                error,
                QueueError::NotADatabase(_) | QueueError::Corrupt { .. }
            ),
            "{name}: {error:?}"
        );
        let said = error.to_string();
        assert!(
            said.contains("not an SQLite database") || said.contains("damaged"),
            "{name}: {said}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), content, "{name}");
    }
    assert_eq!(
        Queue::open(&good)
            .expect("open")
            .counts()
            .expect("counts")
            .pending,
        200
    );
}
