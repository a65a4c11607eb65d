//! The desktop app: the engine in-process, a tray whose menu is rebuilt from engine events,
//! notifications on state transitions, and the dashboard in a window. The engine knows
//! nothing of this module; it follows the engine's event stream and acts through the same
//! functions as the management API.
//!
//! At rest the app is the engine and a tray. The tray is built on the crates Tauri's own tray
//! is made of (tao's event loop, tray-icon and its menus), not on Tauri's webview runtime, so
//! this process does not link WebKitGTK: the dashboard window is a Tauri app in a process of
//! its own (`keyway-dashboard`, see `window.rs`) that exists only while the window is open.

pub mod alerts;
mod handover;
pub mod menu;
mod window;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auto_launch::AutoLaunch;
use keyway_core::paths;
use keyway_proxy::{
    AccountChange, Event, Management, account_views, change_account, policy_views, set_strategy,
    settings_to_copy,
};
use tao::event::{Event as LoopEvent, StartCause};
use tao::event_loop::{ControlFlow, EventLoopBuilder, EventLoopProxy};
use tao::platform::run_return::EventLoopExtRunReturn as _;
use tokio::sync::oneshot;
use tray_icon::menu::{
    CheckMenuItem, IsMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu,
};
use tray_icon::{TrayIcon, TrayIconBuilder};

use crate::run::{self, RunOptions};
use menu::{Action, Icon, Item, Server, TrayState};

/// The app's name: in notifications and its start-at-login entry (the same entry Tauri's
/// autostart plugin wrote, so a setting made by an earlier version still shows).
const APP_NAME: &str = "Keyway";
/// State changes closer together than this rebuild the menu once.
const COALESCE: Duration = Duration::from_millis(200);
/// How long a notification waits for the desktop's notification service.
#[cfg(all(unix, not(target_os = "macos")))]
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// What other threads ask of the event loop, which owns the tray (its objects live on the
/// GUI's thread).
#[derive(Debug)]
enum UiEvent {
    /// Rebuild the tray from the engine's state, and notify what changed.
    Refresh,
    /// A second launch asked for the dashboard.
    ShowDashboard,
    /// The engine stopped (Quit, after the drain, or a signal): leave the loop.
    Exit,
}

/// What the desktop shell holds, shared by the event loop, menu actions and engine followers.
struct Shell {
    management: Option<Arc<Management>>,
    /// Why the engine is not running, for the status line.
    error: Option<String>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    /// The dashboard window's process, while it is open.
    dashboard: window::Dashboard,
    /// Start at login; `None` when this platform's entry cannot be made.
    autostart: Option<AutoLaunch>,
    /// Made on first copy and kept: on X11 the copied text lives as long as its owner.
    clipboard: Mutex<Option<arboard::Clipboard>>,
    ui: EventLoopProxy<UiEvent>,
    runtime: tokio::runtime::Handle,
}

impl Shell {
    /// Ask the event loop for `event`; it is gone only when the app is exiting.
    fn send(&self, event: UiEvent) {
        let _ = self.ui.send_event(event);
    }
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
    crate::toolkit::set_environment();
    let mut event_loop = EventLoopBuilder::<UiEvent>::with_user_event().build();
    let ui = event_loop.create_proxy();

    // First: a second launch hands over to the running instance and exits before it binds a
    // port or opens the data dir.
    let show = ui.clone();
    let _handover = match handover::claim(move || {
        let _ = show.send_event(UiEvent::ShowDashboard);
    })? {
        handover::Claim::First(connection) => connection,
        handover::Claim::HandedOver => return Ok(()),
    };

