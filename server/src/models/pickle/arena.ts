// Compact store for the values a simulated unpickler builds. A value is an int handle into typed arrays;
// containers keep their items as handles. Why not plain objects: a 50,000-tensor state dict builds ~1M
// values that all stay reachable from the result, and as objects the garbage collector spent more time
// copying and promoting them than the machine spent running (typed arrays and small-int arrays are not
// traced). Consumers that want ordinary PyValue objects materialize them (the whole graph, or a bounded
// neighbourhood of one handle); the tensor walker and the decompiler read handles directly.
// Nothing here makes an object per value either: container items live in one pool of handles (a crafted
// pickle of a million nested lists makes a million containers; as one typed array each they took 300 bytes
// apiece), and so do what BUILD / APPENDS / SETITEMS did to call results.
import {
  CallKind, PyBytes, PyCall, PyDict, PyFloat, PyGlobal, PyList, PyOpaque, PyPersId, PySet, PyTuple, PyValue,
} from './values';
import { strHash, decodeBytes } from '../strTable';
import { giveArrayBuffer, takeArrayBuffer } from '../bufferPool';

export const K = {
  NONE: 0, FALSE: 1, TRUE: 2, INT: 3, STR: 4, TUPLE: 5, LIST: 6, DICT: 7, SET: 8, GLOBAL: 9, CALL: 10, PERSID: 11,
  /** PyBigStr, PyOpaque, PyNdArray, PyExt, bigint or a bytes value too big to copy, kept in `objs` */
  OBJ: 12,
  /** bytes / bytearray of at most 4 KB, copied into the arena's byte store (no object per value) */
  BYTES: 13,
  /** float (the value in `b`) */
  FLOAT: 14,
} as const;

const CALL_KINDS: CallKind[] = ['reduce', 'newobj', 'newobj_ex', 'obj', 'inst'];
export const CALL_KIND_CODE: Record<CallKind, number> = { reduce: 0, newobj: 1, newobj_ex: 2, obj: 3, inst: 4 };

/** What later opcodes did to the result of a call, as handles (the compatibility view `extras` builds these;
 *  the arena itself keeps them in typed columns, see extraSeq). */
export interface CallExtra {
  kwargs?: number;
  states?: number[];
  listItems?: number[];
  dictItems?: number[];   // flat: key, value, key, value, ...
  setItems?: number[];
}

/** Which sequence of a call's extras: BUILD states, APPEND(S) items, SETITEM(S) items (flat), ADDITEMS items. */
export const X_STATES = 0, X_LIST = 1, X_DICT = 2, X_SET = 3;

export interface GlobalName { module: string; name: string }

/** Read access to a list of value handles (a sequence of the arena, or a plain array through ints()). */
export interface Ints { readonly length: number; get(i: number): number }
export function ints(a: readonly number[]): Ints { return { length: a.length, get: (i) => a[i] }; }

/** Open-addressing int -> int map over typed arrays (keys >= 0): a Map entry per call with extras cost ~100
 *  bytes and collector work; a crafted pickle can give 400,000 calls a BUILD state each. */
class IntMap {
  private keys: Int32Array;   // key + 1, 0 = empty
  private vals: Int32Array;
  private n = 0;
  constructor(cap = 64) { this.keys = new Int32Array(cap); this.vals = new Int32Array(cap); }
  get size(): number { return this.n; }
  get(k: number): number {
    const keys = this.keys, mask = keys.length - 1;
    for (let j = Math.imul(k, 0x9e3779b1) & mask; ; j = (j + 1) & mask) {
      const e = keys[j];
      if (e === 0) return -1;
      if (e === k + 1) return this.vals[j];
    }
  }
  set(k: number, v: number): void {
    if ((this.n + 1) * 2 > this.keys.length) this.rehash();
    const keys = this.keys, mask = keys.length - 1;
    for (let j = Math.imul(k, 0x9e3779b1) & mask; ; j = (j + 1) & mask) {
      const e = keys[j];
      if (e === 0) { keys[j] = k + 1; this.vals[j] = v; this.n++; return; }
      if (e === k + 1) { this.vals[j] = v; return; }
    }
  }
  private rehash(): void {
    const ok = this.keys, ov = this.vals;
    this.keys = new Int32Array(ok.length * 2); this.vals = new Int32Array(ok.length * 2); this.n = 0;
    for (let j = 0; j < ok.length; j++) if (ok[j] !== 0) this.set(ok[j] - 1, ov[j]);
  }
}

