use std::path::PathBuf;
use std::time::Duration;

use breakwater_core::TaskKind;

use super::*;
use crate::wire::Request;

/// A directory of its own under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "breakwater-queue-{name}-{}-{}",
            std::process::id(),
            wall_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn task(key: &str) -> Task {
    let mut request = Request::new(128)
        .system("Summarise.")
        .user("Ticket 42: the printer is on fire.")
        .assistant("Noted.")
        .user("And the fax?");
    request.temperature = Some(0.3);
    request.stop = vec!["END".into()];
    request.metadata.insert("user_id".into(), "u-7".into());
    Task::new(
        key,
        "summaries",
        TaskKind::Deferrable,
        request,
        Duration::from_secs(90),
    )
    .tenant("acme")
}

#[test]
fn tasks_round_trip_and_keys_are_stored_once() {
    let dir = TempDir::new("round-trip");
    let queue = Queue::open(dir.file("q.db")).unwrap();
    let first = queue.enqueue(&task("k-1")).unwrap();
    assert!(first.created);
    let second = queue.enqueue(&task("k-2")).unwrap();
    assert!(second.created && second.id > first.id);
    let again = queue.enqueue(&task("k-1")).unwrap();
    assert_eq!(
        again,
        Enqueued {
            id: first.id,
            key: "k-1".into(),
            created: false
        }
    );
    let stored = queue.get("k-1").unwrap().unwrap();
    assert_eq!(stored.task, task("k-1").clone_with_time(&stored.task));
    assert_eq!(stored.state, TaskState::Pending);
    assert_eq!(stored.task.request.temperature, Some(0.3));
    assert_eq!(stored.task.tenant, "acme");
    assert_eq!(queue.get("nope").unwrap(), None);
    assert_eq!(
        queue.counts().unwrap(),
        QueueCounts {
            pending: 2,
            done: 0,
            dead: 0
        }
    );
    // Reopening finds the same tasks.
    drop(queue);
    let queue = Queue::open(dir.file("q.db")).unwrap();
    let pending = queue.tasks(TaskState::Pending).unwrap();
    let keys: Vec<&str> = pending.iter().map(|t| t.task.key.as_str()).collect();
    assert_eq!(keys, ["k-1", "k-2"]);
}

impl Task {
    /// This task with `other`'s enqueue time (set from the clock at `Task::new`).
    fn clone_with_time(&self, other: &Task) -> Task {
        Task {
            enqueued_at_ms: other.enqueued_at_ms,
            ..self.clone()
        }
    }
}

#[test]
fn states_move_pending_to_done_or_dead_once() {
    let dir = TempDir::new("states");
    let queue = Queue::open(dir.file("q.db")).unwrap();
    let a = queue.enqueue(&task("a")).unwrap().id;
    let b = queue.enqueue(&task("b")).unwrap().id;
    let c = queue.enqueue(&task("c")).unwrap().id;
    let billed = Billed {
        usage: breakwater_core::Usage::new(10, 2),
        cost: breakwater_core::Cost::from_nanodollars(60),
        synchronous_cost: breakwater_core::Cost::from_nanodollars(120),
    };
    let answer = Answer {
        text: "the answer",
        by: "p/m",
        billed,
    };
    queue.mark_done(a, answer, 5).unwrap();
    assert_eq!(
        queue.requeue(b, "exhausted", 3, 6).unwrap(),
        TaskState::Pending
    );
    assert_eq!(
        queue.requeue(b, "exhausted", 3, 7).unwrap(),
        TaskState::Pending
    );
    assert_eq!(
        queue.requeue(b, "exhausted", 3, 8).unwrap(),
        TaskState::Dead
    );
    queue
        .mark_dead(c, "non-retriable error: bad request", 9)
        .unwrap();
    // A finished task is not moved again.
    queue.mark_dead(a, "late", 10).unwrap();
    let a = queue.get("a").unwrap().unwrap();
    assert_eq!(a.state, TaskState::Done);
    assert_eq!(a.result.as_deref(), Some("the answer"));
    assert_eq!(a.answered_by.as_deref(), Some("p/m"));
    assert_eq!(a.updated_at_ms, 5);
    assert_eq!(a.billed, Some(billed));
    assert_eq!(billed.saving().nanodollars(), 60);
    let b = queue.get("b").unwrap().unwrap();
    assert_eq!((b.state, b.task.attempts), (TaskState::Dead, 3));
    assert_eq!(b.reason.as_deref(), Some("exhausted"));
    let c = queue.get("c").unwrap().unwrap();
    assert_eq!(c.state, TaskState::Dead);
    assert_eq!(
        c.reason.as_deref(),
        Some("non-retriable error: bad request")
    );
    assert!(queue.pending_after(0, 10).unwrap().is_empty());
    assert_eq!(
        queue.counts().unwrap(),
        QueueCounts {
            pending: 0,
            done: 1,
            dead: 2
        }
    );
    // A dead or done key is still a known key: enqueueing it stores nothing.
    assert!(!queue.enqueue(&task("c")).unwrap().created);
}

