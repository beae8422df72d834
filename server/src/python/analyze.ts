// Finds unsafe model/data loading calls in one Python program (a file, or a notebook's cells joined) and builds
// their quick-fixes. Offsets are UTF-16 indices into the program text, like tree-sitter's and LSP's.
import type { Node } from './parser';
import { descend, firstTop, nextTop, type Program } from './forest';
import { BUILTIN_NAMES, CANONICAL, NameResolver, WELL_KNOWN_MODULES, ancestor, canonical, carryBodies, constantString, dottedChain, escapeRegExp, type BodySpan } from './names';
import { classifyGlobal } from '../models/policy/classify';
import { CODE_RULE_BY_ID, type CodeSeverity } from './rules';
import * as edits from './edits';
import type { TextEditSpan } from './edits';
import { fileSuppressionFix, fileSuppressions, isSuppressed, suppressionFix } from './suppress';
import { textMemo } from './textMemo';
import { importsOnlyInFunctions } from './localImports';
import type { LoadSite } from './loadFixes';

export type { TextEditSpan } from './edits';

export interface CodeFix {
  title: string;
  edits: TextEditSpan[];
  preferred: boolean;
  /** What the fix relies on, for fixes chosen by the file a load names (python/fileFixes.ts): 'weights-only' works
   *  only if the file loads with weights_only=True; 'suppress' silences the finding. */
  role?: 'weights-only' | 'safe-globals' | 'suppress';
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
  /** torch.load("m.pt"): what the fixes that depend on the file need (python/loadFixes.ts), built on demand. */
  loadSite?: () => LoadSite | undefined;
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
  'cloudpickle.load': 'SW103', 'cloudpickle.loads': 'SW103', 'jsonpickle.decode': 'SW103', 'jsonpickle.loads': 'SW103',
  'jsonpickle.Unpickler': 'SW103',
  'joblib.load': 'SW104',
  'pandas.read_pickle': 'SW106',
  'marshal.load': 'SW108', 'marshal.loads': 'SW108',
  'shelve.open': 'SW109', 'shelve.DbfilenameShelf': 'SW109',
  'torch.package.PackageImporter': 'SW114',
  'keras.enable_unsafe_deserialization': 'SW113',
  'msgpack_numpy.patch': 'SW118',
  'torch.jit.load': 'SW121',
  ...Object.fromEntries(['broadcast_object_list', 'all_gather_object', 'gather_object', 'scatter_object_list', 'recv_object_list']
    .map((n) => [`torch.distributed.${n}`, 'SW115'])),
};
const SIMPLE_MESSAGES: Record<string, string> = {
  'msgpack_numpy.patch': 'msgpack_numpy.patch() makes every later msgpack unpack/unpackb/load/loads decode object arrays with pickle.loads: a crafted message runs code.',
  'torch.jit.load': 'torch.jit.load runs the TorchScript code stored in the archive (and loads its constants with TorchScript\'s own unpickler): load only archives you built, or ship weights as .safetensors.',
};
const YAML_UNSAFE_FNS: Record<string, string> = {
  'yaml.unsafe_load': 'safe_load', 'yaml.full_load': 'safe_load',
  'yaml.unsafe_load_all': 'safe_load_all', 'yaml.full_load_all': 'safe_load_all',
};
const YAML_SAFE_LOADERS = new Set(['yaml.SafeLoader', 'yaml.CSafeLoader', 'yaml.BaseLoader', 'yaml.CBaseLoader']);
/** numpy loaders that unpickle object arrays when allow_pickle is truthy, with allow_pickle's positional index. */
const NUMPY_LOADS: Record<string, number> = { 'numpy.load': 2, 'numpy.lib.format.read_array': 1 };
const MSGPACK_UNPACK = ['msgpack.unpackb', 'msgpack.unpack', 'msgpack.loads', 'msgpack.load', 'msgpack.Unpacker'];
const MSGPACK_NUMPY_UNPACK = MSGPACK_UNPACK.map((q) => q.replace('msgpack.', 'msgpack_numpy.'));
const MANAGERS = ['multiprocessing.managers.BaseManager', 'multiprocessing.managers.SyncManager', 'multiprocessing.managers.SharedMemoryManager'];
const SPECIAL = ['torch.load', 'torch.hub.load', 'torch.save', ...Object.keys(NUMPY_LOADS), 'yaml.load', 'yaml.load_all',
  'yaml.safe_load', 'yaml.safe_load_all', 'keras.load_model', 'ruamel.yaml.YAML', ...MSGPACK_UNPACK, ...MSGPACK_NUMPY_UNPACK,
  'torch.add_safe_globals', 'torch.safe_globals', ...MANAGERS];
/** Loads whose first argument is a model/data file the workspace may contain. */
const FILE_LOADERS = new Set(['torch.load', 'joblib.load', 'numpy.load', 'pandas.read_pickle', 'pickle.load', 'keras.load_model', 'dill.load', 'torch.jit.load']);
/** Rules of loads that unpickle (or construct objects): an except handler that runs one is an unsafe fallback. */
const FALLBACK_RULES = new Set(['SW101', 'SW102', 'SW103', 'SW104', 'SW105', 'SW106', 'SW107', 'SW108', 'SW118']);
/** Calls that only look at a function object they are given (they never call it). */
const INSPECTING_CALLS = new Set(['builtins.isinstance', 'builtins.issubclass', 'builtins.id', 'builtins.repr', 'builtins.str',
  'builtins.print', 'builtins.type', 'builtins.hasattr', 'builtins.callable', 'builtins.hash', 'builtins.getattr', 'builtins.setattr',
  'builtins.delattr', 'builtins.len', 'builtins.vars', 'builtins.dir', 'inspect.signature', 'inspect.getsource', 'inspect.getdoc',
  'typing.cast', 'functools.wraps', 'functools.update_wrapper']);
export const KEYWORD_TRIGGERS = ['trust_remote_code', 'use_safetensors'];
const KEYWORD_TRIGGER_SET = new Set(KEYWORD_TRIGGERS);

const TARGETS = new Set([...Object.keys(SIMPLE), ...Object.keys(YAML_UNSAFE_FNS), ...SPECIAL]);
export const FINAL_NAMES = [...new Set([...TARGETS].map((q) => q.slice(q.lastIndexOf('.') + 1)))];
/** Every module (or class) a target lives in: `x = pickle` or `pk = import_module("pickle")` makes an alias. */
const TARGET_PREFIXES = new Set([...TARGETS].flatMap((q) => q.split('.').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('.'))));
/** Top-level modules whose import can bring a target into scope, by the canonical root of the target. */
const ROOT_SOURCES: Record<string, string[]> = {
  pickle: ['pickle', 'cPickle', '_pickle', 'pickle5', 'six'], joblib: ['joblib', 'sklearn'],
  keras: ['keras', 'tensorflow', 'tf_keras'], multiprocessing: ['multiprocessing', 'torch'],
  numpy: ['numpy', 'np'], pandas: ['pandas', 'pd'],
};
export const NAME_ROOTS = new Map(FINAL_NAMES.map((n) => [n, [...new Set([...TARGETS]
  .filter((q) => q.endsWith(`.${n}`))
  .flatMap((q) => ROOT_SOURCES[q.split('.')[0]] ?? [q.split('.')[0]]))]]));
/** Words of dynamic access by a constant string (`getattr(m, "load")`, `import_module("pickle")`, ...). */
const DYNAMIC_WORDS = ['getattr', 'vars', 'globals', 'locals', '__import__', 'import_module', 'modules', '__dict__'];
const DYNAMIC_WORD_SET = new Set(DYNAMIC_WORDS);
const SELF_NAMES = new Set(['self', 'cls']);

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

/** How Python's truth test sees a constant: true/false for literals, undefined when it depends on run time. */
function truthiness(n: Node | undefined): boolean | undefined {
  if (!n) return undefined;
  switch (n.type) {
    case 'true': return true;
    case 'false': case 'none': return false;
    case 'integer': case 'float': return !/^[0_]*(?:\.[0_]*)?(?:[eE][-+]?\d+)?[jJ]?$|^0[xXoObB][0_]*$/.test(n.text.replace(/[lL]$/, ''));
    case 'string': case 'concatenated_string': {
      const v = constantString(n);
      return v === undefined ? undefined : v.length > 0;
    }
    case 'list': case 'tuple': case 'set': case 'dictionary':
      return n.namedChildren.some((c) => c && c.type !== 'comment') ? true : false;
    case 'parenthesized_expression': {
      const inner = n.namedChildren.filter((c) => c && c.type !== 'comment');
      return inner.length === 1 ? truthiness(inner[0]!) : undefined;
    }
    case 'unary_operator': {
      const arg = n.childForFieldName('argument');
      const op = n.childForFieldName('operator')?.text ?? n.text[0];
      if (op === 'not') return undefined;
      return arg && (arg.type === 'integer' || arg.type === 'float') ? truthiness(arg) : undefined;
    }
    case 'not_operator': {
      const t = truthiness(n.childForFieldName('argument') ?? undefined);
      return t === undefined ? undefined : !t;
    }
    default: return undefined;
  }
}

