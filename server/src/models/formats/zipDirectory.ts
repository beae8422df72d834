// Lazy zip reader: reads the end-of-central-directory, the central directory and, per member, its local
// header — never the data of members we do not scan. Written by hand (not yauzl) because we must accept
// what torch's miniz-based reader accepts (flag bits and CRCs are not checked, any root folder) and report
// what other readers would see differently (local/central name mismatches, duplicates), which yauzl hides
// or rejects. Deflated members are inflated as a stream with node's zlib.
import * as zlib from 'node:zlib';
import { ByteSource, u16, u32, u64 } from '../source';
import { giveArrayBuffer, giveBytes, takeArrayBuffer, takeBytes } from '../bufferPool';
import { bytesHash, probeBytes } from '../strTable';

/** One member as an object (built on demand from the directory's columns). */
export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  dataOffset: number;          // -1 when the local header is unreadable
  problems: readonly string[]; // local/central disagreements and bounds problems
}

const EOCD = 0x06054b50, EOCD64 = 0x06064b50, EOCD64_LOC = 0x07064b50, CDH = 0x02014b50, LFH = 0x04034b50;
const FNV_OFFSET = 0x811c9dc5 | 0;
const utf8 = new TextDecoder('utf-8');
const encoder = new TextEncoder();
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;
const NO_PROBLEMS: readonly string[] = Object.freeze([]);

export class ZipError extends Error {}

/** A ZipDirectory crossing threads (see toMessage / fromMessage). */
export interface ZipDirectoryMessage {
  count: number; eocdOffset: number; centralDirOffset: number; zip64: boolean; comment: string; prefixBytes: number; cdConsumed: number;
  columns: ArrayBuffer; names: ArrayBuffer; namesLength: number; slots: ArrayBuffer; slotsLength: number;
  problems: [number, string[]][]; duplicates: [string, number][];
  data?: { slots: ArrayBuffer; slotsLength: number; hashes: ArrayBuffer; prefixLen: number };
}

/**
 * The central directory as columns. Why not one object per member: torch checkpoints hold one member per
 * storage, 50,000+ of them, and building an object and a name string for each cost more than the whole pickle
 * analysis (on VMs every fresh page of memory is expensive). Names stay bytes, compared and hashed as bytes
 * (the way torch's miniz reader looks members up), and are decoded only when read.
 */
export class ZipDirectory {
  readonly duplicates = new Map<string, number>();   // names more than one entry carries, with their counts
  private readonly csize: Float64Array;
  private readonly usize: Float64Array;
  private readonly lho: Float64Array;
  private readonly doff: Float64Array;
  private readonly crc: Uint32Array;
  private readonly hashes: Int32Array;
  private readonly nameStart: Int32Array;     // names[nameStart[i] .. nameStart[i+1]) is entry i's name
  private readonly meth: Uint16Array;
  private readonly flg: Uint16Array;
  names: Uint8Array = new Uint8Array(0);
  private slots: Int32Array | undefined;      // hash index: entry + 1, 0 = empty (pooled; rebuilt on demand)
  private readonly problemMap = new Map<number, string[]>();
  private scratch = new Uint8Array(256);
  private columns: ArrayBuffer;
  private released = false;
  /** Bytes of the directory the `count` entries take (readZipDirectory): less than its size when entries follow
   *  that the count leaves out (Python's zipfile reads them). */
  cdConsumed = 0;

  constructor(readonly count: number, readonly eocdOffset: number, readonly centralDirOffset: number, readonly zip64: boolean,
    readonly comment: string, /** bytes before the first local header that the directory does not account for */ readonly prefixBytes: number,
    columns?: ArrayBuffer) {
    const n = count;
    // one pooled buffer for all columns (given back by release())
    const buf = this.columns = columns ?? takeArrayBuffer(n * (4 * 8 + 4 + 4 + 4 + 2 * 2) + 8);
    let at = 0;
    const f64 = () => { const a = new Float64Array(buf, at, n); at += n * 8; return a; };
    this.csize = f64(); this.usize = f64(); this.lho = f64(); this.doff = f64();
    this.crc = new Uint32Array(buf, at, n); at += n * 4;
    this.hashes = new Int32Array(buf, at, n); at += n * 4;
    this.nameStart = new Int32Array(buf, at, n + 1); at += (n + 1) * 4;
    this.meth = new Uint16Array(buf, at, n); at += n * 2;
    this.flg = new Uint16Array(buf, at, n);
  }

