import { afterEach, describe, expect, it, vi } from 'vitest';
import { debounce } from './debounce';
import { newest } from './newest';
import { IMPORT_SOURCES, isFinished, loginProviders, offersDeviceCode, pollLogin, termsFor } from './login';
import { parseRoute, routeHref } from './router';
import type { LoginState, LoginView, ProviderView } from './types';
import {
  cacheHit,
  csvFileName,
  dayKey,
  dayLabel,
  emptyTotals,
  fillDays,
  isSubscription,
  niceMax,
  subscriptionValues,
  sumTotals,
} from './usage';

afterEach(() => {
  vi.useRealTimers();
});

describe('router', () => {
  it('maps hashes to screens', () => {
    expect(parseRoute('#/accounts')).toBe('accounts');
    expect(parseRoute('#/Routing')).toBe('routing');
    expect(parseRoute('#/usage?days=7')).toBe('usage');
    expect(parseRoute('#settings')).toBe('settings');
    expect(parseRoute('#/keys')).toBe('keys');
    expect(parseRoute('')).toBe('overview');
    expect(parseRoute('#/nope')).toBe('overview');
    expect(parseRoute('#token=abc')).toBe('overview');
    expect(routeHref('connect')).toBe('#/connect');
  });
});

describe('usage', () => {
  const today = new Date(2026, 10, 26, 15, 0);

  it('fills the window with empty days, oldest first', () => {
    const filled = fillDays([{ ...emptyTotals('2026-11-25'), requests: 4, errors: 1, input_tokens: 10, output_tokens: 2 }], 3, today);
    expect(filled.map((d) => [d.key, d.requests])).toEqual([
      ['2026-11-24', 0],
      ['2026-11-25', 4],
      ['2026-11-26', 0],
    ]);
  });

  it('crosses month boundaries and keeps days outside the window', () => {
    const filled = fillDays([{ ...emptyTotals('2026-10-01'), requests: 1 }], 2, new Date(2026, 11, 1));
    expect(filled.map((d) => d.key)).toEqual(['2026-10-01', '2026-11-30', '2026-12-01']);
  });

  it('fills empty days without a cost', () => {
    const [day] = fillDays([], 1, today);
    expect(day).toMatchObject({ key: '2026-11-26', requests: 0, cost_usd: null, saved_usd: 0, unpriced: 0 });
  });

  it('sums cost, savings and unpriced requests, a sum of no prices staying without one', () => {
    const priced = { ...emptyTotals('a'), requests: 3, input_tokens: 100, cache_read_tokens: 60, cost_usd: 0.41, saved_usd: 0.19 };
    const other = { ...emptyTotals('b'), requests: 2, errors: 1, input_tokens: 50, output_tokens: 7, cost_usd: 0.0071, saved_usd: 0.001, unpriced: 1 };
    const none = { ...emptyTotals('c'), requests: 4, input_tokens: 10, unpriced: 4 };
    const sum = sumTotals([priced, other, none]);
    expect(sum).toMatchObject({ requests: 9, errors: 1, input_tokens: 160, output_tokens: 7, cache_read_tokens: 60, unpriced: 5 });
    expect(sum.cost_usd).toBeCloseTo(0.4171, 10);
    expect(sum.saved_usd).toBeCloseTo(0.191, 10);
    expect(sumTotals([none, emptyTotals('d')]).cost_usd).toBeNull();
    expect(sumTotals([]).cost_usd).toBeNull();
  });

  it('gives the cache hit ratio', () => {
    expect(cacheHit({ input_tokens: 200, cache_read_tokens: 150 })).toBe(75);
    expect(cacheHit({ input_tokens: 0, cache_read_tokens: 0 })).toBeNull();
    expect(cacheHit({ input_tokens: 10, cache_read_tokens: 20 })).toBe(100);
  });

  it('values subscription use at API prices', () => {
    const accounts = [
      { id: 'max', kind: 'oauth' as const, label: 'Claude Max' },
      { id: 'plus', kind: 'oauth' as const, label: 'ChatGPT' },
      { id: 'work', kind: 'api_key' as const, label: 'Work' },
    ];
    const rows = [
      { ...emptyTotals('work'), label: 'Work', cost_usd: 3 },
      { ...emptyTotals('plus'), label: 'ChatGPT', cost_usd: 12.5 },
      { ...emptyTotals('max'), label: 'Claude Max', cost_usd: 412 },
      { ...emptyTotals('gone'), cost_usd: 1 },
    ];
    expect(subscriptionValues(rows, accounts)).toEqual([
      { id: 'max', label: 'Claude Max', usd: 412 },
      { id: 'plus', label: 'ChatGPT', usd: 12.5 },
    ]);
    expect(subscriptionValues([{ ...emptyTotals('max'), unpriced: 3 }], accounts)).toEqual([]);
    expect(isSubscription('max', accounts)).toBe(true);
    expect(isSubscription('work', accounts)).toBe(false);
    expect(isSubscription('gone', accounts)).toBe(false);
  });

  it('rounds axis maxima', () => {
    expect([0, 1, 3, 7, 10, 11, 240, 5001].map(niceMax)).toEqual([1, 1, 5, 10, 10, 20, 500, 10000]);
  });

  it('labels days and files', () => {
    expect(dayKey(new Date(2026, 0, 5))).toBe('2026-01-05');
    expect(dayLabel('2026-11-06')).toBe('6 Nov');
    expect(dayLabel('weird')).toBe('weird');
    expect(csvFileName(30, today)).toBe('keyway-usage-30d-2026-11-26.csv');
  });
});

