// The Safe Weights language server: unsafe-load diagnostics and quick-fixes for Python files and notebook
// cells, dependency pins, the workspace scan (code and model files) and the custom safeWeights/* requests.
// Started as `node dist/server.js --stdio` or over IPC (--node-ipc) by the VS Code client.
import {
  MessageType, ShowMessageNotification,
  createConnection, ProposedFeatures, TextDocuments, NotebookDocuments, TextDocumentSyncKind, DiagnosticSeverity,
  CodeActionKind, DidChangeWatchedFilesNotification, FileChangeType, ResponseError, ErrorCodes,
  type Diagnostic, type CodeAction, type TextEdit, type WorkspaceEdit, type NotebookDocument, type Connection,
  type DiagnosticRelatedInformation, type Range, type InitializeResult,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { discover, sniffFile } from './models/discovery';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import {
  ModelReportRequest, DisassemblyRequest, ScanWorkspaceRequest, StatusNotification, ConvertRequest,
  type ModelReportParams, type DisassemblyParams, type ScanWorkspaceResult, type ConvertParams, type SafeWeightsSettings,
  type StatusParams, type ConvertResult,
} from './protocol';
import type { ModelReport, CodeReport } from './models/types';
import { defaultConfig, excludeMatcher, levelFor, loadConfig, withSettings, type LoadedConfig } from './config';
import { getParser, parseSync, editTree, editTreeAt, type Tree } from './python/parser';
import { analyzePython, analyzePythonAfterEdit, type CodeIssue } from './python/analyze';
import { NotebookPositions } from './python/notebookPositions';
import { buildProgram, cellAt, type NotebookProgram } from './python/notebook';
import { checkPyproject, checkRequirementsTxt } from './python/deps';
import { codeFormat, isCodeFileName, LineIndex, scanCodeFile } from './python/scanCode';
import type { CodeSeverity } from './python/rules';
import { modelEngine, convertToSafetensors, ConvertRefused, ConvertCancelled } from './python/engines';

const FIX_ALL_KIND = 'source.fixAll.safeWeights';
const SOURCE = 'safe-weights';

const connection: Connection = createConnection(ProposedFeatures.all);
// The single change of an incremental didChange (typing), kept so the parse tree is told exactly what changed
// instead of diffing the old and new texts (a full pass over big files on every keystroke).
interface KnownEdit { fromVersion: number; version: number; start: number; oldEnd: number; startPos: { line: number; character: number }; oldEndPos: { line: number; character: number }; text: string }
const lastEdit = new Map<string, KnownEdit>();
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
const notebooks = new NotebookDocuments(TextDocument);

let projectConfig: LoadedConfig = defaultConfig();
let settings: Partial<SafeWeightsSettings> | undefined;
let config: LoadedConfig = defaultConfig();
let roots: string[] = [];
let canPullConfig = false;
let canWatchDynamically = false;
let hasFolderEvents = false;

/** Parse state and last analysis of one program: a Python document or a notebook's code cells. */
interface ProgramState {
  text: string;
  tree?: Tree;
  issues: CodeIssue[];
  notebook?: { program: NotebookProgram; cellUris: string[]; indexes: Map<number, LineIndex> };
  lines?: { position(offset: number): { line: number; character: number } };
  /** Document version of `text`, the version `issues` were computed for, and the option they used. */
  version?: number;
  analyzed?: number;
  honorNosec?: boolean;
  /** Ranges whose syntax changed in the last re-parse (when the change was known exactly), and the tree before it. */
  changed?: { startIndex: number; endIndex: number }[];
  oldTree?: Tree;
}
const programs = new Map<string, ProgramState>();
/** Diagnostics published from disk scans (files not open in the editor), by URI. */
const diskFindings = new Map<string, { dangerous: number; caution: number }>();
const modelCache = new Map<string, { mtime: number; allow: string; report: ModelReport }>();

const toSeverity = (s: CodeSeverity): DiagnosticSeverity =>
  s === 'dangerous' ? DiagnosticSeverity.Error : s === 'caution' ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information;

function uriToPath(uri: string): string | undefined {
  try {
    return uri.startsWith('file:') ? fileURLToPath(uri) : undefined;
  } catch {
    return undefined;
  }
}

connection.onInitialize((params): InitializeResult => {
  canPullConfig = !!params.capabilities.workspace?.configuration;
  canWatchDynamically = !!params.capabilities.workspace?.didChangeWatchedFiles?.dynamicRegistration;
  hasFolderEvents = !!params.capabilities.workspace?.workspaceFolders;
  const folders = params.workspaceFolders?.map((f) => f.uri) ?? (params.rootUri ? [params.rootUri] : []);
  roots = folders.map(uriToPath).filter((p): p is string => !!p);
  return {
    capabilities: {
      textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental, save: { includeText: false } },
      notebookDocumentSync: {
        notebookSelector: [{ notebook: { notebookType: 'jupyter-notebook' }, cells: [{ language: 'python' }] }],
        save: true,
      },
      codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix, FIX_ALL_KIND], resolveProvider: false },
      executeCommandProvider: { commands: [CONVERT_AND_REWRITE] },
      workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
    },
    serverInfo: { name: 'safe-weights' },
  };
});

