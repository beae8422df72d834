// Open Python files over BIG_FILE_CHARS: analysed once (on open, and again on save), on a worker thread, in chunks
// (python/chunkedAnalysis.ts), so the main thread never parses them and every other request is answered meanwhile.
// One worker at a time, ended when its file is done (its heap and the parser's memory go with it).
// The worker runs this same bundle: the module-level check below starts the worker side instead of a server.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { DiagnosticSeverity, type Diagnostic } from 'vscode-languageserver/node';
import { levelFor } from '../config';
import { analyzeInChunks, type ChunkFinding } from '../python/chunkedAnalysis';
import { SOURCE, type ServerState } from './state';
import { deliverDocument } from './pullDiagnostics';

/** Larger documents are analysed off the main thread, once. */
export const BIG_FILE_CHARS = 5 * 1024 * 1024;
const WORKER_KIND = 'safe-weights-big-python';
/** The worker's JS heap limits: the file's bytes live outside the heap, each chunk's strings and findings inside
 *  (a small young generation: the chunks' garbage is short-lived, and the process's peak memory counts). */
const WORKER_HEAP_MB = 96;
const WORKER_YOUNG_MB = 8;

const toSeverity = (s: ChunkFinding['severity']): DiagnosticSeverity =>
  s === 'dangerous' ? DiagnosticSeverity.Error : s === 'caution' ? DiagnosticSeverity.Warning : DiagnosticSeverity.Information;

interface Job { bytes: Uint8Array; honorNosec: boolean }
type Reply = { findings: ChunkFinding[] } | { error: string };

let gc: (() => void) | null | undefined;
/** A full garbage collection, where V8 lets one be asked for (--expose-gc set at run time; else nothing). */
function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as () => void;
    } catch { gc = null; }
  }
  gc?.();
}

const queue: { uri: string; version: number; run: () => Promise<void> }[] = [];
let running = false;

async function drain(): Promise<void> {
  if (running) return;
  running = true;
  try {
    for (let job = queue.shift(); job; job = queue.shift()) await job.run();
  } finally {
    running = false;
  }
}

function inWorker(job: Job): Promise<ChunkFinding[]> {
  return new Promise((resolve, reject) => {
    const w = new Worker(__filename, { workerData: { kind: WORKER_KIND }, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB, maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
    let settled = false;
    w.once('message', (r: Reply) => {
      settled = true;
      void w.terminate();
      if ('error' in r) reject(new Error(r.error)); else resolve(r.findings);
    });
    w.once('error', (e) => { if (!settled) { settled = true; reject(e); } });
    w.once('exit', (code) => { if (!settled) { settled = true; reject(new Error(`worker exited with ${code}`)); } });
    w.postMessage(job, [job.bytes.buffer as ArrayBuffer]);
  });
}

/** Queues the analysis of a big open document; its diagnostics are published when the worker is done. */
export function analyzeBigDocument(s: ServerState, uri: string): void {
  const doc = s.documents.get(uri);
  if (!doc) return;
  const version = doc.version;
  if (queue.some((j) => j.uri === uri && j.version === version)) return;
  queue.push({
    uri, version, run: async () => {
      const current = s.documents.get(uri);
      if (!current) return;
      // The message that brought the document left ~3 copies of it as garbage, which V8 collects only under
      // allocation pressure: collect it now, before the bytes and the worker add theirs (bounded peak memory).
      collectGarbage();
      // the bytes are made on the turn the job starts and handed over (transferred, not copied) to the worker
      const bytes = Buffer.from(current.getText(), 'utf8');
      const own = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
      let findings: ChunkFinding[];
      try {
        findings = await inWorker({ bytes: own, honorNosec: s.config.honorNosec });
      } catch (e) {
        s.connection.console.warn(`safe-weights: ${uri}: ${(e as Error).message}`);
        return;
      }
      if (!s.documents.get(uri)) return;   // closed meanwhile
      const diagnostics: Diagnostic[] = [];
      for (const f of findings) {
        const severity = levelFor(s.config, f.rule, f.severity);
        if (severity) diagnostics.push({ range: { start: f.start, end: f.end }, severity: toSeverity(severity), code: f.rule, source: SOURCE, message: f.message });
      }
      deliverDocument(s, uri, current.version, diagnostics);
    },
  });
  void drain();
}

/** Big documents analysed since they were opened or last saved. */
const analysed = new Set<string>();

/** Whether a document is big; a big one is queued for analysis unless done since it was opened or saved. */
export function handledAsBig(s: ServerState, uri: string, length: number): boolean {
  if (length <= BIG_FILE_CHARS) return false;
  if (!analysed.has(uri)) { analysed.add(uri); analyzeBigDocument(s, uri); }
  return true;
}

/** After a save the file is analysed again (the edits since are not followed). */
export function bigDocumentSaved(s: ServerState, uri: string): void {
  if (analysed.delete(uri)) handledAsBig(s, uri, s.documents.get(uri)?.getText().length ?? 0);
}

/** Forgets a closed document. */
export function dropBigDocument(uri: string): void {
  analysed.delete(uri);
  for (let i = queue.length - 1; i >= 0; i--) if (queue[i].uri === uri) queue.splice(i, 1);
}

// ---- the worker side ------------------------------------------------------------------------------------------

if (!isMainThread && (workerData as { kind?: string } | undefined)?.kind === WORKER_KIND) {
  parentPort!.once('message', (job: Job) => {
    analyzeInChunks(job.bytes, { honorNosec: job.honorNosec })
      .then((findings) => parentPort!.postMessage({ findings } satisfies Reply))
      .catch((e) => parentPort!.postMessage({ error: String((e as Error).message ?? e) } satisfies Reply));
  });
}
