//! The tray menu as data: a pure function from what the engine knows ([`TrayState`]) to the
//! items the tray shows ([`Item`]) and the icon it wears ([`Icon`]). The Tauri side only turns
//! this into native menus, so every label, check mark and disabled item is unit-tested here.

use keyway_core::Strategy;
use keyway_core::state::LiveState;
use keyway_proxy::{AccountView, PolicyView, Summary, Tool};

/// Everything the menu depends on, read from the engine at one moment.
#[derive(Debug, Clone)]
pub struct TrayState {
    pub server: Server,
    pub accounts: Vec<AccountView>,
    pub policies: Vec<PolicyView>,
    pub autostart: bool,
    /// Local time zone offset, for "resets 14:10".
    pub utc_offset_secs: i32,
    /// Where the secrets are, once the engine runs: "Secrets in the OS keyring", ….
    pub secrets: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Server {
    Listening(String),
    Paused(String),
    /// The engine stopped (or never started) with this error.
    Stopped(String),
}

/// One entry of a menu.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Shows text; `id` is `None` for labels that do nothing (the status line).
    Action {
        id: Option<String>,
        label: String,
        enabled: bool,
    },
    Check {
        id: String,
        label: String,
        checked: bool,
        enabled: bool,
    },
    Submenu {
        label: String,
        items: Vec<Item>,
    },
    Separator,
}

/// The tray icon's look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icon {
    /// Every enabled account can serve.
    Serving,
    /// Some accounts are cooling down, need a login or attention.
    Degraded,
    /// No enabled account can serve.
    Exhausted,
    /// Paused, or stopped by an error.
    Paused,
}

/// What a menu item does, parsed from its id. The menu ids are the only way actions are
/// named, so the tray, the tests and the smoke test all go through [`Action::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    ToggleAccount(String),
    SetStrategy { policy: String, strategy: Strategy },
    Pause,
    Resume,
    CopySettings(String),
    OpenDashboard,
    OpenLogs,
    ToggleAutostart,
    Quit,
}

impl Action {
    pub fn id(&self) -> String {
        match self {
            Action::ToggleAccount(id) => format!("account:{id}"),
            Action::SetStrategy { policy, strategy } => format!("policy:{policy}:{strategy}"),
            Action::Pause => "pause".into(),
            Action::Resume => "resume".into(),
            Action::CopySettings(tool) => format!("copy:{tool}"),
            Action::OpenDashboard => "open-dashboard".into(),
            Action::OpenLogs => "open-logs".into(),
            Action::ToggleAutostart => "autostart".into(),
            Action::Quit => "quit".into(),
        }
    }

    pub fn parse(id: &str) -> Option<Action> {
        if let Some(account) = id.strip_prefix("account:") {
            return Some(Action::ToggleAccount(account.to_owned()));
        }
        if let Some(rest) = id.strip_prefix("policy:") {
            let (policy, strategy) = rest.rsplit_once(':')?;
            return Some(Action::SetStrategy {
                policy: policy.to_owned(),
                strategy: strategy.parse().ok()?,
            });
        }
        if let Some(tool) = id.strip_prefix("copy:") {
            return Some(Action::CopySettings(tool.to_owned()));
        }
        Some(match id {
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "open-dashboard" => Action::OpenDashboard,
            "open-logs" => Action::OpenLogs,
            "autostart" => Action::ToggleAutostart,
            "quit" => Action::Quit,
            _ => return None,
        })
    }
}

fn action(a: Action, label: impl Into<String>, enabled: bool) -> Item {
    Item::Action {
        id: Some(a.id()),
        label: label.into(),
        enabled,
    }
}

fn label(text: impl Into<String>) -> Item {
    Item::Action {
        id: None,
        label: text.into(),
        enabled: false,
    }
}