connection.onInitialized(async () => {
  if (canWatchDynamically) {
    await connection.client.register(DidChangeWatchedFilesNotification.type, {
      // every file: model files are recognised by their content, whatever their name
      watchers: [{ globPattern: '**/*' }],
    }).catch(() => undefined);
  }
  if (hasFolderEvents) connection.workspace.onDidChangeWorkspaceFolders(async (e) => {
    const removed = new Set(e.removed.map((f) => uriToPath(f.uri)));
    roots = [...roots.filter((r) => !removed.has(r)), ...e.added.map((f) => uriToPath(f.uri)).filter((p): p is string => !!p)];
    await reloadConfig();
    if (config.enable && config.workspaceScan) void scanWorkspace();
  });
  await reloadConfig();
  if (config.enable && config.workspaceScan) void scanWorkspace();
});

async function reloadConfig(): Promise<void> {
  projectConfig = defaultConfig();
  for (const root of roots) {
    try {
      projectConfig = await loadConfig(root);
      if (projectConfig.source) break;
    } catch (e) {
      connection.console.warn(String((e as Error).message));
    }
  }
  if (canPullConfig) {
    try {
      settings = (await connection.workspace.getConfiguration('safeWeights')) as Partial<SafeWeightsSettings> | undefined;
    } catch {
      // The client may not answer configuration requests; keep what we had.
    }
  }
  config = withSettings(projectConfig, settings);
}

connection.onDidChangeConfiguration(async (change) => {
  const pushed = (change.settings as { safeWeights?: Partial<SafeWeightsSettings> } | undefined)?.safeWeights;
  if (pushed) settings = pushed;
  await reloadConfig();
  refreshAll();
});

function refreshAll(): void {
  for (const doc of documents.all()) schedule(doc.uri);
  for (const uri of programs.keys()) if (notebooks.getNotebookDocument(uri)) schedule(uri);
}

// ---- analysis ----------------------------------------------------------------------------------------------

const pending = new Set<string>();
function schedule(uri: string): void {
  if (pending.has(uri)) return;
  pending.add(uri);
  setImmediate(() => {
    pending.delete(uri);
    void analyze(uri).catch((e) => connection.console.error(`safe-weights: ${uri}: ${(e as Error).stack ?? e}`));
  });
}

let matcher: { cfg: LoadedConfig; match: (rel: string) => boolean } | undefined;
function excluded(uri: string): boolean {
  const path = uriToPath(uri);
  if (!path || roots.length === 0) return false;
  if (matcher?.cfg !== config) matcher = { cfg: config, match: excludeMatcher(config) };
  const isExcluded = matcher.match;
  return roots.some((r) => {
    const rel = relative(r, path);
    return !rel.startsWith('..') && !isAbsolute(rel) && isExcluded(rel.split(sep).join('/'));
  });
}

