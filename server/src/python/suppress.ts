// Inline suppressions: `# safe-weights: ignore[SW101]` (or `ignore` for every rule) on the first or last line of
// the flagged call; `# nosec` too when honorNosec is set. File-wide: a comment line `# safe-weights: ignore-file[SW101]`
// (or `ignore-file` for every rule) anywhere in the file or notebook. Only real comments count, never text inside strings.
import { descend, type Program } from './forest';
import { lineEnd } from './edits';
import type { TextEditSpan } from './edits';
import { textMemo } from './textMemo';

const MARKER = /#\s*safe-weights:\s*ignore(?:\[([^\]]*)\])?/;

function lineOf(text: string, at: number): { start: number; end: number } {
  return { start: text.lastIndexOf('\n', at - 1) + 1, end: lineEnd(text, at) };
}

function commentOnLine(text: string, root: Program, at: number): string | undefined {
  const { start, end } = lineOf(text, at);
  const line = text.slice(start, end);
  for (let i = line.indexOf('#'); i !== -1; i = line.indexOf('#', i + 1)) {
    const node = descend(root, start + i, start + i + 1);
    if (node?.type === 'comment') return line.slice(i);
  }
  return undefined;
}

export function isSuppressed(text: string, root: Program, issue: { rule: string; start: number; end: number }, honorNosec: boolean): boolean {
  for (const at of new Set([issue.start, Math.max(issue.start, issue.end - 1)])) {
    const comment = commentOnLine(text, root, at);
    if (!comment) continue;
    const m = MARKER.exec(comment);
    if (m && (m[1] === undefined || m[1].split(',').map((s) => s.trim()).includes(issue.rule))) return true;
    if (honorNosec && /#\s*nosec\b/.test(comment)) return true;
  }
  return false;
}

export function suppressionFix(text: string, issue: { rule: string; start: number }): { title: string; edits: TextEditSpan[]; preferred: boolean; role: 'suppress' } {
  const { start, end } = lineOf(text, issue.start);
  const line = text.slice(start, end);
  const m = /#\s*safe-weights:\s*ignore\[([^\]]*)\]/.exec(line);
  let edit: TextEditSpan;
  if (m) {
    const close = start + m.index + m[0].length - 1;
    edit = { start: close, end: close, newText: `, ${issue.rule}` };
  } else {
    edit = { start: end, end, newText: `  # safe-weights: ignore[${issue.rule}]` };
  }
  return { title: `Suppress ${issue.rule} on this line`, edits: [edit], preferred: false, role: 'suppress' as const };
}

const FILE_MARKER = /^[ \t]*#\s*safe-weights:\s*ignore-file(?:\[([^\]\r\n]*)\])?[ \t]*\r?$/gm;

/** The rules a file suppresses as a whole ('*': every rule), from its `# safe-weights: ignore-file[...]` comment lines. */
export function fileSuppressions(text: string, root: Program): Set<string> {
  const out = new Set<string>();
  if (!text.includes('ignore-file')) return out;
  for (const m of text.matchAll(FILE_MARKER)) {
    const at = m.index! + m[0].indexOf('#');
    if (descend(root, at, at + 1)?.type !== 'comment') continue;   // inside a string
    if (m[1] === undefined) out.add('*');
    else for (const r of m[1].split(',')) if (r.trim()) out.add(r.trim());
  }
  return out;
}

/** A comment line that suppresses the rule in the whole file: added to an existing ignore-file[...] line, or put
 *  at the top (after a shebang and an encoding line; `at`: where the program, or the notebook cell, starts). */
// What fileSuppressionFix reads from the whole text, for the last text it was given: it runs once per finding, and a
// file with thousands of findings would be scanned once per finding (O(findings x file) per analysis).
const fileFacts = textMemo(1, (text: string): { marker: { close: number; empty: boolean } | undefined; eol: string } => {
  let marker: { close: number; empty: boolean } | undefined;
  for (const m of text.matchAll(FILE_MARKER)) {
    if (m[1] === undefined) continue;
    marker = { close: m.index! + m[0].lastIndexOf(']'), empty: !m[1].trim() };
    break;
  }
  return { marker, eol: text.includes('\r\n') ? '\r\n' : '\n' };
});

export function fileSuppressionFix(text: string, issue: { rule: string }, at = 0): { title: string; edits: TextEditSpan[]; preferred: boolean; role: 'suppress' } {
  const title = `Suppress ${issue.rule} in this file`;
  const facts = fileFacts(text);
  if (facts.marker) {
    const close = facts.marker.close;
    return { title, edits: [{ start: close, end: close, newText: `${facts.marker.empty ? '' : ', '}${issue.rule}` }], preferred: false, role: 'suppress' };
  }
  let pos = at;
  for (let i = 0; i < 2; i++) {
    const end = text.indexOf('\n', pos);
    const line = text.slice(pos, end === -1 ? text.length : end);
    if (!(i === 0 && line.startsWith('#!')) && !/^#.*coding[:=]/.test(line)) break;
    pos = end === -1 ? text.length : end + 1;
  }
  const eol = facts.eol;
  const newText = pos === text.length && pos > 0 && !text.endsWith('\n') ? `${eol}# safe-weights: ignore-file[${issue.rule}]` : `# safe-weights: ignore-file[${issue.rule}]${eol}`;
  return { title, edits: [{ start: pos, end: pos, newText }], preferred: false, role: 'suppress' };
}
