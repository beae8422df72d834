// A synchronous, bounded bzip2 decoder (.bz2 files, joblib/pandas *.bz2 pickles), written by hand from the format's
// public description. There is no maintained pure-JS bzip2 decoder that is synchronous and bounded: the stream one
// we used (unbzip2-stream) allocates a 3.6 MB Int32Array per block, pushes every output byte through a callback into
// a JS array, cannot stop at a size cap and does not notice truncation. A directory scan meets a dozen small .bz2
// files, mostly in a process whose code is not optimised yet: on the 14 of the bench corpus (2-19 KB out each), one
// cold pass took ~33-45 ms with it and ~13-18 ms with this; warm, ~11 ms against ~3 ms.
//
// What it checks, as Python's bz2 module (libbz2 1.0.8) does: the "BZh1".."BZh9" header, block and end-of-stream
// magics, every block CRC and the stream CRC, origPtr bounds, 2-6 Huffman groups, MTF-coded selectors (a selector
// count above 18002 is read and the excess dropped, as libbz2 1.0.8), code lengths 1..20, the RUNA/RUNB run limit,
// the block size (100k x level), and a block that ends inside an RLE1 run of four.
//
// Format, in decoding order: stream header; per block: 48-bit magic, CRC, randomised bit, origPtr, the map of byte
// values used, Huffman group count, MTF-coded selectors (one per 50 symbols), delta-coded code lengths, then the
// Huffman-coded symbols (RUNA/RUNB digits for runs of the MTF front, MTF indexes, end of block); these give the BWT
// last column, which the inverse BWT turns into the RLE1-coded block (runs of 4 equal bytes + a count byte).

export class Bzip2Error extends Error {}

/** Why decoding stopped; it decides whether bytes after the first stream may be ignored (see bunzip2). */
type Failure = 'truncated' | 'invalid' | 'unsupported';

class StreamError extends Bzip2Error {
  constructor(readonly failure: Failure, message: string) { super(message); }
}

const MAX_GROUPS = 6;
const MAX_ALPHA = 258; // 256 MTF values + RUNA/RUNB - 1 + end of block
const MAX_CODE_LEN = 20;
const GROUP_SIZE = 50; // symbols coded with one selector
const MAX_SELECTORS = 18002; // 2 + 900000 / 50: more than any block needs; libbz2 1.0.8 drops the rest
const MAX_RUN_DIGITS = 21; // a 22nd RUNA/RUNB digit (weight 2^21) is invalid, as in libbz2: runs are at most 900k
const MTF_COPY = 16; // MTF moves longer than this use copyWithin
const STRIDE = MAX_CODE_LEN + 1; // limit/base entries per group, indexed by code length

// bzip2's CRC-32: polynomial 0x04c11db7, most significant bit first (not zlib's reflected CRC)
const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c;
  }
  return t;
})();

// Per-block scratch, module-level and reused between blocks and between calls. The big one, `tt`, holds the block
// (100k x level entries: BWT byte in the low 8 bits, the inverse-BWT link above). Allocating it per block, as the
// stream decoder does, is measurable on small files (the 14 bench files: 4.6 ms a warm pass instead of 2.9, ~2 ms
// more cold), so it grows to the largest level seen and stays: at most 3.6 MB for the process.
let tt = new Uint32Array(0);
const byteCount = new Int32Array(256);
const selectors = new Uint8Array(MAX_SELECTORS);
const codeLens = new Uint8Array(MAX_GROUPS * MAX_ALPHA);
const limit = new Int32Array(MAX_GROUPS * STRIDE); // largest code of each length (may be -1: no code of that length)
const base = new Int32Array(MAX_GROUPS * STRIDE); // code - base[len] = index into perm
const perm = new Uint16Array(MAX_GROUPS * MAX_ALPHA); // symbols in canonical code order
const minLens = new Uint8Array(MAX_GROUPS);
const maxLens = new Uint8Array(MAX_GROUPS);
const lenCount = new Int32Array(MAX_CODE_LEN + 2);
const mtf = new Uint8Array(256);

/** MSB-first bit reader over a 32-bit buffer that holds at most 31 unread bits. */
class BitReader {
  buf = 0;
  count = 0; // unread bits in buf (the low `count` bits)
  constructor(readonly data: Uint8Array, public pos: number) {}

