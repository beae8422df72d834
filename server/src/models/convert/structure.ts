// What a checkpoint holds besides its tensors, read from the symbolic unpickler's values (nothing is executed):
// the loaded object as a tagged JSON tree whose tensor leaves name the converted tensors, so code can rebuild
// the very dict torch.load returned from a .safetensors file (tensors) and its __metadata__ (this tree).
// Values whose rebuilding needs their class's code (an nn.Module, a user object) are not representable: the
// tree is then withheld and `unsupported` says what and where. numpy arrays inside the checkpoint are
// located here too (their bytes sit in the pickle stream, not in a storage).
//
// Tree encoding (JSON): null, true, false, numbers (ints that are safe integers) and strings stand for
// themselves; everything else is a list whose first item is a tag:
//   ["t", key] tensor (["t", key, 1]: requires_grad) | ["p", key, requires_grad] nn.Parameter
//   ["np", key] numpy array (stored as a tensor) | ["nps", dtype, base64] numpy scalar
//   ["i", digits] int | ["f", number | "nan" | "inf" | "-inf" | "-0.0"] float | ["c", re, im] complex
//   ["b", base64] bytes | ["ba", base64] bytearray
//   ["tu", [...]] tuple | ["l", [...]] list | ["set", [...]] | ["fset", [...]]
//   ["d", [[k, v], ...]] dict | ["od", [[k, v], ...], {attr: v}?] OrderedDict (state_dict()'s _metadata)
//   ["ns", [[name, v], ...]] argparse.Namespace | ["path", class, [parts]] pathlib path
//   ["size", [ints]] torch.Size | ["dev", type, index?] torch.device
import { K, X_DICT, X_LIST, X_STATES, type ValueArena } from '../pickle/arena';
import type { PickleRun } from '../pickle/machine';
import { numpyDtypeOf } from '../pickle/machine';
import { PyBigStr, PyBytes, PyTuple, asText } from '../pickle/values';
import type { ExtractedTensor } from '../pickle/tensors';

const SPARSE_REBUILDS = new Set(['torch._utils._rebuild_sparse_tensor', 'torch._utils._rebuild_sparse_csr_tensor']);

export type TreeNode = null | boolean | number | string | TreeNode[] | { [k: string]: TreeNode };

/** Where a numpy array's bytes are: copied out of the scan's values, or a window of the pickle stream. */
export type ArrayBytes =
  | { bytes: Uint8Array }
  /** `latin1`: the window is a UTF-8 str whose characters are the bytes (protocol 2 writes bytes that way). */
  | { streamOffset: number; length: number; latin1: boolean };

export interface CheckpointStructure {
  /** The whole loaded object; undefined when `unsupported` is not empty. Tensor leaves hold row names. */
  tree?: TreeNode;
  /** "path: what" for each value the tree cannot hold (at most MAX_LISTED, `unsupportedCount` counts all). */
  unsupported: string[];
  unsupportedCount: number;
  /** "path (what)" of values that are not tensors (what a tensors-only conversion leaves out), at most MAX_LISTED. */
  nonTensors: string[];
  nonTensorCount: number;
  /** numpy arrays by row name. */
  arrays: Map<string, ArrayBytes>;
}

export const STRUCTURE_KEY = 'safe_weights.structure';
const MAX_LISTED = 50;
/** Values the tree may hold (a 50,000-tensor checkpoint has ~100,000); past it the tree is withheld. */
export const structureLimits = { values: 2_000_000, depth: 400 };

const TENSOR_FNS = new Set(['torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_qtensor', 'torch._tensor._rebuild_from_type_v2']);
const PARAM_FNS = new Set(['torch._utils._rebuild_parameter', 'torch._utils._rebuild_parameter_with_state', 'torch.nn.parameter.Parameter']);
const NUMPY_ARRAY = new Set(['numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct']);
const NUMPY_SCALAR = new Set(['numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar']);
const PATHS = /^pathlib(?:\._local)?\.(PosixPath|WindowsPath|PurePosixPath|PureWindowsPath|Path|PurePath)$/;

