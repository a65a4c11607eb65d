import type {
  AliasView,
  RouteView,
  Surface,
  AccountChange,
  AccountLimits,
  AccountView,
  ClientKeyView,
  Connected,
  DefaultKey,
  Disconnected,
  ImportResult,
  Limits,
  LoginView,
  LogsOpened,
  NewAccount,
  NewImport,
  NewKey,
  NewLogin,
  Paused,
  Picks,
  Plan,
  PolicyBody,
  PolicyView,
  PreviewBody,
  ProviderView,
  RemovedAccount,
  RequestRecord,
  SettingsChange,
  SessionView,
  SettingsView,
  StatusView,
  ToolView,
  Usage,
} from './types';

/** A failed management call; `status` is 0 when Keyway could not be reached at all. */
export class ApiError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

export interface ApiOptions {
  /** Origin of Keyway; empty for the page's own origin. */
  base?: string;
  token: () => string | null;
  /** Called on every 401 so the app can ask for a token again. */
  onUnauthorized?: () => void;
  fetch?: typeof fetch;
}

const UNAUTHORIZED = 'Keyway did not accept the management token.';

/** The message to show for a non-2xx answer: the API's own `error.message` when it sent one. */
export async function errorMessage(res: Response): Promise<string> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    text = '';
  }
  if (text) {
    try {
      const body: unknown = JSON.parse(text);
      const message = (body as { error?: { message?: unknown } } | null)?.error?.message;
      if (typeof message === 'string' && message.trim()) return message;
    } catch {
      const plain = text.trim();
      if (plain && plain.length <= 300 && !plain.startsWith('<')) return plain;
    }
  }
  if (res.status === 401) return UNAUTHORIZED;
  const reason = res.statusText ? ` ${res.statusText}` : '';
  return `Keyway answered ${res.status}${reason}.`;
}

/** `anthropic/opus` → `/api/policies/anthropic/opus`, each segment escaped. */
export function policyPath(key: string): string {
  return '/api/policies/' + key.split('/').map(encodeURIComponent).join('/');
}

/** `?key=<id>` for the connect calls; empty for the default key. */
export function keyQuery(key: string | null | undefined): string {
  return key ? `?key=${encodeURIComponent(key)}` : '';
}

function isAbort(err: unknown): boolean {
  return err instanceof DOMException && err.name === 'AbortError';
}

export function createApi(opts: ApiOptions) {
  const base = opts.base ?? '';
  const doFetch: typeof fetch = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));

  function unauthorized(message: string): ApiError {
    opts.onUnauthorized?.();
    return new ApiError(401, message);
  }

  /** Sends one call with the token; resolves to the raw 2xx response. */
  async function send(method: string, path: string, body?: unknown, init?: RequestInit): Promise<Response> {
    const token = opts.token();
    if (!token) throw unauthorized('No management token.');
    const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await doFetch(base + path, {
        ...init,
        method,
        headers: { ...headers, ...(init?.headers as Record<string, string> | undefined) },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (err) {
      if (isAbort(err)) throw err;
      throw new ApiError(0, 'Cannot reach Keyway. Is it still running?');
    }
    if (res.status === 401) throw unauthorized(await errorMessage(res));
    if (!res.ok) throw new ApiError(res.status, await errorMessage(res));
    return res;
  }

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await send(method, path, body);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.status, 'Keyway sent an answer that is not JSON.');
    }
  }

  const get = <T>(path: string) => call<T>('GET', path);
  const enc = encodeURIComponent;

  return {
    status: () => get<StatusView>('/api/status'),
    requests: (limit = 500) => get<RequestRecord[]>(`/api/requests?limit=${limit}`),
    /** The SSE stream as a raw response; the caller reads and parses the body. */
    events: (signal: AbortSignal) =>
      send('GET', '/api/events', undefined, { signal, headers: { Accept: 'text/event-stream' } }),

    accounts: () => get<AccountView[]>('/api/accounts'),
    addAccount: (body: NewAccount) => call<AccountView>('POST', '/api/accounts', body),
    patchAccount: (id: string, body: AccountChange) => call<AccountView>('PATCH', `/api/accounts/${enc(id)}`, body),
    removeAccount: (id: string) => call<RemovedAccount>('DELETE', `/api/accounts/${enc(id)}`),
    /** `{}` removes every limit. */
    setAccountLimits: (id: string, limits: AccountLimits) => call<AccountView>('PUT', `/api/accounts/${enc(id)}/limits`, limits),
    providers: () => get<ProviderView[]>('/api/providers'),

    startLogin: (body: NewLogin) => call<LoginView>('POST', '/api/logins', body),
    login: (id: string) => get<LoginView>(`/api/logins/${enc(id)}`),
    cancelLogin: (id: string) => call<LoginView>('DELETE', `/api/logins/${enc(id)}`),
    loginCode: (id: string, code: string) => call<LoginView>('POST', `/api/logins/${enc(id)}/code`, { code }),
    importLogin: (body: NewImport) => call<ImportResult>('POST', '/api/imports', body),

    policies: () => get<PolicyView[]>('/api/policies'),
    putPolicy: (key: string, body: PolicyBody) => call<PolicyView>('PUT', policyPath(key), body),
    deletePolicy: (key: string) => call<void>('DELETE', policyPath(key)),
    previewPolicy: (body: PreviewBody) => call<Picks>('POST', '/api/policies/preview', body),
    aliases: () => get<AliasView[]>('/api/aliases'),
    putAliases: (list: AliasView[]) => call<AliasView[]>('PUT', '/api/aliases', list),
    route: (surface: Surface, model: string) =>
      get<RouteView>(`/api/route?surface=${encodeURIComponent(surface)}&model=${encodeURIComponent(model)}`),

    sessions: () => get<SessionView[]>('/api/sessions'),
    usage: (days: number) => get<Usage>(`/api/usage?days=${days}`),
    usageCsv: async (days: number) => (await send('GET', `/api/usage.csv?days=${days}`)).blob(),

    /** `key`: the id of the client key the snippets and files carry; the default key when absent. */
    connectTools: (key?: string) => get<ToolView[]>(`/api/connect${keyQuery(key)}`),
    connectPreview: (tool: string, key?: string) => call<Plan>('POST', `/api/connect/${enc(tool)}/preview${keyQuery(key)}`, {}),
    connect: (tool: string, key?: string) => call<Connected>('POST', `/api/connect/${enc(tool)}${keyQuery(key)}`, {}),
    disconnect: (tool: string) => call<Disconnected>('DELETE', `/api/connect/${enc(tool)}`),

    pause: () => call<Paused>('POST', '/api/pause', {}),
    resume: () => call<Paused>('POST', '/api/resume', {}),

    clientKey: () => get<DefaultKey>('/api/client-key'),
    rotateClientKey: () => call<DefaultKey>('POST', '/api/client-key/rotate', {}),
    clientKeys: () => get<ClientKeyView[]>('/api/client-keys'),
    addClientKey: (label: string) => call<NewKey>('POST', '/api/client-keys', { label }),
    revokeClientKey: (id: string) => call<void>('DELETE', `/api/client-keys/${enc(id)}`),
    setKeyLimits: (id: string, limits: Limits) => call<ClientKeyView>('PUT', `/api/client-keys/${enc(id)}/limits`, limits),
    settings: () => get<SettingsView>('/api/settings'),
    patchSettings: (body: SettingsChange) => call<SettingsView>('PATCH', '/api/settings', body),
    openLogs: () => call<LogsOpened>('POST', '/api/logs/open', {}),
  };
}

export type Api = ReturnType<typeof createApi>;

/** The text to show for any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
