// Command handlers. Each takes the URI it was invoked on (explorer/editor menus) or falls back to the
// active editor, then to a file picker.
import * as vscode from 'vscode';
import { WorkDoneProgress, type LanguageClient } from 'vscode-languageclient/node';
import {
  ScanWorkspaceRequest, ScanWorkspaceResult, ConvertRequest, ConvertParams, ConvertResult,
} from '../../server/src/protocol';
import { DEFAULT_MODEL_EXTENSIONS, OPTIONAL_MODEL_EXTENSIONS, isModelFileName } from './modelFiles';
import { INSPECTOR_VIEW_TYPE, messageOf } from './inspector/provider';
import { openDisassembly } from './disassembly';
import { SHOW_FLAGGED_COMMAND, showFlaggedModels, type ScanStatusItem } from './statusBar';

/** JSON-RPC "method not found": the server predates the request (e.g. conversion not shipped yet). */
const METHOD_NOT_FOUND = -32601;

/** The model file of the active tab: an open Inspector, or a text tab whose name is a model file's. */
export function activeModelUri(): vscode.Uri | undefined {
  const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (tab instanceof vscode.TabInputCustom && tab.viewType === INSPECTOR_VIEW_TYPE) return tab.uri;
  if ((tab instanceof vscode.TabInputCustom || tab instanceof vscode.TabInputText) && isModelFileName(tab.uri.path)) return tab.uri;
  return undefined;
}

async function pickModelFile(title: string): Promise<vscode.Uri | undefined> {
  const exts = [...DEFAULT_MODEL_EXTENSIONS, ...OPTIONAL_MODEL_EXTENSIONS].map((e) => e.slice(1));
  const picked = await vscode.window.showOpenDialog({
    title, canSelectMany: false, filters: { 'Model files': exts, 'All files': ['*'] },
  });
  return picked?.[0];
}

async function target(uri: unknown, title: string): Promise<vscode.Uri | undefined> {
  if (uri instanceof vscode.Uri) return uri;
  return activeModelUri() ?? pickModelFile(title);
}

export function registerCommands(
  context: vscode.ExtensionContext,
  ready: () => Promise<LanguageClient>,
  onScanned: () => void,
  status: ScanStatusItem,
): void {
  const reg = (id: string, fn: (...args: unknown[]) => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));

  reg('safeWeights.scanWorkspace', async () => {
    const client = await ready();
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: 'Safe Weights: scanning model files' },
      async () => {
        try {
          const r = await client.sendRequest<ScanWorkspaceResult>(ScanWorkspaceRequest, {});
          onScanned();
          const bad = r.dangerous + r.caution;
          const text = `Safe Weights scanned ${r.files} model file${r.files === 1 ? '' : 's'}: ` +
            `${r.dangerous} dangerous, ${r.caution} caution.`;
          if (bad > 0) {
            void vscode.window.showWarningMessage(text, 'Show Files', 'Show Problems').then((a) => {
              if (a === 'Show Files') void vscode.commands.executeCommand(SHOW_FLAGGED_COMMAND);
              else if (a) void vscode.commands.executeCommand('workbench.actions.view.problems');
            });
          } else {
            void vscode.window.showInformationMessage(text);
          }
          return r;
        } catch (e) {
          void vscode.window.showErrorMessage(`Safe Weights: workspace scan failed: ${messageOf(e)}`);
          return undefined;
        }
      });
  });

  reg(SHOW_FLAGGED_COMMAND, () => showFlaggedModels(status, INSPECTOR_VIEW_TYPE));

  reg('safeWeights.openInInspector', async (uri) => {
    const u = await target(uri, 'Open in Model Inspector');
    if (u) await vscode.commands.executeCommand('vscode.openWith', u, INSPECTOR_VIEW_TYPE);
  });

  reg('safeWeights.showDisassembly', async (uri) => {
    const u = await target(uri, 'Show Pickle Disassembly');
    if (u) return openDisassembly(u, 'disassembly');
    return undefined;
  });

  /** Second argument (programmatic use): { outUri?: string, overwrite?: boolean }. */
  reg('safeWeights.convertToSafetensors', async (uri, options) => {
    const u = await target(uri, 'Convert to safetensors');
    if (!u) return undefined;
    const opts = (options ?? {}) as { outUri?: string; overwrite?: boolean };
    const client = await ready();
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Converting ${u.path.split('/').pop()} to safetensors`, cancellable: true },
      async (progress, cancel) => {
        // the server reports percentages through $/progress on this token
        const workDoneToken = `safe-weights-convert-${Date.now()}-${Math.random().toString(36).slice(2)}`;
        let last = 0;
        const sub = client.onProgress(WorkDoneProgress.type, workDoneToken, (v) => {
          if (v.kind === 'end' || v.percentage === undefined) return;
          progress.report({ increment: v.percentage - last, message: v.message });
          last = v.percentage;
        });
        const params: ConvertParams & { workDoneToken: string } = {
          uri: u.toString(), workDoneToken,
          ...(opts.outUri ? { outUri: opts.outUri } : {}), ...(opts.overwrite ? { overwrite: true } : {}),
        };
        try {
          const r = await client.sendRequest<ConvertResult>(ConvertRequest, params, cancel);
          if (r.ok && r.outUri) {
            const out = vscode.Uri.parse(r.outUri);
            void vscode.window.showInformationMessage(`Safe Weights: ${r.message}`, 'Open in Inspector').then((a) => {
              if (a) void vscode.commands.executeCommand('vscode.openWith', out, INSPECTOR_VIEW_TYPE);
            });
          } else if (r.ok) {
            void vscode.window.showInformationMessage(`Safe Weights: ${r.message}`);
          } else if (/already exists/i.test(r.message) && !opts.overwrite) {
            void vscode.window.showWarningMessage(`Safe Weights: ${r.message}`, 'Overwrite').then((a) => {
              if (a) void vscode.commands.executeCommand('safeWeights.convertToSafetensors', u, { ...opts, overwrite: true });
            });
          } else {
            void vscode.window.showErrorMessage(`Safe Weights: conversion refused: ${r.message}`);
          }
          return r;
        } catch (e) {
          const notThere = (e as { code?: number }).code === METHOD_NOT_FOUND;
          const message = notThere
            ? 'Conversion to safetensors is not available in this version of the Safe Weights server.'
            : `Safe Weights: conversion failed: ${messageOf(e)}`;
          void vscode.window.showErrorMessage(message);
          const failed: ConvertResult = { ok: false, message };
          return failed;
        } finally {
          sub.dispose();
        }
      });
  });
}
