// Fixes that know the file: for a finding whose load names a workspace file, the engine's report of that file
// (modelFiles.ts, cached) and the converter's dry run (planned here, cached by mtime) decide which quick fixes are
// offered and what the diagnostic says first (python/fileFixes.ts). A file not scanned or planned yet is done in
// the background and the document re-analysed when ready.
import { CodeActionKind, type CodeAction } from 'vscode-languageserver/node';
import { basename } from 'node:path';
import { planConversion } from '../models/convert/convert';
import type { CodeFix, CodeIssue } from '../python/analyze';
import { planFileFixes, type ConversionFacts, type FileFixPlan, type LoadedFile } from '../python/fileFixes';
import type { IssueContext } from './codeActions';
import { modelPathFor, modelReport } from './modelFiles';
import { workspaceEdit } from './positions';
import type { ServerState } from './state';

const TORCH_FORMATS = new Set(['pytorch-zip', 'pytorch-legacy', 'pytorch-legacy-tar']);
interface PlanEntry { mtime: number; allow: string; facts?: ConversionFacts; done: Promise<void> }
const plans = new WeakMap<ServerState, Map<string, PlanEntry>>();

function planEntry(s: ServerState, docUri: string, path: string, mtime: number): PlanEntry {
  let byPath = plans.get(s);
  if (!byPath) plans.set(s, (byPath = new Map()));
  const allow = s.config.allowGlobals.join('\n');
  const hit = byPath.get(path);
  if (hit && hit.mtime === mtime && hit.allow === allow) return hit;
  const entry: PlanEntry = { mtime, allow, done: Promise.resolve() };
  entry.done = planConversion(path, s.config.allowGlobals).then((p) => {
    entry.facts = { refusal: p.refusal, shape: p.shape, unsupported: p.structure?.unsupported };
  }).catch((e: Error) => { entry.facts = { refusal: e.message }; }).finally(() => s.schedule(docUri));
  byPath.set(path, entry);
  if (byPath.size > 1000) byPath.delete(byPath.keys().next().value!);
  return entry;
}

const wantsPlan = (issue: CodeIssue, r: { format: string; verdict: string }): boolean =>
  issue.rule === 'SW101' && TORCH_FORMATS.has(r.format) && r.verdict !== 'dangerous' && r.verdict !== 'invalid';

/** Waits until what the fixes of `issue` depend on is known (the file's report and conversion plan), so the
 *  first code-action request after opening a file already gets the file-aware fixes. */
export async function fileFactsReady(s: ServerState, docUri: string, issue: CodeIssue): Promise<void> {
  if (!issue.path) return;
  const path = modelPathFor(s, docUri, issue.path.value);
  if (!path) return;
  const report = await modelReport(s, path).catch(() => undefined);
  const mtime = s.models.reports.get(path)?.mtime;
  if (report && mtime !== undefined && wantsPlan(issue, report)) await planEntry(s, docUri, path, mtime).done;
}

/** The scanned workspace file a finding's load names (undefined until its report is cached). */
export function loadedFile(s: ServerState, docUri: string, issue: CodeIssue): LoadedFile | undefined {
  if (!issue.path) return undefined;
  const path = modelPathFor(s, docUri, issue.path.value);
  if (!path) return undefined;
  const mtime = s.models.recentStat(path)?.mtime;
  const cached = s.models.reports.get(path);
  if (mtime === undefined || !cached || cached.mtime !== mtime) return undefined;   // crossReference scans it
  const r = cached.report;
  const conversion = wantsPlan(issue, r) ? planEntry(s, docUri, path, mtime).facts : undefined;
  return { name: basename(path), path, report: r, conversion };
}

/** The fix plan for a finding (with its edits when `withEdits`), or undefined when its load names no scanned file. */
export function filePlan(s: ServerState, docUri: string, issue: CodeIssue, withEdits = false): (FileFixPlan & { path: string }) | undefined {
  const file = loadedFile(s, docUri, issue);
  if (!file?.path) return undefined;
  return { ...planFileFixes(issue, file, withEdits ? issue.loadSite?.() : undefined), path: file.path };
}

/** The quick fixes of a finding: the plan's when its file is known, else what the analysis attached. */
export function fixesOf(s: ServerState, docUri: string, issue: CodeIssue): CodeFix[] {
  return filePlan(s, docUri, issue, true)?.fixes ?? issue.fixes;
}

const actionsOf = ({ server, key, program, issue, diagnostic }: IssueContext, suppress: boolean): CodeAction[] =>
  fixesOf(server, key, issue).filter((f) => (f.role === 'suppress') === suppress).map((fix) => ({
    title: `${fix.title} (${issue.rule})`, kind: CodeActionKind.QuickFix, diagnostics: [diagnostic],
    isPreferred: fix.preferred || undefined, edit: workspaceEdit(key, program, fix.edits),
  }));

/** Quick fixes (code actions provider): the file-aware plan's fixes, falling back to the analysis's. */
export const fileAwareFixes = (at: IssueContext): CodeAction[] => actionsOf(at, false);
/** "Suppress on this line" / "Suppress in this file" (listed last). */
export const suppressFixes = (at: IssueContext): CodeAction[] => actionsOf(at, true);
