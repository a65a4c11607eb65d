//! The usage history: every finished request, kept for the configured number of days, as
//! per-minute totals in an SQLite database in the data dir ([`minutes`], what the Usage
//! screen, `keyway usage` and the client keys' meters read) and as a line in a per-day CSV
//! file ([`log`], what `GET /api/usage.csv` exports). A history an older Keyway wrote, one
//! SQLite row per request, is moved to this form when opened ([`migrate`]).
//!
//! The request path only pushes its record onto a queue under a short lock; only the record
//! that finds the queue empty wakes the writer thread, which then lets the queue fill for
//! [`GATHER`] and writes all of it: one append per day's file, and one upsert per group of
//! totals in one transaction. So under load the writer wakes about once per [`GATHER`], and
//! when no requests come it never wakes at all. A query first asks the writer to flush (and
//! waits), so what it reads includes every request finished before it; reads use their own
//! connection (WAL lets them run beside the writer).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::RequestRecord;
use log::RequestLog;

mod log;
mod migrate;
mod minutes;

/// Records waiting to be written before new ones are dropped (with a warning): two seconds of
/// the heaviest load, should the disk stall. A record is under 2 KiB (the strings a client
/// chose are cut, see [`super::MAX_CLIENT_CHARS`]), so the queue stays under 40 MiB.
const QUEUE: usize = 20_000;
/// How long the writer lets records gather after the first one, before writing them: long
/// enough that a batch carries many requests under load, short enough that writing one
/// (well under a microsecond a request) never holds the CPU the requests share for long.
const GATHER: Duration = Duration::from_millis(10);
/// Page cache per connection, in KiB (SQLite's default is 2 MiB): the totals are written in
/// small upserts and read in small aggregates, so a large cache only adds to Keyway's memory.
const CACHE_KIB: i64 = 512;
/// How often old totals and log files are pruned: at start, then on the first write after
/// this long.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One request as the history keeps it: the record's fields, or an older history's row.
pub struct Row<'a> {
    /// When the request arrived, in milliseconds since the epoch.
    pub time_ms: u64,
    pub surface: &'a str,
    pub model: Option<&'a str>,
    pub provider: &'a str,
    pub family: Option<&'a str>,
    pub account: Option<&'a str>,
    pub attempts: i64,
    pub status: i64,
    pub latency_ms: i64,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub session: Option<&'a str>,
    pub placement: Option<&'a str>,
    pub client_key: Option<&'a str>,
    pub cost_usd: Option<f64>,
    pub saved_usd: Option<f64>,
    pub requested_model: Option<&'a str>,
    pub route: Option<&'a str>,
}

impl<'a> From<&'a RequestRecord> for Row<'a> {
    fn from(r: &'a RequestRecord) -> Row<'a> {
        let count = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        Row {
            time_ms: r.time_ms,
            surface: r.surface.as_str(),
            model: r.model.as_deref(),
            provider: &r.provider,
            family: r.family.as_deref(),
            account: r.account.as_deref(),
            attempts: i64::from(r.attempts),
            status: i64::from(r.status),
            latency_ms: i64::try_from(r.latency_ms).unwrap_or(i64::MAX),
            input_tokens: count(r.input_tokens),
            output_tokens: count(r.output_tokens),
            cache_read_tokens: count(r.cache_read_tokens),
            cache_write_tokens: count(r.cache_write_tokens),
            session: r.session.as_deref(),
            placement: r.placement.map(|p| p.as_str()),
            client_key: r.client_key.as_deref(),
            cost_usd: r.cost_usd,
            saved_usd: r.saved_usd,
            requested_model: r.requested_model.as_deref(),
            route: r.route.as_deref(),
        }
    }
}

/// Why the usage history could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot create {}: {source}", .dir.display())]
    CreateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the usage history {}: {source}; move the file away to start a new one", .path.display())]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot start the usage history writer: {0}")]
    Writer(std::io::Error),
    #[error("cannot read the usage history: {0}")]
    Read(#[from] rusqlite::Error),
    #[error("cannot read or write the usage log in {}: {source}; it must be a folder Keyway can write", .dir.display())]
    Log {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("the usage history query failed")]
    Task,
}

