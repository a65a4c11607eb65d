//! Did anything else use the CPU during a measurement? From /proc: the machine's busy time
//! minus the time of the processes this run started (and the bench itself), and the time
//! the hypervisor stole.
//!
//! On a 2-core machine another build or test run halves what the targets get, and the figures
//! then compare nothing. Each run records how much foreign CPU it saw, so a disturbed run is
//! flagged in the table and its targets judged "disturbed" instead of pass or miss. When
//! /proc cannot be read, nobody knows: that is [`Interference::Unknown`], never quiet.

use std::time::{Duration, Instant};

/// Busy time counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    /// user + nice + system of all CPUs, in clock ticks.
    busy: u64,
    steal: u64,
    /// utime + stime of the bench and of every process in the given process groups, plus
    /// the time of the bench's children it has reaped (the keyway instances of the start-up
    /// measurement, CLI calls), which only then show in its own stat line.
    ours: u64,
}

/// What happened between two samples, in CPUs (1.0 = one CPU busy all the time).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// CPU used by processes this run did not start.
    pub foreign_cpus: f64,
    /// CPU the hypervisor gave to other guests.
    pub steal_cpus: f64,
}

/// Foreign CPU above this (in CPUs) marks a run as disturbed in the report.
pub const DISTURBED: f64 = 0.10;

/// Whether anything else used the CPU while a figure was taken.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Interference {
    /// Other processes used at most [`DISTURBED`] CPU.
    Quiet(Usage),
    /// Other processes used more than [`DISTURBED`] CPU: the figure compares nothing.
    Disturbed(Usage),
    /// /proc could not be read before or after: nothing is known either way.
    Unknown,
}

impl Interference {
    /// What was measured, if anything.
    pub fn usage(self) -> Option<Usage> {
        match self {
            Self::Quiet(u) | Self::Disturbed(u) => Some(u),
            Self::Unknown => None,
        }
    }

    pub fn is_disturbed(self) -> bool {
        matches!(self, Self::Disturbed(_))
    }

    pub fn is_unknown(self) -> bool {
        matches!(self, Self::Unknown)
    }
}

impl From<Usage> for Interference {
    fn from(u: Usage) -> Self {
        if u.foreign_cpus > DISTURBED {
            Self::Disturbed(u)
        } else {
            Self::Quiet(u)
        }
    }
}

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
        let Some(stat) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
        else {
            continue;
        };
        if pid == me {
            ours += stat.ticks + stat.reaped_ticks;
        } else if groups.contains(&stat.pgrp) {
            ours += stat.ticks;
        }
    }
    Some(Sample {
        at: Instant::now(),
        busy,
        steal,
        ours,
    })
}

/// The CPU time (user + system, every thread, exited ones included) process `pid` has used
/// so far, to the nanosecond: its process CPU clock (`clock_getcpuclockid`). /proc/PID/stat
/// counts in clock ticks (10 ms), too coarse for a run that uses a few tens of milliseconds
/// (the SSE scenarios); it is the fallback. `None` if neither can be read.
pub fn process_time(pid: u32) -> Option<Duration> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    let mut clock: libc::clockid_t = 0;
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both calls only write to the locals they are given.
    let read = unsafe {
        libc::clock_getcpuclockid(pid, &mut clock) == 0 && libc::clock_gettime(clock, &mut now) == 0
    };
    if read {
        let secs = u64::try_from(now.tv_sec).ok()?;
        let nanos = u32::try_from(now.tv_nsec).ok()?;
        return Some(Duration::new(secs, nanos));
    }
    let stat = parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&hz| hz > 0)?;
    Some(Duration::from_nanos(
        stat.ticks.saturating_mul(1_000_000_000) / hz,
    ))
}

/// What a /proc/PID/stat line says of one process.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    pgrp: i32,
    /// utime + stime.
    ticks: u64,
    /// cutime + cstime: its children that it has waited for.
    reaped_ticks: u64,
}

fn parse_stat(stat: &str) -> Option<Stat> {
    // The command name (field 2) may contain spaces and parentheses: skip past its last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): pgrp is field 5, utime 14, stime 15, cutime 16, cstime 17.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        pgrp: fields.get(2)?.parse().ok()?,
        ticks: field(14)? + field(15)?,
        reaped_ticks: field(16)? + field(17)?,
    })
}

/// How much CPU others used between two samples; unknown unless both were taken.
pub fn interference(before: Option<Sample>, after: Option<Sample>) -> Interference {
    let (Some(a), Some(b)) = (before, after) else {
        return Interference::Unknown;
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    between(a, b, hz).into()
}

fn between(a: Sample, b: Sample, hz: f64) -> Usage {
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
        let line = "1234 (tokio (rt) worker) S 1 1230 1230 0 -1 4194560 100 0 0 0 250 50 7 3 20 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pgrp: 1230,
                ticks: 300,
                reaped_ticks: 10
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_a_process_cpu_time() {
        let before = process_time(std::process::id()).expect("own CPU clock readable");
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = process_time(std::process::id()).expect("own CPU clock readable");
        // The spin shows (on a busy machine it may get well under its 50 ms of wall time).
        assert!(after > before, "{before:?} → {after:?}");
        assert_eq!(process_time(u32::MAX), None);
        // Another process's too (Keyway is the bench's child).
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        let theirs = process_time(child.id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            theirs.is_some_and(|t| t < Duration::from_secs(1)),
            "{theirs:?}"
        );
    }

    #[test]
    fn samples_this_machine() {
        let a = sample(&[]);
        assert!(a.is_some(), "/proc is readable");
        let u = interference(a, sample(&[])).usage().expect("measured");
        assert!(u.foreign_cpus >= 0.0 && u.steal_cpus >= 0.0);
    }

    fn at(start: Instant, secs: u64, busy: u64, ours: u64) -> Sample {
        Sample {
            at: start + std::time::Duration::from_secs(secs),
            busy,
            steal: 0,
            ours,
        }
    }

    #[test]
    fn foreign_time_over_the_threshold_is_disturbed() {
        let t = Instant::now();
        // 10 s at 100 ticks/s: 300 busy ticks, 250 ours, so others used 0.05 CPU.
        let quiet = between(at(t, 0, 1000, 500), at(t, 10, 1300, 750), 100.0);
        assert_eq!(quiet.foreign_cpus, 0.05);
        assert!(matches!(Interference::from(quiet), Interference::Quiet(_)));
        // 500 busy, 250 ours: others used 0.25 CPU.
        let busy = between(at(t, 0, 1000, 500), at(t, 10, 1500, 750), 100.0);
        assert_eq!(busy.foreign_cpus, 0.25);
        assert!(Interference::from(busy).is_disturbed());
        // Ours can exceed the machine's busy time (children reaped late): never negative.
        let late = between(at(t, 0, 1000, 500), at(t, 10, 1100, 900), 100.0);
        assert_eq!(late.foreign_cpus, 0.0);
    }

    #[test]
    fn a_missing_sample_is_unknown_not_quiet() {
        let s = sample(&[]);
        assert!(interference(None, s).is_unknown());
        assert!(interference(s, None).is_unknown());
        assert!(interference(None, None).usage().is_none());
    }
}
