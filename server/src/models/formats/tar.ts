// Tar, as its loaders read it. torch.load first tries Python's tarfile, which accepts a file whose first 512-byte
// header has a valid checksum (we decide the same way): torch's oldest ("legacy tar") checkpoints, read member by
// member as torch does. A tar without a "pickle" member is an archive people unpack: every regular member is
// scanned as a file of its own (archives.ts); so is one inside a compressor, which compressed.ts streams through
// tarStreamMembers here.
import { SliceSource, type ByteSource } from '../source';
import { startsPickle } from '../pickleStart';
import type { PickleRun } from '../pickle/machine';
import { extractRunTensors, STORAGE_DTYPES, type StorageRef, type ExtractedTensor } from '../pickle/tensors';
import { PyTuple, PyGlobal, asInt, asText } from '../pickle/values';
import { add, scanLimits, type ScanContext } from './context';
import { nearValue, recordRun, runPicklesSync, useInventory } from './pickleRuns';
import { memberRows, scanArchiveMember } from './archives';

export interface TarMember { name: string; offset: number; size: number; type: string; link?: string }

function octal(b: Uint8Array, at: number, len: number): number | undefined {
  if (b[at] & 0x80) { // GNU base-256
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + b[at + i];
    return v;
  }
  const s = Buffer.from(b.subarray(at, at + len)).toString('latin1').replace(/[\0 ]+$/g, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return undefined;
  return parseInt(s, 8);
}

/** Python tarfile's test: stored checksum equals the unsigned or signed sum with the field as spaces. */
export function isTarHeader(h: Uint8Array): boolean {
  if (h.length < 512) return false;
  if (h.every((x) => x === 0)) return false;
  const stored = octal(h, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0, signed = 0;
  for (let i = 0; i < 512; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += v; signed += v > 127 ? v - 256 : v;
  }
  return stored === unsigned || stored === signed;
}

/** Name, data size and type flag of a (checksum-valid) 512-byte header; undefined when the size is not a number. */
export function parseTarHeader(h: Uint8Array): { name: string; size: number; type: string; link: string } | undefined {
  const size = octal(h, 124, 12);
  if (size === undefined) return undefined;
  const type = String.fromCharCode(h[156] || 0x30);
  let name = Buffer.from(h.subarray(0, 100)).toString('utf8').replace(/\0.*$/s, '');
  const magic = Buffer.from(h.subarray(257, 263)).toString('latin1');
  if (magic.startsWith('ustar')) {
    const prefix = Buffer.from(h.subarray(345, 500)).toString('utf8').replace(/\0.*$/s, '');
    if (prefix) name = `${prefix}/${name}`;
  }
  const link = Buffer.from(h.subarray(157, 257)).toString('utf8').replace(/\0.*$/s, '');
  return { name, size, type, link };
}

/**
 * Why extracting a member would write outside the folder it is extracted into, or undefined: Python's
 * tarfile.extractall() without a filter (the default before Python 3.14, and what onnx.hub used: CVE-2024-5187)
 * follows an absolute or `..` name, and a link whose target leaves the folder lets a later member write through it.
 */
export function escapingTarPath(name: string, type: string, link: string): string | undefined {
  const outside = (p: string): boolean => {
    if (p.startsWith('/') || p.startsWith('\\') || /^[A-Za-z]:/.test(p)) return true;
    let depth = 0;
    for (const part of p.split(/[\\/]+/)) {
      if (part === '..') { if (--depth < 0) return true; } else if (part && part !== '.') depth++;
    }
    return false;
  };
  if (outside(name)) return /^[\\/]|^[A-Za-z]:/.test(name) ? 'an absolute path' : 'a path that climbs out with ".."';
  if (type === '2' && link) {
    const dir = name.split(/[\\/]+/).slice(0, -1).join('/');
    // a symbolic link's target is relative to the link's own folder
    const absolute = /^[\\/]|^[A-Za-z]:/.test(link);
    if (absolute || outside(dir ? `${dir}/${link}` : link)) return `a symbolic link to ${JSON.stringify(link)}, outside the folder`;
  }
  if (type === '1' && link && outside(link)) return `a hard link to ${JSON.stringify(link)}, outside the folder`;
  return undefined;
}

/** SW026 for a member that extraction would write outside its folder. */
export function reportEscapingMember(ctx: ScanContext, name: string, reason: string, offset: number): void {
  add(ctx, 'SW026', `Member ${JSON.stringify(name)} is ${reason}: extracting the archive with tarfile.extractall() and no filter (the default before Python 3.14; onnx.hub did it, CVE-2024-5187) writes outside the target folder and can overwrite any file you can write.`,
    { member: name, offset, severity: 'dangerous' });
}

/** The path a GNU long-name ('L') or pax ('x') record sets for the next member. */
export function tarLongName(type: string, data: Uint8Array): string | undefined {
  if (type === 'L') return Buffer.from(data).toString('utf8').replace(/\0.*$/s, '');
  if (type === 'x') return /\d+ path=([^\n]*)\n/.exec(Buffer.from(data).toString('utf8'))?.[1];
  return undefined;
}

/** `limited`: the offset where reading stopped because `maxMembers` were read and another header follows. */
export function readTarMembers(src: ByteSource, maxMembers = 100_000): { members: TarMember[]; error?: string; limited?: number } {
  const members: TarMember[] = [];
  let pos = 0;
  let longName: string | undefined;
  while (pos + 512 <= src.size) {
    const h = src.read(pos, 512);
    if (h.every((x) => x === 0)) break;
    if (members.length >= maxMembers) return { members, limited: pos };
    if (!isTarHeader(h)) return { members, error: `invalid tar header at offset ${pos}` };
    const fields = parseTarHeader(h);
    if (!fields) return { members, error: `invalid size in tar header at offset ${pos}` };
    const { size, type, name, link } = fields;
    const dataAt = pos + 512;
    if (dataAt + size > src.size) return { members, error: `tar member ${name} runs past the end of the file` };
    if (type === 'L') {
      longName = Buffer.from(src.read(dataAt, Math.min(size, 65536))).toString('utf8').replace(/\0.*$/s, '');
    } else if (type === 'x') {
      const pax = Buffer.from(src.read(dataAt, Math.min(size, 65536))).toString('utf8');
      const m = /\d+ path=([^\n]*)\n/.exec(pax);
      if (m) longName = m[1];
    } else {
      members.push({ name: longName ?? name, offset: dataAt, size, type, link });
      longName = undefined;
    }
    pos = dataAt + Math.ceil(size / 512) * 512;
  }
  return { members };
}

export interface StreamMember {
  name: string;
  /** Declared size in the archive. */
  size: number;
  /** Offset of the member's data in the (decompressed) stream. */
  offset: number;
  /** The bytes, unless the member is larger than the memory limit or the budget is spent (`skipped` says which). */
  data?: Uint8Array;
  skipped?: string;
}

export type TarStreamEvent =
  | { kind: 'member'; member: StreamMember }
  | { kind: 'error'; message: string; offset: number }
  | { kind: 'limit'; offset: number }
  | { kind: 'escape'; name: string; reason: string; offset: number };

/** Pulls exact byte counts from a chunk iterator. */
class ByteQueue {
  private chunks: Uint8Array[] = [];
  private have = 0;
  pos = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}
  private async fill(n: number): Promise<boolean> {
    while (this.have < n && !this.done) {
      const r = await this.it.next();
      if (r.done) { this.done = true; break; }
      if (r.value.length) { this.chunks.push(r.value); this.have += r.value.length; }
    }
    return this.have >= n;
  }
  /** Exactly n bytes, or fewer at the end of the stream. */
  async take(n: number): Promise<Uint8Array> {
    await this.fill(n);
    const len = Math.min(n, this.have);
    const out = new Uint8Array(len);
    let at = 0;
    while (at < len) {
      const c = this.chunks[0];
      const k = Math.min(c.length, len - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.length) this.chunks.shift(); else this.chunks[0] = c.subarray(k);
    }
    this.have -= len; this.pos += len;
    return out;
  }
  /** Drops n bytes; returns how many there were. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.have === 0 && !(await this.fill(1))) break;
      const c = this.chunks[0];
      const k = Math.min(c.length, left);
      if (k === c.length) this.chunks.shift(); else this.chunks[0] = c.subarray(k);
      this.have -= k; left -= k; this.pos += k;
    }
    return n - left;
  }
}

/**
 * The members of a tar stream (decompressed chunks), in order, each with its bytes when they fit: at most
 * `memberLimit` bytes each and `budget.bytes` in all (decremented). Only regular files are returned.
 */
export async function* tarStreamMembers(chunks: AsyncIterable<Uint8Array>, opts: { maxMembers: number; memberLimit: number; budget: { bytes: number } }): AsyncGenerator<TarStreamEvent> {
  const q = new ByteQueue(chunks[Symbol.asyncIterator]());
  let longName: string | undefined;
  let count = 0;
  for (;;) {
    const at = q.pos;
    const h = await q.take(512);
    if (h.length === 0) return;
    if (h.length < 512) { yield { kind: 'error', message: `the tar stream ends inside a header at offset ${at}`, offset: at }; return; }
    if (h.every((x) => x === 0)) return;
    if (!isTarHeader(h)) { yield { kind: 'error', message: `invalid tar header at offset ${at}`, offset: at }; return; }
    const f = parseTarHeader(h);
    if (!f) { yield { kind: 'error', message: `invalid size in tar header at offset ${at}`, offset: at }; return; }
    const padded = Math.ceil(f.size / 512) * 512;
    if (f.type === 'L' || f.type === 'x') {
      const data = await q.take(Math.min(f.size, 65536));
      longName = tarLongName(f.type, data) ?? longName;
      await q.skip(padded - data.length);
      continue;
    }
    const name = longName ?? f.name;
    longName = undefined;
    const escape = escapingTarPath(name, f.type, f.link);
    if (escape) yield { kind: 'escape', name, reason: escape, offset: at };
    if (f.type !== '0' && f.type !== '7') { await q.skip(padded); continue; }   // folders, links, devices
    if (count++ >= opts.maxMembers) { yield { kind: 'limit', offset: at }; return; }
    const member: StreamMember = { name, size: f.size, offset: at + 512 };
    if (f.size > opts.memberLimit) member.skipped = `it holds ${f.size} bytes, more than the ${opts.memberLimit} bytes a member may have to be scanned`;
    else if (f.size > opts.budget.bytes) member.skipped = 'the archive\'s members expand to more bytes in all than a scan reads';
    if (member.skipped) {
      if (await q.skip(f.size) < f.size) { yield { kind: 'error', message: `tar member ${name} runs past the end of the stream`, offset: at }; return; }
    } else {
      const data = await q.take(f.size);
      if (data.length < f.size) { yield { kind: 'error', message: `tar member ${name} runs past the end of the stream`, offset: at }; return; }
      opts.budget.bytes -= f.size;
      member.data = data;
    }
    yield { kind: 'member', member };
    await q.skip(padded - f.size);
  }
}

// ---- torch's legacy tar checkpoint, and tar archives ----------------------------------------------------------

export async function readTar(ctx: ScanContext, src: ByteSource): Promise<void> {
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

/** A tar archive that is not a torch checkpoint (no "pickle" member): every regular member by its content. */
async function scanTarArchive(ctx: ScanContext, src: ByteSource, tar: ReturnType<typeof readTarMembers>): Promise<void> {
  const rep = ctx.report;
  rep.format = 'tar';
  const files = tar.members.filter((m) => m.type === '0' || m.type === '7');
  rep.formatDetail = `tar with ${files.length} file${files.length === 1 ? '' : 's'}`;
  memberRows(ctx, files);
  if (tar.error) add(ctx, 'SW013', `Tar structure is broken: ${tar.error}; the members before it were scanned.`);
  for (const m of tar.members) {
    const escape = escapingTarPath(m.name, m.type, m.link ?? '');
    if (escape) reportEscapingMember(ctx, m.name, escape, m.offset - 512);
  }
  if (tar.limited) add(ctx, 'SW009', `The tar archive has more than ${scanLimits.tarMembers.toLocaleString('en-US')} members; reading stopped at offset ${tar.limited} and the rest was not checked.`, { offset: tar.limited, severity: 'dangerous' });
  for (const m of files) await scanArchiveMember(ctx, m.name, new SliceSource(src, m.offset, m.size));
}
