//! Conversations. Coding tools send sessions of dozens of requests whose prompt grows turn by
//! turn, and a provider's prompt cache lives with the account that saw the prefix: moving
//! turn 7 to another account writes the whole context to a new cache at the write price. So a
//! session is bound to the account its first request went to, stays there while that account
//! can serve, and moves only when it must (the account cools down, runs out, needs a login or
//! leaves the pool) or when moving is cheap (its cache is already cold and another account is
//! clearly better placed). Requests without a session identity keep the policy's per-request
//! sequence.
//!
//! Some state is bound to an account outright: a Responses `previous_response_id`, and the
//! encrypted reasoning items Codex sends back every turn. [`Owners`] remembers which account
//! produced them.
//!
//! Both tables are runtime facts outside the snapshot, bounded, and saved to the data dir so
//! a restart keeps them.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::pool::Pool;
use crate::state::Changes;
use crate::strategy::Strategy;

/// How a policy spreads requests that belong to a session.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spread {
    /// A session stays on its account (the default): its prompt cache stays warm.
    #[default]
    Session,
    /// Every request is picked on its own, sessions or not.
    Request,
}

impl Spread {
    pub fn as_str(self) -> &'static str {
        match self {
            Spread::Session => "session",
            Spread::Request => "request",
        }
    }
}

impl std::str::FromStr for Spread {
    type Err = String;

    fn from_str(s: &str) -> Result<Spread, String> {
        match s {
            "session" => Ok(Spread::Session),
            "request" => Ok(Spread::Request),
            _ => Err(format!("unknown spread `{s}`; use session or request")),
        }
    }
}

/// Where a policy takes session identities from.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Affinity {
    /// What the clients send (headers, body fields, response chains).
    #[default]
    Client,
    /// As `client`, and requests with none are grouped by a hash of their system prompt and
    /// first user turn. Identical requests (benchmarks, SDK scripts) then share an account.
    Prefix,
}

impl Affinity {
    pub fn as_str(self) -> &'static str {
        match self {
            Affinity::Client => "client",
            Affinity::Prefix => "prefix",
        }
    }
}

/// A pool's session settings, from its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub spread: Spread,
    pub affinity: Affinity,
    /// A binding nobody used for this long is forgotten.
    pub idle_ms: u64,
}

/// Default idle time after which a binding expires: the providers' longest cache lifetime
/// (Anthropic's extended `1h` TTL), so a binding never outlives the cache it protects by much.
pub const DEFAULT_IDLE_SECS: u64 = 3600;

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            spread: Spread::Session,
            affinity: Affinity::Client,
            idle_ms: DEFAULT_IDLE_SECS * 1000,
        }
    }
}

/// Where a request's session identity came from.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeySource {
    /// Claude Code's `x-claude-code-session-id`.
    #[serde(rename = "x-claude-code-session-id")]
    ClaudeCodeSession,
    /// Codex CLI's `session-id`.
    #[serde(rename = "session-id")]
    CodexSession,
    /// Codex CLI's `thread-id`.
    #[serde(rename = "thread-id")]
    CodexThread,
    /// Codex CLI's `x-codex-window-id` (`<id>:<n>`; the id part).
    #[serde(rename = "x-codex-window-id")]
    CodexWindow,
    /// `x-session-id`, for a user's own tools.
    #[serde(rename = "x-session-id")]
    SessionHeader,
    /// Anthropic `metadata.user_id` (Claude Code puts its session id in it).
    #[serde(rename = "metadata.user_id")]
    MetadataUserId,
    /// OpenAI `prompt_cache_key`.
    #[serde(rename = "prompt_cache_key")]
    PromptCacheKey,
    /// OpenAI `user`.
    #[serde(rename = "user")]
    User,
    /// A Responses `previous_response_id`: the session of the response it names.
    #[serde(rename = "previous_response_id")]
    Chain,
    /// A hash of the system prompt and first user turn (`affinity = "prefix"`).
    #[serde(rename = "prefix")]
    Prefix,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::ClaudeCodeSession => "x-claude-code-session-id",
            KeySource::CodexSession => "session-id",
            KeySource::CodexThread => "thread-id",
            KeySource::CodexWindow => "x-codex-window-id",
            KeySource::SessionHeader => "x-session-id",
            KeySource::MetadataUserId => "metadata.user_id",
            KeySource::PromptCacheKey => "prompt_cache_key",
            KeySource::User => "user",
            KeySource::Chain => "previous_response_id",
            KeySource::Prefix => "prefix",
        }
    }
}

