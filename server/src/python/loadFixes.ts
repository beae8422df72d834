// Edits of the fixes that depend on the file a torch.load call loads (python/fileFixes.ts picks among them):
// the load wrapped in `with torch.serialization.safe_globals([...])` for exactly the globals the file needs,
// and the load replaced by a call that rebuilds the whole checkpoint from its .safetensors conversion.
import type { Node } from './parser';
import type { Program } from './forest';
import * as edits from './edits';
import type { TextEditSpan } from './edits';

/** What the builders need to know about one torch.load call (captured by the analysis). */
export interface LoadSite {
  text: string;
  tree: Program;
  call: Node;
  fn: Node;
  argList: Node;
  args: Node[];
  /** The weights_only= value when given. */
  weightsOnly?: Node;
  /** Source text of the path literal with the extension turned into .safetensors. */
  safetensorsPath: string;
  /** `device=...` text for the load_file / rebuild call, from map_location (empty when none applies). */
  device: string;
  /** Names bound by imports -> what they are (names.ts importedNames). */
  importedNames: Map<string, string[]>;
  importStatements: Node[];
  cellStarts: number[];
}

export const REBUILD_FUNCTION = 'load_safetensors_checkpoint';

/** The helper the rebuild fix adds once per program (data only: JSON, base64, safetensors; nothing is unpickled). */
export const REBUILD_HELPER = `def ${REBUILD_FUNCTION}(path, device="cpu"):
    """Rebuilds a checkpoint converted by Safe Weights: the tensors come from the .safetensors file and every
    other value from the structure kept in its metadata, so the result equals what torch.load returned."""
    import base64
    import collections
    import json
    from safetensors import safe_open

    with safe_open(path, framework="pt", device=device) as f:
        tree = json.loads(f.metadata()["safe_weights.structure"])
        tensors = {name: f.get_tensor(name) for name in f.keys()}

    def build(n):
        if not isinstance(n, list):
            return n
        tag = n[0]
        if tag == "t":
            return tensors[n[1]].requires_grad_() if len(n) > 2 and n[2] else tensors[n[1]]
        if tag == "p":
            import torch
            return torch.nn.Parameter(tensors[n[1]], requires_grad=bool(n[2]))
        if tag == "np":
            return tensors[n[1]].cpu().numpy()
        if tag == "nps":
            import numpy
            return numpy.frombuffer(base64.b64decode(n[2]), dtype=numpy.dtype(n[1]))[0]
        if tag == "i":
            return int(n[1])
        if tag == "f":
            return float(n[1])
        if tag == "c":
            return complex(float(n[1]), float(n[2]))
        if tag == "b":
            return base64.b64decode(n[1])
        if tag == "ba":
            return bytearray(base64.b64decode(n[1]))
        if tag == "tu":
            return tuple(build(x) for x in n[1])
        if tag == "l":
            return [build(x) for x in n[1]]
        if tag == "set":
            return {build(x) for x in n[1]}
        if tag == "fset":
            return frozenset(build(x) for x in n[1])
        if tag == "d":
            return {build(k): build(v) for k, v in n[1]}
        if tag == "od":
            d = collections.OrderedDict((build(k), build(v)) for k, v in n[1])
            for name, v in (n[2] if len(n) > 2 else {}).items():
                setattr(d, name, build(v))
            return d
        if tag == "ns":
            import argparse
            return argparse.Namespace(**{name: build(v) for name, v in n[1]})
        if tag == "path":
            import pathlib
            return getattr(pathlib, n[1])(*n[2])
        if tag == "size":
            import torch
            return torch.Size(n[1])
        if tag == "dev":
            import torch
            return torch.device(*n[1:])
        raise ValueError(f"{path}: unknown value tag {tag!r}")

    return build(tree)`;

/** The name a module is imported under in the program (`import numpy as np` -> np), if any. */
function moduleName(site: LoadSite, module: string): string | undefined {
  for (const [name, targets] of site.importedNames) if (targets.includes(module)) return name;
  return undefined;
}

