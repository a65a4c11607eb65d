//! `keyway client-key` and `keyway management-token`: print only the value, so that
//! `$(keyway client-key)` works in scripts; `--rotate` replaces it first (through a running
//! instance when there is one, so that it takes effect there at once); and the named client
//! keys.

use anyhow::anyhow;
use keyway_core::Config;
use keyway_core::client_key::{self, KeyError, Limits};
use keyway_core::secrets;
use keyway_core::state::now_ms;
use keyway_proxy::{ClientKeyView, MANAGEMENT_TOKEN_PREFIX};
use reqwest::Method;
use serde_json::{Value, json};

use super::Context;
use crate::cli::{ClientKeyCommand, LimitArgs};
use crate::instance::Instance;

pub async fn client_key(ctx: &Context, rotate: bool) -> anyhow::Result<()> {
    if rotate {
        // A running instance must learn the new key at once, so it rotates it itself.
        if let Some(instance) = Instance::find(ctx.instance_addr()?, ctx).await? {
            let answer: Value = instance.post("/client-key/rotate").await?;
            let key = answer.get("key").and_then(Value::as_str).ok_or_else(|| {
                anyhow::anyhow!("the running instance did not return the new key")
            })?;
            println!("{key}");
            return Ok(());
        }
    }
    let store = ctx.secrets().await?;
    let key = tokio::task::spawn_blocking(move || {
        if rotate {
            store.rotate(secrets::CLIENT_KEY, client_key::PREFIX)
        } else {
            store.get_or_create(secrets::CLIENT_KEY, client_key::PREFIX)
        }
    })
    .await??;
    println!("{}", key.expose());
    Ok(())
}

pub async fn management_token(ctx: &Context, rotate: bool) -> anyhow::Result<()> {
    if rotate {
        // A running instance must stop accepting the old token at once: it rotates it.
        if let Some(instance) = Instance::find(ctx.instance_addr()?, ctx).await? {
            let answer: Value = instance.post("/management-token/rotate").await?;
            let token = answer.get("token").and_then(Value::as_str).ok_or_else(|| {
                anyhow::anyhow!("the running instance did not return the new token")
            })?;
            println!("{token}");
            return Ok(());
        }
        let store = ctx.secrets().await?;
        let token = tokio::task::spawn_blocking(move || {
            store.rotate(secrets::MANAGEMENT_TOKEN, MANAGEMENT_TOKEN_PREFIX)
        })
        .await??;
        println!("{}", token.expose());
        return Ok(());
    }
    println!("{}", read_management_token(ctx).await?.expose());
    Ok(())
}

async fn read_management_token(ctx: &Context) -> anyhow::Result<keyway_core::Secret> {
    let store = ctx.secrets().await?;
    Ok(tokio::task::spawn_blocking(move || {
        store.get_or_create(secrets::MANAGEMENT_TOKEN, MANAGEMENT_TOKEN_PREFIX)
    })
    .await??)
}

/// The dashboard of the running instance (opened in the browser with `open`); with none
/// running, say how to start one.
pub async fn dashboard_url(ctx: &Context, open: bool) -> anyhow::Result<()> {
    let addr = ctx.instance_addr()?;
    if Instance::find(addr, ctx).await?.is_none() {
        anyhow::bail!(
            "Keyway is not running at {addr}; start it with `keyway --headless`, which prints the dashboard address"
        );
    }
    let token = read_management_token(ctx).await?;
    let url = crate::run::dashboard_url(addr, token.expose());
    println!("{url}");
    if open {
        open::that_detached(&url).map_err(|e| {
            anyhow::anyhow!("cannot open a browser here ({e}); open the address above")
        })?;
    }
    Ok(())
}

/// `keyway client-key add|list|revoke|limit`. With an instance running, changes go through it
/// (it starts or stops accepting the key at once); otherwise the config file and the keyring
/// are edited here.
pub async fn run(ctx: &Context, command: ClientKeyCommand) -> anyhow::Result<()> {
    let instance = Instance::find(ctx.instance_addr()?, ctx).await?;
    match command {
        ClientKeyCommand::Add { label } => {
            let key = match &instance {
                Some(i) => {
                    let body = json!({ "label": label });
                    let v: Value = i.send(Method::POST, "/client-keys", Some(&body)).await?;
                    v["key"]
                        .as_str()
                        .ok_or_else(|| anyhow!("the running instance did not return the new key"))?
                        .to_owned()
                }
                None => {
                    let path = ctx.config_path.clone();
                    let store = ctx.secrets().await?;
                    let (_, secret, _) = tokio::task::spawn_blocking(move || {
                        let _lock = super::lock(&path)?;
                        let mut doc = super::document(&path)?;
                        anyhow::Ok(client_key::add(&mut doc, &store, &label, now_ms())?)
                    })
                    .await??;
                    secret.expose().to_owned()
                }
            };
            println!("{key}");
        }
        ClientKeyCommand::List { json } => {
            let views = match &instance {
                Some(i) => i.get("/client-keys").await?,
                None => config_views(&ctx.load()?),
            };
            print_list(&views, json, instance.is_some())?;
        }
        ClientKeyCommand::Revoke { id } => {
            match &instance {
                Some(i) => {
                    let path = format!("/client-keys/{}", encode(&id));
                    i.send::<Value>(Method::DELETE, &path, None).await?;
                }
                None => {
                    let path = ctx.config_path.clone();
                    let store = ctx.secrets().await?;
                    let key = id.clone();
                    tokio::task::spawn_blocking(move || {
                        let _lock = super::lock(&path)?;
                        let mut doc = super::document(&path)?;
                        anyhow::Ok(client_key::revoke(&mut doc, &store, &key)?)
                    })
                    .await??;
                }
            }
            println!("revoked {id}");
        }
        ClientKeyCommand::Limit(args) => {
            let config = ctx.load()?;
            let current = if args.id == client_key::DEFAULT_ID {
                config
                    .client_key(&args.id)
                    .map(|k| k.limits)
                    .unwrap_or_default()
            } else {
                config
                    .client_key(&args.id)
                    .map(|k| k.limits)
                    .ok_or_else(|| anyhow!("{}", KeyError::Unknown(args.id.clone())))?
            };
            let limits = merged_limits(current, &args);
            limits
                .check()
                .map_err(|(field, message)| anyhow!("--{}: {message}", field.replace('_', "-")))?;
            match &instance {
                Some(i) => {
                    let path = format!("/client-keys/{}/limits", encode(&args.id));
                    let body = serde_json::to_value(limits)?;
                    i.send::<Value>(Method::PUT, &path, Some(&body)).await?;
                }
                None => {
                    ctx.edit(|doc| Ok(client_key::set_limits(doc, &args.id, &limits)?))?;
                }
            }
            println!("{}: {}", args.id, describe_limits(&limits));
        }
    }
    Ok(())
}

