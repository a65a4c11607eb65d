export type DiffKind = 'header' | 'hunk' | 'add' | 'del' | 'context' | 'meta';

export interface DiffLine {
  kind: DiffKind;
  text: string;
}

/** Classifies one unified-diff line for colouring, by its first characters alone. */
export function classifyDiffLine(line: string): DiffKind {
  if (line.startsWith('+++') || line.startsWith('---')) return 'header';
  if (line.startsWith('@@')) return 'hunk';
  if (line.startsWith('+')) return 'add';
  if (line.startsWith('-')) return 'del';
  if (line.startsWith(' ') || line === '') return 'context';
  return 'meta';
}

/**
 * Classifies a unified diff. Inside a hunk the line counts from its `@@` header decide, so a
 * removed line that itself starts with `--` is not taken for a file header.
 */
export function diffLines(diff: string): DiffLine[] {
  const text = diff.replace(/\r\n/g, '\n').replace(/\n$/, '');
  if (!text) return [];
  const out: DiffLine[] = [];
  let oldLeft = 0;
  let newLeft = 0;
  for (const line of text.split('\n')) {
    let kind: DiffKind;
    if (oldLeft > 0 || newLeft > 0) {
      if (line.startsWith('\\')) kind = 'meta';
      else if (line.startsWith('+')) {
        kind = 'add';
        newLeft--;
      } else if (line.startsWith('-')) {
        kind = 'del';
        oldLeft--;
      } else {
        kind = 'context';
        oldLeft--;
        newLeft--;
      }
    } else {
      kind = classifyDiffLine(line);
      const m = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line);
      if (m) {
        oldLeft = m[1] === undefined ? 1 : Number(m[1]);
        newLeft = m[2] === undefined ? 1 : Number(m[2]);
      }
    }
    out.push({ kind, text: line });
  }
  return out;
}

export function diffStats(lines: DiffLine[]): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const l of lines) {
    if (l.kind === 'add') added++;
    else if (l.kind === 'del') removed++;
  }
  return { added, removed };
}