/// Longest session identity kept as the client sent it; a longer one is kept as its hash.
pub const MAX_KEY_CHARS: usize = 128;

/// A session's identity within its source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub value: Arc<str>,
    pub source: KeySource,
}

impl SessionKey {
    /// `value` as sent, cut to a hash when it is longer than [`MAX_KEY_CHARS`] (a client
    /// string must not become an unbounded key).
    pub fn new(source: KeySource, value: &str) -> SessionKey {
        let value: Arc<str> = if value.chars().count() <= MAX_KEY_CHARS {
            Arc::from(value)
        } else {
            Arc::from(format!("#{:016x}", hash_of(value)).as_str())
        };
        SessionKey { value, source }
    }
}

fn hash_of(value: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// Why a session left its account.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveReason {
    /// Its account is cooling down (rate-limited, out of quota, failing).
    Cooling,
    /// Its account is at one of its limits (`max_concurrent`, `rpm`, `tpm`), or out of what its
    /// provider's rate-limit headers allow.
    AtLimit,
    /// Its account's login must be renewed.
    NeedsLogin,
    /// Its account's key was refused, or it has no secret.
    NeedsAttention,
    /// Its account left the pool (disabled, removed, or taken out of the policy).
    Left,
    /// Its account failed this request; the one that answered keeps the session.
    Failover,
    /// Its cache was cold and another account was clearly better placed.
    Rebalanced,
}

/// How a request of a session was placed.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Placement {
    /// The session's first request (or its binding had expired): the strategy picked.
    Placed,
    /// It went to the session's account.
    Stuck,
    /// It went elsewhere, and the session now belongs there.
    Moved { reason: MoveReason },
}

impl Placement {
    /// `placed`, `stuck`, or `moved:<reason>`: how the usage history stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Placed => "placed",
            Placement::Stuck => "stuck",
            Placement::Moved { reason } => match reason {
                MoveReason::Cooling => "moved:cooling",
                MoveReason::AtLimit => "moved:at_limit",
                MoveReason::NeedsLogin => "moved:needs_login",
                MoveReason::NeedsAttention => "moved:needs_attention",
                MoveReason::Left => "moved:left",
                MoveReason::Failover => "moved:failover",
                MoveReason::Rebalanced => "moved:rebalanced",
            },
        }
    }
}

/// One session's account and what it did there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Binding {
    pub account: Arc<str>,
    pub source: KeySource,
    /// The client, from its user agent.
    pub client: Option<Arc<str>>,
    pub since_ms: u64,
    pub last_seen_ms: u64,
    pub requests: u64,
    pub moves: u32,
    pub input_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

/// Most sessions kept. Beyond it the least recently seen goes; a coding tool's sessions are a
/// handful at a time, so only a flood of made-up session ids ever reaches it.
pub const MAX_SESSIONS: usize = 10_000;
/// Shards of the session table, so that requests of different sessions rarely meet on a lock.
const SHARDS: usize = 16;
const SHARD_CAP: usize = MAX_SESSIONS / SHARDS;

/// The table key: the pool (its policy key) and the session.
type Scoped = (Arc<str>, SessionKey);

/// Live sessions, bounded by [`MAX_SESSIONS`]. Each shard's lock is held only to look up or
/// update one entry, never across an await.
#[derive(Default)]
pub struct Sessions {
    shards: [Mutex<HashMap<Scoped, Binding>>; SHARDS],
    /// Told of every change worth saving, for the saver that waits for one.
    changes: Changes,
}

/// What [`Sessions::choose`] decided for a request's first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub member: usize,
    pub placement: Placement,
}

impl Sessions {
    fn shard(&self, key: &SessionKey) -> MutexGuard<'_, HashMap<Scoped, Binding>> {
        let i = (hash_of(key) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for changes worth saving (see [`crate::state::Changes`]).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<()> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_replace(());
    }

