import { describe, expect, it } from 'vitest';
import {
  draftFromPolicy,
  draftProblem,
  draftToBody,
  fallbackStep,
  groupPolicies,
  isDirty,
  isWeighted,
  labelOf,
  move,
  moveAt,
  splitStep,
  STRATEGIES,
  strategyLabel,
} from './policy';
import type { AccountView, PolicyView } from './types';

function account(id: string, provider = 'anthropic', weight = 1, enabled = true): AccountView {
  return { id, label: id.toUpperCase(), provider, kind: 'api_key', enabled, weight, limits: {}, live: null };
}

const accounts = [account('a'), account('b', 'anthropic', 2), account('c'), account('o', 'openai')];

function policy(over: Partial<PolicyView>): PolicyView {
  return {
    key: 'anthropic',
    provider: 'anthropic',
    family: null,
    strategy: 'round_robin',
    configured: false,
    accounts: [],
    weights: {},
    spread: 'session',
    affinity: 'client',
    session_idle_secs: 3600,
    fallback: [],
    members: [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 2 },
      { id: 'c', weight: 1 },
    ],
    ...over,
  };
}

describe('draftFromPolicy', () => {
  it('represents an empty account list as all accounts, members first', () => {
    const d = draftFromPolicy(policy({ members: [{ id: 'c', weight: 1 }, { id: 'a', weight: 1 }] }), accounts);
    expect(d.all).toBe(true);
    expect(d.order).toEqual(['c', 'a', 'b']);
    expect(d.checked).toEqual({ c: true, a: true, b: false });
    expect(d.weights).toEqual({ c: 1, a: 1, b: 2 });
  });

  it('keeps the configured order and the policy weights', () => {
    const d = draftFromPolicy(
      policy({ key: 'anthropic/opus', family: 'opus', strategy: 'priority', configured: true, accounts: ['c', 'a'], weights: { a: 5 } }),
      accounts,
    );
    expect(d.all).toBe(false);
    expect(d.order).toEqual(['c', 'a', 'b']);
    expect(d.checked).toEqual({ c: true, a: true, b: false });
    expect(d.weights).toEqual({ c: 1, a: 5, b: 2 });
  });
});

/** The session settings and the (empty) chain every body carries, as the fixture policy has them. */
const SESSIONS = { spread: 'session', affinity: 'client', session_idle_secs: 3600, fallback: [] } as const;

describe('draftToBody', () => {
  it('sends the checked accounts in order and only weights that differ from the account', () => {
    const p = policy({ strategy: 'weighted_random', configured: true, accounts: ['b', 'a'], weights: {} });
    const d = draftFromPolicy(p, accounts);
    d.weights.a = 3;
    d.weights.b = 2;
    d.checked.c = true;
    d.order = move(d.order, 'c', -1);
    expect(draftToBody(d, accounts)).toEqual({ strategy: 'weighted_random', accounts: ['b', 'c', 'a'], weights: { a: 3 }, ...SESSIONS });
  });

  it('sends the weights of a least-busy policy', () => {
    const d = draftFromPolicy(policy({}), accounts);
    d.strategy = 'least_busy';
    d.weights.c = 4;
    expect(draftToBody(d, accounts)).toEqual({ strategy: 'least_busy', accounts: [], weights: { c: 4 }, ...SESSIONS });
  });

  it('sends an empty list for all accounts', () => {
    const d = draftFromPolicy(policy({}), accounts);
    d.strategy = 'most_available';
    expect(draftToBody(d, accounts)).toEqual({ strategy: 'most_available', accounts: [], weights: {}, ...SESSIONS });
  });

  it('round-trips a configured policy unchanged', () => {
    const p = policy({ strategy: 'priority', configured: true, accounts: ['c', 'a'], weights: { a: 4 } });
    expect(draftToBody(draftFromPolicy(p, accounts), accounts)).toEqual({
      strategy: 'priority',
      accounts: ['c', 'a'],
      weights: { a: 4 },
      ...SESSIONS,
    });
  });

  it('keeps a policy\'s session settings and sends a changed spread', () => {
    const p = policy({ configured: true, spread: 'request', session_idle_secs: 600 });
    const d = draftFromPolicy(p, accounts);
    expect(draftToBody(d, accounts)).toMatchObject({ spread: 'request', session_idle_secs: 600 });
    expect(isDirty(d, p, accounts)).toBe(false);
    d.spread = 'session';
    expect(isDirty(d, p, accounts)).toBe(true);
  });

  it('sends the fallback chain in its order, without blank steps, and sees a changed one', () => {
    const p = policy({ configured: true, fallback: ['rate_limit=deepseek', 'anthropic/opus'] });
    const d = draftFromPolicy(p, accounts);
    expect(isDirty(d, p, accounts)).toBe(false);
    d.fallback = moveAt(d.fallback, 1, -1);
    d.fallback.push('  ');
    expect(draftToBody(d, accounts).fallback).toEqual(['anthropic/opus', 'rate_limit=deepseek']);
    expect(isDirty(d, p, accounts)).toBe(true);
    expect(fallbackStep('context_window', ' anthropic/opus:claude-opus-4-1 ')).toBe('context_window=anthropic/opus:claude-opus-4-1');
    expect(fallbackStep('', 'deepseek')).toBe('deepseek');
    expect(splitStep('rate_limit=deepseek')).toEqual({ kind: 'rate_limit', target: 'deepseek' });
    expect(splitStep('openrouter:anthropic/claude-sonnet-4.5')).toEqual({ kind: '', target: 'openrouter:anthropic/claude-sonnet-4.5' });
    expect(draftToBody(d, accounts).spread).toBe('session');
  });
});

