// Maps a position inside a notebook cell (line/column of the cell's source, as the rules report it) to the
// line/column in the .ipynb file's JSON text, so findings of a notebook that is not open in the editor point
// at the code in the file instead of its first character. Uses jsonc-parser for the offsets of each source
// string, then walks the string literal's escapes by hand (JSON escapes are few and fixed).
import { parseTree, findNodeAtLocation, type Node as JsonNode } from 'jsonc-parser';

export interface FilePosition { line: number; character: number }

export class NotebookPositions {
  private readonly sources: (JsonNode | undefined)[] = [];
  private readonly lineStarts: number[] = [0];

  constructor(private readonly text: string) {
    const root = parseTree(text);
    const cells = root && findNodeAtLocation(root, ['cells']);
    for (const cell of cells?.children ?? []) this.sources.push(findNodeAtLocation(cell, ['source']));
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.lineStarts.push(i + 1);
  }

  /** File position of (line, column) — both 0-based — in cell `cell`'s source, or undefined if not found. */
  position(cell: number, line: number, column: number): FilePosition | undefined {
    const src = this.sources[cell];
    if (!src) return undefined;
    const strings = src.type === 'array' ? (src.children ?? []).filter((c) => c.type === 'string') : src.type === 'string' ? [src] : [];
    let l = 0, c = 0;
    for (const s of strings) {
      // raw literal without its quotes
      const end = s.offset + s.length - 1;
      for (let i = s.offset + 1; i < end;) {
        if (l === line && c === column) return this.toFile(i);
        let ch: string;
        if (this.text[i] === '\\') {
          const e = this.text[i + 1];
          if (e === 'u') { ch = String.fromCharCode(parseInt(this.text.slice(i + 2, i + 6), 16)); i += 6; } else { ch = e === 'n' ? '\n' : e; i += 2; }
        } else { ch = this.text[i]; i += 1; }
        if (ch === '\n') { if (l === line) return this.toFile(i - (this.text[i - 2] === '\\' ? 2 : 1)); l++; c = 0; } else c++;
      }
      if (l === line && c === column) return this.toFile(end);
    }
    return undefined;
  }

  private toFile(offset: number): FilePosition {
    let lo = 0, hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= offset) lo = mid; else hi = mid - 1;
    }
    return { line: lo, character: offset - this.lineStarts[lo] };
  }
}
