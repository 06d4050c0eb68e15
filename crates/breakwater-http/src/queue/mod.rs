//! The durable queue: deferrable requests the chain could not serve now, kept on disk
//! until a drain replays them.
//!
//! A [`Queue`] is one SQLite file (WAL journal, `synchronous = FULL`):
//! [`Queue::enqueue`] returns only once the task is committed, so a task the caller
//! was told about survives a crash of the process or the machine. Each task has an
//! idempotency key, stored once: enqueueing a key again stores nothing and says so.
//! The file is created readable by its owner only (mode 0600 on Unix), and a file that
//! is not SQLite, is damaged, or is another program's database is refused at
//! [`Queue::open`] with an error that says which, never read as an empty queue.
//!
//! A client with a queue ([`ClientBuilder::queue`](crate::ClientBuilder::queue))
//! stores every request its plan finishes `Queued`. A drain ([`Queue::drain`], see
//! [`drain`]) replays the pending tasks through that client once their route's
//! breakers admit again: at least once (a task is marked done only after its call
//! succeeded, so a crash between the two replays it); a task that comes back queued
//! stays pending with one more attempt; one that fails non-retriably, or keeps
//! coming back past the drain's limit, moves to the dead state with its reason.
//!
//! ```
//! use std::time::Duration;
//! use breakwater_core::TaskKind;
//! use breakwater_http::queue::{Queue, Task, TaskState};
//! use breakwater_http::wire::Request;
//!
//! let dir = std::env::temp_dir().join(format!("bw-queue-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let queue = Queue::open(dir.join("queue.db"))?;
//! let task = Task::new(
//!     "summary-42",
//!     "summaries",
//!     TaskKind::Deferrable,
//!     Request::new(512).user("Summarise ticket 42."),
//!     Duration::from_secs(60),
//! );
//! assert!(queue.enqueue(&task)?.created);
//! assert!(!queue.enqueue(&task)?.created); // the same key is stored once
//! let stored = queue.get("summary-42")?.expect("stored");
//! assert_eq!(stored.state, TaskState::Pending);
//! assert_eq!(stored.task.request, task.request);
//! # drop(queue);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod drain;
mod schema;
pub(crate) mod store;
mod task;
#[cfg(test)]
mod tests;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::Connection;

pub use drain::{DrainConfig, DrainStats, Drainer};
pub(crate) use store::{Answer, Pending};
pub use task::{Billed, Enqueued, QueueCounts, StoredTask, Task, TaskState};
pub(crate) use worker::Worker;