  method(i: number): number { return this.meth[i]; }
  flags(i: number): number { return this.flg[i]; }
  compressedSize(i: number): number { return this.csize[i]; }
  uncompressedSize(i: number): number { return this.usize[i]; }
  localHeaderOffset(i: number): number { return this.lho[i]; }
  /** Where the member's data starts (after its local header), -1 when the local header is unreadable. */
  dataOffset(i: number): number { return this.doff[i]; }
  hasProblems(): boolean { return this.problemMap.size > 0; }
  problems(i: number): readonly string[] { return this.problemMap.size ? this.problemMap.get(i) ?? NO_PROBLEMS : NO_PROBLEMS; }
  /** Whether entry i's name is the `len` bytes of `b` at `from`. */
  nameEquals(i: number, b: Uint8Array, from: number, len: number): boolean {
    const s = this.nameStart[i];
    if (this.nameStart[i + 1] - s !== len) return false;
    for (let k = 0; k < len; k++) if (this.names[s + k] !== b[from + k]) return false;
    return true;
  }
  nameLength(i: number): number { return this.nameStart[i + 1] - this.nameStart[i]; }

  name(i: number): string {
    if (this.released) throw new Error('zip directory used after release()');
    const s = this.nameStart[i], e = this.nameStart[i + 1];
    for (let k = s; k < e; k++) if (this.names[k] >= 0x80) return utf8.decode(this.names.subarray(s, e));
    return latin1Slice.call(this.names, s, e);
  }

  entry(i: number): ZipEntry {
    return {
      name: this.name(i), method: this.meth[i], flags: this.flg[i], crc32: this.crc[i], compressedSize: this.csize[i],
      uncompressedSize: this.usize[i], localHeaderOffset: this.lho[i], dataOffset: this.doff[i], problems: this.problems(i),
    };
  }

  /** Whether entry i's name starts (or ends) with the UTF-8 bytes of `s`. */
  nameStartsWith(i: number, s: Uint8Array): boolean { return this.nameHas(this.nameStart[i], i, s); }
  nameEndsWith(i: number, s: Uint8Array): boolean { return this.nameHas(this.nameStart[i + 1] - s.length, i, s); }
  private nameHas(at: number, i: number, s: Uint8Array): boolean {
    if (at < this.nameStart[i] || at + s.length > this.nameStart[i + 1]) return false;
    // from the end: names under one root share their start, so a mismatch shows there first
    for (let k = s.length - 1; k >= 0; k--) if (this.names[at + k] !== s[k]) return false;
    return true;
  }

  /** Entry 0's name up to its first '/': torch's archive root folder ('' without entries). */
  root(): string {
    if (this.count === 0) return '';
    const n = this.name(0), k = n.indexOf('/');
    return k < 0 ? n : n.slice(0, k);
  }

  /** Whether any entry's name starts with root() + `mid` (the root taken as bytes, like findInRoot). */
  anyInRoot(mid: string): boolean {
    const prefix = this.scratch.slice(0, this.put(mid, this.putRoot()));
    for (let i = 0; i < this.count; i++) if (this.nameStartsWith(i, prefix)) return true;
    return false;
  }

  /** Index of the first entry named root() + `b` + `c`, with the root taken as bytes (it may not be valid UTF-8), or -1. */
  findInRoot(b: string, c = ''): number { return this.findKey(this.put(c, this.put(b, this.putRoot()))); }

  /** Entries named root() + '/data/' + key, indexed by the FNV-1a hash of the key bytes alone (torch's storage
   *  members; built once, where the directory is read). */
  private dataSlots: Int32Array | undefined;
  private dataPrefixLen = 0;
  private dataHashes: Int32Array | undefined;
  buildDataIndex(): void {
    const plen = this.put('/data/', this.putRoot());
    const prefix = this.scratch.slice(0, plen);
    let cap = 16;
    while (cap < this.count * 2) cap *= 2;
    const slots = new Int32Array(takeArrayBuffer(cap * 4), 0, cap).fill(0);
    const hashes = new Int32Array(takeArrayBuffer(Math.max(1, this.count) * 4), 0, Math.max(1, this.count)).fill(0);   // 0: not a data member
    const names = this.names;
    for (let i = 0; i < this.count; i++) {
      const s = this.nameStart[i], e = this.nameStart[i + 1];
      if (e - s <= plen) continue;
      let k = 0;
      while (k < plen && names[s + k] === prefix[k]) k++;
      if (k < plen) continue;
      let h = FNV_OFFSET;
      for (let q = s + plen; q < e; q++) h = Math.imul(h ^ names[q], 0x01000193);
      h |= 0;
      if (h === 0) h = 1;   // 0 marks the other members; the key hash is only a hint here (names are compared)
      hashes[i] = h;
      // the first entry of a name wins, as in the name index
      const r = probeBytes(slots, hashes, this.nameStart, names, plen, names, s + plen, e - s - plen, h);
      if (r < 0) slots[~r] = i + 1;
    }
    this.dataSlots = slots; this.dataHashes = hashes; this.dataPrefixLen = plen;
  }