  /** The next n bits (n <= 24); a StreamError 'truncated' when the input ends first. */
  bits(n: number): number {
    while (this.count < n) {
      if (this.pos >= this.data.length) throw truncated();
      this.buf = (this.buf << 8) | this.data[this.pos++];
      this.count += 8;
    }
    this.count -= n;
    return (this.buf >>> this.count) & ((1 << n) - 1);
  }

  bits32(): number { return (this.bits(16) << 16) | this.bits(16); }

  /** Offset of the first byte not yet touched: the unread bits of a partly read byte are the stream's padding. */
  nextByte(): number { return this.pos - (this.count >> 3); }
}

/**
 * Stores a hot loop's local copy of the reader back into it. The loops peek with zero bytes past the end of the
 * input (and call it truncation when they consume one): those are given back, the bits before them are real.
 */
function settle(r: BitReader, pos: number, buf: number, count: number): void {
  const extra = Math.max(0, pos - r.data.length) * 8;
  r.pos = pos - extra / 8;
  r.buf = buf >>> extra;
  r.count = count - extra;
}

function truncated(): StreamError {
  return new StreamError('truncated', 'bzip2 data is truncated (the input ends before the end-of-stream marker)');
}
function invalid(what: string): StreamError { return new StreamError('invalid', `invalid bzip2 data: ${what}`); }

/** The decoded bytes so far, grown geometrically and never beyond `cap`. */
class Output {
  len = 0;
  overCap = false;
  buf: Uint8Array;
  constructor(inputLength: number, readonly cap: number) {
    const guess = Math.min(Math.max(65536, Math.ceil((inputLength * 4) / 65536) * 65536), 1 << 26);
    this.buf = new Uint8Array(Math.max(0, Math.min(guess, cap)));
  }

  /** Room for `need` bytes in all: the (maybe new) buffer, shorter than `need` only when `cap` allows no more. */
  ensure(used: number, need: number): Uint8Array {
    if (need <= this.buf.length || this.buf.length >= this.cap) return this.buf;
    let size = Math.max(this.buf.length * 2, 65536);
    while (size < need) size *= 2;
    let grown: Uint8Array;
    try {
      grown = new Uint8Array(Math.min(size, this.cap));
    } catch {
      throw new Bzip2Error(`cannot allocate ${Math.min(size, this.cap)} bytes for the decoded data`);
    }
    grown.set(this.buf.subarray(0, used));
    this.buf = grown;
    return grown;
  }

  /** Exactly the decoded bytes: a view when it fills most of the buffer, else a copy so the slack can be freed. */
  result(): Uint8Array {
    if (this.len === this.buf.length) return this.buf;
    return this.len * 2 >= this.buf.length ? this.buf.subarray(0, this.len) : this.buf.slice(0, this.len);
  }
}

/**
 * Decodes a .bz2 file's bytes (one or more concatenated bzip2 streams, as Python's bz2.open / BZ2File reads them:
 * after the first stream, trailing bytes that are not a valid stream are ignored, like Python does).
 * Stops with Bzip2Error on corrupt or truncated data; `out` always holds the bytes decoded before the error
 * (whole blocks whose CRC matched). Throws nothing else. If the output would exceed `cap` bytes it stops and
 * returns { out (first cap bytes or fewer), overCap: true }.
 */
export function bunzip2(input: Uint8Array, cap: number): { out: Uint8Array; error?: string; overCap?: boolean } {
  const out = new Output(input.length, cap);
  try {
    let offset = 0;
    for (let stream = 0; stream === 0 || offset < input.length; stream++) {
      const r = new BitReader(input, offset);
      const mark = out.len;
      try {
        if (!decodeStream(r, out)) return { out: out.result(), overCap: true };
      } catch (e) {
        // BZ2File starts a new decompressor on the bytes after a stream and ignores an OSError (invalid data) from
        // it, keeping nothing of that stream; input that ends inside a stream is its EOFError whichever stream it is.
        // Python only ignores an error raised by its first decompress() call on the new stream (the rest of its 8 KB
        // read buffer), so a later error in a long trailing stream raises there: here it is ignored all the same.
        if (stream > 0 && e instanceof StreamError && e.failure === 'invalid') {
          out.len = mark;
          break;
        }
        throw e;
      }
      offset = r.nextByte();
    }
    return { out: out.result() };
  } catch (e) {
    if (e instanceof Bzip2Error) return { out: out.result(), error: e.message };
    throw e;
  }
}

