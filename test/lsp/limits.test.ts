// Limits of the language server (issue 12): a Python file over the size limit is analysed once, off the main
// thread, with bounded memory, while other documents are served; a closed notebook's on-disk findings come back.
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LspClient, until } from './harness';

/** Peak resident set of a process in MB (VmHWM), or NaN where /proc is not there. */
function peakRssMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch { return NaN; }
}

describe('language server: a 50 MB Python file (stdio)', function () {
  this.timeout(300000);
  let client: LspClient;
  before(async () => { client = await LspClient.start(); });
  after(async () => { await client.stop(); });

  it('is analysed off the main thread in bounded memory, and other documents are answered meanwhile', async () => {
    // ordinary code, an unsafe pickle.loads in every 500th block; the expected lines are counted here, as built
    const block = (k: number): string[] => [
      `def step_${k}(model, batch, opts):`, '    total = 0.0', '    for x, y in batch:', '        out = model(x)',
      '        loss = (out - y).pow(2).mean()', '        total += float(loss.item())',
      `    note = """block ${k}: pickle.loads( inside a string is not a call"""`,
      k % 500 === 0 ? '    obj = pickle.loads(opts["blob"])' : '    obj = None', '    return total, obj, note', '',
    ];
    const lines = ['import os', 'import pickle', ''];
    const expected: number[] = [];
    let chars = 0;
    for (let k = 0; chars < 50 * 1024 * 1024; k++) {
      const b = block(k);
      if (k % 500 === 0) expected.push(lines.length + 7);
      lines.push(...b);
      for (const l of b) chars += l.length + 1;
    }
    const text = lines.join('\n') + '\n';
    assert.ok(text.length >= 50 * 1024 * 1024, `${text.length} chars`);
    const big = 'file:///tmp/safe-weights-test/huge.py';
    const small = 'file:///tmp/safe-weights-test/small.py';
    let bigAt = 0, smallAt = 0;
    const bigDiagnostics = client.nextDiagnostics(big, 280000).then((d) => { bigAt = Date.now(); return d; });
    await client.conn.sendNotification('textDocument/didOpen', { textDocument: { uri: big, languageId: 'python', version: 1, text } });
    const smallDiagnostics = await client.open(small, 'import pickle\nx = pickle.loads(b)\n');
    smallAt = Date.now();
    assert.deepEqual(smallDiagnostics.map((d) => [d.code, d.range.start.line]), [['SW102', 1]]);
    // a request, too, is answered while the worker runs
    const actions = await client.codeActions(small, smallDiagnostics[0].range, smallDiagnostics);
    assert.ok(actions.length > 0);
    const found = await bigDiagnostics;
    assert.ok(smallAt > 0 && bigAt > smallAt, 'the small document was answered before the big one was done');
    assert.deepEqual(found.map((d) => d.range.start.line), expected);
    assert.ok(found.every((d) => d.code === 'SW102' && d.range.start.character === 10), JSON.stringify(found.slice(0, 3)));
    const peak = peakRssMb(client.proc.pid!);
    if (!Number.isNaN(peak)) assert.ok(peak <= 300, `server peak RSS ${peak.toFixed(0)} MB`);
    console.log(`      (${found.length} findings; server peak RSS ${peak.toFixed(0)} MB; analysed in ${((bigAt - smallAt) / 1000).toFixed(1)} s after the small file)`);
    // typing in the big file does not re-analyse it (once per open or save): no new diagnostics for it
    client.diagnostics.delete(big);
    await client.conn.sendNotification('textDocument/didChange', { textDocument: { uri: big, version: 2 },
      contentChanges: [{ range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } }, text: '#' }] });
    const again = await client.change(small, 'import pickle\ny = pickle.loads(c)\nz = 1\n');
    assert.equal(again.length, 1);
    assert.equal(client.diagnostics.get(big), undefined);
  });
});

describe('language server: closing a notebook (stdio)', function () {
  this.timeout(60000);
  let client: LspClient;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sw-nbclose-'));
    writeFileSync(join(dir, 'nb.ipynb'), JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [
      { cell_type: 'code', source: 'import pickle\n', metadata: {}, outputs: [] },
      { cell_type: 'code', source: 'x = pickle.loads(b)\n', metadata: {}, outputs: [] },
    ] }));
    client = await LspClient.start(dir, { settings: { workspaceScan: true } });
  });
  after(async () => { await client.stop(); });

  it('keeps its on-disk findings in Problems after it is closed', async () => {
    const nb = pathToFileURL(join(dir, 'nb.ipynb')).href;
    const onDisk = await until('the disk scan of nb.ipynb', () => { const d = client.diagnostics.get(nb); return d?.length ? d : undefined; });
    assert.deepEqual(onDisk.map((d) => d.code), ['SW102']);
    const cell = (i: number): string => `vscode-notebook-cell:${join(dir, 'nb.ipynb')}#W${i}`;
    const cells = ['import pickle\n', 'x = pickle.loads(b)\n'];
    const inCell = client.nextDiagnostics(cell(1));
    const cleared = client.nextDiagnostics(nb);
    await client.conn.sendNotification('notebookDocument/didOpen', {
      notebookDocument: { uri: nb, notebookType: 'jupyter-notebook', version: 1, cells: cells.map((_, i) => ({ kind: 2, document: cell(i) })) },
      cellTextDocuments: cells.map((t, i) => ({ uri: cell(i), languageId: 'python', version: 1, text: t })),
    });
    assert.deepEqual(await cleared, [], 'the open notebook\'s cells carry its findings');
    assert.deepEqual((await inCell).map((d) => d.code), ['SW102']);
    const back = client.nextDiagnostics(nb);
    await client.conn.sendNotification('notebookDocument/didClose', {
      notebookDocument: { uri: nb }, cellTextDocuments: cells.map((_, i) => ({ uri: cell(i) })),
    });
    assert.deepEqual((await back).map((d) => d.code), ['SW102']);
    assert.deepEqual(client.diagnostics.get(cell(1)), []);
  });
});
