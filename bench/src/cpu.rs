//! Did anything else use the CPU during a measurement? From /proc: the machine's busy time
//! minus the time of the processes this run started (and the bench itself), and the time
//! the hypervisor stole.
//!
//! On a 2-core machine another build or test run halves what the targets get, and the figures
//! then compare nothing. Each run records how much foreign CPU it saw, so a disturbed run is
//! flagged in the table instead of silently published.

use std::time::Instant;

/// Busy time counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    /// user + nice + system of all CPUs, in clock ticks.
    busy: u64,
    steal: u64,
    /// utime + stime of the bench and of every process in the given process groups.
    ours: u64,
}

/// What happened between two samples, in CPUs (1.0 = one CPU busy all the time).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Usage {
    /// CPU used by processes this run did not start.
    pub foreign_cpus: f64,
    /// CPU the hypervisor gave to other guests.
    pub steal_cpus: f64,
}

/// Foreign CPU above this (in CPUs) marks a run as disturbed in the report.
pub const DISTURBED: f64 = 0.10;

/// Reads the counters; `groups` are the process groups of the fake, nginx and Keyway.
pub fn sample(groups: &[i32]) -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal …; interrupt time is charged to nobody,
    // so it is left out of both sides.
    let busy = cpu.first()? + cpu.get(1)? + cpu.get(2)?;
    let steal = cpu.get(7).copied().unwrap_or(0);
    let me = std::process::id();
    let mut ours = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Some((pgrp, ticks)) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
        else {
            continue;
        };
        if pid == me || groups.contains(&pgrp) {
            ours += ticks;
        }
    }
    Some(Sample {
        at: Instant::now(),
        busy,
        steal,
        ours,
    })
}

/// Process group and utime + stime from a /proc/PID/stat line.
fn parse_stat(stat: &str) -> Option<(i32, u64)> {
    // The command name (field 2) may contain spaces and parentheses: skip past its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
    let pgrp = fields.get(2)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((pgrp, utime + stime))
}

pub fn usage(before: Option<Sample>, after: Option<Sample>) -> Usage {
    let (Some(a), Some(b)) = (before, after) else {
        return Usage::default();
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let secs = (b.at - a.at).as_secs_f64().max(1e-3);
    let busy = b.busy.saturating_sub(a.busy) as f64;
    let ours = b.ours.saturating_sub(a.ours) as f64;
    Usage {
        foreign_cpus: ((busy - ours).max(0.0) / hz / secs * 100.0).round() / 100.0,
        steal_cpus: (b.steal.saturating_sub(a.steal) as f64 / hz / secs * 100.0).round() / 100.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_odd_names() {
        let line = "1234 (tokio (rt) worker) S 1 1230 1230 0 -1 4194560 100 0 0 0 250 50 0 0 20 0";
        assert_eq!(parse_stat(line), Some((1230, 300)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn samples_this_machine() {
        let a = sample(&[]);
        assert!(a.is_some(), "/proc is readable");
        let u = usage(a, sample(&[]));
        assert!(u.foreign_cpus >= 0.0 && u.steal_cpus >= 0.0);
    }
}
