//! The usage history's per-request log: one CSV line per finished request, in a file per UTC
//! day (`usage-log/2026-12-07.csv`, each starting with the header, so a day's file opens as a
//! spreadsheet on its own). The writer thread appends to it; `GET /api/usage.csv` reads it.
//!
//! Why files and not SQLite rows: an insert into the indexed `requests` table this replaced
//! cost the writer about 3 µs of CPU a request, on the cores the requests share; appending
//! a line costs about 0.2 µs. The totals the Usage screen reads are SQLite's per-minute
//! aggregates ([`super::minutes`]), so nothing queries these files but the export.
//!
//! Every request is one line: a line break inside a field (only a hostile client sends one,
//! in a model name) is written as a space. So a line cut short by a crash is found and
//! dropped by looking at the file's end alone ([`open_day`]).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::Row;

/// The log's columns, and the first line of every file and of the export.
pub const HEADER: &str = "time,surface,model,provider,family,account,attempts,status,latency_ms,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,session,placement,client_key,cost_usd,saved_usd,requested_model,route\n";

/// A file's name after its day.
const EXTENSION: &str = "csv";
/// The length of a line's first field, the time (`2026-12-07T16:29:31.123Z`).
const TIME_LEN: usize = 24;
/// How much of a file's end is read for a cut last line: more than the longest line (a
/// record's client strings are cut to [`super::super::MAX_CLIENT_CHARS`] characters).
const TAIL: u64 = 64 * 1024;

/// The writer's side of the log.
pub struct RequestLog {
    dir: PathBuf,
    /// The file appended to last, with its day (`YYYY-MM-DD`).
    open: Option<(String, File)>,
    /// The last second formatted (`YYYY-MM-DDTHH:MM:SS`): a batch's requests mostly share it.
    second: (u64, String),
}

