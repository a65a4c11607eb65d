//! The `keyway` binary: the command line, `--headless`, and (with the `desktop` feature) the
//! desktop app.

mod cli;
mod commands;
#[cfg(feature = "desktop")]
mod desktop;
mod instance;
mod logging;
mod memory;
mod run;
mod secrets;
mod service;
#[cfg(feature = "desktop")]
mod toolkit;
#[cfg(feature = "desktop")]
mod window_input;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use keyway_core::paths;

use cli::{Cli, Command};
use commands::Context;

/// Many small, short-lived allocations per proxied request; ARCHITECTURE.md says why this one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let secrets =
        match secrets::SecretsOptions::new(cli.secrets.as_deref(), cli.secrets_key_file.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::FAILURE;
            }
        };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The desktop app owns the main thread (the GUI's event loop); everything else is async.
    let result = if cli.command.is_none() && !cli.headless {
        let opts = run::RunOptions {
            config_path: cli.config.unwrap_or_else(paths::default_config_path),
            listen: cli.listen,
            secrets,
        };
        desktop(runtime, opts)
    } else {
        runtime.block_on(dispatch(cli, secrets))
    };
    exit_code(result)
}

fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli, secrets: secrets::SecretsOptions) -> anyhow::Result<()> {
    let config_path = cli.config.unwrap_or_else(paths::default_config_path);
    let Some(command) = cli.command else {
        return run::headless(run::RunOptions {
            config_path,
            listen: cli.listen,
            secrets,
        })
        .await;
    };
    let ctx = Context::new(config_path, cli.listen, secrets);
    logging::init_cli();
    match command {
        Command::Account(c) => commands::account::run(&ctx, c).await,
        Command::Policy(c) => commands::policy::run(&ctx, c).await,
        Command::ClientKey { rotate, command } => match command {
            None => commands::keys::client_key(&ctx, rotate).await,
            Some(c) => commands::keys::run(&ctx, c).await,
        },
        Command::Usage(args) => commands::usage::run(&ctx, args).await,
        Command::Alias(c) => commands::alias::run(&ctx, c),
        Command::ManagementToken { rotate } => commands::keys::management_token(&ctx, rotate).await,
        Command::DashboardUrl { open } => commands::keys::dashboard_url(&ctx, open).await,
        Command::Status { json } => commands::status::run(&ctx, json).await,
        Command::Sessions { json } => commands::sessions::run(&ctx, json).await,
        Command::Secrets(c) => commands::secrets::run(&ctx, c).await,
        Command::Service(c) => commands::service::run(&ctx, c).await,
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(())
        }
    }
}

#[cfg(feature = "desktop")]
fn desktop(runtime: tokio::runtime::Runtime, opts: run::RunOptions) -> anyhow::Result<()> {
    desktop::run(runtime, opts)
}

#[cfg(not(feature = "desktop"))]
fn desktop(_runtime: tokio::runtime::Runtime, _opts: run::RunOptions) -> anyhow::Result<()> {
    anyhow::bail!(
        "this build has no desktop app (built without the `desktop` feature); run `keyway --headless`"
    )
}
