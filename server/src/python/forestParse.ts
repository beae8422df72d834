// Parsing a big document as a forest (forest.ts): segments of whole top-level statements, each parsed over its
// range of the text; after an edit only the segments it touches are parsed again (incrementally).
import { chunkStarts } from './chunkedAnalysis';
import { Forest } from './forest';
import { editTreeAt, getParser, pointAt, type Point, type Tree } from './parser';

/** A segment's size: ~40 of issue 12's six-line functions, re-parsed in ~1 ms after a keystroke. */
export const SEGMENT_CHARS = 8 * 1024;
/** Documents from this size on are parsed as a forest in the language server. */
export const FOREST_MIN_CHARS = 64 * 1024;

type Parser = Awaited<ReturnType<typeof getParser>>;

function units(text: string, from = 0, to = text.length): Uint16Array {
  const out = new Uint16Array(to - from);
  for (let i = from; i < to; i++) out[i - from] = text.charCodeAt(i);
  return out;
}

function parseSegment(parser: Parser, text: string, start: number, end: number, startPosition: Point, old?: Tree): Tree {
  const endPosition = pointAt(text, end, startPosition, start);
  const tree = parser.parse(text, old ?? null, { includedRanges: [{ startIndex: start, endIndex: end, startPosition, endPosition }] });
  if (!tree) throw new Error('tree-sitter returned no tree');
  return tree;
}

/** The whole text as a forest: segments cut where a new top-level statement starts outside brackets and strings. */
export function parseForest(parser: Parser, text: string, target = SEGMENT_CHARS): Forest {
  const starts = chunkStarts(units(text), target);
  const trees: Tree[] = [];
  let at: Point = { row: 0, column: 0 };
  for (let k = 0; k < starts.length; k++) {
    const end = k + 1 < starts.length ? starts[k + 1] : text.length;
    trees.push(parseSegment(parser, text, starts[k], end, at));
    at = pointAt(text, end, at, starts[k]);
  }
  return new Forest(trees, starts);
}

/** Points a tree's node text at `text`. web-tree-sitter keeps the parse input as `textCallback` (0.27: not in its
 *  typings); the forest tests fail if a version keeps it elsewhere (shifted nodes would read the old text). */
function readsFrom(tree: Tree, text: string): void {
  (tree as unknown as { textCallback: (index: number) => string }).textCallback = (index) => text.slice(index);
}

/** Whether `at` is still where a top-level statement starts, scanning from the segment start `from`. */
function isBoundary(text: string, from: number, at: number): boolean {
  if (at >= text.length) return true;
  if (at <= from) return at === 0;
  const scanned = units(text, from, Math.min(text.length, at + 16));
  return chunkStarts(scanned, at - from)[1] === at - from;
}

export interface ForestEdit {
  start: number; oldEnd: number; text: string;
  startPos: { line: number; character: number }; oldEndPos: { line: number; character: number };
}

/**
 * The forest of `text` after one edit of `old` (the forest of the text before it): the segments the edit touches
 * are parsed again, widened to their neighbours while the edit moved a segment boundary off a statement start
 * (a bracket or string left open, an indented first line). `oldForest` is the forest before the edit told of it
 * (its nodes at new-text offsets, as the analysis compares them); `retired`: its trees no longer in `forest`.
 */
export function reparseForest(parser: Parser, old: Forest, text: string, edit: ForestEdit, target = SEGMENT_CHARS):
  { forest: Forest; oldForest: Forest; retired: Tree[]; changed: { startIndex: number; endIndex: number }[] } {
  const delta = edit.text.length - (edit.oldEnd - edit.start);
  const n = old.trees.length;
  const oldStart = (k: number): number => old.starts[k];
  // the start offset in the new text of segment k (k > the edited ones: shifted)
  // (a start the edit deleted goes where the edit's text ends, as tree-sitter moves the nodes there)
  const newStart = (k: number): number =>
    (oldStart(k) <= edit.start ? oldStart(k) : oldStart(k) < edit.oldEnd ? edit.start + edit.text.length : oldStart(k) + delta);
  let i = old.segmentAt(edit.start);
  let j = old.segmentAt(Math.max(edit.start, edit.oldEnd - 1));
  for (;;) {
    const from = newStart(i);
    const to = j + 1 < n ? newStart(j + 1) : text.length;
    if (j + 1 < n && (to <= from || !isBoundary(text, from, to))) { j++; continue; }
    if (i > 0 && !isBoundary(text, newStart(i - 1), from)) { i--; continue; }
    break;
  }
  for (let k = i; k < n; k++) editTreeAt(old.trees[k], edit.start, edit.oldEnd, edit.text, edit.startPos, edit.oldEndPos);
  const from = newStart(i);
  const to = j + 1 < n ? newStart(j + 1) : text.length;
  // the segment starts at or before the edit: its row is the edit's less the line breaks between them
  let row = edit.startPos.line;
  for (let at = text.indexOf('\n', from); at !== -1 && at < edit.start; at = text.indexOf('\n', at + 1)) row--;
  const startPosition = { row, column: 0 };
  // one segment: incrementally from its old tree; several joined, or one cut again: afresh (rare). A segment that
  // edits have grown or joined past 4 sizes (a paste; a string opened, which joins every segment after it, and
  // closed again) is cut again where statements start.
  const cuts = to - from > 4 * target ? chunkStarts(units(text, from, to), target).map((c) => c + from) : [from];
  const reused = i === j && cuts.length === 1 ? old.trees[i] : undefined;
  const trees: Tree[] = [];
  for (let k = 0, at = startPosition; k < cuts.length; k++) {
    const end = k + 1 < cuts.length ? cuts[k + 1] : to;
    trees.push(parseSegment(parser, text, cuts[k], end, at, reused));
    at = pointAt(text, end, at, cuts[k]);
  }
  const changed = reused ? trees[0].getChangedRanges(reused) : [{ startIndex: from, endIndex: to }];
  const retired = old.trees.slice(i, j + 1);
  const shifted = old.starts.map((_, k) => newStart(k));
  const forest = new Forest([...old.trees.slice(0, i), ...trees, ...old.trees.slice(j + 1)],
    [...shifted.slice(0, i), ...cuts, ...shifted.slice(j + 1)]);
  // a tree reads its nodes' text from the text it was parsed from: the segments after the edit were only told of
  // it (their nodes moved), so they read the new text from now on; so do the ones before (their part is unchanged)
  for (const t of forest.trees) readsFrom(t, text);
  // the forest before the edit, told of it: the same object (what was kept for it, such as its list of top-level
  // bodies, is found again), its starts now at new-text offsets like its trees' nodes
  old.starts = shifted;
  return { forest, oldForest: old, retired, changed };
}
