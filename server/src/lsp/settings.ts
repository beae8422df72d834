// Configuration: pyproject.toml's [tool.safe-weights] in the first workspace folder that has one, merged with
// the client's safeWeights settings; and which documents it excludes.
import { isAbsolute, relative, sep } from 'node:path';
import { defaultConfig, excludeMatcher, loadConfig, withSettings, type LoadedConfig } from '../config';
import type { SafeWeightsSettings } from '../protocol';
import { uriToPath, type ServerState } from './state';

export async function reloadConfig(s: ServerState): Promise<void> {
  s.projectConfig = defaultConfig();
  for (const root of s.roots) {
    try {
      s.projectConfig = await loadConfig(root);
      if (s.projectConfig.source) break;
    } catch (e) {
      s.connection.console.warn(String((e as Error).message));
    }
  }
  if (s.client.pullConfig) {
    try {
      s.settings = (await s.connection.workspace.getConfiguration('safeWeights')) as Partial<SafeWeightsSettings> | undefined;
    } catch {
      // The client may not answer configuration requests; keep what we had.
    }
  }
  s.config = withSettings(s.projectConfig, s.settings);
}

/** Re-analyse every open document and notebook (after a configuration change). */
export function refreshAll(s: ServerState): void {
  for (const doc of s.documents.all()) s.schedule(doc.uri);
  for (const uri of s.programs.keys()) if (s.notebooks.getNotebookDocument(uri)) s.schedule(uri);
}

const matchers = new WeakMap<LoadedConfig, (rel: string) => boolean>();

/** Whether the configuration's exclude patterns cover a document (relative to any workspace folder). */
export function excluded(s: ServerState, uri: string): boolean {
  const path = uriToPath(uri);
  if (!path || s.roots.length === 0) return false;
  let isExcluded = matchers.get(s.config);
  if (!isExcluded) matchers.set(s.config, (isExcluded = excludeMatcher(s.config)));
  const match = isExcluded;
  return s.roots.some((r) => {
    const rel = relative(r, path);
    return !rel.startsWith('..') && !isAbsolute(rel) && match(rel.split(sep).join('/'));
  });
}

export function listenSettings(s: ServerState): void {
  s.connection.onDidChangeConfiguration(async (change) => {
    const pushed = (change.settings as { safeWeights?: Partial<SafeWeightsSettings> } | undefined)?.safeWeights;
    if (pushed) s.settings = pushed;
    await reloadConfig(s);
    refreshAll(s);
  });
}