async function analyze(uri: string): Promise<void> {
  const nb = notebooks.getNotebookDocument(uri);
  if (nb) return analyzeNotebook(nb);
  const doc = documents.get(uri);
  if (!doc) return;
  if (!config.enable || excluded(uri)) {
    connection.sendDiagnostics({ uri, diagnostics: [] });
    return;
  }
  const format = codeFormat(uriToPath(uri) ?? uri) ?? (doc.languageId === 'python' ? 'python' : undefined);
  if (format === 'requirements' || format === 'pyproject') {
    const pins = format === 'requirements' ? checkRequirementsTxt(doc.getText()) : checkPyproject(doc.getText());
    const diagnostics: Diagnostic[] = [];
    for (const p of pins) {
      const severity = levelFor(config, p.rule, p.severity);
      if (!severity) continue;
      diagnostics.push({ range: { start: { line: p.line, character: p.column }, end: { line: p.line, character: p.endColumn } },
        severity: toSeverity(severity), code: p.rule, source: SOURCE, message: p.message });
    }
    connection.sendDiagnostics({ uri, version: doc.version, diagnostics });
    return;
  }
  if (format !== 'python' && doc.languageId !== 'python') return;
  const edit = lastEdit.get(uri);
  const before = programs.get(uri);
  // the recorded change applies only when it leads from the version we parsed last to this one
  const known = edit && edit.version === doc.version && before?.version === edit.fromVersion ? edit : undefined;
  const prev = known && before?.analyzed === before?.version && before?.honorNosec === config.honorNosec
    ? { text: before!.text, issues: before!.issues } : undefined;
  const state = await reparse(uri, doc.getText(), known);
  state.version = doc.version;
  const opts = { honorNosec: config.honorNosec };
  let issues: CodeIssue[] | undefined;
  if (prev && known && state.changed) {
    const change = { start: known.start, oldEnd: known.oldEnd, newEnd: known.start + known.text.length };
    // a reused finding's on-demand edits are rebuilt from a fresh analysis of the program as it is then
    const refresh = (start: number, rule: string) => analyzePython(state.tree!, state.text, opts).find((i) => i.start === start && i.rule === rule);
    if (state.oldTree) issues = analyzePythonAfterEdit(prev, state.oldTree, state.tree!, state.text, change, state.changed, opts, refresh);
  }
  state.oldTree?.delete();
  state.oldTree = undefined;
  state.issues = issues ?? analyzePython(state.tree!, state.text, opts);
  state.analyzed = state.version;
  state.honorNosec = config.honorNosec;
  // positions come from the document's own line table (kept up to date by each change)
  state.lines = { position: (offset: number) => doc.positionAt(offset) };
  publishFor(uri, state, doc.version);
}

async function reparse(uri: string, text: string, change?: KnownEdit): Promise<ProgramState> {
  const parser = await getParser();
  let state = programs.get(uri);
  if (!state) {
    state = { text, tree: parseSync(parser, text), issues: [] };
    programs.set(uri, state);
    return state;
  }
  if (state.text !== text || !state.tree) {
    const old = state.tree;
    state.changed = undefined;
    if (old && change) editTreeAt(old, change.start, change.oldEnd, change.text, change.startPos, change.oldEndPos);
    else if (old) editTree(old, state.text, text);
    state.tree = parseSync(parser, text, old);
    state.oldTree?.delete();
    state.oldTree = undefined;
    // with a known change the old tree lives until the analysis has compared the edited statements
    if (old && change) { state.changed = state.tree.getChangedRanges(old); state.oldTree = old; } else old?.delete();
    state.text = text;
  }
  return state;
}

function notebookProgram(nb: NotebookDocument): { program: NotebookProgram; cellUris: string[] } {
  const cellUris: string[] = [];
  const cells = nb.cells.map((cell) => {
    const doc = notebooks.getCellTextDocument(cell);
    cellUris.push(cell.document);
    const code = cell.kind === 2 && (!doc || doc.languageId === 'python');
    return { kind: code ? 'code' as const : 'markdown' as const, text: doc?.getText() ?? '' };
  });
  return { program: buildProgram(cells), cellUris };
}

async function analyzeNotebook(nb: NotebookDocument): Promise<void> {
  const { program, cellUris } = notebookProgram(nb);
  const state = await reparse(nb.uri, program.text);
  const previous = state.notebook?.cellUris ?? [];
  state.notebook = { program, cellUris, indexes: new Map() };
  state.issues = config.enable && !excluded(nb.uri)
    ? analyzePython(state.tree!, state.text, { honorNosec: config.honorNosec, cellStarts: program.cells.map((c) => c.start) })
    : [];
  publishFor(nb.uri, state);
  for (const uri of previous) if (!cellUris.includes(uri)) connection.sendDiagnostics({ uri, diagnostics: [] });
}