/** One stream: header, blocks, end-of-stream marker and stream CRC. False when the output reached `cap`. */
function decodeStream(r: BitReader, out: Output): boolean {
  const level = readStreamHeader(r);
  if (tt.length < level * 100000) tt = new Uint32Array(level * 100000);
  let streamCrc = 0;
  for (;;) {
    const first = r.bits(8);
    if (first === 0x17) { // end of stream: 0x177245385090 (sqrt(pi)), then the CRC of the block CRCs
      expectBytes(r, [0x72, 0x45, 0x38, 0x50, 0x90], 'end-of-stream marker');
      if (r.bits32() !== streamCrc) throw invalid('stream CRC mismatch');
      return true;
    }
    if (first !== 0x31) throw invalid('bad block magic');
    expectBytes(r, [0x41, 0x59, 0x26, 0x53, 0x59], 'block magic'); // 0x314159265359 (pi)
    const storedCrc = r.bits32();
    const randomised = r.bits(1);
    const origPtr = r.bits(24);
    if (origPtr > 10 + level * 100000) throw invalid('origPtr beyond the block size'); // libbz2's early check
    const n = readBlock(r, level);
    if (origPtr >= n) throw invalid('origPtr beyond the block');
    // libbz2 (so Python) still de-randomises these blocks, which only bzip2 0.9.0 (1998) wrote; we reject them with
    // an error that says so rather than carry its 512-entry table for files nobody has made since. Only once the
    // block has decoded: random bytes after a stream often have this bit set, and Python ignores them (invalid data),
    // where it would append a real randomised stream, so that one must stay an error, never be skipped.
    if (randomised) throw new StreamError('unsupported', 'unsupported bzip2 data: randomised block (obsolete bzip2 0.9.0 format)');
    const start = out.len;
    const crc = emitBlock(n, origPtr, out);
    if (out.overCap) return false;
    if (crc !== storedCrc) {
      out.len = start;
      throw invalid('block CRC mismatch');
    }
    streamCrc = ((streamCrc << 1) | (streamCrc >>> 31)) ^ crc;
  }
}

function readStreamHeader(r: BitReader): number {
  if (r.bits(8) !== 0x42 || r.bits(8) !== 0x5a || r.bits(8) !== 0x68) throw invalid('not a bzip2 stream (bad magic)');
  const digit = r.bits(8) - 0x30;
  if (digit < 1 || digit > 9) throw invalid('bad block size in the stream header');
  return digit;
}

/** Byte by byte, as libbz2 reads them: a wrong byte is invalid data even when the input ends right after it. */
function expectBytes(r: BitReader, bytes: number[], what: string): void {
  for (const b of bytes) if (r.bits(8) !== b) throw invalid(`bad ${what}`);
}

/** Reads one block's tables and symbols into tt[0..n) (BWT last column); returns n. */
function readBlock(r: BitReader, level: number): number {
  const nInUse = readSymbolMap(r);
  const alphaSize = nInUse + 2;
  const nGroups = r.bits(3);
  if (nGroups < 2 || nGroups > MAX_GROUPS) throw invalid('Huffman group count not 2-6');
  const nSelectors = readSelectors(r, nGroups);
  for (let g = 0; g < nGroups; g++) {
    readCodeLengths(r, g, alphaSize);
    buildDecodeTable(g, alphaSize);
  }
  return readSymbols(r, level * 100000, alphaSize, nSelectors);
}

/** The byte values the block uses (16 x 16 bitmap); sets up the MTF list in that order. Returns their count. */
function readSymbolMap(r: BitReader): number {
  const ranges = r.bits(16);
  let n = 0;
  for (let i = 0; i < 16; i++) {
    if (!(ranges & (0x8000 >>> i))) continue;
    const used = r.bits(16);
    for (let j = 0; j < 16; j++) if (used & (0x8000 >>> j)) mtf[n++] = i * 16 + j;
  }
  if (n === 0) throw invalid('block uses no byte values');
  return n;
}

