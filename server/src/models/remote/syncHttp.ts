// Synchronous HTTP GET for the synchronous ByteSource interface: the request runs on a worker thread
// (rangeWorker.ts) and this thread waits on a shared flag, then takes the answer off a MessagePort. Only the CLI's
// remote scan uses it (it blocks the calling thread for the length of each request; the language server never
// calls it).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

export interface HttpRequest { url: string; headers: Record<string, string>; timeoutMs: number; maxBody: number }
export interface HttpResponse {
  status: number;
  /** The URL that answered, after redirects. */
  url: string;
  headers: Record<string, string>;
  body: Uint8Array;
  /** The body was longer than maxBody and was cut there. */
  truncated: boolean;
}

export class HttpError extends Error {}

/** One worker thread doing the requests of one scan; close() ends it. */
export class SyncHttp {
  private worker: Worker | undefined;
  private port: MessagePort | undefined;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));

  private start(): { worker: Worker; port: MessagePort } {
    if (this.worker && this.port) return { worker: this.worker, port: this.port };
    // next to this module: dist/range-worker.js in the bundle, rangeWorker.js in the compiled tree
    const file = [path.join(__dirname, 'range-worker.js'), path.join(__dirname, 'rangeWorker.js')].find((f) => fs.existsSync(f));
    if (!file) throw new HttpError(`the HTTP worker script is missing next to ${__dirname}`);
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(file, { workerData: { port: port2, flag: this.flag }, transferList: [port2] });
    worker.unref();
    this.worker = worker;
    this.port = port1;
    return { worker, port: port1 };
  }

  get(req: HttpRequest): HttpResponse {
    const { port } = this.start();
    Atomics.store(this.flag, 0, 0);
    port.postMessage(req);
    // the worker's own timeout aborts the request first; this one only guards against a stuck worker
    const waited = Atomics.wait(this.flag, 0, 0, req.timeoutMs + 5000);
    const msg = receiveMessageOnPort(port);
    if (waited === 'timed-out' && !msg) { this.close(); throw new HttpError(`GET ${redact(req.url)}: no answer in ${req.timeoutMs} ms`); }
    if (!msg) throw new HttpError(`GET ${redact(req.url)}: the HTTP worker gave no answer`);
    const m = msg.message as HttpResponse | { error: string };
    if ('error' in m) throw new HttpError(`GET ${redact(req.url)}: ${m.error}`);
    return m;
  }

  /** Several requests at once (the worker runs a few in parallel); each answer, or the error it met, in order. */
  getMany(reqs: HttpRequest[]): (HttpResponse | HttpError)[] {
    if (reqs.length === 0) return [];
    const { port } = this.start();
    Atomics.store(this.flag, 0, 0);
    port.postMessage(reqs);
    const longest = Math.max(...reqs.map((r) => r.timeoutMs));
    const waited = Atomics.wait(this.flag, 0, 0, longest * Math.ceil(reqs.length / 6) + 5000);
    const msg = receiveMessageOnPort(port);
    if (!msg) { if (waited === 'timed-out') this.close(); throw new HttpError(`${reqs.length} range requests: no answer`); }
    return (msg.message as (HttpResponse | { error: string })[]).map((m, i) => ('error' in m ? new HttpError(`GET ${redact(reqs[i].url)}: ${m.error}`) : m));
  }

  close(): void {
    const w = this.worker;
    this.worker = undefined;
    this.port?.close();
    this.port = undefined;
    if (w) void w.terminate();
  }
}

/** A URL fit for messages: no query string (pre-signed CDN URLs carry credentials there) and no user:password. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    u.username = ''; u.password = '';
    if (u.search) u.search = '?…';
    return u.toString();
  } catch { return url.replace(/\?.*$/, '?…'); }
}
