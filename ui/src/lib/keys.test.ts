import { describe, expect, it } from 'vitest';
import {
  alertOfKey,
  budgetMessage,
  dismissalKey,
  DISMISSED_KEY,
  draftOf,
  heldAfterKeys,
  holdAlert,
  limitsText,
  loadDismissed,
  parseBudgetEvent,
  parseLimits,
  periodStamp,
  saveDismissed,
  shownAlerts,
  type LimitsDraft,
} from './keys';
import type { BudgetAlert, ClientKeyView } from './types';

const draft = (over: Partial<LimitsDraft> = {}): LimitsDraft => ({ rpm: '', tpm: '', daily_usd: '', monthly_usd: '', warn_only: false, ...over });

function key(over: Partial<ClientKeyView> = {}): ClientKeyView {
  return {
    id: 'ck-3f9a1c',
    label: 'Claude Code',
    default: false,
    created_ms: 0,
    last_used_ms: null,
    limits: {},
    minute_requests: 0,
    minute_tokens: 0,
    day_usd: 0,
    month_usd: 0,
    over_budget: null,
    ...over,
  };
}

const alert = (over: Partial<BudgetAlert> = {}): BudgetAlert => ({
  key: 'ck-3f9a1c',
  label: 'Claude Code',
  period: 'daily',
  budget_usd: 5,
  spent_usd: 5.02,
  warn_only: false,
  ...over,
});

const nov26 = new Date(2026, 10, 26, 15, 0);
const nov27 = new Date(2026, 10, 27, 0, 1);
const dec1 = new Date(2026, 11, 1, 9, 0);

describe('limitsText', () => {
  it('lists the limits set, budgets in dollars', () => {
    expect(limitsText({})).toBe('none');
    expect(limitsText({ rpm: 60, daily_usd: 5, warn_only: true })).toBe('60 rpm · $5.00/day (warn only)');
    expect(limitsText({ rpm: 60, tpm: 200_000, daily_usd: 5, monthly_usd: 50 })).toBe('60 rpm · 200k tpm · $5.00/day · $50.00/month');
    expect(limitsText({ daily_usd: 0.001 })).toBe('$0.001/day');
  });

  it('says warn only only where there is a budget to warn about', () => {
    expect(limitsText({ rpm: 2, warn_only: true })).toBe('2 rpm');
  });
});

describe('parseLimits', () => {
  it('treats empty fields as no limit', () => {
    expect(parseLimits(draft())).toEqual({ limits: {}, problems: {} });
    expect(parseLimits(draft({ rpm: '  ' }))).toEqual({ limits: {}, problems: {} });
  });

  it('reads every field', () => {
    expect(parseLimits(draft({ rpm: '60', tpm: '200,000', daily_usd: '$5', monthly_usd: '50.5', warn_only: true }))).toEqual({
      limits: { rpm: 60, tpm: 200_000, daily_usd: 5, monthly_usd: 50.5, warn_only: true },
      problems: {},
    });
    expect(parseLimits(draft({ daily_usd: '0.001' })).limits).toEqual({ daily_usd: 0.001 });
    expect(parseLimits(draft({ daily_usd: '.5' })).limits).toEqual({ daily_usd: 0.5 });
  });

  it('takes the ranges Keyway takes', () => {
    expect(parseLimits(draft({ rpm: '1' })).limits.rpm).toBe(1);
    expect(parseLimits(draft({ rpm: '1000000' })).limits.rpm).toBe(1_000_000);
    expect(parseLimits(draft({ tpm: '10000000000' })).limits.tpm).toBe(10_000_000_000);
    expect(parseLimits(draft({ monthly_usd: '1000000' })).limits.monthly_usd).toBe(1_000_000);
  });

  it('refuses what Keyway refuses, naming the field', () => {
    const problems = (d: Partial<LimitsDraft>) => parseLimits(draft(d)).problems;
    expect(problems({ rpm: '0' }).rpm).toMatch(/^Requests per minute: a whole number from 1 to 1,000,000/);
    expect(problems({ rpm: '1000001' }).rpm).toBeDefined();
    expect(problems({ rpm: '2.5' }).rpm).toBeDefined();
    expect(problems({ rpm: '-3' }).rpm).toBeDefined();
    expect(problems({ rpm: 'ten' }).rpm).toBeDefined();
    expect(problems({ tpm: '10000000001' }).tpm).toMatch(/^Tokens per minute/);
    expect(problems({ daily_usd: '0' }).daily_usd).toMatch(/^Daily budget: dollars above 0 and at most \$1,000,000/);
    expect(problems({ daily_usd: '1000000.01' }).daily_usd).toBeDefined();
    expect(problems({ monthly_usd: '5 dollars' }).monthly_usd).toMatch(/^Monthly budget/);
    expect(problems({ monthly_usd: '1e3' }).monthly_usd).toBeDefined();
    expect(problems({ rpm: '0', daily_usd: '2' })).toEqual({ rpm: expect.any(String) });
  });

  it('round-trips the limits a key has', () => {
    const limits = { rpm: 60, tpm: 200_000, daily_usd: 5, monthly_usd: 50, warn_only: true };
    expect(draftOf(limits)).toEqual({ rpm: '60', tpm: '200000', daily_usd: '5', monthly_usd: '50', warn_only: true });
    expect(parseLimits(draftOf(limits))).toEqual({ limits, problems: {} });
    expect(draftOf({})).toEqual(draft());
  });
});

