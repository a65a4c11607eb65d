//! The desktop app: the engine in-process, a tray whose menu is rebuilt from engine events,
//! notifications on state transitions, and the dashboard in a window. The engine knows
//! nothing of this module; it follows the engine's event stream and acts through the same
//! functions as the management API.
//!
//! At rest the app is the engine and a tray: the dashboard window, its webview and WebKit's
//! processes behind it exist only while the window is open. Opening it builds them; closing it
//! destroys them (not hides), and the memory they used goes back.

pub mod alerts;
pub mod menu;
mod window;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyway_core::paths;
use keyway_proxy::{
    AccountChange, Event, Management, account_views, change_account, policy_views, set_strategy,
    settings_to_copy,
};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Manager, RunEvent, WindowEvent, Wry};
use tauri_plugin_autostart::{MacosLauncher, ManagerExt as _};
use tauri_plugin_clipboard_manager::ClipboardExt as _;
use tauri_plugin_notification::NotificationExt as _;
use tokio::sync::oneshot;

use crate::run::{self, RunOptions};
use menu::{Action, Icon, Item, Server, TrayState};

/// The tray icon's id.
const TRAY: &str = "keyway";
/// State changes closer together than this rebuild the menu once.
const COALESCE: Duration = Duration::from_millis(200);

/// What the desktop shell holds: the engine's management side (when it started) and how to
/// stop it.
struct Shell {
    management: Option<Arc<Management>>,
    /// Why the engine is not running, for the status line.
    error: Option<String>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    /// The state the menu shows now, to notify on transitions only.
    shown: Mutex<Option<TrayState>>,
    /// The dashboard window, while it is open.
    dashboard: window::Dashboard,
}

/// The app's Tauri context (`tauri.conf.json`, icons), for the tray app and the window
/// process alike.
fn context() -> tauri::Context<Wry> {
    tauri::generate_context!()
}

/// `keyway --dashboard-window`: the dashboard window's own process (see `window.rs`).
pub fn window_process() -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    return window::run_process();
    #[cfg(not(target_os = "linux"))]
    anyhow::bail!("the dashboard window runs in the app's own process here")
}