/** The statement the call is part of, when it is a simple statement on lines of its own. */
function ownStatement(site: LoadSite): Node | undefined {
  let n: Node | null = site.call;
  while (n && n.parent && n.parent.type !== 'block' && n.parent.type !== 'module') {
    if (['lambda', 'function_definition', 'class_definition', 'list_comprehension', 'generator_expression',
      'dictionary_comprehension', 'set_comprehension', 'decorator'].includes(n.type)) return undefined;
    n = n.parent;
  }
  if (!n || !n.parent) return undefined;
  if (!['expression_statement', 'return_statement'].includes(n.type)) return undefined;
  const ls = site.text.lastIndexOf('\n', n.startIndex - 1) + 1;
  if (!/^[ \t]*$/.test(site.text.slice(ls, n.startIndex))) return undefined;   // `if x: y = torch.load(p)`
  const le = edits.lineEnd(site.text, n.endIndex);
  if (site.text.slice(n.endIndex, le).replace(/#.*$/, '').trim() !== '') return undefined;   // `a = torch.load(p); b = 1`
  // lines inside a multi-line string must not be re-indented
  const stack: Node[] = [n];
  while (stack.length) {
    const x = stack.pop()!;
    if (x.type === 'string' && x.text.includes('\n')) return undefined;
    for (const c of x.namedChildren) if (c) stack.push(c);
  }
  return n;
}

/** Python source for a global "module.name" and the import it needs (none when the module is already imported). */
function globalExpr(site: LoadSite, full: string, modules: string[]): { expr: string; module?: string } {
  const dot = full.lastIndexOf('.');
  // classes nested in others are written module.Outer.Inner; the module is the longest imported prefix
  const parts = full.split('.');
  for (let i = parts.length - 1; i >= 1; i--) {
    const mod = parts.slice(0, i).join('.');
    const bound = moduleName(site, mod);
    if (bound) return { expr: [bound, ...parts.slice(i)].join('.') };
  }
  const module = full.slice(0, dot);
  if (!modules.includes(module)) modules.push(module);
  return { expr: full, module };
}

/**
 * The load inside `with torch.serialization.safe_globals([...]):` listing `globals` (what the file needs beyond
 * torch's allowlist), with weights_only=True; the imports the listed names need are added. Undefined when the
 * call is not a statement of its own (inside a condition, a lambda, a one-line block, a multi-line string).
 */
export function safeGlobalsEdits(site: LoadSite, globals: readonly string[]): TextEditSpan[] | undefined {
  const stmt = ownStatement(site);
  if (!stmt) return undefined;
  const { text } = site;
  const out: TextEditSpan[] = [];
  const modules: string[] = [];
  const torchName = moduleName(site, 'torch');
  if (!torchName) modules.push('torch');
  const exprs = globals.map((g) => globalExpr(site, g, modules).expr);
  // weights_only=True inside the statement text
  const wo = site.weightsOnly
    ? edits.replaceNode(site.weightsOnly, 'True')
    : edits.addKeyword(text, site.argList, site.args, 'weights_only=True');
  const ls = text.lastIndexOf('\n', stmt.startIndex - 1) + 1;
  const indent = text.slice(ls, stmt.startIndex);
  const unit = indent.includes('\t') ? '\t' : '    ';
  const body = text.slice(stmt.startIndex, wo.start) + wo.newText + text.slice(wo.end, stmt.endIndex);
  const inner = body.split('\n').map((l, i) => (i === 0 ? `${indent}${unit}${l}` : l === '' ? l : `${unit}${l}`)).join('\n');
  const head = `${indent}with ${torchName ?? 'torch'}.serialization.safe_globals([${exprs.join(', ')}]):\n`;
  out.push({ start: ls, end: stmt.endIndex, newText: head + inner });
  // one insertion for all the imports (clients differ in how they order several inserts at one offset)
  if (modules.length) out.push(edits.addImport(text, site.tree, site.importStatements, site.cellStarts, site.call.startIndex, modules.map((m) => `import ${m}`).join('\n')));
  return merge(out);
}

/** Whether the program already defines the rebuild helper (then the fix only rewrites the call). */
export function definesRebuildHelper(text: string): boolean {
  return new RegExp(`^def ${REBUILD_FUNCTION}\\(`, 'm').test(text);
}

/** torch.load("ckpt.pth", ...) -> load_safetensors_checkpoint("ckpt.safetensors"[, device=...]), adding the helper once. */
export function rebuildEdits(site: LoadSite): TextEditSpan[] {
  const out: TextEditSpan[] = [];
  if (!definesRebuildHelper(site.text)) {
    const at = edits.addImport(site.text, site.tree, site.importStatements, site.cellStarts, site.call.startIndex, '@');
    // after the imports (or at the start of the cell): two blank lines around a top-level function (PEP 8)
    out.push({ start: at.start, end: at.end, newText: at.newText === '\n@' ? `\n\n\n${REBUILD_HELPER}\n` : `${REBUILD_HELPER}\n\n\n` });
  }
  out.push({ start: site.call.startIndex, end: site.call.endIndex, newText: `${REBUILD_FUNCTION}(${site.safetensorsPath}${site.device})` });
  return merge(out);
}

/** Edits sorted by position; inserts at one offset keep their order. */
function merge(list: TextEditSpan[]): TextEditSpan[] {
  return list.map((e, i) => ({ e, i })).sort((a, b) => a.e.start - b.e.start || a.i - b.i).map((x) => x.e);
}
