// Entry point of the model-file engine: decides the format from the bytes (as the real loaders do),
// runs the pickle machine over every pickle a loader could read, and assembles the report.
import * as fs from 'node:fs';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { ByteSource, BytesSource, FileSource, SliceSource, startsWith } from './source';
import { Cursor, RandomAccessFiller, runSync, runWithChunks } from './pickle/cursor';
import { runPickle, PickleRun, MachineOptions } from './pickle/machine';
import { startsPickle, stopBeforeAnythingRuns, type UnpicklerStop } from './pickleStart';
import { AllowList, NO_USER_ALLOW, analyzeCalls, judgeGlobal, type Judgement } from './policy';
import { extractRunTensors, numel, STORAGE_DTYPES, numpyToTorchDtype, type StorageRef, type ExtractedTensor, StorageTable, TensorTable, type TensorWalkResult } from './pickle/tensors';
import { decompileRun } from './pickle/decompile';
import { readZipDirectory, ZipEntry, memberChunks, readMember, ZipDirectory, endRecords, locateMainPickle, EndRecord, ZIP_READERS, type ZipReader } from './zip';
import { readZipDirectoryInWorker } from './zipParallel';
import { pooled } from './strTable';
import { giveArrayBuffer } from './bufferPool';
import { looksLikeNpy, parseNpyHeader } from './npy';
import { detectCompression, decompressedChunks, DecompressionLimit, Compression } from './compression';
import { isTarHeader, readTarMembers } from './tar';
import { tarStreamMembers, list7z, extract7z, looksLike7z, archiveLimits } from './archives';
import { looksLikeSafetensors, inspectSafetensors } from './safetensors';
import { looksLikeGguf, inspectGguf } from './gguf';
import { matlabHeader, matlabMessage } from './matlab';
import { MODEL_RULE_BY_ID } from './rules';
import { PyTuple, PyDict, PyGlobal, asInt, asText, type PyValue } from './pickle/values';
import { K } from './pickle/arena';
import type {
  Finding, GlobalRef, ModelFormat, ModelReport, PickleStreamReport, ScanOptions, Severity, TensorInfo, Verdict,
} from './types';

const SCANNED_EXTENSIONS = new Set(['.pt', '.pth', '.ckpt', '.bin', '.pkl', '.pickle', '.joblib', '.npy', '.npz', '.safetensors', '.gguf', '.dill', '.sav', '.pkl.gz', '.mar']);

/** File names the workspace scan and the CLI treat as model files (content still decides the format). */
export function isModelFileName(name: string): boolean {
  const lower = name.toLowerCase();
  if (lower.endsWith('.pkl.gz') || lower.endsWith('.joblib.gz')) return true;
  return SCANNED_EXTENSIONS.has(path.extname(lower));
}

const TORCH_MAGIC = 0x1950a86a20f9469cfc6cn;
const DEFAULT_HASH_LIMIT = 256 << 20;
const DECOMPRESS_LIMIT = 8 * 1024 ** 3;

/** A pickle stream the scan read. `rejected`: every unpickler stops on it before anything is imported or called
 *  (reported with that severity: 'invalid' when it is the stream the format's loader reads, else 'info'). */
export interface ScannedRun { run: PickleRun; member?: string; torchLoads: boolean; rejected?: { severity: Severity; stop: UnpicklerStop } }

interface Ctx {
  report: ModelReport;
  runs: ScannedRun[];
  /** Absolute data offsets of the zip members scanned (another reading of the archive skips them). */
  zipScanned?: Set<number>;
  disasm: boolean;
  opts: ScanOptions;
  /** The tensor inventory read from the main pickle, if any. */
  table?: TensorTable;
  /** Disassembly lines left for the whole file (shared by every run's machine). */
  disasmLines?: { left: number };
  /** The root folder of a pytorch-zip archive (tensor rows name their storage members under it). */
  zipRoot?: string;
  /** Where each storage's raw bytes are (legacy tar), for the converter. */
  storageData: Map<string, { offset: number; size: number }>;
  /** The worst severity of every finding met, also those past the report's row cap (the verdict sees them all). */
  worst?: Severity;
  /** Findings met but not kept as rows (the report shows at most FINDINGS_SHOWN). */
  findingsOmitted: number;
  /** Every dangerous global met (display name -> called), for the summary, also past the globals row cap. */
  dangerousNames: Map<string, boolean>;
}

export interface ScanDetail {
  report: ModelReport;
  runs: ScannedRun[];
  tensors: ExtractedTensor[];
  /** Absolute location of storage bytes by storage key, where the format keeps them outside members (legacy tar). */
  storageData: Map<string, { offset: number; size: number }>;
}

export async function scanModelFile(file: string, opts: ScanOptions = {}): Promise<ModelReport> {
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

/** Lines of disassembly, and characters of decompiled text, shown for a whole file (both views cost memory
 *  per line or character: a 2 MB pickle of a million nested lists has a million opcodes and a memo DAG of 40
 *  levels decompiles to 2^40 values). Past them the views say how much was left out. */
export const DISASSEMBLY_LINES = 200_000, DECOMPILED_CHARS = 1_000_000;

export function renderDisassembly(d: ScanDetail): { text: string; decompiled: string; truncated: boolean } {
  let text = '', dec = '', truncated = false;
  let decLeft = DECOMPILED_CHARS;
  if (d.runs.length === 0) text = `# ${d.report.format}: no pickle streams in this file\n`;
  d.runs.forEach(({ run, member }, i) => {
    const where = `${member ? `member ${member}, ` : ''}offset ${run.start}`;
    text += `# pickle ${i + 1} (${where}, protocol ${run.protocol}, ${run.opcodes} opcodes${run.complete ? '' : `, ERROR: ${run.error}`})\n`;
    text += (run.disasm ?? []).join('\n') + '\n';
    if (run.disasmTruncated) {
      const shown = run.disasmLines ?? 0;
      text += `# … disassembly truncated: ${shown} of ${run.opcodes} opcodes shown, ${run.opcodes - shown} left out\n`;
      truncated = true;
    }
    if (!run.complete) text += `${String(run.errorOffset ?? run.end).padStart(9)}: !! ${run.error}\n`;
    text += '\n';
    const dc = decompileRun(run, decLeft);
    decLeft -= dc.text.length;
    if (dc.truncated) truncated = true;
    dec += `# pickle ${i + 1} (${where})\n${dc.text}\n`;
  });
  return { text, decompiled: dec, truncated };
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

// ---------------------------------------------------------------------------------------------------------

async function scanSource(src: ByteSource, file: string, opts: ScanOptions, disasm: boolean): Promise<ScanDetail> {
  const report: ModelReport = {
    path: file, kind: 'model', format: 'unknown', verdict: 'safe', summary: '', weightsOnly: { loads: null, reason: '' },
    findings: [], globals: [], tensors: [], tensorCount: 0, metadata: {}, pickles: [], size: src.size,
  };
  const ctx: Ctx = { report, runs: [], disasm, opts, storageData: new Map(), findingsOmitted: 0, dangerousNames: new Map() };
  const head = src.read(0, 512);
  // the format read first; pickle.load (and torch.load, for a file that is neither zip nor tar) may read the
  // same bytes as a pickle: `alsoPickle` names the first reading when that second one must be scanned too
  let alsoPickle: string | undefined;
  if (src.size === 0) {
    add(ctx, 'SW024', 'The file is empty.', { severity: 'invalid' });
  } else if (head.length === 512 && isTarHeader(head)) {
    await scanLegacyTar(ctx, src);
    alsoPickle = 'a tar archive';
  } else if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) {
    // 'P' is PERSID: pickle.load raises on it (no persistent_load), torch.load reads every PK\3\4 file as a zip
    await scanZip(ctx, src, 0);
  } else if (startsWith(head, [0x50, 0x4b, 0x05, 0x06])) {
    // numpy.load reads a file that starts with an end record as a zip (an empty .npz is nothing else); torch does not
    await scanZip(ctx, src, 0, false, undefined, zipReaders(true));
  } else if (looksLikeNpy(head)) {
    report.format = 'numpy-npy';
    await scanNpy(ctx, src, undefined);
    alsoPickle = 'a .npy array';
  } else if (looksLikeGguf(head)) {
    scanGguf(ctx, src);
    alsoPickle = 'a GGUF file';
  } else if (looksLikeSafetensors(head, src.size)) {
    scanSafetensors(ctx, src);
    alsoPickle = 'a safetensors file';
  } else if (looksLike7z(head)) {
    await scan7z(ctx, src);
  } else if (detectCompression(head)) {
    // joblib checks compressor magics before unpickling (an lzma stream starts with ']', a pickle opcode)
    const comp = detectCompression(head) as Compression;
    await scanCompressed(ctx, src, comp);
    alsoPickle = `a ${comp} stream`;
  } else if (matlabHeader(head)) {
    // MATLAB .mat (scipy.io.savemat): "MATLAB 5.0 ..." starts like a pickle (BININT2) but no unpickler reads it
    const mat = matlabHeader(head)!;
    report.formatDetail = `MATLAB MAT-file v${mat.version}`;
    add(ctx, 'SW024', matlabMessage(mat));
    await scanHiddenZip(ctx, src);   // Python's zipfile would still read an archive appended to it
    alsoPickle = 'a MATLAB MAT-file';
  } else if (startsPickle(head[0])) {
    // any opcode CPython dispatches starts a pickle (SHORT_BINUNICODE, LONG1, NEWTRUE, ...); a stream every
    // unpickler rejects before importing anything is then 'invalid', not dangerous
    await scanPickleFile(ctx, src);
  } else {
    {
      report.format = 'unknown';
      // a zip hiding behind a prefix: torch would not read it, Python's zipfile would
      if (!(await scanHiddenZip(ctx, src))) {
        add(ctx, 'SW024', `The first bytes (${hex(head.subarray(0, 8))}) match no model format; nothing in it could be checked.`);
      }
    }
  }
  if (alsoPickle && startsPickle(head[0])) scanPickleReading(ctx, src, alsoPickle);
  finalize(ctx);
  const table = ctx.table;
  return { report, runs: ctx.runs, get tensors() { return table ? table.rows() : []; }, storageData: ctx.storageData };
}

const FINDINGS_SHOWN = 2000;
const GLOBALS_SHOWN = 10_000;

/** A finding past the report's row cap: it still decides the verdict. */
function count(ctx: Ctx, severity: Severity): void {
  if (severity !== 'info' && (!ctx.worst || RANK[severity] > RANK[ctx.worst])) ctx.worst = severity;
  ctx.findingsOmitted++;
}

function add(ctx: Ctx, rule: string, message: string, extra: Partial<Finding> = {}): void {
  const r = MODEL_RULE_BY_ID.get(rule);
  const severity = extra.severity ?? r?.severity ?? 'caution';
  if (severity !== 'info' && (!ctx.worst || RANK[severity] > RANK[ctx.worst])) ctx.worst = severity;
  if (ctx.report.findings.length >= FINDINGS_SHOWN) { ctx.findingsOmitted++; return; }
  ctx.report.findings.push({ rule, severity, message, ...extra });
}

function hex(b: Uint8Array): string { return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' '); }

