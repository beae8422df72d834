// Protocol test of the "convert and rewrite" code action: torch.load("model.pt") with model.pt in the workspace
// → the server converts the checkpoint (real torch file) and asks the client to apply the rewrite.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ApplyWorkspaceEditParams, TextEdit } from 'vscode-languageserver-protocol';
import { LspClient, applyEdits } from './harness';

const PY = '/usr/bin/python3';

function haveTorch(): boolean {
  return spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
}

describe('language server: convert to safetensors and rewrite torch.load (stdio)', function () {
  this.timeout(120_000);
  let client: LspClient;
  let dir: string;
  const applied: ApplyWorkspaceEditParams[] = [];

  before(async function () {
    if (!haveTorch()) {
      if (process.env.CI === 'true') throw new Error('python3-torch is required under CI=true');
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'sw-conv-action-'));
    const r = spawnSync(PY, ['-c', [
      'import torch, sys', 'torch.manual_seed(0)',
      'torch.save({"fc.weight": torch.randn(3, 4), "fc.bias": torch.zeros(3)}, sys.argv[1])',
      'torch.save({"w": torch.ones(2)}, sys.argv[2])',
    ].join('\n'), join(dir, 'model.pt'), join(dir, 'other.pt')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    client = await LspClient.start(dir, { settings: { workspaceScan: false } });
    client.conn.onRequest('workspace/applyEdit', (p: ApplyWorkspaceEditParams) => { applied.push(p); return { applied: true }; });
  });
  after(async () => { if (client) await client.stop(); });

  it('offers the action only for files that exist, converts, verifies with torch, and rewrites the call', async () => {
    const uri = pathToFileURL(join(dir, 'train.py')).href;
    const text = 'import torch\n\nsd = torch.load("model.pt", map_location="cpu")\nx = torch.load("missing.pt")\n';
    const diags = await client.open(uri, text);
    const [onModel, onMissing] = ['model.pt', 'missing.pt'].map((n) => diags.find((d) => d.code === 'SW101' && text.split('\n')[d.range.start.line].includes(n)));
    assert.ok(onModel && onMissing, JSON.stringify(diags));
    const missingActions = await client.codeActions(uri, onMissing.range, [onMissing]);
    assert.ok(!missingActions.some((a) => a.command?.command === 'safeWeights.convertAndRewrite'), 'no conversion offered for a missing file');
    const actions = await client.codeActions(uri, onModel.range, [onModel]);
    const convert = actions.find((a) => a.command?.command === 'safeWeights.convertAndRewrite');
    assert.ok(convert, JSON.stringify(actions.map((a) => a.title)));
    assert.match(convert.title, /model\.pt/);
    const result = await client.conn.sendRequest('workspace/executeCommand', { command: convert.command!.command, arguments: convert.command!.arguments }) as { ok: boolean };
    assert.equal(result.ok, true);
    const out = join(dir, 'model.safetensors');
    assert.ok(existsSync(out), 'model.safetensors written');
    // independent check: torch reads the header and data back and they equal the original tensors
    const check = spawnSync(PY, ['-c', [
      'import json, struct, sys, torch',
      'b = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8+n]); d = b[8+n:]',
      'orig = torch.load(sys.argv[2])',
      'for k, v in orig.items():',
      '    e = h[k]; s, t = e["data_offsets"]',
      '    x = torch.frombuffer(bytearray(d[s:t]), dtype=torch.float32).reshape(e["shape"])',
      '    assert torch.equal(x, v), k',
      'print("ok", len(orig))',
    ].join('\n'), out, join(dir, 'model.pt')], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /ok 2/);
    assert.equal(applied.length, 1);
    const edits = applied[0].edit.changes?.[uri] as TextEdit[] | undefined;
    assert.ok(edits, JSON.stringify(applied[0].edit));
    assert.equal(applyEdits(text, edits),
      'import torch\nimport safetensors.torch\n\nsd = safetensors.torch.load_file("model.safetensors", device="cpu")\nx = torch.load("missing.pt")\n');
  });

  it('never overwrites: an existing invalid .safetensors stops the action and nothing is rewritten', async () => {
    writeFileSync(join(dir, 'other.safetensors'), 'not a safetensors file');
    const uri = pathToFileURL(join(dir, 'eval.py')).href;
    const text = 'import torch\nsd = torch.load("other.pt")\n';
    const diags = await client.open(uri, text);
    const d = diags.find((x) => x.code === 'SW101')!;
    const convert = (await client.codeActions(uri, d.range, [d])).find((a) => a.command?.command === 'safeWeights.convertAndRewrite');
    assert.ok(convert);
    const before = applied.length;
    const result = await client.conn.sendRequest('workspace/executeCommand', { command: convert.command!.command, arguments: convert.command!.arguments }) as { ok: boolean };
    assert.equal(result.ok, false);
    assert.equal(readFileSync(join(dir, 'other.safetensors'), 'utf8'), 'not a safetensors file');
    assert.equal(applied.length, before, 'no edit applied');
  });
});
