//! The real Claude Code and Codex CLI (pinned in `tests/clients/package.json`, installed by
//! `scripts/test`) served through translation: Claude Code by an OpenAI-format account and
//! Codex CLI by an Anthropic-format one. Each is asked, through the fake's `[[call …]]`
//! directive, to run a shell command with its own tool; the fake's model calls the tool in
//! its own format, the client runs it and sends the result back, and the fake answers with
//! what the tool printed. Nothing but the base URL and the key is changed in either tool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use keyway_tests::{FakeUpstream, Keyway, Provider, Setup};
use serde_json::Value;
use tokio::process::Command;

/// The longest a client may take for the whole round trip.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// What the tool prints, and the fake then quotes.
const MARK: &str = "keyway-across-formats";

/// A client's executable from `tests/clients/node_modules`.
fn client_bin(name: &str) -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("clients/node_modules/.bin")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: the real clients are installed by scripts/test (npm ci in tests/clients)",
        bin.display()
    );
    bin
}

/// Runs `command` to its end within [`CLIENT_TIMEOUT`]; its stdout, or a panic with both
/// streams.
async fn run(mut command: Command, what: &str) -> String {
    command.kill_on_drop(true);
    let out = tokio::time::timeout(CLIENT_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {CLIENT_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Every request the fake received went to `path`, and one of them carries the tool's
/// output back; what the client's requests were translated into, in the fake's own words.
fn assert_translated_round_trip(fake: &FakeUpstream, path: &str) {
    let seen = fake.requests();
    assert!(!seen.is_empty(), "no request reached the fake");
    for r in &seen {
        assert_eq!(r.path.split('?').next(), Some(path), "{}", r.path);
    }
    assert!(
        seen.iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(MARK)
                && r.json().is_some_and(|b| b.to_string().contains("tool"))),
        "no request carried the tool's output back"
    );
}

async fn start(fake: &FakeUpstream, alias: &str, provider: &str, secret: &str) -> Keyway {
    let setup = Setup::new(&fake.base_url(), &format!("[aliases]\n{alias}\n"));
    setup.add_account(provider, "Across", secret).await;
    setup.start().await
}

#[tokio::test]
async fn claude_code_runs_a_tool_through_an_openai_account() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::OpenAi, "sk-oa-across");
    let keyway = start(
        &fake,
        "\"claude-*\" = \"openai:gpt-4o\"",
        "openai",
        "sk-oa-across",
    )
    .await;
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work");
    let prompt = format!(r#"[[call Bash {{"command": "echo {MARK} | tee across.txt"}}]]"#);
    let mut command = Command::new(client_bin("claude"));
    command
        .args([
            "-p",
            &prompt,
            "--allowedTools",
            "Bash",
            "--output-format",
            "json",
        ])
        .current_dir(work.path())
        .env("HOME", home.path())
        .env("ANTHROPIC_BASE_URL", format!("http://{}", keyway.addr))
        .env("ANTHROPIC_API_KEY", &keyway.client_key)
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
    let stdout = run(command, "claude -p").await;
    let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(result["is_error"], false, "{result:#}");
    let text = result["result"].as_str().expect("a result");
    assert!(
        text.contains("tool result:") && text.contains(MARK),
        "{text}"
    );
    let written = std::fs::read_to_string(work.path().join("across.txt")).expect("the tool ran");
    assert_eq!(written.trim(), MARK);
    assert_translated_round_trip(&fake, "/v1/chat/completions");
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn codex_cli_runs_a_tool_through_an_anthropic_account() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-across");
    let keyway = start(
        &fake,
        "\"gpt-*\" = \"anthropic:claude-sonnet-4-5\"",
        "anthropic",
        "sk-ant-across",
    )
    .await;
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work");
    std::fs::create_dir_all(home.path().join(".codex")).expect(".codex");
    // Web search is an OpenAI server tool with no counterpart at Anthropic: Keyway refuses a
    // request that offers it, and says to turn it off like this.
    let config = format!(
        "web_search = \"disabled\"\nmodel = \"gpt-5-codex\"\nmodel_provider = \"keyway\"\n\n\
         [model_providers.keyway]\nname = \"Keyway\"\nbase_url = \"http://{}/v1\"\n\
         env_key = \"KEYWAY_KEY\"\nwire_api = \"responses\"\n",
        keyway.addr
    );
    std::fs::write(home.path().join(".codex/config.toml"), config).expect("config");
    let prompt = format!(r#"[[call exec_command {{"cmd": "echo {MARK}"}}]]"#);
    let mut command = Command::new(client_bin("codex"));
    command
        // Codex's own sandbox (bubblewrap) is not what is tested here, and a container may
        // not allow it: the command runs unsandboxed, as `echo` can.
        .args([
            "exec",
            "--skip-git-repo-check",
            "--sandbox",
            "danger-full-access",
            &prompt,
        ])
        .current_dir(work.path())
        .env("HOME", home.path())
        .env("KEYWAY_KEY", &keyway.client_key);
    let stdout = run(command, "codex exec").await;
    assert!(
        stdout.contains("tool result:") && stdout.contains(MARK),
        "{stdout}"
    );
    assert_translated_round_trip(&fake, "/v1/messages");
    assert_eq!(keyway.stop().await, Some(0));
}
