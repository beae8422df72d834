// GGUF (llama.cpp / ggml): "GGUF", version, tensor and key/value counts, the key/value metadata, the
// tensor table, then the aligned data section. Versions 1 (32-bit counts and lengths) to 3. Everything is
// read lazily through a small chunked cursor and every declared count or length is checked against the
// bytes that remain before anything is kept, so a hostile header cannot make us allocate.
import type { TensorInfo } from '../types';
import type { ByteSource } from '../source';
import { scanChatTemplate } from '../chatTemplateRisk';
import { add, type ScanContext } from './context';

const MAX_ERRORS = 50;
const MAX_META_STRING = 2000;      // metadata values are truncated for display
const ARRAY_ITEMS_SHOWN = 8;       // arrays up to this length show their items
const MAX_DIMS = 4;                // GGML_MAX_DIMS
const MAX_NAME = 63;               // GGML_MAX_NAME - 1
const FIRST_CHUNK = 4096;         // chunks start small (most headers are small) and double
const CHUNK = 1 << 20;

export interface GgufInfo {
  valid: boolean;
  errors: string[];
  version: number;
  alignment: number;
  tensors: TensorInfo[];
  metadata: Record<string, string>;
  chatTemplates: { key: string; value: string }[];
  templateFindings: string[];
  /** absolute offset of the data section (0 when the header could not be read that far) */
  dataOffset: number;
}

/** ggml type id → [name, block size (elements), bytes per block]. Ids 4, 5, 31–33, 36–38 were removed. */
export const GGML_TYPES: ReadonlyMap<number, readonly [string, number, number]> = new Map([
  [0, ['F32', 1, 4]], [1, ['F16', 1, 2]], [2, ['Q4_0', 32, 18]], [3, ['Q4_1', 32, 20]],
  [6, ['Q5_0', 32, 22]], [7, ['Q5_1', 32, 24]], [8, ['Q8_0', 32, 34]], [9, ['Q8_1', 32, 36]],
  [10, ['Q2_K', 256, 84]], [11, ['Q3_K', 256, 110]], [12, ['Q4_K', 256, 144]], [13, ['Q5_K', 256, 176]],
  [14, ['Q6_K', 256, 210]], [15, ['Q8_K', 256, 292]], [16, ['IQ2_XXS', 256, 66]], [17, ['IQ2_XS', 256, 74]],
  [18, ['IQ3_XXS', 256, 98]], [19, ['IQ1_S', 256, 50]], [20, ['IQ4_NL', 32, 18]], [21, ['IQ3_S', 256, 110]],
  [22, ['IQ2_S', 256, 82]], [23, ['IQ4_XS', 256, 136]], [24, ['I8', 1, 1]], [25, ['I16', 1, 2]],
  [26, ['I32', 1, 4]], [27, ['I64', 1, 8]], [28, ['F64', 1, 8]], [29, ['IQ1_M', 256, 56]],
  [30, ['BF16', 1, 2]], [34, ['TQ1_0', 256, 54]], [35, ['TQ2_0', 256, 66]], [39, ['MXFP4', 32, 17]],
  [40, ['NVFP4', 64, 36]], [41, ['Q1_0', 128, 18]],
] as const);

const REMOVED_TYPES: ReadonlyMap<number, string> = new Map([
  [4, 'Q4_2'], [5, 'Q4_3'], [31, 'Q4_0_4_4'], [32, 'Q4_0_4_8'], [33, 'Q4_0_8_8'],
  [36, 'IQ4_NL_4_4'], [37, 'IQ4_NL_4_8'], [38, 'IQ4_NL_8_8'],
]);

/** GGUF metadata value types: name and fixed size in bytes (0 for string/array). */
const VALUE_TYPES: readonly (readonly [string, number])[] = [
  ['uint8', 1], ['int8', 1], ['uint16', 2], ['int16', 2], ['uint32', 4], ['int32', 4], ['float32', 4],
  ['bool', 1], ['string', 0], ['array', 0], ['uint64', 8], ['int64', 8], ['float64', 8],
];
const T_STRING = 8, T_ARRAY = 9, T_UINT32 = 4;

export function looksLikeGguf(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46;
}

/** Ends the parse with a sentence for the error list. */
class Stop extends Error {}

