// "Convert to safetensors and rewrite": on torch.load("m.pt") with m.pt in the workspace, a quick fix whose command
// converts the file, then (only once the .safetensors file exists) rewrites the call to load it.
import { CodeActionKind, MessageType, ShowMessageNotification, type CodeAction } from 'vscode-languageserver/node';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { convertToSafetensors } from '../models/convert/convert';
import type { IssueContext } from './codeActions';
import { modelPathFor, modelReport } from './modelFiles';
import { programFor, workspaceEdit } from './positions';
import type { ServerState } from './state';

export const CONVERT_AND_REWRITE = 'safeWeights.convertAndRewrite';

export function convertActions({ server, key, issue, diagnostic }: IssueContext): CodeAction[] {
  const source = issue.convertEdits && issue.path ? modelPathFor(server, key, issue.path.value) : undefined;
  if (!source || !existsSync(source)) return [];
  return [{
    title: `Convert ${basename(source)} to safetensors and load it with safetensors.torch.load_file (${issue.rule})`,
    kind: CodeActionKind.QuickFix, diagnostics: [diagnostic],
    command: { title: 'Convert to safetensors and rewrite', command: CONVERT_AND_REWRITE, arguments: [key, issue.start] },
  }];
}

/** A plain notification: the message must not wait for (or fail on) a client that shows no buttons. */
function showMessage(s: ServerState, type: MessageType, message: string): void {
  void s.connection.sendNotification(ShowMessageNotification.type, { type, message });
}

export function listenConvertCommand(s: ServerState): void {
  s.connection.onExecuteCommand(async (params) => {
    if (params.command !== CONVERT_AND_REWRITE) return undefined;
    const [key, start] = (params.arguments ?? []) as [string, number];
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
    const edits = issue.convertEdits();
    let note = '';
    if (existsSync(output)) {
      // never overwrite: an existing file is used as it is, after checking it is a valid safetensors file
      const r = await modelReport(s, output).catch(() => undefined);
      if (!r || r.format !== 'safetensors' || r.verdict !== 'safe') {
        showMessage(s, MessageType.Error, `Safe Weights: ${basename(output)} already exists and is not a valid safetensors file; nothing was changed.`);
        return { ok: false };
      }
      note = ` (${basename(output)} already existed and was kept)`;
    } else {
      const progress = await s.connection.window.createWorkDoneProgress().catch(() => undefined);
      progress?.begin('Safe Weights: converting to safetensors', 0, basename(source), false);
      try {
        await convertToSafetensors(source, output, {
          overwrite: false, onProgress: (done, total) => progress?.report(total ? Math.floor((done / total) * 100) : 0),
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
