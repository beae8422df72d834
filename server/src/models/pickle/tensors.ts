// Reads the tensor inventory out of a simulated pickle: follows torch's rebuild calls (only the allowlisted
// reconstruction functions), dict/OrderedDict/list nesting for names, and nn.Module states.
import { PyNdArray, PyTuple, PyValue, PyBytes, asInt, asIntTuple, asText } from './values';
import { numpyDtypeOf, PickleRun } from './machine';
import { H_FALSE, H_SMALL_INT, H_TRUE, K, ValueArena, Ints, X_DICT, X_LIST, X_STATES } from './arena';
import { StrTable, ByteStrings, bytesHash, encodeInto, strHash, ScratchColumn, SealedColumn } from '../strTable';
import { giveArrayBuffer, takeArrayBuffer } from '../bufferPool';

export interface StorageRef {
  key: string;
  dtype: string;          // torch dtype name of the storage
  elementSize: number;
  numel: number;          // elements the pickle says the storage holds
  location: string;
  /** legacy view storages: (view key, offset, size) */
  view?: { root: string; offset: number; numel: number };
}

export interface ExtractedTensor {
  name: string;
  dtype: string;
  elementSize: number;
  shape: number[];
  stride: number[];
  storageOffset: number;  // in elements
  storage?: StorageRef;
  /** numpy arrays kept inline in the stream (joblib) or as bytes (numpy reconstruct) */
  inline?: { offset: number; byteLength: number };
  requiresGrad: boolean;
  kind: 'tensor' | 'parameter' | 'ndarray' | 'sparse';
  /** A sparse tensor (kind 'sparse'): its layout ("sparse_coo", "sparse_csr"...) and the bytes of the index and
   *  value tensors it is stored as (it has no storage of its own; shape is its dense size). */
  layout?: string;
  dataBytes?: number;
}

export const STORAGE_DTYPES: Record<string, [string, number]> = {
  DoubleStorage: ['float64', 8], FloatStorage: ['float32', 4], HalfStorage: ['float16', 2], BFloat16Storage: ['bfloat16', 2],
  LongStorage: ['int64', 8], IntStorage: ['int32', 4], ShortStorage: ['int16', 2], CharStorage: ['int8', 1],
  ByteStorage: ['uint8', 1], BoolStorage: ['bool', 1], ComplexDoubleStorage: ['complex128', 16],
  ComplexFloatStorage: ['complex64', 8], QInt8Storage: ['qint8', 1], QUInt8Storage: ['quint8', 1],
  QInt32Storage: ['qint32', 4], QUInt4x2Storage: ['quint4x2', 1], QUInt2x4Storage: ['quint2x4', 1],
  UntypedStorage: ['uint8', 1],
};

export const DTYPE_SIZES: Record<string, number> = {
  float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
  complex128: 16, complex64: 8, complex32: 4, uint16: 2, uint32: 4, uint64: 8, float8_e5m2: 1, float8_e4m3fn: 1,
  float8_e5m2fnuz: 1, float8_e4m3fnuz: 1, float8_e8m0fnu: 1, qint8: 1, quint8: 1, qint32: 4, quint4x2: 1, quint2x4: 1,
  bits8: 1, bits16: 2, float: 4, double: 8, half: 2, long: 8, int: 4, short: 2,
};
const DTYPE_ALIAS: Record<string, string> = { float: 'float32', double: 'float64', half: 'float16', long: 'int64', int: 'int32', short: 'int16', cfloat: 'complex64', cdouble: 'complex128' };

const REBUILD = 'torch._utils.';

/** The value of a key written as a decimal without leading zeros ("0", "17"; at most 9 digits), else -1. */
function decimalKey(b: Uint8Array, at: number, len: number): number {
  if (len === 0 || len > 9 || (len > 1 && b[at] === 0x30)) return -1;
  let v = 0;
  for (let i = at; i < at + len; i++) { const d = b[i] - 0x30; if (d < 0 || d > 9) return -1; v = v * 10 + d; }
  return v;
}

/** Storages the tensors refer to, by key, kept as typed columns; StorageRef objects are made when asked for. */
export class StorageTable {
  /** the keys, as UTF-8 bytes with a hash index */
  readonly keys = new ByteStrings(1024, true);
  private scratch = new Uint8Array(64);
  // columns: pooled scratch while filled, sealed (constant columns dropped) by seal()
  private dtype: ScratchColumn | SealedColumn = new ScratchColumn(Uint8Array, 1024);       // index in STORAGE_KINDS
  private numel: ScratchColumn | SealedColumn = new ScratchColumn(Float64Array, 1024);
  private location: ScratchColumn | SealedColumn = new ScratchColumn(Int32Array, 1024);    // index in `locations`
  private readonly locations: string[] = [];
  private readonly locationIx = new Map<string, number>();
  private lastLocation = ''; private lastLocationIx: number | undefined;
  private readonly views = new Map<number, { root: string; offset: number; numel: number }>();
  private readonly refs: (StorageRef | undefined)[] = [];

  // torch names the storages of a checkpoint "0", "1", "2"... in the order it meets them. While every key is the
  // decimal of its own index (`dense`), a key is found by reading its digits and the hash index stays empty; the
  // first other key fills it. On the 50,000-storage checkpoint of scripts/bench/engine.mjs this took
  // extractRunTensors from ~15.5 to ~13 ms (no hash probe per lookup, no index insert per add).
  private dense = true;
  constructor() { this.keys.deferIndex(); }

