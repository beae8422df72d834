// Entry point of the model-file engine: decides the format from the first bytes (as the real loaders do) and hands
// the file to that format's module (formats/), which reads it the way each of its loaders does; then the verdict
// is built from what the modules recorded (verdict.ts). To add a format: write formats/<name>.ts (its contract is
// at the top of formats/context.ts) and add a row to FORMATS below, where the loaders would test it.
import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { ByteSource, BytesSource, FileSource, startsWith } from './source';
import { startsPickle } from './pickleStart';
import { add, hex, newContext, type ScanContext, type ScanDetail } from './formats/context';
import { readPickleFile, scanPickleReading } from './formats/pickle';
import { readZip, readZipEndFirst, scanHiddenZip } from './formats/zip';
import { readTar, isTarHeader } from './formats/tar';
import { readNpyFile, looksLikeNpy } from './formats/npy';
import { readGguf, looksLikeGguf } from './formats/gguf';
import { readSafetensors, looksLikeSafetensors, brokenSafetensorsReason } from './formats/safetensors';
import { read7z, looksLike7z } from './formats/sevenZip';
import { readCompressed, detectCompression } from './formats/compressed';
import { readMatlab, matlabHeader } from './formats/matlab';
import { readHdf5 } from './formats/keras';
import { looksLikeHdf5, findHdf5Superblock } from './formats/hdf5';
import { readOnnx, looksLikeOnnx } from './formats/onnx';
import { finalize } from './verdict';
import { renderDisassembly } from './disassembly';
import type { ModelReport, ScanOptions } from './types';
import { isHfConfigName, sniffHfConfig, scanHfConfigFile } from './hfRepo';

export type { ScanDetail, ScannedRun } from './formats/context';
export { DISASSEMBLY_LINES, DECOMPILED_CHARS, displayName, scanLimits } from './formats/context';
export { zipTuning } from './formats/zip';

const SCANNED_EXTENSIONS = new Set(['.pt', '.pth', '.ckpt', '.bin', '.pkl', '.pickle', '.joblib', '.npy', '.npz', '.safetensors', '.gguf', '.dill', '.sav', '.pkl.gz', '.mar', '.keras', '.h5', '.hdf5', '.onnx']);

/** File names the workspace scan and the CLI treat as model files (content still decides the format). */
export function isModelFileName(name: string): boolean {
  const lower = name.toLowerCase();
  if (lower.endsWith('.pkl.gz') || lower.endsWith('.joblib.gz')) return true;
  return SCANNED_EXTENSIONS.has(path.extname(lower));
}

const DEFAULT_HASH_LIMIT = 256 << 20;

export async function scanModelFile(file: string, opts: ScanOptions = {}): Promise<ModelReport> {
  // a Hugging Face repository's config.json: the report of the repository it is the root of (hfRepo.ts)
  if (isHfConfigName(file) && sniffHfConfig(file)) return scanHfConfigFile(file, { maxTensors: opts.maxTensors });
  return reportOnly(await scanModelFileDetailed(file, opts));
}

/** The report alone: the runs' value memory goes back to the scratch pool (nothing reads it again). */
function reportOnly(d: ScanDetail): ModelReport {
  for (const r of d.runs) r.run.release?.();
  return d.report;
}

export async function scanModelFileDetailed(file: string, opts: ScanOptions = {}, disasm = false): Promise<ScanDetail> {
  const src = FileSource.open(file);
  try {
    const d = await scanSource(src, file, opts, disasm);
    if (wantHash(opts, src.size)) d.report.sha256 = await sha256File(file);
    return d;
  } finally { src.close(); }
}

export async function scanModelBytes(bytes: Uint8Array, name: string, opts: ScanOptions = {}): Promise<ModelReport> {
  const d = await scanSource(new BytesSource(bytes), name, opts, false);
  if (wantHash(opts, bytes.length)) d.report.sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  return reportOnly(d);
}

/** Scans any byte source, e.g. a remote file read by HTTP ranges (models/remote/); never hashes it. */
export async function scanModelSource(src: ByteSource, name: string, opts: ScanOptions = {}): Promise<ModelReport> {
  return reportOnly(await scanSource(src, name, { ...opts, sha256: false }, false));
}

export async function disassembleModelFile(file: string): Promise<{ text: string; decompiled: string; truncated: boolean }> {
  const d = await scanModelFileDetailed(file, {}, true);
  return renderDisassembly(d);
}

function wantHash(opts: ScanOptions, size: number): boolean {
  const s = opts.sha256 ?? 'auto';
  return s === true || (s === 'auto' && size <= (opts.hashLimit ?? DEFAULT_HASH_LIMIT));
}

export async function sha256File(file: string, onProgress?: (done: number) => void): Promise<string> {
  const h = crypto.createHash('sha256');
  let done = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer); done += (chunk as Buffer).length; onProgress?.(done);
  }
  return h.digest('hex');
}

// ---- detect and dispatch ----------------------------------------------------------------------------------------

