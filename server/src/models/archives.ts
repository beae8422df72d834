// Archives people ship models in, read member by member without extracting anything to disk: tar streams inside a
// compressor (.tar.gz / .tgz / .tar.bz2 / .tar.xz) and 7z. Each member's bytes are handed to the engine, which scans
// them as a file of its own (scan.ts). Everything is bounded: a member bigger than `archiveLimits.memberBytes` is not
// held, and the bytes all members may expand to are counted against the caller's budget; past either limit the
// caller reports a finding (SW025), never silence.
import { parseTarHeader, isTarHeader, tarLongName } from './tar';
import { startsWith, type ByteSource } from './source';

/** `7z\xBC\xAF\x27\x1C` */
export function looksLike7z(head: Uint8Array): boolean { return startsWith(head, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]); }

/** Limits of member-by-member reading (tests lower them). `memberBytes`: the largest member held in memory to be
 *  scanned (the in-memory cap compression.ts uses for lzma streams); `totalBytes`: what all members of one file,
 *  at every nesting level, may expand to (the decompression limit of joblib streams); `sevenZipPassBytes`: member
 *  bytes one 7z decoding pass holds (the next pass decodes again and keeps the next ones). */
export const archiveLimits = { memberBytes: 256 << 20, totalBytes: 8 * 1024 ** 3, sevenZipPassBytes: 512 << 20 };

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
  | { kind: 'limit'; offset: number };

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

// ---- 7z ---------------------------------------------------------------------------------------------------------
//
// Library choice: `7z-wasm` (7-Zip 24.09 itself compiled to WebAssembly; LGPL, one small dependency, the .wasm
// ships inside the npm package: nothing is downloaded or built at install, nothing native). It decodes every 7z
// codec and filter 7-Zip does (LZMA/LZMA2, PPMd, BZip2, Deflate, BCJ/BCJ2/ARM64, delta), which pure-JS readers such
// as `7z-iterator` do not all cover; `node-7z` and `7zip-min` drive a native 7z binary (a download or a system
// package) and were ruled out. The archive is read through a read-only file system node over our ByteSource (never
// copied whole into memory); member bytes come back through the module's stdout callback (`x -so`), counted as
// they arrive, so nothing is written anywhere and an over-long member is cut off.

export interface SevenZipEntry { name: string; size: number; folder: boolean; encrypted: boolean }
export interface SevenZipListing { entries: SevenZipEntry[]; error?: string; encryptedHeaders?: boolean }
export interface SevenZipMember { name: string; size: number; data?: Uint8Array; skipped?: string }

interface EmFS {
  createNode(parent: unknown, name: string, mode: number): EmNode;
  mkdir(path: string): void;
  mount(type: unknown, opts: unknown, mountpoint: string): void;
  ErrnoError: new (errno: number) => Error;
}
interface EmNode { id: number; mode: number; size: number; node_ops: unknown; stream_ops: unknown; contents: Record<string, EmNode>; atime: number; mtime: number; ctime: number }
interface SevenZipModule { FS: EmFS; callMain(args: string[]): number }
type SevenZipFactory = (opts: Record<string, unknown>) => Promise<SevenZipModule>;