/// The whole tray menu.
pub fn menu(state: &TrayState) -> Vec<Item> {
    let running = !matches!(state.server, Server::Stopped(_));
    let mut items = vec![label(match &state.server {
        Server::Listening(addr) => format!("Keyway — listening on {addr}"),
        Server::Paused(addr) => format!("Keyway — paused ({addr})"),
        Server::Stopped(error) => format!("Keyway — stopped: {error}"),
    })];
    if let Some(secrets) = &state.secrets {
        items.push(label(secrets.clone()));
    }
    items.push(Item::Separator);

    let mut providers: Vec<&str> = Vec::new();
    for a in &state.accounts {
        if !providers.contains(&a.provider.as_str()) {
            providers.push(&a.provider);
        }
    }
    if providers.is_empty() {
        items.push(label("No accounts yet — add one in the dashboard"));
    }
    for provider in providers {
        let accounts = state
            .accounts
            .iter()
            .filter(|a| a.provider == provider)
            .map(|a| Item::Check {
                id: Action::ToggleAccount(a.id.clone()).id(),
                label: account_line(a, state.utc_offset_secs),
                checked: a.enabled,
                enabled: running,
            })
            .collect();
        items.push(Item::Submenu {
            label: provider_name(provider).to_owned(),
            items: accounts,
        });
    }

    let routed: Vec<&PolicyView> = state
        .policies
        .iter()
        .filter(|p| state.accounts.iter().any(|a| a.provider == p.provider))
        .collect();
    if !routed.is_empty() {
        let policies = routed
            .into_iter()
            .map(|p| Item::Submenu {
                label: if p.family.is_some() && !p.configured {
                    // Picking a strategy here gives the family a policy of its own.
                    format!(
                        "{} — as all models ({})",
                        policy_name(p),
                        strategy_name(p.strategy)
                    )
                } else {
                    format!("{} — {}", policy_name(p), strategy_name(p.strategy))
                },
                items: Strategy::ALL
                    .iter()
                    .map(|&s| Item::Check {
                        id: Action::SetStrategy {
                            policy: p.key.clone(),
                            strategy: s,
                        }
                        .id(),
                        label: strategy_name(s).to_owned(),
                        checked: s == p.strategy,
                        enabled: running,
                    })
                    .collect(),
            })
            .collect();
        items.push(Item::Submenu {
            label: "Routing".into(),
            items: policies,
        });
    }
    items.push(Item::Separator);

    items.push(match &state.server {
        Server::Paused(_) => action(Action::Resume, "Resume proxy", true),
        Server::Listening(_) => action(Action::Pause, "Pause proxy", true),
        Server::Stopped(_) => action(Action::Pause, "Pause proxy", false),
    });
    items.push(Item::Submenu {
        label: "Copy connection settings".into(),
        items: Tool::WRITABLE
            .iter()
            .map(|t| action(Action::CopySettings(t.id().into()), t.name(), running))
            .collect(),
    });
    items.push(action(Action::OpenDashboard, "Open dashboard", running));
    items.push(action(Action::OpenLogs, "Open logs", true));
    items.push(Item::Separator);
    items.push(Item::Check {
        id: Action::ToggleAutostart.id(),
        label: "Start at login".into(),
        checked: state.autostart,
        enabled: true,
    });
    items.push(action(Action::Quit, "Quit Keyway", true));
    items
}

/// The icon for the state: paused wins, then whether enabled accounts can serve.
pub fn icon(state: &TrayState) -> Icon {
    if !matches!(state.server, Server::Listening(_)) {
        return Icon::Paused;
    }
    let enabled: Vec<&AccountView> = state.accounts.iter().filter(|a| a.enabled).collect();
    let serving = enabled.iter().filter(|a| is_serving(a)).count();
    match serving {
        0 if !enabled.is_empty() => Icon::Exhausted,
        n if n < enabled.len() => Icon::Degraded,
        _ => Icon::Serving,
    }
}

/// The tooltip: the status line and how many accounts serve.
pub fn tooltip(state: &TrayState) -> String {
    let enabled = state.accounts.iter().filter(|a| a.enabled).count();
    let serving = state
        .accounts
        .iter()
        .filter(|a| a.enabled && is_serving(a))
        .count();
    match &state.server {
        Server::Listening(addr) => {
            format!("Keyway on {addr}: {serving} of {enabled} accounts serving")
        }
        Server::Paused(_) => "Keyway is paused".into(),
        Server::Stopped(e) => format!("Keyway stopped: {e}"),
    }
}

/// Serving, or held for a moment by one of its limits (a minute's `rpm`, say): either way
/// the account is in rotation.
fn is_serving(a: &AccountView) -> bool {
    a.live
        .as_ref()
        .is_some_and(|l| matches!(l.state, LiveState::Serving | LiveState::Limited))
}