  /** Calls `f(i, names, at, len, hash)` for each member named root() + '/data/' + key, in directory order, with the
   *  key's bytes at names[at .. at+len) and their FNV-1a hash (bytesHash). */
  forEachDataMember(f: (i: number, names: Uint8Array, at: number, len: number, hash: number) => void): void {
    if (!this.dataSlots) this.buildDataIndex();
    const hashes = this.dataHashes!, plen = this.dataPrefixLen, names = this.names;
    for (let i = 0; i < this.count; i++) {
      const h = hashes[i];
      if (h === 0) continue;
      const s = this.nameStart[i] + plen, len = this.nameStart[i + 1] - s;
      f(i, names, s, len, h === 1 ? bytesHash(names, s, len) : h);   // 1 may stand for a hash of 0 (see buildDataIndex)
    }
  }

  /** Index of the first entry named root() + '/data/' + the `len` bytes of `src` at `at`, or -1. */
  findData(src: Uint8Array, at: number, len: number): number {
    if (!this.dataSlots) this.buildDataIndex();
    let hash = bytesHash(src, at, len);
    if (hash === 0) hash = 1;
    const r = probeBytes(this.dataSlots!, this.dataHashes!, this.nameStart, this.names, this.dataPrefixLen, src, at, len, hash);
    return r < 0 ? -1 : r;
  }

  /** Writes the root folder's bytes (see root()) at the start of the scratch buffer; returns their length. */
  private putRoot(): number {
    let n = 0;
    if (this.count) {
      const s = this.nameStart[0], e = this.nameStart[1];
      let k = s;
      while (k < e && this.names[k] !== 0x2f) k++;
      if (k - s > this.scratch.length) this.scratch = new Uint8Array(2 * (k - s));
      for (let q = s; q < k; q++) this.scratch[n++] = this.names[q];
    }
    return n;
  }

  /** Index of the first entry named `a + b + c` (compared as UTF-8 bytes, as zip readers do), or -1. */
  find(a: string, b = '', c = ''): number {
    return this.findKey(this.put(c, this.put(b, this.put(a, 0))));
  }

  private findKey(n: number): number {
    const key = this.scratch;
    let h = FNV_OFFSET;
    for (let k = 0; k < n; k++) h = Math.imul(h ^ key[k], 0x01000193);
    return this.findBytes(key, 0, n, h | 0);
  }

  /** Writes the UTF-8 bytes of `s` into the scratch buffer at `n`; returns the new length. */
  private put(s: string, n: number): number {
    if (s.length === 0) return n;
    if (n + s.length * 3 > this.scratch.length) {
      const g = new Uint8Array(Math.max(this.scratch.length * 2, n + s.length * 3));
      g.set(this.scratch.subarray(0, n)); this.scratch = g;
    }
    const d = this.scratch;
    for (let k = 0; k < s.length; k++) {
      const ch = s.charCodeAt(k);
      if (ch >= 0x80) return n + encoder.encodeInto(s.slice(k), d.subarray(n)).written;
      d[n++] = ch;
    }
    return n;
  }

  private findBytes(key: Uint8Array, from: number, len: number, hash: number): number {
    const r = probeBytes(this.slots ?? this.buildIndex(), this.hashes, this.nameStart, this.names, 0, key, from, len, hash);
    return r < 0 ? -1 : r;
  }

  /** Builds the name index; records duplicated names. */
  buildIndex(): Int32Array {
    let cap = 16;
    while (cap < this.count * 2) cap *= 2;
    const slots = new Int32Array(takeArrayBuffer(cap * 4), 0, cap);
    slots.fill(0);
    this.slots = slots;
    const names = this.names;
    const recordDuplicates = this.duplicates.size === 0;
    for (let i = 0; i < this.count; i++) {
      const s = this.nameStart[i];
      const r = probeBytes(slots, this.hashes, this.nameStart, names, 0, names, s, this.nameStart[i + 1] - s, this.hashes[i]);
      if (r < 0) slots[~r] = i + 1;
      else if (recordDuplicates) { const n = this.name(i); this.duplicates.set(n, (this.duplicates.get(n) ?? 1) + 1); }
    }
    return slots;
  }

  /** Gives the directory's memory back to the scratch pool (or to the worker that read it): nothing may use it afterwards. */
  release(): void {
    if (this.released) return;
    this.released = true;
    const bufs = [this.columns];
    if (this.slots) bufs.push(this.slots.buffer as ArrayBuffer);
    if (this.dataSlots) bufs.push(this.dataSlots.buffer as ArrayBuffer, this.dataHashes!.buffer as ArrayBuffer);
    this.dataSlots = undefined; this.dataHashes = undefined;
    if (this.names.length) bufs.push(this.names.buffer as ArrayBuffer);
    this.slots = undefined;
    this.names = new Uint8Array(0);
    if (this.giveBack) this.giveBack(bufs); else for (const b of bufs) giveArrayBuffer(b);
  }
  private giveBack: ((bufs: ArrayBuffer[]) => void) | undefined;

