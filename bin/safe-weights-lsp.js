#!/usr/bin/env node
'use strict';
// The Safe Weights language server for any LSP client (Neovim, Helix, Zed, ...): speaks LSP over stdin/stdout
// unless a transport is named (--stdio, --node-ipc, --socket=PORT, --pipe=NAME).
if (process.argv.includes('--version') || process.argv.includes('-V')) {
  process.stdout.write(`safe-weights-lsp ${require('../package.json').version}\n`);
  return;
}
if (!process.argv.slice(2).some((a) => /^--(stdio|node-ipc|socket|pipe)(=|$)/.test(a))) process.argv.push('--stdio');
require('../dist/server.js');
