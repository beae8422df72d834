// Directory throughput benchmark (issue #11 item 5):
//  (a) the CLI (dist/cli.js, a process as users run it, all cores) on >= 1,000 mixed benign model files written
//      by real torch / sklearn / numpy / pandas (test/fixtures/gen_real_corpus.py + dir_extra_corpus.py + one
//      50,000-tensor checkpoint), against dir_genops_ref.py: Python opening every file as the loaders do and
//      running pickletools.genops over every pickle, the floor under any Python scanner. Both timed as processes,
//      in alternating rounds (this machine's speed drifts). Targets: >= 3x the reference's files per second,
//      CLI peak RSS <= 200 MB (/usr/bin/time %M).
//  (b) the cold path: `node -e 0`, the CLI's process time on the 50,000-tensor checkpoint, and a warm in-process
//      scan of it. Target: cold <= start-up + 3x warm.
// Needs `npm run build` + `npm run compile-tests` and /usr/bin/python3 with torch, sklearn, pandas (corpus cached
// in .cache/bench/dir-corpus/). ROUNDS=n sets the rounds (default 5).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, linkSync, copyFileSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const here = join(root, 'scripts', 'bench');
const PY = process.env.SAFE_WEIGHTS_PYTHON ?? '/usr/bin/python3';
const cacheDir = join(root, '.cache', 'bench');
const corpus = join(cacheDir, 'dir-corpus');
const cliJs = join(root, 'dist', 'cli.js');
const engineJs = join(root, 'out', 'server', 'src', 'models', 'scan.js');
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const EXTRA = 600;
for (const f of [cliJs, engineJs]) if (!existsSync(f)) { console.error(`missing ${f}: run npm run build && npm run compile-tests`); process.exit(1); }

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const fmtMs = (ms) => `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
const verdictLine = (ok, what) => console.log(`${ok ? 'PASS' : 'MISS'}  ${what}`);

const SAVE_MANY = `
import sys, torch
out, n = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
sd = {f"blocks.{i // 8}.layer{i % 8}.weight": torch.randn(2, 2) for i in range(n)}
torch.save(sd, out)
`;

function countFiles(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) n += e.isDirectory() ? countFiles(join(dir, e.name)) : e.name.endsWith('.json') ? 0 : 1;
  return n;
}

function setup() {
  if (existsSync(join(corpus, 'done'))) return;
  const tmp = `${corpus}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  console.log('generating the directory corpus with torch / sklearn / numpy / pandas (cached in .cache/bench/dir-corpus/) ...');
  const real = join(root, '.cache', 'fixtures');
  // the test suite's copy of gen_real_corpus.py output when it has one, else a fresh run
  const cached = existsSync(real) ? readdirSync(real).filter((d) => d.startsWith('test_fixtures_gen_real_corpus_py-') && existsSync(join(real, d, 'manifest.json'))) : [];
  if (cached.length) execFileSync('cp', ['-r', join(real, cached[0]), join(tmp, 'real')]);
  else execFileSync(PY, [join(root, 'test', 'fixtures', 'gen_real_corpus.py'), join(tmp, 'real')], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 1_800_000 });
  execFileSync(PY, [join(here, 'dir_extra_corpus.py'), join(tmp, 'extra'), String(EXTRA)], { stdio: 'inherit', timeout: 1_800_000 });
  const many = join(cacheDir, 'many-50k.pt');
  if (existsSync(many)) { try { linkSync(many, join(tmp, 'many-50k.pt')); } catch { copyFileSync(many, join(tmp, 'many-50k.pt')); } }
  else execFileSync(PY, ['-c', SAVE_MANY, join(tmp, 'many-50k.pt'), '50000'], { stdio: 'inherit', timeout: 1_800_000 });
  execFileSync('touch', [join(tmp, 'done')]);
  rmSync(corpus, { recursive: true, force: true });
  renameSync(tmp, corpus);
}

