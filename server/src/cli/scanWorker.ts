// Worker thread of the CLI's directory scan (scanPool.ts): takes the next file index from the shared counter,
// scans it and posts the report (or the error) back, until the list is done; then it exits.
import { parentPort, workerData } from 'node:worker_threads';
import type { DiscoveredFile } from '../models/discovery';
import type { LoadedConfig } from '../config';
import { portableReport, readZipDirectoriesInThread, scanOne } from './scanPool';

const { files, cfg, sha256, next } = workerData as { files: DiscoveredFile[]; cfg: LoadedConfig; sha256: boolean; next: Int32Array };
readZipDirectoriesInThread();   // a worker only runs in a scan of many files

async function run(): Promise<void> {
  for (let i = Atomics.add(next, 0, 1); i < files.length; i = Atomics.add(next, 0, 1)) {
    try { parentPort!.postMessage({ i, report: portableReport(await scanOne(files[i], cfg, sha256)) }); } catch (e) {
      parentPort!.postMessage({ i, error: (e as Error).message });
    }
  }
}
void run();
