// 7z archives, read member by member without extracting anything to disk: each member's bytes are scanned as a
// file of its own (archives.ts), bounded by the member and budget limits there.
//
// Library choice: `7z-wasm` (7-Zip 24.09 itself compiled to WebAssembly; LGPL, one small dependency, the .wasm
// ships inside the npm package: nothing is downloaded or built at install, nothing native). It decodes every 7z
// codec and filter 7-Zip does (LZMA/LZMA2, PPMd, BZip2, Deflate, BCJ/BCJ2/ARM64, delta), which pure-JS readers such
// as `7z-iterator` do not all cover; `node-7z` and `7zip-min` drive a native 7z binary (a download or a system
// package) and were ruled out. The archive is read through a read-only file system node over our ByteSource (never
// copied whole into memory); member bytes come back through the module's stdout callback (`x -so`), counted as
// they arrive, so nothing is written anywhere and an over-long member is cut off.
import { BytesSource, startsWith, type ByteSource } from '../source';
import { add, scanLimits, type ScanContext } from './context';
import { archiveLimits, memberRows, memberTooBig, nesting, scanArchiveMember } from './archives';

/** `7z\xBC\xAF\x27\x1C` */
export function looksLike7z(head: Uint8Array): boolean { return startsWith(head, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]); }

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
      const file = [path.join(__dirname, '7zz.wasm'), path.join(__dirname, '..', '..', '..', '..', '..', 'node_modules', '7z-wasm', '7zz.wasm')].find((f) => fs.existsSync(f));
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

export async function read7z(ctx: ScanContext, src: ByteSource): Promise<void> {
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

