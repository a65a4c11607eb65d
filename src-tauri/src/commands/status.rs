//! `keyway status`

use anyhow::bail;
use serde_json::Value;

use super::Context;
use super::account::describe;
use crate::instance::Instance;
use keyway_proxy::management::AccountView;

pub async fn run(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let config = ctx.load()?;
    let listen = ctx.listen(&config);
    let Some(instance) = Instance::find(listen, &ctx.secrets).await? else {
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
    let config_line = match status["config"]["error"].as_object() {
        None => "ok".to_owned(),
        Some(_) => format!(
            "REJECTED EDIT, last good config serving: {}",
            status["config"]["error"]["message"].as_str().unwrap_or("?")
        ),
    };
    println!(
        "config {}: {config_line}",
        status["config"]["path"].as_str().unwrap_or("?")
    );
    let accounts: Vec<AccountView> = serde_json::from_value(status["accounts"].clone())?;
    for a in &accounts {
        let requests = a
            .live
            .as_ref()
            .and_then(|l| l["requests"].as_u64())
            .unwrap_or(0);
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
