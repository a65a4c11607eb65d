import { describe, expect, it, vi } from 'vitest';
import { TOKEN_KEY, consumeToken, dashboardUrl, splitTokenFragment } from './auth';

function env(hash: string, stored: string | null = null) {
  const data = new Map<string, string>();
  if (stored) data.set(TOKEN_KEY, stored);
  const replaceState = vi.fn();
  return {
    env: {
      location: { hash, pathname: '/', search: '' },
      history: { replaceState, state: null },
      storage: {
        getItem: (k: string) => data.get(k) ?? null,
        setItem: (k: string, v: string) => void data.set(k, v),
        removeItem: (k: string) => void data.delete(k),
      },
    },
    data,
    replaceState,
  };
}

describe('splitTokenFragment', () => {
  it('reads the token forms', () => {
    expect(splitTokenFragment('#token=abc')).toEqual({ token: 'abc', rest: '' });
    expect(splitTokenFragment('#token=a%2Bb&/accounts')).toEqual({ token: 'a+b', rest: '/accounts' });
    expect(splitTokenFragment('#/routing&token=xyz')).toEqual({ token: 'xyz', rest: '/routing' });
    expect(splitTokenFragment('#/accounts')).toEqual({ token: null, rest: '/accounts' });
    expect(splitTokenFragment('')).toEqual({ token: null, rest: '' });
    expect(splitTokenFragment('#token=')).toEqual({ token: null, rest: '' });
  });
});

describe('consumeToken', () => {
  it('moves the token from the fragment to session storage and clears the address bar', () => {
    const e = env('#token=secret');
    expect(consumeToken(e.env)).toBe('secret');
    expect(e.data.get(TOKEN_KEY)).toBe('secret');
    expect(e.replaceState).toHaveBeenCalledWith(null, '', '/');
  });

  it('keeps a route that came with the token', () => {
    const e = env('#token=secret&/usage');
    consumeToken(e.env);
    expect(e.replaceState).toHaveBeenCalledWith(null, '', '/#/usage');
  });

  it('prefers a new token over a stored one', () => {
    const e = env('#token=new', 'old');
    expect(consumeToken(e.env)).toBe('new');
    expect(e.data.get(TOKEN_KEY)).toBe('new');
  });

  it('falls back to the stored token without touching the address bar', () => {
    const e = env('#/accounts', 'stored');
    expect(consumeToken(e.env)).toBe('stored');
    expect(e.replaceState).not.toHaveBeenCalled();
  });

  it('returns null when there is none', () => {
    expect(consumeToken(env('').env)).toBeNull();
  });
});

describe('dashboardUrl', () => {
  it('carries the token to the new address', () => {
    expect(dashboardUrl('127.0.0.1:9000', 'a b', '127.0.0.1')).toBe('http://127.0.0.1:9000/#token=a%20b');
    expect(dashboardUrl('[::1]:9000', 't', '127.0.0.1')).toBe('http://[::1]:9000/#token=t');
  });

  it('uses the current host name for an unspecified address', () => {
    expect(dashboardUrl('0.0.0.0:9000', 't', 'box.local')).toBe('http://box.local:9000/#token=t');
    expect(dashboardUrl('[::]:9000', 't', '::1')).toBe('http://[::1]:9000/#token=t');
  });
});
