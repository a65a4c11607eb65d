//! Keyway where no OS keyring can be reached: no session bus at all, or a session bus with no
//! Secret Service on it. The encrypted file store is chosen (and says so), holds the accounts,
//! serves requests with the right keys, survives a restart with its key file, refuses a wrong
//! key without touching the file, keeps no secret in clear, and `keyway secrets migrate`
//! moves every secret to the OS keyring and back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyway_tests::bus::PrivateBus;
use keyway_tests::harness::eventually;
use keyway_tests::{CliOutput, FakeUpstream, Keyway, Provider, Setup};
use serde_json::Value;
use sha2::{Digest, Sha256};

const PASSPHRASE: &str = "correct horse battery staple";
const WRONG: &str = "Tr0ub4dor&3 guessed";
const WORK: &str = "sk-ant-filestore-work-7f3a91";
const HOME: &str = "sk-ant-filestore-home-c04e2b";

/// Longest a refused start may take to exit.
const REFUSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The key the fake upstream received for one request through Keyway.
async fn served_by(keyway: &Keyway, fake: &FakeUpstream) -> String {
    let before = fake.requests().len();
    let r = keyway.anthropic("claude-sonnet-4-5").await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let _ = r.bytes().await;
    let seen = fake.requests();
    assert_eq!(seen.len(), before + 1);
    seen[before].key.clone().expect("key")
}

