//! Subscription logins (OAuth) through the real binary, against the fake Claude and ChatGPT
//! authorization servers: the browser flow (the test plays the browser: it opens the page the
//! CLI or API gave, and the fake redirects it to Keyway's loopback callback), the pasted-code
//! flow, ChatGPT's device code, importing Claude Code's and Codex CLI's credential files, and
//! the terms-risk confirmation. Each login must end in an account that serves requests the
//! way the provider wants subscription requests made.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use keyway_tests::{
    CliOutput, FakeUpstream, Keyway, OAUTH_BETA, Provider, Setup, write_claude_credentials,
    write_codex_auth,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// Longest any single wait (a CLI line, an exit, a poll) may take.
const WAIT: Duration = Duration::from_secs(15);

/// What the CLI prints before the authorize URL.
const OPEN_PAGE: &str = "Open this page to log in: ";

/// Flags a client such as Claude Code sends itself; they must reach Anthropic next to
/// Keyway's OAuth flag.
const CLIENT_BETAS: &str = "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A CLI command that keeps running while the test acts (a login waiting for the browser, a
/// pasted code or a device approval); its stdout is read line by line as it comes.
struct RunningCli {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Stdout lines read so far.
    seen: Vec<String>,
    stderr: JoinHandle<String>,
}

impl RunningCli {
    fn spawn(mut command: Command) -> RunningCli {
        let mut child = command.spawn().expect("spawn keyway");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut err = child.stderr.take().expect("stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text).await;
            text
        });
        RunningCli {
            child,
            stdin,
            stdout,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The next stdout line containing `needle` (bounded). On a timeout or an early exit the
    /// command is killed and the test fails with everything it printed.
    async fn line_with(&mut self, needle: &str) -> String {
        let found = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = self.stdout.next_line().await {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => {
                let _ = self.child.start_kill();
                let stderr = (&mut self.stderr).await.unwrap_or_default();
                panic!(
                    "the CLI printed no line with {needle:?}; stdout: {:?}; stderr: {stderr}",
                    self.seen
                );
            }
        }
    }

    /// The authorize URL from `Open this page to log in: <url>`.
    async fn login_url(&mut self) -> String {
        let line = self.line_with(OPEN_PAGE).await;
        line.split_once(OPEN_PAGE)
            .map(|(_, url)| url.trim().to_owned())
            .expect("URL after the prompt")
    }

    /// Types `text` and Enter on the command's stdin.
    async fn type_line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .await
            .expect("write stdin");
        stdin.flush().await.expect("flush stdin");
    }

    /// Waits for the exit (bounded); everything printed, including lines already read.
    async fn finish(mut self) -> CliOutput {
        drop(self.stdin.take());
        let rest = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = self.stdout.next_line().await {
                self.seen.push(line);
            }
            self.child.wait().await.expect("wait keyway")
        })
        .await;
        let status = match rest {
            Ok(status) => status,
            Err(_) => {
                let _ = self.child.start_kill();
                let stderr = (&mut self.stderr).await.unwrap_or_default();
                panic!(
                    "the CLI did not exit within {WAIT:?}; stdout: {:?}; stderr: {stderr}",
                    self.seen
                );
            }
        };
        CliOutput {
            code: status.code(),
            stdout: self.seen.join("\n"),
            stderr: self.stderr.await.unwrap_or_default(),
        }
    }
}

/// The last line of a successful command's stdout: the new account's id.
fn new_id(out: &CliOutput, provider: &str) -> String {
    let id = out
        .ok()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    assert!(
        id.strip_prefix(provider)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|hex| hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit())),
        "the last line is the new {provider} account id: {out:?}"
    );
    id
}

/// `keyway account login …` with the setup's environment. `PATH` is emptied so that no
/// browser can be opened on this machine: the test is the browser.
fn login_command(setup: &Setup, args: &[&str]) -> Command {
    let empty = setup.data_dir().join("no-programs");
    std::fs::create_dir_all(&empty).expect("empty PATH dir");
    let mut command = setup.cli_command(args);
    command.env("PATH", &empty);
    command
}

/// `s` encoded as a query value, as it appears in an authorize URL.
fn form_urlencoded_value(s: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", &[("v", s)])
        .expect("url")
        .query()
        .expect("query")
        .strip_prefix("v=")
        .expect("v=")
        .to_owned()
}

