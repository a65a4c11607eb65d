//! `keyway account ...`

use std::io::{IsTerminal, Read};

use anyhow::{Context as _, anyhow, bail};
use keyway_core::account::{self, AccountKind};
use keyway_core::config::AccountConfig;
use keyway_core::secrets::{self, Secret};
use keyway_proxy::management::{AccountView, check_new_account, check_secret};

use super::{Context, clock, save};
use crate::cli::{AccountCommand, AddAccount};
use crate::instance::Instance;

pub async fn run(ctx: &Context, command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Add(add) => add_account(ctx, add).await,
        AccountCommand::List { json } => list(ctx, json).await,
        AccountCommand::Remove { id } => remove(ctx, &id).await,
        AccountCommand::Enable { id } => set_enabled(ctx, &id, true).await,
        AccountCommand::Disable { id } => set_enabled(ctx, &id, false).await,
    }
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
    let mut doc = ctx.document()?;
    let id = account::new_id(&add.provider, |id| config.account(id).is_some());
    doc.add_account(&AccountConfig {
        id: id.clone(),
        provider: add.provider.clone(),
        label: add.label.trim().to_owned(),
        kind: AccountKind::ApiKey,
        weight: add.weight,
        enabled: true,
    });
    // Validate before touching the keyring; write the secret before the config names it, so a
    // running instance that sees the new account also finds its secret.
    doc.validate().map_err(|e| anyhow!("{}", e.message))?;
    let store = ctx.secrets.clone();
    let entry = secrets::account_entry(&id);
    let value = Secret::new(secret.trim());
    tokio::task::spawn_blocking(move || store.set(&entry, &value)).await??;
    if let Err(e) = save(&doc) {
        let store = ctx.secrets.clone();
        let entry = secrets::account_entry(&id);
        let _ = tokio::task::spawn_blocking(move || store.delete(&entry)).await;
        return Err(e);
    }
    println!("{id}");
    Ok(())
}

/// Accounts with live state from a running instance, or from the config alone.
pub async fn views(ctx: &Context) -> anyhow::Result<Vec<AccountView>> {
    if let Some(instance) = Instance::find(ctx.instance_addr()?, &ctx.secrets).await? {
        return instance.get("/accounts").await;
    }
    let config = ctx.load()?;
    Ok(config
        .accounts
        .iter()
        .map(|a| AccountView {
            id: a.id.clone(),
            label: a.label.clone(),
            provider: a.provider.clone(),
            kind: a.kind,
            enabled: a.enabled,
            weight: a.weight,
            live: None,
        })
        .collect())
}

/// One word or phrase for an account's live state.
pub fn describe(view: &AccountView) -> String {
    let Some(live) = &view.live else {
        return if view.enabled {
            "not running".into()
        } else {
            "disabled".into()
        };
    };
    let field = |name: &str| live.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    if !view.enabled {
        return "disabled".into();
    }
    match field("state").as_deref() {
        Some("cooling") => {
            let until = live
                .get("cooling_until")
                .and_then(|v| v.as_u64())
                .map(clock)
                .unwrap_or_default();
            format!(
                "cooling until {until} ({})",
                field("cooling_reason").unwrap_or_default()
            )
        }
        Some("needs_attention") => format!(
            "needs attention: {}",
            field("needs_attention").unwrap_or_default()
        ),
        Some("no_secret") => "no secret in keyring".into(),
        Some(s) => s.to_owned(),
        None => "unknown".into(),
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
        println!(
            "{:<20} {:<10} {:<20} {:<8} {:>6}  {}",
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
    let mut doc = ctx.document()?;
    let Some(removed_policies) = doc.remove_account(id) else {
        bail!("no account `{id}`; see `keyway account list`");
    };
    save(&doc)?;
    for key in removed_policies {
        eprintln!(
            "policy `{key}` named only this account and was removed; its requests now follow the provider's policy"
        );
    }
    let store = ctx.secrets.clone();
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
    if let Some(instance) = Instance::find(ctx.instance_addr()?, &ctx.secrets).await? {
        let _: AccountView = instance
            .patch(
                &format!("/accounts/{id}"),
                &serde_json::json!({ "enabled": enabled }),
            )
            .await?;
    } else {
        let mut doc = ctx.document()?;
        doc.set_account_field(id, "enabled", enabled.into());
        save(&doc)?;
    }
    println!("{} {id}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}
