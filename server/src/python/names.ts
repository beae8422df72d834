// Name resolution for Python source: import bindings, aliases (`l = torch.load`), local shadowing, star imports.
// Works lazily from a name's textual occurrences, so only names that matter are ever looked at.
import { treeMemo, type Node } from './parser';
import { descend, firstTop, nextTop, tops, type Program } from './forest';

export interface Binding {
  scope: number;        // node id of the defining scope (0 = module)
  pos: number;          // offset of the binding
  target: string | null; // qualified name, or null when the name is bound to something local
  /** What the name is bound to, when the binding shows it: the right side of an assignment (`index`: the
   *  name's position in a tuple target), the value of `with v as name`, or the def/class node itself. */
  value?: Node;
  index?: number;
}

/** Names a notebook cell or a snippet uses without importing them: an unbound one is that module. */
export const WELL_KNOWN_MODULES: Readonly<Record<string, string>> = {
  pickle: 'pickle', torch: 'torch', yaml: 'yaml', np: 'numpy', numpy: 'numpy', joblib: 'joblib', pd: 'pandas',
  pandas: 'pandas', dill: 'dill',
};

/** Builtins an unbound name refers to (the ones dynamic access and allowlists care about). */
export const BUILTIN_NAMES = new Set([
  'getattr', 'setattr', 'delattr', '__import__', 'vars', 'globals', 'locals', 'eval', 'exec', 'compile', 'open',
  'input', 'breakpoint', 'exit', 'quit', 'help', 'memoryview', 'print', 'isinstance', 'issubclass', 'callable',
  'hasattr', 'id', 'repr', 'str', 'type', 'hash', 'map', 'filter', 'sorted', 'min', 'max', 'staticmethod',
  'classmethod', 'property', 'iter', 'next', 'apply', 'execfile', 'reload', 'dict', 'list', 'tuple', 'set', 'len',
]);

/** Calls whose result resolve() follows (the function's last name, checked before any resolution). */
const DYNAMIC_CALLS = /(?:^|\.)(?:getattr|import_module|__import__|vars)$/;

const SCOPE_TYPES = new Set(['function_definition', 'lambda', 'class_definition']);

/** Modules whose canonical names a `from m import *` brings in (only names the rules care about). */
const STAR_EXPORTS: Record<string, string[]> = {
  pickle: ['load', 'loads', 'Unpickler'],
  dill: ['load', 'loads', 'Unpickler'],
  cloudpickle: ['load', 'loads'],
  yaml: ['load', 'load_all', 'unsafe_load', 'unsafe_load_all', 'full_load', 'full_load_all', 'Loader', 'UnsafeLoader', 'FullLoader', 'SafeLoader', 'CSafeLoader', 'BaseLoader'],
  marshal: ['load', 'loads'],
  shelve: ['open'],
  torch: ['load', 'save'],
  numpy: ['load'],
  joblib: ['load'],
  pandas: ['read_pickle'],
};

/** Prefix rewrites that map re-exports and legacy names onto one canonical name per API. */
export const CANONICAL: [string, string][] = [
  ['six.moves.cPickle.', 'pickle.'], ['six.moves.cPickle', 'pickle'],
  ['cPickle.', 'pickle.'], ['_pickle.', 'pickle.'], ['pickle5.', 'pickle.'],
  ['sklearn.externals.joblib.', 'joblib.'], ['joblib.numpy_pickle.', 'joblib.'],
  ['torch.serialization.', 'torch.'], ['torch.hub.', 'torch.hub.'],
  ['torch.distributed.distributed_c10d.', 'torch.distributed.'],
  ['torch.package.package_importer.', 'torch.package.'],
  ['dill._dill.', 'dill.'], ['numpy.lib.npyio.', 'numpy.'], ['pandas.io.pickle.', 'pandas.'],
  ['tensorflow.keras.', 'keras.'], ['tensorflow.python.keras.', 'keras.'], ['tf_keras.', 'keras.'],
  ['keras.models.', 'keras.'], ['keras.saving.', 'keras.'], ['keras.config.', 'keras.'],
  ['keras.src.saving.saving_api.', 'keras.'],
  ['ruamel.yaml.main.', 'ruamel.yaml.'], ['jsonpickle.unpickler.', 'jsonpickle.'],
  ['yaml.loader.', 'yaml.'], ['yaml.cyaml.', 'yaml.'],
  ['torch.jit._serialization.', 'torch.jit.'], ['torch.multiprocessing.', 'multiprocessing.'],
  ['multiprocessing.context.', 'multiprocessing.'],
];

