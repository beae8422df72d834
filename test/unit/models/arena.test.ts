// The value arena, the machine's fast path and the string table: the fast path must give exactly what the
// generic path gives (the generic path runs alone when a disassembly is requested), materializing must
// survive cycles and deep nesting, and the hash table must find what it holds and nothing else.
import * as assert from 'node:assert/strict';
import { Cursor, RandomAccessFiller, runSync } from '../../../server/src/models/pickle/cursor';
import { runPickle, PickleRun } from '../../../server/src/models/pickle/machine';
import { extractRunTensors } from '../../../server/src/models/pickle/tensors';
import { decompile } from '../../../server/src/models/pickle/decompile';
import { StrTable, strHash, strHashState } from '../../../server/src/models/strTable';
import { BytesSource, ByteSource } from '../../../server/src/models/source';
import { PyList, PyTuple } from '../../../server/src/models/pickle/values';
import { PickleAsm, numpyArrayPickle, osSystemPickle, torchLikeStateDict } from './pickleAsm';

/** A source that is not in memory as far as the filler knows (no view): every refill copies. */
function chunked(bytes: Uint8Array): ByteSource {
  const b = new BytesSource(bytes);
  return { size: b.size, read: (o, n) => b.read(o, n), readInto: (d, at, o, n) => b.readInto(d, at, o, n), close() {} };
}

function run(bytes: Uint8Array, disasm: boolean, chunk?: number): PickleRun {
  const c = new Cursor(0, bytes.length);
  const filler = new RandomAccessFiller(chunk ? chunked(bytes) : new BytesSource(bytes), chunk);
  try { return runSync(runPickle(c, { disasm }), c, filler); } finally { filler.release(); }
}

/** Everything a run reports, comparable across the two paths. */
function summary(r: PickleRun) {
  return {
    complete: r.complete, error: r.error, errorOffset: r.errorOffset, end: r.end, opcodes: r.opcodes, protocol: r.protocol,
    globals: r.globals, findings: r.findings, weightsOnly: r.weightsOnlyIssues,
    value: r.complete ? decompile(r.value, 200_000).text : undefined,
    tensors: JSON.stringify(extractRunTensors(r).table.rows()),
  };
}

function stateDict(n: number, protocol: number): Uint8Array {
  const a = new PickleAsm().proto(protocol);
  a.global('collections', 'OrderedDict').binput(0).emptyTuple().reduce().binput(1).mark();
  for (let i = 0; i < n; i++) {
    a.binunicode(`layers.${i}.weight`).global('torch._utils', '_rebuild_tensor_v2')
      .mark().mark().binunicode('storage').global('torch', 'HalfStorage').binunicode(String(i)).binunicode('cpu').int(6).tuple()
      .binpersid().int(0).int(2).int(3).tuple2().int(3).int(1).tuple2().bool(i % 2 === 0)
      .global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce().longBinput(10 + i);
  }
  return a.setitems().stop().bytes();
}