  /** The directory as a message for another thread, its buffers in `transfer` (this object is unusable afterwards). */
  toMessage(): { msg: ZipDirectoryMessage; transfer: ArrayBuffer[] } {
    const slots = this.slots ?? this.buildIndex();
    const msg: ZipDirectoryMessage = {
      count: this.count, eocdOffset: this.eocdOffset, centralDirOffset: this.centralDirOffset, zip64: this.zip64, comment: this.comment,
      prefixBytes: this.prefixBytes, cdConsumed: this.cdConsumed, columns: this.columns, names: this.names.buffer as ArrayBuffer, namesLength: this.names.length,
      slots: slots.buffer as ArrayBuffer, slotsLength: slots.length, problems: [...this.problemMap], duplicates: [...this.duplicates],
      data: this.dataSlots ? { slots: this.dataSlots.buffer as ArrayBuffer, slotsLength: this.dataSlots.length, hashes: this.dataHashes!.buffer as ArrayBuffer, prefixLen: this.dataPrefixLen } : undefined,
    };
    const transfer = [this.columns, this.names.buffer as ArrayBuffer, slots.buffer as ArrayBuffer,
      ...(msg.data ? [msg.data.slots, msg.data.hashes] : [])].filter((b, i, all) => b.byteLength > 0 && all.indexOf(b) === i);
    this.released = true;
    return { msg, transfer };
  }

  /** A directory from toMessage(); `giveBack` receives its buffers on release(). */
  static fromMessage(m: ZipDirectoryMessage, giveBack?: (bufs: ArrayBuffer[]) => void): ZipDirectory {
    const d = new ZipDirectory(m.count, m.eocdOffset, m.centralDirOffset, m.zip64, m.comment, m.prefixBytes, m.columns);
    d.cdConsumed = m.cdConsumed;
    d.names = new Uint8Array(m.names, 0, m.namesLength);
    d.slots = new Int32Array(m.slots, 0, m.slotsLength);
    for (const [i, ps] of m.problems) d.problemMap.set(i, ps);
    for (const [n, k] of m.duplicates) d.duplicates.set(n, k);
    if (m.data) {
      d.dataSlots = new Int32Array(m.data.slots, 0, m.data.slotsLength);
      d.dataHashes = new Int32Array(m.data.hashes, 0, Math.max(1, m.count));
      d.dataPrefixLen = m.data.prefixLen;
    }
    d.giveBack = giveBack;
    return d;
  }

  /** Whether local headers, in entry order, sit at increasing offsets (the usual layout). */
  inOffsetOrder(): boolean {
    for (let i = 1; i < this.count; i++) if (this.lho[i] < this.lho[i - 1]) return false;
    return true;
  }

  // ---- filled by readZipDirectory ----
  setEntry(i: number, method: number, flags: number, crc: number, csize: number, usize: number, lho: number): void {
    this.meth[i] = method; this.flg[i] = flags; this.crc[i] = crc; this.csize[i] = csize; this.usize[i] = usize; this.lho[i] = lho; this.doff[i] = -1;
  }
  setNameStart(i: number, start: number): void { this.nameStart[i] = start; }
  setNameHash(i: number, hash: number): void { this.hashes[i] = hash; }
  setNames(names: Uint8Array): void { this.names = names; }
  setDataOffset(i: number, at: number): void { this.doff[i] = at; }
  problem(i: number, p: string): void {
    const l = this.problemMap.get(i);
    if (l) l.push(p); else this.problemMap.set(i, [p]);
  }
}

/**
 * Which loader's reading of the archive. Each finds the end record and the directory its own way, so a crafted
 * file (a second end record inside the first one's comment, a zip64 locator pointing elsewhere, bytes in front
 * of the archive, a count that disagrees with the directory's size) can show each of them another archive:
 *  - 'miniz': torch.load (PyTorchFileReader over miniz). mz_zip_reader_locate_header_sig scans back from the end
 *    in 4 KB blocks (3 bytes of overlap) until 64 KB + 22 bytes are covered and takes the last signature with at
 *    least 22 bytes after it, whatever its comment length says. A zip64 locator just before it is followed to
 *    the record it points at (a locator pointing past the end fails the archive); when that is not a zip64
 *    record the 32-bit values stand. Offsets are used as written; the count decides how many entries are read.
 *  - 'zipfile': numpy.load and Python's zipfile (3.11 `_EndRecData`, `_EndRecData64`, `_RealGetContents`). The
 *    last 22 bytes when they are an end record without a comment, else the last signature in the last 64 KB + 22
 *    bytes (with fewer than 22 bytes after it the file is not a zip). The zip64 record is read just before the
 *    locator (not where the locator points). The directory is the `size` bytes before the end record: offsets
 *    are shifted by the difference ("concat", bytes in front of the archive), and entries are read until they
 *    fill that size, whatever the count says.
 *  - 'strict': zip tools that check the comment length (Go's archive/zip, ...): the last signature whose comment
 *    fits in the file; the zip64 record where the locator points; offsets shifted like zipfile's; the count.
 */
export type ZipReader = 'miniz' | 'zipfile' | 'strict';
export const ZIP_READERS: readonly ZipReader[] = ['miniz', 'zipfile', 'strict'];

