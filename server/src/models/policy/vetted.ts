// The vetted callables (vetted.json) and the user's own allow-globals entries: what a pickle may call and
// still be rated caution. Matching is on the dotted "module.name"; an entry ending in '*' matches every name
// that starts with the text before it.
import data from './vetted.json';

export interface VettedEntry { match: string; writer: string; does: string }
export interface Vetting { entry: string; why: string; user: boolean }

interface Matcher { exact: Map<string, VettedEntry>; prefixes: [string, VettedEntry][] }

function matcher(entries: readonly VettedEntry[]): Matcher {
  const m: Matcher = { exact: new Map(), prefixes: [] };
  for (const e of entries) {
    if (e.match.endsWith('*')) m.prefixes.push([e.match.slice(0, -1), e]);
    else m.exact.set(e.match, e);
  }
  return m;
}

function find(m: Matcher, full: string): VettedEntry | undefined {
  const hit = m.exact.get(full);
  if (hit) return hit;
  for (const [p, e] of m.prefixes) if (full.startsWith(p)) return e;
  return undefined;
}

export const VETTED: readonly VettedEntry[] = data.callables;
const BUILT_IN = matcher(VETTED);
/** Library modules whose dotted path contains a dangerous module's name without reaching it. */
export const OWN_MODULES: ReadonlySet<string> = new Set(data.ownModules.map((o) => o.module));

/** The user's allow-globals patterns (pyproject `[tool.safe-weights] allow-globals`, `safeWeights.allowGlobals`). */
export class AllowList {
  private readonly m: Matcher;
  constructor(readonly patterns: readonly string[] = []) {
    this.m = matcher(patterns.filter((p) => p.trim() !== '').map((p) => ({ match: p.trim(), writer: 'allow-globals', does: '' })));
  }
  match(full: string): string | undefined { return find(this.m, full)?.match; }
}
export const NO_USER_ALLOW = new AllowList();

/** Whether `full` ("module.name") may be called: a built-in vetted entry, or one of the user's patterns. */
export function vetting(full: string, allow: AllowList): Vetting | undefined {
  const e = find(BUILT_IN, full);
  if (e) return { entry: e.match, why: `vetted: ${e.does} (written by ${e.writer})`, user: false };
  const u = allow.match(full);
  if (u) return { entry: u, why: `allowed by your allow-globals entry "${u}"`, user: true };
  return undefined;
}
