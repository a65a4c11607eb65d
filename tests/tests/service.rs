//! `keyway service`: the systemd user unit it writes passes `systemd-analyze verify` and runs
//! Keyway the way systemd would (the unit's command and environment, the passphrase handed
//! over as a credential, no terminal, no session bus); `install` where no user manager runs
//! says so and leaves the unit for a login session; `status` and `uninstall` follow it. Where a
//! user manager runs, the service is installed, started and stopped for real, but only with
//! KEYWAY_TEST_USER_SERVICE=1: it replaces the user's own `keyway.service`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use keyway_tests::bus::installed;
use keyway_tests::harness::keyway_bin;
use keyway_tests::{FakeUpstream, Provider, Setup};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const PASSPHRASE: &str = "correct horse battery staple";
const WORK: &str = "sk-ant-service-work-51d0e8";

/// Longest wait for a process to start listening or to exit.
const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether a systemd user manager answers; `Err` says why not.
async fn user_manager() -> Result<(), String> {
    if !installed("systemctl") {
        return Err("systemctl is not installed".into());
    }
    let out = Command::new("systemctl")
        .args(["--user", "show-environment"])
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The values of `key=` lines of a unit, in order.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// One message through Keyway at `addr` with `client_key`: the key the provider received.
async fn served_by(addr: &str, client_key: &str, fake: &FakeUpstream) -> String {
    let before = fake.requests().len();
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
        .post(format!("http://{addr}/v1/messages"))
        .header("x-api-key", client_key)
        .header("anthropic-version", "2023-06-01")
        .json(
            &serde_json::json!({"model": "claude-sonnet-4-5", "max_tokens": 16,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("request to keyway");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let _ = r.bytes().await;
    fake.requests()[before].key.clone().expect("key")
}

/// `systemd-analyze verify` of the unit at `path`: no complaint at all.
async fn verify(path: &Path, runtime: &Path) {
    if !installed("systemd-analyze") {
        eprintln!(
            "skipped: systemd-analyze verify: systemd-analyze is not installed (package systemd)"
        );
        return;
    }
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(path)
        .env("XDG_RUNTIME_DIR", runtime)
        .output()
        .await
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {}: {:?}\n{stderr}",
        path.display(),
        out.status
    );
}

/// Run the unit's `ExecStart=` with its `Environment=` only, its credential in
/// `$CREDENTIALS_DIRECTORY`, stdin closed and no session bus, as systemd would; request
/// through it; stop it with SIGTERM as `systemctl stop` does.
async fn run_as_systemd_would(unit: &str, setup: &Setup, fake: &FakeUpstream, client_key: &str) {
    let exec = unit_values(unit, "ExecStart");
    assert_eq!(exec.len(), 1, "{unit}");
    assert!(
        !exec[0].contains('"'),
        "a plain command line here: {}",
        exec[0]
    );
    let words: Vec<&str> = exec[0].split_whitespace().collect();
    let credentials = setup.dir().join("credentials");
    std::fs::create_dir_all(&credentials).expect("credentials dir");
    for value in unit_values(unit, "LoadCredential") {
        let (name, path) = value.split_once(':').expect("ID:PATH");
        std::fs::copy(path, credentials.join(name)).expect("copy the credential");
    }
    let mut command = Command::new(words[0]);
    command
        .args(&words[1..])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", setup.home().expect("a home"))
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for assignment in unit_values(unit, "Environment") {
        let assignment = assignment.trim_matches('"');
        let (k, v) = assignment.split_once('=').expect("KEY=value");
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn the unit's command");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                return Some(rest.trim().to_owned());
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
            "the unit's command did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    assert_eq!(served_by(&addr, client_key, fake).await, WORK);
    let pid = child.id().expect("running").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("keyway exits on SIGTERM")
        .expect("wait");
    assert_eq!(
        status.code(),
        Some(0),
        "Restart=on-failure leaves a clean stop alone"
    );
}

#[tokio::test]
async fn the_user_unit_verifies_and_runs_keyway_as_systemd_would() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, WORK);
    let manager = user_manager().await;
    let real = manager.is_ok() && std::env::var_os("KEYWAY_TEST_USER_SERVICE").is_some();
    let mut setup = Setup::new(&fake.base_url(), "")
        .with_home()
        .with_file_store(PASSPHRASE)
        .with_env("DBUS_SESSION_BUS_ADDRESS", None);
    let config_home = setup.dir().join("config-home");
    let runtime = setup.dir().join("runtime");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    if !real {
        // The unit goes into the test's own config dir, never the user's.
        setup = setup.with_env("XDG_CONFIG_HOME", Some(config_home.as_os_str()));
    }
    setup.add_account("anthropic", "Work", WORK).await;
    let client_key = setup.cli(&["client-key"]).await.ok().to_owned();
    let listen = format!("127.0.0.1:{}", free_port());

    let printed = setup
        .cli(&["--listen", &listen, "service", "install", "--print"])
        .await;
    let unit = printed.ok().to_owned() + "\n";
    assert_eq!(
        unit_values(&unit, "ExecStart"),
        [format!(
            "{} --headless --listen {listen}",
            keyway_bin().display()
        )]
    );
    let env = unit_values(&unit, "Environment");
    assert!(
        env.contains(&format!("KEYWAY_CONFIG={}", setup.config_path.display()).as_str())
            && env.contains(&"KEYWAY_SECRETS=file")
            && env.contains(&format!("KEYWAY_DATA_DIR={}", setup.data_dir().display()).as_str()),
        "{unit}"
    );
    assert_eq!(
        unit_values(&unit, "LoadCredential"),
        [format!("keyway-secrets-key:{}", setup.key_file().display())]
    );
    assert_eq!(unit_values(&unit, "Restart"), ["on-failure"]);
    assert_eq!(unit_values(&unit, "WantedBy"), ["default.target"]);
    let checked = setup.dir().join("keyway.service");
    std::fs::write(&checked, &unit).expect("write the unit");
    verify(&checked, &runtime).await;
    run_as_systemd_would(&unit, &setup, &fake, &client_key).await;

    if real {
        let out = setup
            .cli(&["--listen", &listen, "service", "install"])
            .await;
        assert!(
            out.ok().contains(&format!("listening on http://{listen}")),
            "{out:?}"
        );
        assert_eq!(served_by(&listen, &client_key, &fake).await, WORK);
        let stop = Command::new("systemctl")
            .args(["--user", "stop", "keyway.service"])
            .status()
            .await
            .expect("systemctl");
        assert!(stop.success());
        let out = setup.cli(&["service", "uninstall"]).await;
        assert!(out.ok().contains("removed"), "{out:?}");
        return;
    }
    let why = match &manager {
        Ok(()) => "a user manager runs here, but installing would replace your own keyway.service; set KEYWAY_TEST_USER_SERVICE=1 to run it".to_owned(),
        Err(why) => format!("no systemd user manager answers here ({why})"),
    };

    // Without a user manager, install says so and leaves the unit for a login session.
    if manager.is_err() {
        let out = setup
            .cli(&["--listen", &listen, "service", "install"])
            .await;
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr.contains("no systemd user manager answers here")
                && out.stderr.contains("systemctl --user daemon-reload"),
            "{}",
            out.stderr
        );
        let path = config_home.join("systemd/user/keyway.service");
        assert_eq!(
            std::fs::read_to_string(&path).expect("the unit is written"),
            unit
        );
        let status = setup.cli(&["service", "status"]).await;
        assert!(
            status.ok().contains("installed") && status.stdout.contains("no systemd user manager"),
            "{status:?}"
        );
        let out = setup.cli(&["service", "uninstall"]).await;
        assert!(out.ok().contains("removed"), "{out:?}");
        assert!(!path.exists());
    }
    eprintln!("skipped: starting and stopping keyway.service under systemd: {why}");
}

#[tokio::test]
async fn the_service_needs_a_key_file_for_the_encrypted_store() {
    let fake = FakeUpstream::start().await;
    fake.register_key(Provider::Anthropic, WORK);
    let setup = Setup::new(&fake.base_url(), "secrets = \"file\"\n")
        .with_home()
        .with_env("KEYWAY_SECRETS_KEY_FILE", None)
        .with_env("DBUS_SESSION_BUS_ADDRESS", None);
    let config_home = setup.dir().join("config-home");
    let setup = setup.with_env("XDG_CONFIG_HOME", Some(config_home.as_os_str()));
    let out = setup.cli(&["service", "install"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("--secrets-key-file") && out.stderr.contains("install -m 600"),
        "{}",
        out.stderr
    );
    assert!(!config_home.join("systemd/user/keyway.service").exists());
}