/// The key's limits after `args`: the options given replace theirs, `--clear` removes all.
fn merged_limits(current: Limits, args: &LimitArgs) -> Limits {
    if args.clear {
        return Limits::default();
    }
    Limits {
        rpm: args.rpm.or(current.rpm),
        tpm: args.tpm.or(current.tpm),
        daily_usd: args.daily_usd.or(current.daily_usd),
        monthly_usd: args.monthly_usd.or(current.monthly_usd),
        warn_only: args.warn_only.unwrap_or(current.warn_only),
    }
}

/// `60 rpm, $5.00/day (warn only)`, or `no limits`.
pub fn describe_limits(l: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(n) = l.rpm {
        parts.push(format!("{n} rpm"));
    }
    if let Some(n) = l.tpm {
        parts.push(format!("{n} tpm"));
    }
    if let Some(usd) = l.daily_usd {
        parts.push(format!("${usd:.2}/day"));
    }
    if let Some(usd) = l.monthly_usd {
        parts.push(format!("${usd:.2}/month"));
    }
    if parts.is_empty() {
        return "no limits".to_owned();
    }
    let mut text = parts.join(", ");
    if l.warn_only && (l.daily_usd.is_some() || l.monthly_usd.is_some()) {
        text.push_str(" (budgets warn only)");
    }
    text
}

/// The keys as the config knows them, when no instance runs to tell their use.
fn config_views(config: &Config) -> Vec<ClientKeyView> {
    let default = config.client_key(client_key::DEFAULT_ID);
    let mut views = vec![view_of(
        client_key::DEFAULT_ID,
        default.map_or(client_key::DEFAULT_LABEL, |k| k.label.as_str()),
        0,
        default.map(|k| k.limits).unwrap_or_default(),
    )];
    for k in config
        .client_keys
        .iter()
        .filter(|k| k.id != client_key::DEFAULT_ID)
    {
        views.push(view_of(&k.id, &k.label, k.created_ms, k.limits));
    }
    views
}

fn view_of(id: &str, label: &str, created_ms: u64, limits: Limits) -> ClientKeyView {
    ClientKeyView {
        id: id.to_owned(),
        label: label.to_owned(),
        default: id == client_key::DEFAULT_ID,
        created_ms,
        last_used_ms: None,
        limits,
        minute_requests: 0,
        minute_tokens: 0,
        day_usd: 0.0,
        month_usd: 0.0,
        over_budget: None,
    }
}

fn print_list(views: &[ClientKeyView], json: bool, live: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(views)?);
        return Ok(());
    }
    println!(
        "{:<12} {:<24} {:<17} {:<17} {:>9} {:>10}  LIMITS",
        "ID", "LABEL", "CREATED", "LAST USED", "TODAY", "THIS MONTH"
    );
    for v in views {
        let money = |usd: f64| {
            if live {
                format!("${usd:.2}")
            } else {
                "-".to_owned()
            }
        };
        println!(
            "{:<12} {:<24} {:<17} {:<17} {:>9} {:>10}  {}",
            v.id,
            v.label,
            date(v.created_ms),
            v.last_used_ms.map_or_else(
                || if live {
                    "never".to_owned()
                } else {
                    "-".to_owned()
                },
                date
            ),
            money(v.day_usd),
            money(v.month_usd),
            describe_limits(&v.limits),
        );
    }
    if !live {
        println!("(Keyway is not running: use and spend show when it is)");
    }
    Ok(())
}

/// `2026-12-06 23:41 UTC`; `-` for unknown.
fn date(ms: u64) -> String {
    if ms == 0 {
        return "-".to_owned();
    }
    jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX)).map_or_else(
        |_| "-".to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M").to_string(),
    )
}

/// A key id as a path segment: ids are `[a-z0-9_-]`, anything else is refused by the server.
pub(super) fn encode(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