/** A program offset as (uri, position) — the cell's URI for notebooks. */
function locate(uri: string, state: ProgramState, offset: number): { uri: string; line: number; character: number } {
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

function rangeOf(uri: string, state: ProgramState, start: number, end: number): { uri: string; range: Range } {
  const s = locate(uri, state, start);
  const e = locate(uri, state, end);
  // A range never crosses cells: clip to the end of the start cell.
  const endPos = e.uri === s.uri ? { line: e.line, character: e.character } : { line: s.line, character: s.character };
  return { uri: s.uri, range: { start: { line: s.line, character: s.character }, end: endPos } };
}

function diagnosticFor(uri: string, state: ProgramState, issue: CodeIssue): { uri: string; diagnostic: Diagnostic } | undefined {
  const severity = levelFor(config, issue.rule, issue.severity);
  if (!severity) return undefined;
  const at = rangeOf(uri, state, issue.start, issue.end);
  const diagnostic: Diagnostic = {
    range: at.range, severity: toSeverity(severity), code: issue.rule, source: SOURCE, message: issue.message,
  };
  const related = crossReference(uri, issue);
  if (related) diagnostic.relatedInformation = [related];
  return { uri: at.uri, diagnostic };
}

function publishFor(uri: string, state: ProgramState, version?: number): void {
  const byUri = new Map<string, Diagnostic[]>();
  if (state.notebook) for (const cellUri of state.notebook.cellUris) byUri.set(cellUri, []);
  else byUri.set(uri, []);
  for (const issue of state.issues) {
    const d = diagnosticFor(uri, state, issue);
    if (d) byUri.get(d.uri)?.push(d.diagnostic);
  }
  for (const [target, diagnostics] of byUri) {
    connection.sendDiagnostics({ uri: target, version: target === uri ? version : undefined, diagnostics });
  }
}

documents.onDidChangeContent((e) => schedule(e.document.uri));
documents.onDidClose((e) => {
  programs.get(e.document.uri)?.tree?.delete();
  programs.delete(e.document.uri);
  connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  const path = uriToPath(e.document.uri);
  if (path && config.workspaceScan && existsSync(path)) void scanDiskFile(path);
});
notebooks.onDidOpen((nb) => {
  // The open notebook's cells carry the findings now; drop the whole-file ones from the disk scan.
  forgetDiskFile(nb.uri);
  schedule(nb.uri);
});
notebooks.onDidChange((e) => schedule(e.notebookDocument.uri));
notebooks.onDidClose((nb) => {
  const state = programs.get(nb.uri);
  state?.tree?.delete();
  programs.delete(nb.uri);
  for (const cell of nb.cells) connection.sendDiagnostics({ uri: cell.document, diagnostics: [] });
  const path = uriToPath(nb.uri);
  if (path && config.workspaceScan && existsSync(path)) void scanDiskFile(path);
});

// ---- model-file cross-reference ----------------------------------------------------------------------------

function modelPathFor(docUri: string, value: string): string | undefined {
  if (value.length > 4096) return undefined;
  const docPath = uriToPath(docUri);
  const candidates = isAbsolute(value) ? [value] : [...(docPath ? [join(dirname(docPath), value)] : []), ...roots.map((r) => join(r, value))];
  for (const c of candidates) if (recentStat(c)?.isFile) return resolve(c);
  return undefined;
}

// Diagnostics are rebuilt on every keystroke; a file's mtime is re-read at most once a second (watched-file
// events clear it sooner), so a document with many load calls does not stat the disk for each of them.
const mtimes = new Map<string, { stat: { isFile: boolean; mtime: number } | undefined; at: number }>();
function recentStat(path: string): { isFile: boolean; mtime: number } | undefined {
  const now = Date.now();
  const hit = mtimes.get(path);
  if (hit && now - hit.at < 1000) return hit.stat;
  let st: { isFile: boolean; mtime: number } | undefined;
  try {
    const s = statSync(path, { throwIfNoEntry: false });   // no exception for the common "not there"
    st = s ? { isFile: s.isFile(), mtime: s.mtimeMs } : undefined;
  } catch { st = undefined; }
  if (mtimes.size > 10_000) mtimes.clear();
  mtimes.set(path, { stat: st, at: now });
  return st;
}
function recentMtime(path: string): number | undefined { return recentStat(path)?.mtime; }

function crossReference(docUri: string, issue: CodeIssue): DiagnosticRelatedInformation | undefined {
  if (!issue.path) return undefined;
  const path = modelPathFor(docUri, issue.path.value);
  if (!path) return undefined;
  const cached = modelCache.get(path);
  const mtime = recentMtime(path);
  if (mtime === undefined) return undefined;
  if (!cached || cached.mtime !== mtime) {
    void modelReport(path).then(() => schedule(docUri)).catch(() => undefined);
    return undefined;
  }
  const r = cached.report;
  return {
    location: { uri: pathToFileURL(path).href, range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } } },
    message: `${basename(path)} (${r.verdict}): ${r.summary}`,
  };
}

