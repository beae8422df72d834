// Running the pickle machine over the streams a format module finds, and recording each as a loader reads it.
import type { ByteSource } from '../source';
import { Cursor, RandomAccessFiller, runSync } from '../pickle/cursor';
import { runPickle, type PickleRun, type MachineOptions } from '../pickle/machine';
import { startsPickle, stopBeforeAnythingRuns } from '../pickleStart';
import type { TensorWalkResult } from '../pickle/tensors';
import type { PyValue } from '../pickle/values';
import { add, DISASSEMBLY_LINES, type ScanContext } from './context';

/** pickleSequence's options: the machine's, and the list every run parsed goes to (ScanContext.produced). */
export interface SequenceOptions extends MachineOptions { produced?: PickleRun[] }

export function machineOpts(ctx: ScanContext): SequenceOptions {
  if (!ctx.disasm) return { disasm: false, produced: ctx.produced };
  return { disasm: true, disasmBudget: ctx.disasmLines ??= { left: DISASSEMBLY_LINES }, produced: ctx.produced };
}

/** A small value a run returned (a legacy record, sys_info), as PyValue: at most a few levels and values of it
 *  (a crafted record of a million nested lists would otherwise be built whole). */
export function nearValue(run: PickleRun | undefined): PyValue | undefined {
  return run?.root === undefined ? undefined : run.arena.materializeNear(run.root, 4, 4096);
}
/** Takes the tensor inventory a walk read; tensors it found but could not list are flagged and counted. */
export function useInventory(ctx: ScanContext, walked: TensorWalkResult): void {
  ctx.table = walked.table;
  if (walked.truncated) ctx.report.tensorsTruncated = true;
  if (walked.omitted) ctx.report.tensorsOmitted = (ctx.report.tensorsOmitted ?? 0) + walked.omitted;
}

/** Runs consecutive pickles from [start, end) synchronously; returns the runs and where parsing stopped. */
export function runPicklesSync(src: ByteSource, start: number, end: number, ctx: ScanContext, max = 1000): { runs: PickleRun[]; stop: number } {
  const c = new Cursor(start, end);
  // streams up to 64 MB are read in one piece (fewer refills); bigger ones in 1 MB steps
  const filler = new RandomAccessFiller(src, end - start <= 64 << 20 ? Math.max(1 << 20, end - start) : 1 << 20);
  try {
    const runs = runSync(pickleSequence(c, machineOpts(ctx), max), c, filler);
    return { runs, stop: runs.length ? runs[runs.length - 1].end : start };
  } finally { filler.release(); }
}

/** Consecutive pickles on one stream: after STOP, another pickle is read if the next bytes start one. */
export function* pickleSequence(c: Cursor, opts: SequenceOptions, max: number): Generator<number, PickleRun[], void> {
  const runs: PickleRun[] = [];
  while (runs.length < max) {
    if (c.avail() < 4 && !c.eof) yield 4;
    if (c.avail() <= 0) break;
    // a zip local header after a pickle is an appended archive (scanTrailing), not a pickle ('P' is PERSID)
    if (runs.length > 0 && (!startsPickle(c.buf[c.pos]) || isLocalHeaderAt(c.buf, c.pos))) break;
    const r = yield* runPickle(c, opts);
    runs.push(r);
    opts.produced?.push(r);
    if (!r.complete) break;
  }
  return runs;
}

function isLocalHeaderAt(b: Uint8Array, i: number): boolean {
  return b[i] === 0x50 && b[i + 1] === 0x4b && b[i + 2] === 0x03 && b[i + 3] === 0x04;
}

export interface RecordOptions {
  /** Fail closed: a stream a loader is known to read (sniffed trailing data and members are not strict). */
  strict: boolean;
  torchLoads: boolean;
  /** The bytes the run's offsets refer to, when they can be read again (not for decompressed streams). */
  src?: ByteSource;
  /** The format's own loader reads this stream (torch's data.pkl, a pickle file's first pickle): when every
   *  unpickler rejects it, the file cannot be loaded ('invalid'); for other strict streams that is 'info'. */
  loaderReads?: boolean;
  /** The loader has a persistent_load (torch; assumed for streams whose loader is unknown). */
  persistentLoad?: boolean;
}

/**
 * Records a pickle run; returns whether reading on after it is meaningful (false: it was rejected or dropped).
 * A stream every unpickler rejects before importing or calling anything is not a danger: nothing in it runs
 * (`invalid` for the stream the loader reads). Anything imported before an error still counts, and where the
 * machine stops but an unpickler may read on, strict streams fail closed (SW004) and sniffed ones are caution.
 */
export function recordRun(ctx: ScanContext, run: PickleRun, member: string | undefined, opts: RecordOptions): boolean {
  // a stream no loader is known to read is judged as a stock interpreter reads it (no extension registrations)
  const stop = stopBeforeAnythingRuns(run, { src: opts.src, persistentLoad: opts.persistentLoad ?? true, extensionRegistry: opts.strict });
  const where = member ? ` in ${member}` : '';
  if (!opts.strict && (stop || (!run.complete && run.globals.length === 0))) {
    add(ctx, 'SW014', stop
      ? `${run.end - run.start} bytes at offset ${run.start}${where} start like a pickle, but every unpickler stops at offset ${stop.at} (${stop.why}) before importing or calling anything.`
      : `${run.end - run.start} bytes at offset ${run.start}${where} start like a pickle; the reading stops at offset ${run.errorOffset ?? run.end} (${run.error}) with nothing imported, but an unpickler may read on there: the rest was not checked.`,
    { offset: run.start, member, severity: stop ? 'info' : 'caution' });
    return false;
  }
  if (stop) {
    ctx.runs.push({ run, member, torchLoads: opts.torchLoads, rejected: { severity: opts.loaderReads ? 'invalid' : 'info', stop } });
    return false;
  }
  ctx.runs.push({ run, member, torchLoads: opts.torchLoads });
  for (const n of run.nested) ctx.runs.push({ run: n, member: member ? `${member} (object array)` : '(object array)', torchLoads: false });
  return true;
}

