//! Starting and driving the real `keyway` binary: a temp config pointing every provider at a
//! [`FakeUpstream`](crate::FakeUpstream), a private data dir and keyring service per instance,
//! the CLI with the same environment, and the HTTP and management APIs.
//!
//! The binary is `$KEYWAY_BIN` (set by `scripts/test`), else `target/debug/keyway`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Longest wait for the binary to print that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `keyway` binary under test.
pub fn keyway_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYWAY_BIN") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/keyway");
    assert!(
        p.exists(),
        "no keyway binary at {}: run `cargo build -p keyway --no-default-features` or `scripts/test`",
        p.display()
    );
    p
}

/// What a CLI run printed and how it ended.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Standard output, trimmed, asserting the command succeeded.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "command failed: {self:?}");
        self.stdout.trim()
    }

    /// Standard error, trimmed, asserting the command failed.
    pub fn err(&self) -> &str {
        assert_ne!(self.code, Some(0), "command succeeded: {self:?}");
        self.stderr.trim()
    }
}

/// A config directory, data directory and keyring namespace of one Keyway instance. Exists
/// before the instance starts, so accounts can be added first.
pub struct Setup {
    dir: tempfile::TempDir,
    /// The config file.
    pub config_path: PathBuf,
    /// The keyring service name (unique per setup).
    pub keyring_service: String,
    /// Login callback ports (Claude, ChatGPT) of a [`Setup::new`] config.
    redirect_ports: Option<(u16, u16)>,
    /// The `HOME` of every process this setup starts, when [`Setup::with_home`] gave one.
    home: Option<PathBuf>,
    /// Environment set (`Some`) or removed (`None`) for every process this setup starts.
    env: Vec<(String, Option<std::ffi::OsString>)>,
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Setup {
    /// A config whose built-in providers all point at `upstream` (an origin such as
    /// `http://127.0.0.1:PORT`). `extra` TOML comes first, so its top-level keys stay
    /// top-level. Unless `extra` has its own `[limits]` table, timeouts are short (5 s first
    /// byte, 5 s drain).
    pub fn new(upstream: &str, extra: &str) -> Setup {
        let limits = if extra.contains("[limits]") {
            ""
        } else {
            "[limits]\nfirst_byte_timeout_secs = 5\ndrain_secs = 5\n\n"
        };
        let claude_port = free_port();
        let openai_port = free_port();
        let text = format!(
            "{extra}\n\n{limits}[providers.anthropic]\nbase_url = \"{upstream}\"\n\n\
             [providers.anthropic.oauth]\nauthorize_url = \"{upstream}/oauth/authorize\"\n\
             token_url = \"{upstream}/v1/oauth/token\"\nredirect_port = {claude_port}\n\n\
             [providers.openai]\nbase_url = \"{upstream}\"\n\n\
             [providers.openai.oauth]\nauthorize_url = \"{upstream}/oauth/authorize\"\n\
             token_url = \"{upstream}/oauth/token\"\ndevice_url = \"{upstream}\"\n\
             backend_url = \"{upstream}\"\nredirect_port = {openai_port}\n\n\
             [providers.google]\nbase_url = \"{upstream}\"\n"
        );
        let mut setup = Setup::with_config(&text);
        setup.redirect_ports = Some((claude_port, openai_port));
        setup
    }

    /// The login callback URI Keyway uses for `provider` (`anthropic` or `openai`), as the
    /// fake OAuth servers must allow it. Only for [`Setup::new`] configs.
    pub fn redirect_uri(&self, provider: &str) -> String {
        let (claude, openai) = self.redirect_ports.expect("a Setup::new config");
        match provider {
            "anthropic" => format!("http://localhost:{claude}/callback"),
            _ => format!("http://localhost:{openai}/auth/callback"),
        }
    }

    /// A setup whose config file holds exactly `text`.
    pub fn with_config(text: &str) -> Setup {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("config.toml");
        std::fs::write(&config_path, text).expect("write config");
        Setup {
            dir,
            config_path,
            keyring_service: format!(
                "keyway-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            redirect_ports: None,
            home: None,
            env: Vec::new(),
        }
    }

    /// Sets `key` to `value` (or with `None` removes it) in the environment of every process
    /// this setup starts, after the setup's own variables.
    pub fn with_env(mut self, key: &str, value: Option<&std::ffi::OsStr>) -> Setup {
        self.env
            .push((key.to_owned(), value.map(ToOwned::to_owned)));
        self
    }

    /// Keyway's encrypted file store holds the secrets (`KEYWAY_SECRETS=file`), opened with
    /// `passphrase` from the key file [`Setup::key_file`] (`KEYWAY_SECRETS_KEY_FILE`).
    pub fn with_file_store(self, passphrase: &str) -> Setup {
        let key_file = self.write_key_file(passphrase);
        self.with_env("KEYWAY_SECRETS", Some("file".as_ref()))
            .with_env("KEYWAY_SECRETS_KEY_FILE", Some(key_file.as_os_str()))
    }

    /// Writes `passphrase` into the setup's key file (owner-only) and returns its path.
    pub fn write_key_file(&self, passphrase: &str) -> PathBuf {
        let path = self.key_file();
        std::fs::write(&path, format!("{passphrase}\n")).expect("write the key file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .expect("chmod the key file");
        }
        path
    }

    /// The key file of [`Setup::with_file_store`].
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("secrets.key")
    }

    /// The encrypted file store's folder (in the data dir).
    pub fn secrets_dir(&self) -> PathBuf {
        self.data_dir().join("secrets")
    }

    /// Gives Keyway (the instance and the CLI) its own empty home directory inside the
    /// setup's temp dir, so that tool files it reads or writes (`~/.claude/settings.json`,
    /// `~/.codex/…`) are the test's, not the user's.
    pub fn with_home(mut self) -> Setup {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).expect("create home");
        self.home = Some(home);
        self
    }

