import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from './api';
import { backoffDelay, startEventStream, type StreamState } from './events';
import type { SseEvent } from './sse';

function streamOf(chunks: string[], hold = false): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(ctl) {
      for (const c of chunks) ctl.enqueue(enc.encode(c));
      if (!hold) ctl.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('backoffDelay', () => {
  it('doubles from one second and caps at thirty', () => {
    const mid = () => 0.5;
    expect([0, 1, 2, 3, 4, 5, 6, 10].map((n) => backoffDelay(n, mid))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });

  it('jitters within a quarter either way', () => {
    expect(backoffDelay(2, () => 0)).toBe(3000);
    expect(backoffDelay(2, () => 1)).toBe(5000);
  });
});

describe('startEventStream', () => {
  it('delivers events split across chunks and reconnects after the stream ends', async () => {
    const events: SseEvent[] = [];
    const states: StreamState[] = [];
    let opens = 0;
    const s = startEventStream({
      open: async () => {
        opens++;
        if (opens === 1) return streamOf(['event: sta', 'te\ndata: {}\n', '\nevent: request\nda', 'ta: {"id":1}\n\n']);
        return streamOf([': keep-alive\n\n'], true);
      },
      onEvent: (ev) => events.push(ev),
      onState: (st) => states.push(st),
      delay: () => 1,
    });
    await vi.waitFor(() => expect(opens).toBe(2));
    s.stop();
    await s.done;
    expect(events).toEqual([
      { event: 'state', data: '{}' },
      { event: 'request', data: '{"id":1}' },
    ]);
    expect(states[0]).toBe('connecting');
    expect(states).toContain('live');
    expect(states).toContain('retrying');
    expect(states.at(-1)).toBe('stopped');
  });

  it('backs off further after each failed attempt and resets once connected', async () => {
    const attempts: number[] = [];
    let opens = 0;
    const s = startEventStream({
      open: async () => {
        opens++;
        if (opens <= 3) throw new ApiError(0, 'down');
        if (opens === 4) return streamOf([]);
        throw new ApiError(0, 'down again');
      },
      onEvent: () => {},
      delay: (n) => {
        attempts.push(n);
        return 1;
      },
    });
    await vi.waitFor(() => expect(opens).toBeGreaterThanOrEqual(6));
    s.stop();
    await s.done;
    expect(attempts.slice(0, 5)).toEqual([0, 1, 2, 0, 1]);
  });

  it('stops for good on a fatal error', async () => {
    let opens = 0;
    const states: StreamState[] = [];
    const s = startEventStream({
      open: async () => {
        opens++;
        throw new ApiError(401, 'no');
      },
      onEvent: () => {},
      onState: (st) => states.push(st),
      isFatal: (e) => e instanceof ApiError && e.status === 401,
      delay: () => 1,
    });
    await s.done;
    expect(opens).toBe(1);
    expect(states.at(-1)).toBe('stopped');
  });

  it('reconnects when the stream goes silent for too long', async () => {
    let opens = 0;
    const s = startEventStream({
      open: async (signal) => {
        opens++;
        const res = streamOf([], true);
        signal.addEventListener('abort', () => void res.body?.cancel().catch(() => {}));
        return res;
      },
      onEvent: () => {},
      delay: () => 1,
      idleTimeoutMs: 20,
    });
    await vi.waitFor(() => expect(opens).toBeGreaterThanOrEqual(2), { timeout: 2000 });
    s.stop();
    await s.done;
  });

  it('aborts the open connection on stop', async () => {
    let aborted = false;
    let opened!: () => void;
    const open = new Promise<void>((r) => (opened = r));
    const s = startEventStream({
      open: async (signal) => {
        signal.addEventListener('abort', () => (aborted = true));
        opened();
        return streamOf([], true);
      },
      onEvent: () => {},
    });
    // Stop once the connection is open, not after a guessed delay.
    await open;
    s.stop();
    await s.done;
    expect(aborted).toBe(true);
  });
});
