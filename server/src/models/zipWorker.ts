// Worker thread that reads a zip central directory and every local header (readZipDirectory) while the
// main thread analyses the archive's data.pkl: for checkpoints with one member per storage (50,000+) the
// directory costs about as much as the pickle. The directory comes back as transferred buffers, which the
// main thread hands back here when the scan is done (so neither side faults in fresh memory per scan).
import { parentPort } from 'node:worker_threads';
import { FileSource } from './source';
import { readZipDirectory } from './zip';
import { giveArrayBuffer } from './bufferPool';

type Request = { id: number; fd: number } | { recycle: ArrayBuffer[] };

parentPort?.on('message', (m: Request) => {
  if ('recycle' in m) { for (const b of m.recycle) giveArrayBuffer(b); return; }
  try {
    // the file descriptor is the main thread's (same process): read it, never close it
    const dir = readZipDirectory(new FileSource(m.fd));
    const { msg, transfer } = dir.toMessage();
    parentPort!.postMessage({ id: m.id, dir: msg }, transfer);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: String((e as Error)?.message ?? e) });
  }
});
