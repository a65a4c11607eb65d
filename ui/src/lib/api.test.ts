import { describe, expect, it, vi } from 'vitest';
import { ApiError, createApi, errorMessage, policyPath } from './api';

type Call = { url: string; init: RequestInit };

function mockFetch(respond: (call: Call) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const call = { url: String(input), init: init ?? {} };
    calls.push(call);
    return respond(call);
  });
  return { fetch: fn as unknown as typeof fetch, calls };
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

function headers(call: Call): Record<string, string> {
  return call.init.headers as Record<string, string>;
}

describe('api client', () => {
  it('sends the bearer token and parses JSON', async () => {
    const m = mockFetch(() => json({ listen: '127.0.0.1:8787' }));
    const api = createApi({ token: () => 'tok', fetch: m.fetch });
    const s = await api.status();
    expect(s.listen).toBe('127.0.0.1:8787');
    expect(m.calls[0].url).toBe('/api/status');
    expect(headers(m.calls[0]).Authorization).toBe('Bearer tok');
    expect(m.calls[0].init.method).toBe('GET');
  });

  it('sends JSON bodies with a content type', async () => {
    const m = mockFetch(() => json({ id: 'acc_1' }, 201));
    const api = createApi({ token: () => 't', base: 'http://127.0.0.1:9000', fetch: m.fetch });
    await api.addAccount({ provider: 'anthropic', label: 'Work', secret: 'sk', weight: 2 });
    expect(m.calls[0].url).toBe('http://127.0.0.1:9000/api/accounts');
    expect(m.calls[0].init.method).toBe('POST');
    expect(headers(m.calls[0])['Content-Type']).toBe('application/json');
    expect(JSON.parse(String(m.calls[0].init.body))).toEqual({ provider: 'anthropic', label: 'Work', secret: 'sk', weight: 2 });
  });

  it("throws the API's error message with the status", async () => {
    const m = mockFetch(() => json({ error: { message: 'unknown strategy "quickest"' } }, 400));
    const api = createApi({ token: () => 't', fetch: m.fetch });
    const err = await api.putPolicy('anthropic/opus', { strategy: 'priority', accounts: [], weights: {} }).catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.message).toBe('unknown strategy "quickest"');
    expect(m.calls[0].url).toBe('/api/policies/anthropic/opus');
    expect(m.calls[0].init.method).toBe('PUT');
  });

  it('falls back to a status text when the error body is not the API shape', async () => {
    const m = mockFetch(() => new Response('<html>oops</html>', { status: 502, statusText: 'Bad Gateway' }));
    const api = createApi({ token: () => 't', fetch: m.fetch });
    await expect(api.settings()).rejects.toMatchObject({ status: 502, message: 'Keyway answered 502 Bad Gateway.' });
  });

  it('uses a short plain-text error body', async () => {
    const m = mockFetch(() => new Response('address in use', { status: 409 }));
    const api = createApi({ token: () => 't', fetch: m.fetch });
    await expect(api.patchSettings({ listen: '127.0.0.1:1' })).rejects.toMatchObject({ status: 409, message: 'address in use' });
  });

  it('reports 401 to the app and rejects', async () => {
    const onUnauthorized = vi.fn();
    const m = mockFetch(() => json({ error: { message: 'bad token' } }, 401));
    const api = createApi({ token: () => 't', fetch: m.fetch, onUnauthorized });
    await expect(api.accounts()).rejects.toMatchObject({ status: 401, message: 'bad token' });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it('does not call Keyway without a token', async () => {
    const onUnauthorized = vi.fn();
    const m = mockFetch(() => json({}));
    const api = createApi({ token: () => null, fetch: m.fetch, onUnauthorized });
    await expect(api.status()).rejects.toMatchObject({ status: 401 });
    expect(m.calls).toHaveLength(0);
    expect(onUnauthorized).toHaveBeenCalled();
  });

  it('turns a network failure into status 0', async () => {
    const m = mockFetch(() => {
      throw new TypeError('Failed to fetch');
    });
    const api = createApi({ token: () => 't', fetch: m.fetch });
    await expect(api.status()).rejects.toMatchObject({ status: 0, message: 'Cannot reach Keyway. Is it still running?' });
  });

  it('passes an abort through unchanged', async () => {
    const m = mockFetch(() => {
      throw new DOMException('aborted', 'AbortError');
    });
    const api = createApi({ token: () => 't', fetch: m.fetch });
    await expect(api.status()).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('resolves 204 to undefined', async () => {
    const m = mockFetch(() => new Response(null, { status: 204 }));
    const api = createApi({ token: () => 't', fetch: m.fetch });
    await expect(api.deletePolicy('anthropic')).resolves.toBeUndefined();
    expect(m.calls[0].init.method).toBe('DELETE');
    expect(m.calls[0].url).toBe('/api/policies/anthropic');
  });

  it('rejects a 200 that is not JSON', async () => {
    const m = mockFetch(() => new Response('not json', { status: 200 }));
    const api = createApi({ token: () => 't', fetch: m.fetch });
    await expect(api.status()).rejects.toBeInstanceOf(ApiError);
  });

  it('escapes ids in paths', async () => {
    const m = mockFetch(() => json({}));
    const api = createApi({ token: () => 't', fetch: m.fetch });
    await api.patchAccount('acc/1 x', { enabled: false });
    await api.login('login 1');
    await api.connectPreview('claude-code');
    expect(m.calls.map((c) => c.url)).toEqual([
      '/api/accounts/acc%2F1%20x',
      '/api/logins/login%201',
      '/api/connect/claude-code/preview',
    ]);
  });

  it('calls the client key endpoints and passes a chosen key to connect', async () => {
    const m = mockFetch((c) => (c.init.method === 'DELETE' ? new Response(null, { status: 204 }) : json({})));
    const api = createApi({ token: () => 't', fetch: m.fetch });
    await api.clientKeys();
    await api.addClientKey('Claude Code');
    await api.setKeyLimits('ck-1a2b3c', { rpm: 2 });
    await api.revokeClientKey('ck-1a2b3c');
    await api.connectTools('ck-1a2b3c');
    await api.connectTools();
    await api.connectPreview('claude-code', 'ck-1a2b3c');
    await api.connect('claude-code', 'ck 1');
    expect(m.calls.map((c) => `${c.init.method} ${c.url} ${c.init.body ?? ''}`.trim())).toEqual([
      'GET /api/client-keys',
      'POST /api/client-keys {"label":"Claude Code"}',
      'PUT /api/client-keys/ck-1a2b3c/limits {"rpm":2}',
      'DELETE /api/client-keys/ck-1a2b3c',
      'GET /api/connect?key=ck-1a2b3c',
      'GET /api/connect',
      'POST /api/connect/claude-code/preview?key=ck-1a2b3c {}',
      'POST /api/connect/claude-code?key=ck%201 {}',
    ]);
  });

  it('puts an account\'s limits, and an empty body to remove them', async () => {
    const m = mockFetch(() => json({}));
    const api = createApi({ token: () => 't', fetch: m.fetch });
    await api.setAccountLimits('acc_x1', { max_concurrent: 4, rpm: 50, tpm: 40_000 });
    await api.setAccountLimits('acc/2', {});
    expect(m.calls.map((c) => `${c.init.method} ${c.url} ${c.init.body ?? ''}`.trim())).toEqual([
      'PUT /api/accounts/acc_x1/limits {"max_concurrent":4,"rpm":50,"tpm":40000}',
      'PUT /api/accounts/acc%2F2/limits {}',
    ]);
  });

  it('downloads the CSV as a blob with the auth header', async () => {
    const m = mockFetch(() => new Response('time,surface\n1,anthropic\n', { status: 200, headers: { 'content-type': 'text/csv' } }));
    const api = createApi({ token: () => 't', fetch: m.fetch });
    const blob = await api.usageCsv(7);
    expect(await blob.text()).toBe('time,surface\n1,anthropic\n');
    expect(m.calls[0].url).toBe('/api/usage.csv?days=7');
    expect(headers(m.calls[0]).Authorization).toBe('Bearer t');
  });

  it('opens the event stream with the auth header and the signal', async () => {
    const m = mockFetch(() => new Response('', { status: 200 }));
    const api = createApi({ token: () => 't', fetch: m.fetch });
    const ctl = new AbortController();
    await api.events(ctl.signal);
    expect(headers(m.calls[0]).Authorization).toBe('Bearer t');
    expect(headers(m.calls[0]).Accept).toBe('text/event-stream');
    expect(m.calls[0].init.signal).toBe(ctl.signal);
  });
});

describe('errorMessage', () => {
  it('prefers error.message', async () => {
    expect(await errorMessage(json({ error: { message: 'already connected' } }, 409))).toBe('already connected');
  });

  it('explains a bare 401', async () => {
    expect(await errorMessage(new Response('', { status: 401 }))).toMatch(/token/);
  });
});

describe('policyPath', () => {
  it('keeps the slash between provider and family', () => {
    expect(policyPath('anthropic')).toBe('/api/policies/anthropic');
    expect(policyPath('anthropic/opus')).toBe('/api/policies/anthropic/opus');
    expect(policyPath('my prov/fam?')).toBe('/api/policies/my%20prov/fam%3F');
  });
});
