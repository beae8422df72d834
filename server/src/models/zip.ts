// Lazy zip reader: reads the end-of-central-directory, the central directory and, per member, its local
// header — never the data of members we do not scan. Written by hand (not yauzl) because we must accept
// what torch's miniz-based reader accepts (flag bits and CRCs are not checked, any root folder) and report
// what other readers would see differently (local/central name mismatches, duplicates), which yauzl hides
// or rejects. Deflated members are inflated as a stream with node's zlib.
import * as zlib from 'node:zlib';
import { ByteSource, u16, u32, u64 } from './source';
import { StrTable, strHash } from './strTable';
import { giveBytes, takeBytes } from './bufferPool';

export interface ZipEntry {
  name: string;
  localName?: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
  dataOffset: number;          // -1 when the local header is unreadable
  problems: string[];          // local/central disagreements and bounds problems
}

export interface ZipDirectory {
  entries: ZipEntry[];
  eocdOffset: number;
  centralDirOffset: number;
  zip64: boolean;
  comment: string;
  /** bytes before the first local header that the central directory does not account for */
  prefixBytes: number;
  /** name -> index in `entries` of its first entry (read it with entryIndex / entryIndexJoined) */
  index: StrTable<number>;
  /** names that more than one entry carries, with their counts */
  duplicates: Map<string, number>;
}

const EOCD = 0x06054b50, EOCD64 = 0x06064b50, EOCD64_LOC = 0x07064b50, CDH = 0x02014b50, LFH = 0x04034b50;
const utf8 = new TextDecoder('utf-8');
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;

export class ZipError extends Error {}

export function readZipDirectory(src: ByteSource): ZipDirectory {
  const size = src.size;
  const tailLen = Math.min(size, 22 + 0xffff);
  const tail = src.read(size - tailLen, tailLen);
  let eocdRel = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (u32(tail, i) === EOCD) {
      const commentLen = u16(tail, i + 20);
      if (i + 22 + commentLen <= tail.length) { eocdRel = i; break; }
    }
  }
  if (eocdRel < 0) throw new ZipError('no end-of-central-directory record');
  const eocdOffset = size - tailLen + eocdRel;
  let count = u16(tail, eocdRel + 10);
  let cdSize = u32(tail, eocdRel + 12);
  let cdOffset = u32(tail, eocdRel + 16);
  const comment = utf8.decode(tail.subarray(eocdRel + 22, eocdRel + 22 + u16(tail, eocdRel + 20)));
  let zip64 = false;
  if (eocdOffset >= 20) {
    const loc = src.read(eocdOffset - 20, 20);
    if (u32(loc, 0) === EOCD64_LOC) {
      const recOff = u64(loc, 8);
      const rec = src.read(recOff, 56);
      if (rec.length === 56 && u32(rec, 0) === EOCD64) {
        zip64 = true;
        count = u64(rec, 32);
        cdSize = u64(rec, 40);
        cdOffset = u64(rec, 48);
      } else throw new ZipError('zip64 locator points to an invalid record');
    }
  }
  if (cdOffset + cdSize > eocdOffset) throw new ZipError('central directory overlaps its end record');
  // bytes in front of the archive (self-extracting style): central offsets are then relative
  const prefixBytes = eocdOffset - (zip64 ? 56 + 20 : 0) - cdSize - cdOffset;
  if (count > cdSize / 46 + 1) throw new ZipError('central directory too small for its entry count');
  const cdBuf = takeBytes(cdSize);
  try {
  const cd = cdBuf.subarray(0, src.readInto(cdBuf, 0, cdOffset, cdSize));
  if (cd.length < cdSize) throw new ZipError('central directory truncated');
  const entries: ZipEntry[] = [];
  const index = new StrTable<number>(count);
  const duplicates = new Map<string, number>();
  const nameAt = new Int32Array(count);   // where each central name's bytes are, to compare local names
  const nameLens = new Int32Array(count);
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || u32(cd, p) !== CDH) throw new ZipError(`central directory entry ${i} is malformed`);
    const flags = u16(cd, p + 8), method = u16(cd, p + 10), crc32 = u32(cd, p + 16);
    let compressedSize = u32(cd, p + 20), uncompressedSize = u32(cd, p + 24);
    const nameLen = u16(cd, p + 28), extraLen = u16(cd, p + 30), commentLen = u16(cd, p + 32);
    let localHeaderOffset = u32(cd, p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw new ZipError(`central directory entry ${i} overruns`);
    // names are nearly always ASCII: decoded and hashed in one pass
    let hash = 0x811c9dc5, q = p + 46;
    const nameEnd = q + nameLen;
    for (; q < nameEnd; q++) { const b = cd[q]; if (b >= 0x80) break; hash = Math.imul(hash ^ b, 0x01000193); }
    let name: string;
    if (q === nameEnd) { name = latin1Slice.call(cd, p + 46, nameEnd); hash |= 0; }
    else { name = utf8.decode(cd.subarray(p + 46, nameEnd)); hash = strHash(name); }
    nameAt[entries.length] = p + 46; nameLens[entries.length] = nameLen;
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
    const at = index.add(name, entries.length, hash);
    if (at !== entries.length) duplicates.set(name, (duplicates.get(name) ?? 1) + 1);
    entries.push({ name, method, flags, crc32, compressedSize, uncompressedSize, localHeaderOffset, dataOffset: -1, problems: [] });
    p += 46 + nameLen + extraLen + commentLen;
  }
  // Local headers sit in front of each member's data; a small window cache turns 50,000 tiny reads
  // (checkpoints with many small tensors) into a few hundred, without reading the data of big members.
  const win = new Window(src, 64 << 10);
  try {
    for (let i = 0; i < entries.length; i++) readLocalHeader(win, entries[i], prefixBytes > 0 ? prefixBytes : 0, cd, nameAt[i], nameLens[i]);
  } finally { win.release(); }
  return { entries, eocdOffset, centralDirOffset: cdOffset, zip64, comment, prefixBytes: Math.max(0, prefixBytes), index, duplicates };
  } finally { giveBytes(cdBuf); }
}

