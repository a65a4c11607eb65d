//! One Keyway environment for the dashboard's browser tests (`ui/e2e/`): the fake upstream
//! in-process, `keyway --headless` on a temp config, data dir, keyring service and home.
//!
//! `e2e-env [--account PROVIDER:LABEL:SECRET]... [--login-as NAME] [--config TOML]` adds the
//! API-key accounts with the CLI (so their secrets land in the keyring), starts Keyway, prints
//! one JSON line to stdout and serves until its stdin closes or it gets SIGTERM/SIGINT; then it
//! stops Keyway gracefully and exits 0. The line:
//!
//! ```json
//! {"url": "http://127.0.0.1:PORT", "dashboard": "http://127.0.0.1:PORT/#token=…",
//!  "token": "…", "client_key": "kw-…", "home": "/tmp/…/home", "fake": "http://127.0.0.1:FPORT",
//!  "redirect_uri_anthropic": "http://localhost:P/callback",
//!  "redirect_uri_openai": "http://localhost:P/auth/callback",
//!  "config": "/tmp/…/config.toml", "data_dir": "/tmp/…/data", "log": "/tmp/…/stderr.log",
//!  "accounts": [{"id": "anthropic-1a2b3c", "provider": "anthropic", "label": "Work",
//!                "secret": "sk-ant-work"}]}
//! ```
//!
//! Every provider points at the fake, which answers `served by <api key>`; its Claude and
//! ChatGPT authorization servers log browser logins into the fake account `--login-as`
//! (default `default`). Keyway's `HOME` is the temp `home`, so connecting a tool writes there.
//! The binary is `$KEYWAY_BIN`, else `target/debug/keyway`. On failure stderr says why and
//! where Keyway's log is.

use std::io::{Read, Write};
use std::process::ExitCode;

use keyway_tests::{FakeUpstream, Provider, Setup};
use serde_json::json;

const USAGE: &str = "usage: e2e-env [--account PROVIDER:LABEL:SECRET]... [--key PROVIDER:KEY]...\n\
    \x20              [--login-as NAME] [--config TOML]\n\
    \n\
    Starts a fake upstream and `keyway --headless` against it, prints one JSON line\n\
    (url, dashboard, token, client_key, home, fake, redirect URIs, accounts) and runs\n\
    until stdin closes or SIGTERM; then stops Keyway and exits.\n\
    \n\
    --account P:L:S  add an API-key account (provider, label, secret) before start; the\n\
    \x20                fake accepts the secret as a key of that provider\n\
    --key P:K        the fake accepts K as a key of provider P (for keys a test adds\n\
    \x20                through the dashboard); other keys get the provider's refusal\n\
    --login-as NAME  the fake OAuth account browser logins log into (default `default`)\n\
    --config TOML    extra config text, placed before the providers";

struct Args {
    accounts: Vec<(String, String, String)>,
    keys: Vec<(Provider, String)>,
    login_as: Option<String>,
    config: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("e2e-env: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let fake = FakeUpstream::start().await;
    for (provider, key) in &args.keys {
        fake.register_key(*provider, key);
    }
    for (provider, _, secret) in &args.accounts {
        match provider.parse::<Provider>() {
            Ok(provider) => fake.register_key(provider, secret),
            Err(e) => {
                eprintln!("e2e-env: --account: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let setup = Setup::new(&fake.base_url(), &args.config).with_home();
    fake.openai_oauth()
        .set_redirect_uris(Some(&[&setup.redirect_uri("openai")]));
    if let Some(name) = &args.login_as {
        fake.claude_oauth().login_as(name);
        fake.openai_oauth().login_as(name);
    }
    let mut accounts = Vec::new();
    for (provider, label, secret) in &args.accounts {
        let out = setup
            .cli_with_stdin(&["account", "add", provider, "--label", label], secret)
            .await;
        if out.code != Some(0) {
            eprintln!("e2e-env: cannot add account {provider}:{label}: {out:?}");
            return ExitCode::FAILURE;
        }
        let id = out
            .stdout
            .trim()
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        accounts.push(json!({"id": id, "provider": provider, "label": label, "secret": secret}));
    }

    let mut keyway = setup.start().await;
    let home = keyway.setup.home().expect("a home").to_path_buf();
    let line = json!({
        "url": keyway.url(""),
        "dashboard": keyway.url(&format!("/#token={}", keyway.management_token)),
        "token": keyway.management_token,
        "client_key": keyway.client_key,
        "home": home,
        "fake": fake.base_url(),
        "redirect_uri_anthropic": keyway.setup.redirect_uri("anthropic"),
        "redirect_uri_openai": keyway.setup.redirect_uri("openai"),
        "config": keyway.setup.config_path,
        "data_dir": keyway.setup.data_dir(),
        "log": keyway.stderr_log(),
        "accounts": accounts,
    });
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
    drop(stdout);

    wait_for_end().await;

    // Kept until Keyway is known to have stopped cleanly, so a failure's log can be read.
    keyway.setup.keep_on_drop(true);
    let dir = keyway.setup.dir().to_path_buf();
    let log = keyway.stderr_log().to_path_buf();
    match keyway.stop().await {
        Some(0) => {
            let _ = std::fs::remove_dir_all(&dir);
            ExitCode::SUCCESS
        }
        code => {
            eprintln!(
                "e2e-env: keyway exited with {code:?} on SIGTERM; its log: {} (and {}/data/logs)",
                log.display(),
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Stdin closed (the test ended, or died), SIGTERM or Ctrl-C.
async fn wait_for_end() {
    // A plain thread: tokio's stdin needs a feature the workspace does not enable.
    let (closed, stdin_closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        let _ = closed.send(());
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = stdin_closed => {}
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `Ok(None)` means help was asked for.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut out = Args {
        accounts: Vec::new(),
        keys: Vec::new(),
        login_as: None,
        config: String::new(),
    };
    let mut args = args;
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "-h" | "--help" => return Ok(None),
            "--account" => {
                let spec = value()?;
                let mut parts = spec.splitn(3, ':');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(p), Some(l), Some(s))
                        if !p.is_empty() && !l.is_empty() && !s.is_empty() =>
                    {
                        out.accounts
                            .push((p.to_owned(), l.to_owned(), s.to_owned()));
                    }
                    _ => {
                        return Err(format!(
                            "bad --account `{spec}`: want PROVIDER:LABEL:SECRET"
                        ));
                    }
                }
            }
            "--key" => {
                let spec = value()?;
                let (provider, key) = spec
                    .split_once(':')
                    .filter(|(_, key)| !key.is_empty())
                    .ok_or_else(|| format!("bad --key `{spec}`: want PROVIDER:KEY"))?;
                let provider = provider
                    .parse()
                    .map_err(|e| format!("bad --key `{spec}`: {e}"))?;
                out.keys.push((provider, key.to_owned()));
            }
            "--login-as" => out.login_as = Some(value()?),
            "--config" => {
                out.config.push_str(&value()?);
                out.config.push('\n');
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Some(out))
}
