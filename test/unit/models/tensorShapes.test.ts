// The tensor walk shares size/stride arrays between rows (recent ones first, then by hash): every row must
// still get exactly its own values.
import * as assert from 'node:assert/strict';

describe('tensor sizes and strides (shared between rows)', () => {
  it('reads each row\'s own size and stride, whatever the rows before it had (negative, bool and repeated values)', async () => {
    const { scanModelBytes } = await import('../../../server/src/models/scan');
    const { PickleAsm } = await import('./pickleAsm');
    // [size, stride] per tensor; True in a size tuple is 1, as int(True) is in Python
    const rows: [(number | boolean)[], number[]][] = [[[2, 2], [2, 1]], [[2, 2], [-1, 1]], [[true, 2], [2, 1]], [[2, 2], [2, 1]], [[3], [-1]], [[true], [1]], [[3], [1]]];
    const a = new PickleAsm().proto(2);
    a.emptyDict().mark();
    rows.forEach(([size, stride], i) => {
      a.binunicode(`t${i}`).global('torch._utils', '_rebuild_tensor_v2')
        .mark().mark().binunicode('storage').global('torch', 'FloatStorage').binunicode(String(i)).binunicode('cpu').int(64).tuple().binpersid()
        .int(0);
      a.mark(); for (const v of size) { if (typeof v === 'boolean') a.bool(v); else a.int(v); } a.tuple();
      a.mark(); for (const v of stride) a.int(v); a.tuple();
      a.bool(false).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
    });
    a.setitems().stop();
    const r = await scanModelBytes(a.bytes(), 'data.pkl', { sha256: false });
    assert.deepEqual(r.tensors.map((t) => t.shape), rows.map(([size]) => size.map(Number)));
  });
});

describe('tensor dtypes (many distinct ones)', () => {
  it('keeps each row\'s dtype when a pickle names more than 256 of them (_rebuild_tensor_v3 takes any torch global)', async () => {
    const { scanModelBytes } = await import('../../../server/src/models/scan');
    const { PickleAsm } = await import('./pickleAsm');
    const a = new PickleAsm().proto(2);
    a.emptyDict().mark();
    const n = 300;
    for (let i = 0; i < n; i++) {
      a.binunicode(`t${i}`).global('torch._utils', '_rebuild_tensor_v3')
        .mark().mark().binunicode('storage').global('torch', 'UntypedStorage').binunicode(String(i)).binunicode('cpu').int(64).tuple().binpersid()
        .int(0).int(2).tuple1().int(1).tuple1().bool(false).global('collections', 'OrderedDict').emptyTuple().reduce()
        .global('torch', `dtype${i}`).tuple().reduce();
    }
    a.setitems().stop();
    const r = await scanModelBytes(a.bytes(), 'data.pkl', { sha256: false });
    assert.equal(r.tensors.length, n);
    r.tensors.forEach((t, i) => assert.equal(t.dtype, `dtype${i}`, `row ${i}`));
  });
});