export function canonical(q: string): string {
  // Rewrites chain (tensorflow.keras.models.x -> keras.models.x -> keras.x); a few rounds reach the fixpoint.
  for (let round = 0; round < 4; round++) {
    const rule = CANONICAL.find(([from, to]) => q.startsWith(from) && from !== to);
    if (!rule) break;
    q = rule[1] + q.slice(rule[0].length);
  }
  return q;
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class NameResolver {
  private readonly imports = new Map<string, Binding[]>();
  private readonly stars: { scope: number; pos: number; module: string }[] = [];
  private readonly local = new Map<string, Binding[]>();
  private readonly resolving = new Set<string>();
  private roots: Set<string> | undefined;
  readonly importStatements: Node[];
  /** Which constant strings dynamic access is followed for (a name, or a module's first component); the rules
   *  set it to the names they care about so `getattr(obj, "size")` costs nothing. Default: all. */
  followed: (name: string) => boolean = () => true;

  /** Names bound by the imports left out for a region (see the constructor), read from their text. */
  private readonly skippedNames = new Set<string>();

  /** Where each name's binding was asked about: the offsets of the uses the analysis resolved it from (a name
   *  consulted on the way, `y` for `x = y.z` when resolving `x`, counts at the use of `x`). analyze.ts keeps it
   *  per program, so that an import edit re-analyses only what the names it binds can reach. */
  readonly deps = new Map<string, number[]>();
  /** While a name's local bindings are read: the names consulted for them (nameDeps). */
  private consulting: Set<string> | undefined;
  private readonly nameDeps = new Map<string, Set<string>>();

  /** Records a use of `name` at `at` in deps (for a pre-check made without `at`). */
  noteUse(name: string, at: number): void {
    this.consult(name, at);
  }

  private consult(name: string, at: number | undefined): void {
    if (this.consulting) { this.consulting.add(name); return; }
    if (at === undefined) return;
    const list = this.deps.get(name);
    if (list) { if (list[list.length - 1] !== at) list.push(at); } else this.deps.set(name, [at]);
  }

  /**
   * `region`: only code in [region[0], region[1]) will be resolved (the incremental analysis of an edit). Imports
   * inside other top-level functions bind nothing visible there, so they are not looked at in the tree (a file
   * with a local `import torch` in each of 1,000 functions); importBoundNames still lists their names.
   */
  private bodies: BodySpan[] | undefined;
  private fnBodies: BodySpan[] = [];

  /** With a region: the bodies of the top-level functions and classes outside it, sorted. What they bind is in
   *  their own scopes (a `global` there too: names.ts gives it the function's scope), never visible in the region.
   *  `fnBodies` gets the functions' among them. */
  private otherBodies(): BodySpan[] {
    if (this.bodies) return this.bodies;
    const [lo, hi] = this.region!;
    const out: BodySpan[] = [];
    for (const b of this.topBodies ?? listBodies(this.tree)) {
      if (b[0] < hi && b[1] > lo) continue;
      out.push(b);
      if (b[2]) this.fnBodies.push(b);
    }
    return (this.bodies = out);
  }

  /** `topBodies`: the bodies of the tree's top-level definitions when known (carryBodies), else read from the tree. */
  constructor(private readonly tree: Program, private readonly text: string, private readonly region?: [number, number],
    private readonly topBodies?: BodySpan[]) {
    const skip = region ? (at: number): boolean => this.inOtherFunction(at, region) : undefined;
    this.importStatements = findStatements(tree, text, /(?:^|;)[ \t]*(?:import|from)\b/gm, ['import_statement', 'import_from_statement'], skip);
    for (const stmt of this.importStatements) this.addImport(stmt);
  }

  private inOtherFunction(at: number, [lo, hi]: [number, number]): boolean {
    if (at >= lo && at < hi) return false;
    const lineStart = this.text.lastIndexOf('\n', at - 1) + 1;
    if (lineStart === at) return false;                    // column 0: a module-level import
    // (a search of the bodies found once, not a tree lookup per import: 1,666 local imports cost ~1.5 ms that way)
    this.otherBodies();
    if (!insideAny(this.fnBodies, at)) return false;
    // its names, over-approximated: every identifier of the statement's text (to its closing parenthesis)
    let end = this.text.indexOf('\n', at);
    if (end < 0) end = this.text.length;
    const open = this.text.indexOf('(', at);
    if (open >= 0 && open < end) { const close = this.text.indexOf(')', open); if (close > end) end = close; }
    for (const m of this.text.slice(at, end).matchAll(/[A-Za-z_]\w*/g)) this.skippedNames.add(m[0]);
    return true;
  }

  /** Names bound by imports whose target is a function or class (not a module): `from torch import load as l`. */
  importedNames(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [name, list] of this.imports) out.set(name, list.map((b) => b.target ?? '').filter(Boolean));
    return out;
  }

  private addBinding<K>(map: Map<K, Binding[]>, key: K, b: Binding): void {
    let list = map.get(key);
    if (!list) map.set(key, (list = []));
    list.push(b);
  }

  private addImport(stmt: Node): void {
    const scope = scopeId(stmt);
    const pos = stmt.startIndex;
    if (stmt.type === 'import_statement') {
      for (const n of stmt.childrenForFieldName('name')) {
        if (!n) continue;
        if (n.type === 'aliased_import') {
          const alias = n.childForFieldName('alias');
          const name = n.childForFieldName('name');
          if (alias && name) this.addBinding(this.imports, alias.text, { scope, pos, target: name.text.replace(/\s+/g, '') });
        } else {
          const head = n.text.split('.')[0].trim();
          this.addBinding(this.imports, head, { scope, pos, target: head });
        }
      }
      return;
    }
    const mod = stmt.childForFieldName('module_name');
    const relative = !mod || mod.type === 'relative_import';
    const base = mod ? mod.text.replace(/\s+/g, '') : '';
    for (const child of stmt.namedChildren) {
      if (child?.type === 'wildcard_import' && !relative) this.stars.push({ scope, pos, module: canonical(base) });
    }
    for (const n of stmt.childrenForFieldName('name')) {
      if (!n) continue;
      let name: string;
      let bound: string;
      if (n.type === 'aliased_import') {
        name = n.childForFieldName('name')?.text ?? '';
        bound = n.childForFieldName('alias')?.text ?? name;
      } else {
        name = n.text;
        bound = name;
      }
      this.addBinding(this.imports, bound, { scope, pos, target: relative ? null : `${base}.${name}` });
    }
  }

  /** Bindings of `name` that are not imports: defs, classes, parameters, assignments, loop targets. */
  private localBindings(name: string): Binding[] {
    const cached = this.local.get(name);
    if (cached) return cached;
    const list: Binding[] = [];
    this.local.set(name, list);
    const outer = this.consulting;
    const inner = new Set<string>();
    this.nameDeps.set(name, inner);
    this.consulting = inner;
    try { this.readLocalBindings(name, list); } finally { this.consulting = outer; }
    return list;
  }

  private readLocalBindings(name: string, list: Binding[]): void {
    const re = new RegExp(`(?<![\\w.])${escapeRegExp(name)}(?!\\w)`, 'g');
    const elsewhere = this.region ? this.otherBodies() : undefined;
    for (let m = re.exec(this.text); m; m = re.exec(this.text)) {
      if (elsewhere && insideAny(elsewhere, m.index)) continue;
      const node = descend(this.tree, m.index, m.index + name.length);
      if (!node || node.type !== 'identifier') continue;
      const b = this.bindingAt(node);
      if (b) list.push(b);
    }
  }

  private bindingAt(node: Node): Binding | undefined {
    const p = node.parent;
    if (!p) return undefined;
    const pos = node.startIndex;
    switch (p.type) {
      case 'function_definition':
      case 'class_definition':
        return p.childForFieldName('name')?.equals(node) ? { scope: scopeId(p), pos, target: null, value: p } : undefined;
      case 'parameters':
      case 'lambda_parameters':
      case 'typed_parameter':
      case 'list_splat_pattern':
      case 'dictionary_splat_pattern':
      case 'default_parameter':
      case 'typed_default_parameter': {
        if ((p.type === 'default_parameter' || p.type === 'typed_default_parameter') && !p.childForFieldName('name')?.equals(node)) return undefined;
        const fn = ancestor(p, ['function_definition', 'lambda']);
        if (!fn || !ancestor(node, ['parameters', 'lambda_parameters'])) return undefined;
        return { scope: fn.id, pos: fn.startIndex, target: null };
      }
      case 'for_statement':
      case 'for_in_clause':
        return p.childForFieldName('left')?.equals(node) ? { scope: scopeId(p), pos, target: null } : undefined;
      case 'as_pattern_target': {
        const value = p.parent?.type === 'as_pattern' ? p.parent.namedChildren[0] ?? undefined : undefined;
        return { scope: scopeId(p), pos, target: null, value: value && !value.equals(p) ? value : undefined };
      }
      case 'named_expression':
      case 'augmented_assignment':
      case 'global_statement':
      case 'nonlocal_statement':
        if (p.type === 'augmented_assignment' && !p.childForFieldName('left')?.equals(node)) return undefined;
        if (p.type === 'named_expression' && !p.childForFieldName('name')?.equals(node)) return undefined;
        return { scope: scopeId(p), pos, target: null };
      case 'pattern_list':
      case 'tuple_pattern':
      case 'list_pattern': {
        const a = ancestor(p, ['assignment', 'for_statement', 'for_in_clause']);
        if (!a || a.childForFieldName('left')?.startIndex !== startOfTarget(p)) return undefined;
        const b: Binding = { scope: scopeId(a), pos, target: null };
        // `a, b = Pipe()`: remember which element of the value the name receives
        if (a.type === 'assignment' && a.childForFieldName('left')?.equals(p)) {
          b.value = a.childForFieldName('right') ?? undefined;
          b.index = p.namedChildren.findIndex((c) => c?.equals(node));
        }
        return b;
      }
      case 'assignment': {
        if (!p.childForFieldName('left')?.equals(node)) return undefined;
        const right = p.childForFieldName('right') ?? undefined;
        const target = right ? this.resolveValue(right) : null;
        return { scope: scopeId(p), pos, target, value: right };
      }
      default:
        return undefined;
    }
  }

  private readonly scoped = new Map<string, Map<number, Binding[]>>();

  /** The import and local bindings of `name` grouped by scope, in their order (imports first). Grouped once per
   *  name: a function-local `import torch` in each of 1,666 functions made every lookup of torch filter all 1,666
   *  bindings for each scope around the use (9 ms of a 72 ms whole-file analysis, measured). */
  private bindingsByScope(name: string): Map<number, Binding[]> {
    const cached = this.scoped.get(name);
    if (cached) return cached;
    const out = new Map<number, Binding[]>();
    for (const b of [...(this.imports.get(name) ?? []), ...this.localBindings(name)]) this.addBinding(out, b.scope, b);
    this.scoped.set(name, out);
    return out;
  }

  /** Qualified name a bare name refers to at `use`; null when bound locally, undefined when unbound. */
  lookup(name: string, use: Node): string | null | undefined {
    const b = this.bindingOf(name, use);
    return b === undefined ? undefined : b.target;
  }

  /** The binding of `name` that is visible at `use` (a star import gives a binding without a position). */
  bindingOf(name: string, use: Node): Binding | undefined {
    const at = use.startIndex;
    this.consult(name, at);
    if (this.resolving.has(name)) return undefined;
    this.resolving.add(name);
    try {
      const byScope = this.bindingsByScope(name);
      for (const d of this.nameDeps.get(name) ?? []) this.consult(d, at);
      let first = true;
      for (let s: Node | null = enclosingScope(use); ; s = s ? enclosingScope(s) : null) {
        const id = s ? s.id : 0;
        if (!(s && s.type === 'class_definition' && !first)) {
          const found = pick(byScope.get(id) ?? [], at);
          if (found) return found;
          if (!s) {
            const star = this.stars.filter((st) => st.scope === 0 && STAR_EXPORTS[st.module]?.includes(name));
            if (star.length) return { scope: 0, pos: -1, target: `${star[star.length - 1].module}.${name}` };
          }
        }
        first = false;
        if (!s) return undefined;
      }
    } finally {
      this.resolving.delete(name);
    }
  }

  /**
   * Canonical qualified name of what an expression evaluates to, or null: names and attribute chains
   * (imports, aliases, an unbound well-known module or builtin), and constant-string dynamic access:
   * `getattr(torch, "load")`, `importlib.import_module("pickle")`, `__import__("pickle")`,
   * `sys.modules["pickle"]`, `pickle.__dict__["loads"]`, `vars(pickle)["loads"]`, `globals()["pickle"]`.
   */
  resolveValue(node: Node, depth = 0): string | null {
    if (depth > 12) return null;
    switch (node.type) {
      case 'identifier': {
        const t = this.lookup(node.text, node);
        if (t === undefined) return WELL_KNOWN_MODULES[node.text] ?? (BUILTIN_NAMES.has(node.text) ? `builtins.${node.text}` : null);
        return t === null ? null : canonical(t);
      }
      case 'attribute': {
        const obj = node.childForFieldName('object');
        const attr = node.childForFieldName('attribute');
        const base = obj ? this.resolveValue(obj, depth + 1) : null;
        return base && attr ? canonical(`${base}.${attr.text}`) : null;
      }
      case 'parenthesized_expression': {
        const inner = node.namedChildren.find((c) => c && c.type !== 'comment');
        return inner ? this.resolveValue(inner, depth + 1) : null;
      }
      case 'call': {
        const fn = node.childForFieldName('function');
        const list = node.childForFieldName('arguments');
        if (!fn || !list || list.type !== 'argument_list' || !DYNAMIC_CALLS.test(fn.text.replace(/\s+/g, ''))) return null;
        const args = list.namedChildren.filter((c): c is Node => !!c && c.type !== 'comment' && c.type !== 'keyword_argument');
        // the constant first: most getattr(obj, name) calls never need the function resolved
        const key = constantString(/getattr$/.test(fn.text) ? args[1] : args[0] ?? list.namedChildren.find((c) => c?.type === 'keyword_argument')?.childForFieldName('value'));
        if (key === undefined || !this.followed(key.split('.')[0])) return null;
        const q = this.resolveValue(fn, depth + 1);
        const kw = (name: string): Node | undefined => list.namedChildren.find((c) => c?.type === 'keyword_argument' && c.childForFieldName('name')?.text === name)?.childForFieldName('value') ?? undefined;
        if (q === 'builtins.getattr') {
          const name = constantString(args[1]);
          const base = args[0] && name && /^[A-Za-z_]\w*$/.test(name) && this.followed(name) ? this.resolveValue(args[0], depth + 1) : null;
          return base ? canonical(`${base}.${name}`) : null;
        }
        if (q === 'importlib.import_module') {
          const mod = constantString(args[0] ?? kw('name'));
          return mod && /^[A-Za-z_][\w.]*$/.test(mod) && this.followed(mod.split('.')[0]) ? canonical(mod) : null;
        }
        if (q === 'builtins.__import__' || q === 'importlib.__import__') {
          const mod = constantString(args[0] ?? kw('name'));
          if (!mod || !/^[A-Za-z_][\w.]*$/.test(mod) || !this.followed(mod.split('.')[0])) return null;
          const fromlist = args[3] ?? kw('fromlist');
          const nonEmpty = fromlist && !['none', 'list', 'tuple'].includes(fromlist.type) ? true
            : !!fromlist && fromlist.type !== 'none' && fromlist.namedChildren.some((c) => c && c.type !== 'comment');
          return canonical(nonEmpty ? mod : mod.split('.')[0]);
        }
        return null;
      }
      case 'subscript': {
        const value = node.childForFieldName('value');
        const key = constantString(node.childForFieldName('subscript') ?? undefined);
        if (!value || !key || !/^[A-Za-z_][\w.]*$/.test(key) || !this.followed(key.split('.')[0])) return null;
        if (value.type === 'attribute' && value.childForFieldName('attribute')?.text === '__dict__') {
          const obj = value.childForFieldName('object');
          const base = obj && /^[A-Za-z_]\w*$/.test(key) ? this.resolveValue(obj, depth + 1) : null;
          return base ? canonical(`${base}.${key}`) : null;
        }
        if (value.type === 'call') {
          const fn = value.childForFieldName('function');
          const fq = fn?.type === 'identifier' ? this.resolveValue(fn, depth + 1) : null;
          const inner = value.childForFieldName('arguments')?.namedChildren.filter((c) => c && c.type !== 'comment') ?? [];
          if (fq === 'builtins.vars' && inner[0]) {
            const base = this.resolveValue(inner[0], depth + 1);
            return base ? canonical(`${base}.${key}`) : null;
          }
          if ((fq === 'builtins.globals' || fq === 'builtins.locals') && inner.length === 0 && /^[A-Za-z_]\w*$/.test(key)) {
            const t = this.lookup(key, node);
            return t === undefined ? WELL_KNOWN_MODULES[key] ?? null : t === null ? null : canonical(t);
          }
          return null;
        }
        return this.resolveValue(value, depth + 1) === 'sys.modules' ? canonical(key) : null;
      }
      default:
        return null;
    }
  }

  /** Names bound by imports outside [lo, hi) (module-level ones, and the left-out ones of other functions). */
  importBoundOutside(lo: number, hi: number): Set<string> {
    const out = new Set(this.skippedNames);
    for (const [name, list] of this.imports) if (list.some((b) => b.pos < lo || b.pos >= hi)) out.add(name);
    for (const st of this.stars) if (st.pos < lo || st.pos >= hi) for (const n of STAR_EXPORTS[st.module] ?? []) out.add(n);
    return out;
  }

  /** Every name an import statement binds (`import torch`, `from x import y as z`). */
  importBoundNames(): string[] { return [...new Set([...this.imports.keys(), ...this.skippedNames])]; }
  hasStarImports(): boolean { return this.stars.length > 0; }
  /** Names star imports can bring in (the ones the rules know). */
  starNames(): string[] { return this.stars.flatMap((st) => STAR_EXPORTS[st.module] ?? []); }

  /** Top-level module names of every import (and star import) in the program (a new set each call). */
  importRoots(): Set<string> {
    if (this.roots) return new Set(this.roots);
    const out = new Set<string>();
    for (const list of this.imports.values()) {
      for (const b of list) if (b.target) { out.add(b.target.split('.')[0]); out.add(canonical(b.target).split('.')[0]); }
    }
    for (const st of this.stars) out.add(st.module.split('.')[0]);
    this.roots = out;
    return new Set(out);
  }

  /** Like resolveChain but from import bindings only, ignoring scopes and shadowing: a fast pre-check. `at`: the
   *  use's offset, recorded in deps (none for whole-text passes such as alias lines). */
  resolveByImports(chain: string[], at?: number): string | null {
    this.consult(chain[0], at);
    const list = this.imports.get(chain[0]);
    let head = list?.find((b) => b.target)?.target;
    if (!head && !list && chain.length > 1) head = WELL_KNOWN_MODULES[chain[0]];
    if (!head && chain.length === 1) {
      const star = this.stars.find((st) => STAR_EXPORTS[st.module]?.includes(chain[0]));
      if (star) head = `${star.module}.${chain[0]}`;
      return head ? canonical(head) : null;
    }
    if (!head) return null;
    return canonical([head, ...chain.slice(1)].join('.'));
  }

  /** Canonical qualified name of a dotted chain such as ['t', 'load'], or null if it is not an import. */
  resolveChain(chain: string[], use: Node): string | null {
    const found = this.lookup(chain[0], use);
    const head = found === undefined ? WELL_KNOWN_MODULES[chain[0]] : found;
    if (!head) return null;
    return canonical([head, ...chain.slice(1)].join('.'));
  }
}