    /// The home directory of [`Setup::with_home`].
    pub fn home(&self) -> Option<&Path> {
        self.home.as_deref()
    }

    /// The temp dir holding the config, data dir, home and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the temp dir stays on disk when the setup is dropped (default: removed), so
    /// that a failure's logs can be read afterwards.
    pub fn keep_on_drop(&mut self, keep: bool) {
        self.dir.disable_cleanup(keep);
    }

    /// The data dir (logs).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self) -> Command {
        let mut c = Command::new(keyway_bin());
        c.env("KEYWAY_CONFIG", &self.config_path)
            .env("KEYWAY_DATA_DIR", self.data_dir())
            .env("KEYWAY_KEYRING_SERVICE", &self.keyring_service)
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        if let Some(home) = &self.home {
            c.env("HOME", home);
        }
        for (key, value) in &self.env {
            match value {
                Some(v) => c.env(key, v),
                None => c.env_remove(key),
            };
        }
        c
    }

    /// `keyway <args>` with this setup's environment and piped stdin, stdout and stderr, not
    /// yet spawned: for commands that keep running until the test acts (e.g. `account login`
    /// waiting for the browser's redirect, a pasted code or a device approval). The test may
    /// add to the environment, then spawns it and reads its output as it comes. The process
    /// is killed if its `Child` is dropped.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut c = self.command();
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Run `keyway <args>` with `stdin` as its standard input.
    pub async fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> CliOutput {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keyway");
        let mut input = child.stdin.take().expect("stdin");
        // A command that refuses its arguments exits before reading stdin; that is its answer,
        // not a failure to feed it.
        match input.write_all(stdin.as_bytes()).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => panic!("write stdin: {e}"),
        }
        drop(input);
        let out = child.wait_with_output().await.expect("wait keyway");
        CliOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// What the OS keyring holds for this setup's entry `name` (`account:<id>`, `client-key`,
    /// …), read as any other program would read it; `None` if there is no such entry.
    pub async fn keyring_entry(&self, name: &str) -> Option<String> {
        let service = self.keyring_service.clone();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || {
            let entry = keyring::Entry::new(&service, &name).expect("a keyring entry handle");
            match entry.get_password() {
                Ok(secret) => Some(secret),
                Err(keyring::Error::NoEntry) => None,
                Err(e) => panic!("cannot read keyring entry {service}/{name}: {e}"),
            }
        })
        .await
        .expect("keyring read")
    }

    /// Run `keyway <args>` with empty standard input.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        self.cli_with_stdin(args, "").await
    }

    /// `keyway account add <provider> --label <label>` with `secret` on stdin; the new id.
    pub async fn add_account(&self, provider: &str, label: &str, secret: &str) -> String {
        self.cli_with_stdin(&["account", "add", provider, "--label", label], secret)
            .await
            .ok()
            .to_owned()
    }

    /// Adds one `provider` API-key account per secret, labelled `L0`, `L1`, …, each a key
    /// `fake` accepts; their ids in order.
    pub async fn add_accounts(
        &self,
        fake: &crate::FakeUpstream,
        provider: &str,
        secrets: &[&str],
    ) -> Vec<String> {
        let upstream: crate::Provider = provider.parse().expect("a built-in provider");
        let mut ids = Vec::new();
        for (i, secret) in secrets.iter().enumerate() {
            fake.register_key(upstream, secret);
            ids.push(self.add_account(provider, &format!("L{i}"), secret).await);
        }
        ids
    }

    /// Start `keyway --headless --listen 127.0.0.1:0` and wait until it listens.
    pub async fn start(self) -> Keyway {
        let mut child = self
            .command()
            .args(["--headless", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keyway --headless");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    return rest.trim().parse::<SocketAddr>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(addr) = addr else {
            let _ = child.start_kill();
            let out = child.wait_with_output().await.expect("wait");
            panic!(
                "keyway --headless did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let stderr = child.stderr.take().expect("stderr");
        let stderr_log = self.dir.path().join("stderr.log");
        let log_path = stderr_log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            // Appended, so a restarted instance's log follows its predecessor's.
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .await
                .expect("stderr log");
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = file.write_all(line.as_bytes()).await;
                let _ = file.write_all(b"\n").await;
                let _ = file.flush().await;
            }
        });
        let client_key = self.cli(&["client-key"]).await.ok().to_owned();
        let management_token = self.cli(&["management-token"]).await.ok().to_owned();
        Keyway {
            setup: self,
            child,
            addr,
            client_key,
            management_token,
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("http client"),
            stderr_log,
        }
    }
}