/** Handles 0..2 are None/False/True, 3..258 the ints 0..255, 259 the empty tuple. */
export const H_NONE = 0, H_FALSE = 1, H_TRUE = 2, H_SMALL_INT = 3, H_EMPTY_TUPLE = 259;

export class ValueArena {
  n = 0;
  kind = new Uint8Array(0);
  /** NONE/FALSE/TRUE: -, INT/FLOAT: -, STR/OBJ: objs index (or byte start, see sub), BYTES: byte start,
   *  TUPLE: items start, LIST/DICT/SET: start in `sq`, GLOBAL: globals index, CALL: fn handle, PERSID: pid handle */
  a = new Int32Array(0);
  /** TUPLE/LIST/DICT/SET: length (DICT: 2 per entry), CALL: args handle, STR: strHash of the text, BYTES: length;
   *  in `sub`: the CALL kind code, 1 for a frozen SET, 1 for a bytearray BYTES */
  c = new Int32Array(0);
  sub = new Uint8Array(0);
  /** INT/FLOAT: value, CALL/PERSID: stream offset, BYTES: stream offset of the payload */
  b = new Float64Array(0);
  items = new Int32Array(0);
  nItems = 0;
  /** ASCII str payloads and small bytes payloads, packed (STR nodes with sub 0 point here: start in `a`,
   *  length in `b`). Why bytes: a state dict's 100,000 keys as JS strings would all live as long as the arena. */
  sb = new Uint8Array(0);
  nsb = 0;
  readonly objs: unknown[] = [];

  // ---- sequences: the items of lists, dicts (flat: key, value, ...), sets, and of call extras (as LIST nodes
  // no value refers to). Sequence node `s` holds sq[a[s] .. a[s] + c[s]) with room for seqCap(c[s]) items;
  // one that outgrows its room moves to the end of the pool (or grows in place when it is already there), so
  // the pool wastes at most what the doubling leaves behind. No column per sequence: a crafted pickle makes a
  // container per byte.
  sq = new Int32Array(0);
  nsq = 0;

  // ---- call extras: call handle -> extra id; per extra id the kwargs handle and four sequence nodes (-1: none)
  private readonly xIndex = new IntMap();
  private xKw = new Int32Array(0);
  private xSeq = new Int32Array(0);   // 4 per extra: X_STATES, X_LIST, X_DICT, X_SET
  private nX = 0;

  private released = false;
  private hOob = -1;

  /** `capacity`: values to make room for up front (the arrays come from the scratch pool, see release()). */
  constructor(readonly globals: readonly GlobalName[], capacity = 1024) {
    this.alloc(Math.max(1024, capacity), Math.max(4096, capacity));
    this.sqHint = capacity >> 2;
    this.node(K.NONE, 0, 0, 0); this.node(K.FALSE, 0, 0, 0); this.node(K.TRUE, 0, 0, 0);
    for (let i = 0; i < 256; i++) this.node(K.INT, 0, 0, i);
    this.node(K.TUPLE, 0, 0, 0);
  }

  node(kind: number, a: number, c: number, b: number): number {
    const h = this.n;
    if (h === this.kind.length) this.grow();
    this.kind[h] = kind; this.a[h] = a; this.c[h] = c; this.b[h] = b;
    this.n = h + 1;
    return h;
  }

