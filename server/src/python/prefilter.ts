// A cheap, sound pre-check for batch scans: a file can only produce a finding if its code (strings and comments
// removed) names one of the rules' modules and one of their functions, or a flagged keyword. Files that cannot
// match are not parsed at all. The editor always parses.
import { FINAL_NAMES, HF_DOWNLOADS, HF_ROOTS, KEYWORD_TRIGGERS, NAME_ROOTS } from './analyze';

// (np and pd count: a notebook or snippet may use them without importing numpy or pandas)
const ROOTS = ['torch', 'pickle', 'cPickle', '_pickle', 'pickle5', 'dill', 'cloudpickle', 'jsonpickle', 'joblib', 'sklearn',
  'numpy', 'np', 'pandas', 'pd', 'yaml', 'ruamel', 'marshal', 'shelve', 'keras', 'tensorflow', 'tf_keras', 'six', 'msgpack',
  'msgpack_numpy', 'multiprocessing'];
const ROOT_RE = new RegExp(`\\b(?:${ROOTS.join('|')})\\b`, 'g');
const nameRe = (names: string[]): RegExp => new RegExp(`(?:\\.|\\bimport\\b[^\\n]*?|^|[(,])[ \\t]*(?<!\\w)(?:${names.join('|')})\\b`, 'm');
const NAME_RE = nameRe(FINAL_NAMES);
const byRoots = new Map<string, RegExp | null>();

/** Whether the code names a rule function in a call/import/alias position, counting only functions of modules it names. */
function namesTarget(code: string): boolean {
  const roots = new Set<string>();
  for (const m of code.matchAll(ROOT_RE)) roots.add(m[0]);
  if (roots.size === 0) return false;
  const key = [...roots].sort().join(',');
  let re = byRoots.get(key);
  if (re === undefined) {
    const names = FINAL_NAMES.filter((n) => NAME_ROOTS.get(n)!.some((r) => roots.has(r)));
    re = names.length ? nameRe(names) : null;
    byRoots.set(key, re);
  }
  return re !== null && re.test(code);
}
// Hugging Face Hub downloads (SW117) are matched by name in any library the file imports from the HF family.
const HF_RE = new RegExp(`\\b(?:${HF_DOWNLOADS.join('|')})\\s*\\(`);
const HF_ROOT_RE = new RegExp(`\\b(?:${HF_ROOTS.join('|')})\\b`);
const KW_RE = new RegExp(`\\b(?:${KEYWORD_TRIGGERS.join('|')})\\b`);
// Constant-string dynamic access (`getattr(torch, "load")`, `importlib.import_module("pickle")`, `sys.modules["pickle"]`)
// names its target only inside a string, which codeOnly removes: matched on the raw source, with the string in place.
const QUOTED_NAME = `["'](?:${FINAL_NAMES.join('|')})["']`;
const QUOTED_MODULE = `["'](?:${ROOTS.join('|')})(?:\\.\\w+)*["']`;
const DYNAMIC_RE = new RegExp([
  `getattr\\s*\\(\\s*[\\w.]+\\s*,\\s*${QUOTED_NAME}`,
  `(?:import_module|__import__)\\s*\\(\\s*(?:name\\s*=\\s*)?${QUOTED_MODULE}`,
  `(?:modules|__dict__|\\))\\s*\\[\\s*(?:${QUOTED_MODULE}|${QUOTED_NAME})\\s*\\]`,
].join('|'));
// multiprocessing connections: `conn.recv()` on a Pipe/Listener/Client connection
const RECV_RE = /\.\s*recv\s*\(/;

/** Source with comments and non-f string literals removed (f-strings are kept: their fields are code). */
export function codeOnly(s: string): string {
  return s.replace(/#[^\n]*|([rRbBuUfF]{0,2})("""|''')[\s\S]*?\2|([rRbBuUfF]{0,2})("|')(?:\\[\s\S]|(?!\4)[^\\\n])*\4/g,
    (m: string, p1?: string, _q1?: string, p3?: string) => {
      const prefix = p1 ?? p3 ?? '';
      return /[fF]/.test(prefix) ? m : m.startsWith('#') ? '' : '""';
    });
}

export function mayHaveFindings(source: string): boolean {
  // Stripping only removes matches, so a text that does not match raw cannot match stripped.
  const hf = HF_RE.test(source);
  if (!KW_RE.test(source) && !NAME_RE.test(source) && !hf && !RECV_RE.test(source) && !DYNAMIC_RE.test(source)) return false;
  const code = codeOnly(source);
  return KW_RE.test(code) || namesTarget(code) || (hf && HF_ROOT_RE.test(code) && HF_RE.test(code))
    || (RECV_RE.test(code) && /\bmultiprocessing\b/.test(code)) || DYNAMIC_RE.test(source);
}
