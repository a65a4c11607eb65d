//! The desktop build reads `tauri.conf.json` (app identity, icons); the headless build needs
//! nothing.

fn main() {
    #[cfg(feature = "desktop")]
    tauri_build::build();
}