  get size(): number { return this.keys.size; }
  find(key: string): number {
    if (key.length * 3 > this.scratch.length) this.scratch = new Uint8Array(key.length * 3);
    const len = encodeInto(key, this.scratch, 0);
    return this.findBytes(this.scratch, 0, len, bytesHash(this.scratch, 0, len));
  }
  /** Index of the key given as `len` UTF-8 bytes of `b` at `at` (hash: bytesHash of them), or -1. */
  findBytes(b: Uint8Array, at: number, len: number, hash: number): number {
    if (!this.dense) return this.keys.find(b, at, len, hash);
    const v = decimalKey(b, at, len);   // every key in the table is a decimal below its size
    return v >= 0 && v < this.keys.size ? v : -1;
  }
  /** Adds a storage whose key is not in the table yet; `kind`: index in STORAGE_KINDS. */
  add(b: Uint8Array, at: number, len: number, hash: number, kind: number, numel: number, location: string,
    view?: { root: string; offset: number; numel: number }): number {
    if (this.sealed) throw new Error('StorageTable: add after seal()');
    if (this.dense && decimalKey(b, at, len) !== this.keys.size) this.dense = false;   // keys.find fills the index
    const i = this.keys.push(b, at, len, hash);
    (this.dtype as ScratchColumn).set(i, kind); (this.numel as ScratchColumn).set(i, numel);
    let li = location === this.lastLocation ? this.lastLocationIx : this.locationIx.get(location);
    if (li === undefined) { li = this.locations.length; this.locations.push(location); this.locationIx.set(location, li); }
    this.lastLocation = location; this.lastLocationIx = li;
    (this.location as ScratchColumn).set(i, li);
    if (view) this.views.set(i, view);
    return i;
  }
  key(i: number): string { return this.keys.text(i); }
  /** Moves the table into exact-size memory (see ByteStrings.seal); no add() afterwards. */
  seal(): void {
    if (this.sealed) return;
    this.sealed = true;
    this.keys.seal();
    const n = this.keys.size;
    this.dtype = (this.dtype as ScratchColumn).seal(n);
    this.numel = (this.numel as ScratchColumn).seal(n);
    this.location = (this.location as ScratchColumn).seal(n);
  }
  private sealed = false;
  elementSize(i: number): number { return STORAGE_KINDS[this.dtype.get(i)][2]; }
  dtypeName(i: number): string { return STORAGE_KINDS[this.dtype.get(i)][1]; }
  ref(i: number): StorageRef {
    let r = this.refs[i];
    if (!r) {
      const [, dtype, elementSize] = STORAGE_KINDS[this.dtype.get(i)];
      r = { key: this.keys.text(i), dtype, elementSize, numel: this.numel.get(i), location: this.locations[this.location.get(i)] };
      const v = this.views.get(i);
      if (v) r.view = v;
      this.refs[i] = r;
    }
    return r;
  }
  get(key: string): StorageRef | undefined { const i = this.find(key); return i < 0 ? undefined : this.ref(i); }
}

/** [storage class name, dtype, element size], indexed by the code StorageTable keeps. */
const STORAGE_KINDS: [string, string, number][] = Object.entries(STORAGE_DTYPES).map(([k, [d, n]]) => [k, d, n]);
const STORAGE_KIND_OF = new Map(STORAGE_KINDS.map(([k], i) => [k, i]));

const F_GRAD = 1, F_PARAM = 2, F_OBJECT = 4;

/** The tensor inventory as typed columns (plus the names): a 50,000-tensor checkpoint makes no object per
 *  tensor until rows() (the report's rows, the converter) asks for them. Sizes and strides are indexes into
 *  a table of shared arrays; dtypes into a table of names. */
export class TensorTable {
  /** the names, as UTF-8 bytes (decoded by name()) */
  private readonly nameList = new ByteStrings(256);   // pooled while filled, exact-size once sealed
  private n = 0;
  // columns: pooled scratch while filled, sealed (constant and row-index columns dropped) by seal()
  private dtype: ScratchColumn | SealedColumn = new ScratchColumn(Int32Array);   // index in `dtypes` (unbounded: v3 dtypes are globals)
  private layout: ScratchColumn | SealedColumn = new ScratchColumn(Int32Array);     // index in `layouts`: the (size, stride) pair
  private offset: ScratchColumn | SealedColumn = new ScratchColumn(Int32Array);     // storage offset in elements; -1: in `bigOffsets`
  private storage: ScratchColumn | SealedColumn = new ScratchColumn(Int32Array);    // index in `storages`, -1 for object rows
  private flags: ScratchColumn | SealedColumn = new ScratchColumn(Uint8Array);
  private sealed = false;
  private readonly bigOffsets = new Map<number, number>();
  private readonly dtypes: [string, number][] = [];       // [dtype, element size]
  private readonly layouts: [number[], number[]][] = [];
  private readonly layoutIx = new Map<number[], [number[], number][]>();   // size array -> [stride array, index]
  private lastShape: number[] | undefined; private lastStride: number[] | undefined; private lastLayout = -1;
  private lastDtype = ''; private lastSize = -1; private lastDtypeIx = -1;
  private readonly objects = new Map<number, Omit<ExtractedTensor, 'name'>>();   // rows from other sources
  private cache?: ExtractedTensor[];
  constructor(readonly storages: StorageTable) {}

  get length(): number { return this.n; }

  /** Index of the (size, stride) pair; the arrays are compared by identity (the reader shares repeated ones). */
  private layoutOf(shape: number[], stride: number[]): number {
    if (shape === this.lastShape && stride === this.lastStride) return this.lastLayout;
    let list = this.layoutIx.get(shape);
    if (!list) { list = []; this.layoutIx.set(shape, list); }
    let ix = -1;
    for (const [st, i] of list) if (st === stride) { ix = i; break; }
    if (ix < 0) { ix = this.layouts.length; this.layouts.push([shape, stride]); list.push([stride, ix]); }
    this.lastShape = shape; this.lastStride = stride; this.lastLayout = ix;
    return ix;
  }

  private dtypeIx(dtype: string, elementSize: number): number {
    if (dtype === this.lastDtype && elementSize === this.lastSize) return this.lastDtypeIx;
    let ix = -1;
    for (let i = 0; i < this.dtypes.length; i++) if (this.dtypes[i][0] === dtype && this.dtypes[i][1] === elementSize) { ix = i; break; }
    if (ix < 0) { this.dtypes.push([dtype, elementSize]); ix = this.dtypes.length - 1; }
    this.lastDtype = dtype; this.lastSize = elementSize; this.lastDtypeIx = ix;
    return ix;
  }

  name(i: number): string { return this.nameList.text(i); }

