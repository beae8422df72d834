// safetensors: an 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the raw tensor data.
// Validation follows the rules of the reference implementation (header ≤ 100 MB, known dtypes, integer
// shapes and offsets, byte counts that match, data section covered exactly with no gap or overlap) and
// adds what JSON.parse would hide: duplicate keys, which different parsers resolve differently.
import type { TensorInfo } from '../types';
import type { ByteSource } from '../source';
import { add, type ScanContext } from './context';

export const SAFETENSORS_MAX_HEADER = 100_000_000;
const MAX_ERRORS = 50;
const MAX_JSON_DEPTH = 128; // serde_json's recursion limit

export interface SafetensorsInfo {
  valid: boolean;
  errors: string[];
  headerSize: number;
  tensors: TensorInfo[];
  metadata: Record<string, string>;
}

/** safetensors dtype → [torch-style name, size in bits]. */
const DTYPES: Record<string, [string, number]> = {
  BOOL: ['bool', 8],
  U8: ['uint8', 8],
  I8: ['int8', 8],
  F8_E5M2: ['float8_e5m2', 8],
  F8_E4M3: ['float8_e4m3fn', 8],
  F8_E8M0: ['float8_e8m0fnu', 8],
  I16: ['int16', 16],
  U16: ['uint16', 16],
  F16: ['float16', 16],
  BF16: ['bfloat16', 16],
  I32: ['int32', 32],
  U32: ['uint32', 32],
  F32: ['float32', 32],
  F64: ['float64', 64],
  I64: ['int64', 64],
  U64: ['uint64', 64],
  C64: ['complex64', 64],
};

export function safetensorsDtypeName(dtype: string): string | undefined { return DTYPES[dtype]?.[0]; }

function readU64(b: Uint8Array, at: number): bigint {
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[at + i]);
  return v;
}

export function looksLikeSafetensors(head: Uint8Array, size: number): boolean {
  if (head.length < 9 || size < 10) return false;
  const n = readU64(head, 0);
  return n >= 2n && n <= BigInt(size - 8) && head[8] === 0x7b; // '{'
}

/**
 * Why a file no format accepted is a broken safetensors file (undefined: it is not one): its bytes start like one
 * (a length, then '{') whose header runs past the end, or it is named .safetensors. safetensors' loader rejects
 * it; nothing in it can run.
 */
export function brokenSafetensorsReason(head: Uint8Array, size: number, name: string): string | undefined {
  const named = /\.safetensors$/i.test(name);
  if (size < 8) return named ? `The file is ${size} byte${size === 1 ? '' : 's'} long: shorter than the 8-byte header length that starts a safetensors file.` : undefined;
  const n = readU64(head, 0);
  const brace = head.length > 8 && head[8] === 0x7b;
  if (brace && n >= 2n && n > BigInt(size - 8)) {
    return `The header length says ${n} bytes, but only ${size - 8} follow it: the file is truncated.`;
  }
  if (!named) return undefined;
  if (n > BigInt(size - 8)) return `The header length (${n} bytes) is longer than the file (${size} bytes): this is not a complete safetensors file.`;
  if (!brace) return 'The header does not start with \'{\': this is not a safetensors file, or it is damaged.';
  return 'The header length is too small to hold a JSON header.';
}

// ---------------------------------------------------------------------------------------------------------
// A small JSON parser: JSON.parse keeps the last of duplicate keys and turns 1e2 or 10.0 into integers, both
// of which the reference (serde) parser treats differently. This one keeps number text and reports duplicates.

class JNum { constructor(readonly raw: string) {} }
type JValue = null | boolean | string | JNum | JValue[] | JObject;
interface JObject { kind: 'object'; entries: Map<string, JValue> } // Map keeps first-insertion order

class JsonError extends Error {}

