// `safe-weights` command line: scan model files and Python code (text, JSON, SARIF), convert checkpoints.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { discover, type DiscoveredFile, type SkippedFile } from '../models/discovery';
import { MODEL_RULES } from '../models/rules';
import type { FileReport, Finding, ModelReport } from '../models/types';
import { CODE_RULES } from '../python/rules';
import { loadConfig, excludeMatcher } from '../config';
import { toSarif } from './sarif';
import { toCycloneDx } from './cyclonedx';
import { applyBaseline, exitCodeWithBaseline, readBaseline, writeBaseline, BaselineError } from './baseline';
import { ProgressBar } from './tty';
import { renderText } from './textReport';
import { escapeTerminal, plainError } from './terminalText';
import { scanAll, type ScanOutcome } from './scanPool';
import { isRemoteTarget, parseByteCount, scanRemoteTargets } from './remote';

const VERSION: string = (() => {
  try { return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version as string; } catch { return '0.0.0'; }
})();

const USAGE = `Usage:
  safe-weights scan [OPTIONS] PATH...            scan files and folders (model files, Python code, requirements)
  safe-weights scan [OPTIONS] URL | hf://org/repo@COMMIT[/path]   scan a remote file without downloading it
  safe-weights convert IN [-o OUT] [--force] [--fsync] [--whole]  convert a PyTorch checkpoint to .safetensors
  safe-weights --version | --help

Scan options:
  -f, --format text|json|sarif|cyclonedx   output format (default text); cyclonedx: a CycloneDX 1.6 BOM of the
                                           model files, with their SHA-256
      --fail-on caution|dangerous|never    exit 1 when a file is at or above this verdict (default dangerous)
  -o, --output FILE                        write the report to FILE instead of standard output
      --sha256                             hash every model file (big files are otherwise hashed on demand)
      --baseline FILE                      leave out the findings FILE records: fail only on new ones
      --write-baseline FILE                record the current findings in FILE (and exit 0)
  -v, --verbose                            list the files skipped as not model files, and why
  -j, --jobs N                             scan on N threads (default: one per core, at most 4, for 100+ files)
      --follow-links                       follow links to folders outside the folders given
      --allow-unpinned                     accept an hf:// revision that is a branch or tag, not a commit
      --max-fetch BYTES                    the most a remote scan may fetch (default 256M; K, M, G suffixes)
  --                                       every later argument is a PATH

Convert options:
  -o, --output OUT                         where to write (default: IN with .safetensors; pytorch_model.bin ->
                                           model.safetensors); IN may be a sharded checkpoint's .index.json
  -f, --force                              replace OUT if it exists
      --fsync                              flush OUT to disk before it is renamed into place
      --whole                              keep every tensor by its dotted path, and the rest of the checkpoint
                                           in __metadata__

Folders are walked recursively, skipping .git, node_modules and virtualenvs; links to files are followed, links
to folders only inside the folders given. Every file whose first bytes a model loader would read is scanned,
whatever its name; .py / .ipynb / requirements*.txt / pyproject.toml go to the code rules. A file named on the
command line is always scanned. A URL or hf:// target is read by byte ranges (only what the verdict needs);
HF_TOKEN is sent to the Hub only; HTTPS_PROXY / NO_PROXY are honoured.
Exit codes: 0 no finding at or above --fail-on, 1 findings at or above it, 2 usage or I/O error
(convert: 0 converted and verified, 1 refused, 2 error, 128 + the signal's number when stopped by a signal).`;

export class UsageError extends Error {}

interface ScanArgs { format: 'text' | 'json' | 'sarif' | 'cyclonedx'; baseline?: string; writeBaseline?: string; failOn: 'caution' | 'dangerous' | 'never'; paths: string[]; output?: string; sha256: boolean; verbose: boolean; followLinks?: boolean; jobs?: number; allowUnpinned?: boolean; maxFetch?: number }

