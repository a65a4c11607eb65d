//! The management API behind the dashboard, through the real binary: the live log and its
//! event stream, usage history that outlives a restart, policy previews that change nothing,
//! provider facts for forms, and settings that apply while running (the listener moves; a
//! port in use changes nothing).

use std::time::Duration;

use futures_util::StreamExt;
use keyway_tests::{FakeUpstream, Keyway, Provider, Setup};
use reqwest::Method;
use serde_json::{Value, json};

/// Longest any wait for an event or a moved listener may take.
const WAIT: Duration = Duration::from_secs(10);

async fn two_accounts(fake: &FakeUpstream) -> (Keyway, String, String) {
    fake.register_keys(Provider::Anthropic, ["sk-ant-work", "sk-ant-home"]);
    let setup = Setup::new(&fake.base_url(), "");
    let work = setup.add_account("anthropic", "Work", "sk-ant-work").await;
    let home = setup.add_account("anthropic", "Home", "sk-ant-home").await;
    (setup.start().await, work, home)
}

async fn streamed(keyway: &Keyway, model: &str) -> String {
    let r = keyway
        .post(
            "/v1/messages",
            &json!({"model": model, "max_tokens": 16, "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    r.text().await.expect("stream")
}

async fn send(keyway: &Keyway, method: Method, path: &str, body: &Value) -> (u16, Value) {
    let r = keyway
        .api(method, path)
        .json(body)
        .send()
        .await
        .expect("api");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_request_reaches_the_live_log_the_usage_history_and_survives_a_restart() {
    let fake = FakeUpstream::start().await;
    let (keyway, work, home) = two_accounts(&fake).await;

    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    r.bytes().await.expect("body");
    streamed(&keyway, "claude-haiku-4-5").await;

    // The live log lists both, oldest first, with what the dashboard shows.
    let log = keyway.api_get("/requests").await;
    let log = log.as_array().expect("array");
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["model"], "claude-sonnet-4-5");
    assert_eq!(log[0]["surface"], "anthropic_messages");
    assert_eq!(log[0]["family"], "sonnet");
    assert_eq!(log[0]["account"], work.as_str());
    assert_eq!(log[0]["account_label"], "Work");
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[0]["stream"], false);
    assert_eq!(log[0]["output_tokens"], 8);
    assert!(log[0]["input_tokens"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(log[1]["account"], home.as_str());
    assert_eq!(log[1]["stream"], true);
    assert_eq!(log[1]["output_tokens"], 3, "the last message_delta's count");

    let status = keyway.api_get("/status").await;
    assert_eq!(status["traffic"]["requests_last_minute"], 2);
    assert_eq!(status["traffic"]["errors_last_minute"], 0);
    let today: Vec<(String, u64)> = status["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| {
            (
                a["label"].as_str().unwrap_or_default().to_owned(),
                a["today"]["requests"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    assert_eq!(today, [("Work".to_owned(), 1), ("Home".to_owned(), 1)]);

    // The history is on disk: a restarted instance still reports it.
    let keyway = keyway.restart().await;
    let usage = keyway.api_get("/usage?days=7").await;
    assert_eq!(usage["days"], 7);
    assert_eq!(usage["by_day"].as_array().map(Vec::len), Some(1));
    assert_eq!(usage["by_day"][0]["requests"], 2);
    assert_eq!(usage["by_day"][0]["output_tokens"], 11);
    let by_account = usage["by_account"].as_array().expect("by_account");
    assert!(
        by_account
            .iter()
            .any(|a| a["key"] == work.as_str() && a["label"] == "Work" && a["requests"] == 1),
        "{by_account:?}"
    );
    let models: Vec<&str> = usage["by_model"]
        .as_array()
        .expect("by_model")
        .iter()
        .filter_map(|m| m["key"].as_str())
        .collect();
    assert_eq!(models, ["claude-haiku-4-5", "claude-sonnet-4-5"]);

    let csv = keyway
        .api(Method::GET, "/usage.csv?days=7")
        .send()
        .await
        .expect("csv");
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-disposition"]
            .to_str()
            .is_ok_and(|v| v.contains("attachment"))
    );
    let csv = csv.text().await.expect("csv text");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("time,surface,model,provider,family,account"));
    assert!(
        lines[1].contains(&format!(",anthropic,sonnet,{work},1,200,")),
        "{csv}"
    );
}

#[tokio::test]
async fn the_event_stream_carries_requests_and_state_changes_as_they_happen() {
    let fake = FakeUpstream::start().await;
    let (keyway, work, home) = two_accounts(&fake).await;

    let events = keyway
        .api(Method::GET, "/events")
        .send()
        .await
        .expect("events");
    assert_eq!(events.status(), 200);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .is_ok_and(|v| v.starts_with("text/event-stream"))
    );
    let mut body = events.bytes_stream();
    let mut seen = String::new();
    let mut next_event = async |name: &str| -> String {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(end) = seen.find("\n\n") {
                    let event: String = seen.drain(..end + 2).collect();
                    if event.contains(&format!("event: {name}\n")) {
                        return event;
                    }
                    continue;
                }
                let chunk = body.next().await.expect("stream open").expect("chunk");
                seen.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no `{name}` event within {WAIT:?}"))
    };

    keyway
        .anthropic("claude-opus-4-1")
        .await
        .bytes()
        .await
        .expect("body");
    let event = next_event("request").await;
    let data: Value = serde_json::from_str(
        event
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("data line"),
    )
    .expect("json data");
    assert_eq!(data["model"], "claude-opus-4-1");
    assert_eq!(data["account"], work.as_str());

    let (status, _) = send(
        &keyway,
        Method::PATCH,
        &format!("/accounts/{work}"),
        &json!({"enabled": false}),
    )
    .await;
    assert_eq!(status, 200);
    // `state` carries no facts of its own (`{}`): it tells a follower to fetch the status
    // again, which then shows the change.
    let event = next_event("state").await;
    assert_eq!(event, "event: state\ndata: {}\n\n");
    let accounts = keyway.api_get("/accounts").await;
    let listed = accounts
        .as_array()
        .and_then(|all| all.iter().find(|a| a["id"] == work.as_str()))
        .expect("Work listed");
    assert_eq!(listed["enabled"], false, "{listed}");
    let r = keyway.anthropic("claude-opus-4-1").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-keyway-account"],
        home.as_str(),
        "Work is out"
    );
}

/// The key the fake named in an Anthropic answer through Keyway.
async fn served_by(keyway: &Keyway) -> String {
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    body["content"][0]["text"]
        .as_str()
        .and_then(|t| t.strip_prefix("served by "))
        .expect("the fake names the key")
        .to_owned()
}

#[tokio::test]
async fn a_preview_shows_the_next_picks_and_changes_nothing() {
    let fake = FakeUpstream::start().await;
    let (keyway, work, home) = two_accounts(&fake).await;

    let (status, answer) = send(
        &keyway,
        Method::POST,
        "/policies/preview",
        &json!({"provider": "anthropic", "family": "opus", "strategy": "priority", "accounts": [home, work], "count": 4}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["picks"], json!([home, home, home, home]));

    // The live policy: round-robin over both, as configured; it serves Work, then would
    // serve Home.
    let (status, answer) = send(
        &keyway,
        Method::PUT,
        "/policies/anthropic",
        &json!({"strategy": "round_robin"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let before = std::fs::read_to_string(&keyway.setup.config_path).expect("config");
    assert_eq!(served_by(&keyway).await, "sk-ant-work");
    // A preview of the same round-robin starts from the first account, on a selector of its
    // own. Three picks do not divide the pool of two: had the preview moved the live
    // selector, its picks would start at Home and the live rotation would come out of step.
    let (status, answer) = send(
        &keyway,
        Method::POST,
        "/policies/preview",
        &json!({"provider": "anthropic", "strategy": "round_robin", "count": 3}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["picks"], json!([work, home, work]));

    let (status, answer) = send(
        &keyway,
        Method::POST,
        "/policies/preview",
        &json!({"provider": "anthropic", "strategy": "priority", "accounts": ["acc_nobody"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("acc_nobody")),
        "{answer}"
    );

    assert_eq!(
        std::fs::read_to_string(&keyway.setup.config_path).expect("config"),
        before,
        "a preview saves nothing"
    );
    // The live round-robin went on from where it was: Home, then Work.
    assert_eq!(served_by(&keyway).await, "sk-ant-home");
    assert_eq!(served_by(&keyway).await, "sk-ant-work");
    let policy = keyway.api_get("/policies").await;
    let anthropic = policy
        .as_array()
        .and_then(|all| all.iter().find(|p| p["key"] == "anthropic"))
        .expect("the anthropic policy");
    assert_eq!(anthropic["strategy"], "round_robin", "{anthropic}");
    assert_eq!(anthropic["configured"], true, "{anthropic}");
}

#[tokio::test]
async fn providers_say_which_offer_logins_and_what_terms_to_confirm() {
    let fake = FakeUpstream::start().await;
    let keyway = Setup::new(&fake.base_url(), "").start().await;
    let providers = keyway.api_get("/providers").await;
    let by_id = |id: &str| {
        providers
            .as_array()
            .and_then(|all| all.iter().find(|p| p["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("provider {id} in {providers}"))
    };
    let anthropic = by_id("anthropic");
    assert_eq!(anthropic["login"], true);
    assert!(anthropic["terms"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        anthropic["families"]
            .as_array()
            .is_some_and(|f| f.iter().any(|n| n == "opus"))
    );
    let google = by_id("google");
    assert_eq!(google["login"], false);
    assert_eq!(google["terms"], Value::Null);
}

#[tokio::test]
async fn the_listener_moves_to_a_new_port_and_a_port_in_use_changes_nothing() {
    let fake = FakeUpstream::start().await;
    let (keyway, _, _) = two_accounts(&fake).await;
    let config_before = std::fs::read_to_string(&keyway.setup.config_path).expect("config");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr").to_string();
    let (status, answer) = send(
        &keyway,
        Method::PATCH,
        "/settings",
        &json!({"listen": taken_addr, "log_level": "debug"}),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("in use")),
        "{answer}"
    );
    assert_eq!(
        std::fs::read_to_string(&keyway.setup.config_path).expect("config"),
        config_before
    );
    drop(taken);

    // Port 0: Keyway binds a free port itself, and saves the one it got.
    let (status, answer) = send(
        &keyway,
        Method::PATCH,
        "/settings",
        &json!({"listen": "127.0.0.1:0", "log_level": "debug"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let new_addr: std::net::SocketAddr = answer["listen"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("the new address in {answer}"));
    assert_eq!(new_addr.ip().to_string(), "127.0.0.1");
    assert!(new_addr.port() != 0 && new_addr != keyway.addr, "{answer}");
    assert_eq!(answer["log_level"], "debug");
    let saved = std::fs::read_to_string(&keyway.setup.config_path).expect("config");
    assert!(
        saved.contains(&format!("listen = \"{new_addr}\"")),
        "{saved}"
    );
    assert!(saved.contains("log_level = \"debug\""), "{saved}");

    // The proxy answers on the new address with the same client key.
    let r = keyway
        .http
        .post(format!("http://{new_addr}/v1/messages"))
        .header("x-api-key", &keyway.client_key)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("request on the new address");
    assert_eq!(r.status(), 200);
    // The old address stops accepting new connections.
    let old = keyway.addr;
    tokio::time::timeout(WAIT, async {
        while tokio::net::TcpStream::connect(old).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the old listener closes");
    // Commands find the instance at its new address.
    let status = keyway.setup.cli(&["status", "--json"]).await;
    let status: Value = serde_json::from_str(status.ok()).expect("status json");
    assert_eq!(status["listen"], new_addr.to_string());
}

#[tokio::test]
async fn the_dashboard_page_is_refused_to_foreign_hosts() {
    let fake = FakeUpstream::start().await;
    let keyway = Setup::new(&fake.base_url(), "").start().await;
    let r = keyway
        .http
        .get(keyway.url("/"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("page");
    assert_eq!(r.status(), 403);
    let r = keyway.http.get(keyway.url("/")).send().await.expect("page");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .is_ok_and(|v| v.starts_with("text/html"))
    );
}

#[tokio::test]
async fn an_open_event_stream_does_not_hold_up_shutdown() {
    let fake = FakeUpstream::start().await;
    let keyway = Setup::new(&fake.base_url(), "").start().await;
    let events = keyway
        .api(Method::GET, "/events")
        .send()
        .await
        .expect("events");
    assert_eq!(events.status(), 200);
    let mut body = events.bytes_stream();
    let (code, log) = keyway.stop_with_logs().await;
    assert_eq!(code, Some(0));
    // The stream ended cleanly instead of being cut when the drain ran out.
    tokio::time::timeout(WAIT, async { while let Some(Ok(_)) = body.next().await {} })
        .await
        .expect("the event stream ends");
    assert!(!log.contains("did not finish in time"), "{log}");
}

#[tokio::test]
async fn a_cancelled_login_frees_its_callback_port_for_the_next_one() {
    let fake = FakeUpstream::start().await;
    let keyway = Setup::new(&fake.base_url(), "").start().await;
    let start = json!({"provider": "anthropic", "label": "Max", "accept_terms_risk": true});
    let (status, first) = send(&keyway, Method::POST, "/logins", &start).await;
    assert_eq!(status, 201, "{first}");
    let id = first["id"].as_str().expect("login id").to_owned();

    // While it waits, it holds the callback port: a second browser login cannot start.
    let (status, refused) = send(&keyway, Method::POST, "/logins", &start).await;
    assert_eq!(status, 400, "{refused}");

    let (status, cancelled) = send(
        &keyway,
        Method::DELETE,
        &format!("/logins/{id}"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "failed");
    assert!(
        cancelled["error"]
            .as_str()
            .is_some_and(|e| e.contains("cancelled"))
    );
    assert_eq!(
        keyway.api_get(&format!("/logins/{id}")).await["state"],
        "failed"
    );
    let (status, _) = send(
        &keyway,
        Method::DELETE,
        &format!("/logins/{id}"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 409, "an ended login cannot be cancelled again");

    // The port is free at once: the next login starts.
    let (status, second) = send(&keyway, Method::POST, "/logins", &start).await;
    assert_eq!(status, 201, "{second}");
}

#[tokio::test]
async fn dashboard_url_prints_the_running_instances_page_with_its_token() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let stopped = setup.cli(&["dashboard-url"]).await;
    assert_eq!(stopped.code, Some(1), "{stopped:?}");
    assert!(stopped.stderr.contains("--headless"), "{stopped:?}");

    let keyway = setup.start().await;
    let url = keyway.setup.cli(&["dashboard-url"]).await;
    assert_eq!(
        url.ok(),
        format!("http://{}/#token={}", keyway.addr, keyway.management_token)
    );
    // The page at that address is the dashboard (or, in a build without it, says how to
    // build it), served without the token, which stays in the fragment.
    let page = keyway.http.get(keyway.url("/")).send().await.expect("page");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .is_ok_and(|v| v.starts_with("text/html"))
    );
}

#[tokio::test]
async fn pause_refuses_client_requests_with_503_in_each_shape_until_resume() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-work");
    fake.register_key(Provider::OpenAi, "sk-oai-work");
    fake.register_key(Provider::Google, "AIza-work");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "A", "sk-ant-work").await;
    setup.add_account("openai", "O", "sk-oai-work").await;
    setup.add_account("google", "G", "AIza-work").await;
    let keyway = setup.start().await;
    let key = keyway.client_key.clone();
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let gemini = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    // One request per surface; the error's kind and message where each surface puts them.
    let each = async || {
        let anthropic = keyway.anthropic("claude-sonnet-4-5").await;
        let responses = keyway
            .http
            .post(keyway.url("/v1/responses"))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt-5", "input": "hi"}))
            .send()
            .await
            .expect("responses");
        let chat = keyway
            .http
            .post(keyway.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&chat)
            .send()
            .await
            .expect("chat");
        let gemini = keyway
            .http
            .post(keyway.url("/v1beta/models/gemini-2.5-pro:generateContent"))
            .header("x-goog-api-key", &key)
            .json(&gemini)
            .send()
            .await
            .expect("gemini");
        let mut out = Vec::new();
        for (surface, r) in [
            ("anthropic", anthropic),
            ("responses", responses),
            ("chat", chat),
            ("gemini", gemini),
        ] {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            out.push((surface, status, body));
        }
        out
    };
    for (surface, status, body) in each().await {
        assert_eq!(status, 200, "{surface} before the pause: {body}");
    }

    let (status, answer) = send(&keyway, Method::POST, "/pause", &json!({})).await;
    assert_eq!((status, answer), (200, json!({"paused": true})));
    assert_eq!(keyway.api_get("/status").await["paused"], true);
    let before = fake.requests().len();
    for (surface, status, body) in each().await {
        assert_eq!(status, 503, "{surface} while paused: {body}");
        let (kind, message) = match surface {
            "anthropic" => {
                assert_eq!(body["type"], "error", "{body}");
                (&body["error"]["type"], &body["error"]["message"])
            }
            "gemini" => (&body["error"]["status"], &body["error"]["message"]),
            _ => (&body["error"]["type"], &body["error"]["message"]),
        };
        let expected_kind = match surface {
            "anthropic" => "api_error",
            "gemini" => "UNAVAILABLE",
            _ => "server_error",
        };
        assert_eq!(kind, expected_kind, "{surface}: {body}");
        assert!(
            message.as_str().is_some_and(|m| m.contains("paused")),
            "{surface} says why: {body}"
        );
    }
    assert_eq!(fake.requests().len(), before, "nothing went upstream");
    // The management API works while paused; only client routes are refused.
    assert_eq!(
        keyway.api_get("/accounts").await.as_array().map(Vec::len),
        Some(3)
    );

    let (status, answer) = send(&keyway, Method::POST, "/resume", &json!({})).await;
    assert_eq!((status, answer), (200, json!({"paused": false})));
    assert_eq!(keyway.api_get("/status").await["paused"], false);
    for (surface, status, body) in each().await {
        assert_eq!(status, 200, "{surface} after resuming: {body}");
    }
    assert_eq!(fake.requests().len(), before + 4);
}

/// A history an older Keyway wrote (a row per request in `requests`) is moved to the totals
/// and the per-day log when Keyway starts, and what is older than the retention goes, from
/// the files themselves.
#[tokio::test]
async fn an_older_usage_history_is_moved_and_keeps_only_its_retention() {
    const DAY_MS: u64 = 86_400_000;
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-work");
    let setup = Setup::new(&fake.base_url(), "usage_retention_days = 30\n");
    setup.add_account("anthropic", "Work", "sk-ant-work").await;

    // Rows from an older Keyway: 40 days old (past the retention) and 10 days old.
    let data = setup.data_dir();
    std::fs::create_dir_all(&data).expect("data dir");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    {
        let db = rusqlite::Connection::open(data.join("usage.sqlite3")).expect("the usage history");
        db.execute_batch(
            "CREATE TABLE requests (time_ms INTEGER NOT NULL, surface TEXT NOT NULL, model TEXT,
                 provider TEXT NOT NULL, family TEXT, account TEXT, attempts INTEGER NOT NULL,
                 status INTEGER NOT NULL, latency_ms INTEGER NOT NULL, input_tokens INTEGER,
                 output_tokens INTEGER, cache_read_tokens INTEGER, cache_write_tokens INTEGER,
                 session TEXT, placement TEXT, client_key TEXT, cost_usd REAL, saved_usd REAL,
                 requested_model TEXT, route TEXT);
             CREATE INDEX requests_time ON requests (time_ms);",
        )
        .expect("an older schema");
        for (model, age_days) in [("claude-old", 40), ("claude-recent", 10)] {
            db.execute(
                "INSERT INTO requests (time_ms, surface, model, provider, family, account, \
                 attempts, status, latency_ms, input_tokens, output_tokens) \
                 VALUES (?1, 'anthropic_messages', ?2, 'anthropic', 'sonnet', NULL, 1, 200, 5, 3, 4)",
                rusqlite::params![(now_ms - age_days * DAY_MS) as i64, model],
            )
            .expect("insert");
        }
    }
    let keyway = setup.start().await;
    assert_eq!(keyway.anthropic("claude-sonnet-4-5").await.status(), 200);
    let usage = keyway.api_get("/usage?days=30").await;
    let models: Vec<(&str, u64)> = usage["by_model"]
        .as_array()
        .expect("by_model")
        .iter()
        .filter_map(|m| Some((m["key"].as_str()?, m["input_tokens"].as_u64()?)))
        .collect();
    assert_eq!(models[0], ("claude-recent", 3), "{usage}");
    assert_eq!(models[1].0, "claude-sonnet-4-5", "{usage}");
    assert_eq!(models.len(), 2, "{usage}");
    let csv = keyway
        .api(Method::GET, "/usage.csv?days=30")
        .send()
        .await
        .expect("csv")
        .text()
        .await
        .expect("csv text");
    let exported: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(2))
        .collect();
    assert_eq!(exported, ["claude-recent", "claude-sonnet-4-5"], "{csv}");

    // The 40-day-old request is gone from the files, not just outside the window: the old
    // table is gone, and the log keeps the days of the other two.
    let db = rusqlite::Connection::open(data.join("usage.sqlite3")).expect("the usage history");
    let old_table: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'requests'",
            [],
            |r| r.get(0),
        )
        .expect("tables");
    assert_eq!(old_table, 0);
    let mut logged = String::new();
    for file in std::fs::read_dir(data.join("usage-log")).expect("the usage log") {
        logged.push_str(&std::fs::read_to_string(file.expect("entry").path()).expect("a day"));
    }
    assert!(!logged.contains("claude-old"), "{logged}");
    assert!(logged.contains("claude-recent"), "{logged}");
}
