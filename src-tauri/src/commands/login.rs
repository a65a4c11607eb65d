//! `keyway account login` and `keyway account import`: subscription accounts.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use anyhow::{anyhow, bail};
use keyway_core::{Credential, OAuthTokens, ProviderKind, ProviderRoute, Snapshot, StateRegistry};
use keyway_proxy::logins::unconfirmed_terms;
use keyway_proxy::oauth::import::{self, Source};
use keyway_proxy::oauth::login::{self, Callback};
use keyway_proxy::oauth::token;
use tokio::sync::mpsc;

use super::Context;
use super::account::{NewAccount, store_account};
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
    let Some(terms) = unconfirmed_terms(route, false) else {
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
    let http = reqwest::Client::new();
    let kind = route.kind;

    let tokens: OAuthTokens = if args.device_code {
        if kind != ProviderKind::OpenAi {
            bail!("only openai offers a device-code login; drop --device-code");
        }
        let device = login::device_start(&http, &endpoints).await?;
        println!(
            "On any device, open {} and enter the code {}",
            device.verification_url, device.user_code
        );
        let (code, verifier, redirect) = login::device_wait(&http, &endpoints, &device).await?;
        token::exchange_code(&http, kind, &endpoints, &code, &verifier, &redirect, "")
            .await?
            .0
    } else {
        let manual = args.no_browser && kind == ProviderKind::Anthropic;
        let auth = login::authorize(kind, &endpoints, manual)?;
        let mut callback = if manual {
            None
        } else {
            match Callback::listen(
                endpoints.redirect_port,
                endpoints.redirect_path,
                auth.state.clone(),
            )
            .await
            {
                Ok(cb) => Some(cb),
                Err(e) => {
                    eprintln!("{e}");
                    None
                }
            }
        };
        println!("Open this page to log in: {}", auth.url);
        std::io::stdout().flush()?;
        if !args.no_browser && open::that_detached(&auth.url).is_err() {
            eprintln!("(could not open a browser; open the page yourself)");
        }
        eprintln!(
            "Waiting for the login… If the browser cannot reach this machine, paste the code it shows (or the address it ends on) here and press Enter."
        );
        let mut pasted = stdin_lines();
        let has_callback = callback.is_some();
        let mut from_browser = std::pin::pin!(async {
            match callback.as_mut() {
                Some(cb) => cb.code().await,
                None => std::future::pending().await,
            }
        });
        let mut stdin_open = true;
        let code = loop {
            tokio::select! {
                code = &mut from_browser, if has_callback => break code?,
                text = pasted.recv(), if stdin_open => match text {
                    Some(text) => break login::parse_pasted(&text, &auth.state)?,
                    None => stdin_open = false,
                },
                else => bail!("no way left to receive the login: the callback could not listen and stdin is closed"),
            }
        };
        token::exchange_code(
            &http,
            kind,
            &endpoints,
            &code,
            &auth.pkce.verifier,
            &auth.redirect_uri,
            &auth.state,
        )
        .await?
        .0
    };
    let new = NewAccount {
        provider: &args.provider,
        label: args.label.trim(),
        weight: 1,
        confirm_terms: confirmed,
    };
    let id = store_account(ctx, new, Credential::OAuth(tokens)).await?;
    println!("{id}");
    Ok(())
}

pub async fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let source = Source::parse(&args.source).map_err(|m| anyhow!(m))?;
    let snapshot = login_route(ctx, source.provider())?;
    let route = snapshot
        .provider(source.provider())
        .ok_or_else(|| anyhow!("unknown provider"))?;
    let confirmed = confirm_terms(route, args.accept_terms_risk)?;
    let tokens = import::read(
        source,
        args.from.as_deref(),
        &keyway_core::paths::home_dir(),
    )
    .map_err(|m| anyhow!(m))?;
    let label = args
        .label
        .as_deref()
        .map(str::trim)
        .unwrap_or(source.label());
    let new = NewAccount {
        provider: source.provider(),
        label,
        weight: 1,
        confirm_terms: confirmed,
    };
    let id = store_account(ctx, new, Credential::OAuth(tokens)).await?;
    eprintln!("{}", source.sharing_warning());
    println!("{id}");
    Ok(())
}
