// Reads a zip directory on a worker thread (see zipWorker.ts). One worker per process, started on first use
// and not keeping the process alive while idle; if it cannot start or fails, callers read in-thread.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ZipDirectory, ZipDirectoryMessage } from './zipDirectory';
import { keptBytesSinceLastAsked, offerPrefaulted } from '../bufferPool';

let worker: Worker | undefined;
let broken = false;
let nextId = 1;
const pending = new Map<number, { resolve: (d: ZipDirectory) => void; reject: (e: Error) => void }>();

function failAll(e: Error): void {
  broken = true;
  worker = undefined;
  for (const p of pending.values()) p.reject(e);
  pending.clear();
}

function getWorker(): Worker | undefined {
  if (broken) return undefined;
  if (worker) return worker;
  // next to this module: dist/zip-worker.js in the bundle, zipWorker.js in the compiled tree
  const file = [path.join(__dirname, 'zip-worker.js'), path.join(__dirname, 'zipWorker.js')].find((f) => fs.existsSync(f));
  if (!file) { broken = true; return undefined; }
  try { worker = new Worker(file); } catch { broken = true; return undefined; }
  worker.unref();
  worker.on('message', (m: { id: number; dir?: ZipDirectoryMessage; error?: string; prefaulted?: ArrayBuffer }) => {
    if (m.prefaulted) offerPrefaulted(m.prefaulted);
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if (pending.size === 0) worker?.unref();
    if (m.dir) {
      const w = worker;
      p.resolve(ZipDirectory.fromMessage(m.dir, (bufs) => { try { w?.postMessage({ recycle: bufs }, bufs); } catch { /* worker gone */ } }));
    } else p.reject(new Error(m.error ?? 'zip worker failed'));
  });
  worker.on('error', (e) => failAll(e));
  worker.on('exit', () => failAll(new Error('zip worker exited')));
  return worker;
}

/** readZipDirectory of the open file `fd` on the worker, or undefined when no worker is available. The
 *  caller must keep `fd` open until the promise settles. */
export function readZipDirectoryInWorker(fd: number): Promise<ZipDirectory> | undefined {
  const w = getWorker();
  if (!w) return undefined;
  const id = nextId++;
  return new Promise<ZipDirectory>((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.ref();
    // ask for as much prefaulted memory as reports kept since the last request (a scan is usually like the one before)
    const kept = keptBytesSinceLastAsked();
    w.postMessage({ id, fd, prefault: kept > 0 ? Math.min(64 << 20, Math.max(256 << 10, Math.ceil(kept * 1.25))) : 0 });
  });
}
