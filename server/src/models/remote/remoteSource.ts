// A ByteSource over HTTP Range requests: the scanner reads a remote file the way it reads a local one, and only the
// ranges it asks for are fetched (the zip end record and directory, local headers, the pickle members, format
// headers), never the tensor data it skips. Fetched ranges are cached, so a byte is fetched once; every source of
// a scan shares one byte budget, so a crafted file cannot make the scan download gigabytes.
import type { ByteSource } from '../source';
import { HttpError, SyncHttp, redact, type HttpRequest, type HttpResponse } from './syncHttp';

/** The budget of a whole remote scan, shared by every file it reads. */
export interface FetchBudget { left: number; readonly limit: number }
export class FetchLimitError extends HttpError {}

export interface RemoteSourceOptions {
  http: SyncHttp;
  budget: FetchBudget;
  /** Extra headers for a URL (the Hugging Face token goes only to the Hub's own origin). */
  headersFor?: (url: string) => Record<string, string>;
  timeoutMs?: number;
  userAgent?: string;
}

/** Bytes fetched at least per miss: sequential small reads (a pickle read in chunks) cost one round trip per 16 KB. */
const MIN_FETCH = 16 << 10;
/** A server that ignores Range answers with the whole file; it is kept only up to this size. */
const WHOLE_FILE_MAX = 1 << 20;

interface Block { start: number; data: Uint8Array }

export class RemoteSource implements ByteSource {
  size = 0;
  bytesFetched = 0;
  requests = 0;
  /** The URL ranges are asked from: the first redirect target (a CDN) once known, so each range is one round trip. */
  private current: string;
  private etag: string | undefined;
  private blocks: Block[] = [];

  private constructor(readonly url: string, private readonly o: RemoteSourceOptions) { this.current = url; }

  /** Opens the URL: one request for the first bytes, which also tells the size (Content-Range). */
  static open(url: string, o: RemoteSourceOptions): RemoteSource {
    const s = new RemoteSource(url, o);
    s.probe();
    return s;
  }

  private probe(): void {
    const want = Math.min(MIN_FETCH * 4, this.o.budget.left);
    const res = this.request(0, want, true);
    if (res.status === 416) {
      // an empty file has no byte 0: "bytes */0"
      const total = /\/\s*(\d+)\s*$/.exec(res.headers['content-range'] ?? '');
      if (total && Number(total[1]) === 0) { this.size = 0; return; }
      throw new HttpError(`GET ${redact(this.url)}: the server refused the range (HTTP 416)`);
    }
    if (res.status === 200) {
      // Range ignored: acceptable only for a small file sent whole
      if (res.truncated || res.body.length > WHOLE_FILE_MAX) {
        throw new HttpError(`GET ${redact(this.url)}: the server ignores Range requests (HTTP 200 with the whole file); refusing to download it — download the file and scan it locally`);
      }
      this.size = res.body.length;
      this.insert(0, res.body);
      return;
    }
    const cr = this.checkPartial(res, 0);
    this.size = cr.total;
    this.insert(0, res.body);
  }

  private httpRequest(url: string, start: number, length: number, first: boolean): HttpRequest {
    return {
      url,
      headers: {
        'range': `bytes=${start}-${start + length - 1}`,
        // byte offsets are of the file itself, never of a compressed transfer
        'accept-encoding': 'identity',
        'user-agent': this.o.userAgent ?? 'safe-weights',
        ...(this.o.headersFor?.(url) ?? {}),
      },
      timeoutMs: this.o.timeoutMs ?? 60_000,
      maxBody: Math.max(length, first ? WHOLE_FILE_MAX : 0) + 1,
    };
  }

  private counted(res: HttpResponse): HttpResponse {
    this.requests++;
    this.bytesFetched += res.body.length;
    this.o.budget.left -= res.body.length;
    return res;
  }

