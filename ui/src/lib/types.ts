/** Shapes of the management API (docs/API.md). Optional fields may be omitted by the server. */

export type Surface = 'anthropic_messages' | 'openai_chat' | 'openai_responses' | 'gemini' | (string & {});

export type AccountKind = 'api_key' | 'oauth' | (string & {});

export type LiveState =
  | 'serving'
  | 'cooling'
  | 'needs_attention'
  | 'needs_login'
  | 'no_secret'
  | (string & {});

export interface QuotaWindow {
  name: string;
  used_percent: number;
  resets_at?: number | null;
  rejected?: boolean;
}

export interface AccountLive {
  state: LiveState;
  cooling_until?: number | null;
  cooling_reason?: string | null;
  needs_attention?: string | null;
  last_error?: string | null;
  quota?: QuotaWindow[];
  requests?: number;
  failures?: number;
  in_flight?: number;
}

export interface AccountToday {
  requests: number;
  errors?: number;
  input_tokens: number;
  output_tokens: number;
}

export interface AccountView {
  id: string;
  label: string;
  provider: string;
  kind: AccountKind;
  enabled: boolean;
  weight: number;
  live?: AccountLive | null;
  today?: AccountToday | null;
}

export interface ConfigError {
  path: string;
  line: number;
  column: number;
  message: string;
}

export interface Status {
  version: string;
  listen: string;
  paused: boolean;
  config: { path: string; ok: boolean; error: ConfigError | null };
  traffic: { requests_last_minute: number; errors_last_minute: number };
  accounts: AccountView[];
}

export interface RequestRecord {
  id: number;
  time_ms: number;
  surface: Surface;
  model: string;
  provider: string | null;
  family: string | null;
  account: string | null;
  account_label: string | null;
  attempts: number;
  status: number;
  latency_ms: number;
  stream: boolean;
  input_tokens: number | null;
  output_tokens: number | null;
  /** Keyway's short reason for a failure, where the server gives one. */
  error?: string | null;
}

export interface Provider {
  id: string;
  kind: string;
  base_url: string;
  login: boolean;
  terms: string | null;
  terms_accepted: boolean;
  families: string[];
}

export interface LoginView {
  id: string;
  provider: string;
  label: string;
  state: 'pending' | 'done' | 'failed' | (string & {});
  url: string | null;
  user_code: string | null;
  verification_url: string | null;
  account_id: string | null;
  error: string | null;
}

export interface StartLogin {
  provider: string;
  label: string;
  device_code: boolean;
  manual: boolean;
  accept_terms_risk?: boolean;
}

export type ImportSource = 'claude-code' | 'codex-cli';

export interface StartImport {
  source: ImportSource;
  label?: string;
  path?: string;
  accept_terms_risk?: boolean;
}

export interface ImportResult {
  account: AccountView;
  warning: string | null;
}

export interface NewAccount {
  provider: string;
  label: string;
  secret: string;
  weight?: number;
}

export interface AccountPatch {
  label?: string;
  weight?: number;
  enabled?: boolean;
}

export interface RemovedAccount {
  removed: string;
  removed_policies: string[];
}

export type Strategy =
  | 'round_robin'
  | 'weighted_round_robin'
  | 'random'
  | 'weighted_random'
  | 'priority'
  | 'most_available';

export interface PolicyMember {
  id: string;
  weight: number;
}

export interface PolicyView {
  key: string;
  provider: string;
  family: string | null;
  strategy: Strategy;
  configured: boolean;
  accounts: string[];
  weights: Record<string, number>;
  members: PolicyMember[];
}

export interface PolicyBody {
  strategy: Strategy;
  accounts: string[];
  weights: Record<string, number>;
}

export interface PreviewBody extends PolicyBody {
  provider: string;
  family?: string;
  count?: number;
}

export interface UsageTotals {
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
}

/** One local day; `key` is `YYYY-MM-DD`. */
export interface UsageDay extends UsageTotals {
  key: string;
}

export interface UsageKeyed extends UsageTotals {
  key: string;
  label?: string | null;
}

export interface Usage {
  days: number;
  by_day: UsageDay[];
  by_account: UsageKeyed[];
  by_model: UsageKeyed[];
}

export interface Snippet {
  title: string;
  text: string;
}

export interface ConnectTool {
  id: string;
  name: string;
  surface: Surface;
  snippets: Snippet[];
  file: string | null;
  connected: boolean;
  note: string | null;
}

export interface ConnectPreview {
  file: string;
  exists: boolean;
  before: string;
  after: string;
  diff: string;
}

export interface ConnectResult {
  file: string;
  backup: string;
}

export interface DisconnectResult {
  file: string;
  restored: boolean;
}

export interface Settings {
  listen: string;
  log_level: string;
  usage_retention_days: number;
  config_path: string;
  data_dir: string;
  log_dir: string;
}

export interface SettingsPatch {
  listen?: string;
  log_level?: string;
}

export interface OpenLogsResult {
  path: string;
  opened: boolean;
}
