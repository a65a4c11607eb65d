export const SCREENS = [
  { id: 'overview', title: 'Overview' },
  { id: 'accounts', title: 'Accounts' },
  { id: 'routing', title: 'Routing' },
  { id: 'connect', title: 'Connect' },
  { id: 'keys', title: 'Keys' },
  { id: 'usage', title: 'Usage' },
  { id: 'settings', title: 'Settings' },
] as const;

export type ScreenId = (typeof SCREENS)[number]['id'];

/** `#/accounts` → `accounts`; anything unknown (or empty) is the overview. */
export function parseRoute(hash: string): ScreenId {
  const path = hash.replace(/^#\/?/, '').split(/[?&/]/)[0].toLowerCase();
  const found = SCREENS.find((s) => s.id === path);
  return found ? found.id : 'overview';
}

export function routeHref(id: ScreenId): string {
  return `#/${id}`;
}
