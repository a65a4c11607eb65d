//! `keyway client-key` and `keyway management-token`: print only the value, so that
//! `$(keyway client-key)` works in scripts.

use keyway_core::secrets;
use keyway_proxy::{CLIENT_KEY_PREFIX, MANAGEMENT_TOKEN_PREFIX};
use serde_json::Value;

use super::Context;
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
            store.rotate(secrets::CLIENT_KEY, CLIENT_KEY_PREFIX)
        } else {
            store.get_or_create(secrets::CLIENT_KEY, CLIENT_KEY_PREFIX)
        }
    })
    .await??;
    println!("{}", key.expose());
    Ok(())
}

pub async fn management_token(ctx: &Context) -> anyhow::Result<()> {
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