// ---- pickles ------------------------------------------------------------------------------------------

function machineOpts(ctx: Ctx): MachineOptions {
  if (!ctx.disasm) return { disasm: false };
  return { disasm: true, disasmBudget: ctx.disasmLines ??= { left: DISASSEMBLY_LINES } };
}

/** A small value a run returned (a legacy record, sys_info), as PyValue: at most a few levels and values of it
 *  (a crafted record of a million nested lists would otherwise be built whole). */
function nearValue(run: PickleRun | undefined): PyValue | undefined {
  return run?.root === undefined ? undefined : run.arena.materializeNear(run.root, 4, 4096);
}

/** The storage keys a legacy checkpoint's 5th pickle lists, read from the arena (no object per item). */
export function legacyStorageKeys(run: PickleRun): string[] | undefined {
  const ar = run.arena, h = run.root;
  if (h === undefined || ar.kind[h] !== K.LIST) return undefined;
  const out: string[] = [];
  for (let i = 0; i < ar.seqLen(h); i++) { const v = ar.scalar(ar.seqItem(h, i)) ?? null; out.push(asText(v) ?? String(asInt(v))); }
  return out;
}

/** Takes the tensor inventory a walk read; tensors it found but could not list are flagged and counted. */
function useInventory(ctx: Ctx, walked: TensorWalkResult): void {
  ctx.table = walked.table;
  if (walked.truncated) ctx.report.tensorsTruncated = true;
  if (walked.omitted) ctx.report.tensorsOmitted = (ctx.report.tensorsOmitted ?? 0) + walked.omitted;
}

/** Runs consecutive pickles from [start, end) synchronously; returns the runs and where parsing stopped. */
function runPicklesSync(src: ByteSource, start: number, end: number, ctx: Ctx, max = 1000): { runs: PickleRun[]; stop: number } {
  const c = new Cursor(start, end);
  // streams up to 64 MB are read in one piece (fewer refills); bigger ones in 1 MB steps
  const filler = new RandomAccessFiller(src, end - start <= 64 << 20 ? Math.max(1 << 20, end - start) : 1 << 20);
  try {
    const runs = runSync(pickleSequence(c, machineOpts(ctx), max), c, filler);
    return { runs, stop: runs.length ? runs[runs.length - 1].end : start };
  } finally { filler.release(); }
}

/** Consecutive pickles on one stream: after STOP, another pickle is read if the next bytes start one. */
export function* pickleSequence(c: Cursor, opts: MachineOptions, max: number): Generator<number, PickleRun[], void> {
  const runs: PickleRun[] = [];
  while (runs.length < max) {
    if (c.avail() < 4 && !c.eof) yield 4;
    if (c.avail() <= 0) break;
    // a zip local header after a pickle is an appended archive (scanTrailing), not a pickle ('P' is PERSID)
    if (runs.length > 0 && (!startsPickle(c.buf[c.pos]) || isLocalHeaderAt(c.buf, c.pos))) break;
    const r = yield* runPickle(c, opts);
    runs.push(r);
    if (!r.complete) break;
  }
  return runs;
}

function isLocalHeaderAt(b: Uint8Array, i: number): boolean {
  return b[i] === 0x50 && b[i + 1] === 0x4b && b[i + 2] === 0x03 && b[i + 3] === 0x04;
}

interface RecordOptions {
  /** Fail closed: a stream a loader is known to read (sniffed trailing data and members are not strict). */
  strict: boolean;
  torchLoads: boolean;
  /** The bytes the run's offsets refer to, when they can be read again (not for decompressed streams). */
  src?: ByteSource;
  /** The format's own loader reads this stream (torch's data.pkl, a pickle file's first pickle): when every
   *  unpickler rejects it, the file cannot be loaded ('invalid'); for other strict streams that is 'info'. */
  loaderReads?: boolean;
  /** The loader has a persistent_load (torch; assumed for streams whose loader is unknown). */
  persistentLoad?: boolean;
}

/**
 * Records a pickle run; returns whether reading on after it is meaningful (false: it was rejected or dropped).
 * A stream every unpickler rejects before importing or calling anything is not a danger: nothing in it runs
 * (`invalid` for the stream the loader reads). Anything imported before an error still counts, and where the
 * machine stops but an unpickler may read on, strict streams fail closed (SW004) and sniffed ones are caution.
 */
function recordRun(ctx: Ctx, run: PickleRun, member: string | undefined, opts: RecordOptions): boolean {
  // a stream no loader is known to read is judged as a stock interpreter reads it (no extension registrations)
  const stop = stopBeforeAnythingRuns(run, { src: opts.src, persistentLoad: opts.persistentLoad ?? true, extensionRegistry: opts.strict });
  const where = member ? ` in ${member}` : '';
  if (!opts.strict && (stop || (!run.complete && run.globals.length === 0))) {
    add(ctx, 'SW014', stop
      ? `${run.end - run.start} bytes at offset ${run.start}${where} start like a pickle, but every unpickler stops at offset ${stop.at} (${stop.why}) before importing or calling anything.`
      : `${run.end - run.start} bytes at offset ${run.start}${where} start like a pickle; the reading stops at offset ${run.errorOffset ?? run.end} (${run.error}) with nothing imported, but an unpickler may read on there: the rest was not checked.`,
    { offset: run.start, member, severity: stop ? 'info' : 'caution' });
    return false;
  }
  if (stop) {
    ctx.runs.push({ run, member, torchLoads: opts.torchLoads, rejected: { severity: opts.loaderReads ? 'invalid' : 'info', stop } });
    return false;
  }
  ctx.runs.push({ run, member, torchLoads: opts.torchLoads });
  for (const n of run.nested) ctx.runs.push({ run: n, member: member ? `${member} (object array)` : '(object array)', torchLoads: false });
  return true;
}

/**
 * The bytes of a file read first as another format (safetensors, GGUF, .npy, tar, a compressed stream) read
 * again as pickle.load reads them (torch.load too, for a file that is neither a zip nor a tar): a polyglot is
 * judged by its more dangerous reading. Nothing is reported when every unpickler rejects the bytes at once.
 */
function scanPickleReading(ctx: Ctx, src: ByteSource, first: string): void {
  const { runs } = runPicklesSync(src, 0, src.size, ctx, 6);
  const r0 = runs[0];
  if (!r0) return;
  // pickle.load, numpy.load and torch's first pickle.load of a non-zip file have no persistent_load
  const stop = stopBeforeAnythingRuns(r0, { src, persistentLoad: false, extensionRegistry: false });
  const release = () => { for (const r of runs) r.release?.(); };
  if (stop) { release(); return; }
  const imports = r0.globals.length > 0 || r0.findings.length > 0;
  if (!r0.complete && !imports) {
    add(ctx, 'SW012', `The file is ${first}, and its bytes also start a pickle: the pickle reading stops at offset ${r0.errorOffset ?? r0.end} (${r0.error}) with nothing imported, but an unpickler may read on there, so what pickle.load or torch.load would do with this file was not checked.`, { offset: 0, severity: 'caution' });
    release();
    return;
  }
  add(ctx, 'SW012', `The file is ${first}, and it is also a pickle that pickle.load and torch.load read from offset 0 (${r0.complete ? `${r0.end} bytes` : `broken at offset ${r0.errorOffset ?? r0.end}`}${imports ? `, importing ${r0.globals.length} global(s)` : ', importing nothing'}): both readings are scanned and the verdict is that of the more dangerous one.`,
    { offset: 0, severity: imports ? 'caution' : 'info' });
  for (let i = 0; i < runs.length; i++) {
    if (!recordRun(ctx, runs[i], undefined, { strict: i === 0, torchLoads: false, src, persistentLoad: false }) || !runs[i].complete) {
      for (const r of runs.slice(i + 1)) r.release?.();
      break;
    }
  }
}

async function scanPickleFile(ctx: Ctx, src: ByteSource): Promise<void> {
  const rep = ctx.report;
  rep.format = 'pickle';
  const { runs } = runPicklesSync(src, 0, src.size, ctx, 6);
  if (runs.length === 0) return;
  const first = runs[0];
  const legacy = first.complete && first.root !== undefined && first.arena.scalar(first.root) === TORCH_MAGIC;
  if (legacy) {
    rep.format = 'pytorch-legacy';
    runs.slice(0, 5).forEach((r) => recordRun(ctx, r, undefined, { strict: true, torchLoads: true, src, loaderReads: true }));
    // torch.load reads exactly five pickles; what follows is storage data (a first element count of 40 is
    // 0x28, MARK: it parses as the start of a sixth "pickle" that must not decide whether the five are whole)
    if (runs.length >= 5 && runs.slice(0, 5).every((r) => r.complete)) {
      const protoV = asInt(nearValue(runs[1]) ?? null);
      rep.metadata['legacy.protocol_version'] = String(protoV ?? '?');
      const sysInfo = nearValue(runs[2]);
      if (sysInfo instanceof PyDict) for (const [k, v] of sysInfo.entries) { const ks = asText(k); if (ks) rep.metadata[`sys_info.${ks}`] = String(asText(v) ?? asInt(v) ?? v); }
      const walked = extractRunTensors(runs[3], ctx.opts.maxTensors);
      useInventory(ctx, walked);
      const tail = walkLegacyStorages(ctx, src, runs[4], walked.storages);
      await scanTrailing(ctx, src, tail);
    } else if (runs.length < 5 && runs[runs.length - 1].complete) {
      add(ctx, 'SW004', `Legacy torch file holds ${runs.length} of the 5 pickles torch.load reads.`, { severity: 'dangerous' });
    }
    return;
  }
  if (!recordRun(ctx, first, undefined, { strict: true, torchLoads: false, src, loaderReads: true })) {
    // no unpickler loads it; Python's zipfile may still read an archive inside (numpy.load does)
    await scanHiddenZip(ctx, src, 0);
    return;
  }
  const joblib = first.globals.some((g) => /(^|\.)numpy_pickle$/.test(g.module));
  if (joblib) { rep.format = 'joblib'; rep.formatDetail = 'joblib (uncompressed)'; }
  useInventory(ctx, extractRunTensors(first, ctx.opts.maxTensors));
  if (!first.complete) { await scanHiddenZip(ctx, src, 0); return; }
  // further pickles (pickle.load called repeatedly), then anything else
  let pos = first.end;
  for (const r of runs.slice(1)) {
    if (!recordRun(ctx, r, undefined, { strict: false, torchLoads: false, src })) { await scanHiddenZip(ctx, src, r.start); return; }
    pos = r.end;
    if (!r.complete) { await scanHiddenZip(ctx, src, pos); return; }
  }
  await scanTrailing(ctx, src, pos);
}