#[test]
fn bad_tasks_are_refused_with_the_reason() {
    let dir = TempDir::new("bad-tasks");
    let queue = Queue::open(dir.file("q.db")).unwrap();
    let cases = [
        (task(""), "empty"),
        (task(&"k".repeat(MAX_KEY_LEN + 1)), "longer"),
        (
            Task {
                route: String::new(),
                ..task("r")
            },
            "route",
        ),
        (
            Task {
                deadline: Duration::ZERO,
                ..task("d")
            },
            "deadline",
        ),
    ];
    for (bad, word) in cases {
        let error = queue.enqueue(&bad).unwrap_err();
        assert!(matches!(error, QueueError::BadTask { .. }), "{error:?}");
        assert!(error.to_string().contains(word), "{error}");
    }
    assert_eq!(queue.counts().unwrap(), QueueCounts::default());
}

#[cfg(unix)]
#[test]
fn the_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("private");
    let path = dir.file("q.db");
    let queue = Queue::open(&path).unwrap();
    queue.enqueue(&task("a")).unwrap();
    for name in ["q.db", "q.db-wal", "q.db-shm"] {
        let mode = std::fs::metadata(dir.file(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
}

#[test]
fn files_that_are_not_a_whole_queue_are_refused() {
    let dir = TempDir::new("refused");
    // A valid queue with a few tasks, closed (checkpointed into the main file).
    let good = dir.file("good.db");
    {
        let queue = Queue::open(&good).unwrap();
        for i in 0..50 {
            queue.enqueue(&task(&format!("t-{i}"))).unwrap();
        }
    }
    let bytes = std::fs::read(&good).unwrap();
    assert!(bytes.len() >= 8192, "{}", bytes.len());

    let text = dir.file("text.db");
    std::fs::write(
        &text,
        "not a database, just some text that is long enough ".repeat(100),
    )
    .unwrap();
    let partial_header = dir.file("partial-header.db");
    std::fs::write(&partial_header, &bytes[..60]).unwrap();
    let truncated = dir.file("truncated.db");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2 + 100]).unwrap();
    let scribbled = dir.file("scribbled.db");
    let mut damaged = bytes.clone();
    for b in &mut damaged[4096..8192] {
        *b = 0xA5;
    }
    std::fs::write(&scribbled, &damaged).unwrap();

    for path in [&text, &partial_header, &truncated, &scribbled] {
        let before = std::fs::read(path).unwrap();
        let error = Queue::open(path).unwrap_err();
        assert!(
            matches!(
                error,
                QueueError::NotADatabase(_) | QueueError::Corrupt { .. }
            ),
            "{}: {error:?}",
            path.display()
        );
        let text = error.to_string();
        assert!(
            text.contains("not an SQLite database") || text.contains("damaged"),
            "{text}"
        );
        assert_eq!(std::fs::read(path).unwrap(), before, "{}", path.display());
    }
    assert!(matches!(
        Queue::open(&text).unwrap_err(),
        QueueError::NotADatabase(_)
    ));

    // Another program's SQLite database.
    let other = dir.file("other.db");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT);")
            .unwrap();
    }
    assert!(matches!(
        Queue::open(&other).unwrap_err(),
        QueueError::NotAQueue(_)
    ));

    // A queue written by a newer version.
    let newer = dir.file("newer.db");
    drop(Queue::open(&newer).unwrap());
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute("UPDATE breakwater_queue_schema SET version = 99", [])
            .unwrap();
    }
    let error = Queue::open(&newer).unwrap_err();
    assert!(
        matches!(
            error,
            QueueError::TooNew {
                found: 99,
                supported: 2,
                ..
            }
        ),
        "{error:?}"
    );

    // A directory, and a file in a directory that does not exist.
    assert!(matches!(
        Queue::open(&dir.0).unwrap_err(),
        QueueError::Io { .. }
    ));
    assert!(matches!(
        Queue::open(dir.file("missing/q.db")).unwrap_err(),
        QueueError::Io { .. }
    ));
    // The good file still opens, with its tasks.
    assert_eq!(Queue::open(&good).unwrap().counts().unwrap().pending, 50);
}

