/** Where the management token lives: the tab's session only, never localStorage. */
export const TOKEN_KEY = 'keyway.token';

/**
 * Splits a URL fragment into the management token and what remains (a route such as
 * `/accounts`). Accepts `#token=T`, `#token=T&/accounts` and `#/accounts&token=T`.
 */
export function splitTokenFragment(hash: string): { token: string | null; rest: string } {
  const body = hash.startsWith('#') ? hash.slice(1) : hash;
  if (!body) return { token: null, rest: '' };
  let token: string | null = null;
  const rest: string[] = [];
  for (const part of body.split('&')) {
    if (part.startsWith('token=')) {
      const raw = part.slice('token='.length);
      try {
        token = decodeURIComponent(raw);
      } catch {
        token = raw;
      }
    } else if (part) {
      rest.push(part);
    }
  }
  return { token: token?.trim() || null, rest: rest.join('&') };
}

export interface TokenEnv {
  location: Pick<Location, 'hash' | 'pathname' | 'search'>;
  history: Pick<History, 'replaceState' | 'state'>;
  storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;
}

/**
 * Takes the token out of the address bar (so it is not bookmarked, shared or kept in
 * history) into session storage, and returns the token to use.
 */
export function consumeToken(env: TokenEnv): string | null {
  const { token, rest } = splitTokenFragment(env.location.hash);
  if (token) {
    try {
      env.storage.setItem(TOKEN_KEY, token);
    } catch {
      /* storage can be disabled; the token still works for this page load */
    }
    const hash = rest ? `#${rest}` : '';
    env.history.replaceState(env.history.state, '', env.location.pathname + env.location.search + hash);
    return token;
  }
  try {
    return env.storage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(storage: TokenEnv['storage'], token: string): void {
  try {
    storage.setItem(TOKEN_KEY, token);
  } catch {
    /* storage can be disabled; the token still works for this page load */
  }
}

/** The address of the dashboard on a new listen address, carrying the token over. */
export function dashboardUrl(listen: string, token: string, currentHostname: string): string {
  let host = listen.trim();
  const m = /^(\[[^\]]*\]|[^:]*):(\d+)$/.exec(host);
  if (m) {
    const h = m[1];
    if (h === '0.0.0.0' || h === '[::]' || h === '') host = `${bracket(currentHostname)}:${m[2]}`;
  }
  return `http://${host}/#token=${encodeURIComponent(token)}`;
}

function bracket(hostname: string): string {
  return hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
}
