// ONNX: a protobuf ModelProto (onnx/onnx.proto; field numbers below are the schema's). Read lazily over a
// ByteSource: tags and lengths are walked, small fields (names, op types, domains, dims, external_data entries)
// are read, and tensor payloads (raw_data, float_data, ...) are skipped by their length, never read. So a 2 GB
// model costs a walk over its structure, not its size in memory.
//
// Why not protobufjs with onnx.proto: protobufjs (and every other JS protobuf runtime we looked at: google-protobuf,
// @bufbuild/protobuf) decodes a message from one in-memory buffer and materializes every bytes field, so a
// model with embedded weights would have to be read whole (up to the 2 GB protobuf limit) to list its tensors. The
// wire format is four wire types and varints; what is read of it here is the schema's handful of messages.
//
// What is checked: external data (TensorProto.external_data "location", for initializers, sparse initializers,
// attribute tensors, in the main graph, subgraphs, training graphs and functions): absolute, with ".." or
// resolving through symlinks outside the model's folder -> SW037 (the loader would read that file:
// CVE-2022-25882, CVE-2024-27318, CVE-2026-27489; a file with several hard links is named too); missing or
// shorter than offset + length -> SW038. Operators of a domain that is neither ONNX's nor defined by a
// model-local function need a custom-op library (native code) -> SW039, naming the domain.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ByteSource } from '../source';
import type { TensorInfo } from '../types';
import { add, type ScanContext } from './context';

const MAX_DEPTH = 32;
const MAX_STRING = 1 << 16;
const MAX_DIMS = 64;

/** ONNX TensorProto.DataType -> [name, bits per element]. */
const DTYPES: Record<number, [string, number]> = {
  1: ['float32', 32], 2: ['uint8', 8], 3: ['int8', 8], 4: ['uint16', 16], 5: ['int16', 16], 6: ['int32', 32], 7: ['int64', 64],
  8: ['string', 0], 9: ['bool', 8], 10: ['float16', 16], 11: ['float64', 64], 12: ['uint32', 32], 13: ['uint64', 64],
  14: ['complex64', 64], 15: ['complex128', 128], 16: ['bfloat16', 16], 17: ['float8_e4m3fn', 8], 18: ['float8_e4m3fnuz', 8],
  19: ['float8_e5m2', 8], 20: ['float8_e5m2fnuz', 8], 21: ['uint4', 4], 22: ['int4', 4], 23: ['float4_e2m1', 4],
};
/** Operator domains ONNX itself defines (the default "" is ai.onnx). */
const ONNX_DOMAINS = new Set(['', 'ai.onnx', 'ai.onnx.ml', 'ai.onnx.training', 'ai.onnx.preview.training', 'ai.onnx.preview']);
/** Domains of ONNX Runtime's built-in contrib operators (no extra library). */
const ORT_BUILTIN = /^com\.microsoft(\.|$)/;

class OnnxError extends Error {}

/** Tags and varints over a ByteSource, through a small window (few reads, no whole-file buffer). */
class Wire {
  private win: Uint8Array = new Uint8Array(0);
  private winAt = 0;
  constructor(readonly src: ByteSource) {}
  private byte(pos: number): number {
    if (pos < this.winAt || pos >= this.winAt + this.win.length) {
      this.win = this.src.read(pos, 1 << 16);
      this.winAt = pos;
      if (!this.win.length) throw new OnnxError(`truncated at offset ${pos}`);
    }
    return this.win[pos - this.winAt];
  }
  varint(pos: number, end: number): [number, number] {
    let v = 0, mul = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= end) throw new OnnxError(`varint runs past its message at offset ${pos}`);
      const b = this.byte(pos++);
      v += (b & 0x7f) * mul;
      mul *= 128;
      if (!(b & 0x80)) return [v, pos];
    }
    throw new OnnxError(`varint longer than 10 bytes at offset ${pos}`);
  }
  bytes(pos: number, n: number): Uint8Array {
    if (pos >= this.winAt && pos + n <= this.winAt + this.win.length) return this.win.subarray(pos - this.winAt, pos - this.winAt + n);
    return this.src.read(pos, n);
  }
  string(pos: number, n: number): string { return Buffer.from(this.bytes(pos, Math.min(n, MAX_STRING))).toString('utf8'); }
}

interface Field { no: number; wire: number; /** varint value, or the length of a length-delimited field */ v: number; at: number }