// (typed here: the project's lib settings have no WebAssembly declarations)
interface WasmApi { compile(b: Uint8Array): Promise<object>; instantiate(m: object, imports: object): Promise<object> }
const wasmApi = (): WasmApi => (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
let compiled: Promise<object> | undefined;

/** The 7-Zip WebAssembly module, compiled once per process, on first use (start-up stays lazy). */
function wasmModule(): Promise<object> {
  if (!compiled) {
    compiled = (async () => {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const fs = require('node:fs') as typeof import('node:fs');
      const path = require('node:path') as typeof import('node:path');
      // next to the bundle (dist/7zz.wasm, copied by scripts/build.mjs), else from the package (tests run out/)
      const file = [path.join(__dirname, '7zz.wasm'), path.join(__dirname, '..', '..', '..', '..', 'node_modules', '7z-wasm', '7zz.wasm')].find((f) => fs.existsSync(f));
      if (!file) throw new Error('the 7-Zip decoder (7zz.wasm) is missing from this build');
      return wasmApi().compile(fs.readFileSync(file));
    })();
    compiled.catch(() => { compiled = undefined; });
  }
  return compiled;
}

const DIR_MODE = 0o40777, FILE_MODE = 0o100444;

/** A fresh 7-Zip instance with the archive mounted read-only at /in/a.7z; `sink` receives what it writes to stdout. */
async function instance(src: ByteSource, sink: { onByte: (b: number) => void }, stderr: string[]): Promise<SevenZipModule> {
  const mod = await wasmModule();
  // the UMD build: the package's ES module build needs import.meta, which a CommonJS bundle does not have
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const factory = require('7z-wasm/7zz.umd.js') as SevenZipFactory;
  let err = '';
  const sz = await factory({
    instantiateWasm(imports: object, done: (i: object) => void) {
      void wasmApi().instantiate(mod, imports).then((inst) => done(inst));
      return {};
    },
    stdin: () => null,   // never a prompt (an encrypted archive fails instead of asking for a password)
    stdout: (c: number | null) => { if (c !== null) sink.onByte(c); },
    stderr: (c: number | null) => {
      if (c === null) return;
      if (c === 10) { if (err.trim()) stderr.push(err.trim()); err = ''; } else if (err.length < 1000) err += String.fromCharCode(c);
    },
    print: () => undefined, printErr: () => undefined,
    quit: (_code: number, e: unknown) => { throw e; },   // never process.exitCode (the default sets it)
  });
  const FS = sz.FS;
  const ops = {
    getattr: (node: EmNode) => ({ dev: 1, ino: node.id, mode: node.mode, nlink: 1, uid: 0, gid: 0, rdev: 0, size: node.size,
      atime: new Date(node.atime), mtime: new Date(node.mtime), ctime: new Date(node.ctime), blksize: 4096, blocks: Math.ceil(node.size / 4096) }),
    setattr: () => undefined,
    lookup: () => { throw new FS.ErrnoError(44); },
    mknod: () => { throw new FS.ErrnoError(63); },
    rename: () => { throw new FS.ErrnoError(63); },
    unlink: () => { throw new FS.ErrnoError(63); },
    rmdir: () => { throw new FS.ErrnoError(63); },
    readdir: (node: EmNode) => ['.', '..', ...Object.keys(node.contents)],
    symlink: () => { throw new FS.ErrnoError(63); },
  };
  const streamOps = {
    read: (_s: unknown, buffer: Uint8Array, offset: number, length: number, position: number) =>
      position >= src.size ? 0 : src.readInto(buffer, offset, position, Math.min(length, src.size - position)),
    write: () => { throw new FS.ErrnoError(29); },
    llseek: (stream: { position: number }, offset: number, whence: number) => {
      const p = whence === 1 ? stream.position + offset : whence === 2 ? src.size + offset : offset;
      if (p < 0) throw new FS.ErrnoError(28);
      return p;
    },
  };
  const node = (parent: EmNode | null, name: string, mode: number, size: number): EmNode => {
    const n = FS.createNode(parent, name, mode);
    n.mode = mode; n.node_ops = ops; n.stream_ops = streamOps;
    n.atime = n.mtime = n.ctime = Date.now();
    n.size = size; n.contents = {};
    if (parent) parent.contents[name] = n;
    return n;
  };
  const roFs = { mount: () => { const root = node(null, '/', DIR_MODE, 4096); node(root, 'a.7z', FILE_MODE, src.size); return root; } };
  FS.mkdir('/in');
  FS.mount(roFs, {}, '/in');
  return sz;
}

/** Runs 7-Zip's main; an uncaught C++ exception (7-Zip throws one on encrypted headers it has no password for,
 *  and on some damaged archives) comes out as a number, turned into an exit code here. */
function runMain(sz: SevenZipModule, args: string[]): { rc: number; aborted: boolean } {
  try { return { rc: sz.callMain(args), aborted: false }; } catch (e) {
    if (e instanceof Error && !/^\d+$/.test(e.message)) throw e;
    return { rc: -1, aborted: true };
  }
}

/** `7zz l -slt`: the entries in archive order. */
export async function list7z(src: ByteSource): Promise<SevenZipListing> {
  const out: number[] = [];
  const stderr: string[] = [];
  const sz = await instance(src, { onByte: (b) => { if (out.length < 64 << 20) out.push(b); } }, stderr);
  const { rc, aborted } = runMain(sz, ['l', '-slt', '-p', '-sccUTF-8', '/in/a.7z']);
  const text = Buffer.from(out).toString('utf8');
  const entries: SevenZipEntry[] = [];
  const body = text.split(/\n----------\n/)[1];
  if (body !== undefined) {
    for (const block of body.split(/\n\s*\n/)) {
      const f = new Map<string, string>();
      for (const line of block.split('\n')) { const m = /^([^=]+?) = (.*)$/.exec(line); if (m) f.set(m[1], m[2]); }
      if (!f.has('Path')) continue;
      const attrs = f.get('Attributes') ?? '';
      entries.push({ name: f.get('Path')!, size: Number(f.get('Size') || 0), folder: f.get('Folder') === '+' || /^D/.test(attrs), encrypted: f.get('Encrypted') === '+' });
    }
  }
  const msg = stderr.find((l) => /ERROR|Error|Can not open|password/i.test(l));
  const encryptedHeaders = entries.length === 0 && (aborted || /password|encrypted/i.test(stderr.join(' ')));
  const error = aborted ? msg ?? '7-Zip stopped on it (encrypted headers, or a damaged archive)'
    : rc !== 0 ? msg ?? `7-Zip exited with code ${rc}` : undefined;
  return { entries, encryptedHeaders, error };
}

/**
 * The bytes of the file entries from index `from` on, in archive order, decoded in one pass (`x -so` writes the
 * files one after another; the listing's sizes split them), until `passBytes` are held: `next` is where the next
 * pass starts (files.length when done). Entries larger than `memberLimit`, or beyond what `budget` still allows,
 * are counted but not kept. `error` carries 7-Zip's complaint (a CRC or data error, a wrong password).
 */
export async function extract7z(src: ByteSource, files: SevenZipEntry[], opts: { from: number; passBytes: number; memberLimit: number; budget: { bytes: number } }): Promise<{ members: SevenZipMember[]; next: number; error?: string }> {
  const members: SevenZipMember[] = [];
  let i = 0, got = 0, held = 0;
  let cur: SevenZipMember | undefined;
  let buf: Uint8Array | undefined;
  let next = files.length;
  const total = files.reduce((n, e) => n + e.size, 0);
  let written = 0;
  const start = (): void => {
    cur = undefined; buf = undefined; got = 0;
    while (i < files.length) {
      const e = files[i];
      if (i >= opts.from) {
        if (next === files.length && held > 0 && held + e.size > opts.passBytes) next = i;
        if (i >= next) return;
        cur = { name: e.name, size: e.size };
        members.push(cur);
        if (e.size > opts.memberLimit) cur.skipped = `it holds ${e.size} bytes, more than the ${opts.memberLimit} bytes a member may have to be scanned`;
        else if (e.size > opts.budget.bytes) cur.skipped = 'the archive\'s members expand to more bytes in all than a scan reads';
        else { buf = new Uint8Array(e.size); opts.budget.bytes -= e.size; held += e.size; }
      }
      if (e.size > 0) return;   // its bytes come next
      if (cur && buf) cur.data = buf;
      cur = undefined; buf = undefined;
      i++;
    }
  };
  start();
  const stderr: string[] = [];
  let overflow = false;
  const sz = await instance(src, {
    onByte: (b) => {
      if (++written > total) { overflow = true; throw new Error('7-Zip wrote more than the archive declares'); }
      if (buf) buf[got] = b;
      got++;
      if (i < files.length && got === files[i].size) {
        if (cur && buf) cur.data = buf;
        i++; start();
        // everything this pass keeps has arrived: stop decoding (the write error ends 7-Zip's run)
        if (i >= next && next < files.length) throw new Error('pass complete');
      }
    },
  }, stderr);
  const { rc } = files.length > opts.from ? runMain(sz, ['x', '-so', '-y', '-p', '/in/a.7z']) : { rc: 0 };
  let error: string | undefined;
  const passDone = next < files.length && i >= next;
  if (overflow) error = '7-Zip wrote more bytes than the archive\'s listing declares';
  else if (rc !== 0 && !passDone) error = stderr.find((l) => /ERROR|Wrong password|Data Error|CRC/i.test(l)) ?? `7-Zip exited with code ${rc}`;
  // a member cut short by an error is scanned as far as it came
  if (cur && buf && !cur.data && got > 0) cur.data = buf.subarray(0, got);
  return { members, next, error };
}
