// The language server parses big documents as a forest of segments (python/forest.ts, forestParse.ts). Differential
// tests: the analysis of a forest equals the analysis of one tree of the same text, from scratch and after random
// edits that re-parse only the segments they touch (segments kept small here, so every file has many).
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { analyzePython, analyzePythonAfterEdit, type CodeIssue } from '../../../server/src/python/analyze';
import { checkSetupPy } from '../../../server/src/python/deps';
import { deleteProgram, descend, Forest, tops } from '../../../server/src/python/forest';
import { parseForest, reparseForest } from '../../../server/src/python/forestParse';
import { chunkStarts } from '../../../server/src/python/chunkedAnalysis';
import { getParser, parseSync, type Tree } from '../../../server/src/python/parser';
import { FIXTURES } from './fixtures.test';
import { normal, posAt, program, SNIPPETS } from './incremental.test';
import { prng } from '../prng';

const TORCH = '/usr/lib/python3/dist-packages/torch';

/** Python files of Debian's torch between 20 and 200 KB (real code: decorators, nested defs, long strings). */
function torchFiles(limit: number): string[] {
  if (!existsSync(TORCH)) {
    if (process.env.CI === 'true') throw new Error(`${TORCH} is missing (apt-get install -y python3-torch)`);
    return [];
  }
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (out.length >= limit) return;
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (name.endsWith('.py') && st.size >= 20_000 && st.size <= 200_000) out.push(p);
    }
  };
  walk(TORCH);
  return out;
}

const shape = (nodes: { toString(): string }[]): string[] => nodes.map((n) => n.toString());

/** Every segment starts where a top-level statement starts (chunkStarts would cut there). */
function assertBoundaries(forest: Forest, text: string, label: string): void {
  for (let k = 1; k < forest.starts.length; k++) {
    const from = forest.starts[k - 1], at = forest.starts[k];
    const units = Uint16Array.from({ length: Math.min(text.length, at + 16) - from }, (_, i) => text.charCodeAt(from + i));
    assert.equal(chunkStarts(units, at - from)[1], at - from, `${label}: segment ${k} starts at ${at}, not at a statement`);
  }
}