impl RequestLog {
    pub fn new(dir: &Path) -> RequestLog {
        RequestLog {
            dir: dir.to_owned(),
            open: None,
            second: (u64::MAX, String::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Append `rows` to their days' files, one write per day.
    pub fn append(&mut self, rows: &[Row<'_>]) -> io::Result<()> {
        let mut day = String::new();
        let mut text = String::new();
        for row in rows {
            let second = self.second(row.time_ms / 1000);
            if second[..10] != day {
                let next = second[..10].to_owned();
                self.write(&day, &text)?;
                text.clear();
                day = next;
            }
            push_line(&mut text, &self.second.1, row);
        }
        self.write(&day, &text)
    }

    fn write(&mut self, day: &str, text: &str) -> io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.file(day)?.write_all(text.as_bytes())
    }

    /// `day`'s file, opened for appending. The open file is kept while it is still there:
    /// if someone removed it (or the folder), the next write makes it again rather than going
    /// to a file nobody can read.
    fn file(&mut self, day: &str) -> io::Result<&mut File> {
        let path = day_file(&self.dir, day);
        let kept = self
            .open
            .take()
            .filter(|(open, _)| open == day && path.exists());
        let open = match kept {
            Some(open) => open,
            None => (day.to_owned(), open_day(&self.dir, &path)?),
        };
        Ok(&mut self.open.insert(open).1)
    }

    /// `second` as [`second_text`] writes it, formatted once per second: a batch's
    /// requests mostly share it.
    fn second(&mut self, second: u64) -> &str {
        if self.second.0 != second {
            self.second = (second, second_text(second));
        }
        &self.second.1
    }
}

/// A day's file at `path` in `dir`, opened for appending and checked once: a new file gets
/// the header, and a last line a crash cut short is cut off.
fn open_day(dir: &Path, path: &Path) -> io::Result<File> {
    keyway_core::paths::private_dir(dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let len = file.metadata()?.len();
    let keep = if len == 0 {
        0
    } else {
        whole_lines(&mut file, len)?
    };
    if keep < len {
        file.set_len(keep)?;
    }
    if keep == 0 {
        file.write_all(HEADER.as_bytes())?;
    }
    Ok(file)
}

/// The length of `file` up to the end of its last whole line.
fn whole_lines(file: &mut File, len: u64) -> io::Result<u64> {
    let start = len.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(TAIL).read_to_end(&mut tail)?;
    Ok(match memchr::memrchr(b'\n', &tail) {
        Some(i) => start + i as u64 + 1,
        None => 0,
    })
}

fn day_file(dir: &Path, day: &str) -> PathBuf {
    dir.join(format!("{day}.{EXTENSION}"))
}

/// `ms` since the epoch as the log writes it: `2026-12-07T16:29:31.123Z`, UTC to the
/// millisecond, which sorts as text in time order.
pub fn timestamp(ms: u64) -> String {
    format!("{}.{:03}Z", second_text(ms / 1000), ms % 1000)
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC; a second past what a timestamp can hold (year 9999) is
/// written as the epoch (the record's time comes from the clock, so only a broken clock
/// gives one).
fn second_text(second: u64) -> String {
    i64::try_from(second)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// One request as a CSV line, in [`HEADER`]'s order, its time `second` (see [`second_text`])
/// and the record's milliseconds. Written straight into `out`, with no string per field:
/// this runs for every request, on the cores the requests share.
fn push_line(out: &mut String, second: &str, r: &Row<'_>) {
    out.push_str(second);
    out.push('.');
    push_millis(out, r.time_ms);
    out.push('Z');
    let text = |out: &mut String, v: Option<&str>| {
        out.push(',');
        push_field(out, v.unwrap_or_default());
    };
    let number = |out: &mut String, v: Option<i64>| {
        out.push(',');
        if let Some(n) = v {
            push_number(out, n);
        }
    };
    let dollars = |out: &mut String, v: Option<f64>| {
        out.push(',');
        if let Some(usd) = v {
            push_dollars(out, usd);
        }
    };
    text(out, Some(r.surface));
    text(out, r.model);
    text(out, Some(r.provider));
    text(out, r.family);
    text(out, r.account);
    number(out, Some(r.attempts));
    number(out, Some(r.status));
    number(out, Some(r.latency_ms));
    number(out, r.input_tokens);
    number(out, r.output_tokens);
    number(out, r.cache_read_tokens);
    number(out, r.cache_write_tokens);
    text(out, r.session);
    text(out, r.placement);
    text(out, r.client_key);
    dollars(out, r.cost_usd);
    dollars(out, r.saved_usd);
    text(out, r.requested_model);
    text(out, r.route);
    out.push('\n');
}

/// The millisecond of the second `ms` falls in, as three digits.
fn push_millis(out: &mut String, ms: u64) {
    let ms = ms % 1000;
    for digit in [ms / 100, ms / 10 % 10, ms % 10] {
        out.push(char::from(b'0' + digit as u8));
    }
}

/// A count as a CSV field; a negative one (none is, by construction) goes through
/// [`push_field`] like any text starting with `-`.
fn push_number(out: &mut String, n: i64) {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(n);
    if n >= 0 {
        out.push_str(text);
    } else {
        push_field(out, text);
    }
}

/// Dollars to the millionth, as `{:.6}` writes them; a negative amount (none is, by
/// construction) goes through [`push_field`] like any text starting with `-`.
fn push_dollars(out: &mut String, usd: f64) {
    use std::fmt::Write as _;
    if usd >= 0.0 {
        let _ = write!(out, "{usd:.6}");
    } else {
        push_field(out, &format!("{usd:.6}"));
    }
}

/// Write `f` as a CSV field: quoted when it holds a comma or a quote (model names are user
/// input), a line break as a space (see the module doc), and one a spreadsheet would run as
/// a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return) neutralised with
/// a leading `'`, as OWASP recommends against CSV injection.
fn push_field(out: &mut String, f: &str) {
    let formula = f.starts_with(['=', '+', '-', '@', '\t', '\r']);
    // One pass over the bytes: nearly every field is plain and is copied as it is.
    let special = f.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
    if !formula && !special {
        out.push_str(f);
        return;
    }
    let quoted = f.contains([',', '"']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in f.chars() {
        match c {
            '"' => out.push_str("\"\""),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    if quoted {
        out.push('"');
    }
}

/// The requests that arrived at or after `since_ms`, oldest first, as a CSV with its header.
/// A missing log is an empty one.
pub fn export(dir: &Path, since_ms: u64) -> io::Result<String> {
    let since = timestamp(since_ms);
    let mut days = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HEADER.to_owned()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if let Some(day) = file_day(&path)
            && day.as_str() >= &since[..10]
        {
            days.push((day, path));
        }
    }
    days.sort();
    let mut texts = Vec::with_capacity(days.len());
    for (_, path) in &days {
        texts.push(std::fs::read_to_string(path)?);
    }
    // A request is filed under the day it arrived but written when it ends, so a file is in
    // order of ends: sort by arrival (stable, so equal times keep their order).
    let mut lines: Vec<&str> = texts
        .iter()
        .flat_map(|t| t.lines())
        .filter(|line| *line != HEADER.trim_end())
        .filter(|line| line.get(..TIME_LEN).is_some_and(|t| t >= since.as_str()))
        .collect();
    lines.sort_by_key(|line| &line[..TIME_LEN]);
    let mut out =
        String::with_capacity(HEADER.len() + lines.iter().map(|l| l.len() + 1).sum::<usize>());
    out.push_str(HEADER);
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// Remove the files of the days wholly before `cutoff_ms`.
pub fn prune(dir: &Path, cutoff_ms: u64) -> io::Result<()> {
    remove_days(dir, |day| day < &timestamp(cutoff_ms)[..10])
}

/// Remove every day's file (the leftovers of a migration that did not finish).
pub fn remove_all(dir: &Path) -> io::Result<()> {
    remove_days(dir, |_| true)
}

fn remove_days(dir: &Path, remove: impl Fn(&str) -> bool) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if let Some(day) = file_day(&path)
            && remove(&day)
        {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// The day a log file is named after, if `path` is one (`YYYY-MM-DD.csv`); other files in
/// the folder are left alone.
fn file_day(path: &Path) -> Option<String> {
    if path.extension()? != EXTENSION {
        return None;
    }
    let day = path.file_stem()?.to_str()?;
    day.parse::<jiff::civil::Date>().ok()?;
    (day.len() == 10).then(|| day.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(f: &str) -> String {
        let mut out = String::new();
        push_field(&mut out, f);
        out
    }

    #[test]
    fn fields_are_quoted_neutralised_and_kept_on_one_line() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("plain"), "plain");
        assert_eq!(
            field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        for formula in ["+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(
                field(formula).trim_start_matches('"').starts_with('\''),
                "{formula:?}"
            );
        }
        assert_eq!(field("two\nlines\r\n"), "two lines  ");
        let mut n = String::new();
        push_number(&mut n, 42);
        push_number(&mut n, -1);
        assert_eq!(n, "42'-1");
        let mut usd = String::new();
        push_dollars(&mut usd, 0.000_000_5);
        usd.push(',');
        push_dollars(&mut usd, -2.5);
        assert_eq!(usd, format!("{:.6},'-2.500000", 0.000_000_5));
    }

    #[test]
    fn a_line_holds_the_time_to_the_millisecond() {
        for ms in [0, 7, 42, 999] {
            let mut line = String::new();
            push_line(&mut line, &second_text(T0 / 1000), &row(T0 + ms, "m"));
            assert_eq!(
                line.split(',').next(),
                Some(timestamp(T0 + ms).as_str()),
                "{line}"
            );
        }
    }

    #[test]
    fn times_sort_as_text() {
        assert_eq!(timestamp(1_796_600_000_123), "2026-12-06T23:33:20.123Z");
        assert_eq!(timestamp(5), "1970-01-01T00:00:00.005Z");
        assert_eq!(timestamp(u64::MAX), "1970-01-01T00:00:00.615Z");
        assert!(timestamp(999) < timestamp(1_000));
    }

    /// 2026-12-06T23:33:20Z.
    const T0: u64 = 1_796_600_000_000;
    const DAY_MS: u64 = 86_400_000;

    fn row(time_ms: u64, model: &str) -> Row<'_> {
        Row {
            time_ms,
            surface: "anthropic_messages",
            model: Some(model),
            provider: "anthropic",
            family: None,
            account: Some("a"),
            attempts: 1,
            status: 200,
            latency_ms: 3,
            input_tokens: Some(1),
            output_tokens: Some(2),
            cache_read_tokens: None,
            cache_write_tokens: None,
            session: None,
            placement: None,
            client_key: None,
            cost_usd: Some(0.5),
            saved_usd: None,
            requested_model: None,
            route: None,
        }
    }

    fn models(csv: &str) -> Vec<&str> {
        csv.lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap_or_default())
            .collect()
    }

    #[test]
    fn days_files_a_cut_line_and_the_export_in_arrival_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_dir = dir.path().join("usage-log");
        {
            let mut log = RequestLog::new(&log_dir);
            // Written as they ended: "late" arrived last but ended first; "yesterday" goes to
            // the day before's file.
            log.append(&[row(T0 + 500, "late"), row(T0 + 100, "early")])
                .expect("append");
            log.append(&[row(T0 - DAY_MS, "yesterday")])
                .expect("append");
        }
        let today = log_dir.join("2026-12-06.csv");
        // A crash in the middle of a line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&today)
            .and_then(|mut f| f.write_all(b"2026-12-06T23:33:21.000Z,anthr"))
            .expect("cut line");
        RequestLog::new(&log_dir)
            .append(&[row(T0 + 2_000, "after")])
            .expect("append after the crash");

        let text = std::fs::read_to_string(&today).expect("today");
        assert!(text.starts_with(HEADER), "{text}");
        assert_eq!(models(&text), ["late", "early", "after"], "{text}");
        assert_eq!(
            text.lines().nth(1),
            Some(
                "2026-12-06T23:33:20.500Z,anthropic_messages,late,anthropic,,a,1,200,3,1,2,,,,,,0.500000,,,"
            )
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!((mode(&log_dir), mode(&today)), (0o700, 0o600));
        }

        let all = export(&log_dir, 0).expect("export");
        assert_eq!(models(&all), ["yesterday", "early", "late", "after"]);
        let since = export(&log_dir, T0 + 200).expect("export");
        assert_eq!(models(&since), ["late", "after"]);

        prune(&log_dir, T0).expect("prune");
        assert!(!log_dir.join("2026-12-05.csv").exists());
        assert_eq!(
            models(&export(&log_dir, 0).expect("export")),
            ["early", "late", "after"]
        );
        assert_eq!(export(&dir.path().join("none"), 0).expect("no log"), HEADER);
    }

    #[test]
    fn a_log_removed_while_open_is_made_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_dir = dir.path().join("usage-log");
        let mut log = RequestLog::new(&log_dir);
        log.append(&[row(T0, "before")]).expect("append");
        std::fs::remove_dir_all(&log_dir).expect("someone removes the folder");
        log.append(&[row(T0 + 1, "after")]).expect("append");
        let text = std::fs::read_to_string(log_dir.join("2026-12-06.csv")).expect("made again");
        assert!(text.starts_with(HEADER), "{text}");
        assert_eq!(models(&text), ["after"]);
    }

    #[test]
    fn only_day_files_are_read_or_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "2026-12-01.csv",
            "notes.csv",
            "2026-13-01.csv",
            "2026-12-01.txt",
        ] {
            std::fs::write(dir.path().join(name), HEADER).expect("write");
        }
        remove_all(dir.path()).expect("remove");
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["2026-12-01.txt", "2026-13-01.csv", "notes.csv"]);
    }
}
