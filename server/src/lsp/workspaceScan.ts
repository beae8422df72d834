// The workspace scan: every code and model file of the workspace folders (the CLI's discovery), published as
// diagnostics of the files not open in the editor, kept current from watched-file events; the status counts.
import { DiagnosticSeverity, FileChangeType, type Diagnostic, type Range } from 'vscode-languageserver/node';
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { excludeMatcher } from '../config';
import { discover, sniffFile } from '../models/discovery';
import { sniffHfConfig } from '../models/hfRepo';
import type { CodeReport, ModelReport } from '../models/types';
import { diagnosticMessage, ruleDocsUrl } from '../python/ruleAdvice';
import { NotebookPositions } from '../python/notebookPositions';
import type { CodeSeverity } from '../python/rules';
import { isCodeFileName, scanCodeFile } from '../python/scanCode';
import type { ScanWorkspaceResult, StatusFile, StatusParams } from '../protocol';
import { STATUS_FILES_MAX, StatusNotification } from '../protocol';
import { toSeverity } from './diagnostics';
import { modelReport } from './modelFiles';
import { excluded, refreshAll, reloadConfig } from './settings';
import { SOURCE, uriToPath, type DiskFindings, type ServerState } from './state';

/** The workspace files to scan: the same discovery as the CLI (models/discovery.ts), by content, links followed. */
async function listFiles(root: string, isExcluded: (rel: string) => boolean, out: string[]): Promise<void> {
  const found = await discover([root], { excluded: isExcluded });
  const seen = new Set(out);
  for (const f of found.files) if (!seen.has(f.path)) { seen.add(f.path); out.push(f.path); }
}

/** Whether a changed file on disk is one the workspace scan reads (code by name, model files by content). */
async function isScannedFile(path: string): Promise<boolean> {
  if (isCodeFileName(basename(path))) return true;
  // a Hugging Face repository's config.json (JSON: no magic for sniffFile)
  if (sniffHfConfig(path)) return true;
  try { return (await sniffFile(path)).model; } catch { return false; }
}

/** Model files, not findings: a file counts once, under its verdict (as in the scanWorkspace result). Code files
 *  have their findings in Problems and are counted apart (codeFiles). */
function fileCounts(s: ServerState): { files: number; dangerous: number; caution: number; codeFiles: number } {
  let files = 0, dangerous = 0, caution = 0, codeFiles = 0;
  for (const c of s.diskFindings.values()) {
    if (!c.model) { codeFiles++; continue; }
    files++;
    if (c.model.verdict === 'dangerous') dangerous++;
    else if (c.model.verdict === 'caution') caution++;
  }
  return { files, dangerous, caution, codeFiles };
}

/** The dangerous, then the caution model files, by path, at most STATUS_FILES_MAX. */
function flaggedFiles(s: ServerState): StatusFile[] {
  const out: StatusFile[] = [];
  for (const [uri, c] of s.diskFindings) {
    const v = c.model?.verdict;
    if (v === 'dangerous' || v === 'caution') out.push({ uri, verdict: v, summary: c.model!.summary });
  }
  out.sort((a, b) => (a.verdict === b.verdict ? (a.uri < b.uri ? -1 : a.uri > b.uri ? 1 : 0) : a.verdict === 'dangerous' ? -1 : 1));
  return out.slice(0, STATUS_FILES_MAX);
}

export function sendStatus(s: ServerState, scanningNow: boolean): void {
  const { files, dangerous, caution } = fileCounts(s);
  const status: StatusParams = { dangerous, caution, scanned: files, scanning: scanningNow, files: flaggedFiles(s) };
  void s.connection.sendNotification(StatusNotification, status);
}

/** "at byte 28 (0x1c) of archive/data.pkl": where a model finding is; Problems can only show line 1 of a binary file. */
export function byteLocation(f: { offset?: number; member?: string }): string {
  if (f.offset === undefined) return f.member ? `in ${f.member}` : '';
  return `at byte ${f.offset} (0x${f.offset.toString(16)})${f.member ? ` of ${f.member}` : ''}`;
}

