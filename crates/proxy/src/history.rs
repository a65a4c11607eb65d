//! The usage history: every finished request as a row in an SQLite database in the data dir,
//! kept for the configured number of days. Rows are written by one thread in batches, so the
//! request path only hands a record over a channel; reads use their own connection (WAL lets
//! them run beside the writer).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use crate::traffic::RequestRecord;

/// File name of the database in the data dir.
pub const FILE_NAME: &str = "usage.sqlite3";
/// Records waiting to be written before new ones are dropped (with a warning).
const QUEUE: usize = 20_000;
/// Most rows written in one transaction.
const BATCH: usize = 1_000;
/// How often old rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS requests (
    time_ms INTEGER NOT NULL,
    surface TEXT NOT NULL,
    model TEXT,
    provider TEXT NOT NULL,
    family TEXT,
    account TEXT,
    attempts INTEGER NOT NULL,
    status INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER
);
CREATE INDEX IF NOT EXISTS requests_time ON requests (time_ms);
";

/// The history's handle: a queue to the writer thread and a connection for queries.
pub struct History {
    queue: SyncSender<Arc<RequestRecord>>,
    reader: Arc<Mutex<Connection>>,
    dropping: AtomicBool,
}

/// Totals for one day, account or model.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    /// The day (`YYYY-MM-DD`), account id or model.
    pub key: String,
    /// The account's label, for per-account totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Serialize)]
pub struct Usage {
    pub days: u32,
    pub by_day: Vec<Totals>,
    pub by_account: Vec<Totals>,
    pub by_model: Vec<Totals>,
}

impl History {
    /// Open (or create) the database and start its writer thread.
    pub fn open(path: &Path, retention_days: u32) -> Result<History, String> {
        let fail = |e: rusqlite::Error| {
            format!(
                "cannot open the usage history {}: {e}; move the file away to start a new one",
                path.display()
            )
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let writer = Connection::open(path).map_err(fail)?;
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        writer.execute_batch(SCHEMA).map_err(fail)?;
        let reader = Connection::open(path).map_err(fail)?;
        let (queue, records) = mpsc::sync_channel(QUEUE);
        let path: PathBuf = path.to_owned();
        std::thread::Builder::new()
            .name("usage-history".into())
            .spawn(move || write_loop(writer, records, retention_days, &path))
            .map_err(|e| format!("cannot start the usage history writer: {e}"))?;
        Ok(History {
            queue,
            reader: Arc::new(Mutex::new(reader)),
            dropping: AtomicBool::new(false),
        })
    }

    /// Hand a record to the writer; never blocks the request path.
    pub fn append(&self, record: Arc<RequestRecord>) {
        match self.queue.try_send(record) {
            Ok(()) => {
                self.dropping.store(false, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                if !self.dropping.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "the usage history cannot keep up; some requests are not recorded"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Totals over the last `days` local days (today included).
    pub async fn usage(&self, days: u32) -> Result<Usage, String> {
        self.read(move |db| {
            let since = since_ms(db, days)?;
            Ok(Usage {
                days,
                by_day: totals(db, "date(time_ms / 1000, 'unixepoch', 'localtime')", since)?,
                by_account: totals(db, "coalesce(account, '')", since)?,
                by_model: totals(db, "coalesce(model, '')", since)?,
            })
        })
        .await
    }

    /// Today's totals per account id.
    pub async fn today_by_account(&self) -> Result<Vec<Totals>, String> {
        self.read(|db| {
            let since = since_ms(db, 1)?;
            totals(db, "coalesce(account, '')", since)
        })
        .await
    }

    /// Every request of the last `days` local days as CSV, oldest first.
    pub async fn csv(&self, days: u32) -> Result<String, String> {
        self.read(move |db| {
            let since = since_ms(db, days)?;
            let mut out = String::from(
                "time,surface,model,provider,family,account,attempts,status,latency_ms,input_tokens,output_tokens\n",
            );
            let mut stmt = db.prepare(
                "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', time_ms / 1000.0, 'unixepoch'), surface, model, provider, family, account, attempts, status, latency_ms, input_tokens, output_tokens
                 FROM requests WHERE time_ms >= ?1 ORDER BY time_ms",
            )?;
            let mut rows = stmt.query(params![since])?;
            while let Some(row) = rows.next()? {
                let fields = [
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    row.get::<_, i64>(6)?.to_string(),
                    row.get::<_, i64>(7)?.to_string(),
                    row.get::<_, i64>(8)?.to_string(),
                    optional(row.get::<_, Option<i64>>(9)?),
                    optional(row.get::<_, Option<i64>>(10)?),
                ];
                let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            Ok(out)
        })
        .await
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let db = reader.lock().unwrap_or_else(|p| p.into_inner());
            query(&db).map_err(|e| format!("cannot read the usage history: {e}"))
        })
        .await
        .map_err(|_| "the usage history query failed".to_owned())?
    }
}

/// The first millisecond of the local day `days - 1` days ago.
fn since_ms(db: &Connection, days: u32) -> rusqlite::Result<i64> {
    let offset = format!("-{} days", days.saturating_sub(1));
    db.query_row(
        "SELECT CAST(strftime('%s', date('now', 'localtime', ?1), 'utc') AS INTEGER) * 1000",
        params![offset],
        |row| row.get(0),
    )
}

fn totals(db: &Connection, key: &str, since: i64) -> rusqlite::Result<Vec<Totals>> {
    let sql = format!(
        "SELECT {key} AS k, count(*), sum(status >= 400), coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0)
         FROM requests WHERE time_ms >= ?1 GROUP BY k ORDER BY k"
    );
    let mut stmt = db.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![since], |row| {
        Ok(Totals {
            key: row.get(0)?,
            label: None,
            requests: row.get::<_, i64>(1)? as u64,
            errors: row.get::<_, i64>(2)? as u64,
            input_tokens: row.get::<_, i64>(3)? as u64,
            output_tokens: row.get::<_, i64>(4)? as u64,
        })
    })?;
    rows.collect()
}

fn optional(v: Option<i64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

/// Quote a CSV field when it holds a comma, quote or line break (model names are user input).
fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_owned()
    }
}

fn write_loop(
    mut db: Connection,
    records: Receiver<Arc<RequestRecord>>,
    retention_days: u32,
    path: &Path,
) {
    let mut pruned = None::<Instant>;
    // Ends when the engine (the last sender) is dropped.
    while let Ok(first) = records.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match records.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if let Err(e) = insert(&mut db, &batch) {
            tracing::warn!(path = %path.display(), error = %e, rows = batch.len(), "cannot write to the usage history");
        }
        if pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            pruned = Some(Instant::now());
            if let Err(e) = prune(&db, retention_days) {
                tracing::warn!(path = %path.display(), error = %e, "cannot prune the usage history");
            }
        }
    }
}