/** The fields of the message in [start, end): varints decoded, length-delimited ones located (not read). */
function* fields(w: Wire, start: number, end: number): Generator<Field> {
  let pos = start;
  while (pos < end) {
    const [tag, p1] = w.varint(pos, end);
    const no = Math.floor(tag / 8), wire = tag % 8;
    if (no === 0) throw new OnnxError(`field number 0 at offset ${pos}`);
    pos = p1;
    if (wire === 0) { const [v, p2] = w.varint(pos, end); yield { no, wire, v, at: pos }; pos = p2; }
    else if (wire === 2) {
      const [n, p2] = w.varint(pos, end);
      if (p2 + n > end) throw new OnnxError(`field ${no} (${n} bytes at offset ${p2}) runs past the end of its message (${end})`);
      yield { no, wire, v: n, at: p2 };
      pos = p2 + n;
    } else if (wire === 1) { if (pos + 8 > end) throw new OnnxError('truncated fixed64'); yield { no, wire, v: 0, at: pos }; pos += 8; }
    else if (wire === 5) { if (pos + 4 > end) throw new OnnxError('truncated fixed32'); yield { no, wire, v: 0, at: pos }; pos += 4; }
    else throw new OnnxError(`wire type ${wire} at offset ${pos}`);
  }
}

/** int64 varints of negative values come as 2^64 - x: shown as negative. */
function int64(v: number): number { return v >= 2 ** 63 ? v - 2 ** 64 : v; }

export interface OnnxTensor { name: string; dtype: string; shape: number[]; bytes: number; rawOffset?: number; external?: { location: string; offset: number; length?: number } ; where: string }

export interface OnnxInfo {
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: number;
  graphName?: string;
  opsets: { domain: string; version: number }[];
  metadataProps: [string, string][];
  nodes: number;
  /** domain -> op types used (nodes outside a model-local function) */
  nodeDomains: Map<string, Set<string>>;
  functions: Set<string>;   // "domain\0name"
  tensors: OnnxTensor[];
  tensorCount: number;
  externalTensors: number;
}

/** Whether the first bytes parse as the top of a ModelProto: known field numbers with their wire types. */
export function looksLikeOnnx(head: Uint8Array, size: number): boolean {
  if (head.length < 4 || head[0] !== 0x08) return false;   // ir_version first, as every ONNX writer serializes it
  const known: Record<number, number> = { 1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2 };
  let pos = 0, n = 0;
  const rd = (): number => {
    let v = 0, mul = 1;
    for (let i = 0; i < 10; i++) { if (pos >= head.length) throw new Error('end'); const b = head[pos++]; v += (b & 0x7f) * mul; mul *= 128; if (!(b & 0x80)) return v; }
    throw new Error('long');
  };
  try {
    while (pos < head.length && n < 16) {
      const tag = rd();
      const no = Math.floor(tag / 8), wire = tag % 8;
      if (known[no] !== wire) return false;
      const v = rd();
      if (n === 0 && (no !== 1 || v < 1 || v > 30)) return false;
      if (wire === 2) { if (pos + v > size) return n >= 1 && no !== 1; pos += v; }
      n++;
    }
  } catch { return n >= 1; }
  return n >= 1;
}

