// Protocol tests for the workspace scan (code and model files, excludes, $/progress, status), the model-file
// cross-reference on load calls, and the custom safeWeights/* requests.
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LspClient } from './harness';

/** A protocol-0 pickle that would call os.system when unpickled (never unpickled here: only scanned). */
const EVIL_PICKLE = Buffer.from("cos\nsystem\n(S'echo pwned'\ntR.", 'latin1');

describe('language server: workspace scan and model cross-reference (stdio)', function () {
  let client: LspClient;
  let dir: string;
  const uri = (rel: string): string => pathToFileURL(join(dir, rel)).href;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sw-ws-'));
    writeFileSync(join(dir, 'checkpoint.pt'), EVIL_PICKLE);
    writeFileSync(join(dir, 'train.py'), 'import torch\nstate = torch.load("checkpoint.pt")\n');
    writeFileSync(join(dir, 'requirements.txt'), 'torch==2.5.1\n');
    writeFileSync(join(dir, 'pyproject.toml'), '[project]\nname = "demo"\n\n[tool.safe-weights]\nexclude = ["build/**"]\ndisable = ["SW120"]\n');
    writeFileSync(join(dir, 'nb.ipynb'), JSON.stringify({ nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [
      { cell_type: 'code', source: 'import pickle\n', metadata: {}, outputs: [] },
      { cell_type: 'code', source: 'x = pickle.loads(b)\n', metadata: {}, outputs: [] },
    ] }));
    for (const sub of ['build', '.venv/lib', 'node_modules/pkg', 'env2']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'env2', 'pyvenv.cfg'), 'home = /usr/bin\n');
    for (const f of ['build/gen.py', '.venv/lib/bad.py', 'node_modules/pkg/bad.py', 'env2/bad.py', 'saver.py']) {
      writeFileSync(join(dir, f), f === 'saver.py' ? 'import torch\ntorch.save(m, "x.pt")\n' : 'import pickle\npickle.loads(b)\n');
    }
    client = await LspClient.start(dir, { settings: { workspaceScan: false } });
  });
  after(async () => { await client.stop(); });

  it('scans code and model files with progress, honours excludes and [tool.safe-weights], reports status', async () => {
    const result = await client.conn.sendRequest('safeWeights/scanWorkspace') as { files: number; dangerous: number; caution: number; codeFiles: number };
    // model files: checkpoint.pt; code files: train.py, requirements.txt, pyproject.toml, nb.ipynb, saver.py
    assert.deepEqual(result, { files: 1, dangerous: 1, caution: 0, codeFiles: 5 });
    const model = client.diagnostics.get(uri('checkpoint.pt'));
    assert.ok(model && model.length === 1, 'model file diagnostic');
    assert.equal(model[0].severity, 1);
    assert.equal(model[0].source, 'safe-weights');
    assert.equal(model[0].code, 'SW001');
    // a binary file has no lines: the message says where (the GLOBAL opcode 'c' is the file's first byte)
    assert.match(model[0].message, /^At byte 0 \(0x0\): .*os\.system/);
    assert.deepEqual(model[0].range, { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } });
    assert.deepEqual(client.diagnostics.get(uri('train.py'))?.map((d) => [d.code, d.range.start.line]), [['SW101', 1]]);
    assert.deepEqual(client.diagnostics.get(uri('requirements.txt'))?.map((d) => d.code), ['SW201']);
    const nb = client.diagnostics.get(uri('nb.ipynb'));
    assert.deepEqual(nb?.map((d) => d.code), ['SW102']);
    assert.match(nb![0].message, /^cell 2, line 1: /);
    // the range points at the call inside the .ipynb JSON text (the notebook is not open)
    const nbText = readFileSync(join(dir, 'nb.ipynb'), 'utf8');
    const call = nbText.indexOf('pickle.loads(b)');
    assert.deepEqual(nb![0].range, { start: { line: 0, character: call }, end: { line: 0, character: call + 'pickle.loads(b)'.length } });
    assert.deepEqual(client.diagnostics.get(uri('saver.py')) ?? [], [], 'SW120 disabled in pyproject');
    for (const f of ['build/gen.py', '.venv/lib/bad.py', 'node_modules/pkg/bad.py', 'env2/bad.py']) {
      assert.equal(client.diagnostics.get(uri(f)), undefined, `${f} must be excluded`);
    }
    const status = client.notifications.filter((n) => n.method === 'safeWeights/status').pop();
    assert.ok(status, 'status notification');
    // the status counts model files only (the code findings are in Problems), and lists the flagged ones
    assert.deepEqual(status.params, { dangerous: 1, caution: 0, scanned: 1, scanning: false,
      files: [{ uri: uri('checkpoint.pt'), verdict: 'dangerous', summary: model[0].message.replace(/^At byte 0 \(0x0\): /, '') }] });
    assert.ok(client.notifications.some((n) => n.method === '$/progress'), '$/progress sent');
  });

  it('adds the model verdict as related information on a load of a workspace file', async () => {
    const src = readFileSync(join(dir, 'train.py'), 'utf8');
    let diags = await client.open(uri('train.py'), src);
    for (let i = 0; i < 3 && !diags[0]?.relatedInformation; i++) diags = await client.nextDiagnostics(uri('train.py'));
    const rel = diags[0].relatedInformation?.[0];
    assert.ok(rel, 'related information');
    assert.equal(rel.location.uri, uri('checkpoint.pt'));
    assert.match(rel.message, /^checkpoint\.pt \(dangerous\): /);
    assert.match(rel.message, /system/);
  });

  it('answers safeWeights/modelReport and safeWeights/disassembly', async () => {
    const report = await client.conn.sendRequest('safeWeights/modelReport', { uri: uri('checkpoint.pt') }) as { verdict: string; globals: { module: string; name: string }[] };
    assert.equal(report.verdict, 'dangerous');
    assert.ok(report.globals.some((g) => g.name === 'system'));
    const dis = await client.conn.sendRequest('safeWeights/disassembly', { uri: uri('checkpoint.pt') }) as { text: string };
    assert.match(dis.text, /system/);
  });

  it('safeWeights/convert refuses a dangerous file and writes nothing', async () => {
    const r = await client.conn.sendRequest('safeWeights/convert', { uri: uri('checkpoint.pt') }) as { ok: boolean; message: string };
    assert.equal(r.ok, false);
    assert.match(r.message, /refusing/);
    assert.equal(existsSync(join(dir, 'checkpoint.safetensors')), false);
  });

  it('keeps results current when files change on disk', async () => {
    writeFileSync(join(dir, 'saver.py'), 'import yaml\nyaml.load(s)\n');
    const next = client.nextDiagnostics(uri('saver.py'));
    await client.conn.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: uri('saver.py'), type: 2 }] });
    assert.deepEqual((await next).map((d) => d.code), ['SW107']);
    const gone = client.nextDiagnostics(uri('saver.py'));
    await client.conn.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: uri('saver.py'), type: 3 }] });
    assert.deepEqual(await gone, []);
  });
});
