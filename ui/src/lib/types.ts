// The management API's shapes (docs/API.md), generated from Keyway's Rust types by
// `KEYWAY_WRITE_TYPES=1 cargo test -p keyway-proxy api_types`. Do not edit.

export type Surface = "anthropic_messages" | "openai_chat" | "openai_responses" | "gemini";

export type AccountKind = "api_key" | "oauth";

export type LiveState = "serving" | "cooling" | "needs_attention" | "needs_login" | "no_secret";

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
 * Why the account needs the user (a refused key, or a login to renew).
 */
needs_attention?: string, last_error?: string, 
/**
 * The provider's reported usage windows.
 */
quota?: Array<QuotaWindow>, requests: number, failures: number, in_flight: number, };

export type Totals = { 
/**
 * The day (`YYYY-MM-DD`), account id or model.
 */
key: string, 
/**
 * The account's label, for per-account totals.
 */
label?: string, requests: number, errors: number, input_tokens: number, output_tokens: number, };

export type AccountView = { id: string, label: string, provider: string, kind: AccountKind, enabled: boolean, weight: number, 
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

export type ProviderView = { id: string, kind: string, base_url: string, login: boolean, 
/**
 * The statement to confirm before a login or import; `None` once accepted.
 */
terms: string | null, terms_accepted: boolean, families: Array<string>, };

export type ConfigError = { path: string | null, line: number | null, column: number | null, message: string, };

export type ConfigHealth = { path: string, ok: boolean, error: ConfigError | null, };

export type StoreKind = "os" | "file";

export type SecretsView = { kind: StoreKind, location: string, };

export type LastMinute = { requests_last_minute: number, errors_last_minute: number, };

export type StatusView = { version: string, listen: string | null, paused: boolean, config: ConfigHealth, secrets: SecretsView, traffic: LastMinute, accounts: Array<AccountView>, };

export type RequestRecord = { id: number, 
/**
 * When the request arrived.
 */
time_ms: number, surface: Surface, model: string | null, provider: string, family: string | null, 
/**
 * The account that answered (or was tried last); `None` when none could be tried.
 */
account: string | null, account_label: string | null, attempts: number, status: number, 
/**
 * From arrival to the end of the response body.
 */
latency_ms: number, stream: boolean, input_tokens: number | null, output_tokens: number | null, };

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

export type Strategy = "round_robin" | "weighted_round_robin" | "random" | "weighted_random" | "priority" | "most_available";

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
 * The accounts actually taking part now, in order, with their effective weights.
 */
members: Array<MemberView>, };

export type PolicyBody = { strategy: Strategy, accounts?: Array<string>, weights?: { [key in string]: number }, };

export type PreviewBody = { provider: string, family?: string, strategy: Strategy, accounts?: Array<string>, weights?: { [key in string]: number }, count?: number, };

export type Picks = { picks: Array<string>, };

export type Usage = { days: number, by_day: Array<Totals>, by_account: Array<Totals>, by_model: Array<Totals>, };

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

export type ClientKey = { key: string, };

export type LogsOpened = { path: string, opened: boolean, };
