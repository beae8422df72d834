// Scans the CLI's files on both cores: the main thread and worker threads (scanWorker.ts) take files from one
// shared queue (an atomic counter over the file list in a SharedArrayBuffer), so a big file on one thread never
// holds up the others. Reports are put back in file order, so the output is the same as a single-threaded scan
// (test/unit/cliParallel.test.ts compares the JSON). Workers start for big batches or when --jobs asks (see threadCount).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { scanModelFile, zipTuning } from '../models/scan';
import type { DiscoveredFile } from '../models/discovery';
import type { FileReport, ModelReport } from '../models/types';
import type { LoadedConfig } from '../config';


export interface ScanJob { files: DiscoveredFile[]; cfg: LoadedConfig; sha256: boolean }
/** One file's outcome: its report, or the message of the error that stopped its scan. */
export type ScanOutcome = { report: FileReport } | { error: string };

export async function scanOne(file: DiscoveredFile, cfg: LoadedConfig, sha256: boolean): Promise<FileReport> {
  // python/ (tree-sitter) is required on the first code file only: a model-only scan never loads it
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (file.kind === 'code') return (require('../python/scanCode') as typeof import('../python/scanCode')).scanCodeFile(file.path, cfg);
  return scanModelFile(file.path, { sha256, allowGlobals: cfg.allowGlobals });
}

/** What the CLI keeps of a report (and a worker posts back): the fields its outputs (text, JSON, SARIF) read.
 *  The tensor rows and the pickle runs stay behind: the rows are a getter that would build 50,000 objects just
 *  to be cloned, and its tensor tables would stay alive until the output is written (measured on the 1,066
 *  files of scripts/bench/dir.mjs: peak RSS 198 MB keeping whole reports, 177 MB keeping these). */
export function portableReport(r: FileReport): FileReport {
  if (r.kind !== 'model') return r;
  const m = r as ModelReport;
  const out: ModelReport = {
    path: m.path, kind: m.kind, format: m.format, formatDetail: m.formatDetail, verdict: m.verdict, summary: m.summary,
    weightsOnly: m.weightsOnly, findings: m.findings, globals: m.globals, tensors: [], tensorCount: m.tensorCount,
    metadata: m.metadata, pickles: [], size: m.size,
  };
  if (m.findingsOmitted !== undefined) out.findingsOmitted = m.findingsOmitted;
  if (m.globalsOmitted !== undefined) out.globalsOmitted = m.globalsOmitted;
  if (m.tensorsTruncated !== undefined) out.tensorsTruncated = m.tensorsTruncated;
  if (m.tensorsOmitted !== undefined) out.tensorsOmitted = m.tensorsOmitted;
  if (m.memberCount !== undefined) out.memberCount = m.memberCount;
  if (m.sha256 !== undefined) out.sha256 = m.sha256;
  return out;
}

/** Files per worker thread before one is started by default (a worker compiles the bundle and warms up its own JIT:
 *  its first report comes 160-230 ms after it starts, so a few dozen files are done sooner on one thread). */
export const FILES_PER_THREAD = 100;
const MAX_DEFAULT_THREADS = 4;

/**
 * Threads to use: `jobs` if given (never more than files); by default at most 4, one per FILES_PER_THREAD files, and
 * - for Python files one per core. Measured as CPU time on Debian torch's tree (1,141 Python files, ~1,300 others)
 *   on a 2-core machine: 1.65 s on one thread, 1.85 s on two, so two threads split the work for ~0.2 s more
 *   (wall time 0.90 -> 0.64 s on a quiet machine).
 * - for model files one core fewer: each scanning thread warms up its own
 *   JIT, whose background compiles need a core too. On 2 cores a second thread was slower, quiet machine:
 *   1,067 bench files 1.24 s on one thread vs 1.33 s on two (RSS 200-230 vs 260-270 MB), 4,264 files 2.45 vs 2.75 s.
 * (Wall times on a machine other processes keep busy say little: a second thread just queues behind them.)
 */
export function threadCount(nFiles: number, jobs?: number, cores: number = availableParallelism(), codeFiles = nFiles): number {
  if (jobs !== undefined) return Math.max(1, Math.min(jobs, nFiles));
  const forCode = Math.min(cores, Math.floor(codeFiles / FILES_PER_THREAD));
  const forModels = Math.min(cores - 1, Math.floor((nFiles - codeFiles) / FILES_PER_THREAD));
  return Math.max(1, Math.min(MAX_DEFAULT_THREADS, Math.max(forCode, forModels)));
}

