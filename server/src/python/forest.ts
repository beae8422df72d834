// A Python program's syntax: one tree-sitter tree, or (the language server, for big documents) a forest of trees,
// each over a run of whole top-level statements of the same text. Why a forest: tree-sitter-python re-parses a
// whole module's top-level statements after any edit (its module repeat nodes are never reused), so a keystroke
// in a 10,000-line file with 1,666 functions took ~15-20 ms to re-parse, and ~1-3 ms in one segment of ~100.
// The analysis reads a program only through the helpers below, which treat the segments' top-level statements as
// one module. Each segment tree is parsed over its range of the full text (tree-sitter's included ranges), so
// node offsets and positions are the document's.
import type { Node, Tree } from './parser';

export class Forest {
  /** `trees[i]` covers [starts[i], starts[i + 1]) of the text (the last one to its end). */
  constructor(readonly trees: Tree[], public starts: number[]) {}

  /** The segment holding offset `at` (the last one starting at or before it). */
  segmentAt(at: number): number {
    let lo = 0, hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= at) lo = mid; else hi = mid - 1;
    }
    return lo;
  }
}

export type Program = Tree | Forest;

/** The smallest node spanning [start, end] (rootNode.descendantForIndex); null for a span across two segments. */
export function descend(p: Program, start: number, end = start): Node | null {
  if (!(p instanceof Forest)) return p.rootNode.descendantForIndex(start, end);
  const i = p.segmentAt(start);
  if (i + 1 < p.starts.length && end > p.starts[i + 1]) return null;
  return p.trees[i].rootNode.descendantForIndex(start, end);
}

/** The first top-level statement (or comment) that ends after `at` (rootNode.firstChildForIndex). */
export function firstTop(p: Program, at: number): Node | null {
  if (!(p instanceof Forest)) return p.rootNode.firstChildForIndex(at);
  for (let i = p.segmentAt(at); i < p.trees.length; i++) {
    const n = p.trees[i].rootNode.firstChildForIndex(at);
    if (n) return n;
  }
  return null;
}

/** The top-level child after the top-level child `n` (nextSibling, across segments). */
export function nextTop(p: Program, n: Node): Node | null {
  const next = n.nextSibling;
  if (next || !(p instanceof Forest)) return next;
  for (let i = p.segmentAt(n.startIndex) + 1; i < p.trees.length; i++) {
    const first = p.trees[i].rootNode.firstChild;
    if (first) return first;
  }
  return null;
}

/** Every top-level child (rootNode.children), or only the named ones. */
export function tops(p: Program, named = false): Node[] {
  const roots = p instanceof Forest ? p.trees.map((t) => t.rootNode) : [p.rootNode];
  const out: Node[] = [];
  for (const r of roots) for (const n of named ? r.namedChildren : r.children) if (n) out.push(n);
  return out;
}

/** Whether a node is a top-level child (its parent is a module: the root, or a segment's root). */
export const isTop = (n: Node): boolean => n.parent?.type === 'module';

/** Frees the program's trees. */
export function deleteProgram(p: Program): void {
  if (p instanceof Forest) for (const t of p.trees) t.delete(); else p.delete();
}