export function inspectOnnx(src: ByteSource, maxTensors = 1_000_000): OnnxInfo {
  const w = new Wire(src);
  const info: OnnxInfo = { opsets: [], metadataProps: [], nodes: 0, nodeDomains: new Map(), functions: new Set(), tensors: [], tensorCount: 0, externalTensors: 0 };
  const pendingNodes: { domain: string; op: string }[] = [];
  const kv = (at: number, len: number): [string, string] => {
    let k = '', v = '';
    for (const f of fields(w, at, at + len)) { if (f.wire !== 2) continue; if (f.no === 1) k = w.string(f.at, f.v); else if (f.no === 2) v = w.string(f.at, f.v); }
    return [k, v];
  };
  const tensor = (at: number, len: number, where: string, fallbackName = ''): void => {
    const shape: number[] = [];
    let dtype = 0, name = fallbackName, rawOffset: number | undefined, dataLocation = 0, typed = 0;
    const ext: [string, string][] = [];
    for (const f of fields(w, at, at + len)) {
      if (f.no === 1) {
        if (f.wire === 0) { if (shape.length < MAX_DIMS) shape.push(int64(f.v)); }
        else if (f.wire === 2) for (const d of packed(w, f)) if (shape.length < MAX_DIMS) shape.push(int64(d));
      } else if (f.no === 2 && f.wire === 0) dtype = f.v;
      else if (f.no === 8 && f.wire === 2) name = w.string(f.at, f.v);
      else if (f.no === 9 && f.wire === 2) rawOffset = f.at;
      else if (f.no === 13 && f.wire === 2) { if (ext.length < 16) ext.push(kv(f.at, f.v)); }
      else if (f.no === 14 && f.wire === 0) dataLocation = f.v;
      else if ([4, 5, 6, 7, 10, 11].includes(f.no)) typed += f.wire === 2 ? f.v : 8;
    }
    void typed;
    const [dname, bits] = DTYPES[dtype] ?? [`onnx-type-${dtype}`, 0];
    const numel = shape.reduce((a, b) => a * Math.max(0, b), 1);
    const t: OnnxTensor = { name, dtype: dname, shape, bytes: Math.ceil((numel * bits) / 8), where };
    if (rawOffset !== undefined && dataLocation !== 1) t.rawOffset = rawOffset;
    if (dataLocation === 1 || ext.length) {
      const m = new Map(ext);
      const off = Number(m.get('offset') ?? 0);
      const length = m.has('length') ? Number(m.get('length')) : undefined;
      t.external = { location: m.get('location') ?? '', offset: Number.isFinite(off) ? off : NaN, ...(length !== undefined ? { length } : {}) };
      info.externalTensors++;
    }
    info.tensorCount++;
    if (info.tensors.length < maxTensors) info.tensors.push(t);
  };
  const sparse = (at: number, len: number, where: string): void => {
    for (const f of fields(w, at, at + len)) if (f.wire === 2 && (f.no === 1 || f.no === 2)) tensor(f.at, f.v, `${where} (sparse ${f.no === 1 ? 'values' : 'indices'})`);
  };
  const attribute = (at: number, len: number, where: string, depth: number): void => {
    let aname = '';
    for (const f of fields(w, at, at + len)) {
      if (f.wire !== 2) continue;
      if (f.no === 1) aname = w.string(f.at, f.v);
      else if (f.no === 5 || f.no === 10) tensor(f.at, f.v, `${where} attribute ${aname || '?'}`, `${where}.${aname || '?'}`);
      else if (f.no === 6 || f.no === 11) graph(f.at, f.v, `${where}/${aname || 'subgraph'}`, depth + 1);
      else if (f.no === 22 || f.no === 23) sparse(f.at, f.v, `${where} attribute ${aname || '?'}`);
    }
  };
  const node = (at: number, len: number, where: string, depth: number): void => {
    let domain = '', op = '', name = '';
    const attrs: [number, number][] = [];
    for (const f of fields(w, at, at + len)) {
      if (f.wire !== 2) continue;
      if (f.no === 4) op = w.string(f.at, f.v);
      else if (f.no === 7) domain = w.string(f.at, f.v);
      else if (f.no === 3) name = w.string(f.at, f.v);
      else if (f.no === 5) attrs.push([f.at, f.v]);
    }
    info.nodes++;
    pendingNodes.push({ domain, op });
    for (const [a, l] of attrs) attribute(a, l, `${where}/${name || op}`, depth);
  };
  const graph = (at: number, len: number, where: string, depth: number): void => {
    if (depth > MAX_DEPTH) throw new OnnxError(`subgraphs nested more than ${MAX_DEPTH} deep`);
    for (const f of fields(w, at, at + len)) {
      if (f.wire !== 2) continue;
      if (f.no === 1) node(f.at, f.v, where, depth);
      else if (f.no === 5) tensor(f.at, f.v, `${where} initializer`);
      else if (f.no === 15) sparse(f.at, f.v, `${where} sparse initializer`);
      else if (f.no === 2 && depth === 0 && info.graphName === undefined) info.graphName = w.string(f.at, f.v);
    }
  };
  const fn = (at: number, len: number): void => {
    let name = '', domain = '';
    const nodes: [number, number][] = [];
    for (const f of fields(w, at, at + len)) {
      if (f.wire !== 2) continue;
      if (f.no === 1) name = w.string(f.at, f.v);
      else if (f.no === 10) domain = w.string(f.at, f.v);
      else if (f.no === 7) nodes.push([f.at, f.v]);
    }
    info.functions.add(`${domain}\0${name}`);
    for (const [a, l] of nodes) node(a, l, `function ${domain ? `${domain}.` : ''}${name}`, 1);
  };
  for (const f of fields(w, 0, src.size)) {
    if (f.no === 1 && f.wire === 0) info.irVersion = f.v;
    else if (f.no === 5 && f.wire === 0) info.modelVersion = f.v;
    else if (f.wire !== 2) continue;
    else if (f.no === 2) info.producerName = w.string(f.at, f.v);
    else if (f.no === 3) info.producerVersion = w.string(f.at, f.v);
    else if (f.no === 4) info.domain = w.string(f.at, f.v);
    else if (f.no === 7) graph(f.at, f.v, 'graph', 0);
    else if (f.no === 8) {
      let domain = '', version = 0;
      for (const g of fields(w, f.at, f.at + f.v)) { if (g.no === 1 && g.wire === 2) domain = w.string(g.at, g.v); else if (g.no === 2 && g.wire === 0) version = g.v; }
      if (info.opsets.length < 256) info.opsets.push({ domain, version });
    } else if (f.no === 14) { if (info.metadataProps.length < 100) info.metadataProps.push(kv(f.at, f.v)); }
    else if (f.no === 20) {
      for (const g of fields(w, f.at, f.at + f.v)) if (g.wire === 2 && (g.no === 1 || g.no === 2)) graph(g.at, g.v, `training_info ${g.no === 1 ? 'initialization' : 'algorithm'}`, 1);
    } else if (f.no === 25) fn(f.at, f.v);
  }
  for (const { domain, op } of pendingNodes) {
    if (ONNX_DOMAINS.has(domain) || info.functions.has(`${domain}\0${op}`)) continue;
    let ops = info.nodeDomains.get(domain);
    if (!ops) { if (info.nodeDomains.size >= 256) continue; ops = new Set(); info.nodeDomains.set(domain, ops); }
    if (ops.size < 50) ops.add(op);
  }
  return info;
}

