//! What the queue holds: tasks, their states, and what enqueueing answers.

use std::time::Duration;

use breakwater_core::{Cost, TaskKind, Usage};

use super::wall_ms;
use crate::wire::Request;

/// A deferrable request, as queued.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// The idempotency key: the queue stores a key once.
    pub key: String,
    /// The route to replay it through.
    pub route: String,
    /// Who it is for (empty: the anonymous tenant).
    pub tenant: String,
    /// The task kind to replay it as.
    pub kind: TaskKind,
    /// The provider-neutral request.
    pub request: Request,
    /// The deadline of each replay.
    pub deadline: Duration,
    /// How many times it has been run and come back queued (a task queued by the
    /// client after its call starts at 1).
    pub attempts: u32,
    /// When it was first queued: wall-clock milliseconds since the Unix epoch.
    pub enqueued_at_ms: u64,
    /// Whether it goes to a provider's batch API (at the batch price, answered within
    /// the provider's window) rather than being replayed synchronously by the drain.
    /// Only deferrable tasks can. See [`crate::batch`].
    pub batch: bool,
}

impl Task {
    /// A task never run yet, queued now (on the wall clock) for the anonymous tenant.
    #[must_use]
    pub fn new(
        key: impl Into<String>,
        route: impl Into<String>,
        kind: TaskKind,
        request: Request,
        deadline: Duration,
    ) -> Task {
        Task {
            key: key.into(),
            route: route.into(),
            tenant: String::new(),
            kind,
            request,
            deadline,
            attempts: 0,
            enqueued_at_ms: wall_ms(),
            batch: false,
        }
    }

    /// Sends it to a provider's batch API: a [`BatchSubmitter`](crate::batch::BatchSubmitter)
    /// takes it, and the drain leaves it (unless told to take batch tasks too).
    #[must_use]
    pub fn via_batch(mut self) -> Task {
        self.batch = true;
        self
    }

    /// Sets the tenant.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<String>) -> Task {
        self.tenant = tenant.into();
        self
    }
}

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Waiting for a drain.
    Pending,
    /// Delivered: a replay succeeded.
    Done,
    /// Given up: it failed non-retriably or came back too often; see its reason.
    Dead,
}

impl TaskState {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Done => "done",
            TaskState::Dead => "dead",
        }
    }

    pub(super) fn parse(text: &str) -> Option<TaskState> {
        match text {
            "pending" => Some(TaskState::Pending),
            "done" => Some(TaskState::Done),
            "dead" => Some(TaskState::Dead),
            _ => None,
        }
    }
}

/// A task as the queue holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTask {
    /// The queue's id, in enqueue order.
    pub id: i64,
    /// The task.
    pub task: Task,
    /// Pending, done or dead.
    pub state: TaskState,
    /// Why its last run did not deliver it (for a dead task, why it was given up).
    pub reason: Option<String>,
    /// A done task's answer text.
    pub result: Option<String>,
    /// A done task's author, `provider/model` (the provider as named in the route).
    pub answered_by: Option<String>,
    /// When its state last changed: wall-clock milliseconds since the Unix epoch.
    pub updated_at_ms: u64,
    /// What a done task's delivery was billed (none for tasks delivered before the
    /// queue recorded it).
    pub billed: Option<Billed>,
}

/// What a delivered task was billed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Billed {
    /// The answer's tokens.
    pub usage: Usage,
    /// What it cost: at the batch price for a batch result; every attempt of the
    /// replay for a synchronous one.
    pub cost: Cost,
    /// What it would have cost synchronously: the standard price of the same tokens
    /// for a batch result, `cost` itself for a synchronous one.
    pub synchronous_cost: Cost,
}

impl Billed {
    /// What delivering it through a batch saved.
    #[must_use]
    pub fn saving(&self) -> Cost {
        self.synchronous_cost.saturating_sub(self.cost)
    }
}

/// What [`Queue::enqueue`](super::Queue::enqueue) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The task's id (the earlier task's, when the key was already queued).
    pub id: i64,
    /// Its idempotency key.
    pub key: String,
    /// `false` when a task with this key was already in the queue (in any state):
    /// nothing was stored.
    pub created: bool,
}

/// How many tasks are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Waiting for a drain.
    pub pending: u64,
    /// Delivered.
    pub done: u64,
    /// Given up.
    pub dead: u64,
}
