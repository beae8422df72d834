// Starts the bundled language server (dist/server.js) over IPC and keeps one client for the session.
import * as vscode from 'vscode';
import {
  LanguageClient, LanguageClientOptions, ServerOptions, TransportKind, RevealOutputChannelOn,
} from 'vscode-languageclient/node';
import serverFlags from '../../server/src/lsp/serverFlags.json';

export function createLanguageClient(context: vscode.ExtensionContext, output: vscode.OutputChannel): LanguageClient {
  const module = context.asAbsolutePath('dist/server.js');
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.ipc, options: { execArgv: serverFlags.execArgv } },
    debug: { module, transport: TransportKind.ipc, options: { execArgv: [...serverFlags.execArgv, '--nolazy', '--inspect=6019'] } },
  };
  const clientOptions: LanguageClientOptions = {
    // Python files on disk and unsaved; notebook cells are synced through the server's notebookDocumentSync
    // capability (jupyter-notebook, python cells), which the client honours on its own.
    documentSelector: [
      { scheme: 'file', language: 'python' },
      { scheme: 'untitled', language: 'python' },
      { notebook: { notebookType: 'jupyter-notebook' }, language: 'python' },
      { scheme: 'file', pattern: '**/requirements*.txt' },
      { scheme: 'file', pattern: '**/pyproject.toml' },
    ],
    synchronize: {
      configurationSection: 'safeWeights',
      fileEvents: vscode.workspace.createFileSystemWatcher(
        '**/*.{pt,pth,ckpt,pkl,pickle,joblib,npy,npz,safetensors,gguf,bin}'),
    },
    outputChannel: output,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    diagnosticCollectionName: 'safe-weights',
  };
  return new LanguageClient('safeWeights', 'Safe Weights', serverOptions, clientOptions);
}
