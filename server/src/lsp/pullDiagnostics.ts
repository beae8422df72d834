// Pull diagnostics (textDocument/diagnostic) for open Python documents, when the client supports them (VS Code's
// client does). The client asks after each change and gets either the findings or "unchanged" (the resultId it
// sent is still current), so a keystroke that leaves 1,666 findings where they were sends a few bytes instead of
// all of them, and neither side builds, encodes or decodes them. Notebook cells, dependency files, model files
// and files on disk are still pushed (publishDiagnostics).
import type { Diagnostic, DocumentDiagnosticReport, DocumentSelector } from 'vscode-languageserver/node';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { ServerState } from './state';

/** The documents the client pulls for: the registration's selector, and the test the server applies to a URI. */
export const PULLED_SELECTOR: DocumentSelector = [{ scheme: 'file', language: 'python' }, { scheme: 'untitled', language: 'python' }];
const isPulled = (doc: TextDocument): boolean => doc.languageId === 'python' && /^(?:file|untitled):/.test(doc.uri);

/** Whether the client pulls this document's diagnostics (then nothing may be pushed for it: both would show). */
export function pulls(s: ServerState, uri: string): boolean {
  const doc = s.documents.get(uri);
  return s.client.pullDiagnostics && !!doc && isPulled(doc);
}

/**
 * The diagnostics of an open text document at `version`: pushed, or kept for the client's next pull. A result
 * equal to the last one keeps its resultId, so the pull answers "unchanged". A changed result for a version the
 * client has already pulled (a re-analysis after a workspace scan or a settings change, say) asks the client to
 * pull again.
 */
export function deliverDocument(s: ServerState, uri: string, version: number, items: Diagnostic[]): void {
  if (!pulls(s, uri)) {
    s.connection.sendDiagnostics({ uri, version, diagnostics: items });
    return;
  }
  const p = s.pulled;
  const last = p.results.get(uri);
  const same = !!last && sameDiagnostics(last.items, items);
  p.results.set(uri, { resultId: same ? last!.resultId : String(p.nextId++), version, items });
  if (!same && p.answered.get(uri) === version) requestRefresh(s);
}

function requestRefresh(s: ServerState): void {
  const p = s.pulled;
  if (!s.client.refreshDiagnostics || p.refreshQueued) return;
  p.refreshQueued = true;
  setImmediate(() => {
    p.refreshQueued = false;
    s.connection.languages.diagnostics.refresh();
  });
}

/** Diagnostics reused from the last analysis are the same objects (diagnostics.ts keeps them); others compared by value. */
function sameDiagnostics(a: Diagnostic[], b: Diagnostic[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && JSON.stringify(a[i]) !== JSON.stringify(b[i])) return false;
  return true;
}

/** Forgets a closed document's results (the client drops its pulled diagnostics on close). */
export function forgetPulled(s: ServerState, uri: string): void {
  s.pulled.results.delete(uri);
  s.pulled.answered.delete(uri);
}

/** Answers textDocument/diagnostic once the document's pending analysis (if any) has run. */
export function listenPullDiagnostics(s: ServerState): void {
  s.connection.languages.diagnostics.on(async (params): Promise<DocumentDiagnosticReport> => {
    const uri = params.textDocument.uri;
    // each change schedules an analysis as it arrives, before this request is read: wait for the latest
    for (let pending = s.analyzing.get(uri); pending; pending = s.analyzing.get(uri)) await pending;
    const doc = s.documents.get(uri);
    if (!doc || !pulls(s, uri)) return { kind: 'full', items: [] };
    const p = s.pulled;
    // (a big document's findings come later, from its worker: delivered for this version, they ask for a pull)
    p.answered.set(uri, doc.version);
    const result = p.results.get(uri);
    if (!result) return { kind: 'full', items: [] };
    return params.previousResultId === result.resultId
      ? { kind: 'unchanged', resultId: result.resultId }
      : { kind: 'full', resultId: result.resultId, items: result.items };
  });
}