    let (stop, stopped) = oneshot::channel::<()>();
    let started = runtime.block_on(run::start(&opts, reloader));
    let (started, error) = match started {
        Ok(s) => (Some(s), None),
        Err(e) => {
            tracing::error!(error = %e, "the engine did not start; the tray shows why");
            (None, Some(format!("{e:#}")))
        }
    };
    let shell = Arc::new(Shell {
        management: started.as_ref().map(|s| s.management.clone()),
        error,
        stop: Mutex::new(Some(stop)),
        dashboard: window::Dashboard::default(),
        autostart: autostart(),
        clipboard: Mutex::new(None),
        ui,
        runtime: runtime.handle().clone(),
    });
    let actions = shell.clone();
    MenuEvent::set_event_handler(Some(move |event: MenuEvent| {
        let shell = actions.clone();
        let id = event.id().as_ref().to_owned();
        actions
            .runtime
            .spawn(async move { perform(&shell, &id).await });
    }));
    if let Some(started) = started {
        let management = started.management.clone();
        let exit = shell.clone();
        runtime.spawn(async move {
            let shutdown = async {
                tokio::select! {
                    _ = stopped => {}
                    () = run::shutdown_signal() => {}
                }
            };
            if let Err(e) = started.serve(shutdown).await {
                tracing::error!(error = %e, "the server stopped with an error");
            }
            exit.send(UiEvent::Exit);
        });
        runtime.spawn(follow(shell.clone(), management));
    }
    // The tray is made once the loop runs (tray-icon: on macOS not before, and on every
    // platform on the loop's own thread), and lives there.
    let mut tray: Option<Tray> = None;
    let mut failed = None;
    event_loop.run_return(|event, _, control_flow| {
        *control_flow = ControlFlow::Wait;
        match event {
            LoopEvent::NewEvents(StartCause::Init) => match Tray::create(&shell) {
                Ok(made) => {
                    tray = Some(made);
                    // Started, with the tray up: what the start freed goes back before the
                    // rest.
                    crate::memory::release_free_memory();
                }
                Err(e) => {
                    failed = Some(e);
                    *control_flow = ControlFlow::Exit;
                }
            },
            LoopEvent::UserEvent(UiEvent::Refresh) => {
                if let Some(tray) = tray.as_mut() {
                    tray.refresh(&shell);
                }
            }
            LoopEvent::UserEvent(UiEvent::ShowDashboard) => show_dashboard(&shell),
            LoopEvent::UserEvent(UiEvent::Exit) => *control_flow = ControlFlow::Exit,
            _ => {}
        }
    });
    // The dashboard goes with the app (its process sees its stdin end).
    shell.dashboard.close();
    match failed {
        Some(e) => Err(e.context("cannot show the tray icon")),
        None => Ok(()),
    }
}