  private checkResponse(res: HttpResponse): void {
    if (res.status >= 400 && res.status !== 416) throw new HttpError(`GET ${redact(this.url)}: HTTP ${res.status}${hint(res.status)}`);
    const enc = res.headers['content-encoding'];
    if (enc && enc !== 'identity') throw new HttpError(`GET ${redact(this.url)}: the server sent the range ${enc}-encoded although identity was asked`);
    const etag = res.headers['etag'];
    if (etag) {
      if (this.etag === undefined) this.etag = etag;
      else if (etag !== this.etag) throw new HttpError(`GET ${redact(this.url)}: the file changed during the scan (ETag ${this.etag} -> ${etag})`);
    }
  }

  private request(start: number, length: number, first = false): HttpResponse {
    if (length > this.o.budget.left) {
      throw new FetchLimitError(`${redact(this.url)}: the verdict needs more than the ${this.o.budget.limit.toLocaleString('en-US')} bytes a remote scan may fetch (--max-fetch); download the file and scan it locally`);
    }
    const get = (url: string): HttpResponse => { return this.counted(this.o.http.get(this.httpRequest(url, start, length, first))); };
    let res = get(this.current);
    // a pre-signed redirect target may expire during a long scan: ask the original URL again
    if (this.current !== this.url && res.status >= 400) { this.current = this.url; res = get(this.url); }
    this.checkResponse(res);
    if (first && res.url && res.url !== this.current) this.current = res.url;
    return res;
  }

  /**
   * Fetches these ranges now, several requests in parallel (the zip directory's local headers: one scattered
   * range per member). Cached parts are left out and ranges closer than 4 KB are joined. Best effort: a range that
   * fails here is fetched (and its error reported) by the read that needs it.
   */
  prefetch(ranges: readonly (readonly [number, number])[]): void {
    const pieces: [number, number][] = [];
    for (const [o, l] of ranges) {
      let pos = Math.max(0, o);
      const end = Math.min(this.size, o + l);
      while (pos < end) {
        const i = this.blockAt(pos);
        if (i >= 0) { pos = this.blocks[i].start + this.blocks[i].data.length; continue; }
        const stop = Math.min(end, this.nextBlockStart(pos));
        pieces.push([pos, stop]);
        pos = stop;
      }
    }
    if (pieces.length === 0) return;
    pieces.sort((a, b) => a[0] - b[0]);
    const joined: [number, number][] = [];
    for (const p of pieces) {
      const last = joined[joined.length - 1];
      if (last && p[0] - last[1] <= 4096) last[1] = Math.max(last[1], p[1]);
      else joined.push([p[0], p[1]]);
    }
    const total = joined.reduce((a, [x, y]) => a + (y - x), 0);
    if (total > this.o.budget.left) return;
    const answers = this.o.http.getMany(joined.map(([x, y]) => this.httpRequest(this.current, x, y - x, false)));
    answers.forEach((res, k) => {
      if (res instanceof Error) return;
      this.counted(res);
      try {
        this.checkResponse(res);
        this.checkPartial(res, joined[k][0]);
        this.insert(joined[k][0], res.body);
      } catch { /* the read that needs these bytes asks again and reports */ }
    });
  }

