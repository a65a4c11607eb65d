//! `keyway sessions`

use anyhow::bail;
use keyway_core::state::now_ms;
use keyway_proxy::SessionView;

use super::Context;
use crate::instance::Instance;

pub async fn run(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let listen = ctx.instance_addr()?;
    let Some(instance) = Instance::find(listen, ctx).await? else {
        bail!(
            "Keyway is not running at {listen}; sessions exist only in a running instance (start it with `keyway --headless`)"
        );
    };
    let sessions: Vec<SessionView> = instance.get("/sessions").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&sessions)?);
        return Ok(());
    }
    if sessions.is_empty() {
        println!("No live sessions.");
        return Ok(());
    }
    let now = now_ms();
    println!(
        "{:<22} {:<26} {:<20} {:>5} {:>9} {:>9} {:>12}  SINCE",
        "CLIENT", "SOURCE", "ACCOUNT", "MOVES", "REQUESTS", "LAST SEEN", "CACHE READ"
    );
    for s in &sessions {
        let share = if s.input_tokens > 0 {
            format!(
                "{:.0}%",
                s.cache_read_tokens.min(s.input_tokens) as f64 * 100.0 / s.input_tokens as f64
            )
        } else {
            "-".to_owned()
        };
        println!(
            "{:<22} {:<26} {:<20} {:>5} {:>9} {:>9} {:>12}  {}",
            truncate(s.client.as_deref().unwrap_or("-"), 22),
            s.source.as_str(),
            truncate(s.account_label.as_deref().unwrap_or(&s.account), 20),
            s.moves,
            s.requests,
            ago(now, s.last_seen_ms),
            share,
            ago(now, s.since_ms),
        );
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

/// `12s`, `4m`, `2h`: how long before `now` (ms) `then` was.
fn ago(now: u64, then: u64) -> String {
    let secs = now.saturating_sub(then) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}