/** Constant value of a literal, or of a name bound once to one before (`path = "m.h5"`). */
function constantOf(ctx: Ctx, n: Node | undefined): string | undefined {
  const v = constantString(n);
  if (v !== undefined || !n || n.type !== 'identifier') return v;
  const b = ctx.resolver.bindingOf(n.text, n);
  return b?.value && b.index === undefined ? constantString(b.value) : undefined;
}

/** Constant strings worth following in dynamic access: the targets' names and the components of their modules. */
const FOLLOWED = new Set([...FINAL_NAMES, ...[...TARGETS].flatMap((q) => q.split('.')), ...Object.keys(WELL_KNOWN_MODULES),
  ...Object.values(ROOT_SOURCES).flat()]);
const followed = (name: string): boolean => FOLLOWED.has(name);

/** The name resolution of one program text, shared by the incremental path and the analysis it runs. */
interface Prepared { resolver: NameResolver; aliases: Aliases }

function prepare(tree: Program, text: string, region?: [number, number], bodies?: BodySpan[]): Prepared {
  const resolver = new NameResolver(tree, text, region, bodies);
  resolver.followed = followed;
  return { resolver, aliases: aliasNames(resolver, text) };
}

export function analyzePython(tree: Program, text: string, opts: AnalyzeOptions = {}, prepared?: Prepared): CodeIssue[] {
  const { resolver, aliases: { all: aliases, modules: moduleAliases } } = prepared ?? prepare(tree, text);
  const calls = new Map<number, Node>();
  const refs = new Map<number, Node>();
  const [lo, hi] = opts.region ?? [0, text.length];

  const callOf = (id: Node): Node | null => {
    let callee: Node = id;
    const p = id.parent;
    if (p?.type === 'attribute' && p.childForFieldName('attribute')?.equals(id)) callee = p;
    const c = callee.parent;
    if (c?.type === 'call' && c.childForFieldName('function')?.equals(callee)) return c;
    return null;
  };
  // Textual pre-check (no tree access): `x.y.name` whose dotted head imports or aliases could make a target.
  // Only a positive answer is recorded in the resolver's deps. A negative one stays negative over any edit of
  // imports that analyzePythonAfterEdit keeps incremental: such an edit mentions no guarded name, and a dotted head
  // resolves to a target only through an import of a guarded module, an unbound well-known module (guarded) or a
  // star import (refused). So `import json` edited, with `json.loads` in every function, re-analyses the import only.
  const textuallyLikely = (at: number, name: string): boolean => {
    const chain = [...dottedPrefix(text, at), name];
    if (aliases.has(chain[0])) return true;
    if (chain.length === 2 && SELF_NAMES.has(chain[0]) && aliases.has(name)) return true;
    const q = resolver.resolveByImports(chain);
    const likely = q !== null && TARGETS.has(q);
    if (likely) resolver.noteUse(chain[0], at);
    return likely;
  };
  // Only names some imported module could provide are worth looking at (`open` matters only with shelve); the
  // well-known modules count as imported (a notebook or snippet may use `np.load` without `import numpy`).
  const roots = resolver.importRoots();
  for (const m of Object.values(WELL_KNOWN_MODULES)) roots.add(m);
  const targetNames = new Set([...FINAL_NAMES.filter((n) => NAME_ROOTS.get(n)!.some((r) => roots.has(r))), ...[...aliases].filter((a) => !moduleAliases.has(a))]);
  const recvCalls: Node[] = [];
  const mp = roots.has('multiprocessing');
  // One regex pass over the text for every word that matters (a pass per name, or per kind, is too slow on
  // big files): target names and aliases, flagged keywords, dynamic access, and (with multiprocessing) recv.
  const words = new Set([...targetNames, ...KEYWORD_TRIGGERS, ...DYNAMIC_WORDS, ...(mp ? ['recv'] : [])]);
  const re = new RegExp(`(?<!\\w)(?:${[...words].map(escapeRegExp).join('|')})(?!\\w)`, 'g');
  re.lastIndex = lo;
  for (let m = re.exec(text); m && m.index < hi; m = re.exec(text)) {
    const name = m[0];
    const at = m.index;
    if (KEYWORD_TRIGGER_SET.has(name)) {
      const node = descend(tree, at, at + name.length);
      const kw = node?.type === 'identifier' ? node.parent : null;
      const call = kw?.type === 'keyword_argument' ? kw.parent?.parent : null;
      if (call?.type === 'call') calls.set(call.id, call);
      continue;
    }
    if (DYNAMIC_WORD_SET.has(name)) {
      // constant-string dynamic access: every call along `importlib.import_module("pickle").loads(b)` is a
      // candidate, and the expression itself is a value when nothing calls it
      const next = /^[ \t]*(.)/.exec(text.slice(at + name.length, at + name.length + 20))?.[1];
      if (next === '(' || next === '[') {
        let cur = descend(tree, at, at + 1);
        if (cur?.type === 'identifier') {
          for (let p = cur.parent; p; p = cur.parent) {
            if (p.type === 'attribute' && (p.childForFieldName('object')?.equals(cur) || p.childForFieldName('attribute')?.equals(cur))) cur = p;
            else if (p.type === 'call' && p.childForFieldName('function')?.equals(cur)) { cur = p; calls.set(p.id, p); }
            else if (p.type === 'subscript' && p.childForFieldName('value')?.equals(cur)) cur = p;
            else break;
          }
          refs.set(cur.id, cur);
        }
      }
      if (!targetNames.has(name)) continue;
    }
    if (name === 'recv' && mp) {
      // multiprocessing: Connection.recv() unpickles what the other end sent
      const node = descend(tree, at, at + 4);
      const call = node?.type === 'identifier' ? callOf(node) : null;
      if (call && call.childForFieldName('function')?.type === 'attribute') recvCalls.push(call);
      if (!targetNames.has(name)) continue;
    }
    if (!textuallyLikely(at, name)) continue;
    const node = descend(tree, at, at + name.length);
    if (!node || node.type !== 'identifier') continue;
    const call = callOf(node);
    if (call) calls.set(call.id, call);
    else {
      // a value, not a call: passed, stored or wrapped (checked below)
      const p = node.parent;
      const ref = p?.type === 'attribute' && p.childForFieldName('attribute')?.equals(node) ? p : node;
      refs.set(ref.id, ref);
    }
  }

  // Hugging Face Hub downloads (SW117): any call named like one, reached through an imported HF library.
  const hfCalls = new Map<number, Node>();
  if (HF_ROOTS.some((r) => roots.has(r))) {
    const re = new RegExp(`(?<!\\w)(?:${HF_DOWNLOADS.join('|')})(?=\\s*\\()`, 'g');
    re.lastIndex = lo;
    for (let m = re.exec(text); m && m.index < hi; m = re.exec(text)) {
      const node = descend(tree, m.index, m.index + m[0].length);
      const call = node?.type === 'identifier' ? callOf(node) : null;
      if (call) hfCalls.set(call.id, call);
    }
  }

  const issues: CodeIssue[] = [];
  const cellStarts = opts.cellStarts ?? [0];
  const fileWide = fileSuppressions(text, tree);
  const firstCell = cellStarts[0] ?? 0;
  const safeLoads: SafeLoad[] = [];
  const base = { text, tree, resolver, cellStarts, out: issues, safeLoads, facts: factsOf(text) };
  for (const call of [...calls.values()].sort((x, y) => x.startIndex - y.startIndex)) {
    const fn = call.childForFieldName('function');
    const args = readArgs(call);
    if (!fn || !args) continue;
    const q = calleeName(resolver, aliases, fn);
    const ctx: Ctx = { ...base, call, fn, args, q };
    if (q) checkTarget(ctx);
    checkKeywords(ctx);
  }
  for (const ref of [...refs.values()].sort((x, y) => x.startIndex - y.startIndex)) {
    const q = resolver.resolveValue(ref);
    if (!q || !TARGETS.has(q)) continue;
    const use = escapeOf(resolver, ref);
    if (!use) continue;
    const args: Args = use.args ?? { list: ref, positional: [], keywords: new Map(), keywordNodes: new Map(), splat: false, all: [] };
    checkTarget({ ...base, call: use.node, fn: ref, args, q, virtual: use.how });
  }
  for (const call of recvCalls) checkRecv({ ...base, call, fn: call.childForFieldName('function')!, args: readArgs(call)!, q: null });
  for (const call of [...hfCalls.values()].sort((x, y) => x.startIndex - y.startIndex)) {
    const fn = call.childForFieldName('function');
    const args = readArgs(call);
    const chain = fn ? dottedChain(fn) : null;
    if (!fn || !args || !chain) continue;
    const q = resolver.resolveChain(chain, fn);
    if (!q || !HF_ROOTS.includes(q.split('.')[0])) continue;
    checkRevision({ ...base, call, fn, args, q });
  }
  checkFallbacks(base, safeLoads);
  if (!opts.region) depsOfProgram.set(tree, resolver.deps);
  issues.sort((a, b) => a.start - b.start);
  return issues
    .filter((i) => i.start >= lo && i.start < hi)
    .filter((i) => !isSuppressed(text, tree, i, opts.honorNosec ?? false) && !fileWide.has(i.rule) && !fileWide.has('*'))
    .map((i) => ({ ...i, fixes: [...i.fixes, suppressionFix(text, i), fileSuppressionFix(text, i, firstCell)] }));
}