/** Selector count, then the MTF-coded selectors (unary: count of 1 bits before a 0). Returns the count kept. */
function readSelectors(r: BitReader, nGroups: number): number {
  const n = r.bits(15);
  if (n < 1) throw invalid('no selectors');
  const order = [0, 1, 2, 3, 4, 5];
  // up to 32767 x 6 bits: read with local copies of the reader (see readSymbols)
  const data = r.data;
  const end = data.length;
  let { pos, buf, count } = r;
  for (let i = 0; i < n; i++) {
    let j = 0;
    for (;;) {
      if (count === 0) {
        buf = (buf << 8) | (pos < end ? data[pos] : 0);
        pos++;
        count = 8;
      }
      count--;
      if (pos > end && (pos - end) * 8 > count) throw truncated();
      if (!((buf >>> count) & 1)) break;
      if (++j >= nGroups) throw invalid('selector beyond the group count');
    }
    const g = order[j];
    for (; j > 0; j--) order[j] = order[j - 1];
    order[0] = g;
    if (i < MAX_SELECTORS) selectors[i] = g;
  }
  settle(r, pos, buf, count);
  return Math.min(n, MAX_SELECTORS);
}

/** Group g's code lengths: a 5-bit start, then per symbol: 0 = next symbol, 10 = +1, 11 = -1. */
function readCodeLengths(r: BitReader, g: number, alphaSize: number): void {
  let len = r.bits(5);
  const at = g * MAX_ALPHA;
  const data = r.data;
  const end = data.length;
  let { pos, buf, count } = r;
  for (let i = 0; i < alphaSize; i++) {
    for (;;) { // each step takes 1 or 2 bits, so this ends with the input at the latest
      if (len < 1 || len > MAX_CODE_LEN) throw invalid('Huffman code length not 1-20');
      if (count < 2) {
        buf = (buf << 8) | (pos < end ? data[pos] : 0);
        pos++;
        count += 8;
      }
      const two = (buf >>> (count - 2)) & 3;
      count -= two < 2 ? 1 : 2;
      if (pos > end && (pos - end) * 8 > count) throw truncated();
      if (two < 2) break;
      len += two === 3 ? -1 : 1;
    }
    codeLens[at + i] = len;
  }
  settle(r, pos, buf, count);
}

/**
 * Canonical Huffman decode table for group g: codes are assigned in order of (length, symbol). For each length,
 * limit = the largest code of that length and base = its first code minus the number of shorter codes, so a code
 * c of length l is symbol perm[c - base[l]]. Lengths that do not form a complete code are not rejected (libbz2
 * accepts them too): an over-full code leaves some symbols unreachable, an incomplete one makes some bit strings
 * invalid, which readSymbols reports.
 */
function buildDecodeTable(g: number, alphaSize: number): void {
  const at = g * MAX_ALPHA;
  const lt = g * STRIDE;
  lenCount.fill(0);
  let minLen = MAX_CODE_LEN;
  let maxLen = 0;
  for (let i = 0; i < alphaSize; i++) {
    const l = codeLens[at + i];
    lenCount[l]++;
    if (l < minLen) minLen = l;
    if (l > maxLen) maxLen = l;
  }
  let code = 0;
  let shorter = 0;
  for (let l = minLen; l <= maxLen; l++) {
    const c = lenCount[l];
    limit[lt + l] = code + c - 1;
    base[lt + l] = code - shorter;
    lenCount[l] = shorter; // now: where this length's symbols start in perm
    shorter += c;
    code = (code + c) << 1;
  }
  for (let i = 0; i < alphaSize; i++) perm[at + lenCount[codeLens[at + i]]++] = i;
  minLens[g] = minLen;
  maxLens[g] = maxLen;
}

/**
 * The Huffman-coded symbols up to end of block, undoing RUNA/RUNB and MTF: writes the BWT last column to tt and the
 * byte counts to byteCount. Returns the block length. Every symbol takes at least one input bit and the selectors
 * bound the symbol count (50 each), so this ends; the block cannot outgrow maxBlock.
 */
