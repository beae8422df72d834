// Python's marshal format, read (never loaded) to show what a Keras Lambda's serialized code object would do:
// its names (co_names: the globals and attributes it reaches, e.g. __import__, system), its constants (strings it
// passes, e.g. a shell command) and the names of nested code objects. Keras' func_dump writes
// base64(marshal.dumps(fn.__code__)); marshal's layout of a code object differs between CPython versions, so each
// known layout is tried and the one that reads the bytes exactly to their end is taken. Bounded: nesting depth,
// object count and every length against the bytes left.

export interface CodeSummary {
  /** CPython versions whose code-object layout read the bytes. */
  layout: string;
  name: string;
  filename: string;
  /** co_names of the code object and every nested one, in order, deduplicated. */
  names: string[];
  /** String and number constants (repr-like), deduplicated, at most 200. */
  consts: string[];
  /** Names of nested code objects (inner lambdas, comprehensions). */
  nested: string[];
}

type Layout = { label: string; ints: number; objs: ('code' | 'consts' | 'names' | 'name' | 'filename' | 'qualname' | 'other' | 'firstlineno')[] };

// the fields after the leading int32 counts, in marshal order
const LAYOUTS: Layout[] = [
  { label: '3.11+', ints: 5, objs: ['code', 'consts', 'names', 'other', 'other', 'filename', 'name', 'qualname', 'firstlineno', 'other', 'other'] },
  { label: '3.8-3.10', ints: 6, objs: ['code', 'consts', 'names', 'other', 'other', 'other', 'filename', 'name', 'firstlineno', 'other'] },
  { label: '3.0-3.7', ints: 5, objs: ['code', 'consts', 'names', 'other', 'other', 'other', 'filename', 'name', 'firstlineno', 'other'] },
];

class MarshalError extends Error {}

interface CodeObj { kind: 'code'; name: string; filename: string; names: unknown[]; consts: unknown[] }

const MAX_OBJECTS = 200_000;
const MAX_DEPTH = 100;

class Reader {
  pos = 0;
  objects = 0;
  refs: unknown[] = [];
  constructor(readonly b: Uint8Array, readonly layout: Layout) {}
  need(n: number): void { if (n < 0 || this.pos + n > this.b.length) throw new MarshalError('truncated'); }
  u8(): number { this.need(1); return this.b[this.pos++]; }
  i32(): number { this.need(4); const b = this.b, p = this.pos; this.pos += 4; return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24); }
  bytes(n: number): Uint8Array { if (n < 0) throw new MarshalError('negative length'); this.need(n); const v = this.b.subarray(this.pos, this.pos + n); this.pos += n; return v; }
  text(n: number, latin1 = false): string { const v = this.bytes(n); return latin1 ? Buffer.from(v).toString('latin1') : Buffer.from(v).toString('utf8'); }

  obj(depth = 0): unknown {
    if (depth > MAX_DEPTH) throw new MarshalError('nested too deep');
    if (++this.objects > MAX_OBJECTS) throw new MarshalError('too many objects');
    const t = this.u8();
    const flag = t & 0x80, code = t & 0x7f;
    let idx = -1;
    if (flag) { idx = this.refs.length; this.refs.push(undefined); }
    const v = this.body(String.fromCharCode(code), depth);
    if (idx >= 0) this.refs[idx] = v;
    return v;
  }

  private body(c: string, depth: number): unknown {
    switch (c) {
      case '0': return undefined;   // NULL (dict terminator)
      case 'N': return null;
      case 'F': return false;
      case 'T': return true;
      case 'S': return 'StopIteration';
      case '.': return 'Ellipsis';
      case 'i': return this.i32();
      case 'l': {
        const n = this.i32();
        const digits = Math.abs(n);
        if (digits > 10_000) throw new MarshalError('long too long');
        let v = 0n;
        const ds = this.bytes(digits * 2);
        for (let k = digits - 1; k >= 0; k--) v = (v << 15n) | BigInt(ds[2 * k] | (ds[2 * k + 1] << 8));
        return n < 0 ? -v : v;
      }
      case 'g': { const d = this.bytes(8); return { float: Buffer.from(d).readDoubleLE(0) }; }
      case 'f': { const n = this.u8(); return { float: Number(this.text(n, true)) }; }
      case 'y': { this.bytes(16); return 'complex'; }
      case 'x': { const a = this.u8(); this.bytes(a); const b = this.u8(); this.bytes(b); return 'complex'; }
      case 's': return { bytes: this.bytes(this.i32()) };
      case 't': case 'u': return this.text(this.i32());
      case 'a': case 'A': return this.text(this.i32(), true);
      case 'z': case 'Z': return this.text(this.u8(), true);
      case '(': case '[': case '<': case '>': return this.seq(this.i32(), depth);
      case ')': return this.seq(this.u8(), depth);
      case '{': {
        const out: unknown[] = [];
        for (;;) {
          if (this.pos < this.b.length && this.b[this.pos] === 0x30) { this.pos++; break; }
          out.push(this.obj(depth + 1), this.obj(depth + 1));
        }
        return out;
      }
      case 'r': {
        const i = this.i32();
        if (i < 0 || i >= this.refs.length) throw new MarshalError(`bad reference ${i}`);
        return this.refs[i];
      }
      case 'c': return this.code(depth);
      default: throw new MarshalError(`unknown type code 0x${c.charCodeAt(0).toString(16)}`);
    }
  }

  private seq(n: number, depth: number): unknown[] {
    if (n < 0 || n > this.b.length - this.pos) throw new MarshalError('bad sequence length');
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(this.obj(depth + 1));
    return out;
  }

  private code(depth: number): CodeObj {
    for (let i = 0; i < this.layout.ints; i++) this.i32();
    const c: CodeObj = { kind: 'code', name: '', filename: '', names: [], consts: [] };
    for (const f of this.layout.objs) {
      if (f === 'firstlineno') { this.i32(); continue; }
      const v = this.obj(depth + 1);
      if (f === 'code' && !(v && typeof v === 'object' && 'bytes' in v)) throw new MarshalError('co_code is not bytes');
      if (f === 'consts') { if (!Array.isArray(v)) throw new MarshalError('co_consts is not a tuple'); c.consts = v; }
      if (f === 'names') { if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new MarshalError('co_names is not a tuple of str'); c.names = v; }
      if (f === 'name') { if (typeof v !== 'string') throw new MarshalError('co_name is not str'); c.name = v; }
      if (f === 'filename') { if (typeof v !== 'string') throw new MarshalError('co_filename is not str'); c.filename = v; }
    }
    return c;
  }
}