  /** Adds a row named by `len` UTF-8 bytes of `nb` at `at`. */
  push(nb: Uint8Array, at: number, len: number, dtype: string, elementSize: number, shape: number[], stride: number[], offset: number, storage: number, flags: number): void {
    const i = this.n;
    if (this.sealed) throw new Error('TensorTable: push after seal()');
    this.nameList.push(nb, at, len);
    (this.dtype as ScratchColumn).set(i, this.dtypeIx(dtype, elementSize));
    (this.layout as ScratchColumn).set(i, this.layoutOf(shape, stride));
    if ((offset | 0) === offset && offset >= 0) (this.offset as ScratchColumn).set(i, offset);
    else { (this.offset as ScratchColumn).set(i, -1); this.bigOffsets.set(i, offset); }
    (this.storage as ScratchColumn).set(i, storage); (this.flags as ScratchColumn).set(i, flags);
    this.n = i + 1;
    this.cache = undefined;
  }

  /** Moves the table (and its storages) into exact-size memory, giving the scratch back; no push() afterwards. */
  seal(storagesToo = true): void {
    if (this.sealed) return;
    this.sealed = true;
    this.nameList.seal();
    if (storagesToo) this.storages.seal();
    const n = this.n;
    this.dtype = (this.dtype as ScratchColumn).seal(n); this.flags = (this.flags as ScratchColumn).seal(n);
    this.layout = (this.layout as ScratchColumn).seal(n); this.storage = (this.storage as ScratchColumn).seal(n);
    this.offset = (this.offset as ScratchColumn).seal(n);
  }

  pushObject(nb: Uint8Array, at: number, len: number, t: Omit<ExtractedTensor, 'name'>): void {
    this.objects.set(this.n, t);
    this.push(nb, at, len, t.dtype, t.elementSize, t.shape, t.stride, t.storageOffset, -1, F_OBJECT);
  }

  dtypeOf(i: number): string { return this.dtypes[this.dtype.get(i)][0]; }
  elementSize(i: number): number { return this.dtypes[this.dtype.get(i)][1]; }
  shape(i: number): number[] { return this.layouts[this.layout.get(i)][0]; }
  stride(i: number): number[] { return this.layouts[this.layout.get(i)][1]; }
  storageIndex(i: number): number { return this.storage.get(i); }
  storageOffset(i: number): number { const o = this.offset.get(i); return o >= 0 ? o : this.bigOffsets.get(i)!; }
  bytes(i: number): number {
    const sparse = this.flags.get(i) & F_OBJECT ? this.objects.get(i)?.dataBytes : undefined;
    return sparse ?? numel(this.shape(i)) * this.elementSize(i);
  }
  /** The layout of a sparse tensor's row ("sparse_coo"...), undefined for a dense one. */
  sparseLayout(i: number): string | undefined { return this.flags.get(i) & F_OBJECT ? this.objects.get(i)?.layout : undefined; }
  /** Elements of storage the strided view touches (0 for empty tensors). */
  extent(i: number): number { return extentOf(this.shape(i), this.stride(i), this.storageOffset(i)); }
  /** Where an object row's data is (joblib / numpy arrays kept in the stream). */
  inline(i: number): { offset: number; byteLength: number } | undefined { return this.flags.get(i) & F_OBJECT ? this.objects.get(i)?.inline : undefined; }
  /** The storage of row i: from the table, or the object row's own. */
  storageRef(i: number): StorageRef | undefined {
    const s = this.storage.get(i);
    return s >= 0 ? this.storages.ref(s) : this.objects.get(i)?.storage;
  }

  row(i: number): ExtractedTensor {
    const f = this.flags.get(i);
    if (f & F_OBJECT) return { ...this.objects.get(i)!, name: this.name(i) };
    return {
      name: this.name(i), dtype: this.dtypeOf(i), elementSize: this.elementSize(i), shape: this.shape(i), stride: this.stride(i),
      storageOffset: this.storageOffset(i), storage: this.storages.ref(this.storage.get(i)), requiresGrad: (f & F_GRAD) !== 0,
      kind: f & F_PARAM ? 'parameter' : 'tensor',
    };
  }

  rows(): ExtractedTensor[] {
    if (!this.cache) { this.cache = new Array(this.n); for (let i = 0; i < this.n; i++) this.cache[i] = this.row(i); }
    return this.cache;
  }
}

export interface TensorWalkResult {
  table: TensorTable;
  /** Some tensors were found but not listed (`omitted` of them): over maxTensors, or their names over the budget. */
  truncated: boolean;
  omitted: number;
  storages: StorageTable;
}

/** Tensors referenced by a bare persistent id (torch's legacy tar format: the id names a tensor record). */
export type PersIdResolver = (pid: PyValue) => Omit<ExtractedTensor, 'name'> | undefined;

// frames of the walk's explicit stack (5 ints each: type, source, count, next index, path length); the source
// is where the items start (in the arena's sequence pool, its tuple items, or pairFrames)
const F_LIST = 0, F_TUPLE = 1, F_ENTRIES = 2, F_STATE = 3, F_PAIRS = 4;
/** Longest tensor name (bytes) the inventory lists; TOO_LONG: the path length of anything below a longer one. */
const MAX_PATH = 64 << 10, TOO_LONG = MAX_PATH + 1;

/** Walks the value a pickle run returned, over its value handles (see arena.ts): containers are read in
 *  place and each tensor becomes a row of columns, so a 50,000-tensor state dict builds no object graph.
 *  The walk is iterative (nesting depth costs no call stack) and visits each container once (a memo DAG
 *  whose tree is exponential is walked in its own size); a tensor reached again is another row (tied weights).
 *  Row names are the dotted paths, and all names together stay within a budget proportional to the pickle:
 *  a crafted pickle can reach one tensor through a long key a million times. Tensors past maxTensors or the
 *  name budget are counted (`omitted`), not listed. */
/** Every storage a run's persistent ids name, reached by the tensor walk or not (a module attribute the walk
 *  skips, such as `_flat_weights`, still makes torch read its storage as raw bytes), searchable while `use` runs,
 *  and sealed after it, which gives its pooled scratch columns back (a table dropped unsealed left 7 buffers of
 *  64 KB and more to the garbage collector: one per file of the directory bench). */
export function withPersistedStorages<T>(run: PickleRun, use: (storages: StorageTable) => T): T {
  const storages = new StorageTable();
  try {
    const ar: ValueArena = run.arena;
    const r = new Reader(ar, storages);
    for (let h = 0; h < ar.n; h++) if (ar.kind[h] === K.PERSID) r.storageOf(h);
    return use(storages);
  } finally { storages.seal(); }
}