describe('budget alerts', () => {
  it('words the alert as Keyway does', () => {
    expect(budgetMessage(alert())).toBe(
      'Claude Code spent $5.02 of its $5.00 daily budget; its requests are refused until local midnight.',
    );
    expect(budgetMessage(alert({ period: 'monthly', budget_usd: 50, spent_usd: 50.4 }))).toBe(
      'Claude Code spent $50.40 of its $50.00 monthly budget; its requests are refused until the 1st of next month.',
    );
    expect(budgetMessage(alert({ budget_usd: 0.001, spent_usd: 0.0071, warn_only: true }))).toBe(
      'Claude Code spent $0.0071 of its $0.001 daily budget; its requests are still served (the budget only warns).',
    );
  });

  it('reads a budget event and ignores anything else', () => {
    const data = JSON.stringify(alert());
    expect(parseBudgetEvent(data)).toEqual(alert());
    expect(parseBudgetEvent('{}')).toBeNull();
    expect(parseBudgetEvent('not json')).toBeNull();
    expect(parseBudgetEvent(JSON.stringify({ ...alert(), period: 'weekly' }))).toBeNull();
  });

  it('gets the alert from a key over budget', () => {
    expect(alertOfKey(key())).toBeNull();
    expect(alertOfKey(key({ over_budget: 'daily', limits: { daily_usd: 5, warn_only: true }, day_usd: 5.5 }))).toEqual(
      alert({ spent_usd: 5.5, warn_only: true }),
    );
    expect(alertOfKey(key({ over_budget: 'monthly', limits: { monthly_usd: 50 }, month_usd: 51 }))).toEqual(
      alert({ period: 'monthly', budget_usd: 50, spent_usd: 51 }),
    );
  });

  it('remembers a dismissal by key, period and which day or month', () => {
    expect(periodStamp('daily', nov26)).toBe('2026-11-26');
    expect(periodStamp('monthly', nov26)).toBe('2026-11');
    const held = holdAlert([], alert(), nov26, 1);
    expect(dismissalKey(held[0])).toBe('ck-3f9a1c/daily/2026-11-26');
    const monthly = holdAlert([], alert({ period: 'monthly' }), nov26, 1);
    expect(dismissalKey(monthly[0])).toBe('ck-3f9a1c/monthly/2026-11');
  });

  it('holds one alert per key and period, the newest', () => {
    let held = holdAlert([], alert(), nov26, 1);
    held = holdAlert(held, alert({ spent_usd: 6 }), nov26, 2);
    held = holdAlert(held, alert({ period: 'monthly' }), nov26, 3);
    held = holdAlert(held, alert({ key: 'ck-other', label: 'Codex' }), nov26, 4);
    expect(held.map((h) => [h.alert.key, h.alert.period, h.alert.spent_usd, h.seq])).toEqual([
      ['ck-3f9a1c', 'daily', 6, 2],
      ['ck-3f9a1c', 'monthly', 5.02, 3],
      ['ck-other', 'daily', 5.02, 4],
    ]);
  });

  it('shows alerts of the current period that were not dismissed', () => {
    const held = [...holdAlert([], alert(), nov26, 1), ...holdAlert([], alert({ period: 'monthly' }), nov26, 2)];
    expect(shownAlerts(held, [], nov26)).toHaveLength(2);
    expect(shownAlerts(held, ['ck-3f9a1c/daily/2026-11-26'], nov26).map((h) => h.alert.period)).toEqual(['monthly']);
    // The day is over: its budget starts again; the month's is still spent.
    expect(shownAlerts(held, [], nov27).map((h) => h.alert.period)).toEqual(['monthly']);
    expect(shownAlerts(held, [], dec1)).toEqual([]);
  });

  it('follows the keys list without losing an alert that arrived while it loaded', () => {
    const over = key({ over_budget: 'daily', limits: { daily_usd: 5 }, day_usd: 5.5 });
    const fromList = heldAfterKeys([], [over, key({ id: 'default', default: true, label: 'Default' })], 0, nov26, 1);
    expect(fromList.map((h) => [h.alert.key, h.alert.spent_usd])).toEqual([['ck-3f9a1c', 5.5]]);

    // Limits raised: the list fetched after the alert no longer confirms it.
    expect(heldAfterKeys(fromList, [key()], 1, nov26, 2)).toEqual([]);
    // A list fetched before the event arrived (since 0 < seq 1) cannot take it away.
    const fromEvent = holdAlert([], alert({ key: 'ck-new', label: 'Codex' }), nov26, 1);
    expect(heldAfterKeys(fromEvent, [], 0, nov26, 2)).toEqual(fromEvent);
    expect(heldAfterKeys(fromEvent, [], 1, nov26, 2)).toEqual([]);
  });

  it('keeps dismissals in the session storage', () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    expect(loadDismissed(storage)).toEqual([]);
    saveDismissed(storage, ['ck-3f9a1c/daily/2026-11-26']);
    expect(store.get(DISMISSED_KEY)).toBe('["ck-3f9a1c/daily/2026-11-26"]');
    expect(loadDismissed(storage)).toEqual(['ck-3f9a1c/daily/2026-11-26']);
    store.set(DISMISSED_KEY, '{broken');
    expect(loadDismissed(storage)).toEqual([]);
    store.set(DISMISSED_KEY, '[1, "a"]');
    expect(loadDismissed(storage)).toEqual(['a']);
  });
});