#[test]
fn a_row_that_does_not_decode_is_reported_not_skipped() {
    let dir = TempDir::new("bad-row");
    let path = dir.file("q.db");
    let queue = Queue::open(&path).unwrap();
    let id = queue.enqueue(&task("a")).unwrap().id;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE tasks SET request = '{not json' WHERE id = ?1", [id])
            .unwrap();
    }
    let error = queue.get("a").unwrap_err();
    assert!(
        matches!(error, QueueError::BadRow { id: i, .. } if i == id),
        "{error:?}"
    );
    let rows = queue.pending_after(0, 10).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].1.is_err());
}

#[test]
fn a_version_1_file_is_migrated_in_place() {
    let dir = TempDir::new("migrate");
    let path = dir.file("v1.db");
    {
        // A queue as version 1 wrote it, with one task.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(schema::CREATE).unwrap();
        conn.pragma_update(None, "application_id", schema::APPLICATION_ID)
            .unwrap();
        conn.execute(
            "INSERT INTO tasks (idempotency_key, route, tenant, kind, request, deadline_ms, \
             attempts, enqueued_at_ms, state, updated_at_ms) \
             VALUES ('old', 'summaries', '', 'deferrable', '{\"max_tokens\":8}', 1000, 2, 5, \
             'pending', 5)",
            [],
        )
        .unwrap();
    }
    let queue = Queue::open(&path).unwrap();
    let old = queue.get("old").unwrap().unwrap();
    assert_eq!((old.task.attempts, old.task.batch), (2, false));
    assert_eq!((old.state, old.billed), (TaskState::Pending, None));
    assert_eq!(
        queue.batch_counts().unwrap(),
        crate::batch::BatchCounts::default()
    );
    // New tasks carry the batch flag; the version is 2, and opening again is a no-op.
    assert!(queue.enqueue(&task("new").via_batch()).unwrap().created);
    drop(queue);
    let queue = Queue::open(&path).unwrap();
    assert!(queue.get("new").unwrap().unwrap().task.batch);
    let version: i64 = queue.with_conn(|c| {
        c.query_row("SELECT version FROM breakwater_queue_schema", [], |r| {
            r.get(0)
        })
        .unwrap()
    });
    assert_eq!(version, schema::VERSION);
    // The drain's reader skips batch tasks unless asked; the batch reader takes only them.
    let keys = |which| -> Vec<String> {
        queue
            .pending(which, 0, 10)
            .unwrap()
            .into_iter()
            .map(|(_, t)| t.unwrap().task.key)
            .collect()
    };
    assert_eq!(keys(Pending::Drain { batch: false }), ["old"]);
    assert_eq!(keys(Pending::Drain { batch: true }), ["old", "new"]);
    assert_eq!(keys(Pending::Batch), ["new"]);
}
