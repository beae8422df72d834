// Reads the tensor inventory out of a simulated pickle: follows torch's rebuild calls (only the allowlisted
// reconstruction functions), dict/OrderedDict/list nesting for names, and nn.Module states.
import {
  PyCall, PyDict, PyGlobal, PyList, PyNdArray, PyPersId, PyTuple, PyValue, PyBytes, asInt, asIntTuple, asText,
} from './values';
import { numpyDtypeOf } from './machine';

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
  kind: 'tensor' | 'parameter' | 'ndarray';
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

export interface TensorWalkResult { tensors: ExtractedTensor[]; truncated: boolean; storages: Map<string, StorageRef> }

/** Tensors referenced by a bare persistent id (torch's legacy tar format: the id names a tensor record). */
export type PersIdResolver = (pid: PyValue) => Omit<ExtractedTensor, 'name'> | undefined;

export function extractTensors(root: PyValue | undefined, maxTensors = 1_000_000, resolvePersId?: PersIdResolver): TensorWalkResult {
  const out: ExtractedTensor[] = [];
  const storages = new Map<string, StorageRef>();
  const visited = new Set<object>();
  let truncated = false;
  let budget = 5_000_000;   // nodes visited: bounds time on adversarial DAGs

  const walk = (v: PyValue, path: string, depth: number): void => {
    if (v === null || typeof v !== 'object' || depth > 200 || --budget < 0) return;
    if (out.length >= maxTensors) { truncated = true; return; }
    if (v instanceof PyCall) {
      const t = tensorOf(v, path, storages);
      if (t) { out.push(t); return; }
      if (visited.has(v)) return;
      visited.add(v);
      walkObject(v, path, depth);
      return;
    }
    if (v instanceof PyNdArray) { out.push(ndarrayTensor(v, path)); return; }
    if (v instanceof PyPersId) {
      const t = resolvePersId?.(v.pid);
      if (t) out.push({ ...t, name: path });
      return;
    }
    if (visited.has(v)) return;
    visited.add(v);
    if (v instanceof PyDict) walkEntries(v.entries, path, depth);
    else if (v instanceof PyList || v instanceof PyTuple) v.items.forEach((it, i) => walk(it, join(path, String(i)), depth + 1));
  };
  const walkEntries = (entries: [PyValue, PyValue][], path: string, depth: number) => {
    // later duplicate keys win, like a Python dict
    const last = new Map<string, PyValue>();
    for (const [k, val] of entries) {
      const ks = typeof k === 'number' ? String(k) : asText(k);
      if (ks !== undefined) { last.delete(ks); last.set(ks, val); }
    }
    for (const [k, val] of last) walk(val, join(path, k), depth + 1);
  };
  const walkObject = (v: PyCall, path: string, depth: number) => {
    if (v.dictItems) walkEntries(v.dictItems, path, depth);
    if (v.listItems) v.listItems.forEach((it, i) => walk(it, join(path, String(i)), depth + 1));
    for (const st of v.states) {
      // nn.Module: _parameters / _buffers / _modules are transparent, like state_dict() names
      let dict: PyDict | undefined;
      if (st instanceof PyDict) dict = st;
      else if (st instanceof PyTuple && st.items[0] instanceof PyDict) dict = st.items[0];
      if (!dict) continue;
      for (const [k, val] of dict.entries) {
        const ks = asText(k);
        if (ks === undefined) continue;
        if (ks === '_parameters' || ks === '_buffers' || ks === '_modules') {
          const inner = val instanceof PyDict ? val.entries : val instanceof PyCall ? val.dictItems : undefined;
          if (inner) walkEntries(inner, path, depth + 1);
        } else if (!ks.startsWith('_')) walk(val, join(path, ks), depth + 1);
      }
    }
    // numpy.core.multiarray._reconstruct + BUILD state (version, shape, dtype, fortran, rawdata)
  };
  walk(root ?? null, '', 0);
  return { tensors: out, truncated, storages };
}

function join(path: string, k: string): string { return path ? `${path}.${k}` : k; }

function calleeOf(v: PyCall): string | undefined {
  return v.fn instanceof PyGlobal ? `${v.fn.module}.${v.fn.name}` : undefined;
}

