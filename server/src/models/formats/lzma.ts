// A synchronous decoder for LZMA "alone" streams (.lzma, the format joblib's 'lzma' compressor writes), written
// by hand from the LZMA specification (the LZMA SDK's lzma-specification.txt) because no maintained pure-JS
// library decodes it well: LZMA-JS, which we used before, builds its output in an untyped growing array, can spin
// on truncated input and so had to run in a worker thread with a timeout and a heap cap. Starting that worker and
// its cold decoder cost ~160 ms for the 8 lzma files of the directory benchmark (scripts/bench/dir.mjs).
// This decoder needs neither: every step either writes output (bounded by `cap`) or consumes input (reading past
// the end is an error), so its work is bounded by the input and the cap, and its memory is the output buffer plus
// the probability tables (at most 0x300 << 4 entries: lc + lp <= 4, as liblzma requires).
// It follows liblzma, which Python's lzma module (and so joblib) uses: the same bytes out, the same inputs refused.

export class LzmaError extends Error {}

export interface LzmaResult {
  /** The bytes decoded: all of them, or those before the error / the cap. */
  out: Uint8Array;
  /** Why decoding stopped early: corrupt or truncated data, or options liblzma refuses. */
  error?: string;
  /** The output would have grown past `cap`: `out` holds at most `cap` bytes. */
  overCap?: boolean;
}

const HEADER = 13;            // props byte, dictionary size (u32 LE), uncompressed size (u64 LE, all 0xff = unknown)
const TOP = 0x1000000;        // the range coder normalises when its range drops below 2^24
const PROB_INIT = 1024;       // probabilities are 11-bit; every model starts at one half
const END_MARKER = 0xffffffff;

// one length coder's probabilities in one array: choice, choice2, low[16 pos states][8], mid[16][8], high[256]
const L_CHOICE = 0, L_CHOICE2 = 1, L_LOW = 2, L_MID = 2 + 128, L_HIGH = 2 + 256, L_SIZE = 2 + 256 + 256;

/** The range decoder over `buf` from `pos`; running out of input is an error, never a wait. `range` and `code` are
 *  unsigned 32-bit values kept in int32 bit patterns (`x | 0`, read back with `x >>> 0`): values of 2^31 and more
 *  would be stored as heap numbers (decoding a 31 MB stream: 1.24-1.40 s this way, 1.60-1.69 s with uint32 fields). */
class RangeDecoder {
  range = -1;   // 0xffffffff
  code = 0;
  constructor(private readonly buf: Uint8Array, public pos: number) {
    if (buf.length - pos < 5) throw new LzmaError('Compressed data ended before the end-of-stream marker was reached');
    if (buf[pos] !== 0) throw new LzmaError('Corrupt input data: the range coder does not start with 0');
    this.code = (buf[pos + 1] << 24) | (buf[pos + 2] << 16) | (buf[pos + 3] << 8) | buf[pos + 4];
    this.pos = pos + 5;
  }

  private next(): number {
    if (this.pos >= this.buf.length) throw new LzmaError('Compressed data ended before the end-of-stream marker was reached');
    return this.buf[this.pos++];
  }

  // normalised before each bit, as liblzma does (not after, as the specification's reference decoder does): the same
  // bits, but a bit is decoded before the byte that follows it is needed, so truncated input yields what liblzma yields
  private normalize(): void {
    if ((this.range >>> 0) < TOP) { this.range <<= 8; this.code = (this.code << 8) | this.next(); }
  }

  /** Whether the stream may end here: the encoder's flush leaves the code at 0. */
  finished(): boolean { this.normalize(); return this.code === 0; }

  /** One bit under the adaptive probability p[i], which it updates. */
  bit(p: Uint16Array, i: number): number {
    this.normalize();
    const prob = p[i];
    const bound = (this.range >>> 11) * prob;
    let b: number;
    if ((this.code >>> 0) < bound) { this.range = bound | 0; p[i] = prob + ((2048 - prob) >> 5); b = 0; }
    else { this.range = ((this.range >>> 0) - bound) | 0; this.code = ((this.code >>> 0) - bound) | 0; p[i] = prob - (prob >> 5); b = 1; }
    return b;
  }

  /** `n` bits at probability one half (the high bits of long distances). */
  direct(n: number): number {
    let r = 0;
    for (; n > 0; n--) {
      this.normalize();
      this.range = (this.range >>> 1) | 0;
      let b = 0;
      if ((this.code >>> 0) >= (this.range >>> 0)) { this.code = ((this.code >>> 0) - (this.range >>> 0)) | 0; b = 1; }
      r = r * 2 + b;
    }
    return r;
  }

  /** An n-bit symbol, high bit first, from the binary tree of probabilities at p[base + 1 ...]. */
  tree(p: Uint16Array, base: number, n: number): number {
    let m = 1;
    for (let i = 0; i < n; i++) m = (m << 1) | this.bit(p, base + m);
    return m - (1 << n);
  }

