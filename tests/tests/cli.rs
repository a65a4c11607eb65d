//! The `keyway` command line as scripts and users rely on it: what each command prints, how
//! errors read, the client key, and that account secrets never leave the keyring.

use std::time::Duration;

use keyway_tests::harness::eventually;
use keyway_tests::{Behaviour, FakeUpstream, Keyway, Provider, RateLimit, Setup};
use reqwest::Method;
use serde_json::{Value, json};

/// A listen address where nothing runs, so "not running" does not depend on whatever may be
/// listening on the default port of this machine.
const NOT_RUNNING: &str = "127.0.0.1:1";

/// `keyway account list --json` without a running instance.
async fn list_offline(setup: &Setup) -> Vec<Value> {
    let out = setup
        .cli(&["--listen", NOT_RUNNING, "account", "list", "--json"])
        .await;
    serde_json::from_str::<Value>(out.ok())
        .expect("account list --json prints JSON")
        .as_array()
        .expect("an array")
        .clone()
}

/// `keyway account list --json` against the running instance.
async fn list_live(keyway: &Keyway) -> Vec<Value> {
    let out = keyway.cli(&["account", "list", "--json"]).await;
    serde_json::from_str::<Value>(out.ok())
        .expect("account list --json prints JSON")
        .as_array()
        .expect("an array")
        .clone()
}

fn is_account_id(s: &str, provider: &str) -> bool {
    s.strip_prefix(provider)
        .and_then(|r| r.strip_prefix('-'))
        .is_some_and(|hex| hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The upstream key of one Anthropic request, which must succeed.
async fn served_by(keyway: &Keyway, fake: &FakeUpstream) -> String {
    let before = fake.requests().len();
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let _ = r.bytes().await;
    let seen = fake.requests();
    assert_eq!(seen.len(), before + 1);
    seen[before].key.clone().expect("key")
}

#[tokio::test]
async fn account_add_prints_only_the_id_and_list_shows_accounts_with_live_state() {
    let fake = FakeUpstream::start().await;
    fake.register_keys(Provider::Anthropic, ["sk-ant-work", "sk-ant-home"]);
    let setup = Setup::new(&fake.base_url(), "");
    let out = setup
        .cli_with_stdin(
            &[
                "account",
                "add",
                "anthropic",
                "--label",
                "Work",
                "--weight",
                "3",
            ],
            "sk-ant-work\n",
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let work = out.stdout.trim_end_matches('\n').to_owned();
    assert_eq!(out.stdout, format!("{work}\n"), "only the id, on one line");
    assert!(is_account_id(&work, "anthropic"), "{work}");
    let home = setup.add_account("anthropic", "Home", "sk-ant-home").await;
    assert_ne!(work, home);

    let offline = list_offline(&setup).await;
    assert_eq!(
        offline,
        [
            json!({"id": work, "label": "Work", "provider": "anthropic", "kind": "api_key",
                   "enabled": true, "weight": 3, "limits": {}, "live": null}),
            json!({"id": home, "label": "Home", "provider": "anthropic", "kind": "api_key",
                   "enabled": true, "weight": 1, "limits": {}, "live": null}),
        ]
    );

    let keyway = setup.start().await;
    let live = list_live(&keyway).await;
    assert_eq!(live.len(), 2);
    for a in &live {
        assert_eq!(a["live"]["state"], "serving", "{a}");
        assert_eq!(a["live"]["requests"], 0, "{a}");
    }
    for _ in 0..3 {
        assert_eq!(keyway.anthropic("claude-sonnet-4-5").await.status(), 200);
    }
    let live = list_live(&keyway).await;
    let requests: Vec<(&str, u64)> = live
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap(),
                a["live"]["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(requests, [(work.as_str(), 2), (home.as_str(), 1)]);
    // Metadata is the same as offline.
    for (l, o) in live.iter().zip(&offline) {
        for field in ["id", "label", "provider", "kind", "enabled", "weight"] {
            assert_eq!(l[field], o[field], "{field}");
        }
    }
}

#[tokio::test]
async fn account_remove_removes_it_from_config_keyring_and_rotation() {
    let fake = FakeUpstream::start().await;
    fake.register_keys(Provider::Anthropic, ["sk-a", "sk-b"]);
    let setup = Setup::new(&fake.base_url(), "");
    let a = setup.add_account("anthropic", "A", "sk-a").await;
    let b = setup.add_account("anthropic", "B", "sk-b").await;
    let keyway = setup.start().await;
    assert_eq!(served_by(&keyway, &fake).await, "sk-a");
    assert_eq!(served_by(&keyway, &fake).await, "sk-b");

    let out = keyway.cli(&["account", "remove", &a]).await;
    assert_eq!(out.ok(), format!("removed {a}"));
    let path = keyway.setup.config_path.clone();
    assert!(!std::fs::read_to_string(&path).unwrap().contains(&a));
    eventually(
        "the running instance drops the removed account",
        Duration::from_secs(5),
        async || {
            let ids: Vec<Value> = keyway
                .api_get("/accounts")
                .await
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].clone())
                .collect();
            (ids == [json!(b)]).then_some(())
        },
    )
    .await;
    for _ in 0..3 {
        assert_eq!(served_by(&keyway, &fake).await, "sk-b");
    }
    let listed: Vec<Value> = list_live(&keyway)
        .await
        .iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(listed, [json!(b)]);

    // Added again, it is a new account.
    let again = keyway
        .setup
        .cli_with_stdin(&["account", "add", "anthropic", "--label", "A"], "sk-a")
        .await;
    let again = again.ok().to_owned();
    assert_ne!(again, a, "a re-added account gets a new id");
    eventually(
        "the running instance serves the re-added account",
        Duration::from_secs(5),
        async || {
            let accounts = keyway.api_get("/accounts").await;
            (accounts.as_array().unwrap().len() == 2).then_some(())
        },
    )
    .await;
    let mut keys = vec![
        served_by(&keyway, &fake).await,
        served_by(&keyway, &fake).await,
    ];
    keys.sort();
    assert_eq!(keys, ["sk-a", "sk-b"]);

    // The removed id's keyring entry is gone: naming it in the config again finds no secret.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "{text}\n[[accounts]]\nid = \"{a}\"\nprovider = \"anthropic\"\nlabel = \"ghost\"\n"
        ),
    )
    .unwrap();
    let ghost = eventually(
        "the hand-added account shows up",
        Duration::from_secs(5),
        async || {
            let accounts = keyway.api_get("/accounts").await;
            accounts
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["id"] == a.as_str())
                .cloned()
        },
    )
    .await;
    assert_eq!(ghost["live"]["state"], "no_secret", "{ghost}");
}

