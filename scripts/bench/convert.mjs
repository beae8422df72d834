// Conversion benchmark (issue 5 targets): converting a >= 2 GB torch zip checkpoint to .safetensors.
//  - throughput against `cp` of the same file, measured in the same run: target >= 0.5x
//    (the converter also reads every written block back and compares it with the source; cp does not).
//    The durable mode (fsync before the rename, CLI --fsync) is measured against cp + fsync for information.
//  - peak RSS of the converting process: target <= 300 MB; a small checkpoint alongside shows it does not grow with size
// Needs `npm run compile-tests` and /usr/bin/python3 with torch (the checkpoint is cached in .cache/bench/).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PY = process.env.SAFE_WEIGHTS_PYTHON ?? '/usr/bin/python3';
const cacheDir = join(root, '.cache', 'bench');
const convertJs = join(root, 'out', 'server', 'src', 'models', 'convert', 'convert.js');
mkdirSync(cacheDir, { recursive: true });
if (!existsSync(convertJs)) { console.error(`missing ${convertJs}: run npm run compile-tests`); process.exit(1); }

const fmtMB = (b) => `${(b / 1048576).toFixed(1)} MB`;
const verdictLine = (ok, what) => console.log(`${ok ? 'PASS' : 'MISS'}  ${what}`);

const SAVE = `
import sys, torch
out, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
sd = {}
for i in range(n):
    sd[f"layers.{i}.weight"] = torch.randn(per // 1024, 1024)
    sd[f"layers.{i}.bias"] = torch.randn(1024).half()
sd["tied.a"] = sd["layers.0.bias"]
sd["view.t"] = sd["layers.1.weight"][:256, :].t()
torch.save({"state_dict": sd, "epoch": 1}, out)
`;

function generate(name, n, per) {
  const out = join(cacheDir, name);
  if (existsSync(out)) return out;
  const need = n * per * 4 * 3 + (1 << 30);   // source + cp copy + converted copy
  const fs = statfsSync(cacheDir);
  if (fs.bavail * fs.bsize < need) {
    console.log(`not enough free disk for the benchmark (${fmtMB(fs.bavail * fs.bsize)} free, ${fmtMB(need)} needed)`);
    process.exit(1);
  }
  const tmp = `${out}.tmp-${process.pid}`;
  console.log(`generating ${name} with torch (cached in .cache/bench/) ...`);
  execFileSync(PY, ['-c', SAVE, tmp, String(n), String(per)], { stdio: 'inherit', timeout: 1_800_000 });
  renameSync(tmp, out);
  return out;
}

/** Converts in a child process that reports its own wall time and peak RSS. */
function convertInChild(input, output, durable = false) {
  const code = `
    const { convertToSafetensors } = require(${JSON.stringify(convertJs)});
    const t0 = process.hrtime.bigint();
    convertToSafetensors(process.argv[1], process.argv[2], { overwrite: true, durable: ${durable} }).then((r) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      console.log(JSON.stringify({ ms, tensors: r.tensors, bytes: r.bytes, maxRssKB: process.resourceUsage().maxRSS }));
    }, (e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', code, input, output], { encoding: 'utf8', timeout: 1_800_000 });
  if (r.status !== 0) throw new Error(`conversion failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function timeCp(input, output, durable) {
  rmSync(output, { force: true });
  execFileSync('sync');   // no dirty pages from an earlier step slow this one down
  const t0 = process.hrtime.bigint();
  execFileSync('cp', [input, output]);
  if (durable) execFileSync('sync', [output]);   // fsync, as the converter does before its rename
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const big = generate('convert-2g.pt', 8, 64 * 1024 * 1024);   // 8 × 256 MB float32 + small extras
const small = generate('convert-small.pt', 2, 256 * 1024);
const size = statSync(big).size;
console.log(`file: convert-2g.pt ${fmtMB(size)}`);
const cpOut = join(cacheDir, 'convert-2g.cp');
const stOut = join(cacheDir, 'convert-2g.safetensors');
const smallOut = join(cacheDir, 'convert-small.safetensors');
try {
  execFileSync('sh', ['-c', `cat "${big}" > /dev/null`]);   // same page-cache state for both
  const cpMs = Math.min(timeCp(big, cpOut, false), timeCp(big, cpOut, false));
  const cpSyncMs = Math.min(timeCp(big, cpOut, true), timeCp(big, cpOut, true));
  rmSync(cpOut, { force: true });
  // best of two, like cp; the machine is shared, so single runs are noisy
  const runs = [0, 1].map(() => { rmSync(stOut, { force: true }); execFileSync('sync'); return convertInChild(big, stOut); });
  const conv = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
  conv.maxRssKB = Math.max(...runs.map((r) => r.maxRssKB));
  rmSync(stOut, { force: true }); execFileSync('sync');
  const durable = convertInChild(big, stOut, true);
  const smallConv = convertInChild(small, smallOut);
  const cpRate = size / cpMs / 1e3, convRate = size / conv.ms / 1e3;
  const ratio = convRate / cpRate;
  console.log(`cp:      ${cpMs.toFixed(0)} ms (${cpRate.toFixed(0)} MB/s)`);
  console.log(`convert: ${conv.ms.toFixed(0)} ms (${convRate.toFixed(0)} MB/s), ${conv.tensors} tensors, ${fmtMB(conv.bytes)} written and verified`);
  console.log(`durable convert (fsync): ${durable.ms.toFixed(0)} ms; cp+fsync: ${cpSyncMs.toFixed(0)} ms (${(size / cpSyncMs / 1e3).toFixed(0)} MB/s); ratio ${(cpSyncMs / durable.ms).toFixed(2)}x`);
  console.log(`throughput ratio convert/cp: ${ratio.toFixed(2)}x (the converter also reads back and compares every block it writes)`);
  verdictLine(ratio >= 0.5, `throughput >= 0.5x cp (${ratio.toFixed(2)}x)`);
  const rss = conv.maxRssKB * 1024;
  console.log(`peak RSS: ${fmtMB(rss)} on ${fmtMB(size)}; ${fmtMB(smallConv.maxRssKB * 1024)} on ${fmtMB(statSync(small).size)}`);
  verdictLine(rss <= 300 * 1048576, `peak RSS <= 300 MB (${fmtMB(rss)})`);
} finally {
  rmSync(cpOut, { force: true });
  rmSync(stOut, { force: true });
  rmSync(smallOut, { force: true });
}