function* packed(w: Wire, f: Field): Generator<number> {
  let pos = f.at;
  const end = f.at + f.v;
  let n = 0;
  while (pos < end && n++ < MAX_DIMS + 1) { const [v, p] = w.varint(pos, end); yield v; pos = p; }
}

// ---- the format reader -----------------------------------------------------------------------------------------

/** Whether an external data location escapes the model folder by its text alone: absolute, or with a ".." step. */
export function locationProblem(location: string): string | undefined {
  if (location === '') return 'is empty';
  if (location.includes('\0')) return 'contains a NUL byte';
  if (/^([\\/]|[A-Za-z]:)/.test(location)) return 'is an absolute path';
  const parts = location.split(/[\\/]+/);
  const i = parts.indexOf('..');
  if (i === 0) return 'starts with ".." (CVE-2022-25882)';
  if (i > 0) return 'contains ".." after its first component, which loaders before ONNX 1.16 let through (CVE-2024-27318)';
  return undefined;
}

export function readOnnx(ctx: ScanContext, src: ByteSource): void {
  const rep = ctx.report;
  rep.format = 'onnx';
  let info: OnnxInfo;
  try { info = inspectOnnx(src, ctx.opts.maxTensors); } catch (e) {
    rep.formatDetail = 'ONNX (unparseable)';
    add(ctx, 'SW036', `The ONNX protobuf cannot be parsed: ${(e as Error).message}; onnx.load would fail.`, { severity: 'invalid' });
    return;
  }
  if (info.irVersion === undefined) add(ctx, 'SW036', 'The ModelProto has no ir_version; the ONNX checker rejects it.', { severity: 'invalid' });
  const md = rep.metadata;
  if (info.irVersion !== undefined) md['onnx.ir_version'] = String(info.irVersion);
  if (info.producerName) md['onnx.producer_name'] = info.producerName;
  if (info.producerVersion) md['onnx.producer_version'] = info.producerVersion;
  if (info.domain) md['onnx.domain'] = info.domain;
  if (info.modelVersion) md['onnx.model_version'] = String(info.modelVersion);
  if (info.graphName) md['onnx.graph_name'] = info.graphName;
  md['onnx.nodes'] = String(info.nodes);
  for (const o of info.opsets) md[`onnx.opset.${o.domain || 'ai.onnx'}`] = String(o.version);
  for (const [k, v] of info.metadataProps) md[`onnx.metadata.${k}`] = v.length > 500 ? `${v.slice(0, 500)}…` : v;
  const opsetText = info.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ');
  rep.formatDetail = `ONNX IR v${info.irVersion ?? '?'}${opsetText ? `, opset ${opsetText}` : ''}, ${info.nodes} node${info.nodes === 1 ? '' : 's'}, ${info.tensorCount} tensor${info.tensorCount === 1 ? '' : 's'}${info.externalTensors ? ` (${info.externalTensors} external)` : ''}`;

  // custom operator domains
  for (const [domain, ops] of info.nodeDomains) {
    const list = [...ops].join(', ');
    if (ORT_BUILTIN.test(domain)) add(ctx, 'SW039', `Operators of domain "${domain}" (${list}) are ONNX Runtime's built-in contrib operators: other runtimes cannot run them.`, { severity: 'info' });
    else add(ctx, 'SW039', `Operators of custom domain "${domain}" (${list}) need a custom-op library registered for "${domain}" (native code loaded into the runtime) to run.`);
  }

  // external data
  const onDisk = ctx.opts.nesting === undefined && fs.existsSync(rep.path);
  const dir = onDisk ? path.dirname(path.resolve(rep.path)) : undefined;
  let realDir: string | undefined;
  try { realDir = dir ? fs.realpathSync(dir) : undefined; } catch { realDir = dir; }
  const byLocation = new Map<string, { tensors: string[]; maxEnd: number; bad: boolean }>();
  for (const t of info.tensors) {
    if (!t.external) continue;
    const loc = t.external.location;
    let e = byLocation.get(loc);
    if (!e) { e = { tensors: [], maxEnd: 0, bad: false }; byLocation.set(loc, e); }
    if (e.tensors.length < 5) e.tensors.push(t.name);
    const end = (Number.isFinite(t.external.offset) ? t.external.offset : 0) + (t.external.length ?? t.bytes);
    if (!Number.isFinite(t.external.offset) || t.external.offset < 0) e.bad = true;
    e.maxEnd = Math.max(e.maxEnd, end);
  }
  for (const [loc, e] of byLocation) {
    const who = `tensor${e.tensors.length === 1 ? '' : 's'} ${e.tensors.map((n) => `"${n}"`).join(', ')}`;
    const problem = locationProblem(loc);
    if (problem) {
      add(ctx, 'SW037', `External data location ${JSON.stringify(loc)} of ${who} ${problem}: loading reads a file outside the model's folder.`, { severity: loc === '' ? 'caution' : 'dangerous' });
      continue;
    }
    if (!dir || !realDir) continue;   // a member of an archive or bytes in memory: no folder to resolve against
    const target = path.join(dir, loc);
    let real: string;
    try { real = fs.realpathSync(target); } catch {
      add(ctx, 'SW038', `External data file ${JSON.stringify(loc)} of ${who} is missing (${target}); the model cannot be loaded as shipped.`);
      continue;
    }
    if (real !== realDir && !real.startsWith(realDir + path.sep)) {
      add(ctx, 'SW037', `External data location ${JSON.stringify(loc)} of ${who} resolves through a symlink to ${real}, outside the model's folder (CVE-2026-27489): loading reads that file.`, { severity: 'dangerous' });
      continue;
    }
    let st: fs.Stats;
    try { st = fs.statSync(real); } catch { continue; }
    if (!st.isFile()) { add(ctx, 'SW038', `External data location ${JSON.stringify(loc)} of ${who} is not a regular file.`); continue; }
    if (st.nlink > 1) add(ctx, 'SW037', `External data file ${JSON.stringify(loc)} has ${st.nlink} hard links: it may be a link to a file elsewhere (hard links pass symlink checks, CVE-2026-34446).`, { severity: 'caution' });
    if (e.bad || e.maxEnd > st.size) add(ctx, 'SW038', `External data file ${JSON.stringify(loc)} holds ${st.size} bytes, less than the ${who} declare${e.tensors.length === 1 ? 's' : ''} (up to byte ${e.maxEnd}).`);
  }

  const rows: TensorInfo[] = info.tensors.map((t) => {
    const r: TensorInfo = { name: t.name, dtype: t.dtype, shape: t.shape, bytes: t.bytes };
    if (t.external) { r.storageKey = t.external.location; r.offset = t.external.offset; }
    else if (t.rawOffset !== undefined) r.offset = t.rawOffset;
    return r;
  });
  rep.tensors = rows;
  if (info.tensorCount > rows.length) { rep.tensorsTruncated = true; rep.tensorsOmitted = info.tensorCount - rows.length; }
}