#[tokio::test]
async fn cli_errors_name_the_problem_and_change_nothing() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let a = setup.add_account("anthropic", "A", "sk-a").await;
    let before = std::fs::read(&setup.config_path).unwrap();
    let weights_x = format!("{a}=x");

    let cases: Vec<(Vec<&str>, &str, String)> = vec![
        (
            vec!["account", "add", "antropic", "--label", "x"],
            "sk-x",
            "unknown provider `antropic`".into(),
        ),
        (
            vec!["account", "add", "anthropic", "--label", "x"],
            "",
            "the secret is empty".into(),
        ),
        (
            vec!["account", "add", "anthropic", "--label", "x"],
            " \n",
            "the secret is empty".into(),
        ),
        (
            vec!["account", "add", "anthropic", "--label", " "],
            "sk-x",
            "the label is empty".into(),
        ),
        (
            vec![
                "account",
                "add",
                "anthropic",
                "--label",
                "x",
                "--weight",
                "0",
            ],
            "sk-x",
            "--weight must be at least 1".into(),
        ),
        (
            vec!["account", "remove", "anthropic-ffffff"],
            "",
            "no account `anthropic-ffffff`".into(),
        ),
        (
            vec!["account", "enable", "anthropic-ffffff"],
            "",
            "no account `anthropic-ffffff`".into(),
        ),
        (
            vec!["account", "disable", "anthropic-ffffff"],
            "",
            "no account `anthropic-ffffff`".into(),
        ),
        (
            vec!["policy", "set", "anthropic", "--strategy", "quickest"],
            "",
            "unknown strategy `quickest`".into(),
        ),
        (
            vec!["policy", "set", "Anthropic", "--strategy", "priority"],
            "",
            "`Anthropic` is not a policy key".into(),
        ),
        (
            vec![
                "policy",
                "set",
                "anthropic/opus/4",
                "--strategy",
                "priority",
            ],
            "",
            "`anthropic/opus/4` is not a policy key".into(),
        ),
        (
            vec!["policy", "set", "anthropic/gpt", "--strategy", "priority"],
            "",
            "provider `anthropic` has no family `gpt`".into(),
        ),
        (
            vec!["policy", "set", "antropic", "--strategy", "priority"],
            "",
            "unknown provider `antropic`".into(),
        ),
        (
            vec![
                "policy",
                "set",
                "anthropic",
                "--strategy",
                "priority",
                "--accounts",
                "anthropic-ffffff",
            ],
            "",
            "unknown account `anthropic-ffffff`".into(),
        ),
        (
            vec![
                "policy",
                "set",
                "anthropic",
                "--strategy",
                "weighted_round_robin",
                "--weights",
                &weights_x,
            ],
            "",
            format!("weight of `{a}` must be a whole number, got `x`"),
        ),
        (
            vec![
                "policy",
                "set",
                "anthropic",
                "--strategy",
                "weighted_round_robin",
                "--weights",
                &a,
            ],
            "",
            format!("--weights takes id=N pairs, got `{a}`"),
        ),
        (
            vec!["policy", "remove", "anthropic/opus"],
            "",
            "no policy `anthropic/opus`".into(),
        ),
    ];
    for (args, stdin, problem) in &cases {
        let mut all = vec!["--listen", NOT_RUNNING];
        all.extend(args);
        let out = setup.cli_with_stdin(&all, stdin).await;
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(problem.as_str()),
            "{args:?}: stderr should name {problem:?}: {out:?}"
        );
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(
            std::fs::read(&setup.config_path).unwrap(),
            before,
            "{args:?} left the config file as it was"
        );
    }
    let accounts = list_offline(&setup).await;
    assert_eq!(
        accounts.len(),
        1,
        "no failed add left an account: {accounts:?}"
    );
}