/** Where a reader finds the central directory (zip64 included). */
export interface EndRecord {
  reader: ZipReader;
  eocdOffset: number;
  /** Entries to read; -1: as many as fill `cdSize` (Python's zipfile). */
  count: number;
  cdSize: number;
  /** Where the directory is read (absolute: the written offset plus `shift`). */
  cdOffset: number;
  /** Added to every local header offset: bytes in front of the archive the directory does not count. */
  shift: number;
  /** max(0, shift), for reports. */
  prefixBytes: number;
  comment: string;
  zip64: boolean;
}

/** The bytes any reader searches for the end record: miniz covers up to 4 KB more than 64 KB + 22. */
const TAIL_SEARCHED = 0xffff + 22 + 4096;

/** The end record as `reader` finds it (default: torch's miniz). */
export function readEndRecord(src: ByteSource, reader: ZipReader = 'miniz'): EndRecord {
  const r = endRecords(src, [reader])[reader];
  if (r instanceof Error) throw r;
  return r!;
}

/** The end record each reader finds (a ZipError for a reader that rejects the file), from one read of the tail. */
export function endRecords(src: ByteSource, readers: readonly ZipReader[] = ZIP_READERS): Partial<Record<ZipReader, EndRecord | ZipError>> {
  const size = src.size;
  const tailStart = Math.max(0, size - TAIL_SEARCHED);
  const tail = src.read(tailStart, size - tailStart);
  const out: Partial<Record<ZipReader, EndRecord | ZipError>> = {};
  for (const reader of readers) {
    try { out[reader] = endRecordOf(src, tail, tailStart, reader); } catch (e) {
      if (!(e instanceof ZipError)) throw e;
      out[reader] = e;
    }
  }
  return out;
}

function isSigAt(b: Uint8Array, i: number, sig: number): boolean { return i >= 0 && i + 4 <= b.length && u32(b, i) === sig; }

function endRecordOf(src: ByteSource, tail: Uint8Array, tailStart: number, reader: ZipReader): EndRecord {
  const size = src.size;
  let at = -1;   // the end record's offset in the file
  if (reader === 'miniz') {
    if (size < 22) throw new ZipError('the file is too small for an end record (torch\'s miniz)');
    // the blocks mz_zip_reader_locate_header_sig reads: from the end back, until 64 KB + 22 bytes are covered
    let lowest = Math.max(size - 4096, 0);
    while (!(lowest === 0 || size - lowest >= 0xffff + 22)) lowest = Math.max(lowest - 4093, 0);
    for (let p = size - 22; p >= lowest; p--) if (isSigAt(tail, p - tailStart, EOCD)) { at = p; break; }
    if (at < 0) throw new ZipError('no end-of-central-directory record within 64 KB of the end (torch\'s miniz)');
  } else if (reader === 'zipfile') {
    if (size < 22) throw new ZipError('the file is too small for an end record (Python\'s zipfile)');
    const last = size - 22;
    if (isSigAt(tail, last - tailStart, EOCD) && u16(tail, last - tailStart + 20) === 0) at = last;
    else {
      const from = Math.max(size - (1 << 16) - 22, 0);
      for (let p = size - 4; p >= from; p--) if (isSigAt(tail, p - tailStart, EOCD)) { at = p; break; }
      if (at < 0) throw new ZipError('no end-of-central-directory record in the last 64 KB (Python\'s zipfile)');
      if (at + 22 > size) throw new ZipError(`the last end-record signature, at offset ${at}, has fewer than 22 bytes after it (Python's zipfile)`);
    }
  } else {
    const from = Math.max(size - (0xffff + 22), 0);
    for (let p = size - 22; p >= from; p--) {
      if (isSigAt(tail, p - tailStart, EOCD) && p + 22 + u16(tail, p - tailStart + 20) <= size) { at = p; break; }
    }
    if (at < 0) throw new ZipError('no end-of-central-directory record whose comment fits in the file');
  }
  const e = at - tailStart;
  const commentLen = u16(tail, e + 20);
  const comment = utf8.decode(tail.subarray(e + 22, Math.min(tail.length, e + 22 + commentLen)));
  let count = u16(tail, e + 10);
  const onDisk = u16(tail, e + 8);
  let disk = u16(tail, e + 4), cdDisk = u16(tail, e + 6);
  let cdSize = u32(tail, e + 12);
  let written = u32(tail, e + 16);
  let zip64 = false;
  let locDisks = 1;
  if (reader === 'miniz' ? at >= 76 : at >= 20) {
    const loc = src.read(at - 20, 20);
    if (loc.length === 20 && u32(loc, 0) === EOCD64_LOC) {
      locDisks = u32(loc, 16);
      let recAt: number;
      if (reader === 'zipfile') {
        if (u32(loc, 4) !== 0 || locDisks > 1) throw new ZipError('zipfiles that span multiple disks are not supported (Python\'s zipfile)');
        recAt = at - 20 - 56;
        if (recAt < 0) throw new ZipError('the zip64 end record would start before the file (Python\'s zipfile)');
      } else {
        recAt = u64(loc, 8);
        if (recAt > size - 56) throw new ZipError(`the zip64 locator points past the end of the file, at offset ${recAt}${reader === 'miniz' ? ' (torch\'s miniz)' : ''}`);
      }
      const rec = src.read(recAt, 56);
      // no zip64 record where the reader looks: the 32-bit values stand (miniz and Python's zipfile both do so)
      if (rec.length === 56 && u32(rec, 0) === EOCD64) {
        zip64 = true;
        if (reader === 'miniz') {
          if (u64(rec, 4) < 44) throw new ZipError('the zip64 end record is too small (torch\'s miniz)');
          if (locDisks !== 1) throw new ZipError('a multi-disk archive (torch\'s miniz)');
        }
        disk = u32(rec, 16); cdDisk = u32(rec, 20);
        count = u64(rec, 32);
        cdSize = u64(rec, 40);
        written = u64(rec, 48);
        if (reader === 'miniz' && (count > 0xffffffff || cdSize > 0xffffffff)) throw new ZipError('more entries or directory bytes than miniz reads');
        if (reader === 'miniz' && u64(rec, 24) !== count) throw new ZipError('entries on this disk differ from the total (torch\'s miniz)');
      }
    }
  }
  let shift = 0;
  if (reader === 'miniz') {
    if (!zip64 && onDisk !== count) throw new ZipError('entries on this disk differ from the total (torch\'s miniz)');
    if ((disk | cdDisk) !== 0 && (disk !== 1 || cdDisk !== 1)) throw new ZipError('a multi-disk archive (torch\'s miniz)');
    if (cdSize < count * 46) throw new ZipError('central directory too small for its entry count');
    if (written + cdSize > size) throw new ZipError('central directory runs past the end of the file');
  } else {
    // the directory is the cdSize bytes before the end record (and its zip64 records): "concat" shifts the offsets
    shift = at - (zip64 ? 56 + 20 : 0) - cdSize - written;
    if (written + shift < 0) throw new ZipError('bad offset for the central directory');
    if (reader === 'strict' && count > cdSize / 46 + 1) throw new ZipError('central directory too small for its entry count');
    if (written + shift + cdSize > size) throw new ZipError('central directory runs past the end of the file');
  }
  return { reader, eocdOffset: at, count: reader === 'zipfile' ? -1 : count, cdSize, cdOffset: written + shift, shift, prefixBytes: Math.max(0, shift), comment, zip64 };
}

