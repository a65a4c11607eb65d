//! The dashboard window: the page the engine serves, in a webview that exists only while the
//! window is open. Opening it builds the window; closing it destroys it, webview and all.
//!
//! On Linux the window lives in a process of its own, `keyway --dashboard-window`, which the
//! tray app starts when the dashboard is opened and which ends with its window. WebKitGTK keeps
//! what a webview brought into its process after the webview is gone: the GL driver its
//! display loaded, the pages of its libraries it touched, and its network process (Tauri keeps
//! the web context, and with it that process, for the next window). Built in the tray app's
//! process, a window closed left the app 75 MiB (and with the network process 140 MiB) above
//! its resident size at rest; in a process of its own, all of it ends with the window. The
//! dashboard's address, which carries the management token, goes to that process on its stdin
//! (never its command line, which other users can read). Elsewhere (macOS, Windows) the
//! webview is built in the app's process and destroyed on close.

use std::net::SocketAddr;

use keyway_proxy::is_own_origin;
use tauri::{AppHandle, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

/// The window's label (window-state remembers its size and place by it).
pub const LABEL: &str = "dashboard";

/// Build the dashboard window loading `url`; it follows links to `ours` only, everything else
/// opens in the user's browser.
fn build(
    app: &AppHandle,
    url: tauri::Url,
    theme: Option<tauri::Theme>,
    ours: impl Fn(&tauri::Url) -> bool + Send + 'static,
) -> tauri::Result<WebviewWindow> {
    WebviewWindowBuilder::new(app, LABEL, WebviewUrl::External(url))
        .title("Keyway")
        .inner_size(900.0, 600.0)
        .min_inner_size(720.0, 480.0)
        .theme(theme)
        // A login page or a link elsewhere opens in the user's browser, where their sessions
        // and password manager are; the window only ever shows the dashboard.
        .on_new_window(|url, _| {
            open_in_browser(&url);
            tauri::webview::NewWindowResponse::Deny
        })
        .on_navigation(move |url| {
            let allowed = ours(url);
            if !allowed {
                open_in_browser(url);
            }
            allowed
        })
        .build()
}

/// Whether `url` is the dashboard of the Keyway listening on `listen`.
fn own_page(url: &tauri::Url, listen: Option<SocketAddr>) -> bool {
    listen.is_some_and(|listen| {
        url.host_str()
            .is_some_and(|host| is_own_origin(url.scheme(), host, url.port(), listen))
    })
}

fn raise(window: &WebviewWindow) {
    let _ = window.unminimize();
    let _ = window.show();
    let _ = window.set_focus();
}

fn open_in_browser(url: &tauri::Url) {
    if matches!(url.scheme(), "http" | "https")
        && let Err(e) = open::that_detached(url.as_str())
    {
        tracing::warn!(error = %e, "cannot open the browser");
    }
}

#[cfg(target_os = "linux")]
pub use process::{Dashboard, run_process};

#[cfg(not(target_os = "linux"))]
pub use in_process::Dashboard;

/// The window in a process of its own (Linux).
#[cfg(target_os = "linux")]
mod process {
    use std::io::{BufRead, Write};
    use std::net::SocketAddr;
    use std::process::{ChildStdin, Command, Stdio};
    use std::sync::{Arc, Mutex, MutexGuard};

    use keyway_core::paths;
    use keyway_proxy::Management;
    use tauri::{AppHandle, Manager};

    use super::{LABEL, build, own_page, raise};

    /// The hidden flag that makes `keyway` the dashboard window's process.
    const FLAG: &str = "--dashboard-window";
    /// A line on the window process's stdin that brings the window forward.
    const SHOW: &str = "show";

    /// The tray app's side: the window process while it runs.
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

    impl Dashboard {
        /// Bring the window forward, or start its process when there is none.
        pub fn show(&self, _app: &AppHandle, management: &Management) {
            let mut running = lock(&self.running);
            if let Some(r) = running.as_mut()
                && writeln!(r.input, "{SHOW}").is_ok()
            {
                return;
            }
            // None, or it is ending (its stdin is closed): start one.
            *running = None;
            let Some(listen) = management.server().listen() else {
                return;
            };
            let url = crate::run::dashboard_url(listen, management.token().expose());
            match self.start(&url) {
                Ok(r) => *running = Some(r),
                Err(e) => tracing::warn!(error = %e, "cannot open the dashboard window"),
            }
        }

        fn start(&self, url: &str) -> std::io::Result<Running> {
            let mut child = Command::new(std::env::current_exe()?)
                .arg(FLAG)
                .stdin(Stdio::piped())
                .spawn()?;
            let mut input = child.stdin.take().expect("stdin is piped");
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
                        Ok(s) => tracing::warn!(pid, status = %s, "the dashboard window's process failed"),
                        Err(e) => tracing::warn!(pid, error = %e, "cannot wait for the dashboard window's process"),
                    }
                })?;
            writeln!(input, "{url}")?;
            Ok(Running { pid, input })
        }

        /// Close the window (Quit): its process sees its stdin end and exits.
        pub fn close(&self, _app: &AppHandle) {
            lock(&self.running).take();
        }
    }

    /// `keyway --dashboard-window`: the dashboard's address on the first line of stdin, then
    /// `show` lines; the window closes when stdin ends, and the process ends with the window.
    pub fn run_process() -> anyhow::Result<()> {
        let mut first = String::new();
        std::io::stdin().read_line(&mut first)?;
        let url: tauri::Url = first
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("the dashboard window needs its address on stdin: {e}"))?;
        let started: Option<SocketAddr> = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}").parse().ok(),
            _ => None,
        };
        super::super::toolkit_environment();
        let theme = portal_theme();
        let app = tauri::Builder::default()
            .plugin(tauri_plugin_window_state::Builder::default().build())
            .setup(move |app| {
                let handle = app.handle().clone();
                // The engine's listen address now, also after it moved (Settings): the
                // instance file it keeps current.
                build(&handle, url, theme, move |url| {
                    let now = std::fs::read_to_string(paths::instance_file())
                        .ok()
                        .and_then(|s| s.trim().parse().ok());
                    own_page(url, now.or(started))
                })?;
                std::thread::Builder::new()
                    .name("dashboard-input".into())
                    .spawn(move || {
                        for line in std::io::stdin().lock().lines() {
                            match line {
                                Ok(line) if line == SHOW => {
                                    let h = handle.clone();
                                    let _ = handle.run_on_main_thread(move || {
                                        if let Some(window) = h.get_webview_window(LABEL) {
                                            raise(&window);
                                        }
                                    });
                                }
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                        // The tray app closed it, quit or ended.
                        handle.exit(0);
                    })?;
                Ok(())
            })
            .build(super::super::context())?;
        // The default: the process exits when its window closes.
        app.run(|_, _| {});
        Ok(())
    }

    /// The desktop's light or dark preference (the settings portal's `color-scheme`), read once
    /// for the window. Tao would follow it for every window, with a thread that wakes every
    /// 5 s for good; the tray app keeps that off (Cargo.toml).
    fn portal_theme() -> Option<tauri::Theme> {
        let connection = zbus::blocking::Connection::session().ok()?;
        let reply = connection
            .call_method(
                Some("org.freedesktop.portal.Desktop"),
                "/org/freedesktop/portal/desktop",
                Some("org.freedesktop.portal.Settings"),
                "Read",
                &("org.freedesktop.appearance", "color-scheme"),
            )
            .ok()?;
        let mut value: zbus::zvariant::OwnedValue = reply.body().deserialize().ok()?;
        // `Read` wraps the value in one variant more than `ReadOne` does.
        while let zbus::zvariant::Value::Value(inner) = &*value {
            value = inner.try_to_owned().ok()?;
        }
        match u32::try_from(&*value).ok()? {
            1 => Some(tauri::Theme::Dark),
            2 => Some(tauri::Theme::Light),
            _ => None,
        }
    }
}

/// The window in the app's own process (macOS, Windows).
#[cfg(not(target_os = "linux"))]
mod in_process {
    use keyway_proxy::Management;
    use tauri::{AppHandle, Manager};

    use super::{LABEL, build, own_page, raise};

    #[derive(Default)]
    pub struct Dashboard;

    impl Dashboard {
        /// Bring the window forward, or build it when there is none.
        pub fn show(&self, app: &AppHandle, management: &Management) {
            if let Some(window) = app.get_webview_window(LABEL) {
                raise(&window);
                return;
            }
            let Some(listen) = management.server().listen() else {
                return;
            };
            let url = crate::run::dashboard_url(listen, management.token().expose());
            let Ok(url) = url.parse::<tauri::Url>() else {
                return;
            };
            let server = management.server().clone();
            // Our own server, also after the listen address moved (Settings).
            let built = build(app, url, None, move |url| own_page(url, server.listen()));
            if let Err(e) = built {
                tracing::warn!(error = %e, "cannot open the dashboard window");
            }
        }

        /// Close the window (Quit).
        pub fn close(&self, app: &AppHandle) {
            if let Some(window) = app.get_webview_window(LABEL) {
                let _ = window.destroy();
            }
        }
    }
}
