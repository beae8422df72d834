// Which files a directory scan reads, decided from their first bytes the way the loaders decide, not from their
// names: `.joblib.xz`, `.pth.tar`, `.weights`, an extensionless `model` are read like `.pt` is. Shared by the CLI
// and the language server's workspace scan (no vscode import).
//
// A walk reads at most HEAD_BYTES of every regular file in one read (plus, for binary files no magic matched, the
// last TAIL_BYTES, where a zip's end record sits). Symbolic links to files are followed and each target is read
// once, reported under the link's path (a Hugging Face cache lists snapshots/<rev>/pytorch_model.bin, not the
// blob it points to); link loops and links to directories already walked are skipped; FIFOs, devices and
// sockets are never opened.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { BytesSource, startsWith } from './source';
import { stopBeforeAnythingRuns } from './pickleStart';
import { looksLikeNpy } from './formats/npy';
import { looksLikeGguf } from './formats/gguf';
import { looksLikeSafetensors } from './formats/safetensors';
import { detectCompression } from './formats/compressed';
import { isTarHeader } from './formats/tar';
import { isOpcode } from './pickle/opcodes';
import { Cursor } from './pickle/cursor';
import { runPickle, type PickleRun } from './pickle/machine';
import { looksLike7z } from './formats/sevenZip';
import { looksLikeHdf5 } from './formats/hdf5';
import { looksLikeOnnx } from './formats/onnx';
import { isCodeFileName } from '../python/scanCode';
import { sniffHfConfig } from './hfRepo';

export const HEAD_BYTES = 512;
const TAIL_BYTES = 1024;


export type Sniff = { model: true; format: string } | { model: false; reason: string };

