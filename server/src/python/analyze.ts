// Finds unsafe model/data loading calls in one Python program (a file, or a notebook's cells joined) and builds
// their quick-fixes. Offsets are UTF-16 indices into the program text, like tree-sitter's and LSP's.
import type { Node, Tree } from './parser';
import { NameResolver, canonical, dottedChain, escapeRegExp } from './names';
import { CODE_RULE_BY_ID, type CodeSeverity } from './rules';
import * as edits from './edits';
import type { TextEditSpan } from './edits';
import { isSuppressed, suppressionFix } from './suppress';

export type { TextEditSpan } from './edits';

export interface CodeFix {
  title: string;
  edits: TextEditSpan[];
  preferred: boolean;
}

export interface CodeIssue {
  rule: string;
  severity: CodeSeverity;
  message: string;
  start: number;
  end: number;
  fixes: CodeFix[];
  /** First argument when it is a plain string literal naming a file (for the model-file cross-reference). */
  path?: { value: string; start: number; end: number };
  /** torch.load("m.pt"): edits that load "m.safetensors" with safetensors.torch.load_file instead (applied by the
   *  server after it converted the file, so they are not offered as a plain quick-fix). */
  convertEdits?: () => TextEditSpan[];
}

export interface AnalyzeOptions {
  honorNosec?: boolean;
  /** Offsets where notebook cells begin (imports added by a fix go to the right cell). Default [0]. */
  cellStarts?: number[];
  /** Only calls that start in [region[0], region[1]) are analyzed (the rest of the program still resolves names). */
  region?: [number, number];
}

const PICKLE_LOADS = ['load', 'loads', 'Unpickler', '_load', '_loads', '_Unpickler'];
const SIMPLE: Record<string, string> = {
  ...Object.fromEntries(PICKLE_LOADS.map((n) => [`pickle.${n}`, 'SW102'])),
  'dill.load': 'SW103', 'dill.loads': 'SW103', 'dill.Unpickler': 'SW103',
  'cloudpickle.load': 'SW103', 'cloudpickle.loads': 'SW103', 'jsonpickle.decode': 'SW103',
  'joblib.load': 'SW104',
  'pandas.read_pickle': 'SW106',
  'marshal.load': 'SW108', 'marshal.loads': 'SW108',
  'shelve.open': 'SW109', 'shelve.DbfilenameShelf': 'SW109',
  'torch.package.PackageImporter': 'SW114',
  'keras.enable_unsafe_deserialization': 'SW113',
  ...Object.fromEntries(['broadcast_object_list', 'all_gather_object', 'gather_object', 'scatter_object_list', 'recv_object_list']
    .map((n) => [`torch.distributed.${n}`, 'SW115'])),
};
const YAML_UNSAFE_FNS: Record<string, string> = {
  'yaml.unsafe_load': 'safe_load', 'yaml.full_load': 'safe_load',
  'yaml.unsafe_load_all': 'safe_load_all', 'yaml.full_load_all': 'safe_load_all',
};
const YAML_SAFE_LOADERS = new Set(['yaml.SafeLoader', 'yaml.CSafeLoader', 'yaml.BaseLoader', 'yaml.CBaseLoader']);
const SPECIAL = ['torch.load', 'torch.hub.load', 'torch.save', 'numpy.load', 'yaml.load', 'yaml.load_all', 'keras.load_model', 'ruamel.yaml.YAML'];
/** Loads whose first argument is a model/data file the workspace may contain. */
const FILE_LOADERS = new Set(['torch.load', 'joblib.load', 'numpy.load', 'pandas.read_pickle', 'pickle.load', 'keras.load_model', 'dill.load']);
export const KEYWORD_TRIGGERS = ['trust_remote_code', 'use_safetensors'];

const TARGETS = new Set([...Object.keys(SIMPLE), ...Object.keys(YAML_UNSAFE_FNS), ...SPECIAL]);
export const FINAL_NAMES = [...new Set([...TARGETS].map((q) => q.slice(q.lastIndexOf('.') + 1)))];
/** Top-level modules whose import can bring a target into scope, by the canonical root of the target. */
const ROOT_SOURCES: Record<string, string[]> = {
  pickle: ['pickle', 'cPickle', '_pickle', 'pickle5', 'six'], joblib: ['joblib', 'sklearn'],
  keras: ['keras', 'tensorflow', 'tf_keras'],
};
export const NAME_ROOTS = new Map(FINAL_NAMES.map((n) => [n, [...new Set([...TARGETS]
  .filter((q) => q.endsWith(`.${n}`))
  .flatMap((q) => ROOT_SOURCES[q.split('.')[0]] ?? [q.split('.')[0]]))]]));

