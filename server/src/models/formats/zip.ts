// Zip, as each loader that accepts it reads it: torch.load (miniz: from a local header at offset 0), numpy.load
// and Python's zipfile (from the end), and zip tools that check the comment length (see ZipReader in
// zipDirectory.ts). Which members torch reads (data.pkl first, its storages never sniffed, TorchScript sources and
// text records skipped), .npy members (.npz), containers inside a generic zip, members hidden in gaps or known only
// by their local headers, and archives appended to or hidden in other bytes.
import { BytesSource, FileSource, SliceSource, startsWith, type ByteSource } from '../source';
import { Cursor, runWithChunks } from '../pickle/cursor';
import type { PickleRun } from '../pickle/machine';
import { startsPickle } from '../pickleStart';
import { extractRunTensors, withPersistedStorages, type StorageTable, type TensorTable, type TensorWalkResult } from '../pickle/tensors';
import { pooled } from '../strTable';
import { giveArrayBuffer } from '../bufferPool';
import type { ModelFormat, ModelReport } from '../types';
import { add, DECOMPRESS_LIMIT, MEMBER_ROWS, scanLimits, type ScanContext } from './context';
import { machineOpts, pickleSequence, recordRun, runPicklesSync, useInventory } from './pickleRuns';
import { readZipDirectory, memberChunks, readMember, endRecords, locateMainPickle, ZIP_READERS,
  type ZipEntry, type ZipDirectory, type EndRecord, type ZipReader } from './zipDirectory';
import { readZipDirectoryInWorker } from './zipParallel';
import { looksLikeNpy, scanNpyMember } from './npy';
import { looksLikeContainer } from './compressed';
import { archiveLimits, memberTooBig, nesting, scanArchiveMember } from './archives';
import { isKerasArchive, isKerasOwnMember, readKerasArchive } from './keras';

/** A file that starts with a local header: torch.load reads it as a zip ('P' is PERSID: pickle.load raises on it,
 *  no persistent_load), and so does every other zip reader. */
export async function readZip(ctx: ScanContext, src: ByteSource): Promise<void> {
  await scanZip(ctx, src, 0);
}

/** A file that starts with an end record: numpy.load reads it as a zip (an empty .npz is nothing else); torch does not. */
export async function readZipEndFirst(ctx: ScanContext, src: ByteSource): Promise<void> {
  await scanZip(ctx, src, 0, false, undefined, zipReaders(true));
}

/** An archive in bytes torch.load does not read as a zip (it starts with no local header): Python's zipfile
 *  (numpy.load) and other zip tools find it from the end. Returns whether one with members was found. */
export async function scanHiddenZip(ctx: ScanContext, src: ByteSource, from = 0): Promise<boolean> {
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
 * Scans an archive as each of its loaders reads it (`readers`; see ZipReader in zipDirectory.ts): the first reading
 * that yields a directory is the file's (torch's, for a file starting with a local header); every other
 * reading that sees another archive is reported (SW018) and its members are scanned too.
 */
