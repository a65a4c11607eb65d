// The management API's shapes (docs/API.md), generated from Keyway's Rust types by
// `KEYWAY_WRITE_TYPES=1 cargo test -p keyway-proxy api_types`. Do not edit.

export type Surface = "anthropic_messages" | "openai_chat" | "openai_responses" | "gemini";

export type AccountKind = "api_key" | "oauth";

export type LiveState = "serving" | "cooling" | "limited" | "needs_attention" | "needs_login" | "no_secret";

export type QuotaWindow = { 
/**
 * `5h`, `7d`, `7d_opus` (Anthropic); `primary`, `secondary` (ChatGPT).
 */
name: string, 
/**
 * 0–100.
 */
used_percent: number, 
/**
 * Unix seconds when the window resets, when known.
 */
resets_at?: number, 
/**
 * The provider refuses requests until the reset.
 */
rejected: boolean, };

export type AccountStatus = { state: LiveState, 
/**
 * Unix seconds when a cooldown ends.
 */
cooling_until?: number, cooling_reason?: string, 
/**
 * Unix seconds when a limit stops holding the account (state `limited`).
 */
limited_until?: number, 
/**
 * Which limit holds it, e.g. `rpm: 50 requests this minute`.
 */
limited_reason?: string, 
/**
 * Why the account needs the user (a refused key, or a login to renew).
 */
needs_attention?: string, last_error?: string, 
/**
 * The provider's reported usage windows.
 */
quota?: Array<QuotaWindow>, requests: number, failures: number, in_flight: number, 
/**
 * Requests sent and tokens used in the current minute (what `rpm` and `tpm` count).
 */
minute_requests: number, minute_tokens: number, 
/**
 * Average time to the upstream's response headers of recent successful answers (ms), as
 * `fastest` ranks accounts; none before the first.
 */
ttfb_ms?: number, };

export type AccountLimits = { 
/**
 * Requests in flight at once.
 */
max_concurrent?: number, 
/**
 * Requests sent per minute.
 */
rpm?: number, 
/**
 * Tokens (input and output) per minute, counted when each answer ends.
 */
tpm?: number, };

export type Totals = { 
/**
 * The day (`YYYY-MM-DD`), account id, model or client key id.
 */
key: string, 
/**
 * The account's or client key's label, for per-account and per-key totals.
 */
label?: string, requests: number, errors: number, input_tokens: number, output_tokens: number, 
/**
 * The part of `input_tokens` read from the prompt cache.
 */
cache_read_tokens: number, 
/**
 * The part of `input_tokens` written to the prompt cache.
 */
cache_write_tokens: number, 
/**
 * What the priced requests cost at API prices; `None` when none of them had a price.
 */
cost_usd: number | null, 
/**
 * What the prompt cache saved on the priced requests.
 */
saved_usd: number, 
/**
 * Requests that reported tokens but whose model has no price: `cost_usd` leaves them out.
 */
unpriced: number, };

export type AccountView = { id: string, label: string, provider: string, kind: AccountKind, enabled: boolean, weight: number, 
/**
 * The limits the user set (`keyway account limit`).
 */
limits: AccountLimits, 
/**
 * `None` when no instance is running (CLI only).
 */
live: AccountStatus | null, 
/**
 * Requests and tokens since local midnight, from the usage history.
 */
today?: Totals, };

export type NewAccount = { provider: string, label: string, secret: string, weight?: number, };

export type AccountChange = { label?: string, weight?: number, enabled?: boolean, };

export type RemovedAccount = { removed: string, 
/**
 * Policies that named only this account, removed with it.
 */
removed_policies: Array<string>, };

export type Format = "anthropic" | "openai" | "gemini";

export type ProviderView = { id: string, 
/**
 * The vendor's name for presets, else the id.
 */
name: string, 
/**
 * `anthropic`, `openai`, `google` (built in) or `custom` (a preset or the user's own).
 */
kind: string, format: Format, base_url: string, 
/**
 * The vendor's documentation of the endpoint, for presets.
 */
docs: string | null, 
/**
 * Whether the config uses it (a preset nothing mentions yet is listed to be offered).
 */
in_use: boolean, login: boolean, 
/**
 * The statement to confirm before a login or import; `None` once accepted.
 */
terms: string | null, terms_accepted: boolean, families: Array<string>, };

export type AliasView = { glob: string, 
/**
 * `provider[/family][:model]`.
 */
to: string, };

export type RouteView = { provider: string, family: string | null, 
/**
 * The policy key of the pool that serves it.
 */
pool: string, 
/**
 * The model sent there, when not the one asked for.
 */
model: string | null, 
/**
 * The alias glob that routes it.
 */
alias: string | null, 
/**
 * The fallback chain after that pool, as configured.
 */
fallback: Array<string>, 
/**
 * The pool speaks another API than the surface: requests are translated.
 */
translated: boolean, };