/// Start the engine and run the tray until Quit. Blocks the main thread (the GUI's).
pub fn run(runtime: tokio::runtime::Runtime, opts: RunOptions) -> anyhow::Result<()> {
    #[cfg(target_os = "linux")]
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        anyhow::bail!(
            "there is no graphical session here (DISPLAY and WAYLAND_DISPLAY are unset) for the tray app; on a server or over SSH run `keyway --headless`"
        );
    }
    let (_log_guard, reloader) = run::init_logging(&opts)?;
    toolkit_environment();
    tauri::async_runtime::set(runtime.handle().clone());

    let builder = tauri::Builder::default()
        // First: plugins start before `setup`, so a second launch hands over to the running
        // instance and exits before it binds a port or opens the data dir.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            // Called on the D-Bus connection's thread; windows are made on the main one.
            let app2 = app.clone();
            let _ = app.run_on_main_thread(move || show_dashboard(&app2));
        }))
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            None,
        ))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_clipboard_manager::init());
    // Where the window has a process of its own, so has its place and size (saved there):
    // here it would be overwritten at exit with what this process read at start.
    #[cfg(not(target_os = "linux"))]
    let builder = builder.plugin(tauri_plugin_window_state::Builder::default().build());
    let app = builder
        .setup(move |app| {
            let (stop, stopped) = oneshot::channel::<()>();
            let started = tauri::async_runtime::block_on(run::start(&opts, reloader));
            let (started, error) = match started {
                Ok(s) => (Some(s), None),
                Err(e) => {
                    tracing::error!(error = %e, "the engine did not start; the tray shows why");
                    (None, Some(format!("{e:#}")))
                }
            };
            app.manage(Shell {
                management: started.as_ref().map(|s| s.management.clone()),
                error,
                stop: Mutex::new(Some(stop)),
                shown: Mutex::new(None),
                dashboard: window::Dashboard::default(),
            });
            let handle = app.handle().clone();
            create_tray(&handle)?;
            if let Some(started) = started {
                let management = started.management.clone();
                let exit = handle.clone();
                tauri::async_runtime::spawn(async move {
                    let shutdown = async {
                        tokio::select! {
                            _ = stopped => {}
                            () = run::shutdown_signal() => {}
                        }
                    };
                    if let Err(e) = started.serve(shutdown).await {
                        tracing::error!(error = %e, "the server stopped with an error");
                    }
                    exit.exit(0);
                });
                tauri::async_runtime::spawn(follow(handle, management));
            }
            // Started, with the tray up: what the start freed goes back before the rest.
            crate::memory::release_free_memory();
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window (CloseRequested, not prevented) destroys it with its webview;
            // the app lives on in the tray until Quit. Once it is gone, so is its memory.
            if let WindowEvent::Destroyed = event
                && window.label() == window::LABEL
            {
                // Queued behind the rest of the teardown, which this event is part of.
                let _ = window
                    .app_handle()
                    .run_on_main_thread(crate::memory::release_free_memory);
            }
        })
        .build(context())?;
    app.run(|_app, event| {
        // The last window closing asks to exit without a code: not a reason to quit a tray
        // app. Quit (after the drain) and a stopped engine exit with one.
        if let RunEvent::ExitRequested {
            api, code: None, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    Ok(())
}

/// Environment GTK and WebKitGTK read once, set before either starts (never against the
/// user's own setting of the same variable).
///
/// - WebKitGTK's DMA-BUF renderer draws blank windows where there is no GPU device (VMs,
///   remote X, Xvfb); only there is it turned off.
/// - GTK 3 sets up GLX when it opens an X11 display (to choose its visuals), and with Mesa that
///   maps the GL driver and LLVM into the process: about 50 MiB resident for a tray that never
///   draws with GL. On X11 nothing here needs GDK's GL: WebKitGTK draws its frames with an EGL
///   display of its own and cairo, never through a GDK GL context (only under Wayland does it
///   share GTK's, and there GTK sets up no GL at start). `GDK_GL=` (empty) gives it back.
/// - WebKit's memory pressure monitor polls the system's memory every few seconds from the
///   first webview to the end of the process: wake-ups for good in an app that is mostly a tray.
///   The dashboard is one small page.
fn toolkit_environment() {
    #[cfg(target_os = "linux")]
    {
        let unset = |name: &str| std::env::var_os(name).is_none();
        let mut set = Vec::new();
        if unset("WEBKIT_DISABLE_DMABUF_RENDERER") && !std::path::Path::new("/dev/dri").exists() {
            set.push(("WEBKIT_DISABLE_DMABUF_RENDERER", "1"));
        }
        if unset("GDK_GL") && gtk_uses_x11() {
            set.push(("GDK_GL", "disable"));
        }
        if unset("WEBKIT_DISABLE_MEMORY_PRESSURE_MONITOR") {
            set.push(("WEBKIT_DISABLE_MEMORY_PRESSURE_MONITOR", "1"));
        }
        for (name, value) in set {
            // SAFETY: called on the main thread before GTK starts; no other thread reads the
            // environment meanwhile.
            unsafe { std::env::set_var(name, value) };
        }
    }
}

/// Whether GTK will open an X11 display: it prefers Wayland when there is one, unless
/// `GDK_BACKEND` says otherwise.
#[cfg(target_os = "linux")]
fn gtk_uses_x11() -> bool {
    match std::env::var("GDK_BACKEND") {
        Ok(backend) if !backend.is_empty() => backend.split(',').next() == Some("x11"),
        _ => std::env::var_os("WAYLAND_DISPLAY").is_none(),
    }
}

fn shell(app: &AppHandle) -> tauri::State<'_, Shell> {
    app.state::<Shell>()
}

/// The engine state the tray shows, read now.
fn tray_state(app: &AppHandle) -> TrayState {
    let shell = shell(app);
    let autostart = app.autolaunch().is_enabled().unwrap_or(false);
    let utc_offset_secs = chrono::Local::now().offset().local_minus_utc();
    let Some(management) = &shell.management else {
        return TrayState {
            server: Server::Stopped(shell.error.clone().unwrap_or_default()),
            accounts: Vec::new(),
            policies: Vec::new(),
            autostart,
            utc_offset_secs,
            secrets: None,
        };
    };
    let engine = management.engine();
    let snapshot = engine.snapshot();
    let listen = management
        .server()
        .listen()
        .map(|a| a.to_string())
        .unwrap_or_default();
    TrayState {
        server: if engine.paused() {
            Server::Paused(listen)
        } else {
            Server::Listening(listen)
        },
        accounts: account_views(&snapshot),
        policies: policy_views(&snapshot),
        autostart,
        utc_offset_secs,
        secrets: Some(secrets_line(engine.secrets())),
    }
}

/// The tray's line about where the secrets are.
fn secrets_line(store: &keyway_core::SecretStore) -> String {
    match store.kind() {
        keyway_core::secrets::StoreKind::Os => "Secrets in the OS keyring".to_owned(),
        keyway_core::secrets::StoreKind::File => "Secrets in Keyway's encrypted file".to_owned(),
    }
}

fn icon_image(icon: Icon) -> tauri::Result<Image<'static>> {
    Image::from_bytes(match icon {
        Icon::Serving => include_bytes!("../../icons/tray-serving.png"),
        Icon::Degraded => include_bytes!("../../icons/tray-degraded.png"),
        Icon::Exhausted => include_bytes!("../../icons/tray-exhausted.png"),
        Icon::Paused => include_bytes!("../../icons/tray-paused.png"),
    })
}

