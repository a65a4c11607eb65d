//! What `keyway service install` writes: a systemd user unit on Linux, a launchd agent on
//! macOS, each running `keyway --headless` with the environment of the install (config, data
//! dir, secret store, key file), restarting it when it fails and logging to the system's log
//! as well as the data dir. Rendering is pure, so both are tested on any platform.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::secrets::CREDENTIAL_NAME;

/// The systemd unit's name.
pub const UNIT_NAME: &str = "keyway.service";
/// The launchd agent's label.
pub const LAUNCHD_LABEL: &str = "dev.keyway.headless";

/// What the service runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// The `keyway` binary.
    pub exe: PathBuf,
    /// `--listen`, when given at install.
    pub listen: Option<SocketAddr>,
    /// Environment: `KEYWAY_CONFIG`, `KEYWAY_SECRETS`, and `KEYWAY_DATA_DIR` /
    /// `KEYWAY_KEYRING_SERVICE` when the install ran with them.
    pub env: Vec<(String, String)>,
    /// The file holding the encrypted file store's passphrase, handed over as a credential.
    pub key_file: Option<PathBuf>,
    /// Where launchd writes the process's output (systemd sends it to the journal).
    pub log_dir: PathBuf,
}

impl Spec {
    fn args(&self) -> Vec<String> {
        let mut args = vec![self.exe.display().to_string(), "--headless".to_owned()];
        if let Some(listen) = self.listen {
            args.push("--listen".to_owned());
            args.push(listen.to_string());
        }
        args
    }
}

/// The user unit's path: `$XDG_CONFIG_HOME/systemd/user/keyway.service`.
pub fn unit_path() -> PathBuf {
    directories::BaseDirs::new()
        .map(|d| d.config_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".config"))
        .join("systemd/user")
        .join(UNIT_NAME)
}

/// The agent's path: `~/Library/LaunchAgents/dev.keyway.headless.plist`.
pub fn plist_path() -> PathBuf {
    keyway_core::paths::home_dir()
        .join("Library/LaunchAgents")
        .join(format!("{LAUNCHD_LABEL}.plist"))
}

/// One word of a unit file's command line or assignment, quoted where systemd would split or
/// expand it (`%` specifiers, `$` variables, whitespace, quotes, backslashes).
fn systemd_word(s: &str) -> String {
    let escaped = s.replace('%', "%%").replace('$', "$$");
    if escaped.is_empty()
        || escaped
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        escaped
    }
}

/// The systemd user unit.
pub fn systemd_unit(spec: &Spec) -> String {
    let exec: Vec<String> = spec.args().iter().map(|a| systemd_word(a)).collect();
    let mut env = String::new();
    for (k, v) in &spec.env {
        env.push_str(&format!(
            "Environment={}\n",
            systemd_word(&format!("{k}={v}"))
        ));
    }
    let credential = match &spec.key_file {
        Some(path) => format!(
            "# The encrypted secrets file's passphrase, read from $CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME}.\n\
             LoadCredential={CREDENTIAL_NAME}:{}\n",
            path.display().to_string().replace('%', "%%")
        ),
        None => String::new(),
    };
    format!(
        "# Written by `keyway service install`; `keyway service uninstall` removes it.\n\
         [Unit]\n\
         Description=Keyway: one local endpoint for all your AI accounts\n\
         # Give up after 5 failed starts in 5 minutes (a wrong key, a port in use).\n\
         StartLimitIntervalSec=300\n\
         StartLimitBurst=5\n\
         \n\
         [Service]\n\
         Type=exec\n\
         ExecStart={}\n\
         {env}{credential}\
         Restart=on-failure\n\
         RestartSec=5\n\
         # Output to the journal (journalctl --user -u keyway); Keyway also keeps daily log\n\
         # files in its data dir.\n\
         StandardOutput=journal\n\
         StandardError=journal\n\
         # The process holds secrets: no core dumps, nothing it creates readable by others.\n\
         LimitCORE=0\n\
         UMask=0077\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        exec.join(" ")
    )
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The launchd agent (macOS). launchd has no credentials: the key file's path goes into the
/// environment.
pub fn launchd_plist(spec: &Spec) -> String {
    let args: String = spec
        .args()
        .iter()
        .map(|a| format!("    <string>{}</string>\n", xml(a)))
        .collect();
    let mut env: Vec<(String, String)> = spec.env.clone();
    if let Some(path) = &spec.key_file {
        env.push((
            "KEYWAY_SECRETS_KEY_FILE".to_owned(),
            path.display().to_string(),
        ));
    }
    let env: String = env
        .iter()
        .map(|(k, v)| {
            format!(
                "    <key>{}</key>\n    <string>{}</string>\n",
                xml(k),
                xml(v)
            )
        })
        .collect();
    let log = xml(&spec.log_dir.join("launchd.log").display().to_string());
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <!-- Written by `keyway service install`; `keyway service uninstall` removes it. -->\n\
         <plist version=\"1.0\">\n\
         <dict>\n\
         \x20 <key>Label</key>\n\
         \x20 <string>{LAUNCHD_LABEL}</string>\n\
         \x20 <key>ProgramArguments</key>\n\
         \x20 <array>\n{args}\x20 </array>\n\
         \x20 <key>EnvironmentVariables</key>\n\
         \x20 <dict>\n{env}\x20 </dict>\n\
         \x20 <key>RunAtLoad</key>\n\
         \x20 <true/>\n\
         \x20 <key>KeepAlive</key>\n\
         \x20 <dict>\n\
         \x20   <key>SuccessfulExit</key>\n\
         \x20   <false/>\n\
         \x20 </dict>\n\
         \x20 <key>ThrottleInterval</key>\n\
         \x20 <integer>10</integer>\n\
         \x20 <key>StandardOutPath</key>\n\
         \x20 <string>{log}</string>\n\
         \x20 <key>StandardErrorPath</key>\n\
         \x20 <string>{log}</string>\n\
         </dict>\n\
         </plist>\n"
    )
}