    /// The member of `pool` a request of session `key` goes to first, and how it was placed;
    /// `None` when no member can serve. `tried` are members already used for this request.
    /// `cold_after_ms` is the provider's cache lifetime: idle longer, the cache is cold and a
    /// move costs nothing.
    pub fn choose(
        &self,
        pool: &Pool,
        key: &SessionKey,
        now: u64,
        tried: &[usize],
        cold_after_ms: u64,
    ) -> Option<Choice> {
        let bound = self.bound(pool, key, now);
        let Some((account, last_seen)) = bound else {
            return pool.pick(now, tried).map(|member| Choice {
                member,
                placement: Placement::Placed,
            });
        };
        let usable = |i: usize| !tried.contains(&i) && pool.members[i].state.is_eligible(now);
        let moved = |reason| {
            pool.pick(now, tried).map(|member| Choice {
                member,
                placement: Placement::Moved { reason },
            })
        };
        let Some(index) = pool.members.iter().position(|m| m.id == account) else {
            return moved(MoveReason::Left);
        };
        if !usable(index) {
            let state = &pool.members[index].state;
            let reason = match state.attention() {
                Some(crate::state::Attention::NeedsLogin) => MoveReason::NeedsLogin,
                Some(crate::state::Attention::NeedsAttention) => MoveReason::NeedsAttention,
                None if state.cooling_until(now).is_some() => MoveReason::Cooling,
                None if state.hold(now).is_some() => MoveReason::AtLimit,
                None if tried.contains(&index) => MoveReason::Failover,
                None => MoveReason::NeedsAttention,
            };
            return moved(reason);
        }
        if now.saturating_sub(last_seen) > cold_after_ms
            && let Some(better) = self.better_placed(pool, index, now, tried)
        {
            return Some(Choice {
                member: better,
                placement: Placement::Moved {
                    reason: MoveReason::Rebalanced,
                },
            });
        }
        Some(Choice {
            member: index,
            placement: Placement::Stuck,
        })
    }

    /// Whether session `key` ever left an account: its requests may then carry state (such as
    /// encrypted reasoning) that its current account cannot read.
    pub fn has_moved(&self, pool: &Pool, key: &SessionKey) -> bool {
        self.shard(key)
            .get(&(pool.scope.clone(), key.clone()))
            .is_some_and(|b| b.moves > 0)
    }

    /// The session's account and when it was last seen, unless its binding expired.
    fn bound(&self, pool: &Pool, key: &SessionKey, now: u64) -> Option<(Arc<str>, u64)> {
        let shard = self.shard(key);
        let b = shard.get(&(pool.scope.clone(), key.clone()))?;
        (now.saturating_sub(b.last_seen_ms) <= pool.sessions.idle_ms)
            .then(|| (b.account.clone(), b.last_seen_ms))
    }

    /// A member clearly better placed than `current` for a session whose cache is cold: under
    /// `most_available` one with at least a fifth more quota left; otherwise, when `current`
    /// carries two live sessions more than the least busy member, that member.
    fn better_placed(
        &self,
        pool: &Pool,
        current: usize,
        now: u64,
        tried: &[usize],
    ) -> Option<usize> {
        let usable = |i: usize| {
            i != current && !tried.contains(&i) && pool.members[i].state.is_eligible(now)
        };
        if pool.strategy == Strategy::MostAvailable {
            for m in &pool.members {
                m.state.refresh_remaining(now);
            }
            let mine = pool.members[current].state.remaining_ratio();
            return (0..pool.members.len())
                .filter(|&i| usable(i))
                .max_by(|&a, &b| {
                    let (a, b) = (
                        pool.members[a].state.remaining_ratio(),
                        pool.members[b].state.remaining_ratio(),
                    );
                    a.total_cmp(&b)
                })
                .filter(|&i| pool.members[i].state.remaining_ratio() >= mine + 0.2);
        }
        let counts = self.live_counts(pool, now);
        let count = |i: usize| counts.get(&pool.members[i].id).copied().unwrap_or(0);
        let least = (0..pool.members.len())
            .filter(|&i| usable(i))
            .min_by_key(|&i| count(i))?;
        (count(current) >= count(least) + 2).then_some(least)
    }