class Unsupported extends Error {}

/**
 * Reads the structure of the object `run` returned. `rows`: the tensor inventory of the same run by name (the
 * tensor walk's dotted paths; this walk names values the same way, so each tensor leaf finds its row).
 */
export function readStructure(run: PickleRun, rows: ReadonlyMap<string, ExtractedTensor>): CheckpointStructure {
  const ar: ValueArena = run.arena;
  const out: CheckpointStructure = { unsupported: [], unsupportedCount: 0, nonTensors: [], nonTensorCount: 0, arrays: new Map() };
  const firstPath = new Map<number, string | null>();   // containers: the path they were first reached by
  const onStack = new Set<number>();
  let values = 0;
  const unsupported = (path: string | null, what: string): void => {
    if (out.unsupported.length < MAX_LISTED) out.unsupported.push(`${show(path)}: ${what}`);
    out.unsupportedCount++;
  };
  const nonTensor = (path: string | null, what: string): void => {
    if (path === null) return;   // attributes (state_dict()'s _metadata) and values under keys that name nothing
    if (out.nonTensors.length < MAX_LISTED) out.nonTensors.push(`${show(path)} (${what})`);
    out.nonTensorCount++;
  };
  // the tensor walk's names: a child of the root has no leading dot; an unnameable key (tuple, float) leaves
  // what is under it unnamed (null), and a tensor there has no row
  const join = (path: string | null, k: string | null): string | null => (path === null || k === null ? null : path === '' ? k : `${path}.${k}`);
  const keyText = (h: number): string | null => {
    switch (ar.kind[h]) {
      case K.INT: return String(ar.b[h]);
      case K.STR: return ar.text(h);
      case K.BYTES: return Buffer.from(ar.sb.subarray(ar.a[h], ar.a[h] + ar.c[h])).toString('latin1');
      case K.OBJ: { const o = ar.objs[ar.a[h]]; return o instanceof PyBytes ? asText(o) ?? null : null; }
      default: return null;
    }
  };
  const leafRow = (path: string | null, what: string): ExtractedTensor | undefined => {
    const row = path === null ? undefined : rows.get(path === '' ? '' : path);
    if (!row) unsupported(path, `${what} the tensor inventory does not list under this name`);
    return row;
  };

  const seq = (s: number): number[] => { const r: number[] = []; for (let i = 0; i < ar.seqLenOf(s); i++) r.push(ar.seqItemOf(s, i)); return r; };
  const tupleItems = (h: number): number[] => { const r: number[] = []; for (let i = 0; i < ar.c[h]; i++) r.push(ar.items[ar.a[h] + i]); return r; };

  const pairsOf = (flat: number[], path: string | null, depth: number): TreeNode[] => {
    const entries: TreeNode[] = [];
    const seen = new Set<string>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const k = flat[i], kt = keyText(k);
      if (kt !== null) {
        if (seen.has(kt)) unsupported(join(path, kt), 'a key repeated in one dict (or keys of different types with the same text)');
        seen.add(kt);
      }
      entries.push([enc(k, null, depth + 1, true), enc(flat[i + 1], join(path, kt), depth + 1)]);
    }
    return entries;
  };

  /** `asKey`: a dict key (not named, not a tensor). */
  const enc = (h: number, path: string | null, depth: number, asKey = false): TreeNode => {
    if (++values > structureLimits.values) throw new Unsupported(`more than ${structureLimits.values} values`);
    if (depth > structureLimits.depth) throw new Unsupported(`nested more than ${structureLimits.depth} levels deep`);
    const k = ar.kind[h];
    switch (k) {
      case K.NONE: if (!asKey) nonTensor(path, 'None'); return null;
      case K.FALSE: case K.TRUE: if (!asKey) nonTensor(path, 'bool'); return k === K.TRUE;
      case K.INT: { if (!asKey) nonTensor(path, 'int'); const v = ar.b[h]; return Number.isSafeInteger(v) ? v : ['i', BigInt(v).toString()]; }
      case K.FLOAT: { if (!asKey) nonTensor(path, 'float'); return ['f', floatNode(ar.b[h])]; }
      case K.STR: if (!asKey) nonTensor(path, 'str'); return ar.text(h);
      case K.BYTES: {
        if (!asKey) nonTensor(path, ar.sub[h] === 1 ? 'bytearray' : 'bytes');
        return [ar.sub[h] === 1 ? 'ba' : 'b', Buffer.from(ar.sb.subarray(ar.a[h], ar.a[h] + ar.c[h])).toString('base64')];
      }
      case K.OBJ: {
        const o = ar.objs[ar.a[h]];
        if (typeof o === 'bigint') { if (!asKey) nonTensor(path, 'int'); return ['i', o.toString()]; }
        if (o instanceof PyBigStr) unsupported(path, `a str of ${o.length} bytes (larger than the scan keeps)`);
        else if (o instanceof PyBytes) unsupported(path, `bytes of ${o.length} bytes (larger than the scan keeps)`);
        else unsupported(path, ar.describe(h));
        return null;
      }
      case K.GLOBAL: unsupported(path, `the class or function ${ar.describe(h)} itself`); return null;
      case K.PERSID: {
        const row = leafRow(path, 'a persistent id');
        return row ? tensorLeaf(row) : null;
      }
      case K.TUPLE: case K.LIST: case K.DICT: case K.SET: case K.CALL: break;
      default: unsupported(path, ar.describe(h)); return null;
    }
    // tensors first: a tensor reached twice is a row under each name (the walk does not memoize them)
    if (k === K.CALL) {
      const callee = ar.calleeName(h) ?? '';
      if (TENSOR_FNS.has(callee) || PARAM_FNS.has(callee)) {
        const row = leafRow(path, `a tensor (${callee})`);
        return row ? tensorLeaf(row) : null;
      }
      if (NUMPY_ARRAY.has(callee)) {
        const row = leafRow(path, 'a numpy array');
        if (!row) return null;
        const data = numpyData(ar, h);
        if (typeof data === 'string') { unsupported(path, data); return null; }
        out.arrays.set(row.name, data);
        return ['np', row.name];
      }
    }
    if (onStack.has(h)) { unsupported(path, 'a value that contains itself'); return null; }
    // a container reached again: the tensor walk named what is inside by the first path only
    const seen = firstPath.get(h);
    const p = seen !== undefined ? seen : path;
    if (seen === undefined) firstPath.set(h, path);
    onStack.add(h);
    try {
      switch (k) {
        case K.TUPLE: return ['tu', tupleItems(h).map((x, i) => enc(x, join(p, String(i)), depth + 1, asKey))];
        case K.LIST: return ['l', seq(h).map((x, i) => enc(x, join(p, String(i)), depth + 1))];
        case K.SET: return [ar.frozen(h) ? 'fset' : 'set', seq(h).map((x) => enc(x, null, depth + 1, true))];
        case K.DICT: return ['d', pairsOf(seq(h), p, depth)];
        default: return encCall(h, p, depth, asKey);
      }
    } finally { onStack.delete(h); }
  };

  const tensorLeaf = (row: ExtractedTensor): TreeNode => {
    if (row.kind === 'parameter') return ['p', row.name, row.requiresGrad ? 1 : 0];
    if (row.kind === 'ndarray') return ['np', row.name];
    return row.requiresGrad ? ['t', row.name, 1] : ['t', row.name];
  };

  const encCall = (h: number, path: string | null, depth: number, asKey: boolean): TreeNode => {
    const callee = ar.calleeName(h);
    const args = ar.c[h];
    const argItems = ar.kind[args] === K.TUPLE ? tupleItems(args) : undefined;
    const states = ar.extraSeq(h, X_STATES), list = ar.extraSeq(h, X_LIST), dict = ar.extraSeq(h, X_DICT);
    const nStates = states < 0 ? 0 : ar.seqLenOf(states);
    const plain = (): boolean => nStates === 0 && list < 0 && dict < 0;
    const what = callee ? `a ${callee} object` : 'the result of a computed call';
    const bad = (why = `${what} (rebuilding it needs its code)`): TreeNode => { unsupported(path, why); return null; };
    if (!callee || !argItems) return bad();
    // sparse layouts are data, but safetensors stores dense tensors only
    if (SPARSE_REBUILDS.has(callee)) return bad(`a sparse tensor (${callee.slice(callee.lastIndexOf('.') + 1)}); safetensors holds dense tensors only`);
    switch (callee) {
      case 'collections.OrderedDict': {
        if (list >= 0 || argItems.length > 1) return bad();
        const flat: number[] = [];
        // OrderedDict([(k, v), ...]) (protocol 0/1 writers) then SETITEMS
        if (argItems.length === 1) {
          const init = argItems[0];
          if (ar.kind[init] !== K.LIST) return bad();
          for (const pair of seq(init)) {
            if (ar.kind[pair] !== K.TUPLE || ar.c[pair] !== 2) return bad();
            flat.push(...tupleItems(pair));
          }
        }
        if (dict >= 0) flat.push(...seq(dict));
        const node: TreeNode[] = ['od', pairsOf(flat, path, depth)];
        if (nStates) {
          // BUILD on an OrderedDict sets attributes (state_dict()'s _metadata); the tensor walk names nothing in them
          const attrs: Record<string, TreeNode> = {};
          for (const st of seq(states)) {
            if (ar.kind[st] !== K.DICT) return bad('an OrderedDict with a state that is not a dict of attributes');
            const flat2 = seq(st);
            for (let i = 0; i + 1 < flat2.length; i += 2) {
              const name = ar.kind[flat2[i]] === K.STR ? ar.text(flat2[i]) : undefined;
              if (name === undefined) return bad('an OrderedDict attribute whose name is not a str');
              attrs[name] = enc(flat2[i + 1], null, depth + 1);
            }
          }
          node.push(attrs);
        }
        return node;
      }
      case 'builtins.set': case 'builtins.frozenset': {
        if (!plain() || argItems.length > 1) return bad();
        const items = argItems.length ? argItems[0] : -1;
        if (items >= 0 && ar.kind[items] !== K.LIST && ar.kind[items] !== K.TUPLE) return bad();
        const xs = items < 0 ? [] : ar.kind[items] === K.LIST ? seq(items) : tupleItems(items);
        if (!asKey) nonTensor(path, callee.slice(9));
        return [callee === 'builtins.set' ? 'set' : 'fset', xs.map((x) => enc(x, null, depth + 1, true))];
      }
      case '_codecs.encode': {
        const b = latin1Bytes(ar, argItems);
        if (!b || !plain()) return bad('bytes written in a way this reader does not know');
        if (!asKey) nonTensor(path, 'bytes');
        return ['b', Buffer.from(b).toString('base64')];
      }
      case 'builtins.bytearray': {
        if (!plain()) return bad();
        let b: Uint8Array | undefined;
        if (argItems.length === 0) b = new Uint8Array(0);
        else if (argItems.length === 1 && ar.kind[argItems[0]] === K.BYTES) b = ar.sb.subarray(ar.a[argItems[0]], ar.a[argItems[0]] + ar.c[argItems[0]]);
        else if (argItems.length === 1 && ar.kind[argItems[0]] === K.CALL && ar.calleeName(argItems[0]) === '_codecs.encode' && ar.kind[ar.c[argItems[0]]] === K.TUPLE) {
          b = latin1Bytes(ar, tupleItems(ar.c[argItems[0]]));   // protocol 2: bytearray(_codecs.encode(text, 'latin1'))
        } else b = latin1Bytes(ar, argItems);
        if (!b) return bad('a bytearray written in a way this reader does not know');
        if (!asKey) nonTensor(path, 'bytearray');
        return ['ba', Buffer.from(b).toString('base64')];
      }
      case 'builtins.complex': {
        const [re, im] = argItems.map((x) => (ar.kind[x] === K.FLOAT || ar.kind[x] === K.INT ? ar.b[x] : undefined));
        if (!plain() || argItems.length !== 2 || re === undefined || im === undefined) return bad();
        if (!asKey) nonTensor(path, 'complex');
        return ['c', floatNode(re), floatNode(im)];
      }
      case 'argparse.Namespace': {
        if (list >= 0 || dict >= 0 || argItems.length !== 0 || nStates > 1) return bad();
        const flat = nStates ? seq(states) : [];
        const st = flat.length ? flat[0] : -1;
        if (st >= 0 && ar.kind[st] !== K.DICT) return bad('an argparse.Namespace whose state is not a dict');
        const entries = st >= 0 ? seq(st) : [];
        const node: TreeNode[] = [];
        for (let i = 0; i + 1 < entries.length; i += 2) {
          if (ar.kind[entries[i]] !== K.STR) return bad('an argparse.Namespace attribute whose name is not a str');
          const name = ar.text(entries[i]);
          // the tensor walk names object attributes like keys, except private ones (which it skips)
          node.push([name, enc(entries[i + 1], name.startsWith('_') ? null : join(path, name), depth + 1)]);
        }
        return ['ns', node];
      }
      case 'torch.Size': {
        const xs = argItems.length === 1 && ar.kind[argItems[0]] === K.TUPLE ? tupleItems(argItems[0]) : undefined;
        if (!plain() || !xs || xs.some((x) => ar.kind[x] !== K.INT)) return bad();
        if (!asKey) nonTensor(path, 'torch.Size');
        return ['size', xs.map((x) => ar.b[x])];
      }
      case 'torch.device': {
        const [t, i] = argItems;
        if (!plain() || argItems.length > 2 || t === undefined || ar.kind[t] !== K.STR || (i !== undefined && ar.kind[i] !== K.INT)) return bad();
        if (!asKey) nonTensor(path, 'torch.device');
        return i === undefined ? ['dev', ar.text(t)] : ['dev', ar.text(t), ar.b[i]];
      }
      default: break;
    }
    const m = PATHS.exec(callee);
    if (m) {
      if (!plain() || argItems.some((x) => ar.kind[x] !== K.STR)) return bad();
      if (!asKey) nonTensor(path, `pathlib.${m[1]}`);
      return ['path', m[1], argItems.map((x) => ar.text(x))];
    }
    if (NUMPY_SCALAR.has(callee)) {
      const s = numpyScalar(ar, argItems);
      if (typeof s === 'string' || !plain()) return bad(typeof s === 'string' ? s : undefined);
      if (!asKey) nonTensor(path, `numpy ${s[0]} scalar`);
      return ['nps', s[0], Buffer.from(s[1]).toString('base64')];
    }
    return bad();
  };

  let tree: TreeNode | undefined;
  try {
    if (run.root === undefined) unsupported('', 'the pickle returned nothing');
    else tree = enc(run.root, '', 0);
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
    unsupported('', e.message);
  }
  if (out.unsupportedCount === 0) out.tree = tree;
  return out;
}