describe('login helpers', () => {
  const providers: ProviderView[] = [
    { id: 'anthropic', name: 'anthropic', kind: 'anthropic', format: 'anthropic', base_url: '', docs: null, in_use: true, login: true, terms: 'Risky.', terms_accepted: false, families: [] },
    { id: 'openai', name: 'openai', kind: 'openai', format: 'openai', base_url: '', docs: null, in_use: true, login: true, terms: null, terms_accepted: true, families: [] },
    { id: 'google', name: 'google', kind: 'google', format: 'gemini', base_url: '', docs: null, in_use: true, login: false, terms: null, terms_accepted: false, families: [] },
  ];

  it('offers logins, device codes and terms per provider', () => {
    expect(loginProviders(providers).map((p) => p.id)).toEqual(['anthropic', 'openai']);
    expect(offersDeviceCode('openai')).toBe(true);
    expect(offersDeviceCode('anthropic')).toBe(false);
    expect(termsFor(providers, 'anthropic')).toBe('Risky.');
    expect(termsFor(providers, 'openai')).toBeNull();
    expect(termsFor(providers, 'missing')).toBeNull();
    expect(IMPORT_SOURCES.map((s) => [s.id, s.provider])).toEqual([
      ['claude-code', 'anthropic'],
      ['codex-cli', 'openai'],
    ]);
  });

  const view = (state: LoginState): LoginView => ({
    id: 'login_1',
    provider: 'anthropic',
    label: 'Max',
    state,
    url: 'https://example.test',
    ...(state === 'done' ? { account_id: 'acc_1' } : {}),
  });

  it('polls every interval until the login finishes', async () => {
    vi.useFakeTimers();
    const states: LoginState[] = ['pending', 'pending', 'done'];
    const get = vi.fn(async () => view(states.shift() ?? 'done'));
    const seen: string[] = [];
    const p = pollLogin(get, (v) => seen.push(v.state), new AbortController().signal, 1000);
    await vi.advanceTimersByTimeAsync(999);
    expect(get).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(3000);
    const final = await p;
    expect(final?.state).toBe('done');
    expect(seen).toEqual(['pending', 'pending', 'done']);
    expect(get).toHaveBeenCalledTimes(3);
    expect(isFinished(view('failed'))).toBe(true);
  });

  it('retries network errors but stops on a refusal or an abort', async () => {
    vi.useFakeTimers();
    let n = 0;
    const flaky = vi.fn(async () => {
      n++;
      if (n === 1) throw Object.assign(new Error('down'), { status: 0 });
      return view('failed');
    });
    const p1 = pollLogin(flaky, () => {}, new AbortController().signal, 10);
    await vi.advanceTimersByTimeAsync(50);
    expect((await p1)?.state).toBe('failed');

    const gone = vi.fn(async () => {
      throw Object.assign(new Error('unknown login'), { status: 404 });
    });
    const p2 = pollLogin(gone, () => {}, new AbortController().signal, 10);
    const caught = p2.catch((e: Error) => e.message);
    await vi.advanceTimersByTimeAsync(20);
    expect(await caught).toBe('unknown login');

    const ctl = new AbortController();
    const p3 = pollLogin(async () => view('pending'), () => {}, ctl.signal, 10);
    await vi.advanceTimersByTimeAsync(25);
    ctl.abort();
    expect(await p3).toBeNull();
  });
});

describe('debounce', () => {
  it('runs once after a burst and can be cancelled', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    const d = debounce(fn, 100);
    d();
    d();
    vi.advanceTimersByTime(99);
    d();
    vi.advanceTimersByTime(99);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
    d();
    d.cancel();
    vi.advanceTimersByTime(500);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe('newest', () => {
  /** A load whose answer is handed in later; applied answers go to `applied`. */
  function loader(applied: string[]) {
    const start = newest();
    return () => {
      const current = start();
      let finish!: (v: string) => void;
      const done = new Promise<string>((r) => (finish = r)).then((v) => {
        if (current()) applied.push(v);
      });
      return { finish, done };
    };
  }

  it('never applies an older answer over a newer one', async () => {
    const applied: string[] = [];
    const load = loader(applied);
    const before = load();
    const after = load();
    after.finish('after the save');
    await after.done;
    before.finish('before the save');
    await before.done;
    expect(applied).toEqual(['after the save']);
  });

  it('applies each answer that is newer than the one shown, as it comes', async () => {
    const applied: string[] = [];
    const load = loader(applied);
    const save = load();
    const event = load();
    save.finish('saved');
    await save.done;
    expect(applied).toEqual(['saved']);
    event.finish('saved, and the event');
    await event.done;
    expect(applied).toEqual(['saved', 'saved, and the event']);
  });
});
