import type { AccountView, Affinity, PolicyBody, PolicyView, Spread, Strategy } from './types';

export const STRATEGIES: { id: Strategy; label: string; hint: string }[] = [
  { id: 'round_robin', label: 'Round robin', hint: 'Accounts take turns.' },
  { id: 'weighted_round_robin', label: 'Weighted round robin', hint: 'Turns in proportion to the weights.' },
  { id: 'random', label: 'Random', hint: 'Any account, equally likely.' },
  { id: 'weighted_random', label: 'Weighted random', hint: 'Random, in proportion to the weights.' },
  { id: 'priority', label: 'Priority', hint: 'The first account in the list that can serve.' },
  { id: 'most_available', label: 'Most available', hint: 'The account with the most quota left.' },
  { id: 'least_busy', label: 'Least busy', hint: 'The account with the fewest requests in flight for its weight.' },
  { id: 'fastest', label: 'Fastest', hint: 'The account that has answered soonest lately; the others are tried now and then.' },
];

export function strategyLabel(s: string): string {
  return STRATEGIES.find((x) => x.id === s)?.label ?? s;
}

export function isWeighted(s: string): boolean {
  return s === 'weighted_round_robin' || s === 'weighted_random' || s === 'least_busy';
}

/** The editable form of a policy. */
export interface PolicyDraft {
  strategy: Strategy;
  /** `session`: each conversation stays on its account; `request`: every request is picked. */
  spread: Spread;
  /** Kept as the policy has them; the editor does not change them. */
  affinity: Affinity;
  session_idle_secs: number;
  /** `accounts: []` in the config: every enabled account of the provider, in config order. */
  all: boolean;
  /** Every account of the provider, chosen ones in policy order first. */
  order: string[];
  checked: Record<string, boolean>;
  weights: Record<string, number>;
  /** The fallback chain, in order: `[kind=]provider[/family][:model]` steps. */
  fallback: string[];
}

export function providerAccounts(accounts: AccountView[], provider: string): AccountView[] {
  return accounts.filter((a) => a.provider === provider);
}

export function draftFromPolicy(policy: PolicyView, accounts: AccountView[]): PolicyDraft {
  const mine = providerAccounts(accounts, policy.provider);
  const all = policy.accounts.length === 0;
  const first = all ? policy.members.map((m) => m.id) : policy.accounts;
  const order = [...first, ...mine.map((a) => a.id).filter((id) => !first.includes(id))];
  const checked: Record<string, boolean> = {};
  for (const id of order) checked[id] = first.includes(id);
  const weights: Record<string, number> = {};
  for (const id of order) {
    weights[id] = policy.weights[id] ?? mine.find((a) => a.id === id)?.weight ?? 1;
  }
  return {
    strategy: policy.strategy,
    spread: policy.spread,
    affinity: policy.affinity,
    session_idle_secs: policy.session_idle_secs,
    all,
    order,
    checked,
    weights,
    fallback: [...policy.fallback],
  };
}

/** The PUT body: weights are sent only where they differ from the account's own weight. */
export function draftToBody(draft: PolicyDraft, accounts: AccountView[]): Required<PolicyBody> {
  const chosen = draft.order.filter((id) => draft.checked[id]);
  const scope = draft.all ? draft.order : chosen;
  const weights: Record<string, number> = {};
  for (const id of scope) {
    const w = draft.weights[id];
    const own = accounts.find((a) => a.id === id)?.weight;
    if (w != null && w !== own) weights[id] = w;
  }
  return {
    strategy: draft.strategy,
    accounts: draft.all ? [] : chosen,
    weights,
    spread: draft.spread,
    affinity: draft.affinity,
    session_idle_secs: draft.session_idle_secs,
    fallback: draft.fallback.map((s) => s.trim()).filter((s) => s !== ''),
  };
}

function sameBody(a: Required<PolicyBody>, b: Required<PolicyBody>): boolean {
  if (a.strategy !== b.strategy || a.spread !== b.spread) return false;
  if (a.affinity !== b.affinity || a.session_idle_secs !== b.session_idle_secs) return false;
  if (a.accounts.join('\n') !== b.accounts.join('\n')) return false;
  if (a.fallback.join('\n') !== b.fallback.join('\n')) return false;
  const ka = Object.keys(a.weights).sort();
  const kb = Object.keys(b.weights).sort();
  return ka.join('\n') === kb.join('\n') && ka.every((k) => a.weights[k] === b.weights[k]);
}

/** Whether saving the draft would change the policy. */
export function isDirty(draft: PolicyDraft, policy: PolicyView, accounts: AccountView[]): boolean {
  return !sameBody(draftToBody(draft, accounts), draftToBody(draftFromPolicy(policy, accounts), accounts));
}

/** A problem to fix before sending, or null; the server checks everything again. */
export function draftProblem(draft: PolicyDraft): string | null {
  if (!draft.all && !draft.order.some((id) => draft.checked[id])) {
    return 'Choose at least one account, or use all enabled accounts.';
  }
  if (isWeighted(draft.strategy)) {
    const scope = draft.all ? draft.order : draft.order.filter((id) => draft.checked[id]);
    if (scope.some((id) => !Number.isInteger(draft.weights[id]) || draft.weights[id] < 1)) {
      return 'Weights must be whole numbers of at least 1.';
    }
  }
  return null;
}

/** The kinds of failure a fallback step may take alone (`kind=target`). */
export const FAILURE_KINDS: { id: string; label: string }[] = [
  { id: '', label: 'any failure' },
  { id: 'rate_limit', label: 'rate limited or overloaded' },
  { id: 'context_window', label: 'too long for the model' },
  { id: 'server_error', label: 'other server errors' },
];

/** A chain step from its parts: `kind=target`, or `target` for any failure. */
export function fallbackStep(kind: string, target: string): string {
  const t = target.trim();
  return kind ? `${kind}=${t}` : t;
}

/** The kind and the target of a chain step. */
export function splitStep(step: string): { kind: string; target: string } {
  const i = step.indexOf('=');
  return i < 0 ? { kind: '', target: step } : { kind: step.slice(0, i), target: step.slice(i + 1) };
}

/** Moves the item at `i` one place up (-1) or down (+1). */
export function moveAt<T>(list: T[], i: number, delta: -1 | 1): T[] {
  const j = i + delta;
  if (i < 0 || j < 0 || j >= list.length) return list;
  const next = [...list];
  [next[i], next[j]] = [next[j], next[i]];
  return next;
}

/** Moves `id` one place up (-1) or down (+1) in the order. */
export function move(order: string[], id: string, delta: -1 | 1): string[] {
  const i = order.indexOf(id);
  const j = i + delta;
  if (i < 0 || j < 0 || j >= order.length) return order;
  const next = [...order];
  [next[i], next[j]] = [next[j], next[i]];
  return next;
}

export function labelOf(id: string, accounts: AccountView[]): string {
  return accounts.find((a) => a.id === id)?.label ?? id;
}

/** Policies grouped by provider, provider policy first, then families in server order. */
export function groupPolicies(policies: PolicyView[]): { provider: string; policies: PolicyView[] }[] {
  const groups = new Map<string, PolicyView[]>();
  for (const p of policies) {
    const list = groups.get(p.provider) ?? [];
    list.push(p);
    groups.set(p.provider, list);
  }
  return [...groups].map(([provider, list]) => ({
    provider,
    policies: [...list].sort((a, b) => Number(a.family != null) - Number(b.family != null)),
  }));
}
