// The hand-written bzip2 decoder (server/src/models/formats/bzip2.ts) against Python's bz2 module, the reader the
// scanned files are loaded with. Vectors and every expected value come from test/fixtures/gen_bzip2_vectors.py
// (bz2.open().read(), BZ2Decompressor, and per-block lengths from blocks re-wrapped as streams of their own);
// hand-built hostile streams are checked against Python here too, by running it on them.
//
// Where the two differ in how much they yield before an error: we return whole blocks whose CRC matched, so after
// a cut exactly the blocks the cut left whole; Python's BZ2File hands out what its buffers held when it raised,
// which for a cut can be less (its decompress() stops draining libbz2 when the input runs out: 32,768 of the
// 100,785-byte first block for trunc_at_block2) and for a bad block CRC can be more (libbz2 emits a block before it
// checks its CRC: 65,536 bytes of a block that fails). Both are prefixes of the true data for cuts.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bunzip2 } from '../../../server/src/models/formats/bzip2';
import { GeneratedFixtures, PYTHON, generatedFixturesOrSkip } from '../../setup';

interface Vector {
  note: string;
  size: number;
  /** bz2.open(path).read() */
  read: { ok: true; sha256: string; length: number } | { ok: false; exc: string; msg: string };
  /** BZ2File.read1() until it raised: the bytes Python hands out first */
  file_prefix: { length: number; exc: string | null };
  /** one BZ2Decompressor fed 64 bytes at a time (one stream only) */
  chunked: { length: number; exc: string | null; eof: boolean };
  /** corrupt variants: the .orig file holding the data it was made from */
  orig?: string;
  /** corrupt variants: decoded length of the blocks before the damage */
  whole_blocks_before_damage?: number;
}
interface Manifest {
  python: string;
  vectors: Record<string, Vector>;
  originals: Record<string, { sha256: string; length: number }>;
  multi_block_l1_blocks: { start_bit: number; end_bit: number; length: number }[];
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const NO_CAP = 1 << 30;

/** MSB-first bit writer for hand-built streams. */
class BitWriter {
  private bits: number[] = [];
  put(value: number, n: number): this {
    for (let i = n - 1; i >= 0; i--) this.bits.push(Math.floor(value / 2 ** i) % 2);
    return this;
  }
  str(s: string): this {
    for (const c of s) this.bits.push(c === '1' ? 1 : 0);
    return this;
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(Math.ceil(this.bits.length / 8));
    this.bits.forEach((b, i) => { if (b) out[i >> 3] |= 0x80 >> (i & 7); });
    return out;
  }
}

/** bzip2's CRC-32 (MSB first, polynomial 0x04c11db7), bit by bit: independent of the decoder's table. */
function crc32Msb(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? ((c << 1) ^ 0x04c11db7) >>> 0 : (c << 1) >>> 0;
  }
  return ~c >>> 0;
}

interface TinyBlock {
  crc: number;
  origPtr?: number;
  randomised?: boolean;
  /** the 16-bit range map and the used bitmaps; default: only 'a' (0x61) */
  map?: string;
  nGroups?: number;
  nSelectors?: number;
  /** the MTF-coded selectors' bits; default one selector, 0 */
  selectors?: string;
  /** each group's code lengths; default RUNA = 1 bit ('0'), RUNB = '10', EOB = '11' */
  lengths?: string;
  symbols: string;
}
const ONLY_A = '0000001000000000' + '0100000000000000';
const AB = '0000001000000000' + '0110000000000000';
const LENGTHS_1_2_2 = '00001' + '0' + '100' + '0';

/** A stream of hand-built blocks whose alphabet is (by default) just 'a': RUNA '0', RUNB '10', end of block '11'. */
function handStream(level: number, blocks: TinyBlock[], streamCrc?: number): Uint8Array {
  const w = new BitWriter().put(0x425a68, 24).put(0x30 + level, 8);
  let combined = 0;
  for (const b of blocks) {
    w.put(0x314159, 24).put(0x265359, 24).put(b.crc, 32).put(b.randomised ? 1 : 0, 1).put(b.origPtr ?? 0, 24);
    w.str(b.map ?? ONLY_A).put(b.nGroups ?? 2, 3).put(b.nSelectors ?? 1, 15).str(b.selectors ?? '0');
    for (let g = 0; g < (b.nGroups ?? 2); g++) w.str(b.lengths ?? LENGTHS_1_2_2);
    w.str(b.symbols);
    combined = (((combined << 1) | (combined >>> 31)) ^ b.crc) >>> 0;
  }
  return w.put(0x177245, 24).put(0x385090, 24).put(streamCrc ?? combined, 32).bytes();
}