function pick(list: Binding[], at: number): Binding | undefined {
  let before: Binding | undefined;
  let after: Binding | undefined;
  for (const b of list) {
    if (b.pos <= at) {
      if (!before || b.pos >= before.pos) before = b;
    } else if (!after || b.pos < after.pos) after = b;
  }
  return before ?? after;
}

function startOfTarget(p: Node): number {
  let n: Node = p;
  while (n.parent && ['pattern_list', 'tuple_pattern', 'list_pattern'].includes(n.parent.type)) n = n.parent;
  return n.startIndex;
}

export function ancestor(node: Node, types: string[]): Node | null {
  for (let p = node.parent; p; p = p.parent) if (types.includes(p.type)) return p;
  return null;
}

/** The scope a node's own bindings land in: the nearest function, lambda or class body around it. Kept per tree
 *  and node: the same uses, defs and scopes are asked about again and again (bindingOf climbs from each use to
 *  the module), and each step up is a tree-sitter parent lookup. Whole-file analysis of issue 12's file:
 *  ~54 -> ~46 ms. */
function enclosingScope(node: Node): Node | null {
  const memo = treeMemo<Node | null>(node.tree);
  const known = memo.get(node.id);
  if (known !== undefined) return known;
  const scope = findEnclosingScope(node);
  memo.set(node.id, scope);
  return scope;
}