function parseScanArgs(argv: string[]): ScanArgs {
  const a: ScanArgs = { format: 'text', failOn: 'dangerous', paths: [], sha256: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const eq = arg.indexOf('=');
      if (eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '--format' || arg.startsWith('--format=') || arg === '-f') {
      const v = value();
      if (v !== 'text' && v !== 'json' && v !== 'sarif' && v !== 'cyclonedx') throw new UsageError(`unknown format "${v}" (text, json, sarif or cyclonedx)`);
      a.format = v;
    } else if (arg === '--fail-on' || arg.startsWith('--fail-on=')) {
      const v = value();
      if (v !== 'caution' && v !== 'dangerous' && v !== 'never') throw new UsageError(`--fail-on takes caution, dangerous or never, not "${v}"`);
      a.failOn = v;
    } else if (arg === '--output' || arg.startsWith('--output=') || arg === '-o') a.output = value();
    else if (arg === '--sha256') a.sha256 = true;
    else if (arg === '--baseline' || arg.startsWith('--baseline=')) a.baseline = value();
    else if (arg === '--write-baseline' || arg.startsWith('--write-baseline=')) a.writeBaseline = value();
    else if (arg === '--jobs' || arg.startsWith('--jobs=') || arg === '-j') {
      const v = value();
      if (!/^[1-9]\d{0,2}$/.test(v)) throw new UsageError(`--jobs takes a number of threads from 1, not "${v}"`);
      a.jobs = Number(v);
    }
    else if (arg === '--verbose' || arg === '-v') a.verbose = true;
    else if (arg === '--follow-links') a.followLinks = true;
    else if (arg === '--allow-unpinned') a.allowUnpinned = true;
    else if (arg === '--max-fetch' || arg.startsWith('--max-fetch=')) {
      const v = value();
      const n = parseByteCount(v);
      if (n === undefined) throw new UsageError(`--max-fetch takes a byte count (e.g. 64M), not "${v}"`);
      a.maxFetch = n;
    }
    else if (arg === '--') { a.paths.push(...argv.slice(i + 1)); i = argv.length; }
    else if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}`);
    else a.paths.push(arg);
  }
  if (a.paths.length === 0) throw new UsageError('scan needs at least one PATH');
  if (a.baseline !== undefined && a.writeBaseline !== undefined) throw new UsageError('--baseline and --write-baseline do not go together');
  return a;
}

/** Files to scan under the given paths (see models/discovery.ts): explicit files are always scanned, a walk keeps
 *  the files a model loader would read (by content) and code files (by name). */
export async function collectFiles(paths: string[], excluded: (rel: string) => boolean = () => false, followLinks = false): Promise<{ files: DiscoveredFile[]; skipped: SkippedFile[]; errors: string[] }> {
  const d = await discover(paths, { excluded, explicit: true, followLinks });
  return { files: d.files, skipped: d.skipped, errors: d.errors.map((e) => `${e.path}: ${e.message}`) };
}

const SEV_RANK: Record<string, number> = { info: 0, invalid: 1, caution: 2, dangerous: 3 };

export function exitCodeFor(reports: FileReport[], failOn: ScanArgs['failOn']): 0 | 1 {
  if (failOn === 'never') return 0;
  const bar = failOn === 'caution' ? 2 : 3;
  // invalid model files cannot run code; they fail only a --fail-on caution run
  return reports.some((r) => r.verdict === 'dangerous' || (bar <= 2 && (r.verdict === 'caution' || r.verdict === 'invalid')) ||
    r.findings.some((f) => SEV_RANK[f.severity] >= bar)) ? 1 : 0;
}

export async function runScan(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Promise<number> {
  const args = parseScanArgs(argv);
  let baseline: ReturnType<typeof readBaseline> | undefined;
  try { if (args.baseline !== undefined) baseline = readBaseline(args.baseline); } catch (e) {
    if (e instanceof BaselineError) { err.write(`safe-weights: ${e.message}\n`); return 2; }
    throw e;
  }
  const remote = args.paths.filter(isRemoteTarget);
  const local = args.paths.filter((p) => !isRemoteTarget(p));
  const first = local[0] ?? '.';
  const root = fs.existsSync(first) && fs.statSync(first).isDirectory() ? first : path.dirname(first);
  const cfg = await loadConfig(path.resolve(root));
  const { files, skipped, errors } = await collectFiles(local, excludeMatcher(cfg), args.followLinks === true);
  const reports: FileReport[] = [];
  const bar = err.isTTY && args.format !== 'text' || err.isTTY ? new ProgressBar(err, files.length) : undefined;
  let ioError = errors.length > 0;
  for (const e of errors) err.write(`safe-weights: ${escapeTerminal(e)}\n`);
  // files finish in any order on several threads; errors are printed in file order, each as soon as every file
  // before it has finished, and the reports are kept in file order
  const outcomes = new Array<ScanOutcome | undefined>(files.length);
  let printed = 0;
  const outcomes_ = await scanAll({ files, cfg, sha256: args.sha256 || args.format === 'cyclonedx' }, (i, o) => {
    bar?.tick(escapeTerminal(path.basename(files[i].path)));
    outcomes[i] = o;
    for (; printed < files.length && outcomes[printed]; printed++) {
      const p = outcomes[printed]!;
      if ('error' in p) err.write(`${bar ? '\n' : ''}safe-weights: ${escapeTerminal(files[printed].path)}: ${escapeTerminal(p.error)}\n`);
    }
  }, args.jobs);
  bar?.done();
  for (const o of outcomes_) {
    if ('report' in o) reports.push(o.report);
    else ioError = true;
  }
  if (remote.length) {
    const r = await scanRemoteTargets(remote, { allowUnpinned: args.allowUnpinned === true, maxFetch: args.maxFetch, allowGlobals: cfg.allowGlobals, verbose: args.verbose }, err, VERSION);
    reports.push(...r.reports);
    if (r.ioError) ioError = true;
  }
  if (args.writeBaseline !== undefined) {
    const n = writeBaseline(reports, args.writeBaseline);
    err.write(`safe-weights: wrote ${n} finding${n === 1 ? '' : 's'} to the baseline ${args.writeBaseline}\n`);
  }
  const based = baseline && args.baseline !== undefined ? applyBaseline(reports, baseline, args.baseline) : undefined;
  if (based?.removed) err.write(`safe-weights: ${based.removed} finding${based.removed === 1 ? '' : 's'} left out: recorded in the baseline ${args.baseline}\n`);
  let pieces: Iterable<string>;
  const notModel = skipped.filter((x) => x.why !== 'duplicate');
  if (args.format === 'json') pieces = jsonPieces(reports, notModel.length, args.verbose ? skipped.map((x) => ({ path: x.path, reason: x.reason })) : undefined);
  else if (args.format === 'cyclonedx') pieces = [JSON.stringify(toCycloneDx(reports, VERSION, process.cwd()), null, 2) + '\n'];
  else if (args.format === 'sarif') pieces = [JSON.stringify(toSarif(reports, VERSION, MODEL_RULES, CODE_RULES, process.cwd()), null, 2) + '\n'];
  else pieces = [renderText(reports, (out as NodeJS.WriteStream).isTTY === true && !process.env.NO_COLOR, skipped, args.verbose)];
  writePieces(pieces, args.output, out);
  if (ioError && reports.length === 0) return 2;
  if (args.writeBaseline !== undefined) return ioError ? 2 : 0;
  const code = based ? exitCodeWithBaseline(reports, based.perReport, args.failOn, exitCodeFor) : exitCodeFor(reports, args.failOn);
  return ioError ? Math.max(code, 2) : code;
}

/** The JSON document in pieces that join to JSON.stringify(doc, null, 2) + '\n' (test/unit/cli.test.ts checks
 *  the bytes): one file at a time, so a directory's document is never one string beside its object copy. Peak RSS
 *  on 4,264 bench files (13 MB of JSON): 240-246 MB this way, 279-284 MB built whole; no difference measurable
 *  on the 1,067 files of scripts/bench/dir.mjs. */
function* jsonPieces(reports: FileReport[], skipped: number, skippedFiles?: { path: string; reason: string }[]): Generator<string> {
  yield `{\n  "version": ${JSON.stringify(VERSION)},\n  "files": [`;
  for (let i = 0; i < reports.length; i++) { yield i ? ',\n    ' : '\n    '; yield nested(toJsonFile(reports[i]), 2); }
  yield `${reports.length ? '\n  ' : ''}],\n  "skipped": ${skipped}`;
  if (skippedFiles) { yield ',\n  "skippedFiles": '; yield nested(skippedFiles, 1); }
  yield '\n}\n';
}

/** JSON.stringify(v, null, 2) as it reads `depth` levels deep in a document (each line after the first indented by
 *  2 * depth spaces): stringified inside `depth` arrays and cut out (a slice shares the string's memory, where
 *  re-indenting with replace() copied it: +3 MB peak RSS on a 2.3 MB report). */
function nested(v: unknown, depth: number): string {
  let wrapped = v, pre = 0, post = 0;
  for (let k = 1; k <= depth; k++) { wrapped = [wrapped]; pre += 2 + 2 * k; post += 2 * k; }
  const s = JSON.stringify(wrapped, null, 2);
  return s.slice(pre, s.length - post);
}

/** Writes the output to `file` (replacing it) or to `out`, in writes of about 64 KB. */
function writePieces(pieces: Iterable<string>, file: string | undefined, out: NodeJS.WritableStream): void {
  const fd = file ? fs.openSync(file, 'w') : undefined;
  let buf = '';
  const flush = (): void => { if (!buf) return; if (fd !== undefined) fs.writeSync(fd, buf); else out.write(buf); buf = ''; };
  try {
    for (const p of pieces) {
      // a big piece is written as it is (joined to the small ones before it, it would be copied once more)
      if (p.length >= 1 << 16) { flush(); buf = p; flush(); continue; }
      buf += p;
      if (buf.length >= 1 << 16) flush();
    }
    flush();
  } finally { if (fd !== undefined) fs.closeSync(fd); }
}

/** The documented, stable JSON shape of one file. */
export function toJsonFile(r: FileReport): Record<string, unknown> {
  const base: Record<string, unknown> = { path: r.path, kind: r.kind, format: r.format, verdict: r.verdict };
  if (r.kind === 'model') {
    const m = r as ModelReport;
    Object.assign(base, {
      summary: m.summary, formatDetail: m.formatDetail, weightsOnly: m.weightsOnly, size: m.size, sha256: m.sha256,
      globals: m.globals.map((g) => ({ module: g.module, name: g.name, offset: g.offset, member: g.member, called: g.called, severity: g.severity, reason: g.reason, vettedBy: g.vettedBy, allowedBy: g.allowedBy })),
      tensors: m.tensorCount, metadata: m.metadata,
    });
    if (m.findingsOmitted) base.findingsOmitted = m.findingsOmitted;
    if (m.globalsOmitted) base.globalsOmitted = m.globalsOmitted;
    if (m.tensorsOmitted) base.tensorsOmitted = m.tensorsOmitted;
    if (m.remote) base.remote = m.remote;
  }
  base.findings = r.findings.map((f) => {
    const o: Record<string, unknown> = { rule: f.rule, severity: f.severity, message: f.message };
    if (f.global !== undefined) o.global = f.global;
    if (f.offset !== undefined) o.offset = f.offset;
    if (f.member !== undefined) o.member = f.member;
    const cf = f as Finding & { line?: number; column?: number; endLine?: number; endColumn?: number; cell?: number };
    if (cf.line !== undefined) Object.assign(o, { line: cf.line, column: cf.column, endLine: cf.endLine, endColumn: cf.endColumn });
    if (cf.cell !== undefined) o.cell = cf.cell;
    return o;
  });
  return base;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === '--version' || cmd === '-V') { process.stdout.write(`safe-weights ${VERSION}\n`); return 0; }
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') { process.stdout.write(USAGE + '\n'); return cmd === undefined ? 2 : 0; }
    if (cmd === 'scan') return await runScan(rest);
    if (cmd === 'convert') {
      let mod: { convertCli(a: string[]): Promise<number> };
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      try { mod = require('./convert'); } catch { process.stderr.write('safe-weights: convert is not available in this build\n'); return 2; }
      return await mod.convertCli(rest);
    }
    throw new UsageError(`unknown command "${cmd}"`);
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`safe-weights: ${e.message}\n\n${USAGE}\n`); return 2; }
    process.stderr.write(`safe-weights: ${escapeTerminal(plainError(e))}\n`);
    return 2;
  }
}

if (require.main === module || process.env.SAFE_WEIGHTS_CLI === '1' || /cli\.js$/.test(process.argv[1] ?? '') || /safe-weights(\.js)?$/.test(process.argv[1] ?? '')) {
  // a reader that stops early (`safe-weights scan . | head`) closes the pipe: the rest of the report is not
  // wanted, and the exit code is still the scan's
  process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE') throw e; process.exit(process.exitCode ?? 0); });
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(String(e) + '\n'); process.exitCode = 2; });
}