/** File types that are neither model files nor code, by magic number. */
const MEDIA: { name: string; test: (h: Uint8Array) => boolean }[] = [
  { name: 'PNG image', test: (h) => startsWith(h, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  { name: 'JPEG image', test: (h) => startsWith(h, [0xff, 0xd8, 0xff]) },
  { name: 'GIF image', test: (h) => startsWith(h, 'GIF87a') || startsWith(h, 'GIF89a') },
  { name: 'WebP/WAV/AVI (RIFF) file', test: (h) => startsWith(h, 'RIFF') },
  { name: 'TIFF image', test: (h) => startsWith(h, [0x49, 0x49, 0x2a, 0x00]) || startsWith(h, [0x4d, 0x4d, 0x00, 0x2a]) },
  { name: 'BMP image', test: (h) => startsWith(h, 'BM') && h.length >= 14 && h[6] === 0 && h[7] === 0 && h[8] === 0 && h[9] === 0 },
  { name: 'PDF document', test: (h) => startsWith(h, '%PDF-') },
  { name: 'MP4/QuickTime/HEIF media', test: (h) => startsWith(h, 'ftyp', 4) },
  { name: 'Matroska/WebM media', test: (h) => startsWith(h, [0x1a, 0x45, 0xdf, 0xa3]) },
  { name: 'MP3 audio', test: (h) => startsWith(h, 'ID3') || (h.length >= 2 && h[0] === 0xff && (h[1] & 0xe0) === 0xe0) },
  { name: 'Ogg media', test: (h) => startsWith(h, 'OggS') },
  { name: 'FLAC audio', test: (h) => startsWith(h, 'fLaC') },
  { name: 'font', test: (h) => startsWith(h, 'wOFF') || startsWith(h, 'wOF2') || startsWith(h, [0x00, 0x01, 0x00, 0x00, 0x00]) || startsWith(h, 'OTTO') },
  { name: 'ICO image', test: (h) => startsWith(h, [0x00, 0x00, 0x01, 0x00]) },
  { name: 'ELF executable', test: (h) => startsWith(h, [0x7f, 0x45, 0x4c, 0x46]) },
  { name: 'SQLite database', test: (h) => startsWith(h, 'SQLite format 3\0') },
  // Keras .h5 models live in HDF5 files; this scanner does not read HDF5 (listed with --verbose, not scanned)
  { name: 'HDF5 file (not analysed)', test: (h) => startsWith(h, [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]) },
];

/** UTF-8 text: no NUL or other control bytes but tab, newlines, form feed and escape (a sequence cut by the end
 *  of the head is allowed). */
export function looksLikeText(head: Uint8Array): boolean {
  const n = head.length;
  for (let i = 0; i < n;) {
    const b = head[i];
    if (b < 0x20 && !(b >= 0x09 && b <= 0x0d) && b !== 0x1b) return false;
    if (b < 0x80) { i++; continue; }
    const len = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len === 0) return false;
    for (let k = 1; k < len; k++) {
      if (i + k >= n) return true;   // cut by the head's end
      if ((head[i + k] & 0xc0) !== 0x80) return false;
    }
    i += len;
  }
  return true;
}

class NeedMore extends Error {}

/**
 * Would an unpickler get anywhere with these bytes? Runs the symbolic machine (nothing is executed) over the
 * head: a pickle if it reaches STOP, if it is still valid where the head ends, or if it calls a global before
 * it fails (the loader would have run that call). Text that merely starts with an opcode letter fails at once.
 */
export function looksLikePickle(head: Uint8Array, size: number): boolean {
  // any opcode may start a stream CPython reads (a crafted one need not begin with PROTO or a usual first opcode)
  if (head.length === 0 || !isOpcode(head[0])) return false;
  const c = new Cursor(0, size);
  const gen = runPickle(c, { disasm: false });
  let fed = false;
  let run: PickleRun | undefined;
  try {
    let r = gen.next();
    while (!r.done) {
      if (fed) throw new NeedMore();
      c.buf = head; c.bufStart = 0; c.pos = 0; c.eof = head.length >= size; fed = true;
      r = gen.next();
    }
    run = r.value;
  } catch (e) {
    if (e instanceof NeedMore) { gen.return(undefined as never); return true; }
    return false;
  }
  try {
    if (run.complete || run.globals.some((g) => g.called)) return true;
    // the machine stopped before importing anything: a pickle only if a real unpickler could go on from there
    // (CPython reads `I0x10` as 16; the machine does not)
    return run.globals.length === 0 && stopBeforeAnythingRuns(run, { src: new BytesSource(head), persistentLoad: true }) === undefined;
  } finally { run.release?.(); }
}

/** Decides from the first bytes (and, for binary files no magic matched, the last ones) whether any model
 *  loader would read the file. `tail` is read lazily. */
export function sniffBytes(head: Uint8Array, size: number, tail?: () => Uint8Array): Sniff {
  if (size === 0) return { model: false, reason: 'empty file' };
  if (head.length >= 512 && isTarHeader(head.subarray(0, 512))) return { model: true, format: 'tar' };
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return { model: true, format: 'zip' };
  // an end record first: Python's zipfile (numpy.load) still finds an archive described by it or a later one
  if (startsWith(head, [0x50, 0x4b, 0x05, 0x06])) return { model: true, format: 'zip' };
  if (looksLikeNpy(head)) return { model: true, format: 'numpy-npy' };
  if (looksLikeGguf(head)) return { model: true, format: 'gguf' };
  if (looksLikeSafetensors(head, size)) return { model: true, format: 'safetensors' };
  if (looksLike7z(head)) return { model: true, format: '7z' };
  if (head[0] === 0x80 && head.length >= 2 && head[1] <= 5) return { model: true, format: 'pickle' };
  // HDF5 (Keras .h5): the superblock at 0 (after a user block: sniffOpenFile looks at 512, 1024, ...)
  if (looksLikeHdf5(head)) return { model: true, format: 'hdf5' };
  if (looksLikeOnnx(head, size)) return { model: true, format: 'onnx' };
  const text = looksLikeText(head);
  // compressed data is binary: "x = 1" starts like a zlib header, "BZh" could start a sentence
  const comp = text ? undefined : detectCompression(head);
  if (comp) return { model: true, format: `compressed (${comp})` };
  const media = MEDIA.find((m) => m.test(head));
  if (media) return { model: false, reason: media.name };
  if (looksLikePickle(head, size)) return { model: true, format: text ? 'pickle (protocol 0)' : 'pickle' };
  if (text) return { model: false, reason: 'text' };
  // an archive behind a prefix: Python's zipfile reads it from its end record
  const t = tail?.();
  if (t && t.length >= 22) {
    for (let i = t.length - 22; i >= 0; i--) {
      if (t[i] === 0x50 && t[i + 1] === 0x4b && t[i + 2] === 0x05 && t[i + 3] === 0x06) return { model: true, format: 'zip (embedded)' };
    }
  }
  return { model: false, reason: 'binary data in no model format' };
}

/** Reads the head (and the tail when needed) of an open regular file and sniffs it. */
function sniffOpenFile(fd: number, size: number): Sniff {
  const head = Buffer.alloc(Math.min(HEAD_BYTES, size));
  const bytesRead = head.length ? fs.readSync(fd, head, 0, head.length, 0) : 0;
  const h = head.subarray(0, bytesRead);
  let tailBytes: Uint8Array | undefined;
  if (size > HEAD_BYTES && !sniffBytes(h, size).model) {
    // an HDF5 superblock after a user block (h5py userblock_size: 512, 1024, ...; user blocks are zero-filled)
    if (h[0] === 0) {
      const sb = Buffer.alloc(8);
      for (let at = 512; at + 8 <= size && at <= 1 << 20; at *= 2) if (fs.readSync(fd, sb, 0, 8, at) === 8 && looksLikeHdf5(sb)) return { model: true, format: 'hdf5' };
    }
    const n = Math.min(TAIL_BYTES, size - HEAD_BYTES);
    const t = Buffer.alloc(n);
    tailBytes = t.subarray(0, fs.readSync(fd, t, 0, n, size - n));
  }
  return sniffBytes(h, size, tailBytes ? () => tailBytes! : undefined);
}

/**
 * Sniffs one file by path. Never blocks on a FIFO: the file is opened non-blocking and checked to be regular.
 * Synchronous calls on purpose: four tiny syscalls per file, where the promise FileHandle API costs a thread-pool
 * round trip each (Debian torch's 9,370 files: about 2.2 s of the CLI's 4.7 s were open/fstat/read/close promises).
 */
export async function sniffFile(file: string): Promise<Sniff> {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { model: false, reason: `not a regular file (${fileType(st)})` };
    return sniffOpenFile(fd, st.size);
  } finally { fs.closeSync(fd); }
}

