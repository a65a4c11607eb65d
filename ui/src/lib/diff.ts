import type { DiffKind, DiffLine } from './types';

/** The prefix a line of this kind has in a unified diff. */
export function marker(kind: DiffKind): string {
  switch (kind) {
    case 'added':
      return '+';
    case 'removed':
      return '-';
    case 'context':
      return ' ';
    case 'header':
    case 'hunk':
      return '';
  }
}

export function diffStats(lines: Pick<DiffLine, 'kind'>[]): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const l of lines) {
    if (l.kind === 'added') added++;
    else if (l.kind === 'removed') removed++;
  }
  return { added, removed };
}
