// Seeded random mutations of real fixtures and hand-built pickles: the engine must never throw, never hang,
// keep memory bounded, and never call a file safe when its first pickle no longer parses.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ModelReport } from '../../../server/src/models/types';
import { IS_CI, PYTHON, torchFixturesOrSkip } from '../../setup';
import { EngineApi, describeReport, loadEngine } from './engine';
import { PickleAsm, numpyArrayPickle, osSystemPickle, torchLikeStateDict } from './pickleAsm';
import { torchZip } from './zipAsm';
import { prng } from '../prng';

// SW_FUZZ_SEED replays another seed; SW_FUZZ_VERBOSE=1 prints each input before it is scanned.
const SEED = Number(process.env.SW_FUZZ_SEED ?? 20240611);
// a loose bound per file: room for a loaded machine, still far below a decoder that spins
const PER_FILE_MS = 5000;

type Mutation = 'flip' | 'truncate' | 'insert' | 'length' | 'delete' | 'splice';
function mutate(src: Uint8Array, rnd: () => number): { bytes: Uint8Array; how: string } {
  const kinds: Mutation[] = ['flip', 'truncate', 'insert', 'length', 'delete', 'splice'];
  const kind = kinds[Math.floor(rnd() * kinds.length)]!;
  const b = Buffer.from(src);
  const pos = Math.floor(rnd() * Math.max(1, b.length));
  switch (kind) {
    case 'flip': {
      const n = 1 + Math.floor(rnd() * 4);
      for (let i = 0; i < n; i++) { const p = Math.floor(rnd() * b.length); b[p] = b[p]! ^ (1 << Math.floor(rnd() * 8)); }
      return { bytes: b, how: `flip x${n}` };
    }
    case 'truncate': return { bytes: b.subarray(0, pos), how: `truncate@${pos}` };
    case 'insert': {
      const ins = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 16) }, () => Math.floor(rnd() * 256)));
      return { bytes: Buffer.concat([b.subarray(0, pos), ins, b.subarray(pos)]), how: `insert ${ins.length}@${pos}` };
    }
    case 'length': {
      // Corrupt a would-be length field: a 4- or 8-byte little-endian value set huge, zero or off by a little.
      const width = rnd() < 0.5 ? 4 : 8;
      const choices = [0xffffffff, 0x7fffffff, 0, 1 + Math.floor(rnd() * 64), Math.floor(rnd() * 2 ** 31)];
      const v = choices[Math.floor(rnd() * choices.length)]!;
      for (let i = 0; i < width && pos + i < b.length; i++) b[pos + i] = i < 4 ? (v >>> (8 * i)) & 0xff : rnd() < 0.5 ? 0 : 0xff;
      return { bytes: b, how: `length${width}=${v}@${pos}` };
    }
    case 'delete': {
      const n = 1 + Math.floor(rnd() * 32);
      return { bytes: Buffer.concat([b.subarray(0, pos), b.subarray(pos + n)]), how: `delete ${n}@${pos}` };
    }
    case 'splice': {
      const from = Math.floor(rnd() * b.length);
      const n = Math.floor(rnd() * 64);
      return { bytes: Buffer.concat([b.subarray(0, pos), b.subarray(from, from + n), b.subarray(pos)]), how: `splice ${from}+${n}@${pos}` };
    }
  }
}

function forceGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