/** Sequential reader over a ByteSource: pulls chunks of 4 KB doubling to 1 MB, never past the source's end. */
class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private bufStart = 0;
  private chunk = FIRST_CHUNK;
  private readonly dv = () => new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  constructor(private readonly src: ByteSource) {}

  get remaining(): number { return this.src.size - this.pos; }

  /** Makes `n` bytes at pos available in buf; throws Stop when the file ends first. */
  private need(n: number, what: string): number {
    if (n > this.remaining) throw new Stop(`The file ends inside the header: ${what} at byte ${this.pos} needs ${n} bytes but only ${this.remaining} remain.`);
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.length) return rel;
    this.buf = this.src.read(this.pos, Math.max(n, Math.min(this.chunk, this.remaining)));
    this.chunk = Math.min(CHUNK, this.chunk * 2);
    this.bufStart = this.pos;
    if (this.buf.length < n) throw new Stop(`The file ends inside the header at byte ${this.pos} (${what}).`);
    return 0;
  }

  u8(what: string): number { const r = this.need(1, what); this.pos += 1; return this.buf[r]; }
  u32(what: string): number { const r = this.need(4, what); this.pos += 4; return this.dv().getUint32(r, true); }
  u64(what: string): bigint { const r = this.need(8, what); this.pos += 8; return this.dv().getBigUint64(r, true); }
  /** Fixed-size scalar of metadata type t, as a display string (and a number/bigint for the ones we use). */
  scalar(t: number, what: string): { text: string; num: number | bigint | boolean } {
    const size = VALUE_TYPES[t][1];
    const r = this.need(size, what);
    this.pos += size;
    const dv = this.dv();
    switch (t) {
      case 0: return num(dv.getUint8(r));
      case 1: return num(dv.getInt8(r));
      case 2: return num(dv.getUint16(r, true));
      case 3: return num(dv.getInt16(r, true));
      case 4: return num(dv.getUint32(r, true));
      case 5: return num(dv.getInt32(r, true));
      case 6: { const v = dv.getFloat32(r, true); return { text: f32Text(v), num: v }; }
      case 7: { const v = dv.getUint8(r); return { text: v === 0 ? 'false' : 'true', num: v !== 0 }; }
      case 10: { const v = dv.getBigUint64(r, true); return { text: v.toString(), num: v }; }
      case 11: { const v = dv.getBigInt64(r, true); return { text: v.toString(), num: v }; }
      default: { const v = dv.getFloat64(r, true); return { text: String(v), num: v }; }
    }
  }
  /** Bytes [pos, pos+n) decoded as UTF-8, reading at most `keep` of them; the rest is skipped. */
  text(n: number, keep: number, what: string): string {
    if (n > this.remaining) throw new Stop(`The ${what} declares ${n} bytes at byte ${this.pos} but only ${this.remaining} remain in the file.`);
    const k = Math.min(n, keep);
    let bytes: Uint8Array;
    if (k <= CHUNK) { const r = this.need(k, what); bytes = this.buf.subarray(r, r + k); } else bytes = this.src.read(this.pos, k);
    this.pos += n;
    return new TextDecoder('utf-8').decode(bytes);
  }
  skip(n: number, what: string): void {
    if (n > this.remaining) throw new Stop(`The ${what} declares ${n} bytes at byte ${this.pos} but only ${this.remaining} remain in the file.`);
    this.pos += n;
  }
}

function num(v: number): { text: string; num: number } { return { text: String(v), num: v }; }

/** Shortest decimal that reads back as the same float32. */
function f32Text(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  for (let p = 1; p <= 9; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return String(s);
  }
  return String(v);
}

/** Keys come from the file: define them as own properties so "__proto__" is kept as data, never a prototype. */
function setOwn(o: Record<string, string>, k: string, v: string): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function clip(s: string, n = MAX_META_STRING): string { return s.length > n ? s.slice(0, n) + '…' : s; }

