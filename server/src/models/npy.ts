// NumPy .npy header: magic \x93NUMPY, version, little-endian header length, then a Python dict literal
// {'descr': ..., 'fortran_order': ..., 'shape': (...)}. Parsed with a tiny literal reader (never eval).
import { ByteSource, startsWith, u16, u32 } from './source';

export interface NpyHeader {
  ok: boolean;
  error?: string;
  version: string;
  descr: string;            // e.g. "<f4", "|O", or a repr of a structured dtype
  fortranOrder: boolean;
  shape: number[];
  headerEnd: number;        // absolute offset where array data starts
  hasObject: boolean;       // object dtype anywhere: data is a pickle
  itemsize: number;         // 0 when unknown (structured types)
}

export const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function looksLikeNpy(head: Uint8Array): boolean { return startsWith(head, NPY_MAGIC); }

export function parseNpyHeader(src: ByteSource, base = 0): NpyHeader {
  const bad = (error: string): NpyHeader => ({ ok: false, error, version: '', descr: '', fortranOrder: false, shape: [], headerEnd: base, hasObject: false, itemsize: 0 });
  const pre = src.read(base, 12);
  if (pre.length < 10 || !startsWith(pre, NPY_MAGIC)) return bad('missing \\x93NUMPY magic');
  const major = pre[6], minor = pre[7];
  let hlen: number, hstart: number;
  if (major === 1) { hlen = u16(pre, 8); hstart = base + 10; }
  else if (major === 2 || major === 3) { if (pre.length < 12) return bad('truncated header'); hlen = u32(pre, 8); hstart = base + 12; }
  else return bad(`unsupported .npy version ${major}.${minor}`);
  if (hstart + hlen > src.size) return bad(`header length ${hlen} runs past the end of the file`);
  if (hlen > 100_000_000) return bad('header too large');
  const text = Buffer.from(src.read(hstart, hlen)).toString(major === 3 ? 'utf8' : 'latin1');
  let dict: unknown;
  try { dict = new LiteralReader(text).readTop(); } catch (e) { return bad(`header is not a Python literal: ${(e as Error).message}`); }
  if (!dict || typeof dict !== 'object' || Array.isArray(dict) || dict instanceof Tuple) return bad('header is not a dict');
  const d = dict as Record<string, unknown>;
  const keys = Object.keys(d).sort().join(',');
  if (keys !== 'descr,fortran_order,shape') return bad(`header keys are ${keys}, expected descr, fortran_order, shape`);
  if (typeof d.fortran_order !== 'boolean') return bad('fortran_order is not a bool');
  if (!(d.shape instanceof Tuple) || !d.shape.items.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) return bad('shape is not a tuple of non-negative ints');
  const shape = d.shape.items as number[];
  const descr = d.descr;
  const hasObject = descrHasObject(descr);
  const itemsize = typeof descr === 'string' ? simpleItemsize(descr) : 0;
  const descrText = typeof descr === 'string' ? descr : JSON.stringify(descr, (_k, v) => (v instanceof Tuple ? v.items : v));
  return { ok: true, version: `${major}.${minor}`, descr: descrText, fortranOrder: d.fortran_order, shape, headerEnd: hstart + hlen, hasObject, itemsize };
}

function descrHasObject(descr: unknown): boolean {
  if (typeof descr === 'string') return /^[|<>=]?O/.test(descr);
  // structured: a list of (name, dtype) or (name, dtype, shape) fields, as numpy's descr_to_dtype reads them;
  // the shape (subarray fields) is a tuple of ints, only the dtype can hold objects
  if (Array.isArray(descr)) {
    return descr.length === 0 || descr.some((f) => !(f instanceof Tuple) || f.items.length < 2 || f.items.length > 3 || descrHasObject(f.items[1]) ||
      (f.items.length === 3 && !isShape(f.items[2])));
  }
  return true; // unknown shapes of descr: fail closed
}

function isShape(v: unknown): boolean {
  return (typeof v === 'number' && Number.isInteger(v) && v >= 0) || (v instanceof Tuple && v.items.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0));
}

function simpleItemsize(descr: string): number {
  const m = /^[|<>=]?([a-zA-Z?])(\d*)$/.exec(descr);
  if (!m) return 0;
  const n = m[2] ? parseInt(m[2], 10) : (m[1] === 'b' || m[1] === '?' ? 1 : 0);
  return m[1] === 'U' ? n * 4 : n;
}

export class Tuple { constructor(readonly items: unknown[]) {} }

/** Python literal subset: dict, list, tuple, str, int, True/False/None. */
class LiteralReader {
  private i = 0;
  constructor(private readonly s: string) {}
  readTop(): unknown { const v = this.value(0); this.ws(); if (this.i !== this.s.length) throw new Error(`unexpected ${JSON.stringify(this.s[this.i])}`); return v; }
  private ws() { while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++; }
  private value(depth: number): unknown {
    if (depth > 32) throw new Error('nesting too deep');
    this.ws();
    const ch = this.s[this.i];
    if (ch === '{') return this.dict(depth);
    if (ch === '[') return this.seq(']', depth);
    if (ch === '(') { const items = this.seq(')', depth); return new Tuple(items); }
    if (ch === "'" || ch === '"') return this.str();
    const m = /^(True|False|None|-?\d+L?)/.exec(this.s.slice(this.i, this.i + 40));
    if (!m) throw new Error(`unexpected ${JSON.stringify(ch ?? 'end')}`);
    this.i += m[1].length;
    if (m[1] === 'True') return true; if (m[1] === 'False') return false; if (m[1] === 'None') return null;
    return parseInt(m[1], 10);
  }
  private str(): string {
    const q = this.s[this.i++]; let out = '';
    while (this.i < this.s.length && this.s[this.i] !== q) {
      if (this.s[this.i] === '\\') { this.i++; }
      out += this.s[this.i++];
    }
    if (this.s[this.i] !== q) throw new Error('unterminated string');
    this.i++; return out;
  }
  private seq(close: string, depth: number): unknown[] {
    this.i++; const items: unknown[] = [];
    for (;;) {
      this.ws();
      if (this.s[this.i] === close) { this.i++; return items; }
      items.push(this.value(depth + 1)); this.ws();
      if (this.s[this.i] === ',') { this.i++; continue; }
      if (this.s[this.i] === close) { this.i++; return items; }
      throw new Error(`expected , or ${close}`);
    }
  }
  private dict(depth: number): Record<string, unknown> {
    this.i++; const out: Record<string, unknown> = Object.create(null);
    for (;;) {
      this.ws();
      if (this.s[this.i] === '}') { this.i++; return out; }
      const k = this.value(depth + 1); this.ws();
      if (typeof k !== 'string') throw new Error('dict key is not a string');
      if (this.s[this.i++] !== ':') throw new Error('expected :');
      out[k] = this.value(depth + 1); this.ws();
      if (this.s[this.i] === ',') { this.i++; continue; }
      if (this.s[this.i] === '}') { this.i++; return out; }
      throw new Error('expected , or }');
    }
  }
}