/** If `v` is a torch tensor/parameter rebuild (or numpy array), describe it. */
export function tensorOf(v: PyCall, name: string, storages: Map<string, StorageRef>): ExtractedTensor | undefined {
  const fn = calleeOf(v);
  if (!fn || !(v.args instanceof PyTuple)) return numpyArrayOf(v, name, fn);
  const a = v.args.items;
  switch (fn) {
    case REBUILD + '_rebuild_tensor':
    case REBUILD + '_rebuild_tensor_v2':
    case REBUILD + '_rebuild_tensor_v3':
    case REBUILD + '_rebuild_qtensor': {
      const storage = storageOf(a[0], storages);
      const offset = asInt(a[1] ?? null);
      const shape = asIntTuple(a[2] ?? null);
      const stride = asIntTuple(a[3] ?? null);
      if (!storage || offset === undefined || !shape || !stride) return undefined;
      let dtype = storage.dtype, elementSize = storage.elementSize;
      if (fn.endsWith('_v3')) {
        const d = a[6];
        if (d instanceof PyGlobal && d.module === 'torch') {
          dtype = DTYPE_ALIAS[d.name] ?? d.name; elementSize = DTYPE_SIZES[dtype] ?? elementSize;
        }
      }
      return { name, dtype, elementSize, shape, stride, storageOffset: offset, storage, requiresGrad: a[4] === true, kind: 'tensor' };
    }
    case REBUILD + '_rebuild_parameter':
    case REBUILD + '_rebuild_parameter_with_state':
    case 'torch.nn.parameter.Parameter': {
      const inner = a[0];
      if (!(inner instanceof PyCall)) return undefined;
      const t = tensorOf(inner, name, storages);
      if (!t) return undefined;
      return { ...t, requiresGrad: a[1] !== false, kind: 'parameter' };
    }
    case 'torch._tensor._rebuild_from_type_v2': {
      // _rebuild_from_type_v2(func, new_type, args, state): func(*args), e.g. _rebuild_tensor_v2
      if (a[0] instanceof PyGlobal && a[2] instanceof PyTuple) {
        return tensorOf(new PyCall(a[0], a[2], 'reduce', v.offset), name, storages);
      }
      return undefined;
    }
    default:
      return numpyArrayOf(v, name, fn);
  }
}

function storageOf(v: PyValue | undefined, storages: Map<string, StorageRef>): StorageRef | undefined {
  if (!(v instanceof PyPersId) || !(v.pid instanceof PyTuple)) return undefined;
  const p = v.pid.items;
  if (asText(p[0] ?? null) !== 'storage') return undefined;
  const type = p[1];
  const key = asText(p[2] ?? null) ?? (typeof p[2] === 'number' ? String(p[2]) : undefined);
  const location = asText(p[3] ?? null) ?? '';
  const numel = asInt(p[4] ?? null);
  if (!(type instanceof PyGlobal) || key === undefined || numel === undefined) return undefined;
  const st = STORAGE_DTYPES[type.name];
  if (!st) return undefined;
  const existing = storages.get(key);
  if (existing) return existing;
  const ref: StorageRef = { key, dtype: st[0], elementSize: st[1], numel, location };
  // legacy format: (view_key, offset, view_size) for views of a bigger storage
  if (p[5] instanceof PyTuple) {
    const vk = asText(p[5].items[0] ?? null), off = asInt(p[5].items[1] ?? null), n = asInt(p[5].items[2] ?? null);
    if (vk !== undefined && off !== undefined && n !== undefined) ref.view = { root: key, offset: off, numel: n };
  }
  storages.set(key, ref);
  return ref;
}

function numpyArrayOf(v: PyCall, name: string, fn: string | undefined): ExtractedTensor | undefined {
  if (fn !== 'numpy.core.multiarray._reconstruct' && fn !== 'numpy._core.multiarray._reconstruct') return undefined;
  const st = v.states[0];
  if (!(st instanceof PyTuple) || st.items.length < 5) return undefined;
  const shape = asIntTuple(st.items[1]);
  const dt = numpyDtypeOf(st.items[2]);
  const raw = st.items[4];
  if (!shape || !dt || dt.hasObject) return undefined;
  const n = shape.reduce((x, y) => x * y, 1);
  return {
    name, dtype: numpyToTorchDtype(dt.str), elementSize: dt.itemsize, shape, stride: contiguousStride(shape), storageOffset: 0,
    inline: raw instanceof PyBytes ? { offset: raw.offset, byteLength: raw.length } : undefined,
    requiresGrad: false, kind: 'ndarray',
    ...(n * dt.itemsize >= 0 ? {} : {}),
  };
}

function ndarrayTensor(v: PyNdArray, name: string): ExtractedTensor {
  const m = /^.([a-zA-Z])(\d+)$/.exec(v.dtype);
  const itemsize = m ? parseInt(m[2], 10) : 1;
  return {
    name, dtype: numpyToTorchDtype(v.dtype), elementSize: itemsize, shape: v.shape, stride: contiguousStride(v.shape), storageOffset: 0,
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
export function storageExtent(t: ExtractedTensor): number {
  if (t.shape.some((d) => d === 0)) return 0;
  let max = t.storageOffset;
  for (let i = 0; i < t.shape.length; i++) max += (t.shape[i] - 1) * (t.stride[i] ?? 0);
  return max + 1;
}
