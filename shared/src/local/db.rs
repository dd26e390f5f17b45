//! The SQLite database behind every embedded adapter.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::error::PortError;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    counters TEXT NOT NULL DEFAULT '{}',
    expires_at INTEGER,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    in_progress_expires_at INTEGER,
    payload_hash TEXT NOT NULL,
    result TEXT,
    lease TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    idempotency_key TEXT,
    action TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (stream, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS audit_once ON audit (idempotency_key, action)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS audit_heads (
    stream TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    group_id TEXT,
    trace_header TEXT,
    sent_at INTEGER NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt_handle TEXT
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, visible_at);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    class TEXT NOT NULL,
    reason TEXT NOT NULL,
    trace_id TEXT,
    attributes TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    detail_type TEXT NOT NULL,
    detail TEXT NOT NULL,
    time TEXT NOT NULL,
    trace_header TEXT
);
"#;

fn table_exists(conn: &Connection, name: &str) -> Result<bool, PortError> {
    conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(sqlite_error("local.schema"))
}

/// Brings a database file written by an earlier version up to the current schema.
fn migrate(conn: &Connection, had_idempotency: bool, had_heads: bool) -> Result<(), PortError> {
    if had_idempotency {
        let has_lease: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('idempotency') WHERE name = 'lease'",
                [],
                |row| row.get(0),
            )
            .map_err(sqlite_error("local.schema"))?;
        if has_lease == 0 {
            conn.execute_batch("ALTER TABLE idempotency ADD COLUMN lease TEXT")
                .map_err(sqlite_error("local.schema"))?;
        }
    }
    if !had_heads {
        // Once, when the heads table is new: the heads of the streams written before it. Never
        // later, or a deleted head would be rebuilt from a truncated tail and hide it.
        conn.execute_batch(
            "INSERT OR IGNORE INTO audit_heads (stream, seq, hash)
             SELECT stream, seq, json_extract(record, '$.hash') FROM audit a
             WHERE seq = (SELECT MAX(seq) FROM audit b WHERE b.stream = a.stream)",
        )
        .map_err(sqlite_error("local.schema"))?;
    }
    Ok(())
}

/// A handle on the local database; cheap to clone, safe to share between adapters.
#[derive(Clone)]
pub struct LocalDb {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for LocalDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDb").finish_non_exhaustive()
    }
}

fn sqlite_error(operation: &'static str) -> impl Fn(rusqlite::Error) -> PortError {
    move |err| match err {
        rusqlite::Error::SqliteFailure(ref e, _)
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            PortError::transient(operation, err)
        }
        other => PortError::permanent(operation, other),
    }
}

impl LocalDb {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, PortError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|err| PortError::permanent("local.open", err))?;
        }
        let conn = Connection::open(path).map_err(sqlite_error("local.open"))?;
        // WAL lets the CLI read while a run writes; the busy timeout absorbs short overlaps.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite_error("local.open"))?;
        Self::init(conn)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> Result<Self, PortError> {
        let conn = Connection::open_in_memory().map_err(sqlite_error("local.open"))?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> Result<Self, PortError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite_error("local.open"))?;
        let had_heads = table_exists(&conn, "audit_heads")?;
        let had_idempotency = table_exists(&conn, "idempotency")?;
        conn.execute_batch(SCHEMA)
            .map_err(sqlite_error("local.schema"))?;
        migrate(&conn, had_idempotency, had_heads)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection off the async threads.
    pub(crate) async fn with<T, F>(&self, operation: &'static str, f: F) -> Result<T, PortError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, PortError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|err| PortError::permanent(operation, err))?
    }

    /// Runs raw SQL: for tests that tamper with records and for admin commands.
    pub async fn execute(&self, sql: &str) -> Result<usize, PortError> {
        let sql = sql.to_owned();
        self.with("local.execute", move |conn| {
            conn.execute(&sql, [])
                .map_err(sqlite_error("local.execute"))
        })
        .await
    }

    pub(crate) fn err(operation: &'static str) -> impl Fn(rusqlite::Error) -> PortError {
        sqlite_error(operation)
    }
}
