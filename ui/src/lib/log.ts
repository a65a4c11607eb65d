import type { RequestRecord } from './types';
import { surfaceName } from './format';

export const LOG_LIMIT = 500;

/** A request failed when its final status was not a success. */
export function isErrorRecord(r: Pick<RequestRecord, 'status'>): boolean {
  return !(r.status >= 200 && r.status < 400);
}

export interface LogFilter {
  text: string;
  errorsOnly: boolean;
}

/** The text a filter word is matched against: model, account, client key, surface and status. */
function haystack(r: RequestRecord): string {
  return [
    r.model ?? '',
    r.account_label ?? '',
    r.account ?? '',
    r.client_key_label ?? '',
    r.client_key ?? '',
    r.surface,
    surfaceName(r.surface),
    String(r.status),
  ]
    .join('\u0000')
    .toLowerCase();
}

/** Every whitespace-separated word of the filter must occur (case-insensitive). */
export function matchesFilter(r: RequestRecord, filter: LogFilter): boolean {
  if (filter.errorsOnly && !isErrorRecord(r)) return false;
  const words = filter.text.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const hay = haystack(r);
  return words.every((w) => hay.includes(w));
}

export function filterLog(rows: RequestRecord[], filter: LogFilter): RequestRecord[] {
  if (!filter.errorsOnly && !filter.text.trim()) return rows;
  return rows.filter((r) => matchesFilter(r, filter));
}

/** Adds one live request to a newest-first log, bounded, ignoring a repeat of the newest id. */
export function prependRecord(log: RequestRecord[], r: RequestRecord, limit = LOG_LIMIT): RequestRecord[] {
  if (log.some((x) => x.id === r.id && x.time_ms === r.time_ms)) return log;
  const next = [r, ...log];
  if (next.length > limit) next.length = limit;
  return next;
}

/**
 * The log after (re)loading `GET /api/requests` (newest last): the server's list, plus live
 * events that arrived while it loaded and are not in it, newest first.
 */
export function mergeLoaded(loaded: RequestRecord[], arrived: RequestRecord[], limit = LOG_LIMIT): RequestRecord[] {
  const seen = new Set(loaded.map(keyOf));
  const extra = arrived.filter((r) => !seen.has(keyOf(r)));
  const all = [...extra, ...[...loaded].reverse()];
  all.sort((a, b) => b.time_ms - a.time_ms || b.id - a.id);
  if (all.length > limit) all.length = limit;
  return all;
}

function keyOf(r: RequestRecord): string {
  return `${r.id}@${r.time_ms}`;
}