  /** Pooled arrays for `cap` values and `itemCap` tuple items, keeping what the old arrays hold. */
  private alloc(cap: number, itemCap: number): void {
    const old = [this.kind, this.a, this.c, this.sub, this.b, this.items];
    const n = this.n;
    const k = new Uint8Array(takeArrayBuffer(cap), 0, cap); k.set(this.kind.subarray(0, n));
    const a = new Int32Array(takeArrayBuffer(cap * 4), 0, cap); a.set(this.a.subarray(0, n));
    const c = new Int32Array(takeArrayBuffer(cap * 4), 0, cap); c.set(this.c.subarray(0, n));
    const s = new Uint8Array(takeArrayBuffer(cap), 0, cap); s.set(this.sub.subarray(0, n));
    const b = new Float64Array(takeArrayBuffer(cap * 8), 0, cap); b.set(this.b.subarray(0, n));
    if (this.sb.length === 0) this.sb = new Uint8Array(takeArrayBuffer(itemCap * 4));
    let it = this.items;
    if (itemCap > it.length) { it = new Int32Array(takeArrayBuffer(itemCap * 4), 0, itemCap); it.set(this.items.subarray(0, this.nItems)); }
    this.kind = k; this.a = a; this.c = c; this.sub = s; this.b = b;
    for (const o of old) if (o.length && o !== it) retire(o.buffer as ArrayBuffer);
    this.items = it;
  }

  /** At most how many values the stream can make (one per byte: an opcode makes one value at most), when known. */
  bound = Infinity;
  /** Doubles; a stream of known size that outgrows the first estimate (about one value per 12 bytes, as real
   *  checkpoints) is dense, likely crafted: it jumps towards its bound instead, so fewer outgrown generations
   *  are left to the collector. */
  /** For a stream of unknown length: how many values the bytes already buffered could still make (a small
   *  compressed file arrives whole), a hint for growing (more bytes may follow). */
  sizeHint?: () => number;
  private grow(): void {
    const cap = this.kind.length;
    const want = Number.isFinite(this.bound) ? this.bound : this.sizeHint ? this.sizeHint() : 0;
    this.alloc(Math.max(cap * 2, Math.min(cap * 16, want)), 0);
  }

  /** Hands the arrays back to the scratch pool. Only for arenas nothing will read again (a scan that
   *  returns just its report); any later read fails loudly instead of seeing another scan's values. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const o of [this.kind, this.a, this.c, this.sub, this.b, this.items, this.sb, this.sq, this.xKw, this.xSeq]) {
      if (o.length) giveArrayBuffer(o.buffer as ArrayBuffer);
    }
    this.sb = new Uint8Array(0);
    this.kind = new Uint8Array(0); this.a = new Int32Array(0); this.c = new Int32Array(0);
    this.sub = new Uint8Array(0); this.b = new Float64Array(0); this.items = new Int32Array(0);
    this.sq = new Int32Array(0);
    this.xKw = new Int32Array(0); this.xSeq = new Int32Array(0);
  }

  private checkLive(): void { if (this.released) throw new Error('value arena used after release'); }

  int(v: number): number { return v >= 0 && v < 256 && Number.isInteger(v) ? H_SMALL_INT + v : this.node(K.INT, 0, 0, v); }
  float(v: number): number { return this.node(K.FLOAT, 0, 0, v); }
  obj(v: unknown): number { this.objs.push(v); return this.node(K.OBJ, this.objs.length - 1, 0, 0); }
  /** An out-of-band buffer (NEXT_BUFFER): one shared value, it has no content to tell apart. */
  oob(): number { if (this.hOob < 0) this.hOob = this.obj(new PyOpaque('out-of-band buffer')); return this.hOob; }
  /** A bytes (or bytearray) value whose `len` bytes are copied from `src` at `at`; `offset`: where they are in the stream. */
  bytes(src: Uint8Array, at: number, len: number, offset: number, bytearray: boolean): number {
    const sb = this.strRoom(len), o = this.nsb;
    sb.set(src.subarray(at, at + len), o);
    this.nsb += len;
    const h = this.node(K.BYTES, o, len, offset);
    this.sub[h] = bytearray ? 1 : 0;
    return h;
  }
  /** A str value; `hash` is strHash(s) when the caller already computed it while decoding. */
  str(s: string, hash = strHash(s)): number {
    this.objs.push(s);
    const h = this.node(K.STR, this.objs.length - 1, hash, 0);
    this.sub[h] = 1;
    return h;
  }
  /** The string bytes, with room for `len` more at `nsb` (for a caller that copies them itself, then strCopied). */
  strRoom(len: number): Uint8Array {
    const n = this.nsb;
    if (n + len > this.sb.length) {
      let cap = this.sb.length * 2;
      while (cap < n + len) cap *= 2;
      const g = new Uint8Array(takeArrayBuffer(cap), 0, cap); g.set(this.sb.subarray(0, n));
      retire(this.sb.buffer as ArrayBuffer);
      this.sb = g;
    }
    return this.sb;
  }
  /** A str value of the `len` ASCII bytes just written at `nsb` (see strRoom); `hash`: their FNV-1a. */
  strCopied(len: number, hash: number): number {
    const h = this.node(K.STR, this.nsb, hash, len);
    this.nsb += len;
    this.sub[h] = 0;
    return h;
  }
  /** The text of STR handle `h`. */
  text(h: number): string {
    return this.sub[h] === 0 ? decodeBytes(this.sb, this.a[h], this.a[h] + this.b[h]) : this.objs[this.a[h]] as string;
  }
  /** Whether STR handle `h` holds exactly `s` (compared without decoding). */
  strIs(h: number, s: string): boolean {
    if (this.kind[h] !== K.STR) return false;
    if (this.sub[h] !== 0) return this.objs[this.a[h]] === s;
    const at = this.a[h], len = this.b[h], sb = this.sb;
    if (len !== s.length) return false;
    for (let i = 0; i < len; i++) if (sb[at + i] !== s.charCodeAt(i)) return false;
    return true;
  }

