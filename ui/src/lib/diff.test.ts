import { describe, expect, it } from 'vitest';
import { diffStats, marker } from './diff';
import type { DiffLine } from './types';

const lines: DiffLine[] = [
  { kind: 'header', text: '--- ~/.claude/settings.json' },
  { kind: 'header', text: '+++ ~/.claude/settings.json' },
  { kind: 'hunk', text: '@@ -1,3 +1,6 @@' },
  { kind: 'context', text: '{' },
  { kind: 'removed', text: '  "x": 1' },
  { kind: 'added', text: '  "x": 1,' },
  { kind: 'added', text: '  "env": {}' },
  { kind: 'context', text: '}' },
];

describe('diff lines', () => {
  it('prints each kind with its unified-diff prefix', () => {
    expect(lines.map((l) => marker(l.kind) + l.text)).toEqual([
      '--- ~/.claude/settings.json',
      '+++ ~/.claude/settings.json',
      '@@ -1,3 +1,6 @@',
      ' {',
      '-  "x": 1',
      '+  "x": 1,',
      '+  "env": {}',
      ' }',
    ]);
  });

  it('counts added and removed lines', () => {
    expect(diffStats(lines)).toEqual({ added: 2, removed: 1 });
    expect(diffStats([])).toEqual({ added: 0, removed: 0 });
  });
});
