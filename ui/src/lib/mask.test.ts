import { describe, expect, it } from 'vitest';
import { MASK, maskKey } from './mask';

const KEY = 'kw-3f9a8b7c6d5e4f3a2b1c';

describe('maskKey', () => {
  it('hides every occurrence of the key', () => {
    const text = `export ANTHROPIC_AUTH_TOKEN=${KEY}\nexport OPENAI_API_KEY=${KEY}\n`;
    const out = maskKey(text, KEY);
    expect(out).not.toContain(KEY);
    expect(out).toBe(`export ANTHROPIC_AUTH_TOKEN=${MASK}\nexport OPENAI_API_KEY=${MASK}\n`);
  });

  it('leaves text without the key alone', () => {
    expect(maskKey('export ANTHROPIC_BASE_URL=http://127.0.0.1:8787', KEY)).toBe(
      'export ANTHROPIC_BASE_URL=http://127.0.0.1:8787',
    );
  });

  it('treats the key literally, not as a pattern', () => {
    expect(maskKey('a.b a+b', 'a.b')).toBe(`${MASK} a+b`);
  });

  it('falls back to the key shape when the key is unknown', () => {
    expect(maskKey(`"apiKey": "${KEY}"`, null)).toBe(`"apiKey": "${MASK}"`);
    expect(maskKey('kw-short', null)).toBe('kw-short');
  });
});