  // ---- sequences (a sequence is its LIST / DICT / SET node)

  /** Room for `need` items in sequence `s` (moves it to the end of the pool if it must grow elsewhere). */
  private seqRoom(s: number, need: number): void {
    const len = this.c[s], cap = seqCap(len);
    if (need <= cap) return;
    const c = seqCap(need);
    const start = this.a[s];
    if (start + cap === this.nsq) {           // last in the pool: grow in place
      this.poolRoom(start + c);
      this.nsq = start + c;
    } else {
      const at = this.nsq;
      this.poolRoom(at + c);
      this.sq.copyWithin(at, start, start + len);
      this.a[s] = at;
      this.nsq = at + c;
    }
  }
  private poolRoom(n: number): void { if (n > this.sq.length) this.sq = regrowI32(this.sq, Math.max(n, this.sqHint), this.nsq); }
  /** First size of the pool (allocated when the first item arrives: many small pickles have no containers). */
  private readonly sqHint: number;
  /** Appends one handle to sequence `s`. */
  push(s: number, v: number): void {
    const len = this.c[s];
    if (len === seqCap(len)) this.seqRoom(s, len + 1);
    this.sq[this.a[s] + len] = v;
    this.c[s] = len + 1;
  }
  /** Appends `src[from..to)` to sequence `s`. */
  pushFrom(s: number, src: Int32Array, from: number, to: number): void {
    const len = this.c[s], n = to - from;
    if (n <= 0) return;
    if (len + n > seqCap(len)) this.seqRoom(s, len + n);
    this.sq.set(src.subarray(from, to), this.a[s] + len);
    this.c[s] = len + n;
  }
  /** Sequence node `s` (a LIST / DICT / SET value, or what extraSeq returns) holds
   *  sq[seqStartOf(s) .. + seqLenOf(s)) (valid until the next push anywhere). */
  seqLenOf(s: number): number { return this.c[s]; }
  seqStartOf(s: number): number { return this.a[s]; }
  seqItemOf(s: number, i: number): number { return this.sq[this.a[s] + i]; }
  /** A read view of sequence `s`. */
  seqView(s: number): Ints { return new SeqView(this.sq, this.a[s], this.c[s]); }
  private seqArray(s: number): number[] { const st = this.a[s]; return Array.from(this.sq.subarray(st, st + this.c[s])); }

