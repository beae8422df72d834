// Baseline files (`scan --write-baseline FILE`, `scan --baseline FILE`): a team adopting the scanner on an existing
// repository records today's findings once and fails only on findings that are not in the record.
//
// A finding's fingerprint must survive edits that do not change it: for model files the path, the rule, the
// callable (global) and the archive member, never the byte offset (re-saving a checkpoint moves every opcode); for
// code the path, the rule and the flagged source text with its whitespace collapsed, never the line number (a line
// added above moves every finding). Equal fingerprints are counted, so a second `pickle.load(f)` added next to a
// baselined one is new.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CodeFinding, FileReport, Finding } from '../models/types';
import { isRemoteTarget } from '../models/remote/hub';

export const BASELINE_VERSION = 1;

export interface BaselineEntry { fingerprint: string; path: string; rule: string; global?: string; member?: string; code?: string; message: string }
export interface BaselineFile { tool: 'safe-weights'; version: number; findings: BaselineEntry[] }

/** Path of a scanned file as recorded: relative to the baseline file's folder, with forward slashes; a remote
 *  target (`hf://org/repo@<commit>/file`, `https://...`) as the URL it was scanned under, which does not depend on
 *  where the scan runs. */
export function recordedPath(file: string, baselineDir: string): string {
  if (isRemoteTarget(file)) return file;
  return path.relative(baselineDir, path.resolve(file)).split(path.sep).join('/');
}

/** Longest flagged text kept in a fingerprint (a finding spans one call; a span is never a whole file). */
const MAX_CODE = 400;

/** Reads code files' text once per file for the fingerprints of their findings (notebooks: the cells' text). */
export class SourceLines {
  private cache = new Map<string, string[][] | null>();
  /** Lines of `file` (cell `cell` for a notebook), or null when the file cannot be read. */
  lines(file: string, cell?: number): string[] | null {
    let parts = this.cache.get(file);
    if (parts === undefined) {
      parts = null;
      try {
        const text = fs.readFileSync(file, 'utf8');
        if (cell !== undefined) {
          const nb = JSON.parse(text) as { cells?: { source?: string | string[] }[] };
          parts = (nb.cells ?? []).map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source ?? '').split(/\r?\n/));
        } else parts = [text.split(/\r?\n/)];
      } catch { parts = null; }
      this.cache.set(file, parts);
    }
    if (!parts) return null;
    return parts[cell ?? 0] ?? null;
  }
}

/** The flagged source text of a code finding, whitespace collapsed; undefined when it cannot be read. */
export function flaggedText(file: string, f: CodeFinding, src: SourceLines): string | undefined {
  const lines = src.lines(file, f.cell);
  if (!lines || f.line < 1 || f.line > lines.length) return undefined;
  const last = Math.min(Math.max(f.endLine, f.line), lines.length, f.line + 20);
  const span = lines.slice(f.line - 1, last);
  if (span.length === 1) span[0] = span[0].slice(f.column - 1, f.endLine === f.line ? f.endColumn - 1 : undefined);
  else {
    span[0] = span[0].slice(f.column - 1);
    if (last === f.endLine) span[span.length - 1] = span[span.length - 1].slice(0, f.endColumn - 1);
  }
  const text = span.join(' ').replace(/\s+/g, ' ').trim();
  return text ? text.slice(0, MAX_CODE) : undefined;
}

function entryFor(r: FileReport, f: Finding, baselineDir: string, src: SourceLines): BaselineEntry {
  const p = recordedPath(r.path, baselineDir);
  const e: BaselineEntry = { fingerprint: '', path: p, rule: f.rule, message: f.message };
  if (f.global !== undefined) e.global = f.global;
  if (f.member !== undefined) e.member = f.member;
  if (r.kind === 'code') {
    const code = flaggedText(r.path, f as CodeFinding, src);
    // unreadable text (the file changed under the scan): the message, which names the call, stands in
    e.code = code ?? `message:${f.message}`;
  }
  e.fingerprint = createHash('sha256')
    .update([p, f.rule, e.global ?? '', e.member ?? '', e.code ?? ''].join('\0'))
    .digest('hex').slice(0, 32);
  return e;
}

