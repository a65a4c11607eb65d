//! Opening a history an older Keyway wrote: it kept one row per request in a `requests`
//! table. Its rows move into the log's files and the per-minute totals, and the table goes.
//!
//! The move cannot leave half of it done: the log's files are written first (any a move that
//! did not finish left are removed before), then the totals are added and the table dropped
//! in one transaction. Until that commits, the old table is whole and the next start moves
//! it again; once it has, the history is the new one.

use std::path::Path;

use rusqlite::{Connection, params};

use super::log::{self, RequestLog};
use super::{HistoryError, Row, minutes};

/// Columns an older `requests` table may lack, with their types: added (as NULL for its
/// rows) before its rows are read.
const ADDED_COLUMNS: [(&str, &str); 9] = [
    ("cache_read_tokens", "INTEGER"),
    ("cache_write_tokens", "INTEGER"),
    ("session", "TEXT"),
    ("placement", "TEXT"),
    ("client_key", "TEXT"),
    ("cost_usd", "REAL"),
    ("saved_usd", "REAL"),
    ("requested_model", "TEXT"),
    ("route", "TEXT"),
];

/// Rows read, written and added at a time, so memory stays bounded whatever the history's
/// size (a row is under 2 KiB).
const CHUNK: usize = 10_000;

/// One row of the old table, owned.
struct OldRow {
    time_ms: i64,
    surface: String,
    model: Option<String>,
    provider: String,
    family: Option<String>,
    account: Option<String>,
    attempts: i64,
    status: i64,
    latency_ms: i64,
    tokens: [Option<i64>; 4],
    session: Option<String>,
    placement: Option<String>,
    client_key: Option<String>,
    cost_usd: Option<f64>,
    saved_usd: Option<f64>,
    requested_model: Option<String>,
    route: Option<String>,
}

impl OldRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<OldRow> {
        Ok(OldRow {
            time_ms: row.get(0)?,
            surface: row.get(1)?,
            model: row.get(2)?,
            provider: row.get(3)?,
            family: row.get(4)?,
            account: row.get(5)?,
            attempts: row.get(6)?,
            status: row.get(7)?,
            latency_ms: row.get(8)?,
            tokens: [row.get(9)?, row.get(10)?, row.get(11)?, row.get(12)?],
            session: row.get(13)?,
            placement: row.get(14)?,
            client_key: row.get(15)?,
            cost_usd: row.get(16)?,
            saved_usd: row.get(17)?,
            requested_model: row.get(18)?,
            route: row.get(19)?,
        })
    }

    fn row(&self) -> Row<'_> {
        Row {
            time_ms: self.time_ms.max(0) as u64,
            surface: &self.surface,
            model: self.model.as_deref(),
            provider: &self.provider,
            family: self.family.as_deref(),
            account: self.account.as_deref(),
            attempts: self.attempts,
            status: self.status,
            latency_ms: self.latency_ms,
            input_tokens: self.tokens[0],
            output_tokens: self.tokens[1],
            cache_read_tokens: self.tokens[2],
            cache_write_tokens: self.tokens[3],
            session: self.session.as_deref(),
            placement: self.placement.as_deref(),
            client_key: self.client_key.as_deref(),
            cost_usd: self.cost_usd,
            saved_usd: self.saved_usd,
            requested_model: self.requested_model.as_deref(),
            route: self.route.as_deref(),
        }
    }
}

/// Move an older history's `requests` rows into `log_dir` and the totals, if `db` has them.
pub fn requests_table(db: &mut Connection, log_dir: &Path) -> Result<(), HistoryError> {
    let old: bool = db.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'requests'",
        [],
        |row| row.get(0),
    )?;
    if !old {
        return Ok(());
    }
    add_missing_columns(db)?;
    let log_error = |source| HistoryError::Log {
        dir: log_dir.to_owned(),
        source,
    };
    log::remove_all(log_dir).map_err(log_error)?;
    let mut log = RequestLog::new(log_dir);
    let tx = db.transaction()?;
    let mut moved = 0usize;
    {
        let mut stmt = tx.prepare(
            "SELECT time_ms, surface, model, provider, family, account, attempts, status,
                    latency_ms, input_tokens, output_tokens, cache_read_tokens,
                    cache_write_tokens, session, placement, client_key, cost_usd, saved_usd,
                    requested_model, route
             FROM requests ORDER BY time_ms, rowid",
        )?;
        let mut rows = stmt.query(params![])?;
        loop {
            let mut chunk = Vec::with_capacity(CHUNK);
            while chunk.len() < CHUNK {
                match rows.next()? {
                    Some(row) => chunk.push(OldRow::read(row)?),
                    None => break,
                }
            }
            if chunk.is_empty() {
                break;
            }
            let view: Vec<Row<'_>> = chunk.iter().map(OldRow::row).collect();
            log.append(&view).map_err(log_error)?;
            minutes::add(&tx, &view)?;
            moved += chunk.len();
        }
    }
    tx.execute_batch("DROP TABLE requests")?;
    tx.commit()?;
    tracing::info!(requests = moved, log = %log_dir.display(), "the usage history moved to per-minute totals and a per-request log");
    // The dropped table's pages would stay in the file, free, for ever.
    if let Err(e) = db.execute_batch("VACUUM") {
        tracing::warn!(error = %e, "cannot compact the usage history after moving it");
    }
    Ok(())
}

/// Add the columns of [`ADDED_COLUMNS`] that `db`'s `requests` table lacks.
fn add_missing_columns(db: &Connection) -> rusqlite::Result<()> {
    let mut stmt = db.prepare("SELECT name FROM pragma_table_info('requests')")?;
    let have: Vec<String> = stmt
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, kind) in ADDED_COLUMNS {
        if !have.iter().any(|h| h == name) {
            db.execute_batch(&format!("ALTER TABLE requests ADD COLUMN {name} {kind}"))?;
        }
    }
    Ok(())
}