  /** A LIST / DICT / SET value holding `items`. */
  seq(kind: number, items?: readonly number[], frozen = 0): number {
    const h = this.node(kind, this.nsq, 0, 0);
    this.sub[h] = frozen;
    if (items && items.length) { this.seqRoom(h, items.length); for (let i = 0; i < items.length; i++) this.sq[this.a[h] + i] = items[i]; this.c[h] = items.length; }
    return h;
  }
  /** A LIST / DICT / SET value holding `src[from..to)` (a typed stack). */
  seqOf(kind: number, src: Int32Array, from: number, to: number, frozen = 0): number {
    const h = this.node(kind, this.nsq, 0, 0);
    this.sub[h] = frozen;
    this.pushFrom(h, src, from, to);
    return h;
  }
  /** Items of the LIST / DICT / SET value `h` (the same as seqLenOf / seqItemOf). */
  seqLen(h: number): number { return this.c[h]; }
  seqItem(h: number, i: number): number { return this.sq[this.a[h] + i]; }
  /** Whether SET `h` is a frozenset. */
  frozen(h: number): boolean { return this.sub[h] === 1; }

  call(fn: number, args: number, kind: CallKind, offset: number): number {
    const h = this.node(K.CALL, fn, args, offset);
    this.sub[h] = CALL_KIND_CODE[kind];
    return h;
  }

  /** A tuple of `ts[from..to)` (a typed stack). */
  tupleOf(ts: Int32Array, from: number, to: number): number {
    const len = to - from;
    if (len === 0) return H_EMPTY_TUPLE;
    if (this.nItems + len > this.items.length) {
      let cap = this.items.length * 2;
      while (cap < this.nItems + len) cap *= 2;
      const it = new Int32Array(takeArrayBuffer(cap * 4), 0, cap); it.set(this.items.subarray(0, this.nItems));
      retire(this.items.buffer as ArrayBuffer);
      this.items = it;
    }
    const start = this.nItems, items = this.items;
    for (let i = 0; i < len; i++) items[start + i] = ts[from + i];
    this.nItems = start + len;
    return this.node(K.TUPLE, start, len, 0);
  }

  tupleItem(h: number, i: number): number { return i < this.c[h] ? this.items[this.a[h] + i] : -1; }

  // ---- what later opcodes did to call results

  /** Extra id of call `h`, or -1 when nothing was done to it. */
  private xid(h: number): number { return this.nX === 0 ? -1 : this.xIndex.get(h); }
  private xidOrNew(h: number): number {
    let x = this.xid(h);
    if (x >= 0) return x;
    x = this.nX;
    if (x === this.xKw.length) { this.xKw = regrowI32(this.xKw, x + 1, x); this.xSeq = regrowI32(this.xSeq, 4 * (x + 1), 4 * x); }
    this.xKw[x] = -1;
    for (let k = 0; k < 4; k++) this.xSeq[4 * x + k] = -1;
    this.nX = x + 1;
    this.xIndex.set(h, x);
    return x;
  }
  /** Whether any call has extras (states, items, kwargs). */
  get hasExtras(): boolean { return this.nX > 0; }
  /** The NEWOBJ_EX keyword-arguments handle of call `h`, or -1. */
  kwargsOf(h: number): number { const x = this.xid(h); return x < 0 ? -1 : this.xKw[x]; }
  setKwargs(h: number, kw: number): void { const x = this.xidOrNew(h); this.xKw[x] = kw; }   // xidOrNew may replace xKw
  /** Sequence id of call `h`'s X_STATES / X_LIST / X_DICT / X_SET items, or -1. */
  extraSeq(h: number, which: number): number { const x = this.xid(h); return x < 0 ? -1 : this.xSeq[4 * x + which]; }
  private extraSeqOrNew(h: number, which: number): number {
    const x = this.xidOrNew(h);
    let s = this.xSeq[4 * x + which];
    if (s < 0) { s = this.seq(K.LIST); this.xSeq[4 * x + which] = s; }
    return s;
  }
  extraPush(h: number, which: number, v: number): void { this.push(this.extraSeqOrNew(h, which), v); }
  extraPushFrom(h: number, which: number, src: Int32Array, from: number, to: number): void { this.pushFrom(this.extraSeqOrNew(h, which), src, from, to); }

