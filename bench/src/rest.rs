//! What a process does at rest, from /proc: how often its threads wake up (context switches,
//! voluntary and not: a timer, a poll, a lock) and the CPU time it uses, over a window in which
//! nothing is asked of it.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::cpu;

/// A process at rest over a window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rest {
    /// Context switches per minute, summed over the threads alive at both ends of the window
    /// (a thread that ends inside it, such as an idle blocking-pool thread timing out, is a
    /// departure, not a periodic wake-up).
    pub wakeups_per_min: f64,
    /// CPU time per minute (user + system, every thread), ms.
    pub cpu_ms_per_min: f64,
    /// The window, s.
    pub window_secs: f64,
}

/// Watches `pid` for `window` while nothing is sent to it.
pub async fn measure(pid: u32, window: Duration) -> anyhow::Result<Rest> {
    let cpu_before = cpu::process_time(pid).context("cannot read the process's CPU time")?;
    let before = switches(pid)?;
    tokio::time::sleep(window).await;
    let after = switches(pid)?;
    let cpu_after = cpu::process_time(pid).context("cannot read the process's CPU time")?;
    let woke: u64 = after
        .iter()
        .filter_map(|(tid, n)| Some(n.saturating_sub(*before.get(tid)?)))
        .sum();
    let per_min = 60.0 / window.as_secs_f64();
    Ok(Rest {
        wakeups_per_min: woke as f64 * per_min,
        cpu_ms_per_min: cpu_after.saturating_sub(cpu_before).as_secs_f64() * 1000.0 * per_min,
        window_secs: window.as_secs_f64(),
    })
}

/// Each thread's context switches so far, by thread id.
fn switches(pid: u32) -> anyhow::Result<HashMap<u32, u64>> {
    let dir = format!("/proc/{pid}/task");
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {dir}"))? {
        let entry = entry.with_context(|| format!("cannot list {dir}"))?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread that ended since the listing has no status left: it is not counted.
        if let Ok(status) = std::fs::read_to_string(entry.path().join("status"))
            && let Some(n) = parse_switches(&status)
        {
            out.insert(tid, n);
        }
    }
    Ok(out)
}

/// voluntary + nonvoluntary context switches from a /proc status file.
fn parse_switches(status: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("voluntary_ctxt_switches:")? + field("nonvoluntary_ctxt_switches:")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_of_switch() {
        let status =
            "Name:\tkeyway\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(parse_switches(status), Some(15));
        assert_eq!(parse_switches("Name:\tkeyway\n"), None);
    }

    /// A process that sleeps wakes up never; one that runs a command every 10 ms, each time.
    #[tokio::test]
    async fn counts_the_wake_ups_of_a_process() {
        let mut sleeping = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut ticking = std::process::Command::new("sh")
            .args(["-c", "while :; do sleep 0.01; done"])
            .spawn()
            .unwrap();
        let window = Duration::from_millis(500);
        // Past its start (exec, loading): its switch count stops moving once it sleeps.
        let mut seen = switches(sleeping.id()).unwrap();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = switches(sleeping.id()).unwrap();
            if now == seen {
                break;
            }
            seen = now;
        }
        let quiet = measure(sleeping.id(), window).await.unwrap();
        let busy = measure(ticking.id(), window).await.unwrap();
        for child in [&mut sleeping, &mut ticking] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        assert_eq!(quiet.wakeups_per_min, 0.0, "{quiet:?}");
        // At most 50 commands in the window, each a wake-up of the shell: 6,000 a minute.
        assert!(busy.wakeups_per_min >= 1_200.0, "{busy:?}");
    }
}
