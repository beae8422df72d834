// String-keyed hash table with open addressing over typed arrays. Why not a Map: checkpoints carry 50,000+
// member names and tensor keys, each a fresh string; V8's Map hashes every fresh string once more and its
// backing stores add collector work, which cost more than the whole pickle simulation. Here the hash is
// FNV-1a, which the byte decoders compute while they read the name anyway (see strHash), and it can be
// continued over a suffix so "prefix + key" is looked up without building the string.

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
 * Append-only list of UTF-8 strings packed in one byte buffer, optionally with a hash index (FNV-1a over the
 * bytes, see bytesHash). Why: tensor names and storage keys of a 50,000-tensor checkpoint as JS strings are
 * 100,000 heap objects that live as long as the report; as bytes they are two typed arrays, decoded on read.
 */
export class ByteStrings {
  private bytes: Uint8Array;
  private start: Int32Array;        // string i is bytes[start[i] .. start[i+1])
  private hashes: Int32Array | undefined;
  private slots: Int32Array | undefined;
  private n = 0;

  constructor(expected = 64, indexed = false) {
    this.bytes = new Uint8Array(Math.max(256, expected * 16));
    this.start = new Int32Array(Math.max(16, expected) + 1);
    if (indexed) { this.hashes = new Int32Array(Math.max(16, expected)); this.slots = new Int32Array(slotCount(expected)); }
  }

  get size(): number { return this.n; }

  text(i: number): string { return decodeBytes(this.bytes, this.start[i], this.start[i + 1]); }
  /** String i's bytes are raw()[offset(i) .. offset(i) + length(i)) (valid until the next push). */
  raw(): Uint8Array { return this.bytes; }
  offset(i: number): number { return this.start[i]; }
  length(i: number): number { return this.start[i + 1] - this.start[i]; }

  /** Appends `len` bytes of `src` from `at` (no duplicate check); returns the new string's index. */
  push(src: Uint8Array, at: number, len: number, hash = 0): number {
    const i = this.n, from = this.start[i];
    if (from + len > this.bytes.length) {
      let cap = this.bytes.length * 2;
      while (cap < from + len) cap *= 2;
      const g = new Uint8Array(cap); g.set(this.bytes.subarray(0, from)); this.bytes = g;
    }
    if (i + 2 > this.start.length) {
      const g = new Int32Array(this.start.length * 2); g.set(this.start); this.start = g;
    }
    const b = this.bytes;
    for (let k = 0; k < len; k++) b[from + k] = src[at + k];
    this.start[i + 1] = from + len;
    this.n = i + 1;
    if (this.hashes) {
      if (i === this.hashes.length) { const g = new Int32Array(i * 2); g.set(this.hashes); this.hashes = g; }
      this.hashes[i] = hash;
      if ((i + 1) * 2 > this.slots!.length) this.rehash(this.slots!.length * 2);
      const slots = this.slots!, mask = slots.length - 1;
      let j = hash & mask;
      while (slots[j] !== 0) j = (j + 1) & mask;
      slots[j] = i + 1;
    }
    return i;
  }

  /** Index of the string equal to `len` bytes of `src` at `at` (hash: bytesHash of them), or -1. Needs `indexed`. */
  find(src: Uint8Array, at: number, len: number, hash: number): number {
    const slots = this.slots!, hashes = this.hashes!, mask = slots.length - 1, b = this.bytes;
    for (let j = hash & mask; ; j = (j + 1) & mask) {
      const e = slots[j];
      if (e === 0) return -1;
      const i = e - 1;
      if (hashes[i] !== hash) continue;
      const s = this.start[i];
      if (this.start[i + 1] - s !== len) continue;
      let k = 0;
      while (k < len && b[s + k] === src[at + k]) k++;
      if (k === len) return i;
    }
  }

  private rehash(cap: number): void {
    const slots = new Int32Array(cap), mask = cap - 1, hashes = this.hashes!;
    for (let i = 0; i < this.n; i++) {
      let j = hashes[i] & mask;
      while (slots[j] !== 0) j = (j + 1) & mask;
      slots[j] = i + 1;
    }
    this.slots = slots;
  }
}

function slotCount(expected: number): number {
  let cap = 16;
  while (cap < expected * 2) cap *= 2;
  return cap;
}