/// The status of one request through Keyway with client key `key`.
async fn status_with_key(keyway: &Keyway, key: &str) -> u16 {
    let r = keyway
        .http
        .post(keyway.url("/v1/messages"))
        .json(&serde_json::json!({"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", key)
        .send()
        .await
        .expect("request to keyway");
    r.status().as_u16()
}

/// The keys of `n` requests, sorted.
async fn keys_of(keyway: &Keyway, fake: &FakeUpstream, n: usize) -> Vec<String> {
    let mut keys = Vec::new();
    for _ in 0..n {
        keys.push(served_by(keyway, fake).await);
    }
    keys.sort();
    keys
}

/// A setup whose processes see no session bus at all: `DBUS_SESSION_BUS_ADDRESS` unset and an
/// empty `XDG_RUNTIME_DIR` (where a bus socket would otherwise be looked for).
fn without_session_bus(setup: Setup) -> Setup {
    let runtime = setup.dir().join("runtime");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    setup
        .with_env("DBUS_SESSION_BUS_ADDRESS", None)
        .with_env("XDG_RUNTIME_DIR", Some(runtime.as_os_str()))
}

/// The passphrase comes from the setup's key file; the store itself is left to the default.
fn with_key_file(setup: Setup, passphrase: &str) -> Setup {
    let key_file = setup.write_key_file(passphrase);
    setup.with_env("KEYWAY_SECRETS_KEY_FILE", Some(key_file.as_os_str()))
}

/// Every file of the store's folder with its SHA-256.
fn hashes(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("the secrets folder")
        .flatten()
        .map(|e| {
            let bytes = std::fs::read(e.path()).expect("read");
            (e.path(), Sha256::digest(&bytes).to_vec())
        })
        .collect()
}

/// No file of the store holds any of `needles` in clear (nor their id or key names).
fn assert_nothing_in_clear(dir: &Path, needles: &[&str]) {
    let mut files = 0;
    for entry in std::fs::read_dir(dir)
        .expect("the secrets folder")
        .flatten()
    {
        let bytes = std::fs::read(entry.path()).expect("read");
        files += 1;
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{} holds `{needle}` in clear",
                entry.path().display()
            );
        }
    }
    assert!(files >= 2, "the store has its database and key parameters");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

/// `keyway <args>` that must fail, bounded in time.
async fn refused(setup: &Setup, args: &[&str]) -> CliOutput {
    refused_with_stdin(setup, args, "").await
}

/// [`refused`], with `stdin` for the command.
async fn refused_with_stdin(setup: &Setup, args: &[&str], stdin: &str) -> CliOutput {
    let out = tokio::time::timeout(REFUSE_TIMEOUT, setup.cli_with_stdin(args, stdin))
        .await
        .expect("keyway exits instead of serving");
    assert_eq!(out.code, Some(1), "keyway should refuse: {out:?}");
    out
}

#[tokio::test]
async fn without_a_session_bus_the_file_store_holds_the_accounts_and_survives_a_restart() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, WORK);
    fake.register_key(Provider::Anthropic, HOME);
    let setup = with_key_file(
        without_session_bus(Setup::new(&fake.base_url(), "")),
        PASSPHRASE,
    );

    // The first command finds no OS keyring, says so, and creates the file store.
    let out = setup
        .cli_with_stdin(&["account", "add", "anthropic", "--label", "Work"], WORK)
        .await;
    let work = out.ok().to_owned();
    assert!(
        out.stderr.contains("No OS keyring can be reached")
            && out.stderr.contains("encrypted file store"),
        "the fallback is said, not silent: {}",
        out.stderr
    );
    let home = setup.add_account("anthropic", "Home", HOME).await;

    let keyway = setup.start().await;
    let status = keyway.api_get("/status").await;
    let db = keyway.setup.secrets_dir().join("secrets.db");
    assert_eq!(status["secrets"]["kind"], "file", "{status}");
    assert_eq!(
        status["secrets"]["location"],
        db.display().to_string(),
        "{status}"
    );
    let shown = keyway.cli(&["status"]).await;
    assert!(
        shown
            .ok()
            .contains(&format!("secrets: the encrypted file {}", db.display())),
        "{shown:?}"
    );

    // Each account's own key reaches the provider.
    assert_eq!(keys_of(&keyway, &fake, 2).await, [HOME, WORK]);

    // The file and its folder are the owner's only, and hold nothing in clear.
    let dir = keyway.setup.secrets_dir();
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&dir.join("secrets.kdf")), 0o600);
    }
    let client_key = keyway.client_key.clone();
    let token = keyway.management_token.clone();
    assert_nothing_in_clear(
        &dir,
        &[
            WORK,
            HOME,
            &client_key,
            &token,
            &work,
            &home,
            "client-key",
            PASSPHRASE,
        ],
    );

    // A restart opens it again with the key file: same client key, same accounts.
    let keyway = keyway.restart().await;
    assert_eq!(keyway.client_key, client_key);
    assert_eq!(keys_of(&keyway, &fake, 2).await, [HOME, WORK]);
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_a_clear_error_and_nothing_is_overwritten() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, WORK);
    fake.register_key(Provider::Anthropic, HOME);
    let setup = without_session_bus(Setup::new(&fake.base_url(), "")).with_file_store(PASSPHRASE);
    setup.add_account("anthropic", "Work", WORK).await;
    let client_key = setup.cli(&["client-key"]).await.ok().to_owned();
    let db = setup.secrets_dir().join("secrets.db");
    let before = hashes(&setup.secrets_dir());

    setup.write_key_file(WRONG);
    for args in [
        &["--headless", "--listen", "127.0.0.1:0"][..],
        &["client-key"],
        &["account", "add", "anthropic", "--label", "Other"],
    ] {
        let out = refused_with_stdin(&setup, args, HOME).await;
        assert!(
            out.stderr.contains(&format!(
                "(read from {}) does not open {}",
                setup.key_file().display(),
                db.display()
            )) && out.stderr.contains("Nothing was changed"),
            "`keyway {}` names the problem: {}",
            args.join(" "),
            out.stderr
        );
        assert!(!out.stderr.contains(WRONG), "{}", out.stderr);
        assert!(!out.stdout.contains("kw-"), "{}", out.stdout);
    }
    assert_eq!(
        hashes(&setup.secrets_dir()),
        before,
        "a wrong key changes no file of the store"
    );

    // Without a key file and without a terminal, it says how to give the key.
    let setup = setup.with_env("KEYWAY_SECRETS_KEY_FILE", None);
    let out = refused(&setup, &["client-key"]).await;
    assert!(
        out.stderr.contains("no terminal here")
            && out.stderr.contains("KEYWAY_SECRETS_KEY_FILE=PATH")
            && out.stderr.contains("--secrets-key-file PATH"),
        "{}",
        out.stderr
    );
    assert_eq!(hashes(&setup.secrets_dir()), before);

    // The right key opens it as it was.
    let key_file = setup.write_key_file(PASSPHRASE);
    let setup = setup.with_env("KEYWAY_SECRETS_KEY_FILE", Some(key_file.as_os_str()));
    let keyway = setup.start().await;
    assert_eq!(keyway.client_key, client_key);
    assert_eq!(served_by(&keyway, &fake).await, WORK);
}

