// "Convert to safetensors and rewrite": on torch.load("m.pt") with m.pt in the workspace, a quick fix whose command
// converts the file, then (only once the .safetensors file exists) rewrites the call to load it. Offered only when
// the rewrite returns what torch.load returned (lsp/fileFixes.ts): a flat state dict loads with load_file, a
// training checkpoint is rebuilt from the tensors and the structure kept in the file's metadata.
import { CodeActionKind, MessageType, ShowMessageNotification, type CodeAction } from 'vscode-languageserver/node';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { convertToSafetensors } from '../models/convert/convert';
import { STRUCTURE_KEY } from '../models/convert/structure';
import { rebuildEdits } from '../python/loadFixes';
import { SHOW_DOCUMENTATION, showDocumentation } from './docsCommand';
import { filePlan } from './fileFixes';
import type { IssueContext } from './codeActions';
import { modelPathFor, modelReport } from './modelFiles';
import { programFor, workspaceEdit } from './positions';
import type { ServerState } from './state';

export const CONVERT_AND_REWRITE = 'safeWeights.convertAndRewrite';

export function convertActions({ server, key, issue, diagnostic }: IssueContext): CodeAction[] {
  if (!issue.convertEdits || !issue.path) return [];
  const plan = filePlan(server, key, issue);
  if (!plan?.convert || !existsSync(plan.path)) return [];
  return [{
    title: `${plan.convert.title} (${issue.rule})`,
    kind: CodeActionKind.QuickFix, diagnostics: [diagnostic],
    command: { title: 'Convert to safetensors and rewrite', command: CONVERT_AND_REWRITE, arguments: [key, issue.start, plan.convert.mode] },
  }];
}

/** A plain notification: the message must not wait for (or fail on) a client that shows no buttons. */
function showMessage(s: ServerState, type: MessageType, message: string): void {
  void s.connection.sendNotification(ShowMessageNotification.type, { type, message });
}

export function listenConvertCommand(s: ServerState): void {
  s.connection.onExecuteCommand(async (params) => {
    if (params.command === SHOW_DOCUMENTATION) return showDocumentation(s, params.arguments);
    if (params.command !== CONVERT_AND_REWRITE) return undefined;
    const [key, start, mode] = (params.arguments ?? []) as [string, number, ('load_file' | 'rebuild')?];
    const found = programFor(s, key);
    const issue = found?.state.issues.find((i) => i.start === start && i.convertEdits && i.path);
    if (!found || !issue?.convertEdits || !issue.path) {
      showMessage(s, MessageType.Error, 'Safe Weights: the torch.load call changed; run the quick fix again.');
      return { ok: false };
    }
    const source = modelPathFor(s, key, issue.path.value);
    if (!source || !existsSync(source)) {
      showMessage(s, MessageType.Error, `Safe Weights: ${issue.path.value} does not exist.`);
      return { ok: false };
    }
    const output = source.replace(/\.[^./\\]*$/, '') + '.safetensors';
    const site = mode === 'rebuild' ? issue.loadSite?.() : undefined;
    if (mode === 'rebuild' && !site) {
      showMessage(s, MessageType.Error, 'Safe Weights: the torch.load call changed; run the quick fix again.');
      return { ok: false };
    }
    const edits = site ? rebuildEdits(site) : issue.convertEdits();
    let note = '';
    if (existsSync(output)) {
      // never overwrite: an existing file is used as it is, after checking it is a valid safetensors file
      const r = await modelReport(s, output).catch(() => undefined);
      if (!r || r.format !== 'safetensors' || r.verdict !== 'safe' || (site && !(STRUCTURE_KEY in r.metadata))) {
        showMessage(s, MessageType.Error, `Safe Weights: ${basename(output)} already exists and is not a valid safetensors file${site ? ' holding the checkpoint\'s structure' : ''}; nothing was changed.`);
        return { ok: false };
      }
      note = ` (${basename(output)} already existed and was kept)`;
    } else {
      const progress = await s.connection.window.createWorkDoneProgress().catch(() => undefined);
      progress?.begin('Safe Weights: converting to safetensors', 0, basename(source), false);
      try {
        // the whole checkpoint, every tensor under its own name: what the rewritten code reads is what torch.load gave
        await convertToSafetensors(source, output, {
          overwrite: false, structure: true, onProgress: (done, total) => progress?.report(total ? Math.floor((done / total) * 100) : 0),
        });
      } catch (e) {
        showMessage(s, MessageType.Error, `Safe Weights: ${(e as Error).message}`);
        return { ok: false };
      } finally { progress?.done(); }
    }
    const applied = await s.connection.workspace.applyEdit({ label: 'Load with safetensors', edit: workspaceEdit(found.key, found.state, edits) });
    if (!applied.applied) return { ok: false };
    showMessage(s, MessageType.Info, `Safe Weights: converted ${basename(source)} to ${basename(output)}${note} and rewrote the load.`);
    return { ok: true, output };
  });
}
