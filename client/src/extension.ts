// Safe Weights VS Code extension (thin client): starts the bundled language server, registers the Model
// Inspector, the commands, the disassembly documents and the status bar item. All analysis is in the server.
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { StatusNotification, StatusParams, DisassemblyRequest, DisassemblyResult, ConvertResult } from '../../server/src/protocol';
import { createLanguageClient } from './languageClient';
import { ScanStatusItem } from './statusBar';
import { ModelInspectorProvider } from './inspector/provider';
import { DISASSEMBLY_SCHEME, DisassemblyProvider, openDisassembly, type OpcodeAt } from './disassembly';
import { registerCommands } from './commands';

/** Returned from activate(): used by the end-to-end tests (and by nothing else). */
export interface SafeWeightsApi {
  ready(): Promise<LanguageClient>;
  inspector: ModelInspectorProvider;
  status: ScanStatusItem;
  /** What an offset link in the Inspector opens: the disassembly with that opcode selected. */
  openDisassemblyAt(model: vscode.Uri, at: OpcodeAt): Promise<vscode.TextEditor>;
}

let client: LanguageClient | undefined;

export function activate(context: vscode.ExtensionContext): SafeWeightsApi {
  const output = vscode.window.createOutputChannel('Safe Weights');
  context.subscriptions.push(output);
  const status = new ScanStatusItem();
  context.subscriptions.push(status);

  const lc = createLanguageClient(context, output);
  client = lc;
  lc.onNotification(StatusNotification, (s: StatusParams) => status.update(s));
  const started = lc.start().then(() => lc, (e: unknown) => {
    output.appendLine(`Safe Weights: the language server did not start: ${e instanceof Error ? e.stack : String(e)}`);
    void vscode.window.showErrorMessage('Safe Weights: the language server did not start; see the "Safe Weights" output.');
    throw e;
  });
  const ready = () => started;
  const request = async <R>(method: string, params: unknown): Promise<R> => (await ready()).sendRequest<R>(method, params);

  context.subscriptions.push(vscode.workspace.registerTextDocumentContentProvider(
    DISASSEMBLY_SCHEME,
    new DisassemblyProvider((uri) => request<DisassemblyResult>(DisassemblyRequest, { uri }))));

  const inspector = ModelInspectorProvider.register(context, {
    request,
    openDisassembly,
    convert: async (uri) => vscode.commands.executeCommand<ConvertResult | undefined>('safeWeights.convertToSafetensors', uri),
    log: (line) => output.appendLine(line),
  });
  registerCommands(context, ready, () => inspector.refreshAll(), status);

  return { ready, inspector, status, openDisassemblyAt: (model, at) => openDisassembly(model, 'disassembly', at) };
}

export async function deactivate(): Promise<void> {
  if (client) await client.stop();
  client = undefined;
}
