import type { AccountView, QuotaWindow, RequestRecord } from './types';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAY_S = 24 * 60 * 60;

const pad = (n: number) => String(n).padStart(2, '0');

/** Local HH:MM (24-hour, the same in every locale so labels stay short and testable). */
export function clock(date: Date): string {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Local HH:MM:SS for log rows. */
export function clockSeconds(date: Date): string {
  return `${clock(date)}:${pad(date.getSeconds())}`;
}

/** `28 Nov`, with the year when it is not the current one. */
export function shortDate(date: Date, now: Date): string {
  const base = `${date.getDate()} ${MONTHS[date.getMonth()]}`;
  return date.getFullYear() === now.getFullYear() ? base : `${base} ${date.getFullYear()}`;
}

/** A moment given in Unix seconds: HH:MM when within a day from now, else its date. */
export function when(unixSeconds: number, now: Date): string {
  const date = new Date(unixSeconds * 1000);
  const ahead = unixSeconds - now.getTime() / 1000;
  return Math.abs(ahead) < DAY_S ? clock(date) : `${shortDate(date, now)} ${clock(date)}`;
}

/** Text under a quota bar. */
export function resetText(q: QuotaWindow, now: Date): string {
  if (q.resets_at == null) return '';
  const date = new Date(q.resets_at * 1000);
  const ahead = q.resets_at - now.getTime() / 1000;
  if (ahead <= 0) return 'reset due';
  return ahead < DAY_S ? `resets ${clock(date)}` : `resets ${shortDate(date, now)}`;
}

export type Tone = 'ok' | 'warn' | 'bad' | 'muted';

export interface StateLabel {
  label: string;
  tone: Tone;
  /** A reason to show next to the label, when there is one. */
  detail: string | null;
}

/** How an account's state reads on a card: disabled wins, then the live state. */
export function accountState(account: Pick<AccountView, 'enabled' | 'live'>, now: Date): StateLabel {
  if (!account.enabled) return { label: 'disabled', tone: 'muted', detail: null };
  const live = account.live;
  if (!live) return { label: 'unknown', tone: 'muted', detail: null };
  switch (live.state) {
    case 'serving':
      return { label: 'serving', tone: 'ok', detail: null };
    case 'cooling': {
      const label = live.cooling_until != null ? `cooling until ${when(live.cooling_until, now)}` : 'cooling';
      return { label, tone: 'warn', detail: live.cooling_reason || null };
    }
    case 'limited': {
      const label = live.limited_until != null ? `at its limit until ${when(live.limited_until, now)}` : 'at its limit';
      return { label, tone: 'warn', detail: live.limited_reason || null };
    }
    case 'needs_login':
      return {
        label: 'needs login',
        tone: 'bad',
        detail: live.needs_attention || 'The subscription login has expired; log in again on Accounts.',
      };
    case 'needs_attention':
      return {
        label: 'needs attention',
        tone: 'bad',
        detail: live.needs_attention || live.last_error || null,
      };
    case 'no_secret':
      return { label: 'no secret', tone: 'bad', detail: 'The OS keyring has no secret for this account.' };
  }
}

/** Quota bar colour: red when the provider refuses, amber from 80 %. */
export function quotaTone(q: QuotaWindow): Tone {
  if (q.rejected || q.used_percent >= 100) return 'bad';
  if (q.used_percent >= 80) return 'warn';
  return 'ok';
}

export function percent(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return '–';
  return `${value.toFixed(digits)}%`;
}

/** 950 → `950`, 12 300 → `12.3k`, 4 500 000 → `4.5M`. */
export function compact(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '–';
  if (Math.abs(n) < 1000) return String(Math.round(n));
  const units: [number, string][] = [
    [1e3, 'k'],
    [1e6, 'M'],
    [1e9, 'G'],
  ];
  for (let i = 0; i < units.length; i++) {
    const [div, unit] = units[i];
    const v = n / div;
    const text = Math.abs(v) < 10 ? v.toFixed(1).replace(/\.0$/, '') : String(Math.round(v));
    if (Math.abs(Number(text)) < 1000 || i === units.length - 1) return text + unit;
  }
  return String(n);
}

export function latency(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** Errors of the last minute as a share of its requests. */
export function errorRate(requests: number, errors: number): string {
  if (!requests) return '0%';
  const r = (errors / requests) * 100;
  return r > 0 && r < 1 ? '<1%' : `${Math.round(r)}%`;
}

const SURFACES: Record<string, string> = {
  anthropic_messages: 'Anthropic Messages',
  anthropic: 'Anthropic Messages',
  openai_chat: 'OpenAI Chat Completions',
  openai_responses: 'OpenAI Responses',
  gemini: 'Gemini',
};

const SURFACES_SHORT: Record<string, string> = {
  anthropic_messages: 'Anthropic',
  anthropic: 'Anthropic',
  openai_chat: 'Chat',
  openai_responses: 'Responses',
  gemini: 'Gemini',
};

/** A column-width name: the table's title attribute carries the full one. */
export function surfaceShort(surface: string): string {
  return SURFACES_SHORT[surface] ?? surface;
}

export function surfaceName(surface: string): string {
  return SURFACES[surface] ?? surface;
}

export function kindName(kind: string): string {
  return kind === 'api_key' ? 'API key' : kind === 'oauth' ? 'subscription' : kind;
}

export function routeName(r: Pick<RequestRecord, 'provider' | 'family'>): string {
  return r.family ? `${r.provider}/${r.family}` : r.provider;
}

/** How long ago `ms` (ms since the epoch) was, coarsely: `12 s`, `4 min`, `2 h`, `3 d`. */
export function ago(ms: number, now: Date): string {
  const secs = Math.max(0, Math.round((now.getTime() - ms) / 1000));
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86_400) return `${Math.floor(secs / 3600)} h ago`;
  return `${Math.floor(secs / 86_400)} d ago`;
}

/** The share of `input` tokens the prompt cache served, as `(93%)`; empty without input. */
export function cacheShare(cacheRead: number, input: number): string {
  if (!(input > 0)) return '';
  return `(${percent((Math.min(cacheRead, input) / input) * 100)})`;
}

/**
 * US dollars: cents from a dollar up (`$412.00`, `$1,234.56`); below, two significant digits
 * and no trailing zero past the cents (`$0.41`, `$0.0071`, `$0.001`), so a single request's
 * cost does not read as `$0.00`.
 */
export function usd(value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return '–';
  const sign = value < 0 ? '-' : '';
  const abs = Math.abs(value);
  if (abs === 0) return '$0.00';
  if (abs < 0.000001) return `${sign}<$0.000001`;
  if (abs >= 0.995) {
    return `${sign}$${abs.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  }
  const [whole, fraction = ''] = abs.toPrecision(2).split('.');
  const digits = fraction.replace(/0+$/, '').padEnd(2, '0');
  return `${sign}$${whole}.${digits}`;
}

/** Dollars where room is short (a chart's axis): `$0.005`, `$50.00`, `$500`, `$1.2k`. */
export function usdShort(value: number): string {
  if (Math.abs(value) >= 100) return `${value < 0 ? '-' : ''}$${compact(Math.abs(value))}`;
  return usd(value);
}

/** What a group of requests cost, as usage totals carry it. */
export interface Cost {
  /** Null when no request of the group had a price. */
  cost_usd: number | null;
  /** Requests that reported tokens for a model without a price. */
  unpriced: number;
}

/**
 * `$1.42`; `$1.42+` when some requests had no price (their cost is not in the sum); `no price`
 * when none had one; `–` when no request reported any usage.
 */
export function costText(c: Cost): string {
  if (c.cost_usd == null) return c.unpriced > 0 ? 'no price' : '–';
  return c.unpriced > 0 ? `${usd(c.cost_usd)}+` : usd(c.cost_usd);
}

/** Why a cost is marked, for its title: how many requests it leaves out. Empty when none. */
export function unpricedNote(unpriced: number): string {
  if (!(unpriced > 0)) return '';
  const n = unpriced === 1 ? '1 request' : `${unpriced.toLocaleString('en-US')} requests`;
  return `${n} for models without a price ${unpriced === 1 ? 'is' : 'are'} not counted`;
}
