//! Where a deferrable request goes when the plan finishes `Queued`: the durable queue.

use std::fmt;
use std::sync::atomic::Ordering;

use super::Client;
use super::call::Call;
use crate::clock;
use crate::queue::{Queue, Task, wall_ms};

/// What became of a request the plan queued ([`Error::Queued`](super::Error::Queued)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deferred {
    /// No queue is configured (or the queue's own drain was replaying it): the caller
    /// keeps the request and runs it later.
    NotQueued,
    /// Committed to the durable queue: it survives a crash and will be replayed by a
    /// drain.
    Stored {
        /// The queue's id of the task.
        id: i64,
        /// Its idempotency key.
        key: String,
        /// `false` when a task with this key was already queued: it is stored once.
        created: bool,
    },
    /// The queue could not store it (the disk is full, the file was removed, …): it
    /// is not durable, and the caller must keep it.
    NotStored {
        /// The idempotency key it would have had.
        key: String,
        /// What the queue said.
        error: String,
    },
}

impl Deferred {
    /// Whether the request is safely in the durable queue.
    #[must_use]
    pub fn is_durable(&self) -> bool {
        matches!(self, Deferred::Stored { .. })
    }

    /// The task's idempotency key, if it was given one.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        match self {
            Deferred::NotQueued => None,
            Deferred::Stored { key, .. } | Deferred::NotStored { key, .. } => Some(key),
        }
    }
}

impl fmt::Display for Deferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deferred::NotQueued => f.write_str("no durable queue: keep it and run it later"),
            Deferred::Stored {
                id,
                key,
                created: true,
            } => write!(f, "queued durably as task {id} ({key:?})"),
            Deferred::Stored { id, key, .. } => {
                write!(f, "already queued as task {id} ({key:?})")
            }
            Deferred::NotStored { key, error } => {
                write!(f, "the queue could not store {key:?}: {error}")
            }
        }
    }
}

impl Client {
    /// Stores `call` in the queue, if there is one, and says what happened. Returns
    /// only once the task is committed (or refused).
    pub(super) async fn defer(&self, call: &Call<'_>) -> Deferred {
        let Some(queue) = &self.inner.queue else {
            return Deferred::NotQueued;
        };
        let key = match &call.options.idempotency_key {
            Some(key) => key.clone(),
            None => self.fresh_key(),
        };
        let task = Task {
            key: key.clone(),
            route: call.route.to_owned(),
            tenant: call.options.tenant.clone(),
            kind: call.kind,
            request: call.request.clone(),
            deadline: call.deadline,
            attempts: 1,
            enqueued_at_ms: wall_ms(),
            batch: call.options.batch && call.kind == breakwater_core::TaskKind::Deferrable,
        };
        let queue: Queue = queue.clone();
        // SQLite's commit waits for the disk: off the async workers.
        let stored = tokio::task::spawn_blocking(move || queue.enqueue(&task)).await;
        match stored {
            Ok(Ok(enqueued)) => {
                tracing::info!(task = enqueued.id, key = %enqueued.key, created = enqueued.created, "queued");
                Deferred::Stored {
                    id: enqueued.id,
                    key: enqueued.key,
                    created: enqueued.created,
                }
            }
            Ok(Err(error)) => {
                tracing::error!(%error, key = %key, "the queue could not store a task");
                Deferred::NotStored {
                    key,
                    error: error.to_string(),
                }
            }
            Err(join) => Deferred::NotStored {
                key,
                error: format!("the queue's writer stopped: {join}"),
            },
        }
    }

    /// A key no other call of any process makes: the wall clock, the process id and
    /// a counter.
    fn fresh_key(&self) -> String {
        let n = self.inner.keys.fetch_add(1, Ordering::Relaxed);
        let wall = clock::read()
            .wall
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("bw-{wall:x}-{:x}-{n:x}", std::process::id())
    }
}
