//! The queue's SQL: every statement, and rows to tasks and back.

use std::time::Duration;

use breakwater_core::{Cost, TaskKind, Usage};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{Billed, Enqueued, QueueCounts, QueueError, StoredTask, Task, TaskState};

const COLUMNS: &str = "id, idempotency_key, route, tenant, kind, request, deadline_ms, attempts, \
                       enqueued_at_ms, state, reason, result, answered_by, updated_at_ms, \
                       batch, input_tokens, output_tokens, cost_nanodollars, \
                       synchronous_cost_nanodollars";

/// Whether a task is held by a batch that has not ended (see `schema::MIGRATE_TO_2`).
pub(crate) const IN_OPEN_BATCH: &str = "EXISTS (SELECT 1 FROM batch_items i \
     JOIN batches b ON b.id = i.batch_id \
     WHERE i.task_id = tasks.id AND b.state IN ('submitting', 'submitted'))";

/// Which pending tasks a reader wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    /// The drain's: tasks not meant for a batch API, and those too if `batch` (never
    /// one held by an open batch).
    Drain {
        /// Whether tasks meant for a batch API are taken too.
        batch: bool,
    },
    /// A batch submitter's: tasks meant for a batch API, not held by an open batch.
    Batch,
}

/// Inserts `task` unless its key is there, in one committed transaction.
pub(super) fn enqueue(conn: &mut Connection, task: &Task) -> Result<Enqueued, QueueError> {
    let request = serde_json::to_string(&task.request).map_err(|e| QueueError::BadTask {
        key: task.key.chars().take(64).collect(),
        why: if e.is_io() {
            "the request could not be written"
        } else {
            "the request does not serialize"
        },
    })?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let created = tx.execute(
        "INSERT INTO tasks (idempotency_key, route, tenant, kind, request, deadline_ms, \
         attempts, enqueued_at_ms, state, updated_at_ms, batch) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?8, ?9) \
         ON CONFLICT (idempotency_key) DO NOTHING",
        params![
            task.key,
            task.route,
            task.tenant,
            kind_name(task.kind),
            request,
            millis(task.deadline),
            task.attempts,
            to_i64(task.enqueued_at_ms),
            task.batch,
        ],
    )? == 1;
    let id: i64 = tx.query_row(
        "SELECT id FROM tasks WHERE idempotency_key = ?1",
        [&task.key],
        |row| row.get(0),
    )?;
    tx.commit()?;
    Ok(Enqueued {
        id,
        key: task.key.clone(),
        created,
    })
}

pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<StoredTask>, QueueError> {
    let sql = format!("SELECT {COLUMNS} FROM tasks WHERE idempotency_key = ?1");
    let raw = conn.query_row(&sql, [key], Raw::read).optional()?;
    raw.map(Raw::decode).transpose()
}