/// Runs commands that read the config against `setup` and checks each fails naming `want`.
async fn assert_config_error(setup: &Setup, want: &str) {
    for args in [
        vec!["account", "list"],
        vec!["account", "add", "anthropic", "--label", "x"],
        vec!["policy", "list"],
        vec!["policy", "set", "anthropic", "--strategy", "priority"],
        vec!["status"],
        vec!["--headless"],
    ] {
        let mut all = vec!["--listen", NOT_RUNNING];
        all.extend(&args);
        let out = tokio::time::timeout(Duration::from_secs(20), setup.cli_with_stdin(&all, "sk-x"))
            .await
            .unwrap_or_else(|_| panic!("{args:?} did not exit"));
        assert_ne!(out.code, Some(0), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(want),
            "{args:?}: stderr should contain {want:?}: {out:?}"
        );
    }
}

#[tokio::test]
async fn an_unreadable_or_broken_config_is_named_with_path_and_line() {
    // A directory where the file should be.
    let setup = Setup::with_config("");
    std::fs::remove_file(&setup.config_path).unwrap();
    std::fs::create_dir(&setup.config_path).unwrap();
    let path = setup.config_path.display().to_string();
    assert_config_error(&setup, &path).await;
    assert_config_error(&setup, "cannot read the config file").await;

    // A syntax error on line 2.
    let setup = Setup::with_config("listen = \"127.0.0.1:8765\"\nlog_level = \n");
    let path = setup.config_path.display().to_string();
    assert_config_error(&setup, &format!("{path}:2:")).await;
    assert_eq!(
        std::fs::read_to_string(&setup.config_path).unwrap(),
        "listen = \"127.0.0.1:8765\"\nlog_level = \n",
        "failed commands leave the file alone"
    );
}

fn assert_client_key(out: &str) {
    assert!(out.ends_with('\n') && out.lines().count() == 1, "{out:?}");
    let key = out.trim_end();
    assert!(key.starts_with("kw-") && key.len() > 20, "{out:?}");
}