fn create_tray(app: &AppHandle) -> tauri::Result<()> {
    let state = tray_state(app);
    TrayIconBuilder::with_id(TRAY)
        .icon(icon_image(menu::icon(&state))?)
        .tooltip(menu::tooltip(&state))
        .menu(&native_menu(app, &menu::menu(&state))?)
        .on_menu_event(|app, event| {
            let app = app.clone();
            let id = event.id().as_ref().to_owned();
            tauri::async_runtime::spawn(async move { perform(&app, &id).await });
        })
        .build(app)?;
    *shell(app).shown.lock().unwrap_or_else(|p| p.into_inner()) = Some(state);
    Ok(())
}

/// Rebuild the tray from the engine's state, and notify what changed.
fn refresh(app: &AppHandle) {
    let Some(tray) = app.tray_by_id(TRAY) else {
        return;
    };
    let state = tray_state(app);
    if let Err(e) = apply(app, &tray, &state) {
        tracing::warn!(error = %e, "cannot update the tray");
    }
    let previous = shell(app)
        .shown
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .replace(state.clone());
    if let Some(previous) = previous {
        let now = keyway_core::state::now_ms() / 1000;
        for alert in alerts::alerts(&previous, &state, now) {
            notify(app, &alert.title, &alert.body);
        }
    }
}

fn apply(app: &AppHandle, tray: &TrayIcon, state: &TrayState) -> tauri::Result<()> {
    tray.set_menu(Some(native_menu(app, &menu::menu(state))?))?;
    tray.set_icon(Some(icon_image(menu::icon(state))?))?;
    tray.set_tooltip(Some(menu::tooltip(state)))
}

fn notify(app: &AppHandle, title: &str, body: &str) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!(error = %e, "desktop notifications are unavailable");
    }
}

