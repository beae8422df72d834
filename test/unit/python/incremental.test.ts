// Differential test of the per-keystroke path: after each random edit, the findings that reuse the previous
// analysis outside the edited statements (analyzePythonAfterEdit) must equal a fresh whole-program analysis,
// including the positions of every quick-fix edit and the on-demand convert edits.
import * as assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { getParser, parseSync, editTreeAt, type Tree } from '../../../server/src/python/parser';
import { analyzePython, analyzePythonAfterEdit, linkUnmoved, takeMovedFrom, type CodeIssue } from '../../../server/src/python/analyze';
import { FIXTURES } from './fixtures.test';
import { prng } from '../prng';

export function posAt(text: string, offset: number): { line: number; character: number } {
  let line = 0, start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) { line++; start = i + 1; }
  return { line, character: offset - start };
}

/** Comparable form: everything but functions, plus what the convert edits produce. */
export function normal(issues: CodeIssue[], runConvertEdits = true): unknown[] {
  const site = (i: CodeIssue) => { const x = i.loadSite?.(); return x && { call: [x.call.startIndex, x.call.endIndex], path: x.safetensorsPath, device: x.device }; };
  return issues.map((i) => ({ ...i, convertEdits: i.convertEdits ? (runConvertEdits ? i.convertEdits() : true) : undefined,
    loadSite: i.loadSite ? (runConvertEdits ? site(i) : true) : undefined }));
}

// Ordinary code with a few unsafe loads, aliases, shadowing and suppressions to edit around.
export function program(blocks: number): string {
  const out = ['"""Training helpers."""', 'import json', 'import os', 'import torch', 'import pickle as pk',
    'from yaml import load as yl', 'from torch import load', 'tl = torch.load', ''];
  for (let k = 0; k < blocks; k++) {
    out.push(`def step_${k}(model, batch, opts):`, '    total = 0.0', '    for x, y in batch:', '        loss = (model(x) - y).pow(2).mean()',
      '        total += float(loss.item())', '    meta = json.load(open(os.path.join(opts["dir"], "meta.json")))',
      k % 3 === 0 ? '    state = torch.load("ckpt.pt", map_location="cpu")' : '    state = None',
      k % 4 === 0 ? '    obj = pk.loads(meta)  # safe-weights: ignore[SW102]' : '    obj = None',
      '    return total, meta, state, obj', '',
      `class Runner_${k}:`, '    def load(self, name):', '        return self.read(name)',
      '    def read(self, name):', '        return yl(open(name))' + (k % 2 ? '' : '  # nosec'), '',
      k % 5 === 0 ? 'cfg = tl("m.pt", weights_only=False)' : `x_${k} = 1`, `result_${k} = [step_${k}(m, b, {}) for m, b in pairs]`, '');
  }
  return out.join('\n') + '\n';
}

export const SNIPPETS = ['#', 'x', ' ', '\n', '(', ')', '"', 'load', 'tl', ' = ', 'import os\n', 'load = 1\n', 'pickle.loads(b)\n',
  'torch.load("a.pt")\n', '  # safe-weights: ignore[SW101]', 'def f(load):\n    return load("x")\n', 'yl = 3\n', '\n\n',
  'from pickle import *\n', '    ', 'weights_only=True', ', ',
  // module-level imports of names other statements use, or shadow (the import-edit path of analyzePythonAfterEdit)
  'import osx\n', 'import tl\n', 'from mylib import yl\n', 'from mylib import load\n', 'import json as os\n', 'from tools import pk\n',
  'import shelve\n', 'from mylib import step_1\n', 'import decode\n'];

