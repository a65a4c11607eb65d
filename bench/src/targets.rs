//! The processes a run starts: the fake upstream, nginx and the floor proxy (Keyway has its own
//! module), each owned by a [`Proc`] that kills its whole process group when dropped, so no run
//! leaves anything behind, whether it ends normally, with an error, a panic or Ctrl-C.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use crate::cli::Plan;
use crate::placement::{self, CpuSet};

/// Longest wait for a process to say (or show) that it is ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A child process with its stderr in a file, killed with its process group on drop.
pub struct Proc {
    name: String,
    child: Child,
    /// The child's pid, which is also its process group id.
    pgid: libc::pid_t,
    stdout: Option<ChildStdout>,
    /// Where stdout goes instead of a pipe, for a process whose stdout nobody reads.
    stdout_log: Option<PathBuf>,
    stderr_log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` pinned to `cpus`, stdout piped, stderr to `<dir>/<name>.stderr`.
    pub fn spawn(
        name: &str,
        cmd: Command,
        cpus: Option<&CpuSet>,
        dir: &Path,
    ) -> anyhow::Result<Proc> {
        Proc::spawn_with(name, cmd, cpus, dir, false)
    }

    /// [`Proc::spawn`] with stdout to `<dir>/<name>.stdout` instead of a pipe: for a server
    /// that logs every request there (a pipe nobody reads would fill and stall it).
    pub fn spawn_logged(
        name: &str,
        cmd: Command,
        cpus: Option<&CpuSet>,
        dir: &Path,
    ) -> anyhow::Result<Proc> {
        Proc::spawn_with(name, cmd, cpus, dir, true)
    }

    fn spawn_with(
        name: &str,
        mut cmd: Command,
        cpus: Option<&CpuSet>,
        dir: &Path,
        stdout_to_file: bool,
    ) -> anyhow::Result<Proc> {
        let create = |path: &Path| {
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
        };
        let stderr_log = dir.join(format!("{name}.stderr"));
        let stderr = create(&stderr_log)?;
        let stdout_log = stdout_to_file.then(|| dir.join(format!("{name}.stdout")));
        let stdout = match &stdout_log {
            Some(path) => Stdio::from(create(path)?),
            None => Stdio::piped(),
        };
        placement::prepare_child(cmd.as_std_mut(), cpus.map(Vec::as_slice));
        cmd.stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let program = cmd.as_std().get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({program})"))?;
        let stdout = child.stdout.take();
        let pgid = child
            .id()
            .and_then(|pid| libc::pid_t::try_from(pid).ok())
            .ok_or_else(|| anyhow!("{name} exited at once"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            pgid,
            stdout,
            stdout_log,
            stderr_log,
        })
    }

    /// The process group (= the child's pid), for telling our CPU time from others'.
    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .id()
            .ok_or_else(|| anyhow!("{} has already exited", self.name))
    }

    /// Reads stdout until a line containing `needle`, which it returns; stdout is drained in
    /// the background afterwards so the child never blocks on a full pipe.
    pub async fn wait_for_line(&mut self, needle: &str) -> anyhow::Result<String> {
        let stdout = self
            .stdout
            .take()
            .ok_or_else(|| anyhow!("{}: stdout was already read", self.name))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = String::new();
        let found = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(needle) {
                    return Some(line);
                }
                let _ = writeln!(seen, "{line}");
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => {
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                Ok(line)
            }
            Ok(None) => Err(self.failure(&format!("exited without printing `{needle}`"), &seen)),
            Err(_) => Err(self.failure(
                &format!("did not print `{needle}` within {START_TIMEOUT:?}"),
                &seen,
            )),
        }
    }

    /// An error naming the process, with what it printed.
    pub fn failure(&mut self, what: &str, stdout: &str) -> anyhow::Error {
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!(" ({status})"),
            _ => String::new(),
        };
        let stderr = tail(&self.stderr_log, 20);
        let stdout = match &self.stdout_log {
            Some(path) => format!("--- stdout ({}) ---\n{}", path.display(), tail(path, 20)),
            None => format!("--- stdout ---\n{}", stdout.trim_end()),
        };
        anyhow!(
            "{} {what}{status}\n{stdout}\n--- stderr ({}) ---\n{stderr}",
            self.name,
            self.stderr_log.display()
        )
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            _ => Err(self.failure("exited", "")),
        }
    }

    /// Polls until `addr` accepts connections (for servers that print nothing when ready).
    pub async fn wait_for_port(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.check_alive()?;
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.failure(
                    &format!("does not accept connections on {addr} after {START_TIMEOUT:?}"),
                    "",
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // The child leads its own process group (see placement::prepare_child); killing the
        // group also ends nginx's workers, even if the master is gone. Best effort: an error
        // means the group no longer exists.
        // SAFETY: killpg has no memory-safety preconditions.
        unsafe {
            libc::killpg(self.pgid, libc::SIGKILL);
        }
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
    }
}

/// The last `n` lines of a log file, or a note that it cannot be read.
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A free loopback port, for servers that must be told their port. Another process could take
/// it before the server binds; the server then fails to start with a clear error.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?)
}

/// `listening on http://127.0.0.1:PORT` (the fake) or `... listening on http://ADDR` (Keyway).
pub fn parse_listen_line(line: &str) -> anyhow::Result<SocketAddr> {
    let addr = line
        .split("listening on http://")
        .nth(1)
        .ok_or_else(|| anyhow!("no `listening on http://` in `{line}`"))?
        .trim();
    addr.parse()
        .with_context(|| format!("bad address `{addr}` in `{line}`"))
}

/// The fake upstream, streaming `events` stamped events at `interval` for streaming requests.
/// It accepts the Keyway accounts' keys, which direct and nginx runs send too, and the OpenAI
/// key of the account the translated scenarios add.
pub async fn start_fake(plan: &Plan, dir: &Path) -> anyhow::Result<(Proc, SocketAddr)> {
    let mut cmd = Command::new(&plan.fake_bin);
    cmd.args(["--listen", "127.0.0.1:0", "--no-record", "--stamp"]);
    for key in crate::keyway::ACCOUNT_SECRETS {
        cmd.arg("--key").arg(format!("anthropic:{key}"));
    }
    cmd.arg("--key")
        .arg(format!("openai:{}", crate::keyway::OPENAI_SECRET));
    cmd.arg("--stream-events")
        .arg(plan.sse_events.to_string())
        .arg("--stream-interval-ms")
        .arg(plan.sse_interval.as_millis().to_string());
    let mut fake = Proc::spawn("fake-upstream", cmd, plan.placement.fake.as_ref(), dir)?;
    let line = fake.wait_for_line("listening on").await?;
    let addr = parse_listen_line(&line)?;
    Ok((fake, addr))
}

/// nginx as a plain keep-alive reverse proxy to the fake, as an operator would set it up for
/// an SSE API: HTTP/1.1 upstream keep-alive, no response buffering, no access log, and the
/// upstream's own address as `Host` (nginx would send the upstream block's name, which the
/// fake, like a real API, refuses).
pub fn nginx_config(
    prefix: &Path,
    listen: SocketAddr,
    upstream: SocketAddr,
    workers: usize,
    root: bool,
) -> String {
    let p = prefix.display();
    // As root, nginx would switch its workers to `nobody`, who cannot write the temp dir.
    let user = if root { "user root;\n" } else { "" };
    format!(
        "# Generated by keyway-bench.\n\
         {user}worker_processes {workers};\n\
         pid {p}/nginx.pid;\n\
         error_log {p}/error.log warn;\n\
         events {{\n    worker_connections 4096;\n}}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {p}/tmp/client_body;\n\
         \x20   proxy_temp_path {p}/tmp/proxy;\n\
         \x20   fastcgi_temp_path {p}/tmp/fastcgi;\n\
         \x20   uwsgi_temp_path {p}/tmp/uwsgi;\n\
         \x20   scgi_temp_path {p}/tmp/scgi;\n\
         \x20   # The defaults (1000) would close every client's connection now and then.\n\
         \x20   keepalive_requests 1000000;\n\
         \x20   upstream fake {{\n\
         \x20       server {upstream};\n\
         \x20       keepalive 256;\n\
         \x20       keepalive_requests 1000000;\n\
         \x20   }}\n\
         \x20   server {{\n\
         \x20       listen {listen};\n\
         \x20       location / {{\n\
         \x20           proxy_pass http://fake;\n\
         \x20           proxy_http_version 1.1;\n\
         \x20           proxy_set_header Connection \"\";\n\
         \x20           proxy_set_header Host {upstream};\n\
         \x20           proxy_buffering off;\n\
         \x20       }}\n\
         \x20   }}\n\
         }}\n"
    )
}

/// Starts nginx in the foreground with a generated config in `dir/nginx`.
pub async fn start_nginx(
    plan: &Plan,
    bin: &Path,
    dir: &Path,
    upstream: SocketAddr,
) -> anyhow::Result<(Proc, SocketAddr)> {
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(prefix.join("tmp"))
        .with_context(|| format!("cannot create {}", prefix.display()))?;
    let listen = free_port()?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let conf = prefix.join("nginx.conf");
    let text = nginx_config(
        &prefix,
        listen,
        upstream,
        plan.placement.target_cpus(),
        root,
    );
    std::fs::write(&conf, text).with_context(|| format!("cannot write {}", conf.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(prefix.join("error.log"))
        .args(["-g", "daemon off;"]);
    let mut nginx = Proc::spawn("nginx", cmd, plan.placement.target.as_ref(), dir)?;
    nginx.wait_for_port(listen).await.map_err(|e| {
        anyhow!(
            "{e:#}\n--- nginx error.log ---\n{}",
            tail(&prefix.join("error.log"), 20)
        )
    })?;
    Ok((nginx, listen))
}

/// A floor target: `floor-proxy --stack STACK` (`axum` or `hyper`) forwarding to the fake,
/// pinned like Keyway and started the same way (the bench's environment, so
/// TOKIO_WORKER_THREADS, if set, reaches both, and otherwise both runtimes get one thread per
/// TARGET CPU).
pub async fn start_floor(
    plan: &Plan,
    bin: &Path,
    stack: &str,
    dir: &Path,
    upstream: SocketAddr,
) -> anyhow::Result<(Proc, SocketAddr)> {
    let mut cmd = Command::new(bin);
    cmd.arg("--upstream")
        .arg(format!("http://{upstream}"))
        .args(["--listen", "127.0.0.1:0", "--stack", stack]);
    let mut floor = Proc::spawn("floor-proxy", cmd, plan.placement.target.as_ref(), dir)?;
    let line = floor.wait_for_line("listening on http://").await?;
    let addr = parse_listen_line(&line)?;
    Ok((floor, addr))
}

/// Longest wait for LiteLLM to answer its liveness check: it imports a large Python package
/// and sets up its proxy first (20–35 s on the benchmark's 2-CPU VM).
pub const LITELLM_START_TIMEOUT: Duration = Duration::from_secs(180);

/// LiteLLM's `master_key`: the key the load generator sends it (as `x-api-key`, which its
/// Anthropic endpoint reads, as Anthropic's own clients send it).
pub const LITELLM_MASTER_KEY: &str = "sk-bench-litellm-master-key";

/// LiteLLM's proxy, started for the peer runs.
pub struct LiteLlm {
    pub proc: Proc,
    pub addr: SocketAddr,
    /// The installed `litellm` package's version, e.g. `1.108.5`.
    pub version: String,
    /// Exec to the first 200 from its liveness check.
    pub startup: Duration,
}

/// LiteLLM's proxy config: one model group named `model` of one deployment per key, each an
/// Anthropic model at the fake (`anthropic/<model>` with the fake as `api_base`), shuffled
/// (`simple-shuffle`, LiteLLM's default strategy, named), and a master key for the clients.
/// No database, no cache, no callbacks: what a user starting it from a config file gets.
pub fn litellm_config(upstream: SocketAddr, model: &str, keys: &[&str]) -> String {
    let mut yaml = String::from("# Generated by keyway-bench.\nmodel_list:\n");
    for key in keys {
        let _ = write!(
            yaml,
            "  - model_name: \"{model}\"\n\
             \x20   litellm_params:\n\
             \x20     model: \"anthropic/{model}\"\n\
             \x20     api_base: \"http://{upstream}\"\n\
             \x20     api_key: \"{key}\"\n"
        );
    }
    let _ = write!(
        yaml,
        "router_settings:\n\
         \x20 routing_strategy: simple-shuffle\n\
         general_settings:\n\
         \x20 master_key: \"{LITELLM_MASTER_KEY}\"\n"
    );
    yaml
}

/// Environment variables removed from LiteLLM's environment (with every `LITELLM_*` one): a
/// database or cache the shell happens to name would change what is measured.
const LITELLM_ENV_REMOVED: [&str; 6] = [
    "DATABASE_URL",
    "DIRECT_URL",
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_PASSWORD",
];

/// Starts LiteLLM's proxy (`python -m litellm.proxy.proxy_cli`, uvicorn, one worker) on a
/// free loopback port with [`litellm_config`], pinned like the other proxies, and waits for
/// its liveness check. It never reaches out: the model cost map is the packaged one
/// (`LITELLM_LOCAL_MODEL_COST_MAP`) and telemetry is vetoed (`LITELLM_TELEMETRY_DISABLED`).
pub async fn start_litellm(
    plan: &Plan,
    python: &Path,
    dir: &Path,
    upstream: SocketAddr,
) -> anyhow::Result<LiteLlm> {
    let version = litellm_version(python).await?;
    let prefix = dir.join("litellm");
    std::fs::create_dir_all(&prefix)
        .with_context(|| format!("cannot create {}", prefix.display()))?;
    let conf = prefix.join("config.yaml");
    let text = litellm_config(
        upstream,
        crate::client::MODEL,
        &crate::keyway::ACCOUNT_SECRETS,
    );
    std::fs::write(&conf, text).with_context(|| format!("cannot write {}", conf.display()))?;
    let listen = free_port()?;
    let mut cmd = Command::new(python);
    cmd.args(["-m", "litellm.proxy.proxy_cli", "--config"])
        .arg(&conf)
        .args(["--host", "127.0.0.1", "--port"])
        .arg(listen.port().to_string())
        .args(["--num_workers", "1"])
        .current_dir(&prefix);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("LITELLM_") {
            cmd.env_remove(&name);
        }
    }
    for name in LITELLM_ENV_REMOVED {
        cmd.env_remove(name);
    }
    cmd.env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_TELEMETRY_DISABLED", "True");
    let started = Instant::now();
    let mut proc = Proc::spawn_logged("litellm", cmd, plan.placement.target.as_ref(), dir)?;
    wait_for_liveness(&mut proc, listen).await?;
    Ok(LiteLlm {
        proc,
        addr: listen,
        version,
        startup: started.elapsed(),
    })
}

/// Polls LiteLLM's `GET /health/liveliness` (its spelling) until it answers 200.
async fn wait_for_liveness(proc: &mut Proc, addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + LITELLM_START_TIMEOUT;
    let probe = crate::client::Template::new(
        http::Method::GET,
        addr,
        "/health/liveliness",
        &[],
        bytes::Bytes::new(),
    )?;
    loop {
        proc.check_alive()?;
        let last = match crate::client::call(addr, probe.build()).await {
            Ok((status, _)) if status.is_success() => return Ok(()),
            Ok((status, body)) => format!("HTTP {status}: {}", crate::client::excerpt(&body)),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            return Err(proc.failure(
                &format!(
                    "did not answer GET /health/liveliness on {addr} within \
                     {LITELLM_START_TIMEOUT:?} (last: {last})"
                ),
                "",
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The version of the `litellm` package `python` imports, or an error saying how to get one.
pub async fn litellm_version(python: &Path) -> anyhow::Result<String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ])
        .output()
        .await
        .with_context(|| format!("cannot run {}", python.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || version.is_empty() {
        bail!(
            "{} has no litellm package ({}): run `scripts/bench --peers`, which installs it in \
             a venv of its own",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(version)
}

/// `1.22.1`, from `nginx -v` (which prints `nginx version: nginx/1.22.1` on stderr).
pub async fn nginx_version(bin: &Path) -> String {
    match Command::new(bin).arg("-v").output().await {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr);
            let text = text.trim();
            let version = text.strip_prefix("nginx version: ").unwrap_or(text);
            version.strip_prefix("nginx/").unwrap_or(version).to_owned()
        }
        Err(e) => format!("unknown ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_lines() {
        let a = parse_listen_line("listening on http://127.0.0.1:4000").unwrap();
        assert_eq!(a.port(), 4000);
        let b = parse_listen_line("Keyway 0.1.0 listening on http://127.0.0.1:5000").unwrap();
        assert_eq!(b.port(), 5000);
        assert!(parse_listen_line("ready").is_err());
        assert!(parse_listen_line("listening on http://nowhere").is_err());
    }

    #[test]
    fn litellm_config_has_one_group_of_three_deployments() {
        let conf = litellm_config(
            "127.0.0.1:2".parse().unwrap(),
            "claude-sonnet-4-5",
            &["sk-a", "sk-b", "sk-c"],
        );
        assert_eq!(
            conf.matches("- model_name: \"claude-sonnet-4-5\"").count(),
            3,
            "{conf}"
        );
        assert_eq!(
            conf.matches("model: \"anthropic/claude-sonnet-4-5\"")
                .count(),
            3,
            "{conf}"
        );
        for needle in [
            "api_base: \"http://127.0.0.1:2\"",
            "api_key: \"sk-a\"",
            "api_key: \"sk-b\"",
            "api_key: \"sk-c\"",
            "routing_strategy: simple-shuffle",
            "master_key: \"sk-bench-litellm-master-key\"",
        ] {
            assert!(conf.contains(needle), "missing `{needle}` in\n{conf}");
        }
        // Every line is indented with spaces only, as YAML requires.
        assert!(!conf.contains('\t'), "{conf}");
    }

    #[test]
    fn nginx_config_streams_and_keeps_alive() {
        let conf = nginx_config(
            Path::new("/tmp/x"),
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            2,
            false,
        );
        for needle in [
            "worker_processes 2;",
            "proxy_buffering off;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_set_header Host 127.0.0.1:2;",
            "server 127.0.0.1:2;",
            "listen 127.0.0.1:1;",
            "access_log off;",
        ] {
            assert!(conf.contains(needle), "missing `{needle}` in\n{conf}");
        }
        assert!(!conf.contains("user root"));
    }
}
