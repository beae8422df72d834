// Protocol tests: pull diagnostics (textDocument/diagnostic) with a client that declares them, as VS Code's does.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LspClient, until } from './harness';

const pushedFor = (c: LspClient, uri: string): unknown[] =>
  c.notifications.filter((n) => n.method === 'textDocument/publishDiagnostics' && (n.params as { uri: string }).uri === uri);

describe('language server: pull diagnostics (stdio)', function () {
  let client: LspClient;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sw-pull-'));
    writeFileSync(join(dir, 'on_disk.py'), 'import pickle\nobj = pickle.loads(blob)\n');
    client = await LspClient.start(dir, { pull: true, settings: { workspaceScan: true } });
  });
  after(async () => { await client.stop(); rmSync(dir, { recursive: true, force: true }); });

  it('offers pull diagnostics for Python documents only to a client that declares them', async () => {
    const provider = client.initialized?.capabilities.diagnosticProvider as { documentSelector: { language: string }[]; interFileDependencies: boolean } | undefined;
    assert.ok(provider, 'no diagnosticProvider for a pulling client');
    assert.deepEqual(provider.documentSelector.map((f) => f.language), ['python', 'python']);
    const pushing = await LspClient.start();
    try {
      assert.equal(pushing.initialized?.capabilities.diagnosticProvider, undefined);
    } finally {
      await pushing.stop();
    }
  });

  it('answers with the findings, then "unchanged" while a change leaves them as they were, then the new ones', async () => {
    const uri = 'file:///tmp/safe-weights-pull/train.py';
    await client.openOnly(uri, 'import torch\n\ndef f(p):\n    x = 1\n    return torch.load(p)\n');
    const first = await client.pull(uri);
    assert.equal(first.kind, 'full');
    assert.deepEqual(first.items!.map((d) => [d.code, d.range.start.line]), [['SW101', 4]]);
    assert.ok(first.resultId);
    // a keystroke on a line of its own: the finding stays where it was
    await client.changeOnly(uri, 'y', { start: { line: 3, character: 9 }, end: { line: 3, character: 9 } });
    const same = await client.pull(uri, first.resultId);
    assert.deepEqual(same, { kind: 'unchanged', resultId: first.resultId });
    // a second load: the full list again, under a new resultId
    await client.changeOnly(uri, '\nz = torch.load("b.pt")\n', { start: { line: 5, character: 0 }, end: { line: 5, character: 0 } });
    const next = await client.pull(uri, first.resultId);
    assert.equal(next.kind, 'full');
    assert.notEqual(next.resultId, first.resultId);
    assert.deepEqual(next.items!.map((d) => [d.code, d.range.start.line]), [['SW101', 4], ['SW101', 6]]);
    // a line inserted above: the same findings one line down are a change
    await client.changeOnly(uri, '# header\n', { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } });
    const moved = await client.pull(uri, next.resultId);
    assert.equal(moved.kind, 'full');
    assert.deepEqual(moved.items!.map((d) => d.range.start.line), [5, 7]);
    assert.deepEqual(pushedFor(client, uri), [], 'a pulled document\'s diagnostics are never pushed as well');
  });

  it('a keystroke before a finding on its line moves that finding, and only that one', async () => {
    const uri = 'file:///tmp/safe-weights-pull/same_line.py';
    await client.openOnly(uri, 'import torch\na = torch.load(p)\nb = torch.load(q)\n');
    const first = await client.pull(uri);
    const at = (r: typeof first) => r.items!.map((d) => [d.range.start.line, d.range.start.character, d.range.end.character]);
    assert.deepEqual(at(first), [[1, 4, 17], [2, 4, 17]]);
    // one character typed at the start of line 2: its finding moves right, line 3's stays
    await client.changeOnly(uri, 'x', { start: { line: 1, character: 0 }, end: { line: 1, character: 0 } });
    const next = await client.pull(uri, first.resultId);
    assert.equal(next.kind, 'full');
    assert.deepEqual(at(next), [[1, 5, 18], [2, 4, 17]]);
  });

  it('a pull sent right after an open or a change waits for its analysis', async () => {
    // a fresh server: its first analysis waits for the parser to load, so the pull arrives before it is done
    const fresh = await LspClient.start(undefined, { pull: true });
    try {
      const uri = 'file:///tmp/safe-weights-pull/fast.py';
      const [, opened] = await Promise.all([fresh.openOnly(uri, 'import pickle\nobj = pickle.loads(b)\n'), fresh.pull(uri)]);
      assert.equal(opened.kind, 'full');
      assert.deepEqual(opened.items!.map((d) => d.code), ['SW102']);
      // the change and the pull leave together; the answer must already know the new text
      const [, after] = await Promise.all([
        fresh.changeOnly(uri, 'import pickle\n', { start: { line: 1, character: 0 }, end: { line: 2, character: 0 } }),
        fresh.pull(uri, opened.resultId),
      ]);
      assert.equal(after.kind, 'full');
      assert.deepEqual(after.items, []);
    } finally {
      await fresh.stop();
    }
  });

  it('asks the client to pull again when a settings change alters an analysed document\'s findings', async () => {
    const uri = 'file:///tmp/safe-weights-pull/settings.py';
    await client.openOnly(uri, 'import torch, pickle\ntorch.load(f)\npickle.loads(b)\n');
    const before = await client.pull(uri);
    assert.deepEqual(before.items!.map((d) => d.code), ['SW101', 'SW102']);
    const refreshes = client.refreshes;
    client.settings = { workspaceScan: true, rules: { SW101: 'off' } };
    await client.conn.sendNotification('workspace/didChangeConfiguration', { settings: { safeWeights: client.settings } });
    await until('a workspace/diagnostic/refresh request', () => (client.refreshes > refreshes ? true : undefined));
    const after = await client.pull(uri, before.resultId);
    assert.equal(after.kind, 'full');
    assert.deepEqual(after.items!.map((d) => d.code), ['SW102']);
    client.settings = { workspaceScan: true };
    await client.conn.sendNotification('workspace/didChangeConfiguration', { settings: { safeWeights: client.settings } });
  });

  it('a file the workspace scan reported: its pushed findings are withdrawn while it is open (pulled), and come back on close', async () => {
    const uri = pathToFileURL(join(dir, 'on_disk.py')).href;
    const onDisk = await until('the disk scan of on_disk.py', () => { const d = client.diagnostics.get(uri); return d?.length ? d : undefined; });
    assert.deepEqual(onDisk.map((d) => d.code), ['SW102']);
    const cleared = client.nextDiagnostics(uri);
    await client.openOnly(uri, 'import pickle\nobj = pickle.loads(blob)\n');
    assert.deepEqual(await cleared, [], 'shown twice otherwise: pushed from the disk scan and pulled from the editor');
    assert.deepEqual((await client.pull(uri)).items!.map((d) => d.code), ['SW102']);
    const back = client.nextDiagnostics(uri);
    await client.conn.sendNotification('textDocument/didClose', { textDocument: { uri } });
    const after = await back;
    // (the close clears the editor's first; the disk scan's come back next)
    const restored = after.length ? after : await client.nextDiagnostics(uri);
    assert.deepEqual(restored.map((d) => d.code), ['SW102']);
  });

  it('notebook cells are still pushed to a pulling client', async () => {
    const nb = 'file:///tmp/safe-weights-pull/nb.ipynb';
    const cell = 'vscode-notebook-cell:/tmp/safe-weights-pull/nb.ipynb#W0';
    const pushed = client.nextDiagnostics(cell);
    await client.conn.sendNotification('notebookDocument/didOpen', {
      notebookDocument: { uri: nb, notebookType: 'jupyter-notebook', version: 1, cells: [{ kind: 2, document: cell }] },
      cellTextDocuments: [{ uri: cell, languageId: 'python', version: 1, text: 'import pickle\npickle.loads(b)\n' }],
    });
    assert.deepEqual((await pushed).map((d) => d.code), ['SW102']);
    assert.deepEqual(await client.pull(cell), { kind: 'full', items: [] }, 'a cell is not pulled: its findings would show twice');
  });
});