/// "Work — 42% of 5h, resets 14:10", "Max #2 — cooling until 16:00", "Home — needs login".
pub fn account_line(a: &AccountView, utc_offset_secs: i32) -> String {
    let at = |t: u64| local_clock(t, utc_offset_secs);
    let detail = match a.summary() {
        Summary::Disabled => "disabled".to_owned(),
        Summary::NotRunning => "starting".to_owned(),
        Summary::Cooling { until: Some(t), .. } => format!("cooling until {}", at(t)),
        Summary::Cooling { until: None, .. } => "cooling down".to_owned(),
        Summary::Limited { until: Some(t), .. } => format!("at its limit until {}", at(t)),
        Summary::Limited { until: None, .. } => "at its limit".to_owned(),
        Summary::NeedsLogin(_) => "needs login".to_owned(),
        Summary::NeedsAttention(_) => "needs attention".to_owned(),
        Summary::NoSecret => "no secret in the keyring".to_owned(),
        Summary::Serving => match a.tightest_window() {
            Some(w) => format!(
                "{:.0}% of {}{}",
                w.used_percent,
                w.name,
                w.resets_at
                    .map(|t| format!(", resets {}", at(t)))
                    .unwrap_or_default()
            ),
            None => "serving".to_owned(),
        },
    };
    format!("{} — {detail}", a.label)
}

/// `HH:MM` in local time.
pub fn local_clock(unix_secs: u64, utc_offset_secs: i32) -> String {
    let local = (unix_secs as i64 + i64::from(utc_offset_secs)).rem_euclid(86_400);
    format!("{:02}:{:02}", local / 3600, local / 60 % 60)
}

fn provider_name(id: &str) -> &str {
    match id {
        "anthropic" => "Anthropic",
        "openai" => "OpenAI",
        "google" => "Google Gemini",
        other => other,
    }
}

fn policy_name(p: &PolicyView) -> String {
    match &p.family {
        Some(f) => format!("{} {f}", provider_name(&p.provider)),
        None => format!("{} (all models)", provider_name(&p.provider)),
    }
}

fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::RoundRobin => "Round robin",
        Strategy::WeightedRoundRobin => "Weighted round robin",
        Strategy::Random => "Random",
        Strategy::WeightedRandom => "Weighted random",
        Strategy::Priority => "Priority (first that can serve)",
        Strategy::MostAvailable => "Most quota left",
        Strategy::LeastBusy => "Least busy (fewest in flight)",
        Strategy::Fastest => "Fastest (first byte soonest)",
    }
}

#[cfg(test)]
mod tests {
    use keyway_core::AccountKind;
    use keyway_core::quota::QuotaWindow;
    use keyway_core::state::AccountStatus;
    use keyway_proxy::MemberView;

    use super::*;

    /// 2026-11-26 12:00:00 UTC.
    const NOON: u64 = 1_795_694_400;

    fn live(state: LiveState) -> AccountStatus {
        AccountStatus {
            state,
            ..AccountStatus::default()
        }
    }

    fn account(
        id: &str,
        provider: &str,
        label: &str,
        status: Option<AccountStatus>,
    ) -> AccountView {
        AccountView {
            id: id.into(),
            label: label.into(),
            provider: provider.into(),
            kind: AccountKind::ApiKey,
            enabled: true,
            weight: 1,
            limits: Default::default(),
            live: status,
            today: None,
        }
    }

    fn policy(provider: &str, family: Option<&str>, strategy: Strategy) -> PolicyView {
        PolicyView {
            key: match family {
                Some(f) => format!("{provider}/{f}"),
                None => provider.into(),
            },
            provider: provider.into(),
            family: family.map(str::to_owned),
            strategy,
            configured: true,
            accounts: Vec::new(),
            weights: Default::default(),
            spread: Default::default(),
            affinity: Default::default(),
            session_idle_secs: keyway_core::session::DEFAULT_IDLE_SECS,
            fallback: Vec::new(),
            members: vec![MemberView {
                id: "a".into(),
                weight: 1,
            }],
        }
    }

    fn state(server: Server, accounts: Vec<AccountView>) -> TrayState {
        TrayState {
            server,
            accounts,
            policies: vec![
                policy("anthropic", None, Strategy::RoundRobin),
                policy("anthropic", Some("opus"), Strategy::Priority),
                policy("google", None, Strategy::RoundRobin),
            ],
            autostart: false,
            utc_offset_secs: 3600,
            secrets: Some("Secrets in the OS keyring".into()),
        }
    }

    fn listening(accounts: Vec<AccountView>) -> TrayState {
        state(Server::Listening("127.0.0.1:8765".into()), accounts)
    }