export type ConfigError = { path: string | null, line: number | null, column: number | null, message: string, };

export type ConfigHealth = { path: string, ok: boolean, error: ConfigError | null, };

export type StoreKind = "os" | "file";

export type SecretsView = { kind: StoreKind, location: string, };

export type LastMinute = { requests_last_minute: number, errors_last_minute: number, };

export type StatusView = { version: string, listen: string | null, paused: boolean, config: ConfigHealth, secrets: SecretsView, traffic: LastMinute, accounts: Array<AccountView>, 
/**
 * Conversations bound to accounts now (`GET /api/sessions` lists them).
 */
live_sessions: number, };

export type KeySource = "x-claude-code-session-id" | "session-id" | "thread-id" | "x-codex-window-id" | "x-session-id" | "metadata.user_id" | "prompt_cache_key" | "user" | "previous_response_id" | "prefix";

export type MoveReason = "cooling" | "at_limit" | "needs_login" | "needs_attention" | "left" | "failover" | "rebalanced";

export type Placement = { "kind": "placed" } | { "kind": "stuck" } | { "kind": "moved", reason: MoveReason, };

export type RequestRecord = { id: number, 
/**
 * When the request arrived.
 */
time_ms: number, surface: Surface, 
/**
 * The model sent upstream (what the answer is priced as).
 */
model: string | null, 
/**
 * The model the client asked for, when an alias or a fallback step sent another.
 */
requested_model: string | null, provider: string, family: string | null, 
/**
 * The account that answered (or was tried last); `None` when none could be tried.
 */
account: string | null, account_label: string | null, attempts: number, status: number, 
/**
 * From arrival to the end of the response body.
 */
latency_ms: number, stream: boolean, input_tokens: number | null, output_tokens: number | null, 
/**
 * The part of `input_tokens` the prompt cache served.
 */
cache_read_tokens: number | null, 
/**
 * The part of `input_tokens` written to the prompt cache (Anthropic only reports it).
 */
cache_write_tokens: number | null, 
/**
 * The conversation the request belonged to, if it said.
 */
session: string | null, session_source: KeySource | null, 
/**
 * How the session's request was placed (sessions under `spread = "session"` only).
 */
placement: Placement | null, 
/**
 * The client key the request came with (its id), and that key's label.
 */
client_key: string | null, client_key_label: string | null, 
/**
 * What the tokens cost at API prices (for a subscription account: what they would have
 * cost); `None` when the model has no price or the response reported no usage.
 */
cost_usd: number | null, 
/**
 * What the prompt cache saved: cache reads at the input price minus at the cache price.
 */
saved_usd: number | null, 
/**
 * Where the request went when an alias or a fallback step took it elsewhere (as in
 * `x-keyway-route`); `None` when it went where its model led.
 */
route: string | null, };

export type SessionView = { 
/**
 * The policy (`provider` or `provider/family`) whose pool the session is bound in.
 */
policy: string, 
/**
 * The session's identity as the client sent it (a hash when it was very long).
 */
key: string, source: KeySource, 
/**
 * The client, from its user agent.
 */
client: string | null, account: string, account_label: string | null, since_ms: number, last_seen_ms: number, requests: number, 
/**
 * How often the session left an account.
 */
moves: number, input_tokens: number, cache_read_tokens: number, cache_write_tokens: number, };

export type LoginState = "pending" | "done" | "failed";

export type LoginView = { id: string, provider: string, label: string, state: LoginState, 
/**
 * The page the user opens (authorization-code logins).
 */
url?: string, 
/**
 * The code the user types at `verification_url` (device-code logins).
 */
user_code?: string, verification_url?: string, account_id?: string, error?: string, };

export type NewLogin = { provider: string, label: string, 
/**
 * ChatGPT's device-code flow instead of a browser redirect.
 */
device_code?: boolean, 
/**
 * The browser is on another machine: show a code to paste instead of redirecting.
 */
manual?: boolean, accept_terms_risk?: boolean, };

export type PastedCode = { 
/**
 * `code#state`, a bare code, or the redirect URL from the browser.
 */
code: string, };

export type Source = "claude-code" | "codex-cli";

export type NewImport = { source: Source, 
/**
 * The credentials file [default: where the CLI keeps it].
 */
path?: string, label?: string, accept_terms_risk?: boolean, };

export type ImportResult = { account: AccountView | null, warning: string, };

export type Strategy = "round_robin" | "weighted_round_robin" | "random" | "weighted_random" | "priority" | "most_available" | "least_busy" | "fastest";

