// Runs every benchmark in scripts/bench/*.mjs in turn (engine, code rules, conversion, ...).
// Each prints its own ratios against a reference measured in the same run, and PASS/MISS per target.
// Exit code: non-zero only when a benchmark crashes; a MISS is reported, not fatal.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), 'bench');
const only = process.argv.slice(2);
const scripts = readdirSync(here).filter((f) => f.endsWith('.mjs') && !f.startsWith('_')).sort()
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)));
let failed = 0;
for (const s of scripts) {
  console.log(`\n=== bench: ${s} ===`);
  const r = spawnSync(process.execPath, [join(here, s)], { stdio: 'inherit' });
  if (r.status !== 0) { failed++; console.log(`!!! ${s} exited with ${r.status ?? r.signal}`); }
}
console.log(`\n${scripts.length} benchmark script(s) run, ${failed} crashed`);
process.exit(failed ? 1 : 0);
