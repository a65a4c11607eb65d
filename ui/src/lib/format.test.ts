import { describe, expect, it } from 'vitest';
import {
  accountState,
  ago,
  cacheShare,
  clock,
  clockSeconds,
  compact,
  costText,
  errorRate,
  latency,
  quotaTone,
  resetText,
  routeName,
  surfaceName,
  surfaceShort,
  unpricedNote,
  usd,
  usdShort,
  when,
} from './format';
import type { AccountStatus } from './types';

const at = (y: number, mo: number, d: number, h: number, mi: number, s = 0) => new Date(y, mo - 1, d, h, mi, s);
const unix = (date: Date) => date.getTime() / 1000;
const now = at(2026, 11, 26, 10, 0);

function acct(live: Partial<AccountStatus> | null, enabled = true) {
  return { enabled, live: live ? ({ state: 'serving', ...live } as AccountStatus) : null };
}

describe('clock', () => {
  it('pads local hours and minutes', () => {
    expect(clock(at(2026, 1, 2, 9, 5))).toBe('09:05');
    expect(clockSeconds(at(2026, 1, 2, 23, 59, 7))).toBe('23:59:07');
  });
});

describe('when', () => {
  it('gives HH:MM within a day and the date beyond', () => {
    expect(when(unix(at(2026, 11, 26, 14, 30)), now)).toBe('14:30');
    expect(when(unix(at(2026, 11, 28, 8, 0)), now)).toBe('28 Nov 08:00');
    expect(when(unix(at(2027, 1, 3, 8, 0)), now)).toBe('3 Jan 2027 08:00');
  });
});

describe('accountState', () => {
  it('shows serving', () => {
    expect(accountState(acct({ state: 'serving' }), now)).toEqual({ label: 'serving', tone: 'ok', detail: null });
  });

  it('shows cooling until a local time with the reason', () => {
    const s = accountState(
      acct({ state: 'cooling', cooling_until: unix(at(2026, 11, 26, 14, 5)), cooling_reason: 'rate limited (429)' }),
      now,
    );
    expect(s).toEqual({ label: 'cooling until 14:05', tone: 'warn', detail: 'rate limited (429)' });
  });

  it('shows cooling with a date when the cooldown ends after a day', () => {
    const s = accountState(acct({ state: 'cooling', cooling_until: unix(at(2026, 11, 29, 6, 0)) }), now);
    expect(s.label).toBe('cooling until 29 Nov 06:00');
    expect(s.detail).toBeNull();
  });

  it('shows cooling without an end time', () => {
    expect(accountState(acct({ state: 'cooling' }), now).label).toBe('cooling');
  });

  it('shows needs login with the reason or a hint', () => {
    expect(accountState(acct({ state: 'needs_login' }), now)).toMatchObject({ label: 'needs login', tone: 'bad' });
    expect(accountState(acct({ state: 'needs_login' }), now).detail).toMatch(/log in again/i);
    expect(accountState(acct({ state: 'needs_login', needs_attention: 'refresh token revoked' }), now).detail).toBe(
      'refresh token revoked',
    );
  });

  it('shows needs attention with the reason', () => {
    expect(accountState(acct({ state: 'needs_attention', needs_attention: 'key refused (401)' }), now)).toEqual({
      label: 'needs attention',
      tone: 'bad',
      detail: 'key refused (401)',
    });
  });

  it('shows no secret', () => {
    expect(accountState(acct({ state: 'no_secret' }), now)).toMatchObject({ label: 'no secret', tone: 'bad' });
  });

  it('shows disabled before any live state', () => {
    expect(accountState(acct({ state: 'cooling' }, false), now)).toEqual({ label: 'disabled', tone: 'muted', detail: null });
  });

  it('copes with missing live state', () => {
    expect(accountState(acct(null), now).label).toBe('unknown');
  });
});

describe('resetText', () => {
  it('uses HH:MM within a day', () => {
    expect(resetText({ name: '5h', used_percent: 10, rejected: false, resets_at: unix(at(2026, 11, 26, 13, 45)) }, now)).toBe('resets 13:45');
  });

  it('uses the date beyond a day', () => {
    expect(resetText({ name: '7d', used_percent: 10, rejected: false, resets_at: unix(at(2026, 12, 1, 9, 0)) }, now)).toBe('resets 1 Dec');
  });

  it('is empty without a reset time and says so when it has passed', () => {
    expect(resetText({ name: '5h', used_percent: 10, rejected: false }, now)).toBe('');
    expect(resetText({ name: '5h', used_percent: 10, rejected: false, resets_at: unix(at(2026, 11, 26, 9, 0)) }, now)).toBe('reset due');
  });
});