/** What a call's function names: a target through imports and aliases, a member the class set to one
 *  (`self.loader(f)`), a local subclass of a target class, or constant-string dynamic access. */
function calleeName(resolver: NameResolver, aliases: Set<string>, fn: Node): string | null {
  const chain = dottedChain(fn);
  if (!chain) {
    const q = resolver.resolveValue(fn);
    return q && TARGETS.has(q) ? q : null;
  }
  // Cheap check first (imports only, no shadowing analysis); the full resolution runs for likely targets.
  const likely = aliases.has(chain[0]) || TARGETS.has(resolver.resolveByImports(chain, fn.startIndex) ?? '');
  const q = likely ? resolver.resolveChain(chain, fn) : null;
  if (q && TARGETS.has(q)) return q;
  if (chain.length === 2 && aliases.has(chain[1]) && fn.type === 'attribute') {
    const m = memberTarget(resolver, fn);
    if (m) return m;
  }
  if (chain.length === 1 && aliases.has(chain[0])) {
    const sub = subclassTarget(resolver, chain[0], fn, 0);
    if (sub) return sub;
  }
  return q;
}

/** `self.loader(f)` / `cls.loader(f)` / `Owner.loader(f)` inside a class whose body sets `loader = pickle.load`
 *  or whose methods set `self.loader = pickle.load`. */
function memberTarget(resolver: NameResolver, fn: Node): string | null {
  const obj = fn.childForFieldName('object');
  const attr = fn.childForFieldName('attribute')?.text;
  if (!obj || obj.type !== 'identifier' || !attr) return null;
  let cls: Node | null = null;
  for (let p = fn.parent; p; p = p.parent) {
    if (p.type !== 'class_definition') continue;
    cls = p;
    break;
  }
  if (!cls) return null;
  const body = cls.childForFieldName('body');
  const own = cls.childForFieldName('name')?.text;
  if (!body) return null;
  // the receiver must be the method's first parameter (self/cls) or the class itself
  if (obj.text !== own) {
    const method = ancestor(fn, ['function_definition']);
    const first = method?.childForFieldName('parameters')?.namedChildren.find((c) => c && c.type !== 'comment');
    const firstName = first?.type === 'identifier' ? first.text : first?.childForFieldName('name')?.text ?? first?.namedChildren[0]?.text;
    if (!method || firstName !== obj.text) return null;
  }
  const re = new RegExp(`(?<![\\w.])(?:(?:self|cls|${escapeRegExp(own ?? 'cls')})[ \\t]*\\.[ \\t]*)?${escapeRegExp(attr)}[ \\t]*=(?!=)`, 'g');
  const code = body.text;
  for (let m = re.exec(code); m; m = re.exec(code)) {
    const at = body.startIndex + m.index + m[0].lastIndexOf(attr);
    const id = cls.tree.rootNode.descendantForIndex(at, at + attr.length);
    const target = id?.parent?.type === 'attribute' ? id.parent : id;
    const asg = target?.parent;
    if (!asg || asg.type !== 'assignment' || !asg.childForFieldName('left')?.equals(target!)) continue;
    // class-level `attr = ...`, or `self.attr = ...` in a method of this class
    if (target!.type === 'identifier' && asg.parent?.parent?.id !== body.id) continue;
    if (ancestor(asg, ['class_definition'])?.id !== cls.id) continue;
    const right = asg.childForFieldName('right');
    const q = right ? resolver.resolveValue(right) : null;
    if (q && TARGETS.has(q)) return q;
  }
  return null;
}

/** A local class derived from a target class (`class Loader(pickle.Unpickler)`): constructing it constructs the
 *  target, unless the class restricts what it loads (an Unpickler subclass that overrides find_class). */
function subclassTarget(resolver: NameResolver, name: string, use: Node, depth: number): string | null {
  if (depth > 4) return null;
  const b = resolver.bindingOf(name, use);
  const cls = b?.value;
  if (!cls || cls.type !== 'class_definition') return null;
  const supers = cls.childForFieldName('superclasses');
  for (const s of supers?.namedChildren ?? []) {
    if (!s || s.type === 'keyword_argument' || s.type === 'comment') continue;
    let q = resolver.resolveValue(s);
    if ((!q || !TARGETS.has(q)) && s.type === 'identifier') q = subclassTarget(resolver, s.text, s, depth + 1);
    if (!q || !TARGETS.has(q)) continue;
    if (/Unpickler$/.test(q) && /\bdef[ \t]+find_class\b/.test(cls.childForFieldName('body')?.text ?? '')) return null;
    return q;
  }
  return null;
}

interface Escape { node: Node; how: string; args?: Args }

/** Where a function value that is not called here goes: passed to a call (which calls it), wrapped by
 *  functools.partial (its arguments are the call's), stored in a container or attribute, returned, or made a
 *  default. Plain `name = value` aliases are followed by the resolver instead (their calls are flagged). */
function escapeOf(resolver: NameResolver, ref: Node): Escape | undefined {
  let x = ref;
  let through = false;
  for (let p = x.parent; p && ['parenthesized_expression', 'conditional_expression', 'boolean_operator'].includes(p.type); p = x.parent) {
    if (p.type === 'conditional_expression' && p.namedChildren[1]?.equals(x)) return undefined;   // the condition
    x = p;
    through = true;
  }
  const p = x.parent;
  if (!p) return undefined;
  const containerUse = (c: Node): string | undefined => {
    // a container handed to an inspecting call or an allowlist (`isinstance(f, (a, b))`) is not a store
    let top = c;
    while (top.parent && ['list', 'tuple', 'set', 'pair', 'dictionary', 'expression_list'].includes(top.parent.type)) top = top.parent;
    const list = top.parent;
    if (list?.type === 'argument_list' && list.parent?.type === 'call') {
      const callee = calleeText(resolver, list.parent);
      if (INSPECTING_CALLS.has(callee.q ?? '') || /(?:^|\.)(?:add_safe_globals|safe_globals)$/.test(callee.q ?? callee.text)) return undefined;
    }
    if (top.parent?.type === 'comparison_operator' || top.parent?.type === 'for_statement' && top.parent.childForFieldName('right')?.equals(top)) {
      return top.parent.type === 'for_statement' ? 'iterated over as a function' : undefined;
    }
    return `stored in a ${c.type === 'pair' ? 'dict' : c.type === 'expression_list' ? 'tuple' : c.type}`;
  };
  switch (p.type) {
    case 'argument_list': {
      const call = p.parent;
      if (call?.type !== 'call') return undefined;
      const callee = calleeText(resolver, call);
      if (INSPECTING_CALLS.has(callee.q ?? '') || /(?:^|\.)(?:add_safe_globals|safe_globals)$/.test(callee.q ?? callee.text)) return undefined;
      const args = readArgs(call);
      if (callee.q === 'functools.partial' || callee.q === 'functools.partialmethod') {
        if (!args || !args.positional[0]?.equals(x)) return undefined;
        return { node: call, how: `Wrapped by ${callee.text}()`, args: { ...args, positional: args.positional.slice(1), all: args.all.filter((a) => !a.equals(x)) } };
      }
      return { node: ref, how: `Passed to ${callee.text}(), which calls it` };
    }
    case 'keyword_argument': {
      if (!p.childForFieldName('value')?.equals(x)) return undefined;
      const call = p.parent?.parent;
      if (call?.type !== 'call') return undefined;
      const callee = calleeText(resolver, call);
      if (INSPECTING_CALLS.has(callee.q ?? '')) return undefined;
      return { node: ref, how: `Passed to ${callee.text}(${p.childForFieldName('name')?.text}=...), which calls it` };
    }
    case 'set': return undefined;   // a set of functions is for membership tests (`f in IGNORED`), not calls
    case 'list': case 'tuple': case 'expression_list': {
      if (p.parent?.type === 'return_statement') return { node: ref, how: 'Returned as a function' };
      const how = containerUse(p);
      return how ? { node: ref, how: `${how[0].toUpperCase()}${how.slice(1)} and called from there` } : undefined;
    }
    case 'pair': {
      if (!p.childForFieldName('value')?.equals(x)) return undefined;
      const how = containerUse(p);
      return how ? { node: ref, how: `${how[0].toUpperCase()}${how.slice(1)} and called from there` } : undefined;
    }
    case 'assignment': {
      if (!p.childForFieldName('right')?.equals(x)) return undefined;
      const left = p.childForFieldName('left');
      if (!left) return undefined;
      if (left.type === 'identifier' && !through) return undefined;    // an alias: its calls are flagged
      if (left.type === 'attribute' && SELF_NAMES.has(left.childForFieldName('object')?.text ?? '') && !through) return undefined;   // a member: self.x(...) is flagged
      return { node: ref, how: `Stored in ${left.text} and called from there` };
    }
    case 'return_statement': return { node: ref, how: 'Returned as a function' };
    case 'yield': return { node: ref, how: 'Yielded as a function' };
    case 'lambda': return p.childForFieldName('body')?.equals(x) ? { node: ref, how: 'Returned by a lambda' } : undefined;
    case 'default_parameter': case 'typed_default_parameter':
      return p.childForFieldName('value')?.equals(x) ? { node: ref, how: 'Used as a parameter default and called from there' } : undefined;
    default: return undefined;
  }
}

