// Bundles the extension client, the language server and the CLI with esbuild.
import { build } from 'esbuild';
import { chmodSync, copyFileSync, mkdirSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
mkdirSync(join(dist, 'codicons'), { recursive: true });
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
  { in: 'server/src/models/formats/zipWorker.ts', out: 'zip-worker.js' },
  // the CLI's directory scan threads (cli/scanPool.ts)
  { in: 'server/src/cli/scanWorker.ts', out: 'scan-worker.js' },
  // the remote scan's HTTP thread (models/remote/syncHttp.ts); the CLI only, so the npm package ships it, not the .vsix
  { in: 'server/src/models/remote/rangeWorker.ts', out: 'range-worker.js' },
];
// A missing entry point or runtime file fails the build: a bundle skipped here is a package that breaks at run time.
const missing = entries.filter((e) => !existsSync(join(root, e.in))).map((e) => e.in);
if (missing.length) {
  console.error(`build: entry point${missing.length > 1 ? 's' : ''} missing: ${missing.join(', ')} (scripts/build.mjs lists them)`);
  process.exit(1);
}
const built = entries;
await Promise.all(built.map((e) =>
  build({ ...common, entryPoints: [e.in], outfile: join(dist, e.out), external: e.external ?? [] })));
// Files the bundles load at run time from next to themselves (the .vsix ships no node_modules; .vscodeignore
// keeps each of them): the tree-sitter runtime and grammar, and the script vscode-languageclient runs to end a
// server process tree that did not exit (processes.js: join(__dirname, 'terminateProcess.sh')).
for (const [from, to, mode] of [
  ['node_modules/web-tree-sitter/web-tree-sitter.wasm', 'web-tree-sitter.wasm'],
  ['node_modules/tree-sitter-python/tree-sitter-python.wasm', 'tree-sitter-python.wasm'],
  // 7-Zip as WebAssembly (models/formats/sevenZip.ts reads .7z archives with it)
  ['node_modules/7z-wasm/7zz.wasm', '7zz.wasm'],
  ['node_modules/vscode-languageclient/lib/node/terminateProcess.sh', 'terminateProcess.sh', 0o755],
  // the Inspector webview's icons (a local resource under its CSP: font-src / style-src webview.cspSource)
  ['node_modules/@vscode/codicons/dist/codicon.css', 'codicons/codicon.css'],
  ['node_modules/@vscode/codicons/dist/codicon.ttf', 'codicons/codicon.ttf'],
]) {
  if (!existsSync(join(root, from))) {
    console.error(`build: ${from} is missing (run npm ci): dist/${to} would not ship`);
    process.exit(1);
  }
  copyFileSync(join(root, from), join(dist, to));
  if (mode) chmodSync(join(dist, to), mode);
}
// A require() of a computed path is left to run time, where it resolves next to the bundle, not in
// node_modules: the bundle would fail there (as LZMA-JS's index.js did). Refuse to build one.
const computed = /(?<![\w$.])require\s*\(\s*(?!["'])/g;
for (const e of built) {
  const text = readFileSync(join(dist, e.out), 'utf8');
  for (const m of text.matchAll(computed)) {
    const line = text.slice(0, m.index).split('\n').length;
    const near = text.slice(Math.max(0, m.index - 60), m.index + 80).replace(/\s+/g, ' ');
    console.error(`build: dist/${e.out}:${line}: require() of a computed path, which the bundle cannot resolve: …${near}…`);
    process.exitCode = 1;
  }
}
