//! The translation conformance matrix, checked with the official SDKs: every client surface
//! (Anthropic Messages, OpenAI Chat Completions and Responses, Gemini), driven by its own
//! Python SDK unmodified, against each of the three upstream formats (the same-format pairs
//! too, which pass through), streamed and not, through text, tool calls, parallel calls, tool
//! results, images, reasoning, a tool loop that sends the SDK's own answer back, and two
//! upstream errors. `tests/sdk/translation_check.py` runs the cases and judges each answer as
//! its SDK parsed it; this side runs the fake upstream and Keyway, scripts the upstream errors
//! the script asks for, tells it what reached the upstream, and reports every failed case.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use keyway_tests::{Behaviour, FakeUpstream, Keyway, Provider, RateLimit, Setup};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// One upstream format: the model a client asks for to reach it, the account serving it.
struct Route {
    /// The format's name in the script (`anthropic`, `openai`, `gemini`).
    format: &'static str,
    provider: Provider,
    /// Keyway's provider id.
    provider_id: &'static str,
    key: &'static str,
    /// The model clients ask for; an alias sends it to the provider's `target`.
    model: &'static str,
    target: &'static str,
}

const ROUTES: [Route; 3] = [
    Route {
        format: "anthropic",
        provider: Provider::Anthropic,
        provider_id: "anthropic",
        key: "sk-ant-matrix",
        model: "to-anthropic",
        target: "claude-sonnet-4-5",
    },
    Route {
        format: "openai",
        provider: Provider::OpenAi,
        provider_id: "openai",
        key: "sk-oa-matrix",
        model: "to-openai",
        target: "gpt-4o",
    },
    Route {
        format: "gemini",
        provider: Provider::Google,
        provider_id: "google",
        key: "AIza-matrix",
        model: "to-gemini",
        // A Gemini 3 model: the fake then wants a thought signature on the calls of the
        // current turn, as Gemini 3 does.
        target: "gemini-3-flash-preview",
    },
];

/// Clients × upstream formats × streamed or not × scenarios.
const CASES: usize = 4 * 3 * 2 * 9;

/// `$KEYWAY_SDK_PYTHON`, else the workspace's `.venv` that `scripts/test` makes.
fn sdk_python() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYWAY_SDK_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the SDKs: KEYWAY_SDK_PYTHON is unset and {} does not exist; run \
         scripts/test once (it creates .venv from tests/sdk/requirements.txt)",
        venv.display()
    );
    venv
}

/// The script's control requests: make the next request of an upstream's account fail, say
/// how many requests it got since, and whether the last one turned reasoning on.
struct Control<'a> {
    fake: &'a FakeUpstream,
    keyway: &'a Keyway,
    accounts: HashMap<&'static str, String>,
    armed: HashMap<String, usize>,
}

impl Control<'_> {
    fn route(format: &str) -> &'static Route {
        ROUTES
            .iter()
            .find(|r| r.format == format)
            .unwrap_or_else(|| panic!("the script named no upstream format: {format:?}"))
    }

    fn requests_with(&self, key: &str) -> usize {
        self.fake
            .requests()
            .iter()
            .filter(|r| r.key.as_deref() == Some(key))
            .count()
    }

    async fn answer(&mut self, request: &Value) -> Value {
        let format = request["upstream"].as_str().unwrap_or_default();
        let route = Self::route(format);
        match request["op"].as_str() {
            Some("arm") => {
                // Enabling forgets the cooldown an earlier 429 left, so the next request
                // reaches the upstream again.
                let r = self
                    .keyway
                    .api(
                        reqwest::Method::PATCH,
                        &format!("/accounts/{}", self.accounts[format]),
                    )
                    .json(&json!({"enabled": true}))
                    .send()
                    .await
                    .expect("PATCH account");
                assert!(r.status().is_success(), "enabling the account: {r:?}");
                let behaviour = match request["behaviour"].as_str() {
                    Some("rate_limit") => Behaviour::RateLimited(RateLimit::RetryAfter(30)),
                    Some("context_window") => Behaviour::ContextTooLong,
                    other => panic!("unknown behaviour {other:?} in {request}"),
                };
                self.armed
                    .insert(format.to_owned(), self.requests_with(route.key));
                self.fake.push(route.key, behaviour);
                json!({"ok": true})
            }
            Some("reasoning") => {
                let last = self
                    .fake
                    .requests()
                    .into_iter()
                    .rfind(|r| r.key.as_deref() == Some(route.key))
                    .unwrap_or_else(|| panic!("no request reached {format}"));
                let body = last.json().unwrap_or_default();
                json!({"reasoning": reasoning_on(&last.path, &body), "path": last.path})
            }
            Some("count") => {
                // A behaviour no request took (the SDK failed before sending) must not
                // answer the next case.
                self.fake.clear_scripts();
                let since = self.armed.get(format).copied().unwrap_or_default();
                json!({"requests": self.requests_with(route.key) - since})
            }
            _ => panic!("unknown control request {request}"),
        }
    }
}

