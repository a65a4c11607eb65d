//! `keyway account ...`

use std::io::{IsTerminal, Read};

use anyhow::{Context as _, anyhow, bail};
use keyway_core::Credential;
use keyway_core::account::{self, NewAccount};
use keyway_core::limits::AccountLimits;
use keyway_core::secrets::{self, Secret};
use keyway_proxy::{AccountView, Summary, check_new_account, check_secret};
use reqwest::Method;

use super::{Context, clock, save};
use crate::cli::{AccountCommand, AccountLimitArgs, AddAccount};
use crate::instance::Instance;

pub async fn run(ctx: &Context, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Add(add) => add_account(ctx, add).await,
        AccountCommand::Login(args) => super::login::login(ctx, args).await,
        AccountCommand::Import(args) => super::login::import(ctx, args).await,
        AccountCommand::List { json } => list(ctx, json).await,
        AccountCommand::Remove { id } => remove(ctx, &id).await,
        AccountCommand::Enable { id } => set_enabled(ctx, &id, true).await,
        AccountCommand::Disable { id } => set_enabled(ctx, &id, false).await,
        AccountCommand::Limit(args) => set_limits(ctx, args).await,
    }
}

/// `keyway account limit`: through a running instance (which applies the limits at once),
/// otherwise in the file. Only the limits given change, merged with the current ones under
/// the config lock (in the instance or here), so two commands at once both stay.
async fn set_limits(ctx: &Context, args: AccountLimitArgs) -> anyhow::Result<()> {
    let given = AccountLimits {
        max_concurrent: args.max_concurrent,
        rpm: args.rpm,
        tpm: args.tpm,
    };
    given
        .check()
        .map_err(|(field, message)| anyhow!("--{}: {message}", field.replace('_', "-")))?;
    if ctx.load()?.account(&args.id).is_none() {
        bail!("no account `{}`; see `keyway account list`", args.id);
    }
    let limits = match Instance::find(ctx.instance_addr()?, ctx).await? {
        Some(instance) => {
            let path = format!("/accounts/{}/limits", super::keys::encode(&args.id));
            let (method, body) = if args.clear {
                (Method::PUT, AccountLimits::default())
            } else {
                (Method::PATCH, given)
            };
            let body = serde_json::to_value(body)?;
            let view: AccountView = instance.send(method, &path, Some(&body)).await?;
            view.limits
        }
        None => ctx.edit(|doc| {
            let (_, limits) = account::change_limits(doc, &args.id, |current| {
                if args.clear {
                    AccountLimits::default()
                } else {
                    current.with(&given)
                }
            })?;
            Ok(limits)
        })?,
    };
    println!("{}: {}", args.id, limits.describe());
    Ok(())
}

/// The secret from stdin: prompted without echo on a terminal, read whole from a pipe.
fn read_secret(provider: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("API key for {provider} (input hidden): "))
            .context("cannot read the key from the terminal")
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the key from stdin")?;
        Ok(s)
    }
}

async fn add_account(ctx: &Context, add: AddAccount) -> anyhow::Result<()> {
    let config = ctx.load()?;
    // Check everything but the secret before asking for it.
    check_new_account(&config, &add.provider, &add.label).map_err(|m| anyhow!(m))?;
    if add.weight == 0 {
        bail!("--weight must be at least 1");
    }
    let secret = read_secret(&add.provider)?;
    check_secret(&secret).map_err(|m| anyhow!(m))?;
    let id = store_account(
        ctx,
        NewAccount {
            provider: add.provider,
            label: add.label.trim().to_owned(),
            weight: add.weight,
            credential: Credential::ApiKey(Secret::new(secret.trim())),
            confirm_terms: false,
        },
    )
    .await?;
    println!("{id}");
    Ok(())
}

/// Add an account to the config file and its secret to the keyring (see
/// [`keyway_core::account::add`]); a running instance picks the edit up. Returns the new id.
pub async fn store_account(ctx: &Context, new: NewAccount) -> anyhow::Result<String> {
    let path = ctx.config_path.clone();
    let store = ctx.secrets().await?;
    let id = tokio::task::spawn_blocking(move || {
        // Locked from loading the file to saving it: an edit of the running instance (or of
        // another command) cannot slip in between and be overwritten, or overwrite this one.
        let _lock = super::lock(&path)?;
        let mut doc = super::document(&path)?;
        anyhow::Ok(account::add(&mut doc, &store, new)?.0)
    })
    .await??;
    Ok(id)
}