async function timedScan(engine: EngineApi, bytes: Uint8Array, name: string, label: string): Promise<ModelReport> {
  if (process.env.SW_FUZZ_VERBOSE) console.log(`    scanning ${label}`); // find the input that kills the process
  const t0 = performance.now();
  let r: ModelReport;
  // The timer also keeps the event loop alive: a scan promise that never settles would otherwise let
  // node exit silently in the middle of the run.
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`scan never settled on ${label} (waited ${2 * PER_FILE_MS} ms)`)), 2 * PER_FILE_MS);
  });
  try {
    r = await Promise.race([engine.scanModelBytes(bytes, name), hang]);
  } catch (e) {
    if ((e as Error).message.startsWith('scan never settled')) throw e;
    throw new Error(`scan threw on ${label}: ${(e as Error).stack ?? String(e)}`);
  } finally {
    clearTimeout(timer);
  }
  const ms = performance.now() - t0;
  assert.ok(ms < PER_FILE_MS, `${label} took ${ms.toFixed(0)} ms (bound ${PER_FILE_MS} ms)`);
  assert.ok(['safe', 'caution', 'dangerous', 'invalid'].includes(r.verdict), `${label}: verdict ${r.verdict}`);
  if (r.pickles.some((p) => !p.complete)) assert.notEqual(r.verdict, 'safe', `${label}: incomplete pickle called safe\n${describeReport(r)}`);
  return r;
}