/// Whether an upstream request body (of the format its path names) turns reasoning on.
fn reasoning_on(path: &str, body: &Value) -> bool {
    let not_none = |effort: &Value| effort.as_str().is_some_and(|e| e != "none");
    if path.starts_with("/v1/messages") {
        matches!(
            body["thinking"]["type"].as_str(),
            Some("enabled" | "adaptive")
        )
    } else if path.starts_with("/v1/chat/completions") {
        not_none(&body["reasoning_effort"])
    } else if path.starts_with("/v1/responses") {
        not_none(&body["reasoning"]["effort"])
    } else {
        let config = &body["generationConfig"]["thinkingConfig"];
        config["includeThoughts"] == true || config["include_thoughts"] == true
    }
}

/// One line per failed case: its name, what differed, and what its SDK made of the answer.
fn failures(report: &Value) -> String {
    let mut text = String::new();
    for case in report["cases"].as_array().into_iter().flatten() {
        if case["ok"] == true {
            continue;
        }
        let problems: Vec<&str> = case["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        text.push_str(&format!(
            "\n  {}: {}",
            case["name"].as_str().unwrap_or("?"),
            problems.join("; ")
        ));
        for what in ["answer", "error"] {
            if !case[what].is_null() {
                text.push_str(&format!("\n      {what}: {}", case[what]));
            }
        }
    }
    text
}

#[tokio::test]
async fn every_client_surface_is_served_by_every_upstream_format_in_its_own_shape() {
    let python = sdk_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk/translation_check.py");
    let fake = FakeUpstream::start().await;
    let mut aliases = String::from("[aliases]\n");
    for r in &ROUTES {
        aliases.push_str(&format!(
            "\"{}*\" = \"{}:{}\"\n",
            r.model, r.provider_id, r.target
        ));
    }
    let setup = Setup::new(&fake.base_url(), &aliases);
    let mut accounts = HashMap::new();
    for r in &ROUTES {
        fake.register_key(r.provider, r.key);
        let id = setup.add_account(r.provider_id, r.format, r.key).await;
        accounts.insert(r.format, id);
    }
    let keyway = setup.start().await;
    let routes: serde_json::Map<String, Value> = ROUTES
        .iter()
        .map(|r| (r.format.to_owned(), json!({"model": r.model, "key": r.key})))
        .collect();

    let mut child = Command::new(&python)
        .arg(&script)
        .env("KEYWAY_BASE_URL", format!("http://{}", keyway.addr))
        .env("KEYWAY_CLIENT_KEY", &keyway.client_key)
        .env("KEYWAY_ROUTES", Value::Object(routes).to_string())
        .env("KEYWAY_CONTROL", "1")
        .env("KEYWAY_SDK_TIMEOUT", "20")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = child.stderr.take().expect("stderr");
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });

    let mut control = Control {
        fake: &fake,
        keyway: &keyway,
        accounts,
        armed: HashMap::new(),
    };
    let mut last = String::new();
    let run = async {
        while let Some(line) = lines.next_line().await.expect("the script's stdout") {
            if let Some(request) = line.strip_prefix("KEYWAY-CONTROL ") {
                let request: Value = serde_json::from_str(request)
                    .unwrap_or_else(|e| panic!("a control request that is no JSON ({e}): {line}"));
                let reply = control.answer(&request).await;
                stdin
                    .write_all(format!("{reply}\n").as_bytes())
                    .await
                    .expect("answer the script");
                stdin.flush().await.expect("answer the script");
            } else if !line.trim().is_empty() {
                last = line;
            }
        }
        child.wait().await.expect("the script's exit")
    };
    let status = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("translation_check.py finishes within two minutes");
    let stderr = stderr.await.unwrap_or_default();
    let report: Value = serde_json::from_str(&last).unwrap_or_else(|e| {
        panic!(
            "translation_check.py printed no report ({e}, {status}): {last}\n{stderr}\nKeyway's \
             log:\n{}",
            keyway.logs()
        )
    });
    let failed = report["failed"].as_array().map_or(0, Vec::len);
    assert!(
        failed == 0,
        "{failed} of {} cases failed:{}\n\nthe script's stderr:\n{stderr}",
        report["cases"].as_array().map_or(0, Vec::len),
        failures(&report)
    );
    assert!(status.success(), "translation_check.py: {status}\n{stderr}");
    assert_eq!(
        report["cases"].as_array().map(Vec::len),
        Some(CASES),
        "every case ran: {report:#}"
    );
    assert_eq!(fake.unmatched(), Vec::<String>::new());
    assert_eq!(keyway.stop().await, Some(0));
}
