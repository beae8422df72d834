// Configuration shared by the CLI and the editor: `[tool.safe-weights]` in pyproject.toml, with the editor's
// `safeWeights.*` settings layered on top (so both agree on what the project decided).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import picomatch from 'picomatch';
import type { SafeWeightsSettings } from './protocol';
import type { CodeSeverity } from './python/rules';
import { CODE_RULES } from './python/rules';

export type RuleLevel = CodeSeverity | 'off';

export interface LoadedConfig {
  /** Per-rule level: 'off' disables; otherwise overrides the rule's severity. Keys are rule ids. */
  rules: Record<string, RuleLevel>;
  exclude: string[];
  honorNosec: boolean;
  workspaceScan: boolean;
  enable: boolean;
  /** allow-globals: patterns of the project's own callables that pickles may call (vetted, caution). */
  allowGlobals: string[];
  /** Where the project part came from (pyproject path), if anywhere. */
  source?: string;
}

export const DEFAULT_EXCLUDES = ['**/.git/**', '**/node_modules/**', '**/.venv/**', '**/venv/**', '**/env/**',
  '**/.tox/**', '**/.nox/**', '**/__pycache__/**', '**/site-packages/**', '**/.mypy_cache/**'];

export function defaultConfig(): LoadedConfig {
  return { rules: {}, exclude: [], honorNosec: false, workspaceScan: true, enable: true, allowGlobals: [] };
}

const BY_NAME = new Map(CODE_RULES.map((r) => [r.name, r.id]));

function ruleId(key: string): string {
  return BY_NAME.get(key) ?? key.toUpperCase();
}

/** Accepts the pyproject/CLI words and the editor words for a level. */
export function toLevel(v: unknown): RuleLevel | undefined {
  switch (String(v).toLowerCase()) {
    case 'off': case 'none': case 'disable': case 'disabled': return 'off';
    case 'info': case 'information': case 'hint': case 'low': return 'info';
    case 'warning': case 'warn': case 'caution': case 'medium': return 'caution';
    case 'error': case 'dangerous': case 'high': return 'dangerous';
    default: return undefined;
  }
}

/** Reads `[tool.safe-weights]` from rootDir/pyproject.toml (missing file or table: defaults). */
export async function loadConfig(rootDir: string): Promise<LoadedConfig> {
  const cfg = defaultConfig();
  const path = join(rootDir, 'pyproject.toml');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return cfg;
  }
  return applyPyproject(cfg, text, path);
}

export function applyPyproject(cfg: LoadedConfig, text: string, path?: string): LoadedConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path ?? 'pyproject.toml'}: invalid TOML: ${(e as Error).message}`);
  }
  const table = ((doc.tool as Record<string, unknown> | undefined)?.['safe-weights']) as Record<string, unknown> | undefined;
  if (!table) return cfg;
  cfg.source = path;
  const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  for (const id of list(table.disable)) cfg.rules[ruleId(id)] = 'off';
  const sev = table.severity;
  if (sev && typeof sev === 'object') {
    for (const [k, v] of Object.entries(sev as Record<string, unknown>)) {
      const level = toLevel(v);
      if (level) cfg.rules[ruleId(k)] = level;
    }
  }
  cfg.exclude.push(...list(table.exclude));
  cfg.allowGlobals.push(...list(table['allow-globals']));
  if (typeof table['honor-nosec'] === 'boolean') cfg.honorNosec = table['honor-nosec'];
  if (typeof table['workspace-scan'] === 'boolean') cfg.workspaceScan = table['workspace-scan'];
  return cfg;
}

/** Editor settings on top of the project configuration. */
export function withSettings(base: LoadedConfig, s: Partial<SafeWeightsSettings> | undefined): LoadedConfig {
  const cfg: LoadedConfig = { ...base, rules: { ...base.rules }, exclude: [...base.exclude], allowGlobals: [...base.allowGlobals] };
  if (!s) return cfg;
  if (typeof s.enable === 'boolean') cfg.enable = s.enable;
  if (typeof s.workspaceScan === 'boolean') cfg.workspaceScan = s.workspaceScan;
  if (typeof s.honorNosec === 'boolean') cfg.honorNosec = s.honorNosec;
  if (Array.isArray(s.exclude)) cfg.exclude.push(...s.exclude.filter((x) => typeof x === 'string'));
  if (Array.isArray(s.allowGlobals)) cfg.allowGlobals.push(...s.allowGlobals.filter((x) => typeof x === 'string'));
  for (const [k, v] of Object.entries(s.rules ?? {})) {
    const level = toLevel(v);
    if (level) cfg.rules[ruleId(k)] = level;
  }
  return cfg;
}

/** Final severity of a finding under the configuration, or undefined when the rule is off. */
export function levelFor(cfg: LoadedConfig | undefined, rule: string, severity: CodeSeverity): CodeSeverity | undefined {
  const level = cfg?.rules[rule];
  if (level === 'off') return undefined;
  return level ?? severity;
}

/** Matcher for workspace-relative paths (forward slashes) against the default and configured excludes. */
export function excludeMatcher(cfg: LoadedConfig): (relPath: string) => boolean {
  const globs = [...DEFAULT_EXCLUDES, ...cfg.exclude.map((g) => (g.includes('/') || g.startsWith('**') ? g : `**/${g}`))];
  const isMatch = picomatch(globs, { dot: true });
  return (rel) => isMatch(rel) || isMatch(`${rel}/`) || isMatch(`${rel}/x`);
}