export function fileType(st: fs.Stats): string {
  return st.isFIFO() ? 'FIFO' : st.isSocket() ? 'socket' : st.isCharacterDevice() ? 'character device' : st.isBlockDevice() ? 'block device'
    : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symbolic link' : 'special file';
}

// ---- the walk ------------------------------------------------------------------------------------------------

/** Directory names never walked (the excludes of `[tool.safe-weights]` and a `pyvenv.cfg` marker add more). */
export const SKIP_DIRS: ReadonlySet<string> = new Set(['.git', 'node_modules', '.venv', 'venv', '__pycache__', '.tox', '.nox', '.mypy_cache', 'site-packages', '.hg', '.svn']);

export interface DiscoveredFile {
  /** The path to report: as met in the walk (a link's own path, not its target). */
  path: string;
  kind: 'model' | 'code';
  /** What the first bytes look like (model files met in a walk); undefined for files named explicitly. */
  format?: string;
  /** The file read when `path` is a symbolic link. */
  target?: string;
}
export type SkipWhy = 'content' | 'duplicate' | 'special' | 'link' | 'outside';
export interface SkippedFile { path: string; why: SkipWhy; reason: string }
export interface DiscoveryError { path: string; message: string }
export interface Discovery { files: DiscoveredFile[]; skipped: SkippedFile[]; errors: DiscoveryError[] }

