// Notebook scanning from disk (.ipynb): cells joined in order, magics masked at unchanged offsets, cell indices.
import * as assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maskMagics } from '../../../server/src/python/magics';
import { scanCodeFile, isCodeFileName } from '../../../server/src/python/scanCode';

describe('notebooks', () => {
  it('masks IPython magics, shell escapes and help without moving anything', () => {
    const src = '%matplotlib inline\n!pip install torch\nfiles = !ls\nx = 1 % 2\nobj?\n  %time f()\ny = 3';
    const masked = maskMagics(src);
    assert.equal(masked.length, src.length);
    assert.equal(masked.split('\n').length, src.split('\n').length);
    assert.deepEqual(masked.split('\n').map((l) => l.trim()), ['', '', 'files', 'x = 1 % 2', '', '', 'y = 3']);
    assert.equal(maskMagics('%%bash\nrm -rf /\n').trim(), '');
    assert.equal(maskMagics('%%time\nx = 1').split('\n')[1], 'x = 1');
  });

  it('scans a .ipynb file: cross-cell imports, cell index, cell-relative positions, markdown ignored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-nb-'));
    const file = join(dir, 'train.ipynb');
    writeFileSync(file, JSON.stringify({
      nbformat: 4, nbformat_minor: 5, metadata: {},
      cells: [
        { cell_type: 'code', source: ['import torch\n', 'import pickle as pk'], metadata: {}, outputs: [] },
        { cell_type: 'markdown', source: 'Use `torch.load(f)` with care', metadata: {} },
        { cell_type: 'code', source: ['!nvidia-smi\n', '%load_ext autoreload\n', 'state = torch.load("m.pt")'], metadata: {}, outputs: [] },
        { cell_type: 'code', source: 'obj = pk.loads(b)  # safe-weights: ignore[SW102]\nobj2 = pk.loads(b)', metadata: {}, outputs: [] },
      ],
    }));
    assert.ok(isCodeFileName(file));
    const r = await scanCodeFile(file);
    assert.equal(r.format, 'notebook');
    assert.deepEqual(r.findings.map((f) => [f.rule, f.cell, f.line, f.column]), [['SW101', 2, 3, 9], ['SW102', 3, 2, 8]]);
  });
});
