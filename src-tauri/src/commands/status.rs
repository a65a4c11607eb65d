//! `keyway status`

use anyhow::bail;
use serde_json::Value;

use super::Context;
use super::account::describe;
use crate::instance::Instance;
use keyway_proxy::AccountView;

pub async fn run(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let listen = ctx.instance_addr()?;
    let Some(instance) = Instance::find(listen, ctx).await? else {
        // Not running: a broken config is the more useful thing to report.
        ctx.load()?;
        bail!("Keyway is not running at {listen}; start it with `keyway --headless`");
    };
    let status: Value = instance.get("/status").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    println!(
        "Keyway {} listening on {listen}",
        status["version"].as_str().unwrap_or("?")
    );
    let path = status["config"]["path"].as_str().unwrap_or("?");
    match status["config"]["error"].as_object() {
        None => println!("config {path}: ok"),
        Some(e) => println!(
            "config {path}: edit REJECTED, the last good config keeps serving\n  {path}:{}:{}: {}",
            e.get("line").and_then(Value::as_u64).unwrap_or(0),
            e.get("column").and_then(Value::as_u64).unwrap_or(0),
            e.get("message").and_then(Value::as_str).unwrap_or("?")
        ),
    }
    match status["secrets"]["kind"].as_str() {
        Some("file") => println!(
            "secrets: the encrypted file {}",
            status["secrets"]["location"].as_str().unwrap_or("?")
        ),
        Some(_) => println!(
            "secrets: the OS keyring ({})",
            status["secrets"]["location"].as_str().unwrap_or("?")
        ),
        None => {}
    }
    if let Some(n) = status["live_sessions"].as_u64().filter(|n| *n > 0) {
        println!("{n} live session(s) bound to accounts (`keyway sessions` lists them)");
    }
    let accounts: Vec<AccountView> = serde_json::from_value(status["accounts"].clone())?;
    for a in &accounts {
        let requests = a.live.as_ref().map_or(0, |l| l.requests);
        println!(
            "  {:<20} {:<10} {:<20} {:>6} req  {}",
            a.id,
            a.provider,
            a.label,
            requests,
            describe(a)
        );
    }
    Ok(())
}