describe('incremental analysis after an edit equals a fresh analysis', function () {
  this.timeout(120_000);
  const corpora: [string, string][] = [['generated program', program(24)]];
  for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.py'))) corpora.push([f, readFileSync(join(FIXTURES, f), 'utf8')]);

  /** One edit on (text, tree, issues): both analyses; returns the next state and whether it was incremental. */
  async function step(label: string, text: string, tree: Tree, issues: CodeIssue[], start: number, del: number, ins: string) {
    const parser = await getParser();
    const next = text.slice(0, start) + ins + text.slice(start + del);
    editTreeAt(tree, start, start + del, ins, posAt(text, start), posAt(text, start + del));
    const nextTree = parseSync(parser, next, tree);
    const changed = nextTree.getChangedRanges(tree);
    const full = analyzePython(nextTree, next, {});
    const refresh = (at: number, rule: string) => analyzePython(nextTree, next, {}).find((i) => i.start === at && i.rule === rule);
    const inc = analyzePythonAfterEdit({ text, issues }, tree, nextTree, next, { start, oldEnd: start + del, newEnd: start + ins.length }, changed, {}, refresh);
    if (inc) {
      assert.deepEqual(normal(inc), normal(full),
        `${label}: edit at ${start} (-${del} +${JSON.stringify(ins)}) near ${JSON.stringify(next.slice(Math.max(0, start - 40), start + 40))}`);
    }
    return { next, nextTree, issues: inc ?? full, reused: !!inc };
  }

  for (const [name, base] of corpora) {
    it(`${name}: 150 single edits of the file, and 80 edits in a row`, async function () {
      const parser = await getParser();
      const rnd = prng(0x5eed + name.length);
      const baseTree = parseSync(parser, base);
      const baseIssues = analyzePython(baseTree, base, {});
      let reused = 0;
      for (let k = 0; k < 150; k++) {
        const start = Math.floor(rnd() * (base.length + 1));
        const del = rnd() < 0.4 ? Math.min(base.length - start, 1 + Math.floor(rnd() * 12)) : 0;
        const ins = rnd() < 0.75 ? SNIPPETS[Math.floor(rnd() * SNIPPETS.length)] : '';
        const tree = baseTree.copy();
        const r = await step(`${name} edit ${k}`, base, tree, baseIssues, start, del, ins);
        if (r.reused) reused++;
        tree.delete(); r.nextTree.delete();
      }
      // a chain of typing-like edits: each analysis reuses the one before
      let text = base, tree = baseTree.copy(), issues = baseIssues, typed = 0;
      for (let k = 0; k < 80; k++) {
        const start = Math.floor(rnd() * (text.length + 1));
        const del = rnd() < 0.3 ? Math.min(text.length - start, 1) : 0;
        const ins = del ? '' : ['#', 'x', ' ', '\n', '_'][Math.floor(rnd() * 5)];
        const r = await step(`${name} chain ${k}`, text, tree, issues, start, del, ins);
        tree.delete();
        ({ next: text, nextTree: tree, issues } = r);
        if (r.reused) typed++;
      }
      tree.delete(); baseTree.delete();
      // both kinds of edits must exercise the reuse path (random edits often break the syntax widely, which
      // rightly falls back to the whole-program analysis)
      assert.ok(typed >= 10 && reused >= 15, `${name}: ${typed} of 80 typed and ${reused} of 150 single edits took the incremental path`);
    });
  }
});

describe('incremental analysis on a big file: commenting lines in and out', function () {
  this.timeout(60_000);
  it('reuses the findings of the other statements for nearly every such edit, and agrees with a fresh analysis', async function () {
    const parser = await getParser();
    let text = program(300);
    let tree = parseSync(parser, text);
    let issues = analyzePython(tree, text, {});
    const lines = text.split('\n').length;
    let reused = 0;
    for (let k = 0; k < 60; k++) {
      const line = 20 + ((k * 997) % (lines - 40));
      let start = 0;
      for (let i = 0; i < line; i++) start = text.indexOf('\n', start) + 1;
      const comment = text[start] === '#';
      const next = comment ? text.slice(0, start) + text.slice(start + 1) : text.slice(0, start) + '#' + text.slice(start);
      const [del, ins] = comment ? [1, ''] : [0, '#'];
      editTreeAt(tree, start, start + del, ins, posAt(text, start), posAt(text, start + del));
      const nextTree = parseSync(parser, next, tree);
      const changed = nextTree.getChangedRanges(tree);
      const full = analyzePython(nextTree, next, {});
      const inc = analyzePythonAfterEdit({ text, issues }, tree, nextTree, next, { start, oldEnd: start + del, newEnd: start + ins.length },
        changed, {}, (at, rule) => analyzePython(nextTree, next, {}).find((i) => i.start === at && i.rule === rule));
      // (the on-demand convert edits are compared in the random-edit tests above; here each would re-analyze)
      if (inc) { reused++; assert.deepEqual(normal(inc, false), normal(full, false), `edit ${k} at line ${line}`); }
      tree.delete();
      tree = nextTree; text = next; issues = inc ?? full;
    }
    tree.delete();
    assert.ok(reused >= 50, `only ${reused} of 60 edits reused the other findings`);
  });
});