/// Follow the engine's events and rebuild the tray on state changes, coalesced.
async fn follow(app: AppHandle, management: Arc<Management>) {
    let mut events = management.engine().traffic().subscribe();
    loop {
        match events.recv().await {
            Ok(Event::Request(_)) => continue,
            Ok(Event::Budget(alert)) => {
                notify(
                    &app,
                    &format!("Budget reached: {}", alert.label),
                    &alert.message(),
                );
                continue;
            }
            Ok(Event::State) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
        tokio::time::sleep(COALESCE).await;
        // Everything that arrived meanwhile is covered by one rebuild.
        while events.try_recv().is_ok() {}
        let app2 = app.clone();
        let _ = app.run_on_main_thread(move || refresh(&app2));
    }
}

/// The native menu for the model.
fn native_menu(app: &AppHandle, items: &[Item]) -> tauri::Result<Menu<Wry>> {
    let menu = Menu::new(app)?;
    for item in items {
        menu.append(native_item(app, item)?.as_ref())?;
    }
    Ok(menu)
}

fn native_item(app: &AppHandle, item: &Item) -> tauri::Result<Box<dyn IsMenuItem<Wry>>> {
    Ok(match item {
        Item::Action { id, label, enabled } => match id {
            Some(id) => Box::new(MenuItem::with_id(app, id, label, *enabled, None::<&str>)?),
            None => Box::new(MenuItem::new(app, label, *enabled, None::<&str>)?),
        },
        Item::Check {
            id,
            label,
            checked,
            enabled,
        } => Box::new(CheckMenuItem::with_id(
            app,
            id,
            label,
            *enabled,
            *checked,
            None::<&str>,
        )?),
        Item::Submenu { label, items } => {
            let submenu = Submenu::new(app, label, true)?;
            for child in items {
                submenu.append(native_item(app, child)?.as_ref())?;
            }
            Box::new(submenu)
        }
        Item::Separator => Box::new(PredefinedMenuItem::separator(app)?),
    })
}

/// Carry out a menu item. Every tray action comes through here.
async fn perform(app: &AppHandle, id: &str) {
    let Some(action) = Action::parse(id) else {
        tracing::warn!(id, "unknown tray menu item");
        return;
    };
    let management = shell(app).management.clone();
    let result: Result<(), String> = match (&action, management) {
        (Action::Quit, _) => {
            quit(app);
            Ok(())
        }
        (Action::OpenLogs, _) => open::that_detached(paths::log_dir())
            .map_err(|e| format!("cannot open {}: {e}", paths::log_dir().display())),
        (Action::ToggleAutostart, _) => toggle_autostart(app),
        (_, None) => Err("the engine is not running".into()),
        (Action::ToggleAccount(id), Some(management)) => {
            let enabled = management
                .engine()
                .snapshot()
                .config
                .account(id)
                .is_some_and(|a| a.enabled);
            let change = AccountChange {
                enabled: Some(!enabled),
                ..AccountChange::default()
            };
            change_account(&management, id, change)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        (Action::SetStrategy { policy, strategy }, Some(management)) => {
            set_strategy(&management, policy, *strategy)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        (Action::Pause, Some(management)) => {
            management.engine().set_paused(true);
            Ok(())
        }
        (Action::Resume, Some(management)) => {
            management.engine().set_paused(false);
            Ok(())
        }
        (Action::CopySettings(tool), Some(management)) => {
            copy_settings(app, &management, tool).await
        }
        (Action::OpenDashboard, Some(_)) => {
            let app2 = app.clone();
            app.run_on_main_thread(move || show_dashboard(&app2))
                .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => tracing::info!(action = id, "tray action done"),
        Err(e) => {
            tracing::warn!(action = id, error = %e, "tray action failed");
            notify(app, "Keyway could not do that", &e);
        }
    }
    // Autostart and failures change nothing the engine reports; rebuild anyway.
    let app2 = app.clone();
    let _ = app.run_on_main_thread(move || refresh(&app2));
}

fn toggle_autostart(app: &AppHandle) -> Result<(), String> {
    let launcher = app.autolaunch();
    let result = if launcher.is_enabled().unwrap_or(false) {
        launcher.disable()
    } else {
        launcher.enable()
    };
    result.map_err(|e| format!("cannot change start at login: {e}"))
}

async fn copy_settings(app: &AppHandle, management: &Management, tool: &str) -> Result<(), String> {
    let (tool, text) = settings_to_copy(management, tool)
        .await
        .map_err(|e| e.to_string())?;
    app.clipboard()
        .write_text(text)
        .map_err(|e| format!("cannot copy to the clipboard: {e}"))?;
    notify(
        app,
        &format!("{} settings copied", tool.name()),
        "Paste them into your shell or the tool's settings. They carry a client key of the tool's own, so its spend shows apart.",
    );
    Ok(())
}

/// Bring the dashboard window forward, or open it (a new window and webview) when it is not.
fn show_dashboard(app: &AppHandle) {
    let shell = shell(app);
    if let Some(management) = &shell.management {
        shell.dashboard.show(app, management);
    }
}

/// Stop accepting requests, let those in flight finish (bounded by `limits.drain_secs`),
/// then exit 0. The serve task exits the app when the drain is done.
fn quit(app: &AppHandle) {
    let stop = shell(app)
        .stop
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    match stop {
        Some(stop) if shell(app).management.is_some() => {
            tracing::info!("quitting: draining in-flight requests");
            // The window goes at once, as the user asked; the drain happens behind it.
            shell(app).dashboard.close(app);
            let _ = stop.send(());
        }
        _ => app.exit(0),
    }
}
