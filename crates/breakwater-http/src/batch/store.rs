//! The batch submitter's SQL: the `batches` and `batch_items` tables (see the queue's
//! schema, version 2), and applying a batch's verdicts to its tasks in one commit.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::queue::store::{self, Answer, to_i64};
use crate::queue::{Billed, QueueError, TaskState};

/// One task sent in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) task_id: i64,
    pub(crate) custom_id: String,
    pub(crate) route: String,
    pub(crate) step: usize,
}

/// A batch the provider holds, whose results are not applied yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpenBatch {
    pub(crate) id: i64,
    pub(crate) provider: String,
    pub(crate) model: String,
    pub(crate) remote_id: String,
    pub(crate) items: Vec<Item>,
}

/// What a batch's result means for one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Delivered.
    Done {
        text: String,
        by: String,
        billed: Billed,
    },
    /// Pending again with one more attempt (dead once it has the most allowed).
    Again(String),
    /// Pending again, no attempt counted: it never ran.
    Released(String),
    /// Given up.
    Dead(String),
}

/// How many tasks each verdict moved (a task no longer pending moves nowhere: its
/// idempotency key was delivered or given up already).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) delivered: u64,
    pub(crate) requeued: u64,
    pub(crate) released: u64,
    pub(crate) dead: u64,
}

/// Marks every batch still `submitting` abandoned: left by a process that stopped
/// before the provider confirmed it. Its tasks are free for the next batch.
pub(crate) fn abandon_unconfirmed(conn: &Connection, now_ms: u64) -> Result<u64, QueueError> {
    let n = conn.execute(
        "UPDATE batches SET state = 'abandoned', updated_at_ms = ?1, \
         detail = 'not confirmed by the provider before the submitter stopped' \
         WHERE state = 'submitting'",
        [to_i64(now_ms)],
    )?;
    Ok(n as u64)
}

/// Records a batch of `items` for `provider`/`model` as `submitting`, in one commit,
/// before anything is sent; returns its id.
pub(crate) fn begin(
    conn: &mut Connection,
    provider: &str,
    model: &str,
    items: &[Item],
    now_ms: u64,
) -> Result<i64, QueueError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO batches (provider, model, state, created_at_ms, updated_at_ms) \
         VALUES (?1, ?2, 'submitting', ?3, ?3)",
        params![provider, model, to_i64(now_ms)],
    )?;
    let id = tx.last_insert_rowid();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO batch_items (batch_id, task_id, custom_id, route, step) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for item in items {
            insert.execute(params![
                id,
                item.task_id,
                item.custom_id,
                item.route,
                i64::try_from(item.step).unwrap_or(i64::MAX)
            ])?;
        }
    }
    tx.commit()?;
    Ok(id)
}

/// Records that the provider holds batch `id` as `remote_id`.
pub(crate) fn confirm(
    conn: &Connection,
    id: i64,
    remote_id: &str,
    input_file_id: Option<&str>,
    now_ms: u64,
) -> Result<(), QueueError> {
    conn.execute(
        "UPDATE batches SET state = 'submitted', remote_id = ?2, input_file_id = ?3, \
         updated_at_ms = ?4 WHERE id = ?1 AND state = 'submitting'",
        params![id, remote_id, input_file_id, to_i64(now_ms)],
    )?;
    Ok(())
}

/// The batches the provider holds, oldest first, with their items.
pub(crate) fn open(conn: &Connection) -> Result<Vec<OpenBatch>, QueueError> {
    let mut statement = conn.prepare_cached(
        "SELECT id, provider, model, remote_id FROM batches \
         WHERE state = 'submitted' ORDER BY id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(OpenBatch {
            id: row.get(0)?,
            provider: row.get(1)?,
            model: row.get(2)?,
            remote_id: row.get::<_, Option<String>>(3)?.unwrap_or_default(),
            items: Vec::new(),
        })
    })?;
    let mut batches = rows.collect::<Result<Vec<_>, _>>()?;
    let mut items = conn.prepare_cached(
        "SELECT task_id, custom_id, route, step FROM batch_items WHERE batch_id = ?1 \
         ORDER BY task_id",
    )?;
    for batch in &mut batches {
        let rows = items.query_map([batch.id], |row| {
            Ok(Item {
                task_id: row.get(0)?,
                custom_id: row.get(1)?,
                route: row.get(2)?,
                step: usize::try_from(row.get::<_, i64>(3)?).unwrap_or(usize::MAX),
            })
        })?;
        batch.items = rows.collect::<Result<Vec<_>, _>>()?;
    }
    Ok(batches)
}

/// Applies `verdicts` to their tasks and closes batch `id` as `state` (`ended` or
/// `abandoned`) with `detail`, all in one commit: a crash leaves the batch open and
/// every task as it was, to be applied again.
pub(crate) fn close(
    conn: &mut Connection,
    id: i64,
    state: &str,
    detail: &str,
    verdicts: &[(i64, Verdict)],
    max_attempts: u32,
    now_ms: u64,
) -> Result<(Applied, Vec<bool>), QueueError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut applied = Applied::default();
    let mut moved = Vec::with_capacity(verdicts.len());
    for (task, verdict) in verdicts {
        let pending = is_pending(&tx, *task)?;
        moved.push(pending);
        if !pending {
            continue;
        }
        match verdict {
            Verdict::Done { text, by, billed } => {
                let answer = Answer {
                    text,
                    by,
                    billed: *billed,
                };
                store::finish(&tx, *task, TaskState::Done, None, Some(answer), now_ms)?;
                applied.delivered += 1;
            }
            Verdict::Again(reason) => {
                match store::requeue(&tx, *task, reason, max_attempts, now_ms)? {
                    TaskState::Dead => applied.dead += 1,
                    _ => applied.requeued += 1,
                }
            }
            Verdict::Released(reason) => {
                tx.execute(
                    "UPDATE tasks SET reason = ?2, updated_at_ms = ?3 \
                     WHERE id = ?1 AND state = 'pending'",
                    params![task, reason, to_i64(now_ms)],
                )?;
                applied.released += 1;
            }
            Verdict::Dead(reason) => {
                store::finish(&tx, *task, TaskState::Dead, Some(reason), None, now_ms)?;
                applied.dead += 1;
            }
        }
    }
    tx.execute(
        "UPDATE batches SET state = ?2, detail = ?3, updated_at_ms = ?4 WHERE id = ?1",
        params![id, state, detail, to_i64(now_ms)],
    )?;
    tx.commit()?;
    Ok((applied, moved))
}

fn is_pending(conn: &Connection, task: i64) -> Result<bool, QueueError> {
    let state: Option<String> = conn
        .query_row("SELECT state FROM tasks WHERE id = ?1", [task], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(state.as_deref() == Some("pending"))
}

/// How many batches are in each state: `(submitting, submitted, ended, abandoned)`.
pub(crate) fn counts(conn: &Connection) -> Result<[u64; 4], QueueError> {
    let mut out = [0u64; 4];
    let mut statement =
        conn.prepare_cached("SELECT state, count(*) FROM batches GROUP BY state")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (state, n) = row?;
        let slot = match state.as_str() {
            "submitting" => 0,
            "submitted" => 1,
            "ended" => 2,
            "abandoned" => 3,
            _ => continue,
        };
        out[slot] = u64::try_from(n).unwrap_or(0);
    }
    Ok(out)
}
