import { describe, expect, it } from 'vitest';
import { accountDraftOf, accountLimitsText, parseAccountLimits, readRate, wholeNumber, type AccountLimitsDraft } from './limits';

const draft = (over: Partial<AccountLimitsDraft> = {}): AccountLimitsDraft => ({ max_concurrent: '', rpm: '', tpm: '', ...over });

describe('accountLimitsText', () => {
  it('lists the limits set in one short line', () => {
    expect(accountLimitsText({})).toBe('');
    expect(accountLimitsText({ max_concurrent: 4, rpm: 50, tpm: 40_000 })).toBe('at most 4 in flight · 50 rpm · 40k tpm');
    expect(accountLimitsText({ tpm: 2_500_000 })).toBe('2.5M tpm');
    expect(accountLimitsText({ max_concurrent: 1 })).toBe('at most 1 in flight');
  });
});

describe('accountDraftOf', () => {
  it('shows each limit as typed, and none as empty', () => {
    expect(accountDraftOf({})).toEqual(draft());
    expect(accountDraftOf({ max_concurrent: 2, tpm: 40_000 })).toEqual(draft({ max_concurrent: '2', tpm: '40000' }));
  });
});

describe('parseAccountLimits', () => {
  it('treats empty fields as no limit', () => {
    expect(parseAccountLimits(draft())).toEqual({ limits: {}, problems: {} });
    expect(parseAccountLimits(draft({ rpm: '  ' }))).toEqual({ limits: {}, problems: {} });
  });

  it('reads every field, digit groups allowed', () => {
    expect(parseAccountLimits(draft({ max_concurrent: ' 4 ', rpm: '1,000', tpm: '40_000' }))).toEqual({
      limits: { max_concurrent: 4, rpm: 1000, tpm: 40_000 },
      problems: {},
    });
  });

  it('names the field and its range when a value is out of it', () => {
    const p = parseAccountLimits(draft({ max_concurrent: '10001', rpm: '0', tpm: '1.5' }));
    expect(p.limits).toEqual({});
    expect(p.problems).toEqual({
      max_concurrent: 'Requests in flight: a whole number from 1 to 10,000.',
      rpm: 'Requests per minute: a whole number from 1 to 1,000,000.',
      tpm: 'Tokens per minute: a whole number from 1 to 10,000,000,000.',
    });
  });

  it('accepts the ends of each range', () => {
    expect(parseAccountLimits(draft({ max_concurrent: '10000', rpm: '1000000', tpm: '10000000000' }))).toEqual({
      limits: { max_concurrent: 10_000, rpm: 1_000_000, tpm: 10_000_000_000 },
      problems: {},
    });
    expect(parseAccountLimits(draft({ max_concurrent: '1', rpm: '1', tpm: '1' })).problems).toEqual({});
    expect(parseAccountLimits(draft({ rpm: '1000001' })).problems.rpm).toMatch(/Requests per minute/);
    expect(parseAccountLimits(draft({ tpm: '10000000001' })).problems.tpm).toMatch(/Tokens per minute/);
  });
});

describe('readRate', () => {
  it('adds the number or the problem, and nothing for an empty field', () => {
    const limits: Record<string, number> = {};
    const problems: Record<string, string> = {};
    readRate('rpm', '', limits, problems);
    expect([limits, problems]).toEqual([{}, {}]);
    readRate('rpm', '60', limits, problems);
    readRate('tpm', 'lots', limits, problems);
    expect(limits).toEqual({ rpm: 60 });
    expect(Object.keys(problems)).toEqual(['tpm']);
  });

  it('reads whole numbers only', () => {
    expect(wholeNumber('1 000')).toBe(1000);
    expect(wholeNumber('-1')).toBeNull();
    expect(wholeNumber('2e3')).toBeNull();
  });
});