const PLAIN_RUN = /[^"\\\x00-\x1f]*/y;
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class StrictJson {
  private i = 0;
  readonly duplicates: { key: string; path: string }[] = [];
  private readonly path: string[] = []; // keys from the root to the current value
  constructor(private readonly s: string) {}

  parse(): JValue {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.i < this.s.length) this.fail('unexpected data after the JSON value');
    return v;
  }

  private fail(what: string): never { throw new JsonError(`${what} at character ${this.i}`); }
  private ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i++; else break;
    }
  }

  private value(depth: number): JValue {
    if (depth > MAX_JSON_DEPTH) this.fail(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
    const c = this.s[this.i];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, val] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.s.startsWith(word, this.i)) { this.i += word.length; return val; }
    }
    if (c === undefined) this.fail('unexpected end of JSON');
    return this.fail(`unexpected character ${JSON.stringify(c)}`);
  }

  private object(depth: number): JObject {
    this.i++; // {
    const obj: JObject = { kind: 'object', entries: new Map() };
    this.ws();
    if (this.s[this.i] === '}') { this.i++; return obj; }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail('expected a string key');
      const key = this.string();
      this.ws();
      if (this.s[this.i] !== ':') this.fail('expected ":"');
      this.i++;
      this.ws();
      this.path.push(key);
      const v = this.value(depth + 1);
      this.path.pop();
      if (obj.entries.has(key)) this.duplicates.push({ key, path: this.path.join('.') });
      obj.entries.set(key, v); // like JSON.parse: the last one wins
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return obj;
      if (c !== ',') { this.i--; this.fail('expected "," or "}"'); }
    }
  }

  private array(depth: number): JValue[] {
    this.i++; // [
    const out: JValue[] = [];
    this.ws();
    if (this.s[this.i] === ']') { this.i++; return out; }
    for (;;) {
      this.ws();
      out.push(this.value(depth + 1));
      this.ws();
      const c = this.s[this.i++];
      if (c === ']') return out;
      if (c !== ',') { this.i--; this.fail('expected "," or "]"'); }
    }
  }

  private string(): string {
    const start = this.i;
    this.i++; // opening quote
    const s = this.s;
    let simple = true;
    PLAIN_RUN.lastIndex = this.i;
    if (PLAIN_RUN.test(s)) this.i = PLAIN_RUN.lastIndex; // skip the run with no quote, backslash or control char
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 0x22) { this.i++; break; }
      if (c === 0x5c) { simple = false; this.i += 2; continue; }
      if (c < 0x20) this.fail('control character in string');
      this.i++;
    }
    if (s.charCodeAt(this.i - 1) !== 0x22 || this.i - 1 <= start) this.fail('unterminated string');
    const raw = s.slice(start, this.i);
    if (simple) return raw.slice(1, -1);
    try { return JSON.parse(raw) as string; } catch { return this.fail('invalid escape in string'); }
  }

  private number(): JNum {
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) this.fail('invalid number');
    this.i += m[0].length;
    return new JNum(m[0]);
  }
}

function describe(v: JValue): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'a boolean';
  if (typeof v === 'string') return 'a string';
  if (v instanceof JNum) return `the number ${v.raw}`;
  if (Array.isArray(v)) return 'an array';
  return 'an object';
}

const U64_MAX = 0xffffffffffffffffn;

/** A non-negative integer as serde would accept it for u64 (no fraction, no exponent), or undefined.
 *  Past 2^53 the number is approximate, which only matters for messages: such values exceed any file. */
function asUsize(v: JValue): number | undefined {
  if (!(v instanceof JNum) || !/^(0|[1-9]\d*)$/.test(v.raw)) return undefined;
  if (v.raw.length > 15 && BigInt(v.raw) > U64_MAX) return undefined;
  return Number(v.raw);
}

/** Keys come from the file: define them as own properties so "__proto__" is kept as data, never a prototype. */
function setOwn(o: Record<string, string>, k: string, v: string): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function isObj(v: JValue): v is JObject { return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof JNum); }

