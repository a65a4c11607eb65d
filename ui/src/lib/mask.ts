export const MASK = '••••••••••••';

/** Shape of a Keyway client key, used when the key itself is not known yet. */
const KEY_PATTERN = /\bkw-[A-Za-z0-9_-]{6,}/g;

/** Hides the client key inside displayed text; copying always uses the original. */
export function maskKey(text: string, key: string | null | undefined): string {
  if (key) {
    return text.split(key).join(MASK);
  }
  return text.replace(KEY_PATTERN, MASK);
}