    /// Live sessions per account in `pool`.
    fn live_counts(&self, pool: &Pool, now: u64) -> HashMap<Arc<str>, usize> {
        let mut counts = HashMap::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for ((scope, _), b) in shard.iter() {
                if *scope == pool.scope
                    && now.saturating_sub(b.last_seen_ms) <= pool.sessions.idle_ms
                {
                    *counts.entry(b.account.clone()).or_insert(0) += 1;
                }
            }
        }
        counts
    }

    /// The request of session `key` was answered by `account`: bind (or rebind) the session
    /// there and count the request.
    pub fn bind(
        &self,
        pool: &Pool,
        key: &SessionKey,
        account: &Arc<str>,
        client: Option<&str>,
        placement: Placement,
        now: u64,
    ) {
        let mut shard = self.shard(key);
        let scoped = (pool.scope.clone(), key.clone());
        if !shard.contains_key(&scoped) && shard.len() >= SHARD_CAP {
            evict(&mut shard, pool.sessions.idle_ms, now);
        }
        let binding = shard.entry(scoped).or_insert_with(|| Binding {
            account: account.clone(),
            source: key.source,
            client: client.map(client_name),
            since_ms: now,
            last_seen_ms: now,
            requests: 0,
            moves: 0,
            input_tokens: 0,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
        });
        let expired = now.saturating_sub(binding.last_seen_ms) > pool.sessions.idle_ms;
        if expired {
            // A session back after its binding expired starts afresh.
            binding.since_ms = now;
            binding.requests = 0;
            binding.moves = 0;
        }
        if binding.account != *account {
            binding.account = account.clone();
            if matches!(placement, Placement::Moved { .. }) {
                binding.moves += 1;
            }
        }
        binding.last_seen_ms = now;
        binding.requests += 1;
        if let Some(client) = client {
            binding.client = Some(client_name(client));
        }
        self.changed();
    }

    /// Count what a finished request of session `key` read from and wrote to the cache.
    pub fn record_tokens(&self, scope: &Arc<str>, key: &SessionKey, tokens: CacheTokens) {
        let mut shard = self.shard(key);
        if let Some(b) = shard.get_mut(&(scope.clone(), key.clone())) {
            b.input_tokens = b.input_tokens.saturating_add(tokens.input);
            b.cache_read_tokens = b.cache_read_tokens.saturating_add(tokens.cache_read);
            b.cache_write_tokens = b.cache_write_tokens.saturating_add(tokens.cache_write);
            self.changed();
        }
    }

    /// Every session seen within its pool's idle time, newest first.
    pub fn live(&self, idle_ms: impl Fn(&str) -> Option<u64>, now: u64) -> Vec<LiveSession> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for ((scope, key), b) in shard.iter() {
                let live =
                    idle_ms(scope).is_some_and(|idle| now.saturating_sub(b.last_seen_ms) <= idle);
                if live {
                    out.push(LiveSession {
                        scope: scope.clone(),
                        key: key.value.clone(),
                        binding: b.clone(),
                    });
                }
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.binding.last_seen_ms));
        out
    }

    fn saved(&self) -> Vec<SavedBinding> {
        let mut saved = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for ((scope, key), b) in shard.iter() {
                saved.push(SavedBinding {
                    scope: scope.to_string(),
                    key: key.value.to_string(),
                    binding: b.clone(),
                });
            }
        }
        saved
    }

    fn restore(&self, saved: Vec<SavedBinding>) {
        for s in saved {
            let key = SessionKey::new(s.binding.source, &s.key);
            let mut shard = self.shard(&key);
            if shard.len() < SHARD_CAP {
                shard.insert((Arc::from(s.scope.as_str()), key), s.binding);
            }
        }
    }
}

/// Make room in a full shard: drop what expired, else the least recently seen.
fn evict(shard: &mut HashMap<Scoped, Binding>, idle_ms: u64, now: u64) {
    shard.retain(|_, b| now.saturating_sub(b.last_seen_ms) <= idle_ms);
    if shard.len() >= SHARD_CAP
        && let Some(oldest) = shard
            .iter()
            .min_by_key(|(_, b)| b.last_seen_ms)
            .map(|(k, _)| k.clone())
    {
        shard.remove(&oldest);
    }
}

/// User-agent products of the coding tools, and the names users know them by.
const KNOWN_CLIENTS: [(&str, &str); 5] = [
    ("claude-cli", "Claude Code"),
    ("codex_exec", "Codex CLI"),
    ("codex_cli_rs", "Codex CLI"),
    ("GeminiCLI", "Gemini CLI"),
    ("GeminiCLI-tui", "Gemini CLI"),
];

/// Longest client name kept from a user agent.
const MAX_CLIENT_CHARS: usize = 64;

