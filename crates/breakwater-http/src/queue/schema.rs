//! Opening the queue's SQLite file: private permissions, durable settings, and checks
//! that it is whole and ours before anything is read from it.

use std::fs::OpenOptions;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::QueueError;

/// `PRAGMA application_id` of a queue file ("BwQ1"): tells ours from other SQLite files.
pub(super) const APPLICATION_ID: i32 = 0x4277_5131;

/// The schema version this code writes and reads. Version 1 files are migrated in
/// place when opened ([`MIGRATE_TO_2`]).
pub(super) const VERSION: i64 = 2;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1 of the schema, which [`MIGRATE_TO_2`] brings up to date.
pub(super) const CREATE: &str = "
    CREATE TABLE breakwater_queue_schema (version INTEGER NOT NULL) STRICT;
    INSERT INTO breakwater_queue_schema (version) VALUES (1);
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL UNIQUE,
        route TEXT NOT NULL,
        tenant TEXT NOT NULL,
        kind TEXT NOT NULL,
        request TEXT NOT NULL,
        deadline_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        enqueued_at_ms INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
        reason TEXT,
        result TEXT,
        answered_by TEXT,
        updated_at_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX tasks_by_state ON tasks (state, id);
";

/// Version 1 to 2: tasks meant for a provider's batch API and what a delivered task
/// was billed; the batches submitted and which task went out in which, under which
/// `custom_id` (see [`crate::batch`]). A new file is created as version 1 and migrated
/// by the same statements, so both kinds of file hold the same schema.
///
/// A batch is `submitting` from before its create request is sent until the provider's
/// id is recorded, `submitted` until its results are applied (`ended`), and
/// `abandoned` when it never reached the provider or was lost there; only batches
/// `submitting` or `submitted` hold their tasks back from other batches and the drain.
pub(super) const MIGRATE_TO_2: &str = "
    ALTER TABLE tasks ADD COLUMN batch INTEGER NOT NULL DEFAULT 0 CHECK (batch IN (0, 1));
    ALTER TABLE tasks ADD COLUMN input_tokens INTEGER;
    ALTER TABLE tasks ADD COLUMN output_tokens INTEGER;
    ALTER TABLE tasks ADD COLUMN cost_nanodollars INTEGER;
    ALTER TABLE tasks ADD COLUMN synchronous_cost_nanodollars INTEGER;
    CREATE TABLE batches (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('submitting', 'submitted', 'ended', 'abandoned')),
        remote_id TEXT,
        input_file_id TEXT,
        detail TEXT,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX batches_by_state ON batches (state, id);
    CREATE TABLE batch_items (
        batch_id INTEGER NOT NULL REFERENCES batches (id),
        task_id INTEGER NOT NULL REFERENCES tasks (id),
        custom_id TEXT NOT NULL,
        route TEXT NOT NULL,
        step INTEGER NOT NULL,
        PRIMARY KEY (batch_id, task_id),
        UNIQUE (batch_id, custom_id)
    ) STRICT;
    CREATE INDEX batch_items_by_task ON batch_items (task_id);
    UPDATE breakwater_queue_schema SET version = 2;
";

/// Opens (creating if needed) the queue at `path`: see [`Queue::open`](super::Queue::open).
pub(super) fn open(path: &Path) -> Result<Connection, QueueError> {
    create_private(path)?;
    refuse_stub(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| classify(path, e))?;
    // The first read of the file: a file that is not SQLite fails here, and a damaged
    // one is reported instead of being taken for an empty queue.
    let check = quick_check(&conn).map_err(|e| classify(path, e))?;
    if check != ["ok"] {
        return Err(QueueError::Corrupt {
            path: path.to_owned(),
            detail: check.join("; "),
        });
    }
    // WAL with synchronous=FULL: a commit returns once the log is on disk.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| classify(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(QueueError::Corrupt {
            path: path.to_owned(),
            detail: format!("cannot use write-ahead logging (journal mode {mode})"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| classify(path, e))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| classify(path, e))?;
    let id: i32 = tx
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(|e| classify(path, e))?;
    let objects: i64 = tx
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(|e| classify(path, e))?;
    match (id, objects) {
        (0, 0) => {
            tx.execute_batch(CREATE).map_err(|e| classify(path, e))?;
            tx.execute_batch(MIGRATE_TO_2)
                .map_err(|e| classify(path, e))?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(|e| classify(path, e))?;
        }
        (APPLICATION_ID, _) => {
            if check_version(path, &tx)? == 1 {
                tx.execute_batch(MIGRATE_TO_2)
                    .map_err(|e| classify(path, e))?;
            }
        }
        _ => return Err(QueueError::NotAQueue(path.to_owned())),
    }
    tx.commit().map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// The first lines of SQLite's `quick_check`: `["ok"]` for a whole file.
fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare("PRAGMA quick_check(4)")?;
    let lines = statement.query_map([], |row| row.get(0))?;
    lines.collect()
}

/// The file's schema version, if this build reads it (1 is migrated by the caller).
fn check_version(path: &Path, conn: &Connection) -> Result<i64, QueueError> {
    let found: i64 = conn
        .query_row("SELECT version FROM breakwater_queue_schema", [], |row| {
            row.get(0)
        })
        .map_err(|e| QueueError::Corrupt {
            path: path.to_owned(),
            detail: format!("no schema version: {e}"),
        })?;
    match found {
        1 | VERSION => Ok(found),
        found if found > VERSION => Err(QueueError::TooNew {
            path: path.to_owned(),
            found,
            supported: VERSION,
        }),
        found => Err(QueueError::Corrupt {
            path: path.to_owned(),
            detail: format!("unknown schema version {found}"),
        }),
    }
}

/// Creates the file, readable and writable by its owner only (SQLite gives its `-wal`
/// and `-shm` files the same permissions); an existing file is left as it is.
fn create_private(path: &Path) -> Result<(), QueueError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map(drop)
        .map_err(|source| QueueError::Io {
            path: path.to_owned(),
            source,
        })
}

/// The smallest SQLite database that is not empty: one page of the smallest size.
const SMALLEST_PAGE: u64 = 512;

/// Refuses a file of a few bytes: SQLite reads a file shorter than one page as an
/// empty database (and would write a new one over it), but no whole database is
/// shorter; such a file is garbage or the first bytes of one cut short.
fn refuse_stub(path: &Path) -> Result<(), QueueError> {
    let len = std::fs::metadata(path)
        .map_err(|source| QueueError::Io {
            path: path.to_owned(),
            source,
        })?
        .len();
    if len > 0 && len < SMALLEST_PAGE {
        return Err(QueueError::NotADatabase(path.to_owned()));
    }
    Ok(())
}

/// SQLite's "not a database" and "corrupt" as the queue's own errors.
pub(super) fn classify(path: &Path, error: rusqlite::Error) -> QueueError {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => QueueError::NotADatabase(path.to_owned()),
        Some(ErrorCode::DatabaseCorrupt) => QueueError::Corrupt {
            path: path.to_owned(),
            detail: error.to_string(),
        },
        _ => QueueError::Sqlite(error),
    }
}