/** `base` with its first `from` replaced by `to`: the findings before, after (a fresh analysis) and incremental. */
async function replaceOnce(base: string, from: string, to: string) {
  const parser = await getParser();
  const tree = parseSync(parser, base);
  const issues = analyzePython(tree, base, {});
  const start = base.indexOf(from);
  assert.ok(start >= 0, from);
  const next = base.slice(0, start) + to + base.slice(start + from.length);
  editTreeAt(tree, start, start + from.length, to, posAt(base, start), posAt(base, start + from.length));
  const nextTree = parseSync(parser, next, tree);
  const full = analyzePython(nextTree, next, {});
  const inc = analyzePythonAfterEdit({ text: base, issues }, tree, nextTree, next, { start, oldEnd: start + from.length, newEnd: start + to.length },
    nextTree.getChangedRanges(tree), {}, (at, rule) => analyzePython(nextTree, next, {}).find((i) => i.start === at && i.rule === rule));
  tree.delete(); nextTree.delete();
  return { issues, full, inc, next };
}

describe('incremental analysis: an edit of a module-level import', function () {
  this.timeout(60_000);
  // issue 12's shape: every function calls through `os` and `json`, none of which a rule resolves
  const fn = (k: number) => [`def load_${k}(path):`, '    import torch', '    data = json.loads(os.environ.get("X", "{}"))',
    '    model = torch.load(path)', '    return model, data', ''];
  const base = ['from pickle import loads as decode', 'import json', 'import os', '', 'blob = decode(data)', '',
    ...Array.from({ length: 40 }, (_, k) => fn(k)).flat()].join('\n');
  const edit = (from: string, to: string) => replaceOnce(base, from, to);
  it('re-analyses only the import when no other statement resolves a name it mentions', async () => {
    // (`json.loads` in every function is asked about by the word pre-check only, which finds no target there)
    for (const [from, to] of [['import os', 'import osx'], ['import os', 'import os\nimport re, sys as system\n'], ['import os\n', ''],
      ['import json', 'import jsonx'], ['import json', 'import simplejson as json'], ['import json\n', '']]) {
      const { issues, full, inc } = await edit(from, to);
      assert.equal(full.length, issues.length, `${to}: the findings stay`);
      assert.ok(inc, `${JSON.stringify(from)} -> ${JSON.stringify(to)}: analysed whole`);
      assert.deepEqual(normal(inc), normal(full), to);
    }
  });
  it('analyses the program again when another statement resolves a name the import binds, or a rule knows it', async () => {
    for (const [from, to, changes] of [['import json', 'from mylib import decode', true], ['import os', 'import os as json', false],
      ['import json', 'import pickle as json', true], ['import json', 'from pickle import loads as j; import json', false],
      ['import os', 'import pickle', false], ['import os', 'from os import *', false], ['import os', 'import os, shelve', false]] as const) {
      const { issues, full, inc } = await edit(from, to);
      if (changes) assert.notEqual(full.length, issues.length, `${to}: the edit changes a finding elsewhere`);
      assert.equal(inc, undefined, `${JSON.stringify(from)} -> ${JSON.stringify(to)}: kept the other findings`);
    }
  });
});

