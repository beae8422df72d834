// The Safe Weights language server's entry point: unsafe-load diagnostics and quick-fixes for Python files and
// notebook cells, dependency pins, the workspace scan (code and model files) and the custom safeWeights/* requests,
// put together in lsp/server.ts. Started as `node dist/server.js --stdio` or over IPC (--node-ipc) by the VS Code client.
import { isMainThread } from 'node:worker_threads';
import { createConnection, ProposedFeatures } from 'vscode-languageserver/node';
import { startServer } from './lsp/server';

// (the bundle also runs as the big-file worker thread, lsp/bigFiles.ts: no connection there)
if (isMainThread) startServer(createConnection(ProposedFeatures.all));