/// The history's handle: the queue the writer thread takes from, a connection for queries,
/// and the log's folder for the export.
pub struct History {
    queue: Arc<Queue>,
    reader: Arc<Mutex<Connection>>,
    log_dir: PathBuf,
}
/// Records waiting for the writer, and the flush handshake.
struct Queue {
    pending: Mutex<Pending>,
    /// Wakes the writer: the first record after a write, a flush asked for, or closing.
    wake: Condvar,
    /// Wakes those waiting for a flush.
    flushed: Condvar,
}

#[derive(Default)]
struct Pending {
    records: Vec<Arc<RequestRecord>>,
    /// Flushes asked for, and flushes done, counted; a flush waits until `done` reaches its
    /// number.
    asked: u64,
    done: u64,
    closing: bool,
    /// Set while records are being dropped for a full queue, so the warning comes once.
    dropping: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Totals for one day, account, model or client key.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Totals {
    /// The day (`YYYY-MM-DD`), account id, model or client key id.
    pub key: String,
    /// The account's or client key's label, for per-account and per-key totals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub label: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The part of `input_tokens` read from the prompt cache.
    pub cache_read_tokens: u64,
    /// The part of `input_tokens` written to the prompt cache.
    pub cache_write_tokens: u64,
    /// What the priced requests cost at API prices; `None` when none of them had a price.
    pub cost_usd: Option<f64>,
    /// What the prompt cache saved on the priced requests.
    pub saved_usd: f64,
    /// Requests that reported tokens but whose model has no price: `cost_usd` leaves them out.
    pub unpriced: u64,
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Serialize, Deserialize)]
pub struct Usage {
    pub days: u32,
    pub by_day: Vec<Totals>,
    pub by_account: Vec<Totals>,
    pub by_model: Vec<Totals>,
    pub by_key: Vec<Totals>,
}

/// A client key's spend in the current local day and month, and its last use, as the history
/// has them (for its meter at start).
#[derive(Debug, Clone, PartialEq)]
pub struct KeySpend {
    pub key: String,
    pub day_usd: f64,
    pub month_usd: f64,
    pub last_used_ms: u64,
}

