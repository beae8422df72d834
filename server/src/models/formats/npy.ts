// NumPy .npy, as numpy.load reads it (a file, or a member of an .npz that zip.ts finds): magic \x93NUMPY, version,
// little-endian header length, then a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)}.
// Parsed with a tiny literal reader (never eval). An object array's data is a pickle numpy.load unpickles
// (allow_pickle=True): it is read as such; any other array is a tensor row.
import { ByteSource, BytesSource, SliceSource, startsWith, u16, u32 } from '../source';
import { Cursor, runWithChunks } from '../pickle/cursor';
import { numel, numpyToTorchDtype } from '../pickle/tensors';
import { add, DECOMPRESS_LIMIT, type ScanContext } from './context';
import { machineOpts, pickleSequence, recordRun, runPicklesSync } from './pickleRuns';
import { memberChunks, readMember, type ZipEntry } from './zipDirectory';

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

// ---- the scan ---------------------------------------------------------------------------------------------------

/** A file that starts with the .npy magic. */
export async function readNpyFile(ctx: ScanContext, src: ByteSource): Promise<void> {
  ctx.report.format = 'numpy-npy';
  await scanNpy(ctx, src, undefined);
}

async function scanNpy(ctx: ScanContext, src: ByteSource, member: string | undefined): Promise<void> {
  const h = parseNpyHeader(src, 0);
  const where = member ? `member "${member}": ` : '';
  if (!h.ok) { add(ctx, 'SW023', `${where}${h.error}.`, { member, severity: member ? 'caution' : 'invalid' }); return; }
  const name = member ? member.replace(/\.npy$/, '') : 'array';
  if (h.hasObject) {
    add(ctx, 'SW016', `${where}object array (${h.descr}, shape ${JSON.stringify(h.shape)}): numpy.load needs allow_pickle=True and then unpickles the data at offset ${h.headerEnd}.`, { member, offset: h.headerEnd });
    const { runs } = runPicklesSync(src, h.headerEnd, src.size, ctx, 1);
    // numpy.load unpickles object data with pickle.load (no persistent_load)
    for (const r of runs) recordRun(ctx, r, member ? `${member} (object data)` : undefined, { strict: true, torchLoads: false, src, loaderReads: true, persistentLoad: false });
    if (runs.length === 0) add(ctx, 'SW004', `${where}object array data is missing.`, { member, severity: 'dangerous' });
    return;
  }
  const count = numel(h.shape);
  const need = count * h.itemsize;
  if (h.itemsize && h.headerEnd + need > src.size) {
    add(ctx, 'SW023', `${where}header declares ${need} bytes of data but only ${src.size - h.headerEnd} follow.`, { member, severity: member ? 'caution' : 'invalid' });
  }
  if (!member) ctx.report.metadata['numpy.descr'] = h.descr;
  ctx.report.tensors.push({ name, dtype: numpyToTorchDtype(h.descr.replace(/^\|/, '<')), shape: h.shape, bytes: need, offset: h.headerEnd, storageKey: member });
}

export async function scanNpyMember(ctx: ScanContext, src: ByteSource, e: ZipEntry): Promise<void> {
  let msrc: ByteSource;
  if (e.method === 0) msrc = new SliceSource(src, e.dataOffset, Math.min(e.compressedSize, src.size - e.dataOffset));
  else {
    if (e.uncompressedSize > 64 << 20) {
      // too big to hold: parse the header from the first decompressed bytes, stream the rest if it is a pickle
      await scanBigCompressedNpy(ctx, src, e);
      return;
    }
    try { msrc = new BytesSource(await readMember(src, e, 64 << 20)); } catch (err) {
      add(ctx, 'SW013', `Member "${e.name}" cannot be read: ${(err as Error).message}.`, { member: e.name }); return;
    }
  }
  await scanNpy(ctx, msrc, e.name);
}

async function scanBigCompressedNpy(ctx: ScanContext, src: ByteSource, e: ZipEntry): Promise<void> {
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    for await (const chunk of memberChunks(src, e, 1 << 20)) { parts.push(chunk); n += chunk.length; if (n >= 1 << 20) break; }
  } catch (err) { add(ctx, 'SW013', `Member "${e.name}" cannot be read: ${(err as Error).message}.`, { member: e.name }); return; }
  const h = parseNpyHeader(new BytesSource(Buffer.concat(parts)), 0);
  if (!h.ok) { add(ctx, 'SW023', `member "${e.name}": ${h.error}.`, { member: e.name, severity: 'caution' }); return; }
  if (!h.hasObject) {
    ctx.report.tensors.push({ name: e.name.replace(/\.npy$/, ''), dtype: numpyToTorchDtype(h.descr.replace(/^\|/, '<')), shape: h.shape, bytes: numel(h.shape) * h.itemsize, storageKey: e.name });
    return;
  }
  add(ctx, 'SW016', `member "${e.name}": object array (${h.descr}, shape ${JSON.stringify(h.shape)}): numpy.load needs allow_pickle=True and then unpickles the data.`, { member: e.name, offset: h.headerEnd });
  const c = new Cursor(h.headerEnd, Infinity);
  try {
    const runs = await runWithChunks(pickleSequence(c, machineOpts(ctx), 1), c, skipBytes(memberChunks(src, e, DECOMPRESS_LIMIT), h.headerEnd));
    for (const r of runs) recordRun(ctx, r, `${e.name} (object data)`, { strict: true, torchLoads: false, loaderReads: true, persistentLoad: false });
    if (runs.length === 0) add(ctx, 'SW004', `member "${e.name}": object array data is missing.`, { member: e.name, severity: 'dangerous' });
  } catch (err) {
    add(ctx, 'SW004', `member "${e.name}" could not be decompressed: ${(err as Error).message}.`, { member: e.name, severity: 'dangerous' });
  }
}

/** The chunks of `it` from byte `n` on. */
async function* skipBytes(it: AsyncIterable<Uint8Array>, n: number): AsyncGenerator<Uint8Array> {
  let left = n;
  for await (const chunk of it) {
    if (left >= chunk.length) { left -= chunk.length; continue; }
    yield left ? chunk.subarray(left) : chunk;
    left = 0;
  }
}
