// Bundles the extension client, the language server and the CLI with esbuild.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
mkdirSync(dist, { recursive: true });
const common = {
  bundle: true, platform: 'node', target: 'node20', format: 'cjs', sourcemap: true,
  logLevel: 'warning', absWorkingDir: root,
  // ESM entry points first: some packages (jsonc-parser) ship a UMD "main" whose dynamic requires esbuild cannot follow
  mainFields: ['module', 'main'],
};
const entries = [
  { in: 'client/src/extension.ts', out: 'client.js', external: ['vscode'] },
  { in: 'server/src/server.ts', out: 'server.js' },
  { in: 'server/src/cli/main.ts', out: 'cli.js' },
  { in: 'server/src/models/lzmaWorker.ts', out: 'lzma-worker.js' },
  { in: 'server/src/models/zipWorker.ts', out: 'zip-worker.js' },
];
await Promise.all(entries.filter((e) => existsSync(join(root, e.in))).map((e) =>
  build({ ...common, entryPoints: [e.in], outfile: join(dist, e.out), external: e.external ?? [] })));
// tree-sitter runtime and grammar are loaded at run time from next to the bundle.
for (const [from, to] of [
  ['node_modules/web-tree-sitter/web-tree-sitter.wasm', 'web-tree-sitter.wasm'],
  ['node_modules/tree-sitter-python/tree-sitter-python.wasm', 'tree-sitter-python.wasm'],
]) {
  if (existsSync(join(root, from))) copyFileSync(join(root, from), join(dist, to));
}