function findEnclosingScope(node: Node): Node | null {
  for (let child = node, p = node.parent; p; child = p, p = p.parent) {
    if (!SCOPE_TYPES.has(p.type)) continue;
    // Reached through the def's own block or parameter list (its only children of those types, the body and
    // parameters fields): no field lookups needed. Saves ~2 wasm calls per scope per lookup (~4 ms of a 72 ms
    // whole-file analysis of issue 12's file, measured).
    if (child.type === 'block' ? p.type !== 'lambda' : child.type === (p.type === 'lambda' ? 'lambda_parameters' : 'parameters')) return p;
    // A def's name, decorators and default values belong to the outer scope; its body and parameters to itself.
    const body = p.childForFieldName('body');
    const params = p.childForFieldName('parameters');
    if ((body && within(node, body)) || (params && within(node, params))) return p;
  }
  return null;
}

function within(node: Node, outer: Node): boolean {
  return node.startIndex >= outer.startIndex && node.endIndex <= outer.endIndex;
}

function scopeId(node: Node): number {
  return enclosingScope(node)?.id ?? 0;
}

/** Literal value of a string node (implicit concatenation of plain literals included), if constant. */
export function constantString(n: Node | undefined | null): string | undefined {
  if (!n) return undefined;
  if (n.type === 'concatenated_string') {
    let out = '';
    for (const c of n.namedChildren) {
      if (!c || c.type === 'comment') continue;
      const v = constantString(c);
      if (v === undefined) return undefined;
      out += v;
    }
    return out;
  }
  if (n.type !== 'string') return undefined;
  if (n.namedChildren.some((c) => c?.type === 'interpolation')) return undefined;
  return n.namedChildren.filter((c) => c?.type === 'string_content').map((c) => c!.text).join('');
}