/// A durable queue of tasks in one SQLite file; cheap to clone (shared inside).
///
/// Its methods block on the disk (a commit waits for `fsync`): from async code, call
/// them on a blocking thread (`tokio::task::spawn_blocking`), as the client and the
/// drain do.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// Why the queue could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The file could not be created or opened.
    #[error("queue {path:?}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not an SQLite database (or only part of one): it was not touched.
    #[error("queue {0:?}: the file is not an SQLite database (or is only part of one)")]
    NotADatabase(PathBuf),
    /// The file is an SQLite database, damaged.
    #[error("queue {path:?}: the database is damaged: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite found.
        detail: String,
    },
    /// The file is an SQLite database of another program.
    #[error("queue {0:?}: the database is not a Breakwater queue")]
    NotAQueue(PathBuf),
    /// The file was written by a newer Breakwater.
    #[error("queue {path:?}: schema version {found}, this build reads up to {supported}")]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build reads.
        supported: i64,
    },
    /// A task that cannot be queued.
    #[error("task {key:?}: {why}")]
    BadTask {
        /// Its idempotency key.
        key: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A stored task that does not decode (edited by hand, or damaged).
    #[error("task {id}: stored data does not decode: {detail}")]
    BadRow {
        /// Its id.
        id: i64,
        /// What is wrong.
        detail: String,
    },
    /// The blocking thread running a queue operation stopped (it panicked, or the
    /// runtime is shutting down).
    #[error("the queue's worker thread stopped: {0}")]
    Interrupted(String),
    /// Another SQLite error (a lock held past the busy timeout, a full disk, …).
    #[error("queue: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// A stored task's id and the task, decoded or not.
pub(crate) type Row = (i64, Result<StoredTask, QueueError>);

/// The longest idempotency key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

impl Queue {
    /// Opens the queue at `path`, creating the file (mode 0600 on Unix) and its schema
    /// if the file does not exist or is empty.
    ///
    /// # Errors
    ///
    /// [`QueueError::Io`] when the file cannot be created or opened,
    /// [`QueueError::NotADatabase`], [`QueueError::Corrupt`],
    /// [`QueueError::NotAQueue`] or [`QueueError::TooNew`] when it exists but cannot
    /// be used as this queue (it is then left untouched).
    pub fn open(path: impl AsRef<Path>) -> Result<Queue, QueueError> {
        let path = path.as_ref();
        let conn = schema::open(path)?;
        Ok(Queue {
            inner: Arc::new(Shared {
                path: path.to_owned(),
                conn: Mutex::new(conn),
            }),
        })
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Stores `task` and returns once it is committed to disk. A key already queued
    /// (in any state) stores nothing and answers `created: false` with the earlier
    /// task's id.
    ///
    /// # Errors
    ///
    /// [`QueueError::BadTask`] for an empty or overlong key, an empty route or a zero
    /// deadline; [`QueueError::Sqlite`] when the write fails (nothing is stored).
    pub fn enqueue(&self, task: &Task) -> Result<Enqueued, QueueError> {
        let bad = |why| {
            Err(QueueError::BadTask {
                key: task.key.chars().take(64).collect(),
                why,
            })
        };
        if task.key.is_empty() {
            return bad("the idempotency key is empty");
        }
        if task.key.len() > MAX_KEY_LEN {
            return bad("the idempotency key is longer than 512 bytes");
        }
        if task.route.is_empty() {
            return bad("the route name is empty");
        }
        if task.deadline.is_zero() {
            return bad("the deadline is zero");
        }
        if task.batch && task.kind != breakwater_core::TaskKind::Deferrable {
            return bad("only deferrable tasks can go to a batch API");
        }
        store::enqueue(&mut self.inner.conn.lock(), task)
    }

    /// The task with idempotency key `key`, in whatever state.
    ///
    /// # Errors
    ///
    /// [`QueueError::Sqlite`] when the read fails, [`QueueError::BadRow`] when the
    /// stored task does not decode.
    pub fn get(&self, key: &str) -> Result<Option<StoredTask>, QueueError> {
        store::get(&self.inner.conn.lock(), key)
    }

    /// Every task in `state`, in enqueue order.
    ///
    /// # Errors
    ///
    /// As [`Queue::get`].
    pub fn tasks(&self, state: TaskState) -> Result<Vec<StoredTask>, QueueError> {
        store::list(&self.inner.conn.lock(), state, 0, usize::MAX)?
            .into_iter()
            .map(|(_, task)| task)
            .collect()
    }

    /// How many tasks are in each state.
    ///
    /// # Errors
    ///
    /// [`QueueError::Sqlite`] when the read fails.
    pub fn counts(&self) -> Result<QueueCounts, QueueError> {
        store::counts(&self.inner.conn.lock())
    }

    /// Up to `limit` pending tasks with ids above `after`, in order, each decoded or
    /// not: every one (tests only).
    #[cfg(test)]
    pub(crate) fn pending_after(&self, after: i64, limit: usize) -> Result<Vec<Row>, QueueError> {
        store::list(&self.inner.conn.lock(), TaskState::Pending, after, limit)
    }

    /// Up to `limit` pending tasks with ids above `after` that `which` reader takes,
    /// in order, each decoded or not. Tasks held by an open batch are never among them.
    pub(crate) fn pending(
        &self,
        which: Pending,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Row>, QueueError> {
        store::pending(&self.inner.conn.lock(), which, after, limit)
    }

    /// Marks pending task `id` delivered, with its answer.
    pub(crate) fn mark_done(
        &self,
        id: i64,
        answer: Answer<'_>,
        now_ms: u64,
    ) -> Result<(), QueueError> {
        store::finish(
            &self.inner.conn.lock(),
            id,
            TaskState::Done,
            None,
            Some(answer),
            now_ms,
        )
        .map(drop)
    }

    /// Marks pending task `id` dead, for `reason`.
    pub(crate) fn mark_dead(&self, id: i64, reason: &str, now_ms: u64) -> Result<(), QueueError> {
        store::finish(
            &self.inner.conn.lock(),
            id,
            TaskState::Dead,
            Some(reason),
            None,
            now_ms,
        )
        .map(drop)
    }

    /// Runs `op` on the queue's connection (for the batch submitter's tables).
    pub(crate) fn with_conn<T>(&self, op: impl FnOnce(&mut Connection) -> T) -> T {
        op(&mut self.inner.conn.lock())
    }

    /// Counts one more attempt of pending task `id`, which came back for `reason`;
    /// moves it to dead once it has `max_attempts`. Returns its new state.
    pub(crate) fn requeue(
        &self,
        id: i64,
        reason: &str,
        max_attempts: u32,
        now_ms: u64,
    ) -> Result<TaskState, QueueError> {
        store::requeue(&self.inner.conn.lock(), id, reason, max_attempts, now_ms)
    }
}

/// The wall clock (read through [`clock`](crate::clock)) in milliseconds since the
/// Unix epoch; 0 before it.
pub(crate) fn wall_ms() -> u64 {
    crate::clock::read()
        .wall
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}