    fn find<'a>(items: &'a [Item], wanted: &str) -> &'a Item {
        items
            .iter()
            .find(|i| match i {
                Item::Action { label, .. }
                | Item::Check { label, .. }
                | Item::Submenu { label, .. } => label.starts_with(wanted),
                Item::Separator => false,
            })
            .unwrap_or_else(|| panic!("no item starting with {wanted:?} in {items:#?}"))
    }

    fn submenu<'a>(items: &'a [Item], wanted: &str) -> &'a [Item] {
        match find(items, wanted) {
            Item::Submenu { items, .. } => items,
            other => panic!("{wanted:?} is not a submenu: {other:?}"),
        }
    }

    #[test]
    fn the_status_line_says_where_it_listens_or_why_not() {
        let m = menu(&listening(vec![]));
        assert_eq!(m[0], label("Keyway — listening on 127.0.0.1:8765"));
        assert_eq!(m[1], label("Secrets in the OS keyring"));
        let m = menu(&state(Server::Paused("127.0.0.1:8765".into()), vec![]));
        assert_eq!(m[0], label("Keyway — paused (127.0.0.1:8765)"));
        let m = menu(&state(
            Server::Stopped("cannot listen on 127.0.0.1:8765: the address is in use".into()),
            vec![],
        ));
        assert_eq!(
            m[0],
            label("Keyway — stopped: cannot listen on 127.0.0.1:8765: the address is in use")
        );
    }

    #[test]
    fn each_account_shows_its_state_and_tightest_window() {
        let mut quota = live(LiveState::Serving);
        quota.quota = vec![
            QuotaWindow {
                name: "7d".into(),
                used_percent: 10.0,
                resets_at: Some(NOON + 86_400 * 3),
                rejected: false,
            },
            QuotaWindow {
                name: "5h".into(),
                used_percent: 42.0,
                resets_at: Some(NOON + 2 * 3600 + 600),
                rejected: false,
            },
        ];
        let mut cooling = live(LiveState::Cooling);
        cooling.cooling_until = Some(NOON + 3 * 3600);
        let mut disabled = account("d", "anthropic", "Old", Some(live(LiveState::Serving)));
        disabled.enabled = false;
        let s = listening(vec![
            account("w", "anthropic", "Work", Some(quota)),
            account("m", "anthropic", "Max #2", Some(cooling)),
            account("h", "anthropic", "Home", Some(live(LiveState::NeedsLogin))),
            disabled,
            account("g", "google", "Gemini", Some(live(LiveState::Serving))),
        ]);
        let m = menu(&s);
        let anthropic = submenu(&m, "Anthropic");
        assert_eq!(
            anthropic,
            [
                Item::Check {
                    id: "account:w".into(),
                    label: "Work — 42% of 5h, resets 15:10".into(),
                    checked: true,
                    enabled: true
                },
                Item::Check {
                    id: "account:m".into(),
                    label: "Max #2 — cooling until 16:00".into(),
                    checked: true,
                    enabled: true
                },
                Item::Check {
                    id: "account:h".into(),
                    label: "Home — needs login".into(),
                    checked: true,
                    enabled: true
                },
                Item::Check {
                    id: "account:d".into(),
                    label: "Old — disabled".into(),
                    checked: false,
                    enabled: true
                },
            ]
        );
        assert_eq!(
            submenu(&m, "Google Gemini"),
            [Item::Check {
                id: "account:g".into(),
                label: "Gemini — serving".into(),
                checked: true,
                enabled: true
            }]
        );
    }

    #[test]
    fn policies_offer_every_strategy_with_the_current_one_checked() {
        let m = menu(&listening(vec![account(
            "w",
            "anthropic",
            "Work",
            Some(live(LiveState::Serving)),
        )]));
        let routing = submenu(&m, "Routing");
        // Only providers with accounts: no Google policy.
        assert_eq!(routing.len(), 2, "{routing:#?}");
        let opus = submenu(routing, "Anthropic opus — Priority");
        assert_eq!(opus.len(), Strategy::ALL.len());
        let checked: Vec<&str> = opus
            .iter()
            .filter_map(|i| match i {
                Item::Check {
                    id, checked: true, ..
                } => Some(id.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(checked, ["policy:anthropic/opus:priority"]);
        assert!(matches!(
            find(opus, "Round robin"),
            Item::Check { id, checked: false, enabled: true, .. } if id == "policy:anthropic/opus:round_robin"
        ));
        submenu(routing, "Anthropic (all models) — Round robin");

        // A family without a policy of its own says whose it follows.
        let mut s = listening(vec![account(
            "w",
            "anthropic",
            "Work",
            Some(live(LiveState::Serving)),
        )]);
        s.policies[1].configured = false;
        s.policies[1].strategy = Strategy::RoundRobin;
        let m = menu(&s);
        submenu(
            submenu(&m, "Routing"),
            "Anthropic opus — as all models (Round robin)",
        );
    }

    #[test]
    fn pause_and_resume_follow_the_server() {
        let m = menu(&listening(vec![]));
        assert_eq!(
            find(&m, "Pause proxy"),
            &action(Action::Pause, "Pause proxy", true)
        );
        let m = menu(&state(Server::Paused("127.0.0.1:8765".into()), vec![]));
        assert_eq!(
            find(&m, "Resume proxy"),
            &action(Action::Resume, "Resume proxy", true)
        );
    }

    #[test]
    fn a_stopped_engine_disables_what_needs_it_but_keeps_logs_and_quit() {
        let s = state(
            Server::Stopped("boom".into()),
            vec![account("w", "anthropic", "Work", None)],
        );
        let m = menu(&s);
        assert!(matches!(
            find(&m, "Pause proxy"),
            Item::Action { enabled: false, .. }
        ));
        assert!(matches!(
            find(&m, "Open dashboard"),
            Item::Action { enabled: false, .. }
        ));
        assert!(matches!(
            &submenu(&m, "Anthropic")[0],
            Item::Check { enabled: false, .. }
        ));
        assert!(matches!(
            find(&m, "Open logs"),
            Item::Action { enabled: true, .. }
        ));
        assert!(matches!(
            find(&m, "Quit Keyway"),
            Item::Action { enabled: true, .. }
        ));
        assert_eq!(icon(&s), Icon::Paused);
    }

    #[test]
    fn copy_settings_autostart_and_quit_are_always_there() {
        let mut s = listening(vec![]);
        let m = menu(&s);
        let copy = submenu(&m, "Copy connection settings");
        let ids: Vec<Option<&str>> = copy
            .iter()
            .map(|i| match i {
                Item::Action { id, .. } => id.as_deref(),
                _ => None,
            })
            .collect();
        assert_eq!(
            ids,
            [
                Some("copy:claude-code"),
                Some("copy:codex-cli"),
                Some("copy:gemini-cli")
            ]
        );
        assert!(matches!(
            find(&m, "Start at login"),
            Item::Check { checked: false, .. }
        ));
        s.autostart = true;
        assert!(matches!(
            find(&menu(&s), "Start at login"),
            Item::Check { checked: true, .. }
        ));
        assert!(matches!(
            find(&m, "No accounts yet"),
            Item::Action { id: None, .. }
        ));
        assert_eq!(m.last(), Some(&action(Action::Quit, "Quit Keyway", true)));
    }

    #[test]
    fn the_icon_tells_serving_degraded_exhausted_and_paused_apart() {
        let serving = account("a", "anthropic", "A", Some(live(LiveState::Serving)));
        let cooling = account("b", "anthropic", "B", Some(live(LiveState::Cooling)));
        let mut off = account("c", "anthropic", "C", Some(live(LiveState::Cooling)));
        off.enabled = false;
        assert_eq!(
            icon(&listening(vec![serving.clone(), off.clone()])),
            Icon::Serving
        );
        assert_eq!(
            icon(&listening(vec![serving.clone(), cooling.clone()])),
            Icon::Degraded
        );
        assert_eq!(
            icon(&listening(vec![cooling.clone(), off])),
            Icon::Exhausted
        );
        assert_eq!(icon(&listening(vec![])), Icon::Serving);
        assert_eq!(
            icon(&state(Server::Paused("x".into()), vec![serving])),
            Icon::Paused
        );
        assert_eq!(
            tooltip(&listening(vec![cooling])),
            "Keyway on 127.0.0.1:8765: 0 of 1 accounts serving"
        );
    }

    #[test]
    fn every_item_id_parses_back_to_its_action() {
        let s = listening(vec![account(
            "w",
            "anthropic",
            "Work",
            Some(live(LiveState::Serving)),
        )]);
        fn ids(items: &[Item], out: &mut Vec<String>) {
            for i in items {
                match i {
                    Item::Action { id: Some(id), .. } | Item::Check { id, .. } => {
                        out.push(id.clone())
                    }
                    Item::Submenu { items, .. } => ids(items, out),
                    _ => {}
                }
            }
        }
        let mut all = Vec::new();
        ids(&menu(&s), &mut all);
        assert!(all.len() > 15, "{all:?}");
        for id in all {
            let action = Action::parse(&id).unwrap_or_else(|| panic!("{id} does not parse"));
            assert_eq!(action.id(), id);
        }
        assert_eq!(Action::parse("policy:anthropic/opus:nonsense"), None);
        assert_eq!(Action::parse("frobnicate"), None);
    }

    #[test]
    fn clock_is_local() {
        assert_eq!(local_clock(NOON, 0), "12:00");
        assert_eq!(local_clock(NOON, 3600 + 1800), "13:30");
        assert_eq!(local_clock(NOON, -13 * 3600), "23:00");
    }
}
