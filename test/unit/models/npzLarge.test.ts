// A compressed .npz member too large to inflate into memory (> 64 MB once inflated): its header is read from the
// first decompressed bytes and an object array's pickle is streamed, so a payload after 70 MB of padding is found.
import * as assert from 'node:assert/strict';
import { expectFinding, expectVerdict, loadEngine, type EngineApi } from './engine';
import { PickleAsm } from './pickleAsm';
import { buildZip, npy } from './zipAsm';

function bigObjectArrayPickle(padding: number): Buffer {
  const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(padding));
  const tail = new PickleAsm().pop().global('os', 'system').str('id').tuple1().reduce().stop().buffer();
  return Buffer.concat([Buffer.from([0x80, 4, 0x8e]), len, Buffer.alloc(padding), tail]);
}

describe('large compressed npz members', () => {
  let engine: EngineApi;
  before(function () { engine = loadEngine(this); });

  it('streams a 70 MB object array and finds the os.system call after the padding', async function () {
    this.timeout(60_000);
    const body = npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", bigObjectArrayPickle(70 << 20));
    const zip = buildZip([{ name: 'big.npy', data: body, method: 8 }]);
    assert.ok(zip.length < 1 << 20, 'the member compresses well');
    const r = await engine.scanModelBytes(zip, 'arrays.npz');
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW016' });
    expectFinding(r, { rule: 'SW001', global: 'os.system' });
  });

  it('lists a large plain array from its header without inflating the data', async function () {
    this.timeout(60_000);
    const body = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4096, 4352), }", new Uint8Array(4096 * 4352 * 4));
    const r = await engine.scanModelBytes(buildZip([{ name: 'w.npy', data: body, method: 8 }]), 'w.npz');
    expectVerdict(r, 'safe');
    assert.deepEqual(r.tensors.map((t) => [t.name, t.dtype, t.shape]), [['w', 'float32', [4096, 4352]]]);
  });
});
