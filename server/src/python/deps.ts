// Dependency pins that undo the code fixes: a requirement whose newest allowed version is still affected by an
// advisory (e.g. torch<2.6 or torch==2.5.1) is reported. Ranges that also allow a fixed release are not.
import { parse as parseToml } from 'smol-toml';
import { ADVISORIES, type Advisory } from './advisories';
import { CODE_RULE_BY_ID, type CodeSeverity } from './rules';

export interface PinIssue {
  rule: string;
  severity: CodeSeverity;
  message: string;
  line: number;        // 0-based
  column: number;      // 0-based
  endColumn: number;
}

type Version = number[];

export function parseVersion(v: string): Version | null {
  const m = /^v?(\d+(?:\.\d+)*)(?:\.?(a|b|rc|alpha|beta|c|pre|preview|dev)\d*)?/i.exec(v.trim());
  if (!m) return null;
  const parts = m[1].split('.').map(Number);
  // A pre-release sorts before its release: 2.6.0rc1 < 2.6.0.
  if (m[2]) parts.push(-1);
  return parts;
}

export function compare(a: Version, b: Version): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

interface Upper { v: Version; inclusive: boolean }

function bump(parts: Version): Version {
  const out = parts.slice();
  out[out.length - 1]++;
  return out;
}

/** Tightest upper bound of a PEP 440 (or Poetry) specifier, if any. */
export function upperBound(spec: string): Upper | null {
  let best: Upper | null = null;
  const take = (u: Upper): void => {
    if (!best) { best = u; return; }
    const c = compare(u.v, best.v);
    if (c < 0 || (c === 0 && !u.inclusive)) best = u;
  };
  for (const raw of spec.split(',')) {
    const clause = raw.trim();
    if (!clause) continue;
    const m = /^(===|==|~=|<=|>=|!=|<|>|\^|~)?\s*([0-9][\w.*+!-]*)$/.exec(clause);
    if (!m) continue;
    const op = m[1] ?? '==';
    const text = m[2];
    if (op === '==' || op === '===') {
      if (text.endsWith('.*')) {
        const v = parseVersion(text.slice(0, -2));
        if (v) take({ v: bump(v), inclusive: false });
      } else {
        const v = parseVersion(text);
        if (v) take({ v, inclusive: true });
      }
      continue;
    }
    const v = parseVersion(text);
    if (!v) continue;
    if (op === '<') take({ v, inclusive: false });
    else if (op === '<=') take({ v, inclusive: true });
    else if (op === '~=' && v.length > 1) take({ v: bump(v.slice(0, -1)), inclusive: false });
    else if (op === '~') take({ v: bump(v.slice(0, Math.min(2, v.length))), inclusive: false });
    else if (op === '^') {
      const i = v.findIndex((x) => x !== 0);
      take({ v: bump(v.slice(0, i === -1 ? v.length : i + 1)), inclusive: false });
    }
  }
  return best;
}

/** Advisories every allowed version is still affected by (fixed release excluded, newest allowed affected). */
export function pinnedAdvisories(pkg: string, spec: string): Advisory[] {
  const name = normalise(pkg);
  const upper = upperBound(spec);
  if (!upper) return [];
  return ADVISORIES.filter((a) => {
    if (a.package !== name) return false;
    const fixed = parseVersion(a.fixed)!;
    const c = compare(upper.v, fixed);
    if (upper.inclusive ? c >= 0 : c > 0) return false;
    if (!a.introduced) return true;
    const intro = parseVersion(a.introduced)!;
    const ci = compare(upper.v, intro);
    return upper.inclusive ? ci >= 0 : ci > 0;
  });
}

export function normalise(pkg: string): string {
  return pkg.toLowerCase().replace(/[-_.]+/g, '-');
}

function issueFor(pkg: string, spec: string, hits: Advisory[], line: number, column: number, endColumn: number): PinIssue {
  const rank = (r: string): number => (r === 'SW204' ? 1 : 0);
  const sorted = hits.slice().sort((a, b) => rank(a.rule) - rank(b.rule));
  const rule = sorted[0].rule;
  const fixedMax = sorted.map((a) => a.fixed).sort((a, b) => compare(parseVersion(b)!, parseVersion(a)!))[0];
  const list = sorted.map((a) => `${a.id} (${a.summary}; fixed in ${a.fixed}; ${a.source})`).join('; ');
  return {
    rule, severity: CODE_RULE_BY_ID.get(rule)!.severity,
    message: `${pkg}${spec} only allows versions affected by ${list}. Allow ${pkg}>=${fixedMax}.`,
    line, column, endColumn,
  };
}

