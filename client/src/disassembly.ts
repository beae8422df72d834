// Read-only virtual documents with a model file's pickle disassembly or decompiled view.
// URI: safe-weights-disasm:/<file name>.pickledis?view=disassembly&uri=<encoded model uri>
import * as vscode from 'vscode';
import type { DisassemblyResult } from '../../server/src/protocol';
import { lineOfOffset } from './disassemblyLocate';

export const DISASSEMBLY_SCHEME = 'safe-weights-disasm';
export type DisassemblyView = 'disassembly' | 'decompiled';

export function disassemblyUri(model: vscode.Uri, view: DisassemblyView): vscode.Uri {
  const base = model.path.split('/').pop() || 'model';
  const ext = view === 'disassembly' ? '.pickledis' : '.decompiled.py.txt';
  const query = new URLSearchParams({ view, uri: model.toString() }).toString();
  return vscode.Uri.from({ scheme: DISASSEMBLY_SCHEME, path: `/${base}${ext}`, query });
}

export class DisassemblyProvider implements vscode.TextDocumentContentProvider {
  constructor(private readonly fetch: (uri: string) => Promise<DisassemblyResult>) {}

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const q = new URLSearchParams(uri.query);
    const model = q.get('uri');
    if (!model) return '; no model file given';
    try {
      const r = await this.fetch(model);
      const body = q.get('view') === 'decompiled' ? r.decompiled : r.text;
      return r.truncated ? `${body}\n; … output truncated (file too large to show in full)\n` : body;
    } catch (e) {
      return `; Safe Weights could not disassemble ${model}:\n; ${e instanceof Error ? e.message : String(e)}\n`;
    }
  }
}

/** Where to open the disassembly: the opcode at `offset` of the pickle in `member` (or of the file). */
export interface OpcodeAt { offset: number; member?: string }

let highlight: vscode.TextEditorDecorationType | undefined;

/** The opcode's line is selected, scrolled to the centre and highlighted (until the next offset link is followed). */
function showOpcode(editor: vscode.TextEditor, at: OpcodeAt): boolean {
  const line = lineOfOffset(editor.document.getText(), at.offset, at.member);
  if (line === undefined) return false;
  const range = editor.document.lineAt(line).range;
  editor.selection = new vscode.Selection(range.start, range.end);
  editor.revealRange(range, vscode.TextEditorRevealType.InCenter);
  highlight ??= vscode.window.createTextEditorDecorationType({
    isWholeLine: true,
    backgroundColor: new vscode.ThemeColor('editor.rangeHighlightBackground'),
    borderColor: new vscode.ThemeColor('editor.findMatchBorder'),
    borderStyle: 'solid', borderWidth: '1px 0',
    overviewRulerColor: new vscode.ThemeColor('editorOverviewRuler.findMatchForeground'),
  });
  editor.setDecorations(highlight, [range]);
  return true;
}

export async function openDisassembly(model: vscode.Uri, view: DisassemblyView, at?: OpcodeAt): Promise<vscode.TextEditor> {
  const doc = await vscode.workspace.openTextDocument(disassemblyUri(model, at ? 'disassembly' : view));
  const lang = 'pickle-disassembly'; // the grammar covers both the opcode listing and the decompiled view
  const typed = doc.languageId === lang ? doc : await vscode.languages.setTextDocumentLanguage(doc, lang);
  const editor = await vscode.window.showTextDocument(typed, { preview: true, viewColumn: vscode.ViewColumn.Beside });
  if (at && !showOpcode(editor, at)) {
    void vscode.window.showInformationMessage(`Safe Weights: offset ${at.offset}${at.member ? ` of ${at.member}` : ''} is not an opcode of the disassembly shown.`);
  }
  return editor;
}