/** `keepStorageIndex`: the storage table stays searchable (unsealed) for the caller, which must seal() it. */
export function extractRunTensors(run: PickleRun, maxTensors = 1_000_000, resolvePersId?: PersIdResolver, keepStorageIndex = false): TensorWalkResult {
  const storages = new StorageTable();
  const table = new TensorTable(storages);
  const ar: ValueArena = run.arena;
  const r = new Reader(ar, storages);
  const visitedBuf = takeArrayBuffer(ar.n);
  const visited = new Uint8Array(visitedBuf, 0, ar.n).fill(0);
  let omitted = 0;
  let nameBytes = 0;
  const nameBudget = (16 << 20) + 4 * Math.max(0, run.end - run.start);
  const { kind, a, c, items } = ar;
  // The dotted path of the value being walked is kept as UTF-8 bytes in `pb[0..len)`: a child writes
  // ".key" after its parent's bytes, so no string is built per tensor (rows decode their name on read).
  // A path longer than MAX_PATH (a million nested lists) is not written: its length is TOO_LONG, and tensors
  // under it are counted, not listed.
  let pb = new Uint8Array(256);
  const room = (n: number) => { if (n > pb.length) { const g = new Uint8Array(Math.max(n, pb.length * 2)); g.set(pb); pb = g; } };
  /** Appends ".<key text>" (no dot at the root) after `len` bytes of path; returns the new length. */
  const joinText = (len: number, k: string): number => {
    if (len + 1 + k.length * 3 > MAX_PATH) { const n = len + 1 + Buffer.byteLength(k); if (n > MAX_PATH) return TOO_LONG; }
    room(len + 1 + k.length * 3);
    if (len) pb[len++] = 0x2e;
    return encodeInto(k, pb, len);
  };
  /** Appends ".<i>" (a list or tuple index). */
  const joinIndex = (len: number, i: number): number => {
    if (len + 12 > MAX_PATH) return TOO_LONG;
    room(len + 12);
    if (len) pb[len++] = 0x2e;
    if (i < 10) { pb[len++] = 0x30 + i; return len; }
    const d = String(i);
    for (let k = 0; k < d.length; k++) pb[len++] = d.charCodeAt(k);
    return len;
  };
  /** Appends ".<key>" for a dict key handle; -1 when the key is not a str, bytes or int (skipped, as before). */
  const joinKey = (len: number, kh: number): number => {
    if (kind[kh] === K.STR && ar.sub[kh] === 0) {
      const at = a[kh], n = ar.b[kh], sb = ar.sb;
      if (len + 1 + n > MAX_PATH) return TOO_LONG;
      room(len + 1 + n);
      if (len) pb[len++] = 0x2e;
      for (let i = 0; i < n; i++) pb[len++] = sb[at + i];
      return len;
    }
    const ks = r.key(kh);
    return ks === undefined ? -1 : joinText(len, ks);
  };
  /** A row for the tensor tensorOf() just read, named by `len` bytes of `nb` at `at`, unless a limit says no. */
  const emit = (nb: Uint8Array, at: number, len: number, obj?: Omit<ExtractedTensor, 'name'>): void => {
    if (table.length >= maxTensors || len > MAX_PATH || nameBytes + len > nameBudget) { omitted++; return; }
    nameBytes += len;
    if (obj) table.pushObject(nb, at, len, obj); else r.emit(table, nb, at, len);
  };

  // the explicit stack of frames
  let fs = new Int32Array(5 * 64), fp = 0;
  const pairFrames: [string, number][][] = [];
  const push = (type: number, src: number, count: number, len: number): void => {
    if (count <= 0) return;
    if (fp + 5 > fs.length) { const g = new Int32Array(fs.length * 2); g.set(fs); fs = g; }
    fs[fp] = type; fs[fp + 1] = src; fs[fp + 2] = count; fs[fp + 3] = 0; fs[fp + 4] = len;
    fp += 5;
  };
  /** Entries of dict sequence `s` (later duplicate keys win, like a Python dict: then as a list of pairs). */
  const pushEntries = (s: number, len: number): void => {
    const n = ar.seqLenOf(s) >> 1;
    if (n === 0) return;
    if (!r.hasDuplicateKeys(ar.seqView(s))) { push(F_ENTRIES, a[s], n, len); return; }
    const last = new Map<string, number>();
    for (let i = 0; i < n; i++) { const ks = r.key(ar.seqItemOf(s, 2 * i)); if (ks !== undefined) { last.delete(ks); last.set(ks, ar.seqItemOf(s, 2 * i + 1)); } }
    pairFrames.push([...last]);
    push(F_PAIRS, pairFrames.length - 1, last.size, len);
  };
  /** What BUILD / SETITEMS / APPENDS gave a non-tensor object, walked in this order: its dict items, list items, states. */
  const pushObject = (h: number, len: number): void => {
    const st = ar.extraSeq(h, X_STATES);
    if (st >= 0) {
      for (let k = ar.seqLenOf(st) - 1; k >= 0; k--) {
        // nn.Module: _parameters / _buffers / _modules are transparent, like state_dict() names
        const state = ar.seqItemOf(st, k);
        let dict = -1;
        if (kind[state] === K.DICT) dict = state;
        else if (kind[state] === K.TUPLE && c[state] > 0 && kind[items[a[state]]] === K.DICT) dict = items[a[state]];
        // each container once: objects sharing one state dict (a memo reference) do not walk it again
        if (dict >= 0 && !visited[dict]) { visited[dict] = 1; push(F_STATE, a[dict], ar.seqLen(dict) >> 1, len); }
      }
    }
    const li = ar.extraSeq(h, X_LIST);
    if (li >= 0) push(F_LIST, a[li], ar.seqLenOf(li), len);
    const di = ar.extraSeq(h, X_DICT);
    if (di >= 0) pushEntries(di, len);
  };
  const visit = (h: number, len: number): void => {
    const k = kind[h];
    switch (k) {
      case K.CALL:
        if (r.tensorOf(h)) { emit(pb, 0, len, r.tObject); return; }
        if (visited[h]) return;
        visited[h] = 1;
        pushObject(h, len);
        return;
      case K.OBJ: {
        const o = ar.objs[a[h]];
        if (o instanceof PyNdArray) emit(pb, 0, len, ndarrayTensor(o));
        return;
      }
      case K.PERSID: {
        const t = resolvePersId?.(ar.materializeNear(a[h], 4, 64));
        if (t) emit(pb, 0, len, t);
        return;
      }
      case K.DICT: case K.LIST: case K.TUPLE:
        if (visited[h]) return;
        visited[h] = 1;
        if (k === K.DICT) pushEntries(h, len);
        else if (k === K.LIST) push(F_LIST, a[h], ar.seqLen(h), len);
        else push(F_TUPLE, a[h], c[h], len);
        return;
      default: return;   // scalars, globals, sets
    }
  };
  const sq = ar.sq;   // the run is over: the pool does not move any more
  try {
    if (run.root !== undefined) visit(run.root, 0);
    while (fp > 0) {
      const f = fp - 5;
      const type = fs[f], src = fs[f + 1], count = fs[f + 2], len = fs[f + 4];
      let i = fs[f + 3];
      if (type === F_ENTRIES && len === 0) {
        // a state dict's "name -> tensor" entries: rows named straight from the key's bytes, in a tight loop
        const sub = ar.sub, sb = ar.sb, b = ar.b;
        for (; i < count; i++) {
          const kh = sq[src + 2 * i], vh = sq[src + 2 * i + 1];
          if (kind[kh] !== K.STR || sub[kh] !== 0 || kind[vh] !== K.CALL || !r.tensorOf(vh)) break;
          emit(sb, a[kh], b[kh], r.tObject);
        }
        if (i >= count) { fp = f; continue; }
      }
      // the frame's last child: drop the frame first (a chain of one-child containers keeps the stack flat)
      if (i + 1 >= count) fp = f; else fs[f + 3] = i + 1;
      switch (type) {
        case F_LIST: visit(sq[src + i], joinIndex(len, i)); break;
        case F_TUPLE: visit(items[src + i], joinIndex(len, i)); break;
        case F_ENTRIES: {
          // (at the top level, not a "name -> tensor" entry: the loop above stopped at it)
          const kh = sq[src + 2 * i], vh = sq[src + 2 * i + 1];
          const n = joinKey(len, kh);
          if (n >= 0) visit(vh, n);
          break;
        }
        case F_PAIRS: { const [ks, vh] = pairFrames[src][i]; visit(vh, joinText(len, ks)); break; }
        case F_STATE: {
          const ks = r.text(sq[src + 2 * i]), val = sq[src + 2 * i + 1];
          if (ks === undefined) break;
          if (ks === '_parameters' || ks === '_buffers' || ks === '_modules') {
            const inner = kind[val] === K.DICT ? val : kind[val] === K.CALL ? ar.extraSeq(val, X_DICT) : -1;
            if (inner >= 0 && !visited[val]) { visited[val] = 1; pushEntries(inner, len); }
          } else if (!ks.startsWith('_')) visit(val, joinText(len, ks));
          break;
        }
      }
    }
  } finally { giveArrayBuffer(visitedBuf); table.seal(!keepStorageIndex); }
  return { table, truncated: omitted > 0, omitted, storages };
}