/**
 * Where the first member named `<root>/data.pkl` is (root: the first entry's folder, as readZipDirectory's
 * findInRoot sees it), found by reading the central directory only up to it; undefined when there is none,
 * it is not stored uncompressed, or anything looks off. Lets a scan start on the pickle while the whole
 * directory is read elsewhere; the caller checks the answer against the full directory.
 */
export function locateMainPickle(src: ByteSource, end: EndRecord): { localHeaderOffset: number; dataOffset: number; size: number } | undefined {
  const shift = end.shift;
  let root: Uint8Array | undefined;
  let pos = end.cdOffset;
  const cdEnd = end.cdOffset + end.cdSize;
  for (let i = 0; (end.count < 0 || i < end.count) && pos + 46 <= cdEnd && i < 256; i++) {
    const h = src.read(pos, 46);
    if (h.length < 46 || u32(h, 0) !== CDH) return undefined;
    const nameLen = u16(h, 28), extraLen = u16(h, 30), commentLen = u16(h, 32);
    if (pos + 46 + nameLen > cdEnd) return undefined;
    const name = src.read(pos + 46, nameLen);
    if (!root) { const k = name.indexOf(0x2f); root = name.slice(0, k < 0 ? name.length : k); }
    const want = DATA_PKL;
    if (nameLen === root.length + want.length && name.subarray(0, root.length).every((b, k) => b === root![k]) &&
      name.subarray(root.length).every((b, k) => b === want[k])) {
      const method = u16(h, 10), csize = u32(h, 20), lho = u32(h, 42);
      if (method !== 0 || csize === 0xffffffff || lho === 0xffffffff || lho + shift < 0) return undefined;
      const lh = src.read(lho + shift, 30);
      if (lh.length < 30 || u32(lh, 0) !== LFH) return undefined;
      const dataOffset = lho + shift + 30 + u16(lh, 26) + u16(lh, 28);
      if (dataOffset + csize > src.size) return undefined;
      return { localHeaderOffset: lho, dataOffset, size: csize };
    }
    pos += 46 + nameLen + extraLen + commentLen;
  }
  return undefined;
}
const DATA_PKL = new TextEncoder().encode('/data.pkl');