/// Accounts with live state from a running instance, or from the config alone.
pub async fn views(ctx: &Context) -> anyhow::Result<Vec<AccountView>> {
    if let Some(instance) = Instance::find(ctx.instance_addr()?, ctx).await? {
        return instance.get("/accounts").await;
    }
    let config = ctx.load()?;
    Ok(config
        .accounts
        .iter()
        .map(|a| AccountView::new(a, None))
        .collect())
}

/// One word or phrase for an account's live state, with the reason and the tightest usage
/// window.
pub fn describe(view: &AccountView) -> String {
    let reason = |r: Option<&str>| r.unwrap_or_default().to_owned();
    let summary = view.summary();
    let state = match summary {
        Summary::Disabled => "disabled".into(),
        Summary::NotRunning => "not running".into(),
        Summary::Cooling { until, reason: r } => format!(
            "cooling until {} ({})",
            until.map(clock).unwrap_or_default(),
            reason(r)
        ),
        Summary::Limited { until, reason: r } => format!(
            "at its limit until {} ({})",
            until.map(clock).unwrap_or_default(),
            reason(r)
        ),
        Summary::NeedsAttention(r) => format!("needs attention: {}", reason(r)),
        Summary::NeedsLogin(r) => format!("needs login: {}", reason(r)),
        Summary::NoSecret => "no secret in keyring".into(),
        Summary::Serving => "serving".into(),
    };
    match view
        .tightest_window()
        .filter(|_| summary != Summary::Disabled)
    {
        Some(w) => format!(
            "{state}; {} window {:.0}% used{}",
            w.name,
            w.used_percent,
            w.resets_at
                .map(|t| format!(", resets {}", clock(t)))
                .unwrap_or_default()
        ),
        None => state,
    }
}

async fn list(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let views = views(ctx).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    if views.is_empty() {
        println!("No accounts yet. Add one with: keyway account add <provider> --label <name>");
        return Ok(());
    }
    println!(
        "{:<20} {:<10} {:<20} {:<8} {:>6}  STATE",
        "ID", "PROVIDER", "LABEL", "KIND", "WEIGHT"
    );
    for v in &views {
        let limits = if v.limits.is_empty() {
            String::new()
        } else {
            format!("; limits: {}", v.limits.describe())
        };
        println!(
            "{:<20} {:<10} {:<20} {:<8} {:>6}  {}{limits}",
            v.id,
            v.provider,
            v.label,
            v.kind,
            v.weight,
            describe(v)
        );
    }
    Ok(())
}

async fn remove(ctx: &Context, id: &str) -> anyhow::Result<()> {
    let removed_policies = ctx.edit(|doc| {
        let Some(removed) = doc.remove_account(id) else {
            bail!("no account `{id}`; see `keyway account list`");
        };
        save(doc)?;
        Ok(removed)
    })?;
    for key in removed_policies {
        eprintln!(
            "policy `{key}` named only this account and was removed; its requests now follow the provider's policy"
        );
    }
    let store = ctx.secrets().await?;
    let entry = secrets::account_entry(id);
    tokio::task::spawn_blocking(move || store.delete(&entry)).await??;
    println!("removed {id}");
    Ok(())
}

async fn set_enabled(ctx: &Context, id: &str, enabled: bool) -> anyhow::Result<()> {
    let config = ctx.load()?;
    if config.account(id).is_none() {
        bail!("no account `{id}`; see `keyway account list`");
    }
    // Through a running instance, so that enabling also clears the account's cooldown or
    // "needs attention" at once; otherwise in the file.
    if let Some(instance) = Instance::find(ctx.instance_addr()?, ctx).await? {
        let _: AccountView = instance
            .patch(
                &format!("/accounts/{id}"),
                &serde_json::json!({ "enabled": enabled }),
            )
            .await?;
    } else {
        ctx.edit(|doc| {
            if !doc.set_account_field(id, "enabled", enabled.into()) {
                bail!("no account `{id}`; see `keyway account list`");
            }
            save(doc).map(drop)
        })?;
    }
    println!("{} {id}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}