function calleeText(resolver: NameResolver, call: Node): { text: string; q: string | null } {
  const fn = call.childForFieldName('function');
  if (!fn) return { text: '?', q: null };
  return { text: fn.text.replace(/\s+/g, ''), q: resolver.resolveValue(fn) };
}

/** Names imported or assigned from a target (`from torch import load as l`, `l = torch.load`,
 *  `self.loader = pickle.load`), local subclasses of target classes (all called by that name), and names bound
 *  to a target's module (`p = pickle`, `pk = importlib.import_module("pickle")`: calls are `pk.loads(...)`). */
interface Aliases {
  all: Set<string>;
  /** The names of modules: they head a call's chain, they are not called themselves (not scanned for). */
  modules: Set<string>;
}

function aliasNames(resolver: NameResolver, text: string): Aliases {
  const all = new Set<string>();
  const modules = new Set<string>();
  for (const [name, targets] of resolver.importedNames()) {
    // (a target imported under its own name is scanned for by that name once its module is imported; one imported
    // under another target's name, `from pickle import loads as decode` (jsonpickle.decode), is not)
    if (targets.some((t) => TARGETS.has(canonical(t)) && (!FINAL_NAMES.includes(name) || !canonical(t).endsWith(`.${name}`)))) all.add(name);
  }
  const a = { all, modules };
  for (const m of text.matchAll(ALIAS_LINES)) {
    const kind = aliasLine(m, resolver, a);
    if (kind) { all.add(m[1]); if (kind === 'module') modules.add(m[1]); }
  }
  // subclasses of target classes: class headers found by one indexOf pass (a multiline regex tries every line)
  for (let i = text.indexOf('class'); i !== -1; i = text.indexOf('class', i + 5)) {
    if (i > 0 && text[i - 1] !== ' ' && text[i - 1] !== '\t' && text[i - 1] !== '\n') continue;
    const ls = text.lastIndexOf('\n', i - 1) + 1;
    if (ls < i && !/^[ \t]*$/.test(text.slice(ls, i))) continue;
    CLASS_HEADER.lastIndex = i;
    const m = CLASS_HEADER.exec(text);
    if (m && isTargetSubclassLine(m, all)) all.add(m[1]);
  }
  return a;
}