/** Wall time (ms) and peak RSS (bytes) of a process, via /usr/bin/time. */
function timed(cmd, args) {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = performance.now() - t0;
  const rss = Number(r.stderr.trim().split('\n').pop()) * 1024;
  return { ms, rss, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function benchDirectory() {
  const files = countFiles(corpus);
  console.log(`\n(a) directory scan: ${files} model files in ${corpus} (${(statSync(join(corpus, 'many-50k.pt')).size / 1048576).toFixed(1)} MB checkpoint among them)`);
  const ours = [], ref = [], rss = [], refInner = [], ratios = [];
  let scanned = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const py = timed(PY, [join(here, 'dir_genops_ref.py'), corpus]);
    if (py.status !== 0) throw new Error(`reference failed: ${py.stderr}`);
    const pr = JSON.parse(py.stdout.trim().split('\n').pop());
    ref.push(py.ms); refInner.push(pr.seconds * 1000);
    const cli = timed(process.execPath, [cliJs, 'scan', '--format', 'json', '--fail-on', 'never', corpus]);
    if (cli.status !== 0) throw new Error(`CLI exited ${cli.status}: ${cli.stderr.slice(0, 500)}`);
    const doc = JSON.parse(cli.stdout);
    scanned = doc.files.length;
    const dangerous = doc.files.filter((f) => f.verdict === 'dangerous').length;
    if (dangerous) throw new Error(`${dangerous} benign files called dangerous`);
    ours.push(cli.ms); rss.push(cli.rss);
    ratios.push((scanned / cli.ms) / (pr.files / py.ms));
    console.log(`  round ${round + 1}: CLI ${fmtMs(cli.ms)} (${scanned} files, RSS ${(cli.rss / 1048576).toFixed(1)} MB); reference ${fmtMs(py.ms)} (${pr.files} files, ${pr.pickles} pickles, ${pr.opcodes} opcodes; ${fmtMs(pr.seconds * 1000)} inside Python)`);
  }
  const oursFps = scanned / (median(ours) / 1000), refFps = files / (median(ref) / 1000);
  console.log(`CLI: ${oursFps.toFixed(0)} files/s (median ${fmtMs(median(ours))}), peak RSS median ${(median(rss) / 1048576).toFixed(1)} MB, max ${(Math.max(...rss) / 1048576).toFixed(1)} MB`);
  console.log(`reference (genops floor): ${refFps.toFixed(0)} files/s (median ${fmtMs(median(ref))} as a process, ${fmtMs(median(refInner))} inside Python)`);
  // the machine's speed drifts over seconds: judge the median of the per-round ratios
  const ratio = median(ratios);
  verdictLine(ratio >= 3, `directory throughput ${ratio.toFixed(2)}x the genops floor's files per second, median of ${ROUNDS} rounds (${ratios.map((r) => r.toFixed(2)).join(', ')}; target >= 3x)`);
  verdictLine(Math.max(...rss) <= 200 * 1048576, `CLI peak RSS ${(Math.max(...rss) / 1048576).toFixed(1)} MB (target <= 200 MB)`);
}

async function benchCold() {
  const file = join(corpus, 'many-50k.pt');
  console.log(`\n(b) cold path on ${file}`);
  const bare = [], cold = [];
  for (let round = 0; round < ROUNDS; round++) {
    bare.push(timed(process.execPath, ['-e', '0']).ms);
    const c = timed(process.execPath, [cliJs, 'scan', '--format', 'json', file]);
    if (c.status !== 0) throw new Error(`CLI exited ${c.status}: ${c.stderr.slice(0, 500)}`);
    cold.push(c.ms);
  }
  const engine = createRequire(import.meta.url)(engineJs);
  const warm = [];
  let first;
  for (let i = 0; i < 3 + ROUNDS * 2; i++) {
    const t0 = performance.now();
    await engine.scanModelFile(file, { sha256: false });
    const ms = performance.now() - t0;
    if (i === 0) first = ms; else if (i >= 3) warm.push(ms);
  }
  const b = median(bare), c = median(cold), w = median(warm);
  console.log(`node -e 0: ${fmtMs(b)}; CLI cold process: ${fmtMs(c)}; in-process scan: first ${fmtMs(first)}, warm ${fmtMs(w)} (medians of ${ROUNDS} / ${warm.length})`);
  verdictLine(c <= b + 3 * w, `cold ${fmtMs(c)} vs start-up + 3x warm = ${fmtMs(b + 3 * w)} (cold - start-up = ${((c - b) / w).toFixed(1)}x warm)`);
}

setup();
await benchDirectory();
await benchCold();
