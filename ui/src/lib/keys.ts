import { compact, usd } from './format';
import { readRate } from './limits';
import type { BudgetAlert, BudgetPeriod, ClientKeyView, Limits } from './types';
import { dayKey } from './usage';

/** The largest budget Keyway accepts (`PUT /api/client-keys/{id}/limits`); rates are in limits.ts. */
export const USD_MAX = 1_000_000;

/** `60 rpm · 200k tpm · $5.00/day · $50.00/month (warn only)`; `none` without limits. */
export function limitsText(l: Limits): string {
  const parts: string[] = [];
  if (l.rpm != null) parts.push(`${compact(l.rpm)} rpm`);
  if (l.tpm != null) parts.push(`${compact(l.tpm)} tpm`);
  if (l.daily_usd != null) parts.push(`${usd(l.daily_usd)}/day`);
  if (l.monthly_usd != null) parts.push(`${usd(l.monthly_usd)}/month`);
  if (!parts.length) return 'none';
  const budgets = l.daily_usd != null || l.monthly_usd != null;
  return parts.join(' · ') + (budgets && l.warn_only ? ' (warn only)' : '');
}

export type LimitField = 'rpm' | 'tpm' | 'daily_usd' | 'monthly_usd';

/** The limits form as typed: an empty field is no limit. */
export interface LimitsDraft {
  rpm: string;
  tpm: string;
  daily_usd: string;
  monthly_usd: string;
  warn_only: boolean;
}

export function draftOf(l: Limits): LimitsDraft {
  const text = (n: number | null | undefined) => (n == null ? '' : String(n));
  return {
    rpm: text(l.rpm),
    tpm: text(l.tpm),
    daily_usd: text(l.daily_usd),
    monthly_usd: text(l.monthly_usd),
    warn_only: l.warn_only ?? false,
  };
}

export interface ParsedLimits {
  /** The body to send; meaningful only when `problems` is empty. */
  limits: Limits;
  /** What is wrong with each field, in words for the form. */
  problems: Partial<Record<LimitField, string>>;
}

/** Dollars, with an optional leading `$`; null when not a plain decimal number. */
function dollars(text: string): number | null {
  const t = text.trim().replace(/^\$\s*/, '');
  return /^(\d+(\.\d*)?|\.\d+)$/.test(t) ? Number(t) : null;
}

/** Checks the form as Keyway would, so a mistake shows at the field before anything is sent. */
export function parseLimits(d: LimitsDraft): ParsedLimits {
  const limits: Limits = {};
  const problems: ParsedLimits['problems'] = {};

  readRate('rpm', d.rpm, limits, problems);
  readRate('tpm', d.tpm, limits, problems);

  const money = (field: 'daily_usd' | 'monthly_usd', name: string) => {
    if (!d[field].trim()) return;
    const n = dollars(d[field]);
    if (n == null || !(n > 0) || n > USD_MAX) problems[field] = `${name}: dollars above 0 and at most $1,000,000.`;
    else limits[field] = n;
  };
  money('daily_usd', 'Daily budget');
  money('monthly_usd', 'Monthly budget');

  if (d.warn_only) limits.warn_only = true;
  return { limits, problems };
}

/**
 * `Claude Code spent $5.02 of its $5.00 daily budget; its requests are refused until local
 * midnight.` (as Keyway words it in its log and notifications).
 */
export function budgetMessage(a: BudgetAlert): string {
  const until = a.period === 'daily' ? 'local midnight' : 'the 1st of next month';
  const then = a.warn_only ? 'its requests are still served (the budget only warns)' : `its requests are refused until ${until}`;
  return `${a.label} spent ${usd(a.spent_usd)} of its ${usd(a.budget_usd)} ${a.period} budget; ${then}.`;
}

/** The budget period `now` is in: its local day (`2026-11-26`) or month (`2026-11`). */
export function periodStamp(period: BudgetPeriod, now: Date): string {
  const day = dayKey(now);
  return period === 'daily' ? day : day.slice(0, 7);
}

