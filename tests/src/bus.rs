//! A private D-Bus session bus with no service on it and none it could start: no Secret
//! Service, nothing activatable. Keyway run against it finds a session bus but no OS keyring,
//! as on a server where `dbus-user-session` is installed and gnome-keyring is not.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Longest wait for the bus to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `dbus-daemon` of its own; stopped when dropped.
pub struct PrivateBus {
    _child: Child,
    _dir: tempfile::TempDir,
    /// Its address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
}

/// Whether a program is on the `PATH`.
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(program).is_file())
    })
}

impl PrivateBus {
    /// Start one, or `None` (with the reason) when `dbus-daemon` or `dbus-send` is missing.
    pub async fn start() -> Result<PrivateBus, String> {
        for program in ["dbus-daemon", "dbus-send"] {
            if !installed(program) {
                return Err(format!("{program} is not installed (Debian package dbus)"));
            }
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let socket = dir.path().join("bus");
        // A session bus with a policy that lets anyone talk, and no <servicedir>: nothing can
        // be activated on it, so no Secret Service appears however it is asked for.
        let config = format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
             <busconfig>\n  <type>session</type>\n  <listen>unix:path={}</listen>\n  \
             <auth>EXTERNAL</auth>\n  <policy context=\"default\">\n    \
             <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    \
             <allow eavesdrop=\"true\"/>\n    <allow own=\"*\"/>\n  </policy>\n</busconfig>\n",
            socket.display()
        );
        let config_path = dir.path().join("bus.conf");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config_path.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start dbus-daemon: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let address = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .map_err(|_| "dbus-daemon printed no address within 10 s".to_owned())?
            .map_err(|e| e.to_string())?
            .ok_or("dbus-daemon exited without an address")?;
        Ok(PrivateBus {
            _child: child,
            _dir: dir,
            address: address.trim().to_owned(),
        })
    }

    /// The names the bus has owners for and could activate (`ListNames`,
    /// `ListActivatableNames`), as `dbus-send` prints them.
    pub async fn names(&self) -> String {
        let mut all = String::new();
        for method in ["ListNames", "ListActivatableNames"] {
            let out = Command::new("dbus-send")
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    &format!("org.freedesktop.DBus.{method}"),
                ])
                .output()
                .await
                .expect("dbus-send");
            assert!(out.status.success(), "dbus-send {method}: {out:?}");
            all.push_str(&String::from_utf8_lossy(&out.stdout));
        }
        all
    }
}
