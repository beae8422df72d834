// The Safe Weights language server, put together: one state object (state.ts) handed to each concern's module —
// document sync, diagnostics, code actions, the workspace scan, the custom requests, the model-file cache.
import { CodeActionKind, DidChangeWatchedFilesNotification, TextDocumentSyncKind, type Connection, type InitializeResult } from 'vscode-languageserver/node';
import { FIX_ALL_KIND, listenCodeActions } from './codeActions';
import { docsActions, SHOW_DOCUMENTATION } from './docsCommand';
import { fileAwareFixes, suppressFixes } from './fileFixes';
import { convertActions, CONVERT_AND_REWRITE, listenConvertCommand } from './convertCommand';
import { installScheduler } from './diagnostics';
import { createDocuments, listenDocuments } from './documentSync';
import { ModelCache } from './modelCache';
import { listenPullDiagnostics, PULLED_SELECTOR } from './pullDiagnostics';
import { listenRequests } from './requests';
import { listenSettings, reloadConfig } from './settings';
import { initialState, uriToPath, type KnownEdit, type ServerState } from './state';
import { listenWatchedFiles, scanWorkspace } from './workspaceScan';

export function startServer(connection: Connection): ServerState {
  const lastEdit = new Map<string, KnownEdit>();
  const { documents, notebooks } = createDocuments(lastEdit);
  const s = initialState({ connection, documents, notebooks, lastEdit, models: new ModelCache() });
  installScheduler(s);

  connection.onInitialize((params): InitializeResult => {
    const caps = params.capabilities;
    s.client = {
      pullConfig: !!caps.workspace?.configuration,
      watchDynamically: !!caps.workspace?.didChangeWatchedFiles?.dynamicRegistration,
      folderEvents: !!caps.workspace?.workspaceFolders,
      pullDiagnostics: !!caps.textDocument?.diagnostic,
      refreshDiagnostics: !!caps.workspace?.diagnostics?.refreshSupport,
    };
    const folders = params.workspaceFolders?.map((f) => f.uri) ?? (params.rootUri ? [params.rootUri] : []);
    s.roots = folders.map(uriToPath).filter((p): p is string => !!p);
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental, save: { includeText: false } },
        notebookDocumentSync: {
          notebookSelector: [{ notebook: { notebookType: 'jupyter-notebook' }, cells: [{ language: 'python' }] }],
          save: true,
        },
        codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix, FIX_ALL_KIND], resolveProvider: false },
        // pulled for open Python documents when the client can (pullDiagnostics.ts); pushed otherwise
        ...(s.client.pullDiagnostics ? { diagnosticProvider: { identifier: 'safe-weights', documentSelector: PULLED_SELECTOR, interFileDependencies: false, workspaceDiagnostics: false } } : {}),
        executeCommandProvider: { commands: [CONVERT_AND_REWRITE, SHOW_DOCUMENTATION] },
        workspace: { workspaceFolders: { supported: true, changeNotifications: true } },
      },
      serverInfo: { name: 'safe-weights' },
    };
  });

  connection.onInitialized(async () => {
    if (s.client.watchDynamically) {
      await connection.client.register(DidChangeWatchedFilesNotification.type, {
        // every file: model files are recognised by their content, whatever their name
        watchers: [{ globPattern: '**/*' }],
      }).catch(() => undefined);
    }
    if (s.client.folderEvents) connection.workspace.onDidChangeWorkspaceFolders(async (e) => {
      const removed = new Set(e.removed.map((f) => uriToPath(f.uri)));
      s.roots = [...s.roots.filter((r) => !removed.has(r)), ...e.added.map((f) => uriToPath(f.uri)).filter((p): p is string => !!p)];
      await reloadConfig(s);
      if (s.config.enable && s.config.workspaceScan) void scanWorkspace(s);
    });
    await reloadConfig(s);
    if (s.config.enable && s.config.workspaceScan) void scanWorkspace(s);
  });

  listenSettings(s);
  listenDocuments(s);
  listenPullDiagnostics(s);
  listenWatchedFiles(s);
  // each finding's quick fixes, in this order (a provider: codeActions.ts IssueActionProvider)
  // (fileAwareFixes: the analysis's fixes, narrowed to what works with the file the load names when it was scanned)
  listenCodeActions(s, [fileAwareFixes, convertActions, docsActions, suppressFixes]);
  listenConvertCommand(s);
  listenRequests(s);
  connection.listen();
  return s;
}