  /** The same, low bit first (distance low bits and the align bits). */
  reverse(p: Uint16Array, base: number, n: number): number {
    let m = 1, sym = 0;
    for (let i = 0; i < n; i++) { const b = this.bit(p, base + m); m = (m << 1) | b; sym |= b << i; }
    return sym;
  }
}

/** The output: one buffer for all the streams of the file, grown geometrically up to the cap. */
class Output {
  buf: Uint8Array;
  n = 0;
  constructor(initial: number, private readonly cap: number) { this.buf = new Uint8Array(Math.max(1, Math.min(initial, cap))); }
  /** Room for `k` more bytes, or false when that would pass the cap. */
  room(k: number): boolean {
    const need = this.n + k;
    if (need <= this.buf.length) return true;
    if (need > this.cap) return false;
    const grown = new Uint8Array(Math.min(this.cap, Math.max(need, this.buf.length * 2)));
    grown.set(this.buf.subarray(0, this.n));
    this.buf = grown;
    return true;
  }
}

class OverCap extends Error {}

function lengthOf(rc: RangeDecoder, p: Uint16Array, posState: number): number {
  if (rc.bit(p, L_CHOICE) === 0) return rc.tree(p, L_LOW + (posState << 3) - 1, 3);
  if (rc.bit(p, L_CHOICE2) === 0) return 8 + rc.tree(p, L_MID + (posState << 3) - 1, 3);
  return 16 + rc.tree(p, L_HIGH - 1, 8);
}

/**
 * Decodes one stream from `input[at]` into `out`; returns the input position after it.
 * `base` is where this stream's output starts: each stream has its own dictionary, as in liblzma.
 */
function decodeStream(input: Uint8Array, at: number, out: Output): number {
  if (input.length - at < HEADER) throw new LzmaError('Compressed data ended before the end-of-stream marker was reached');
  let props = input[at];
  if (props >= 9 * 5 * 5) throw new LzmaError('Input format not supported by decoder: properties byte out of range');
  const lc = props % 9; props = (props / 9) | 0;
  const lp = props % 5, pb = (props / 5) | 0;
  if (lc + lp > 4) throw new LzmaError('Input format not supported by decoder: lc + lp > 4');
  const dictSize = (input[at + 1] | (input[at + 2] << 8) | (input[at + 3] << 16) | (input[at + 4] << 24)) >>> 0;
  // liblzma's window: at least 4 KiB, rounded up to 16 bytes; a match may reach back no further
  const window = Math.max(4096, Math.ceil(dictSize / 16) * 16);
  let known = false, size = 0;
  for (let i = 12; i >= 5; i--) { size = size * 256 + input[at + i]; if (input[at + i] !== 0xff) known = true; }

  const rc = new RangeDecoder(input, at + HEADER);
  const lit = new Uint16Array(0x300 << (lc + lp)).fill(PROB_INIT);
  const isMatch = new Uint16Array(12 << 4).fill(PROB_INIT), isRep0Long = new Uint16Array(12 << 4).fill(PROB_INIT);
  const isRep = new Uint16Array(12).fill(PROB_INIT), isRepG0 = new Uint16Array(12).fill(PROB_INIT);
  const isRepG1 = new Uint16Array(12).fill(PROB_INIT), isRepG2 = new Uint16Array(12).fill(PROB_INIT);
  const posSlot = new Uint16Array(4 << 6).fill(PROB_INIT);
  const posSpecial = new Uint16Array(1 + 114).fill(PROB_INIT);   // distance slots 4..13 share one array
  const align = new Uint16Array(16).fill(PROB_INIT);
  const lenCoder = new Uint16Array(L_SIZE).fill(PROB_INIT), repLenCoder = new Uint16Array(L_SIZE).fill(PROB_INIT);
  const pbMask = (1 << pb) - 1, lpMask = (1 << lp) - 1;

  const base = out.n;
  let state = 0, rep0 = 0, rep1 = 0, rep2 = 0, rep3 = 0;
  for (;;) {
    const pos = out.n - base;
    if (known && pos === size) {
      // the declared size is reached: the stream ends here, with or without an end marker
      if (rc.finished()) return rc.pos;
    }
    const posState = pos & pbMask;
    if (rc.bit(isMatch, (state << 4) | posState) === 0) {
      if (known && pos === size) throw new LzmaError('Corrupt input data: more data than the declared size');
      if (!out.room(1)) throw new OverCap();
      const buf = out.buf;
      const prev = pos > 0 ? buf[out.n - 1] : 0;
      const litBase = 0x300 * (((pos & lpMask) << lc) + (prev >> (8 - lc)));
      let sym = 1;
      if (state >= 7) {
        // after a match the literal is coded against the byte at distance rep0, while its bits agree
        let match = buf[out.n - rep0 - 1];
        while (sym < 0x100) {
          const mb = (match >> 7) & 1;
          match <<= 1;
          const b = rc.bit(lit, litBase + ((1 + mb) << 8) + sym);
          sym = (sym << 1) | b;
          if (b !== mb) break;
        }
      }
      while (sym < 0x100) sym = (sym << 1) | rc.bit(lit, litBase + sym);
      buf[out.n++] = sym - 0x100;
      state = state < 4 ? 0 : state < 10 ? state - 3 : state - 6;
      continue;
    }
    let len: number;
    if (rc.bit(isRep, state) === 1) {
      if (pos === 0) throw new LzmaError('Corrupt input data: a repeated match before any output');
      if (known && pos === size) throw new LzmaError('Corrupt input data: more data than the declared size');
      if (rc.bit(isRepG0, state) === 0) {
        if (rc.bit(isRep0Long, (state << 4) | posState) === 0) {
          // "short rep": one byte from distance rep0
          state = state < 7 ? 9 : 11;
          if (!out.room(1)) throw new OverCap();
          out.buf[out.n] = out.buf[out.n - rep0 - 1];
          out.n++;
          continue;
        }
      } else {
        let dist: number;
        if (rc.bit(isRepG1, state) === 0) dist = rep1;
        else {
          if (rc.bit(isRepG2, state) === 0) dist = rep2;
          else { dist = rep3; rep3 = rep2; }
          rep2 = rep1;
        }
        rep1 = rep0; rep0 = dist;
      }
      len = lengthOf(rc, repLenCoder, posState);
      state = state < 7 ? 8 : 11;
    } else {
      rep3 = rep2; rep2 = rep1; rep1 = rep0;
      len = lengthOf(rc, lenCoder, posState);
      state = state < 7 ? 7 : 10;
      rep0 = distanceOf(rc, len, posSlot, posSpecial, align);
      if (rep0 === END_MARKER) {
        if (known && pos !== size) throw new LzmaError('Corrupt input data: end marker before the declared size');
        if (!rc.finished()) throw new LzmaError('Corrupt input data: data after the end marker');
        return rc.pos;
      }
      if (known && pos === size) throw new LzmaError('Corrupt input data: more data than the declared size');
    }
    if (rep0 >= pos || rep0 >= window) throw new LzmaError('Corrupt input data: a match reaches before the start of the data');
    len += 2;
    let n = len;
    if (known && size - pos < n) n = size - pos;
    if (!out.room(n)) throw new OverCap();
    const buf = out.buf;
    // byte by byte: a match may overlap the bytes it writes (distance shorter than length)
    for (let src = out.n - rep0 - 1, end = out.n + n; out.n < end;) buf[out.n++] = buf[src++];
    if (n < len) throw new LzmaError('Corrupt input data: more data than the declared size');
  }
}