/** Bytes after the last structure the loader reads: appended pickles, an appended zip (polyglot), or junk. */
async function scanTrailing(ctx: Ctx, src: ByteSource, pos: number): Promise<void> {
  while (pos < src.size) {
    const head = src.read(pos, 8);
    if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) {
      add(ctx, 'SW012', `A ZIP archive is appended at offset ${pos}: torch.load reads the pickle at offset 0, but zip readers see the archive. Its members are scanned too.`, { offset: pos });
      await scanZip(ctx, new SliceSource(src, pos, src.size - pos), pos, true);
      return;
    }
    if (startsPickle(head[0])) {
      const { runs } = runPicklesSync(src, pos, src.size, ctx, 1000);
      let kept = 0, ended = runs.length === 0;
      for (const r of runs) {
        if (!recordRun(ctx, r, undefined, { strict: false, torchLoads: false, src })) { ended = true; break; }
        pos = r.end; kept++;
        if (!r.complete) { ended = true; break; }
      }
      if (kept) add(ctx, 'SW012', `${kept} more pickle(s) follow the data the loader reads (from offset ${runs[0].start}); a loader that reads on would run them.`, { offset: runs[0].start, severity: 'caution' });
      // what no unpickler reads on past may still hold an archive Python's zipfile finds from the end
      if (ended) { await scanHiddenZip(ctx, src, pos); return; }
      continue;
    }
    if (await scanHiddenZip(ctx, src, pos)) return;
    add(ctx, 'SW014', `${src.size - pos} bytes of trailing data at offset ${pos} are not read by the loader.`, { offset: pos });
    return;
  }
}

/** Legacy torch: after the 5th pickle come the storages, each an 8-byte element count and the raw data. */
function walkLegacyStorages(ctx: Ctx, src: ByteSource, keysRun: PickleRun, storages: StorageTable): number {
  const keys = legacyStorageKeys(keysRun) ?? [];
  let pos = keysRun.end;
  for (const key of keys) {
    const st = storages.get(key);
    const hdr = src.read(pos, 8);
    if (hdr.length < 8) { add(ctx, 'SW017', `Legacy storage ${key} is missing (file ends at ${src.size}).`, { offset: pos }); return src.size; }
    const n = Number(Buffer.from(hdr).readBigUInt64LE(0));
    const el = st?.elementSize ?? 1;
    const bytes = n * el;
    if (!st) add(ctx, 'SW017', `Legacy storage ${key} is listed but no tensor refers to it.`, { offset: pos });
    if (!Number.isSafeInteger(bytes) || pos + 8 + bytes > src.size) {
      add(ctx, 'SW017', `Legacy storage ${key} declares ${n} elements, more than the file holds.`, { offset: pos });
      return src.size;
    }
    pos += 8 + bytes;
  }
  return pos;
}

async function scanLegacyTar(ctx: Ctx, src: ByteSource): Promise<void> {
  const rep = ctx.report;
  rep.format = 'pytorch-legacy-tar';
  const { members, error, limited } = readTarMembers(src, scanLimits.tarMembers);
  // without a "pickle" member torch.load fails: an archive people unpack, every member read by its content
  if (!members.some((m) => m.name === 'pickle')) { await scanTarArchive(ctx, src, { members, error, limited }); return; }
  if (error) add(ctx, 'SW004', `Tar structure is broken: ${error}.`, { severity: 'dangerous' });
  if (limited) add(ctx, 'SW009', `The tar archive has more than ${scanLimits.tarMembers.toLocaleString('en-US')} members; reading stopped at offset ${limited} and the rest was not checked.`, { offset: limited, severity: 'dangerous' });
  rep.members = members.map((m) => ({ name: m.name, size: m.size, compressedSize: m.size, method: 0, offset: m.offset }));
  rep.memberCount = members.length;
  const byName = new Map(members.map((m) => [m.name, m]));
  // Each member is read the way torch's legacy tar loader reads it: pickles interleaved with raw records.
  const sequence = (name: string, record: (ms: SliceSource, r: PickleRun, pos: number) => number | undefined): void => {
    const m = byName.get(name);
    if (!m) return;
    const ms = new SliceSource(src, m.offset, m.size);
    let pos = 0;
    const one = (): PickleRun | undefined => {
      const r = runPicklesSync(ms, pos, ms.size, ctx, 1).runs[0];
      if (!r) return undefined;
      if (!recordRun(ctx, r, name, { strict: true, torchLoads: true, src: ms, loaderReads: true })) return undefined;
      pos = r.end;
      return r.complete ? r : undefined;
    };
    const countRun = one();
    const count = countRun ? asInt(nearValue(countRun) ?? null) ?? 0 : 0;
    for (let i = 0; i < count && pos < ms.size; i++) {
      const r = one();
      if (!r) return;
      const next = record(ms, r, pos);
      if (next === undefined) return;
      pos = next;
    }
    if (name === 'storages') one();   // the storage views list
  };
  // storages: count × [pickle((key, location, storage_type)), int64 element count, raw bytes]
  const storages = new Map<string, StorageRef>();
  sequence('storages', (ms, r, pos) => {
    const rv = nearValue(r);
    if (!(rv instanceof PyTuple)) { add(ctx, 'SW017', 'A tar storage record is not a (key, location, type) tuple.', { member: 'storages' }); return undefined; }
    const key = asText(rv.items[0] ?? null) ?? String(asInt(rv.items[0] ?? null));
    const type = rv.items[2];
    const st = type instanceof PyGlobal ? STORAGE_DTYPES[type.name] : undefined;
    const el = st?.[1] ?? 1;
    const head = ms.read(pos, 8);
    if (head.length < 8) { add(ctx, 'SW017', `Tar storage ${key} is truncated.`, { member: 'storages' }); return undefined; }
    const n = Number(Buffer.from(head).readBigUInt64LE(0));
    if (!Number.isSafeInteger(n * el) || pos + 8 + n * el > ms.size) { add(ctx, 'SW017', `Tar storage ${key} is larger than its member.`, { member: 'storages' }); return undefined; }
    storages.set(key, { key, dtype: st?.[0] ?? 'uint8', elementSize: el, numel: n, location: asText(rv.items[1] ?? null) ?? '' });
    ctx.storageData.set(key, { offset: byName.get('storages')!.offset + pos + 8, size: n * el });
    return pos + 8 + n * el;
  });
  // tensors: count × [pickle((key, storage_key, tensor_type)), int32 ndim, 4 pad bytes, sizes, strides, offset]
  const tensorRecords = new Map<string, Omit<ExtractedTensor, 'name'>>();
  sequence('tensors', (ms, r, pos) => {
    const rv = nearValue(r);
    if (!(rv instanceof PyTuple)) { add(ctx, 'SW017', 'A tar tensor record is not a (key, storage, type) tuple.', { member: 'tensors' }); return undefined; }
    const key = String(asInt(rv.items[0] ?? null) ?? asText(rv.items[0] ?? null));
    const storageKey = asText(rv.items[1] ?? null) ?? String(asInt(rv.items[1] ?? null));
    const hdr = ms.read(pos, 8);
    const ndim = hdr.length === 8 ? Buffer.from(hdr).readInt32LE(0) : -1;
    if (ndim < 0 || ndim > 64 || pos + 8 + 16 * ndim + 8 > ms.size) { add(ctx, 'SW017', `Tar tensor record ${key} is malformed.`, { member: 'tensors' }); return undefined; }
    const dims = Buffer.from(ms.read(pos + 8, 16 * ndim + 8));
    const shape: number[] = [], stride: number[] = [];
    for (let d = 0; d < ndim; d++) { shape.push(Number(dims.readBigInt64LE(8 * d))); stride.push(Number(dims.readBigInt64LE(8 * (ndim + d)))); }
    const offset = Number(dims.readBigInt64LE(16 * ndim));
    const storage = storages.get(storageKey);
    if (storage) tensorRecords.set(key, { dtype: storage.dtype, elementSize: storage.elementSize, shape, stride, storageOffset: offset, storage, requiresGrad: false, kind: 'tensor' });
    else add(ctx, 'SW017', `Tar tensor ${key} refers to storage ${storageKey}, which is missing.`, { member: 'tensors' });
    return pos + 8 + 16 * ndim + 8;
  });
  for (const name of ['sys_info', 'pickle']) {
    const m = byName.get(name);
    if (!m) continue;
    const ms = new SliceSource(src, m.offset, m.size);
    const { runs } = runPicklesSync(ms, 0, ms.size, ctx, 1);
    for (const r of runs) recordRun(ctx, r, name, { strict: true, torchLoads: true, src: ms, loaderReads: true });
    if (name === 'pickle' && runs[0]) {
      // the object's persistent ids name tensor records (torch: deserialized_objects[int(saved_id)])
      const walked = extractRunTensors(runs[0], ctx.opts.maxTensors, (pid) => {
        const k = asText(pid) ?? (typeof pid === 'number' ? String(pid) : undefined);
        return k === undefined ? undefined : tensorRecords.get(String(parseInt(k, 10)));
      });
      useInventory(ctx, walked);
    }
  }
  if (!byName.get('pickle')) add(ctx, 'SW004', 'Tar checkpoint has no "pickle" member.', { severity: 'caution' });
  for (const m of members) {
    if (['storages', 'sys_info', 'tensors', 'pickle'].includes(m.name)) continue;
    const b = src.read(m.offset, 2);
    if (startsPickle(b[0])) {
      const ms = new SliceSource(src, m.offset, m.size);
      const { runs } = runPicklesSync(ms, 0, ms.size, ctx, 10);
      for (const r of runs) if (!recordRun(ctx, r, m.name, { strict: false, torchLoads: false, src: ms })) break;
    }
  }
}


// ---- zip ----------------------------------------------------------------------------------------------

/** An archive in bytes torch.load does not read as a zip (it starts with no local header): Python's zipfile
 *  (numpy.load) and other zip tools find it from the end. Returns whether one with members was found. */
