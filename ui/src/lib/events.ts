import { SseParser, type SseEvent } from './sse';

/** Reconnect delay: doubling from 1 s up to 30 s, with ±25 % jitter so tabs do not sync up. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 1000 * 2 ** Math.max(0, attempt));
  return Math.round(base * (0.75 + random() * 0.5));
}

export type StreamState = 'connecting' | 'live' | 'retrying' | 'stopped';

export interface EventStreamOptions {
  open: (signal: AbortSignal) => Promise<Response>;
  onEvent: (ev: SseEvent) => void;
  onState?: (state: StreamState, retryInMs?: number) => void;
  /** An error after which retrying is pointless (a rejected token). */
  isFatal?: (err: unknown) => boolean;
  delay?: (attempt: number) => number;
  /** Keyway sends a keep-alive every 15 s; silence longer than this means a dead connection. */
  idleTimeoutMs?: number;
}

export interface EventStream {
  stop(): void;
  /** Settles when the loop has ended (after `stop` or a fatal error). */
  done: Promise<void>;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Keeps one SSE connection open with fetch, parsing and reconnecting with backoff. */
export function startEventStream(opts: EventStreamOptions): EventStream {
  const stopper = new AbortController();
  const delay = opts.delay ?? ((n: number) => backoffDelay(n));
  const idleMs = opts.idleTimeoutMs ?? 45_000;
  const setState = (s: StreamState, ms?: number) => opts.onState?.(s, ms);

  async function once(live: () => void): Promise<void> {
    const conn = new AbortController();
    const abortConn = () => conn.abort();
    stopper.signal.addEventListener('abort', abortConn, { once: true });
    let idle: ReturnType<typeof setTimeout> | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(abortConn, idleMs);
    };
    try {
      const res = await opts.open(conn.signal);
      if (!res.body) throw new Error('The event stream has no body.');
      live();
      setState('live');
      const reader = res.body.getReader();
      const cancel = () => void reader.cancel().catch(() => {});
      if (conn.signal.aborted) cancel();
      conn.signal.addEventListener('abort', cancel, { once: true });
      const decoder = new TextDecoder();
      const parser = new SseParser();
      touch();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        touch();
        for (const ev of parser.push(decoder.decode(value, { stream: true }))) opts.onEvent(ev);
      }
    } finally {
      clearTimeout(idle);
      stopper.signal.removeEventListener('abort', abortConn);
    }
  }

  async function loop(): Promise<void> {
    let attempt = 0;
    while (!stopper.signal.aborted) {
      setState(attempt === 0 ? 'connecting' : 'retrying');
      let connected = false;
      try {
        await once(() => (connected = true));
      } catch (err) {
        if (stopper.signal.aborted) break;
        if (opts.isFatal?.(err)) break;
      }
      if (stopper.signal.aborted) break;
      if (connected) attempt = 0;
      const wait = delay(attempt);
      attempt++;
      setState('retrying', wait);
      await sleep(wait, stopper.signal);
    }
    setState('stopped');
  }

  return {
    stop: () => stopper.abort(),
    done: loop(),
  };
}
