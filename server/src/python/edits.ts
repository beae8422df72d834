// Text edits for quick-fixes that keep the surrounding formatting: single- or multi-line argument lists,
// trailing commas and existing keyword arguments are preserved.
import type { Node } from './parser';
import { isTop, tops, type Program } from './forest';
import { findStatements } from './names';

export interface TextEditSpan {
  start: number;
  end: number;
  newText: string;
}

export function replaceNode(node: Node, newText: string): TextEditSpan {
  return { start: node.startIndex, end: node.endIndex, newText };
}

function lineStart(text: string, at: number): number {
  return text.lastIndexOf('\n', at - 1) + 1;
}

export function lineEnd(text: string, at: number): number {
  const nl = text.indexOf('\n', at);
  const end = nl === -1 ? text.length : nl;
  return end > 0 && text[end - 1] === '\r' ? end - 1 : end;
}

/** Appends `kw=value` to an argument list. */
export function addKeyword(text: string, list: Node, args: Node[], kw: string): TextEditSpan {
  const last = args[args.length - 1];
  if (!last) return { start: list.startIndex + 1, end: list.startIndex + 1, newText: kw };
  const open = list.startIndex;
  const multiLine = text.slice(open, last.startIndex).includes('\n');
  const close = list.endIndex - 1;
  const tail = text.slice(last.endIndex, close);
  const comma = tail.indexOf(',');
  if (!multiLine) return { start: last.endIndex, end: last.endIndex, newText: `, ${kw}` };
  const ls = lineStart(text, last.startIndex);
  const indent = /^[ \t]*/.exec(text.slice(ls, last.startIndex))![0];
  if (comma !== -1 && !tail.slice(0, comma).includes('#')) {
    const after = last.endIndex + comma + 1;
    return { start: after, end: after, newText: `\n${indent}${kw},` };
  }
  return { start: last.endIndex, end: last.endIndex, newText: `,\n${indent}${kw}` };
}

/** Removes one argument together with the comma that separates it from its neighbour. */
export function removeArgument(text: string, args: Node[], arg: Node): TextEditSpan {
  const i = args.findIndex((a) => a.equals(arg));
  if (i > 0) return { start: args[i - 1].endIndex, end: arg.endIndex, newText: '' };
  if (i === 0 && args.length > 1) return { start: arg.startIndex, end: args[1].startIndex, newText: '' };
  // Only argument: also drop a trailing comma.
  let end = arg.endIndex;
  const m = /^\s*,/.exec(text.slice(end));
  if (m) end += m[0].length;
  return { start: arg.startIndex, end, newText: '' };
}

let futureCache: { tree: Program; text: string; nodes: Node[] } | undefined;

/**
 * Adds an import statement after the existing top-level imports (which come after any docstring and
 * `from __future__` imports); with no imports, after the module docstring or at the start of the cell.
 */
export function addImport(text: string, tree: Program, imports: Node[], cellStarts: number[], at: number, stmt: string): TextEditSpan {
  // fixes are built for every finding of an analysis: find the __future__ imports once per parse tree
  if (futureCache?.tree !== tree || futureCache.text !== text) {
    futureCache = { tree, text, nodes: findStatements(tree, text, /^from[ \t]+__future__\b/gm, ['future_import_statement']) };
  }
  const futures = futureCache.nodes;
  const topLevel = [...imports, ...futures]
    .filter((n) => isTop(n) && n.startIndex < at)
    .sort((a, b) => a.startIndex - b.startIndex);
  const cellStart = cellStarts.filter((s) => s <= at).pop() ?? 0;
  // Prefer the last import before the call in the same cell (for notebooks), else the last before it anywhere.
  const inCell = topLevel.filter((n) => n.startIndex >= cellStart);
  const anchor = (inCell.length ? inCell : topLevel).pop();
  if (anchor) {
    const end = lineEnd(text, anchor.endIndex);
    return { start: end, end, newText: `\n${stmt}` };
  }
  const first = tops(tree, true).find((n) => n.startIndex >= cellStart && n.type !== 'comment');
  if (first && cellStart === 0 && first.type === 'expression_statement' && first.namedChildren[0]?.type === 'string') {
    const end = lineEnd(text, first.endIndex);
    return { start: end, end, newText: `\n${stmt}` };
  }
  return { start: cellStart, end: cellStart, newText: `${stmt}\n` };
}