async function scanHiddenZip(ctx: Ctx, src: ByteSource, from = 0): Promise<boolean> {
  const slice = new SliceSource(src, from, src.size - from);
  const readers = zipReaders(true);
  const ends = endRecords(slice, readers);
  for (const reader of readers) {
    const end = ends[reader];
    if (!end || end instanceof Error) continue;
    let dir: ZipDirectory;
    try { dir = readZipDirectory(slice, end); } catch { continue; }
    if (dir.count === 0) { dir.release(); continue; }
    add(ctx, 'SW012', `A ZIP archive (${dir.count} members) is embedded after offset ${from}: torch.load ignores it, Python's zipfile and other tools read it. Its members are scanned too.`, { offset: from });
    await scanZip(ctx, slice, from, true, { dir, reader, ends });
    return true;
  }
  return false;
}

/** The loaders that read an archive: torch.load's miniz only reads a file that starts with a local header. */
function zipReaders(secondary: boolean): readonly ZipReader[] { return secondary ? ['zipfile', 'strict'] : ZIP_READERS; }

const READER_NAMES: Record<ZipReader, string> = {
  miniz: 'torch.load (miniz)',
  zipfile: 'numpy.load and Python\'s zipfile',
  strict: 'zip tools that check the comment length (Go\'s archive/zip)',
};

/** Directories at least this big are read on the worker thread while data.pkl is analysed here (tests lower it). */
export const zipTuning = { parallelDirectoryBytes: 256 << 10 };

/** data.pkl analysed before the whole directory was read (see locateMainPickle). */
interface EarlyMain { localHeaderOffset: number; dataOffset: number; size: number; runs: PickleRun[]; walked?: TensorWalkResult; used: boolean }

/**
 * Scans an archive as each of its loaders reads it (`readers`; see ZipReader in zip.ts): the first reading
 * that yields a directory is the file's (torch's, for a file starting with a local header); every other
 * reading that sees another archive is reported (SW018) and its members are scanned too.
 */
async function scanZip(ctx: Ctx, src: ByteSource, base: number, secondary = false,
  pre?: { dir: ZipDirectory; reader: ZipReader; ends: Partial<Record<ZipReader, EndRecord | Error>> }, readers = zipReaders(secondary)): Promise<void> {
  const rep = ctx.report;
  const ends = pre?.ends ?? endRecords(src, readers);
  const failures = new Map<ZipReader, string>();
  let job: Promise<ZipDirectory> | undefined;
  let early: EarlyMain | undefined;
  const miniz = ends.miniz;
  if (!pre && !secondary && readers[0] === 'miniz' && miniz && !(miniz instanceof Error) && src instanceof FileSource) {
    // the worker reads the directory as torch does (readZipDirectory's default reading)
    if (miniz.cdSize >= zipTuning.parallelDirectoryBytes) job = readZipDirectoryInWorker(src.fd);
    if (job) { try { early = earlyMainPickle(ctx, src, miniz); } catch { early = undefined; } }
  }
  let dir = pre?.dir, reader = pre?.reader;
  for (const r of pre ? [] : readers) {
    const end = ends[r];
    if (!end || end instanceof Error) { failures.set(r, end?.message ?? 'not read'); continue; }
    try {
      // the worker reads the same open file: it is awaited before anything returns (the caller then closes it)
      dir = r === 'miniz' && job ? await job.catch(() => readZipDirectory(src, end)) : readZipDirectory(src, end);
      reader = r;
      break;
    } catch (e) { failures.set(r, (e as Error).message); }
  }
  if (job && reader !== 'miniz') await job.then((d) => d.release(), () => undefined);
  if (!dir || !reader) {
    releaseEarly(early);
    if (!secondary) rep.format = 'zip';
    add(ctx, 'SW013', `The ZIP central directory cannot be read (${[...failures].map(([r, m]) => `${READER_NAMES[r]}: ${m}`).join('; ')}); ${secondary ? 'no zip reader opens it' : 'torch.load would fail'}. Local headers are scanned instead.`);
    await scanZipByLocalHeaders(ctx, src);
    return;
  }
  if (early && reader !== 'miniz') { releaseEarly(early); early = undefined; }
  try {
    await scanZipMembers(ctx, src, base, secondary, dir, early);
    await scanOtherZipReadings(ctx, src, base, readers, ends, reader, dir, failures);
  } finally { dir.release(); releaseEarly(early); }
}

/** Whether another reader's end record leads to the same entries as the directory `dir` read through `end`. */
function sameReading(other: EndRecord, end: EndRecord, dir: ZipDirectory): boolean {
  if (other.cdOffset !== end.cdOffset || other.cdSize !== end.cdSize || other.shift !== end.shift) return false;
  if (other.count === end.count) return true;
  // one reads `count` entries, the other as many as fill the directory: the same when the count fills it
  const count = other.count >= 0 ? other.count : end.count;
  return dir.count === count && dir.cdConsumed === end.cdSize;
}

/** Whether two directories list the same members at the same places. */
function sameEntries(a: ZipDirectory, b: ZipDirectory): boolean {
  if (a.count !== b.count) return false;
  for (let i = 0; i < a.count; i++) {
    if (a.dataOffset(i) !== b.dataOffset(i) || a.compressedSize(i) !== b.compressedSize(i) || a.method(i) !== b.method(i) || a.nameLength(i) !== b.nameLength(i)) return false;
    if (a.name(i) !== b.name(i)) return false;
  }
  return true;
}

/**
 * The readings other than the scanned one (`reader`, directory `dir`): each that sees other members is named in
 * one SW018 finding (caution) and its members are scanned as well; readers that cannot open the archive are
 * named too (info, when every reading that opens it agrees).
 */
async function scanOtherZipReadings(ctx: Ctx, src: ByteSource, base: number, readers: readonly ZipReader[],
  ends: Partial<Record<ZipReader, EndRecord | Error>>, reader: ZipReader, dir: ZipDirectory, failures: Map<ZipReader, string>): Promise<void> {
  const end = ends[reader] as EndRecord;
  const describe = (e: EndRecord, d: ZipDirectory) => `the end record at offset ${base + e.eocdOffset}, a central directory at offset ${base + e.cdOffset} with ${d.count} member${d.count === 1 ? '' : 's'}`;
  const same: ZipReader[] = [reader];
  const others: { readers: ZipReader[]; end: EndRecord; dir: ZipDirectory }[] = [];
  try {
    for (const r of readers) {
      if (r === reader || failures.has(r)) continue;
      const e = ends[r];
      if (!e || e instanceof Error) { failures.set(r, e?.message ?? 'not read'); continue; }
      if (sameReading(e, end, dir)) { same.push(r); continue; }
      const seen = others.find((o) => sameReading(e, o.end, o.dir));
      if (seen) { seen.readers.push(r); continue; }
      let d: ZipDirectory;
      try { d = readZipDirectory(src, e); } catch (err) { failures.set(r, (err as Error).message); continue; }
      if (sameEntries(d, dir)) { same.push(r); d.release(); continue; }
      others.push({ readers: [r], end: e, dir: d });
    }
    const failed = [...failures].filter(([r]) => !same.includes(r) && !others.some((o) => o.readers.includes(r)));
    if (!others.length && !failed.length) return;
    const names = (rs: ZipReader[]) => rs.map((r) => READER_NAMES[r]).join(' and ');
    const parts = [`${names(same)} read${same.length === 1 && same[0] !== 'zipfile' ? 's' : ''} ${describe(end, dir)}`,
      ...others.map((o) => `${names(o.readers)} read${o.readers.length === 1 && o.readers[0] !== 'zipfile' ? 's' : ''} ${describe(o.end, o.dir)}`),
      ...failed.map(([r, m]) => `${READER_NAMES[r]} cannot open it (${m})`)];
    add(ctx, 'SW018', `Zip readers disagree on this archive: ${parts.join('; ')}.${others.length ? ' Every reading is scanned.' : ''}`,
      { offset: base + end.eocdOffset, severity: others.length ? 'caution' : 'info' });
    for (const o of others) await scanZipMembers(ctx, src, base, true, o.dir, undefined, true);
  } finally { for (const o of others) o.dir.release(); }
}

function earlyMainPickle(ctx: Ctx, src: ByteSource, end: EndRecord): EarlyMain | undefined {
  const loc = locateMainPickle(src, end);
  if (!loc || looksLikeNpy(src.read(loc.dataOffset, 16))) return undefined;
  const ms = new SliceSource(src, loc.dataOffset, loc.size);
  const { runs } = runPicklesSync(ms, 0, ms.size, ctx, 1);
  const walked = runs[0] ? extractRunTensors(runs[0], ctx.opts.maxTensors, undefined, true) : undefined;
  return { ...loc, runs, walked, used: false };
}

function releaseEarly(early: EarlyMain | undefined): void {
  if (early && !early.used) for (const r of early.runs) r.release?.();
}

const MEMBER_ROWS = 1000;
const NPY_EXT = new TextEncoder().encode('.npy');
const TORCH_TEXT_RECORDS = new Set(['byteorder', 'version', '.data/version', '.data/serialization_id']);

/** `other`: a reading other than the file's own (scanOtherZipReadings): members whose bytes were scanned already
 *  are skipped, and neither the tensor inventory nor gaps are taken from it. */
