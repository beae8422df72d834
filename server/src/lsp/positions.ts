// Program offsets as LSP positions: in the document itself, or for a notebook in the cell that holds the offset.
import type { Range, TextEdit, WorkspaceEdit } from 'vscode-languageserver/node';
import { cellAt } from '../python/notebook';
import { LineIndex } from '../python/scanCode';
import type { ProgramState, ServerState } from './state';

/** A program offset as (uri, position) — the cell's URI for notebooks. */
export function locate(uri: string, state: ProgramState, offset: number): { uri: string; line: number; character: number } {
  const nb = state.notebook;
  if (!nb) {
    const p = (state.lines ??= new LineIndex(state.text)).position(offset);
    return { uri, ...p };
  }
  const cell = cellAt(nb.program, offset) ?? nb.program.cells[0];
  let index = nb.indexes.get(cell.index);
  if (!index) nb.indexes.set(cell.index, (index = new LineIndex(state.text.slice(cell.start, cell.start + cell.length))));
  const p = index.position(Math.min(offset, cell.start + cell.length) - cell.start);
  return { uri: nb.cellUris[cell.index], ...p };
}

export function rangeOf(uri: string, state: ProgramState, start: number, end: number): { uri: string; range: Range } {
  const s = locate(uri, state, start);
  const e = locate(uri, state, end);
  // A range never crosses cells: clip to the end of the start cell.
  const endPos = e.uri === s.uri ? { line: e.line, character: e.character } : { line: s.line, character: s.character };
  return { uri: s.uri, range: { start: { line: s.line, character: s.character }, end: endPos } };
}

/** Program-offset edits as a workspace edit (a notebook's edits go to their cells). */
export function workspaceEdit(key: string, state: ProgramState, spans: { start: number; end: number; newText: string }[]): WorkspaceEdit {
  const changes: Record<string, TextEdit[]> = {};
  for (const s of spans) {
    const r = rangeOf(key, state, s.start, s.end);
    (changes[r.uri] ??= []).push({ range: r.range, newText: s.newText });
  }
  return { changes };
}

/** The open program a document belongs to (a cell belongs to its notebook). */
export function programFor(s: ServerState, uri: string): { key: string; state: ProgramState } | undefined {
  const nb = s.notebooks.findNotebookDocumentForCell(uri);
  const key = nb ? nb.uri : uri;
  const state = s.programs.get(key);
  return state ? { key, state } : undefined;
}
