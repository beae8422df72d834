// Positions of findings in a notebook file on disk: a (cell, line, column) of the cell's source maps to the
// line/column of that character in the .ipynb JSON text, through list or string sources and JSON escapes.
import * as assert from 'node:assert/strict';
import { NotebookPositions } from '../../../server/src/python/notebookPositions';
import { scanCodeText } from '../../../server/src/python/scanCode';

function at(text: string, needle: string, nth = 0): { line: number; character: number } {
  let i = -1;
  for (let k = 0; k <= nth; k++) i = text.indexOf(needle, i + 1);
  assert.ok(i >= 0, `${needle} in the file`);
  const before = text.slice(0, i);
  return { line: before.split('\n').length - 1, character: i - (before.lastIndexOf('\n') + 1) };
}

describe('notebook file positions', () => {
  const nb = {
    nbformat: 4, nbformat_minor: 5, metadata: {},
    cells: [
      { cell_type: 'markdown', source: ['# Title with "quotes"\n', 'text'], metadata: {} },
      { cell_type: 'code', source: ['import pickle, torch\n', 's = "a\\"b\\\\c\\u00e9"; t = pickle.loads(s)\n', '\tm = torch.load("m.pt")'], metadata: {}, outputs: [] },
      { cell_type: 'code', source: 'x = 1\ny = pickle.loads(b)\n', metadata: {}, outputs: [] },
    ],
  };

  for (const [style, text] of [['nbformat indent=1', JSON.stringify(nb, null, 1)], ['one line', JSON.stringify(nb)]] as const) {
    it(`${style}: every finding lands on its call in the JSON text`, async () => {
      const report = await scanCodeText('/tmp/x.ipynb', text);
      const pos = new NotebookPositions(text);
      const got = report.findings.map((f) => [f.rule, pos.position(f.cell!, f.line - 1, f.column - 1)]);
      assert.deepEqual(got, [
        ['SW102', at(text, 'pickle.loads(s)')],
        ['SW101', at(text, 'torch.load(')],
        ['SW102', at(text, 'pickle.loads(b)')],
      ]);
      // the end of a finding too (exclusive end: just after the closing parenthesis)
      const last = report.findings[2];
      const end = at(text, 'pickle.loads(b)');
      assert.deepEqual(pos.position(last.cell!, last.endLine - 1, last.endColumn - 1), { line: end.line, character: end.character + 'pickle.loads(b)'.length });
    });
  }

  it('answers undefined for cells or lines that do not exist, and survives invalid JSON', () => {
    const text = JSON.stringify(nb);
    const pos = new NotebookPositions(text);
    assert.equal(pos.position(7, 0, 0), undefined);
    assert.equal(pos.position(2, 9, 0), undefined);
    assert.equal(new NotebookPositions('{"cells": [').position(0, 0, 0), undefined);
  });
});
