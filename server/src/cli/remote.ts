// The CLI's remote targets (https://… and hf://org/repo@commit[/path]): scanned through models/remote/, which
// fetches only the byte ranges the verdict needs. Called by runScan for the arguments isRemoteTarget accepts.
import type { FileReport, ModelReport } from '../models/types';
import { scanRemote, DEFAULT_MAX_FETCH, type RemoteScanOptions } from '../models/remote/scanRemote';
import { formatBytes } from '../models/formatBytes';

export { isRemoteTarget } from '../models/remote/hub';

/** "64M", "1G", "500000" -> bytes. */
export function parseByteCount(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?$/i.exec(v.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  const n = Math.floor(Number(m[1]) * mult);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

export interface RemoteArgs { allowUnpinned: boolean; maxFetch?: number; allowGlobals?: readonly string[]; verbose?: boolean }

/** Scans each target; errors go to `err` (and make the run an I/O error), reports are returned in order. */
export async function scanRemoteTargets(targets: string[], a: RemoteArgs, err: NodeJS.WritableStream, version: string): Promise<{ reports: FileReport[]; ioError: boolean }> {
  const reports: FileReport[] = [];
  let ioError = false;
  for (const t of targets) {
    const o: RemoteScanOptions = { allowUnpinned: a.allowUnpinned, maxFetchBytes: a.maxFetch ?? DEFAULT_MAX_FETCH, allowGlobals: a.allowGlobals, userAgent: `safe-weights/${version}` };
    try {
      const r = await scanRemote(t, o);
      reports.push(...r.reports);
      for (const e of r.errors) { err.write(`safe-weights: ${e}\n`); ioError = true; }
      if (a.verbose && r.skipped.length) err.write(`safe-weights: ${t}: ${r.skipped.length} repository file${r.skipped.length === 1 ? '' : 's'} not read (no model loader reads them by name): ${r.skipped.slice(0, 20).join(', ')}${r.skipped.length > 20 ? ', …' : ''}\n`);
    } catch (e) {
      err.write(`safe-weights: ${(e as Error).message}\n`);
      ioError = true;
    }
  }
  return { reports, ioError };
}

/** The text line saying what a remote scan fetched, or undefined for a local file. */
export function remoteLine(m: ModelReport): string | undefined {
  if (!m.remote) return undefined;
  const r = m.remote;
  return `fetched ${formatBytes(r.bytesFetched)} of ${formatBytes(m.size)} in ${r.requests} request${r.requests === 1 ? '' : 's'}${r.commit ? ` (commit ${r.commit})` : ''}`;
}