/** `end`: the source's end record when the caller has read it already. */
export function readZipDirectory(src: ByteSource, end: EndRecord = readEndRecord(src)): ZipDirectory {
  const { eocdOffset, cdSize, cdOffset, comment, zip64, shift } = end;
  const cdBuf = takeBytes(cdSize);
  let nameAt: Int32Array | undefined;
  try {
    const cd = cdBuf.subarray(0, src.readInto(cdBuf, 0, cdOffset, cdSize));
    if (cd.length < cdSize) throw new ZipError('central directory truncated');
    // Python's zipfile reads entries until they fill the directory's size, whatever the count says
    const count = end.count >= 0 ? end.count : entriesFilling(cd);
    nameAt = new Int32Array(takeArrayBuffer(count * 4), 0, count);   // where each name's bytes are in the directory
    const dir = new ZipDirectory(count, eocdOffset, cdOffset, zip64, comment, Math.max(0, shift));
    let p = 0, nameBytes = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || u32(cd, p) !== CDH) throw new ZipError(`central directory entry ${i} is malformed`);
      let compressedSize = u32(cd, p + 20), uncompressedSize = u32(cd, p + 24);
      const nameLen = u16(cd, p + 28), extraLen = u16(cd, p + 30), commentLen = u16(cd, p + 32);
      let localHeaderOffset = u32(cd, p + 42);
      if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw new ZipError(`central directory entry ${i} overruns`);
      // zip64 extended information extra field
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = u16(cd, e), len = u16(cd, e + 2);
        if (id === 0x0001) {
          let q = e + 4;
          if (uncompressedSize === 0xffffffff && q + 8 <= e + 4 + len) { uncompressedSize = u64(cd, q); q += 8; }
          if (compressedSize === 0xffffffff && q + 8 <= e + 4 + len) { compressedSize = u64(cd, q); q += 8; }
          if (localHeaderOffset === 0xffffffff && q + 8 <= e + 4 + len) { localHeaderOffset = u64(cd, q); q += 8; }
        }
        e += 4 + len;
      }
      dir.setEntry(i, u16(cd, p + 10), u16(cd, p + 8), u32(cd, p + 16), compressedSize, uncompressedSize, localHeaderOffset);
      nameAt[i] = p + 46;
      dir.setNameStart(i, nameBytes);
      nameBytes += nameLen;
      p += 46 + nameLen + extraLen + commentLen;
    }
    dir.cdConsumed = p;
    // the names, packed, hashed (FNV-1a over their bytes) as they are copied
    dir.setNameStart(count, nameBytes);
    const names = new Uint8Array(takeArrayBuffer(nameBytes), 0, nameBytes);
    let o = 0;
    for (let i = 0; i < count; i++) {
      let h = FNV_OFFSET;
      for (let q = nameAt[i], end = q + dir.nameLength(i); q < end; q++) { const b = cd[q]; names[o++] = b; h = Math.imul(h ^ b, 0x01000193); }
      dir.setNameHash(i, h | 0);
    }
    dir.setNames(names);
    dir.buildIndex();
    // Local headers sit in front of each member's data; a small window cache turns 50,000 tiny reads
    // (checkpoints with many small tensors) into a few hundred, without reading the data of big members.
    // (a remote source fetches every header's range at once, in parallel, and keeps its window small)
    if (src.prefetch) src.prefetch(Array.from({ length: count }, (_, i) => [dir.localHeaderOffset(i) + shift, src.windowBytes ?? 512] as const));
    const win = new Window(src, src.windowBytes ?? 64 << 10);
    try {
      for (let i = 0; i < count; i++) readLocalHeader(win, dir, i, shift);
    } finally { win.release(); }
    return dir;
  } finally { giveBytes(cdBuf); if (nameAt) giveArrayBuffer(nameAt.buffer as ArrayBuffer); }
}

/** How many entries Python's zipfile reads from a directory of these bytes (`_RealGetContents`: until their
 *  headers fill the directory's size); throws where zipfile raises. */
function entriesFilling(cd: Uint8Array): number {
  let n = 0;
  for (let p = 0; p < cd.length; n++) {
    if (p + 46 > cd.length) throw new ZipError('truncated central directory (Python\'s zipfile)');
    if (u32(cd, p) !== CDH) throw new ZipError(`bad magic number for central directory entry ${n} (Python's zipfile)`);
    if (u16(cd, p + 6) > 63) throw new ZipError(`central directory entry ${n} needs zip version ${u16(cd, p + 6) / 10} (Python's zipfile)`);
    p += 46 + u16(cd, p + 28) + u16(cd, p + 30) + u16(cd, p + 32);
  }
  return n;
}