interface Args {
  list: Node;
  positional: Node[];
  keywords: Map<string, Node>;   // name -> value
  keywordNodes: Map<string, Node>;
  splat: boolean;                // **kwargs present
  all: Node[];                   // every argument node in order
}

function readArgs(call: Node): Args | null {
  const list = call.childForFieldName('arguments');
  if (!list || list.type !== 'argument_list') return null;
  const a: Args = { list, positional: [], keywords: new Map(), keywordNodes: new Map(), splat: false, all: [] };
  for (const n of list.namedChildren) {
    if (!n || n.type === 'comment') continue;
    a.all.push(n);
    if (n.type === 'keyword_argument') {
      const name = n.childForFieldName('name')?.text;
      const value = n.childForFieldName('value');
      if (name && value) {
        a.keywords.set(name, value);
        a.keywordNodes.set(name, n);
      }
    } else if (n.type === 'dictionary_splat') a.splat = true;
    else if (n.type !== 'list_splat') a.positional.push(n);
  }
  return a;
}

/** Literal value of a string node when it has no interpolation. */
function stringValue(n: Node | undefined): string | undefined {
  if (!n || n.type !== 'string') return undefined;
  if (n.namedChildren.some((c) => c?.type === 'interpolation')) return undefined;
  const content = n.namedChildren.filter((c) => c?.type === 'string_content').map((c) => c!.text).join('');
  return content;
}