export interface DiscoverOptions {
  /** Paths relative to the walked root (with `/`, directories also tried with a trailing `/`) to leave out. */
  excluded?: (rel: string) => boolean;
  /** Paths given by the user (CLI): a file named so is scanned whatever its content; a FIFO or device is an error.
   *  False (server): every path is a root folder. */
  explicit?: boolean;
  /** Files sniffed at once (each holds one file handle). */
  concurrency?: number;
  /** Walk links to folders outside the given folders too (by default they are skipped, as git, ripgrep and Bandit
   *  do: one link to /usr/include in Debian torch's tree held 8,051 headers, 7x the tree's own Python files). */
  followLinks?: boolean;
}

interface Met { path: string; link: boolean; key: string; size: number; explicit: boolean; order: number }

/**
 * The files under `paths` that a scan reads, in walk order (names sorted). Files named explicitly come first in
 * the order given. A target reached by several paths is listed once: under a symbolic link's path if one leads
 * to it (the name the user sees), else under the first path met.
 */
export async function discover(paths: string[], opts: DiscoverOptions = {}): Promise<Discovery> {
  const excluded = opts.excluded ?? (() => false);
  const skipped: SkippedFile[] = [];
  const errors: DiscoveryError[] = [];
  const met: Met[] = [];
  const visitedDirs = new Set<string>();
  let order = 0;
  const errMessage = (e: unknown): string => {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'no such file or directory' : code === 'ELOOP' ? 'symbolic link loop' : code === 'EACCES' ? 'permission denied' : (e as Error).message;
  };

  // links to folders are walked only into the folders given (or anywhere with followLinks)
  const rootsReal: string[] = [];
  for (const p of paths) { try { rootsReal.push(await fsp.realpath(p)); } catch { /* reported below */ } }
  const insideRoots = (real: string): boolean => rootsReal.some((r) => real === r || real.startsWith(r.endsWith(path.sep) ? r : r + path.sep));

  const walk = async (root: string): Promise<void> => {
    // real directories first; links to directories after, so a folder reached both ways is listed by its own path
    const stack: string[] = [root];
    const deferred: string[] = [];
    for (;;) {
      let dir = stack.pop();
      if (dir === undefined) {
        const link = deferred.shift();
        if (link === undefined) break;
        let real: string;
        try { real = await fsp.realpath(link); } catch (e) { skipped.push({ path: link, why: 'link', reason: errMessage(e) }); continue; }
        if (visitedDirs.has(real)) { skipped.push({ path: link, why: 'link', reason: `link to a folder already walked (${real})` }); continue; }
        if (!opts.followLinks && !insideRoots(real)) {
          skipped.push({ path: link, why: 'outside', reason: `link to a folder outside the scanned folders (${real}): not walked; --follow-links walks it` });
          continue;
        }
        dir = link;
      }
      try { visitedDirs.add(await fsp.realpath(dir)); } catch { /* reported by readdir */ }
      let ents: fs.Dirent[];
      try { ents = await fsp.readdir(dir, { withFileTypes: true }); } catch (e) { errors.push({ path: dir, message: errMessage(e) }); continue; }
      ents.sort((x, y) => x.name.localeCompare(y.name));
      const subdirs: string[] = [];
      const files: { full: string; isLink: boolean; st?: fs.Stats; error?: string }[] = [];
      for (const ent of ents) {
        const full = path.join(dir, ent.name);
        const rel = path.relative(root, full).split(path.sep).join('/');
        if (excluded(rel)) continue;
        const isLink = ent.isSymbolicLink();
        let st: fs.Stats | undefined;
        if (isLink) {
          try { st = await fsp.stat(full); } catch (e) {
            skipped.push({ path: full, why: 'link', reason: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'broken symbolic link' : errMessage(e) });
            continue;
          }
        }
        const isDir = st ? st.isDirectory() : ent.isDirectory();
        if (isDir) {
          if (SKIP_DIRS.has(ent.name) || excluded(rel + '/') || fs.existsSync(path.join(full, 'pyvenv.cfg'))) continue;
          if (isLink) deferred.push(full); else subdirs.push(full);
          continue;
        }
        const isFile = st ? st.isFile() : ent.isFile();
        if (!isFile) {
          if (!st) { try { st = await fsp.lstat(full); } catch { /* gone */ } }
          skipped.push({ path: full, why: 'special', reason: `not a regular file (${st ? fileType(st) : 'special file'})` });
          continue;
        }
        files.push({ full, isLink, st });
      }
      // synchronous stats: a promise stat per file costs a thread-pool round trip (see sniffFile); met keeps walk order
      for (const f of files) { if (!f.st) { try { f.st = fs.statSync(f.full); } catch (e) { f.error = errMessage(e); } } }
      for (const f of files) {
        if (f.error !== undefined || !f.st) { errors.push({ path: f.full, message: f.error ?? 'stat failed' }); continue; }
        met.push({ path: f.full, link: f.isLink, key: `${f.st.dev}:${f.st.ino}`, size: f.st.size, explicit: false, order: order++ });
      }
      for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]);
    }
  };

  for (const p of paths) {
    let st: fs.Stats;
    try { st = await fsp.stat(p); } catch (e) { errors.push({ path: p, message: errMessage(e) }); continue; }
    if (st.isDirectory()) { await walk(p); continue; }
    if (!opts.explicit) continue;
    if (!st.isFile()) {
      errors.push({ path: p, message: `not a regular file (${fileType(st)}); name a model file, a code file or a folder` });
      continue;
    }
    let link = false;
    try { link = (await fsp.lstat(p)).isSymbolicLink(); } catch { /* stat worked */ }
    met.push({ path: p, link, key: `${st.dev}:${st.ino}`, size: st.size, explicit: true, order: order++ });
  }

  // one entry per target: explicit paths win, then a link's path, then the first met
  const byKey = new Map<string, Met[]>();
  for (const m of met) {
    const list = byKey.get(m.key);
    if (list) list.push(m); else byKey.set(m.key, [m]);
  }
  const chosen: Met[] = [];
  for (const list of byKey.values()) {
    const pick = list.find((m) => m.explicit) ?? list.find((m) => m.link) ?? list[0];
    chosen.push(pick);
    for (const m of list) if (m !== pick) skipped.push({ path: m.path, why: 'duplicate', reason: `same file as ${pick.path}` });
  }
  chosen.sort((a, b) => a.order - b.order);

  const files: (DiscoveredFile | undefined)[] = new Array(chosen.length);
  const decide = async (i: number): Promise<void> => {
    const m = chosen[i];
    let target: string | undefined;
    if (m.link) { try { target = await fsp.realpath(m.path); } catch { /* read through the link */ } }
    if (isCodeFileName(path.basename(m.path))) { files[i] = { path: m.path, kind: 'code', target }; return; }
    if (m.explicit) { files[i] = { path: m.path, kind: 'model', target }; return; }
    // a Hugging Face repository's config.json (JSON, so no magic): scanned as the repository (hfRepo.ts)
    if (sniffHfConfig(m.path)) { files[i] = { path: m.path, kind: 'model', format: 'huggingface-repo', target }; return; }
    let s: Sniff;
    try { s = await sniffFile(m.path); } catch (e) { errors.push({ path: m.path, message: errMessage(e) }); return; }
    if (s.model) files[i] = { path: m.path, kind: 'model', format: s.format, target };
    else skipped.push({ path: m.path, why: s.reason.startsWith('not a regular file') ? 'special' : 'content', reason: s.reason });
  };
  const width = Math.max(1, opts.concurrency ?? 8);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, chosen.length) }, async () => {
    while (next < chosen.length) await decide(next++);
  }));
  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  return { files: files.filter((f): f is DiscoveredFile => !!f), skipped: skipped.sort(byPath), errors: errors.sort(byPath) };
}