#[tokio::test]
async fn client_key_prints_only_the_key_and_stays_the_same() {
    let setup = Setup::with_config("");
    let first = setup.cli(&["client-key"]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    assert_client_key(&first.stdout);
    let second = setup.cli(&["client-key"]).await;
    assert_eq!(second.stdout, first.stdout, "stable across calls");
}

#[tokio::test]
async fn client_key_rotation_applies_to_the_running_instance_at_once() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-a");
    let setup = Setup::new(&fake.base_url(), "");
    setup.add_account("anthropic", "A", "sk-a").await;
    let keyway = setup.start().await;
    let old = keyway.client_key.clone();
    let send = async |key: &str| {
        keyway
            .http
            .post(keyway.url("/v1/messages"))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
                          "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(send(&old).await, 200);

    let out = keyway.cli(&["client-key", "--rotate"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_client_key(&out.stdout);
    let new = out.stdout.trim().to_owned();
    assert_ne!(new, old);
    assert_eq!(send(&old).await, 401, "the old key stops working at once");
    assert_eq!(send(&new).await, 200, "the new key works at once");
    assert_eq!(
        keyway.cli(&["client-key"]).await.ok(),
        new,
        "`keyway client-key` prints the new key from now on"
    );
    assert_eq!(
        fake.requests().len(),
        2,
        "the refused request never went upstream"
    );
}

#[tokio::test]
async fn account_secrets_never_appear_outside_the_keyring() {
    let fake = FakeUpstream::start().await;
    fake.register_keys(
        Provider::Anthropic,
        ["sk-ant-SECRET-1", "sk-ant-SECRET-2", "sk-ant-SECRET-4"],
    );
    fake.register_key(Provider::OpenAi, "sk-oai-SECRET-3");
    let setup = Setup::new(&fake.base_url(), "");
    let secrets = [
        "sk-ant-SECRET-1",
        "sk-ant-SECRET-2",
        "sk-oai-SECRET-3",
        "sk-ant-SECRET-4",
    ];
    setup.add_account("anthropic", "One", secrets[0]).await;
    setup.add_account("anthropic", "Two", secrets[1]).await;
    setup.add_account("openai", "Three", secrets[2]).await;
    let keyway = setup.start().await;
    // One more through the management API.
    let r = keyway
        .api(Method::POST, "/accounts")
        .json(&json!({"provider": "anthropic", "label": "Four", "secret": secrets[3]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let added = r.text().await.unwrap();

    // A refused credential (401) and a rate limit (429), each failing over to the next account,
    // and an OpenAI request whose only account is refused.
    fake.push(secrets[0], Behaviour::Unauthorized);
    fake.push(
        secrets[1],
        Behaviour::RateLimited(RateLimit::RetryAfter(60)),
    );
    fake.set_default(secrets[2], Behaviour::Unauthorized);
    let mut client_answers = Vec::new();
    for _ in 0..3 {
        let r = keyway.anthropic("claude-sonnet-4-5").await;
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
    }
    let r = keyway
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    client_answers.push(r.text().await.unwrap());
    let used: Vec<String> = fake.keys_used();
    for s in &secrets[..3] {
        assert!(
            used.iter().any(|k| k == s),
            "{s} was used upstream: {used:?}"
        );
    }
    // Both failures were logged (stderr and the log file), so the logs checked below are
    // the ones that describe them.
    eventually(
        "the refusals and the rate limit are logged",
        Duration::from_secs(5),
        async || {
            let logs = keyway.logs();
            (logs.matches("credential refused").count() >= 4
                && logs.matches("account failed").count() >= 2)
                .then_some(())
        },
    )
    .await;

    let mut places: Vec<(String, String)> = vec![
        (
            "config file".into(),
            std::fs::read_to_string(&keyway.setup.config_path).unwrap(),
        ),
        ("POST /api/accounts answer".into(), added),
        ("client error answer".into(), client_answers.concat()),
    ];
    for path in ["/status", "/accounts", "/policies"] {
        places.push((
            format!("GET /api{path}"),
            keyway.api_get(path).await.to_string(),
        ));
    }
    for args in [
        vec!["account", "list", "--json"],
        vec!["account", "list"],
        vec!["status", "--json"],
        vec!["status"],
        vec!["policy", "list", "--json"],
    ] {
        let out = keyway.cli(&args).await;
        places.push((
            format!("keyway {}", args.join(" ")),
            format!("{}{}", out.ok(), out.stderr),
        ));
    }
    places.push(("logs".into(), keyway.logs()));
    let states: Vec<Value> = keyway
        .api_get("/accounts")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["live"]["state"].clone())
        .collect();
    assert_eq!(
        states,
        ["needs_attention", "cooling", "needs_attention", "serving"],
        "the 401s and the 429 happened"
    );
    for (place, text) in &places {
        for s in &secrets {
            assert!(
                !text.contains(s),
                "{place} contains the secret {s}:\n{text}"
            );
        }
        // Not even a recognisable part of one.
        assert!(
            !text.contains("SECRET"),
            "{place} contains part of a secret:\n{text}"
        );
    }
    assert_eq!(keyway.stop().await, Some(0));
}

#[tokio::test]
async fn policy_list_json_shows_the_effective_members() {
    let fake = FakeUpstream::start().await;
    let setup = Setup::new(&fake.base_url(), "");
    let a = setup.add_account("anthropic", "A", "sk-a").await;
    let b = setup
        .cli_with_stdin(
            &[
                "account",
                "add",
                "anthropic",
                "--label",
                "B",
                "--weight",
                "2",
            ],
            "sk-b",
        )
        .await
        .ok()
        .to_owned();
    let c = setup.add_account("anthropic", "C", "sk-c").await;
    let o = setup.add_account("openai", "O", "sk-o").await;
    let offline = ["--listen", NOT_RUNNING];
    let run = async |args: &[&str]| {
        let mut all = offline.to_vec();
        all.extend(args);
        setup.cli(&all).await.ok().to_owned()
    };
    assert_eq!(
        run(&["account", "disable", &c]).await,
        format!("disabled {c}")
    );
    let weights = format!("{a}=5");
    assert_eq!(
        run(&[
            "policy",
            "set",
            "anthropic",
            "--strategy",
            "weighted_round_robin",
            "--weights",
            &weights
        ])
        .await,
        "anthropic: weighted_round_robin"
    );
    let order = format!("{c},{b}");
    assert_eq!(
        run(&[
            "policy",
            "set",
            "anthropic/opus",
            "--strategy",
            "priority",
            "--accounts",
            &order
        ])
        .await,
        "anthropic/opus: priority"
    );

    let listed: Value = serde_json::from_str(&run(&["policy", "list", "--json"]).await).unwrap();
    let view = |key: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in {listed}"))
    };
    let anthropic = view("anthropic");
    assert_eq!(anthropic["strategy"], "weighted_round_robin");
    assert_eq!(anthropic["configured"], true);
    assert_eq!(anthropic["weights"], json!({ &a: 5 }));
    assert_eq!(
        anthropic["members"],
        json!([{"id": a, "weight": 5}, {"id": b, "weight": 2}]),
        "policy weight overrides the account's; the disabled account takes no part"
    );
    let opus = view("anthropic/opus");
    assert_eq!(opus["strategy"], "priority");
    assert_eq!(opus["accounts"], json!([c, b]));
    assert_eq!(opus["members"], json!([{"id": b, "weight": 2}]));
    let openai = view("openai");
    assert_eq!(openai["configured"], false);
    assert_eq!(openai["strategy"], "round_robin");
    assert_eq!(openai["members"], json!([{"id": o, "weight": 1}]));
    assert_eq!(view("google")["members"], json!([]));

    // The running instance shows the same.
    let keyway = setup.start().await;
    assert_eq!(keyway.api_get("/policies").await, listed);
}

#[tokio::test]
async fn account_secrets_stay_out_of_the_most_verbose_logs() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, "sk-ant-TRACE-1");
    fake.register_key(Provider::OpenAi, "sk-oai-TRACE-2");
    let upstream = fake.base_url();
    let setup = Setup::with_config(&format!(
        "log_level = \"trace\"\n\n[limits]\nfirst_byte_timeout_secs = 5\n\n\
         [providers.anthropic]\nbase_url = \"{upstream}\"\n\n\
         [providers.openai]\nbase_url = \"{upstream}\"\n"
    ));
    setup
        .add_account("anthropic", "One", "sk-ant-TRACE-1")
        .await;
    setup.add_account("openai", "Two", "sk-oai-TRACE-2").await;
    let keyway = setup.start().await;
    fake.push("sk-ant-TRACE-1", Behaviour::Unauthorized);
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 503);
    let r = keyway
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;
    eventually(
        "the refusal is logged",
        Duration::from_secs(5),
        async || (keyway.logs().matches("credential refused").count() >= 2).then_some(()),
    )
    .await;
    let logs = keyway.logs();
    assert!(logs.contains("TRACE"), "trace level is on");
    for s in [
        "sk-ant-TRACE-1",
        "sk-oai-TRACE-2",
        keyway.client_key.as_str(),
        keyway.management_token.as_str(),
    ] {
        assert!(!logs.contains(s), "the log contains {s}");
    }
}