// `x = a.b` (also `self.x = a.b`, `x = a.b; x(...)`) and `x = import_module(...)` / `getattr(...)` lines
// (`self.x = ...` only when the value is dotted: `self.path = path` is no alias of anything)
const ALIAS_LINES = /^[ \t]*(?:(?:self|cls)[ \t]*\.[ \t]*(?=[A-Za-z_]\w*[ \t]*=[ \t]*[A-Za-z_]\w*\.))?([A-Za-z_]\w*)[ \t]*=[ \t]*(?:([A-Za-z_][\w.]*)[ \t]*(?:[#;].*)?|((?:[A-Za-z_][\w.]*\.)?(?:import_module|__import__|getattr)[ \t]*\(.*))$/gm;
const CLASS_LINES = /^[ \t]*class[ \t]+([A-Za-z_]\w*)[ \t]*\(([^)]*)\)/gm;
const CLASS_HEADER = /class[ \t]+([A-Za-z_]\w*)[ \t]*\(([^)]*)\)/y;

/** Whether an `x = ...` line makes x an alias of a target ('call') or of a target's module ('module'). */
function aliasLine(m: RegExpMatchArray, resolver: NameResolver, aliases: Aliases): 'call' | 'module' | false {
  if (m[2] !== undefined) {
    const last = m[2].slice(m[2].lastIndexOf('.') + 1);
    if (aliases.all.has(m[2])) return aliases.modules.has(m[2]) ? 'module' : 'call';
    if (FINAL_NAMES.includes(last)) return 'call';
    const q = resolver.resolveByImports(m[2].split('.'));
    return q !== null && TARGET_PREFIXES.has(q) ? 'module' : false;
  }
  // dynamic access: it matters when a constant string names a target, its function or its module
  let kind: 'call' | 'module' | false = false;
  for (const s of m[3].matchAll(/["']([A-Za-z_][\w.]*)["']/g)) {
    if (TARGETS.has(canonical(s[1])) || FINAL_NAMES.includes(s[1])) return 'call';
    if (TARGET_PREFIXES.has(canonical(s[1]))) kind = 'module';
  }
  return kind;
}

function isTargetSubclassLine(m: RegExpMatchArray, aliases: Set<string>): boolean {
  return m[2].split(',').some((b) => {
    const base = b.trim();
    if (!base || base.includes('=')) return false;
    return FINAL_NAMES.includes(base.slice(base.lastIndexOf('.') + 1)) || aliases.has(base);
  });
}

/** Names whose bound value some rule reads from another statement: receivers of `.recv()`, the list given to
 *  add_safe_globals, the path given to load_model. Binding one of them anywhere re-analyses the program. */
function valueFollowedNames(text: string, out: Set<string>): void {
  if (!/recv|safe_globals|load_model/.test(text)) return;   // (one regex test is cheaper than three includes)
  if (text.includes('recv')) for (const m of text.matchAll(/([A-Za-z_]\w*)[ \t]*\.[ \t]*recv[ \t]*\(/g)) out.add(m[1]);
  if (text.includes('safe_globals')) for (const m of text.matchAll(/safe_globals[ \t]*\([ \t]*([A-Za-z_]\w*)/g)) out.add(m[1]);
  if (text.includes('load_model')) for (const m of text.matchAll(/load_model[ \t]*\([ \t]*([A-Za-z_]\w*)/g)) out.add(m[1]);
}

export interface TextChange { start: number; oldEnd: number; newEnd: number }

// What an edit must not touch for the findings elsewhere to stay valid: imports, `x = a.b` aliases, and
// module-level bindings of names that imports or aliases provide (they change what a name refers to in other
// statements). Suppression comments only act on their own lines, which are re-analyzed with the edit.
const IMPORT_RE = /(?:^|;)[ \t]*(?:import|from)\b/m;
// Code that makes connections, listeners and pipes: a `.recv()` elsewhere depends on it.
const CONNECTION_RE = /\b(?:Pipe|accept|Client|Listener|get_context)\b/;
const IDENT_RE = /[A-Za-z_]\w*/g;
const DEFINITIONS = new Set(['function_definition', 'class_definition', 'decorated_definition']);

/** Names a piece of code may bind, over-approximated from its text (assignment targets, def/class names,
 *  loop/with/except/walrus targets, global/nonlocal, lambda and case lines). */
function boundNames(code: string, out: Set<string>): void {
  const idents = (s: string) => { for (const m of s.matchAll(IDENT_RE)) out.add(m[0]); };
  for (const line of code.split('\n')) {
    // Before the first `=`; and before each later one outside brackets (a chained `a = b = 1` binds both); inside
    // brackets (a keyword argument, or a bracket in a string miscounted) the name just before it, to be safe.
    let prev = -1;
    for (const m of line.matchAll(/(?<![=<>!:+\-*/%&|^@])=(?!=)/g)) {
      const at = m.index!;
      if (prev < 0) idents(line.slice(0, at));
      else if (bracketDepth(line, at) === 0) idents(line.slice(prev + 1, at));
      else { const name = /([A-Za-z_]\w*)\s*$/.exec(line.slice(0, at)); if (name) out.add(name[1]); }
      prev = at;
    }
    for (const m of line.matchAll(/\b(?:def|class)\s+([A-Za-z_]\w*)/g)) out.add(m[1]);
    for (const m of line.matchAll(/\bfor\b(.*?)\bin\b/g)) idents(m[1]);
    for (const m of line.matchAll(/\bas\s+([A-Za-z_]\w*)/g)) out.add(m[1]);
    for (const m of line.matchAll(/([A-Za-z_]\w*)\s*:=/g)) out.add(m[1]);
    for (const m of line.matchAll(/([A-Za-z_]\w*)\s*(?:\*\*|\/\/|>>|<<|[-+*/%&|^@])=/g)) out.add(m[1]);
    if (/\b(?:global|nonlocal|lambda|case|del)\b/.test(line)) idents(line);
  }
}

/** How many brackets are open before `at` in a line (strings not told apart). */
function bracketDepth(line: string, at: number): number {
  let depth = 0;
  for (let i = 0; i < at; i++) {
    const c = line[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
  }
  return depth;
}

/** Names the top-level statements in [lo, hi) bind in the module scope, as the name resolver sees it: a
 *  def or class binds its name (what its body binds stays in its own scope); other statements are read
 *  textually, over-approximated. `text(a, b)`: the source of the tree's offsets a..b. */
function moduleBindings(tree: Program, text: (a: number, b: number) => string, lo: number, hi: number, out: Set<string>): void {
  let covered = lo;
  for (let n = firstTop(tree, lo); n && n.startIndex < hi; n = nextTop(tree, n)) {
    if (n.startIndex > covered) boundNames(text(covered, n.startIndex), out);
    if (DEFINITIONS.has(n.type)) {
      const def = n.type === 'decorated_definition' ? n.childForFieldName('definition') : n;
      const name = def?.childForFieldName('name');
      if (name) out.add(text(name.startIndex, name.endIndex)); else boundNames(text(n.startIndex, n.endIndex), out);
      boundNames(text(n.startIndex, (def?.childForFieldName('body') ?? n).startIndex), out);   // the header
    } else boundNames(text(n.startIndex, Math.min(n.endIndex, hi)), out);
    covered = Math.max(covered, n.endIndex);
  }
  if (covered < hi) boundNames(text(covered, hi), out);
}

function lineStart(text: string, at: number): number { return text.lastIndexOf('\n', at - 1) + 1; }
function lineEnd(text: string, at: number): number { const i = text.indexOf('\n', at); return i < 0 ? text.length : i + 1; }

// Facts about a program text, kept for the last two texts: a keystroke asks about the text before it (asked about
// last time) and the new one.
interface TextFacts { ignoreFile?: boolean; asNames: Map<string, boolean> }
const factsOf = textMemo<TextFacts>(2, () => ({ asNames: new Map() }));

/** Whether a text mentions `ignore-file` (two whole-text searches per keystroke were ~0.4 ms on 10,000 lines). */
function mentionsIgnoreFile(text: string): boolean {
  const f = factsOf(text);
  return (f.ignoreFile ??= text.includes('ignore-file'));
}

/** Whether `with open(...) as name:` could bind `name` in this text: only where it says `as name`. One search per
 *  name and text instead of a climb through each load's ancestors (~4 ms of a whole-file analysis of issue 12's
 *  file, 1,666 loads of `path`). Names other than ASCII words are always climbed for. */
function mayBeWithTarget(text: string, facts: TextFacts, name: string): boolean {
  if (!/^[A-Za-z_]\w*$/.test(name)) return true;
  const seen = facts.asNames;
  let found = seen.get(name);
  if (found === undefined) seen.set(name, (found = new RegExp(`\\bas[\\s\\\\]+${name}\\b`).test(text)));
  return found;
}

/** After a whole analysis of an edited program: links each finding outside the edit to the previous analysis's
 *  finding of the same rule, severity and message at the same place before the edit (as analyzePythonAfterEdit's
 *  copies are), so the language server reuses what it built for it. On issue 12's file an import edit analysed
 *  whole otherwise built and compared 1,666 diagnostics afresh. */
export function linkUnmoved(prev: CodeIssue[], fresh: CodeIssue[], change: TextChange): void {
  const delta = change.newEnd - change.oldEnd;
  // (a previous finding found at a fresh one's place before the edit lies outside the edit too)
  const byStart = new Map<number, CodeIssue[]>();
  for (const i of prev) {
    const list = byStart.get(i.start);
    if (list) list.push(i); else byStart.set(i.start, [i]);
  }
  for (const i of fresh) {
    let start = i.start, end = i.end;
    if (start >= change.newEnd) { start -= delta; end -= delta; } else if (end > change.start) continue;
    const old = byStart.get(start)?.find((o) => o.end === end && o.rule === i.rule && o.severity === i.severity && o.message === i.message);
    if (old) movedFrom.set(i, old);
  }
}

/** The finding of the previous analysis that a reused finding was copied from (analyzePythonAfterEdit), for the
 *  language server to reuse what it built for that one (lsp/diagnostics.ts). Read once with takeMovedFrom: each
 *  entry is dropped when read, so a finding never keeps a chain of its earlier copies alive. */
const movedFrom = new WeakMap<CodeIssue, CodeIssue>();
export function takeMovedFrom(issue: CodeIssue): CodeIssue | undefined {
  const from = movedFrom.get(issue);
  if (from) movedFrom.delete(issue);
  return from;
}

// the fields the copy of a reused finding (analyzePythonAfterEdit) writes: a field added to CodeIssue or CodeFix
// fails to compile here until the copy handles it
const COPIED_ISSUE_FIELDS: Record<keyof CodeIssue, true> = { rule: true, severity: true, message: true, start: true, end: true, fixes: true, path: true, convertEdits: true, loadSite: true };
const COPIED_FIX_FIELDS: Record<keyof CodeFix, true> = { title: true, edits: true, preferred: true, role: true };
void COPIED_ISSUE_FIELDS; void COPIED_FIX_FIELDS;

/**
 * Findings for `text` after one edit, reusing `prev` (the findings of the text before it) outside the lines
 * and top-level statements the edit and the re-parse touched: only calls in those are analyzed again.
 * Returns undefined when the edit could change how names resolve elsewhere; the caller then analyzes the
 * whole program. `changed`: the parse tree's changed ranges (new text offsets); `oldTree`: the tree of
 * prev.text. `refresh` rebuilds the on-demand edits of a reused finding (they refer to the tree of the
 * analysis that made them).
 */
export function analyzePythonAfterEdit(prev: { text: string; issues: CodeIssue[] }, oldTree: Program, tree: Program, text: string,
  change: TextChange, changed: { startIndex: number; endIndex: number }[], opts: AnalyzeOptions,
  refresh: (start: number, rule: string) => CodeIssue | undefined): CodeIssue[] | undefined {
  const delta = change.newEnd - change.oldEnd;
  if (prev.text.length + delta !== text.length || opts.cellStarts) return undefined;
  // a file-wide suppression added, changed or removed applies to findings outside the edit too
  if (mentionsIgnoreFile(prev.text) || mentionsIgnoreFile(text)) return undefined;
  let lo = change.start, hi = change.newEnd;
  for (const r of changed) { lo = Math.min(lo, r.startIndex); hi = Math.max(hi, r.endIndex); }
  lo = Math.max(0, lo); hi = Math.min(hi, text.length);
  // widen to whole lines and whole top-level statements, in the new text and the old one, until stable
  // (the old tree was told of the edit: its nodes are at new-text offsets, like the new tree's)
  for (let round = 0; ; round++) {
    const was = [lo, hi];
    lo = lineStart(text, lo); hi = lineEnd(text, Math.max(lo, hi - 1));
    for (const r of [tree, oldTree]) {
      const first = firstTop(r, lo);
      if (first && first.startIndex < lo) lo = first.startIndex;
      const last = firstTop(r, Math.max(lo, hi - 1));
      if (last && last.startIndex < hi && last.endIndex > hi) hi = Math.min(text.length, last.endIndex);
    }
    if (was[0] === lo && was[1] === hi) break;
    if (round === 64) return undefined;
  }
  const oldHi = hi - delta;
  if (oldHi < change.oldEnd || lo > change.start || hi > text.length) return undefined;
  const before = prev.text.slice(lo, oldHi), after = text.slice(lo, hi);
  // (imports local to the region's functions bind nothing outside it: `def f(): import torch` stays incremental)
  const moduleImports = (IMPORT_RE.test(before) && !importsOnlyInFunctions(oldTree, lo, hi))
    || (IMPORT_RE.test(after) && !importsOnlyInFunctions(tree, lo, hi));
  const oldDeps = depsOfProgram.get(oldTree);
  // A module-level import edited: the statements elsewhere keep their findings when no name the edited statements
  // mention was resolved there (the previous analysis recorded where each name was), none of them is a module
  // or builtin the rules know, and they bring no star import. Otherwise the whole program is analysed again.
  let touched: Set<string> | undefined;
  if (moduleImports) {
    touched = importEditNames(before, after);
    if (!touched || !oldDeps) return undefined;
    for (const n of touched) if (oldDeps.get(n)?.some((p) => p < lo || p >= oldHi)) return undefined;
  }
  const prepared = prepare(tree, text, [lo, hi], carryBodies(oldTree, tree, lo, hi, oldHi, delta));
  const { resolver, aliases: found } = prepared;
  const aliases = found.all;
  // `x = a.b` lines matter when they make an alias (of a target's name, or of another alias), and class lines
  // when they derive from a target class
  for (const code of [before, after]) {
    for (const m of code.matchAll(ALIAS_LINES)) if (aliasLine(m, resolver, found)) return undefined;
    for (const m of code.matchAll(CLASS_LINES)) if (isTargetSubclassLine(m, aliases)) return undefined;
    if (CONNECTION_RE.test(code) && resolver.importRoots().has('multiprocessing')) return undefined;
  }
  // (with module-level imports edited, what they bind themselves is checked against the record above instead)
  const sensitive = new Set<string>(touched ? resolver.importBoundOutside(lo, hi) : resolver.importBoundNames());
  for (const name of aliases) sensitive.add(name);
  // an unbound well-known module or builtin stops being one when a statement binds its name
  for (const name of [...Object.keys(WELL_KNOWN_MODULES), 'getattr', 'vars', 'globals', 'locals', '__import__', 'eval', 'exec']) sensitive.add(name);
  valueFollowedNames(text, sensitive);
  if (resolver.hasStarImports()) for (const n of resolver.starNames()) sensitive.add(n);
  const bound = new Set<string>();
  // the old tree's offsets are the new text's: before the edit they read the old text as it is, after it shifted back
  const old = (x: number, end: boolean): number => (x <= change.start ? x : x >= change.newEnd ? x - delta : end ? change.oldEnd : change.start);
  moduleBindings(oldTree, (a, b) => prev.text.slice(old(a, false), old(b, true)), lo, hi, bound);
  moduleBindings(tree, (a, b) => text.slice(a, b), lo, hi, bound);
  for (const n of bound) if (sensitive.has(n)) return undefined;
  if (touched) {
    // nor one that an import elsewhere, an alias, a followed value or a star import binds (its resolution elsewhere
    // may change even where the record missed it)
    const outside = resolver.importBoundOutside(lo, hi);
    const followedValues = new Set<string>();
    valueFollowedNames(text, followedValues);
    for (const n of touched) if (outside.has(n) || aliases.has(n) || followedValues.has(n)) return undefined;
  }
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
        // (object literals, not spreads: spreading ~1,700 findings and their fixes per keystroke took ~1 ms)
        const fix: CodeFix = { title: f.title, edits: es, preferred: f.preferred };
        if (f.role !== undefined) fix.role = f.role;
        fixes.push(fix);
      }
      const moved: CodeIssue = { rule: i.rule, severity: i.severity, message: i.message, start, end, fixes };
      movedFrom.set(moved, i);
      if (i.path) moved.path = { value: i.path.value, start: shift(i.path.start)!, end: shift(i.path.end)! };
      if (i.convertEdits) moved.convertEdits = () => refresh(start, i.rule)?.convertEdits?.() ?? [];
      if (i.loadSite) moved.loadSite = () => refresh(start, i.rule)?.loadSite?.();
      kept.push(moved);
    } else if (i.start < lo || i.end > oldHi) return undefined;   // straddles the edited statements
  }
  const fresh = analyzePython(tree, text, { ...opts, region: [lo, hi] }, prepared);
  if (oldDeps) depsOfProgram.set(tree, carryDeps(oldDeps, resolver.deps, lo, oldHi, delta));
  return [...kept, ...fresh].sort((a, b) => a.start - b.start);
}

/** Where each name was resolved (NameResolver.deps) in the last analysis of a program: the whole one, or carried
 *  over an edit by analyzePythonAfterEdit. */
const depsOfProgram = new WeakMap<Program, Map<string, number[]>>();

/** The record of the text before an edit, outside its statements [lo, oldHi) (shifted past the edit), and the
 *  re-analysed statements' own (new-text offsets). */
function carryDeps(old: Map<string, number[]>, fresh: Map<string, number[]>, lo: number, oldHi: number, delta: number): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [name, at] of old) {
    const kept: number[] = [];
    for (const p of at) if (p < lo) kept.push(p); else if (p >= oldHi) kept.push(p + delta);
    if (kept.length) out.set(name, kept);
  }
  for (const [name, at] of fresh) {
    const list = out.get(name);
    if (list) list.push(...at); else out.set(name, [...at]);
  }
  return out;
}

/** Names an edit of import statements must not mention for the rest of the program to keep its findings: the modules
 *  targets live in or come through (and their canonical spellings), the modules and builtins an unbound name
 *  falls back to, target function names, dynamic access, and the roots that switch rules on (multiprocessing,
 *  Hugging Face libraries). Built on first use (HF_ROOTS is declared further down). */
let importGuarded: Set<string> | undefined;
const guardedNames = (): Set<string> => importGuarded ??= new Set<string>([
  ...[...NAME_ROOTS.values()].flat(), ...[...TARGETS].map((q) => q.split('.')[0]), ...FINAL_NAMES,
  ...Object.keys(WELL_KNOWN_MODULES), ...Object.values(WELL_KNOWN_MODULES), ...BUILTIN_NAMES, ...DYNAMIC_WORDS,
  ...CANONICAL.flatMap(([from, to]) => [from.split('.')[0], to.split('.')[0]]), ...Object.values(ROOT_SOURCES).flat(),
  'multiprocessing', ...HF_ROOTS,
]);

const PY_KEYWORDS = new Set(['False', 'None', 'True', 'and', 'as', 'assert', 'async', 'await', 'break', 'class', 'continue', 'def',
  'del', 'elif', 'else', 'except', 'finally', 'for', 'from', 'global', 'if', 'import', 'in', 'is', 'lambda', 'nonlocal', 'not',
  'or', 'pass', 'raise', 'return', 'try', 'while', 'with', 'yield']);

/** Every name the edited statements mention before and after the edit (identifiers of their text, a superset of
 *  what they bind), or undefined when one is guarded (guardedNames), a dotted name canonicalises to a guarded
 *  module, or a star import is involved. */
function importEditNames(before: string, after: string): Set<string> | undefined {
  const out = new Set<string>();
  for (const code of [before, after]) {
    if (/\bimport[\s\\(]*\*/.test(code)) return undefined;
    for (const m of code.matchAll(/[A-Za-z_][\w.]*/g)) {
      for (const part of m[0].split('.')) {
        if (!part || PY_KEYWORDS.has(part)) continue;
        if (guardedNames().has(part)) return undefined;
        out.add(part);
      }
      if (m[0].includes('.') && guardedNames().has(canonical(m[0]).split('.')[0])) return undefined;
    }
  }
  return out;
}


interface SafeLoad { call: Node; label: string }

interface Ctx {
  call: Node;          // the range a finding covers (the call, or the value reference for a virtual call)
  fn: Node;
  args: Args;
  q: string | null;
  text: string;
  tree: Program;
  resolver: NameResolver;
  cellStarts: number[];
  out: CodeIssue[];
  safeLoads: SafeLoad[];
  /** factsOf(text), looked up once per analysis: finding the entry compares whole texts, and two equal texts that
   *  are different strings (a keystroke and its undo) compare to the end (~18% of a whole analysis of issue 12's
   *  file when it was looked up per load). */
  facts: TextFacts;
  /** Set when the target is not called here but passed, stored or wrapped: how it is called later. */
  virtual?: string;
}

function report(ctx: Ctx, rule: string, message: string, fixes: CodeFix[] = [], severity?: CodeSeverity): void {
  const def = CODE_RULE_BY_ID.get(rule)!;
  const issue: CodeIssue = {
    rule, severity: severity ?? def.severity, message: ctx.virtual ? `${ctx.virtual}: ${message}` : message,
    start: ctx.call.startIndex, end: ctx.call.endIndex, fixes: ctx.virtual ? [] : fixes,
  };
  const first = ctx.args.positional[0];
  const named = !ctx.virtual && ctx.q && FILE_LOADERS.has(ctx.q) && first ? pathArgument(ctx, first) : undefined;
  if (named) issue.path = named;
  ctx.out.push(issue);
}

const OPENERS = new Set(['builtins.open', 'io.open', 'open']);

/** The file a load's first argument names: a path literal, `open("x.pkl", "rb")`, or a name bound by
 *  `with open("x.pkl", "rb") as f:` around the load. */
function pathArgument(ctx: Ctx, first: Node): { value: string; start: number; end: number } | undefined {
  const literal = (n: Node | null | undefined) => {
    const v = stringValue(n ?? undefined);
    return v && n ? { value: v, start: n.startIndex, end: n.endIndex } : undefined;
  };
  const opened = (n: Node | null | undefined) => {
    if (n?.type !== 'call') return undefined;
    const fn = n.childForFieldName('function');
    const q = fn ? (fn.type === 'identifier' && fn.text === 'open' ? 'open' : ctx.resolver.resolveValue(fn)) : null;
    if (!q || !OPENERS.has(q)) return undefined;
    const list = n.childForFieldName('arguments');
    return literal(list?.namedChildren.find((c) => c && c.type !== 'comment' && c.type !== 'keyword_argument'));
  };
  if (first.type === 'string') return literal(first);
  if (first.type === 'call') return opened(first);
  if (first.type !== 'identifier' || !mayBeWithTarget(ctx.text, ctx.facts, first.text)) return undefined;
  for (let p = first.parent; p; p = p.parent) {
    if (p.type === 'function_definition' || p.type === 'lambda' || p.type === 'class_definition') break;
    if (p.type !== 'with_statement') continue;
    for (const item of p.namedChildren.find((c) => c?.type === 'with_clause')?.namedChildren ?? []) {
      const as = item?.childForFieldName('value');
      if (as?.type !== 'as_pattern') continue;
      const target = as.childForFieldName('alias');
      if (target?.text !== first.text) continue;
      return opened(as.namedChildren[0]);
    }
  }
  return undefined;
}

const isTrue = (n: Node | undefined): boolean => n?.type === 'true';
const isFalse = (n: Node | undefined): boolean => n?.type === 'false';
const isNone = (n: Node | undefined): boolean => n?.type === 'none';

/** A load that refuses code (weights_only=True, numpy without pickles, a safe YAML loader): remembered so an
 *  except handler that retries with an unsafe load can be reported (checkFallbacks). */
function safeLoad(ctx: Ctx): void {
  if (!ctx.virtual) ctx.safeLoads.push({ call: ctx.call, label: ctx.call.text.length > 80 ? `${ctx.q}(...)` : ctx.call.text.replace(/\s+/g, ' ') });
}

function checkTarget(ctx: Ctx): void {
  const { q, args, text } = ctx;
  if (!q) return;
  const simple = SIMPLE[q];
  if (simple) {
    const first = args.positional[0];
    // `pickle.loads(b"...")`: the data is a constant of the program itself, not input
    if (first && /(?:\.loads|\.decode)$/.test(q) && constantString(first) !== undefined) {
      report(ctx, simple, `${q} of a constant in the source: the pickle is part of the program, so review it like code (it can still run anything).`, [], 'info');
      return;
    }
    report(ctx, simple, SIMPLE_MESSAGES[q] ?? `${q}: ${CODE_RULE_BY_ID.get(simple)!.short}`);
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
  if (q in NUMPY_LOADS) return checkAllowPickle(ctx, NUMPY_LOADS[q]);
  if (MSGPACK_UNPACK.includes(q)) return checkMsgpack(ctx);
  if (MSGPACK_NUMPY_UNPACK.includes(q)) return checkMsgpackNumpy(ctx);
  if (MANAGERS.includes(q)) return checkManager(ctx);
  switch (q) {
    case 'torch.load': return checkTorchLoad(ctx);
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
    case 'yaml.safe_load':
    case 'yaml.safe_load_all':
      safeLoad(ctx);
      return;
    case 'yaml.load':
    case 'yaml.load_all': {
      const loader = args.keywords.get('Loader') ?? args.positional[1];
      const safeName = q === 'yaml.load' ? 'safe_load' : 'safe_load_all';
      if (loader) {
        const lq = ctx.resolver.resolveValue(loader);
        if (lq && YAML_SAFE_LOADERS.has(lq)) { safeLoad(ctx); return; }
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
      if (isFalse(sm)) {
        report(ctx, 'SW113', 'load_model(safe_mode=False) lets the model file run Lambda-layer code: keep safe_mode=True.',
          [{ title: 'Set safe_mode=True', preferred: false, edits: [edits.replaceNode(sm!, 'True')] }]);
      }
      const path = constantOf(ctx, args.positional[0] ?? args.keywords.get('filepath'));
      if (path !== undefined && /\.(?:h5|hdf5)$/i.test(path)) {
        report(ctx, 'SW122', `load_model("${path}") reads the legacy HDF5 format, where safe_mode does not apply: a Lambda layer in the file runs its code (CVE-2025-9905). Convert the model to .keras and load that with safe_mode=True.`);
      }
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
    case 'torch.add_safe_globals':
    case 'torch.safe_globals':
      return checkSafeGlobals(ctx);
  }
}

function checkTorchLoad(ctx: Ctx): void {
  const { args, text } = ctx;
  const wo = args.keywords.get('weights_only');
  const pmArg = args.keywords.get('pickle_module') ?? args.positional[2];
  const pm = pmArg && !isNone(pmArg) ? pmArg : undefined;
  if (isTrue(wo)) {
    // with a pickle_module torch refuses to load at all ("Can not safely load weights when explicit pickle_module is specified")
    if (!pm) safeLoad(ctx);
    return;
  }
  if (isFalse(wo)) {
    report(ctx, 'SW101', 'torch.load(weights_only=False) unpickles arbitrary objects: a crafted checkpoint runs code. Use weights_only=True.',
      [{ title: 'Set weights_only=True', preferred: !pm, edits: [edits.replaceNode(wo!, 'True')], role: 'weights-only' }], 'dangerous');
  } else if (wo) {
    report(ctx, 'SW101', 'torch.load: weights_only is not the literal True here; when it is False the checkpoint can run code.',
      [{ title: 'Set weights_only=True', preferred: false, edits: [edits.replaceNode(wo, 'True')], role: 'weights-only' }]);
  } else if (pm) {
    report(ctx, 'SW101', `torch.load(pickle_module=${pm.text.replace(/\s+/g, ' ')}) unpickles arbitrary objects on every torch version: torch only defaults to weights_only=True when no pickle_module is given. A crafted checkpoint runs code; drop pickle_module and load with weights_only=True.`,
      [], 'dangerous');
  } else {
    const why = args.splat
      ? 'torch.load(..., **kwargs) without a visible weights_only=True: the unpacked options may allow arbitrary unpickling.'
      : 'torch.load without weights_only=True unpickles arbitrary objects before torch 2.6 (and on later versions when TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set): a crafted checkpoint runs code.';
    // (no "Add weights_only=True." here: the diagnostic opens with what to do, for this file when it was scanned)
    report(ctx, 'SW101', why,
      [{ title: 'Add weights_only=True', preferred: !args.splat, edits: [edits.addKeyword(text, args.list, args.all, 'weights_only=True')], role: 'weights-only' }]);
  }
  const issue = ctx.out[ctx.out.length - 1];
  const first = args.positional[0];
  if (!ctx.virtual && !pm && issue?.rule === 'SW101' && first && !args.splat && /\.(pt|pth|bin|ckpt)$/i.test(stringValue(first) ?? '')) {
    // built on demand: most keystrokes never ask for this fix
    const c = { ...ctx };
    issue.convertEdits = () => loadFileEdits(c, first);
    issue.loadSite = () => loadSiteOf(c, first);
  }
}

/** numpy checks allow_pickle by truthiness: any literal but False/0/None/""/empty, or anything not a literal. */
function checkAllowPickle(ctx: Ctx, position: number): void {
  const { args, text } = ctx;
  const ap = args.keywords.get('allow_pickle') ?? args.positional[position];
  const t = truthiness(ap);
  if (!ap || t === false) { safeLoad(ctx); return; }
  const kw = args.keywordNodes.get('allow_pickle') ?? ap;
  const fix = [{ title: `Remove allow_pickle=${ap.text}`, preferred: t === true && args.keywordNodes.has('allow_pickle'), edits: [edits.removeArgument(text, args.all, kw)] }];
  if (t === true) {
    report(ctx, 'SW105', `${ctx.q}(allow_pickle=${ap.text}) unpickles object arrays (numpy only tests the value's truth) and can run code: drop allow_pickle for numeric data.`, fix);
  } else {
    report(ctx, 'SW105', `${ctx.q}(allow_pickle=${ap.text.replace(/\s+/g, ' ')}): when the value is true at run time, object arrays are unpickled and can run code.`, fix, 'caution');
  }
}

function checkMsgpack(ctx: Ctx): void {
  const hook = ctx.args.keywords.get('object_hook');
  if (!hook) return;
  const hq = ctx.resolver.resolveValue(hook);
  if (hq !== 'msgpack_numpy.decode') return;
  report(ctx, 'SW118', `${ctx.q}(object_hook=${hook.text}) decodes object arrays with pickle.loads: a crafted message runs code. Send numeric arrays only and decode them without pickle.`);
}

function checkMsgpackNumpy(ctx: Ctx): void {
  const ap = ctx.args.keywords.get('allow_pickle');
  const t = truthiness(ap);
  if (ap && (t === false || constantString(ap) === 'restricted')) return;
  report(ctx, 'SW118', `${ctx.q} decodes object arrays with pickle.loads${ap ? ` (allow_pickle=${ap.text})` : ''}: a crafted message runs code.`, [], ap && t === undefined ? 'caution' : undefined);
}

function checkManager(ctx: Ctx): void {
  const addr = ctx.args.keywords.get('address') ?? ctx.args.positional[0];
  if (!addr || isNone(addr)) return;
  report(ctx, 'SW119', `${ctx.fn.text.replace(/\s+/g, '')}(address=${addr.text.replace(/\s+/g, ' ')}) (a ${ctx.q!.split('.').pop()}) serves or connects to a manager at a network address: requests and results are pickles, so a client or a spoofed server that knows the authkey runs code on the other side.`);
}

type ConnKind = 'pipe' | 'conn' | 'listener' | 'context';

/** What kind of multiprocessing object an expression is, following names to their bindings. */
function connKind(ctx: Ctx, n: Node | null | undefined, depth = 0): ConnKind | undefined {
  if (!n || depth > 6) return undefined;
  switch (n.type) {
    case 'call': {
      const fn = n.childForFieldName('function');
      if (!fn) return undefined;
      const q = ctx.resolver.resolveValue(fn);
      if (q === 'multiprocessing.Pipe' || q === 'multiprocessing.connection.Pipe') return 'pipe';
      if (q === 'multiprocessing.connection.Client') return 'conn';
      if (q === 'multiprocessing.connection.Listener') return 'listener';
      if (q === 'multiprocessing.get_context') return 'context';
      if (fn.type === 'attribute') {
        const attr = fn.childForFieldName('attribute')?.text;
        const obj = fn.childForFieldName('object');
        if (attr === 'accept' && connKind(ctx, obj, depth + 1) === 'listener') return 'conn';
        if (attr === 'Pipe' && connKind(ctx, obj, depth + 1) === 'context') return 'pipe';
      }
      return undefined;
    }
    case 'identifier': {
      const b = ctx.resolver.bindingOf(n.text, n);
      if (!b?.value) return undefined;
      const k = connKind(ctx, b.value, depth + 1);
      if (k === 'pipe') return b.index !== undefined ? 'conn' : 'pipe';
      return b.index === undefined ? k : undefined;
    }
    case 'subscript':
      return connKind(ctx, n.childForFieldName('value'), depth + 1) === 'pipe' ? 'conn' : undefined;
    case 'parenthesized_expression':
      return connKind(ctx, n.namedChildren.find((c) => c && c.type !== 'comment'), depth + 1);
    default:
      return undefined;
  }
}

function checkRecv(ctx: Ctx): void {
  if (!ctx.args || ctx.args.all.length !== 0 || ctx.fn.type !== 'attribute') return;
  if (connKind(ctx, ctx.fn.childForFieldName('object')) !== 'conn') return;
  report(ctx, 'SW119', 'Connection.recv() unpickles whatever the other end sent: a peer (or anyone who can reach a Listener and knows its authkey) runs code here. Use recv_bytes() and a data-only format.');
}

/** torch.serialization.add_safe_globals / safe_globals given a callable that runs code or touches the system. */
function checkSafeGlobals(ctx: Ctx): void {
  let list: Node | undefined = ctx.args.positional[0] ?? ctx.args.keywords.get('safe_globals');
  if (list?.type === 'identifier') {
    const b = ctx.resolver.bindingOf(list.text, list);
    list = b?.value && b.index === undefined ? b.value : undefined;
  }
  if (!list || !['list', 'tuple', 'set'].includes(list.type)) return;
  const bad: string[] = [];
  for (const el of list.namedChildren) {
    if (!el || el.type === 'comment') continue;
    const obj = el.type === 'tuple' || el.type === 'parenthesized_expression' ? el.namedChildren.find((c) => c && c.type !== 'comment') : el;
    const q = obj ? ctx.resolver.resolveValue(obj) : null;
    if (!q || !q.includes('.')) continue;
    const dot = q.lastIndexOf('.');
    const v = classifyGlobal(q.slice(0, dot), q.slice(dot + 1));
    if (v.tier === 'dangerous') bad.push(`${q} (${v.reason})`);
  }
  if (!bad.length) return;
  const name = ctx.q === 'torch.safe_globals' ? 'safe_globals' : 'add_safe_globals';
  report(ctx, 'SW124', `torch.serialization.${name} allowlists ${bad.join(', ')}: a weights_only=True load then lets a checkpoint call it, so a crafted file runs code. Allowlist only the data classes the checkpoint needs.`);
}

/** A safe load in a try body whose except handler retries with an unsafe load defeats the safe one: a crafted
 *  file fails the safe load on purpose (any unsupported global does) and is then loaded by the fallback. */
function checkFallbacks(base: Omit<Ctx, 'call' | 'fn' | 'args' | 'q'>, safeLoads: SafeLoad[]): void {
  if (!safeLoads.length) return;
  const unsafe = base.out.filter((i) => FALLBACK_RULES.has(i.rule) && i.severity !== 'info');
  if (!unsafe.length) return;
  for (const s of safeLoads) {
    let fallback: CodeIssue | undefined;
    for (let n: Node = s.call, p = n.parent; p && !['function_definition', 'lambda', 'class_definition'].includes(p.type); n = p, p = p.parent) {
      if (p.type !== 'try_statement' || !p.childForFieldName('body')?.equals(n)) continue;
      for (const h of p.namedChildren) {
        if (!h || (h.type !== 'except_clause' && h.type !== 'except_group_clause')) continue;
        fallback = unsafe.find((i) => i.start >= h.startIndex && i.end <= h.endIndex);
        if (fallback) break;
      }
      if (fallback) break;
    }
    if (!fallback) continue;
    const line = base.text.slice(0, fallback.start).split('\n').length - base.text.slice(0, s.call.startIndex).split('\n').length;
    const label = base.text.slice(fallback.start, fallback.end).replace(/\s+/g, ' ');
    const named = label.length > 80 ? `${label.slice(0, 77)}...` : label;
    const ctx: Ctx = { ...base, call: s.call, fn: s.call, args: readArgs(s.call)!, q: null };
    report(ctx, 'SW123', `${s.label} falls back to \`${named}\` (${fallback.rule}, ${line} line${line === 1 ? '' : 's'} below) in its except handler: a crafted file makes the safe load fail on purpose and is then loaded unsafely. Remove the fallback: convert the file to a format without code (for torch, or allowlist the classes it needs with torch.serialization.add_safe_globals).`);
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

/** What python/loadFixes.ts needs to build the file-dependent fixes of a torch.load call. */
function loadSiteOf(ctx: Ctx, path: Node): LoadSite {
  const pathEdit = safetensorsPathEdit(path);
  const loc = ctx.args.keywords.get('map_location') ?? ctx.args.positional[1];
  return {
    text: ctx.text, tree: ctx.tree, call: ctx.call, fn: ctx.fn, argList: ctx.args.list, args: ctx.args.all,
    weightsOnly: ctx.args.keywords.get('weights_only'),
    safetensorsPath: pathEdit ? ctx.text.slice(path.startIndex, pathEdit.start) + '.safetensors' + ctx.text.slice(pathEdit.end, path.endIndex) : path.text,
    device: loc && (loc.type === 'string' || loc.type === 'identifier' || loc.type === 'call') ? `, device=${loc.text}` : '',
    importedNames: ctx.resolver.importedNames(), importStatements: ctx.resolver.importStatements, cellStarts: ctx.cellStarts,
  };
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