/** Findings a baseline records and compares: everything but info notes (which never fail a run). */
const counted = (f: Finding): boolean => f.severity !== 'info';

export function makeBaseline(reports: FileReport[], baselineFile: string): BaselineFile {
  const dir = path.dirname(path.resolve(baselineFile));
  const src = new SourceLines();
  const findings: BaselineEntry[] = [];
  for (const r of reports) for (const f of r.findings) if (counted(f)) findings.push(entryFor(r, f, dir, src));
  findings.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0));
  return { tool: 'safe-weights', version: BASELINE_VERSION, findings };
}

export function writeBaseline(reports: FileReport[], baselineFile: string): number {
  const b = makeBaseline(reports, baselineFile);
  fs.writeFileSync(baselineFile, JSON.stringify(b, null, 2) + '\n');
  return b.findings.length;
}

export class BaselineError extends Error {}

export function readBaseline(baselineFile: string): BaselineFile {
  let doc: unknown;
  try { doc = JSON.parse(fs.readFileSync(baselineFile, 'utf8')); } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new BaselineError(err.code === 'ENOENT' ? `baseline ${baselineFile} does not exist (create it with --write-baseline ${baselineFile})`
      : `baseline ${baselineFile} cannot be read: ${err.code ? 'not readable' : 'not valid JSON'}`);
  }
  const b = doc as Partial<BaselineFile>;
  if (!b || typeof b !== 'object' || b.tool !== 'safe-weights' || !Array.isArray(b.findings) || b.findings.some((f) => typeof f?.fingerprint !== 'string')) {
    throw new BaselineError(`${baselineFile} is not a safe-weights baseline (write one with --write-baseline)`);
  }
  if (typeof b.version !== 'number' || b.version > BASELINE_VERSION) throw new BaselineError(`${baselineFile} was written by a newer safe-weights (baseline version ${String(b.version)})`);
  return b as BaselineFile;
}

/**
 * Removes the findings the baseline records from the reports (in place) and returns how many it removed per
 * report. Each recorded fingerprint matches as many findings as it was recorded times.
 */
export function applyBaseline(reports: FileReport[], baseline: BaselineFile, baselineFile: string): { removed: number; perReport: number[] } {
  const dir = path.dirname(path.resolve(baselineFile));
  const left = new Map<string, number>();
  for (const e of baseline.findings) left.set(e.fingerprint, (left.get(e.fingerprint) ?? 0) + 1);
  const src = new SourceLines();
  let removed = 0;
  const perReport = reports.map((r) => {
    const keep: Finding[] = [];
    let n = 0;
    for (const f of r.findings) {
      if (counted(f)) {
        const fp = entryFor(r, f, dir, src).fingerprint;
        const k = left.get(fp) ?? 0;
        if (k > 0) { left.set(fp, k - 1); n++; continue; }
      }
      keep.push(f);
    }
    (r as { findings: Finding[] }).findings = keep;
    removed += n;
    return n;
  });
  return { removed, perReport };
}

const RANK: Record<string, number> = { info: 0, invalid: 1, caution: 2, dangerous: 3 };

/**
 * The exit code after `applyBaseline`: a file any of whose findings the baseline matched fails only on the
 * findings left (its verdict came from the recorded ones too); any other file as without a baseline. A file with
 * findings past the report's cap (findingsOmitted) keeps its verdict: the unlisted ones cannot be compared.
 */
export function exitCodeWithBaseline(reports: FileReport[], perReport: number[], failOn: 'caution' | 'dangerous' | 'never',
  plain: (rs: FileReport[], failOn: 'caution' | 'dangerous' | 'never') => 0 | 1): 0 | 1 {
  if (failOn === 'never') return 0;
  const bar = failOn === 'caution' ? 2 : 3;
  for (let i = 0; i < reports.length; i++) {
    const r = reports[i];
    const omitted = r.kind === 'model' && (r.findingsOmitted ?? 0) > 0;
    if (perReport[i] > 0 && !omitted) { if (r.findings.some((f) => RANK[f.severity] >= bar)) return 1; }
    else if (plain([r], failOn)) return 1;
  }
  return 0;
}
