//! Which desktop notifications a change of engine state deserves. Pure, so the rules are
//! tested: only transitions notify (an account that stays exhausted says so once), and short
//! cooldowns — the everyday 429 that failover absorbs — stay quiet.

use keyway_core::state::LiveState;
use keyway_proxy::AccountView;

use super::menu::{TrayState, local_clock};

/// A cooldown at least this long is worth telling the user about.
pub const LONG_COOLDOWN_SECS: u64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub title: String,
    pub body: String,
}

fn state_of(a: &AccountView) -> Option<LiveState> {
    a.live.as_ref().map(|l| l.state)
}

/// In rotation: serving, or held for a moment by one of its limits (not worth an alert).
fn serving(a: &AccountView) -> bool {
    a.enabled && matches!(state_of(a), Some(LiveState::Serving | LiveState::Limited))
}

/// The alerts for going from `before` to `after` at `now` (Unix seconds).
pub fn alerts(before: &TrayState, after: &TrayState, now: u64) -> Vec<Alert> {
    let clock = |t: u64| local_clock(t, after.utc_offset_secs);
    let mut out = Vec::new();
    for a in after.accounts.iter().filter(|a| a.enabled) {
        let previous = before.accounts.iter().find(|b| b.id == a.id);
        let was = previous.and_then(state_of);
        let Some(live) = &a.live else { continue };
        match live.state {
            LiveState::Cooling if was != Some(LiveState::Cooling) => {
                if let Some(until) = live.cooling_until
                    && until.saturating_sub(now) >= LONG_COOLDOWN_SECS
                {
                    out.push(Alert {
                        title: format!("{} is rate-limited", a.label),
                        body: format!(
                            "Keyway sends its requests to your other accounts until {}.",
                            clock(until)
                        ),
                    });
                }
            }
            LiveState::NeedsLogin if was != Some(LiveState::NeedsLogin) => out.push(Alert {
                title: format!("{} needs a new login", a.label),
                body: "Open the Keyway dashboard to log in again; until then its requests go to your other accounts.".into(),
            }),
            LiveState::Serving
            | LiveState::Limited
            | LiveState::Cooling
            | LiveState::NeedsLogin
            | LiveState::NeedsAttention
            | LiveState::NoSecret => {}
        }
    }
    let mut providers: Vec<&str> = Vec::new();
    for a in &after.accounts {
        if !providers.contains(&a.provider.as_str()) {
            providers.push(&a.provider);
        }
    }
    for provider in providers {
        let enabled = |s: &TrayState| -> Vec<AccountView> {
            s.accounts
                .iter()
                .filter(|a| a.provider == provider && a.enabled)
                .cloned()
                .collect()
        };
        let now_enabled = enabled(after);
        let was_serving = enabled(before).iter().any(serving);
        if !now_enabled.is_empty() && was_serving && !now_enabled.iter().any(serving) {
            let soonest = now_enabled
                .iter()
                .filter_map(|a| a.live.as_ref()?.cooling_until)
                .min();
            out.push(Alert {
                title: format!("Every {provider} account is exhausted"),
                body: match soonest {
                    Some(t) => format!(
                        "Requests to {provider} fail until the first account frees up at {}.",
                        clock(t)
                    ),
                    None => format!(
                        "Requests to {provider} fail until an account can serve again; see the dashboard."
                    ),
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use keyway_core::AccountKind;
    use keyway_core::state::AccountStatus;

    use super::*;
    use crate::desktop::menu::Server;

    const NOW: u64 = 1_795_694_400;

    fn account(id: &str, state: LiveState, cooling_until: Option<u64>) -> AccountView {
        AccountView {
            id: id.into(),
            label: id.to_uppercase(),
            provider: "anthropic".into(),
            kind: AccountKind::OAuth,
            enabled: true,
            weight: 1,
            limits: Default::default(),
            live: Some(AccountStatus {
                state,
                cooling_until,
                ..AccountStatus::default()
            }),
            today: None,
        }
    }

    fn tray(accounts: Vec<AccountView>) -> TrayState {
        TrayState {
            server: Server::Listening("127.0.0.1:8765".into()),
            accounts,
            policies: Vec::new(),
            autostart: false,
            utc_offset_secs: 0,
            secrets: None,
        }
    }

    #[test]
    fn a_long_cooldown_notifies_once_and_a_short_one_not_at_all() {
        let before = tray(vec![
            account("a", LiveState::Serving, None),
            account("b", LiveState::Serving, None),
        ]);
        let short = tray(vec![
            account("a", LiveState::Cooling, Some(NOW + 30)),
            account("b", LiveState::Serving, None),
        ]);
        assert_eq!(alerts(&before, &short, NOW), []);
        let long = tray(vec![
            account("a", LiveState::Cooling, Some(NOW + 4 * 3600)),
            account("b", LiveState::Serving, None),
        ]);
        assert_eq!(
            alerts(&before, &long, NOW),
            [Alert {
                title: "A is rate-limited".into(),
                body: "Keyway sends its requests to your other accounts until 16:00.".into()
            }]
        );
        assert_eq!(
            alerts(&long, &long, NOW),
            [],
            "no repeat while it stays cooling"
        );
    }

    #[test]
    fn an_exhausted_pool_notifies_when_the_last_account_goes() {
        let one_left = tray(vec![
            account("a", LiveState::Cooling, Some(NOW + 60)),
            account("b", LiveState::Serving, None),
        ]);
        let none_left = tray(vec![
            account("a", LiveState::Cooling, Some(NOW + 60)),
            account("b", LiveState::Cooling, Some(NOW + 120)),
        ]);
        let got = alerts(&one_left, &none_left, NOW);
        assert_eq!(
            got,
            [Alert {
                title: "Every anthropic account is exhausted".into(),
                body: "Requests to anthropic fail until the first account frees up at 12:01."
                    .into()
            }]
        );
        assert_eq!(alerts(&none_left, &none_left, NOW), []);
    }

    #[test]
    fn a_login_to_renew_notifies_once() {
        let before = tray(vec![
            account("a", LiveState::Serving, None),
            account("b", LiveState::Serving, None),
        ]);
        let after = tray(vec![
            account("a", LiveState::NeedsLogin, None),
            account("b", LiveState::Serving, None),
        ]);
        let got = alerts(&before, &after, NOW);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].title, "A needs a new login");
        assert_eq!(alerts(&after, &after, NOW), []);
    }

    #[test]
    fn disabled_accounts_stay_quiet() {
        let before = tray(vec![account("a", LiveState::Serving, None)]);
        let mut off = account("a", LiveState::Cooling, Some(NOW + 4 * 3600));
        off.enabled = false;
        assert_eq!(alerts(&before, &tray(vec![off]), NOW), []);
    }
}