impl History {
    /// Open (or create) the database at `path` and the log in `log_dir`, move an older
    /// history to this form, and start the writer thread.
    pub fn open(path: &Path, log_dir: &Path, retention_days: u32) -> Result<History, HistoryError> {
        let fail = |source: rusqlite::Error| HistoryError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| HistoryError::CreateDir {
                dir: dir.to_owned(),
                source,
            })?;
        }
        // Owner-only from the start: SQLite gives its write-ahead log and shared-memory files
        // the database file's permissions.
        let mut create = std::fs::OpenOptions::new();
        create.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut create, 0o600);
        create
            .open(path)
            .map_err(|source| HistoryError::CreateDir {
                dir: path.to_owned(),
                source,
            })?;
        let mut writer = Connection::open(path).map_err(fail)?;
        writer
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        writer.execute_batch(minutes::SCHEMA).map_err(fail)?;
        migrate::requests_table(&mut writer, log_dir).map_err(|e| match e {
            HistoryError::Read(source) => fail(source),
            other => other,
        })?;
        let reader = Connection::open(path).map_err(fail)?;
        for db in [&writer, &reader] {
            db.pragma_update(None, "cache_size", -CACHE_KIB)
                .map_err(fail)?;
        }
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            flushed: Condvar::new(),
        });
        let writer_queue = queue.clone();
        let path: PathBuf = path.to_owned();
        let log = RequestLog::new(log_dir);
        std::thread::Builder::new()
            .name("usage-history".into())
            .spawn(move || write_loop(writer, log, &writer_queue, retention_days, &path))
            .map_err(HistoryError::Writer)?;
        Ok(History {
            queue,
            reader: Arc::new(Mutex::new(reader)),
            log_dir: log_dir.to_owned(),
        })
    }

    /// Queue a record for the writer; never waits for it.
    pub fn append(&self, record: Arc<RequestRecord>) {
        let mut pending = self.queue.lock();
        if pending.records.len() < QUEUE {
            let first = pending.records.is_empty();
            pending.records.push(record);
            pending.dropping = false;
            drop(pending);
            if first {
                self.queue.wake.notify_one();
            }
        } else if !pending.dropping {
            pending.dropping = true;
            drop(pending);
            tracing::warn!("the usage history cannot keep up; some requests are not recorded");
        }
    }

    /// Write everything queued so far, and wait until it is written. Blocking: call it from a
    /// blocking thread (queries do) or at shutdown.
    pub fn flush(&self) {
        flush(&self.queue);
    }

    /// Totals over the last `days` local days (today included).
    pub async fn usage(&self, days: u32) -> Result<Usage, HistoryError> {
        self.read(move |db| {
            let since = since_ms(db, days)?;
            Ok(Usage {
                days,
                by_day: minutes::totals(db, minutes::BY_DAY, since)?,
                by_account: minutes::totals(db, "account", since)?,
                by_model: minutes::totals(db, "model", since)?,
                by_key: minutes::totals(db, "client_key", since)?,
            })
        })
        .await
    }

    /// Each client key's spend since `day_start_ms` and since `month_start_ms`, and its last
    /// request ever.
    pub async fn key_spend(
        &self,
        day_start_ms: u64,
        month_start_ms: u64,
    ) -> Result<Vec<KeySpend>, HistoryError> {
        self.read(move |db| Ok(minutes::key_spend(db, day_start_ms, month_start_ms)?))
            .await
    }

    /// Today's totals per account id.
    pub async fn today_by_account(&self) -> Result<Vec<Totals>, HistoryError> {
        self.read(|db| {
            let since = since_ms(db, 1)?;
            Ok(minutes::totals(db, "account", since)?)
        })
        .await
    }

    /// Every request of the last `days` local days as CSV, oldest first.
    pub async fn csv(&self, days: u32) -> Result<String, HistoryError> {
        let dir = self.log_dir.clone();
        self.read(move |db| {
            let since = since_ms(db, days)?.max(0) as u64;
            log::export(&dir, since).map_err(|source| HistoryError::Log { dir, source })
        })
        .await
    }

    /// Flush, then run `query` on the reading connection, on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> Result<T, HistoryError> + Send + 'static,
    ) -> Result<T, HistoryError> {
        let reader = self.reader.clone();
        let queue = self.queue.clone();
        tokio::task::spawn_blocking(move || {
            flush(&queue);
            let db = reader.lock().unwrap_or_else(|p| p.into_inner());
            query(&db)
        })
        .await
        .map_err(|_| HistoryError::Task)?
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

fn flush(queue: &Queue) {
    let mut pending = queue.lock();
    if pending.closing {
        return;
    }
    pending.asked += 1;
    let ticket = pending.asked;
    queue.wake.notify_one();
    while pending.done < ticket && !pending.closing {
        pending = queue
            .flushed
            .wait(pending)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// Dropping the handle lets the writer write what is queued and end.
impl Drop for History {
    fn drop(&mut self) {
        self.queue.lock().closing = true;
        self.queue.wake.notify_one();
    }
}

/// The writer's nice value: bookkeeping yields the CPU to the requests it records (a batch
/// is a hundred requests or more under load), yet keeps enough of it to keep up.
#[cfg(target_os = "linux")]
const WRITER_NICE: libc::c_int = 10;

fn write_loop(
    mut db: Connection,
    mut log: RequestLog,
    queue: &Queue,
    retention_days: u32,
    path: &Path,
) {
    // SAFETY: plain syscalls on this thread's own id; failure only leaves the priority as is.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            libc::gettid() as libc::id_t,
            WRITER_NICE,
        );
    }
    prune(&db, log.dir(), retention_days, path);
    let mut pruned = Instant::now();
    let mut failing = Failing::default();
    loop {
        let (batch, ticket, closing) = {
            let mut pending = queue.lock();
            let idle = |p: &Pending| p.asked == p.done && !p.closing;
            while pending.records.is_empty() && idle(&pending) {
                pending = queue.wake.wait(pending).unwrap_or_else(|p| p.into_inner());
            }
            // Records and nobody waiting for them: let more gather (a flush or close cuts it
            // short).
            if idle(&pending) {
                pending = queue
                    .wake
                    .wait_timeout(pending, GATHER)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            (
                std::mem::take(&mut pending.records),
                pending.asked,
                pending.closing,
            )
        };
        if !batch.is_empty() {
            write(&mut db, &mut log, &batch, path, &mut failing);
        }
        queue.lock().done = ticket;
        queue.flushed.notify_all();
        if closing {
            return;
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            prune(&db, log.dir(), retention_days, path);
        }
    }
}

/// Which of the writer's two stores failed its last write: a failure is logged when it
/// starts and when it ends, not for every batch (a hundred a second under load).
#[derive(Default)]
struct Failing {
    log: bool,
    totals: bool,
}

/// Write `batch` to the log and the totals; if one fails, the other is still written.
fn write(
    db: &mut Connection,
    log: &mut RequestLog,
    batch: &[Arc<RequestRecord>],
    path: &Path,
    failing: &mut Failing,
) {
    let rows: Vec<Row<'_>> = batch.iter().map(|r| Row::from(&**r)).collect();
    match log.append(&rows) {
        Err(e) if !failing.log => {
            failing.log = true;
            tracing::warn!(dir = %log.dir().display(), error = %e, "cannot write to the usage log; requests are still counted in the totals");
        }
        Ok(()) if failing.log => {
            failing.log = false;
            tracing::info!(dir = %log.dir().display(), "the usage log is written again");
        }
        _ => {}
    }
    let totals = db.transaction().and_then(|tx| {
        minutes::add(&tx, &rows)?;
        tx.commit()
    });
    match totals {
        Err(e) if !failing.totals => {
            failing.totals = true;
            tracing::warn!(path = %path.display(), error = %e, "cannot write to the usage history");
        }
        Ok(()) if failing.totals => {
            failing.totals = false;
            tracing::info!(path = %path.display(), "the usage history is written again");
        }
        _ => {}
    }
}

/// Delete the totals and the log's days older than the retention; a failure is logged and
/// left for the next time.
fn prune(db: &Connection, log_dir: &Path, retention_days: u32, path: &Path) {
    let cutoff =
        keyway_core::state::now_ms().saturating_sub(u64::from(retention_days) * 86_400_000);
    if let Err(e) = minutes::prune(db, cutoff as i64) {
        tracing::warn!(path = %path.display(), error = %e, "cannot prune the usage history");
    }
    if let Err(e) = log::prune(log_dir, cutoff) {
        tracing::warn!(dir = %log_dir.display(), error = %e, "cannot prune the usage log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE_NAME: &str = "usage.sqlite3";
    const LOG_DIR: &str = "usage-log";

    fn open(dir: &Path, retention_days: u32) -> History {
        History::open(&dir.join(FILE_NAME), &dir.join(LOG_DIR), retention_days).expect("open")
    }

    fn record(account: &str, model: &str, status: u16, input: Option<u64>) -> RequestRecord {
        RequestRecord {
            id: 1,
            time_ms: keyway_core::state::now_ms(),
            surface: keyway_core::Surface::AnthropicMessages,
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
            cache_read_tokens: None,
            cache_write_tokens: None,
            session: None,
            session_source: None,
            placement: None,
            client_key: None,
            client_key_label: None,
            cost_usd: None,
            saved_usd: None,
            requested_model: None,
            route: None,
        }
    }

    #[tokio::test]
    async fn totals_per_account_model_and_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let history = open(dir.path(), 90);
        history.append(Arc::new(record("a", "m1", 200, Some(100))));
        history.append(Arc::new(record("a", "m2", 429, None)));
        history.append(Arc::new(record("b", "m1", 200, Some(10))));
        // A query sees every request queued before it.
        let usage = history.usage(1).await.expect("usage");
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
        assert!(lines[2].ends_with(",a,1,429,12,,,,,,,,,,,"), "{}", lines[2]);
    }

    #[tokio::test]
    async fn cost_per_client_key_with_unpriced_requests_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let history = open(dir.path(), 90);
        let with = |key: &str, cost: Option<f64>, saved: Option<f64>| {
            let mut r = record("a", "m1", 200, Some(100));
            r.client_key = Some(key.into());
            r.cost_usd = cost;
            r.saved_usd = saved;
            Arc::new(r)
        };
        history.append(with("ck-1", Some(0.25), Some(0.05)));
        history.append(with("ck-1", Some(0.5), Some(0.0)));
        history.append(with("ck-1", None, None));
        history.append(with("ck-2", None, None));
        let usage = history.usage(1).await.expect("usage");
        let by_key: Vec<(&str, u64, Option<f64>, u64)> = usage
            .by_key
            .iter()
            .map(|t| (t.key.as_str(), t.requests, t.cost_usd, t.unpriced))
            .collect();
        assert_eq!(
            by_key,
            [("ck-1", 3, Some(0.75), 1), ("ck-2", 1, None, 1)],
            "a key with no priced request has no cost, not $0"
        );
        assert!((usage.by_key[0].saved_usd - 0.05).abs() < 1e-12);

        let now = keyway_core::state::now_ms();
        let spend = history
            .key_spend(now - 60_000, now - 120_000)
            .await
            .expect("spend");
        assert_eq!(spend.len(), 2);
        assert_eq!(spend[0].key, "ck-1");
        assert!((spend[0].day_usd - 0.75).abs() < 1e-12);
        assert!((spend[0].month_usd - 0.75).abs() < 1e-12);
        assert!(spend[0].last_used_ms >= now - 60_000);
        // Nothing this day or month, for a day that starts after every request.
        let later = history
            .key_spend(now + 60_000, now + 60_000)
            .await
            .expect("spend");
        assert_eq!(later[0].day_usd, 0.0);

        let csv = history.csv(1).await.expect("csv");
        let first = csv.lines().nth(1).expect("a row");
        assert!(first.ends_with(",ck-1,0.250000,0.050000,,"), "{first}");
    }

    #[tokio::test]
    async fn an_older_history_is_moved_to_the_totals_and_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        {
            // The first schema, without the columns added since; two days, out of order.
            let db = Connection::open(&path).expect("open");
            db.execute_batch(
                "CREATE TABLE requests (time_ms INTEGER NOT NULL, surface TEXT NOT NULL, model TEXT,
                     provider TEXT NOT NULL, family TEXT, account TEXT, attempts INTEGER NOT NULL,
                     status INTEGER NOT NULL, latency_ms INTEGER NOT NULL, input_tokens INTEGER,
                     output_tokens INTEGER);
                 CREATE INDEX requests_time ON requests (time_ms);
                 INSERT INTO requests VALUES (1796600000000, 'anthropic_messages', 'm', 'anthropic',
                     NULL, 'a', 1, 200, 5, 10, 2);
                 INSERT INTO requests VALUES (1796500000250, 'openai_chat', 'x,y', 'openai',
                     'gpt', NULL, 2, 429, 7, NULL, NULL);",
            )
            .expect("old schema");
        }
        // A move that stopped before its commit left a day's file behind.
        let log_dir = dir.path().join(LOG_DIR);
        std::fs::create_dir_all(&log_dir).expect("log dir");
        std::fs::write(
            log_dir.join("2026-12-06.csv"),
            format!("{}1796600000000 half of a line", log::HEADER),
        )
        .expect("stray file");

        let history = open(dir.path(), 3650);
        history.append(Arc::new(record("a", "m1", 200, Some(100))));
        let usage = history.usage(3650).await.expect("usage");
        let by_model: Vec<(&str, u64, u64, u64)> = usage
            .by_model
            .iter()
            .map(|t| (t.key.as_str(), t.requests, t.errors, t.input_tokens))
            .collect();
        assert_eq!(
            by_model,
            [("m", 1, 0, 10), ("m1", 1, 0, 100), ("x,y", 1, 1, 0)]
        );
        // The export is what the old one gave for the same rows, oldest first.
        let csv = history.csv(3650).await.expect("csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        assert_eq!(
            lines[1],
            "2026-12-05T19:46:40.250Z,openai_chat,\"x,y\",openai,gpt,,2,429,7,,,,,,,,,,,"
        );
        assert_eq!(
            lines[2],
            "2026-12-06T23:33:20.000Z,anthropic_messages,m,anthropic,,a,1,200,5,10,2,,,,,,,,,"
        );
        drop(history);

        let db = Connection::open(&path).expect("open");
        let tables: Vec<String> = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .expect("tables")
            .query_map([], |r| r.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("names");
        assert_eq!(tables, ["minutes"]);
        // Opened again, nothing is moved twice.
        let history = open(dir.path(), 3650);
        let usage = history.usage(3650).await.expect("usage");
        assert_eq!(usage.by_day.iter().map(|d| d.requests).sum::<u64>(), 3);
        assert_eq!(history.csv(3650).await.expect("csv").lines().count(), 4);
    }

    #[test]
    fn a_record_is_written_without_anyone_asking() {
        // A record wakes the idle writer: rows reach the file with no query or flush, so the
        // queue never just grows. The second record finds the writer asleep after its first
        // write.
        let dir = tempfile::tempdir().expect("tempdir");
        let history = open(dir.path(), 90);
        let db = Connection::open(dir.path().join(FILE_NAME)).expect("open a second connection");
        let rows_within = |want: i64| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let rows: i64 = db
                    .query_row("SELECT coalesce(sum(requests), 0) FROM minutes", [], |r| {
                        r.get(0)
                    })
                    .expect("count");
                if rows >= want || Instant::now() > deadline {
                    return rows;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        for want in 1..=2 {
            history.append(Arc::new(record("a", "m", 200, Some(1))));
            assert_eq!(rows_within(want), want);
        }
    }

    #[tokio::test]
    async fn rows_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let history = open(dir.path(), 90);
            history.append(Arc::new(record("a", "m", 200, Some(1))));
            history.flush();
        }
        let history = open(dir.path(), 90);
        let usage = history.usage(1).await.expect("usage");
        assert_eq!(usage.by_day.iter().map(|d| d.requests).sum::<u64>(), 1);
    }

    /// Counts the warnings logged while it is the subscriber.
    struct Warnings(Arc<std::sync::atomic::AtomicUsize>);

    impl tracing::Subscriber for Warnings {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn a_full_queue_drops_records_with_one_warning() {
        // A history whose writer is stuck (here: never started), so its queue only fills.
        let history = History {
            queue: Arc::new(Queue {
                pending: Mutex::new(Pending::default()),
                wake: Condvar::new(),
                flushed: Condvar::new(),
            }),
            reader: Arc::new(Mutex::new(Connection::open_in_memory().expect("db"))),
            log_dir: PathBuf::new(),
        };
        let warnings = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let logged = || warnings.load(std::sync::atomic::Ordering::SeqCst);
        let record = Arc::new(record("a", "m", 200, None));
        tracing::subscriber::with_default(Warnings(warnings.clone()), || {
            for _ in 0..QUEUE + 1000 {
                history.append(record.clone());
            }
            assert_eq!(
                history.queue.lock().records.len(),
                QUEUE,
                "the rest dropped"
            );
            assert_eq!(logged(), 1, "one warning for the thousand dropped");

            // The writer catches up: records are kept again, and a new overflow warns again.
            history.queue.lock().records.clear();
            history.append(record.clone());
            assert_eq!(history.queue.lock().records.len(), 1);
            for _ in 0..QUEUE + 10 {
                history.append(record.clone());
            }
            assert_eq!(history.queue.lock().records.len(), QUEUE);
            assert_eq!(logged(), 2);
        });
    }
}
