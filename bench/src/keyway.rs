//! Keyway under test: a throwaway config, data dir and keyring service with three Anthropic
//! API-key accounts pointing at the fake; the headless server; its management API; and the
//! start-up measurement (exec to first proxied 200).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::cli::Plan;
use crate::client::{self, Template};
use crate::placement;
use crate::targets::{self, Proc, START_TIMEOUT};

/// The accounts' API keys: what the fake sees. Direct and nginx runs send the first one.
pub const ACCOUNT_SECRETS: [&str; 3] = [
    "sk-ant-api03-bench-account-one",
    "sk-ant-api03-bench-account-two",
    "sk-ant-api03-bench-account-three",
];

/// The API key of the OpenAI-format account the translated scenarios add (the fake accepts
/// it as an OpenAI key). The standard instance starts without it.
pub const OPENAI_SECRET: &str = "sk-proj-bench-openai-account";

/// The alias the translated scenarios add: [`client::TRANSLATED_MODEL`] to this target, an
/// OpenAI-format provider, so every request for it is translated Messages → Chat and back.
pub const TRANSLATED_TARGET: &str = "openai:gpt-4o";

/// Longest wait for a running instance to pick up a config edit made with the CLI.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run the `keyway` binary against one throwaway config, data dir and keyring service
/// (the standard instances and the soak's).
#[derive(Debug, Clone)]
pub struct Env {
    pub bin: PathBuf,
    pub config: PathBuf,
    pub data: PathBuf,
    pub service: String,
}

impl Env {
    pub fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.env("KEYWAY_CONFIG", &self.config)
            .env("KEYWAY_DATA_DIR", &self.data)
            .env("KEYWAY_KEYRING_SERVICE", &self.service)
            // The default log level (info), as users run it.
            .env_remove("RUST_LOG");
        cmd
    }

    /// `keyway <args>` with `stdin`; its trimmed stdout, or an error with its stderr.
    pub async fn cli(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        let mut cmd = Command::from(self.command());
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let what = format!("keyway {}", args.join(" "));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {what} ({})", self.bin.display()))?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).await?;
        }
        let out = tokio::time::timeout(START_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| anyhow!("{what} did not finish within {START_TIMEOUT:?}"))??;
        if !out.status.success() {
            bail!(
                "{what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// A Keyway instance's files and keyring namespace, with its three accounts added.
pub struct Setup {
    env: Env,
    dir: PathBuf,
    /// Account ids, in the order of [`ACCOUNT_SECRETS`].
    pub accounts: Vec<String>,
}

/// Which accounts a [`Setup`] has and how its policy spreads work over them.
pub struct Accounts<'a> {
    /// Names the instance's folder and keyring service, so instances in one run stay apart.
    pub name: &'a str,
    /// One Anthropic API-key account per secret, in this order.
    pub secrets: &'a [&'a str],
    /// The policy's `spread` (`session` or `request`); `None` leaves Keyway's default.
    pub spread: Option<&'a str>,
}

/// The standard instance: the three accounts, each request picked on its own
/// (`spread = "request"`). Every request of the load generator carries the same
/// `metadata.user_id`, which Keyway's default spread reads as one conversation and keeps on
/// one account; picking per request keeps the round-robin over all three, as the tables say,
/// and the figures comparable with runs from before sessions. The replay scenario measures
/// sessions.
pub const STANDARD: Accounts<'static> = Accounts {
    name: "keyway",
    secrets: &ACCOUNT_SECRETS,
    spread: Some("request"),
};