/** Scans one file on disk and publishes its findings, unless an open editor owns its diagnostics. */
export async function scanDiskFile(s: ServerState, path: string): Promise<void> {
  const uri = pathToFileURL(path).href;
  if (s.documents.get(uri) || s.notebooks.getNotebookDocument(uri)) return; // the open editor owns its diagnostics
  const name = basename(path);
  let diagnostics: Diagnostic[] = [];
  let counts: DiskFindings = { dangerous: 0, caution: 0 };
  if (isCodeFileName(name)) {
    let report: CodeReport;
    try {
      report = await scanCodeFile(path, s.config);
    } catch (e) {
      s.connection.console.warn(`safe-weights: ${path}: ${(e as Error).message}`);
      return;
    }
    // a notebook on disk: its findings point into the JSON file, at the code in the cell's source strings
    let nb: NotebookPositions | undefined;
    if (report.format === 'notebook') { try { nb = new NotebookPositions(readFileSync(path, 'utf8')); } catch { /* first character */ } }
    const rangeInFile = (f: CodeReport['findings'][number]): Range => {
      const st = nb && f.cell !== undefined ? nb.position(f.cell, f.line - 1, f.column - 1) : undefined;
      const e = st && f.cell !== undefined ? nb!.position(f.cell, f.endLine - 1, f.endColumn - 1) ?? st : st;
      return st && e ? { start: st, end: e } : { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
    };
    diagnostics = report.findings.map((f) => ({
      range: report.format === 'notebook'
        ? rangeInFile(f)
        : { start: { line: f.line - 1, character: f.column - 1 }, end: { line: f.endLine - 1, character: f.endColumn - 1 } },
      severity: toSeverity(f.severity as CodeSeverity), code: f.rule, source: SOURCE, codeDescription: { href: ruleDocsUrl(f.rule) },
      message: f.cell !== undefined ? `cell ${f.cell + 1}, line ${f.line}: ${diagnosticMessage(f.rule, f.message)}` : diagnosticMessage(f.rule, f.message),
    }));
    counts = { dangerous: report.findings.filter((f) => f.severity === 'dangerous').length, caution: report.findings.filter((f) => f.severity === 'caution').length };
  } else {
    let report: ModelReport;
    try {
      report = await modelReport(s, path);
    } catch (e) {
      s.connection.console.warn(`safe-weights: ${path}: ${(e as Error).message}`);
      return;
    }
    if (report.verdict === 'dangerous' || report.verdict === 'caution') {
      const order = ['dangerous', 'invalid', 'caution', 'info'];
      const worst = report.findings.slice().sort((a, b) => order.indexOf(a.severity) - order.indexOf(b.severity))[0];
      // a binary file has no lines: the range is the file's start, the message says where in the bytes
      const where = worst ? byteLocation(worst) : '';
      diagnostics = [{
        range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
        severity: report.verdict === 'dangerous' ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning,
        code: worst?.rule, source: SOURCE,
        message: where ? `${where[0].toUpperCase()}${where.slice(1)}: ${report.summary}` : report.summary,
      }];
    }
    counts = report.verdict === 'dangerous' ? { dangerous: 1, caution: 0 } : report.verdict === 'caution' ? { dangerous: 0, caution: 1 } : { dangerous: 0, caution: 0 };
    counts.model = { verdict: report.verdict, summary: report.summary };
  }
  s.diskFindings.set(uri, counts);
  s.connection.sendDiagnostics({ uri, diagnostics });
}

/** Withdraws the disk-scan diagnostics of a file (deleted, excluded, or opened in an editor). */
export function forgetDiskFile(s: ServerState, uri: string): void {
  if (s.diskFindings.delete(uri)) s.connection.sendDiagnostics({ uri, diagnostics: [] });
}

const scans = new WeakMap<ServerState, Promise<ScanWorkspaceResult>>();

/** Scans every workspace file (one scan at a time: a second call waits for the running one). */
export async function scanWorkspace(s: ServerState): Promise<ScanWorkspaceResult> {
  const running = scans.get(s);
  if (running) return running;
  const scan = (async () => {
    const progress = await s.connection.window.createWorkDoneProgress().catch(() => undefined);
    progress?.begin('Safe Weights: scanning workspace', 0, 'listing files', false);
    sendStatus(s, true);
    const isExcluded = excludeMatcher(s.config);
    const files: string[] = [];
    for (const root of s.roots) await listFiles(root, isExcluded, files);
    for (const uri of [...s.diskFindings.keys()]) {
      const p = uriToPath(uri);
      if (p && !files.includes(p)) forgetDiskFile(s, uri);
    }
    let done = 0;
    for (const f of files) {
      // Yield to the event loop between files so edits and requests are served during a long scan.
      await new Promise((r) => setImmediate(r));
      await scanDiskFile(s, f);
      done++;
      if (done % 20 === 0 || done === files.length) {
        progress?.report(Math.round((done / files.length) * 100), `${done}/${files.length} files`);
      }
    }
    progress?.done();
    sendStatus(s, false);
    return fileCounts(s);
  })();
  scans.set(s, scan);
  try {
    return await scan;
  } finally {
    scans.delete(s);
  }
}

/** Keeps the disk findings current as files change on disk (the client watches every file). */
export function listenWatchedFiles(s: ServerState): void {
  s.connection.onDidChangeWatchedFiles(async (params) => {
    let reconfigure = false;
    for (const change of params.changes) {
      const path = uriToPath(change.uri);
      if (!path) continue;
      s.models.invalidate(path);
      if (basename(path) === 'pyproject.toml' && s.roots.includes(dirname(path))) reconfigure = true;
      if (change.type === FileChangeType.Deleted) {
        forgetDiskFile(s, change.uri);
        continue;
      }
      if (!s.config.enable || excluded(s, change.uri)) continue;
      // With the automatic scan off, files from an explicit scan (safeWeights/scanWorkspace) are still kept current.
      if (!s.config.workspaceScan && !s.diskFindings.has(change.uri)) continue;
      if (!(await isScannedFile(path))) { forgetDiskFile(s, change.uri); continue; }
      await scanDiskFile(s, path);
    }
    if (reconfigure) {
      await reloadConfig(s);
      refreshAll(s);
    }
    // Open documents whose load paths point at a changed model file pick up the new verdict.
    for (const doc of s.documents.all()) s.schedule(doc.uri);
    sendStatus(s, false);
  });
}
