// Joins the code cells of a notebook into one program (an import in cell 1 resolves a call in cell 5) and maps
// program offsets back to cells. Markdown cells are kept as placeholders so cell indices stay the notebook's.
import { maskMagics } from './magics';

export interface NotebookCellText {
  kind: 'code' | 'markdown' | 'raw';
  text: string;
}

export interface CellSpan {
  index: number;   // index of the cell in the notebook (all kinds count)
  start: number;   // offset of the cell's first character in the program
  length: number;
}

export interface NotebookProgram {
  text: string;        // masked program text
  cells: CellSpan[];   // code cells only, in order
}

export function buildProgram(cells: NotebookCellText[]): NotebookProgram {
  const parts: string[] = [];
  const spans: CellSpan[] = [];
  let offset = 0;
  cells.forEach((cell, index) => {
    if (cell.kind !== 'code') return;
    const masked = maskMagics(cell.text);
    spans.push({ index, start: offset, length: masked.length });
    parts.push(masked);
    offset += masked.length + 1;
  });
  return { text: parts.join('\n'), cells: spans };
}

/** Cell that contains a program offset (the separator newline belongs to the cell before it). */
export function cellAt(program: NotebookProgram, offset: number): CellSpan | undefined {
  let lo = 0;
  let hi = program.cells.length - 1;
  let found: CellSpan | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (program.cells[mid].start <= offset) {
      found = program.cells[mid];
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Reads the cells of a .ipynb file (nbformat 4; `source` is a string or a list of lines). */
export function parseIpynb(json: string): NotebookCellText[] {
  const nb = JSON.parse(json) as { cells?: { cell_type?: string; source?: string | string[] }[] };
  if (!nb || !Array.isArray(nb.cells)) throw new Error('not a Jupyter notebook (no cells array)');
  return nb.cells.map((c) => ({
    kind: c.cell_type === 'code' ? 'code' : c.cell_type === 'markdown' ? 'markdown' : 'raw',
    text: Array.isArray(c.source) ? c.source.join('') : typeof c.source === 'string' ? c.source : '',
  }));
}
