//! Environment GTK and WebKitGTK read once, set before either starts (never against the
//! user's own setting of the same variable). Shared by the tray app (`keyway`) and the
//! dashboard window (`keyway-dashboard`), which inherits what the tray app set.
//!
//! - WebKitGTK's DMA-BUF renderer draws blank windows where there is no GPU device (VMs,
//!   remote X, Xvfb); only there is it turned off.
//! - GTK 3 sets up GLX when it opens an X11 display (to choose its visuals), and with Mesa that
//!   maps the GL driver and LLVM into the process: about 50 MiB resident for a tray that never
//!   draws with GL. On X11 nothing here needs GDK's GL: WebKitGTK draws its frames with an EGL
//!   display of its own and cairo, never through a GDK GL context (only under Wayland does it
//!   share GTK's, and there GTK sets up no GL at start). `GDK_GL=` (empty) gives it back.
//! - WebKit's memory pressure monitor polls the system's memory every few seconds from the
//!   first webview to the end of the process: wake-ups for as long as the window is open. The
//!   dashboard is one small page.

/// Set what is unset; call on the main thread before GTK starts.
pub fn set_environment() {
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