/// Up to `limit` tasks in `state` with ids above `after`, in id order.
pub(super) fn list(
    conn: &Connection,
    state: TaskState,
    after: i64,
    limit: usize,
) -> Result<Vec<super::Row>, QueueError> {
    let sql =
        format!("SELECT {COLUMNS} FROM tasks WHERE state = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
    let mut statement = conn.prepare_cached(&sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = statement.query_map(params![state.as_str(), after, limit], Raw::read)?;
    let mut out = Vec::new();
    for raw in rows {
        let raw = raw?;
        out.push((raw.id, raw.decode()));
    }
    Ok(out)
}

/// Up to `limit` pending tasks with ids above `after` that `which` reader takes, in id
/// order.
pub(super) fn pending(
    conn: &Connection,
    which: Pending,
    after: i64,
    limit: usize,
) -> Result<Vec<super::Row>, QueueError> {
    let filter = match which {
        Pending::Drain { batch: false } => "batch = 0",
        Pending::Drain { batch: true } => "1",
        Pending::Batch => "batch = 1",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM tasks WHERE state = 'pending' AND id > ?1 AND {filter} \
         AND NOT {IN_OPEN_BATCH} ORDER BY id LIMIT ?2"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = statement.query_map(params![after, limit], Raw::read)?;
    let mut out = Vec::new();
    for raw in rows {
        let raw = raw?;
        out.push((raw.id, raw.decode()));
    }
    Ok(out)
}

pub(super) fn counts(conn: &Connection) -> Result<QueueCounts, QueueError> {
    let mut counts = QueueCounts::default();
    let mut statement = conn.prepare_cached("SELECT state, count(*) FROM tasks GROUP BY state")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (state, n) = row?;
        let n = u64::try_from(n).unwrap_or(0);
        match TaskState::parse(&state) {
            Some(TaskState::Pending) => counts.pending = n,
            Some(TaskState::Done) => counts.done = n,
            Some(TaskState::Dead) => counts.dead = n,
            None => {}
        }
    }
    Ok(counts)
}

/// A delivered task's answer: its text, its author and what it was billed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Answer<'a> {
    pub(crate) text: &'a str,
    pub(crate) by: &'a str,
    pub(crate) billed: Billed,
}

/// Moves pending task `id` to `state` (done or dead). A task no longer pending is
/// left as it is; returns whether it moved.
pub(crate) fn finish(
    conn: &Connection,
    id: i64,
    state: TaskState,
    reason: Option<&str>,
    answer: Option<Answer<'_>>,
    now_ms: u64,
) -> Result<bool, QueueError> {
    let billed = answer.map(|a| a.billed);
    let moved = conn.execute(
        "UPDATE tasks SET state = ?2, reason = coalesce(?3, reason), result = ?4, \
         answered_by = ?5, updated_at_ms = ?6, input_tokens = ?7, output_tokens = ?8, \
         cost_nanodollars = ?9, synchronous_cost_nanodollars = ?10 \
         WHERE id = ?1 AND state = 'pending'",
        params![
            id,
            state.as_str(),
            reason,
            answer.map(|a| a.text),
            answer.map(|a| a.by),
            to_i64(now_ms),
            billed.map(|b| b.usage.input_tokens),
            billed.map(|b| b.usage.output_tokens),
            billed.map(|b| to_i64(b.cost.nanodollars())),
            billed.map(|b| to_i64(b.synchronous_cost.nanodollars())),
        ],
    )?;
    Ok(moved == 1)
}

pub(crate) fn requeue(
    conn: &Connection,
    id: i64,
    reason: &str,
    max_attempts: u32,
    now_ms: u64,
) -> Result<TaskState, QueueError> {
    let state: Option<String> = conn
        .query_row(
            "UPDATE tasks SET attempts = attempts + 1, reason = ?2, updated_at_ms = ?4, \
             state = CASE WHEN attempts + 1 >= ?3 THEN 'dead' ELSE 'pending' END \
             WHERE id = ?1 AND state = 'pending' RETURNING state",
            params![id, reason, max_attempts, to_i64(now_ms)],
            |row| row.get(0),
        )
        .optional()?;
    Ok(state
        .as_deref()
        .and_then(TaskState::parse)
        .unwrap_or(TaskState::Pending))
}

/// A row as stored, before the request and enums are decoded.
struct Raw {
    id: i64,
    key: String,
    route: String,
    tenant: String,
    kind: String,
    request: String,
    deadline_ms: i64,
    attempts: i64,
    enqueued_at_ms: i64,
    state: String,
    reason: Option<String>,
    result: Option<String>,
    answered_by: Option<String>,
    updated_at_ms: i64,
    batch: bool,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cost_nanodollars: Option<i64>,
    synchronous_cost_nanodollars: Option<i64>,
}

impl Raw {
    fn read(row: &Row<'_>) -> rusqlite::Result<Raw> {
        Ok(Raw {
            id: row.get(0)?,
            key: row.get(1)?,
            route: row.get(2)?,
            tenant: row.get(3)?,
            kind: row.get(4)?,
            request: row.get(5)?,
            deadline_ms: row.get(6)?,
            attempts: row.get(7)?,
            enqueued_at_ms: row.get(8)?,
            state: row.get(9)?,
            reason: row.get(10)?,
            result: row.get(11)?,
            answered_by: row.get(12)?,
            updated_at_ms: row.get(13)?,
            batch: row.get(14)?,
            input_tokens: row.get(15)?,
            output_tokens: row.get(16)?,
            cost_nanodollars: row.get(17)?,
            synchronous_cost_nanodollars: row.get(18)?,
        })
    }

    fn decode(self) -> Result<StoredTask, QueueError> {
        let id = self.id;
        let bad = |detail: String| QueueError::BadRow { id, detail };
        let request =
            serde_json::from_str(&self.request).map_err(|e| bad(format!("request: {e}")))?;
        let kind = parse_kind(&self.kind).ok_or_else(|| bad(format!("kind {:?}", self.kind)))?;
        let state =
            TaskState::parse(&self.state).ok_or_else(|| bad(format!("state {:?}", self.state)))?;
        let unsigned = |name: &str, v: i64| {
            u64::try_from(v).map_err(|_| bad(format!("{name} is negative: {v}")))
        };
        let deadline = Duration::from_millis(unsigned("deadline_ms", self.deadline_ms)?);
        let attempts = u32::try_from(self.attempts)
            .map_err(|_| bad(format!("attempts out of range: {}", self.attempts)))?;
        let billed = match (
            self.input_tokens,
            self.output_tokens,
            self.cost_nanodollars,
            self.synchronous_cost_nanodollars,
        ) {
            (Some(input), Some(output), Some(cost), Some(synchronous)) => {
                let tokens = |name: &str, v: i64| {
                    u32::try_from(v).map_err(|_| bad(format!("{name} out of range: {v}")))
                };
                Some(Billed {
                    usage: Usage::new(
                        tokens("input_tokens", input)?,
                        tokens("output_tokens", output)?,
                    ),
                    cost: Cost::from_nanodollars(unsigned("cost_nanodollars", cost)?),
                    synchronous_cost: Cost::from_nanodollars(unsigned(
                        "synchronous_cost_nanodollars",
                        synchronous,
                    )?),
                })
            }
            _ => None,
        };
        Ok(StoredTask {
            id,
            task: Task {
                key: self.key,
                route: self.route,
                tenant: self.tenant,
                kind,
                request,
                deadline,
                attempts,
                enqueued_at_ms: unsigned("enqueued_at_ms", self.enqueued_at_ms)?,
                batch: self.batch,
            },
            state,
            reason: self.reason,
            result: self.result,
            answered_by: self.answered_by,
            updated_at_ms: unsigned("updated_at_ms", self.updated_at_ms)?,
            billed,
        })
    }
}

fn kind_name(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Interactive => "interactive",
        TaskKind::Deferrable => "deferrable",
        TaskKind::Critical => "critical",
    }
}

fn parse_kind(text: &str) -> Option<TaskKind> {
    match text {
        "interactive" => Some(TaskKind::Interactive),
        "deferrable" => Some(TaskKind::Deferrable),
        "critical" => Some(TaskKind::Critical),
        _ => None,
    }
}

fn millis(span: Duration) -> i64 {
    i64::try_from(span.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
