import { compact } from './format';
import type { AccountLimits } from './types';

/** The ranges Keyway accepts for rate limits (accounts and client keys alike). */
export const CONCURRENT_MAX = 10_000;
export const RPM_MAX = 1_000_000;
export const TPM_MAX = 10_000_000_000;

export type RateField = 'max_concurrent' | 'rpm' | 'tpm';

/** Each rate limit's name in forms, its largest value, and what a form says when it is out of range. */
export const RATES: Record<RateField, { label: string; unit: string; max: number; problem: string }> = {
  max_concurrent: {
    label: 'Requests in flight',
    unit: 'at once',
    max: CONCURRENT_MAX,
    problem: 'Requests in flight: a whole number from 1 to 10,000.',
  },
  rpm: { label: 'Requests per minute', unit: 'rpm', max: RPM_MAX, problem: 'Requests per minute: a whole number from 1 to 1,000,000.' },
  tpm: {
    label: 'Tokens per minute',
    unit: 'tpm',
    max: TPM_MAX,
    problem: 'Tokens per minute: a whole number from 1 to 10,000,000,000.',
  },
};

/** A whole number, with `,`, `_` or spaces between digit groups allowed; null when it is not one. */
export function wholeNumber(text: string): number | null {
  const t = text.trim().replace(/[,_\s]/g, '');
  return /^\d+$/.test(t) ? Number(t) : null;
}

/**
 * Reads the rate limit `field` as typed: its number goes to `limits`, or what is wrong with it
 * to `problems`; an empty field is no limit and adds neither.
 */
export function readRate(
  field: RateField,
  text: string,
  limits: Partial<Record<RateField, number | null>>,
  problems: Partial<Record<RateField, string>>,
): void {
  if (!text.trim()) return;
  const n = wholeNumber(text);
  const { max, problem } = RATES[field];
  if (n == null || n < 1 || n > max) problems[field] = problem;
  else limits[field] = n;
}

/** The limits of an account in the order its form and its line show them. */
export const ACCOUNT_FIELDS: RateField[] = ['max_concurrent', 'rpm', 'tpm'];

/** `at most 4 in flight · 50 rpm · 40k tpm`; empty without limits. */
export function accountLimitsText(l: AccountLimits): string {
  const parts: string[] = [];
  if (l.max_concurrent != null) parts.push(`at most ${compact(l.max_concurrent)} in flight`);
  if (l.rpm != null) parts.push(`${compact(l.rpm)} rpm`);
  if (l.tpm != null) parts.push(`${compact(l.tpm)} tpm`);
  return parts.join(' · ');
}

/** An account's limits form as typed: an empty field is no limit. */
export type AccountLimitsDraft = Record<RateField, string>;

export function accountDraftOf(l: AccountLimits): AccountLimitsDraft {
  const text = (n: number | undefined) => (n == null ? '' : String(n));
  return { max_concurrent: text(l.max_concurrent), rpm: text(l.rpm), tpm: text(l.tpm) };
}

export interface ParsedAccountLimits {
  /** The body to send (`{}` removes every limit); meaningful only when `problems` is empty. */
  limits: AccountLimits;
  /** What is wrong with each field, in words for the form. */
  problems: Partial<Record<RateField, string>>;
}

/** Checks the form as Keyway would, so a mistake shows at the field before anything is sent. */
export function parseAccountLimits(d: AccountLimitsDraft): ParsedAccountLimits {
  const limits: AccountLimits = {};
  const problems: ParsedAccountLimits['problems'] = {};
  for (const field of ACCOUNT_FIELDS) readRate(field, d[field], limits, problems);
  return { limits, problems };
}
