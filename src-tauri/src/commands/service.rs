//! `keyway service install|uninstall|status`: Keyway headless as a service of the user's
//! session (see [`crate::service`] for what is written).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use keyway_core::secrets::{self, KeySource, StoreKind};
use keyway_core::{SecretStore, paths};

use super::Context;
use crate::cli::ServiceCommand;
use crate::service::{self, Spec, UNIT_NAME};

/// Longest wait for `systemctl` or `launchctl`.
const TOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a freshly started service to listen.
const START_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn run(ctx: &Context, command: ServiceCommand) -> anyhow::Result<()> {
    match command {
        ServiceCommand::Install { print } => install(ctx, print).await,
        ServiceCommand::Uninstall => uninstall().await,
        ServiceCommand::Status => status().await,
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot resolve a relative path")?
        .join(path))
}

/// What the service will run: this binary, this config, this secret store (checked to open
/// the way the service will open it, so that a missing or wrong key shows now, not in the
/// journal), `--listen` if given.
async fn spec(ctx: &Context, check: bool) -> anyhow::Result<Spec> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let config_path = absolute(&ctx.config_path)?;
    let options = ctx.secrets_options.clone();
    let chosen = secrets::choose(options.chosen(&config_path), &paths::secrets_dir());
    if let Some(notice) = &chosen.notice {
        eprintln!("{notice}");
    }
    let key_file = match chosen.kind {
        StoreKind::Os => None,
        StoreKind::File => match options.key_file() {
            Some(path) => Some(absolute(&path)?),
            None if check => bail!(
                "the service must open the encrypted secrets file without anyone to type its passphrase: \
                 put the passphrase in a file only you can read, and give its path:\n  \
                 install -m 600 /dev/null ~/.config/keyway/secrets.key\n  \
                 read -rs -p 'Passphrase: ' P && printf '%s' \"$P\" > ~/.config/keyway/secrets.key; unset P\n  \
                 keyway service install --secrets-key-file ~/.config/keyway/secrets.key"
            ),
            None => None,
        },
    };
    if check {
        let kind = chosen.kind;
        let key = key_file.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<SecretStore> {
            let service = secrets::service_from_env();
            Ok(match (kind, key) {
                (StoreKind::File, Some(path)) => {
                    SecretStore::file(service, &paths::secrets_dir(), &KeySource::File(path))?
                }
                _ => SecretStore::os(service)?,
            })
        })
        .await??;
    }
    let mut env = vec![
        (
            "KEYWAY_CONFIG".to_owned(),
            config_path.display().to_string(),
        ),
        ("KEYWAY_SECRETS".to_owned(), chosen.kind.to_string()),
    ];
    for var in ["KEYWAY_DATA_DIR", "KEYWAY_KEYRING_SERVICE"] {
        if let Ok(value) = std::env::var(var) {
            let value = if var == "KEYWAY_DATA_DIR" {
                absolute(Path::new(&value))?.display().to_string()
            } else {
                value
            };
            env.push((var.to_owned(), value));
        }
    }
    Ok(Spec {
        exe,
        listen: ctx.listen_override,
        env,
        key_file,
        log_dir: paths::log_dir(),
    })
}

/// The outcome of a service manager command.
struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn why(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            self.stdout.trim()
        } else {
            self.stderr.trim()
        };
        text.lines().next().unwrap_or("no output").to_owned()
    }
}

