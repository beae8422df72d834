// Packages the .vsix (after `npm run build`): `node scripts/package-vsix.mjs [OUT]` (default safe-weights.vsix).
//
// package.json's "files" whitelist is for the npm package (the CLI and the language server for other editors), and
// vsce refuses a manifest with "files" next to a .vscodeignore. So vsce runs in a staging folder that holds the
// top-level paths .vscodeignore keeps (package.json without "files"), and .vscodeignore picks what ships there.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(process.argv[2] ?? join(root, 'safe-weights.vsix'));
const ignore = readFileSync(join(root, '.vscodeignore'), 'utf8');
const tops = new Set(ignore.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('!')).map((l) => l.slice(1).split('/')[0]));
const stage = mkdtempSync(join(tmpdir(), 'sw-vsix-'));
try {
  for (const t of tops) {
    if (t.includes('*')) throw new Error(`.vscodeignore: keep top-level paths by name, not "${t}"`);
    if (existsSync(join(root, t))) cpSync(join(root, t), join(stage, t), { recursive: true });
  }
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  delete manifest.files;
  writeFileSync(join(stage, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
  cpSync(join(root, '.vscodeignore'), join(stage, '.vscodeignore'));
  const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
  const r = spawnSync(process.execPath, [vsce, 'package', '--no-dependencies', '--out', out], { cwd: stage, stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
} finally {
  rmSync(stage, { recursive: true, force: true });
}