export function inspectGguf(src: ByteSource): GgufInfo {
  const errors: string[] = [];
  let dropped = 0;
  const err = (msg: string): void => { if (errors.length < MAX_ERRORS) errors.push(msg); else dropped++; };
  const info: GgufInfo = {
    valid: false, errors, version: 0, alignment: 32, tensors: [], metadata: {},
    chatTemplates: [], templateFindings: [], dataOffset: 0,
  };
  const finish = (): GgufInfo => {
    for (const t of info.chatTemplates) {
      for (const f of scanChatTemplate(t.value)) info.templateFindings.push(`${t.key}: ${f}`);
    }
    if (dropped > 0) errors.push(`… and ${dropped} more error${dropped === 1 ? '' : 's'}.`);
    info.valid = errors.length === 0;
    return info;
  };

  const cur = new Cursor(src);
  try {
    const magic = src.read(0, 4);
    if (!looksLikeGguf(magic)) { err('The file does not start with the GGUF magic.'); return finish(); }
    cur.pos = 4;
    const version = cur.u32('version');
    info.version = version;
    if (version === 0x03000000 || version === 0x02000000 || version === 0x01000000) {
      err(`GGUF version ${version >>> 24} in big-endian byte order is not supported.`);
      return finish();
    }
    if (version < 1 || version > 3) { err(`Unsupported GGUF version ${version} (known: 1, 2, 3).`); return finish(); }
    const wide = version >= 2;
    const count = (what: string): number => {
      const v = wide ? cur.u64(what) : BigInt(cur.u32(what));
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
    };
    const str = (what: string, keep: number): string => cur.text(count(`${what} length`), keep, what);

    const nTensors = count('tensor count');
    const nKv = count('metadata count');
    // Each kv needs at least a key length, a type and one byte; each tensor info at least ~24 bytes.
    const lenSize = wide ? 8 : 4;
    if (nKv > cur.remaining / (lenSize + 5)) err(`The header declares ${nKv} metadata entries, more than the file can hold.`);
    if (nTensors > cur.remaining / (lenSize + 4 + 4 + 8)) err(`The header declares ${nTensors} tensors, more than the file can hold.`);
    if (errors.length) return finish();

    // --- metadata ---
    const seenKeys = new Set<string>();
    let alignment = 32;
    for (let k = 0; k < nKv; k++) {
      const key = str(`metadata key #${k}`, 1 << 16);
      const t = cur.u32(`type of ${JSON.stringify(key)}`);
      if (seenKeys.has(key)) err(`Metadata key ${JSON.stringify(clip(key, 200))} appears more than once.`);
      seenKeys.add(key);
      if (t >= VALUE_TYPES.length) { err(`Metadata ${JSON.stringify(clip(key, 200))} has unknown value type ${t}.`); return finish(); }
      const isTemplate = key === 'tokenizer.chat_template' || key.startsWith('tokenizer.chat_template.');
      if (t === T_STRING) {
        // chat templates are kept whole (bounded by the file) because they are scanned
        const full = str(`value of ${JSON.stringify(key)}`, isTemplate ? Number.MAX_SAFE_INTEGER : MAX_META_STRING + 1);
        if (isTemplate) info.chatTemplates.push({ key, value: full });
        setOwn(info.metadata, key, clip(full));
      } else if (t === T_ARRAY) {
        setOwn(info.metadata, key, readArray(0, key));
      } else {
        const v = cur.scalar(t, `value of ${JSON.stringify(key)}`);
        setOwn(info.metadata, key, v.text);
        if (key === 'general.alignment') {
          if (t !== T_UINT32) err(`general.alignment has type ${VALUE_TYPES[t][0]}; it must be uint32.`);
          else {
            const a = v.num as number;
            if (a === 0 || (a & (a - 1)) !== 0) err(`general.alignment ${a} is not a power of two.`);
            else alignment = a;
          }
        }
      }
      if (key === 'general.alignment' && (t === T_STRING || t === T_ARRAY)) err(`general.alignment has type ${VALUE_TYPES[t][0]}; it must be uint32.`);
      if (isTemplate && t !== T_STRING) err(`${key} has type ${VALUE_TYPES[t][0]}; a chat template must be a string.`);
    }
    info.alignment = alignment;

    // --- tensor infos ---
    const raw: { name: string; dims: bigint[]; type: number; offset: bigint; at: number }[] = [];
    const seenNames = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      const at = cur.pos;
      const name = str(`tensor #${i} name`, 1 << 12);
      const nd = cur.u32(`dimension count of tensor ${JSON.stringify(name)}`);
      if (nd > MAX_DIMS) { err(`Tensor ${JSON.stringify(clip(name, 200))} has ${nd} dimensions; ggml allows at most ${MAX_DIMS}.`); return finish(); }
      const dims: bigint[] = [];
      for (let d = 0; d < nd; d++) dims.push(wide ? cur.u64('tensor dimension') : BigInt(cur.u32('tensor dimension')));
      const type = cur.u32(`type of tensor ${JSON.stringify(name)}`);
      const offset = cur.u64(`offset of tensor ${JSON.stringify(name)}`);
      if (name.length > MAX_NAME) err(`Tensor name ${JSON.stringify(clip(name, 200))} is longer than ${MAX_NAME} characters.`);
      if (seenNames.has(name)) err(`Tensor name ${JSON.stringify(clip(name, 200))} appears more than once.`);
      seenNames.add(name);
      raw.push({ name, dims, type, offset, at });
    }

    const dataStart = Math.ceil(cur.pos / alignment) * alignment;
    info.dataOffset = dataStart;
    if (raw.length > 0 && dataStart > src.size) err(`The data section would start at byte ${dataStart}, past the end of the file.`);
    const dataLen = BigInt(Math.max(0, src.size - dataStart));
    let expected = 0n; // llama.cpp requires tensors packed in order, each padded to the alignment
    for (const r of raw) {
      const where = `Tensor ${JSON.stringify(clip(r.name, 200))}`;
      const tt = GGML_TYPES.get(r.type);
      if (!tt) {
        err(REMOVED_TYPES.has(r.type) ? `${where} uses ggml type ${r.type} (${REMOVED_TYPES.get(r.type)}), which was removed from GGUF.`
          : `${where} has unknown ggml type ${r.type}.`);
        continue;
      }
      const [tname, blck, tsize] = tt;
      let numel = 1n;
      let bad = false;
      for (const d of r.dims) {
        if (d > 0x7fffffffffffffffn) { err(`${where} has a negative dimension.`); bad = true; break; }
        numel *= d;
      }
      if (bad) continue;
      if (numel > 0x7fffffffffffffffn) { err(`${where} has more elements than fit in 64 bits.`); continue; }
      const ne0 = r.dims.length > 0 ? r.dims[0] : 1n;
      if (ne0 % BigInt(blck) !== 0n) { err(`${where} has first dimension ${ne0}, not a multiple of the ${tname} block size ${blck}.`); continue; }
      const bytes = (numel / BigInt(blck)) * BigInt(tsize);
      const al = BigInt(alignment);
      if (r.offset % al !== 0n) err(`${where} data offset ${r.offset} is not a multiple of the alignment ${alignment}.`);
      else if (r.offset !== expected) err(`${where} data offset is ${r.offset}, expected ${expected}; llama.cpp requires tensors packed in table order.`);
      if (r.offset + bytes > dataLen) err(`${where} data [${r.offset}, ${r.offset + bytes}) lies beyond the end of the file (the data section has ${dataLen} bytes).`);
      expected = r.offset + ((bytes + al - 1n) / al) * al;
      info.tensors.push({
        name: r.name, dtype: tname, shape: r.dims.map(Number), bytes: Number(bytes), offset: dataStart + Number(r.offset),
      });
    }
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    err(e.message);
  }
  return finish();

  /** Reads an array value; returns its summary. Nested arrays are walked but summarised by type only. */
  function readArray(depth: number, key: string): string {
    const et = cur.u32(`array element type of ${JSON.stringify(key)}`);
    const wide = info.version >= 2;
    const nBig = wide ? cur.u64(`array length of ${JSON.stringify(key)}`) : BigInt(cur.u32(`array length of ${JSON.stringify(key)}`));
    if (et >= VALUE_TYPES.length) throw new Stop(`Metadata ${JSON.stringify(clip(key, 200))} is an array of unknown value type ${et}.`);
    const [tname, tsize] = VALUE_TYPES[et];
    const lenSize = wide ? 8 : 4;
    const minItem = tsize > 0 ? tsize : et === T_STRING ? lenSize : 4 + lenSize;
    if (nBig * BigInt(minItem) > BigInt(cur.remaining)) {
      throw new Stop(`Metadata ${JSON.stringify(clip(key, 200))} declares ${nBig} ${tname} items, more than the ${cur.remaining} remaining bytes can hold.`);
    }
    const n = Number(nBig);
    const show = n <= ARRAY_ITEMS_SHOWN;
    const items: string[] = [];
    if (tsize > 0) {
      if (show) for (let i = 0; i < n; i++) items.push(cur.scalar(et, 'array item').text);
      else cur.skip(n * tsize, `array ${JSON.stringify(key)}`);
    } else if (et === T_STRING) {
      for (let i = 0; i < n; i++) {
        const len = wide ? cur.u64('string length') : BigInt(cur.u32('string length'));
        const ln = len > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(len);
        if (show) items.push(JSON.stringify(cur.text(ln, 200, 'array string')));
        else cur.skip(ln, 'array string');
      }
    } else {
      if (depth >= 8) throw new Stop(`Metadata ${JSON.stringify(clip(key, 200))} nests arrays more than 8 levels deep.`);
      for (let i = 0; i < n; i++) {
        const s = readArray(depth + 1, key);
        if (show) items.push(s);
      }
    }
    const head = `[${tname} × ${n}]`;
    return clip(show && n > 0 ? `${head} ${items.join(', ')}` : head);
  }
}

// ---- the scan ---------------------------------------------------------------------------------------------------

export function readGguf(ctx: ScanContext, src: ByteSource): void {
  const rep = ctx.report;
  rep.format = 'gguf';
  const info = inspectGguf(src);
  rep.formatDetail = `GGUF v${info.version}`;
  rep.tensors = info.tensors.slice(0, ctx.opts.maxTensors ?? 1_000_000);
  rep.metadata = { ...info.metadata };
  for (const e of info.errors) add(ctx, 'SW021', e, { severity: 'invalid' });
  for (const f of info.templateFindings) add(ctx, 'SW022', f, { severity: 'dangerous' });
}