function distanceOf(rc: RangeDecoder, len: number, posSlot: Uint16Array, posSpecial: Uint16Array, align: Uint16Array): number {
  const lenState = len < 3 ? len : 3;
  const slot = rc.tree(posSlot, (lenState << 6) - 1, 6);
  if (slot < 4) return slot;
  const direct = (slot >> 1) - 1;
  let dist = (2 | (slot & 1)) * 2 ** direct;
  // slots 4-13: all low bits modelled; slots 14+: fixed-probability high bits, then 4 modelled align bits
  if (slot < 14) return dist + rc.reverse(posSpecial, dist - slot - 1, direct);
  dist += rc.direct(direct - 4) * 16;
  return dist + rc.reverse(align, -1, 4);
}

/**
 * Decodes a file of LZMA "alone" streams as Python's lzma.LZMAFile reads it: the first stream must decode; streams
 * that follow it are decoded too, and bytes after the last good stream are ignored (LZMAFile ignores trailing data
 * that is not a stream). Never throws; see LzmaResult.
 */
export function unlzma(input: Uint8Array, cap: number): LzmaResult {
  const out = new Output(input.length * 8, cap);
  let at = 0, streams = 0;
  for (;;) {
    const mark = out.n;
    try {
      at = decodeStream(input, at, out);
      streams++;
    } catch (e) {
      if (e instanceof OverCap) return { out: out.buf.subarray(0, out.n), overCap: true };
      if (!(e instanceof LzmaError)) return { out: out.buf.subarray(0, out.n), error: `Corrupt input data: ${String(e)}` };
      if (streams === 0) return { out: out.buf.subarray(0, out.n), error: e.message };
      out.n = mark;     // trailing data that is not a whole stream: ignored, with what it decoded
      break;
    }
    if (input.length - at < HEADER) break;
  }
  return { out: out.buf.subarray(0, out.n) };
}