function readSymbols(r: BitReader, maxBlock: number, alphaSize: number, nSelectors: number): number {
  const data = r.data;
  const end = data.length;
  const block = tt;
  const lim = limit;
  const bas = base;
  const prm = perm;
  const list = mtf;
  const eob = alphaSize - 1;
  let pos = r.pos;
  let buf = r.buf;
  let count = r.count;
  let n = 0;
  let group = -1;
  let left = 0; // symbols left in this selector's group of 50
  let minLen = 0;
  let maxLen = 0;
  let lt = 0;
  let pt = 0;
  let run = 0; // pending run of the MTF front: its length so far (bijective base 2: RUNA = 1, RUNB = 2 per digit)
  let digit = 1; // weight of the next RUNA/RUNB digit
  byteCount.fill(0);
  for (;;) {
    if (left === 0) {
      if (++group >= nSelectors) throw invalid('more symbols than selectors');
      const g = selectors[group];
      minLen = minLens[g];
      maxLen = maxLens[g];
      lt = g * STRIDE;
      pt = g * MAX_ALPHA;
      left = GROUP_SIZE;
    }
    left--;
    // peek 20 bits (zeros past the end of the input: a code that needs them is truncation, checked below). Local
    // copies of the reader's fields: this loop and emitBlock's are where the time goes, often not yet optimised.
    while (count < MAX_CODE_LEN) {
      buf = (buf << 8) | (pos < end ? data[pos] : 0);
      pos++;
      count += 8;
    }
    const peek = (buf >>> (count - MAX_CODE_LEN)) & 0xfffff;
    let len = minLen;
    let code = peek >>> (MAX_CODE_LEN - len);
    while (code > lim[lt + len]) {
      if (++len > maxLen) {
        // libbz2 reads all 20 bits before calling it invalid
        if (pos > end && (pos - end) * 8 > count - MAX_CODE_LEN) throw truncated();
        throw invalid('bad Huffman code');
      }
      code = peek >>> (MAX_CODE_LEN - len);
    }
    count -= len;
    if (pos > end && (pos - end) * 8 > count) throw truncated();
    const sym = prm[pt + code - bas[lt + len]];
    if (sym <= 1) { // RUNA or RUNB
      if (digit >= 1 << MAX_RUN_DIGITS) throw invalid('run too long');
      run += digit << sym;
      digit <<= 1;
      continue;
    }
    if (run > 0) {
      if (n + run > maxBlock) throw invalid('block longer than its stated size');
      const b = list[0];
      byteCount[b] += run;
      block.fill(b, n, n + run);
      n += run;
      run = 0;
      digit = 1;
    }
    if (sym === eob) break;
    if (n >= maxBlock) throw invalid('block longer than its stated size');
    let k = sym - 1; // MTF index: move list[k] to the front
    const b = list[k];
    if (k > MTF_COPY) list.copyWithin(1, 0, k); // model data averages ~66: native memmove beats a JS loop, cold most
    else for (; k > 0; k--) list[k] = list[k - 1];
    list[0] = b;
    byteCount[b]++;
    block[n++] = b;
  }
  settle(r, pos, buf, count);
  return n;
}

/**
 * Inverse BWT, then RLE1 (after 4 equal bytes, a count byte of 0-255 more), into `out`. Returns the block's CRC;
 * sets out.overCap (and stops, the block's CRC unchecked) when the output would pass `cap`.
 */
function emitBlock(n: number, origPtr: number, out: Output): number {
  const t = tt;
  // link: the i-th occurrence of byte b in the last column is the i-th in the sorted first column
  let sum = 0;
  for (let b = 0; b < 256; b++) {
    const c = byteCount[b];
    byteCount[b] = sum;
    sum += c;
  }
  for (let i = 0; i < n; i++) t[byteCount[t[i] & 0xff]++] |= i << 8;

  const start = out.len;
  let buf = out.buf;
  let o = start;
  let room = buf.length;
  let crc = -1;
  let last = -1;
  let same = 0; // equal bytes in a row so far (4: the next byte is a count)
  let p = t[origPtr] >>> 8;
  for (let k = 0; k < n; k++) {
    const e = t[p];
    p = e >>> 8;
    const b = e & 0xff;
    if (same === 4) {
      same = 0;
      if (b === 0) continue;
      let stop = o + b;
      if (stop > room) {
        buf = out.ensure(o, stop);
        room = buf.length;
        if (stop > room) {
          stop = room;
          out.overCap = true;
        }
      }
      for (; o < stop; o++) {
        buf[o] = last;
        crc = (crc << 8) ^ CRC_TABLE[(crc >>> 24) ^ last];
      }
      if (out.overCap) break;
      continue;
    }
    if (b === last) same++;
    else {
      last = b;
      same = 1;
    }
    if (o === room) {
      buf = out.ensure(o, o + 1);
      room = buf.length;
      if (o === room) {
        out.overCap = true;
        break;
      }
    }
    buf[o++] = b;
    crc = (crc << 8) ^ CRC_TABLE[(crc >>> 24) ^ b];
  }
  out.len = o;
  if (out.overCap) return 0;
  if (same === 4) {
    out.len = start;
    throw invalid('block ends inside a run (no count byte)');
  }
  return ~crc;
}
