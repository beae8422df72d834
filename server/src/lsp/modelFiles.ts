// Model files that open code loads: where a load call's path points, and the engine's report of that file (cached
// in modelCache.ts) for the diagnostic's related information, the custom requests and the workspace scan.
import type { DiagnosticRelatedInformation } from 'vscode-languageserver/node';
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { scanModelFile } from '../models/scan';
import type { ModelReport } from '../models/types';
import type { CodeIssue } from '../python/analyze';
import { uriToPath, type ServerState } from './state';

/** The file a load call's path names: relative to the document's folder, then to each workspace folder. */
export function modelPathFor(s: ServerState, docUri: string, value: string): string | undefined {
  if (value.length > 4096) return undefined;
  const docPath = uriToPath(docUri);
  const candidates = isAbsolute(value) ? [value] : [...(docPath ? [join(dirname(docPath), value)] : []), ...s.roots.map((r) => join(r, value))];
  for (const c of candidates) if (s.models.recentStat(c)?.isFile) return resolve(c);
  return undefined;
}

/** When a report was last made stale: the file's mtime, and for a Hugging Face repository (its config.json) the
 *  newest of the repository files its report also reads (tokenizer_config.json, *.index.json, chat templates,
 *  modeling code), so that editing one of them alone refreshes the Inspector. */
function reportStamp(path: string): number {
  let t = statSync(path).mtimeMs;
  if (basename(path) !== 'config.json') return t;
  const dir = dirname(path);
  try {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isFile() && /\.(?:json|jinja|py)$/.test(e.name)) t = Math.max(t, statSync(join(dir, e.name)).mtimeMs);
    }
  } catch { /* the file's own mtime */ }
  return t;
}

/** The engine's report of a model file, cached by mtime (see reportStamp) and allowlist. */
export async function modelReport(s: ServerState, path: string, sha256?: boolean): Promise<ModelReport> {
  const mtime = reportStamp(path);
  const allow = s.config.allowGlobals.join('\n');
  const cached = s.models.reports.get(path);
  if (cached && cached.mtime === mtime && cached.allow === allow && !sha256) return cached.report;
  const report = await scanModelFile(path, { sha256: sha256 ? true : undefined, allowGlobals: s.config.allowGlobals });
  s.models.reports.set(path, { mtime, allow, report });
  return report;
}

/**
 * The verdict of the workspace file a finding's load call names, as related information. A file not scanned yet
 * is scanned in the background and the document re-analysed when the report is ready.
 */
export function crossReference(s: ServerState, docUri: string, issue: CodeIssue): DiagnosticRelatedInformation | undefined {
  if (!issue.path) return undefined;
  const path = modelPathFor(s, docUri, issue.path.value);
  if (!path) return undefined;
  const cached = s.models.reports.get(path);
  const mtime = s.models.recentStat(path)?.mtime;
  if (mtime === undefined) return undefined;
  if (!cached || cached.mtime !== mtime) {
    void modelReport(s, path).then(() => s.schedule(docUri)).catch(() => undefined);
    return undefined;
  }
  const r = cached.report;
  return {
    location: { uri: pathToFileURL(path).href, range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } } },
    message: `${basename(path)} (${r.verdict}): ${r.summary}`,
  };
}
