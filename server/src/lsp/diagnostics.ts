// Diagnostics of open documents and notebooks: (re)parse, analyse (incrementally after a known edit), publish.
import { DiagnosticSeverity, type Diagnostic, type NotebookDocument, type Range } from 'vscode-languageserver/node';
import { levelFor } from '../config';
import { analyzePython, analyzePythonAfterEdit, linkUnmoved, takeMovedFrom, type CodeIssue } from '../python/analyze';
import { basename } from 'node:path';
import { checkDependencyFile, checkSetupPy, type PinIssue } from '../python/deps';
import { buildProgram, type NotebookProgram } from '../python/notebook';
import { deleteProgram, Forest, type Program } from '../python/forest';
import { FOREST_MIN_CHARS, parseForest, reparseForest } from '../python/forestParse';
import { editTree, editTreeAt, getParser, parseSync } from '../python/parser';
import type { CodeSeverity } from '../python/rules';
import { codeFormat } from '../python/scanCode';
import { diagnosticMessage, ruleDocsUrl } from '../python/ruleAdvice';
import { filePlan } from './fileFixes';
import { handledAsBig } from './bigFiles';
import { crossReference } from './modelFiles';
import { deliverDocument } from './pullDiagnostics';
import { rangeOf } from './positions';
import { excluded } from './settings';
import { SOURCE, uriToPath, type KnownEdit, type ProgramState, type ServerState } from './state';

export const toSeverity = (s: CodeSeverity): DiagnosticSeverity =>
  s === 'dangerous' ? DiagnosticSeverity.Error : s === 'caution' ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information;

/** Makes `s.schedule` analyse a URI once on the next turn of the event loop, however often it is asked. */
export function installScheduler(s: ServerState): void {
  const pending = new Set<string>();
  s.schedule = (uri: string): void => {
    if (pending.has(uri)) return;
    pending.add(uri);
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => { settle = resolve; });
    s.analyzing.set(uri, settled);
    setImmediate(() => {
      pending.delete(uri);
      void analyze(s, uri)
        .catch((e) => s.connection.console.error(`safe-weights: ${uri}: ${(e as Error).stack ?? e}`))
        .finally(() => { if (s.analyzing.get(uri) === settled) s.analyzing.delete(uri); settle(); });
    });
  };
}

async function analyze(s: ServerState, uri: string): Promise<void> {
  const nb = s.notebooks.getNotebookDocument(uri);
  if (nb) return analyzeNotebook(s, nb);
  const doc = s.documents.get(uri);
  if (!doc) return;
  const { config, connection } = s;
  if (!config.enable || excluded(s, uri)) {
    deliverDocument(s, uri, doc.version, []);
    return;
  }
  const format = codeFormat(uriToPath(uri) ?? uri) ?? (doc.languageId === 'python' ? 'python' : undefined);
  if (format === 'requirements' || format === 'pyproject') {
    // every dependency file by its name: requirements, pyproject, lock files, Pipfile(.lock), setup.cfg, environment.yml
    const diagnostics = pinDiagnostics(s, checkDependencyFile(uriToPath(uri) ?? uri, doc.getText()));
    connection.sendDiagnostics({ uri, version: doc.version, diagnostics });
    return;
  }
  if (format !== 'python' && doc.languageId !== 'python') return;
  // over the size limit: analysed once, in chunks, on a worker thread (bigFiles.ts); no parse state kept here
  if (handledAsBig(s, uri, doc.getText().length)) { forgetProgram(s, uri); return; }
  const edit = s.lastEdit.get(uri);
  const before = s.programs.get(uri);
  // the recorded change applies only when it leads from the version we parsed last to this one
  const known = edit && edit.version === doc.version && before?.version === edit.fromVersion ? edit : undefined;
  const prev = known && before?.analyzed === before?.version && before?.honorNosec === config.honorNosec
    ? { text: before!.text, issues: before!.issues } : undefined;
  const state = await reparse(s, uri, doc.getText(), known);
  state.version = doc.version;
  const opts = { honorNosec: config.honorNosec };
  let issues: CodeIssue[] | undefined;
  const change = known && { start: known.start, oldEnd: known.oldEnd, newEnd: known.start + known.text.length };
  if (prev && change && state.changed) {
    // a reused finding's on-demand edits are rebuilt from a fresh analysis of the program as it is then
    const refresh = (start: number, rule: string) => analyzePython(state.tree!, state.text, opts).find((i) => i.start === start && i.rule === rule);
    if (state.oldTree) issues = analyzePythonAfterEdit(prev, state.oldTree, state.tree!, state.text, change, state.changed, opts, refresh);
  }
  // an incremental analysis of an edit that added and removed no line break: the findings it carried over (all on
  // other lines: it re-analyses whole lines) kept their line and character
  const linesKept = !!issues && known!.startPos.line === known!.oldEndPos.line && !/[\r\n]/.test(known!.text);
  if (!issues) {
    issues = analyzePython(state.tree!, state.text, opts);
    if (prev && change) linkUnmoved(prev.issues, issues, change);
  }
  state.issues = issues;
  // setup.py: its install_requires pins besides the code rules
  state.pins = basename(uriToPath(uri) ?? uri).toLowerCase() === 'setup.py' ? checkSetupPy(state.tree!, state.text) : undefined;
  state.analyzed = state.version;
  state.honorNosec = config.honorNosec;
  // positions come from the document's own line table (kept up to date by each change)
  state.lines = { position: (offset: number) => doc.positionAt(offset) };
  publishFor(s, uri, state, doc.version, linesKept);
  // freed once the diagnostics are on their way (pushed above, or the pull this analysis settles answered first):
  // on issue 12's 10,000-line file deleting the old tree takes 2-4 ms, time a keystroke's diagnostics need not wait for
  retire(state, true);
}

