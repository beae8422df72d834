// Notebook scanning from disk (.ipynb): cells joined in order, magics masked at unchanged offsets, cell indices.
import * as assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maskMagics } from '../../../server/src/python/magics';
import { scanCodeFile, isCodeFileName } from '../../../server/src/python/scanCode';

describe('notebooks', () => {
  it('masks IPython magics, shell escapes and help without moving anything', () => {
    const src = '%matplotlib inline\n!pip install torch\nfiles = !ls\nx = 1 % 2\nobj?\n  %time f()\ny = 3\n%time\n%load_ext autoreload';
    const masked = maskMagics(src);
    assert.equal(masked.length, src.length);
    assert.equal(masked.split('\n').length, src.split('\n').length);
    assert.deepEqual(masked.split('\n').map((l) => l.trim()), ['', '', 'files', 'x = 1 % 2', '', '0;    f()', 'y = 3', '', '']);
    assert.equal(maskMagics('%%bash\nrm -rf /\n').trim(), '');
    assert.equal(maskMagics('%%time\nx = 1').split('\n')[1], 'x = 1');
    assert.deepEqual(maskMagics('%%time\n!ls\nx = 1\n%matplotlib inline').split('\n').map((l) => l.trim()), ['', '', 'x = 1', '']);
  });

  it('keeps the statement of %time / %timeit / %prun line magics (options blanked) at its offsets', () => {
    const cases: [string, string][] = [
      ['%time obj = pickle.load(f)', '0;    obj = pickle.load(f)'],
      ['%timeit -n 10 -r3 pickle.loads(b)', '0;                pickle.loads(b)'],
      ['%prun -s cumulative -q torch.load(p)', '0;                     torch.load(p)'],
      ['    %time x = f()', '    0;    x = f()'],
      ['res = %time pickle.loads(b)', 'res =       pickle.loads(b)'],
      ['t = %timeit -o f()', 't =            f()'],
      ['%timeit', '       '],
      ['%timeitx f()', '            '],
      ['%load_ext autoreload', '                    '],
    ];
    for (const [line, want] of cases) assert.equal(maskMagics(line), want, line);
    // a backslash continuation stays part of the kept statement
    assert.equal(maskMagics('%time obj = load(a, \\\n  b)'), '0;    obj = load(a, \\\n  b)');
  });

  it('analyses statements after line magics and in %%time cells; an unbound well-known module name is that module', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-nb-'));
    const file = join(dir, 'magics.ipynb');
    writeFileSync(file, JSON.stringify({
      nbformat: 4, nbformat_minor: 5, metadata: {},
      cells: [
        { cell_type: 'code', source: ['import pickle\n', '%time obj = pickle.load(f)\n', '%timeit -n 3 pickle.loads(b)'], metadata: {}, outputs: [] },
        { cell_type: 'code', source: ['%%time\n', 'state = torch.load("m.pt")'], metadata: {}, outputs: [] },
        { cell_type: 'code', source: ['%%bash\n', 'python -c "import pickle; pickle.loads(b)"'], metadata: {}, outputs: [] },
        { cell_type: 'code', source: ['%prun -s cumulative arr = np.load(p, allow_pickle=True)\n', 'ok = %time json.load(f)'], metadata: {}, outputs: [] },
      ],
    }));
    const r = await scanCodeFile(file);
    assert.deepEqual(r.findings.map((f) => [f.rule, f.cell, f.line, f.column]),
      [['SW102', 0, 2, 13], ['SW102', 0, 3, 14], ['SW101', 1, 2, 9], ['SW105', 3, 1, 27]]);
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