/** The alert a key over budget stands for, from `GET /api/client-keys`; null when it is not over. */
export function alertOfKey(k: ClientKeyView): BudgetAlert | null {
  if (k.over_budget === 'daily' && k.limits.daily_usd != null) {
    return { key: k.id, label: k.label, period: 'daily', budget_usd: k.limits.daily_usd, spent_usd: k.day_usd, warn_only: !!k.limits.warn_only };
  }
  if (k.over_budget === 'monthly' && k.limits.monthly_usd != null) {
    return { key: k.id, label: k.label, period: 'monthly', budget_usd: k.limits.monthly_usd, spent_usd: k.month_usd, warn_only: !!k.limits.warn_only };
  }
  return null;
}

/** A budget alert the dashboard shows. */
export interface HeldAlert {
  alert: BudgetAlert;
  /** The period it is about (`periodStamp`); it no longer applies once the period is over. */
  stamp: string;
  /** Order of arrival, so a keys list fetched before an alert arrived cannot take it away. */
  seq: number;
}

/** What a dismissal is remembered by: the key, the period and which day or month it was. */
export function dismissalKey(h: Pick<HeldAlert, 'alert' | 'stamp'>): string {
  return `${h.alert.key}/${h.alert.period}/${h.stamp}`;
}

const sameBudget = (a: BudgetAlert, b: BudgetAlert) => a.key === b.key && a.period === b.period;

/** The held alerts with `alert` added, or replacing the one for the same key and period. */
export function holdAlert(held: HeldAlert[], alert: BudgetAlert, now: Date, seq: number): HeldAlert[] {
  const next = { alert, stamp: periodStamp(alert.period, now), seq };
  const i = held.findIndex((h) => sameBudget(h.alert, alert));
  if (i < 0) return [...held, next];
  return held.map((h, j) => (j === i ? next : h));
}

/**
 * The held alerts after a keys list whose fetch began when `since` was the latest `seq`:
 * every key over budget has its alert (numbered `seq`); an alert that arrived before the
 * fetch and that the list no longer confirms (limits raised, key revoked) goes.
 */
export function heldAfterKeys(held: HeldAlert[], keys: ClientKeyView[], since: number, now: Date, seq: number): HeldAlert[] {
  const confirmed = keys.map(alertOfKey).filter((a): a is BudgetAlert => a != null);
  let next = held.filter((h) => h.seq > since || confirmed.some((a) => sameBudget(a, h.alert)));
  for (const a of confirmed) next = holdAlert(next, a, now, seq);
  return next;
}

/** The alerts to show: of the current day or month, and not dismissed. */
export function shownAlerts(held: HeldAlert[], dismissed: readonly string[], now: Date): HeldAlert[] {
  return held.filter((h) => h.stamp === periodStamp(h.alert.period, now) && !dismissed.includes(dismissalKey(h)));
}

/** Where the dismissed alerts of this tab are kept (`sessionStorage`). */
export const DISMISSED_KEY = 'keyway.dismissedBudgets';

export function loadDismissed(storage: Pick<Storage, 'getItem'>): string[] {
  try {
    const v: unknown = JSON.parse(storage.getItem(DISMISSED_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function saveDismissed(storage: Pick<Storage, 'setItem'>, dismissed: readonly string[]): void {
  try {
    storage.setItem(DISMISSED_KEY, JSON.stringify(dismissed));
  } catch {
    /* storage full or blocked: the dismissal lasts for this page only */
  }
}

/** A `budget` event's data, or null when it is not one. */
export function parseBudgetEvent(data: string): BudgetAlert | null {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return null;
  }
  const a = v as Partial<BudgetAlert> | null;
  if (!a || typeof a !== 'object') return null;
  if (typeof a.key !== 'string' || typeof a.label !== 'string') return null;
  if (a.period !== 'daily' && a.period !== 'monthly') return null;
  if (typeof a.budget_usd !== 'number' || typeof a.spent_usd !== 'number') return null;
  return { key: a.key, label: a.label, period: a.period, budget_usd: a.budget_usd, spent_usd: a.spent_usd, warn_only: a.warn_only === true };
}