  private checkPartial(res: HttpResponse, start: number): { first: number; last: number; total: number } {
    if (res.status !== 206) throw new HttpError(`GET ${redact(this.url)}: HTTP ${res.status} to a Range request (206 expected)`);
    const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+)\s*$/i.exec(res.headers['content-range'] ?? '');
    if (!m) throw new HttpError(`GET ${redact(this.url)}: a partial answer without a usable Content-Range ("${res.headers['content-range'] ?? ''}")`);
    const first = Number(m[1]), last = Number(m[2]), total = Number(m[3]);
    if (first !== start || last < first || last >= total || res.body.length !== last - first + 1 || !Number.isSafeInteger(total)) {
      throw new HttpError(`GET ${redact(this.url)}: Content-Range ${m[0].trim()} does not match the range asked from ${start} (${res.body.length} bytes sent)`);
    }
    if (this.size && total !== this.size) throw new HttpError(`GET ${redact(this.url)}: the file changed size during the scan (${this.size} -> ${total})`);
    return { first, last, total };
  }

  /** Makes [offset, offset+length) cached, fetching the missing parts. */
  private ensure(offset: number, length: number): void {
    let pos = offset;
    const end = offset + length;
    while (pos < end) {
      const i = this.blockAt(pos);
      if (i >= 0) { const b = this.blocks[i]; pos = b.start + b.data.length; continue; }
      // missing from pos to the next block (or end); fetch at least MIN_FETCH, never over a cached block
      const next = this.nextBlockStart(pos);
      const stop = Math.min(this.size, next, Math.max(end, pos + MIN_FETCH));
      this.fetchRange(pos, stop - pos);
      const j = this.blockAt(pos);
      if (j < 0) throw new HttpError(`GET ${redact(this.url)}: no bytes at offset ${pos}`);
      pos = this.blocks[j].start + this.blocks[j].data.length;
    }
  }

  private fetchRange(start: number, length: number): void {
    const res = this.request(start, length);
    if (res.status === 200) {
      throw new HttpError(`GET ${redact(this.url)}: the server stopped honouring Range requests (HTTP 200)`);
    }
    this.checkPartial(res, start);
    this.insert(start, res.body);
  }

  /** Index of the block holding `pos`, or -1. */
  private blockAt(pos: number): number {
    let lo = 0, hi = this.blocks.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1, b = this.blocks[mid];
      if (pos < b.start) hi = mid - 1;
      else if (pos >= b.start + b.data.length) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  private nextBlockStart(pos: number): number {
    for (const b of this.blocks) if (b.start > pos) return b.start;
    return Number.MAX_SAFE_INTEGER;
  }

  /** Adds bytes at `start`, merged with every cached block they overlap or touch (the blocks stay sorted and disjoint). */
  private insert(start: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const end = start + data.length;
    let lo = 0;
    while (lo < this.blocks.length && this.blocks[lo].start + this.blocks[lo].data.length < start) lo++;
    let hi = lo;
    while (hi < this.blocks.length && this.blocks[hi].start <= end) hi++;
    if (hi === lo) { this.blocks.splice(lo, 0, { start, data }); return; }
    const from = Math.min(start, this.blocks[lo].start);
    const to = Math.max(end, this.blocks[hi - 1].start + this.blocks[hi - 1].data.length);
    const out = new Uint8Array(to - from);
    for (let k = lo; k < hi; k++) out.set(this.blocks[k].data, this.blocks[k].start - from);
    out.set(data, start - from);
    this.blocks.splice(lo, hi - lo, { start: from, data: out });
  }

  /** A read-ahead window this small: a window over a remote file would fetch the tensor data after each header. */
  readonly windowBytes = 512;

  read(offset: number, length: number): Uint8Array {
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (n === 0 || offset < 0) return new Uint8Array(0);
    this.ensure(offset, n);
    const i = this.blockAt(offset);
    const b = this.blocks[i];
    if (offset + n <= b.start + b.data.length) return b.data.slice(offset - b.start, offset - b.start + n);
    const out = new Uint8Array(n);
    this.copy(out, 0, offset, n);
    return out;
  }

  readInto(dst: Uint8Array, dstOffset: number, offset: number, length: number): number {
    const n = Math.max(0, Math.min(length, this.size - offset, dst.length - dstOffset));
    if (n === 0 || offset < 0) return 0;
    this.ensure(offset, n);
    this.copy(dst, dstOffset, offset, n);
    return n;
  }

  private copy(dst: Uint8Array, dstOffset: number, offset: number, n: number): void {
    let done = 0;
    while (done < n) {
      const b = this.blocks[this.blockAt(offset + done)];
      const from = offset + done - b.start;
      const take = Math.min(n - done, b.data.length - from);
      dst.set(b.data.subarray(from, from + take), dstOffset + done);
      done += take;
    }
  }

  close(): void { this.blocks = []; }
}

function hint(status: number): string {
  if (status === 401 || status === 403) return ' (a private or gated repository needs HF_TOKEN set to a token that may read it)';
  if (status === 404) return ' (no such file at that revision)';
  return '';
}