function show(path: string | null): string { return path === null ? '(a value under a key that is not a str or int)' : path === '' ? '(the loaded object)' : path; }

function floatNode(v: number): number | string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (Object.is(v, -0)) return '-0.0';
  return v;
}

/** `_codecs.encode(text, 'latin1')`: how protocol 2 writes bytes; the text's characters are the bytes. */
function latin1Bytes(ar: ValueArena, args: number[]): Uint8Array | undefined {
  if (args.length !== 2 || ar.kind[args[0]] !== K.STR || ar.kind[args[1]] !== K.STR) return undefined;
  const enc = ar.text(args[1]).toLowerCase().replace(/[-_]/g, '');
  if (enc !== 'latin1' && enc !== 'iso88591') return undefined;
  const s = ar.text(args[0]);
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 255) return undefined;
  return Buffer.from(s, 'latin1');
}

/** The raw data of numpy.core.multiarray._reconstruct(...) + BUILD (version, shape, dtype, fortran, data), or why not. */
function numpyData(ar: ValueArena, h: number): ArrayBytes | string {
  const states = ar.extraSeq(h, X_STATES);
  if (states < 0 || ar.seqLenOf(states) !== 1) return 'a numpy array without one BUILD state';
  const st = ar.materializeNear(ar.seqItemOf(states, 0), 10, 4096);
  if (!(st instanceof PyTuple) || st.items.length < 5) return 'a numpy array state this reader does not know';
  const dt = numpyDtypeOf(st.items[2]);
  if (!dt || dt.hasObject) return 'a numpy array of Python objects (it holds a pickle)';
  if (dt.str[0] === '>' && dt.itemsize > 1) return `a big-endian numpy array (${dt.str})`;
  if (st.items[3] === true) return 'a Fortran-ordered numpy array';
  // the raw data handle: the state's fifth item (bytes, or _codecs.encode(str, 'latin1') at protocol 2)
  const sh = ar.seqItemOf(states, 0);
  const raw = ar.tupleItem(sh, 4);
  if (raw < 0) return 'a numpy array without data';
  switch (ar.kind[raw]) {
    case K.BYTES: return { bytes: ar.sb.slice(ar.a[raw], ar.a[raw] + ar.c[raw]) };
    case K.OBJ: {
      const o = ar.objs[ar.a[raw]];
      if (o instanceof PyBytes) return o.data ? { bytes: o.data } : { streamOffset: o.offset, length: o.length, latin1: false };
      return 'a numpy array whose data this reader does not know';
    }
    case K.CALL: {
      if (ar.calleeName(raw) !== '_codecs.encode') return 'a numpy array whose data is computed by a call';
      const args = ar.c[raw];
      if (ar.kind[args] !== K.TUPLE || ar.c[args] !== 2) return 'a numpy array whose data this reader does not know';
      const s = ar.tupleItem(args, 0), e = ar.tupleItem(args, 1);
      const b = latin1Bytes(ar, [s, e]);
      if (b) return { bytes: b };
      const big = ar.kind[s] === K.OBJ ? ar.objs[ar.a[s]] : undefined;
      if (big instanceof PyBigStr && ar.kind[e] === K.STR && /^latin[-_]?1$/i.test(ar.text(e))) return { streamOffset: big.offset, length: big.length, latin1: true };
      return 'a numpy array whose data this reader does not know';
    }
    default: return 'a numpy array whose data this reader does not know';
  }
}

/** numpy.core.multiarray.scalar(dtype, data): [dtype string, raw bytes], or why not. */
function numpyScalar(ar: ValueArena, args: number[]): [string, Uint8Array] | string {
  if (args.length !== 2) return 'a numpy scalar this reader does not know';
  const dt = numpyDtypeOf(ar.materializeNear(args[0], 6, 512));
  if (!dt || dt.hasObject) return 'a numpy scalar of a Python object';
  const d = args[1];
  let b: Uint8Array | undefined;
  if (ar.kind[d] === K.BYTES) b = ar.sb.slice(ar.a[d], ar.a[d] + ar.c[d]);
  else if (ar.kind[d] === K.CALL && ar.calleeName(d) === '_codecs.encode' && ar.kind[ar.c[d]] === K.TUPLE) {
    const t = ar.c[d];
    b = latin1Bytes(ar, [ar.tupleItem(t, 0), ar.tupleItem(t, 1)]);
  }
  if (!b || b.length !== dt.itemsize) return 'a numpy scalar whose data this reader does not know';
  return [dt.str, b];
}