async function scanZipMembers(ctx: Ctx, src: ByteSource, base: number, secondary: boolean, dir: ZipDirectory, early?: EarlyMain, other = false): Promise<void> {
  const rep = ctx.report;
  const count = dir.count;
  const root = dir.root();
  const has = (rest: string) => dir.findInRoot(rest) >= 0;
  let format: ModelFormat = 'zip';
  if (has('/constants.pkl') || dir.anyInRoot('/code/')) format = 'torchscript-zip';
  else if (has('/data.pkl')) format = 'pytorch-zip';
  else if (count) {
    let all = true;
    for (let i = 0; i < count && all; i++) all = dir.nameEndsWith(i, NPY_EXT);
    if (all) format = 'numpy-npz';
  }
  if (!secondary) {
    rep.format = format;
    ctx.zipRoot = format === 'pytorch-zip' ? root : undefined;
    rep.formatDetail = `${format === 'zip' ? 'zip' : format} with ${count} member${count === 1 ? '' : 's'}${dir.zip64 ? ' (zip64)' : ''}${root && format !== 'numpy-npz' ? `, root folder "${root}"` : ''}`;
    // the first members as rows (archives with one member per storage hold 100,000 of them: the count says how many)
    rep.memberCount = count;
    const n = Math.min(count, MEMBER_ROWS);
    const members = new Array<NonNullable<ModelReport['members']>[number]>(n);
    for (let i = 0; i < n; i++) {
      members[i] = { name: dir.name(i), size: dir.uncompressedSize(i), compressedSize: dir.compressedSize(i), method: dir.method(i), offset: base + dir.localHeaderOffset(i) };
    }
    rep.members = members;
  }
  if (format === 'torchscript-zip' && !secondary) add(ctx, 'SW015', `TorchScript archive (${root}/code/…): it carries TorchScript code that runs when the model is used; torch.load(weights_only=True) refuses it.`);
  for (const [n, k] of dir.duplicates) add(ctx, 'SW011', `${k} members are named "${n}"; loaders disagree on which one they read. All are scanned.`, { member: n });
  // storages referenced by data.pkl are raw tensor bytes: never sniffed as pickles
  const isStorage = pooled(Uint8Array, count).fill(0);   // scratch, given back below
  try {
    const dataPklAt = dir.findInRoot('/data.pkl');
    // data.pkl first (its storages are then known), then every other member in directory order
    for (let k = dataPklAt >= 0 ? -1 : 0; ; k++) {
      if (k >= 0) { k = nextMemberToVisit(dir, isStorage, k, dataPklAt); if (k >= count) break; }
      const i = k < 0 ? dataPklAt : k;
      const problems = dir.problems(i);
      if (problems.length) {
        const name = dir.name(i);
        for (const p of problems) add(ctx, 'SW010', `Member "${name}": ${p}.`, { member: name, offset: base + dir.localHeaderOffset(i) });
      }
      if (dir.dataOffset(i) < 0) continue;
      if (isStorage[i] && (!dir.duplicates.size || !dir.duplicates.has(dir.name(i)))) continue;
      const e = dir.entry(i);
      // another reading of the archive lists many of the same members: their bytes are scanned once
      if (other && ctx.zipScanned?.has(base + e.dataOffset)) continue;
      (ctx.zipScanned ??= new Set()).add(base + e.dataOffset);
      const lower = e.name.toLowerCase();
      const named = lower.endsWith('.pkl') || lower.endsWith('.pickle');
      let head: Uint8Array;
      try { head = await memberHead(src, e); } catch (err) {
        add(ctx, named ? 'SW004' : 'SW013', `Member "${e.name}" cannot be read: ${(err as Error).message}.`, { member: e.name, severity: named ? 'dangerous' : 'caution' });
        continue;
      }
      if (looksLikeNpy(head)) { await scanNpyMember(ctx, src, e); continue; }
      // a container inside a generic zip (a torch zip, a .tar.gz, a 7z): scanned as a file of its own
      if (format === 'zip' && looksLikeContainer(head)) { await scanNestedZipMember(ctx, src, e); continue; }
      // TorchScript sources (code/**/*.py) are compiled by torch.jit.load, never unpickled ("class X" reads as GLOBAL)
      if (format === 'torchscript-zip' && lower.endsWith('.py') && lower.includes('/code/')) continue;
      // torch reads its text records (byteorder "little", version "3") as strings, never unpickles them
      if ((format === 'pytorch-zip' || format === 'torchscript-zip') && TORCH_TEXT_RECORDS.has(e.name.slice(root.length + 1)) && e.uncompressedSize <= 64) continue;
      const sniffed = head.length > 0 && startsPickle(head[0]);
      if (!named && !sniffed) continue;
      const isMain = i === dataPklAt;
      // data.pkl may have been analysed while the worker read the directory: used if it is this very member
      const pre = isMain && early && e.method === 0 && e.localHeaderOffset === early.localHeaderOffset && e.dataOffset === early.dataOffset &&
        e.compressedSize === early.size ? early : undefined;
      if (pre) pre.used = true;
      const runs = pre ? pre.runs : await runMemberPickles(ctx, src, e, isMain ? 1 : 100);
      let first = true;
      const msrc = storedMember(src, e);
      for (const r of runs) {
        const kept = recordRun(ctx, r, e.name, { strict: named && first, torchLoads: isMain && first && format === 'pytorch-zip', src: msrc, loaderReads: isMain && first && !secondary });
        first = false;
        if (!kept) break;
      }
      if (isMain && runs[0]) {
        const walked = pre?.walked ?? extractRunTensors(runs[0], ctx.opts.maxTensors, undefined, true);
        if (!other) useInventory(ctx, walked);
        const members = storageMembers(dir, walked.storages);
        if (format === 'pytorch-zip') for (let k = 0; k < members.length; k++) if (members[k] >= 0) isStorage[members[k]] = 1;
        if (!other) checkZipStorages(ctx, `${root}/data/`, dir, walked.table, members);
        giveArrayBuffer(members.buffer as ArrayBuffer);
      }
    }
  } finally { giveArrayBuffer(isStorage.buffer as ArrayBuffer); }
  if (format === 'pytorch-zip' && !secondary) {
    for (const meta of ['byteorder', '.data/version', 'version', '.data/serialization_id']) {
      const at = dir.findInRoot('/', meta);
      if (at >= 0 && dir.uncompressedSize(at) < 256) {
        try { rep.metadata[`torch.${meta.replace('.data/', '')}`] = Buffer.from(await readMember(src, dir.entry(at), 256)).toString('utf8').trim(); } catch { /* reported above */ }
      }
    }
  }
  if (!secondary && dir.prefixBytes > 0) add(ctx, 'SW012', `${dir.prefixBytes} bytes precede the archive's first member.`, { offset: 0 });
  if (!other) await scanZipGaps(ctx, src, dir);
}

/** The first member index from `k` on (but `skip`) that the member loop has anything to do for: one with
 *  problems to report, or a readable one that is not a known storage (a tight loop: there can be 100,000). */
function nextMemberToVisit(dir: ZipDirectory, isStorage: Uint8Array, k: number, skip: number): number {
  const dupes = dir.duplicates.size > 0, problems = dir.hasProblems();
  for (; k < dir.count; k++) {
    if (k === skip) continue;
    if (problems && dir.problems(k).length) return k;
    if (dir.dataOffset(k) < 0) continue;
    if (isStorage[k] && (!dupes || !dir.duplicates.has(dir.name(k)))) continue;
    return k;
  }
  return k;
}

async function memberHead(src: ByteSource, e: ZipEntry): Promise<Uint8Array> {
  if (e.method === 0) return src.read(e.dataOffset, Math.min(16, e.compressedSize));
  for await (const c of memberChunks(src, e, 16)) return c.subarray(0, 16);
  return new Uint8Array(0);
}

/** A stored member's bytes (offsets in its findings are relative to its data), undefined when deflated. */
function storedMember(src: ByteSource, e: ZipEntry): SliceSource | undefined {
  return e.method === 0 ? new SliceSource(src, e.dataOffset, Math.max(0, Math.min(e.compressedSize, src.size - e.dataOffset))) : undefined;
}

async function runMemberPickles(ctx: Ctx, src: ByteSource, e: ZipEntry, max: number): Promise<PickleRun[]> {
  if (e.method === 0) {
    // offsets in member findings are relative to the member's data
    const ms = storedMember(src, e)!;
    const runs = runPicklesSync(ms, 0, ms.size, ctx, max).runs;
    // torch reads one pickle from data.pkl; a member read by other code may hold more than we read
    const last = runs[runs.length - 1];
    if (max > 1 && runs.length === max && last.complete && last.end < ms.size) {
      add(ctx, 'SW009', `Member "${e.name}" holds more than ${max} consecutive pickles; reading stopped at offset ${last.end} and the rest was not checked.`, { member: e.name, offset: last.end, severity: 'dangerous' });
    }
    return runs;
  }
  const c = new Cursor(0, e.uncompressedSize > 0 ? Infinity : Infinity);
  try {
    return await runWithChunks(pickleSequence(c, machineOpts(ctx), max), c, memberChunks(src, e, DECOMPRESS_LIMIT)[Symbol.asyncIterator]());
  } catch (err) {
    add(ctx, 'SW004', `Member "${e.name}" could not be decompressed: ${(err as Error).message}.`, { member: e.name, severity: 'dangerous' });
    return [];
  }
}

/** For each storage in `storages` (same order), the index of the first zip entry `<root>/data/<key>`, or -1.
 *  Walks the data members in directory order (sequential reads) and finds each key in the storage table, whose
 *  index is still in memory; seals the table afterwards. */
function storageMembers(dir: ZipDirectory, storages: StorageTable): Int32Array {
  const out = pooled(Int32Array, storages.size).fill(-1);   // scratch: the caller gives it back
  dir.forEachDataMember((i, names, at, len, hash) => {
    const si = storages.findBytes(names, at, len, hash);
    if (si >= 0 && out[si] < 0) out[si] = i;
  });
  storages.seal();
  return out;
}

function checkZipStorages(ctx: Ctx, dataPrefix: string, dir: ZipDirectory, table: TensorTable, members: Int32Array): void {
  const reported = pooled(Uint8Array, table.storages.size).fill(0);
  try {
    for (let i = 0; i < table.length; i++) {
      const si = table.storageIndex(i);
      if (si < 0 || reported[si]) continue;
      const m = members[si];
      const need = table.extent(i) * table.elementSize(i);
      if (m < 0 && need > 0) {
        const member = `${dataPrefix}${table.storages.key(si)}`;
        add(ctx, 'SW017', `Tensor "${table.name(i)}" refers to storage ${member}, which the archive does not contain.`, { member });
        reported[si] = 1;
      } else if (m >= 0 && dir.uncompressedSize(m) < need) {
        const member = `${dataPrefix}${table.storages.key(si)}`;
        add(ctx, 'SW017', `Tensor "${table.name(i)}" needs ${need} bytes of ${member}, which holds ${dir.uncompressedSize(m)}.`, { member });
        reported[si] = 1;
      }
    }
  } finally { giveArrayBuffer(reported.buffer as ArrayBuffer); }
}

/** Limits that stop the reading (each one reached is a dangerous SW009 finding); tests lower them. */
export const scanLimits = { localMembers: 100_000, tarMembers: 100_000 };

async function scanZipByLocalHeaders(ctx: Ctx, src: ByteSource): Promise<void> {
  let pos: number | undefined = 0;
  for (let i = 0; pos !== undefined && pos + 30 <= src.size; i++) {
    if (i === scanLimits.localMembers) {
      add(ctx, 'SW009', `The archive has more than ${scanLimits.localMembers.toLocaleString('en-US')} members by local header; reading stopped at offset ${pos} and the rest was not checked.`, { offset: pos, severity: 'dangerous' });
      return;
    }
    pos = await scanLocalMember(ctx, src, pos);
  }
}