describe('pickle machine: fast path and value arena', () => {
  const inputs: [string, Uint8Array][] = [
    ['torch-like state dict p2', torchLikeStateDict(2)],
    ['torch-like state dict p4', torchLikeStateDict(4)],
    ['numpy array', numpyArrayPickle()],
    ['os.system GLOBAL', osSystemPickle('GLOBAL').bytes],
    ['os.system STACK_GLOBAL', osSystemPickle('STACK_GLOBAL').bytes],
    ['300-tensor state dict p2', stateDict(300, 2)],
  ];

  // What each input imports and whether it is called, written down from how the builders above assemble them
  const EXPECTED_GLOBALS: Record<string, string[]> = {
    'torch-like state dict p2': ['collections.OrderedDict called', 'torch._utils._rebuild_tensor_v2 called', 'torch.FloatStorage', 'collections.OrderedDict called'],
    'numpy array': ['numpy.core.multiarray._reconstruct called', 'numpy.ndarray', 'numpy.dtype called'],
    'os.system GLOBAL': ['os.system called'],
    'os.system STACK_GLOBAL': ['os.system called'],
  };

  it('gives the same run with and without the fast path, also for every truncation and bit flip', () => {
    let compared = 0;
    for (const [name, bytes] of inputs) {
      // absolute first: both paths must read the intact input completely, with the globals it really has
      for (const disasm of [false, true]) {
        const r = run(bytes, disasm);
        assert.equal(r.complete, true, `${name} (disasm ${disasm}): ${r.error}`);
        const want = EXPECTED_GLOBALS[name];
        if (want) assert.deepEqual(r.globals.map((g) => `${g.module}.${g.name}${g.called ? ' called' : ''}`), want, name);
      }
      assert.equal(run(stateDict(300, 2), false).globals.length, 1 + 300 * 3, '300-tensor dict: OrderedDict + 3 globals per tensor');
      assert.deepEqual(summary(run(bytes, false)), summary(run(bytes, true)), name);
      // a small refill chunk moves every buffer boundary through the opcodes
      assert.deepEqual(summary(run(bytes, false, 7)), summary(run(bytes, true)), `${name} (7-byte refills)`);
      const cuts = bytes.length > 2000 ? 60 : bytes.length;
      for (let k = 0; k < cuts; k++) {
        const at = Math.floor((k * bytes.length) / cuts);
        assert.deepEqual(summary(run(bytes.subarray(0, at), false)), summary(run(bytes.subarray(0, at), true)), `${name} cut at ${at}`);
        const flipped = Uint8Array.from(bytes); flipped[at] ^= 0x5a;
        assert.deepEqual(summary(run(flipped, false)), summary(run(flipped, true)), `${name} flipped at ${at}`);
        compared += 2;
      }
    }
    assert.ok(compared > 200);
  });

  it('reads the 300-tensor dict: names, shapes, shared dtype, requires_grad', () => {
    const r = run(stateDict(300, 2), false);
    const t = extractRunTensors(r).table.rows();
    assert.equal(t.length, 300);
    assert.deepEqual(t[7], {
      name: 'layers.7.weight', dtype: 'float16', elementSize: 2, shape: [2, 3], stride: [3, 1], storageOffset: 0,
      storage: { key: '7', dtype: 'float16', elementSize: 2, numel: 6, location: 'cpu' }, requiresGrad: false, kind: 'tensor',
    });
    assert.equal(t[8].requiresGrad, true);
  });

  it('later duplicate dict keys win, like a Python dict', () => {
    const a = new PickleAsm().proto(2).emptyDict().mark();
    for (const [k, key] of [['a', '1'], ['b', '2'], ['a', '3']]) {
      a.binunicode(k).global('torch._utils', '_rebuild_tensor_v2')
        .mark().mark().binunicode('storage').global('torch', 'FloatStorage').binunicode(key).binunicode('cpu').int(1).tuple()
        .binpersid().int(0).emptyTuple().emptyTuple().bool(false).tuple().reduce();
    }
    const t = extractRunTensors(run(a.setitems().stop().bytes(), false)).table.rows();
    assert.deepEqual(t.map((x) => [x.name, x.storage?.key]), [['b', '2'], ['a', '3']]);
  });

  it('materializes a list that contains itself, and 100,000 nested lists without overflowing the stack', () => {
    const cyc = run(new PickleAsm().proto(2).emptyList().binput(0).binget(0).append().stop().bytes(), false);
    const v = cyc.value as PyList;
    assert.ok(v instanceof PyList);
    assert.equal(v.items[0], v);
    const n = 100_000;
    const deep = new PickleAsm().proto(2);
    for (let i = 0; i < n; i++) deep.mark();
    for (let i = 0; i < n; i++) deep.list();
    const d = run(deep.stop().bytes(), false);
    assert.ok(d.complete, d.error);
    let x = d.value, depth = 0;
    while (x instanceof PyList && x.items.length) { x = x.items[0]; depth++; }
    assert.equal(depth, n - 1);
    // a bounded neighbourhood cuts the nesting off instead
    const near = d.arena.materializeNear(d.root!, 5, 100);
    let y = near, shown = 0;
    while (y instanceof PyList && y.items.length) { y = y.items[0]; shown++; }
    assert.ok(shown <= 5, `showed ${shown} levels`);
  });

  it('keeps tuples immutable and shared values shared (DUP, memo)', () => {
    const r = run(new PickleAsm().proto(2).int(1).int(2).tuple2().dup().tuple2().stop().bytes(), false);
    const t = r.value as PyTuple;
    assert.equal(t.items[0], t.items[1]);
    assert.deepEqual((t.items[0] as PyTuple).items, [1, 2]);
  });
});

describe('scratch memory reuse', () => {
  it('a released run refuses to be read, and a run made from reused memory reads the same as a fresh one', () => {
    const bytes = stateDict(50, 2);
    const first = run(bytes, false);
    const expected = summary(first);
    first.release?.();
    assert.throws(() => first.arena.materialize(first.root!), /after release/);
    // the next runs take the released arrays from the pool (not zeroed): results must not change
    for (let i = 0; i < 3; i++) assert.deepEqual(summary(run(bytes, false)), expected);
    const other = run(torchLikeStateDict(2), false);
    assert.equal(extractRunTensors(other).table.length, 1);
  });
});

describe('StrTable', () => {
  it('finds what it holds, by key and by prefix + suffix, across growth', () => {
    const t = new StrTable<number>();
    for (let i = 0; i < 20_000; i++) assert.equal(t.add(`archive/data/${i}`, i), i);
    assert.equal(t.size, 20_000);
    assert.equal(t.add('archive/data/17', -1), 17, 'adding an existing key returns its index');
    for (const i of [0, 1, 9999, 19_999]) {
      assert.equal(t.get(`archive/data/${i}`), i);
      assert.equal(t.findJoined('archive/data/', String(i), strHash(String(i), strHashState('archive/data/'))), i);
    }
    assert.equal(t.find('archive/data/20000'), -1);
    assert.equal(t.findJoined('archive/data/', '20000', strHash('20000', strHashState('archive/data/'))), -1);
    assert.equal(t.findJoined('archive/dat', 'a/5', strHash('a/5', strHashState('archive/dat'))), 5, 'any split of the same key');
  });

  it('tells keys with the same hash apart', () => {
    const t = new StrTable<string>();
    for (const k of ['x', 'y', 'z']) t.add(k, k, 42);   // forced collisions
    assert.equal(t.get('y', 42), 'y');
    assert.equal(t.get('w', 42), undefined);
    assert.equal(strHash('abc'), strHash('c', strHashState('ab')));
  });
});