/// The start-at-login entry for this executable (the AppImage's own path when it runs from
/// one, since the executable is then in a mount that goes away).
fn autostart() -> Option<AutoLaunch> {
    let exe = std::env::var_os("APPIMAGE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::current_exe().ok())?;
    let mut builder = auto_launch::AutoLaunchBuilder::new();
    builder
        .set_app_name(APP_NAME)
        .set_app_path(&exe.to_string_lossy())
        .set_use_launch_agent(true);
    match builder.build() {
        Ok(launcher) => Some(launcher),
        Err(e) => {
            tracing::warn!(error = %e, "start at login is unavailable");
            None
        }
    }
}

/// The engine state the tray shows, read now.
fn tray_state(shell: &Shell) -> TrayState {
    let autostart = shell
        .autostart
        .as_ref()
        .is_some_and(|a| a.is_enabled().unwrap_or(false));
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

/// One of the tray's icons (8-bit RGBA PNGs built into the binary) as the pixels the tray
/// takes.
fn icon_image(icon: Icon) -> anyhow::Result<tray_icon::Icon> {
    let bytes: &[u8] = match icon {
        Icon::Serving => include_bytes!("../../icons/tray-serving.png"),
        Icon::Degraded => include_bytes!("../../icons/tray-degraded.png"),
        Icon::Exhausted => include_bytes!("../../icons/tray-exhausted.png"),
        Icon::Paused => include_bytes!("../../icons/tray-paused.png"),
    };
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info()?;
    if reader.output_color_type() != (png::ColorType::Rgba, png::BitDepth::Eight) {
        anyhow::bail!("the tray icon {icon:?} is not an 8-bit RGBA PNG");
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| anyhow::anyhow!("the tray icon {icon:?} is too large"))?;
    let mut rgba = vec![0; size];
    let frame = reader.next_frame(&mut rgba)?;
    rgba.truncate(frame.buffer_size());
    Ok(tray_icon::Icon::from_rgba(rgba, frame.width, frame.height)?)
}

/// The tray icon and what it shows; lives on the event loop's thread.
struct Tray {
    icon: TrayIcon,
    /// The state the menu shows now, to notify on transitions only.
    shown: TrayState,
}

impl Tray {
    fn create(shell: &Shell) -> anyhow::Result<Tray> {
        let state = tray_state(shell);
        let icon = TrayIconBuilder::new()
            .with_icon(icon_image(menu::icon(&state))?)
            .with_tooltip(menu::tooltip(&state))
            .with_menu(Box::new(native_menu(&menu::menu(&state))?))
            .build()?;
        Ok(Tray { icon, shown: state })
    }

    /// Rebuild the tray from the engine's state, and notify what changed.
    fn refresh(&mut self, shell: &Shell) {
        let state = tray_state(shell);
        if let Err(e) = self.apply(&state) {
            tracing::warn!(error = %e, "cannot update the tray");
        }
        let previous = std::mem::replace(&mut self.shown, state);
        let now = keyway_core::state::now_ms() / 1000;
        for alert in alerts::alerts(&previous, &self.shown, now) {
            notify(shell, &alert.title, &alert.body);
        }
    }

    fn apply(&self, state: &TrayState) -> anyhow::Result<()> {
        self.icon
            .set_menu(Some(Box::new(native_menu(&menu::menu(state))?)));
        self.icon.set_icon(Some(icon_image(menu::icon(state))?))?;
        self.icon.set_tooltip(Some(menu::tooltip(state)))?;
        Ok(())
    }
}

/// A desktop notification, sent off the GUI's thread. On Linux and the BSDs it is a D-Bus
/// call to the desktop's notification service, bounded by [`NOTIFY_TIMEOUT`]: a service that
/// hangs must not hold anything of ours.
fn notify(shell: &Shell, title: &str, body: &str) {
    let mut notification = notify_rust::Notification::new();
    notification
        .appname(APP_NAME)
        .summary(title)
        .body(body)
        .auto_icon();
    #[cfg(all(unix, not(target_os = "macos")))]
    shell.runtime.spawn(async move {
        match tokio::time::timeout(NOTIFY_TIMEOUT, notification.show_async()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "desktop notifications are unavailable"),
            Err(_) => tracing::debug!("the desktop's notification service did not answer"),
        }
    });
    // Elsewhere the call is to the system's own API, in the process.
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    shell.runtime.spawn_blocking(move || {
        if let Err(e) = notification.show() {
            tracing::debug!(error = %e, "desktop notifications are unavailable");
        }
    });
}

/// Follow the engine's events and rebuild the tray on state changes, coalesced.
async fn follow(shell: Arc<Shell>, management: Arc<Management>) {
    let mut events = management.engine().traffic().subscribe();
    loop {
        match events.recv().await {
            Ok(Event::Request(_)) => continue,
            Ok(Event::Budget(alert)) => {
                notify(
                    &shell,
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
        shell.send(UiEvent::Refresh);
    }
}

/// The native menu for the model.
fn native_menu(items: &[Item]) -> tray_icon::menu::Result<Menu> {
    let menu = Menu::new();
    for item in items {
        menu.append(native_item(item)?.as_ref())?;
    }
    Ok(menu)
}

fn native_item(item: &Item) -> tray_icon::menu::Result<Box<dyn IsMenuItem>> {
    Ok(match item {
        Item::Action { id, label, enabled } => match id {
            Some(id) => Box::new(MenuItem::with_id(id.as_str(), label, *enabled, None)),
            None => Box::new(MenuItem::new(label, *enabled, None)),
        },
        Item::Check {
            id,
            label,
            checked,
            enabled,
        } => Box::new(CheckMenuItem::with_id(
            id.as_str(),
            label,
            *enabled,
            *checked,
            None,
        )),
        Item::Submenu { label, items } => {
            let submenu = Submenu::new(label, true);
            for child in items {
                submenu.append(native_item(child)?.as_ref())?;
            }
            Box::new(submenu)
        }
        Item::Separator => Box::new(PredefinedMenuItem::separator()),
    })
}

/// Carry out a menu item. Every tray action comes through here.
async fn perform(shell: &Shell, id: &str) {
    let Some(action) = Action::parse(id) else {
        tracing::warn!(id, "unknown tray menu item");
        return;
    };
    let result: Result<(), String> = match (&action, shell.management.clone()) {
        (Action::Quit, _) => {
            quit(shell);
            Ok(())
        }
        (Action::OpenLogs, _) => open::that_detached(paths::log_dir())
            .map_err(|e| format!("cannot open {}: {e}", paths::log_dir().display())),
        (Action::ToggleAutostart, _) => toggle_autostart(shell),
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
            copy_settings(shell, &management, tool).await
        }
        (Action::OpenDashboard, Some(management)) => shell.dashboard.show(&management),
    };
    match result {
        Ok(()) => tracing::info!(action = id, "tray action done"),
        Err(e) => {
            tracing::warn!(action = id, error = %e, "tray action failed");
            notify(shell, "Keyway could not do that", &e);
        }
    }
    // Autostart and failures change nothing the engine reports; rebuild anyway.
    shell.send(UiEvent::Refresh);
}

fn toggle_autostart(shell: &Shell) -> Result<(), String> {
    let Some(launcher) = &shell.autostart else {
        return Err("start at login is unavailable here (see the log)".into());
    };
    let result = if launcher.is_enabled().unwrap_or(false) {
        launcher.disable()
    } else {
        launcher.enable()
    };
    result.map_err(|e| format!("cannot change start at login: {e}"))
}

async fn copy_settings(shell: &Shell, management: &Management, tool: &str) -> Result<(), String> {
    let (tool, text) = settings_to_copy(management, tool)
        .await
        .map_err(|e| e.to_string())?;
    {
        let mut clipboard = shell.clipboard.lock().unwrap_or_else(|p| p.into_inner());
        if clipboard.is_none() {
            *clipboard = Some(
                arboard::Clipboard::new()
                    .map_err(|e| format!("cannot reach the clipboard: {e}"))?,
            );
        }
        if let Some(clipboard) = clipboard.as_mut() {
            clipboard
                .set_text(text)
                .map_err(|e| format!("cannot copy to the clipboard: {e}"))?;
        }
    }
    notify(
        shell,
        &format!("{} settings copied", tool.name()),
        "Paste them into your shell or the tool's settings. They carry a client key of the tool's own, so its spend shows apart.",
    );
    Ok(())
}

/// Bring the dashboard window forward, or open it when it is not.
fn show_dashboard(shell: &Shell) {
    if let Some(management) = &shell.management
        && let Err(e) = shell.dashboard.show(management)
    {
        tracing::warn!(error = %e, "cannot open the dashboard window");
        notify(shell, "Keyway could not open the dashboard", &e);
    }
}

/// Stop accepting requests, let those in flight finish (bounded by `limits.drain_secs`),
/// then exit 0. The serve task ends the event loop when the drain is done.
fn quit(shell: &Shell) {
    let stop = shell.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
    match stop {
        Some(stop) if shell.management.is_some() => {
            tracing::info!("quitting: draining in-flight requests");
            // The window goes at once, as the user asked; the drain happens behind it.
            shell.dashboard.close();
            let _ = stop.send(());
        }
        _ => shell.send(UiEvent::Exit),
    }
}
