// Byte-string tables and sealed columns keep tensor names and storage keys: every string must come back
// byte-exact, findable by its bytes, before and after seal().
import * as assert from 'node:assert/strict';
import { ByteStrings, ScratchColumn, bytesHash } from '../../../server/src/models/strTable';
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
