//! `keyway policy ...`

use anyhow::{anyhow, bail};
use indexmap::IndexMap;
use keyway_core::config::PolicyConfig;
use keyway_core::session::{Affinity, Spread};
use keyway_core::target::FallbackStep;
use keyway_core::{PolicyKey, Snapshot, StateRegistry, Strategy};
use keyway_proxy::policy_views;

use super::{Context, save};
use crate::cli::{PolicyCommand, SetPolicy};

pub async fn run(ctx: &Context, command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Set(set) => set_policy(ctx, set),
        PolicyCommand::List { json } => list(ctx, json),
        PolicyCommand::Remove { key } => remove(ctx, &key),
    }
}

fn parse_weights(raw: &[String]) -> anyhow::Result<IndexMap<String, u32>> {
    raw.iter()
        .map(|kv| {
            let (id, w) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("--weights takes id=N pairs, got `{kv}`"))?;
            let w: u32 = w
                .parse()
                .map_err(|_| anyhow!("weight of `{id}` must be a whole number, got `{w}`"))?;
            Ok((id.to_owned(), w))
        })
        .collect()
}

/// `--fallback` steps in order; `none` alone means no chain.
fn parse_fallback(raw: &[String]) -> anyhow::Result<Vec<FallbackStep>> {
    if raw.iter().any(|s| s == "none") {
        if raw.len() > 1 {
            bail!("--fallback none clears the chain; give it alone");
        }
        return Ok(Vec::new());
    }
    raw.iter()
        .map(|s| s.parse().map_err(|e: String| anyhow!("--fallback: {e}")))
        .collect()
}

fn set_policy(ctx: &Context, set: SetPolicy) -> anyhow::Result<()> {
    let key: PolicyKey = set.key.parse()?;
    let strategy: Strategy = set.strategy.parse()?;
    let policy = PolicyConfig {
        accounts: set.accounts,
        weights: parse_weights(&set.weights)?,
        spread: set.spread.parse().map_err(|e: String| anyhow!(e))?,
        affinity: match set.affinity.as_str() {
            "prefix" => Affinity::Prefix,
            _ => Affinity::Client,
        },
        session_idle_secs: set.session_idle_secs,
        fallback: parse_fallback(&set.fallback)?,
        ..PolicyConfig::new(strategy)
    };
    ctx.edit(|doc| {
        doc.set_policy(&key, &policy);
        save(doc).map(drop)
    })?;
    let spread = match policy.spread {
        Spread::Session => "",
        Spread::Request => ", every request picked on its own",
    };
    let chain: Vec<String> = policy.fallback.iter().map(ToString::to_string).collect();
    if chain.is_empty() {
        println!("{key}: {strategy}{spread}");
    } else {
        println!("{key}: {strategy}{spread}, then {}", chain.join(", then "));
    }
    Ok(())
}

fn list(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let config = ctx.load()?;
    // The same view the management API serves, built from the file.
    let snapshot = Snapshot::build(std::sync::Arc::new(config), &StateRegistry::default(), None);
    let views = policy_views(&snapshot);
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    println!("{:<24} {:<22} ACCOUNTS", "POLICY", "STRATEGY");
    for v in &views {
        let strategy = if v.configured {
            v.strategy.to_string()
        } else {
            format!("{} (default)", v.strategy)
        };
        let members: Vec<String> = v
            .members
            .iter()
            .map(|m| {
                if v.strategy.uses_weights() {
                    format!("{}×{}", m.id, m.weight)
                } else {
                    m.id.clone()
                }
            })
            .collect();
        let members = if members.is_empty() {
            "(none)".to_owned()
        } else {
            members.join(", ")
        };
        let chain = if v.fallback.is_empty() {
            String::new()
        } else {
            format!("  → {}", v.fallback.join(" → "))
        };
        println!("{:<24} {:<22} {members}{chain}", v.key, strategy);
    }
    Ok(())
}

fn remove(ctx: &Context, key: &str) -> anyhow::Result<()> {
    let key: PolicyKey = key.parse()?;
    ctx.edit(|doc| {
        if !doc.remove_policy(&key) {
            bail!("no policy `{key}` is configured; see `keyway policy list`");
        }
        save(doc).map(drop)
    })?;
    println!("removed {key}");
    Ok(())
}