/** A run of n copies of the MTF front as RUNA ('0') / RUNB ('10') digits, bijective base 2, least significant first. */
function runSymbols(n: number): string {
  let s = '';
  while (n > 0) {
    if (n % 2 === 1) { s += '0'; n = (n - 1) / 2; } else { s += '10'; n = (n - 2) / 2; }
  }
  return s;
}

/** What bz2.open().read() does on each input: the sha256 of the data, or the exception's type. */
function pythonReads(inputs: Uint8Array[]): ({ ok: true; sha256: string; length: number } | { ok: false; exc: string })[] {
  const code = `
import bz2, hashlib, io, json, sys
res = []
for h in json.load(sys.stdin):
    try:
        d = bz2.BZ2File(io.BytesIO(bytes.fromhex(h))).read()
        res.append({"ok": True, "sha256": hashlib.sha256(d).hexdigest(), "length": len(d)})
    except Exception as e:
        res.append({"ok": False, "exc": type(e).__name__})
print(json.dumps(res))`;
  const r = spawnSync(PYTHON, ['-c', code], { input: JSON.stringify(inputs.map((b) => Buffer.from(b).toString('hex'))), encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('bzip2 decoder (bunzip2) against Python bz2', function () {
  this.timeout(300_000);
  let fx: GeneratedFixtures<Manifest>;
  const file = (name: string): Uint8Array => readFileSync(join(fx.dir, name));
  before(function () {
    fx = generatedFixturesOrSkip<Manifest>(this, 'test/fixtures/gen_bzip2_vectors.py', ['bz2']);
  });

  it('decodes every vector Python reads to the same bytes (sha256 and length)', function () {
    const valid = Object.entries(fx.manifest.vectors).filter(([, v]) => v.read.ok);
    assert.ok(valid.length >= 25, `valid vectors: ${valid.length}`);
    for (const [name, v] of valid) {
      if (!v.read.ok) continue;
      const r = bunzip2(file(name), NO_CAP);
      assert.equal(r.error, undefined, `${name} (${v.note})`);
      assert.equal(r.overCap, undefined, name);
      assert.equal(r.out.length, v.read.length, `${name} length`);
      assert.equal(sha256(r.out), v.read.sha256, `${name} bytes`);
    }
  });

  it('fails on every vector Python rejects: "truncated" exactly where Python raises EOFError', function () {
    const rejected = Object.entries(fx.manifest.vectors).filter(([, v]) => !v.read.ok);
    assert.ok(rejected.length >= 20, `rejected vectors: ${rejected.length}`);
    for (const [name, v] of rejected) {
      if (v.read.ok) continue;
      const r = bunzip2(file(name), NO_CAP);
      const why = `${name} (${v.note}): Python ${v.read.exc}, we ${r.error}`;
      assert.ok(r.error, why);
      assert.equal(r.overCap, undefined, why);
      assert.equal(/truncated/.test(r.error), v.read.exc === 'EOFError', why);
    }
  });

  it('before an error, out is the blocks the damage left whole, a prefix of the true data', function () {
    const damaged = Object.entries(fx.manifest.vectors).filter(([, v]) => v.whole_blocks_before_damage !== undefined);
    assert.ok(damaged.length >= 17, `damaged vectors: ${damaged.length}`);
    for (const [name, v] of damaged) {
      const orig = file(v.orig!);
      assert.equal(sha256(orig), fx.manifest.originals[v.orig!].sha256);
      const r = bunzip2(file(name), NO_CAP);
      const why = `${name} (${v.note}): ${r.error}; Python handed out ${v.file_prefix.length} bytes`;
      assert.ok(r.error, why);
      assert.equal(r.out.length, v.whole_blocks_before_damage, why);
      assert.ok(Buffer.from(orig.subarray(0, r.out.length)).equals(r.out), why);
    }
  });

  it('a cut at any point: exactly the whole blocks before it (block ends from the Python-checked split)', function () {
    const data = file('multi_block_l1.bz2');
    const orig = file('multi_block_l1.orig');
    const blocks = fx.manifest.multi_block_l1_blocks;
    const cuts = [...blocks.flatMap((b) => [b.end_bit >> 3, (b.end_bit + 7) >> 3, (b.end_bit >> 3) - 1]), 1, 2, 3, 5, 11, 14, 15, 18];
    for (let i = 0; i < 40; i++) cuts.push(Math.floor(((i * 7919) % 1000) / 1000 * data.length));
    for (const n of cuts) {
      const r = bunzip2(data.subarray(0, n), NO_CAP);
      const whole = blocks.filter((b) => b.end_bit <= n * 8).reduce((s, b) => s + b.length, 0);
      assert.match(r.error ?? '', /truncated/, `cut at ${n}`);
      assert.equal(r.out.length, whole, `cut at ${n}`);
      assert.ok(Buffer.from(orig.subarray(0, whole)).equals(r.out), `cut at ${n}`);
    }
  });

  it('random byte damage never throws, and keeps only true data', function () {
    const data = file('multi_block_l1.bz2');
    const orig = file('multi_block_l1.orig');
    let seed = 12345;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    let errors = 0;
    for (let i = 0; i < 60; i++) {
      const bad = Uint8Array.from(data);
      for (let k = 1 + rand(3); k > 0; k--) bad[rand(bad.length)] ^= 1 + rand(255);
      const r = bunzip2(bad, NO_CAP);
      if (r.error) errors++;
      assert.ok(Buffer.from(orig.subarray(0, r.out.length)).equals(r.out), `mutation ${i}: ${r.error}`);
    }
    assert.ok(errors >= 55, `errors: ${errors}`);
  });

  it('honours cap: overCap, out is the first cap bytes, never more', function () {
    const orig = file('multi_block_l1.orig');
    const data = file('multi_block_l1.bz2');
    for (const cap of [0, 1, 1000, 100_785, 150_000, orig.length - 1]) {
      const r = bunzip2(data, cap);
      assert.equal(r.overCap, true, `cap ${cap}`);
      assert.equal(r.error, undefined, `cap ${cap}`);
      assert.equal(r.out.length, cap, `cap ${cap}`);
      assert.ok(Buffer.from(orig.subarray(0, cap)).equals(r.out), `cap ${cap}`);
    }
    const exact = bunzip2(data, orig.length);
    assert.equal(exact.overCap, undefined);
    assert.equal(sha256(exact.out), fx.manifest.originals['multi_block_l1.orig'].sha256);
    // RLE1 runs (the count-byte path) of 2 MB of zeros from 49 bytes
    const zeros = bunzip2(file('zeros_2m_l9.bz2'), 1_234_567);
    assert.equal(zeros.overCap, true);
    assert.equal(zeros.out.length, 1_234_567);
    assert.ok(zeros.out.every((b) => b === 0));
  });

  it('reuses its block buffer across levels and calls without mixing blocks up', function () {
    const names = ['text_l9.bz2', 'one_byte.bz2', 'text_l1.bz2', 'random_250k_l1.bz2', 'text_l9.bz2', 'text_l5.bz2'];
    for (const name of names) {
      const v = fx.manifest.vectors[name];
      assert.ok(v.read.ok);
      assert.equal(sha256(bunzip2(file(name), NO_CAP).out), v.read.sha256, name);
    }
  });

  it('hand-built streams: valid ones decode as Python does, hostile ones fail (as in Python) and return', function () {
    const a = new Uint8Array([0x61]);
    const aCrc = crc32Msb(a);
    const run = (n: number, ch = 0x61): number => crc32Msb(new Uint8Array(n).fill(ch));
    const ok: [string, Uint8Array, Uint8Array][] = [
      ['one block "a"', handStream(1, [{ crc: aCrc, symbols: '0' + '11' }]), a],
      ['"aaa" (a run of 3, no count byte needed)', handStream(1, [{ crc: run(3), origPtr: 2, symbols: runSymbols(3) + '11' }]), new Uint8Array(3).fill(0x61)],
      ['20,000 selectors: more than 18,002 are read, the rest dropped', handStream(1, [{ crc: aCrc, nSelectors: 20_000, selectors: '0'.repeat(20_000), symbols: '011' }]), a],
    ];
    // [what, input, bytes out (whole blocks before the error: 0 unless said)]
    const hostile: [string, Uint8Array, number?][] = [
      ['BZh9 + block magic + garbage', Uint8Array.from([...Buffer.from('BZh91AY&SY'), ...Array.from({ length: 30 }, (_, i) => (i * 37 + 11) & 255)])],
      ['block CRC wrong', handStream(1, [{ crc: aCrc ^ 1, symbols: '011' }])],
      ['stream CRC wrong (after a good block)', handStream(1, [{ crc: aCrc, symbols: '011' }], aCrc ^ 0x80), 1],
      ['origPtr beyond the block (1 byte, origPtr 1)', handStream(1, [{ crc: aCrc, origPtr: 1, symbols: '011' }])],
      ['origPtr beyond 10 + 100k x level', handStream(1, [{ crc: aCrc, origPtr: 100_011, symbols: '011' }])],
      ['no byte values used', handStream(1, [{ crc: aCrc, map: '0000000000000000', symbols: '011' }])],
      ['1 Huffman group', handStream(1, [{ crc: aCrc, nGroups: 1, symbols: '011' }])],
      ['7 Huffman groups', handStream(1, [{ crc: aCrc, nGroups: 7, symbols: '011' }])],
      ['0 selectors', handStream(1, [{ crc: aCrc, nSelectors: 0, selectors: '', symbols: '011' }])],
      ['32,767 selectors, then code lengths beyond 20', handStream(9, [{ crc: aCrc, nSelectors: 32_767, selectors: '0'.repeat(32_767), lengths: '10100' + '10'.repeat(2), symbols: '011' }])],
      ['selector index = group count', handStream(1, [{ crc: aCrc, selectors: '110', symbols: '011' }])],
      ['code length 0', handStream(1, [{ crc: aCrc, lengths: '00000' + '000', symbols: '011' }])],
      ['code length 21 by delta', handStream(1, [{ crc: aCrc, lengths: '10100' + '10' + '0' + '0' + '0', symbols: '011' }])],
      ['incomplete Huffman code used (lengths 2,2,2; code 11 unassigned)', handStream(1, [{ crc: aCrc, lengths: '00010' + '000', symbols: '11' }])],
      // alphabet 'a', 'b': RUNA 00, RUNB 01, MTF index 1 = 10, end of block 11
      ['more symbols than selectors (60 symbols, one selector)', handStream(9, [{ crc: aCrc, map: AB, lengths: '00010' + '0000', symbols: '10'.repeat(60) + '11' }])],
      ['22 RUNA/RUNB digits (run too long)', handStream(9, [{ crc: aCrc, symbols: '0'.repeat(22) + '11' }])],
      ['run longer than the block (100,001 at level 1)', handStream(1, [{ crc: aCrc, symbols: runSymbols(100_001) + '11' }])],
      ['block ends inside an RLE1 run ("aaaa", no count byte)', handStream(1, [{ crc: run(4), symbols: runSymbols(4) + '11' }])],
      ['900,000-byte block from a few bytes, wrong CRC', handStream(9, [{ crc: 0, symbols: runSymbols(899_999) + '11' }])],
      ['stream cut after a block header', handStream(1, [{ crc: aCrc, symbols: '011' }]).subarray(0, 14)],
    ];
    // libbz2 still de-randomises (its table's first flipped position is far past byte 0, so this 1-byte block is
    // unchanged and Python reads 'a'); we refuse randomised blocks, with an error that says so
    const randomised = handStream(1, [{ crc: aCrc, randomised: true, symbols: '011' }]);
    const py = pythonReads([...ok.map(([, b]) => b), ...hostile.map(([, b]) => b), randomised]);
    const pyRandomised = py[py.length - 1];
    assert.ok(pyRandomised.ok && pyRandomised.sha256 === sha256(a), JSON.stringify(pyRandomised));
    assert.match(bunzip2(randomised, NO_CAP).error ?? '', /randomised block/);
    // after a first stream too: Python appends what the randomised stream holds, so it is an error, never skipped
    const first = handStream(1, [{ crc: aCrc, symbols: '011' }]);
    const pyTwo = pythonReads([Buffer.concat([first, randomised])])[0];
    assert.ok(pyTwo.ok && pyTwo.length === 2, JSON.stringify(pyTwo));
    const two = bunzip2(Buffer.concat([first, randomised]), NO_CAP);
    assert.match(two.error ?? '', /randomised block/);
    assert.deepEqual([...two.out], [0x61]);
    ok.forEach(([what, input, want], i) => {
      const p = py[i];
      assert.ok(p.ok && p.sha256 === sha256(want), `${what}: Python ${JSON.stringify(p)}`);
      const r = bunzip2(input, NO_CAP);
      assert.equal(r.error, undefined, what);
      assert.ok(Buffer.from(want).equals(r.out), what);
    });
    hostile.forEach(([what, input, outLength], i) => {
      const p = py[ok.length + i];
      assert.equal(p.ok, false, `${what}: Python reads it`);
      const t0 = performance.now();
      const r = bunzip2(input, NO_CAP);
      const ms = performance.now() - t0;
      assert.ok(r.error, `${what}: no error`);
      assert.equal(r.out.length, outLength ?? 0, what);
      assert.ok(input.length < 4200, `${what}: ${input.length} bytes`);
      if (ms > 100) console.log(`      (${what}: ${ms.toFixed(0)} ms)`);
      if (/cut/.test(what)) assert.match(r.error, /truncated/);
    });
  });

  it('a 50-byte bomb (18 MB of output) stops at cap', function () {
    // 900,000 'a' in the BWT block: RLE1 reads that as (4 'a' + count 97) x 180,000 = 18,180,000 bytes
    const bomb = handStream(9, [{ crc: 0, symbols: runSymbols(900_000) + '11' }]);
    assert.ok(bomb.length < 60, `${bomb.length} bytes`);
    const r = bunzip2(bomb, 1 << 20);
    assert.equal(r.overCap, true);
    assert.equal(r.out.length, 1 << 20);
    assert.ok(r.out.every((b) => b === 0x61));
    const all = bunzip2(bomb, NO_CAP);
    assert.match(all.error ?? '', /block CRC mismatch/);
    assert.equal(all.out.length, 0);
  });
});