  /** @deprecated write access as before (`ar.extra(h).kwargs = kw`): use setKwargs. */
  extra(h: number): { kwargs?: number } {
    const ar = this;
    return {
      get kwargs(): number | undefined { const k = ar.kwargsOf(h); return k < 0 ? undefined : k; },
      set kwargs(v: number | undefined) { if (v !== undefined) ar.setKwargs(h, v); },
    };
  }
  /** @deprecated compatibility view (`ar.extras.get(h)` as before extras moved into columns): builds a
   *  CallExtra on each get. Use kwargsOf / extraSeq. */
  get extras(): { get(h: number): CallExtra | undefined; has(h: number): boolean; readonly size: number } {
    return {
      get: (h) => {
        const x = this.xid(h);
        if (x < 0) return undefined;
        const e: CallExtra = {};
        if (this.xKw[x] >= 0) e.kwargs = this.xKw[x];
        const seq = (k: number) => { const s = this.xSeq[4 * x + k]; return s < 0 ? undefined : this.seqArray(s); };
        const st = seq(X_STATES), li = seq(X_LIST), di = seq(X_DICT), se = seq(X_SET);
        if (st) e.states = st; if (li) e.listItems = li; if (di) e.dictItems = di; if (se) e.setItems = se;
        return e;
      },
      has: (h) => this.xid(h) >= 0,
      size: this.nX,
    };
  }

  /** The value of `h` when it is not a container (None, bool, int, str, float, bytes...), else undefined. */
  scalar(h: number): PyValue | undefined {
    const k = this.kind[h];
    return k <= K.STR || k >= K.OBJ ? this.shell(h)[0] : undefined;
  }

  strOf(h: number): string | undefined { return this.kind[h] === K.STR ? this.text(h) : undefined; }

  /** "module.name" of a call's callee when it is an imported global. */
  calleeName(h: number): string | undefined {
    const fn = this.a[h];
    return this.kind[fn] === K.GLOBAL ? this.globalName(this.a[fn]) : undefined;
  }

  private readonly fullNames: string[] = [];
  /** "module.name" of global record `i`, built once (the same string each time, so Set lookups hit its cached hash). */
  globalName(i: number): string {
    let s = this.fullNames[i];
    if (s === undefined) { const g = this.globals[i]; s = `${g.module}.${g.name}`; this.fullNames[i] = s; }
    return s;
  }

  /** Calls `f` on each handle value `h` refers to directly (container items, call parts, a persistent id's pid). */
  forEachChild(h: number, f: (ch: number) => void): void {
    switch (this.kind[h]) {
      case K.TUPLE: { const at = this.a[h], n = this.c[h]; for (let i = 0; i < n; i++) f(this.items[at + i]); break; }
      case K.LIST: case K.DICT: case K.SET: { const at = this.a[h], n = this.c[h]; for (let i = 0; i < n; i++) f(this.sq[at + i]); break; }
      case K.PERSID: f(this.a[h]); break;
      case K.CALL: {
        f(this.a[h]); f(this.c[h]);
        const x = this.xid(h);
        if (x < 0) break;
        if (this.xKw[x] >= 0) f(this.xKw[x]);
        for (let k = 0; k < 4; k++) {
          const s = this.xSeq[4 * x + k];
          if (s >= 0) for (let i = 0; i < this.c[s]; i++) f(this.sq[this.a[s] + i]);
        }
        break;
      }
    }
  }

