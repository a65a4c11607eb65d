import { describe, expect, it } from 'vitest';
import { filterLog, isErrorRecord, matchesFilter, mergeLoaded, prependRecord } from './log';
import type { RequestRecord } from './types';

function rec(over: Partial<RequestRecord>): RequestRecord {
  return {
    id: 1,
    time_ms: 1_764_120_000_000,
    surface: 'anthropic_messages',
    model: 'claude-sonnet-4-5',
    requested_model: null,
    provider: 'anthropic',
    family: 'sonnet',
    account: 'acc_x1',
    account_label: 'Work',
    attempts: 1,
    status: 200,
    latency_ms: 800,
    stream: true,
    input_tokens: 10,
    output_tokens: 5,
    cache_read_tokens: null,
    cache_write_tokens: null,
    session: null,
    session_source: null,
    placement: null,
    client_key: 'default',
    client_key_label: 'Default',
    cost_usd: null,
    saved_usd: null,
    route: null,
    ...over,
  };
}

const rows = [
  rec({
    id: 3,
    time_ms: 3000,
    model: 'gpt-5-codex',
    surface: 'openai_responses',
    account: 'acc_o',
    account_label: 'Codex',
    client_key: 'ck-1a2b3c',
    client_key_label: 'Codex CLI',
  }),
  rec({ id: 2, time_ms: 2000, status: 429 }),
  rec({ id: 1, time_ms: 1000, surface: 'gemini', model: 'gemini-2.5-pro', account: null, account_label: null, status: 502 }),
];

describe('isErrorRecord', () => {
  it('counts failures by status', () => {
    expect(isErrorRecord({ status: 503 })).toBe(true);
    expect(isErrorRecord({ status: 200 })).toBe(false);
    expect(isErrorRecord({ status: 304 })).toBe(false);
    expect(isErrorRecord({ status: 429 })).toBe(true);
    expect(isErrorRecord({ status: 0 })).toBe(true);
  });
});

describe('filterLog', () => {
  it('matches free text over model, account, client key, surface and status', () => {
    const ids = (text: string, errorsOnly = false) => filterLog(rows, { text, errorsOnly }).map((r) => r.id);
    expect(ids('')).toEqual([3, 2, 1]);
    expect(ids('codex')).toEqual([3]);
    expect(ids('WORK')).toEqual([2]);
    expect(ids('acc_o')).toEqual([3]);
    expect(ids('gemini')).toEqual([1]);
    expect(ids('responses')).toEqual([3]);
    expect(ids('429')).toEqual([2]);
    expect(ids('sonnet 429')).toEqual([2]);
    expect(ids('sonnet 502')).toEqual([]);
    expect(ids('ck-1a2b3c')).toEqual([3]);
    expect(ids('cli')).toEqual([3]);
    expect(ids('default')).toEqual([2, 1]);
  });

  it('keeps only failures with errors only', () => {
    expect(filterLog(rows, { text: '', errorsOnly: true }).map((r) => r.id)).toEqual([2, 1]);
    expect(filterLog(rows, { text: 'gemini', errorsOnly: true }).map((r) => r.id)).toEqual([1]);
  });

  it('returns the same array when nothing filters', () => {
    expect(filterLog(rows, { text: '  ', errorsOnly: false })).toBe(rows);
  });

  it('matches one record', () => {
    expect(matchesFilter(rows[0], { text: 'gpt', errorsOnly: false })).toBe(true);
  });
});

describe('prependRecord', () => {
  it('puts the newest first and keeps at most the limit', () => {
    let log: RequestRecord[] = [];
    for (let i = 1; i <= 7; i++) log = prependRecord(log, rec({ id: i, time_ms: i }), 5);
    expect(log.map((r) => r.id)).toEqual([7, 6, 5, 4, 3]);
  });

  it('ignores a record it already has', () => {
    const log = [rec({ id: 2, time_ms: 2 })];
    expect(prependRecord(log, rec({ id: 2, time_ms: 2 }))).toBe(log);
  });
});

describe('mergeLoaded', () => {
  it('reverses the server order and adds live records that arrived meanwhile', () => {
    const loaded = [rec({ id: 1, time_ms: 1 }), rec({ id: 2, time_ms: 2 })];
    const arrived = [rec({ id: 3, time_ms: 3 }), rec({ id: 2, time_ms: 2 })];
    expect(mergeLoaded(loaded, arrived).map((r) => r.id)).toEqual([3, 2, 1]);
  });

  it('bounds the result', () => {
    const loaded = Array.from({ length: 10 }, (_, i) => rec({ id: i, time_ms: i }));
    expect(mergeLoaded(loaded, [], 4).map((r) => r.id)).toEqual([9, 8, 7, 6]);
  });
});
