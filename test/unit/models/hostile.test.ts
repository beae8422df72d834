// Hostile structure: small pickles built to make a scanner do far more work, or hold far more memory, than their
// size (a million nested containers, deep MARK stacks, a million memo entries, memo DAGs whose tree is
// exponential, long REDUCE / BUILD / rebuild chains, million-item SETITEMS / APPENDS, one tensor reached a million
// times through a long key), plain, inside a torch zip and a joblib file, through the report, the JSON output and
// the Inspector's disassembly. Each case states the absolute outcome a correct engine gives: the verdict, the
// finding and severity where a limit is reached, and the counts a display limit must report. Timing is measured
// by scripts/bench/hostile.mjs, not here; the only memory check is that a million containers make no JavaScript
// object each (the collector then has nothing to trace), which holds on any machine.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { deflateSync } from 'node:zlib';
import type { ModelReport } from '../../../server/src/models/types';
import { Cursor, RandomAccessFiller, runSync } from '../../../server/src/models/pickle/cursor';
import { machineLimits, runPickle, type PickleRun } from '../../../server/src/models/pickle/machine';
import { decompile, decompileArena } from '../../../server/src/models/pickle/decompile';
import { BytesSource } from '../../../server/src/models/source';
import { runScan } from '../../../server/src/cli/main';
import { EngineApi, describeReport, expectFinding, expectNoFinding, expectVerdict, loadEngine } from './engine';
import { PickleAsm, numpyArrayPickle, torchLikeStateDict } from './pickleAsm';
import { torchZip } from './zipAsm';

// ---- building pickles byte by byte (a million opcodes through PickleAsm's number[] would be slow) ----------
type Part = string | Uint8Array;
const bytesOf = (p: Part): Buffer => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p));
const cat = (...parts: Part[]): Buffer => Buffer.concat(parts.map(bytesOf));
/** cat() of an array too long to spread into a call */
const catAll = (parts: Part[]): Buffer => Buffer.concat(parts.map(bytesOf));
const rep = (p: Part, n: number): Buffer => { const b = bytesOf(p); return Buffer.alloc(b.length * n, b); };
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const P2 = '\x80\x02', P4 = '\x80\x04';
const MILLION = 1_000_000;
/** GLOBAL collections.OrderedDict, memoized at 0 */
const OD = 'ccollections\nOrderedDict\nq\x00';
/** torch._utils._rebuild_tensor_v2(persistent_load(('storage', FloatStorage, '0', 'cpu', 1)), 0, (1,), (1,), False, OrderedDict()) */
const TENSOR = cat('ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ',
  'K\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR');

/** A list nested `n` deep: EMPTY_LIST x n, APPEND x n-1. */
const nestedLists = (n: number) => cat(P2, rep(']', n), rep('a', n - 1), '.');
/** l_i = [l_{i-1}, l_{i-1}] through the memo, `levels` deep; l_0 = [leaf...] (`leaf`: opcodes pushing one value). */
function memoDagList(levels: number, leaf: Part = 'N'): Buffer {
  const parts: Part[] = [P2, '](', leaf, 'er', u32(0)];
  for (let i = 1; i <= levels; i++) parts.push(']r', u32(i), '(j', u32(i - 1), 'j', u32(i - 1), 'e');
  parts.push('.');
  return catAll(parts);
}

function run(bytes: Uint8Array, opts = {}): PickleRun {
  const c = new Cursor(0, bytes.length);
  const filler = new RandomAccessFiller(new BytesSource(bytes));
  try { return runSync(runPickle(c, opts), c, filler); } finally { filler.release(); }
}

/** JavaScript heap the run of `bytes` leaves behind (its values stay reachable while measured). */
function heapOfRun(bytes: Uint8Array): { run: PickleRun; heap: number } {
  const before = process.memoryUsage().heapUsed;
  const r = run(bytes);
  const heap = process.memoryUsage().heapUsed - before;
  return { run: r, heap };
}

let engine: EngineApi;
const scan = (bytes: Uint8Array, name = 'model.pkl'): Promise<ModelReport> => engine.scanModelBytes(bytes, name, { sha256: false });