describe('a whole analysis after an edit: linkUnmoved', function () {
  this.timeout(60_000);
  it('links each finding outside the edit to the previous one of the same rule, severity, message and place', async () => {
    const fn = (k: number) => [`def load_${k}(path):`, '    data = json.loads(path)', '    return torch.load(path)', ''];
    const base = ['import json', 'import torch', '', ...Array.from({ length: 20 }, (_, k) => fn(k)).flat()].join('\n');
    // (`json.loads` becomes `pickle.loads`: a new finding in every function, the torch.load ones stay, shifted)
    const from = 'import json', to = 'import pickle as json';
    const { issues, full } = await replaceOnce(base, from, to);
    const change = { start: 0, oldEnd: from.length, newEnd: to.length }, delta = to.length - from.length;
    const kept = full.filter((i) => i.rule === 'SW101');
    assert.ok(kept.length === 20 && full.length > 20, `${kept.length} torch.load findings of ${full.length}`);
    // one that stays, but says something else now: its diagnostic must be built again
    const reworded = { ...kept[3], message: `${kept[3].message} (reworded)` };
    const fresh = full.map((i) => (i === kept[3] ? reworded : i));
    linkUnmoved(issues, fresh, change);
    let linked = 0;
    for (const i of fresh) {
      const from = takeMovedFrom(i);
      const same = issues.find((o) => o.start + delta === i.start && o.end + delta === i.end && o.rule === i.rule && o.message === i.message);
      assert.equal(from, same, `${i.rule} at ${i.start}`);
      if (from) linked++;
    }
    assert.equal(linked, 19, 'the torch.load findings but the reworded one');
  });
});

describe('incremental analysis: edits that change findings in other statements', function () {
  this.timeout(60_000);
  // Each edit changes a binding that a finding elsewhere depends on; the findings after it must equal a fresh
  // analysis (the incremental path must see the dependency, or fall back to the whole program).
  // (unrelated statements between the parts keep each edit's re-analysed region small)
  const filler = (k: number): string[] => [`def helper_${k}(x):`, '    total = 0', '    for v in x:', '        total += v', '    return total', ''];
  const parts = [
    ['import pickle, torch, keras', 'import numpy as np', 'from multiprocessing.connection import Listener, Client', ''],
    ['h5_path = "legacy.h5"'], ['UNSAFE = [getattr]'], ['client = Client(("h", 1), authkey=b"k")'],
    ['class Restricted(pickle.Unpickler):', '    def find_class(self, m, n):', '        raise ValueError(n)'],
    ['loader = pickle.loads'], ['arr = pd.read_pickle(p)'],
    ['m = keras.models.load_model(h5_path)'], ['torch.serialization.add_safe_globals(UNSAFE)'], ['reply = client.recv()'],
    ['r = Restricted(fh).load()'], ['obj = loader(b)'], ['marker = 0'],
    ['from pickle import loads as decode', 'import json'], ['blob = decode(data)'],
  ];
  const base = parts.flatMap((p, k) => [...p, '', ...filler(k)]).join('\n');
  const edits: [string, string, string][] = [
    ['the path constant', 'h5_path = "legacy.h5"', 'h5_path = "model.keras"'],
    ['the allowlist list', 'UNSAFE = [getattr]', 'UNSAFE = [Config]'],
    ['the connection', 'client = Client(("h", 1), authkey=b"k")', 'client = make()'],
    ['the restricting method', '    def find_class(self, m, n):\n        raise ValueError(n)', '    pass'],
    ['an unbound well-known name', 'marker = 0', 'marker = 0\npd = None'],
    ['an unbound well-known name, bound by a chained assignment', 'marker = 0', 'marker = pd = None'],
    ['an alias', 'loader = pickle.loads', 'loader = len'],
    // import edits: the name an import binds shadows the import a finding elsewhere resolves through
    ['an import that shadows an imported target', 'import json', 'from mylib import decode'],
    ['an import that stops shadowing', 'from pickle import loads as decode\nimport json', 'from pickle import loads as decode_\nimport json'],
  ];
  for (const [what, from, to] of edits) {
    it(`editing ${what}`, async () => {
      const { issues, full, inc, next } = await replaceOnce(base, from, to);
      // the edit must matter somewhere outside its own statement, or this case tests nothing
      const outside = (list: CodeIssue[], t: string) => list.filter((i) => !t.slice(i.start, i.end).includes(to.split('\n').pop()!.trim())).map((i) => i.rule);
      assert.notDeepEqual(outside(full, next), outside(issues, base), `${what}: the edit changes no other finding`);
      if (inc) assert.deepEqual(normal(inc), normal(full), what);
    });
  }
});
