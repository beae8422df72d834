// Inline suppressions: `# safe-weights: ignore[SW101]` (or `ignore` for every rule) on the first or last line of
// the flagged call; `# nosec` too when honorNosec is set. Only real comments count, never text inside strings.
import type { Node } from './parser';
import { lineEnd } from './edits';
import type { TextEditSpan } from './edits';

const MARKER = /#\s*safe-weights:\s*ignore(?:\[([^\]]*)\])?/;

function lineOf(text: string, at: number): { start: number; end: number } {
  return { start: text.lastIndexOf('\n', at - 1) + 1, end: lineEnd(text, at) };
}

function commentOnLine(text: string, root: Node, at: number): string | undefined {
  const { start, end } = lineOf(text, at);
  const line = text.slice(start, end);
  for (let i = line.indexOf('#'); i !== -1; i = line.indexOf('#', i + 1)) {
    const node = root.descendantForIndex(start + i, start + i + 1);
    if (node?.type === 'comment') return line.slice(i);
  }
  return undefined;
}

export function isSuppressed(text: string, root: Node, issue: { rule: string; start: number; end: number }, honorNosec: boolean): boolean {
  for (const at of new Set([issue.start, Math.max(issue.start, issue.end - 1)])) {
    const comment = commentOnLine(text, root, at);
    if (!comment) continue;
    const m = MARKER.exec(comment);
    if (m && (m[1] === undefined || m[1].split(',').map((s) => s.trim()).includes(issue.rule))) return true;
    if (honorNosec && /#\s*nosec\b/.test(comment)) return true;
  }
  return false;
}

export function suppressionFix(text: string, issue: { rule: string; start: number }): { title: string; edits: TextEditSpan[]; preferred: boolean } {
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
  return { title: `Suppress ${issue.rule} on this line`, edits: [edit], preferred: false };
}