/** A scan of several model files reads every zip directory on its own thread, without the zip worker
 *  (formats/zipParallel.ts): that second thread overlaps reading a big directory with data.pkl's analysis, worth
 *  5-10 ms on one 50,000-tensor checkpoint, while its heap costs ~20 MB for the rest of the run. Measured on the
 *  directory benchmark (1,069 files, scripts/bench/dir.mjs, 3 alternating runs): 1.11-1.30 s without it vs
 *  1.16-1.27 s with it, peak RSS 178-186 MB vs 202-208 MB. */
export function readZipDirectoriesInThread(): () => void {
  const was = zipTuning.parallelDirectoryBytes;
  zipTuning.parallelDirectoryBytes = Infinity;
  return () => { zipTuning.parallelDirectoryBytes = was; };
}

/**
 * Scans every file, `onDone(i, outcome)` called once per file as it finishes (any order; the progress bar),
 * and returns the outcomes in file order. A worker that fails is dropped; the files it had taken and not
 * reported are scanned again on the main thread, so every file gets an outcome.
 */
export async function scanAll(job: ScanJob, onDone: (i: number, o: ScanOutcome) => void, jobs?: number): Promise<ScanOutcome[]> {
  const codeFiles = job.files.filter((f) => f.kind === 'code').length;
  const restore = job.files.length - codeFiles > 1 ? readZipDirectoriesInThread() : undefined;
  try { return await scanFiles(job, onDone, codeFiles, jobs); } finally { restore?.(); }
}

async function scanFiles(job: ScanJob, onDone: (i: number, o: ScanOutcome) => void, codeFiles: number, jobs?: number): Promise<ScanOutcome[]> {
  const n = job.files.length;
  const outcomes: (ScanOutcome | undefined)[] = new Array(n);
  const finish = (i: number, o: ScanOutcome): void => {
    if (outcomes[i]) return;
    outcomes[i] = o;
    onDone(i, o);
  };
  const scanHere = async (i: number): Promise<void> => {
    const f = job.files[i];
    try { finish(i, { report: portableReport(await scanOne(f, job.cfg, job.sha256)) }); } catch (e) { finish(i, { error: (e as Error).message }); }
  };
  const threads = threadCount(n, jobs, undefined, codeFiles);
  // next to this module: dist/scan-worker.js in the bundle, scanWorker.js in the compiled tree
  const script = threads > 1 ? [path.join(__dirname, 'scan-worker.js'), path.join(__dirname, 'scanWorker.js')].find((f) => fs.existsSync(f)) : undefined;
  if (!script) {
    for (let i = 0; i < n; i++) await scanHere(i);
    return outcomes as ScanOutcome[];
  }
  const next = new Int32Array(new SharedArrayBuffer(4));
  let left = n;
  let allReported: () => void = () => undefined;
  const reported = new Promise<void>((resolve) => { allReported = resolve; });
  const report = (i: number, o: ScanOutcome): void => {
    if (outcomes[i]) return;
    finish(i, o);
    if (--left === 0) allReported();
  };
  const started: Worker[] = [];
  const exited: Promise<void>[] = [];
  for (let w = 1; w < threads; w++) {
    let worker: Worker;
    try {
      worker = new Worker(script, { workerData: { files: job.files, cfg: job.cfg, sha256: job.sha256, next } });
    } catch { break; }
    started.push(worker);
    worker.on('message', (m: { i: number; report?: FileReport; error?: string }) => {
      report(m.i, m.report ? { report: m.report } : { error: m.error ?? 'scan failed' });
    });
    // an error ends the worker; the files it had not taken stay in the queue, one it had taken is rescanned below
    worker.on('error', () => undefined);
    exited.push(new Promise<void>((resolve) => worker.on('exit', () => resolve())));
  }
  // the main thread takes files from the same queue
  for (let i = Atomics.add(next, 0, 1); i < n; i = Atomics.add(next, 0, 1)) {
    const f = job.files[i];
    try { report(i, { report: portableReport(await scanOne(f, job.cfg, job.sha256)) }); } catch (e) { report(i, { error: (e as Error).message }); }
  }
  await Promise.race([reported, Promise.all(exited)]);
  for (const w of started) void w.terminate();
  // files a failed worker took and never reported
  for (let i = 0; i < n; i++) if (!outcomes[i]) await scanHere(i);
  return outcomes as ScanOutcome[];
}