/// The Windows scheduled task that starts Keyway at logon, for the README and the message of
/// `keyway service install` there.
pub fn windows_task_command(exe: &Path, listen: Option<SocketAddr>) -> String {
    let listen = listen.map(|l| format!(" --listen {l}")).unwrap_or_default();
    format!(
        "schtasks /Create /TN Keyway /SC ONLOGON /RL LIMITED /TR \"\\\"{}\\\" --headless{listen}\"",
        exe.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            exe: PathBuf::from("/usr/bin/keyway"),
            listen: Some("127.0.0.1:9000".parse().expect("addr")),
            env: vec![
                (
                    "KEYWAY_CONFIG".into(),
                    "/home/a b/.config/keyway/config.toml".into(),
                ),
                ("KEYWAY_SECRETS".into(), "file".into()),
            ],
            key_file: Some(PathBuf::from("/home/a/.config/keyway/secrets.key")),
            log_dir: PathBuf::from("/home/a/.local/share/keyway/logs"),
        }
    }

    #[test]
    fn the_unit_runs_headless_restarts_on_failure_and_hands_over_the_key() {
        let unit = systemd_unit(&spec());
        assert!(unit.contains("\nExecStart=/usr/bin/keyway --headless --listen 127.0.0.1:9000\n"));
        assert!(
            unit.contains("\nEnvironment=\"KEYWAY_CONFIG=/home/a b/.config/keyway/config.toml\"\n")
        );
        assert!(unit.contains("\nEnvironment=KEYWAY_SECRETS=file\n"));
        assert!(
            unit.contains(
                "\nLoadCredential=keyway-secrets-key:/home/a/.config/keyway/secrets.key\n"
            )
        );
        assert!(unit.contains("\nRestart=on-failure\n"));
        assert!(unit.contains("\nWantedBy=default.target\n"));
    }

    #[test]
    fn unit_words_escape_specifiers_variables_and_quotes() {
        assert_eq!(systemd_word("/opt/keyway"), "/opt/keyway");
        assert_eq!(systemd_word("/a b/%h$x"), "\"/a b/%%h$$x\"");
        assert_eq!(systemd_word("say \"hi\""), "\"say \\\"hi\\\"\"");
    }

    #[test]
    fn the_agent_runs_headless_with_the_key_file_in_its_environment() {
        let plist = launchd_plist(&spec());
        assert!(
            plist.contains("<string>/usr/bin/keyway</string>\n    <string>--headless</string>")
        );
        assert!(plist.contains("<key>KEYWAY_SECRETS_KEY_FILE</key>\n    <string>/home/a/.config/keyway/secrets.key</string>"));
        assert!(plist.contains("<key>SuccessfulExit</key>"));
    }

    #[test]
    fn the_windows_task_starts_keyway_at_logon() {
        let cmd = windows_task_command(Path::new("C:\\Keyway\\keyway.exe"), None);
        assert_eq!(
            cmd,
            "schtasks /Create /TN Keyway /SC ONLOGON /RL LIMITED /TR \"\\\"C:\\Keyway\\keyway.exe\\\" --headless\""
        );
    }
}
