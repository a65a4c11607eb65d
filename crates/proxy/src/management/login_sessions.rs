//! The subscription logins started from the management API, while each waits on its own
//! task for the browser's redirect, a pasted code or a device approval, and after it ended
//! (until Keyway stops), so the dashboard can poll how it went.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::oauth::flow::Prompt;

/// Where a login stands.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginState {
    Pending,
    Done,
    Failed,
}

impl LoginState {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginState::Pending => "pending",
            LoginState::Done => "done",
            LoginState::Failed => "failed",
        }
    }
}

/// A login as the API shows it.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct LoginView {
    pub id: String,
    pub provider: String,
    pub label: String,
    pub state: LoginState,
    /// The page the user opens (authorization-code logins).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub url: Option<String>,
    /// The code the user types at `verification_url` (device-code logins).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub user_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub verification_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub error: Option<String>,
}

impl LoginView {
    /// A pending login of `provider` that shows the user `prompt`.
    pub fn pending(id: String, provider: &str, label: &str, prompt: &Prompt) -> LoginView {
        let mut view = LoginView {
            id,
            provider: provider.to_owned(),
            label: label.to_owned(),
            state: LoginState::Pending,
            url: None,
            user_code: None,
            verification_url: None,
            account_id: None,
            error: None,
        };
        match prompt {
            Prompt::OpenUrl(url) => view.url = Some(url.clone()),
            Prompt::EnterCode {
                user_code,
                verification_url,
            } => {
                view.user_code = Some(user_code.clone());
                view.verification_url = Some(verification_url.clone());
            }
        }
        view
    }
}

/// One login: what the API shows, where pasted codes go, and the task waiting for the user.
pub struct LoginSession {
    view: Mutex<LoginView>,
    paste: mpsc::Sender<String>,
    /// Aborting it ends the login at once (a browser login's callback port is free again).
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

/// Why a login could not be cancelled.
#[derive(Debug)]
pub enum CancelError {
    Unknown,
    /// It already ended.
    Finished(LoginState),
}

/// Most logins waiting for the user at once; more are refused until one ends.
pub const MAX_PENDING: usize = 16;
/// Most logins kept in all: the oldest finished ones go first.
pub const MAX_KEPT: usize = 64;

/// The logins of this run, by id, in the order they started: at most [`MAX_PENDING`]
/// waiting and [`MAX_KEPT`] in all, so a client looping on `POST /api/logins` cannot grow
/// them without bound.
#[derive(Default)]
pub struct LoginSessions {
    sessions: Mutex<Sessions>,
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, Arc<LoginSession>>,
    order: std::collections::VecDeque<String>,
}

impl LoginSessions {
    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep a new pending login; returns it and the receiving end of its pasted codes, or
    /// `None` when [`MAX_PENDING`] logins are waiting already.
    pub fn insert(&self, view: LoginView) -> Option<(Arc<LoginSession>, mpsc::Receiver<String>)> {
        let mut sessions = self.sessions();
        let pending = |s: &Arc<LoginSession>| s.view().state == LoginState::Pending;
        if sessions.by_id.values().filter(|s| pending(s)).count() >= MAX_PENDING {
            return None;
        }
        while sessions.by_id.len() >= MAX_KEPT {
            let Sessions { by_id, order } = &mut *sessions;
            let Some(at) = order
                .iter()
                .position(|id| by_id.get(id).is_none_or(|s| !pending(s)))
            else {
                break;
            };
            if let Some(id) = order.remove(at) {
                by_id.remove(&id);
            }
        }
        let (paste, pasted) = mpsc::channel(1);
        let session = Arc::new(LoginSession {
            view: Mutex::new(view.clone()),
            paste,
            task: Mutex::new(None),
        });
        sessions.order.push_back(view.id.clone());
        sessions.by_id.insert(view.id, session.clone());
        Some((session, pasted))
    }

    fn get(&self, id: &str) -> Option<Arc<LoginSession>> {
        self.sessions().by_id.get(id).cloned()
    }

    pub fn view(&self, id: &str) -> Option<LoginView> {
        self.get(id).map(|s| s.view())
    }

    /// Hand a pasted code to a waiting login. False when there is no such pending login.
    pub fn paste(&self, id: &str, code: String) -> bool {
        self.get(id).is_some_and(|s| s.paste.try_send(code).is_ok())
    }

    /// Stop a pending login: its task ends and its view says it was cancelled.
    pub fn cancel(&self, id: &str) -> Result<LoginView, CancelError> {
        let session = self.get(id).ok_or(CancelError::Unknown)?;
        let mut view = session.view.lock().unwrap_or_else(|p| p.into_inner());
        if view.state != LoginState::Pending {
            return Err(CancelError::Finished(view.state));
        }
        if let Some(task) = session
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
        view.state = LoginState::Failed;
        view.error = Some("the login was cancelled".into());
        Ok(view.clone())
    }
}

impl LoginSession {
    pub fn view(&self) -> LoginView {
        self.view.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The task waiting for the user, so a cancel can stop it.
    pub fn set_task(&self, task: tokio::task::AbortHandle) {
        *self.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    /// The login ended: with the new account's id, or why not.
    pub fn finish(&self, outcome: Result<String, impl std::fmt::Display>) {
        let mut view = self.view.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(id) => {
                view.state = LoginState::Done;
                view.account_id = Some(id);
            }
            Err(e) => {
                view.state = LoginState::Failed;
                view.error = Some(e.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: usize) -> LoginView {
        LoginView::pending(
            format!("login_{n}"),
            "anthropic",
            "Max",
            &Prompt::OpenUrl("https://example.invalid/".into()),
        )
    }

    #[test]
    fn logins_are_bounded() {
        let logins = LoginSessions::default();
        let mut held = Vec::new();
        for n in 0..MAX_PENDING {
            held.push(logins.insert(view(n)).expect("room for a pending login"));
        }
        assert!(logins.insert(view(99)).is_none(), "too many pending");
        for (session, _) in &held {
            session.finish(Ok::<_, String>("acc".into()));
        }
        for n in 100..100 + 3 * MAX_KEPT {
            let (session, _) = logins.insert(view(n)).expect("finished ones make room");
            session.finish(Err("no"));
        }
        assert!(logins.sessions().by_id.len() <= MAX_KEPT);
        assert!(
            logins.view("login_0").is_none(),
            "the oldest finished went first"
        );
        assert!(
            logins
                .view(&format!("login_{}", 99 + 3 * MAX_KEPT))
                .is_some()
        );
    }
}
