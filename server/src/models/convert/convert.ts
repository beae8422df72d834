// Converts a PyTorch checkpoint (zip or legacy format) to .safetensors without executing it: the scanner's
// symbolic pickle run gives the tensor inventory (only the allowlisted rebuild calls are interpreted), and
// the bytes are copied from the storages in bounded chunks, materialising strided views row by row.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { displayName, scanModelFileDetailed } from '../scan';
import { readZipDirectory, readMember } from '../formats/zipDirectory';
import { FileSource } from '../source';
import { ExtractedTensor, numel, storageExtent, withPersistedStorages } from '../pickle/tensors';
import { PyList, asInt, asText } from '../pickle/values';
import { MODEL_RULE_BY_ID } from '../rules';
import type { Finding, ModelReport } from '../types';
import { readStructure, STRUCTURE_KEY, type ArrayBytes, type CheckpointStructure, type TreeNode } from './structure';
import type { PickleRun } from '../pickle/machine';

export interface ConvertOptions {
  /** Replace an existing output file (otherwise the conversion refuses). */
  overwrite?: boolean;
  /** Bytes done / total: writing and verification each count once, so total is twice the data size. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** fsync the output before it is renamed into place (crash-durable; slower). The input is never modified,
   *  so without it a crash can at worst leave an output that fails validation, and converting again fixes it. */
  durable?: boolean;
  /** Keep the whole checkpoint: every tensor under its dotted path (no unwrapping), numpy arrays as tensors, and
   *  the loaded object's structure (every other value) in __metadata__["safe_weights.structure"], so code can
   *  rebuild what torch.load returned. Refused when a value cannot be rebuilt without its class's code. */
  structure?: boolean;
}

export interface ConvertResult {
  tensors: number;
  bytes: number;
  /** Names dropped because they alias a kept tensor (tied weights); also in __metadata__ as removed → kept. */
  removedAliases: string[];
  /** Tensor names left out after unwrapping a container such as state_dict (optimizer state etc.). */
  dropped: string[];
  /** Values that are not in the output (non-tensor values; numpy arrays it cannot store), "path (what)", at most
   *  50 listed; leftOutCount counts them all. Empty with `structure` (they are in the metadata). */
  leftOut: string[];
  leftOutCount: number;
  /** The structure was written to __metadata__ (opts.structure). */
  structure: boolean;
  output: string;
}

/** The input cannot be converted safely (unsafe globals, unsupported format or dtype): nothing was written. */
export class ConvertRefused extends Error {}
export class ConvertCancelled extends Error {}

/** torch dtype → safetensors dtype. complex128 and quantized types have no safetensors equivalent. */
const ST_DTYPE: Record<string, string> = {
  float64: 'F64', float32: 'F32', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16',
  int8: 'I8', uint8: 'U8', bool: 'BOOL', complex64: 'C64', uint16: 'U16', uint32: 'U32', uint64: 'U64',
  float8_e5m2: 'F8_E5M2', float8_e4m3fn: 'F8_E4M3', float8_e8m0fnu: 'F8_E8M0',
};

/**
 * I/O block size, and the storage extent up to which a strided view is gathered from one in-memory read.
 * Exported so tests can shrink both and drive every multi-chunk path with small files.
 */
export const tuning: {
  chunk: number; gatherLimit: number;
  // Fault-injection hooks for the tests of each verification step (undefined outside tests):
  /** Runs after each block is written, before it is read back (a faulty write; the block read-back catches it). */
  afterWrite?: (fd: number, offset: number, length: number) => void;
  /** Maps each chunk of a tensor's bytes between reading and writing (a reader that yields the wrong number of
   *  bytes; the per-tensor byte count catches it). */
  tensorChunk?: (name: string, chunk: Uint8Array) => Uint8Array;
  /** Runs after the last block is written and read back, before the header and size are re-read (a write that
   *  lands later or elsewhere; the header re-check catches it). */
  beforeHeaderCheck?: (fd: number, headerLength: number) => void;
} = { chunk: 2 << 20, gatherLimit: 64 << 20 };
/** Containers HF-style conversion unwraps when every tensor (or the only tensors) live under them. */
const WRAPPERS = ['state_dict', 'model_state_dict', 'model', 'module'];

interface Planned {
  name: string;
  t: ExtractedTensor;
  stDtype: string;
  bytes: number;
  begin: number;
}

/** Where one storage's bytes are: a window of the input file, or (deflated zip members) a buffer. */
interface StorageData { offset: number; size: number; buffer?: Uint8Array }