/** Typed reads of value handles (what asInt / asText / asIntTuple do for PyValue objects), and the rebuild
 *  reader: tensorOf() leaves the tensor it recognised in the t* fields (no object per tensor). */
class Reader {
  tDtype = ''; tSize = 0; tShape: number[] = []; tStride: number[] = []; tOffset = 0; tStorage = -1; tFlags = 0;
  tObject: Omit<ExtractedTensor, 'name'> | undefined;
  constructor(readonly ar: ValueArena, readonly storages: StorageTable) {}

  emit(table: TensorTable, nb: Uint8Array, at: number, len: number): void {
    if (this.tObject) table.pushObject(nb, at, len, this.tObject);
    else table.push(nb, at, len, this.tDtype, this.tSize, this.tShape, this.tStride, this.tOffset, this.tStorage, this.tFlags);
  }

  int(h: number): number | undefined {
    const ar = this.ar;
    switch (ar.kind[h]) {
      case K.INT: { const v = ar.b[h]; return (v | 0) === v ? v | 0 : v; }   // small ints stay unboxed
      case K.TRUE: return 1;
      case K.FALSE: return 0;
      case K.OBJ: { const o = ar.objs[ar.a[h]]; return typeof o === 'bigint' ? asInt(o) : undefined; }
      default: return undefined;
    }
  }

  text(h: number): string | undefined {
    const ar = this.ar;
    const k = ar.kind[h];
    if (k === K.STR) return ar.text(h);
    if (k === K.BYTES) return decodeLatin1(ar.sb, ar.a[h], ar.a[h] + ar.c[h]);
    if (k === K.OBJ) { const o = ar.objs[ar.a[h]]; return o instanceof PyBytes ? asText(o) : undefined; }
    return undefined;
  }

  /** A dict key as the name part: str, bytes or int. */
  key(h: number): string | undefined { return this.ar.kind[h] === K.INT ? String(this.ar.b[h]) : this.text(h); }

  // key bytes found by keyBytes(): kb[ka .. ka+kl), FNV hash kh
  kb: Uint8Array = new Uint8Array(0); ka = 0; kl = 0; kh = 0;
  private kscratch = new Uint8Array(64);
  /** The key of handle `h` (see key()) as UTF-8 bytes in kb/ka/kl/kh, without a string for ASCII str keys. */
  keyBytes(h: number): boolean {
    const ar = this.ar;
    if (ar.kind[h] === K.STR && ar.sub[h] === 0) { this.kb = ar.sb; this.ka = ar.a[h]; this.kl = ar.b[h]; this.kh = ar.c[h]; return true; }
    const ks = this.key(h);
    if (ks === undefined) return false;
    if (ks.length * 3 > this.kscratch.length) this.kscratch = new Uint8Array(ks.length * 3);
    this.kb = this.kscratch; this.ka = 0; this.kl = encodeInto(ks, this.kscratch, 0); this.kh = bytesHash(this.kb, 0, this.kl);
    return true;
  }