export async function scanZip(ctx: ScanContext, src: ByteSource, base: number, secondary = false,
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
async function scanOtherZipReadings(ctx: ScanContext, src: ByteSource, base: number, readers: readonly ZipReader[],
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

function earlyMainPickle(ctx: ScanContext, src: ByteSource, end: EndRecord): EarlyMain | undefined {
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

const NPY_EXT = new TextEncoder().encode('.npy');
const TORCH_TEXT_RECORDS = new Set(['byteorder', 'version', '.data/version', '.data/serialization_id']);

/** `other`: a reading other than the file's own (scanOtherZipReadings): members whose bytes were scanned already
 *  are skipped, and neither the tensor inventory nor gaps are taken from it. */
async function scanZipMembers(ctx: ScanContext, src: ByteSource, base: number, secondary: boolean, dir: ZipDirectory, early?: EarlyMain, other = false): Promise<void> {
  const rep = ctx.report;
  const count = dir.count;
  const root = dir.root();
  const has = (rest: string) => dir.findInRoot(rest) >= 0;
  let format: ModelFormat = 'zip';
  if (has('/constants.pkl') || dir.anyInRoot('/code/')) format = 'torchscript-zip';
  else if (has('/data.pkl')) format = 'pytorch-zip';
  else if (isKerasArchive(dir)) format = 'keras';
  else if (count) {
    let all = true;
    for (let i = 0; i < count && all; i++) all = dir.nameEndsWith(i, NPY_EXT);
    if (all) format = 'numpy-npz';
  }
  if (!secondary) {
    rep.format = format;
    ctx.zipRoot = format === 'pytorch-zip' ? root : undefined;
    rep.formatDetail = `${format === 'zip' ? 'zip' : format} with ${count} member${count === 1 ? '' : 's'}${dir.zip64 ? ' (zip64)' : ''}${root && format !== 'numpy-npz' && format !== 'keras' ? `, root folder "${root}"` : ''}`;
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
  let mainRun: PickleRun | undefined;
  let allStoragesMarked = false;
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
      if ((format === 'zip' || format === 'keras') && looksLikeContainer(head)) { await scanNestedZipMember(ctx, src, e); continue; }
      // keras.ts reads config.json, metadata.json and model.weights.h5 (an HDF5 file starts with NEWFALSE, 0x89)
      if (format === 'keras' && isKerasOwnMember(e.name)) continue;
      // TorchScript sources (code/**/*.py) are compiled by torch.jit.load, never unpickled ("class X" reads as GLOBAL)
      if (format === 'torchscript-zip' && lower.endsWith('.py') && lower.includes('/code/')) continue;
      // torch reads its text records (byteorder "little", version "3") as strings, never unpickles them
      if ((format === 'pytorch-zip' || format === 'torchscript-zip') && TORCH_TEXT_RECORDS.has(e.name.slice(root.length + 1)) && e.uncompressedSize <= 64) continue;
      const sniffed = head.length > 0 && startsPickle(head[0]);
      if (!named && !sniffed) continue;
      // a data/ member that starts like a pickle: first mark every storage data.pkl names, walked or not
      if (sniffed && !named && mainRun && !allStoragesMarked && (format === 'pytorch-zip' || format === 'torchscript-zip') && e.name.startsWith(`${root}/data/`)) {
        allStoragesMarked = true;
        const members = withPersistedStorages(mainRun, (named) => storageMembers(dir, named));
        for (let k = 0; k < members.length; k++) if (members[k] >= 0) isStorage[members[k]] = 1;
        giveArrayBuffer(members.buffer as ArrayBuffer);
        if (isStorage[i] && (!dir.duplicates.size || !dir.duplicates.has(dir.name(i)))) continue;
      }
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
        mainRun = runs[0];
        const walked = pre?.walked ?? extractRunTensors(runs[0], ctx.opts.maxTensors, undefined, true);
        if (!other) useInventory(ctx, walked);
        const members = storageMembers(dir, walked.storages);
        // torch.jit.load reads a TorchScript archive's data/ storages as raw bytes too (torch.load hands it the file)
        if (format === 'pytorch-zip' || format === 'torchscript-zip') for (let k = 0; k < members.length; k++) if (members[k] >= 0) isStorage[members[k]] = 1;
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
  if (format === 'keras' && !other) await readKerasArchive(ctx, src, dir, secondary);
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

async function runMemberPickles(ctx: ScanContext, src: ByteSource, e: ZipEntry, max: number): Promise<PickleRun[]> {
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

function checkZipStorages(ctx: ScanContext, dataPrefix: string, dir: ZipDirectory, table: TensorTable, members: Int32Array): void {
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

async function scanZipByLocalHeaders(ctx: ScanContext, src: ByteSource): Promise<void> {
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
async function scanLocalMember(ctx: ScanContext, src: ByteSource, pos: number, hidden = false): Promise<number | undefined> {
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
async function scanZipGaps(ctx: ScanContext, src: ByteSource, dir: ZipDirectory): Promise<void> {
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

async function scanNestedZipMember(ctx: ScanContext, src: ByteSource, e: ZipEntry): Promise<void> {
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