async function modelReport(path: string, sha256?: boolean): Promise<ModelReport> {
  const engine = modelEngine();
  const mtime = statSync(path).mtimeMs;
  const allow = config.allowGlobals.join('\n');
  const cached = modelCache.get(path);
  if (cached && cached.mtime === mtime && cached.allow === allow && !sha256) return cached.report;
  const report = await engine.scanModelFile(path, { sha256: sha256 ? true : undefined, allowGlobals: config.allowGlobals });
  modelCache.set(path, { mtime, allow, report });
  return report;
}

// ---- workspace scan ----------------------------------------------------------------------------------------

let scanning: Promise<ScanWorkspaceResult> | undefined;

/** The workspace files to scan: the same discovery as the CLI (models/discovery.ts), by content, links followed. */
async function listFiles(root: string, isExcluded: (rel: string) => boolean, out: string[]): Promise<void> {
  const found = await discover([root], { excluded: isExcluded });
  const seen = new Set(out);
  for (const f of found.files) if (!seen.has(f.path)) { seen.add(f.path); out.push(f.path); }
}

/** Whether a changed file on disk is one the workspace scan reads (code by name, model files by content). */
async function isScannedFile(path: string): Promise<boolean> {
  if (isCodeFileName(basename(path))) return true;
  try { return (await sniffFile(path)).model; } catch { return false; }
}

function sendStatus(scanningNow: boolean): void {
  let dangerous = 0;
  let caution = 0;
  // Files, not findings: a file counts once, under its worst finding (as in the scanWorkspace result).
  for (const c of diskFindings.values()) {
    if (c.dangerous) dangerous++;
    else if (c.caution) caution++;
  }
  const status: StatusParams = { dangerous, caution, scanned: diskFindings.size, scanning: scanningNow };
  void connection.sendNotification(StatusNotification, status);
}