  /** Whether two keys of the flat dict items (key, value, key, value...) have the same text. */
  hasDuplicateKeys(flat: Ints): boolean {
    const ar = this.ar, n = flat.length >> 1;
    if (n < 2) return false;
    let cap = 16;
    while (cap < n * 2) cap *= 2;
    const buf = takeArrayBuffer(cap * 4);
    const slots = new Int32Array(buf, 0, cap).fill(0);
    const mask = cap - 1;
    try {
      for (let i = 0; i < n; i++) {
        const kh = flat.get(2 * i);
        if (ar.kind[kh] !== K.STR || ar.sub[kh] !== 0) return this.hasDuplicateTexts(flat);
        const at = ar.a[kh], len = ar.b[kh], hash = ar.c[kh], sb = ar.sb;
        for (let j = hash & mask; ; j = (j + 1) & mask) {
          const o = slots[j];
          if (o === 0) { slots[j] = kh + 1; break; }
          const oh = o - 1;
          if (ar.c[oh] !== hash || ar.b[oh] !== len) continue;
          const oa = ar.a[oh];
          let k = 0;
          while (k < len && sb[oa + k] === sb[at + k]) k++;
          if (k === len) return true;
        }
      }
      return false;
    } finally { giveArrayBuffer(buf); }
  }

