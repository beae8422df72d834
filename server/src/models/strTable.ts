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
