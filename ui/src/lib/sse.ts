/** One dispatched Server-Sent Event. `event` is `message` when the stream named none. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Incremental `text/event-stream` parser (WHATWG framing): feed it decoded text in chunks of
 * any size; it returns the events completed by each chunk. Needed because EventSource cannot
 * send the Authorization header, so the stream is read with fetch.
 */
export class SseParser {
  private buffer = '';
  private started = false;
  private skipLf = false;
  private eventType = '';
  private data: string[] = [];
  private lastId: string | undefined;
  /** The last `retry:` value in milliseconds, if the server sent one. */
  retry: number | undefined;

  push(chunk: string): SseEvent[] {
    const out: SseEvent[] = [];
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.skipLf && text.length > 0) {
      if (text[0] === '\n') text = text.slice(1);
      this.skipLf = false;
    }
    this.buffer += text;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i];
      if (c !== '\n' && c !== '\r') continue;
      this.line(this.buffer.slice(start, i), out);
      if (c === '\r') {
        if (i + 1 < this.buffer.length) {
          if (this.buffer[i + 1] === '\n') i++;
        } else {
          this.skipLf = true;
        }
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  /** Drops a partial event, as a stream that ended without a blank line must. */
  reset(): void {
    this.buffer = '';
    this.started = false;
    this.skipLf = false;
    this.eventType = '';
    this.data = [];
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      this.dispatch(out);
      return;
    }
    if (line[0] === ':') return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
  }

  private dispatch(out: SseEvent[]): void {
    const type = this.eventType || 'message';
    const hasData = this.data.length > 0;
    const data = this.data.join('\n');
    this.eventType = '';
    this.data = [];
    if (!hasData) return;
    const ev: SseEvent = { event: type, data };
    if (this.lastId !== undefined) ev.id = this.lastId;
    out.push(ev);
  }
}

/** Parses a whole stream text at once; for tests and small inputs. */
export function parseSse(text: string): SseEvent[] {
  return new SseParser().push(text);
}