impl Setup {
    /// Writes the config (every provider at the fake, anthropic under round-robin) and adds
    /// the accounts with the CLI, secrets on stdin, exactly as a user would.
    pub async fn create(
        plan: &Plan,
        dir: &Path,
        upstream: SocketAddr,
        accounts: &Accounts<'_>,
    ) -> anyhow::Result<Setup> {
        let dir = dir.join(accounts.name);
        // The config gets a folder of its own: Keyway watches the config's folder, and the
        // stderr logs written next to it would wake its watcher on every line.
        let config_dir = dir.join("config");
        std::fs::create_dir_all(&config_dir)
            .with_context(|| format!("cannot create {}", config_dir.display()))?;
        let config = config_dir.join("config.toml");
        let log_level = plan
            .keyway_log_level
            .as_ref()
            .map_or(String::new(), |l| format!("log_level = \"{l}\"\n"));
        let spread = accounts
            .spread
            .map_or(String::new(), |s| format!("spread = \"{s}\"\n"));
        let text = format!(
            "# Generated by keyway-bench.\n{log_level}\
             [providers.anthropic]\nbase_url = \"http://{upstream}\"\n\n\
             [providers.openai]\nbase_url = \"http://{upstream}\"\n\n\
             [policies.anthropic]\nstrategy = \"round_robin\"\n{spread}"
        );
        std::fs::write(&config, text)
            .with_context(|| format!("cannot write {}", config.display()))?;
        let mut setup = Setup {
            env: Env {
                bin: plan.keyway_bin.clone(),
                data: dir.join("data"),
                config,
                service: format!("keyway-bench-{}-{}", std::process::id(), accounts.name),
            },
            dir,
            accounts: Vec::new(),
        };
        for (i, secret) in accounts.secrets.iter().enumerate() {
            let label = format!("bench-{}", i + 1);
            let id = setup
                .cli(&["account", "add", "anthropic", "--label", &label], secret)
                .await?;
            if id.is_empty() || id.contains(char::is_whitespace) {
                bail!("`keyway account add` printed `{id}`, expected an account id");
            }
            setup.accounts.push(id);
        }
        Ok(setup)
    }

    /// `keyway <args>` with `stdin`; its trimmed stdout, or an error with its stderr.
    pub async fn cli(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        self.env.cli(args, stdin).await
    }

    /// Makes `kw` translate: adds an OpenAI API-key account ([`OPENAI_SECRET`]) and the alias
    /// [`client::TRANSLATED_MODEL`] → [`TRANSLATED_TARGET`] with the CLI, as a user would,
    /// then waits until the running instance routes that model to the `openai` pool,
    /// translated.
    pub async fn add_translation(&self, kw: &Keyway) -> anyhow::Result<()> {
        let id = self
            .cli(
                &["account", "add", "openai", "--label", "bench-openai"],
                OPENAI_SECRET,
            )
            .await?;
        if id.is_empty() || id.contains(char::is_whitespace) {
            bail!("`keyway account add openai` printed `{id}`, expected an account id");
        }
        self.cli(
            &["alias", "set", client::TRANSLATED_MODEL, TRANSLATED_TARGET],
            "",
        )
        .await?;
        kw.wait_for_translated_route().await
    }

    /// Starts `keyway --headless` on a free port, pinned like every proxy under test.
    pub async fn start(&self, plan: &Plan) -> anyhow::Result<Keyway> {
        let mut cmd = Command::from(self.env.command());
        cmd.args(["--headless", "--listen", "127.0.0.1:0"]);
        let mut proc = Proc::spawn("keyway", cmd, plan.placement.target.as_ref(), &self.dir)?;
        let line = proc.wait_for_line("listening on http://").await?;
        let addr = targets::parse_listen_line(&line)?;
        let client_key = self.cli(&["client-key"], "").await?;
        let token = self.cli(&["management-token"], "").await?;
        Ok(Keyway {
            proc,
            addr,
            client_key,
            token,
        })
    }

    /// Execs `keyway --headless` `runs` times and measures, each time, how long until a
    /// proxied request gets a 200: process start, config, logging, keyring reads (client key,
    /// management token, three accounts), bind and serve. Each instance is killed after.
    ///
    /// Runs on a thread of its own with blocking sockets, so the polling loop is tight and
    /// free of async timer granularity (1 ms in tokio).
    pub async fn measure_startup(
        &self,
        plan: &Plan,
        runs: usize,
        client_key: &str,
    ) -> anyhow::Result<Vec<Duration>> {
        let env = self.env.clone();
        let cpus = plan.placement.target.clone();
        let log = self.dir.join("keyway-startup.stderr");
        let key = client_key.to_owned();
        tokio::task::spawn_blocking(move || {
            (0..runs)
                .map(|_| startup_once(env.command(), cpus.as_deref(), &log, &key))
                .collect()
        })
        .await
        .context("the start-up measurement thread died")?
    }
}

