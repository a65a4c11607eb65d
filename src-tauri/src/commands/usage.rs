//! `keyway usage`: what requests used and cost, from the running instance, or from the usage
//! history in the data dir when none runs.

use anyhow::{anyhow, bail};
use keyway_core::paths;
use keyway_proxy::{History, Totals, Usage, label_usage};
use serde_json::{Map, Value, json};

use super::Context;
use crate::cli::UsageArgs;
use crate::instance::Instance;

/// The longest `--since` the history could hold.
const MAX_DAYS: u32 = 3650;

pub async fn run(ctx: &Context, args: UsageArgs) -> anyhow::Result<()> {
    let days = parse_since(&args.since)?;
    let usage: Usage = match Instance::find(ctx.instance_addr()?, ctx).await? {
        Some(instance) => instance.get(&format!("/usage?days={days}")).await?,
        None => {
            let config = ctx.load()?;
            let file = paths::history_file();
            if !file.exists() {
                bail!(
                    "no usage history at {} yet: Keyway records it while it runs",
                    file.display()
                );
            }
            let history =
                History::open(&file, &paths::usage_log_dir(), config.usage_retention_days)
                    .map_err(|e| anyhow!("{e}"))?;
            let mut usage = history.usage(days).await.map_err(|e| anyhow!("{e}"))?;
            label_usage(&mut usage, &config);
            usage
        }
    };
    let (group, rows) = match args.by.as_str() {
        "account" => ("account", &usage.by_account),
        "model" => ("model", &usage.by_model),
        "day" => ("day", &usage.by_day),
        _ => ("key", &usage.by_key),
    };
    if args.json {
        let list: Vec<Value> = rows.iter().map(|t| row_json(group, t)).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    print_table(group, rows, usage.days);
    Ok(())
}

/// `7d` → 7: local days, today included.
fn parse_since(since: &str) -> anyhow::Result<u32> {
    since
        .strip_suffix('d')
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=MAX_DAYS).contains(n))
        .ok_or_else(|| {
            anyhow!("--since takes a number of days from 1d to {MAX_DAYS}d, like 7d (today is 1d), not `{since}`")
        })
}

/// One row as `keyway usage --json` prints it: the grouping value under its own name, the
/// label beside key and account ids, the counts, and `cost_usd` (`null`: no price known).
fn row_json(group: &str, t: &Totals) -> Value {
    let mut row = Map::new();
    row.insert(group.to_owned(), json!(t.key));
    if matches!(group, "key" | "account") {
        row.insert("label".to_owned(), json!(t.label));
    }
    for (name, value) in [
        ("requests", json!(t.requests)),
        ("errors", json!(t.errors)),
        ("input_tokens", json!(t.input_tokens)),
        ("output_tokens", json!(t.output_tokens)),
        ("cache_read_tokens", json!(t.cache_read_tokens)),
        ("cache_write_tokens", json!(t.cache_write_tokens)),
        ("cost_usd", json!(t.cost_usd)),
        ("saved_usd", json!(t.saved_usd)),
        ("unpriced_requests", json!(t.unpriced)),
    ] {
        row.insert(name.to_owned(), value);
    }
    Value::Object(row)
}

fn print_table(group: &str, rows: &[Totals], days: u32) {
    let span = if days == 1 {
        "today".to_owned()
    } else {
        format!("the last {days} days")
    };
    if rows.is_empty() {
        println!("No requests {span}.");
        return;
    }
    println!(
        "{:<32} {:>9} {:>12} {:>11} {:>12} {:>12} {:>11} {:>10}",
        group.to_uppercase(),
        "REQUESTS",
        "INPUT",
        "OUTPUT",
        "CACHE READ",
        "CACHE WRITE",
        "COST",
        "SAVED"
    );
    for t in rows {
        let name = match &t.label {
            Some(label) if label != &t.key => format!("{label} ({})", t.key),
            _ if t.key.is_empty() => "-".to_owned(),
            _ => t.key.clone(),
        };
        let cost = match t.cost_usd {
            Some(usd) if t.unpriced > 0 => format!("${usd:.2}+"),
            Some(usd) => format!("${usd:.2}"),
            None if t.unpriced > 0 => "no price".to_owned(),
            None => "-".to_owned(),
        };
        println!(
            "{:<32} {:>9} {:>12} {:>11} {:>12} {:>12} {:>11} {:>10}",
            truncate(&name, 32),
            t.requests,
            t.input_tokens,
            t.output_tokens,
            t.cache_read_tokens,
            t.cache_write_tokens,
            cost,
            format!("${:.2}", t.saved_usd),
        );
    }
    println!(
        "Costs at API prices ({span}); `+`: some requests had no price; subscriptions show what their use would have cost."
    );
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_number_of_days() {
        assert_eq!(parse_since("7d").ok(), Some(7));
        assert_eq!(parse_since("1d").ok(), Some(1));
        for bad in ["0d", "7", "7h", "-1d", "99999d", ""] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
