//! `keyway-dashboard`: the dashboard window's own process, the page the engine serves in a
//! webview. The tray app (`keyway`) starts it when the dashboard is opened and it ends with
//! its window, so WebKit and everything a webview brings into a process (the GL driver its
//! display loads, the pages of its libraries, its network process) exist only while the window
//! is open; the tray app itself never links WebKit (ARCHITECTURE.md, "The desktop app").
//!
//! Its input is stdin (`window_input.rs`): the dashboard's address, then lines that bring the
//! window forward. The window closes when stdin ends (the tray app quit or ended), and the
//! process ends with the window.

#[path = "../toolkit.rs"]
mod toolkit;
#[path = "../window_input.rs"]
mod window_input;

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::ExitCode;

use keyway_core::paths;
use keyway_proxy::is_own_origin;
use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

/// The window's label (window-state remembers its size and place by it).
const LABEL: &str = "dashboard";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut first = String::new();
    std::io::stdin().read_line(&mut first)?;
    let url: tauri::Url = first.trim().parse().map_err(|e| {
        anyhow::anyhow!(
            "keyway-dashboard needs the dashboard's address on stdin (the tray app starts it): {e}"
        )
    })?;
    let started: Option<SocketAddr> = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}").parse().ok(),
        _ => None,
    };
    toolkit::set_environment();
    let theme = portal_theme();
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .setup(move |app| {
            let handle = app.handle().clone();
            // The engine's listen address now, also after it moved (Settings): the instance
            // file it keeps current.
            build(&handle, url, theme, move |url| {
                let now = std::fs::read_to_string(paths::instance_file())
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                own_page(url, now.or(started))
            })?;
            std::thread::Builder::new()
                .name("dashboard-input".into())
                .spawn(move || follow_input(handle))?;
            Ok(())
        })
        .build(tauri::generate_context!())?;
    // The default: the process exits when its window closes.
    app.run(|_, _| {});
    Ok(())
}

/// `show` lines bring the window forward; the end of stdin closes it.
fn follow_input(handle: AppHandle) {
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(line) if line == window_input::SHOW => {
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
}

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
        eprintln!("keyway-dashboard: cannot open the browser: {e}");
    }
}

/// The desktop's light or dark preference (the settings portal's `color-scheme`), read once
/// for the window. Tao would follow it for every window, with a thread that wakes every 5 s
/// for good; Cargo.toml keeps that off.
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
