import { describe, expect, it } from 'vitest';
import { classifyDiffLine, diffLines, diffStats } from './diff';

describe('classifyDiffLine', () => {
  it('classifies by the leading characters', () => {
    expect(classifyDiffLine('--- a/settings.json')).toBe('header');
    expect(classifyDiffLine('+++ b/settings.json')).toBe('header');
    expect(classifyDiffLine('@@ -1,3 +1,5 @@')).toBe('hunk');
    expect(classifyDiffLine('+  "env": {')).toBe('add');
    expect(classifyDiffLine('-  "model": "x"')).toBe('del');
    expect(classifyDiffLine('   "theme": "dark"')).toBe('context');
    expect(classifyDiffLine('')).toBe('context');
    expect(classifyDiffLine('\\ No newline at end of file')).toBe('meta');
  });
});

describe('diffLines', () => {
  const diff = [
    '--- a/settings.json',
    '+++ b/settings.json',
    '@@ -1,3 +1,6 @@',
    ' {',
    '-  "x": 1',
    '+  "x": 1,',
    '+  "env": {',
    '+    "ANTHROPIC_BASE_URL": "http://127.0.0.1:8787"',
    '+  }',
    ' }',
    '\\ No newline at end of file',
    '',
  ].join('\n');

  it('classifies every line of a unified diff', () => {
    expect(diffLines(diff).map((l) => l.kind)).toEqual([
      'header',
      'header',
      'hunk',
      'context',
      'del',
      'add',
      'add',
      'add',
      'add',
      'context',
      'meta',
    ]);
  });

  it('counts added and removed lines', () => {
    expect(diffStats(diffLines(diff))).toEqual({ added: 4, removed: 1 });
  });

  it('treats a removed line starting with -- inside a hunk as removed', () => {
    const lines = diffLines('--- a\n+++ b\n@@ -1 +1 @@\n--- comment\n+++ counter\n');
    expect(lines.map((l) => l.kind)).toEqual(['header', 'header', 'hunk', 'del', 'add']);
  });

  it('follows several hunks and falls back to prefixes without counts', () => {
    const two = '--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n@@ -9 +9,2 @@\n z\n+y\n';
    expect(diffLines(two).map((l) => l.kind)).toEqual(['header', 'header', 'hunk', 'context', 'del', 'add', 'hunk', 'context', 'add']);
    expect(diffLines('@@\n+x\n-y\n').map((l) => l.kind)).toEqual(['hunk', 'add', 'del']);
  });

  it('handles CRLF and an empty diff', () => {
    expect(diffLines('+a\r\n-b\r\n').map((l) => l.kind)).toEqual(['add', 'del']);
    expect(diffLines('')).toEqual([]);
  });
});