/// One exec-to-first-200 measurement; the instance is killed and reaped before returning.
fn startup_once(
    mut cmd: std::process::Command,
    cpus: Option<&[usize]>,
    log: &Path,
    client_key: &str,
) -> anyhow::Result<Duration> {
    let listen = targets::free_port()?;
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    cmd.args(["--headless", "--listen", &listen.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));
    placement::prepare_child(&mut cmd, cpus);
    let request = raw_request(listen, client_key);

    let started = Instant::now();
    let child = cmd.spawn().context("cannot start keyway --headless")?;
    let mut child = KillOnDrop(child);
    let mut last = String::from("no connection accepted");
    loop {
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "keyway --headless served no 200 within {START_TIMEOUT:?} ({last})\n--- stderr ---\n{}",
                targets::tail(log, 20)
            );
        }
        if let Some(status) = child.0.try_wait()? {
            bail!(
                "keyway --headless exited ({status}) before serving\n--- stderr ---\n{}",
                targets::tail(log, 20)
            );
        }
        match exchange(listen, &request) {
            Ok(200) => return Ok(started.elapsed()),
            Ok(status) => last = format!("last answer: HTTP {status}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Kills and reaps a blocking child when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The benchmark's Anthropic request as raw HTTP/1.1 with `Connection: close`.
fn raw_request(addr: SocketAddr, key: &str) -> Vec<u8> {
    let body = client::anthropic_body(false);
    let mut raw = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         anthropic-version: 2023-06-01\r\nx-api-key: {key}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    raw
}

/// Sends `request` on a new connection and returns the status code of the answer.
fn exchange(addr: SocketAddr, request: &[u8]) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).ok();
    stream
        .set_read_timeout(Some(START_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    // "HTTP/1.1 200 OK"
    let line = answer.split(|&b| b == b'\r').next().unwrap_or_default();
    std::str::from_utf8(line)
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("unreadable answer: {}", client::excerpt(&answer)))
}

/// A running `keyway --headless`, killed when dropped.
pub struct Keyway {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// The key tools send (`keyway client-key`).
    pub client_key: String,
    /// `keyway management-token`.
    pub token: String,
}

impl Keyway {
    /// A management API call; `(status, body)`.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        client::call(self.addr, self.api_request(method, path, body)?.build()).await
    }

    /// The request for a management API call, to send on a connection of the caller's.
    pub fn api_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Template> {
        let bearer = format!("Bearer {}", self.token);
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        Template::new(
            method,
            self.addr,
            &format!("/api{path}"),
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            body,
        )
    }

    /// Replace the default client key's limits (`PUT /api/client-keys/default/limits`).
    pub async fn set_default_key_limits(&self, limits: &Value) -> anyhow::Result<()> {
        let (status, body) = self
            .api(Method::PUT, "/client-keys/default/limits", Some(limits))
            .await?;
        if !status.is_success() {
            bail!(
                "PUT /api/client-keys/default/limits: HTTP {status}: {}",
                client::excerpt(&body)
            );
        }
        Ok(())
    }

    /// Polls `GET /api/route` until requests for [`client::TRANSLATED_MODEL`] on the
    /// Messages surface go to the `openai` pool, translated: the config watcher has seen the
    /// CLI's edits. Fails after [`RELOAD_TIMEOUT`] with the last route seen.
    pub async fn wait_for_translated_route(&self) -> anyhow::Result<()> {
        let path = format!(
            "/route?surface=anthropic_messages&model={}",
            client::TRANSLATED_MODEL
        );
        let deadline = Instant::now() + RELOAD_TIMEOUT;
        loop {
            let (status, body) = self.api(Method::GET, &path, None).await?;
            let route: Option<Value> = status
                .is_success()
                .then(|| serde_json::from_slice(&body).ok())
                .flatten();
            if let Some(route) = &route
                && route.get("pool").and_then(Value::as_str) == Some("openai")
            {
                if route.get("translated").and_then(Value::as_bool) != Some(true) {
                    bail!(
                        "{} now goes to the openai pool but is not translated: {route}",
                        client::TRANSLATED_MODEL
                    );
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "keyway did not pick up the alias {} → {TRANSLATED_TARGET} within \
                     {RELOAD_TIMEOUT:?}: GET /api{path} still answers HTTP {status}: {}",
                    client::TRANSLATED_MODEL,
                    client::excerpt(&body)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Requests served per account so far (`GET /api/accounts`), to show the rotation worked.
    pub async fn requests_per_account(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let (status, body) = self.api(Method::GET, "/accounts", None).await?;
        if !status.is_success() {
            bail!(
                "GET /api/accounts: HTTP {status}: {}",
                client::excerpt(&body)
            );
        }
        let v: Value = serde_json::from_slice(&body).context("GET /api/accounts is not JSON")?;
        let list = v
            .as_array()
            .or_else(|| v.get("accounts").and_then(Value::as_array))
            .ok_or_else(|| {
                anyhow!(
                    "GET /api/accounts: no account list in {}",
                    client::excerpt(&body)
                )
            })?;
        Ok(list
            .iter()
            .map(|a| {
                let id = a
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                let n = a
                    .pointer("/live/requests")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                (id, n)
            })
            .collect())
    }
}