/** Parses a program again after a change: incrementally (told of the change when it is known, else of the
 *  differing middle of the texts). A document of FOREST_MIN_CHARS or more is kept as a forest of segments (forest.ts)
 *  so a keystroke re-parses one segment; notebooks (`whole`) keep one tree. */
async function reparse(s: ServerState, uri: string, text: string, change?: KnownEdit, whole = false): Promise<ProgramState> {
  const parser = await getParser();
  const forest = !whole && text.length >= FOREST_MIN_CHARS;
  const fresh = (): Program => (forest ? parseForest(parser, text) : parseSync(parser, text));
  let state = s.programs.get(uri);
  if (!state) {
    state = { text, tree: fresh(), issues: [] };
    s.programs.set(uri, state);
    return state;
  }
  if (state.text !== text || !state.tree) {
    const old = state.tree;
    state.changed = undefined;
    retire(state);
    if (old instanceof Forest && forest && change) {
      // with a known change the old forest lives until the analysis has compared the edited statements
      const r = reparseForest(parser, old, text, change);
      state.tree = r.forest;
      state.oldTree = r.oldForest;
      state.retired = r.retired;
      state.changed = r.changed;
    } else if (old && !(old instanceof Forest) && !forest) {
      if (change) editTreeAt(old, change.start, change.oldEnd, change.text, change.startPos, change.oldEndPos);
      else editTree(old, state.text, text);
      state.tree = parseSync(parser, text, old);
      if (change) { state.changed = state.tree.getChangedRanges(old); state.oldTree = old; state.retired = [old]; } else old.delete();
    } else {
      // the other way round (a document grown past the size or shrunk below it), or no change known for a forest
      if (old) deleteProgram(old);
      state.tree = fresh();
    }
    state.text = text;
  }
  return state;
}

/** Frees the trees the last re-parse replaced (kept for the analysis that compares old and new); `later`: on the
 *  next turn, once the diagnostics are on their way. */
function retire(state: ProgramState, later = false): void {
  const trees = state.retired ?? [];
  state.retired = undefined;
  state.oldTree = undefined;
  if (later && trees.length) setImmediate(() => { for (const t of trees) t.delete(); });
  else for (const t of trees) t.delete();
}

function notebookProgram(s: ServerState, nb: NotebookDocument): { program: NotebookProgram; cellUris: string[] } {
  const cellUris: string[] = [];
  const cells = nb.cells.map((cell) => {
    const doc = s.notebooks.getCellTextDocument(cell);
    cellUris.push(cell.document);
    const code = cell.kind === 2 && (!doc || doc.languageId === 'python');
    return { kind: code ? 'code' as const : 'markdown' as const, text: doc?.getText() ?? '' };
  });
  return { program: buildProgram(cells), cellUris };
}

async function analyzeNotebook(s: ServerState, nb: NotebookDocument): Promise<void> {
  const { program, cellUris } = notebookProgram(s, nb);
  const state = await reparse(s, nb.uri, program.text, undefined, true);
  const previous = state.notebook?.cellUris ?? [];
  state.notebook = { program, cellUris, indexes: new Map() };
  state.issues = s.config.enable && !excluded(s, nb.uri)
    ? analyzePython(state.tree!, state.text, { honorNosec: s.config.honorNosec, cellStarts: program.cells.map((c) => c.start) })
    : [];
  publishFor(s, nb.uri, state);
  for (const uri of previous) if (!cellUris.includes(uri)) s.connection.sendDiagnostics({ uri, diagnostics: [] });
}