describe('quotaTone', () => {
  it('goes amber at 80 % and red when refused or full', () => {
    expect(quotaTone({ name: 'a', used_percent: 42, rejected: false })).toBe('ok');
    expect(quotaTone({ name: 'a', used_percent: 85, rejected: false })).toBe('warn');
    expect(quotaTone({ name: 'a', used_percent: 100, rejected: false })).toBe('bad');
    expect(quotaTone({ name: 'a', used_percent: 20, rejected: true })).toBe('bad');
  });
});

describe('numbers', () => {
  it('compacts counts', () => {
    expect([0, 950, 1000, 1250, 12_300, 999_999, 4_500_000, 2e12, null].map(compact)).toEqual([
      '0',
      '950',
      '1k',
      '1.3k',
      '12k',
      '1M',
      '4.5M',
      '2000G',
      '–',
    ]);
  });

  it('formats latency', () => {
    expect(latency(812)).toBe('812 ms');
    expect(latency(1234)).toBe('1.23 s');
    expect(latency(65_000)).toBe('65.0 s');
  });

  it('computes the error rate', () => {
    expect(errorRate(0, 0)).toBe('0%');
    expect(errorRate(12, 1)).toBe('8%');
    expect(errorRate(1000, 1)).toBe('<1%');
    expect(errorRate(4, 4)).toBe('100%');
  });
});

describe('sessions', () => {
  it('says how long ago, coarsely', () => {
    const t = now.getTime();
    expect([t - 12_000, t - 4 * 60_000, t - 2 * 3_600_000, t - 3 * 86_400_000, t + 5000].map((ms) => ago(ms, now))).toEqual([
      '12 s ago',
      '4 min ago',
      '2 h ago',
      '3 d ago',
      '0 s ago',
    ]);
  });

  it('gives the share of input read from the cache', () => {
    expect(cacheShare(930, 1000)).toBe('(93%)');
    expect(cacheShare(5, 0)).toBe('');
    expect(cacheShare(2000, 1000)).toBe('(100%)');
  });
});

describe('names', () => {
  it('names surfaces and routes', () => {
    expect(surfaceName('openai_responses')).toBe('OpenAI Responses');
    expect(surfaceName('anthropic_messages')).toBe('Anthropic Messages');
    expect(surfaceShort('openai_chat')).toBe('Chat');
    expect(surfaceName('other')).toBe('other');
    expect(routeName({ provider: 'anthropic', family: 'sonnet' })).toBe('anthropic/sonnet');
    expect(routeName({ provider: 'anthropic', family: null })).toBe('anthropic');
  });
});

describe('money', () => {
  it('gives cents from a dollar up', () => {
    expect(usd(412)).toBe('$412.00');
    expect(usd(1234.567)).toBe('$1,234.57');
    expect(usd(5)).toBe('$5.00');
    expect(usd(1)).toBe('$1.00');
    expect(usd(0.999)).toBe('$1.00');
  });

  it('gives tiny amounts two significant digits, never $0.00', () => {
    expect(usd(0.41)).toBe('$0.41');
    expect(usd(0.5)).toBe('$0.50');
    expect(usd(0.0071)).toBe('$0.0071');
    expect(usd(0.00712)).toBe('$0.0071');
    expect(usd(0.001)).toBe('$0.001');
    expect(usd(0.015)).toBe('$0.015');
    expect(usd(0.000043)).toBe('$0.000043');
    expect(usd(3e-8)).toBe('<$0.000001');
    expect(usd(0)).toBe('$0.00');
  });

  it('has no amount for no number', () => {
    expect(usd(null)).toBe('–');
    expect(usd(undefined)).toBe('–');
    expect(usd(Number.NaN)).toBe('–');
  });

  it('shortens amounts on an axis', () => {
    expect([0, 0.005, 0.5, 50, 500, 1200].map(usdShort)).toEqual(['$0.00', '$0.005', '$0.50', '$50.00', '$500', '$1.2k']);
  });

  it('says no price rather than $0.00, and marks a sum that leaves requests out', () => {
    expect(costText({ cost_usd: null, unpriced: 3 })).toBe('no price');
    expect(costText({ cost_usd: null, unpriced: 0 })).toBe('–');
    expect(costText({ cost_usd: 1.42, unpriced: 0 })).toBe('$1.42');
    expect(costText({ cost_usd: 1.42, unpriced: 2 })).toBe('$1.42+');
    expect(costText({ cost_usd: 0, unpriced: 0 })).toBe('$0.00');
    expect(unpricedNote(0)).toBe('');
    expect(unpricedNote(1)).toBe('1 request for models without a price is not counted');
    expect(unpricedNote(1200)).toBe('1,200 requests for models without a price are not counted');
  });
});