const REQ_RE = /^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(\(?\s*[<>=!~^][^;#]*?\)?)?\s*(?:;.*)?$/;

/** One PEP 508 requirement string (without comments) → its pin issue, or null. */
function checkRequirement(req: string, line: number, column: number): PinIssue | null {
  const m = REQ_RE.exec(req.trim());
  if (!m || !m[3]) return null;
  const spec = m[3].replace(/[()\s]/g, '');
  const hits = pinnedAdvisories(m[1], spec);
  return hits.length ? issueFor(m[1], spec, hits, line, column, column + req.trim().length) : null;
}

export function checkRequirementsTxt(text: string): PinIssue[] {
  const out: PinIssue[] = [];
  text.split('\n').forEach((raw, line) => {
    const noComment = raw.replace(/(^|\s)#.*$/, '').replace(/\r$/, '');
    if (!noComment.trim() || /^\s*-/.test(noComment)) return;
    const column = noComment.length - noComment.trimStart().length;
    const issue = checkRequirement(noComment, line, column);
    if (issue) out.push(issue);
  });
  return out;
}

/** Position of `needle` in the text (first occurrence at or after `from`), as 0-based line/column. */
function locate(text: string, needle: string, from = 0): { line: number; column: number; index: number } | null {
  const i = text.indexOf(needle, from);
  if (i === -1) return null;
  const before = text.slice(0, i);
  const line = before.split('\n').length - 1;
  return { line, column: i - (before.lastIndexOf('\n') + 1), index: i };
}

export function checkPyproject(text: string): PinIssue[] {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch {
    return [];
  }
  const out: PinIssue[] = [];
  const reqs: string[] = [];
  const project = doc.project as Record<string, unknown> | undefined;
  if (Array.isArray(project?.dependencies)) reqs.push(...project!.dependencies.filter((x): x is string => typeof x === 'string'));
  const optional = project?.['optional-dependencies'] as Record<string, unknown> | undefined;
  for (const list of Object.values(optional ?? {})) if (Array.isArray(list)) reqs.push(...list.filter((x): x is string => typeof x === 'string'));
  const groups = doc['dependency-groups'] as Record<string, unknown> | undefined;
  for (const list of Object.values(groups ?? {})) if (Array.isArray(list)) reqs.push(...list.filter((x): x is string => typeof x === 'string'));
  let from = 0;
  for (const req of reqs) {
    const at = locate(text, req, 0);
    if (!at) continue;
    const issue = checkRequirement(req, at.line, at.column);
    if (issue) out.push(issue);
  }
  // Poetry: [tool.poetry.dependencies] torch = "2.5.1" | "^2.1" | { version = "<2.6" }
  const poetry = (doc.tool as Record<string, unknown> | undefined)?.poetry as Record<string, unknown> | undefined;
  const tables = [poetry?.dependencies, ...Object.values((poetry?.group as Record<string, { dependencies?: unknown }>) ?? {}).map((g) => g?.dependencies)];
  for (const table of tables) {
    if (!table || typeof table !== 'object') continue;
    for (const [pkg, value] of Object.entries(table as Record<string, unknown>)) {
      const spec = typeof value === 'string' ? value : (value as { version?: unknown })?.version;
      if (typeof spec !== 'string') continue;
      const hits = pinnedAdvisories(pkg, spec.replace(/\s/g, ''));
      if (!hits.length) continue;
      const re = new RegExp(`^[ \\t]*"?${pkg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?[ \\t]*=`, 'm');
      const m = re.exec(text.slice(from));
      const at = m ? locate(text, m[0].trimStart(), from + m.index) : null;
      if (at) from = at.index + 1;
      const line = at?.line ?? 0;
      const column = at?.column ?? 0;
      const lineText = text.split('\n')[line] ?? '';
      out.push(issueFor(pkg, spec.startsWith('^') || spec.startsWith('~') || /^[<>=!]/.test(spec) ? spec : `==${spec}`, hits, line, column, lineText.replace(/\r$/, '').length));
    }
  }
  return out;
}