describe('forest: a big document parsed in segments', function () {
  this.timeout(300_000);
  const corpora: [string, string][] = [['generated program', program(24)]];
  for (const f of readdirSync(FIXTURES).filter((n) => n.endsWith('.py'))) corpora.push([f, readFileSync(join(FIXTURES, f), 'utf8')]);
  for (const f of torchFiles(25)) corpora.push([f.slice(TORCH.length + 1), readFileSync(f, 'utf8')]);

  it('from scratch: the same top-level statements and findings as one tree (fixtures, a generated program, Debian torch files)', async function () {
    const parser = await getParser();
    assert.ok(corpora.length >= (existsSync(TORCH) ? 30 : 5), `only ${corpora.length} files`);
    let segments = 0;
    for (const [name, text] of corpora) {
      const tree = parseSync(parser, text);
      const forest = parseForest(parser, text, 300);
      try {
        segments += forest.trees.length;
        assertBoundaries(forest, text, name);
        assert.deepEqual(shape(tops(forest)), shape(tops(tree)), `${name}: top-level statements`);
        assert.deepEqual(normal(analyzePython(forest, text, {})), normal(analyzePython(tree, text, {})), `${name}: findings`);
        assert.deepEqual(checkSetupPy(forest, text), checkSetupPy(tree, text), `${name}: setup.py pins`);
        // a node looked up by offset is the one tree's node at that offset
        for (let at = 0; at < text.length; at += 97) {
          const a = descend(forest, at, at + 1), b = tree.rootNode.descendantForIndex(at, at + 1);
          if (a?.type !== 'module' || b?.type !== 'module') assert.equal(a?.toString(), b?.toString(), `${name}: node at ${at}`);
        }
      } finally {
        tree.delete();
        deleteProgram(forest);
      }
    }
    assert.ok(segments > corpora.length * 3, `${segments} segments for ${corpora.length} files: too few to test the joins`);
  });

  it('a string opened joins every segment after it; closed again, they are cut again', async function () {
    const parser = await getParser();
    let text = program(60);
    let forest = parseForest(parser, text, 300);
    const before = forest.trees.length;
    const edit = (start: number, del: number, ins: string): void => {
      const next = text.slice(0, start) + ins + text.slice(start + del);
      const r = reparseForest(parser, forest, next, { start, oldEnd: start + del, text: ins, startPos: posAt(text, start), oldEndPos: posAt(text, start + del) }, 300);
      for (const t of r.retired) t.delete();
      text = next; forest = r.forest;
    };
    edit(text.indexOf('class Runner_20'), 0, 's = """\n');
    const joined = forest.trees.length;
    assert.ok(joined < before / 2, `${joined} segments with the string open (${before} before)`);
    edit(text.indexOf('class Runner_40'), 0, '"""\n');
    assert.ok(forest.trees.length > joined + 10, `${forest.trees.length} segments once the string is closed (${joined} while open)`);
    assertBoundaries(forest, text, 'closed');
    const tree = parseSync(parser, text);
    assert.deepEqual(shape(tops(forest)), shape(tops(tree)));
    assert.deepEqual(normal(analyzePython(forest, text, {})), normal(analyzePython(tree, text, {})));
    tree.delete();
    deleteProgram(forest);
  });

  /** The server's step: re-parse the touched segments, then the incremental analysis (or a whole one). */
  async function step(text: string, forest: Forest, issues: CodeIssue[], start: number, del: number, ins: string) {
    const parser = await getParser();
    const next = text.slice(0, start) + ins + text.slice(start + del);
    const edit = { start, oldEnd: start + del, text: ins, startPos: posAt(text, start), oldEndPos: posAt(text, start + del) };
    const r = reparseForest(parser, forest, next, edit);
    const refresh = (at: number, rule: string) => analyzePython(r.forest, next, {}).find((i) => i.start === at && i.rule === rule);
    const inc = analyzePythonAfterEdit({ text, issues }, r.oldForest, r.forest, next, { start, oldEnd: start + del, newEnd: start + ins.length }, r.changed, {}, refresh);
    for (const t of r.retired) t.delete();
    return { next, forest: r.forest, inc, issues: inc ?? analyzePython(r.forest, next, {}) };
  }

  /** Compares a forest after edits with one tree parsed afresh: always the same findings as the forest analysed
   *  whole; where the one tree has no syntax error, the same statements and findings as the one tree. */
  function compare(label: string, text: string, forest: Forest, issues: CodeIssue[], tree: Tree): boolean {
    assertBoundaries(forest, text, label);
    assert.deepEqual(normal(issues), normal(analyzePython(forest, text, {})), `${label}: incremental vs whole forest`);
    if (tree.rootNode.hasError) return false;
    assert.deepEqual(shape(tops(forest)), shape(tops(tree)), `${label}: top-level statements`);
    assert.deepEqual(normal(issues), normal(analyzePython(tree, text, {})), `${label}: forest vs one tree`);
    return true;
  }

  for (const [name, base] of corpora.slice(0, 12)) {
    it(`${name}: 100 random edits, each undone, and 60 typing edits in a row`, async function () {
      const parser = await getParser();
      const rnd = prng(0xf0e5 + name.length);
      let text = base;
      let forest = parseForest(parser, text, 300);
      let issues = analyzePython(forest, text, {});
      let checked = 0, incremental = 0;
      const apply = async (label: string, start: number, del: number, ins: string): Promise<void> => {
        const r = await step(text, forest, issues, start, del, ins);
        ({ next: text, forest, issues } = r);
        if (r.inc) incremental++;
        const tree = parseSync(parser, text);
        try { if (compare(label, text, forest, issues, tree)) checked++; } finally { tree.delete(); }
      };
      for (let k = 0; k < 100; k++) {
        const start = Math.floor(rnd() * (text.length + 1));
        const del = rnd() < 0.4 ? Math.min(text.length - start, 1 + Math.floor(rnd() * 12)) : 0;
        const ins = rnd() < 0.75 ? SNIPPETS[Math.floor(rnd() * SNIPPETS.length)] : '';
        const removed = text.slice(start, start + del);
        await apply(`${name} edit ${k} at ${start} (-${del} +${JSON.stringify(ins)})`, start, del, ins);
        await apply(`${name} undo ${k}`, start, ins.length, removed);
        assert.equal(text, base, `${name}: the undo restores the text`);
      }
      for (let k = 0; k < 60; k++) {
        const start = Math.floor(rnd() * (text.length + 1));
        const del = rnd() < 0.3 ? Math.min(text.length - start, 1) : 0;
        const ins = del ? '' : ['#', 'x', ' ', '\n', '_'][Math.floor(rnd() * 5)];
        await apply(`${name} typing ${k} at ${start}`, start, del, ins);
      }
      deleteProgram(forest);
      assert.ok(checked >= 100, `${name}: only ${checked} of 260 states compared with one tree`);
      assert.ok(incremental >= 20, `${name}: only ${incremental} of 260 analyses were incremental`);
    });
  }
});