  /** hasDuplicateKeys for dicts with keys other than ASCII strs (as texts, like the names they give). */
  private hasDuplicateTexts(flat: Ints): boolean {
    const seen = new StrTable<null>(flat.length >> 1, false);
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const ks = this.key(flat.get(i));
      if (ks === undefined) continue;
      const hash = strHash(ks);
      if (seen.find(ks, hash) >= 0) return true;
      seen.add(ks, null, hash);
    }
    return false;
  }

  // texts of memoized handles read again and again ('storage', 'cpu')
  private readonly texts = new Map<number, string | undefined>();
  private lastTextH = -1; private lastText: string | undefined;
  cachedText(h: number): string | undefined {
    if (h === this.lastTextH) return this.lastText;
    let t = this.texts.get(h);
    if (t === undefined && !this.texts.has(h)) { t = this.text(h); if (this.texts.size < 1024) this.texts.set(h, t); }
    this.lastTextH = h; this.lastText = t;
    return t;
  }

  // sizes and strides repeat across a checkpoint's tensors: they are shared (callers never mutate them),
  // found by an int32 hash of their values (a small integer key: Map lookups allocate nothing)
  private readonly shapes = new Map<number, number[]>();
  private readonly tmp: number[] = [];
  private readonly recent: (number[] | undefined)[] = [undefined, undefined];
  private remember(a: number[]): void { if (this.recent[0] !== a) { this.recent[1] = this.recent[0]; this.recent[0] = a; } }

  ints(h: number): number[] | undefined {
    const ar = this.ar;
    let start: number, len: number, list: Ints | undefined;
    if (ar.kind[h] === K.TUPLE) { start = ar.a[h]; len = ar.c[h]; }
    else if (ar.kind[h] === K.LIST) { list = ar.seqView(h); start = 0; len = list.length; }
    else return undefined;
    // a tuple of small ints (handles H_SMALL_INT + v) equal to one of the last two results: no reads through int()
    if (!list) {
      for (let r = 0; r < 2; r++) {
        const prev = this.recent[r];
        if (!prev || prev.length !== len) continue;
        let i = 0;
        while (i < len && prev[i] >= 0 && prev[i] < 256 && ar.items[start + i] === H_SMALL_INT + prev[i]) i++;
        if (i === len) return prev;
      }
    }
    const tmp = this.tmp;   // scratch that only grows (shrinking an array's length frees its backing store)
    for (let i = 0; i < len; i++) {
      const n = this.int(list ? list.get(i) : ar.items[start + i]);
      if (n === undefined) return undefined;
      if (i < tmp.length) tmp[i] = n; else tmp.push(n);
    }
    // the last two results first (a checkpoint's tensors mostly repeat one size and one stride)
    for (let r = 0; r < 2; r++) {
      const prev = this.recent[r];
      if (prev && prev.length === len) {
        let same = true;
        for (let i = 0; i < len && same; i++) same = prev[i] === tmp[i];
        if (same) return prev;
      }
    }
    let key = len;
    for (let i = 0; i < len; i++) { const n = tmp[i]; key = Math.imul(key ^ (n | 0), 0x01000193) ^ (n > 0x7fffffff || n < -0x80000000 ? 1 : 0); }
    const shared = this.shapes.get(key);
    if (shared && shared.length === len) {
      let same = true;
      for (let i = 0; i < len && same; i++) same = shared[i] === tmp[i];
      if (same) { this.remember(shared); return shared; }
    }
    const out = tmp.slice(0, len);
    if (this.shapes.size < 4096) this.shapes.set(key, out);
    this.remember(out);
    return out;
  }

  global(h: number): { module: string; name: string } | undefined {
    return h >= 0 && this.ar.kind[h] === K.GLOBAL ? this.ar.globals[this.ar.a[h]] : undefined;
  }

  // what each imported global is to the walker (FN_* codes), decided once per global record
  private fnCodes = new Int8Array(0);
  private fnCodeOf(g: number): number {
    if (g >= this.fnCodes.length) { const x = new Int8Array(Math.max(16, this.ar.globals.length, g + 1)).fill(-1); x.set(this.fnCodes); this.fnCodes = x; }
    let code = this.fnCodes[g];
    if (code < 0) { code = FN_CODE.get(this.ar.globalName(g)) ?? FN_NONE; this.fnCodes[g] = code; }
    return code;
  }

  /** Whether the call `h` is a torch tensor/parameter rebuild (or numpy array); if so the t* fields hold it.
   *  `depth`: rebuild calls this one is nested in (Parameter(Parameter(...)) a million deep is no tensor). */
  tensorOf(h: number, depth = 0): boolean {
    const ar = this.ar, fn = ar.a[h];
    if (ar.kind[fn] !== K.GLOBAL) return false;
    const code = this.fnCodeOf(ar.a[fn]);
    return code !== FN_NONE && this.rebuild(code, ar.c[h], h, depth);
  }

  /** `fn(*args)` for the FN_* code of one of the tensor functions; `call` is the call node (its BUILD states hold numpy data). */
  rebuild(code: number, args: number, call: number, depth: number): boolean {
    const ar = this.ar;
    this.tObject = undefined;
    if (ar.kind[args] !== K.TUPLE || depth > 16) return code === FN_NUMPY && this.numpyArrayOf(call);
    switch (code) {
      case FN_TENSOR: case FN_TENSOR_V3:
        return this.rebuildTensor(code === FN_TENSOR_V3, args);
      case FN_PARAMETER: {
        const inner = ar.tupleItem(args, 0);
        if (inner < 0 || ar.kind[inner] !== K.CALL || !this.tensorOf(inner, depth + 1)) return false;
        const grad = ar.tupleItem(args, 1) !== H_FALSE;
        const obj = this.tObject as Omit<ExtractedTensor, 'name'> | undefined;
        if (obj) this.tObject = { ...obj, requiresGrad: grad, kind: obj.kind === 'sparse' ? 'sparse' : 'parameter' };
        else this.tFlags = (grad ? F_GRAD : 0) | F_PARAM;
        return true;
      }
      case FN_FROM_TYPE: {
        // _rebuild_from_type_v2(func, new_type, args, state): func(*args), e.g. _rebuild_tensor_v2
        const f = ar.tupleItem(args, 0), inner = ar.tupleItem(args, 2);
        if (f < 0 || ar.kind[f] !== K.GLOBAL || inner < 0 || ar.kind[inner] !== K.TUPLE) return false;
        const fc = this.fnCodeOf(ar.a[f]);
        return fc !== FN_NONE ? this.rebuild(fc, inner, call, depth + 1) : false;
      }
      case FN_NUMPY:
        return this.numpyArrayOf(call);
      case FN_SPARSE:
        return this.sparseTensor(args, depth);
      default:
        return false;
    }
  }

  /** torch._utils._rebuild_sparse_tensor(layout, data) and _rebuild_sparse_csr_tensor(layout, data): `data` holds
   *  the index tensors, the value tensor, then the dense size (a tuple, or torch.Size of one). One row of kind
   *  'sparse' (dtype of the values, shape the dense size, bytes those of its component tensors, no storage of its
   *  own); the components are read, not listed, as torch.load returns only the sparse tensor. */
  sparseTensor(args: number, depth: number): boolean {
    const ar = this.ar;
    const layoutCall = ar.tupleItem(args, 0), data = ar.tupleItem(args, 1);
    if (data < 0 || ar.kind[data] !== K.TUPLE || ar.c[data] < 3) return false;
    const n = ar.c[data];
    let size = ar.tupleItem(data, n - 1);
    if (size >= 0 && ar.kind[size] === K.CALL) size = ar.calleeName(size) === 'torch.Size' && ar.kind[ar.c[size]] === K.TUPLE ? ar.tupleItem(ar.c[size], 0) : -1;
    const shape = size < 0 ? undefined : this.ints(size);
    if (!shape) return false;
    let bytes = 0, dtype = '', elementSize = 0;
    for (let i = 0; i < n - 1; i++) {
      const part = ar.tupleItem(data, i);
      if (part < 0 || ar.kind[part] !== K.CALL || !this.tensorOf(part, depth + 1) || this.tObject) return false;
      // (the last component is the value tensor: its dtype is the sparse tensor's)
      bytes += numel(this.tShape) * this.tSize; dtype = this.tDtype; elementSize = this.tSize;
    }
    // the layout: torch.serialization._get_layout("torch.sparse_coo")
    let layout: string | undefined;
    if (layoutCall >= 0 && ar.kind[layoutCall] === K.CALL && ar.calleeName(layoutCall) === 'torch.serialization._get_layout' && ar.kind[ar.c[layoutCall]] === K.TUPLE) {
      const t = this.text(ar.tupleItem(ar.c[layoutCall], 0));
      if (t && /^torch\.sparse_\w+$/.test(t)) layout = t.slice('torch.'.length);
    }
    this.tObject = { dtype, elementSize, shape: [...shape], stride: [], storageOffset: 0, requiresGrad: false, kind: 'sparse', layout: layout ?? 'sparse', dataBytes: bytes };
    return true;
  }

  /** torch._utils._rebuild_tensor*(storage, offset, size, stride, requires_grad, ...) with `args` a tuple. */
  rebuildTensor(v3: boolean, args: number): boolean {
    const ar = this.ar;
    const storage = this.storageOf(ar.tupleItem(args, 0));
    if (storage < 0) return false;
    const a1 = ar.tupleItem(args, 1), a2 = ar.tupleItem(args, 2), a3 = ar.tupleItem(args, 3);
    const offset = a1 < 0 ? undefined : this.int(a1);
    const shape = a2 < 0 ? undefined : this.ints(a2);
    const stride = a3 < 0 ? undefined : this.ints(a3);
    if (offset === undefined || !shape || !stride) return false;
    let dtype = this.sDtype, elementSize = this.sSize;
    if (v3) {
      const d = this.global(ar.tupleItem(args, 6));
      if (d && d.module === 'torch') { dtype = DTYPE_ALIAS[d.name] ?? d.name; elementSize = DTYPE_SIZES[dtype] ?? elementSize; }
    }
    this.tDtype = dtype; this.tSize = elementSize; this.tShape = shape; this.tStride = stride; this.tOffset = offset;
    this.tStorage = storage; this.tFlags = ar.tupleItem(args, 4) === H_TRUE ? F_GRAD : 0;
    return true;
  }

  private storageTag = -1;
  // dtype of the storage storageOf() found last
  private sDtype = ''; private sSize = 0;

  /** Index in the storage table of a persistent id ('storage', StorageClass, key, location, numel[, view]). */
  storageOf(h: number): number {
    const ar = this.ar, storages = this.storages;
    if (h < 0 || ar.kind[h] !== K.PERSID) return -1;
    const pid = ar.a[h];
    if (ar.kind[pid] !== K.TUPLE || ar.c[pid] < 5) return -1;
    const at = ar.a[pid], it = ar.items;
    const tag = it[at];
    if (tag !== this.storageTag) { if (!ar.strIs(tag, 'storage')) return -1; this.storageTag = tag; }   // torch memoizes it: one handle
    const type = this.global(it[at + 1]);
    const kh = it[at + 2];
    if (!type || !this.keyBytes(kh)) return -1;
    const found = storages.findBytes(this.kb, this.ka, this.kl, this.kh);
    if (found >= 0) { this.sDtype = storages.dtypeName(found); this.sSize = storages.elementSize(found); return found; }
    const numel = this.int(it[at + 4]);
    const kindIx = this.storageKind(it[at + 1]);
    if (kindIx < 0 || numel === undefined) return -1;
    const st = STORAGE_KINDS[kindIx];
    // legacy format: (view_key, offset, view_size) for views of a bigger storage
    let view: { root: string; offset: number; numel: number } | undefined;
    const p5 = ar.tupleItem(pid, 5);
    if (p5 >= 0 && ar.kind[p5] === K.TUPLE && ar.c[p5] >= 3) {
      const v = ar.a[p5];
      const vk = this.text(it[v]), off = this.int(it[v + 1]), n = this.int(it[v + 2]);
      if (vk !== undefined && off !== undefined && n !== undefined) view = { root: this.key(kh)!, offset: off, numel: n };
    }
    const i = storages.add(this.kb, this.ka, this.kl, this.kh, kindIx, numel, this.cachedText(it[at + 3]) ?? '', view);
    this.sDtype = st[1]; this.sSize = st[2];
    return i;
  }

  private kindOfGlobal = new Int16Array(0);   // STORAGE_KINDS index + 2 per global record; 0: not decided yet
  /** STORAGE_KINDS index of a storage class global (-1: not one), looked up once per imported global. */
  storageKind(h: number): number {
    const g = this.ar.a[h];
    if (g >= this.kindOfGlobal.length) { const x = new Int16Array(Math.max(16, this.ar.globals.length, g + 1)); x.set(this.kindOfGlobal); this.kindOfGlobal = x; }
    let k = this.kindOfGlobal[g];
    if (k === 0) { k = (STORAGE_KIND_OF.get(this.ar.globals[g].name) ?? -1) + 2; this.kindOfGlobal[g] = k; }
    return k - 2;
  }

  /** numpy.core.multiarray._reconstruct + BUILD state (version, shape, dtype, fortran, rawdata). Rare in
   *  checkpoints: the small state is materialized and read as PyValue. */
  numpyArrayOf(h: number): boolean {
    const states = this.ar.extraSeq(h, X_STATES);
    if (states < 0 || this.ar.seqLenOf(states) === 0) return false;
    const st = this.ar.materializeNear(this.ar.seqItemOf(states, 0), 10, 4096);
    if (!(st instanceof PyTuple) || st.items.length < 5) return false;
    const shape = asIntTuple(st.items[1]);
    const dt = numpyDtypeOf(st.items[2]);
    const raw = st.items[4];
    if (!shape || !dt || dt.hasObject) return false;
    this.tObject = {
      dtype: numpyToTorchDtype(dt.str), elementSize: dt.itemsize, shape, stride: contiguousStride(shape), storageOffset: 0,
      inline: raw instanceof PyBytes ? { offset: raw.offset, byteLength: raw.length } : undefined,
      requiresGrad: false, kind: 'ndarray',
    };
    return true;
  }
}