async fn tool(program: &str, args: &[&str]) -> anyhow::Result<Ran> {
    let mut command = tokio::process::Command::new(program);
    command.args(args).kill_on_drop(true);
    let out = tokio::time::timeout(TOOL_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            anyhow!(
                "`{program} {}` did not answer within {}s",
                args.join(" "),
                TOOL_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("cannot run `{program}`"))?;
    Ok(Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

async fn systemctl(args: &[&str]) -> anyhow::Result<Ran> {
    let mut all = vec!["--user"];
    all.extend_from_slice(args);
    tool("systemctl", &all).await
}

/// Whether a systemd user manager answers; `Err` says why not.
async fn user_manager() -> Result<(), String> {
    match systemctl(&["show-environment"]).await {
        Ok(r) if r.ok => Ok(()),
        Ok(r) => Err(r.why()),
        Err(e) => Err(format!("{e:#}")),
    }
}

async fn install(ctx: &Context, print: bool) -> anyhow::Result<()> {
    let spec = spec(ctx, !print).await?;
    if cfg!(windows) {
        bail!(
            "Windows has no service Keyway installs itself; start it at logon with a scheduled task:\n  {}",
            service::windows_task_command(&spec.exe, spec.listen)
        );
    }
    let (path, text) = if cfg!(target_os = "macos") {
        (service::plist_path(), service::launchd_plist(&spec))
    } else {
        (service::unit_path(), service::systemd_unit(&spec))
    };
    if print {
        print!("{text}");
        return Ok(());
    }
    keyway_core::edit::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    if cfg!(target_os = "macos") {
        return launchd_start(&path).await;
    }
    if let Err(why) = user_manager().await {
        bail!(
            "no systemd user manager answers here ({why}), so the unit is written but not started. \
             In a login session run `systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}`"
        );
    }
    for args in [
        &["daemon-reload"][..],
        &["enable", UNIT_NAME],
        &["restart", UNIT_NAME],
    ] {
        let r = systemctl(args).await?;
        if !r.ok {
            bail!("`systemctl --user {}` failed: {}", args.join(" "), r.why());
        }
    }
    wait_listening(ctx, &spec).await?;
    println!(
        "{UNIT_NAME} is enabled and running; logs: `journalctl --user -u keyway` and {}",
        spec.log_dir.display()
    );
    linger_hint().await;
    Ok(())
}

/// Wait (bounded) until the started service listens, or say where to look.
async fn wait_listening(ctx: &Context, spec: &Spec) -> anyhow::Result<()> {
    let addr = match spec.listen {
        Some(addr) => addr,
        None => ctx.load()?.listen,
    };
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if crate::instance::listening(addr).await {
            println!("listening on http://{addr}");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!(
        "the service did not listen on {addr} within {}s; see `systemctl --user status {UNIT_NAME}` and `journalctl --user -u keyway`",
        START_TIMEOUT.as_secs()
    )
}

/// User services run while the user is logged in, unless lingering is on.
async fn linger_hint() {
    let user = std::env::var("USER").unwrap_or_default();
    if user.is_empty() {
        return;
    }
    if let Ok(r) = tool(
        "loginctl",
        &["show-user", &user, "--property=Linger", "--value"],
    )
    .await
        && r.ok
        && r.stdout.trim() == "no"
    {
        println!(
            "It runs while you are logged in. To start it at boot without a login: `loginctl enable-linger {user}`"
        );
    }
}

async fn uid() -> anyhow::Result<String> {
    let r = tool("id", &["-u"]).await?;
    Ok(r.stdout.trim().to_owned())
}

async fn launchd_start(plist: &Path) -> anyhow::Result<()> {
    let domain = format!("gui/{}", uid().await?);
    // Replace a loaded agent of the same label; absent is fine.
    let _ = tool(
        "launchctl",
        &["bootout", &format!("{domain}/{}", service::LAUNCHD_LABEL)],
    )
    .await;
    let r = tool(
        "launchctl",
        &["bootstrap", &domain, &plist.display().to_string()],
    )
    .await?;
    if !r.ok {
        bail!("`launchctl bootstrap {domain}` failed: {}", r.why());
    }
    println!("{} is loaded and running", service::LAUNCHD_LABEL);
    Ok(())
}

async fn uninstall() -> anyhow::Result<()> {
    if cfg!(windows) {
        bail!("remove the scheduled task with: schtasks /Delete /TN Keyway");
    }
    if cfg!(target_os = "macos") {
        let path = service::plist_path();
        let domain = format!("gui/{}", uid().await?);
        let _ = tool(
            "launchctl",
            &["bootout", &format!("{domain}/{}", service::LAUNCHD_LABEL)],
        )
        .await;
        return remove_file(&path);
    }
    let path = service::unit_path();
    match user_manager().await {
        Ok(()) => {
            let r = systemctl(&["disable", "--now", UNIT_NAME]).await?;
            if !r.ok && path.exists() {
                eprintln!("`systemctl --user disable --now {UNIT_NAME}`: {}", r.why());
            }
            remove_file(&path)?;
            let _ = systemctl(&["daemon-reload"]).await;
        }
        Err(why) => {
            remove_file(&path)?;
            eprintln!(
                "no systemd user manager answers here ({why}); if the service runs in another session, stop it there with `systemctl --user stop {UNIT_NAME}`"
            );
        }
    }
    Ok(())
}

fn remove_file(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            println!("removed {}", path.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("not installed ({} does not exist)", path.display());
            Ok(())
        }
        Err(e) => Err(anyhow!("cannot remove {}: {e}", path.display())),
    }
}

async fn status() -> anyhow::Result<()> {
    if cfg!(windows) {
        bail!("see the scheduled task with: schtasks /Query /TN Keyway");
    }
    if cfg!(target_os = "macos") {
        let path = service::plist_path();
        println!(
            "{}: {}",
            path.display(),
            if path.exists() {
                "installed"
            } else {
                "not installed"
            }
        );
        let domain = format!("gui/{}", uid().await?);
        let r = tool(
            "launchctl",
            &["print", &format!("{domain}/{}", service::LAUNCHD_LABEL)],
        )
        .await?;
        println!("{}", if r.ok { "loaded" } else { "not loaded" });
        return Ok(());
    }
    let path = service::unit_path();
    println!(
        "{}: {}",
        path.display(),
        if path.exists() {
            "installed"
        } else {
            "not installed"
        }
    );
    match user_manager().await {
        Ok(()) => {
            let enabled = systemctl(&["is-enabled", UNIT_NAME]).await?;
            let active = systemctl(&["is-active", UNIT_NAME]).await?;
            println!(
                "{UNIT_NAME}: {}, {}",
                enabled.stdout.trim(),
                active.stdout.trim()
            );
        }
        Err(why) => println!("no systemd user manager answers here ({why})"),
    }
    Ok(())
}
