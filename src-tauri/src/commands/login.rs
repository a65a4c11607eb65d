//! `keyway account login` and `keyway account import`: subscription accounts.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use keyway_core::account::NewAccount;
use keyway_core::{Credential, ProviderKind, ProviderRoute, Snapshot, StateRegistry};
use keyway_proxy::oauth::flow::{self, Method, Prompt};
use keyway_proxy::oauth::import::{self, Source};
use tokio::sync::mpsc;

use super::Context;
use super::account::store_account;
use crate::cli::{ImportArgs, LoginArgs};

/// The provider's login endpoints as the config sets them.
fn login_route(ctx: &Context, provider: &str) -> anyhow::Result<Snapshot> {
    let config = ctx.load()?;
    let snapshot = Snapshot::build(Arc::new(config), &StateRegistry::default(), None);
    if snapshot
        .provider(provider)
        .is_none_or(|p| p.oauth.is_none())
    {
        bail!("`{provider}` has no subscription login; use anthropic or openai");
    }
    Ok(snapshot)
}

/// Show the provider's terms risk before its first login and get a yes, unless already given.
/// Returns whether a confirmation was given now (to be recorded).
fn confirm_terms(route: &ProviderRoute, accepted_by_flag: bool) -> anyhow::Result<bool> {
    let Some(terms) = route.unconfirmed_terms(false) else {
        return Ok(false);
    };
    if accepted_by_flag {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("{terms}\nRun the command again with --accept-terms-risk to confirm.");
    }
    eprintln!("{terms}");
    eprint!("Type yes to continue: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("not confirmed; nothing was changed");
    }
    Ok(true)
}

/// Lines typed or piped on stdin, read on a plain thread (a blocked read must not keep the
/// process alive once the login is done).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if !line.trim().is_empty() && tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub async fn login(ctx: &Context, args: LoginArgs) -> anyhow::Result<()> {
    if args.label.trim().is_empty() {
        bail!("the label is empty; give the account a name you will recognise");
    }
    let snapshot = login_route(ctx, &args.provider)?;
    let route = snapshot
        .provider(&args.provider)
        .ok_or_else(|| anyhow!("unknown provider"))?;
    let confirmed = confirm_terms(route, args.accept_terms_risk)?;
    let endpoints = route
        .oauth
        .clone()
        .ok_or_else(|| anyhow!("no login endpoints"))?;
    let http = keyway_proxy::login_client(Duration::from_secs(
        snapshot.config.limits.connect_timeout_secs,
    ))?;
    let kind = route.kind;
    let method = if args.device_code {
        if kind != ProviderKind::OpenAi {
            bail!("only openai offers a device-code login; drop --device-code");
        }
        Method::DeviceCode
    } else {
        Method::Browser {
            manual: args.no_browser && kind == ProviderKind::Anthropic,
        }
    };
    let (pending, unavailable) = flow::start(&http, kind, endpoints, method).await?;
    if let Some(e) = unavailable {
        // Pasting the code still works.
        eprintln!("{e}");
    }
    match pending.prompt() {
        Prompt::EnterCode {
            user_code,
            verification_url,
        } => println!("On any device, open {verification_url} and enter the code {user_code}"),
        Prompt::OpenUrl(url) => {
            println!("Open this page to log in: {url}");
            std::io::stdout().flush()?;
            if !args.no_browser && open::that_detached(url).is_err() {
                eprintln!("(could not open a browser; open the page yourself)");
            }
            eprintln!(
                "Waiting for the login… If the browser cannot reach this machine, paste the code it shows (or the address it ends on) here and press Enter."
            );
        }
    }
    let tokens = pending.finish(&http, stdin_lines()).await?;
    let id = store_account(
        ctx,
        NewAccount {
            provider: args.provider,
            label: args.label.trim().to_owned(),
            weight: 1,
            credential: Credential::OAuth(tokens),
            confirm_terms: confirmed,
        },
    )
    .await?;
    println!("{id}");
    Ok(())
}

pub async fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let source = Source::parse(&args.source)?;
    let snapshot = login_route(ctx, source.provider())?;
    let route = snapshot
        .provider(source.provider())
        .ok_or_else(|| anyhow!("unknown provider"))?;
    let confirmed = confirm_terms(route, args.accept_terms_risk)?;
    let tokens = import::read(
        source,
        args.from.as_deref(),
        &keyway_core::paths::home_dir(),
    )?;
    let label = args
        .label
        .as_deref()
        .map(str::trim)
        .unwrap_or(source.label());
    let id = store_account(
        ctx,
        NewAccount {
            provider: source.provider().to_owned(),
            label: label.to_owned(),
            weight: 1,
            credential: Credential::OAuth(tokens),
            confirm_terms: confirmed,
        },
    )
    .await?;
    eprintln!("{}", source.sharing_warning());
    println!("{id}");
    Ok(())
}
