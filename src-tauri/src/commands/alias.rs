//! `keyway alias ...`: edits the config file; a running instance picks the edit up.

use anyhow::{anyhow, bail};
use keyway_core::target::Target;
use serde_json::json;

use super::{Context, save};
use crate::cli::AliasCommand;

pub fn run(ctx: &Context, command: AliasCommand) -> anyhow::Result<()> {
    match command {
        AliasCommand::Set { glob, target } => {
            let target: Target = target.parse().map_err(|e: String| anyhow!(e))?;
            ctx.edit(|doc| {
                doc.set_alias(&glob, &target);
                save(doc).map(drop)
            })?;
            println!("{glob} → {target}");
        }
        AliasCommand::List { json } => {
            let config = ctx.load()?;
            if json {
                let list: Vec<_> = config
                    .aliases
                    .iter()
                    .map(|(glob, to)| json!({ "glob": glob, "to": to.to_string() }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            if config.aliases.is_empty() {
                println!("No aliases: every model goes where its name leads.");
            }
            for (glob, to) in &config.aliases {
                println!("{glob:<32} → {to}");
            }
        }
        AliasCommand::Remove { glob } => {
            ctx.edit(|doc| {
                if !doc.remove_alias(&glob) {
                    bail!("no alias `{glob}`; see `keyway alias list`");
                }
                save(doc).map(drop)
            })?;
            println!("removed {glob}");
        }
    }
    Ok(())
}
