// Incremental analysis with function-local imports (issue 12: `def f(): import torch` in every function made every
// keystroke re-analyse the whole file). Edits inside such functions must stay incremental, and every incremental
// result must equal a fresh analysis, including edits that move an import to module level or out of a function.
import * as assert from 'node:assert/strict';
import { getParser, parseSync, editTreeAt, type Tree } from '../../../server/src/python/parser';
type Parser = Awaited<ReturnType<typeof getParser>>;
import { analyzePython, analyzePythonAfterEdit, type CodeIssue } from '../../../server/src/python/analyze';
import { prng } from '../prng';

function posAt(text: string, offset: number): { line: number; character: number } {
  let line = 0, start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) { line++; start = i + 1; }
  return { line, character: offset - start };
}

const normal = (issues: CodeIssue[]): unknown[] => issues.map((i) => ({ ...i, convertEdits: !!i.convertEdits, loadSite: undefined }));

/** A program edited step by step, as the server does it: the tree told of each edit and parsed again, the edit
 *  analysed incrementally (`inc`, undefined when the analysis falls back) and afresh (`full`); the next state
 *  keeps the incremental findings when there are some. */
class Edited {
  tree: Tree;
  issues: CodeIssue[];
  constructor(private readonly parser: Parser, public text: string) {
    this.tree = parseSync(parser, text);
    this.issues = analyzePython(this.tree, text, {});
  }
  edit(start: number, del: number, ins: string): { inc: CodeIssue[] | undefined; full: CodeIssue[]; next: string } {
    const { text, tree } = this;
    const next = text.slice(0, start) + ins + text.slice(start + del);
    editTreeAt(tree, start, start + del, ins, posAt(text, start), posAt(text, start + del));
    const nextTree = parseSync(this.parser, next, tree);
    const full = analyzePython(nextTree, next, {});
    const refresh = (at: number, rule: string) => full.find((i) => i.start === at && i.rule === rule);
    const inc = analyzePythonAfterEdit({ text, issues: this.issues }, tree, nextTree, next, { start, oldEnd: start + del, newEnd: start + ins.length },
      nextTree.getChangedRanges(tree), {}, refresh);
    tree.delete();
    this.tree = nextTree; this.text = next; this.issues = inc ?? full;
    return { inc, full, next };
  }
  dispose(): void { this.tree.delete(); }
}

function program(functions: number): string {
  const out = ['import os', 'import json', ''];
  for (let k = 0; k < functions; k++) {
    if (k % 4 === 3) out.push(`class Box_${k}:`, '    import pickle', '    def get(self, b):', '        return pickle.loads(b)', '');
    else out.push(`def load_${k}(path):`, k % 3 ? '    import torch' : '    import torch as t, pickle',
      '    data = json.loads(os.environ.get("X", "{}"))', k % 3 ? '    model = torch.load(path)' : '    model = t.load(path)',
      '    model.update(data)', '    return model', '');
  }
  out.push('state = torch.load("m.pt")', 'obj = pickle.loads(b"")', '');
  return out.join('\n') + '\n';
}

// edits that matter for local imports: rename or drop the import, dedent it to module level, turn the def into a
// module-level statement, add a module-level import, plus ordinary typing
const SNIPPETS = ['x', '#', ' ', '\n', 'import pickle\n', '    import pickle\n', 'torch = None\n', '    ', 'global torch\n    ',
  'if True:\n', 'def g():\n', 'pickle.loads(b)\n', 't.load(p)\n', ')', '"'];