/** A container the loaders recognise by its first bytes. */
interface FormatRow {
  /** Whether the loaders take the file for this format: `head` is its first 512 bytes (fewer in a short file). */
  sniff(head: Uint8Array, size: number): boolean;
  /** Reads it as every loader that accepts it does (see formats/context.ts). */
  read(ctx: ScanContext, src: ByteSource, head: Uint8Array): void | Promise<void>;
  /** pickle.load (and torch.load, for a file that is neither zip nor tar) may read the same bytes: what the file is
   *  first ("a tar archive"); when its bytes also start a pickle, that reading is scanned too (a polyglot). */
  alsoPickle?: string | ((head: Uint8Array) => string);
}

/** In the order the loaders test them: the first row whose sniff accepts the head reads the file. */
const FORMATS: readonly FormatRow[] = [
  { sniff: (h) => h.length === 512 && isTarHeader(h), read: readTar, alsoPickle: 'a tar archive' },
  // 'P' is PERSID: pickle.load raises on it (no persistent_load), torch.load reads every PK\3\4 file as a zip
  { sniff: (h) => startsWith(h, [0x50, 0x4b, 0x03, 0x04]), read: readZip },
  // numpy.load reads a file that starts with an end record as a zip (an empty .npz is nothing else); torch does not
  { sniff: (h) => startsWith(h, [0x50, 0x4b, 0x05, 0x06]), read: readZipEndFirst },
  { sniff: looksLikeNpy, read: readNpyFile, alsoPickle: 'a .npy array' },
  { sniff: looksLikeGguf, read: readGguf, alsoPickle: 'a GGUF file' },
  { sniff: looksLikeSafetensors, read: readSafetensors, alsoPickle: 'a safetensors file' },
  { sniff: looksLike7z, read: read7z },
  // joblib checks compressor magics before unpickling (an lzma stream starts with ']', a pickle opcode)
  { sniff: (h) => detectCompression(h) !== undefined, read: readCompressed, alsoPickle: (h) => `a ${detectCompression(h)} stream` },
  // MATLAB .mat (scipy.io.savemat): "MATLAB 5.0 ..." starts like a pickle (BININT2) but no unpickler reads it
  { sniff: (h) => matlabHeader(h) !== undefined, read: readMatlab, alsoPickle: 'a MATLAB MAT-file' },
  // HDF5 (Keras legacy .h5, h5py files): the superblock signature (at 512, 1024, ... after a user block: readUnknown)
  { sniff: looksLikeHdf5, read: (ctx, src) => readHdf5(ctx, src) },
  // ONNX has no magic: a protobuf whose first fields are a ModelProto's (ir_version first, as every writer puts it)
  { sniff: looksLikeOnnx, read: (ctx, src) => readOnnx(ctx, src) },
  // any opcode CPython dispatches starts a pickle (SHORT_BINUNICODE, LONG1, NEWTRUE, ...); a stream every
  // unpickler rejects before importing anything is then 'invalid', not dangerous
  { sniff: (h) => startsPickle(h[0]), read: readPickleFile },
];

/** No row matched: a zip hiding behind a prefix (torch would not read it, Python's zipfile would), or nothing. */
async function readUnknown(ctx: ScanContext, src: ByteSource, head: Uint8Array): Promise<void> {
  ctx.report.format = 'unknown';
  if (head[0] === 0 && findHdf5Superblock(src) > 0) { await readHdf5(ctx, src); return; }   // h5py userblock_size=512, ...
  if (!(await scanHiddenZip(ctx, src))) {
    const broken = brokenSafetensorsReason(head, src.size, ctx.report.path);
    if (broken) { ctx.report.format = 'safetensors'; add(ctx, 'SW020', broken); return; }
    add(ctx, 'SW024', `The first bytes (${hex(head.subarray(0, 8))}) match no model format; nothing in it could be checked.`);
  }
}

async function scanSource(src: ByteSource, file: string, opts: ScanOptions, disasm: boolean): Promise<ScanDetail> {
  const report: ModelReport = {
    path: file, kind: 'model', format: 'unknown', verdict: 'safe', summary: '', weightsOnly: { loads: null, reason: '' },
    findings: [], globals: [], tensors: [], tensorCount: 0, metadata: {}, pickles: [], size: src.size,
  };
  const ctx = newContext(report, opts, disasm, (s, name, o) => scanSource(s, name, o, false));
  const head = src.read(0, 512);
  if (src.size === 0) {
    add(ctx, 'SW024', 'The file is empty.', { severity: 'invalid' });
  } else {
    const row = FORMATS.find((f) => f.sniff(head, src.size));
    if (row) await row.read(ctx, src, head); else await readUnknown(ctx, src, head);
    const first = typeof row?.alsoPickle === 'function' ? row.alsoPickle(head) : row?.alsoPickle;
    if (first && startsPickle(head[0])) scanPickleReading(ctx, src, first);
  }
  finalize(ctx);
  // runs the formats parsed but did not record (sniffed bytes every unpickler stops on, runs after a stop, storage
  // bytes that parse as a pickle) give their value memory back to the scratch pool: nothing reads them again
  const recorded = new Set(ctx.runs.map((r) => r.run));
  for (const r of ctx.produced) if (!recorded.has(r)) r.release?.();
  const table = ctx.table;
  return { report, runs: ctx.runs, get tensors() { return table ? table.rows() : []; }, storageData: ctx.storageData };
}