/// A browser: follows redirects (the fake's 302 to Keyway's loopback callback), no proxy.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("browser client")
}

/// Opens `url` as the user's browser would; the final page's text.
async fn open_page(url: &str) -> String {
    let page = tokio::time::timeout(WAIT, browser().get(url).send())
        .await
        .expect("the login page answers in time")
        .expect("the login page is reachable");
    assert_eq!(page.status(), 200, "final page of {url}");
    page.text().await.expect("page text")
}

/// Account `id` as `GET /api/accounts` shows it, once the running instance has it and it is
/// serving (the CLI edits the config file; the instance picks the edit up within a second).
async fn wait_serving(keyway: &Keyway, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let all = keyway.api_get("/accounts").await;
        let found = all
            .as_array()
            .expect("account list")
            .iter()
            .find(|a| a["id"] == id)
            .cloned();
        if let Some(a) = &found
            && a["live"]["state"] == "serving"
        {
            return a.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "account {id} not serving within {WAIT:?}: {all}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An Anthropic request sent the way Claude Code sends one, with its own beta flags.
async fn claude_code_request(keyway: &Keyway) -> reqwest::Response {
    keyway
        .post(
            "/v1/messages",
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
                    "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", CLIENT_BETAS)
        .send()
        .await
        .expect("request to keyway")
}

/// Asserts that a request served by login `id` reached Anthropic as subscription requests
/// must: the account's bearer token, no API key, the client's beta flags plus the OAuth one.
async fn assert_claude_login_serves(keyway: &Keyway, fake: &FakeUpstream, id: &str, label: &str) {
    let before = fake.requests().len();
    let r = claude_code_request(keyway).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(r.headers()["x-keyway-account"], id);
    let sent = fake.requests()[before..].to_vec();
    assert_eq!(sent.len(), 1, "one upstream request: {sent:?}");
    let sent = &sent[0];
    assert_eq!(
        sent.account.as_deref(),
        Some(label),
        "the login's own account"
    );
    let auth = sent.header("authorization").expect("authorization header");
    assert!(
        auth.starts_with("Bearer sk-ant-oat01-"),
        "a Claude OAuth bearer: {auth}"
    );
    assert_eq!(sent.header("x-api-key"), None, "no API key with a login");
    let betas: Vec<&str> = sent
        .header("anthropic-beta")
        .expect("anthropic-beta")
        .split(',')
        .map(str::trim)
        .collect();
    for flag in CLIENT_BETAS.split(',').chain([OAUTH_BETA]) {
        assert!(
            betas.contains(&flag),
            "anthropic-beta has {flag}: {betas:?}"
        );
    }
}

/// A Responses request as Codex CLI sends it (the ChatGPT backend only streams).
async fn responses_request(keyway: &Keyway) -> reqwest::Response {
    keyway
        .http
        .post(keyway.url("/v1/responses"))
        .bearer_auth(&keyway.client_key)
        .json(&json!({"model": "gpt-5", "input": "hi", "stream": true}))
        .send()
        .await
        .expect("request to keyway")
}

/// A Chat Completions request.
async fn chat_request(keyway: &Keyway) -> reqwest::Response {
    keyway
        .http
        .post(keyway.url("/v1/chat/completions"))
        .bearer_auth(&keyway.client_key)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("request to keyway")
}

/// Asserts that a Responses request served by ChatGPT login `id` went to the Codex backend
/// with the login's token and `chatgpt-account-id`.
async fn assert_chatgpt_login_serves(keyway: &Keyway, fake: &FakeUpstream, id: &str, label: &str) {
    let before = fake.requests().len();
    let r = responses_request(keyway).await;
    let status = r.status();
    let served_by = r.headers().get("x-keyway-account").cloned();
    let body = r.text().await.expect("stream");
    assert_eq!(status, 200, "{body}");
    assert_eq!(served_by.as_ref().map(|v| v.to_str().unwrap()), Some(id));
    assert!(
        body.contains("response.completed"),
        "the whole stream: {body}"
    );
    let sent = fake.requests()[before..].to_vec();
    assert_eq!(sent.len(), 1, "one upstream request: {sent:?}");
    let sent = &sent[0];
    assert_eq!(sent.path, "/backend-api/codex/responses");
    assert_eq!(sent.account.as_deref(), Some(label));
    let account_id = fake.openai_oauth().account(label).account_id;
    assert_eq!(sent.header("chatgpt-account-id"), Some(account_id.as_str()));
    assert!(
        sent.header("authorization")
            .is_some_and(|a| a.starts_with("Bearer ey")),
        "the login's JWT access token: {sent:?}"
    );
}

/// The `[providers.<provider>]` table of a config text: its lines up to the next header.
fn provider_table(config: &str, provider: &str) -> String {
    let header = format!("[providers.{provider}]");
    config
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether the config file records the terms confirmation for `provider`.
fn terms_recorded(setup: &Setup, provider: &str) -> bool {
    let text = std::fs::read_to_string(&setup.config_path).expect("config");
    provider_table(&text, provider)
        .lines()
        .any(|l| l.split_whitespace().collect::<String>() == "oauth_terms_accepted=true")
}

/// The account view of `id` in `keyway account list --json` against the running instance.
async fn listed(keyway: &Keyway, id: &str) -> Value {
    let out = keyway.cli(&["account", "list", "--json"]).await;
    let all: Value = serde_json::from_str(out.ok()).expect("account list --json prints JSON");
    all.as_array()
        .expect("an array")
        .iter()
        .find(|a| a["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no {id} in {all}"))
}

/// Polls `GET /api/logins/{id}` until the login is no longer pending (bounded).
async fn login_outcome(keyway: &Keyway, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = keyway.api_get(&format!("/logins/{id}")).await;
        if view["state"] != "pending" {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "login {id} still pending after {WAIT:?}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `POST /api/logins` with `body`; status and JSON.
async fn start_api_login(keyway: &Keyway, body: Value) -> (u16, Value) {
    let r = keyway
        .api(Method::POST, "/logins")
        .json(&body)
        .send()
        .await
        .expect("api");
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

// ---------------------------------------------------------------------------------------------
// Browser logins from the CLI
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cli_browser_login_to_claude_adds_a_login_that_serves_with_bearer_and_oauth_beta() {
    let fake = FakeUpstream::start().await;
    fake.claude_oauth().login_as("alice");
    let keyway = Setup::new(&fake.base_url(), "").start().await;

    let mut cli = RunningCli::spawn(login_command(
        &keyway.setup,
        &[
            "account",
            "login",
            "anthropic",
            "--label",
            "Claude Max",
            "--accept-terms-risk",
        ],
    ));
    let url = cli.login_url().await;
    assert!(
        url.starts_with(&fake.url("/oauth/authorize?")),
        "the configured authorize page: {url}"
    );
    assert!(
        url.contains(&form_urlencoded_value(
            &keyway.setup.redirect_uri("anthropic")
        )),
        "Keyway's loopback callback is the redirect: {url}"
    );
    let page = open_page(&url).await;
    assert!(page.contains("login complete"), "callback page: {page}");
    let out = cli.finish().await;
    let id = new_id(&out, "anthropic");
    assert!(
        out.stderr.contains("could not open a browser"),
        "the user is told to open the page: {out:?}"
    );
    assert_eq!(fake.claude_oauth().token_calls(), 1, "one code exchange");
    assert!(
        terms_recorded(&keyway.setup, "anthropic"),
        "the confirmation is recorded for anthropic"
    );

    let view = wait_serving(&keyway, &id).await;
    assert_eq!(view["kind"], "oauth", "{view}");
    assert_eq!(view["label"], "Claude Max");
    assert_eq!(view["provider"], "anthropic");
    let listed = listed(&keyway, &id).await;
    assert_eq!(listed["kind"], "oauth", "{listed}");
    assert_eq!(listed["live"]["state"], "serving", "{listed}");

    assert_claude_login_serves(&keyway, &fake, &id, "alice").await;
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn cli_browser_login_to_chatgpt_serves_responses_via_codex_and_is_skipped_for_chat() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let openai = fake.openai_oauth();
    openai.set_redirect_uris(Some(&[&setup.redirect_uri("openai")]));
    openai.login_as("bob");
    let keyway = setup.start().await;

    // --no-browser: print the URL only; ChatGPT still redirects to the loopback callback.
    let mut cli = RunningCli::spawn(login_command(
        &keyway.setup,
        &[
            "account",
            "login",
            "openai",
            "--label",
            "ChatGPT Pro",
            "--no-browser",
            "--accept-terms-risk",
        ],
    ));
    let url = cli.login_url().await;
    let page = open_page(&url).await;
    assert!(page.contains("login complete"), "callback page: {page}");
    let out = cli.finish().await;
    let id = new_id(&out, "openai");
    assert!(terms_recorded(&keyway.setup, "openai"));
    assert!(
        !terms_recorded(&keyway.setup, "anthropic"),
        "confirming OpenAI's terms says nothing about Anthropic's"
    );
    let view = wait_serving(&keyway, &id).await;
    assert_eq!(view["kind"], "oauth", "{view}");

    assert_chatgpt_login_serves(&keyway, &fake, &id, "bob").await;

    // Chat Completions cannot go to the ChatGPT backend: with no API key account, 503.
    let before = fake.requests().len();
    let r = chat_request(&keyway).await;
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.expect("json error");
    assert!(
        body["error"]["message"].is_string(),
        "OpenAI error shape: {body}"
    );
    assert_eq!(fake.requests().len(), before, "nothing was sent upstream");

    // With an API key account, Chat Completions go there and never to the login.
    fake.register_key(Provider::OpenAi, "sk-openai-key");
    let r = keyway
        .api(Method::POST, "/accounts")
        .json(&json!({"provider": "openai", "label": "Key", "secret": "sk-openai-key"}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 201);
    let key_id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for _ in 0..3 {
        let r = chat_request(&keyway).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-keyway-account"], key_id.as_str());
    }
    let chats: Vec<_> = fake.requests()[before..].to_vec();
    assert_eq!(chats.len(), 3, "{chats:?}");
    for sent in &chats {
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(sent.key.as_deref(), Some("sk-openai-key"));
        assert_eq!(sent.header("chatgpt-account-id"), None);
    }
    assert_eq!(keyway.stop().await, Some(0));
}

// ---------------------------------------------------------------------------------------------
// Pasted codes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cli_login_takes_the_code_claude_shows_when_the_browser_is_elsewhere() {
    let fake = FakeUpstream::start().await;
    fake.claude_oauth().login_as("carol");
    let keyway = Setup::new(&fake.base_url(), "").start().await;

    let mut cli = RunningCli::spawn(login_command(
        &keyway.setup,
        &[
            "account",
            "login",
            "anthropic",
            "--label",
            "Remote",
            "--no-browser",
            "--accept-terms-risk",
        ],
    ));
    let url = cli.login_url().await;
    assert!(
        url.contains(&form_urlencoded_value(&fake.url("/oauth/code/callback"))),
        "Claude's code page is the redirect: {url}"
    );
    // The browser on another machine ends on Claude's page showing `code#state`.
    let shown = open_page(&url).await;
    assert_eq!(
        shown,
        fake.claude_oauth().last_code().expect("a code").pasted()
    );
    cli.type_line(&shown).await;
    let out = cli.finish().await;
    let id = new_id(&out, "anthropic");
    assert_eq!(fake.claude_oauth().token_calls(), 1);

    wait_serving(&keyway, &id).await;
    assert_claude_login_serves(&keyway, &fake, &id, "carol").await;
    assert_eq!(keyway.stop().await, Some(0));
}

// ---------------------------------------------------------------------------------------------
// Logins through the management API
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn api_login_follows_the_browser_redirect_for_claude_and_chatgpt() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    fake.openai_oauth()
        .set_redirect_uris(Some(&[&setup.redirect_uri("openai")]));
    fake.claude_oauth().login_as("dora");
    fake.openai_oauth().login_as("ed");
    let keyway = setup.start().await;

    for (provider, label, fake_label) in [("anthropic", "Dora", "dora"), ("openai", "Ed", "ed")] {
        let (status, view) = start_api_login(
            &keyway,
            json!({"provider": provider, "label": label, "accept_terms_risk": true}),
        )
        .await;
        assert_eq!(status, 201, "{view}");
        assert_eq!(view["state"], "pending", "{view}");
        let url = view["url"].as_str().expect("url to open").to_owned();
        let page = open_page(&url).await;
        assert!(page.contains("login complete"), "callback page: {page}");
        let done = login_outcome(&keyway, view["id"].as_str().expect("login id")).await;
        assert_eq!(done["state"], "done", "{done}");
        let id = done["account_id"].as_str().expect("account_id").to_owned();
        let account = wait_serving(&keyway, &id).await;
        assert_eq!(account["kind"], "oauth");
        assert_eq!(account["label"], label);
        assert!(
            terms_recorded(&keyway.setup, provider),
            "an API login records the confirmation for {provider}"
        );
        match provider {
            "anthropic" => assert_claude_login_serves(&keyway, &fake, &id, fake_label).await,
            _ => assert_chatgpt_login_serves(&keyway, &fake, &id, fake_label).await,
        }
    }
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn api_login_takes_a_pasted_code_or_the_address_the_browser_ended_on() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    fake.claude_oauth().login_as("fay");
    fake.openai_oauth().login_as("gus");
    fake.openai_oauth()
        .set_redirect_uris(Some(&[&setup.redirect_uri("openai")]));
    let keyway = setup.start().await;

    // Claude: the code page shows `code#state`, which the user pastes.
    let (status, view) = start_api_login(
        &keyway,
        json!({"provider": "anthropic", "label": "Fay", "manual": true, "accept_terms_risk": true}),
    )
    .await;
    assert_eq!(status, 201, "{view}");
    let login = view["id"].as_str().expect("login id").to_owned();
    let shown = open_page(view["url"].as_str().expect("url")).await;
    let r = keyway
        .api(Method::POST, &format!("/logins/{login}/code"))
        .json(&json!({"code": shown}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 202);
    let done = login_outcome(&keyway, &login).await;
    assert_eq!(done["state"], "done", "{done}");
    let id = done["account_id"].as_str().expect("account_id").to_owned();
    wait_serving(&keyway, &id).await;
    assert_claude_login_serves(&keyway, &fake, &id, "fay").await;

    // A finished login takes no more codes.
    let r = keyway
        .api(Method::POST, &format!("/logins/{login}/code"))
        .json(&json!({"code": shown}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 409);

    // ChatGPT: a browser on another machine cannot reach this machine's callback; the user
    // pastes the address it ended on.
    let (status, view) = start_api_login(
        &keyway,
        json!({"provider": "openai", "label": "Gus", "accept_terms_risk": true}),
    )
    .await;
    assert_eq!(status, 201, "{view}");
    let login = view["id"].as_str().expect("login id").to_owned();
    let elsewhere = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = elsewhere
        .get(view["url"].as_str().expect("url"))
        .send()
        .await
        .expect("authorize page");
    assert_eq!(r.status(), 302);
    let address = r.headers()["location"].to_str().expect("ascii").to_owned();
    assert!(
        address.starts_with(&keyway.setup.redirect_uri("openai")),
        "{address}"
    );
    let r = keyway
        .api(Method::POST, &format!("/logins/{login}/code"))
        .json(&json!({"code": address}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 202);
    let done = login_outcome(&keyway, &login).await;
    assert_eq!(done["state"], "done", "{done}");
    let id = done["account_id"].as_str().expect("account_id").to_owned();
    wait_serving(&keyway, &id).await;
    assert_chatgpt_login_serves(&keyway, &fake, &id, "gus").await;
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn beta_flags_sent_as_separate_header_lines_all_reach_anthropic_with_a_login() {
    let fake = FakeUpstream::start().await;
    let keyway = Setup::new(&fake.base_url(), "").start().await;
    let tokens = fake
        .claude_oauth()
        .issue_tokens("liz", Duration::from_secs(8 * 3600));
    let home = tempfile::tempdir().expect("home");
    let file = write_claude_credentials(home.path(), &tokens, "max").expect("credentials");
    let r = keyway
        .api(Method::POST, "/imports")
        .json(&json!({"source": "claude-code", "path": file, "accept_terms_risk": true}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.expect("json")["account"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    wait_serving(&keyway, &id).await;

    // HTTP allows a list header as several lines; each line's flags are the client's.
    let r = keyway
        .post(
            "/v1/messages",
            &json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
                    "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .header("anthropic-beta", "fine-grained-tool-streaming-2025-05-14")
        .send()
        .await
        .expect("request to keyway");
    assert_eq!(r.status(), 200);
    let sent = fake.requests().pop().expect("a request");
    let betas: Vec<String> = sent
        .headers
        .iter()
        .filter(|(n, _)| n == "anthropic-beta")
        .flat_map(|(_, v)| v.split(',').map(|f| f.trim().to_owned()))
        .collect();
    for flag in [
        "interleaved-thinking-2025-05-14",
        "fine-grained-tool-streaming-2025-05-14",
        OAUTH_BETA,
    ] {
        assert!(
            betas.iter().any(|b| b == flag),
            "anthropic-beta has {flag}: {betas:?}"
        );
    }
    assert_eq!(keyway.stop().await, Some(0));
}

// ---------------------------------------------------------------------------------------------
// Device code
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn chatgpt_device_code_login_from_the_cli_and_the_api() {
    let fake = FakeUpstream::start().await;
    let openai = fake.openai_oauth();
    let keyway = Setup::new(&fake.base_url(), "").start().await;

    // CLI: shows where to go and the code, waits for the approval.
    openai.login_as("gina");
    let mut cli = RunningCli::spawn(login_command(
        &keyway.setup,
        &[
            "account",
            "login",
            "openai",
            "--label",
            "Gina",
            "--device-code",
            "--accept-terms-risk",
        ],
    ));
    let line = cli.line_with("enter the code").await;
    let code = line.split_whitespace().last().expect("code").to_owned();
    assert!(
        line.contains(&fake.url("/codex/device")),
        "names the page: {line}"
    );
    assert_eq!(openai.pending_device_codes(), std::slice::from_ref(&code));
    assert!(openai.approve_device(&code));
    let out = cli.finish().await;
    let gina = new_id(&out, "openai");
    wait_serving(&keyway, &gina).await;
    assert_chatgpt_login_serves(&keyway, &fake, &gina, "gina").await;

    // API: the view carries the code and the page; the dashboard polls until done.
    openai.login_as("hal");
    let (status, view) = start_api_login(
        &keyway,
        json!({"provider": "openai", "label": "Hal", "device_code": true, "accept_terms_risk": true}),
    )
    .await;
    assert_eq!(status, 201, "{view}");
    let code = view["user_code"].as_str().expect("user_code").to_owned();
    assert_eq!(
        view["verification_url"].as_str(),
        Some(fake.url("/codex/device").as_str())
    );
    assert!(openai.approve_device(&code));
    let done = login_outcome(&keyway, view["id"].as_str().expect("id")).await;
    assert_eq!(done["state"], "done", "{done}");
    let hal = done["account_id"].as_str().expect("account_id").to_owned();
    wait_serving(&keyway, &hal).await;
    assert_eq!(openai.token_calls(), 2, "one code exchange per login");

    // Both logins now share the Responses traffic (round-robin), each as its own account.
    let before = fake.requests().len();
    for _ in 0..4 {
        let r = responses_request(&keyway).await;
        assert_eq!(r.status(), 200);
        let _ = r.text().await;
    }
    let mut used: Vec<String> = fake.requests()[before..]
        .iter()
        .filter_map(|r| r.account.clone())
        .collect();
    used.sort();
    assert_eq!(used, ["gina", "gina", "hal", "hal"]);
    assert_eq!(keyway.stop().await, Some(0));
}

// ---------------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------------

/// Asserts an import's output: the id last on stdout, the sharing warning on stderr.
fn assert_import(out: &CliOutput, provider: &str, warning: &str) -> String {
    let id = new_id(out, provider);
    assert!(
        out.stderr.contains(warning),
        "warns that the login stays shared with the CLI: {out:?}"
    );
    id
}

#[tokio::test]
async fn imports_claude_code_and_codex_cli_logins_from_their_credential_files() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let home = tempfile::tempdir().expect("home");

    // Claude Code's file in its default place under HOME.
    fake.claude_oauth()
        .write_credentials(home.path(), "ida")
        .expect("write Claude Code credentials");
    let mut import = setup.cli_command(&[
        "account",
        "import",
        "claude-code",
        "--label",
        "Claude Code",
        "--accept-terms-risk",
    ]);
    import.env("HOME", home.path()).stdin(Stdio::null());
    let out = RunningCli::spawn(import).finish().await;
    let ida = assert_import(&out, "anthropic", "still Claude Code's too");

    // Codex CLI's file from an explicit path.
    fake.openai_oauth()
        .write_codex_auth(home.path(), "jo")
        .expect("write Codex auth");
    let auth = home.path().join(".codex").join("auth.json");
    let out = setup
        .cli(&[
            "account",
            "import",
            "codex-cli",
            "--from",
            auth.to_str().expect("utf-8 path"),
            "--accept-terms-risk",
        ])
        .await;
    let jo = assert_import(&out, "openai", "refresh_token_reused");

    let keyway = setup.start().await;
    let accounts = keyway.api_get("/accounts").await;
    let jo_view = accounts
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["id"] == jo.as_str())
        .expect("imported Codex login")
        .clone();
    assert_eq!(
        jo_view["label"], "Codex CLI login",
        "default label: {jo_view}"
    );
    assert_eq!(jo_view["kind"], "oauth");
    assert_claude_login_serves(&keyway, &fake, &ida, "ida").await;
    assert_chatgpt_login_serves(&keyway, &fake, &jo, "jo").await;

    // Through the API: the account and the same warning.
    let tokens = fake
        .claude_oauth()
        .issue_tokens("kim", Duration::from_secs(8 * 3600));
    let other = tempfile::tempdir().expect("other home");
    let file = write_claude_credentials(other.path(), &tokens, "pro").expect("credentials");
    let r = keyway
        .api(Method::POST, "/imports")
        .json(
            &json!({"source": "claude-code", "path": file, "label": "Kim",
                      "accept_terms_risk": true}),
        )
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["account"]["kind"], "oauth", "{body}");
    assert_eq!(body["account"]["label"], "Kim");
    assert!(
        body["warning"]
            .as_str()
            .is_some_and(|w| w.contains("still Claude Code's too")),
        "{body}"
    );
    let kim = body["account"]["id"].as_str().expect("id").to_owned();
    wait_serving(&keyway, &kim).await;
    assert_claude_login_serves_via(&keyway, &fake, &kim, "kim").await;

    // A file that holds no login is named.
    let junk = other.path().join("junk.json");
    std::fs::write(&junk, "{}").expect("write");
    let out = keyway
        .cli(&[
            "account",
            "import",
            "codex-cli",
            "--from",
            junk.to_str().expect("utf-8"),
        ])
        .await;
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("junk.json") && out.stderr.contains("no openai login"),
        "{out:?}"
    );
    assert_eq!(keyway.stop().await, Some(0));
}

/// Like [`assert_claude_login_serves`], for a pool where another login may be picked first:
/// sends until `id` serves (round-robin reaches it within the pool size).
async fn assert_claude_login_serves_via(
    keyway: &Keyway,
    fake: &FakeUpstream,
    id: &str,
    label: &str,
) {
    let mut served = Vec::new();
    for _ in 0..4 {
        let before = fake.requests().len();
        let r = claude_code_request(keyway).await;
        assert_eq!(r.status(), 200);
        let by = r.headers()["x-keyway-account"].to_str().unwrap().to_owned();
        if by == id {
            let sent = &fake.requests()[before];
            assert_eq!(sent.account.as_deref(), Some(label));
            return;
        }
        served.push(by);
    }
    panic!("{id} never served in round-robin: {served:?}");
}

// ---------------------------------------------------------------------------------------------
// Terms risk
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_terms_risk_is_confirmed_once_per_provider() {
    let fake = FakeUpstream::start().await;
    let keyway = Setup::new(&fake.base_url(), "").start().await;
    let home = tempfile::tempdir().expect("home");
    let claude_file = {
        let t = fake
            .claude_oauth()
            .issue_tokens("lea", Duration::from_secs(8 * 3600));
        write_claude_credentials(home.path(), &t, "max").expect("credentials")
    };
    let claude_path = claude_file.to_str().expect("utf-8").to_owned();
    let config_before = std::fs::read_to_string(&keyway.setup.config_path).expect("config");

    // CLI without a terminal and without the flag: refused, naming the risk and the flag.
    let out = keyway
        .cli(&["account", "login", "anthropic", "--label", "X"])
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("Anthropic's terms") && out.stderr.contains("--accept-terms-risk"),
        "{out:?}"
    );
    let out = keyway
        .cli(&["account", "import", "claude-code", "--from", &claude_path])
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("Anthropic's terms"), "{out:?}");
    let out = keyway
        .cli(&[
            "account",
            "login",
            "openai",
            "--label",
            "X",
            "--device-code",
        ])
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("OpenAI has not said") && out.stderr.contains("--accept-terms-risk"),
        "{out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&keyway.setup.config_path).expect("config"),
        config_before,
        "a refusal changes nothing"
    );
    assert!(
        fake.openai_oauth().pending_device_codes().is_empty(),
        "no device login was started"
    );

    // API: 400 with the statement, unless accept_terms_risk is true.
    for (path, body, statement) in [
        (
            "/logins",
            json!({"provider": "anthropic", "label": "X"}),
            "Anthropic's terms",
        ),
        (
            "/logins",
            json!({"provider": "openai", "label": "X", "device_code": true}),
            "OpenAI has not said",
        ),
        (
            "/imports",
            json!({"source": "claude-code", "path": claude_path}),
            "Anthropic's terms",
        ),
    ] {
        let r = keyway
            .api(Method::POST, path)
            .json(&body)
            .send()
            .await
            .expect("api");
        assert_eq!(r.status(), 400, "{path} {body}");
        let e: Value = r.json().await.expect("json");
        let message = e["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(statement) && message.contains("\"accept_terms_risk\": true"),
            "{path}: {message}"
        );
    }
    assert_eq!(keyway.api_get("/accounts").await, json!([]));
    assert!(!terms_recorded(&keyway.setup, "anthropic"));

    // Confirmed once (CLI flag): recorded in the config for that provider only...
    let out = keyway
        .cli(&[
            "account",
            "import",
            "claude-code",
            "--from",
            &claude_path,
            "--label",
            "Lea",
            "--accept-terms-risk",
        ])
        .await;
    let lea = new_id(&out, "anthropic");
    assert!(terms_recorded(&keyway.setup, "anthropic"));
    assert!(!terms_recorded(&keyway.setup, "openai"));
    wait_serving(&keyway, &lea).await;

    // ...and not asked again: not by the CLI, not by the API.
    let second = {
        let t = fake
            .claude_oauth()
            .issue_tokens("max", Duration::from_secs(8 * 3600));
        let other = tempfile::tempdir().expect("home");
        let file = write_claude_credentials(other.path(), &t, "max").expect("credentials");
        let out = keyway
            .cli(&[
                "account",
                "import",
                "claude-code",
                "--from",
                file.to_str().expect("utf-8"),
                "--label",
                "Max",
            ])
            .await;
        new_id(&out, "anthropic")
    };
    wait_serving(&keyway, &second).await;
    let (status, view) =
        start_api_login(&keyway, json!({"provider": "anthropic", "label": "Y"})).await;
    assert_eq!(status, 201, "{view}");
    // OpenAI's risk is still unconfirmed.
    let (status, _) = start_api_login(
        &keyway,
        json!({"provider": "openai", "label": "Y", "device_code": true}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(keyway.stop().await, Some(0));
}

/// Codex CLI's `auth.json` imported through the management API: the login serves Responses
/// and the answer warns that it stays shared with Codex CLI.
#[tokio::test]
async fn api_import_of_a_codex_cli_file_serves_responses() {
    let fake = FakeUpstream::start().await;
    let keyway = Setup::new(&fake.base_url(), "").start().await;
    let tokens = fake
        .openai_oauth()
        .issue_tokens("ned", Duration::from_secs(24 * 3600));
    let home = tempfile::tempdir().expect("home");
    let file = write_codex_auth(home.path(), &tokens).expect("auth.json");
    let r = keyway
        .api(Method::POST, "/imports")
        .json(&json!({"source": "codex-cli", "path": file, "accept_terms_risk": true}))
        .send()
        .await
        .expect("api");
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.expect("json");
    assert!(
        body["warning"]
            .as_str()
            .is_some_and(|w| w.contains("still Codex CLI's too")),
        "{body}"
    );
    let id = body["account"]["id"].as_str().expect("id").to_owned();
    wait_serving(&keyway, &id).await;
    assert_chatgpt_login_serves(&keyway, &fake, &id, "ned").await;
    assert!(
        Path::new(&file).exists(),
        "the CLI's own file is left alone"
    );
    assert_eq!(keyway.stop().await, Some(0));
}
