// Compressed pickle streams, as joblib writes them: decided from magic bytes the way joblib's
// _detect_compressor does. Decompression is streamed; nothing decompressed is kept beyond the pickle
// machine's small window, and the total is bounded so a decompression bomb ends as a finding, not an OOM.
// What a compressor holds is read by its content: a pickle (joblib, .pkl.gz), a tar (.tar.gz, member by member),
// or another container (a gzipped torch zip), scanned whole as a file of its own.
import * as zlib from 'node:zlib';
import { PassThrough, Readable, Transform } from 'node:stream';
import { ByteSource, BytesSource, startsWith } from '../source';
import { Cursor, runWithChunks } from '../pickle/cursor';
import type { PickleRun } from '../pickle/machine';
import { extractRunTensors } from '../pickle/tensors';
import type { ModelFormat } from '../types';
import { add, DECOMPRESS_LIMIT, scanLimits, type ScanContext } from './context';
import { machineOpts, pickleSequence, recordRun, useInventory } from './pickleRuns';
import { isTarHeader, reportEscapingMember, tarStreamMembers } from './tar';
import { looksLikeNpy } from './npy';
import { unlzma } from './lzma';
import { bunzip2 } from './bzip2';
import { looksLikeGguf } from './gguf';
import { looksLike7z } from './sevenZip';
import { archiveLimits, memberRows, memberTooBig, nesting, scanArchiveMember } from './archives';

export type Compression = 'gzip' | 'zlib' | 'bz2' | 'xz' | 'lzma' | 'joblib-zfile' | 'lz4';

export function detectCompression(head: Uint8Array): Compression | undefined {
  if (startsWith(head, [0x1f, 0x8b])) return 'gzip';
  if (startsWith(head, 'BZh')) return 'bz2';
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (startsWith(head, [0x5d, 0x00, 0x00])) return 'lzma';
  if (startsWith(head, [0x04, 0x22, 0x4d, 0x18])) return 'lz4';
  if (startsWith(head, 'ZF')) return 'joblib-zfile';
  // zlib header: CMF 0x78 and (CMF*256+FLG) divisible by 31
  if (head.length >= 2 && head[0] === 0x78 && ((head[0] << 8) | head[1]) % 31 === 0) return 'zlib';
  return undefined;
}

export class DecompressionLimit extends Error {}

function sourceStream(src: ByteSource, start: number): Readable {
  let pos = start;
  return new Readable({
    highWaterMark: 1 << 16,
    read() {
      if (pos >= src.size) { this.push(null); return; }
      const chunk = src.read(pos, Math.min(1 << 16, src.size - pos));
      pos += chunk.length;
      this.push(chunk);
    },
  });
}

/** A small gzip / zlib stream whole, in one synchronous call, or undefined: the stream below costs thread-pool
 *  round trips per file: decompressing the 75 pandas .pkl.gz of the directory benchmark (scripts/bench/dir.mjs)
 *  took 23-141 ms as streams and 6-34 ms this way, in alternating runs on a loaded 2-core machine. Only inputs up to 1 MB with output up to 8 MB (and the limit); on
 *  anything else (larger, corrupt, truncated) the caller streams from the start, so partial output and the
 *  limit error are exactly the stream's. */
const SMALL_INPUT = 1 << 20, SMALL_OUTPUT = 8 << 20;
function inflateSmall(kind: 'gzip' | 'zlib' | 'joblib-zfile', src: ByteSource, from: number, limit: number): Uint8Array | undefined {
  if (src.size - from > SMALL_INPUT) return undefined;
  const maxOutputLength = Math.max(1, Math.min(limit, SMALL_OUTPUT));
  try {
    const input = src.read(from, src.size - from);
    return kind === 'gzip' ? zlib.gunzipSync(input, { maxOutputLength }) : zlib.inflateSync(input, { maxOutputLength });
  } catch { return undefined; }
}

