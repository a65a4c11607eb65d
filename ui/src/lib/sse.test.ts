import { describe, expect, it } from 'vitest';
import { SseParser, parseSse } from './sse';

/** Feeds `text` split at every given offset and collects all events. */
function feed(text: string, cuts: number[]) {
  const p = new SseParser();
  const out = [];
  let last = 0;
  for (const c of [...cuts, text.length]) {
    out.push(...p.push(text.slice(last, c)));
    last = c;
  }
  return out;
}

describe('SseParser', () => {
  it('parses named events with data', () => {
    expect(parseSse('event: state\ndata: {}\n\nevent: request\ndata: {"id":1}\n\n')).toEqual([
      { event: 'state', data: '{}' },
      { event: 'request', data: '{"id":1}' },
    ]);
  });

  it('defaults the event type to message', () => {
    expect(parseSse('data: hi\n\n')).toEqual([{ event: 'message', data: 'hi' }]);
  });

  it('joins multi-line data with newlines', () => {
    expect(parseSse('data: a\ndata: b\ndata:\ndata:  c\n\n')).toEqual([{ event: 'message', data: 'a\nb\n\n c' }]);
  });

  it('ignores comment lines, including keep-alives between events', () => {
    expect(parseSse(': keep-alive\n\n:another\nevent: state\n: inside\ndata: {}\n\n')).toEqual([
      { event: 'state', data: '{}' },
    ]);
  });

  it('does not dispatch an event without data', () => {
    expect(parseSse('event: state\n\n')).toEqual([]);
  });

  it('keeps an incomplete event until its blank line arrives', () => {
    const p = new SseParser();
    expect(p.push('event: request\ndata: {"id":')).toEqual([]);
    expect(p.push('7}\n')).toEqual([]);
    expect(p.push('\n')).toEqual([{ event: 'request', data: '{"id":7}' }]);
  });

  it('gives the same events for every split of the stream', () => {
    const text = 'event: state\ndata: {}\n\n: keep-alive\n\nevent: request\ndata: {"model":"x"}\n\n';
    const whole = parseSse(text);
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j += 3) {
        expect(feed(text, [i, j])).toEqual(whole);
      }
    }
  });

  it('handles CRLF line endings, also when CR and LF arrive in different chunks', () => {
    const text = 'event: state\r\ndata: {}\r\n\r\nevent: request\r\ndata: 1\r\n\r\n';
    const expected = [
      { event: 'state', data: '{}' },
      { event: 'request', data: '1' },
    ];
    expect(parseSse(text)).toEqual(expected);
    for (let i = 0; i <= text.length; i++) expect(feed(text, [i])).toEqual(expected);
    for (let i = 0; i < text.length; i++) {
      const p = new SseParser();
      const out = [];
      for (const ch of text.slice(0, i)) out.push(...p.push(ch));
      out.push(...p.push(text.slice(i)));
      expect(out).toEqual(expected);
    }
  });

  it('handles lone CR line endings', () => {
    expect(parseSse('event: state\rdata: {}\r\r')).toEqual([{ event: 'state', data: '{}' }]);
  });

  it('strips one leading space only and accepts fields without a colon', () => {
    expect(parseSse('data:  two spaces\n\n')).toEqual([{ event: 'message', data: ' two spaces' }]);
    expect(parseSse('data\n\n')).toEqual([{ event: 'message', data: '' }]);
  });

  it('keeps colons inside the value', () => {
    expect(parseSse('data: {"url":"http://x:1"}\n\n')).toEqual([{ event: 'message', data: '{"url":"http://x:1"}' }]);
  });

  it('removes a leading byte order mark and ignores unknown fields', () => {
    expect(parseSse('\ufeffevent: state\nfoo: bar\ndata: {}\n\n')).toEqual([{ event: 'state', data: '{}' }]);
  });

  it('records id and retry', () => {
    const p = new SseParser();
    expect(p.push('id: 5\nretry: 3000\ndata: x\n\n')).toEqual([{ event: 'message', data: 'x', id: '5' }]);
    expect(p.retry).toBe(3000);
  });

  it('resets the event type after each dispatch', () => {
    expect(parseSse('event: state\ndata: {}\n\ndata: plain\n\n')).toEqual([
      { event: 'state', data: '{}' },
      { event: 'message', data: 'plain' },
    ]);
  });

  it('drops a partial event on reset', () => {
    const p = new SseParser();
    p.push('event: request\ndata: {"id":1');
    p.reset();
    expect(p.push('event: state\ndata: {}\n\n')).toEqual([{ event: 'state', data: '{}' }]);
  });
});
