// Scratch memory reused across reads and scans. Why: on some machines (VMs) every first touch of a fresh
// page costs ~10 µs; a 50,000-tensor checkpoint otherwise faults in tens of MB of read buffers and value
// arrays per scan, which cost more than the scan itself. Buffers handed out here are not zeroed.

// free buffers by size class (class k: 2^k <= byteLength < 2^(k+1)): a directory scan takes ~7 per file from a
// pool of up to several hundred, and a linear best-fit search over one list was 4-5% of a warm scan of the bench corpus
const free: ArrayBuffer[][] = [];
const sizeClass = (bytes: number): number => 31 - Math.clz32(bytes);
let pooledBytes = 0;
const counters = { taken: 0, missed: 0, dropped: 0 };

/** Pool counters (for benchmarks): buffers taken, taken but newly allocated, given back but dropped (pool full). */
export function poolStats(): { taken: number; missed: number; dropped: number; pooledBytes: number } {
  return { ...counters, pooledBytes };
}
const MAX_POOLED = 48 << 20;
const IDLE_MS = 30_000;
let idle: ReturnType<typeof setTimeout> | undefined;

/** Long-lived processes (the language server) do not keep scratch memory between bursts of work: one timer
 *  checks when the pool was last used (rescheduling a timer on every give cost more than the give). */
let lastUse = 0;
function dropWhenIdle(): void {
  lastUse = Date.now();
  if (idle) return;
  const check = () => {
    const quiet = Date.now() - lastUse;
    if (quiet >= IDLE_MS) { dropPool(); idle = undefined; return; }
    idle = setTimeout(check, IDLE_MS - quiet);
    idle.unref?.();
  };
  idle = setTimeout(check, IDLE_MS);
  idle.unref?.();
}

/** Forgets every pooled buffer (the garbage collector takes them). */
export function dropPool(): void { free.length = 0; pooledBytes = 0; }

/** An ArrayBuffer of at least `bytes` (a power of two, at least 64 KB); give it back with giveArrayBuffer. */
export function takeArrayBuffer(bytes: number): ArrayBuffer {
  counters.taken++;
  const want = sizeClass(Math.max(1, bytes));
  // the smallest buffer that fits in the buffer's own class, else the most recently given one of the next class up
  const own = free[want];
  if (own) {
    // from the end (most recently given); a buffer of the class's least size (the usual: all are powers of two) is best
    let best = -1;
    for (let i = own.length - 1; i >= 0; i--) {
      const n = own[i].byteLength;
      if (n >= bytes && (best < 0 || n < own[best].byteLength)) { best = i; if (n === 2 ** want) break; }
    }
    if (best >= 0) return taken(best === own.length - 1 ? own.pop()! : own.splice(best, 1)[0]);
  }
  for (let k = want + 1; k < free.length; k++) if (free[k]?.length) return taken(free[k].pop()!);
  let size = 1 << 16;
  while (size < bytes) size *= 2;
  counters.missed++;
  return new ArrayBuffer(size);
}

function taken(b: ArrayBuffer): ArrayBuffer { pooledBytes -= b.byteLength; return b; }

/** Returns a buffer for reuse; the caller must not use any view of it afterwards. */
export function giveArrayBuffer(b: ArrayBuffer): void {
  if (b.byteLength < (1 << 16)) return;
  const list = (free[sizeClass(b.byteLength)] ??= []);
  if (list.includes(b)) return;
  if (pooledBytes + b.byteLength > MAX_POOLED) { counters.dropped++; return; }
  list.push(b);
  pooledBytes += b.byteLength;
  dropWhenIdle();
}

export function takeBytes(n: number): Uint8Array { return new Uint8Array(takeArrayBuffer(n)); }
export function giveBytes(b: Uint8Array): void { giveArrayBuffer(b.buffer as ArrayBuffer); }

// ---- memory that reports keep -------------------------------------------------------------------------
// Sealed tables (tensor names, storage keys) outlive the scan, so they cannot come from the pool; fresh
// memory costs a page fault per 4 KB on first touch. The zip worker thread hands over buffers it has already
// touched (while this thread analyses the pickle), and sealed tables are cut out of them. A buffer stays
// alive as long as any report uses a part of it.

const prepared: ArrayBuffer[] = [];
let cur: ArrayBuffer | undefined;
let curUsed = 0;
let keptSinceAsked = 0;

/** A buffer another thread has already written to (pages mapped), for keep(). */
export function offerPrefaulted(b: ArrayBuffer): void { if (prepared.length < 2) prepared.push(b); }

/** How many bytes keep() handed out since the last call (how big the next prepared buffer should be). */
export function keptBytesSinceLastAsked(): number { const n = keptSinceAsked; keptSinceAsked = 0; return n; }

/** A zero-filled array of `n` elements for data a report keeps: from a prepared buffer when one has room. */
export function keep<T>(ctor: { new(buffer: ArrayBuffer, byteOffset: number, length: number): T; new(length: number): T; BYTES_PER_ELEMENT: number }, n: number): T {
  const bytes = n * ctor.BYTES_PER_ELEMENT;
  keptSinceAsked += bytes;
  const at = (curUsed + 7) & ~7;
  if (!cur || at + bytes > cur.byteLength) {
    const next = prepared.length && prepared[0].byteLength >= bytes ? prepared.shift() : undefined;
    if (!next) return new ctor(n);
    cur = next; curUsed = 0;
    return keep(ctor, n);
  }
  curUsed = at + bytes;
  return new ctor(cur, at, n);
}
