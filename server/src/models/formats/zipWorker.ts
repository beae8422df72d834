// Worker thread that reads a zip central directory and every local header (readZipDirectory) while the
// main thread analyses the archive's data.pkl: for checkpoints with one member per storage (50,000+) the
// directory costs about as much as the pickle. The directory comes back as transferred buffers, which the
// main thread hands back here when the scan is done (so neither side faults in fresh memory per scan).
import { parentPort } from 'node:worker_threads';
import { FileSource } from '../source';
import { readZipDirectory } from './zipDirectory';
import { giveArrayBuffer } from '../bufferPool';

type Request = { id: number; fd: number; prefault: number } | { recycle: ArrayBuffer[] };

parentPort?.on('message', (m: Request) => {
  if ('recycle' in m) { for (const b of m.recycle) giveArrayBuffer(b); return; }
  try {
    // the file descriptor is the main thread's (same process): read it, never close it
    const dir = readZipDirectory(new FileSource(m.fd));
    dir.buildDataIndex();   // the storage lookups' index, built here rather than on the main thread
    const { msg, transfer } = dir.toMessage();
    // memory for what the next report will keep (see keep() in bufferPool.ts), its pages mapped here
    const pre = m.prefault > 0 ? new ArrayBuffer(m.prefault) : undefined;
    if (pre) { const v = new Uint8Array(pre); for (let i = 0; i < v.length; i += 4096) v[i] = 0; }
    parentPort!.postMessage({ id: m.id, dir: msg, prefaulted: pre }, pre ? [...transfer, pre] : transfer);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: String((e as Error)?.message ?? e) });
  }
});
