//! The dashboard window, from the tray app's side: a process of its own (`keyway-dashboard`,
//! src/bin/keyway-dashboard.rs) that exists only while the window is open.
//!
//! WebKitGTK keeps what a webview brought into its process after the webview is gone: the GL
//! driver its display loaded, the pages of its libraries it touched, and its network process.
//! Built in the tray app's process, a window closed left the app 75 MiB (and with the network
//! process 140 MiB) above its resident size at rest; and since the tray app does not link
//! WebKit at all, its libraries are not even loaded at rest. The dashboard's address, which
//! carries the management token, goes to that process on its stdin (`window_input.rs`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};

use keyway_proxy::Management;

use crate::window_input::SHOW;

/// The window's program, beside `keyway` (Tauri's bundler installs both in one place).
const PROGRAM: &str = "keyway-dashboard";

/// The window process while it runs.
#[derive(Default)]
pub struct Dashboard {
    running: Arc<Mutex<Option<Running>>>,
}

struct Running {
    pid: u32,
    /// Its stdin: `show` lines; closing it closes the window.
    input: ChildStdin,
}

fn lock(m: &Mutex<Option<Running>>) -> MutexGuard<'_, Option<Running>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where `keyway-dashboard` is: next to the running `keyway`.
fn program() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name(format!("{PROGRAM}{}", std::env::consts::EXE_SUFFIX)))
}

impl Dashboard {
    /// Bring the window forward, or start its process when there is none.
    pub fn show(&self, management: &Management) -> Result<(), String> {
        let mut running = lock(&self.running);
        if let Some(r) = running.as_mut()
            && writeln!(r.input, "{SHOW}").is_ok()
        {
            return Ok(());
        }
        // None, or it is ending (its stdin is closed): start one.
        *running = None;
        let Some(listen) = management.server().listen() else {
            return Err("the server is not listening".into());
        };
        let url = crate::run::dashboard_url(listen, management.token().expose());
        let program = program().map_err(|e| format!("cannot find {PROGRAM}: {e}"))?;
        *running = Some(self.start(&program, &url)?);
        Ok(())
    }

    fn start(&self, program: &Path, url: &str) -> Result<Running, String> {
        let mut child = Command::new(program)
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot open the dashboard window ({}: {e}); reinstall Keyway, or open the dashboard in a browser with `keyway dashboard-url --open`",
                    program.display()
                )
            })?;
        let Some(mut input) = child.stdin.take() else {
            return Err("the dashboard window's process has no stdin".into());
        };
        let pid = child.id();
        let running = self.running.clone();
        // Waits for it to end (no polling): then it is forgotten, and reaped.
        std::thread::Builder::new()
            .name("dashboard-wait".into())
            .spawn(move || {
                let status = child.wait();
                let mut r = lock(&running);
                if r.as_ref().is_some_and(|r| r.pid == pid) {
                    *r = None;
                }
                drop(r);
                match status {
                    Ok(s) if s.success() => tracing::debug!(pid, "the dashboard window closed"),
                    Ok(s) => {
                        tracing::warn!(pid, status = %s, "the dashboard window's process failed")
                    }
                    Err(e) => {
                        tracing::warn!(pid, error = %e, "cannot wait for the dashboard window's process")
                    }
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        writeln!(input, "{url}").map_err(|e| format!("cannot reach the dashboard window: {e}"))?;
        Ok(Running { pid, input })
    }

    /// Close the window (Quit): its process sees its stdin end and exits.
    pub fn close(&self) {
        lock(&self.running).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_window_program_is_named_with_the_way_around_it() {
        let dir = std::env::temp_dir().join(format!("keyway-no-dashboard-{}", std::process::id()));
        let program = dir.join(PROGRAM);
        let dashboard = Dashboard::default();
        let Err(e) = dashboard.start(&program, "http://127.0.0.1:1/") else {
            panic!("started {} that does not exist", program.display());
        };
        assert!(e.contains(&program.display().to_string()), "{e}");
        assert!(e.contains("keyway dashboard-url --open"), "{e}");
        assert!(lock(&dashboard.running).is_none());
    }
}