export function analyzePython(tree: Tree, text: string, opts: AnalyzeOptions = {}): CodeIssue[] {
  const resolver = new NameResolver(tree, text);
  const root = tree.rootNode;
  const calls = new Map<number, Node>();
  const [lo, hi] = opts.region ?? [0, text.length];

  const callOf = (id: Node): Node | null => {
    let callee: Node = id;
    const p = id.parent;
    if (p?.type === 'attribute' && p.childForFieldName('attribute')?.equals(id)) callee = p;
    const c = callee.parent;
    if (c?.type === 'call' && c.childForFieldName('function')?.equals(callee)) return c;
    return null;
  };
  // Textual pre-check (no tree access): `x.y.name(` or `name(` whose dotted head imports could make a target.
  const textuallyLikely = (at: number, name: string): boolean => {
    if (!/^\s*\(/.test(text.slice(at + name.length, at + name.length + 200)) && !aliases.has(name)) {
      // Not called here; still matters when assigned to an alias (`l = torch.load`), found by assignRe.
      return false;
    }
    const chain = [...dottedPrefix(text, at), name];
    if (aliases.has(chain[0])) return true;
    const q = resolver.resolveByImports(chain);
    return q !== null && TARGETS.has(q);
  };
  // One regex pass over the text for all the names of a kind (a pass per name is too slow on big files).
  const scanNames = (names: string[], keyword: boolean): void => {
    if (names.length === 0) return;
    const re = new RegExp(`(?<!\\w)(?:${names.map(escapeRegExp).join('|')})(?!\\w)`, 'g');
    re.lastIndex = lo;
    for (let m = re.exec(text); m && m.index < hi; m = re.exec(text)) {
      const name = m[0];
      if (!keyword && !textuallyLikely(m.index, name)) continue;
      const node = root.descendantForIndex(m.index, m.index + name.length);
      if (!node || node.type !== 'identifier') continue;
      if (keyword) {
        const kw = node.parent;
        const call = kw?.type === 'keyword_argument' ? kw.parent?.parent : null;
        if (call?.type === 'call') calls.set(call.id, call);
      } else {
        const call = callOf(node);
        if (call) calls.set(call.id, call);
      }
    }
  };
  const aliases = aliasNames(resolver, text);
  // Only names some imported module could provide are worth looking at (`open` matters only with shelve).
  const roots = resolver.importRoots();
  scanNames([...FINAL_NAMES.filter((n) => NAME_ROOTS.get(n)!.some((r) => roots.has(r))), ...aliases], false);
  scanNames(KEYWORD_TRIGGERS, true);

  // Hugging Face Hub downloads (SW117): any call named like one, reached through an imported HF library.
  const hfCalls = new Map<number, Node>();
  if (HF_ROOTS.some((r) => roots.has(r))) {
    const re = new RegExp(`(?<!\\w)(?:${HF_DOWNLOADS.join('|')})(?=\\s*\\()`, 'g');
    re.lastIndex = lo;
    for (let m = re.exec(text); m && m.index < hi; m = re.exec(text)) {
      const node = root.descendantForIndex(m.index, m.index + m[0].length);
      const call = node?.type === 'identifier' ? callOf(node) : null;
      if (call) hfCalls.set(call.id, call);
    }
  }

  const issues: CodeIssue[] = [];
  const cellStarts = opts.cellStarts ?? [0];
  for (const call of [...calls.values()].sort((x, y) => x.startIndex - y.startIndex)) {
    const fn = call.childForFieldName('function');
    const args = readArgs(call);
    if (!fn || !args) continue;
    const chain = dottedChain(fn);
    // Cheap check first (imports only, no shadowing analysis); the full resolution runs for likely targets.
    const likely = chain && (aliases.has(chain[0]) || TARGETS.has(resolver.resolveByImports(chain) ?? ''));
    const q = likely ? resolver.resolveChain(chain, fn) : null;
    const ctx: Ctx = { call, fn, args, q, text, tree, resolver, cellStarts, out: issues };
    if (q) checkTarget(ctx);
    checkKeywords(ctx);
  }
  for (const call of [...hfCalls.values()].sort((x, y) => x.startIndex - y.startIndex)) {
    const fn = call.childForFieldName('function');
    const args = readArgs(call);
    const chain = fn ? dottedChain(fn) : null;
    if (!fn || !args || !chain) continue;
    const q = resolver.resolveChain(chain, fn);
    if (!q || !HF_ROOTS.includes(q.split('.')[0])) continue;
    checkRevision({ call, fn, args, q, text, tree, resolver, cellStarts, out: issues });
  }
  issues.sort((a, b) => a.start - b.start);
  return issues
    .filter((i) => i.start >= lo && i.start < hi)
    .filter((i) => !isSuppressed(text, root, i, opts.honorNosec ?? false))
    .map((i) => ({ ...i, fixes: [...i.fixes, suppressionFix(text, i)] }));
}

/** Names imported or assigned from a target (`from torch import load as l`, `l = torch.load`): called by alias. */
function aliasNames(resolver: NameResolver, text: string): Set<string> {
  const aliases = new Set<string>();
  for (const [name, targets] of resolver.importedNames()) {
    if (!FINAL_NAMES.includes(name) && targets.some((t) => TARGETS.has(canonical(t)))) aliases.add(name);
  }
  const assignRe = /^[ \t]*([A-Za-z_]\w*)[ \t]*=[ \t]*([A-Za-z_][\w.]*)[ \t]*(?:#.*)?$/gm;
  for (let m = assignRe.exec(text); m; m = assignRe.exec(text)) {
    const last = m[2].slice(m[2].lastIndexOf('.') + 1);
    if (FINAL_NAMES.includes(last) || aliases.has(m[2])) aliases.add(m[1]);
  }
  return aliases;
}

export interface TextChange { start: number; oldEnd: number; newEnd: number }

// What an edit must not touch for the findings elsewhere to stay valid: imports, `x = a.b` aliases, and
// module-level bindings of names that imports or aliases provide (they change what a name refers to in other
// statements). Suppression comments only act on their own lines, which are re-analyzed with the edit.
const IMPORT_RE = /(?:^|;)[ \t]*(?:import|from)\b/m;
const ALIAS_LINES = /^[ \t]*([A-Za-z_]\w*)[ \t]*=[ \t]*([A-Za-z_][\w.]*)[ \t]*(?:#.*)?$/gm;
const IDENT_RE = /[A-Za-z_]\w*/g;
const DEFINITIONS = new Set(['function_definition', 'class_definition', 'decorated_definition']);

/** Names a piece of code may bind, over-approximated from its text (assignment targets, def/class names,
 *  loop/with/except/walrus targets, global/nonlocal, lambda and case lines). */
function boundNames(code: string, out: Set<string>): void {
  const idents = (s: string) => { for (const m of s.matchAll(IDENT_RE)) out.add(m[0]); };
  for (const line of code.split('\n')) {
    const eq = /(?<![=<>!:+\-*/%&|^@])=(?!=)/.exec(line);
    if (eq) idents(line.slice(0, eq.index));
    for (const m of line.matchAll(/\b(?:def|class)\s+([A-Za-z_]\w*)/g)) out.add(m[1]);
    for (const m of line.matchAll(/\bfor\b(.*?)\bin\b/g)) idents(m[1]);
    for (const m of line.matchAll(/\bas\s+([A-Za-z_]\w*)/g)) out.add(m[1]);
    for (const m of line.matchAll(/([A-Za-z_]\w*)\s*:=/g)) out.add(m[1]);
    for (const m of line.matchAll(/([A-Za-z_]\w*)\s*(?:\*\*|\/\/|>>|<<|[-+*/%&|^@])=/g)) out.add(m[1]);
    if (/\b(?:global|nonlocal|lambda|case|del)\b/.test(line)) idents(line);
  }
}

/** Names the top-level statements in [lo, hi) bind in the module scope, as the name resolver sees it: a
 *  def or class binds its name (what its body binds stays in its own scope); other statements are read
 *  textually, over-approximated. */
function moduleBindings(tree: Tree, text: string, lo: number, hi: number, out: Set<string>): void {
  const root = tree.rootNode;
  let covered = lo;
  for (let n = root.firstChildForIndex(lo); n && n.startIndex < hi; n = n.nextSibling) {
    if (n.startIndex > covered) boundNames(text.slice(covered, n.startIndex), out);
    if (DEFINITIONS.has(n.type)) {
      const def = n.type === 'decorated_definition' ? n.childForFieldName('definition') : n;
      const name = def?.childForFieldName('name');
      if (name) out.add(name.text); else boundNames(n.text, out);
      boundNames(text.slice(n.startIndex, (def?.childForFieldName('body') ?? n).startIndex), out);   // the header
    } else boundNames(text.slice(n.startIndex, Math.min(n.endIndex, hi)), out);
    covered = Math.max(covered, n.endIndex);
  }
  if (covered < hi) boundNames(text.slice(covered, hi), out);
}

function lineStart(text: string, at: number): number { return text.lastIndexOf('\n', at - 1) + 1; }
function lineEnd(text: string, at: number): number { const i = text.indexOf('\n', at); return i < 0 ? text.length : i + 1; }

/**
 * Findings for `text` after one edit, reusing `prev` (the findings of the text before it) outside the lines
 * and top-level statements the edit and the re-parse touched: only calls in those are analyzed again.
 * Returns undefined when the edit could change how names resolve elsewhere; the caller then analyzes the
 * whole program. `changed`: the parse tree's changed ranges (new text offsets); `oldTree`: the tree of
 * prev.text. `refresh` rebuilds the on-demand edits of a reused finding (they refer to the tree of the
 * analysis that made them).
 */
export function analyzePythonAfterEdit(prev: { text: string; issues: CodeIssue[] }, oldTree: Tree, tree: Tree, text: string,
  change: TextChange, changed: { startIndex: number; endIndex: number }[], opts: AnalyzeOptions,
  refresh: (start: number, rule: string) => CodeIssue | undefined): CodeIssue[] | undefined {
  const delta = change.newEnd - change.oldEnd;
  if (prev.text.length + delta !== text.length || opts.cellStarts) return undefined;
  let lo = change.start, hi = change.newEnd;
  for (const r of changed) { lo = Math.min(lo, r.startIndex); hi = Math.max(hi, r.endIndex); }
  lo = Math.max(0, lo); hi = Math.min(hi, text.length);
  // widen to whole lines and whole top-level statements, in the new text and the old one, until stable
  const root = tree.rootNode, oldRoot = oldTree.rootNode;
  for (let round = 0; ; round++) {
    const was = [lo, hi];
    lo = lineStart(text, lo); hi = lineEnd(text, Math.max(lo, hi - 1));
    for (const [r, d] of [[root, 0], [oldRoot, delta]] as const) {
      const first = r.firstChildForIndex(lo);
      if (first && first.startIndex < lo) lo = first.startIndex;
      const last = r.firstChildForIndex(Math.max(lo, hi - d - 1));
      if (last && last.startIndex < hi - d && last.endIndex + d > hi) hi = Math.min(text.length, last.endIndex + d);
    }
    if (was[0] === lo && was[1] === hi) break;
    if (round === 64) return undefined;
  }
  const oldHi = hi - delta;
  if (oldHi < change.oldEnd || lo > change.start || hi > text.length) return undefined;
  const before = prev.text.slice(lo, oldHi), after = text.slice(lo, hi);
  for (const code of [before, after]) if (IMPORT_RE.test(code)) return undefined;
  const resolver = new NameResolver(tree, text);
  const aliases = aliasNames(resolver, text);
  // `x = a.b` lines matter when they make an alias (of a target's name, or of another alias)
  for (const code of [before, after]) {
    for (const m of code.matchAll(ALIAS_LINES)) {
      if (FINAL_NAMES.includes(m[2].slice(m[2].lastIndexOf('.') + 1)) || aliases.has(m[2])) return undefined;
    }
  }
  const sensitive = new Set<string>(resolver.importBoundNames());
  for (const name of aliases) sensitive.add(name);
  if (resolver.hasStarImports()) for (const n of resolver.starNames()) sensitive.add(n);
  const bound = new Set<string>();
  moduleBindings(oldTree, prev.text, lo, oldHi, bound);
  moduleBindings(tree, text, lo, hi, bound);
  for (const n of bound) if (sensitive.has(n)) return undefined;
  // reuse what lies wholly before or after the edited statements
  const shift = (x: number): number | undefined => (x <= lo ? x : x >= oldHi ? x + delta : undefined);
  const kept: CodeIssue[] = [];
  for (const i of prev.issues) {
    if (i.end <= lo || i.start >= oldHi) {
      const start = shift(i.start)!, end = shift(i.end)!;
      const fixes: CodeFix[] = [];
      for (const f of i.fixes) {
        const es: TextEditSpan[] = [];
        for (const e of f.edits) {
          const s = shift(e.start), t = shift(e.end);
          if (s === undefined || t === undefined) return undefined;
          es.push({ start: s, end: t, newText: e.newText });
        }
        fixes.push({ ...f, edits: es });
      }
      const moved: CodeIssue = { ...i, start, end, fixes };
      if (i.path) moved.path = { value: i.path.value, start: shift(i.path.start)!, end: shift(i.path.end)! };
      if (i.convertEdits) moved.convertEdits = () => refresh(start, i.rule)?.convertEdits?.() ?? [];
      kept.push(moved);
    } else if (i.start < lo || i.end > oldHi) return undefined;   // straddles the edited statements
  }
  const fresh = analyzePython(tree, text, { ...opts, region: [lo, hi] });
  return [...kept, ...fresh].sort((a, b) => a.start - b.start);
}


interface Ctx {
  call: Node;
  fn: Node;
  args: Args;
  q: string | null;
  text: string;
  tree: Tree;
  resolver: NameResolver;
  cellStarts: number[];
  out: CodeIssue[];
}

function report(ctx: Ctx, rule: string, message: string, fixes: CodeFix[] = [], severity?: CodeSeverity): void {
  const def = CODE_RULE_BY_ID.get(rule)!;
  const issue: CodeIssue = {
    rule, severity: severity ?? def.severity, message, start: ctx.call.startIndex, end: ctx.call.endIndex, fixes,
  };
  const first = ctx.args.positional[0];
  const value = stringValue(first);
  if (ctx.q && FILE_LOADERS.has(ctx.q) && first && value) issue.path = { value, start: first.startIndex, end: first.endIndex };
  ctx.out.push(issue);
}

const isTrue = (n: Node | undefined): boolean => n?.type === 'true';
const isFalse = (n: Node | undefined): boolean => n?.type === 'false';

function checkTarget(ctx: Ctx): void {
  const { q, args, text } = ctx;
  if (!q) return;
  const simple = SIMPLE[q];
  if (simple) {
    report(ctx, simple, `${q}: ${CODE_RULE_BY_ID.get(simple)!.short}`);
    return;
  }
  const renamed = YAML_UNSAFE_FNS[q];
  if (renamed) {
    const fixes = ctx.fn.type === 'attribute'
      ? [{ title: `Use yaml.${renamed}`, preferred: true, edits: [edits.replaceNode(ctx.fn.childForFieldName('attribute')!, renamed)] }]
      : [];
    report(ctx, 'SW107', `${q} can construct arbitrary Python objects from the document: use yaml.${renamed}.`, fixes);
    return;
  }
  switch (q) {
    case 'torch.load': {
      const wo = args.keywords.get('weights_only');
      if (isTrue(wo)) return;
      if (isFalse(wo)) {
        report(ctx, 'SW101', 'torch.load(weights_only=False) unpickles arbitrary objects: a crafted checkpoint runs code. Use weights_only=True.',
          [{ title: 'Set weights_only=True', preferred: true, edits: [edits.replaceNode(wo!, 'True')] }], 'dangerous');
      } else if (wo) {
        report(ctx, 'SW101', 'torch.load: weights_only is not the literal True here; when it is False the checkpoint can run code.',
          [{ title: 'Set weights_only=True', preferred: false, edits: [edits.replaceNode(wo, 'True')] }]);
      } else {
        const why = args.splat
          ? 'torch.load(..., **kwargs) without a visible weights_only=True: the unpacked options may allow arbitrary unpickling.'
          : 'torch.load without weights_only=True: before torch 2.6 this unpickles arbitrary objects and a crafted checkpoint runs code.';
        report(ctx, 'SW101', `${why} Add weights_only=True.`,
          [{ title: 'Add weights_only=True', preferred: !args.splat, edits: [edits.addKeyword(text, args.list, args.all, 'weights_only=True')] }]);
      }
      const issue = ctx.out[ctx.out.length - 1];
      const first = args.positional[0];
      if (issue?.rule === 'SW101' && first && !args.splat && /\.(pt|pth|bin|ckpt)$/i.test(stringValue(first) ?? '')) {
        // built on demand: most keystrokes never ask for this fix
        const c = { ...ctx };
        issue.convertEdits = () => loadFileEdits(c, first);
      }
      return;
    }
    case 'torch.hub.load': {
      const trust = args.keywords.get('trust_repo');
      if (isTrue(trust)) {
        report(ctx, 'SW110', 'torch.hub.load(trust_repo=True) runs hubconf.py from the repository without asking. Review and pin the repository, and drop trust_repo=True.',
          [{ title: 'Remove trust_repo=True', preferred: false, edits: [edits.removeArgument(text, args.all, args.keywordNodes.get('trust_repo')!)] }], 'dangerous');
      } else {
        report(ctx, 'SW110', 'torch.hub.load imports and runs hubconf.py from the repository: load only reviewed repositories pinned to a commit.');
      }
      return;
    }
    case 'torch.save': {
      const fixes: CodeFix[] = [];
      const [obj, dest] = args.positional;
      if (args.all.length === 2 && obj && dest && isStateDictCall(obj)) {
        fixes.push({ title: 'Save with safetensors.torch.save_file', preferred: false, edits: saveFileEdits(ctx, dest) });
      }
      report(ctx, 'SW120', 'torch.save writes a pickle that whoever loads it must trust: prefer safetensors.torch.save_file for weights.', fixes);
      return;
    }
    case 'numpy.load': {
      const ap = args.keywords.get('allow_pickle');
      if (!isTrue(ap)) return;
      report(ctx, 'SW105', 'numpy.load(allow_pickle=True) unpickles object arrays and can run code: drop allow_pickle=True for numeric data.',
        [{ title: 'Remove allow_pickle=True', preferred: true, edits: [edits.removeArgument(text, args.all, args.keywordNodes.get('allow_pickle')!)] }]);
      return;
    }
    case 'yaml.load':
    case 'yaml.load_all': {
      const loader = args.keywords.get('Loader') ?? args.positional[1];
      const safeName = q === 'yaml.load' ? 'safe_load' : 'safe_load_all';
      if (loader) {
        const chain = dottedChain(loader);
        const lq = chain ? ctx.resolver.resolveChain(chain, loader) : null;
        if (lq && YAML_SAFE_LOADERS.has(lq)) return;
        const yamlAlias = ctx.fn.type === 'attribute' ? ctx.fn.childForFieldName('object')!.text : 'yaml';
        const known = lq !== null;
        report(ctx, 'SW107', known
          ? `${q} with ${lq!.replace(/^yaml\./, '')} can construct arbitrary Python objects: use Loader=yaml.SafeLoader.`
          : `${q} with a Loader that is not a known safe loader: use yaml.SafeLoader.`,
        [{ title: 'Use Loader=yaml.SafeLoader', preferred: known && ctx.fn.type === 'attribute', edits: [edits.replaceNode(loader, `${yamlAlias}.SafeLoader`)] }],
        known ? 'dangerous' : 'caution');
      } else {
        const fixes = ctx.fn.type === 'attribute'
          ? [{ title: `Use yaml.${safeName}`, preferred: true, edits: [edits.replaceNode(ctx.fn.childForFieldName('attribute')!, safeName)] }]
          : [];
        report(ctx, 'SW107', `${q} without a safe Loader can construct arbitrary Python objects: use yaml.${safeName}.`, fixes);
      }
      return;
    }
    case 'keras.load_model': {
      const sm = args.keywords.get('safe_mode');
      if (!isFalse(sm)) return;
      report(ctx, 'SW113', 'load_model(safe_mode=False) lets the model file run Lambda-layer code: keep safe_mode=True.',
        [{ title: 'Set safe_mode=True', preferred: false, edits: [edits.replaceNode(sm!, 'True')] }]);
      return;
    }
    case 'ruamel.yaml.YAML': {
      const typ = stringValue(args.keywords.get('typ'));
      if (typ !== 'unsafe') return;
      const node = args.keywords.get('typ')!;
      report(ctx, 'SW116', 'ruamel.yaml YAML(typ="unsafe") constructs arbitrary Python objects: use typ="safe".',
        [{ title: 'Use typ="safe"', preferred: false, edits: [edits.replaceNode(node, node.text.replace('unsafe', 'safe'))] }]);
      return;
    }
  }
}

export const HF_ROOTS = ['transformers', 'huggingface_hub', 'datasets', 'diffusers', 'sentence_transformers', 'peft', 'timm', 'optimum'];
export const HF_DOWNLOADS = ['from_pretrained', 'hf_hub_download', 'snapshot_download', 'load_dataset'];

/** SW117: a Hub download must pin revision= to a commit; local paths are not downloads. */
function checkRevision(ctx: Ctx): void {
  const { args } = ctx;
  const repo = stringValue(args.positional[0] ?? args.keywords.get('pretrained_model_name_or_path') ?? args.keywords.get('repo_id') ?? args.keywords.get('path'));
  if (repo !== undefined && (/^[./~]/.test(repo) || repo.startsWith('/') || /\.(json|csv|parquet|txt)$/i.test(repo))) return;
  if (args.splat) return;   // **kwargs may carry revision=
  const rev = args.keywords.get('revision');
  const name = ctx.q?.split('.').pop() ?? 'download';
  if (!rev) {
    report(ctx, 'SW117', `${name} downloads from the Hugging Face Hub without revision=: the repository can change after you reviewed it. Pin revision="<commit hash>".`);
    return;
  }
  const value = stringValue(rev);
  if (value !== undefined && !/^[0-9a-f]{40}$/.test(value)) {
    report(ctx, 'SW117', `${name}(revision="${value}"): a branch or tag can move; pin a 40-character commit hash.`);
  }
}

function checkKeywords(ctx: Ctx): void {
  const { args } = ctx;
  const trc = args.keywords.get('trust_remote_code');
  if (isTrue(trc)) {
    report(ctx, 'SW111', 'trust_remote_code=True downloads and runs Python code from the model repository: use a built-in architecture or review the code and pin revision=<commit>.',
      [{ title: 'Set trust_remote_code=False', preferred: false, edits: [edits.replaceNode(trc!, 'False')] }]);
  }
  const us = args.keywords.get('use_safetensors');
  if (isFalse(us)) {
    report(ctx, 'SW112', 'use_safetensors=False loads pickle weights (pytorch_model.bin) that can run code: use safetensors.',
      [{ title: 'Set use_safetensors=True', preferred: false, edits: [edits.replaceNode(us!, 'True')] }]);
  }
}

function isStateDictCall(n: Node): boolean {
  if (n.type !== 'call') return false;
  const f = n.childForFieldName('function');
  return f?.type === 'attribute' && f.childForFieldName('attribute')?.text === 'state_dict';
}

/** Name to call safetensors.torch.<fn> by, plus the import edit when none exists yet. */
function safetensorsCallee(ctx: Ctx, fn: 'save_file' | 'load_file', out: TextEditSpan[]): string {
  // Reuse an existing `import safetensors.torch [as x]` / `from safetensors.torch import save_file [as y]`.
  for (const [name, targets] of ctx.resolver.importedNames()) {
    if (targets.includes(`safetensors.torch.${fn}`)) return name;
  }
  for (const stmt of ctx.resolver.importStatements) {
    if (/^import\s+safetensors\.torch\s*$/.test(stmt.text)) return `safetensors.torch.${fn}`;
  }
  out.push(edits.addImport(ctx.text, ctx.tree, ctx.resolver.importStatements, ctx.cellStarts, ctx.call.startIndex, 'import safetensors.torch'));
  return `safetensors.torch.${fn}`;
}

/** The edit that turns the extension inside a path string literal into .safetensors. */
function safetensorsPathEdit(dest: Node): TextEditSpan | undefined {
  const value = stringValue(dest);
  if (value === undefined || !/\.(pt|pth|bin|ckpt|pkl)$/i.test(value)) return undefined;
  const content = dest.namedChildren.find((c) => c?.type === 'string_content');
  const ext = content ? /\.[A-Za-z]+$/.exec(content.text) : null;
  return content && ext ? { start: content.endIndex - ext[0].length, end: content.endIndex, newText: '.safetensors' } : undefined;
}

/** torch.save(m.state_dict(), "m.pt") -> safetensors.torch.save_file(m.state_dict(), "m.safetensors") + import. */
function saveFileEdits(ctx: Ctx, dest: Node): TextEditSpan[] {
  const out: TextEditSpan[] = [];
  out.push(edits.replaceNode(ctx.fn, safetensorsCallee(ctx, 'save_file', out)));
  const pathEdit = safetensorsPathEdit(dest);
  if (pathEdit) out.push(pathEdit);
  return out.sort((a, b) => a.start - b.start);
}

/** torch.load("m.pt", map_location="cpu") -> safetensors.torch.load_file("m.safetensors", device="cpu") + import. */
function loadFileEdits(ctx: Ctx, path: Node): TextEditSpan[] {
  const out: TextEditSpan[] = [];
  out.push(edits.replaceNode(ctx.fn, safetensorsCallee(ctx, 'load_file', out)));
  const pathEdit = safetensorsPathEdit(path);
  const loc = ctx.args.keywords.get('map_location') ?? ctx.args.positional[1];
  const device = loc && (loc.type === 'string' || loc.type === 'identifier' || loc.type === 'call') ? `, device=${loc.text}` : '';
  // the arguments become (path[, device=...]): other torch.load options have no load_file counterpart
  const pathText = pathEdit ? ctx.text.slice(path.startIndex, pathEdit.start) + '.safetensors' + ctx.text.slice(pathEdit.end, path.endIndex) : path.text;
  out.push({ start: ctx.args.list.startIndex, end: ctx.args.list.endIndex, newText: `(${pathText}${device})` });
  return out.sort((a, b) => a.start - b.start);
}

const isIdent = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c > 127;
const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13 || c === 92;

/** The dotted names written just before `at` (`a.b.` before `load` gives ['a', 'b']), read backwards. */
function dottedPrefix(text: string, at: number): string[] {
  const out: string[] = [];
  let i = at - 1;
  for (;;) {
    while (i >= 0 && isSpace(text.charCodeAt(i))) i--;
    if (i < 0 || text.charCodeAt(i) !== 46 /* . */) break;
    i--;
    while (i >= 0 && isSpace(text.charCodeAt(i))) i--;
    const end = i + 1;
    while (i >= 0 && isIdent(text.charCodeAt(i))) i--;
    if (i + 1 === end) break;
    out.unshift(text.slice(i + 1, end));
  }
  return out;
}
