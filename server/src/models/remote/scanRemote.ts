// `safe-weights scan https://host/model.bin | hf://org/repo@<commit>[/path]`: the scan reads the remote file through
// RemoteSource, so only the byte ranges the verdict needs are fetched (see remoteSource.ts), and reports what it
// fetched. A whole hf:// repository is listed through the Hub API: its model files are scanned one by one and its
// config.json gets the repository report (hfRepo.ts) over the remote files.
import * as path from 'node:path';
import { scanModelSource, isModelFileName } from '../scan';
import { analyzeHfRepo, type RepoView } from '../hfRepo';
import type { ModelReport } from '../types';
import { RemoteSource, type FetchBudget } from './remoteSource';
import { SyncHttp, HttpError, redact } from './syncHttp';
import { authHeadersFor, formatHfTarget, isHfTarget, listRepo, parseHfTarget, resolveUrl, type HfTarget } from './hub';

export { isRemoteTarget } from './hub';

export interface RemoteScanOptions {
  /** Accept hf:// revisions that are not a commit hash (branches, tags): resolved to their current commit. */
  allowUnpinned?: boolean;
  /** Bytes one target may fetch in all (default 256 MB). */
  maxFetchBytes?: number;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  allowGlobals?: readonly string[];
  maxTensors?: number;
  userAgent?: string;
}

export interface RemoteScanResult {
  reports: ModelReport[];
  /** Files that could not be scanned, with why. */
  errors: string[];
  /** Repository files left out because no model loader reads them by name. */
  skipped: string[];
  bytesFetched: number;
  requests: number;
}

export class UnpinnedRevisionError extends HttpError {}

export const DEFAULT_MAX_FETCH = 256 << 20;
const NAMES_EXTRA = /\.(?:keras|h5|hdf5|onnx|msgpack|pkl\.gz|joblib\.gz)$/i;

/** Files of a repository the scan reads (by name: a listing has no bytes to sniff). */
export function isRemoteModelName(rel: string): boolean {
  const base = path.posix.basename(rel);
  return isModelFileName(base) || NAMES_EXTRA.test(base);
}

export async function scanRemote(target: string, o: RemoteScanOptions = {}): Promise<RemoteScanResult> {
  const env = o.env ?? process.env;
  const limit = o.maxFetchBytes ?? DEFAULT_MAX_FETCH;
  const budget: FetchBudget = { left: limit, limit };
  const http = new SyncHttp();
  const out: RemoteScanResult = { reports: [], errors: [], skipped: [], bytesFetched: 0, requests: 0 };
  const headersFor = authHeadersFor(env);
  const srcOpts = { http, budget, headersFor, timeoutMs: o.timeoutMs, userAgent: o.userAgent };
  const sources: RemoteSource[] = [];
  const open = (url: string): RemoteSource => { const s = RemoteSource.open(url, srcOpts); sources.push(s); return s; };
  const scanOne = async (url: string, name: string, commit?: string): Promise<ModelReport> => {
    const src = open(url);
    try {
      const r = await scanModelSource(src, name, { allowGlobals: o.allowGlobals, maxTensors: o.maxTensors });
      r.remote = { url: redact(url), bytesFetched: src.bytesFetched, requests: src.requests, ...(commit ? { commit } : {}) };
      return r;
    } finally { src.close(); }
  };
  try {
    if (!isHfTarget(target)) {
      out.reports.push(await scanOne(target, redact(target)));
      return out;
    }
    let t: HfTarget = parseHfTarget(target);
    if (!t.pinned && !o.allowUnpinned) {
      throw new UnpinnedRevisionError(`${target}: "${t.revision}" is a branch or tag, which can point at other files tomorrow; name a commit (hf://${t.repo}@<40-hex commit>${t.path ? `/${t.path}` : ''}) or pass --allow-unpinned`);
    }
    const needsListing = !t.pinned || t.path === undefined || path.posix.basename(t.path) === 'config.json';
    let listing: ReturnType<typeof listRepo> | undefined;
    if (needsListing) {
      listing = listRepo(http, t, env, o.timeoutMs);
      out.requests++;
      if (!t.pinned) {
        if (!listing.commit) throw new HttpError(`${target}: the Hub did not say which commit "${t.revision}" is`);
        t = { ...t, revision: listing.commit, pinned: true };
      }
    }
    const commit = t.revision;
    if (t.path !== undefined && path.posix.basename(t.path) !== 'config.json') {
      out.reports.push(await scanOne(resolveUrl(t, t.path, env), formatHfTarget(t), commit));
      return out;
    }
    const files = new Map<string, number | undefined>((listing?.files ?? []).map((f) => [f.path, f.size]));
    const base = t.path !== undefined ? path.posix.dirname(t.path) : '';
    const inScope = (rel: string) => base === '' || base === '.' || rel.startsWith(`${base}/`);
    // the repository reports: one per config.json (a diffusers repository has one per component folder)
    const configs = [...files.keys()].filter((f) => inScope(f) && path.posix.basename(f) === 'config.json' && (t.path === undefined || f === t.path)).sort();
    const view: RepoView = {
      display: (rel) => formatHfTarget(t, rel),
      files,
      async readText(rel, max) {
        const size = files.get(rel);
        if (size !== undefined && size > max) return undefined;
        const src = open(resolveUrl(t, rel, env));
        try { return src.size > max ? undefined : Buffer.from(src.read(0, src.size)).toString('utf8'); } finally { src.close(); }
      },
      open(rel) { try { return open(resolveUrl(t, rel, env)); } catch { return undefined; } },
    };
    for (const rel of configs) {
      try {
        const before = sum(sources);
        const r = await analyzeHfRepo(view, rel, { maxTensors: o.maxTensors, size: files.get(rel) });
        const after = sum(sources);
        r.remote = { url: redact(resolveUrl(t, rel, env)), bytesFetched: after.bytes - before.bytes, requests: after.requests - before.requests, commit };
        out.reports.push(r);
      } catch (e) { out.errors.push(`${formatHfTarget(t, rel)}: ${(e as Error).message}`); }
    }
    if (t.path !== undefined) return out;
    for (const rel of [...files.keys()].sort()) {
      if (!isRemoteModelName(rel)) { out.skipped.push(rel); continue; }
      try { out.reports.push(await scanOne(resolveUrl(t, rel, env), formatHfTarget(t, rel), commit)); } catch (e) { out.errors.push(`${formatHfTarget(t, rel)}: ${(e as Error).message}`); }
    }
    return out;
  } finally {
    const s = sum(sources);
    out.bytesFetched += s.bytes;
    out.requests += s.requests;
    http.close();
  }
}

function sum(sources: RemoteSource[]): { bytes: number; requests: number } {
  let bytes = 0, requests = 0;
  for (const s of sources) { bytes += s.bytesFetched; requests += s.requests; }
  return { bytes, requests };
}