function isCode(v: unknown): v is CodeObj { return !!v && typeof v === 'object' && (v as CodeObj).kind === 'code'; }

function repr(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (v && typeof v === 'object' && 'float' in v) { const f = (v as { float: number }).float; return Number.isInteger(f) ? f.toFixed(1) : String(f); }
  if (typeof v === 'bigint') return v.toString();
  if (v && typeof v === 'object' && 'bytes' in v) return `b'${Buffer.from((v as { bytes: Uint8Array }).bytes).toString('latin1')}'`;
  return undefined;
}

/** Reads a marshal'd code object; undefined when no known layout reads it. */
export function summarizeCode(bytes: Uint8Array): CodeSummary | undefined {
  for (const layout of LAYOUTS) {
    const r = new Reader(bytes, layout);
    let top: unknown;
    try { top = r.obj(); } catch { continue; }
    if (!isCode(top) || r.pos !== bytes.length) continue;
    const names: string[] = [], consts: string[] = [], nested: string[] = [];
    const seenN = new Set<string>(), seenC = new Set<string>();
    // refs make the constants a DAG (a tuple of refs to the same tuple, nested): each node is walked once
    const seen = new Set<unknown>();
    let budget = 100_000;
    const walk = (c: CodeObj, depth: number) => {
      if (depth > 20 || seen.has(c) || --budget < 0) return;
      seen.add(c);
      for (const n of c.names) if (typeof n === 'string' && !seenN.has(n)) { seenN.add(n); names.push(n); }
      const visitConst = (k: unknown) => {
        if (isCode(k)) { nested.push(k.name); walk(k, depth + 1); return; }
        if (Array.isArray(k)) { if (seen.has(k) || --budget < 0) return; seen.add(k); for (const x of k) visitConst(x); return; }
        const s = repr(k);
        if (s === undefined) return;
        if (!seenC.has(s) && consts.length < 200) { seenC.add(s); consts.push(s); }
      };
      for (const k of c.consts) visitConst(k);
    };
    walk(top, 0);
    return { layout: layout.label, name: top.name, filename: top.filename, names, consts, nested };
  }
  return undefined;
}

/** Keras writes the marshal bytes base64-encoded (ascii), falling back to raw_unicode_escape text. */
export function decodeKerasCode(s: string): Uint8Array | undefined {
  const compact = s.replace(/\s+/g, '');
  if (/^[A-Za-z0-9+/]*={0,2}$/.test(compact) && compact.length % 4 === 0) return Buffer.from(compact, 'base64');
  return undefined;
}