/// The client's name from its user agent: a known tool by its name and version
/// (`claude-cli/2.1.332 (external, cli)` → `Claude Code 2.1.332`), anything else by the
/// agent's first word; at most [`MAX_CLIENT_CHARS`] characters.
fn client_name(user_agent: &str) -> Arc<str> {
    let first = user_agent.split_whitespace().next().unwrap_or_default();
    let mut parts = first.split('/');
    let product = parts.next().unwrap_or_default();
    let name = match KNOWN_CLIENTS.iter().find(|(p, _)| *p == product) {
        Some((_, known)) => match parts.next().filter(|v| !v.is_empty()) {
            Some(version) => format!("{known} {version}"),
            None => (*known).to_owned(),
        },
        None => first.to_owned(),
    };
    Arc::from(
        name.chars()
            .take(MAX_CLIENT_CHARS)
            .collect::<String>()
            .as_str(),
    )
}

/// A finished request's input tokens and the part of them the prompt cache served or stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheTokens {
    pub input: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// A live session, as `/api/sessions` shows it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The pool (policy key) the session is bound in.
    pub scope: Arc<str>,
    pub key: Arc<str>,
    pub binding: Binding,
}

#[derive(Serialize, Deserialize)]
struct SavedBinding {
    scope: String,
    key: String,
    #[serde(flatten)]
    binding: Binding,
}

/// Most response ids and reasoning items remembered: a few per turn of each live session.
pub const MAX_OWNED: usize = 50_000;

/// Which account produced a Responses `id` (for `previous_response_id` chains) or an
/// encrypted reasoning item: state that exists only in that account's organization. Bounded
/// by [`MAX_OWNED`]: the oldest go first.
#[derive(Default)]
pub struct Owners {
    inner: Mutex<OwnersInner>,
    /// Told of every change, for the saver that waits for one.
    changes: Changes,
}

#[derive(Default)]
struct OwnersInner {
    by_id: HashMap<u64, Arc<str>>,
    /// Insertion order, for dropping the oldest.
    order: std::collections::VecDeque<u64>,
}

impl Owners {
    fn lock(&self) -> MutexGuard<'_, OwnersInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember that `account` produced `item` (a response id or an encrypted reasoning item).
    pub fn insert(&self, item: &str, account: &Arc<str>) {
        let id = hash_of(item);
        let mut inner = self.lock();
        if inner.by_id.insert(id, account.clone()).is_none() {
            inner.order.push_back(id);
            while inner.order.len() > MAX_OWNED {
                if let Some(old) = inner.order.pop_front() {
                    inner.by_id.remove(&old);
                }
            }
        }
        self.changes.send_replace(());
    }

    /// Waits for changes worth saving (see [`crate::state::Changes`]).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<()> {
        self.changes.subscribe()
    }

    /// The account that produced `item`, if Keyway relayed it.
    pub fn owner(&self, item: &str) -> Option<Arc<str>> {
        self.lock().by_id.get(&hash_of(item)).cloned()
    }

    fn saved(&self) -> Vec<(u64, String)> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .filter_map(|id| inner.by_id.get(id).map(|a| (*id, a.to_string())))
            .collect()
    }

    fn restore(&self, saved: Vec<(u64, String)>) {
        let mut inner = self.lock();
        for (id, account) in saved.into_iter().take(MAX_OWNED) {
            if inner
                .by_id
                .insert(id, Arc::from(account.as_str()))
                .is_none()
            {
                inner.order.push_back(id);
            }
        }
    }
}

/// What of the session tables survives a restart, in one file.
#[derive(Serialize, Deserialize)]
struct SavedSessions {
    sessions: Vec<SavedBinding>,
    owners: Vec<(u64, String)>,
}

/// Both tables as one JSON document, for the data dir.
pub fn saved_form(sessions: &Sessions, owners: &Owners) -> String {
    let doc = SavedSessions {
        sessions: sessions.saved(),
        owners: owners.saved(),
    };
    serde_json::to_string(&doc).unwrap_or_default()
}