  /** The whole graph under `root` as PyValue objects; shared and cyclic values stay shared. Iterative, so
   *  deeply nested crafted values cannot overflow the call stack. Builds an object per value: for small
   *  values (or callers bounded otherwise); materializeNear bounds it. */
  materialize(root: number): PyValue {
    this.checkLive();
    const made = new Map<number, PyValue>();
    const todo = [root];
    const filled: number[] = [];
    while (todo.length) {
      const h = todo.pop() as number;
      if (made.has(h)) continue;
      const [shell, containerish] = this.shell(h);
      made.set(h, shell);
      if (containerish) { filled.push(h); this.forEachChild(h, (ch) => { if (!made.has(ch)) todo.push(ch); }); }
    }
    for (const h of filled) this.fill(made.get(h) as PyValue, h, (ch) => made.get(ch) as PyValue);
    return made.get(root) as PyValue;
  }

  /** `h` with at most `maxDepth` levels and `budget` values below it; deeper parts become PyOpaque. Used to
   *  hand one small value (a tensor's rebuild call, a joblib state) to code written against PyValue. */
  materializeNear(h: number, maxDepth = 8, budget = 4096): PyValue {
    this.checkLive();
    const made = new Map<number, PyValue>();
    let left = budget;
    const go = (x: number, depth: number): PyValue => {
      const have = made.get(x);
      if (have !== undefined || made.has(x)) return have as PyValue;
      const [shell, containerish] = this.shell(x);
      if (!containerish) return shell;
      if (depth >= maxDepth || (left -= this.childCount(x)) < 0) return new PyOpaque('value nested too deep to show');
      made.set(x, shell);
      this.fill(shell, x, (ch) => go(ch, depth + 1));
      return shell;
    };
    return go(h, 0);
  }

  /** How many handles forEachChild(h) visits. */
  childCount(h: number): number {
    switch (this.kind[h]) {
      case K.TUPLE: return this.c[h];
      case K.LIST: case K.DICT: case K.SET: return this.c[h];
      case K.PERSID: return 1;
      case K.CALL: {
        const x = this.xid(h);
        let n = 2;
        if (x < 0) return n;
        if (this.xKw[x] >= 0) n++;
        for (let k = 0; k < 4; k++) { const s = this.xSeq[4 * x + k]; if (s >= 0) n += this.c[s]; }
        return n;
      }
      default: return 0;
    }
  }

  /** The PyValue of `h` without its children (filled by fill()); the flag says whether it has any. */
  private shell(h: number): [PyValue, boolean] {
    switch (this.kind[h]) {
      case K.NONE: return [null, false];
      case K.FALSE: return [false, false];
      case K.TRUE: return [true, false];
      case K.INT: return [this.b[h], false];
      case K.FLOAT: return [new PyFloat(this.b[h]), false];
      case K.STR: return [this.text(h), false];
      case K.BYTES: return [new PyBytes(this.c[h], this.b[h], this.sb.slice(this.a[h], this.a[h] + this.c[h]), this.sub[h] === 1 ? 'bytearray' : 'bytes'), false];
      case K.OBJ: return [this.objs[this.a[h]] as PyValue, false];
      case K.GLOBAL: { const g = this.globals[this.a[h]]; return [new PyGlobal(g.module, g.name, this.a[h]), false]; }
      case K.TUPLE: return [new PyTuple([]), true];
      case K.LIST: return [new PyList([]), true];
      case K.DICT: return [new PyDict([]), true];
      case K.SET: return [new PySet([], this.sub[h] === 1), true];
      case K.PERSID: return [new PyPersId(null, this.b[h]), true];
      case K.CALL: return [new PyCall(null, null, CALL_KINDS[this.sub[h]], this.b[h]), true];
      default: throw new Error(`bad value handle ${h}`);
    }
  }

