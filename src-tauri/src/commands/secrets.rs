//! `keyway secrets migrate --to os|file`

use anyhow::{anyhow, bail};
use keyway_core::paths;
use keyway_core::secrets::{self, StoreKind};

use super::{Context, save};
use crate::cli::SecretsCommand;
use crate::instance;

pub async fn run(ctx: &Context, command: SecretsCommand) -> anyhow::Result<()> {
    match command {
        SecretsCommand::Migrate { to } => {
            migrate(ctx, to.parse().map_err(|e| anyhow!("{e}"))?).await
        }
    }
}

/// Move every secret of the config to the store `to`: copy and verify each, record the choice
/// in the config, then remove them from the store they left (the encrypted file is deleted
/// whole). A failure before the config is saved leaves the old store as it was.
async fn migrate(ctx: &Context, to: StoreKind) -> anyhow::Result<()> {
    let addr = ctx.instance_addr()?;
    if paths::instance_file().exists() && instance::listening(addr).await {
        bail!(
            "Keyway is running at {addr} with its secrets open; stop it first (it would keep using the old store), then migrate and start it again"
        );
    }
    // No other edit of the config between reading which secrets it names and recording the
    // new store.
    let path = ctx.config_path.clone();
    let _lock = tokio::task::spawn_blocking(move || super::lock(&path)).await??;
    let config = ctx.load()?;
    let mut doc = super::document(&ctx.config_path)?;
    let from = ctx.secrets().await?;
    if from.kind() == to {
        bail!(
            "the secrets are already in {}; nothing to move",
            from.describe()
        );
    }
    let options = ctx.secrets_options.clone();
    let names = secrets::entries_of(&config);
    let source = from.clone();
    let (dest, copied) = tokio::task::spawn_blocking(move || {
        let dest = crate::secrets::open_kind(&options, to)?;
        let copied = secrets::copy_verified(&source, &dest, &names)?;
        anyhow::Ok((dest, copied))
    })
    .await??;
    doc.set_setting("secrets", to.as_str().into());
    save(&doc).map_err(|e| {
        anyhow!(
            "{e}\nthe secrets were copied to {} but the config could not record the choice; they are still in {} as well",
            dest.describe(),
            from.describe()
        )
    })?;
    let source = from.clone();
    let moved = copied.copied.clone();
    tokio::task::spawn_blocking(move || remove_from(&source, &moved)).await??;
    for name in &copied.absent {
        eprintln!("{name}: no secret in {} (nothing to move)", from.describe());
    }
    println!(
        "moved {} secrets from {} to {}; the config now says secrets = \"{to}\"",
        copied.copied.len(),
        from.describe(),
        dest.describe()
    );
    Ok(())
}

/// Remove the moved entries from the store they left. The encrypted file goes whole, so that
/// the default choice never finds it again.
fn remove_from(store: &keyway_core::SecretStore, names: &[String]) -> anyhow::Result<()> {
    match store.kind() {
        StoreKind::Os => {
            for name in names {
                store.delete(name)?;
            }
        }
        StoreKind::File => {
            let dir = paths::secrets_dir();
            for file in secrets::file::files(&dir) {
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => bail!(
                        "the secrets moved, but {} could not be removed: {e}; delete it yourself",
                        file.display()
                    ),
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
    Ok(())
}
