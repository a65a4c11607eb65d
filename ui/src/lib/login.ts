import type { LoginView, ProviderView, Source } from './types';

export const IMPORT_SOURCES: { id: Source; name: string; provider: string }[] = [
  { id: 'claude-code', name: 'Claude Code', provider: 'anthropic' },
  { id: 'codex-cli', name: 'Codex CLI', provider: 'openai' },
];

/** Device-code login exists for OpenAI (ChatGPT) only. */
export function offersDeviceCode(providerId: string): boolean {
  return providerId === 'openai';
}

export function loginProviders(providers: ProviderView[]): ProviderView[] {
  return providers.filter((p) => p.login);
}

/** The statement to confirm before a login or import for this provider, or null. */
export function termsFor(providers: ProviderView[], providerId: string): string | null {
  const p = providers.find((x) => x.id === providerId);
  if (!p || p.terms_accepted) return null;
  return p.terms ?? null;
}

export function isFinished(login: Pick<LoginView, 'state'>): boolean {
  return login.state === 'done' || login.state === 'failed';
}

/**
 * Polls a login until it is done or failed, reporting every view. Network hiccups are
 * retried; a 4xx answer (the login is gone) or `maxErrors` failures in a row end it with that error.
 */
export async function pollLogin(
  get: () => Promise<LoginView>,
  onUpdate: (login: LoginView) => void,
  signal: AbortSignal,
  intervalMs = 1000,
  maxErrors = 5,
): Promise<LoginView | null> {
  let errors = 0;
  while (!signal.aborted) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, intervalMs);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
    if (signal.aborted) return null;
    try {
      const view = await get();
      errors = 0;
      if (signal.aborted) return null;
      onUpdate(view);
      if (isFinished(view)) return view;
    } catch (err) {
      errors++;
      const status = (err as { status?: unknown }).status;
      const refused = typeof status === 'number' && status >= 400 && status < 500;
      if (refused || errors >= maxErrors) throw err;
    }
  }
  return null;
}