/** The scan read the whole pickle, found nothing to report, and said so: safe, one complete stream. */
function expectCleanSafe(r: ModelReport): void {
  expectVerdict(r, 'safe');
  assert.ok(r.pickles.length >= 1 && r.pickles.every((p) => p.complete), describeReport(r));
  expectNoFinding(r, { severity: 'dangerous' });
  expectNoFinding(r, { rule: 'SW009' });
}

describe('hostile structure: bounded work, limits reported', function () {
  this.timeout(120_000);
  before(function () { engine = loadEngine(this); });

  describe('a million nested or wide containers read whole, with no object per value', () => {
    const cases: [string, Buffer][] = [
      ['a list nested a million deep (EMPTY_LIST, APPEND)', nestedLists(MILLION)],
      ['a million MARKs closed by LIST', cat(P2, rep('(', MILLION), rep('l', MILLION), '.')],
      ['dicts nested half a million deep (SETITEM)', cat(P2, '}', rep('K\x00}', MILLION / 2), rep('s', MILLION / 2), '.')],
      ['a tuple nested two million deep (TUPLE1)', cat(P2, 'N', rep('\x85', 2 * MILLION), '.')],
      ['two million MARKs never closed', cat(P2, rep('(', 2 * MILLION), 'N.')],
      ['one list of a million items (APPENDS)', cat(P2, '](', rep('K\x01', MILLION), 'e.')],
      ['one dict of a million items from one MARK (DICT)', cat(P2, '(', rep('K\x00K\x01', MILLION / 2), 'd.')],
      ['SETITEM 400,000 times into one dict', cat(P2, '}', rep('K\x00K\x01s', 400_000), '.')],
      ['a million MEMOIZEd values', cat(P4, '](', rep('K\x01\x94', MILLION), 'e.')],
    ];
    for (const [name, bytes] of cases) {
      it(name, async () => expectCleanSafe(await scan(bytes)));
    }

    it('a million containers leave no JavaScript object each behind (values live in typed columns)', () => {
      for (const bytes of [nestedLists(MILLION), cat(P2, rep('(', MILLION), rep('l', MILLION), '.'), cat(P2, '}', rep('K\x00}', MILLION / 2), rep('s', MILLION / 2), '.')]) {
        const { run: r, heap } = heapOfRun(bytes);
        assert.ok(r.complete, r.error);
        assert.ok(r.arena.n > MILLION / 2);
        // an object per container is >= 40 bytes: 40 MB and more for these; the columns are off the heap
        assert.ok(heap < 24 << 20, `the run left ${(heap / 1048576).toFixed(1)} MB of JavaScript heap for ${r.arena.n} values`);
        r.release?.();
      }
    });

    it('a million bytes values, floats and out-of-band buffers leave no object each either', () => {
      for (const bytes of [cat('\x80\x03](', rep('C\x00', MILLION), 'e.'), cat(P2, '](', rep('G\x3f\xf0\x00\x00\x00\x00\x00\x00', 500_000), 'e.'),
        cat('\x80\x05](', rep('\x97', MILLION), 'e.')]) {
        const { run: r, heap } = heapOfRun(bytes);
        assert.ok(r.complete, r.error);
        assert.ok(heap < 24 << 20, `the run left ${(heap / 1048576).toFixed(1)} MB of JavaScript heap`);
        r.release?.();
      }
    });
  });

  describe('calls of a safe global chained half a million deep', () => {
    it('REDUCE: OrderedDict((OrderedDict((...,)),)) 500,000 deep', async () => {
      const n = 500_000;
      expectCleanSafe(await scan(cat(P2, OD, rep('h\x00', n), ')R', rep('\x85R', n - 1), '.')));
    });
    it('BUILD: 400,000 OrderedDict() objects, each the state of the one before', async () => {
      const n = 400_000;
      const bytes = cat(P2, OD, rep('h\x00)R', n), rep('b', n - 1), '.');
      expectCleanSafe(await scan(bytes));
      const { run: r, heap } = heapOfRun(bytes);
      assert.ok(r.complete, r.error);
      assert.ok(heap < 24 << 20, `the BUILD states left ${(heap / 1048576).toFixed(1)} MB of JavaScript heap`);
      r.release?.();
    });
    it('SETITEMS of a million items into an OrderedDict() object', async () => {
      expectCleanSafe(await scan(cat(P2, OD, ')R(', rep('K\x00K\x01', MILLION / 2), 'u.')));
    });
    it('APPENDS of a million items onto an OrderedDict() object (spreading them into a call overflowed the stack)', async () => {
      const r = await scan(cat(P2, OD, ')R(', rep('K\x01', MILLION), 'e.'));
      assert.ok(r.pickles[0]?.complete, describeReport(r));
      expectNoFinding(r, { rule: 'SW009' });
    });
    it('_rebuild_parameter nested 300,000 deep around one tensor (the rebuild reader recursed once per level)', async () => {
      const n = 300_000;
      const r = await scan(cat(P2, 'ctorch._utils\n_rebuild_parameter\nq\x00', rep('h\x00', n), TENSOR, rep('\x89)\x87R', n), '.'));
      expectCleanSafe(r);
    });
  });

  describe('memo DAGs: each value walked once, the tree never expanded', () => {
    it('a 40-level list DAG (2^40 paths) with a tensor at the bottom lists that tensor once', async () => {
      const r = await scan(memoDagList(40, TENSOR));
      expectVerdict(r, 'safe');
      assert.equal(r.tensorCount, 1, describeReport(r));
      assert.equal(r.tensors[0]!.name, Array(41).fill('0').join('.'));
      assert.ok(!r.tensorsTruncated);
    });
    it('a 130,000-level tuple DAG', async () => {
      const n = 130_000, parts: Part[] = [P2, ')r', u32(0)];
      for (let i = 1; i <= n; i++) parts.push('j', u32(i - 1), 'j', u32(i - 1), '\x86r', u32(i));
      parts.push('.');
      expectCleanSafe(await scan(catAll(parts)));
    });
    it('one small list referenced a million times', async () => {
      expectCleanSafe(await scan(cat(P2, ']q\x00K\x01a](', rep('h\x00', MILLION), 'e.')));
    });
    it('a tensor nested 10,000 lists deep is listed (the walk no longer stops at 200 levels)', async () => {
      const n = 10_000;
      const r = await scan(cat(P2, rep(']', n), TENSOR, rep('a', n), '.'));
      expectVerdict(r, 'safe');
      assert.equal(r.tensorCount, 1, describeReport(r));
      assert.equal(r.tensors[0]!.name, Array(n).fill('0').join('.'));
    });
  });

  describe('the tensor inventory: a display limit, counted', () => {
    it('one tensor reached 500,000 times under a 1 MB key: listed rows none (names over 64 KB), all counted as omitted', async () => {
      const n = 500_000;
      const bytes = cat(P2, '}X', u32(1 << 20), Buffer.alloc(1 << 20, 0x41), '](', TENSOR, 'q\x01', rep('h\x01', n - 1), 'es.');
      const r = await scan(bytes);
      expectVerdict(r, 'safe');
      assert.equal(r.tensorCount, 0);
      assert.equal(r.tensorsTruncated, true);
      assert.equal(r.tensorsOmitted, n);
    });
    it('names over the budget (4 bytes per pickle byte + 16 MB): the first rows listed, the rest counted', async () => {
      // a 1,000-byte key over a list holding one tensor 100,000 times: 100 MB of names from a 0.2 MB pickle
      const n = 100_000;
      const bytes = cat(P2, '}X', u32(1000), Buffer.alloc(1000, 0x42), '](', TENSOR, 'q\x01', rep('h\x01', n - 1), 'es.');
      const r = await scan(bytes);
      expectVerdict(r, 'safe');
      assert.equal(r.tensorsTruncated, true);
      assert.ok(r.tensorCount > 10_000 && r.tensorCount < n, `listed ${r.tensorCount}`);
      assert.equal(r.tensorCount + (r.tensorsOmitted ?? 0), n);
      assert.equal(r.tensors[5]!.name, `${'B'.repeat(1000)}.5`);
    });
    it('an ordinary checkpoint reports no omission', async () => {
      const r = await scan(torchZip(torchLikeStateDict(2)), 'model.pt');
      assert.equal(r.tensorCount, 1);
      assert.ok(!r.tensorsTruncated && r.tensorsOmitted === undefined, describeReport(r));
    });
  });

  describe('inside containers and through every output', () => {
    const deep = nestedLists(MILLION);
    it('as data.pkl of a torch zip', async () => {
      const r = await scan(torchZip(deep), 'model.pt');
      assert.equal(r.format, 'pytorch-zip');
      expectCleanSafe(r);
    });
    it('as a zlib-compressed joblib file', async () => {
      const r = await scan(deflateSync(deep), 'model.joblib');
      assert.equal(r.format, 'joblib');
      expectCleanSafe(r);
    });
    it('as the sys_info pickle of a legacy torch.save file (read a few levels deep, not built whole)', async () => {
      const legacy = cat(P2, '\x8a\x0a', Buffer.from('6cfc9c46f9206aa85019', 'hex'), '.', P2, 'M\xe9\x03.', deep, P2, '}.', P2, '].');
      const r = await scan(legacy, 'model.pt');
      assert.equal(r.format, 'pytorch-legacy');
      expectCleanSafe(r);
    });
    it('through the CLI as JSON', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sw-hostile-'));
      try {
        const file = join(dir, 'deep.pkl');
        writeFileSync(file, deep);
        let out = '';
        const sink = new Writable({ write(chunk, _enc, cb) { out += String(chunk); cb(); } });
        const errSink = Object.assign(new Writable({ write(_c, _e, cb) { cb(); } }), { isTTY: false }) as unknown as NodeJS.WriteStream;
        const code = await runScan(['--format', 'json', '--fail-on', 'never', file], sink, errSink);
        assert.equal(code, 0);
        const j = JSON.parse(out) as { files: { verdict: string; findings: unknown[] }[] };
        assert.equal(j.files.length, 1);
        assert.equal(j.files[0]!.verdict, 'safe');
        // and a display limit reached shows in the JSON as a count
        const fan = join(dir, 'fanout.pkl');
        writeFileSync(fan, cat(P2, '}X', u32(1 << 16), Buffer.alloc(1 << 16, 0x41), '](', TENSOR, 'q\x01', rep('h\x01', 999), 'es.'));
        out = '';
        assert.equal(await runScan(['--format', 'json', '--fail-on', 'never', fan], sink, errSink), 0);
        const k = JSON.parse(out) as { files: { verdict: string; tensors: number; tensorsOmitted?: number }[] };
        assert.deepEqual([k.files[0]!.verdict, k.files[0]!.tensors, k.files[0]!.tensorsOmitted], ['safe', 0, 1000]);
      } finally { rmSync(dir, { recursive: true, force: true }); }
    });
  });

  describe('the Inspector\'s disassembly and decompiled views: bounded, saying what they left out', () => {
    let dir: string;
    before(() => { dir = mkdtempSync(join(tmpdir(), 'sw-hostile-')); });
    after(() => rmSync(dir, { recursive: true, force: true }));
    const disassemble = (name: string, bytes: Uint8Array) => {
      const file = join(dir, name);
      writeFileSync(file, bytes);
      return engine.disassembleModelFile(file);
    };

    it('a million opcodes: 200,000 lines shown, the rest counted; the decompiled text cut with a count of values', async () => {
      const d = await disassemble('deep.pkl', nestedLists(MILLION));
      assert.equal(d.truncated, true);
      assert.match(d.text, /# … disassembly truncated: 200000 of 2000001 opcodes shown, 1800001 left out/);
      assert.equal(d.text.split('\n').filter((l) => /^ +\d+: /.test(l)).length, 200_000);
      // the nesting is cut at 60 levels; nothing here is long, so the text is whole but for the cut levels
      assert.ok(d.decompiled.length < 100_000, `decompiled ${d.decompiled.length} chars`);
    });
    it('a 40-level memo DAG decompiles to at most 1,000,000 characters and says how many values it did not show', async () => {
      const d = await disassemble('dag.pkl', memoDagList(40, 'K\x07'));
      assert.equal(d.truncated, true);
      const m = /# … truncated at 1000000 characters: (\d+) of the (\d+) values it builds are not shown/.exec(d.decompiled);
      assert.ok(m, d.decompiled.slice(-300));
      // 41 lists + the int 7: the first descent shows every one of them
      assert.equal(Number(m[2]), 42);
      assert.equal(Number(m[1]), 0);
      assert.ok(d.decompiled.length < 1_000_000 + 1000);
    });
    it('a wide dict is cut with the count of the values not shown', async () => {
      const n = 200_000, parts: Part[] = [P2, '}('];
      for (let i = 0; i < n; i++) parts.push(`\x8c\x06${i.toString(36).padStart(6, '0')}K\x01`);
      parts.push('u.');
      const d = await disassemble('wide.pkl', catAll(parts));
      const m = /# … truncated at 1000000 characters: (\d+) of the (\d+) values it builds are not shown/.exec(d.decompiled);
      assert.ok(m, d.decompiled.slice(-300));
      assert.equal(Number(m[2]), n + 2);   // the dict, n keys, the int 1
      assert.ok(Number(m[1]) > n / 2 && Number(m[1]) < n, m[0]);
    });
    it('a thousand pickles in one file share one budget of lines and characters', async () => {
      const one = cat(P2, '](', rep('K\x01', 300), 'e.');
      const dag = memoDagList(30);
      const d = await disassemble('many.pkl', cat(rep(one, 999), dag));
      const shown = d.text.split('\n').filter((l) => /^ +\d+: /.test(l)).length;
      assert.ok(shown <= 200_000, `${shown} lines`);
      assert.match(d.text, /# … disassembly truncated: 0 of \d+ opcodes shown/);
      assert.ok(d.decompiled.length < 1_000_000 + 1000 * 80, `decompiled ${d.decompiled.length} chars`);
      assert.equal(d.truncated, true);
    });
    it('renders ordinary values exactly as before (the arena decompiler against the object one)', () => {
      const samples: Uint8Array[] = [
        torchLikeStateDict(2), torchLikeStateDict(4), numpyArrayPickle(),
        new PickleAsm().proto(4).mark().emptySet().mark().int(1).str('a').additems().mark().int(2).frozenset().tuple2()
          .emptyList().mark().bool(true).none().binfloat(1.5).binfloat(2).shortBinbytes('xy').bytearray8('z').appends()
          .global('collections', 'OrderedDict').emptyTuple().reduce().mark().str('k').emptyList().setitems().emptyDict().str('s').int(3).setitem().build()
          .emptyList().binput(0).binget(0).append()
          .tuple().stop().bytes(),
      ];
      for (const bytes of samples) {
        const r = run(bytes);
        assert.ok(r.complete, r.error);
        assert.equal(decompileArena(r.arena, r.root, 200_000).text, decompile(r.value, 200_000).text);
      }
    });
  });

  describe('a limit that stops the reading fails closed', () => {
    const saved = { ...machineLimits };
    afterEach(() => Object.assign(machineLimits, saved));
    it('past the opcode limit: SW009 dangerous, though every opcode read was harmless', async () => {
      machineLimits.opcodes = 10_000;
      const bytes = nestedLists(20_000);
      const r = await scan(bytes);
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW009', severity: 'dangerous' });
      machineLimits.opcodes = saved.opcodes;
      expectCleanSafe(await scan(bytes));
    });
    it('past the stack limit: SW009 dangerous', async () => {
      machineLimits.stack = 50_000;
      const r = await scan(cat(P2, '(', rep('N', 100_000), 'l.'));
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW009', severity: 'dangerous' });
    });
  });
});