fn insert(db: &mut Connection, batch: &[Arc<RequestRecord>]) -> rusqlite::Result<()> {
    let tx = db.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO requests (time_ms, surface, model, provider, family, account, attempts, status, latency_ms, input_tokens, output_tokens)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for r in batch {
            stmt.execute(params![
                r.time_ms as i64,
                r.surface,
                r.model,
                r.provider,
                r.family,
                r.account.as_deref(),
                r.attempts,
                r.status,
                r.latency_ms as i64,
                r.input_tokens.map(|n| n as i64),
                r.output_tokens.map(|n| n as i64),
            ])?;
        }
    }
    tx.commit()
}

fn prune(db: &Connection, retention_days: u32) -> rusqlite::Result<usize> {
    let cutoff = keyway_core::state::now_ms() as i64 - i64::from(retention_days) * 86_400_000;
    db.execute("DELETE FROM requests WHERE time_ms < ?1", params![cutoff])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(account: &str, model: &str, status: u16, input: Option<u64>) -> RequestRecord {
        RequestRecord {
            id: 1,
            time_ms: keyway_core::state::now_ms(),
            surface: "anthropic_messages",
            model: Some(model.to_owned()),
            provider: "anthropic".to_owned(),
            family: Some("sonnet".to_owned()),
            account: Some(account.into()),
            account_label: None,
            attempts: 1,
            status,
            latency_ms: 12,
            stream: false,
            input_tokens: input,
            output_tokens: input.map(|n| n / 2),
        }
    }

    /// Waits until the writer has stored `n` rows, by reading them back.
    async fn settled(history: &History, n: u64) -> Usage {
        for _ in 0..500 {
            let usage = history.usage(1).await.expect("usage");
            if usage.by_day.iter().map(|d| d.requests).sum::<u64>() == n {
                return usage;
            }
            tokio::task::yield_now().await;
            std::thread::yield_now();
        }
        panic!("the writer did not store {n} rows");
    }

    #[tokio::test]
    async fn totals_per_account_model_and_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let history = History::open(&dir.path().join(FILE_NAME), 90).expect("open");
        history.append(Arc::new(record("a", "m1", 200, Some(100))));
        history.append(Arc::new(record("a", "m2", 429, None)));
        history.append(Arc::new(record("b", "m1", 200, Some(10))));
        let usage = settled(&history, 3).await;
        assert_eq!(usage.by_day.len(), 1);
        assert_eq!(usage.by_day[0].errors, 1);
        assert_eq!(usage.by_day[0].input_tokens, 110);
        let a = &usage.by_account[0];
        assert_eq!(
            (a.key.as_str(), a.requests, a.errors, a.output_tokens),
            ("a", 2, 1, 50)
        );
        let m1 = &usage.by_model[0];
        assert_eq!(
            (m1.key.as_str(), m1.requests, m1.input_tokens),
            ("m1", 2, 110)
        );

        let csv = history.csv(1).await.expect("csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].ends_with(",a,1,429,12,,"), "{}", lines[2]);
    }

    #[tokio::test]
    async fn rows_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        {
            let history = History::open(&path, 90).expect("open");
            history.append(Arc::new(record("a", "m", 200, Some(1))));
            settled(&history, 1).await;
        }
        let history = History::open(&path, 90).expect("reopen");
        settled(&history, 1).await;
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
