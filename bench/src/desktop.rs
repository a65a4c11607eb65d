//! The desktop app's figures: `scripts/lib/desktop-rss.py` measures them (it plays the desktop
//! panel and the window manager on a virtual display: the tray at rest, the dashboard opened
//! from the tray menu, then closed as a window manager's × does) and `scripts/bench --desktop`
//! passes its JSON here, so they are judged and reported with the rest of the run.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;

/// The desktop app in each phase.
#[derive(Debug, Clone, Serialize)]
pub struct Desktop {
    /// Started, tray up, no window: the app at rest.
    pub rest: Phase,
    /// The dashboard window open and drawn.
    pub open: Phase,
    /// After the window was closed.
    pub closed: Phase,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Phase {
    /// VmRSS of the `keyway` process, KiB.
    pub main_rss_kib: u64,
    /// VmRSS summed over `keyway` and its descendants (the dashboard window's process and
    /// WebKit's), KiB.
    pub total_rss_kib: u64,
    /// Context switches a minute of the `keyway` process's threads, where counted (at rest
    /// and after the close).
    pub wakeups_per_min: Option<u64>,
}

/// Reads what `desktop-rss.py --json` wrote.
pub fn read(path: &Path) -> anyhow::Result<Desktop> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the desktop figures {}", path.display()))?;
    parse(&text).with_context(|| format!("{} is not desktop-rss.py's JSON", path.display()))
}

fn parse(text: &str) -> anyhow::Result<Desktop> {
    let all: Value = serde_json::from_str(text)?;
    let phase = |name: &str| -> anyhow::Result<Phase> {
        let p = all
            .get(name)
            .with_context(|| format!("no `{name}` phase"))?;
        let kib = |field: &str| {
            p.get(field)
                .and_then(Value::as_u64)
                .with_context(|| format!("`{name}` has no `{field}`"))
        };
        Ok(Phase {
            main_rss_kib: kib("main_rss_kib")?,
            total_rss_kib: kib("total_rss_kib")?,
            wakeups_per_min: p
                .get("wakeups_per_min")
                .and_then(|w| w.get("main"))
                .and_then(Value::as_u64),
        })
    };
    Ok(Desktop {
        rest: phase("rest")?,
        open: phase("window open")?,
        closed: phase("after close")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_phases() {
        let d = parse(
            r#"{
              "rest": {"main_rss_kib": 88000, "main_pss_kib": 1, "total_rss_kib": 88000, "total_pss_kib": 1,
                       "processes": [], "wakeups_per_min": {"main": 0, "children": 0, "threads": 9, "by_thread": {}}},
              "window open": {"main_rss_kib": 90000, "main_pss_kib": 1, "total_rss_kib": 400000, "total_pss_kib": 1, "processes": []},
              "after close": {"main_rss_kib": 88500, "main_pss_kib": 1, "total_rss_kib": 88500, "total_pss_kib": 1,
                              "processes": [], "wakeups_per_min": {"main": 2, "children": 0, "threads": 9, "by_thread": {}}}
            }"#,
        )
        .unwrap();
        assert_eq!(
            (d.rest.main_rss_kib, d.rest.wakeups_per_min),
            (88000, Some(0))
        );
        assert_eq!(
            (d.open.total_rss_kib, d.open.wakeups_per_min),
            (400000, None)
        );
        assert_eq!(d.closed.wakeups_per_min, Some(2));
        assert!(parse(r#"{"rest": {}}"#).is_err());
    }
}
