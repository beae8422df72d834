// Byte-string tables and sealed columns keep tensor names and storage keys: every string must come back
// byte-exact, findable by its bytes, before and after seal().
import * as assert from 'node:assert/strict';
import { ByteStrings, ScratchColumn, bytesHash } from '../../../server/src/models/strTable';
import { StorageTable } from '../../../server/src/models/pickle/tensors';
import { prng } from '../prng';

const enc = new TextEncoder();

describe('ByteStrings', () => {
  it('finds every string it holds and none it does not, across growth, seal and re-indexing', () => {
    const rand = prng(7);
    const table = new ByteStrings(4, true);
    const seen = new Map<string, number>();
    const words = ['a', 'é', '日本', 'layer', '.', '0', 'weight', '\u{1F600}', 'long'.repeat(80)];   // 320 bytes: past one length byte
    for (let n = 0; n < 5000; n++) {
      let s = '';
      const parts = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < parts; k++) s += words[Math.floor(rand() * words.length)] + (rand() < 0.5 ? String(Math.floor(rand() * 300)) : '');
      const b = enc.encode(s);
      const h = bytesHash(b, 0, b.length);
      const found = table.find(b, 0, b.length, h);
      if (seen.has(s)) { assert.equal(found, seen.get(s), s); continue; }
      assert.equal(found, -1, `${s} found before it was added`);
      seen.set(s, table.push(b, 0, b.length, h));
    }
    const check = () => {
      for (const [s, i] of seen) {
        assert.equal(table.text(i), s);
        const b = enc.encode(s);
        assert.equal(table.find(b, 0, b.length, bytesHash(b, 0, b.length)), i);
        const missing = enc.encode(s + '#');
        assert.equal(table.find(missing, 0, missing.length, bytesHash(missing, 0, missing.length)), -1);
      }
    };
    check();
    table.seal();
    // sealed: read back out of order, then in order, then searched (which builds the index again)
    for (const [s, i] of [...seen].reverse()) assert.equal(table.text(i), s);
    check();
    assert.throws(() => table.push(enc.encode('x'), 0, 1), /after seal/);
  });
});

describe('StorageTable keys (torch\'s "0", "1", "2"... found by their digits until another key comes)', () => {
  const add = (t: StorageTable, key: string): number => { const b = enc.encode(key); return t.add(b, 0, b.length, bytesHash(b, 0, b.length), 0, 1, 'cpu'); };
  const find = (t: StorageTable, key: string): number => { const b = enc.encode(key); return t.findBytes(b, 0, b.length, bytesHash(b, 0, b.length)); };
  for (const [name, keys] of [
    ['dense, then a key that breaks the pattern', ['0', '1', '2', '3', '885810928', '4', 'x', '10']],
    ['out of order from the start', ['1', '0', '2']],
    ['leading zeros and look-alikes', ['0', '1', '01', '001', '2', ' 3', '3', '1e3', '-4', '4']],
    ['longer than nine digits', ['0', '1234567890', '1']],
  ] as const) {
    it(name, () => {
      const t = new StorageTable();
      const got = new Map<string, number>();
      for (const k of keys) {
        assert.equal(find(t, k), -1, `${k} found before it was added`);
        got.set(k, add(t, k));
        for (const [k2, i] of got) assert.equal(find(t, k2), i, `${k2} after adding ${k}`);
        for (const absent of ['5', '99', '00', '', 'y']) if (!got.has(absent)) assert.equal(find(t, absent), -1, `${absent} is not in the table`);
      }
      for (const [k, i] of got) { assert.equal(t.key(i), k); assert.equal(t.find(k), i); }
      t.seal();
      for (const [k, i] of got) { assert.equal(t.key(i), k); assert.equal(t.find(k), i); }
    });
  }
});

describe('ScratchColumn / SealedColumn', () => {
  it('keeps every value, whether the column is constant, the row index, or anything else', () => {
    const rand = prng(3);
    for (const kind of ['constant', 'index', 'random'] as const) {
      const col = new ScratchColumn(Float64Array, 2);
      const values: number[] = [];
      for (let i = 0; i < 1000; i++) {
        const v = kind === 'constant' ? 7 : kind === 'index' ? i : Math.floor(rand() * 1e9);
        values.push(v); col.set(i, v);
      }
      const sealed = col.seal(values.length);
      for (let i = 0; i < values.length; i++) assert.equal(sealed.get(i), values[i], `${kind} row ${i}`);
      assert.equal(sealed.byteLength === 0, kind !== 'random', `${kind}: a column is kept only when needed`);
    }
  });
});