describe('isDirty', () => {
  it('sees strategy, order, membership and weight changes', () => {
    const p = policy({ strategy: 'priority', configured: true, accounts: ['a', 'b'] });
    const fresh = () => draftFromPolicy(p, accounts);
    expect(isDirty(fresh(), p, accounts)).toBe(false);
    const s = fresh();
    s.strategy = 'random';
    expect(isDirty(s, p, accounts)).toBe(true);
    const o = fresh();
    o.order = move(o.order, 'b', -1);
    expect(isDirty(o, p, accounts)).toBe(true);
    const m = fresh();
    m.checked.c = true;
    expect(isDirty(m, p, accounts)).toBe(true);
    const w = fresh();
    w.weights.a = 9;
    expect(isDirty(w, p, accounts)).toBe(true);
  });

  it('ignores reordering unchecked accounts', () => {
    const p = policy({ strategy: 'priority', configured: true, accounts: ['a'] });
    const d = draftFromPolicy(p, accounts);
    d.order = move(d.order, 'c', -1);
    expect(isDirty(d, p, accounts)).toBe(false);
  });
});

describe('draftProblem', () => {
  it('wants at least one account unless all are used', () => {
    const d = draftFromPolicy(policy({ configured: true, accounts: ['a'] }), accounts);
    d.checked.a = false;
    expect(draftProblem(d)).toMatch(/at least one/);
    d.all = true;
    expect(draftProblem(d)).toBeNull();
  });

  it('wants whole positive weights for weighted strategies only', () => {
    const d = draftFromPolicy(policy({ configured: true, accounts: ['a'] }), accounts);
    d.weights.a = 0;
    expect(draftProblem(d)).toBeNull();
    d.strategy = 'weighted_round_robin';
    expect(draftProblem(d)).toMatch(/Weights/);
    d.weights.a = 1.5;
    expect(draftProblem(d)).toMatch(/Weights/);
    d.weights.a = 2;
    expect(draftProblem(d)).toBeNull();
    d.weights.a = 0;
    d.strategy = 'least_busy';
    expect(draftProblem(d)).toMatch(/Weights/);
    d.strategy = 'fastest';
    expect(draftProblem(d)).toBeNull();
  });
});

describe('helpers', () => {
  it('moves within bounds', () => {
    expect(move(['a', 'b', 'c'], 'c', -1)).toEqual(['a', 'c', 'b']);
    expect(move(['a', 'b', 'c'], 'a', 1)).toEqual(['b', 'a', 'c']);
    const same = ['a', 'b'];
    expect(move(same, 'a', -1)).toBe(same);
    expect(move(same, 'x', 1)).toBe(same);
  });

  it('knows weighted strategies and labels', () => {
    expect(isWeighted('weighted_random')).toBe(true);
    expect(isWeighted('weighted_round_robin')).toBe(true);
    expect(isWeighted('least_busy')).toBe(true);
    expect(isWeighted('priority')).toBe(false);
    expect(isWeighted('fastest')).toBe(false);
    expect(strategyLabel('most_available')).toBe('Most available');
    expect(strategyLabel('least_busy')).toBe('Least busy');
    expect(strategyLabel('fastest')).toBe('Fastest');
    expect(labelOf('b', accounts)).toBe('B');
    expect(labelOf('gone', accounts)).toBe('gone');
  });

  it('offers every strategy once, with a hint', () => {
    const ids = STRATEGIES.map((s) => s.id);
    expect(ids).toEqual([
      'round_robin',
      'weighted_round_robin',
      'random',
      'weighted_random',
      'priority',
      'most_available',
      'least_busy',
      'fastest',
    ]);
    expect(STRATEGIES.every((s) => s.hint.length > 0)).toBe(true);
  });

  it('groups policies by provider with the provider policy first', () => {
    const groups = groupPolicies([
      policy({ key: 'anthropic/opus', family: 'opus' }),
      policy({ key: 'openai', provider: 'openai' }),
      policy({ key: 'anthropic' }),
    ]);
    expect(groups.map((g) => [g.provider, g.policies.map((p) => p.key)])).toEqual([
      ['anthropic', ['anthropic', 'anthropic/opus']],
      ['openai', ['openai']],
    ]);
  });
});