/** A cached window of the source for many small reads close together (local headers), in one pooled buffer. */
class Window {
  start = -1;
  buf: Uint8Array = new Uint8Array(0);
  private own: Uint8Array;
  /** `size` bytes per read (the pooled buffer may be larger). */
  constructor(readonly src: ByteSource, private readonly size: number) { this.own = takeBytes(size); }
  /** Makes [offset, offset+length) available in `buf` at `offset - start` when the source has it; false if not. */
  ensure(offset: number, length: number): boolean {
    if (this.start < 0 || offset < this.start || offset + length > this.start + this.buf.length) {
      if (length > this.size) return false;
      this.start = offset;
      this.buf = this.own.subarray(0, this.src.readInto(this.own, 0, offset, Math.min(this.size, this.own.length)));
    }
    return offset + length <= this.start + this.buf.length;
  }
  release(): void { giveBytes(this.own); this.buf = new Uint8Array(0); }
}

function readLocalHeader(win: Window, dir: ZipDirectory, i: number, shift: number): void {
  const at = dir.localHeaderOffset(i) + shift;
  if (at < 0 || !win.ensure(at, 30) || u32(win.buf, at - win.start) !== LFH) { dir.problem(i, 'local header missing or corrupt'); return; }
  const h = at - win.start;
  const b = win.buf;
  const nameLen = u16(b, h + 26), extraLen = u16(b, h + 28);
  const lMethod = u16(b, h + 8);
  const lComp = u32(b, h + 18), lUnc = u32(b, h + 22);
  const method = dir.method(i), flags = dir.flags(i), csize = dir.compressedSize(i), usize = dir.uncompressedSize(i);
  // the local name is decoded only when its bytes differ from the central directory's
  let same = false;
  if (win.ensure(at + 30, nameLen)) same = dir.nameEquals(i, win.buf, at + 30 - win.start, nameLen);
  if (!same) {
    const localName = utf8.decode(win.src.read(at + 30, nameLen));
    if (localName !== dir.name(i)) dir.problem(i, `local header names it "${localName}"`);
  }
  if (lMethod !== method) dir.problem(i, `local header says compression method ${lMethod}, central directory ${method}`);
  if (!(flags & 0x08) && lComp !== 0xffffffff && lComp !== 0 && lComp !== csize) {
    dir.problem(i, `local header says ${lComp} compressed bytes, central directory ${csize}`);
  }
  if (!(flags & 0x08) && lUnc !== 0xffffffff && lUnc !== 0 && lUnc !== usize) {
    dir.problem(i, `local header says ${lUnc} bytes, central directory ${usize}`);
  }
  const dataOffset = at + 30 + nameLen + extraLen;
  dir.setDataOffset(i, dataOffset);
  if (dataOffset + csize > win.src.size) dir.problem(i, 'member data runs past the end of the file');
}

/** Streams a member's uncompressed bytes (stored or deflated), stopping after `limit` bytes. */
export async function* memberChunks(src: ByteSource, en: ZipEntry, limit = Number.MAX_SAFE_INTEGER): AsyncGenerator<Uint8Array> {
  if (en.dataOffset < 0) throw new ZipError('unreadable local header');
  const end = Math.min(en.dataOffset + en.compressedSize, src.size);
  const CH = 1 << 20;
  if (en.method === 0) {
    for (let o = en.dataOffset; o < end; o += CH) yield src.read(o, Math.min(CH, end - o));
    return;
  }
  if (en.method !== 8) throw new ZipError(`unsupported compression method ${en.method}`);
  const inflater = zlib.createInflateRaw();
  let produced = 0;
  const queue: Uint8Array[] = [];
  let error: Error | undefined;
  let ended = false;
  inflater.on('data', (d: Buffer) => queue.push(d));
  inflater.on('error', (e) => { error = e; });
  inflater.on('end', () => { ended = true; });
  try {
  const DCH = 16 << 10;   // small input steps bound what one step can inflate to (deflate expands ≤ ~1032×)
  for (let o = en.dataOffset; o < end && !error; o += DCH) {
    const part = src.read(o, Math.min(DCH, end - o));
    // a corrupt stream errors instead of calling back: wait for whichever comes first
    await new Promise<void>((res) => {
      const onErr = () => res();
      inflater.once('error', onErr);
      inflater.write(part, () => { inflater.off('error', onErr); res(); });
    });
    while (queue.length) {
      const d = queue.shift() as Uint8Array;
      produced += d.length;
      yield d;
      if (produced > limit) { inflater.destroy(); return; }
    }
  }
  if (!error) {
    await new Promise<void>((res) => {
      if (ended) return res();
      inflater.once('end', () => res()); inflater.once('error', () => res()); inflater.once('close', () => res()); inflater.end();
    });
  }
  while (queue.length) yield queue.shift() as Uint8Array;
  if (error) throw new ZipError(`deflate stream is corrupt: ${error.message}`);
  } finally { inflater.destroy(); }
}

/** Reads a small member fully (bounded by `max`). */
export async function readMember(src: ByteSource, en: ZipEntry, max: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of memberChunks(src, en, max)) {
    parts.push(c); n += c.length;
    if (n > max) throw new ZipError(`member ${en.name} is larger than ${max} bytes`);
  }
  return Buffer.concat(parts);
}