async function scanDiskFile(path: string): Promise<void> {
  const uri = pathToFileURL(path).href;
  if (documents.get(uri) || notebooks.getNotebookDocument(uri)) return; // the open editor owns its diagnostics
  const name = basename(path);
  let diagnostics: Diagnostic[] = [];
  let counts = { dangerous: 0, caution: 0 };
  if (isCodeFileName(name)) {
    let report: CodeReport;
    try {
      report = await scanCodeFile(path, config);
    } catch (e) {
      connection.console.warn(`safe-weights: ${path}: ${(e as Error).message}`);
      return;
    }
    // a notebook on disk: its findings point into the JSON file, at the code in the cell's source strings
    let nb: NotebookPositions | undefined;
    if (report.format === 'notebook') { try { nb = new NotebookPositions(readFileSync(path, 'utf8')); } catch { /* first character */ } }
    const rangeInFile = (f: CodeReport['findings'][number]): Range => {
      const s = nb && f.cell !== undefined ? nb.position(f.cell, f.line - 1, f.column - 1) : undefined;
      const e = s && f.cell !== undefined ? nb!.position(f.cell, f.endLine - 1, f.endColumn - 1) ?? s : s;
      return s && e ? { start: s, end: e } : { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
    };
    diagnostics = report.findings.map((f) => ({
      range: report.format === 'notebook'
        ? rangeInFile(f)
        : { start: { line: f.line - 1, character: f.column - 1 }, end: { line: f.endLine - 1, character: f.endColumn - 1 } },
      severity: toSeverity(f.severity as CodeSeverity), code: f.rule, source: SOURCE,
      message: f.cell !== undefined ? `cell ${f.cell + 1}, line ${f.line}: ${f.message}` : f.message,
    }));
    counts = { dangerous: report.findings.filter((f) => f.severity === 'dangerous').length, caution: report.findings.filter((f) => f.severity === 'caution').length };
  } else {
    let report: ModelReport;
    try {
      report = await modelReport(path);
    } catch (e) {
      connection.console.warn(`safe-weights: ${path}: ${(e as Error).message}`);
      return;
    }
    if (report.verdict === 'dangerous' || report.verdict === 'caution') {
      const order = ['dangerous', 'invalid', 'caution', 'info'];
      const worst = report.findings.slice().sort((a, b) => order.indexOf(a.severity) - order.indexOf(b.severity))[0];
      diagnostics = [{
        range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
        severity: report.verdict === 'dangerous' ? DiagnosticSeverity.Error : DiagnosticSeverity.Warning,
        code: worst?.rule, source: SOURCE, message: report.summary,
      }];
      counts = report.verdict === 'dangerous' ? { dangerous: 1, caution: 0 } : { dangerous: 0, caution: 1 };
    }
  }
  diskFindings.set(uri, counts);
  connection.sendDiagnostics({ uri, diagnostics });
}

function forgetDiskFile(uri: string): void {
  if (diskFindings.delete(uri)) connection.sendDiagnostics({ uri, diagnostics: [] });
}

async function scanWorkspace(): Promise<ScanWorkspaceResult> {
  if (scanning) return scanning;
  scanning = (async () => {
    const progress = await connection.window.createWorkDoneProgress().catch(() => undefined);
    progress?.begin('Safe Weights: scanning workspace', 0, 'listing files', false);
    sendStatus(true);
    const isExcluded = excludeMatcher(config);
    const files: string[] = [];
    for (const root of roots) await listFiles(root, isExcluded, files);
    for (const uri of [...diskFindings.keys()]) {
      const p = uriToPath(uri);
      if (p && !files.includes(p)) forgetDiskFile(uri);
    }
    let done = 0;
    for (const f of files) {
      // Yield to the event loop between files so edits and requests are served during a long scan.
      await new Promise((r) => setImmediate(r));
      await scanDiskFile(f);
      done++;
      if (done % 20 === 0 || done === files.length) {
        progress?.report(Math.round((done / files.length) * 100), `${done}/${files.length} files`);
      }
    }
    progress?.done();
    sendStatus(false);
    let dangerous = 0;
    let caution = 0;
    for (const c of diskFindings.values()) {
      if (c.dangerous) dangerous++;
      else if (c.caution) caution++;
    }
    return { files: files.length, dangerous, caution };
  })();
  try {
    return await scanning;
  } finally {
    scanning = undefined;
  }
}

connection.onDidChangeWatchedFiles(async (params) => {
  let reconfigure = false;
  for (const change of params.changes) {
    const path = uriToPath(change.uri);
    if (!path) continue;
    mtimes.delete(path);
    if (basename(path) === 'pyproject.toml' && roots.includes(dirname(path))) reconfigure = true;
    if (change.type === FileChangeType.Deleted) {
      forgetDiskFile(change.uri);
      modelCache.delete(path);
      continue;
    }
    if (!config.enable || excluded(change.uri)) continue;
    // With the automatic scan off, files from an explicit scan (safeWeights/scanWorkspace) are still kept current.
    if (!config.workspaceScan && !diskFindings.has(change.uri)) continue;
    modelCache.delete(path);
    if (!(await isScannedFile(path))) { forgetDiskFile(change.uri); continue; }
    await scanDiskFile(path);
  }
  if (reconfigure) {
    await reloadConfig();
    refreshAll();
  }
  // Open documents whose load paths point at a changed model file pick up the new verdict.
  for (const doc of documents.all()) schedule(doc.uri);
  sendStatus(false);
});

// ---- code actions ------------------------------------------------------------------------------------------

function programFor(uri: string): { key: string; state: ProgramState } | undefined {
  const nb = notebooks.findNotebookDocumentForCell(uri);
  const key = nb ? nb.uri : uri;
  const state = programs.get(key);
  return state ? { key, state } : undefined;
}

function workspaceEdit(key: string, state: ProgramState, spans: { start: number; end: number; newText: string }[]): WorkspaceEdit {
  const changes: Record<string, TextEdit[]> = {};
  for (const s of spans) {
    const r = rangeOf(key, state, s.start, s.end);
    (changes[r.uri] ??= []).push({ range: r.range, newText: s.newText });
  }
  return { changes };
}

const CONVERT_AND_REWRITE = 'safeWeights.convertAndRewrite';

const overlaps = (a: Range, b: Range): boolean =>
  !(a.end.line < b.start.line || (a.end.line === b.start.line && a.end.character < b.start.character) ||
    b.end.line < a.start.line || (b.end.line === a.start.line && b.end.character < a.start.character));

connection.onCodeAction(async (params) => {
  const found = programFor(params.textDocument.uri);
  if (!found) return [];
  const { key, state } = found;
  const only = params.context.only;
  const wantQuick = !only || only.some((k) => CodeActionKind.QuickFix.startsWith(k) || k.startsWith(CodeActionKind.QuickFix));
  const wantFixAll = !!only?.some((k) => FIX_ALL_KIND.startsWith(k));
  const actions: CodeAction[] = [];
  const entries = state.issues
    .map((issue) => ({ issue, d: diagnosticFor(key, state, issue) }))
    .filter((e): e is { issue: CodeIssue; d: { uri: string; diagnostic: Diagnostic } } => !!e.d);
  if (wantQuick) {
    for (const { issue, d } of entries) {
      if (d.uri !== params.textDocument.uri || !overlaps(d.diagnostic.range, params.range)) continue;
      for (const fix of issue.fixes) {
        actions.push({
          title: `${fix.title} (${issue.rule})`, kind: CodeActionKind.QuickFix, diagnostics: [d.diagnostic],
          isPreferred: fix.preferred || undefined, edit: workspaceEdit(key, state, fix.edits),
        });
      }
      // torch.load("m.pt") with m.pt in the workspace: convert it, then load the .safetensors file instead
      const source = issue.convertEdits && issue.path ? modelPathFor(key, issue.path.value) : undefined;
      if (source && existsSync(source)) {
        actions.push({
          title: `Convert ${basename(source)} to safetensors and load it with safetensors.torch.load_file (${issue.rule})`,
          kind: CodeActionKind.QuickFix, diagnostics: [d.diagnostic],
          command: { title: 'Convert to safetensors and rewrite', command: CONVERT_AND_REWRITE, arguments: [key, issue.start] },
        });
      }
    }
  }
  if (wantFixAll) {
    // Every preferred fix in the document (or the whole notebook), skipping edits that would overlap.
    const spans: { start: number; end: number; newText: string }[] = [];
    const diagnostics: Diagnostic[] = [];
    const taken: [number, number][] = [];
    for (const { issue, d } of entries) {
      const fix = issue.fixes.find((f) => f.preferred);
      if (!fix) continue;
      if (fix.edits.some((e) => taken.some(([s, t]) => e.start < t && s < e.end) || taken.some(([s]) => s === e.start && e.start === e.end))) continue;
      for (const e of fix.edits) taken.push([e.start, e.end]);
      spans.push(...fix.edits);
      diagnostics.push(d.diagnostic);
    }
    if (spans.length) {
      actions.push({ title: 'Safe Weights: fix all unsafe loads', kind: FIX_ALL_KIND, diagnostics, edit: workspaceEdit(key, state, spans) });
    }
  }
  return actions;
});

// ---- custom requests ---------------------------------------------------------------------------------------

function requirePath(uri: string): string {
  const path = uriToPath(uri);
  if (!path) throw new ResponseError(ErrorCodes.InvalidParams, `not a file URI: ${uri}`);
  return path;
}

connection.onRequest(ModelReportRequest, async (params: ModelReportParams) => {
  return modelReport(requirePath(params.uri), params.sha256);
});

connection.onRequest(DisassemblyRequest, async (params: DisassemblyParams) => {
  return modelEngine().disassembleModelFile(requirePath(params.uri));
});

connection.onRequest(ScanWorkspaceRequest, async () => {
  await reloadConfig();
  return scanWorkspace();
});

connection.onRequest(ConvertRequest, async (params: ConvertParams, token, progress): Promise<ConvertResult> => {
  const input = requirePath(params.uri);
  const output = params.outUri ? requirePath(params.outUri) : input.replace(/\.[^./\\]*$/, '') + '.safetensors';
  const abort = new AbortController();
  const sub = token.onCancellationRequested(() => abort.abort());
  progress?.begin('Safe Weights: converting to safetensors', 0, basename(input), true);
  try {
    const r = await convertToSafetensors(input, output, {
      overwrite: params.overwrite, signal: abort.signal,
      onProgress: (done, total) => progress?.report(total ? Math.floor((done / total) * 100) : 0),
    });
    const dropped = r.dropped.length ? `; left out ${r.dropped.length} non-weight entries` : '';
    return { ok: true, outUri: pathToFileURL(r.output).href, tensors: r.tensors, removedAliases: r.removedAliases,
      message: `Wrote ${r.tensors} tensors to ${basename(r.output)}${dropped}.` };
  } catch (e) {
    if (e instanceof ConvertRefused) return { ok: false, message: e.message };
    if (e instanceof ConvertCancelled || abort.signal.aborted) return { ok: false, message: 'Conversion cancelled.' };
    throw e;
  } finally {
    sub.dispose();
    progress?.done();
  }
});

/** A plain notification: the message must not wait for (or fail on) a client that shows no buttons. */
function showMessage(type: MessageType, message: string): void {
  void connection.sendNotification(ShowMessageNotification.type, { type, message });
}

// Convert the checkpoint a torch.load names, then rewrite that call (only once the .safetensors file exists).
connection.onExecuteCommand(async (params) => {
  if (params.command !== CONVERT_AND_REWRITE) return undefined;
  const [key, start] = (params.arguments ?? []) as [string, number];
  const found = programFor(key);
  const issue = found?.state.issues.find((i) => i.start === start && i.convertEdits && i.path);
  if (!found || !issue?.convertEdits || !issue.path) {
    showMessage(MessageType.Error, 'Safe Weights: the torch.load call changed; run the quick fix again.');
    return { ok: false };
  }
  const source = modelPathFor(key, issue.path.value);
  if (!source || !existsSync(source)) {
    showMessage(MessageType.Error, `Safe Weights: ${issue.path.value} does not exist.`);
    return { ok: false };
  }
  const output = source.replace(/\.[^./\\]*$/, '') + '.safetensors';
  const edits = issue.convertEdits();
  let note = '';
  if (existsSync(output)) {
    // never overwrite: an existing file is used as it is, after checking it is a valid safetensors file
    const r = await modelReport(output).catch(() => undefined);
    if (!r || r.format !== 'safetensors' || r.verdict !== 'safe') {
      showMessage(MessageType.Error, `Safe Weights: ${basename(output)} already exists and is not a valid safetensors file; nothing was changed.`);
      return { ok: false };
    }
    note = ` (${basename(output)} already existed and was kept)`;
  } else {
    const progress = await connection.window.createWorkDoneProgress().catch(() => undefined);
    progress?.begin('Safe Weights: converting to safetensors', 0, basename(source), false);
    try {
      await convertToSafetensors(source, output, {
        overwrite: false, onProgress: (done, total) => progress?.report(total ? Math.floor((done / total) * 100) : 0),
      });
    } catch (e) {
      showMessage(MessageType.Error, `Safe Weights: ${(e as Error).message}`);
      return { ok: false };
    } finally { progress?.done(); }
  }
  const applied = await connection.workspace.applyEdit({ label: 'Load with safetensors', edit: workspaceEdit(found.key, found.state, edits) });
  if (!applied.applied) return { ok: false };
  showMessage(MessageType.Info, `Safe Weights: converted ${basename(source)} to ${basename(output)}${note} and rewrote the load.`);
  return { ok: true, output };
});

documents.listen(connection);
notebooks.listen(connection);
connection.listen();