/** ['a', 'b', 'c'] for `a.b.c`; null for anything that is not a plain name or attribute chain. */
export function dottedChain(node: Node): string[] | null {
  if (node.type === 'identifier') return [node.text];
  if (node.type === 'attribute') {
    const obj = node.childForFieldName('object');
    const attr = node.childForFieldName('attribute');
    if (!obj || !attr) return null;
    const head = dottedChain(obj);
    return head ? [...head, attr.text] : null;
  }
  return null;
}

/** A top-level definition's body: start, end, and whether the definition is a function (not a class). */
export type BodySpan = [number, number, boolean];

/** The bodies of the top-level functions and classes in [from, to) of `tree`, in order. */
function listBodies(tree: Program, from = 0, to = Infinity): BodySpan[] {
  const out: BodySpan[] = [];
  // the whole file: one `children` call (cheaper than a sibling walk); a range: from its first statement on
  let list: (Node | null)[] = [];
  if (from === 0 && to === Infinity) list = tops(tree);
  else for (let t = firstTop(tree, from); t && t.startIndex < to; t = nextTop(tree, t)) list.push(t);
  for (const top of list) {
    const def = top?.type === 'decorated_definition' ? top.childForFieldName('definition') : top;
    if (def?.type !== 'function_definition' && def?.type !== 'class_definition') continue;
    const body = def.childForFieldName('body');
    if (body) out.push([body.startIndex, body.endIndex, def.type === 'function_definition']);
  }
  return out;
}