export type Spread = "session" | "request";

export type Affinity = "client" | "prefix";

export type MemberView = { id: string, weight: number, };

export type PolicyView = { 
/**
 * `provider` or `provider/family`.
 */
key: string, provider: string, family: string | null, strategy: Strategy, 
/**
 * False for the built-in default (round-robin over all enabled accounts).
 */
configured: boolean, 
/**
 * The accounts as configured (empty: all enabled accounts of the provider).
 */
accounts: Array<string>, weights: { [key in string]: number }, 
/**
 * Whether a conversation stays on its account (`session`) or every request is picked on
 * its own (`request`).
 */
spread: Spread, affinity: Affinity, 
/**
 * A session's binding is forgotten after this long without a request.
 */
session_idle_secs: number, 
/**
 * Where requests go, in order, when these accounts cannot serve them: `provider[/family]
 * [:model]`, or `kind=…` for a step that takes only that kind of failure.
 */
fallback: Array<string>, 
/**
 * The accounts actually taking part now, in order, with their effective weights.
 */
members: Array<MemberView>, };

export type PolicyBody = { strategy: Strategy, accounts?: Array<string>, weights?: { [key in string]: number }, spread?: Spread, affinity?: Affinity, session_idle_secs?: number, fallback?: Array<string>, };

export type PreviewBody = { provider: string, family?: string, strategy: Strategy, accounts?: Array<string>, weights?: { [key in string]: number }, spread?: Spread, affinity?: Affinity, session_idle_secs?: number, 
/**
 * Checked with the rest of the policy; the picks are the pool's own.
 */
fallback?: Array<string>, count?: number, };

export type Picks = { picks: Array<string>, };

export type Usage = { days: number, by_day: Array<Totals>, by_account: Array<Totals>, by_model: Array<Totals>, by_key: Array<Totals>, };

export type Snippet = { title: string, text: string, };

export type ToolView = { id: string, name: string, surface: Surface, snippets: Array<Snippet>, file: string | null, connected: boolean, note: string | null, };

export type DiffKind = "header" | "hunk" | "context" | "removed" | "added";

export type DiffLine = { kind: DiffKind, text: string, };

export type Plan = { file: string, exists: boolean, before: string, after: string, 
/**
 * The unified diff from `before` to `after`, line by line.
 */
diff: Array<DiffLine>, };

export type Connected = { 
/**
 * The tool's file, now pointing at Keyway.
 */
file: string, 
/**
 * The backup that disconnecting restores: the original bytes, or the marker saying there
 * was no file.
 */
backup: string, };

export type Disconnected = { file: string, restored: boolean, };

export type SettingsView = { listen: string | null, log_level: string, usage_retention_days: number, config_path: string, data_dir: string, log_dir: string, };

export type SettingsChange = { listen?: string, log_level?: string, };

export type Paused = { paused: boolean, };

export type DefaultKey = { key: string, };

export type NewKey = { id: string, key: string, };

export type KeyRequest = { label: string, };

export type Limits = { 
/**
 * Requests per minute.
 */
rpm?: number | null, 
/**
 * Tokens (input and output) per minute.
 */
tpm?: number | null, 
/**
 * Spend per local day, in USD.
 */
daily_usd?: number | null, 
/**
 * Spend per local calendar month, in USD.
 */
monthly_usd?: number | null, 
/**
 * Budgets only warn (a notification, a banner); requests are never refused for spend.
 * Rate limits always apply.
 */
warn_only?: boolean, };

export type BudgetPeriod = "daily" | "monthly";

export type ClientKeyView = { id: string, label: string, 
/**
 * The key Keyway always had; it can be rotated but not revoked.
 */
default: boolean, 
/**
 * Unix ms; 0 when unknown.
 */
created_ms: number, 
/**
 * Unix ms of its last admitted request; `None` when never used.
 */
last_used_ms: number | null, limits: Limits, minute_requests: number, minute_tokens: number, 
/**
 * Spent this local day and this month, at API prices.
 */
day_usd: number, month_usd: number, 
/**
 * The budget it is over now, if any (the month's first).
 */
over_budget: BudgetPeriod | null, };

export type BudgetAlert = { key: string, label: string, period: BudgetPeriod, budget_usd: number, spent_usd: number, 
/**
 * The budget only warns: the key's requests are still served.
 */
warn_only: boolean, };

export type LogsOpened = { path: string, opened: boolean, };

export type Hello = { 
/**
 * Keyway's version.
 */
keyway: string, 
/**
 * Where this instance listens, as signed.
 */
listen: string, 
/**
 * [`hello_proof`] of the nonce and `listen`.
 */
proof: string, };

export type ManagementToken = { token: string, };
