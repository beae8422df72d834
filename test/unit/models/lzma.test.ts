// The hand-written LZMA "alone" decoder (server/src/models/formats/lzma.ts) against what Python's lzma module
// (liblzma, joblib's reader) does with the same bytes: test/fixtures/gen_lzma_vectors.py writes the vectors and
// records Python's outcome for each; nothing expected here comes from the decoder under test.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { unlzma } from '../../../server/src/models/formats/lzma';
import { generatedFixturesOrSkip } from '../../setup';

interface Vector {
  file: string; original: string | null; note: string;
  ok: boolean; sha256?: string; length?: number; error?: string;
  streamEof: boolean; streamError?: string; prefixHex: string | null; prefixLength: number; prefixSha256: string;
}
type Manifest = Record<string, Vector>;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const CAP = 64 << 20;

describe('LZMA alone decoder, against liblzma (Python) on the vectors it wrote', function () {
  let fx: { dir: string; manifest: Manifest };
  let originals: Record<string, Buffer>;
  before(function () {
    fx = generatedFixturesOrSkip<Manifest>(this, 'test/fixtures/gen_lzma_vectors.py', ['lzma']);
    const hex = JSON.parse(fs.readFileSync(path.join(fx.dir, 'originals.json'), 'utf8')) as Record<string, string>;
    originals = Object.fromEntries(Object.entries(hex).map(([k, v]) => [k, Buffer.from(v, 'hex')]));
  });
  const read = (v: Vector): Uint8Array => fs.readFileSync(path.join(fx.dir, v.file));

  it('has the vectors the generator promises (valid, option variants, corrupt)', () => {
    const m = Object.values(fx.manifest);
    assert.ok(m.length >= 50, `${m.length} vectors`);
    assert.ok(m.filter((v) => v.ok).length >= 35 && m.filter((v) => !v.ok).length >= 15);
  });

  it('decodes every stream Python reads to the same bytes', () => {
    for (const [name, v] of Object.entries(fx.manifest)) {
      if (!v.ok || name === 'trailing-short') continue;
      const r = unlzma(read(v), CAP);
      assert.equal(r.error, undefined, `${name} (${v.note}): ${r.error}`);
      assert.equal(r.out.length, v.length, `${name}: length`);
      assert.equal(sha(r.out), v.sha256, `${name}: content`);
      if (v.original) assert.ok(Buffer.from(r.out).equals(originals[v.original]) || name === 'two-streams', `${name}: the original data`);
    }
  });

  it('refuses what Python refuses, keeping only bytes Python\'s streaming decoder also produced', () => {
    for (const [name, v] of Object.entries(fx.manifest)) {
      if (v.ok) continue;
      const r = unlzma(read(v), CAP);
      if (name === 'trailing-short') {
        // LZMAFile fails on 1-12 trailing bytes (it waits for a second stream that never completes) while it ignores
        // longer trailing garbage; we ignore both and keep the first stream, which Python's decoder reads in full too
        assert.equal(r.error, undefined);
        assert.equal(r.out.length, v.prefixLength);
        assert.equal(sha(r.out), v.prefixSha256);
        continue;
      }
      assert.ok(r.error, `${name} (${v.note}): Python says ${v.error}; we decoded ${r.out.length} bytes without error`);
      // the same family of error as liblzma's message
      const family = (e: string): string => /not supported/.test(e) ? 'unsupported' : /ended before/.test(e) ? 'truncated' : 'corrupt';
      assert.equal(family(r.error), family(v.error ?? ''), `${name}: ${r.error} vs Python's ${v.error}`);
      // both decoders agree on every byte both produced before stopping
      const common = Math.min(r.out.length, v.prefixLength);
      if (v.prefixHex !== null) assert.ok(Buffer.from(r.out.subarray(0, common)).equals(Buffer.from(v.prefixHex, 'hex').subarray(0, common)), `${name}: prefix`);
      if (v.original && !/flipped|known|dict-too-small|props|lc|rc-first/.test(name)) {
        // truncated input: what we produced is the original's start, and at least what liblzma had produced
        assert.ok(Buffer.from(r.out).equals(originals[v.original].subarray(0, r.out.length)), `${name}: a prefix of the original`);
        assert.ok(r.out.length >= v.prefixLength, `${name}: ${r.out.length} < Python's ${v.prefixLength}`);
      }
    }
  });

  it('stops at the cap with overCap, never holding more than the cap', () => {
    const v = fx.manifest['text500k-default'];
    for (const cap of [1, 4096, 100_000, 499_999]) {
      const r = unlzma(read(v), cap);
      assert.equal(r.overCap, true, `cap ${cap}`);
      assert.ok(r.out.length <= cap, `cap ${cap}: ${r.out.length}`);
      assert.ok(Buffer.from(r.out).equals(originals.text500k.subarray(0, r.out.length)));
    }
    assert.equal(unlzma(read(v), 500_000).overCap, undefined, 'exactly the size fits');
  });

  it('ends quickly with an error on hostile headers and bodies', () => {
    const hostile: Uint8Array[] = [
      Buffer.from([0x5d, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff]),
      Buffer.concat([Buffer.from([0x5d, 0, 0, 0x80, 0]), Buffer.alloc(8, 0xff), Buffer.from([0]), Buffer.alloc(4000, 0xff)]),
      Buffer.concat([Buffer.from([0x5d, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(8, 0xff), Buffer.from([0]), Buffer.alloc(4000, 0)]),
      Buffer.concat([Buffer.from([0x5d, 0, 0, 0x80, 0]), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), Buffer.from([0]), Buffer.alloc(64, 0x55)]),
    ];
    for (const h of hostile) {
      const t0 = Date.now();
      const r = unlzma(h, 1 << 20);
      assert.ok(r.error || r.overCap, `hostile ${h.length}-byte input decoded without error: ${r.out.length} bytes`);
      assert.ok(Date.now() - t0 < 5000);
    }
  });
});