describe('incremental analysis with function-local imports', function () {
  this.timeout(120_000);

  it('stays incremental for typing in the bodies of functions that import locally', async function () {
    const p = new Edited(await getParser(), program(120));
    let reused = 0;
    const bodyLines = p.text.split('\n').map((l, i) => [l, i] as const).filter(([l]) => l === '    model.update(data)').map(([, i]) => i);
    for (let k = 0; k < 40; k++) {
      const line = bodyLines[(k * 7) % bodyLines.length];
      let start = 0;
      for (let i = 0; i < line; i++) start = p.text.indexOf('\n', start) + 1;
      start += '    model.update(data)'.length;
      const [del, ins] = p.text[start] === 'x' ? [1, ''] : [0, 'x'];
      const { inc, full } = p.edit(start, del, ins);
      if (inc) { reused++; assert.deepEqual(normal(inc), normal(full), `edit ${k} at line ${line}`); }
    }
    p.dispose();
    assert.equal(reused, 40, `only ${reused} of 40 edits were incremental`);
  });

  it('agrees with a fresh analysis after random edits, including ones that move imports between scopes', async function () {
    const parser = await getParser();
    const rand = prng(1212);
    let p = new Edited(parser, program(16));
    let reused = 0;
    for (let k = 0; k < 300; k++) {
      const start = Math.floor(rand() * p.text.length);
      const del = rand() < 0.3 ? Math.floor(rand() * 8) : 0;
      const ins = rand() < 0.8 ? SNIPPETS[Math.floor(rand() * SNIPPETS.length)] : '';
      const { inc, full, next } = p.edit(start, del, ins);
      if (inc) {
        reused++;
        assert.deepEqual(normal(inc), normal(full), `edit ${k} at ${start} (-${del} +${JSON.stringify(ins)}) near ${JSON.stringify(next.slice(Math.max(0, start - 40), start + 40))}`);
      }
      if (p.text.length > 20_000) { p.dispose(); p = new Edited(parser, program(16)); }
    }
    p.dispose();
    assert.ok(reused > 100, `only ${reused} of 300 edits were incremental`);
  });

  it('carries the top-level function bodies over each edit, shifted by its length (an `if`-block import between two functions)', async function () {
    // the bodies are kept per tree and carried to the next one; were they not shifted, the body of `b` would
    // cover `import pickle as pk` after a second 44-character insertion before it, and `pk.load` in `a` would be missed
    const p = new Edited(await getParser(), ['import os', 'def a(path):', '    return pk.load(path)', 'if True:', '    import pickle as pk',
      'def b(path):', '    return 1', ''].join('\n'));
    assert.ok(p.issues.some((i) => i.message.includes('pickle')), JSON.stringify(p.issues));
    const comment = '  # ' + 'y'.repeat(40);
    let incremental = 0;
    for (let k = 0; k < 6; k++) {
      const start = p.text.indexOf('pk.load(path)') + 'pk.load(path)'.length;
      const [del, ins] = k === 5 ? [comment.length, ''] : [0, k ? ' ' + comment.slice(1) : comment];   // grows, then shrinks
      const { inc, full } = p.edit(start, del, ins);
      assert.ok(full.some((i) => i.message.includes('pickle')), `edit ${k}: the fresh analysis finds pk.load`);
      if (inc) { incremental++; assert.deepEqual(normal(inc), normal(full), `edit ${k}`); }
    }
    p.dispose();
    assert.ok(incremental >= 5, `${incremental} of 6 edits analysed incrementally`);
  });

  it('a file-wide suppression typed in one function silences the findings everywhere, and removing it brings them back', async function () {
    const p = new Edited(await getParser(), program(12));
    assert.ok(p.issues.length > 10, `${p.issues.length} findings before`);
    const at = p.text.indexOf('    model.update(data)') + '    model.update(data)'.length;
    const comment = '\n# safe-weights: ignore-file';
    for (const [del, ins] of [[0, comment], [comment.length, ''], [0, comment]] as const) {
      const { inc, full } = p.edit(at, del, ins);
      assert.equal(full.length === 0, ins !== '', 'the fresh analysis honours the suppression');
      if (inc) assert.deepEqual(normal(inc), normal(full), ins ? 'added' : 'removed');
    }
    p.dispose();
  });
});
