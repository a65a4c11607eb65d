import type { Totals } from './types';

const pad = (n: number) => String(n).padStart(2, '0');

/** `YYYY-MM-DD` of a local date, the form the API uses for days. */
export function dayKey(date: Date): string {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** Every local day of the window ending today, oldest first; days without requests are zeros. */
export function fillDays(byDay: Totals[], days: number, today: Date): Totals[] {
  const known = new Map(byDay.map((d) => [d.key, d]));
  const out: Totals[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const d = new Date(today.getFullYear(), today.getMonth(), today.getDate() - i);
    const key = dayKey(d);
    out.push(
      known.get(key) ?? { key, requests: 0, errors: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0 },
    );
  }
  for (const d of byDay) if (!out.some((o) => o.key === d.key)) out.push(d);
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}

/** A round axis maximum at or above `max`: 1, 2 or 5 times a power of ten. */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const pow = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * pow >= max) return m * pow;
  return 10 * pow;
}

/** `2026-11-26` → `26 Nov`. */
export function dayLabel(day: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return day;
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${Number(m[3])} ${months[Number(m[2]) - 1] ?? m[2]}`;
}

export function csvFileName(days: number, today: Date): string {
  return `keyway-usage-${days}d-${dayKey(today)}.csv`;
}