/** Scans the member whose local header is at `pos` (if it looks like a pickle); returns where the next one starts. */
async function scanLocalMember(ctx: Ctx, src: ByteSource, pos: number, hidden = false): Promise<number | undefined> {
  const h = src.read(pos, 30);
  if (h.length < 30 || !startsWith(h, [0x50, 0x4b, 0x03, 0x04])) return undefined;
  const method = h[8] | (h[9] << 8);
  const comp = (h[18] | (h[19] << 8) | (h[20] << 16) | (h[21] << 24)) >>> 0;
  const nameLen = h[26] | (h[27] << 8), extraLen = h[28] | (h[29] << 8);
  const name = Buffer.from(src.read(pos + 30, nameLen)).toString('utf8');
  const dataOffset = pos + 30 + nameLen + extraLen;
  const e: ZipEntry = { name, method, flags: 0, crc32: 0, compressedSize: comp, uncompressedSize: 0, localHeaderOffset: pos, dataOffset, problems: [] };
  if (dataOffset + comp > src.size) return undefined;
  if (hidden) add(ctx, 'SW010', `A member "${name}" at offset ${pos} is not in the central directory: torch does not see it, streaming unzippers do. It is scanned.`, { offset: pos, member: name });
  let head: Uint8Array = new Uint8Array(0);
  try { head = await memberHead(src, e); } catch { /* unreadable */ }
  if (/\.pkl$|\.pickle$/i.test(name) || (head.length && startsPickle(head[0]))) {
    const runs = await runMemberPickles(ctx, src, e, 10);
    const msrc = storedMember(src, e);
    for (let k = 0; k < runs.length; k++) if (!recordRun(ctx, runs[k], name, { strict: k === 0 && /\.pkl$/i.test(name), torchLoads: false, src: msrc })) break;
  }
  return comp === 0 ? undefined : dataOffset + comp;
}

/**
 * Bytes inside the archive that no central-directory entry accounts for. torch (like most readers) follows the
 * central directory, but streaming unzippers read local headers in order: a member hidden in such a gap is
 * reported and scanned. Real archives have no gaps beyond data descriptors, so this reads nothing for them.
 */
async function scanZipGaps(ctx: Ctx, src: ByteSource, dir: ZipDirectory): Promise<void> {
  const shift = dir.prefixBytes;
  // members in the order of their local headers (already so in nearly every archive)
  let order: ArrayLike<number> | undefined;
  if (!dir.inOffsetOrder()) order = Array.from({ length: dir.count }, (_, i) => i).sort((a, b) => dir.localHeaderOffset(a) - dir.localHeaderOffset(b));
  const gaps: [number, number][] = [];
  let pos = shift;
  for (let k = 0; k < dir.count; k++) {
    const i = order ? order[k] : k;
    const data = dir.dataOffset(i);
    if (data < 0) continue;
    const start = dir.localHeaderOffset(i) + shift, end = data + dir.compressedSize(i);
    if (start > pos + 24) gaps.push([pos, start]);   // 24: room for a zip64 data descriptor
    pos = Math.max(pos, end);
  }
  const cdStart = dir.centralDirOffset + shift;
  if (cdStart > pos + 24) gaps.push([pos, cdStart]);
  let budget = 256 << 20;   // bytes of gaps searched at most
  const seen = new Set<number>();
  for (const [from, to] of gaps) {
    add(ctx, 'SW010', `${to - from} bytes at offset ${from} belong to no member of the central directory.`, { offset: from });
    const CH = 1 << 20;
    for (let at = from; at < to && budget > 0; at += CH - 3) {
      const chunk = Buffer.from(src.read(at, Math.min(CH, to - at)));
      budget -= chunk.length;
      for (let k = chunk.indexOf('PK\x03\x04', 0, 'latin1'); k >= 0; k = chunk.indexOf('PK\x03\x04', k + 1, 'latin1')) {
        if (!seen.has(at + k)) { seen.add(at + k); await scanLocalMember(ctx, src, at + k, true); }
      }
    }
  }
}

// ---- numpy --------------------------------------------------------------------------------------------