/** Decompressed bytes of the stream starting at `start`, in chunks; throws DecompressionLimit past `limit`. */
export async function* decompressedChunks(kind: Compression, src: ByteSource, start: number, limit: number): AsyncGenerator<Uint8Array> {
  let produced = 0;
  const guard = function* (c: Uint8Array) {
    produced += c.length;
    if (produced > limit) throw new DecompressionLimit(`decompressed data exceeds ${limit} bytes`);
    yield c;
  };
  if (kind === 'lzma') {
    // LZMA "alone": decoded whole, in this thread, by lzma.ts, within the cap (and the header's declared size)
    const head = src.read(start, 13);
    let declared = 0;
    for (let i = 12; i >= 5; i--) declared = declared * 256 + head[i];
    const unknown = head.slice(5, 13).every((b) => b === 0xff);
    const cap = Math.min(limit, 256 << 20);
    if (!unknown && declared > cap) throw new DecompressionLimit(`lzma stream declares ${declared} bytes (limit ${cap})`);
    if (src.size - start > 256 << 20) throw new DecompressionLimit('lzma stream too large to decode in memory');
    const r = unlzma(src.read(start, src.size - start), cap);
    // what decoded before an error is scanned too, as for a corrupt gzip stream; the error then fails closed
    if (r.out.length) yield* guard(r.out);
    if (r.overCap) throw new DecompressionLimit(`lzma stream expands beyond ${cap} bytes`);
    if (r.error) throw new Error(r.error);
    return;
  }
  if (kind === 'lz4') throw new Error('lz4-compressed joblib files are not supported');
  if (kind === 'xz') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { XzReadableStream } = require('xz-decompress') as { XzReadableStream: new (s: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array> };
    const web = Readable.toWeb(sourceStream(src, start)) as unknown as ReadableStream<Uint8Array>;
    const reader = new XzReadableStream(web).getReader();
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        yield* guard(r.value);
      }
    } finally { reader.releaseLock(); }
    return;
  }
  let decoder: Transform;
  let from = start;
  if (kind === 'gzip') decoder = zlib.createGunzip();
  else if (kind === 'zlib') decoder = zlib.createInflate();
  else if (kind === 'joblib-zfile') { decoder = zlib.createInflate(); from = start + 2 + 19; }
  else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const unbzip2 = require('unbzip2-stream') as () => Transform;
    decoder = unbzip2();
  }
  if (kind !== 'bz2') {
    const whole = inflateSmall(kind, src, from, limit);
    if (whole) { yield* guard(whole); return; }
  } else if (src.size - from <= SMALL_INPUT) {
    // small bz2 files (joblib / pandas pickles) whole, in one synchronous call (bzip2.ts says what that saves); past
    // SMALL_OUTPUT they are streamed from the start as bigger files are, so the limit error is the stream's
    const r = bunzip2(src.read(from, src.size - from), Math.min(limit, SMALL_OUTPUT) + 1);
    if (!r.overCap) {
      if (r.out.length) yield* guard(r.out);
      if (r.error) throw new Error(r.error);
      return;
    }
  }
  const input = sourceStream(src, from);
  // unbzip2-stream is an old-style through stream: bridge it into a PassThrough to iterate it
  const out = new PassThrough();
  input.pipe(decoder).pipe(out);
  input.on('error', (e) => out.destroy(e));
  decoder.on('error', (e: Error) => out.destroy(e));
  try {
    for await (const chunk of out as AsyncIterable<Uint8Array>) yield* guard(chunk);
  } finally {
    input.destroy(); (decoder as { destroy?: () => void }).destroy?.(); out.destroy();
  }
}

// ---- the scan: joblib's compressor wrappers, .pkl.gz, and containers inside a compressor ------------------------

export async function readCompressed(ctx: ScanContext, src: ByteSource, head: Uint8Array): Promise<void> {
  const comp = detectCompression(head) as Compression;
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

/** A compressed stream holding something other than a pickle or a tar (a gzipped torch zip, ...): scanned whole. */
async function scanCompressedOther(ctx: ScanContext, chunks: AsyncIterable<Uint8Array>, comp: Compression): Promise<void> {
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

/** A tar inside a compressor (.tar.gz, .tgz, .tar.bz2, .tar.xz), read as it decompresses. */
async function scanCompressedTar(ctx: ScanContext, chunks: AsyncIterable<Uint8Array>, comp: Compression): Promise<void> {
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
      if (ev.kind === 'escape') { reportEscapingMember(ctx, ev.name, ev.reason, ev.offset); continue; }
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

/** Zip members that are containers of their own (a zip, tar, 7z or compressed stream inside a generic zip). */
export function looksLikeContainer(head: Uint8Array): boolean {
  return startsWith(head, [0x50, 0x4b, 0x03, 0x04]) || looksLike7z(head) || detectCompression(head) !== undefined;
}
