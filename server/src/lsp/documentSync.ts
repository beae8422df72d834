// Document sync: open text documents (incremental, each single change remembered for the incremental re-parse)
// and notebooks; re-analysis on change, and on close the file's disk findings back in place of the editor's.
import { NotebookDocuments, TextDocuments, type Range } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { existsSync } from 'node:fs';
import { bigDocumentSaved, dropBigDocument } from './bigFiles';
import { forgetProgram } from './diagnostics';
import { forgetPulled, pulls } from './pullDiagnostics';
import { uriToPath, type KnownEdit, type ServerState } from './state';
import { forgetDiskFile, scanDiskFile } from './workspaceScan';

/** The document stores; `lastEdit` receives each document's single incremental change. */
export function createDocuments(lastEdit: Map<string, KnownEdit>): { documents: TextDocuments<TextDocument>; notebooks: NotebookDocuments<TextDocument> } {
  const documents = new TextDocuments<TextDocument>({
    create: (uri, languageId, version, content) => TextDocument.create(uri, languageId, version, content),
    update: (doc, changes, version) => {
      lastEdit.delete(doc.uri);
      const c = changes.length === 1 ? changes[0] : undefined;
      if (c && 'range' in c && c.range) {
        const range = c.range as Range;
        const start = doc.offsetAt(range.start), oldEnd = doc.offsetAt(range.end);
        // positions normalised through offsets (a range past a line's end is clamped, as the document does)
        lastEdit.set(doc.uri, { fromVersion: doc.version, version, start, oldEnd, startPos: doc.positionAt(start), oldEndPos: doc.positionAt(oldEnd), text: c.text });
      }
      return TextDocument.update(doc, changes, version);
    },
  });
  return { documents, notebooks: new NotebookDocuments(TextDocument) };
}

/** After an editor closes a file, the workspace scan's view of it replaces the editor's: when the scan is on, or
 *  when the file was scanned before it was opened (an explicit scan with the automatic one off). On the next turn:
 *  the document stores still hold the closing document while their close event runs, and scanDiskFile leaves
 *  open documents alone. */
function rescanClosed(s: ServerState, uri: string, wasScanned: boolean): void {
  const path = uriToPath(uri);
  if (!path || !(s.config.workspaceScan || wasScanned) || !existsSync(path)) return;
  setImmediate(() => void scanDiskFile(s, path).catch((e) => s.connection.console.warn(`safe-weights: ${path}: ${(e as Error).message}`)));
}

export function listenDocuments(s: ServerState): void {
  const { documents, notebooks, connection } = s;
  // files the disk scan had published before an editor opened them
  const scannedBeforeOpen = new Set<string>();
  documents.onDidOpen((e) => {
    const uri = e.document.uri;
    if (!s.diskFindings.has(uri)) return;
    scannedBeforeOpen.add(uri);
    // the editor's findings replace the disk scan's: pushed, they overwrite them; pulled, they would show beside them
    if (pulls(s, uri)) connection.sendDiagnostics({ uri, diagnostics: [] });
  });
  documents.onDidChangeContent((e) => s.schedule(e.document.uri));
  documents.onDidSave((e) => bigDocumentSaved(s, e.document.uri));
  documents.onDidClose((e) => {
    forgetProgram(s, e.document.uri);
    dropBigDocument(e.document.uri);
    s.lastEdit.delete(e.document.uri);
    forgetPulled(s, e.document.uri);
    connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
    rescanClosed(s, e.document.uri, scannedBeforeOpen.delete(e.document.uri));
  });
  notebooks.onDidOpen((nb) => {
    // The open notebook's cells carry the findings now; drop the whole-file ones from the disk scan.
    if (s.diskFindings.has(nb.uri)) scannedBeforeOpen.add(nb.uri);
    forgetDiskFile(s, nb.uri);
    s.schedule(nb.uri);
  });
  notebooks.onDidChange((e) => s.schedule(e.notebookDocument.uri));
  notebooks.onDidClose((nb) => {
    forgetProgram(s, nb.uri);
    for (const cell of nb.cells) connection.sendDiagnostics({ uri: cell.document, diagnostics: [] });
    rescanClosed(s, nb.uri, scannedBeforeOpen.delete(nb.uri));
  });
  documents.listen(connection);
  notebooks.listen(connection);
}