async function scanNpy(ctx: Ctx, src: ByteSource, member: string | undefined): Promise<void> {
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

async function scanNpyMember(ctx: Ctx, src: ByteSource, e: ZipEntry): Promise<void> {
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

async function scanBigCompressedNpy(ctx: Ctx, src: ByteSource, e: ZipEntry): Promise<void> {
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

// ---- compressed (joblib) ------------------------------------------------------------------------------

async function scanCompressed(ctx: Ctx, src: ByteSource, comp: Compression): Promise<void> {
  const rep = ctx.report;
  rep.format = 'joblib';
  rep.formatDetail = `joblib (${comp})`;
  // a tar (.tar.gz) or another container (a gzipped torch zip) inside the compressor: read by its content
  const peek = await peekChunks(decompressedChunks(comp, src, 0, DECOMPRESS_LIMIT), 512);
  if (peek.head.length === 512 && isTarHeader(peek.head)) { await scanCompressedTar(ctx, peek.chunks, comp); return; }
  if (looksLikeContainer(peek.head) || looksLikeNpy(peek.head) || looksLikeGguf(peek.head)) { await scanCompressedOther(ctx, peek.chunks, comp); return; }
  const c = new Cursor(0, Infinity);
  let runs: PickleRun[] = [];
  try {
    runs = await runWithChunks(pickleSequence(c, machineOpts(ctx), 100), c, peek.chunks[Symbol.asyncIterator]());
  } catch (e) {
    if (e instanceof DecompressionLimit) add(ctx, 'SW025', `${(e as Error).message}; the rest was not checked.`);
    else add(ctx, 'SW004', `The ${comp} stream cannot be decompressed (${(e as Error).message}); what was read before the error is reported.`, { severity: 'dangerous' });
  }
  if (runs.length === 0) { if (!rep.findings.length) add(ctx, 'SW004', `The ${comp} stream holds no pickle.`, { severity: 'dangerous' }); return; }
  for (let i = 0; i < runs.length; i++) if (!recordRun(ctx, runs[i], `(${comp} stream)`, { strict: i === 0, torchLoads: false, loaderReads: i === 0 })) break;
  useInventory(ctx, extractRunTensors(runs[0], ctx.opts.maxTensors));
  if (!runs[0].globals.some((g) => /(^|\.)numpy_pickle$/.test(g.module))) rep.formatDetail = `${comp}-compressed pickle`;
}

// ---- safetensors / gguf -------------------------------------------------------------------------------

function scanSafetensors(ctx: Ctx, src: ByteSource): void {
  const rep = ctx.report;
  rep.format = 'safetensors';
  const info = inspectSafetensors(src);
  rep.formatDetail = `safetensors, header ${info.headerSize} bytes`;
  rep.tensors = info.tensors.slice(0, ctx.opts.maxTensors ?? 1_000_000);
  rep.tensorsTruncated = info.tensors.length > rep.tensors.length || undefined;
  rep.metadata = { ...info.metadata };
  for (const e of info.errors) add(ctx, 'SW020', e, { severity: 'invalid' });
}

function scanGguf(ctx: Ctx, src: ByteSource): void {
  const rep = ctx.report;
  rep.format = 'gguf';
  const info = inspectGguf(src);
  rep.formatDetail = `GGUF v${info.version}`;
  rep.tensors = info.tensors.slice(0, ctx.opts.maxTensors ?? 1_000_000);
  rep.metadata = { ...info.metadata };
  for (const e of info.errors) add(ctx, 'SW021', e, { severity: 'invalid' });
  for (const f of info.templateFindings) add(ctx, 'SW022', f, { severity: 'dangerous' });
}

// ---- verdict ------------------------------------------------------------------------------------------

const RANK: Record<Severity, number> = { info: 0, invalid: 1, caution: 2, dangerous: 3 };

function finalize(ctx: Ctx): void {
  const rep = ctx.report;
  const woReasons: string[] = [];
  const globalsSeen = new Set<string>();
  const allow = ctx.opts.allowGlobals?.length ? new AllowList(ctx.opts.allowGlobals) : NO_USER_ALLOW;
  let globalsOmitted = 0;
  for (const { run, member, torchLoads, rejected } of ctx.runs) {
    rep.pickles.push(streamReport(run, member));
    if (rejected) {
      // nothing before the stop is imported or called: the run's globals (all after it) never load
      const { at, why } = rejected.stop;
      add(ctx, 'SW004', `Pickle at offset ${run.start}${member ? ` in ${member}` : ''} cannot be loaded: every unpickler stops at offset ${at} (${why}) before anything is imported or called, so nothing in it runs.`,
        { offset: at, member, severity: rejected.severity });
      if (torchLoads) woReasons.push('the pickle does not parse');
      continue;
    }
    const calls = analyzeCalls(run, allow);
    const where = (offset: number) => `at offset ${offset}${member ? ` in ${member}` : ''}`;
    // a crafted stream may import the same name 350,000 times: judged once per spelling when it is not called
    const judged = new Map<string, [Judgement, Judgement]>();
    for (let gi = 0; gi < run.globals.length; gi++) {
      const g = run.globals[gi];
      const use = calls.uses.get(gi);
      const full = `${g.module}.${g.name}`;
      const raw = `${g.rawModule}.${g.rawName}`;
      const memoKey = use ? undefined : `${raw}\u0000${full}`;
      let pair = memoKey === undefined ? undefined : judged.get(memoKey);
      if (!pair) {
        const j = judgeGlobal(g.module, g.name, use, allow);
        // Python 2 names are checked against the denylist under both spellings (vetting uses the Python 3 name)
        pair = [j, raw !== full ? judgeGlobal(g.rawModule, g.rawName, use, allow) : j];
        if (memoKey !== undefined) judged.set(memoKey, pair);
      }
      const [v, vr] = pair;
      const worst = vr.rule === 'SW001' && v.rule !== 'SW001' ? vr : v;
      if (rep.globals.length >= GLOBALS_SHOWN) globalsOmitted++;
      else {
        const key = `${full}@${member ?? ''}@${g.offset}`;
        if (!globalsSeen.has(key)) {
          globalsSeen.add(key);
          const ref: GlobalRef = { module: g.module, name: g.name, offset: g.offset, member, called: g.called, severity: worst.tier, reason: worst.reason };
          if (worst.vettedBy) ref.vettedBy = worst.vettedBy;
          if (worst.allowedByUser) ref.allowedBy = worst.vettedBy;
          rep.globals.push(ref);
        }
      }
      if (worst.tier !== 'safe') {
        const shown = raw !== full ? `${full} (written as ${raw})` : displayName(g.module, g.name);
        if (worst.tier === 'dangerous') {
          const dn = displayName(g.module, g.name);
          ctx.dangerousNames.set(dn, (ctx.dangerousNames.get(dn) ?? false) || g.called);
        }
        const how = use?.invoked || g.called ? 'called' : 'imported';
        if (ctx.report.findings.length >= FINDINGS_SHOWN) count(ctx, worst.tier);   // no message past the cap
        else add(ctx, worst.rule ?? 'SW002', `${shown} is ${how} ${where(g.offset)}: ${worst.reason}.`,
          { severity: worst.tier, global: full, offset: g.offset, member });
      }
      if (torchLoads && !v.weightsOnly && woReasons.length < 5) woReasons.push(`${full} is not in its allowlist`);
    }
    for (const f of calls.findings) add(ctx, f.rule, `${f.message} (${where(f.offset)}).`, { offset: f.offset, member, global: f.global, severity: 'dangerous' });
    for (const f of run.findings) add(ctx, f.rule, `${f.message}${member ? ` (in ${member})` : ''}.`, { offset: f.offset, member, global: f.global });
    ctx.findingsOmitted += run.findingsOmitted ?? 0;   // the machine kept the first of each rule (same severity)
    if (!run.complete) {
      add(ctx, 'SW004', `Pickle at offset ${run.start}${member ? ` in ${member}` : ''} cannot be fully parsed: ${run.error} (at offset ${run.errorOffset ?? run.end}). Everything before the error was scanned.`,
        { offset: run.errorOffset ?? run.end, member, severity: 'dangerous' });
    }
    if (torchLoads) {
      for (const w of run.weightsOnlyIssues) if (woReasons.length < 5) woReasons.push(w);
      if (!run.complete) woReasons.push('the pickle does not parse');
    }
  }
  if (globalsOmitted) rep.globalsOmitted = globalsOmitted;
  if (ctx.findingsOmitted) rep.findingsOmitted = ctx.findingsOmitted;
  // tensors: the report's rows are built when first read (the CLI prints only their count)
  const table = ctx.table;
  if (table && table.length) {
    const root = rep.format === 'pytorch-zip' ? ctx.zipRoot ?? '' : '';
    const before = rep.tensors;
    const build = (): TensorInfo[] => {
      const out = before.slice();
      for (let i = 0; i < table.length; i++) {
        const info: TensorInfo = { name: table.name(i), dtype: table.dtypeOf(i), shape: table.shape(i), bytes: table.bytes(i) };
        const st = table.storageRef(i);
        const inline = table.inline(i);
        if (st) { info.storageKey = root ? `${root}/data/${st.key}` : st.key; info.offset = table.storageOffset(i); }
        else if (inline) info.offset = inline.offset;
        out.push(info);
      }
      return out;
    };
    lazyProperty(rep, 'tensors', build);
    rep.tensorCount = before.length + table.length;
  } else rep.tensorCount = rep.tensors.length;
  // verdict
  const worst = ctx.worst;
  // 'invalid': the file cannot be loaded and nothing in it runs (a broken safetensors / GGUF / .npy header, a
  // pickle every unpickler rejects before importing or calling anything); anything that may run is worse
  let verdict: Verdict = 'safe';
  if (worst === 'dangerous') verdict = 'dangerous';
  else if (worst === 'caution') verdict = 'caution';
  else if (worst === 'invalid') verdict = 'invalid';
  rep.verdict = verdict;
  // weights_only answer
  const torchFormats: ModelFormat[] = ['pytorch-zip', 'pytorch-legacy', 'pytorch-legacy-tar'];
  if (torchFormats.includes(rep.format)) {
    const loads = woReasons.length === 0 && !rep.findings.some((f) => ['SW003', 'SW004', 'SW005', 'SW006'].includes(f.rule));
    rep.weightsOnly = loads
      ? { loads: true, reason: 'every global it imports is in torch\'s weights_only allowlist and it uses only opcodes that unpickler supports' }
      : { loads: false, reason: woReasons.length ? woReasons.join('; ') : 'the pickle holds constructs the restricted unpickler rejects' };
  } else if (rep.format === 'torchscript-zip') {
    rep.weightsOnly = { loads: false, reason: 'TorchScript archives are refused by torch.load(weights_only=True) (use torch.jit.load)' };
  } else if (rep.format === 'pickle' || rep.format === 'joblib') {
    rep.weightsOnly = { loads: false, reason: `not a torch.save file: torch.load would read it as a legacy checkpoint and fail on the magic number` };
  } else {
    rep.weightsOnly = { loads: null, reason: `${rep.format} files are not loaded with torch.load` };
  }
  rep.summary = summarize(rep, ctx.dangerousNames);
}

/** pickle records os.system as posix.system (nt.system on Windows): say both, people look for os.system. */
/** Defines `obj[key]` as a value computed on first read (then kept as a plain, writable property). */
function lazyProperty<T extends object, K extends keyof T>(obj: T, key: K, make: () => T[K]): void {
  Object.defineProperty(obj, key, {
    configurable: true, enumerable: true,
    get() { const v = make(); Object.defineProperty(obj, key, { value: v, writable: true, enumerable: true, configurable: true }); return v; },
    set(v: T[K]) { Object.defineProperty(obj, key, { value: v, writable: true, enumerable: true, configurable: true }); },
  });
}

export function displayName(module: string, name: string): string {
  return module === 'posix' || module === 'nt' ? `os.${name} (${module}.${name})` : `${module}.${name}`;
}

function streamReport(run: PickleRun, member: string | undefined): PickleStreamReport {
  return { member, offset: run.start, length: run.end - run.start, protocol: run.protocol, opcodes: run.opcodes, complete: run.complete, error: run.error };
}

function summarize(rep: ModelReport, dangerous: Map<string, boolean>): string {
  const names = (gs: GlobalRef[]) => [...new Set(gs.map((g) => displayName(g.module, g.name)))];
  switch (rep.verdict) {
    case 'dangerous': {
      if (dangerous.size) {
        const n = [...dangerous.keys()];
        const unvetted = rep.findings.some((f) => f.rule === 'SW008');
        return `Loading this file would ${[...dangerous.values()].some(Boolean) ? 'call' : 'import'} ${n.slice(0, 3).join(', ')}${n.length > 3 ? ` and ${n.length - 3} more` : ''}${unvetted ? ', which no vetted list knows' : ''}: it can run code on your machine. Do not load it unless you trust whoever made it.`;
      }
      const f = rep.findings.find((x) => x.severity === 'dangerous');
      return `Unsafe to load: ${f ? f.message : 'the file could not be fully checked'}`;
    }
    case 'caution': {
      const n = names(rep.globals.filter((g) => g.severity === 'caution'));
      if (n.length) return `Loading this file imports code outside the weights-only allowlist (${n.slice(0, 3).join(', ')}${n.length > 3 ? ` and ${n.length - 3} more` : ''}); nothing known to be harmful.`;
      const f = rep.findings.find((x) => x.severity === 'caution');
      return `Caution: ${f?.message ?? 'the file has suspicious structure'}`;
    }
    case 'invalid': {
      const f = rep.findings.find((x) => x.severity === 'invalid');
      return `Invalid ${rep.format} file: ${f?.message ?? 'its header is broken'}`;
    }
    default:
      if (rep.format === 'safetensors' || rep.format === 'gguf') return `Valid ${rep.format} file with ${rep.tensorCount} tensors: this format cannot run code.`;
      if (rep.format === 'numpy-npy' || rep.format === 'numpy-npz') return `NumPy ${rep.format === 'numpy-npz' ? 'archive' : 'array'} without object data: loads with allow_pickle=False.`;
      return `Only tensor-rebuilding globals (${rep.globals.length}); ${rep.tensorCount} tensors. Safe to load${rep.weightsOnly.loads ? ', also with weights_only=True' : ''}.`;
  }
}


// ---- archives: members scanned as files of their own -------------------------------------------------------
// A tar (not a torch checkpoint), a compressed tar, a 7z, a zip inside a zip, a gzip holding a zip: each member is
// scanned by scanSource, from its bytes, and its report folded into the archive's (members named
// "outer!inner"). Bounded: nesting depth, each member's size in memory, and the bytes all members of the
// outermost file may expand to (shared by every level). A member past a limit is a finding, not silence.

const NESTING_DEPTH = 4;
const nestingOf = new WeakMap<Ctx, { depth: number; budget: { bytes: number } }>();
function nesting(ctx: Ctx): { depth: number; budget: { bytes: number } } {
  let n = nestingOf.get(ctx);
  if (!n) { n = ctx.opts.nesting ?? { depth: 0, budget: { bytes: archiveLimits.totalBytes } }; nestingOf.set(ctx, n); }
  return n;
}

/** Scans `src` (an archive member's bytes) as a file of its own and folds its report into ctx's. */
async function scanArchiveMember(ctx: Ctx, name: string, src: ByteSource): Promise<ModelReport | undefined> {
  const n = nesting(ctx);
  if (n.depth + 1 >= NESTING_DEPTH) {
    add(ctx, 'SW009', `Member "${name}" is an archive nested ${n.depth + 1} levels deep; it was not checked.`, { member: name, severity: 'dangerous' });
    return undefined;
  }
  const d = await scanSource(src, name, { ...ctx.opts, sha256: false, nesting: { depth: n.depth + 1, budget: n.budget } }, false);
  try { foldMemberReport(ctx, name, d.report); } finally { for (const r of d.runs) r.run.release?.(); }
  return d.report;
}

/** The first `n` bytes of a chunk stream, and the whole stream again (those chunks, then the rest). */
async function peekChunks(it: AsyncIterable<Uint8Array>, n: number): Promise<{ head: Uint8Array; chunks: AsyncIterable<Uint8Array> }> {
  const iter = it[Symbol.asyncIterator]();
  const got: Uint8Array[] = [];
  let len = 0, done = false, err: unknown;
  try {
    while (len < n) { const r = await iter.next(); if (r.done) { done = true; break; } got.push(r.value); len += r.value.length; }
  } catch (e) { err = e; }
  const head = Buffer.concat(got).subarray(0, n);
  async function* all(): AsyncGenerator<Uint8Array> {
    yield* got;
    if (err) throw err;
    if (done) return;
    for (;;) { const r = await iter.next(); if (r.done) return; yield r.value; }
  }
  return { head, chunks: all() };
}

function foldMemberReport(ctx: Ctx, name: string, child: ModelReport): void {
  const rep = ctx.report;
  const inner = (m: string | undefined) => (m ? `${name}!${m}` : name);
  for (const f of child.findings) {
    const { rule, message, ...rest } = f;
    // a broken safetensors/GGUF/npy member cannot run code, but the archive as a whole then needs a look
    add(ctx, rule, `${name}: ${message}`, { ...rest, member: inner(f.member), severity: f.severity === 'invalid' ? 'caution' : f.severity });
  }
  ctx.findingsOmitted += child.findingsOmitted ?? 0;
  // the child's verdict saw every finding, also those past its row cap
  const sev: Severity | undefined = child.verdict === 'dangerous' ? 'dangerous' : child.verdict === 'caution' || child.verdict === 'invalid' ? 'caution' : undefined;
  if (sev && (!ctx.worst || RANK[sev] > RANK[ctx.worst])) ctx.worst = sev;
  let omitted = child.globalsOmitted ?? 0;
  for (const g of child.globals) {
    if (rep.globals.length < GLOBALS_SHOWN) rep.globals.push({ ...g, member: inner(g.member) }); else omitted++;
    if (g.severity === 'dangerous') {
      const dn = displayName(g.module, g.name);
      ctx.dangerousNames.set(dn, (ctx.dangerousNames.get(dn) ?? false) || g.called);
    }
  }
  if (omitted) rep.globalsOmitted = (rep.globalsOmitted ?? 0) + omitted;
  for (const p of child.pickles) rep.pickles.push({ ...p, member: inner(p.member) });
  const room = Math.max(0, (ctx.opts.maxTensors ?? 1_000_000) - rep.tensors.length);
  if (room && child.tensorCount) for (const t of child.tensors.slice(0, room)) rep.tensors.push({ ...t, name: `${name}!${t.name}` });
}

function memberRows(ctx: Ctx, members: { name: string; size: number; offset: number }[]): void {
  ctx.report.memberCount = members.length;
  ctx.report.members = members.slice(0, MEMBER_ROWS).map((m) => ({ name: m.name, size: m.size, compressedSize: m.size, method: 0, offset: m.offset }));
}

function memberTooBig(ctx: Ctx, name: string, why: string): void {
  add(ctx, 'SW025', `Member "${name}" was not checked: ${why}.`, { member: name, severity: 'dangerous' });
}

/** A tar archive that is not a torch checkpoint (no "pickle" member): every regular member by its content. */
async function scanTarArchive(ctx: Ctx, src: ByteSource, tar: ReturnType<typeof readTarMembers>): Promise<void> {
  const rep = ctx.report;
  rep.format = 'tar';
  const files = tar.members.filter((m) => m.type === '0' || m.type === '7');
  rep.formatDetail = `tar with ${files.length} file${files.length === 1 ? '' : 's'}`;
  memberRows(ctx, files);
  if (tar.error) add(ctx, 'SW013', `Tar structure is broken: ${tar.error}; the members before it were scanned.`);
  if (tar.limited) add(ctx, 'SW009', `The tar archive has more than ${scanLimits.tarMembers.toLocaleString('en-US')} members; reading stopped at offset ${tar.limited} and the rest was not checked.`, { offset: tar.limited, severity: 'dangerous' });
  for (const m of files) await scanArchiveMember(ctx, m.name, new SliceSource(src, m.offset, m.size));
}

/** A tar inside a compressor (.tar.gz, .tgz, .tar.bz2, .tar.xz), read as it decompresses. */
async function scanCompressedTar(ctx: Ctx, chunks: AsyncIterable<Uint8Array>, comp: Compression): Promise<void> {
  const rep = ctx.report;
  rep.format = 'tar';
  const rows: { name: string; size: number; offset: number }[] = [];
  const n = nesting(ctx);
  try {
    for await (const ev of tarStreamMembers(chunks, { maxMembers: scanLimits.tarMembers, memberLimit: archiveLimits.memberBytes, budget: n.budget })) {
      if (ev.kind === 'error') { add(ctx, 'SW013', `Tar structure is broken: ${ev.message}; the members before it were scanned.`, { offset: ev.offset }); break; }
      if (ev.kind === 'limit') {
        add(ctx, 'SW009', `The tar archive has more than ${scanLimits.tarMembers.toLocaleString('en-US')} members; reading stopped at offset ${ev.offset} of the ${comp} stream and the rest was not checked.`, { offset: ev.offset, severity: 'dangerous' });
        break;
      }
      const m = ev.member;
      rows.push({ name: m.name, size: m.size, offset: m.offset });
      if (m.data) await scanArchiveMember(ctx, m.name, new BytesSource(m.data));
      else memberTooBig(ctx, m.name, m.skipped ?? 'it could not be read');
    }
  } catch (e) {
    if (e instanceof DecompressionLimit) add(ctx, 'SW025', `${(e as Error).message}; the rest of the tar archive was not checked.`);
    else add(ctx, 'SW013', `The ${comp} stream cannot be decompressed (${(e as Error).message}); the members before the error were scanned.`);
  }
  rep.formatDetail = `tar (${comp}) with ${rows.length} file${rows.length === 1 ? '' : 's'}`;
  memberRows(ctx, rows);
}

/** A compressed stream holding something other than a pickle or a tar (a gzipped torch zip, ...): scanned whole. */
async function scanCompressedOther(ctx: Ctx, chunks: AsyncIterable<Uint8Array>, comp: Compression): Promise<void> {
  const rep = ctx.report;
  const parts: Uint8Array[] = [];
  let size = 0;
  const n = nesting(ctx);
  const limit = Math.min(archiveLimits.memberBytes, n.budget.bytes);
  try {
    for await (const c of chunks) {
      size += c.length;
      if (size > limit) { memberTooBig(ctx, `(${comp} stream)`, `it expands to more than ${limit} bytes`); return; }
      parts.push(c);
    }
  } catch (e) {
    if (e instanceof DecompressionLimit) { add(ctx, 'SW025', `${(e as Error).message}; the rest was not checked.`); return; }
    add(ctx, 'SW004', `The ${comp} stream cannot be decompressed (${(e as Error).message}); what was read before the error is scanned.`, { severity: 'dangerous' });
  }
  n.budget.bytes -= size;
  rep.format = 'unknown';
  rep.formatDetail = `${comp}-compressed file`;
  const child = await scanArchiveMember(ctx, `(${comp} stream)`, new BytesSource(Buffer.concat(parts)));
  // named after what it holds: torch.load does not decompress, whoever unpacks it loads the inner file
  if (child) {
    const zipLike: ModelFormat[] = ['pytorch-zip', 'torchscript-zip', 'numpy-npz', 'zip'];
    rep.format = zipLike.includes(child.format) ? 'zip' : ['pytorch-legacy', 'pytorch-legacy-tar'].includes(child.format) ? 'unknown' : child.format;
    rep.formatDetail = `${comp}-compressed ${child.formatDetail ?? child.format}`;
  }
}

async function scan7z(ctx: Ctx, src: ByteSource): Promise<void> {
  const rep = ctx.report;
  rep.format = '7z';
  let listing: Awaited<ReturnType<typeof list7z>>;
  try { listing = await list7z(src); } catch (e) {
    add(ctx, 'SW013', `The 7z archive cannot be read (${(e as Error).message}); nothing in it was checked.`);
    return;
  }
  const files = listing.entries.filter((e) => !e.folder);
  rep.formatDetail = `7z with ${files.length} file${files.length === 1 ? '' : 's'}`;
  memberRows(ctx, files.map((f) => ({ name: f.name, size: f.size, offset: 0 })));
  if (listing.error && files.length === 0) {
    add(ctx, 'SW013', `The 7z archive cannot be read (${listing.encryptedHeaders ? 'its file list is encrypted, or the archive is damaged' : listing.error}); nothing in it was checked.`);
    return;
  }
  if (listing.error) add(ctx, 'SW013', `7-Zip reports a problem with the archive: ${listing.error}.`);
  if (files.length > scanLimits.tarMembers) {
    add(ctx, 'SW009', `The 7z archive has more than ${scanLimits.tarMembers.toLocaleString('en-US')} files; the rest were not checked.`, { severity: 'dangerous' });
    files.length = scanLimits.tarMembers;
  }
  const n = nesting(ctx);
  const encrypted = files.filter((f) => f.encrypted);
  if (encrypted.length) add(ctx, 'SW013', `${encrypted.length} member(s) of the 7z archive are encrypted (${encrypted.slice(0, 3).map((f) => `"${f.name}"`).join(', ')}); they cannot be checked.`, { member: encrypted[0].name });
  for (let from = 0; from < files.length;) {
    let pass: Awaited<ReturnType<typeof extract7z>>;
    try { pass = await extract7z(src, files, { from, passBytes: archiveLimits.sevenZipPassBytes, memberLimit: archiveLimits.memberBytes, budget: n.budget }); } catch (e) {
      add(ctx, 'SW013', `The 7z archive cannot be decoded (${(e as Error).message}); its members were not checked.`);
      return;
    }
    if (pass.error) add(ctx, 'SW013', `7-Zip could not decode every member: ${pass.error}. What it decoded was scanned.`);
    for (const m of pass.members) {
      if (m.data) await scanArchiveMember(ctx, m.name, new BytesSource(m.data));
      else if (m.skipped) memberTooBig(ctx, m.name, m.skipped);
      else if (!files.find((f) => f.name === m.name)?.encrypted) add(ctx, 'SW013', `Member "${m.name}" could not be decoded; it was not checked.`, { member: m.name });
    }
    if (pass.error || pass.next <= from) break;
    from = pass.next;
  }
}

/** Zip members that are containers of their own (a zip, tar, 7z or compressed stream inside a generic zip). */
function looksLikeContainer(head: Uint8Array): boolean {
  return startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || looksLike7z(head) || detectCompression(head) !== undefined;
}

async function scanNestedZipMember(ctx: Ctx, src: ByteSource, e: ZipEntry): Promise<void> {
  const n = nesting(ctx);
  if (e.method === 0) { await scanArchiveMember(ctx, e.name, new SliceSource(src, e.dataOffset, Math.max(0, Math.min(e.compressedSize, src.size - e.dataOffset)))); return; }
  const limit = Math.min(archiveLimits.memberBytes, n.budget.bytes);
  if (e.uncompressedSize > limit) { memberTooBig(ctx, e.name, `it declares ${e.uncompressedSize} bytes, more than the ${limit} bytes a member may have to be scanned`); return; }
  let data: Uint8Array;
  try { data = await readMember(src, e, limit); } catch (err) {
    if (/larger than/.test((err as Error).message)) memberTooBig(ctx, e.name, (err as Error).message);
    else add(ctx, 'SW013', `Member "${e.name}" cannot be read: ${(err as Error).message}.`, { member: e.name });
    return;
  }
  n.budget.bytes -= data.length;
  await scanArchiveMember(ctx, e.name, new BytesSource(data));
}
