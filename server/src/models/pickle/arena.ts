// Compact store for the values a simulated unpickler builds. A value is an int handle into typed arrays;
// containers keep their items as handles. Why not plain objects: a 50,000-tensor state dict builds ~1M
// values that all stay reachable from the result, and as objects the garbage collector spent more time
// copying and promoting them than the machine spent running (typed arrays and small-int arrays are not
// traced). Consumers that want ordinary PyValue objects materialize them (the whole graph, or a bounded
// neighbourhood of one handle); the tensor walker reads handles directly.
import {
  CallKind, PyCall, PyDict, PyGlobal, PyList, PyOpaque, PyPersId, PySet, PyTuple, PyValue,
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
  /** NONE/FALSE/TRUE: -, INT: -, STR/OBJ: objs index, TUPLE: items start, LIST/DICT/SET: seqs index,
   *  GLOBAL: globals index, CALL: fn handle, PERSID: pid handle */
  a = new Int32Array(0);
  /** TUPLE: length, CALL: args handle, SET: 1 when frozen, STR: strHash of the text; CALL kind code in `sub` */
  c = new Int32Array(0);
  sub = new Uint8Array(0);
  /** INT: value, CALL/PERSID: stream offset */
  b = new Float64Array(0);
  items = new Int32Array(0);
  nItems = 0;
  /** ASCII str payloads, packed (STR nodes with sub 0 point here: start in `a`, length in `b`). Why bytes:
   *  a state dict's 100,000 keys as JS strings would all live as long as the arena. */
  sb = new Uint8Array(0);
  nsb = 0;
  readonly objs: unknown[] = [];
  readonly seqs: IntList[] = [];
  readonly extras = new Map<number, CallExtra>();

  private released = false;

  /** `capacity`: values to make room for up front (the arrays come from the scratch pool, see release()). */
  constructor(readonly globals: readonly GlobalName[], capacity = 1024) {
    this.alloc(Math.max(1024, capacity), Math.max(4096, capacity));
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
    for (const o of old) if (o.length && o !== it) giveArrayBuffer(o.buffer as ArrayBuffer);
    this.items = it;
  }

  private grow(): void { this.alloc(this.kind.length * 2, 0); }

  /** Hands the arrays back to the scratch pool. Only for arenas nothing will read again (a scan that
   *  returns just its report); any later read fails loudly instead of seeing another scan's values. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const o of [this.kind, this.a, this.c, this.sub, this.b, this.items, this.sb]) giveArrayBuffer(o.buffer as ArrayBuffer);
    for (const l of this.seqs) l.release();
    this.sb = new Uint8Array(0);
    this.kind = new Uint8Array(0); this.a = new Int32Array(0); this.c = new Int32Array(0);
    this.sub = new Uint8Array(0); this.b = new Float64Array(0); this.items = new Int32Array(0);
  }

  private checkLive(): void { if (this.released) throw new Error('value arena used after release'); }

  int(v: number): number { return v >= 0 && v < 256 && Number.isInteger(v) ? H_SMALL_INT + v : this.node(K.INT, 0, 0, v); }
  obj(v: unknown): number { this.objs.push(v); return this.node(K.OBJ, this.objs.length - 1, 0, 0); }
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
      giveArrayBuffer(this.sb.buffer as ArrayBuffer);
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
  seq(kind: number, items?: readonly number[], frozen = 0): number { this.seqs.push(new IntList(items)); return this.node(kind, this.seqs.length - 1, frozen, 0); }
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
      giveArrayBuffer(this.items.buffer as ArrayBuffer);
      this.items = it;
    }
    const start = this.nItems, items = this.items;
    for (let i = from; i < to; i++) items[this.nItems++] = ts[i];
    return this.node(K.TUPLE, start, len, 0);
  }

  tupleItem(h: number, i: number): number { return i < this.c[h] ? this.items[this.a[h] + i] : -1; }

  extra(h: number): CallExtra {
    let e = this.extras.get(h);
    if (!e) { e = {}; this.extras.set(h, e); }
    return e;
  }

  /** The value of `h` when it is not a container (None, bool, int, str, float, bytes...), else undefined. */
  scalar(h: number): PyValue | undefined {
    const k = this.kind[h];
    return k <= K.STR || k === K.OBJ ? this.shell(h)[0] : undefined;
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

  /** The whole graph under `root` as PyValue objects; shared and cyclic values stay shared. Iterative, so
   *  deeply nested crafted values cannot overflow the call stack. */
  materialize(root: number): PyValue {
    this.checkLive();
    const made = new Map<number, PyValue>();
    const todo = [root];
    const filled: number[] = [];
    while (todo.length) {
      const h = todo.pop() as number;
      if (made.has(h)) continue;
      const [shell, children] = this.shell(h);
      made.set(h, shell);
      if (children) { filled.push(h); for (const ch of children) if (!made.has(ch)) todo.push(ch); }
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
      const [shell, children] = this.shell(x);
      if (!children) return shell;
      if (depth >= maxDepth || (left -= children.length) < 0) return new PyOpaque('value nested too deep to show');
      made.set(x, shell);
      this.fill(shell, x, (ch) => go(ch, depth + 1));
      return shell;
    };
    return go(h, 0);
  }

  private shell(h: number): [PyValue, number[] | undefined] {
    switch (this.kind[h]) {
      case K.NONE: return [null, undefined];
      case K.FALSE: return [false, undefined];
      case K.TRUE: return [true, undefined];
      case K.INT: return [this.b[h], undefined];
      case K.STR: return [this.text(h), undefined];
      case K.OBJ: return [this.objs[this.a[h]] as PyValue, undefined];
      case K.GLOBAL: { const g = this.globals[this.a[h]]; return [new PyGlobal(g.module, g.name, this.a[h]), undefined]; }
      case K.TUPLE: return [new PyTuple([]), Array.from(this.items.subarray(this.a[h], this.a[h] + this.c[h]))];
      case K.LIST: return [new PyList([]), this.seqs[this.a[h]].toArray()];
      case K.DICT: return [new PyDict([]), this.seqs[this.a[h]].toArray()];
      case K.SET: return [new PySet([], this.c[h] === 1), this.seqs[this.a[h]].toArray()];
      case K.PERSID: return [new PyPersId(null, this.b[h]), [this.a[h]]];
      case K.CALL: {
        const e = this.extras.get(h);
        const ch = [this.a[h], this.c[h]];
        if (e) {
          if (e.kwargs !== undefined) ch.push(e.kwargs);
          for (const l of [e.states, e.listItems, e.dictItems, e.setItems]) if (l) ch.push(...l);
        }
        return [new PyCall(null, null, CALL_KINDS[this.sub[h]], this.b[h]), ch];
      }
      default: throw new Error(`bad value handle ${h}`);
    }
  }

  private fill(v: PyValue, h: number, get: (ch: number) => PyValue): void {
    switch (this.kind[h]) {
      case K.TUPLE: { const t = v as PyTuple; for (let i = 0; i < this.c[h]; i++) t.items.push(get(this.items[this.a[h] + i])); break; }
      case K.LIST: (v as PyList).items = this.seqs[this.a[h]].toArray().map(get); break;
      case K.SET: (v as PySet).items = this.seqs[this.a[h]].toArray().map(get); break;
      case K.DICT: (v as PyDict).entries = pairs(this.seqs[this.a[h]].toArray(), get); break;
      case K.PERSID: (v as PyPersId).pid = get(this.a[h]); break;
      case K.CALL: {
        const call = v as PyCall;
        call.fn = get(this.a[h]); call.args = get(this.c[h]);
        const e = this.extras.get(h);
        if (e) {
          if (e.kwargs !== undefined) call.kwargs = get(e.kwargs);
          if (e.states) call.states = e.states.map(get);
          if (e.listItems) call.listItems = e.listItems.map(get);
          if (e.dictItems) call.dictItems = pairs(e.dictItems, get);
          if (e.setItems) call.setItems = e.setItems.map(get);
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
      case K.STR: { const s = this.text(h); return `str ${JSON.stringify(s.length > 60 ? s.slice(0, 60) + '…' : s)}`; }
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

function pairs(flat: number[], get: (h: number) => PyValue): [PyValue, PyValue][] {
  const out: [PyValue, PyValue][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([get(flat[i]), get(flat[i + 1])]);
  return out;
}
