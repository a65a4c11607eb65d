//! The usage history's totals: one SQLite row per minute, account, model and client key,
//! which the Usage screen, `keyway usage` and the client keys' meters read. A batch of
//! requests becomes one upsert per group it touches (a handful under load, whatever the
//! request rate), and a query reads at most a row per group and minute of its window.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::{KeySpend, Row, Totals};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS minutes (
    minute INTEGER NOT NULL,
    account TEXT NOT NULL,
    model TEXT NOT NULL,
    client_key TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cost_usd REAL,
    saved_usd REAL NOT NULL,
    unpriced INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    PRIMARY KEY (minute, account, model, client_key)
) WITHOUT ROWID;
";

/// Milliseconds in the minute a row totals.
pub const MINUTE_MS: u64 = 60_000;

/// What the requests of one group and minute add up to. `minute` is the arrival time in
/// milliseconds divided by [`MINUTE_MS`]; `account`, `model` and `client_key` are `''` for
/// none.
#[derive(Default)]
struct Sums {
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_write_tokens: i64,
    /// `None` while no request of the group had a price.
    cost_usd: Option<f64>,
    saved_usd: f64,
    /// Requests that reported tokens but whose model has no price.
    unpriced: i64,
    last_ms: i64,
}

impl Sums {
    fn add(&mut self, r: &Row<'_>) {
        let tokens = |n: Option<i64>| n.unwrap_or(0);
        self.requests += 1;
        self.errors += i64::from(r.status >= 400);
        self.input_tokens = self.input_tokens.saturating_add(tokens(r.input_tokens));
        self.output_tokens = self.output_tokens.saturating_add(tokens(r.output_tokens));
        self.cache_read_tokens = self
            .cache_read_tokens
            .saturating_add(tokens(r.cache_read_tokens));
        self.cache_write_tokens = self
            .cache_write_tokens
            .saturating_add(tokens(r.cache_write_tokens));
        if let Some(cost) = r.cost_usd {
            self.cost_usd = Some(self.cost_usd.unwrap_or(0.0) + cost);
        } else if r.input_tokens.is_some() || r.output_tokens.is_some() {
            self.unpriced += 1;
        }
        self.saved_usd += r.saved_usd.unwrap_or(0.0);
        self.last_ms = self.last_ms.max(r.time_ms as i64);
    }
}

/// Add `rows` to their minutes' totals (the caller's transaction makes the batch one write).
pub fn add(db: &Connection, rows: &[Row<'_>]) -> rusqlite::Result<()> {
    let mut groups: HashMap<(i64, &str, &str, &str), Sums> = HashMap::new();
    for r in rows {
        let key = (
            (r.time_ms / MINUTE_MS) as i64,
            r.account.unwrap_or_default(),
            r.model.unwrap_or_default(),
            r.client_key.unwrap_or_default(),
        );
        groups.entry(key).or_default().add(r);
    }
    let mut upsert = db.prepare_cached(
        "INSERT INTO minutes (minute, account, model, client_key, requests, errors, input_tokens,
                              output_tokens, cache_read_tokens, cache_write_tokens, cost_usd,
                              saved_usd, unpriced, last_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (minute, account, model, client_key) DO UPDATE SET
             requests = requests + excluded.requests,
             errors = errors + excluded.errors,
             input_tokens = input_tokens + excluded.input_tokens,
             output_tokens = output_tokens + excluded.output_tokens,
             cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
             cache_write_tokens = cache_write_tokens + excluded.cache_write_tokens,
             cost_usd = CASE WHEN excluded.cost_usd IS NULL THEN cost_usd
                             ELSE coalesce(cost_usd, 0) + excluded.cost_usd END,
             saved_usd = saved_usd + excluded.saved_usd,
             unpriced = unpriced + excluded.unpriced,
             last_ms = max(last_ms, excluded.last_ms)",
    )?;
    for ((minute, account, model, client_key), s) in &groups {
        upsert.execute(params![
            minute,
            account,
            model,
            client_key,
            s.requests,
            s.errors,
            s.input_tokens,
            s.output_tokens,
            s.cache_read_tokens,
            s.cache_write_tokens,
            s.cost_usd,
            s.saved_usd,
            s.unpriced,
            s.last_ms,
        ])?;
    }
    Ok(())
}

/// Totals since `since_ms` grouped by `key`, an expression over the table's columns.
pub fn totals(db: &Connection, key: &str, since_ms: i64) -> rusqlite::Result<Vec<Totals>> {
    let sql = format!(
        "SELECT {key} AS k, sum(requests), sum(errors), sum(input_tokens), sum(output_tokens),
                sum(cache_read_tokens), sum(cache_write_tokens), sum(cost_usd), sum(saved_usd),
                sum(unpriced)
         FROM minutes WHERE minute >= ?1 GROUP BY k ORDER BY k"
    );
    let count = |n: i64| n.max(0) as u64;
    let mut stmt = db.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![since_ms.div_euclid(MINUTE_MS as i64)], |row| {
        Ok(Totals {
            key: row.get(0)?,
            label: None,
            requests: count(row.get(1)?),
            errors: count(row.get(2)?),
            input_tokens: count(row.get(3)?),
            output_tokens: count(row.get(4)?),
            cache_read_tokens: count(row.get(5)?),
            cache_write_tokens: count(row.get(6)?),
            cost_usd: row.get(7)?,
            saved_usd: row.get(8)?,
            unpriced: count(row.get(9)?),
        })
    })?;
    rows.collect()
}

/// The local day of a row, for totals per day.
pub const BY_DAY: &str = "date(minute * 60, 'unixepoch', 'localtime')";

/// Delete the minutes before `cutoff_ms`.
pub fn prune(db: &Connection, cutoff_ms: i64) -> rusqlite::Result<usize> {
    db.execute(
        "DELETE FROM minutes WHERE minute < ?1",
        params![cutoff_ms.div_euclid(MINUTE_MS as i64)],
    )
}

/// Each client key's cost since `day_start_ms` and since `month_start_ms`, and its last
/// request. A minute counts when it starts at or after the bound (local days and months
/// start on a minute, so this is exact for them).
pub fn key_spend(
    db: &Connection,
    day_start_ms: u64,
    month_start_ms: u64,
) -> rusqlite::Result<Vec<KeySpend>> {
    let mut stmt = db.prepare(
        "SELECT client_key,
                coalesce(sum(CASE WHEN minute >= ?1 THEN cost_usd END), 0),
                coalesce(sum(CASE WHEN minute >= ?2 THEN cost_usd END), 0),
                max(last_ms)
         FROM minutes WHERE client_key != '' GROUP BY client_key ORDER BY client_key",
    )?;
    let first_minute = |ms: u64| ms.div_ceil(MINUTE_MS) as i64;
    let rows = stmt.query_map(
        params![first_minute(day_start_ms), first_minute(month_start_ms)],
        |row| {
            Ok(KeySpend {
                key: row.get(0)?,
                day_usd: row.get(1)?,
                month_usd: row.get(2)?,
                last_used_ms: row.get::<_, i64>(3)?.max(0) as u64,
            })
        },
    )?;
    rows.collect()
}
