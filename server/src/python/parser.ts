// Loads web-tree-sitter and the Python grammar once, and parses (incrementally when an old tree is given).
// The wasm files sit next to the bundle (dist/) at run time; compiled tests in out/ find them in node_modules.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Tree, Point } from 'web-tree-sitter';
// require() (not import) so esbuild bundles the package's CommonJS build, which needs no import.meta.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Parser, Language, Edit } = require('web-tree-sitter') as typeof import('web-tree-sitter');
type Parser = import('web-tree-sitter').Parser;

export type { Tree, Node, Point } from 'web-tree-sitter';

let ready: Promise<Parser> | undefined;

function locate(file: string, pkg: string): string {
  const local = join(__dirname, file);
  if (existsSync(local)) return local;
  return require.resolve(`${pkg}/${file}`);
}

/** The shared parser (one per process; parsing is synchronous so sharing is safe). */
export function getParser(): Promise<Parser> {
  ready ??= (async () => {
    const runtime = locate('web-tree-sitter.wasm', 'web-tree-sitter');
    await Parser.init({ locateFile: () => runtime });
    const lang = await Language.load(locate('tree-sitter-python.wasm', 'tree-sitter-python'));
    const parser = new Parser();
    parser.setLanguage(lang);
    return parser;
  })();
  return ready;
}

export function parseSync(parser: Parser, text: string, old?: Tree): Tree {
  const tree = parser.parse(text, old ?? null);
  if (!tree) throw new Error('tree-sitter returned no tree');
  return tree;
}

/** Row/column of `index`, counting from a known point `from` at offset `fromIndex` (index >= fromIndex). */
export function pointAt(text: string, index: number, from: Point = { row: 0, column: 0 }, fromIndex = 0): Point {
  let row = from.row;
  let lineStart = fromIndex - from.column;
  for (let i = text.indexOf('\n', fromIndex); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) {
    row++;
    lineStart = i + 1;
  }
  return { row, column: index - lineStart };
}

/**
 * Tells the old tree what changed between oldText and newText (one edit spanning the differing middle),
 * so the next parse reuses every unchanged subtree.
 */
/** Facts derived from a tree's nodes and kept with it (names.ts's enclosing scopes), dropped when the tree is
 *  edited: its nodes then stand at other offsets. */
const treeMemos = new WeakMap<Tree, Map<number, unknown>>();
export function treeMemo<T>(tree: Tree): Map<number, T> {
  let m = treeMemos.get(tree);
  if (!m) treeMemos.set(tree, (m = new Map()));
  return m as Map<number, T>;
}

export function editTree(tree: Tree, oldText: string, newText: string): void {
  treeMemos.delete(tree);
  const max = Math.min(oldText.length, newText.length);
  let start = 0;
  while (start < max && oldText.charCodeAt(start) === newText.charCodeAt(start)) start++;
  let oldEnd = oldText.length;
  let newEnd = newText.length;
  while (oldEnd > start && newEnd > start && oldText.charCodeAt(oldEnd - 1) === newText.charCodeAt(newEnd - 1)) {
    oldEnd--;
    newEnd--;
  }
  const startPosition = pointAt(oldText, start);
  tree.edit(new Edit({
    startIndex: start,
    oldEndIndex: oldEnd,
    newEndIndex: newEnd,
    startPosition,
    // The prefix before `start` is shared, so both ends are counted from the start point (only the changed part).
    oldEndPosition: pointAt(oldText, oldEnd, startPosition, start),
    newEndPosition: pointAt(newText, newEnd, startPosition, start),
  }));
}

/** Tells the tree about one known change: [start, oldEnd) of the old text became `inserted`. Positions are
 *  LSP line/character (UTF-16), which is what the tree's rows/columns count here. */
export function editTreeAt(tree: Tree, start: number, oldEnd: number, inserted: string,
  startPos: { line: number; character: number }, oldEndPos: { line: number; character: number }): void {
  treeMemos.delete(tree);
  const startPosition = { row: startPos.line, column: startPos.character };
  const newEndPosition = pointAt(inserted, inserted.length, startPosition, 0);
  tree.edit(new Edit({
    startIndex: start,
    oldEndIndex: oldEnd,
    newEndIndex: start + inserted.length,
    startPosition,
    oldEndPosition: { row: oldEndPos.line, column: oldEndPos.character },
    newEndPosition,
  }));
}
