//! One tray app per user session: the first `keyway` owns a name on the session bus, and a
//! second launch asks it to show the dashboard, then exits without starting an engine.
//!
//! The name, object path, interface and method are those of Tauri's single-instance plugin,
//! which earlier versions of the tray app used, so a launch of either version hands over to
//! a running instance of the other.

use std::time::Duration;

/// The bus name: the app's identifier (`tauri.conf.json`) and `.SingleInstance`.
const NAME: &str = "dev.keyway.desktop.SingleInstance";
const PATH: &str = "/dev/keyway/desktop/SingleInstance";
const INTERFACE: &str = "org.SingleInstance.DBus";
/// How long a second launch waits for the running instance to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// The running instance's side: called on zbus's own thread.
struct Handover {
    show: Box<dyn Fn() + Send + Sync>,
}

#[zbus::interface(name = "org.SingleInstance.DBus")]
impl Handover {
    /// A second launch's arguments and working directory; the tray app only shows the
    /// dashboard.
    fn execute_callback(&self, _argv: Vec<String>, _cwd: String) {
        (self.show)();
    }
}

pub enum Claim {
    /// This is the first instance; keep the connection for as long as the app runs (it holds
    /// the name). `None` where there is no session bus: then every launch is a first.
    First(Option<zbus::blocking::Connection>),
    /// Another instance runs and was asked to show the dashboard.
    HandedOver,
}

/// Take the name, with `show` to call when a later launch asks; or, when another instance
/// holds it, ask that one to show the dashboard.
pub fn claim(show: impl Fn() + Send + Sync + 'static) -> anyhow::Result<Claim> {
    let owned = zbus::blocking::connection::Builder::session()
        .and_then(|b| b.name(NAME))
        .and_then(|b| {
            b.replace_existing_names(false)
                .allow_name_replacements(false)
                .serve_at(
                    PATH,
                    Handover {
                        show: Box::new(show),
                    },
                )
        })
        .and_then(|b| b.build());
    match owned {
        Ok(connection) => Ok(Claim::First(Some(connection))),
        Err(zbus::Error::NameTaken) => {
            hand_over().map_err(|e| {
                anyhow::anyhow!(
                    "another Keyway tray app is running in this session but did not answer within {} s ({e}); quit it from its tray menu, or end its process, and start Keyway again",
                    ANSWER_TIMEOUT.as_secs()
                )
            })?;
            Ok(Claim::HandedOver)
        }
        Err(e) => {
            tracing::warn!(error = %e, "no session bus: a second launch will not find this one");
            Ok(Claim::First(None))
        }
    }
}

fn hand_over() -> zbus::Result<()> {
    let connection = zbus::blocking::connection::Builder::session()?
        .method_timeout(ANSWER_TIMEOUT)
        .build()?;
    let argv: Vec<String> = std::env::args().collect();
    let cwd = std::env::current_dir()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    connection.call_method(
        Some(NAME),
        PATH,
        Some(INTERFACE),
        "ExecuteCallback",
        &(argv, cwd),
    )?;
    Ok(())
}