/** Batch-check with Python's own pickletools which mutated pure pickles no longer parse (first stream). */
function unparsableByGenops(samples: Uint8Array[]): boolean[] | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'sw-fuzz-'));
  try {
    samples.forEach((s, i) => writeFileSync(join(dir, `${i}.pkl`), s));
    const code = [
      'import pickletools, sys, os',
      'd = sys.argv[1]; n = int(sys.argv[2]); out = []',
      'for i in range(n):',
      '    data = open(os.path.join(d, "%d.pkl" % i), "rb").read()',
      '    try:',
      '        for _ in pickletools.genops(data): pass',
      '        out.append("0")',
      '    except Exception:',
      '        out.append("1")',
      'print("".join(out))',
    ].join('\n');
    const r = spawnSync(PYTHON, ['-c', code, dir, String(samples.length)], { encoding: 'utf8', timeout: 120_000 });
    if (r.error && !IS_CI) { console.warn(`\n  !!! genops oracle skipped: ${r.error.message}\n`); return undefined; }
    if (r.status !== 0) throw new Error(`genops oracle failed: ${r.stderr}`);
    return r.stdout.trim().split('').map((c) => c === '1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function expectSafeOrCaution(r: ModelReport): void {
  assert.ok(r.verdict === 'safe' || r.verdict === 'caution', `unmutated real pickle must not be ${r.verdict}\n${describeReport(r)}`);
}

/** Every sample Python's pickletools cannot parse must not be called safe; at least `min` such samples exist. */
function neverSafeWhenUnparsable(samples: { bytes: Uint8Array; label: string }[], reports: ModelReport[], min: number): void {
  const broken = unparsableByGenops(samples.map((s) => s.bytes));
  if (!broken) return;
  let checked = 0;
  broken.forEach((bad, i) => {
    if (!bad) return;
    checked++;
    assert.notEqual(reports[i]!.verdict, 'safe', `${samples[i]!.label}: python's pickletools cannot parse it, engine said safe\n${describeReport(reports[i]!)}`);
  });
  assert.ok(checked > min, `only ${checked} unparsable samples: mutations too weak`);
}

describe('fuzzing the engine with mutated inputs', function () {
  this.timeout(300_000);
  let engine: EngineApi;
  let gc: () => void;
  before(function () { engine = loadEngine(this); gc = forceGc(); });

  const handBuilt = (): [string, Uint8Array][] => [
    ['state dict p2', torchLikeStateDict(2)],
    ['state dict p4 framed', new PickleAsm().proto(4).framed(new PickleAsm().raw(torchLikeStateDict(4).slice(2))).bytes()],
    ['numpy', numpyArrayPickle()],
    ['os.system', osSystemPickle('STACK_GLOBAL').bytes],
    ['memo tricks', new PickleAsm().proto(4).str('os').memoize().str('system').memoize().pop().pop().binget(0).binget(1).stackGlobal().callWithString('id').stop().bytes()],
  ];

  it(`hand-built pickles: 600 mutations (seed ${SEED}) finish, stay bounded, and unparsable ones are never safe`, async function () {
    const rnd = prng(SEED);
    const samples: { bytes: Uint8Array; label: string }[] = [];
    const seeds = handBuilt();
    for (let i = 0; i < 600; i++) {
      const [name, src] = seeds[i % seeds.length]!;
      const m = mutate(src, rnd);
      samples.push({ bytes: m.bytes, label: `${name} #${i} ${m.how} (seed ${SEED})` });
    }
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    const reports: ModelReport[] = [];
    for (const s of samples) reports.push(await timedScan(engine, s.bytes, 'fuzz.pkl', s.label));
    gc();
    const grown = process.memoryUsage().heapUsed - heap0;
    assert.ok(grown < 64 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MB over 600 scans`);
    neverSafeWhenUnparsable(samples, reports, 100);
  });

  it('mutated torch zips (hand-built, stored and deflated): no crash, no hang', async function () {
    const rnd = prng(SEED + 1);
    const srcs = [torchZip(torchLikeStateDict(2)), torchZip(torchLikeStateDict(2), { method: 8 }), torchZip(torchLikeStateDict(4), { zip64: true })];
    for (let i = 0; i < 300; i++) {
      const m = mutate(srcs[i % srcs.length]!, rnd);
      await timedScan(engine, m.bytes, 'fuzz.pt', `zip #${i} ${m.how} (seed ${SEED + 1})`);
    }
  });

  it('mutated real torch data.pkl pickles: finish, and unparsable ones are never safe', async function () {
    const fx = torchFixturesOrSkip(this);
    // Pull every data.pkl out of the real torch zips with python's zipfile (node has no unzip of its own).
    const dir = mkdtempSync(join(tmpdir(), 'sw-fuzz-pkl-'));
    let pickles: Uint8Array[];
    try {
      const code = [
        'import json, os, sys, zipfile',
        'src, out, names = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]); n = 0',
        'for name in names:',
        '    p = os.path.join(src, name)',
        '    if not zipfile.is_zipfile(p): continue',
        '    z = zipfile.ZipFile(p)',
        '    for m in z.namelist():',
        '        if m.endswith("data.pkl"):',
        '            open(os.path.join(out, "%d.pkl" % n), "wb").write(z.read(m)); n += 1',
        'print(n)',
      ].join('\n');
      const r = spawnSync(PYTHON, ['-c', code, fx.dir, dir, JSON.stringify(Object.keys(fx.manifest.files))], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const n = Number(r.stdout.trim());
      assert.ok(n >= 8, `only ${n} data.pkl members found`);
      pickles = Array.from({ length: n }, (_, i) => new Uint8Array(readFileSync(join(dir, `${i}.pkl`))));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const p of pickles) expectSafeOrCaution(await timedScan(engine, p, 'data.pkl', 'unmutated data.pkl'));
    const rnd = prng(SEED + 3);
    const samples: { bytes: Uint8Array; label: string }[] = [];
    for (let i = 0; i < 400; i++) {
      const m = mutate(pickles[i % pickles.length]!, rnd);
      samples.push({ bytes: m.bytes, label: `data.pkl[${i % pickles.length}] #${i} ${m.how} (seed ${SEED + 3})` });
    }
    const reports: ModelReport[] = [];
    for (const s of samples) reports.push(await timedScan(engine, s.bytes, 'data.pkl', s.label));
    neverSafeWhenUnparsable(samples, reports, 50);
  });

  it('mutated real torch / numpy / joblib fixtures: no crash, no hang, bounded memory', async function () {
    const fx = torchFixturesOrSkip(this);
    const rnd = prng(SEED + 2);
    const names = Object.keys(fx.manifest.files);
    const srcs = names.map((n) => [n, new Uint8Array(readFileSync(join(fx.dir, n)))] as const);
    gc();
    const heap0 = process.memoryUsage().heapUsed;
    for (let i = 0; i < 500; i++) {
      const [name, src] = srcs[i % srcs.length]!;
      const m = mutate(src, rnd);
      await timedScan(engine, m.bytes, name, `${name} #${i} ${m.how} (seed ${SEED + 2})`);
    }
    gc();
    const grown = process.memoryUsage().heapUsed - heap0;
    assert.ok(grown < 64 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MB`);
  });
});