const bodiesOfTree = new WeakMap<Program, BodySpan[]>();

/** The top-level bodies of `tree`, made by one edit of `oldTree` that changed only the whole statements in
 *  [lo, hi) (new text; oldHi in the old one, delta = new length - old): those outside are carried over from the
 *  list kept for the old tree (shifted past the edit), those inside are read again. Listing all 1,666 bodies of
 *  issue 12's file from the tree costs ~1.3 ms per keystroke; carrying them over ~0.05 ms. */
export function carryBodies(oldTree: Program, tree: Program, lo: number, hi: number, oldHi: number, delta: number): BodySpan[] {
  const prev = bodiesOfTree.get(oldTree);
  let out: BodySpan[];
  if (!prev) out = listBodies(tree);
  else {
    out = prev.filter((b) => b[1] <= lo);
    out.push(...listBodies(tree, lo, hi));
    for (const b of prev) if (b[0] >= oldHi) out.push([b[0] + delta, b[1] + delta, b[2]]);
  }
  bodiesOfTree.set(tree, out);
  return out;
}

/** Whether `at` lies in one of the sorted, disjoint ranges. */
function insideAny(ranges: readonly (readonly [number, number, ...unknown[]])[], at: number): boolean {
  let lo = 0, hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid][1] <= at) lo = mid + 1;
    else if (ranges[mid][0] > at) hi = mid - 1;
    else return true;
  }
  return false;
}

/**
 * Statements of the given types that start where `re` matches (a textual pre-selection: much faster than a
 * full-tree descendantsOfType on large files). Matches inside strings or comments find no such statement.
 */
export function findStatements(tree: Program, text: string, re: RegExp, types: string[], skip?: (at: number) => boolean): Node[] {
  const out: Node[] = [];
  const seen = new Set<number>();
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const at = m.index + m[0].search(/[a-z]/);
    if (skip?.(at)) continue;
    const node = descend(tree, at, at + 1);
    for (let n: Node | null = node; n; n = n.parent) {
      if (types.includes(n.type)) {
        if (n.startIndex === at && !seen.has(n.id)) {
          seen.add(n.id);
          out.push(n);
        }
        break;
      }
      if (n.startIndex !== at) break;
    }
  }
  return out;
}