/** Dependency-pin findings (0-based line/columns) as configured diagnostics. */
function pinDiagnostics(s: ServerState, pins: PinIssue[]): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const p of pins) {
    const severity = levelFor(s.config, p.rule, p.severity);
    if (!severity) continue;
    diagnostics.push({ range: { start: { line: p.line, character: p.column }, end: { line: p.line, character: p.endColumn } },
      severity: toSeverity(severity), code: p.rule, source: SOURCE, message: diagnosticMessage(p.rule, p.message), codeDescription: { href: ruleDocsUrl(p.rule) } });
  }
  return diagnostics;
}

/** The diagnostic last built for a finding, or for the finding it was copied from after an edit. Each keystroke
 *  publishes every finding of the file again, nearly all of them copies at the same line and column. Reusing their
 *  diagnostics saves building ~1,700 messages and objects per keystroke on issue 12's file: measured in process,
 *  1.1 ms for the 1,666 diagnostics against 1.7 ms (positions are still computed to compare), plus the garbage. */
const built = new WeakMap<CodeIssue, { uri: string; diagnostic: Diagnostic }>();

/** The diagnostic of a finding as configured (undefined when its rule is off), and the URI it belongs to.
 *  `linesKept`: the edit since the last publish added and removed no line break (publishFor after a keystroke). */
export function diagnosticFor(s: ServerState, uri: string, state: ProgramState, issue: CodeIssue, linesKept = false): { uri: string; diagnostic: Diagnostic } | undefined {
  const severity = levelFor(s.config, issue.rule, issue.severity);
  if (!severity) return undefined;
  // (a finding that names a file is built afresh: its message and related file follow the workspace scan)
  const from = takeMovedFrom(issue);
  const last = issue.path ? undefined : built.get(issue) ?? (from && built.get(from));
  // a finding copied from the last analysis over a keystroke that kept every line is where it was: its position
  // need not be computed to know that (~2 ms of a keystroke on issue 12's file, 1,666 findings)
  if (linesKept && from && last && !state.notebook && last.diagnostic.severity === toSeverity(severity)) {
    built.set(issue, last);
    return last;
  }
  const at = rangeOf(uri, state, issue.start, issue.end);
  if (last && last.uri === at.uri && last.diagnostic.severity === toSeverity(severity) && sameRange(last.diagnostic.range, at.range)) {
    built.set(issue, last);
    return last;
  }
  // the first sentence says what to do: with the file the load names when it was scanned, else about the rule
  const related = crossReference(s, uri, issue);
  const advice = related ? filePlan(s, uri, issue)?.advice : undefined;
  const diagnostic: Diagnostic = {
    range: at.range, severity: toSeverity(severity), code: issue.rule, source: SOURCE,
    message: diagnosticMessage(issue.rule, issue.message, advice), codeDescription: { href: ruleDocsUrl(issue.rule) },
  };
  if (related) diagnostic.relatedInformation = [related];
  const result = { uri: at.uri, diagnostic };
  if (!issue.path) built.set(issue, result);
  return result;
}

function sameRange(a: Range, b: Range): boolean {
  return a.start.line === b.start.line && a.start.character === b.start.character && a.end.line === b.end.line && a.end.character === b.end.character;
}

function publishFor(s: ServerState, uri: string, state: ProgramState, version?: number, linesKept = false): void {
  const byUri = new Map<string, Diagnostic[]>();
  if (state.notebook) for (const cellUri of state.notebook.cellUris) byUri.set(cellUri, []);
  else byUri.set(uri, []);
  for (const issue of state.issues) {
    const d = diagnosticFor(s, uri, state, issue, linesKept);
    if (d) byUri.get(d.uri)?.push(d.diagnostic);
  }
  if (state.pins && !state.notebook) byUri.get(uri)!.push(...pinDiagnostics(s, state.pins));
  for (const [target, diagnostics] of byUri) {
    if (target === uri && version !== undefined) deliverDocument(s, uri, version, diagnostics);
    else s.connection.sendDiagnostics({ uri: target, diagnostics });
  }
}

/** Drops an open program's parse state. */
export function forgetProgram(s: ServerState, uri: string): void {
  const state = s.programs.get(uri);
  if (state?.tree) deleteProgram(state.tree);
  if (state) retire(state);
  s.programs.delete(uri);
}
