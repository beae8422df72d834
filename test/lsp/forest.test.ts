// Protocol test: a document big enough to be parsed as a forest of segments (FOREST_MIN_CHARS): after each of a
// series of edits, the server's diagnostics equal those of the same text opened afresh.
import * as assert from 'node:assert/strict';
import type { Diagnostic, Range } from 'vscode-languageserver-protocol';
import { LspClient } from './harness';

function program(blocks: number): string {
  const out = ['import json', 'import os', 'import torch', 'import pickle as pk', 'from yaml import load as yl', 'tl = torch.load', ''];
  for (let k = 0; k < blocks; k++) {
    out.push(`def step_${k}(model, batch, opts):`, '    total = 0.0', '    for x, y in batch:', '        total += float(model(x) - y)',
      '    meta = json.load(open(os.path.join(opts["dir"], "meta.json")))',
      k % 3 === 0 ? '    state = torch.load("ckpt.pt", map_location="cpu")' : '    state = None',
      k % 4 === 0 ? '    obj = pk.loads(meta)' : '    obj = None', '    return total, meta, state, obj', '',
      `class Runner_${k}:`, '    def read(self, name):', '        return yl(open(name))', '',
      k % 5 === 0 ? 'cfg = tl("m.pt", weights_only=False)' : `x_${k} = 1`, '');
  }
  return out.join('\n') + '\n';
}

const key = (ds: Diagnostic[]): string[] => ds.map((d) => `${d.code} ${d.range.start.line}:${d.range.start.character}-${d.range.end.line}:${d.range.end.character} ${d.message}`);

describe('language server: a big document parsed in segments (stdio)', function () {
  this.timeout(120_000);
  let client: LspClient;
  before(async () => { client = await LspClient.start(); });
  after(async () => { await client.stop(); });

  it('after each edit (typing, new lines, an open bracket, a def line indented, an import changed) the diagnostics are a fresh analysis\'s', async () => {
    let text = program(320);
    assert.ok(text.length > 96 * 1024, `${text.length} chars: not big enough for a forest`);
    const uri = 'file:///tmp/safe-weights-forest/big.py';
    let diags = await client.open(uri, text);
    assert.ok(diags.length > 200, `${diags.length} diagnostics on open`);
    const lines = (): string[] => text.split('\n');
    const lineOf = (re: RegExp, nth = 0): number => { let seen = 0; return lines().findIndex((l) => re.test(l) && seen++ === nth); };
    const edits: { what: string; range: () => Range; text: string }[] = [
      { what: 'a character typed in a body', range: () => { const l = lineOf(/^ {4}return total/, 40); const c = lines()[l].length; return { start: { line: l, character: c }, end: { line: l, character: c } }; }, text: 'x' },
      { what: 'a load added in a body', range: () => { const l = lineOf(/^ {4}total = 0.0/, 100); return { start: { line: l, character: 0 }, end: { line: l, character: 0 } }; }, text: '    extra = pk.loads(b)\n' },
      // (an import edit is analysed whole: every segment's nodes are read, the ones the edits above moved too)
      { what: 'an import edited', range: () => { const l = lineOf(/^from yaml import load as yl/); return { start: { line: l, character: 27 }, end: { line: l, character: 27 } }; }, text: 'z' },
      { what: 'the import edited back', range: () => { const l = lineOf(/^from yaml import load as ylz/); return { start: { line: l, character: 27 }, end: { line: l, character: 28 } }; }, text: '' },
      { what: 'a bracket left open', range: () => { const l = lineOf(/^ {4}state = None/, 50); return { start: { line: l, character: 12 }, end: { line: l, character: 12 } }; }, text: '(' },
      { what: 'the bracket closed again', range: () => { const l = lineOf(/^ {4}state = \(None/, 0); return { start: { line: l, character: 12 }, end: { line: l, character: 13 } }; }, text: '' },
      { what: 'a def line indented (joins the statement before)', range: () => { const l = lineOf(/^def step_/, 120); return { start: { line: l, character: 0 }, end: { line: l, character: 0 } }; }, text: '    ' },
      { what: 'the indent removed', range: () => { const l = lineOf(/^ {4}def step_/, 0); return { start: { line: l, character: 0 }, end: { line: l, character: 4 } }; }, text: '' },
      { what: 'a triple-quoted string opened', range: () => { const l = lineOf(/^x_\d+ = 1/, 30); return { start: { line: l, character: 0 }, end: { line: l, character: 0 } }; }, text: 's = """\n' },
      { what: 'and closed further down', range: () => { const l = lineOf(/^x_\d+ = 1/, 60); return { start: { line: l, character: 0 }, end: { line: l, character: 0 } }; }, text: '"""\n' },
      { what: 'a line joined to a def line', range: () => { const l = lineOf(/^def step_/, 200) - 1; return { start: { line: l, character: 0 }, end: { line: l + 1, character: 0 } }; }, text: '' },
      { what: 'the pickle import renamed', range: () => { const l = lineOf(/^import pickle as pk/); return { start: { line: l, character: 18 }, end: { line: l, character: 19 } }; }, text: 'q' },
      { what: 'an edit at the very end', range: () => { const n = lines().length - 1; return { start: { line: n, character: 0 }, end: { line: n, character: 0 } }; }, text: 'z = torch.load("z.pt")\n' },
    ];
    let k = 0;
    for (const e of edits) {
      const range = e.range();
      const starts: number[] = [0];
      for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
      const a = starts[range.start.line] + range.start.character, b = starts[range.end.line] + range.end.character;
      text = text.slice(0, a) + e.text + text.slice(b);
      diags = await client.change(uri, e.text, range);
      const fresh = await client.open(`file:///tmp/safe-weights-forest/fresh_${k++}.py`, text);
      assert.deepEqual(key(diags), key(fresh), `after ${e.what}`);
    }
  });
});