/// A running `keyway --headless`. Killed when dropped; [`Keyway::stop`] stops it gracefully.
pub struct Keyway {
    /// Its config, data dir and keyring namespace.
    pub setup: Setup,
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The key tools send (`keyway client-key`).
    pub client_key: String,
    /// The management API token (`keyway management-token`).
    pub management_token: String,
    /// A plain HTTP client (no proxy).
    pub http: reqwest::Client,
    stderr_log: PathBuf,
}

impl Keyway {
    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Run the CLI against this instance (same config, keyring and `--listen`).
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        let listen = self.addr.to_string();
        let mut all = vec!["--listen", listen.as_str()];
        all.extend_from_slice(args);
        self.setup.cli(&all).await
    }

    /// Run the CLI against this instance with `stdin`.
    pub async fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> CliOutput {
        let listen = self.addr.to_string();
        let mut all = vec!["--listen", listen.as_str()];
        all.extend_from_slice(args);
        self.setup.cli_with_stdin(&all, stdin).await
    }

    /// A POST of `body` to `path` with the client key as `x-api-key`.
    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .header("x-api-key", &self.client_key)
            .json(body)
    }

    /// An Anthropic Messages request for `model`.
    pub async fn anthropic(&self, model: &str) -> reqwest::Response {
        self.post(
            "/v1/messages",
            &serde_json::json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request to keyway")
    }

    /// A streamed Anthropic request; the response as soon as its headers are in (the stream
    /// stays open, and in flight, until the response is dropped or read to the end).
    pub async fn anthropic_stream(&self, model: &str) -> reqwest::Response {
        self.post(
            "/v1/messages",
            &serde_json::json!({"model": model, "max_tokens": 16, "stream": true,
                                "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request to keyway")
    }

    /// A management API request with the token.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(&format!("/api{path}")))
            .bearer_auth(&self.management_token)
    }

    /// `GET /api<path>` as JSON.
    pub async fn api_get(&self, path: &str) -> Value {
        let r = self
            .api(reqwest::Method::GET, path)
            .send()
            .await
            .expect("api");
        assert!(r.status().is_success(), "GET /api{path}: {}", r.status());
        r.json().await.expect("json")
    }

    /// Everything the instance logged so far: stderr and the rolling log files.
    pub fn logs(&self) -> String {
        let mut all = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
        if let Ok(entries) = std::fs::read_dir(self.setup.data_dir().join("logs")) {
            for e in entries.flatten() {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }

    /// The file that collects the instance's stderr.
    pub fn stderr_log(&self) -> &Path {
        &self.stderr_log
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// SIGTERM, then wait for the exit (bounded).
    pub async fn stop(mut self) -> Option<i32> {
        self.terminate().await
    }

    /// [`Keyway::stop`], then everything it logged (read before its temp dir goes).
    pub async fn stop_with_logs(mut self) -> (Option<i32>, String) {
        let code = self.terminate().await;
        (code, self.logs())
    }

    /// Stop gracefully (asserting exit code 0, so the state saved at shutdown is complete),
    /// then start again with the same setup: config, data dir and keyring service. The new
    /// instance listens on a new port; its client key and management token are the same.
    pub async fn restart(self) -> Keyway {
        self.stop_keeping_setup().await.start().await
    }

    /// Stop gracefully (asserting exit code 0) and hand back the setup, so a test can change
    /// its files (config, data dir) before [`Setup::start`] starts it again.
    pub async fn stop_keeping_setup(mut self) -> Setup {
        let code = self.terminate().await;
        assert_eq!(code, Some(0), "keyway exits 0 on SIGTERM before a restart");
        let Keyway { setup, .. } = self;
        setup
    }

    /// Kill it (SIGKILL) as a crash or a power cut would: nothing is saved on the way out.
    /// Then start again with the same setup, as [`Keyway::restart`] does.
    pub async fn crash_and_restart(mut self) -> Keyway {
        self.child.start_kill().expect("SIGKILL");
        let _ = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("keyway dies at once on SIGKILL");
        let Keyway { setup, .. } = self;
        setup.start().await
    }

    /// Stop gracefully (asserting exit code 0) and hand back the setup, to run commands
    /// against the stopped instance's config, data dir and secrets before starting it again.
    pub async fn shut_down(mut self) -> Setup {
        let code = self.terminate().await;
        assert_eq!(code, Some(0), "keyway exits 0 on SIGTERM");
        let Keyway { setup, .. } = self;
        setup
    }

    async fn terminate(&mut self) -> Option<i32> {
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("kill");
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("keyway exits within 20 s of SIGTERM")
            .expect("wait");
        exit.code()
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `within`; then fails the
/// test naming `what`. For state that another process changes in its own time (a config
/// reload, a command's edit), never as a stand-in for an event the test could wait for.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