/// Restore both tables from `path`, written from [`saved_form`]. A missing or unreadable file
/// restores nothing: bindings only spare cache writes, they are not the user's data.
pub fn restore_from(path: &Path, sessions: &Sessions, owners: &Owners) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let Ok(doc) = serde_json::from_str::<SavedSessions>(&text) else {
        tracing::warn!(path = %path.display(), "ignoring unreadable saved sessions");
        return;
    };
    sessions.restore(doc.sessions);
    owners.restore(doc.owners);
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_clients_are_named_as_users_know_them() {
        // As the real clients send them (tests/clients/*.json).
        for (agent, name) in [
            (
                "claude-cli/2.1.332 (external, sdk-cli)",
                "Claude Code 2.1.332",
            ),
            (
                "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)",
                "Codex CLI 0.171.0",
            ),
            (
                "GeminiCLI-tui/0.61.0/gemini-3.1-pro-preview (linux; x64; terminal)",
                "Gemini CLI 0.61.0",
            ),
            ("claude-cli", "Claude Code"),
            ("python-httpx/0.28.1", "python-httpx/0.28.1"),
            ("", ""),
        ] {
            assert_eq!(&*client_name(agent), name, "{agent}");
        }
        assert_eq!(
            client_name(&"x".repeat(500)).chars().count(),
            MAX_CLIENT_CHARS
        );
    }

    use super::*;
    use crate::account::AccountKind;
    use crate::credential::Credential;
    use crate::pool::Member;
    use crate::secrets::Secret;
    use crate::state::AccountState;

    const MIN: u64 = 60_000;

    fn pool(strategy: Strategy, n: usize) -> Pool {
        let members = (0..n)
            .map(|i| {
                let state = Arc::new(AccountState::default());
                state.set_credential(Some(Credential::ApiKey(Secret::new("k"))));
                Member::new(Arc::from(format!("a{i}")), AccountKind::ApiKey, 1, state)
            })
            .collect();
        Pool::new(
            Arc::from("anthropic"),
            strategy,
            SessionPolicy::default(),
            members,
        )
    }

    fn key(s: &str) -> SessionKey {
        SessionKey::new(KeySource::ClaudeCodeSession, s)
    }

    /// One request of session `s` at `now`: choose, then bind where it went.
    fn turn(sessions: &Sessions, pool: &Pool, s: &str, now: u64) -> (usize, Placement) {
        let c = sessions.choose(pool, &key(s), now, &[], 5 * MIN).unwrap();
        sessions.bind(
            pool,
            &key(s),
            &pool.members[c.member].id,
            Some("claude-cli/2.1"),
            c.placement,
            now,
        );
        (c.member, c.placement)
    }

    #[test]
    fn new_sessions_follow_the_strategy_then_stay() {
        let (p, s) = (pool(Strategy::RoundRobin, 3), Sessions::default());
        let placed: Vec<usize> = ["x", "y", "z", "w"]
            .iter()
            .map(|k| turn(&s, &p, k, 0).0)
            .collect();
        assert_eq!(placed, [0, 1, 2, 0]);
        for t in 1..20 {
            assert_eq!(turn(&s, &p, "y", t * 1000), (1, Placement::Stuck));
        }
        // Requests without a session keep the round-robin sequence.
        assert_eq!(p.pick(0, &[]), Some(1));
    }

    #[test]
    fn a_cooling_account_moves_its_sessions_once_and_they_do_not_bounce_back() {
        let (p, s) = (pool(Strategy::RoundRobin, 2), Sessions::default());
        assert_eq!(turn(&s, &p, "x", 0).0, 0);
        assert_eq!(turn(&s, &p, "y", 0).0, 1);
        p.members[0]
            .state
            .record_cooldown(Some(10_000), "429".into(), 0);
        assert_eq!(
            turn(&s, &p, "x", 1),
            (
                1,
                Placement::Moved {
                    reason: MoveReason::Cooling
                }
            )
        );
        assert_eq!(turn(&s, &p, "y", 2), (1, Placement::Stuck), "y never moved");
        // a0 is back; x stays where its cache now is.
        assert_eq!(turn(&s, &p, "x", 20_000), (1, Placement::Stuck));
        let live = s.live(|_| Some(DEFAULT_IDLE_SECS * 1000), 20_000);
        let x = live.iter().find(|l| &*l.key == "x").unwrap();
        assert_eq!((x.binding.moves, x.binding.requests), (1, 3));
    }

    #[test]
    fn a_session_back_after_its_idle_time_is_placed_afresh() {
        let (p, s) = (pool(Strategy::RoundRobin, 2), Sessions::default());
        assert_eq!(turn(&s, &p, "x", 0), (0, Placement::Placed));
        let later = p.sessions.idle_ms + 1;
        assert_eq!(turn(&s, &p, "x", later), (1, Placement::Placed));
    }

    #[test]
    fn a_cold_session_leaves_a_crowded_account_but_a_warm_one_stays() {
        let (p, s) = (pool(Strategy::Priority, 2), Sessions::default());
        for k in ["a", "b", "c"] {
            assert_eq!(turn(&s, &p, k, 0).0, 0, "priority puts new sessions on a0");
        }
        // Warm cache (a minute idle): stays despite the crowd.
        assert_eq!(turn(&s, &p, "a", MIN), (0, Placement::Stuck));
        // Cold cache (ten minutes idle), a0 carries three, a1 none: moves to a1.
        assert_eq!(
            turn(&s, &p, "b", 11 * MIN),
            (
                1,
                Placement::Moved {
                    reason: MoveReason::Rebalanced
                }
            )
        );
        // Now two against one: not clearly better, so a cold session stays.
        assert_eq!(turn(&s, &p, "c", 22 * MIN), (0, Placement::Stuck));
    }

    #[test]
    fn most_available_moves_a_cold_session_to_clearly_more_headroom() {
        let (p, s) = (pool(Strategy::MostAvailable, 2), Sessions::default());
        let now_s = crate::state::now_ms();
        let (first, placement) = turn(&s, &p, "x", now_s);
        assert_eq!(placement, Placement::Placed);
        let other = 1 - first;
        let used = |pct: f64| crate::quota::QuotaWindow {
            name: "5h".into(),
            used_percent: pct,
            resets_at: Some(now_s / 1000 + 3600),
            rejected: false,
        };
        p.members[first].state.record_quota(vec![used(90.0)]);
        p.members[other].state.record_quota(vec![used(10.0)]);
        assert_eq!(
            turn(&s, &p, "x", now_s + MIN),
            (first, Placement::Stuck),
            "warm: stays"
        );
        assert_eq!(
            turn(&s, &p, "x", now_s + 10 * MIN),
            (
                other,
                Placement::Moved {
                    reason: MoveReason::Rebalanced
                }
            )
        );
    }

    #[test]
    fn an_account_that_left_the_pool_sends_its_sessions_elsewhere() {
        let s = Sessions::default();
        let before = pool(Strategy::RoundRobin, 2);
        turn(&s, &before, "x", 0);
        turn(&s, &before, "y", 0);
        // a1 disabled: the pool now has a0 only.
        let after = Pool::new(
            Arc::from("anthropic"),
            Strategy::RoundRobin,
            SessionPolicy::default(),
            vec![Member::new(
                before.members[0].id.clone(),
                AccountKind::ApiKey,
                1,
                before.members[0].state.clone(),
            )],
        );
        assert_eq!(
            turn(&s, &after, "y", 1),
            (
                0,
                Placement::Moved {
                    reason: MoveReason::Left
                }
            )
        );
    }

    #[test]
    fn the_table_is_bounded_and_survives_a_save() {
        let (p, s) = (pool(Strategy::RoundRobin, 2), Sessions::default());
        for i in 0..(MAX_SESSIONS + 500) {
            turn(&s, &p, &format!("s{i}"), i as u64);
        }
        let live = s.live(|_| Some(u64::MAX), MAX_SESSIONS as u64 + 500);
        assert!(live.len() <= MAX_SESSIONS, "{}", live.len());
        assert!(
            live.iter()
                .any(|l| *l.key == format!("s{}", MAX_SESSIONS + 499))
        );

        let owners = Owners::default();
        owners.insert("resp_1", &Arc::from("a1"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        std::fs::write(&path, saved_form(&s, &owners)).unwrap();
        let (back, back_owners) = (Sessions::default(), Owners::default());
        restore_from(&path, &back, &back_owners);
        assert_eq!(back.live(|_| Some(u64::MAX), 0).len(), live.len());
        assert_eq!(back_owners.owner("resp_1").as_deref(), Some("a1"));
        let last = format!("s{}", MAX_SESSIONS + 499);
        let c = back
            .choose(&p, &key(&last), MAX_SESSIONS as u64 + 501, &[], 5 * MIN)
            .unwrap();
        assert_eq!(c.placement, Placement::Stuck);
    }

    #[test]
    fn owners_forget_the_oldest_beyond_their_bound() {
        let owners = Owners::default();
        let a: Arc<str> = Arc::from("a");
        for i in 0..(MAX_OWNED + 10) {
            owners.insert(&format!("resp_{i}"), &a);
        }
        assert!(owners.owner("resp_0").is_none());
        assert!(owners.owner(&format!("resp_{}", MAX_OWNED + 9)).is_some());
    }
}
