// Fixture writers for the discovery and archive tests: bz2 / xz / lzma streams with Debian's Python, 7z archives with
// Debian's 7z (p7zip-full: used only here, to write fixtures; scripts/setup.sh installs it).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IS_CI, PYTHON } from '../setup';

/** bz2 / xz / lzma-alone with Debian's Python (node has no encoder for them). */
export function pyCompress(kind: 'bz2' | 'xz' | 'lzma', data: Uint8Array): Buffer {
  const expr = kind === 'bz2' ? 'bz2.compress(d)' : kind === 'xz' ? 'lzma.compress(d)' : 'lzma.compress(d, format=lzma.FORMAT_ALONE)';
  return execFileSync(PYTHON, ['-c', `import sys, bz2, lzma; d = sys.stdin.buffer.read(); sys.stdout.buffer.write(${expr})`], { input: data });
}

let sevenZipChecked: boolean | undefined;
export function has7z(): boolean {
  sevenZipChecked ??= spawnSync('7z', ['i'], { stdio: 'ignore' }).status === 0;
  return sevenZipChecked;
}
/** Debian's 7z, or a loud skip (a failure under CI=true). */
export function sevenZipOrSkip(ctx: Mocha.Context): void {
  if (has7z()) return;
  const msg = '7z fixtures need Debian\'s 7z (apt-get install -y p7zip-full; scripts/setup.sh installs it)';
  if (IS_CI) throw new Error(`CI=true: ${msg}`);
  console.warn(`\n  !!! SKIPPING: ${msg}\n`);
  ctx.skip();
}

/** Writes `files` into a fresh folder and archives them with `7z a` (extra switches first). */
export function make7z(out: string, files: Record<string, Uint8Array>, switches: string[] = []): void {
  const src = mkdtempSync(join(tmpdir(), 'sw-7zsrc-'));
  try {
    for (const [name, data] of Object.entries(files)) { mkdirSync(join(src, name, '..'), { recursive: true }); writeFileSync(join(src, name), data); }
    execFileSync('7z', ['a', '-bd', '-y', ...switches, out, ...Object.keys(files)], { cwd: src, stdio: 'ignore' });
  } finally { rmSync(src, { recursive: true, force: true }); }
}