// the callees the walker understands (anything else is walked as an object)
const FN_NONE = 0, FN_TENSOR = 1, FN_TENSOR_V3 = 2, FN_PARAMETER = 3, FN_FROM_TYPE = 4, FN_NUMPY = 5, FN_SPARSE = 6;
const FN_CODE = new Map<string, number>([
  [REBUILD + '_rebuild_sparse_tensor', FN_SPARSE], [REBUILD + '_rebuild_sparse_csr_tensor', FN_SPARSE],
  [REBUILD + '_rebuild_tensor', FN_TENSOR], [REBUILD + '_rebuild_tensor_v2', FN_TENSOR], [REBUILD + '_rebuild_qtensor', FN_TENSOR],
  [REBUILD + '_rebuild_tensor_v3', FN_TENSOR_V3],
  [REBUILD + '_rebuild_parameter', FN_PARAMETER], [REBUILD + '_rebuild_parameter_with_state', FN_PARAMETER], ['torch.nn.parameter.Parameter', FN_PARAMETER],
  ['torch._tensor._rebuild_from_type_v2', FN_FROM_TYPE],
  ['numpy.core.multiarray._reconstruct', FN_NUMPY], ['numpy._core.multiarray._reconstruct', FN_NUMPY],
]);

function ndarrayTensor(v: PyNdArray): Omit<ExtractedTensor, 'name'> {
  const m = /^.([a-zA-Z])(\d+)$/.exec(v.dtype);
  const itemsize = m ? parseInt(m[2], 10) : 1;
  return {
    dtype: numpyToTorchDtype(v.dtype), elementSize: itemsize, shape: v.shape, stride: contiguousStride(v.shape), storageOffset: 0,
    inline: { offset: v.dataOffset, byteLength: v.byteLength }, requiresGrad: false, kind: 'ndarray',
  };
}

export function contiguousStride(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
}

export function numpyToTorchDtype(str: string): string {
  const m = /^.([a-zA-Z])(\d+)$/.exec(str);
  if (!m) return str;
  const [, k, n] = m;
  const map: Record<string, string> = {
    f2: 'float16', f4: 'float32', f8: 'float64', i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64', u1: 'uint8',
    u2: 'uint16', u4: 'uint32', u8: 'uint64', b1: 'bool', c8: 'complex64', c16: 'complex128',
  };
  return map[k + n] ?? `numpy:${str}`;
}

export function numel(shape: number[]): number { return shape.reduce((a, b) => a * b, 1); }

/** Elements of storage a strided view touches (0 for empty tensors). */
export function storageExtent(t: ExtractedTensor): number { return extentOf(t.shape, t.stride, t.storageOffset); }

function extentOf(shape: number[], stride: number[], offset: number): number {
  let max = offset;
  for (let i = 0; i < shape.length; i++) { if (shape[i] === 0) return 0; max += (shape[i] - 1) * (stride[i] ?? 0); }
  return max + 1;
}

function decodeLatin1(b: Uint8Array, at: number, end: number): string { return Buffer.from(b.buffer, b.byteOffset + at, end - at).toString('latin1'); }
