// A cheap, sound pre-check for batch scans: a file can only produce a finding if its code (strings and comments
// removed) names one of the rules' modules and one of their functions, or a flagged keyword. Files that cannot
// match are not parsed at all. The editor always parses.
import { FINAL_NAMES, HF_DOWNLOADS, HF_ROOTS, KEYWORD_TRIGGERS, NAME_ROOTS } from './analyze';

// (np and pd count: a notebook or snippet may use them without importing numpy or pandas)
const ROOTS = ['torch', 'pickle', 'cPickle', '_pickle', 'pickle5', 'dill', 'cloudpickle', 'jsonpickle', 'joblib', 'sklearn',
  'numpy', 'np', 'pandas', 'pd', 'yaml', 'ruamel', 'marshal', 'shelve', 'keras', 'tensorflow', 'tf_keras', 'six', 'msgpack',
  'msgpack_numpy', 'multiprocessing'];
// A name in a call/import/alias position: after `.`, `(` or `,`, at a line start, or later on a line holding `import`
// (spaces and tabs between). Found as a plain word first and its context checked by hand: one regex with the context
// as an alternation before the names, or with `\b` around them, defeats V8's fast scan for the names' letters
// (33 MB of torch, sklearn and numpy: 209 ms with the single regex, 88 ms with `\b` words, ~40 ms so).
// Longest names first, so that a match failing the word end cannot hide a longer name at the same start.
const wordRe = (names: string[]): RegExp => new RegExp(`(?:${[...names].sort((a, b) => b.length - a.length).join('|')})`, 'g');
const isWordChar = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
const IMPORT_WORD = /\bimport\b/;
const LINE_BREAKS = '\n\r\u2028\u2029';

function nameInPosition(code: string, words: RegExp): boolean {
  words.lastIndex = 0;
  for (let m = words.exec(code); m; m = words.exec(code)) {
    // a whole word only (a rejected match is all word characters, so no word starts inside it)
    if (!wholeWord(code, m)) continue;
    let i = m.index - 1;
    while (i >= 0 && (code.charCodeAt(i) === 0x20 || code.charCodeAt(i) === 0x09)) i--;
    if (i < 0) return true;
    const c = code[i];
    if (c === '.' || c === '(' || c === ',' || LINE_BREAKS.includes(c)) return true;
    if (IMPORT_WORD.test(code.slice(code.lastIndexOf('\n', i) + 1, m.index))) return true;
  }
  return false;
}
const byRoots = new Map<string, RegExp | null>();

const wholeWord = (code: string, m: RegExpExecArray): boolean =>
  !(m.index > 0 && isWordChar(code.charCodeAt(m.index - 1))) && !isWordChar(code.charCodeAt(m.index + m[0].length));
const rootRes = new Map<string, RegExp>();

/** The root modules the code names as whole words. Each root found is dropped from the search for the rest, so a file
 *  is scanned about once per root it names instead of stopping at each of its thousands of `torch` (torch's own
 *  Python tree: ~4x less time than listing every match). */
function rootsIn(code: string): Set<string> {
  const found = new Set<string>();
  let at = 0;
  for (;;) {
    const left = ROOTS.filter((r) => !found.has(r));
    if (left.length === 0) return found;
    const key = left.join(',');
    let re = rootRes.get(key);
    if (!re) { re = wordRe(left); rootRes.set(key, re); }
    re.lastIndex = at;
    let m = re.exec(code);
    while (m && !wholeWord(code, m)) m = re.exec(code);
    if (!m) return found;
    found.add(m[0]);
    at = re.lastIndex;
  }
}

/** Whether the code names a rule function in a call/import/alias position, counting only functions of modules it names. */
function namesTarget(code: string): boolean {
  const roots = rootsIn(code);
  if (roots.size === 0) return false;
  const key = [...roots].sort().join(',');
  let re = byRoots.get(key);
  if (re === undefined) {
    const names = FINAL_NAMES.filter((n) => NAME_ROOTS.get(n)!.some((r) => roots.has(r)));
    re = names.length ? wordRe(names) : null;
    byRoots.set(key, re);
  }
  return re !== null && nameInPosition(code, re);
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
// Every form DYNAMIC_RE accepts quotes a rule name or module: this quote-first test is ~5x cheaper and rules most files out.
const QUOTED_ANY = new RegExp(`["'](?:${FINAL_NAMES.join('|')}|${ROOTS.join('|')})(?:\\.\\w+)*["']`);
const dynamicAccess = (source: string): boolean => QUOTED_ANY.test(source) && DYNAMIC_RE.test(source);

/** Source with comments and non-f string literals removed (f-strings are kept: their fields are code). */
export function codeOnly(s: string): string {
  return s.replace(/#[^\n]*|([rRbBuUfF]{0,2})("""|''')[\s\S]*?\2|([rRbBuUfF]{0,2})("|')(?:\\[\s\S]|(?!\4)[^\\\n])*\4/g,
    (m: string, p1?: string, _q1?: string, p3?: string) => {
      const prefix = p1 ?? p3 ?? '';
      return /[fF]/.test(prefix) ? m : m.startsWith('#') ? '' : '""';
    });
}

export function mayHaveFindings(source: string): boolean {
  // Stripping only removes matches, so a text that does not match raw cannot match stripped (the raw text names
  // at least the roots its code names, so testing it by its own roots is a superset too).
  // includes() before each regex: most files hold none of these words, and a substring search is far cheaper
  const hf = HF_DOWNLOADS.some((w) => source.includes(w)) && HF_RE.test(source);
  const kw = KEYWORD_TRIGGERS.some((w) => source.includes(w)) && KW_RE.test(source);
  const recv = source.includes('recv') && RECV_RE.test(source);
  if (!kw && !hf && !recv && !namesTarget(source) && !dynamicAccess(source)) return false;
  const code = codeOnly(source);
  return KW_RE.test(code) || namesTarget(code) || (hf && HF_ROOT_RE.test(code) && HF_RE.test(code))
    || (RECV_RE.test(code) && /\bmultiprocessing\b/.test(code)) || dynamicAccess(source);
}