function quote(name: string): string {
  const q = JSON.stringify(name.length > 200 ? name.slice(0, 200) + '…' : name);
  return q;
}

export function inspectSafetensors(src: ByteSource): SafetensorsInfo {
  const errors: string[] = [];
  let dropped = 0;
  const err = (msg: string): void => { if (errors.length < MAX_ERRORS) errors.push(msg); else dropped++; };
  const info: SafetensorsInfo = { valid: false, errors, headerSize: 0, tensors: [], metadata: {} };
  const finish = (): SafetensorsInfo => {
    if (dropped > 0) errors.push(`… and ${dropped} more error${dropped === 1 ? '' : 's'}.`);
    info.valid = errors.length === 0;
    return info;
  };

  const size = src.size;
  if (size < 8) { err(`The file is ${size} bytes, too short for the 8-byte header length.`); return finish(); }
  const n = readU64(src.read(0, 8), 0);
  if (n > BigInt(SAFETENSORS_MAX_HEADER)) {
    err(`The header length ${n} exceeds the 100,000,000-byte limit.`);
    return finish();
  }
  const headerSize = Number(n);
  info.headerSize = headerSize;
  if (headerSize + 8 > size) {
    err(`The header length ${headerSize} goes beyond the end of the file (${size} bytes).`);
    return finish();
  }
  if (headerSize < 2) { err(`The header length ${headerSize} is too small for a JSON object.`); return finish(); }
  const raw = src.read(8, headerSize);
  if (raw[0] !== 0x7b) err('The header does not start with "{".');

  let text: string;
  try { text = new TextDecoder('utf-8', { fatal: true }).decode(raw); } catch {
    err('The header is not valid UTF-8.');
    return finish();
  }
  const parser = new StrictJson(text);
  let root: JValue;
  try { root = parser.parse(); } catch (e) {
    if (!(e instanceof JsonError)) throw e;
    err(`The header is not valid JSON: ${e.message}.`);
    return finish();
  }
  for (const d of parser.duplicates) {
    err(d.path ? `Key ${quote(d.key)} appears more than once in ${quote(d.path)}; parsers disagree on which value counts.`
      : `Key ${quote(d.key)} appears more than once in the header; parsers disagree on which entry counts.`);
  }
  if (!isObj(root)) { err(`The header is ${describe(root)}, not a JSON object.`); return finish(); }

  const dataStart = 8 + headerSize;
  const dataLen = size - dataStart;
  const spans: { name: string; begin: number; end: number }[] = [];

  for (const [key, v] of root.entries) {
    if (key === '__metadata__') {
      if (!isObj(v)) { err(`__metadata__ is ${describe(v)}, not a map of strings.`); continue; }
      for (const [mk, mv] of v.entries) {
        if (typeof mv !== 'string') err(`__metadata__ entry ${quote(mk)} is ${describe(mv)}, not a string.`);
        else setOwn(info.metadata, mk, mv);
      }
      continue;
    }
    const where = { toString: () => `Tensor ${quote(key)}` }; // built only when an error needs it
    if (!isObj(v)) { err(`${where} is ${describe(v)}, not an object with dtype, shape and data_offsets.`); continue; }
    let ok = true;

    const dt = v.entries.get('dtype');
    let dtype: [string, number] | undefined;
    if (dt === undefined) { err(`${where} has no dtype.`); ok = false; }
    else if (typeof dt !== 'string') { err(`${where} has a dtype that is ${describe(dt)}, not a string.`); ok = false; }
    else if (!Object.prototype.hasOwnProperty.call(DTYPES, dt)) { err(`${where} has unknown dtype ${quote(dt)}.`); ok = false; }
    else dtype = DTYPES[dt];

    const sh = v.entries.get('shape');
    const shape: number[] = [];
    const shapeRaw: string[] = [];
    if (sh === undefined) { err(`${where} has no shape.`); ok = false; }
    else if (!Array.isArray(sh)) { err(`${where} has a shape that is ${describe(sh)}, not an array.`); ok = false; }
    else {
      for (const d of sh) {
        const u = asUsize(d);
        if (u === undefined) { err(`${where} has shape entry ${describe(d)}; dimensions must be non-negative integers.`); ok = false; break; }
        shape.push(u);
        shapeRaw.push((d as JNum).raw);
      }
    }

    const off = v.entries.get('data_offsets');
    let begin = 0, end = 0;
    if (off === undefined) { err(`${where} has no data_offsets.`); ok = false; }
    else if (!Array.isArray(off) || off.length !== 2) { err(`${where} has data_offsets that are not a [begin, end] pair.`); ok = false; }
    else {
      const b = asUsize(off[0]), e = asUsize(off[1]);
      if (b === undefined || e === undefined) { err(`${where} has data_offsets that are not non-negative integers.`); ok = false; }
      else if (b > e) { err(`${where} has data_offsets [${b}, ${e}] with begin after end.`); ok = false; }
      else { begin = b; end = e; spans.push({ name: key, begin, end }); }
    }
    if (!ok || !dtype) continue;

    let numel = 1;
    for (const d of shape) numel *= d;
    let expected = (numel * dtype[1]) / 8;
    if (!Number.isSafeInteger(numel * dtype[1])) {
      // exact arithmetic only for absurd shapes: the reference rejects an element count past 2^64
      let big = 1n;
      for (const r of shapeRaw) big *= BigInt(r);
      if (big * BigInt(dtype[1]) / 8n > U64_MAX) { err(`${where} has a shape whose byte count overflows 64 bits.`); continue; }
      expected = Number(big * BigInt(dtype[1]) / 8n);
    } else if (!Number.isInteger(expected)) { err(`${where} does not fill a whole number of bytes.`); continue; }
    if (expected !== end - begin) {
      err(`${where} has shape [${shape.join(', ')}] and dtype ${dtype[0]}, which need ${expected} bytes, but its data_offsets cover ${end - begin}.`);
      continue;
    }
    info.tensors.push({
      name: key, dtype: dtype[0], shape, bytes: expected, offset: dataStart + begin,
    });
  }

  // Coverage: sorted by begin, each tensor must start where the previous one ended, from 0 to the end.
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev = '';
  for (const s of spans) {
    if (s.end > dataLen) err(`Tensor ${quote(s.name)} data [${s.begin}, ${s.end}) lies beyond the data section (${dataLen} bytes).`);
    if (s.begin > cursor) {
      err(prev ? `There is a gap of ${s.begin - cursor} bytes between tensor ${quote(prev)} and tensor ${quote(s.name)}.`
        : `The first tensor ${quote(s.name)} starts at byte ${s.begin} of the data section, not at 0.`);
    } else if (s.begin < cursor) {
      err(`Tensor ${quote(s.name)} overlaps tensor ${quote(prev)} (it starts at ${s.begin}, before ${cursor}).`);
    }
    if (s.end > cursor) { cursor = s.end; prev = s.name; }
  }
  if (cursor < dataLen) {
    err(`${dataLen - cursor} trailing bytes follow the last tensor's data; the data section must end where the last tensor does.`);
  }
  info.tensors.sort((a, b) => (a.offset ?? 0) - (b.offset ?? 0));
  return finish();
}

// ---- the scan ---------------------------------------------------------------------------------------------------

export function readSafetensors(ctx: ScanContext, src: ByteSource): void {
  const rep = ctx.report;
  rep.format = 'safetensors';
  const info = inspectSafetensors(src);
  rep.formatDetail = `safetensors, header ${info.headerSize} bytes`;
  rep.tensors = info.tensors.slice(0, ctx.opts.maxTensors ?? 1_000_000);
  rep.tensorsTruncated = info.tensors.length > rep.tensors.length || undefined;
  rep.metadata = { ...info.metadata };
  for (const e of info.errors) add(ctx, 'SW020', e, { severity: 'invalid' });
}