/** A cached window of the source for many small reads close together (local headers), in one pooled buffer. */
class Window {
  start = -1;
  buf: Uint8Array = new Uint8Array(0);
  private own: Uint8Array;
  constructor(readonly src: ByteSource, size: number) { this.own = takeBytes(size); }
  /** Makes [offset, offset+length) available in `buf` at `offset - start` when the source has it; false if not. */
  ensure(offset: number, length: number): boolean {
    if (this.start < 0 || offset < this.start || offset + length > this.start + this.buf.length) {
      if (length > this.own.length) return false;
      this.start = offset;
      this.buf = this.own.subarray(0, this.src.readInto(this.own, 0, offset, this.own.length));
    }
    return offset + length <= this.start + this.buf.length;
  }
  release(): void { giveBytes(this.own); this.buf = new Uint8Array(0); }
}

function readLocalHeader(win: Window, en: ZipEntry, shift: number, cd: Uint8Array, cdNameAt: number, centralLen: number): void {
  const at = en.localHeaderOffset + shift;
  if (!win.ensure(at, 30) || u32(win.buf, at - win.start) !== LFH) { en.problems.push('local header missing or corrupt'); return; }
  let h = at - win.start;
  const b = win.buf;
  const nameLen = u16(b, h + 26), extraLen = u16(b, h + 28);
  const lMethod = u16(b, h + 8);
  const lComp = u32(b, h + 18), lUnc = u32(b, h + 22);
  // the local name is decoded only when its bytes differ from the central directory's
  if (win.ensure(at + 30, nameLen)) {
    h = at + 30 - win.start;
    const nb = win.buf;
    let same = nameLen === centralLen;
    for (let i = 0; same && i < nameLen; i++) same = nb[h + i] === cd[cdNameAt + i];
    if (!same) {
      en.localName = utf8.decode(nb.subarray(h, h + nameLen));
      if (en.localName !== en.name) en.problems.push(`local header names it "${en.localName}"`);
    } else en.localName = en.name;
  } else {
    en.localName = utf8.decode(win.src.read(at + 30, nameLen));
    if (en.localName !== en.name) en.problems.push(`local header names it "${en.localName}"`);
  }
  if (lMethod !== en.method) en.problems.push(`local header says compression method ${lMethod}, central directory ${en.method}`);
  if (!(en.flags & 0x08) && lComp !== 0xffffffff && lComp !== 0 && lComp !== en.compressedSize) {
    en.problems.push(`local header says ${lComp} compressed bytes, central directory ${en.compressedSize}`);
  }
  if (!(en.flags & 0x08) && lUnc !== 0xffffffff && lUnc !== 0 && lUnc !== en.uncompressedSize) {
    en.problems.push(`local header says ${lUnc} bytes, central directory ${en.uncompressedSize}`);
  }
  en.dataOffset = at + 30 + nameLen + extraLen;
  if (en.dataOffset + en.compressedSize > win.src.size) en.problems.push('member data runs past the end of the file');
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

/** Index in dir.entries of the first member named `name`, or -1. */
export function entryIndex(dir: ZipDirectory, name: string): number {
  const i = dir.index.find(name);
  return i < 0 ? -1 : dir.index.value(i);
}

/** entryIndex of `prefix + suffix`, given strHash(suffix, strHashState(prefix)), without building the name. */
export function entryIndexJoined(dir: ZipDirectory, prefix: string, suffix: string, hash: number): number {
  const i = dir.index.findJoined(prefix, suffix, hash);
  return i < 0 ? -1 : dir.index.value(i);
}
