// Protocol tests for LSP 3.17 notebook sync: cells analysed in order as one program, magics masked, markdown
// ignored, diagnostics and fixes landing in the right cell.
import * as assert from 'node:assert/strict';
import { LspClient, applyEdits } from './harness';

const NB = 'file:///tmp/safe-weights-test/train.ipynb';
const cellUri = (i: number): string => `vscode-notebook-cell:/tmp/safe-weights-test/train.ipynb#W${i}sZmlsZQ%3D%3D`;

describe('language server: Jupyter notebooks (stdio)', function () {
  let client: LspClient;
  before(async () => { client = await LspClient.start(); });
  after(async () => { await client.stop(); });

  const cells = [
    { kind: 2, text: 'import torch as t\nimport yaml' },
    { kind: 1, text: 'Call `t.load(x)` here (markdown never matches)', lang: 'markdown' },
    { kind: 2, text: '%matplotlib inline\n!pip install foo\nm = t.load("m.pt")' },
    { kind: 2, text: '%%bash\npython -c "import pickle; pickle.load(open(\'x\',\'rb\'))"' },
    { kind: 2, text: 'files = !ls\nt.save(m.state_dict(), "out.pt")\ncfg = yaml.load(s)' },
  ];

  it('publishes diagnostics per cell, with imports from earlier cells resolved', async () => {
    const cell2 = client.nextDiagnostics(cellUri(2));
    const cell4 = client.nextDiagnostics(cellUri(4));
    const cell0 = client.nextDiagnostics(cellUri(0));
    await client.conn.sendNotification('notebookDocument/didOpen', {
      notebookDocument: { uri: NB, notebookType: 'jupyter-notebook', version: 1,
        cells: cells.map((c, i) => ({ kind: c.kind, document: cellUri(i) })) },
      cellTextDocuments: cells.map((c, i) => ({ uri: cellUri(i), languageId: c.lang ?? 'python', version: 1, text: c.text })),
    });
    const [d2, d4, d0] = await Promise.all([cell2, cell4, cell0]);
    assert.deepEqual(d0, []);
    assert.deepEqual(d2.map((d) => [d.code, d.range.start.line, d.range.start.character, d.range.end.character]), [['SW101', 2, 4, 18]]);
    assert.deepEqual(d4.map((d) => [d.code, d.range.start.line]), [['SW120', 1], ['SW107', 2]]);
    assert.deepEqual(client.diagnostics.get(cellUri(1)) ?? [], [], 'markdown cells are never analysed');
    assert.ok(!(client.diagnostics.get(cellUri(3)) ?? []).length, 'a %%bash cell is not Python');
  });

  it('quick-fixes edit the right cells (the safetensors import goes to the import cell)', async () => {
    const d2 = client.diagnostics.get(cellUri(2))!;
    const fix = (await client.codeActions(cellUri(2), d2[0].range, d2)).find((a) => /weights_only/.test(a.title))!;
    assert.deepEqual(Object.keys(fix.edit!.changes!), [cellUri(2)]);
    assert.equal(applyEdits(cells[2].text, fix.edit!.changes![cellUri(2)]), '%matplotlib inline\n!pip install foo\nm = t.load("m.pt", weights_only=True)');
    const d4 = client.diagnostics.get(cellUri(4))!;
    const save = (await client.codeActions(cellUri(4), d4[0].range, [d4[0]])).find((a) => /safetensors/.test(a.title))!;
    const ch = save.edit!.changes!;
    assert.deepEqual(Object.keys(ch).sort(), [cellUri(0), cellUri(4)].sort());
    assert.equal(applyEdits(cells[0].text, ch[cellUri(0)]), 'import torch as t\nimport yaml\nimport safetensors.torch');
    assert.equal(applyEdits(cells[4].text, ch[cellUri(4)]), 'files = !ls\nsafetensors.torch.save_file(m.state_dict(), "out.safetensors")\ncfg = yaml.load(s)');
    const all = await client.codeActions(cellUri(4), d4[0].range, [], ['source.fixAll.safeWeights']);
    assert.equal(all.length, 1);
    const allCh = all[0].edit!.changes!;
    assert.equal(applyEdits(cells[2].text, allCh[cellUri(2)]), '%matplotlib inline\n!pip install foo\nm = t.load("m.pt", weights_only=True)');
    assert.equal(applyEdits(cells[4].text, allCh[cellUri(4)]), 'files = !ls\nt.save(m.state_dict(), "out.pt")\ncfg = yaml.safe_load(s)');
  });

  it('follows cell edits and cell removal', async () => {
    const next = client.nextDiagnostics(cellUri(2));
    const settled = client.nextDiagnostics(cellUri(4));
    await client.conn.sendNotification('notebookDocument/didChange', {
      notebookDocument: { uri: NB, version: 2 },
      change: { cells: { textContent: [{ document: { uri: cellUri(2), version: 2 },
        changes: [{ range: { start: { line: 2, character: 17 }, end: { line: 2, character: 17 } }, text: ', weights_only=True' }] }] } },
    });
    assert.deepEqual(await next, []);
    assert.equal((await settled).length, 2);
    // Removing the import cell leaves the alias `t` unresolved (the t.save finding in cell 4 disappears), while
    // an unbound `yaml` still names the well-known module (a notebook may rely on a kernel that imported it)
    const last = client.nextDiagnostics(cellUri(4));
    await client.conn.sendNotification('notebookDocument/didChange', {
      notebookDocument: { uri: NB, version: 3 },
      change: { cells: { structure: { array: { start: 0, deleteCount: 1 }, didClose: [{ uri: cellUri(0) }] } } },
    });
    assert.deepEqual((await last).map((d) => [d.code, d.range.start.line]), [['SW107', 2]]);
  });
});
