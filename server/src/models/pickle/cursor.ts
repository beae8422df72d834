// A forward cursor over a byte stream that the pickle machine pulls from. The machine is a generator that
// yields "I need n bytes from pos"; a driver (sync file reads, async decompression streams, in-memory bytes)
// refills the cursor. Payloads the machine does not need are skipped by moving `pos` past the buffer: the
// driver then seeks (files) or discards (streams) instead of copying them.

import type { ByteSource } from '../source';
import { giveBytes, takeBytes } from '../bufferPool';

const EMPTY = new Uint8Array(0);

export class Cursor {
  buf: Uint8Array = EMPTY;
  pos = 0;
  /** Absolute offset (in the source) of buf[0]. */
  bufStart: number;
  eof = false;
  constructor(start: number, readonly limit: number) { this.bufStart = start; }
  get abs(): number { return this.bufStart + this.pos; }
  avail(): number { return this.buf.length - this.pos; }
  /** Bytes left in the source after the current position (Infinity for streams of unknown length). */
  remaining(): number { return this.limit - this.abs; }
}

/** Something that can refill a cursor synchronously. */
export interface SyncFiller { fill(c: Cursor, need: number): void }

export function runSync<T>(gen: Generator<number, T, void>, c: Cursor, filler: SyncFiller): T {
  let r = gen.next();
  while (!r.done) {
    filler.fill(c, r.value);
    r = gen.next();
  }
  return r.value;
}

/** Refills from a random-access source into one pooled buffer (the unread tail moves to its front), or,
 *  for sources in memory, hands the machine the whole range at once. release() returns the buffer. */
export class RandomAccessFiller implements SyncFiller {
  private own: Uint8Array | undefined;
  constructor(private readonly src: ByteSource, private readonly chunk = 1 << 20) {}
  fill(c: Cursor, need: number): void {
    const abs = c.abs;
    const keepLen = Math.max(0, c.buf.length - c.pos);
    const readFrom = abs + keepLen;
    if (this.src.view && keepLen === 0) {
      c.buf = this.src.view(abs, Math.max(0, c.limit - abs)); c.bufStart = abs; c.pos = 0; c.eof = true;
      return;
    }
    const want = Math.min(Math.max(need - keepLen, this.chunk), c.limit - readFrom);
    if (want <= 0) { c.buf = c.buf.subarray(c.pos); c.bufStart = abs; c.pos = 0; c.eof = true; return; }
    let own = this.own;
    if (!own || own.length < keepLen + want) {
      const next = takeBytes(keepLen + want);
      if (keepLen) next.set(c.buf.subarray(c.pos), 0);
      if (own) giveBytes(own);
      own = this.own = next;
    } else if (keepLen) {
      if (c.buf.buffer === own.buffer) own.copyWithin(0, c.buf.byteOffset + c.pos - own.byteOffset, c.buf.byteOffset + c.buf.length - own.byteOffset);
      else own.set(c.buf.subarray(c.pos), 0);
    }
    const got = this.src.readInto(own, keepLen, readFrom, want);
    c.buf = own.subarray(0, keepLen + got); c.bufStart = abs; c.pos = 0;
    c.eof = got < want || readFrom + got >= c.limit;
  }
  release(): void { if (this.own) { giveBytes(this.own); this.own = undefined; } }
}

/** Async variant for decompression streams: feeds chunks as they arrive, discarding skipped bytes. */
export async function runWithChunks<T>(gen: Generator<number, T, void>, c: Cursor,
  chunks: AsyncIterator<Uint8Array>): Promise<T> {
  let pending: Uint8Array = EMPTY;   // bytes received but not yet in the cursor
  let done = false;
  let r = gen.next();
  while (!r.done) {
    const need = r.value;
    // drop bytes the machine skipped past the end of its buffer
    let skip = c.pos - c.buf.length;
    let keep = skip >= 0 ? EMPTY : c.buf.subarray(c.pos);
    const abs = c.abs;
    if (skip < 0) skip = 0;
    const parts: Uint8Array[] = keep.length ? [keep] : [];
    let have = keep.length;
    while (have < need && !(done && pending.length === 0)) {
      if (pending.length === 0) {
        const n = await chunks.next();
        if (n.done) { done = true; continue; }
        pending = n.value;
      }
      if (skip > 0) {
        const d = Math.min(skip, pending.length);
        pending = pending.subarray(d); skip -= d;
        continue;
      }
      const take = pending;   // take whole chunks: fewer copies, the cursor compacts on the next fill
      parts.push(take); have += take.length; pending = EMPTY;
    }
    if (skip > 0) { // source ended inside a skipped payload
      c.buf = EMPTY; c.bufStart = abs - skip; c.pos = skip; c.eof = true;
    } else {
      keep = parts.length === 1 ? parts[0] : concat(parts, have);
      c.buf = keep; c.bufStart = abs; c.pos = 0;
      c.eof = done && pending.length === 0;
    }
    r = gen.next();
  }
  return r.value;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