#[tokio::test]
async fn on_a_session_bus_without_a_secret_service_the_file_store_is_chosen_and_shared() {
    let bus = match PrivateBus::start().await {
        Ok(bus) => bus,
        Err(why) => {
            eprintln!("skipped: no private D-Bus session for this test: {why}");
            return;
        }
    };
    let names = bus.names().await;
    assert!(
        names.contains("org.freedesktop.DBus") && !names.contains("org.freedesktop.secrets"),
        "the private bus has no Secret Service, running or activatable: {names}"
    );
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, WORK);
    fake.register_key(Provider::Anthropic, HOME);
    let setup = with_key_file(
        Setup::new(&fake.base_url(), "")
            .with_env("DBUS_SESSION_BUS_ADDRESS", Some(bus.address.as_ref())),
        PASSPHRASE,
    );

    // Asked for by name, the OS keyring is refused with the way out.
    let out = refused(&setup, &["--secrets", "os", "client-key"]).await;
    assert!(
        out.stderr.contains("cannot use the OS keyring") && out.stderr.contains("--secrets file"),
        "{}",
        out.stderr
    );
    assert!(!setup.secrets_dir().join("secrets.db").exists());

    // By default, the file store.
    setup.add_account("anthropic", "Work", WORK).await;
    let mut keyway = setup.start().await;
    assert_eq!(keyway.api_get("/status").await["secrets"]["kind"], "file");
    assert_eq!(served_by(&keyway, &fake).await, WORK);

    // The running instance and a command in another process write the store at the same
    // time: the instance rotates the client key while the command adds an account.
    let (rotated, added) = tokio::join!(
        keyway.cli(&["client-key", "--rotate"]),
        keyway.cli_with_stdin(&["account", "add", "anthropic", "--label", "Home"], HOME),
    );
    let new_key = rotated.ok().to_owned();
    let home = added.ok().to_owned();
    assert_ne!(new_key, keyway.client_key);
    keyway.client_key = new_key.clone();
    eventually(
        "the running instance serves the account added beside it",
        Duration::from_secs(10),
        async || {
            let accounts = keyway.api_get("/accounts").await;
            accounts
                .as_array()?
                .iter()
                .find(|a| a["id"] == home.as_str() && a["live"]["state"] == "serving")
                .map(|_| ())
        },
    )
    .await;
    assert_eq!(keys_of(&keyway, &fake, 2).await, [HOME, WORK]);

    // Both writes are in the file: after a restart the rotated key and both accounts serve.
    let keyway = keyway.restart().await;
    assert_eq!(keyway.client_key, new_key);
    assert_eq!(keys_of(&keyway, &fake, 2).await, [HOME, WORK]);
}

/// The config file's `secrets` setting.
fn configured_store(setup: &Setup) -> Option<String> {
    let text = std::fs::read_to_string(&setup.config_path).expect("config");
    text.lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .find_map(|l| l.trim().strip_prefix("secrets = \""))
        .and_then(|v| v.strip_suffix('"'))
        .map(str::to_owned)
}

#[tokio::test]
async fn secrets_migrate_moves_every_secret_to_the_os_keyring_and_back() {
    // The OS keyring here is the throwaway Secret Service of scripts/test's session.
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        eprintln!(
            "skipped: no session bus, so no OS keyring to migrate to; scripts/test runs this inside a private keyring session"
        );
        return;
    }
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, WORK);
    fake.register_key(Provider::Anthropic, HOME);
    let setup = with_key_file(
        Setup::new(&fake.base_url(), "secrets = \"file\"\n"),
        PASSPHRASE,
    );
    setup.add_account("anthropic", "Work", WORK).await;
    setup.add_account("anthropic", "Home", HOME).await;
    // A named client key besides the default one: its secret moves with the others.
    let scripts = setup
        .cli(&["client-key", "add", "--label", "scripts"])
        .await
        .ok()
        .to_owned();
    let keyway = setup.start().await;
    let client_key = keyway.client_key.clone();
    let token = keyway.management_token.clone();
    assert_eq!(keys_of(&keyway, &fake, 2).await, [HOME, WORK]);
    assert_eq!(status_with_key(&keyway, &scripts).await, 200);

    // While Keyway runs, its store is not moved from under it.
    let out = keyway.cli(&["secrets", "migrate", "--to", "os"]).await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("stop it first"), "{}", out.stderr);

    // File → OS keyring: all five secrets, and the file store is gone.
    let setup = keyway.shut_down().await;
    let out = setup.cli(&["secrets", "migrate", "--to", "os"]).await;
    assert!(out.ok().contains("moved 5 secrets"), "{out:?}");
    assert_eq!(configured_store(&setup).as_deref(), Some("os"));
    assert!(!setup.secrets_dir().join("secrets.db").exists());
    let keyway = setup.start().await;
    assert_eq!(keyway.api_get("/status").await["secrets"]["kind"], "os");
    assert_eq!(keyway.client_key, client_key);
    assert_eq!(keyway.management_token, token);
    assert_eq!(keys_of(&keyway, &fake, 2).await, [HOME, WORK]);
    assert_eq!(status_with_key(&keyway, &scripts).await, 200);

    // OS keyring → file: the same five, in a new encrypted file.
    let setup = keyway.shut_down().await;
    let out = setup.cli(&["secrets", "migrate", "--to", "file"]).await;
    assert!(out.ok().contains("moved 5 secrets"), "{out:?}");
    assert_eq!(configured_store(&setup).as_deref(), Some("file"));
    assert_nothing_in_clear(
        &setup.secrets_dir(),
        &[WORK, HOME, &client_key, &token, &scripts],
    );
    let keyway = setup.start().await;
    let status: Value = keyway.api_get("/status").await;
    assert_eq!(status["secrets"]["kind"], "file");
    assert_eq!(keyway.client_key, client_key);
    assert_eq!(keyway.management_token, token);
    assert_eq!(keys_of(&keyway, &fake, 2).await, [HOME, WORK]);
    assert_eq!(status_with_key(&keyway, &scripts).await, 200);

    // Nothing is left behind in the OS keyring: asked for it there, the client key is new.
    let setup = keyway.shut_down().await;
    let there = setup.cli(&["--secrets", "os", "client-key"]).await;
    assert_ne!(there.ok(), client_key);
}
