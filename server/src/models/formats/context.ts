// What a format module reads into: the report under construction, the pickle streams found, and the limits.
//
// THE CONTRACT OF A FORMAT MODULE (formats/*.ts). Each container has one module that owns how its loaders read it;
// scan.ts sniffs the first bytes and calls its reader (the FORMATS table there). A reader
//   - is `(ctx, src, head) => void | Promise<void>`: `src` is the whole file (or member), `head` its first 512 bytes;
//   - reads the bytes the way each loader that accepts the container does, and where loaders differ, every reading;
//   - names the file's own reading in ctx.report (format, formatDetail, members, metadata), hands every pickle stream
//     a loader could read to `recordRun` (pickleRuns.ts, saying which loader reads it) and the tensor inventory to
//     `useInventory`, and reports what it meets with `add` (a rule of rules.ts): it judges nothing itself;
//   - scans content that is a file of its own (an archive member, a decompressed stream) with `scanArchiveMember`
//     (archives.ts), which runs the dispatcher again under the nesting limits;
//   - bounds every allocation by the input's size and the limits here; a limit reached is a finding, never silence;
//   - never executes, imports or unpickles anything from the bytes.
// The verdict is built afterwards from ctx (verdict.ts).
import type { ByteSource } from '../source';
import type { PickleRun } from '../pickle/machine';
import type { UnpicklerStop } from '../pickleStart';
import type { TensorTable, ExtractedTensor } from '../pickle/tensors';
import { MODEL_RULE_BY_ID } from '../rules';
import type { Finding, ModelReport, ScanOptions, Severity } from '../types';

/** A pickle stream the scan read. `rejected`: every unpickler stops on it before anything is imported or called
 *  (reported with that severity: 'invalid' when it is the stream the format's loader reads, else 'info'). */
export interface ScannedRun { run: PickleRun; member?: string; torchLoads: boolean; rejected?: { severity: Severity; stop: UnpicklerStop } }

export interface ScanDetail {
  report: ModelReport;
  runs: ScannedRun[];
  tensors: ExtractedTensor[];
  /** Absolute location of storage bytes by storage key, where the format keeps them outside members (legacy tar). */
  storageData: Map<string, { offset: number; size: number }>;
}

export interface ScanContext {
  report: ModelReport;
  runs: ScannedRun[];
  /** Every run the scan's pickle sequences parsed; those not recorded in `runs` are released when the scan ends. */
  produced: PickleRun[];
  /** Absolute data offsets of the zip members scanned (another reading of the archive skips them). */
  zipScanned?: Set<number>;
  disasm: boolean;
  opts: ScanOptions;
  /** The tensor inventory read from the main pickle, if any. */
  table?: TensorTable;
  /** Disassembly lines left for the whole file (shared by every run's machine). */
  disasmLines?: { left: number };
  /** The root folder of a pytorch-zip archive (tensor rows name their storage members under it). */
  zipRoot?: string;
  /** Where each storage's raw bytes are (legacy tar), for the converter. */
  storageData: Map<string, { offset: number; size: number }>;
  /** The worst severity of every finding met, also those past the report's row cap (the verdict sees them all). */
  worst?: Severity;
  /** Findings met but not kept as rows (the report shows at most FINDINGS_SHOWN). */
  findingsOmitted: number;
  /** Every dangerous global met (display name -> called), for the summary, also past the globals row cap. */
  dangerousNames: Map<string, boolean>;
  /** Scans bytes as a file of its own (scan.ts's dispatcher; archives.ts calls it for members). */
  scanFile(src: ByteSource, name: string, opts: ScanOptions): Promise<ScanDetail>;
}

/** A fresh context for one file. */
export function newContext(report: ModelReport, opts: ScanOptions, disasm: boolean, scanFile: ScanContext['scanFile']): ScanContext {
  return { report, runs: [], produced: [], disasm, opts, storageData: new Map(), findingsOmitted: 0, dangerousNames: new Map(), scanFile };
}

/** Limits that stop the reading (each one reached is a dangerous SW009 finding); tests lower them. */
export const scanLimits = { localMembers: 100_000, tarMembers: 100_000 };
/** Bytes a compressed stream or member is decompressed to at most. */
export const DECOMPRESS_LIMIT = 8 * 1024 ** 3;
/** Member rows kept in a report (archives with one member per storage hold 100,000 of them: the count says how many). */
export const MEMBER_ROWS = 1000;
/** Lines of disassembly, and characters of decompiled text, shown for a whole file (both views cost memory
 *  per line or character: a 2 MB pickle of a million nested lists has a million opcodes and a memo DAG of 40
 *  levels decompiles to 2^40 values). Past them the views say how much was left out. */
export const DISASSEMBLY_LINES = 200_000, DECOMPILED_CHARS = 1_000_000;
export const FINDINGS_SHOWN = 2000;
export const GLOBALS_SHOWN = 10_000;

export const RANK: Record<Severity, number> = { info: 0, invalid: 1, caution: 2, dangerous: 3 };

/** Raises the verdict's floor to `severity` (a finding, or a member's verdict, not kept as a row). */
export function worsen(ctx: ScanContext, severity: Severity): void {
  if (severity !== 'info' && (!ctx.worst || RANK[severity] > RANK[ctx.worst])) ctx.worst = severity;
}

/** A finding past the report's row cap: it still decides the verdict. */
export function count(ctx: ScanContext, severity: Severity): void {
  worsen(ctx, severity);
  ctx.findingsOmitted++;
}

export function add(ctx: ScanContext, rule: string, message: string, extra: Partial<Finding> = {}): void {
  const r = MODEL_RULE_BY_ID.get(rule);
  const severity = extra.severity ?? r?.severity ?? 'caution';
  worsen(ctx, severity);
  if (ctx.report.findings.length >= FINDINGS_SHOWN) { ctx.findingsOmitted++; return; }
  ctx.report.findings.push({ rule, severity, message, ...extra });
}

export function hex(b: Uint8Array): string { return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' '); }

/** pickle records os.system as posix.system (nt.system on Windows): say both, people look for os.system. */
export function displayName(module: string, name: string): string {
  return module === 'posix' || module === 'nt' ? `os.${name} (${module}.${name})` : `${module}.${name}`;
}
