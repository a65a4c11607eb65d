//! CPU placement of the three processes of a measurement (load generator, proxy under test,
//! fake upstream) on a small machine.
//!
//! On 2 cores, three busy processes left to the scheduler migrate and preempt each other, and
//! the figures wander from run to run. Pinning them makes runs comparable, and the same
//! placement is used for every target: the proxy under test (nginx or Keyway) always gets the
//! TARGET CPUs, the fake and the load generator always theirs.
//!
//! The default `0/1/1` gives the load generator a core of its own and puts the proxy next to
//! the fake on the other, so that:
//! - the load generator is never the limit (it drives the fake directly at about twice what
//!   either proxy reaches), so nginx and Keyway are both measured at their own cost, each
//!   sharing its core with the same fake;
//! - a proxy's hop to the fake is a context switch on one core, not a cross-core wake-up,
//!   which in a VM costs tens of microseconds and would drown the proxy's own work in the
//!   added-latency figures.
//!
//! `0/0/1` (the proxy alone on a core) was measured too: there the load generator and the fake
//! together cap every target near the direct rate, so nginx looks free (zero added latency at
//! c=16) and Keyway's c=64 figure varied by 17 % between runs. docs/PERFORMANCE.md has the
//! run-to-run spreads of both.

use std::fmt;
use std::str::FromStr;

use anyhow::bail;

/// A set of CPU numbers; `None` in [`Placement`] means "not pinned".
pub type CpuSet = Vec<usize>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub loadgen: Option<CpuSet>,
    pub fake: Option<CpuSet>,
    pub target: Option<CpuSet>,
}

impl FromStr for Placement {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(Placement {
                loadgen: None,
                fake: None,
                target: None,
            });
        }
        let parts: Vec<&str> = s.split('/').collect();
        let [l, f, t] = parts.as_slice() else {
            return Err(format!(
                "placement `{s}` is not LOADGEN/FAKE/TARGET (e.g. 0/0/1) or `none`"
            ));
        };
        Ok(Placement {
            loadgen: Some(parse_cpus(l)?),
            fake: Some(parse_cpus(f)?),
            target: Some(parse_cpus(t)?),
        })
    }
}

/// `0`, `0,1`, `0-3`, `0-1,3`.
fn parse_cpus(s: &str) -> Result<CpuSet, String> {
    let mut cpus = Vec::new();
    for part in s.split(',') {
        let bad = || format!("bad CPU list `{s}` (use e.g. 0 or 0,1 or 0-1)");
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (lo, hi),
            None => (part, part),
        };
        let lo: usize = lo.trim().parse().map_err(|_| bad())?;
        let hi: usize = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi || hi >= libc::CPU_SETSIZE as usize {
            return Err(bad());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |set: &Option<CpuSet>| match set {
            None => "any CPU".to_owned(),
            Some(cpus) if cpus.len() == 1 => format!("CPU {}", cpus[0]),
            Some(cpus) => format!(
                "CPUs {}",
                cpus.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        write!(
            f,
            "load generator on {}, fake upstream on {}, proxy under test on {}",
            show(&self.loadgen),
            show(&self.fake),
            show(&self.target)
        )
    }
}

impl Placement {
    /// Every named CPU must be online, or pinning fails later with a less helpful error.
    pub fn check(&self) -> anyhow::Result<()> {
        let online = online_cpus();
        for set in [&self.loadgen, &self.fake, &self.target]
            .into_iter()
            .flatten()
        {
            if let Some(cpu) = set.iter().find(|&&c| c >= online) {
                bail!(
                    "--placement names CPU {cpu}, but this machine has {online} (0-{}); pass \
                     --placement none or CPUs that exist",
                    online.saturating_sub(1)
                );
            }
        }
        Ok(())
    }

    /// How many CPUs the proxy under test may use: nginx gets this many workers, as Keyway's
    /// runtime gets this many threads (tokio counts the CPUs it is allowed to run on).
    pub fn target_cpus(&self) -> usize {
        self.target.as_ref().map_or_else(online_cpus, Vec::len)
    }

    /// Threads for the load generator's runtime.
    pub fn loadgen_cpus(&self) -> usize {
        self.loadgen.as_ref().map_or_else(online_cpus, Vec::len)
    }
}

/// CPUs online on the machine (not just those this process may use, which pinning narrows).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(1)
}

/// Pins the calling thread (and every thread and process it creates afterwards) to `cpus`.
/// Called on the main thread before the runtime starts, so the whole load generator follows.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Prepares a child process: pinned to `cpus` (if any) from its first instruction, in its own
/// process group (so killing the group also ends nginx's workers, and a Ctrl-C in the terminal
/// reaches only the bench, which then cleans up), and killed by the kernel if the bench dies
/// without cleaning up.
///
/// The death signal follows the *thread* that spawns the child: spawn only from threads that
/// outlive the child (the main thread, runtime workers, or a thread that reaps it first).
pub fn prepare_child(cmd: &mut std::process::Command, cpus: Option<&[usize]>) {
    use std::os::unix::process::CommandExt;

    let cpus: Option<CpuSet> = cpus.map(<[usize]>::to_vec);
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (prctl, sched_setaffinity) on memory it owns; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(cpus) = &cpus {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                for &cpu in cpus {
                    libc::CPU_SET(cpu, &mut set);
                }
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_placements() {
        let p: Placement = "0/0/1".parse().unwrap();
        assert_eq!(p.loadgen, Some(vec![0]));
        assert_eq!(p.target, Some(vec![1]));
        let p: Placement = "0-1/1/0,1".parse().unwrap();
        assert_eq!(p.loadgen, Some(vec![0, 1]));
        assert_eq!(p.target, Some(vec![0, 1]));
        assert_eq!("none".parse::<Placement>().unwrap().fake, None);
        assert!("0/1".parse::<Placement>().is_err());
        assert!("0/x/1".parse::<Placement>().is_err());
        assert!("1-0/0/0".parse::<Placement>().is_err());
    }
}
