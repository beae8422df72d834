// `postinstall`: in a checkout (sources present: a developer's clone, or the clone pre-commit installs the hook from)
// `npm install` / `npm ci` builds dist/; in the installed npm package (dist/ shipped, no sources) it does nothing.
// Not `prepare` or `prepack`: npm runs those on `npm pack` too and prints their banners on stdout, where pre-commit
// reads the tarball name (`npm pack` in its language: node install), so the hook would not install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (existsSync(join(root, 'scripts', 'build.mjs')) && existsSync(join(root, 'server', 'src'))) {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  process.exitCode = r.status ?? 1;
}