  private fill(v: PyValue, h: number, get: (ch: number) => PyValue): void {
    const seqOf = (s: number): PyValue[] => { const out: PyValue[] = []; for (let i = 0; i < this.c[s]; i++) out.push(get(this.sq[this.a[s] + i])); return out; };
    switch (this.kind[h]) {
      case K.TUPLE: { const t = v as PyTuple; for (let i = 0; i < this.c[h]; i++) t.items.push(get(this.items[this.a[h] + i])); break; }
      case K.LIST: (v as PyList).items = seqOf(h); break;
      case K.SET: (v as PySet).items = seqOf(h); break;
      case K.DICT: (v as PyDict).entries = pairs(seqOf(h)); break;
      case K.PERSID: (v as PyPersId).pid = get(this.a[h]); break;
      case K.CALL: {
        const call = v as PyCall;
        call.fn = get(this.a[h]); call.args = get(this.c[h]);
        const x = this.xid(h);
        if (x >= 0) {
          if (this.xKw[x] >= 0) call.kwargs = get(this.xKw[x]);
          const s = (k: number) => this.xSeq[4 * x + k];
          if (s(X_STATES) >= 0) call.states = seqOf(s(X_STATES));
          if (s(X_LIST) >= 0) call.listItems = seqOf(s(X_LIST));
          if (s(X_DICT) >= 0) call.dictItems = pairs(seqOf(s(X_DICT)));
          if (s(X_SET) >= 0) call.setItems = seqOf(s(X_SET));
        }
        break;
      }
    }
  }

  /** For messages: what kind of value `h` is, without building it. */
  describe(h: number): string {
    switch (this.kind[h]) {
      case K.NONE: return 'None';
      case K.FALSE: return 'boolean false';
      case K.TRUE: return 'boolean true';
      case K.INT: return `number ${this.b[h]}`;
      case K.FLOAT: return 'float';
      case K.STR: { const s = this.text(h); return `str ${JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s)}`; }
      case K.BYTES: return this.sub[h] === 1 ? 'bytearray' : 'bytes';
      case K.TUPLE: return 'tuple';
      case K.LIST: return 'list';
      case K.DICT: return 'dict';
      case K.SET: return 'set';
      case K.GLOBAL: { const g = this.globals[this.a[h]]; return `${g.module}.${g.name}`; }
      case K.CALL: { const n = this.calleeName(h); return `the result of calling ${n ?? 'a computed value'}`; }
      case K.PERSID: return 'a persistent id';
      default: {
        const o = this.objs[this.a[h]];
        if (typeof o === 'bigint') return `bigint ${o}`;
        if (o instanceof PyOpaque) return o.what;
        return (o as object).constructor.name.replace(/^Py/, '').toLowerCase();
      }
    }
  }
}

/** A read view of `length` handles of a pool at `at` (one class: the readers' get() calls stay monomorphic). */
class SeqView implements Ints {
  constructor(private readonly sq: Int32Array, private readonly at: number, readonly length: number) {}
  get(i: number): number { return this.sq[this.at + i]; }
}

/** Room a sequence of `len` items has in the pool: 0, 2, then powers of two (derived, so no column keeps it). */
function seqCap(len: number): number {
  if (len <= 2) return len === 0 ? 0 : 2;
  return len > 0x40000000 ? 2 ** Math.ceil(Math.log2(len)) : 1 << (32 - Math.clz32(len - 1));
}

function pairs(flat: PyValue[]): [PyValue, PyValue][] {
  const out: [PyValue, PyValue][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

/** A copy of `a` with room for `need`, keeping its first `keep`; `a` goes back to the pool. Small arrays are
 *  plain (the pool hands out 64 KB at least, and a scan may keep thousands of small runs). */
function regrowI32(a: Int32Array, need: number, keep: number): Int32Array<ArrayBuffer> {
  let cap = Math.max(64, a.length * 2);
  while (cap < need) cap *= 2;
  const g: Int32Array<ArrayBuffer> = cap >= 16384 ? new Int32Array(takeArrayBuffer(cap * 4), 0, cap) : new Int32Array(cap);
  g.set(a.subarray(0, keep));
  if (a.length) retire(a.buffer as ArrayBuffer);
  return g;
}

/** An array outgrown while the arena fills: back to the scratch pool when small; big ones are left to the
 *  collector (a pickle that keeps doubling its arena would otherwise keep every generation resident in the pool). */
function retire(b: ArrayBuffer): void { if (b.byteLength < (1 << 20)) giveArrayBuffer(b); }
