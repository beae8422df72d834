// Symbolic values of the simulated unpickler. Nothing here is ever executed: a "call" records what the real
// unpickler would call, with which arguments, so verdicts, tensor inventories and the converter can read it.

export type PyValue =
  | null                 // None
  | boolean
  | number               // int that fits a double exactly, or float (see PyFloat)
  | bigint               // big int
  | string               // str (decoded)
  | PyFloat
  | PyBytes
  | PyBigStr
  | PyTuple
  | PyList
  | PyDict
  | PySet
  | PyGlobal
  | PyCall
  | PyPersId
  | PyExt
  | PyOpaque
  | PyNdArray;

export class PyFloat { constructor(readonly v: number) {} }

/** bytes / bytearray / py2 str: content kept only when small; offset points into the stream's source. */
export class PyBytes {
  constructor(readonly length: number, readonly offset: number, readonly data: Uint8Array | undefined,
    readonly kind: 'bytes' | 'bytearray' | 'str8' = 'bytes') {}
}
/** A str too large to keep (never a valid global name). */
export class PyBigStr { constructor(readonly length: number, readonly offset: number) {} }

export class PyTuple { constructor(readonly items: PyValue[]) {} }
export class PyList { constructor(public items: PyValue[]) {} }
export class PyDict { constructor(public entries: [PyValue, PyValue][]) {} }
export class PySet { constructor(public items: PyValue[], readonly frozen: boolean) {} }

/** An imported global; `ref` indexes the machine's GlobalRecord list. */
export class PyGlobal { constructor(readonly module: string, readonly name: string, readonly ref: number) {} }

export type CallKind = 'reduce' | 'newobj' | 'newobj_ex' | 'obj' | 'inst';

/** Result of calling `fn` (REDUCE/NEWOBJ/OBJ/INST) plus what later opcodes did to it. */
export class PyCall {
  states: PyValue[] = [];                  // BUILD states applied
  listItems: PyValue[] | undefined;        // APPEND(S) on the object
  dictItems: [PyValue, PyValue][] | undefined; // SETITEM(S) on the object
  setItems: PyValue[] | undefined;         // ADDITEMS on the object
  constructor(public fn: PyValue, public args: PyValue, readonly kind: CallKind, readonly offset: number,
    public kwargs?: PyValue) {}
}

export class PyPersId { constructor(public pid: PyValue, readonly offset: number) {} }
export class PyExt { constructor(readonly code: number, readonly offset: number) {} }
/** Out-of-band buffers and other values with no static content. */
export class PyOpaque { constructor(readonly what: string) {} }

/** A numpy array whose raw data follows the pickle opcodes in the stream (joblib's NumpyArrayWrapper). */
export class PyNdArray {
  constructor(readonly dtype: string, readonly shape: number[], readonly dataOffset: number,
    readonly byteLength: number, readonly order: string) {}
}

export function isStr(v: PyValue): v is string { return typeof v === 'string'; }

export function globalOf(v: PyValue): PyGlobal | undefined { return v instanceof PyGlobal ? v : undefined; }

export function calleeName(c: PyCall): string | undefined {
  return c.fn instanceof PyGlobal ? `${c.fn.module}.${c.fn.name}` : undefined;
}

export function asInt(v: PyValue): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return undefined;
}

export function asIntTuple(v: PyValue): number[] | undefined {
  const items = v instanceof PyTuple ? v.items : v instanceof PyList ? v.items : undefined;
  if (!items) return undefined;
  const out: number[] = [];
  for (const it of items) {
    const n = asInt(it);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

/** Decoded string of a str or small bytes value (py2 pickles store names as bytes-like str8). */
export function asText(v: PyValue): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof PyBytes && v.data) return Buffer.from(v.data).toString('latin1');
  return undefined;
}
