//! The dashboard window's input, between the tray app (`desktop/window.rs`) and the window's
//! own process (`bin/keyway-dashboard.rs`): on the process's stdin, the dashboard's address on
//! the first line (never the command line, which other users can read: the address carries the
//! management token), then [`SHOW`] lines. The end of stdin closes the window.

/// A line that brings the window forward.
pub const SHOW: &str = "show";
