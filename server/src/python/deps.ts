// Dependency pins that undo the code fixes: a requirement whose newest allowed version is still affected by an
// advisory (e.g. torch<2.6 or torch==2.5.1) is reported. Ranges that also allow a fixed release are not.
// Read from requirements*.txt, pyproject.toml (PEP 621, dependency groups, Poetry), Pipfile, the lock files
// poetry.lock, uv.lock, pylock.toml and Pipfile.lock (the exact versions they install), conda environment.yml,
// setup.cfg and setup.py (install_requires, extras_require, ...).
import { basename } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { ADVISORIES, type Advisory } from './advisories';
import { CODE_RULE_BY_ID, type CodeSeverity } from './rules';
import type { Node } from './parser';
import { descend, tops, type Program } from './forest';
import { constantString } from './names';

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

/** conda package names whose PyPI name differs. */
const CONDA_NAMES: Record<string, string> = { pytorch: 'torch', 'pytorch-cpu': 'torch', 'pytorch-gpu': 'torch' };

export function normalise(pkg: string): string {
  const n = pkg.toLowerCase().replace(/[-_.]+/g, '-');
  return CONDA_NAMES[n] ?? n;
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

/** Requirement lines. Text that is plainly one of the other line-oriented dependency files (an editor may hand
 *  any of them over as "requirements") is read as that file: Pipfile.lock JSON, a conda environment, setup.cfg. */
export function checkRequirementsTxt(text: string): PinIssue[] {
  if (/^\s*\{/.test(text)) return checkPipfileLock(text);
  if (/^dependencies[ \t]*:/m.test(text)) return checkCondaEnvironment(text);
  if (/^\[options(?:\.extras_require)?\][ \t]*$/m.test(text)) return checkSetupCfg(text);
  return requirementLines(text);
}

function requirementLines(text: string): PinIssue[] {
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
  // Poetry: [tool.poetry.dependencies] torch = "2.5.1" | "^2.1" | { version = "<2.6" }; Pipfile: [packages]
  const poetry = (doc.tool as Record<string, unknown> | undefined)?.poetry as Record<string, unknown> | undefined;
  const tables = [poetry?.dependencies, ...Object.values((poetry?.group as Record<string, { dependencies?: unknown }>) ?? {}).map((g) => g?.dependencies),
    doc.packages && !Array.isArray(doc.packages) ? doc.packages : undefined, doc['dev-packages']];
  for (const table of tables) {
    if (!table || typeof table !== 'object') continue;
    for (const [pkg, value] of Object.entries(table as Record<string, unknown>)) {
      const spec = typeof value === 'string' ? value : (value as { version?: unknown })?.version;
      if (typeof spec !== 'string' || spec.trim() === '*') continue;
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
  out.push(...checkLockBlocks(text));
  return out.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** poetry.lock / uv.lock `[[package]]` and pylock.toml `[[packages]]` entries: the version they install. */
function checkLockBlocks(text: string): PinIssue[] {
  if (!/^\[\[packages?\]\][ \t]*\r?$/m.test(text)) return [];
  const out: PinIssue[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^\[\[packages?\]\][ \t]*\r?$/.test(lines[i])) continue;
    let name: string | undefined;
    let version: { value: string; line: number } | undefined;
    for (let j = i + 1; j < lines.length && !/^\[/.test(lines[j]); j++) {
      const m = /^(name|version)[ \t]*=[ \t]*"([^"]*)"/.exec(lines[j]);
      if (m?.[1] === 'name') name ??= m[2];
      else if (m?.[1] === 'version') version ??= { value: m[2], line: j };
    }
    if (!name || !version) continue;
    const hits = pinnedAdvisories(name, `==${version.value}`);
    if (hits.length) out.push(issueFor(name, `==${version.value}`, hits, version.line, 0, lines[version.line].replace(/\r$/, '').length));
  }
  return out;
}

/** Pipfile.lock: `{"default": {"torch": {"version": "==2.5.1", ...}}, "develop": {...}}`. */
export function checkPipfileLock(text: string): PinIssue[] {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return [];
  }
  const out: PinIssue[] = [];
  for (const section of ['default', 'develop']) {
    const table = doc?.[section];
    if (!table || typeof table !== 'object') continue;
    const sectionAt = text.search(new RegExp(`"${section}"\\s*:`));
    for (const [pkg, entry] of Object.entries(table as Record<string, { version?: unknown }>)) {
      const spec = entry?.version;
      if (typeof spec !== 'string') continue;
      const hits = pinnedAdvisories(pkg, spec.replace(/\s/g, ''));
      if (!hits.length) continue;
      const key = text.slice(Math.max(0, sectionAt)).search(new RegExp(`"${escapeRe(pkg)}"\\s*:\\s*\\{`));
      const from = key < 0 ? 0 : Math.max(0, sectionAt) + key;
      const v = /"version"\s*:\s*"[^"]*"/.exec(text.slice(from));
      const at = locate(text, v ? v[0] : `"${pkg}"`, v ? from + v.index : from) ?? { line: 0, column: 0, index: 0 };
      out.push(issueFor(pkg, spec, hits, at.line, at.column, at.column + (v ? v[0].length : pkg.length + 2)));
    }
  }
  return out.sort((a, b) => a.line - b.line);
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A conda match spec (`pytorch=2.5.1`, `pytorch==2.5.1=py3.11_cuda`, `conda-forge::keras>=3,<3.9`,
 *  `numpy 1.16.*`) as a PEP 440 specifier; a single `=` is conda's prefix match (`=2.5` means 2.5.*). */
function condaSpec(raw: string): { pkg: string; spec: string } | null {
  const m = /^(?:[\w.-]+::)?([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*(.*)$/.exec(raw.trim());
  if (!m || !m[2]) return null;
  let spec = m[2].trim();
  if (/^=[^=]/.test(spec)) {
    const v = spec.slice(1).split('=')[0];
    spec = v.endsWith('*') ? `==${v}` : `==${v}.*`;
  } else if (/^==/.test(spec)) spec = `==${spec.slice(2).split('=')[0]}`;
  else if (/^\d/.test(spec)) {
    const v = spec.split(/\s+/)[0];
    spec = `==${v}`;
  }
  return { pkg: m[1], spec: spec.replace(/\s/g, '') };
}

/** conda environment.yml: `dependencies:` items are conda specs; those under `- pip:` are PEP 508 requirements. */
export function checkCondaEnvironment(text: string): PinIssue[] {
  const out: PinIssue[] = [];
  const lines = text.split('\n');
  let inDeps = false;
  let pipIndent = -1;
  lines.forEach((raw, line) => {
    const l = raw.replace(/\r$/, '').replace(/(^|\s)#.*$/, '');
    if (/^\S/.test(l)) { inDeps = /^dependencies[ \t]*:/.test(l); pipIndent = -1; return; }
    if (!inDeps) return;
    const m = /^([ \t]*)-[ \t]+(.*?)[ \t]*$/.exec(l);
    if (!m) return;
    const indent = m[1].length;
    const item = m[2].replace(/^(["'])(.*)\1$/, '$2');
    if (/^pip[ \t]*:/.test(item)) { pipIndent = indent; return; }
    const column = raw.indexOf(item);
    if (pipIndent >= 0 && indent > pipIndent) {
      const issue = checkRequirement(item, line, column);
      if (issue) out.push(issue);
      return;
    }
    pipIndent = -1;
    const c = condaSpec(item);
    if (!c) return;
    const hits = pinnedAdvisories(c.pkg, c.spec);
    if (hits.length) out.push(issueFor(normalise(c.pkg), c.spec, hits, line, column, column + item.length));
  });
  return out;
}

const SETUP_KEYS = new Set(['install_requires', 'setup_requires', 'tests_require']);

/** setup.cfg: `[options] install_requires =` (and setup_requires, tests_require) and every `[options.extras_require]`
 *  key; values continue on indented lines. */
export function checkSetupCfg(text: string): PinIssue[] {
  const out: PinIssue[] = [];
  let section = '';
  let inValue = false;
  text.split('\n').forEach((raw, line) => {
    const l = raw.replace(/\r$/, '');
    const header = /^\[([^\]]+)\][ \t]*$/.exec(l);
    if (header) { section = header[1].trim(); inValue = false; return; }
    const key = /^([A-Za-z_][\w-]*)[ \t]*[=:][ \t]*(.*)$/.exec(l);
    let value: string | undefined;
    let column = 0;
    if (key) {
      inValue = (section === 'options' && SETUP_KEYS.has(key[1].replace(/-/g, '_'))) || section === 'options.extras_require';
      if (!inValue) return;
      value = key[2];
      column = l.length - key[2].length;
    } else if (inValue && /^[ \t]+\S/.test(l)) {
      value = l.trimStart();
      column = l.length - value.length;
    } else {
      if (l.trim()) inValue = false;
      return;
    }
    const req = value.replace(/(^|\s)[#;].*$/, '').trim();
    if (!req || req.startsWith('file:')) return;
    const issue = checkRequirement(req, line, column);
    if (issue) out.push(issue);
  });
  return out;
}

/** setup.py: string requirements given to a `setup(...)` call's install_requires / setup_requires / tests_require /
 *  extras_require, as list/tuple/dict literals or through a module-level name bound to one. */
export function checkSetupPy(tree: Program, text: string): PinIssue[] {
  const out: PinIssue[] = [];
  const strings = (n: Node | null | undefined, depth = 0): Node[] => {
    if (!n || depth > 4) return [];
    if (n.type === 'string' || n.type === 'concatenated_string') return [n];
    if (['list', 'tuple', 'set', 'parenthesized_expression'].includes(n.type)) return n.namedChildren.flatMap((c) => strings(c, depth + 1));
    if (n.type === 'dictionary') return n.namedChildren.flatMap((p) => (p?.type === 'pair' ? strings(p.childForFieldName('value'), depth + 1) : []));
    if (n.type === 'binary_operator') return [...strings(n.childForFieldName('left'), depth + 1), ...strings(n.childForFieldName('right'), depth + 1)];
    if (n.type === 'identifier') {
      // the last module-level `NAME = [...]` before the call
      let found: Node | null = null;
      for (const stmt of tops(tree, true)) {
        const a = stmt?.type === 'expression_statement' ? stmt.namedChildren[0] : null;
        if (a?.type === 'assignment' && a.childForFieldName('left')?.text === n.text && a.startIndex < n.startIndex) found = a.childForFieldName('right');
      }
      return found ? strings(found, depth + 1) : [];
    }
    return [];
  };
  for (const m of text.matchAll(/\b(install_requires|setup_requires|tests_require|extras_require)[ \t]*=/g)) {
    const id = descend(tree, m.index!, m.index! + m[1].length);
    const kw = id?.parent;
    if (kw?.type !== 'keyword_argument' || kw.parent?.parent?.type !== 'call') continue;
    const fn = kw.parent.parent.childForFieldName('function');
    if (!fn || !/(?:^|\.)setup$/.test(fn.text)) continue;
    for (const s of strings(kw.childForFieldName('value'))) {
      const req = constantString(s);
      if (req === undefined) continue;
      const content = s.type === 'string' ? s.namedChildren.find((c) => c?.type === 'string_content') ?? s : s;
      const issue = checkRequirement(req, content.startPosition.row, content.startPosition.column);
      if (issue) out.push(issue);
    }
  }
  return out.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** The dependency reader for a file name (setup.py needs its parse tree: checkSetupPy). */
export function checkDependencyFile(name: string, text: string): PinIssue[] {
  const base = basename(name).toLowerCase();
  if (base === 'pyproject.toml' || base === 'poetry.lock' || base === 'uv.lock' || base === 'pipfile' || /^pylock\..*toml$|^pylock\.toml$/.test(base)) {
    return checkPyproject(text);
  }
  if (base === 'pipfile.lock') return checkPipfileLock(text);
  if (base === 'setup.cfg') return checkSetupCfg(text);
  if (/^(?:.*[-_.])?environment(?:[-_.].*)?\.ya?ml$/.test(base)) return checkCondaEnvironment(text);
  return requirementLines(text);
}