export async function convertToSafetensors(input: string, output: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  const inAbs = path.resolve(input), outAbs = path.resolve(output);
  if (inAbs === outAbs) throw new ConvertRefused('the output path is the input file');
  if (!opts.overwrite && fs.existsSync(outAbs)) throw new ConvertRefused(`${output} already exists and was not replaced`);
  checkAborted(opts.signal);

  const detail = await scanModelFileDetailed(inAbs, { sha256: false });
  const rep = detail.report;
  const refusal = refusalReason(rep);
  if (refusal) throw new ConvertRefused(`refusing to convert ${input}: ${refusal}`);
  if (rep.format !== 'pytorch-zip' && rep.format !== 'pytorch-legacy' && rep.format !== 'pytorch-legacy-tar') {
    throw new ConvertRefused(`cannot convert ${rep.format} files: only PyTorch checkpoints (zip, legacy or legacy tar format) are supported`);
  }
  if (rep.tensorsTruncated) throw new ConvertRefused('the checkpoint holds more tensors than the inventory limit');

  const main = mainRun(detail);
  const structure = main ? readStructure(main, new Map(detail.tensors.map((t) => [t.name, t]))) : undefined;
  if (opts.structure && !structure?.tree) {
    const why = structure ? structure.unsupported.slice(0, 5).join('; ') + (structure.unsupportedCount > 5 ? `; and ${structure.unsupportedCount - 5} more` : '') : 'the checkpoint has no main pickle';
    throw new ConvertRefused(`cannot keep the whole checkpoint ${input}: ${why}`);
  }
  const dense = denseTensors(detail.tensors);
  const picked = opts.structure
    ? { selected: dense.map((t) => ({ name: storedName(t.name), t })), dropped: [] as string[] }
    : unwrap(dense);
  const { dropped } = picked;
  // a tensors-only conversion leaves out every other value, and the objects whose tensors it takes (their code)
  const leftOut = opts.structure ? [] : [...(structure?.unsupported ?? []), ...(structure?.nonTensors ?? [])];
  let leftOutCount = opts.structure ? 0 : (structure?.unsupportedCount ?? 0) + (structure?.nonTensorCount ?? 0);
  // numpy arrays have no storage: their bytes are in the pickle stream (structure.arrays)
  const arrays = new Map<string, StorageData>();
  const selected: { name: string; t: ExtractedTensor }[] = [];
  const asrc = structure?.arrays.size ? FileSource.open(inAbs) : undefined;
  try { for (const s of picked.selected) {
    if (s.t.storage || s.t.kind !== 'ndarray') { selected.push(s); continue; }
    const where = structure?.arrays.get(s.t.name);
    const bytes = where && asrc ? arrayBytes(asrc, rep.format, where) : undefined;
    const need = numel(s.t.shape) * s.t.elementSize;
    if (!bytes || bytes.length < need || !ST_DTYPE[s.t.dtype]) {
      const why = !ST_DTYPE[s.t.dtype] ? `numpy dtype ${s.t.dtype}, which safetensors cannot store` : 'its data could not be located';
      if (opts.structure) throw new ConvertRefused(`numpy array "${s.t.name}": ${why}`);
      leftOut.push(`${s.t.name} (a numpy array: ${why})`);
      leftOutCount++;
      continue;
    }
    const key = `\u0000ndarray:${s.t.name}`;
    arrays.set(key, { offset: 0, size: need, buffer: bytes.subarray(0, need) });
    selected.push({ name: s.name, t: { ...s.t, storageOffset: 0, stride: contiguous(s.t.shape), storage: { key, dtype: s.t.dtype, elementSize: s.t.elementSize, numel: numel(s.t.shape), location: 'cpu' } } });
  } } finally { asrc?.close(); }
  if (selected.length === 0) throw new ConvertRefused(`${input} holds no tensors to convert`);
  for (const { t } of selected) {
    if (!ST_DTYPE[t.dtype]) throw new ConvertRefused(`tensor "${t.name}" has dtype ${t.dtype}, which safetensors cannot store`);
    if (!t.storage) throw new ConvertRefused(`tensor "${t.name}" has no storage`);
  }

  const src = FileSource.open(inAbs);
  const rfd = fs.openSync(inAbs, 'r');
  let tmp: string | undefined;
  let fd: number | undefined;
  try {
    const inFile = selected.map((s) => s.t).filter((t) => !arrays.has(t.storage!.key));
    const storages = rep.format === 'pytorch-zip' ? await zipStorages(src, inFile)
      : rep.format === 'pytorch-legacy-tar' ? tarStorages(detail, inFile)
        : legacyStorages(src, detail, inFile);
    for (const [k, v] of arrays) storages.set(k, v);
    const bigEndian = rep.format === 'pytorch-zip' && (rep.metadata['torch.byteorder'] ?? 'little') === 'big';

    // Tied weights: the same view of the same storage under several names. safetensors forbids aliasing,
    // so keep the first name in sorted order and record the others, like HF's convert script.
    const metadata: Record<string, string> = { format: 'pt' };
    const removedAliases: string[] = [];
    const byView = new Map<string, string>();
    const plan: Planned[] = [];
    for (const s of [...selected].sort((a, b) => cmp(a.name, b.name))) {
      const t = s.t;
      const viewKey = JSON.stringify([t.storage!.key, t.dtype, t.storageOffset, t.shape, t.stride]);
      const kept = numel(t.shape) > 0 ? byView.get(viewKey) : undefined;
      if (kept !== undefined) { metadata[s.name] = kept; removedAliases.push(s.name); continue; }
      byView.set(viewKey, s.name);
      checkBounds(t, storages.get(t.storage!.key)!);
      plan.push({ name: s.name, t, stDtype: ST_DTYPE[t.dtype], bytes: numel(t.shape) * t.elementSize, begin: 0 });
    }
    if (opts.structure) {
      // tensor leaves name the stored tensors (an alias names the tensor it was merged into)
      const stored = (row: string) => { const n = storedName(row); return metadata[n] ?? n; };
      if (STRUCTURE_KEY in metadata) throw new ConvertRefused(`a tensor is named ${STRUCTURE_KEY}, the metadata key of the structure`);
      metadata[STRUCTURE_KEY] = JSON.stringify(renameLeaves(structure!.tree!, stored));
    }
    // Data order: largest alignment first, then name; offsets are contiguous.
    plan.sort((a, b) => b.t.elementSize - a.t.elementSize || cmp(a.name, b.name));
    let off = 0;
    for (const p of plan) { p.begin = off; off += p.bytes; }
    const dataBytes = off;
    const header = headerBytes(plan, metadata);

    const total = (header.length + dataBytes) * 2;
    let done = 0;
    const progress = (n: number) => { done += n; opts.onProgress?.(done, total); };
    tmp = path.join(path.dirname(outAbs), `.${path.basename(outAbs)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
    fd = fs.openSync(tmp, 'wx+', 0o644);
    // every block is read back from the output right after it is written and compared with the source
    // bytes it was written from; then the header is re-read and checked against the plan
    const w = new VerifyingWriter(fd, progress);
    const scratch = Buffer.allocUnsafe(tuning.chunk);   // one read buffer for every tensor (fresh pages are not free)
    w.write(header);
    let tick = 0;
    for (const p of plan) {
      const before = w.written;
      for (const chunk of tensorChunks(src, rfd, storages.get(p.t.storage!.key)!, p.t, bigEndian, scratch)) {
        w.write(tuning.tensorChunk ? tuning.tensorChunk(p.name, chunk) : chunk);
        if (++tick % 8 === 0 || chunk.length >= tuning.chunk) { await yieldLoop(); checkAborted(opts.signal); }
      }
      if (w.written - before !== p.bytes) throw new Error(`verification failed: "${p.name}" has ${w.written - before} bytes, the plan ${p.bytes}`);
    }
    w.flush();
    tuning.beforeHeaderCheck?.(fd, header.length);
    verifyHeader(fd, plan, header.length, dataBytes, metadata);
    if (opts.durable) fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;

    checkAborted(opts.signal);
    publish(tmp, outAbs, !!opts.overwrite);
    tmp = undefined;
    return { tensors: plan.length, bytes: dataBytes, removedAliases, dropped, leftOut: leftOut.slice(0, 50), leftOutCount, structure: !!opts.structure, output: outAbs };
  } finally {
    src.close();
    fs.closeSync(rfd);
    if (fd !== undefined) try { fs.closeSync(fd); } catch { /* already closed */ }
    if (tmp) fs.rmSync(tmp, { force: true });
  }
}

/** Rules whose findings say two readers of the file see different content (zip local vs central records,
 *  duplicate members, polyglots, any "...-disagreement" rule): whichever reading is converted, the other is not. */
const DISAGREEMENT_RULES = new Set(['SW010', 'SW011', 'SW012']);

export function isReadingDisagreement(f: Pick<Finding, 'rule'>): boolean {
  if (DISAGREEMENT_RULES.has(f.rule)) return true;
  return /disagree/i.test(MODEL_RULE_BY_ID.get(f.rule)?.name ?? '');
}

/**
 * Why the scan's report forbids a conversion (undefined: it may go ahead). Only files the scan rates safe are
 * converted, and never one whose readings disagree, whatever that finding's severity: a .safetensors copy of
 * one reading would vouch for a file other loaders read differently.
 */
export function refusalReason(rep: ModelReport): string | undefined {
  const split = rep.findings.filter(isReadingDisagreement);
  if (split.length) {
    const f = split[0], name = MODEL_RULE_BY_ID.get(f.rule)?.name;
    const more = split.length > 1 ? `, and ${split.length - 1} more such finding${split.length > 2 ? 's' : ''}` : '';
    return `its readings disagree (${f.rule}${name ? ` ${name}` : ''}: ${f.message}${more}): loaders would read different content, `
      + 'so no single conversion stands for the file';
  }
  // caution only for globals outside torch's allowlist that are not known to be harmful (classes that are
  // instantiated, vetted calls): nothing of the file runs in a conversion, and only tensors (and plain values) are written
  const globalsOnly = rep.verdict === 'caution' && rep.findings.every((f) => f.severity === 'info' || f.rule === 'SW002');
  if (rep.verdict !== 'safe' && !globalsOnly) {
    const badRefs = rep.globals.filter((g) => g.severity !== 'safe');
    const bad = [...new Set(badRefs.map((g) => displayName(g.module, g.name)))];
    const verb = badRefs.some((g) => g.called) ? 'calls' : 'imports';
    const worst = rep.findings.find((f) => f.severity === rep.verdict) ?? rep.findings.find((f) => f.severity !== 'info');
    const why = bad.length ? `loading it ${verb} ${bad.slice(0, 8).join(', ')}${bad.length > 8 ? ` and ${bad.length - 8} more` : ''}`
      : worst ? `${worst.rule}: ${worst.message}` : rep.summary;
    return `the scan rates the file ${rep.verdict} (${why})${rep.verdict === 'caution' ? '; only files the scan rates safe are converted' : ''}`;
  }
  if (rep.findingsOmitted) {
    return `the scan listed ${rep.findings.length} findings and left ${rep.findingsOmitted} out, so it cannot show that every reader sees the same content`;
  }
  return undefined;
}

function cmp(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

/** The safetensors name of a tensor row: its dotted path ("tensor" for a tensor that is the whole file). */
function storedName(row: string): string { return row === '' ? 'tensor' : row; }

function contiguous(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
  return s;
}

/** The pickle whose value torch.load returns: data.pkl (zip), the fourth pickle (legacy), the 'pickle' member (tar). */
export function mainRun(detail: Awaited<ReturnType<typeof scanModelFileDetailed>>): PickleRun | undefined {
  const rep = detail.report;
  if (rep.format === 'pytorch-zip') return detail.runs.find((r) => r.torchLoads && r.member?.endsWith('/data.pkl'))?.run;
  if (rep.format === 'pytorch-legacy') return detail.runs.filter((r) => r.torchLoads && r.member === undefined)[3]?.run;
  if (rep.format === 'pytorch-legacy-tar') return detail.runs.find((r) => r.torchLoads && r.member === 'pickle')?.run;
  return undefined;
}

/** The rows a conversion can write: a sparse tensor's is not one (the structure says why it is left out:
 *  safetensors holds dense tensors only). */
function denseTensors(tensors: ExtractedTensor[]): ExtractedTensor[] { return tensors.filter((t) => t.kind !== 'sparse'); }

/** What a tensors-only and a whole-checkpoint conversion would do, without writing anything (code actions ask). */
export async function planConversion(input: string, allowGlobals?: readonly string[]): Promise<{ refusal?: string; shape?: 'flat' | 'nested'; structure?: CheckpointStructure }> {
  const detail = await scanModelFileDetailed(path.resolve(input), { sha256: false, allowGlobals });
  try {
    const rep = detail.report;
    const refusal = refusalReason(rep)
      ?? (rep.format !== 'pytorch-zip' && rep.format !== 'pytorch-legacy' && rep.format !== 'pytorch-legacy-tar' ? `${rep.format} files are not converted` : undefined)
      ?? (rep.tensorsTruncated ? 'the checkpoint holds more tensors than the inventory limit' : undefined)
      ?? (denseTensors(detail.tensors).length === 0 ? 'it holds no tensors' : undefined);
    if (refusal) return { refusal };
    const main = mainRun(detail);
    const structure = main ? readStructure(main, new Map(detail.tensors.map((t) => [t.name, t]))) : undefined;
    if (!structure?.tree) return { structure };
    return { shape: isFlatStateDict(structure.tree) ? 'flat' : 'nested', structure };
  } finally { for (const r of detail.runs) r.run.release?.(); }
}

/** A dict (or OrderedDict without attributes... or with state_dict()'s _metadata) of str -> plain tensor:
 *  safetensors.torch.load_file returns the same mapping. */
export function isFlatStateDict(tree: TreeNode): boolean {
  if (!Array.isArray(tree) || (tree[0] !== 'd' && tree[0] !== 'od')) return false;
  const entries = tree[1] as TreeNode[];
  if (!entries.length) return false;
  return entries.every((e) => {
    const [k, v] = e as [TreeNode, TreeNode];
    return typeof k === 'string' && Array.isArray(v) && v[0] === 't' && v.length === 2;
  });
}

/** The tree with each tensor leaf's row name replaced by its stored name. */
function renameLeaves(tree: TreeNode, stored: (row: string) => string): TreeNode {
  const go = (n: TreeNode): TreeNode => {
    if (!Array.isArray(n)) return n;
    const tag = n[0];
    switch (tag) {
      case 't': case 'p': case 'np': return [tag, stored(n[1] as string), ...n.slice(2)];
      case 'tu': case 'l': case 'set': case 'fset': return [tag, (n[1] as TreeNode[]).map(go)];
      case 'd': case 'od': {
        const out: TreeNode[] = [tag, (n[1] as TreeNode[]).map((e) => (e as TreeNode[]).map(go))];
        if (n.length > 2) out.push(Object.fromEntries(Object.entries(n[2] as Record<string, TreeNode>).map(([k, v]) => [k, go(v)])));
        return out;
      }
      case 'ns': return [tag, (n[1] as TreeNode[]).map((e) => [(e as TreeNode[])[0], go((e as TreeNode[])[1])])];
      default: return n;
    }
  };
  return go(tree);
}

/** A numpy array's bytes: kept by the scan, or read from the main pickle (a zip member's window of the file). */
function arrayBytes(src: FileSource, format: string, at: ArrayBytes): Uint8Array | undefined {
  if ('bytes' in at) return at.bytes;
  if (format !== 'pytorch-zip' || at.length > tuning.gatherLimit * 4) return undefined;
  const dir = readZipDirectory(src);
  try {
    const root = dir.root();
    const i = dir.findInRoot('/', 'data.pkl');
    if (i < 0) return undefined;
    const e = dir.entry(i);
    if (e.method !== 0 || e.dataOffset < 0 || e.name !== `${root}/data.pkl`) return undefined;
    const b = src.read(e.dataOffset + at.streamOffset, at.length);
    if (b.length !== at.length) return undefined;
    return at.latin1 ? Buffer.from(Buffer.from(b).toString('utf8'), 'latin1') : b;
  } finally { dir.release(); }
}

function checkAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new ConvertCancelled('conversion cancelled');
}

function yieldLoop(): Promise<void> { return new Promise((r) => setImmediate(r)); }

/**
 * Chooses the tensors to write and their names. A checkpoint like {"state_dict": {...}, "epoch": 3} is
 * unwrapped to the state dict (HF's convert does `loaded = loaded["state_dict"]`); other tensors outside it
 * are dropped and reported.
 */
export function unwrap(tensors: ExtractedTensor[]): { selected: { name: string; t: ExtractedTensor }[]; dropped: string[] } {
  for (const w of WRAPPERS) {
    const inside = tensors.filter((t) => t.name.startsWith(`${w}.`));
    if (inside.length === 0) continue;
    // state_dict wins even next to other tensors; the looser names only when they hold every tensor
    if (w !== 'state_dict' && w !== 'model_state_dict' && inside.length !== tensors.length) continue;
    return {
      selected: inside.map((t) => ({ name: t.name.slice(w.length + 1), t })),
      dropped: tensors.filter((t) => !t.name.startsWith(`${w}.`)).map((t) => t.name),
    };
  }
  return { selected: tensors.map((t) => ({ name: t.name === '' ? 'tensor' : t.name, t })), dropped: [] };
}

function checkBounds(t: ExtractedTensor, s: StorageData): void {
  if (t.stride.some((x) => x < 0) || t.storageOffset < 0) throw new ConvertRefused(`tensor "${t.name}" has a negative stride or offset`);
  const need = storageExtent(t) * t.elementSize;
  if (!Number.isSafeInteger(need) || need > s.size) {
    throw new ConvertRefused(`tensor "${t.name}" needs ${need} bytes of storage ${t.storage!.key}, which holds ${s.size}`);
  }
}

function headerBytes(plan: Planned[], metadata: Record<string, string>): Buffer {
  const obj: Record<string, unknown> = { __metadata__: metadata };
  for (const p of plan) obj[p.name] = { dtype: p.stDtype, shape: p.t.shape, data_offsets: [p.begin, p.begin + p.bytes] };
  let json = Buffer.from(JSON.stringify(obj), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length), 0);
  return Buffer.concat([head, json]);
}

// ---- where the storages are ------------------------------------------------------------------------

async function zipStorages(src: FileSource, tensors: ExtractedTensor[]): Promise<Map<string, StorageData>> {
  const dir = readZipDirectory(src);
  const out = new Map<string, StorageData>();
  try {
    for (const t of tensors) {
      const key = t.storage!.key;
      if (out.has(key)) continue;
      const at = dir.findInRoot('/data/', key);
      if (at < 0) {
        if (storageExtent(t) === 0) { out.set(key, { offset: 0, size: 0 }); continue; }
        throw new ConvertRefused(`storage ${dir.root()}/data/${key} is missing from the archive`);
      }
      const e = dir.entry(at);
      if (e.dataOffset < 0) throw new ConvertRefused(`storage member ${e.name} cannot be located`);
      if (e.method === 0) {
        if (e.dataOffset + e.uncompressedSize > src.size) throw new ConvertRefused(`storage member ${e.name} runs past the end of the file`);
        out.set(key, { offset: e.dataOffset, size: e.uncompressedSize });
      } else {
        // torch writes members stored; a deflated one is read into memory, bounded by what the tensors need
        const need = t.storage!.numel * t.storage!.elementSize;
        if (need > tuning.gatherLimit * 4) throw new ConvertRefused(`storage member ${e.name} is compressed and too large (${need} bytes) to convert`);
        const buf = await readMember(src, e, need);
        out.set(key, { offset: 0, size: buf.length, buffer: buf });
      }
    }
  } finally { dir.release(); }
  return out;
}

/** Legacy tar format: the scan located every storage's bytes inside the tar's "storages" member. */
function tarStorages(detail: Awaited<ReturnType<typeof scanModelFileDetailed>>, tensors: ExtractedTensor[]): Map<string, StorageData> {
  const out = new Map<string, StorageData>();
  for (const t of tensors) {
    const at = detail.storageData.get(t.storage!.key);
    if (!at) throw new ConvertRefused(`storage ${t.storage!.key} of tensor "${t.name}" is missing from the tar checkpoint`);
    out.set(t.storage!.key, { offset: at.offset, size: at.size });
  }
  return out;
}

/** Legacy format: after the 5th pickle (the storage keys), each storage is a u64 LE element count and its bytes. */
function legacyStorages(src: FileSource, detail: Awaited<ReturnType<typeof scanModelFileDetailed>>, tensors: ExtractedTensor[]): Map<string, StorageData> {
  const runs = detail.runs.filter((r) => r.torchLoads && r.member === undefined).map((r) => r.run);
  const keysRun = runs[4];
  if (!keysRun || !(keysRun.value instanceof PyList)) throw new ConvertRefused('the legacy checkpoint has no storage key list');
  const elSize = new Map<string, number>();
  for (const t of tensors) elSize.set(t.storage!.key, t.storage!.elementSize);
  for (const t of detail.tensors) if (t.storage) elSize.set(t.storage.key, t.storage.elementSize);
  // storages no listed tensor uses (a sparse tensor's indices and values): torch still reads each one, sized by
  // the storage class its persistent id names
  if (runs[3]) {
    withPersistedStorages(runs[3], (named) => {
      for (let i = 0; i < named.size; i++) if (!elSize.has(named.key(i))) elSize.set(named.key(i), named.elementSize(i));
    });
  }
  const out = new Map<string, StorageData>();
  let pos = keysRun.end;
  for (const k of keysRun.value.items) {
    const key = asText(k) ?? String(asInt(k));
    const el = elSize.get(key);
    if (el === undefined) throw new ConvertRefused(`legacy storage ${key} is listed but the pickle never names it (torch.load fails on it)`);
    const hdr = src.read(pos, 8);
    if (hdr.length < 8) throw new ConvertRefused(`legacy storage ${key} is missing`);
    const n = Number(Buffer.from(hdr).readBigUInt64LE(0));
    const size = n * el;
    if (!Number.isSafeInteger(size) || pos + 8 + size > src.size) throw new ConvertRefused(`legacy storage ${key} is larger than the file`);
    out.set(key, { offset: pos + 8, size });
    pos += 8 + size;
  }
  for (const t of tensors) {
    if (!out.has(t.storage!.key)) {
      if (storageExtent(t) === 0) out.set(t.storage!.key, { offset: 0, size: 0 });
      else throw new ConvertRefused(`legacy storage ${t.storage!.key} of tensor "${t.name}" is not in the file`);
    }
  }
  return out;
}

// ---- reading tensor bytes -----------------------------------------------------------------------------

function readAt(src: FileSource, s: StorageData, offset: number, length: number): Uint8Array {
  if (s.buffer) return s.buffer.subarray(offset, offset + length);
  const b = src.read(s.offset + offset, length);
  if (b.length !== length) throw new Error(`short read at ${s.offset + offset}`);
  return b;
}

/** Reads into `into` (reused: fresh multi-MB buffers cost page faults that dominate a plain copy). */
function readInto(fd: number, s: StorageData, offset: number, into: Buffer): Buffer {
  if (s.buffer) { into.set(s.buffer.subarray(offset, offset + into.length)); return into; }
  let got = 0;
  while (got < into.length) {
    const r = fs.readSync(fd, into, got, into.length - got, s.offset + offset + got);
    if (r <= 0) throw new Error(`short read at ${s.offset + offset + got}`);
    got += r;
  }
  return into;
}

/** Element size of the byte-swap unit: complex numbers swap each real/imaginary half. */
function swapUnit(t: ExtractedTensor): number { return t.dtype.startsWith('complex') ? t.elementSize / 2 : t.elementSize; }

function toLittleEndian(b: Uint8Array, unit: number): Uint8Array {
  if (unit <= 1) return b;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  if (unit === 2) buf.swap16(); else if (unit === 4) buf.swap32(); else if (unit === 8) buf.swap64();
  else throw new Error(`cannot byte-swap ${unit}-byte elements`);
  return b;
}

/**
 * The tensor's bytes in row-major order, little-endian, in chunks of at most tuning.chunk bytes. A chunk is only
 * valid until the next one is requested (buffers are reused).
 */
export function* tensorChunks(src: FileSource, fd: number, s: StorageData, t: ExtractedTensor, bigEndian: boolean,
  scratch: Buffer = Buffer.allocUnsafe(tuning.chunk)): Generator<Uint8Array> {
  const n = numel(t.shape);
  if (n === 0) return;
  const es = t.elementSize, unit = swapUnit(t);
  const fix = (b: Uint8Array) => (bigEndian ? toLittleEndian(b, unit) : b);
  const start = t.storageOffset * es;
  // Trailing dims that are laid out contiguously form one block per "row".
  let block = 1, dim = t.shape.length;
  while (dim > 0) {
    const d = dim - 1;
    if (t.shape[d] === 1) { dim--; continue; }
    if (t.stride[d] !== block) break;
    block *= t.shape[d]; dim--;
  }
  if (dim === 0 || block === n) {
    const total = n * es;
    const buf = scratch.length >= Math.min(tuning.chunk, total) ? scratch : Buffer.allocUnsafe(Math.min(tuning.chunk, total));
    for (let o = 0; o < total; o += tuning.chunk) {
      const len = Math.min(tuning.chunk, total - o);
      yield fix(readInto(fd, s, start + o, buf.subarray(0, len)));
    }
    return;
  }
  const outer = t.shape.slice(0, dim), outerStride = t.stride.slice(0, dim);
  const blockBytes = block * es;
  const extentBytes = (storageExtent(t) - t.storageOffset) * es;
  const inMemory = extentBytes <= tuning.gatherLimit ? readAt(src, s, start, extentBytes) : undefined;
  const idx = new Array<number>(dim).fill(0);
  const rows = numel(outer);
  const rowsPerChunk = Math.max(1, Math.floor(tuning.chunk / Math.max(1, blockBytes)));
  const outBytes = Math.min(rows, rowsPerChunk) * blockBytes;
  const out = scratch.length >= outBytes ? scratch.subarray(0, outBytes) : Buffer.allocUnsafe(outBytes);
  let used = 0;
  for (let r = 0; r < rows; r++) {
    let elOff = 0;
    for (let i = 0; i < dim; i++) elOff += idx[i] * outerStride[i];
    const byteOff = elOff * es;
    if (blockBytes > tuning.chunk) {
      // huge rows: stream the row itself in chunks
      for (let o = 0; o < blockBytes; o += tuning.chunk) {
        const len = Math.min(tuning.chunk, blockBytes - o);
        yield fix(inMemory ? inMemory.slice(byteOff + o, byteOff + o + len) : readAt(src, s, start + byteOff + o, len));
      }
    } else {
      const row = inMemory ? inMemory.subarray(byteOff, byteOff + blockBytes) : readAt(src, s, start + byteOff, blockBytes);
      out.set(row, used);
      used += blockBytes;
      if (used + blockBytes > out.length) {
        yield fix(out.subarray(0, used));
        used = 0;
      }
    }
    for (let i = dim - 1; i >= 0; i--) { if (++idx[i] < outer[i]) break; idx[i] = 0; }
  }
  if (used > 0) yield fix(out.subarray(0, used));
}

// ---- writing and verifying ----------------------------------------------------------------------------

/**
 * Coalesces small writes into tuning.chunk-sized ones and reads each block back to compare it with what was
 * written (a short or misplaced write, or a file system that returns other bytes, fails the conversion).
 * Synchronous on purpose: on a busy machine each hand-off to libuv's thread pool waits for a CPU, and a
 * pipelined writer measured several times slower than this.
 */
class VerifyingWriter {
  private readonly buf = Buffer.allocUnsafe(tuning.chunk);
  private readonly back = Buffer.allocUnsafe(tuning.chunk);
  private used = 0;
  private pos = 0;
  /** Bytes accepted so far (header included). */
  written = 0;
  constructor(private readonly fd: number, private readonly progress: (n: number) => void) {}
  write(b: Uint8Array): void {
    this.written += b.length;
    if (b.length >= this.buf.length) { this.flush(); this.raw(b); return; }
    if (this.used + b.length > this.buf.length) this.flush();
    this.buf.set(b, this.used);
    this.used += b.length;
  }
  flush(): void { if (this.used) { this.raw(this.buf.subarray(0, this.used)); this.used = 0; } }
  private raw(b: Uint8Array): void {
    const at = this.pos;
    let off = 0;
    while (off < b.length) { const n = fs.writeSync(this.fd, b, off, b.length - off, this.pos); off += n; this.pos += n; }
    this.progress(b.length);
    tuning.afterWrite?.(this.fd, at, b.length);
    for (let o = 0; o < b.length; o += this.back.length) {
      const len = Math.min(this.back.length, b.length - o);
      let got = 0;
      while (got < len) {
        const r = fs.readSync(this.fd, this.back, got, len - got, at + o + got);
        if (r <= 0) break;
        got += r;
      }
      if (got !== len || Buffer.compare(this.back.subarray(0, len), b.subarray(o, o + len)) !== 0) {
        throw new Error(`verification failed: the output differs from the source at byte ${at + o} of the written file`);
      }
    }
    this.progress(b.length);
  }
}

/** Re-reads the written file's header: it must describe exactly the plan, and the size must match. */
function verifyHeader(fd: number, plan: Planned[], headerLen: number, dataBytes: number, metadata: Record<string, string>): void {
  const size = fs.fstatSync(fd).size;
  if (size !== headerLen + dataBytes) throw new Error(`verification failed: the output is ${size} bytes, expected ${headerLen + dataBytes}`);
  const head = Buffer.alloc(headerLen);
  if (fs.readSync(fd, head, 0, headerLen, 0) !== headerLen) throw new Error('verification failed: short header');
  const n = Number(head.readBigUInt64LE(0));
  if (n + 8 !== headerLen || n % 8 !== 0) throw new Error('verification failed: header size is wrong');
  const hdr = JSON.parse(head.subarray(8).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const meta = hdr.__metadata__ as unknown as Record<string, string>;
  if (JSON.stringify(meta) !== JSON.stringify(metadata)) throw new Error('verification failed: metadata differs');
  if (Object.keys(hdr).length !== plan.length + 1) throw new Error('verification failed: tensor count differs');
  for (const p of plan) {
    const e = hdr[p.name];
    if (!e || e.dtype !== p.stDtype || JSON.stringify(e.shape) !== JSON.stringify(p.t.shape)
      || e.data_offsets[0] !== p.begin || e.data_offsets[1] !== p.begin + p.bytes) {
      throw new Error(`verification failed: header entry of "${p.name}" differs`);
    }
  }
}

/** Moves the verified temp file into place; without overwrite, a file that appeared meanwhile is kept. */
function publish(tmp: string, out: string, overwrite: boolean): void {
  if (overwrite) { fs.renameSync(tmp, out); return; }
  try {
    fs.linkSync(tmp, out);   // atomic and fails if `out` exists
    fs.rmSync(tmp, { force: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new ConvertRefused(`${out} already exists and was not replaced`);
    if (fs.existsSync(out)) throw new ConvertRefused(`${out} already exists and was not replaced`);
    fs.renameSync(tmp, out);  // file systems without hard links
  }
}
