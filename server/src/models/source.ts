// Random access to the bytes of a model file. Reads only what is asked for, so GB files stay cheap.
import * as fs from 'node:fs';

export interface ByteSource {
  readonly size: number;
  /** Up to `length` bytes at `offset` (fewer at the end of the source). */
  read(offset: number, length: number): Uint8Array;
  /** Reads up to `length` bytes at `offset` into `dst` at `dstOffset` (no allocation); returns how many. */
  readInto(dst: Uint8Array, dstOffset: number, offset: number, length: number): number;
  /** The bytes without copying, when the source is in memory. */
  view?(offset: number, length: number): Uint8Array;
  /** Remote sources (models/remote/): fetch these [offset, length] ranges now, together, before many small scattered
   *  reads (a zip's local headers); local sources have none. */
  prefetch?(ranges: readonly (readonly [number, number])[]): void;
  /** Remote sources: how many bytes a read-ahead window should span (small, so it does not fetch tensor data). */
  readonly windowBytes?: number;
  close(): void;
}

export class FileSource implements ByteSource {
  readonly size: number;
  private closed = false;
  constructor(readonly fd: number) { this.size = fs.fstatSync(fd).size; }
  static open(path: string): FileSource { return new FileSource(fs.openSync(path, 'r')); }
  read(offset: number, length: number): Uint8Array {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const buf = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const r = fs.readSync(this.fd, buf, got, n - got, offset + got);
      if (r <= 0) break;
      got += r;
    }
    return got === n ? buf : buf.subarray(0, got);
  }
  readInto(dst: Uint8Array, dstOffset: number, offset: number, length: number): number {
    const n = Math.max(0, Math.min(length, this.size - offset, dst.length - dstOffset));
    let got = 0;
    while (got < n) {
      const r = fs.readSync(this.fd, dst, dstOffset + got, n - got, offset + got);
      if (r <= 0) break;
      got += r;
    }
    return got;
  }
  close(): void { if (!this.closed) { this.closed = true; fs.closeSync(this.fd); } }
}

export class BytesSource implements ByteSource {
  readonly size: number;
  constructor(private readonly bytes: Uint8Array) { this.size = bytes.length; }
  read(offset: number, length: number): Uint8Array {
    return this.bytes.subarray(Math.min(offset, this.size), Math.min(offset + length, this.size));
  }
  view(offset: number, length: number): Uint8Array { return this.read(offset, length); }
  readInto(dst: Uint8Array, dstOffset: number, offset: number, length: number): number {
    const part = this.read(offset, Math.min(length, dst.length - dstOffset));
    dst.set(part, dstOffset);
    return part.length;
  }
  close(): void { /* nothing */ }
}

/** A window [start, start+size) of another source (a stored zip member, a tar member). */
export class SliceSource implements ByteSource {
  constructor(private readonly base: ByteSource, private readonly start: number, readonly size: number) {}
  read(offset: number, length: number): Uint8Array {
    const n = Math.max(0, Math.min(length, this.size - offset));
    return this.base.read(this.start + offset, n);
  }
  readInto(dst: Uint8Array, dstOffset: number, offset: number, length: number): number {
    return this.base.readInto(dst, dstOffset, this.start + offset, Math.max(0, Math.min(length, this.size - offset)));
  }
  get view(): ((offset: number, length: number) => Uint8Array) | undefined {
    const v = this.base.view?.bind(this.base);
    if (!v) return undefined;
    return (offset, length) => v(this.start + offset, Math.max(0, Math.min(length, this.size - offset)));
  }
  close(): void { /* owned by base */ }
}

export function u16(b: Uint8Array, i: number): number { return b[i] | (b[i + 1] << 8); }
export function u32(b: Uint8Array, i: number): number { return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0; }
export function u64(b: Uint8Array, i: number): number {
  const hi = u32(b, i + 4);
  return hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + u32(b, i);
}
/** Whether `b` holds `sig` at `at` (a string compares its char codes as bytes, without building an array:
 *  discovery tests every file's head against a dozen signatures). */
export function startsWith(b: Uint8Array, sig: number[] | string, at = 0): boolean {
  if (b.length < at + sig.length) return false;
  if (typeof sig === 'string') {
    for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig.charCodeAt(i)) return false;
    return true;
  }
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
}
