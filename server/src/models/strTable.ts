// String-keyed hash table with open addressing over typed arrays. Why not a Map: checkpoints carry 50,000+
// member names and tensor keys, each a fresh string; V8's Map hashes every fresh string once more and its
// backing stores add collector work, which cost more than the whole pickle simulation. Here the hash is
// FNV-1a, which the byte decoders compute while they read the name anyway (see strHash), and it can be
// continued over a suffix so "prefix + key" is looked up without building the string.

import { giveArrayBuffer, keep, takeArrayBuffer } from './bufferPool';

const FNV_OFFSET = 0x811c9dc5 | 0;

/** FNV-1a over UTF-16 code units (for ASCII text: its bytes), as a signed 32-bit number (a small integer
 *  for V8: passing and storing it allocates nothing). */
export function strHash(s: string, h = FNV_OFFSET): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}

/** The running FNV state after `s`, to continue with strHash(suffix, state) (the same as strHash(s + suffix)). */
export function strHashState(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

export class StrTable<V> {
  private slots: Int32Array;        // entry index + 1, 0 = empty
  private hashes: Int32Array;
  private readonly keyList: string[] = [];
  private readonly valueList: V[] = [];

  /** `withValues`: false for a plain set of keys (value() is then undefined). */
  constructor(expected = 8, private readonly withValues = true) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.slots = new Int32Array(cap);
    this.hashes = new Int32Array(Math.max(8, expected));
  }

  get size(): number { return this.keyList.length; }
  keys(): readonly string[] { return this.keyList; }

  /** Index of `key`, or -1. */
  find(key: string, hash = strHash(key)): number {
    const mask = this.slots.length - 1;
    for (let j = hash & mask; ; j = (j + 1) & mask) {
      const e = this.slots[j];
      if (e === 0) return -1;
      if (this.hashes[e - 1] === hash && this.keyList[e - 1] === key) return e - 1;
    }
  }

  /** Index of the key `prefix + suffix` (hash: strHash(suffix, prefixState)), without concatenating. */
  findJoined(prefix: string, suffix: string, hash: number): number {
    const mask = this.slots.length - 1;
    const len = prefix.length + suffix.length;
    for (let j = hash & mask; ; j = (j + 1) & mask) {
      const e = this.slots[j];
      if (e === 0) return -1;
      const k = this.keyList[e - 1];
      if (this.hashes[e - 1] === hash && k.length === len && k.endsWith(suffix) && k.startsWith(prefix)) return e - 1;
    }
  }

  get(key: string, hash?: number): V | undefined {
    if (!this.withValues) return undefined;
    const i = this.find(key, hash);
    return i < 0 ? undefined : this.valueList[i];
  }

  /** Adds `key` unless present; returns its index either way (and whether it was new). */
  add(key: string, value: V, hash = strHash(key)): number {
    const i = this.find(key, hash);
    if (i >= 0) return i;
    const n = this.keyList.length;
    if ((n + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    if (n === this.hashes.length) { const h = new Int32Array(n * 2); h.set(this.hashes); this.hashes = h; }
    this.keyList.push(key); if (this.withValues) this.valueList.push(value); this.hashes[n] = hash;
    const mask = this.slots.length - 1;
    let j = hash & mask;
    while (this.slots[j] !== 0) j = (j + 1) & mask;
    this.slots[j] = n + 1;
    return n;
  }

  value(i: number): V { return this.valueList[i]; }
  key(i: number): string { return this.keyList[i]; }

  private rehash(cap: number): void {
    const slots = new Int32Array(cap);
    const mask = cap - 1;
    for (let i = 0; i < this.keyList.length; i++) {
      let j = this.hashes[i] & mask;
      while (slots[j] !== 0) j = (j + 1) & mask;
      slots[j] = i + 1;
    }
    this.slots = slots;
  }
}

const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;
const utf8 = new TextDecoder('utf-8');
const encoder = new TextEncoder();

/** FNV-1a over `len` bytes of `b` from `at` (equal to strHash of the text when the bytes are ASCII). */
export function bytesHash(b: Uint8Array, at: number, len: number, h = FNV_OFFSET): number {
  for (let i = at; i < at + len; i++) h = Math.imul(h ^ b[i], 0x01000193);
  return h | 0;
}

/** Decodes UTF-8 bytes (ASCII, the usual case, without the TextDecoder call). */
export function decodeBytes(b: Uint8Array, at: number, end: number): string {
  for (let i = at; i < end; i++) if (b[i] >= 0x80) return utf8.decode(b.subarray(at, end));
  return latin1Slice.call(b, at, end);
}

/** Writes the UTF-8 bytes of `s` into `dst` at `at` (which must have room for 3 bytes per UTF-16 unit); returns the end. */
export function encodeInto(s: string, dst: Uint8Array, at: number): number {
  for (let k = 0; k < s.length; k++) {
    const ch = s.charCodeAt(k);
    if (ch >= 0x80) return at + encoder.encodeInto(s.slice(k), dst.subarray(at)).written;
    dst[at++] = ch;
  }
  return at;
}

/**
 * Open-addressing lookup shared by the byte-string tables (ByteStrings, the zip directory's name indexes):
 * `slots` holds entry + 1 (0 = empty), entry e's bytes are bytes[start[e] + skip .. start[e + 1]) and its hash
 * hashes[e]. Returns the entry whose bytes equal `len` bytes of `src` at `at` (hash: their hash), or ~slot of
 * the free slot where the probe ended (where such an entry would go).
 */
export function probeBytes(slots: Int32Array, hashes: Int32Array, start: Int32Array, bytes: Uint8Array, skip: number,
  src: Uint8Array, at: number, len: number, hash: number): number {
  const mask = slots.length - 1;
  for (let j = hash & mask; ; j = (j + 1) & mask) {
    const e = slots[j];
    if (e === 0) return ~j;
    const i = e - 1;
    if (hashes[i] !== hash) continue;
    const s = start[i] + skip;
    if (start[i + 1] - s !== len) continue;
    let k = 0;
    while (k < len && bytes[s + k] === src[at + k]) k++;
    if (k === len) return i;
  }
}

/**
 * Append-only list of UTF-8 strings packed in one byte buffer, optionally with a hash index (FNV-1a over the
 * bytes, see bytesHash). Why: tensor names and storage keys of a 50,000-tensor checkpoint as JS strings are
 * 100,000 heap objects that live as long as the report; as bytes they are two typed arrays, decoded on read.
 * While it is filled it works in scratch memory from the pool; seal() moves it into exact-size arrays (what a
 * report keeps) and gives the scratch back. (Front-coding the sealed bytes was measured: it saved less time
 * in fresh-memory faults than the encoding cost.)
 */
export class ByteStrings {
  private bytes: Uint8Array;
  private start: Int32Array;        // string i is bytes[start[i] .. start[i+1])
  private hashes: Int32Array | undefined;
  private slots: Int32Array | undefined;
  private n = 0;
  private sealed = false;

  constructor(expected = 64, private readonly indexed = false) {
    this.bytes = pooled(Uint8Array, Math.max(256, expected * 16));
    this.start = pooled(Int32Array, Math.max(16, expected) + 1);
    this.start[0] = 0;
    if (indexed) {
      this.hashes = pooled(Int32Array, Math.max(16, expected));
      this.slots = pooled(Int32Array, slotCount(expected)).fill(0);
    }
  }

  get size(): number { return this.n; }

  text(i: number): string { const o = this.offset(i); return decodeBytes(this.bytes, o, o + this.length(i)); }
  /** String i's bytes are raw()[offset(i) .. offset(i) + length(i)) (valid until the next push or seal). */
  raw(): Uint8Array { return this.bytes; }
  offset(i: number): number {
    const lens = this.lens;
    if (!lens) return this.start[i];
    // sealed: block start plus the lengths before i in its block (reading in order continues from the last one)
    let o: number, j: number;
    if (i === this.curI + 1 && (i & (BLOCK - 1)) !== 0) { o = this.curOff + this.length(this.curI); j = i; }
    else { o = this.start[i >> BLOCK_SHIFT]; j = i & ~(BLOCK - 1); for (; j < i; j++) o += lens[j] === 255 ? this.long.get(j)! : lens[j]; }
    this.curI = i; this.curOff = o;
    return o;
  }
  length(i: number): number {
    const lens = this.lens;
    if (!lens) return this.start[i + 1] - this.start[i];
    const l = lens[i];
    return l === 255 ? this.long.get(i)! : l;
  }
  // sealed layout: one byte of length per string (255: in `long`), start offsets only per block of BLOCK strings
  private lens: Uint8Array | undefined;
  private readonly long = new Map<number, number>();
  private curI = -2; private curOff = 0;

  /** From now on push() records hashes without filling the index; the next find() fills it (StorageTable's
   *  dense keys need no index until a key breaks the pattern). */
  deferIndex(): void { if (this.hashes) this.deferred = true; }
  private deferred = false;

  /** Appends `len` bytes of `src` from `at` (no duplicate check); returns the new string's index. */
  push(src: Uint8Array, at: number, len: number, hash = 0): number {
    if (this.sealed) throw new Error('ByteStrings: push after seal()');
    const i = this.n, from = this.start[i];
    if (from + len > this.bytes.length) this.bytes = regrow(this.bytes, from + len, from);
    if (i + 2 > this.start.length) this.start = regrow(this.start, i + 2, i + 1);
    const b = this.bytes;
    for (let k = 0; k < len; k++) b[from + k] = src[at + k];
    this.start[i + 1] = from + len;
    this.n = i + 1;
    if (this.hashes) {
      if (i === this.hashes.length) this.hashes = regrow(this.hashes, i + 1, i);
      this.hashes[i] = hash;
      if (this.deferred) return i;
      if ((i + 1) * 2 > this.slots!.length) this.rehash(this.slots!.length * 2);
      const slots = this.slots!, mask = slots.length - 1;
      // find() just missed this string: its probe ended at the free slot it goes in
      let j = this.missHash === hash && this.missSlot >= 0 && slots[this.missSlot] === 0 ? this.missSlot : hash & mask;
      while (slots[j] !== 0) j = (j + 1) & mask;
      slots[j] = i + 1;
      this.missSlot = -1;
    }
    return i;
  }
  private missSlot = -1; private missHash = 0;

  /** Index of the string equal to `len` bytes of `src` at `at` (hash: bytesHash of them), or -1. Needs `indexed`. */
  find(src: Uint8Array, at: number, len: number, hash: number): number {
    if (!this.slots) this.reindex();
    else if (this.deferred) { this.deferred = false; this.rehash(slotCount(this.n)); }
    const r = probeBytes(this.slots!, this.hashes!, this.start, this.bytes, 0, src, at, len, hash);
    if (r >= 0) return r;
    this.missSlot = ~r; this.missHash = hash;
    return -1;
  }

  /** Moves the strings into exact-size arrays (one length byte per string) and gives the scratch memory (and the
   *  index) back; no push() afterwards. */
  seal(): void {
    if (this.sealed) return;
    this.sealed = true;
    const n = this.n, st = this.start;
    const bytes = keep(Uint8Array, st[n]);
    bytes.set(this.bytes.subarray(0, st[n]));
    const lens = keep(Uint8Array, Math.max(1, n));
    const blocks = keep(Int32Array, Math.max(1, (n + BLOCK - 1) >> BLOCK_SHIFT));
    for (let i = 0; i < n; i++) {
      const l = st[i + 1] - st[i];
      if (l < 255) lens[i] = l; else { lens[i] = 255; this.long.set(i, l); }
      if ((i & (BLOCK - 1)) === 0) blocks[i >> BLOCK_SHIFT] = st[i];
    }
    for (const a of [this.bytes, this.start, this.hashes, this.slots]) if (a) giveArrayBuffer(a.buffer as ArrayBuffer);
    this.bytes = bytes; this.start = blocks; this.lens = lens; this.hashes = undefined; this.slots = undefined;
  }

  /** The index of a sealed table, built again (outside the pool) when a lookup needs it: rare. */
  private reindex(): void {
    if (!this.indexed) throw new Error('ByteStrings: find() on a table without an index');
    // back to one start offset per string (sealed tables are rarely searched)
    const start = new Int32Array(this.n + 1);
    for (let i = 0; i < this.n; i++) start[i] = this.offset(i);
    start[this.n] = this.bytes.length;
    this.start = start; this.lens = undefined;
    const hashes = new Int32Array(Math.max(1, this.n));
    for (let i = 0; i < this.n; i++) hashes[i] = bytesHash(this.bytes, this.start[i], this.start[i + 1] - this.start[i]);
    this.hashes = hashes;
    this.slots = new Int32Array(slotCount(this.n));
    this.rehash(this.slots.length, false);
  }

  private rehash(cap: number, pool = true): void {
    const slots = pool ? pooled(Int32Array, cap).fill(0) : new Int32Array(cap), mask = cap - 1, hashes = this.hashes!;
    for (let i = 0; i < this.n; i++) {
      let j = hashes[i] & mask;
      while (slots[j] !== 0) j = (j + 1) & mask;
      slots[j] = i + 1;
    }
    if (pool && this.slots) giveArrayBuffer(this.slots.buffer as ArrayBuffer);
    this.slots = slots;
    this.missSlot = -1;
  }
}

/**
 * A sealed integer column: absent when every value is the same constant or equals its row index (the usual
 * case for checkpoint tables: one dtype, offset 0, storage i for tensor i), else the exact-size typed array.
 */
export class SealedColumn {
  private constructor(private readonly a: Uint8Array | Int32Array | Float64Array | undefined, private readonly k: number, private readonly id: boolean) {}
  get(i: number): number { return this.a ? this.a[i] : this.id ? i : this.k; }
  get byteLength(): number { return this.a ? this.a.byteLength : 0; }
  /** Seals the first `n` values of `src` (a pooled scratch array, which the caller gives back). */
  static of(src: Uint8Array | Int32Array | Float64Array, n: number): SealedColumn {
    if (n === 0) return new SealedColumn(undefined, 0, false);
    let same = true, ident = true;
    const k = src[0];
    for (let i = 0; i < n && (same || ident); i++) { const v = src[i]; if (v !== k) same = false; if (v !== i) ident = false; }
    if (same) return new SealedColumn(undefined, k, false);
    if (ident) return new SealedColumn(undefined, 0, true);
    const kept = keep(src.constructor as Float64ArrayConstructor, n);
    kept.set(src.subarray(0, n));
    return new SealedColumn(kept, 0, false);
  }
}

/** A growing integer column in pooled scratch memory, sealed into a SealedColumn when complete. */
export class ScratchColumn {
  private a: Uint8Array | Int32Array | Float64Array;
  constructor(ctor: Uint8ArrayConstructor | Int32ArrayConstructor | Float64ArrayConstructor, cap = 256) {
    this.a = pooled(ctor as unknown as TypedCtor<Uint8Array>, cap) as unknown as Uint8Array | Int32Array | Float64Array;
  }
  get(i: number): number { return this.a[i]; }
  set(i: number, v: number): void {
    if (i >= this.a.length) this.a = regrow(this.a, i + 1, this.a.length);
    this.a[i] = v;
  }
  /** The first `n` values as a SealedColumn; the scratch goes back to the pool. */
  seal(n: number): SealedColumn {
    const c = SealedColumn.of(this.a, n);
    giveArrayBuffer(this.a.buffer as ArrayBuffer);
    this.a = new Uint8Array(0);
    return c;
  }
}

type TypedCtor<T> = { new(buffer: ArrayBuffer, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

/** A typed array of exactly `n` elements over a pooled (not zeroed) buffer. */
export function pooled<T>(ctor: TypedCtor<T>, n: number): T {
  return new ctor(takeArrayBuffer(n * ctor.BYTES_PER_ELEMENT), 0, n);
}

/** A pooled copy of `a` with room for at least `need` elements, keeping its first `keep`; `a` goes back to the pool. */
export function regrow<T extends Uint8Array | Int32Array | Float64Array | Int16Array | Uint16Array>(a: T, need: number, keep: number): T {
  let cap = Math.max(16, a.length * 2);
  while (cap < need) cap *= 2;
  const ctor = a.constructor as unknown as TypedCtor<T>;
  const g = pooled(ctor, cap);
  (g as unknown as Uint8Array).set((a as unknown as Uint8Array).subarray(0, keep));
  giveArrayBuffer(a.buffer as ArrayBuffer);
  return g;
}

const BLOCK_SHIFT = 6, BLOCK = 1 << BLOCK_SHIFT;

function slotCount(expected: number): number {
  let cap = 16;
  while (cap < expected * 2) cap *= 2;
  return cap;
}
