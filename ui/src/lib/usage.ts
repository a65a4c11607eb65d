import type { AccountView, Totals } from './types';

const pad = (n: number) => String(n).padStart(2, '0');

/** `YYYY-MM-DD` of a local date, the form the API uses for days. */
export function dayKey(date: Date): string {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** A day, account or model without requests. */
export function emptyTotals(key: string): Totals {
  return {
    key,
    requests: 0,
    errors: 0,
    input_tokens: 0,
    output_tokens: 0,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
    cost_usd: null,
    saved_usd: 0,
    unpriced: 0,
  };
}

/** Every local day of the window ending today, oldest first; days without requests are zeros. */
export function fillDays(byDay: Totals[], days: number, today: Date): Totals[] {
  const known = new Map(byDay.map((d) => [d.key, d]));
  const out: Totals[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const d = new Date(today.getFullYear(), today.getMonth(), today.getDate() - i);
    const key = dayKey(d);
    out.push(known.get(key) ?? emptyTotals(key));
  }
  for (const d of byDay) if (!out.some((o) => o.key === d.key)) out.push(d);
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}

/** A round axis maximum at or above `max`: 1, 2 or 5 times a power of ten. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const pow = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * pow >= max) return m * pow;
  return 10 * pow;
}

/** `2026-11-26` → `26 Nov`. */
export function dayLabel(day: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return day;
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${Number(m[3])} ${months[Number(m[2]) - 1] ?? m[2]}`;
}

export function csvFileName(days: number, today: Date): string {
  return `keyway-usage-${days}d-${dayKey(today)}.csv`;
}

/** The sum of some totals (the days of a period). `cost_usd` stays null when no request had a price. */
export function sumTotals(rows: Totals[], key = 'total'): Totals {
  const sum = emptyTotals(key);
  for (const r of rows) {
    sum.requests += r.requests;
    sum.errors += r.errors;
    sum.input_tokens += r.input_tokens;
    sum.output_tokens += r.output_tokens;
    sum.cache_read_tokens += r.cache_read_tokens;
    sum.cache_write_tokens += r.cache_write_tokens;
    if (r.cost_usd != null) sum.cost_usd = (sum.cost_usd ?? 0) + r.cost_usd;
    sum.saved_usd += r.saved_usd;
    sum.unpriced += r.unpriced;
  }
  return sum;
}

/** The share of input tokens read from the prompt cache, 0–100; null without input. */
export function cacheHit(t: Pick<Totals, 'cache_read_tokens' | 'input_tokens'>): number | null {
  if (!(t.input_tokens > 0)) return null;
  return (Math.min(t.cache_read_tokens, t.input_tokens) / t.input_tokens) * 100;
}

/** A subscription login's use in the period, valued at API prices. */
export interface SubscriptionValue {
  id: string;
  label: string;
  usd: number;
}

/**
 * The subscription (`oauth`) accounts among the per-account totals that served priced
 * requests, largest value first: what their use would have cost at API prices.
 */
export function subscriptionValues(byAccount: Totals[], accounts: Pick<AccountView, 'id' | 'kind' | 'label'>[]): SubscriptionValue[] {
  const kinds = new Map(accounts.map((a) => [a.id, a]));
  const out: SubscriptionValue[] = [];
  for (const t of byAccount) {
    const a = kinds.get(t.key);
    if (a?.kind !== 'oauth' || t.cost_usd == null || !(t.cost_usd > 0)) continue;
    out.push({ id: t.key, label: t.label || a.label || t.key, usd: t.cost_usd });
  }
  return out.sort((x, y) => y.usd - x.usd);
}

/** Whether an account of the per-account totals is a subscription login. */
export function isSubscription(id: string, accounts: Pick<AccountView, 'id' | 'kind'>[]): boolean {
  return accounts.some((a) => a.id === id && a.kind === 'oauth');
}
