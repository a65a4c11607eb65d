//! Resident memory of a process from /proc: current (VmRSS) and peak (VmHWM).
//!
//! The peak is reset before each scenario by writing `5` to /proc/PID/clear_refs (Linux 4.0+),
//! so each scenario's figure is the high-water mark reached during that scenario alone.

use anyhow::{Context, bail};
use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    /// Resident set size now, KiB.
    pub rss_kib: u64,
    /// Peak resident set size since start or the last [`reset_peak`], KiB.
    pub peak_kib: u64,
}

pub fn read(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse(&status).with_context(|| format!("{path} has no VmRSS/VmHWM lines"))
}

pub fn reset_peak(pid: u32) -> anyhow::Result<()> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").with_context(|| format!("cannot reset the peak RSS via {path}"))
}

fn parse(status: &str) -> anyhow::Result<Memory> {
    let field = |name: &str| -> anyhow::Result<u64> {
        let Some(line) = status.lines().find_map(|l| l.strip_prefix(name)) else {
            bail!("no {name} line");
        };
        let kib = line.trim().trim_end_matches("kB").trim();
        kib.parse()
            .with_context(|| format!("{name} value `{kib}` is not a number"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}

/// KiB as MiB with one decimal, for tables.
pub fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_status() {
        let m = parse("Name:\tkeyway\nVmHWM:\t   12288 kB\nVmRSS:\t    9216 kB\n").unwrap();
        assert_eq!((m.rss_kib, m.peak_kib), (9216, 12288));
        assert!(parse("Name:\tx\n").is_err());
        assert_eq!(mib(15 * 1024 + 52), 15.1);
    }

    #[test]
    fn reads_itself() {
        let m = read(std::process::id()).unwrap();
        assert!(m.rss_kib > 0 && m.peak_kib >= m.rss_kib);
    }
}
