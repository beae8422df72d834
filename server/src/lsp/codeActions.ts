// Code actions on the findings of open programs: each finding's quick fixes (from the issue providers below),
// and the file-wide fix-all of every preferred fix. The providers are listed in server.ts (convertCommand.ts is one).
import { CodeActionKind, type CodeAction, type Diagnostic, type Range } from 'vscode-languageserver/node';
import type { CodeIssue } from '../python/analyze';
import { diagnosticFor } from './diagnostics';
import { fileFactsReady, fixesOf } from './fileFixes';
import { programFor, workspaceEdit } from './positions';
import type { ProgramState, ServerState } from './state';

export const FIX_ALL_KIND = 'source.fixAll.safeWeights';

/** One finding of an open program, as a code action provider sees it. */
export interface IssueContext {
  readonly server: ServerState;
  /** The program's key (document URI, or the notebook's URI for a cell) and its parse state. */
  readonly key: string;
  readonly program: ProgramState;
  readonly issue: CodeIssue;
  /** The finding's diagnostic as published (attach it to the action's `diagnostics`). */
  readonly diagnostic: Diagnostic;
}

/** Quick fixes for one finding (positions.ts `workspaceEdit` turns program-offset edits into a WorkspaceEdit). */
export type IssueActionProvider = (at: IssueContext) => CodeAction[];

/** Quick fixes the analysis attached to the finding (issue.fixes: program-offset edits). */
export const analysisFixes: IssueActionProvider = ({ key, program, issue, diagnostic }) =>
  issue.fixes.map((fix) => ({
    title: `${fix.title} (${issue.rule})`, kind: CodeActionKind.QuickFix, diagnostics: [diagnostic],
    isPreferred: fix.preferred || undefined, edit: workspaceEdit(key, program, fix.edits),
  }));

const overlaps = (a: Range, b: Range): boolean =>
  !(a.end.line < b.start.line || (a.end.line === b.start.line && a.end.character < b.start.character) ||
    b.end.line < a.start.line || (b.end.line === a.start.line && b.end.character < a.start.character));

/** Serves textDocument/codeAction: for each finding under the range, every provider's actions, in order. */
export function listenCodeActions(s: ServerState, providers: readonly IssueActionProvider[]): void {
  s.connection.onCodeAction(async (params) => {
    let found = programFor(s, params.textDocument.uri);
    if (!found) return [];
    // the fixes of a load depend on the file it names: wait (a little) for its scan when it is not known yet
    const lines = (i: CodeIssue) => diagnosticFor(s, found!.key, found!.state, i);
    const pending = found.state.issues.filter((i) => i.path).filter((i) => {
      const d = lines(i);
      return d && d.uri === params.textDocument.uri && overlaps(d.diagnostic.range, params.range);
    }).map((i) => fileFactsReady(s, found!.key, i));
    if (pending.length) await Promise.race([Promise.all(pending), new Promise((r) => setTimeout(r, 5000))]);
    found = programFor(s, params.textDocument.uri);
    if (!found) return [];
    const { key, state } = found;
    const only = params.context.only;
    const wantQuick = !only || only.some((k) => CodeActionKind.QuickFix.startsWith(k) || k.startsWith(CodeActionKind.QuickFix));
    const wantFixAll = !!only?.some((k) => FIX_ALL_KIND.startsWith(k));
    const actions: CodeAction[] = [];
    const entries = state.issues
      .map((issue) => ({ issue, d: diagnosticFor(s, key, state, issue) }))
      .filter((e): e is { issue: CodeIssue; d: { uri: string; diagnostic: Diagnostic } } => !!e.d);
    if (wantQuick) {
      for (const { issue, d } of entries) {
        if (d.uri !== params.textDocument.uri || !overlaps(d.diagnostic.range, params.range)) continue;
        const at: IssueContext = { server: s, key, program: state, issue, diagnostic: d.diagnostic };
        for (const provide of providers) actions.push(...provide(at));
      }
    }
    if (wantFixAll) {
      // Every preferred fix in the document (or the whole notebook), skipping edits that would overlap.
      const spans: { start: number; end: number; newText: string }[] = [];
      const diagnostics: Diagnostic[] = [];
      const taken: [number, number][] = [];
      for (const { issue, d } of entries) {
        const fix = fixesOf(s, key, issue).find((f) => f.preferred);
        if (!fix) continue;
        if (fix.edits.some((e) => taken.some(([st, t]) => e.start < t && st < e.end) || taken.some(([st]) => st === e.start && e.start === e.end))) continue;
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
}
