// Document sync: open text documents (incremental, each single change remembered for the incremental re-parse)
// and notebooks; re-analysis on change, and on close the file's disk findings back in place of the editor's.
import { NotebookDocuments, TextDocuments, type Range } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { existsSync } from 'node:fs';
import { forgetProgram } from './diagnostics';
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

/** After an editor closes a file, the workspace scan's view of it (when the scan is on) replaces the editor's. */
function rescanClosed(s: ServerState, uri: string): void {
  const path = uriToPath(uri);
  if (path && s.config.workspaceScan && existsSync(path)) void scanDiskFile(s, path);
}

export function listenDocuments(s: ServerState): void {
  const { documents, notebooks, connection } = s;
  documents.onDidChangeContent((e) => s.schedule(e.document.uri));
  documents.onDidClose((e) => {
    forgetProgram(s, e.document.uri);
    s.lastEdit.delete(e.document.uri);
    connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
    rescanClosed(s, e.document.uri);
  });
  notebooks.onDidOpen((nb) => {
    // The open notebook's cells carry the findings now; drop the whole-file ones from the disk scan.
    forgetDiskFile(s, nb.uri);
    s.schedule(nb.uri);
  });
  notebooks.onDidChange((e) => s.schedule(e.notebookDocument.uri));
  notebooks.onDidClose((nb) => {
    forgetProgram(s, nb.uri);
    for (const cell of nb.cells) connection.sendDiagnostics({ uri: cell.document, diagnostics: [] });
    rescanClosed(s, nb.uri);
  });
  documents.listen(connection);
  notebooks.listen(connection);
}
