// Protocol tests: the real server over stdio, Python documents, diagnostics and the exact edits of every fix.
import * as assert from 'node:assert/strict';
import type { CodeAction, Diagnostic, TextEdit } from 'vscode-languageserver-protocol';
import { LspClient, applyEdits } from './harness';

const URI = 'file:///tmp/safe-weights-test/model_loading.py';
let n = 0;
const uri = (): string => URI.replace('.py', `_${++n}.py`);
const full = { start: { line: 0, character: 0 }, end: { line: 10000, character: 0 } };

function editsFor(action: CodeAction, u: string): TextEdit[] {
  return action.edit?.changes?.[u] ?? [];
}

describe('language server: Python documents (stdio)', function () {
  let client: LspClient;
  before(async () => { client = await LspClient.start(); });
  after(async () => { await client.stop(); });

  async function fixed(src: string, title: RegExp, expectRule: string): Promise<{ text: string; action: CodeAction; diags: Diagnostic[] }> {
    const u = uri();
    const diags = await client.open(u, src);
    const d = diags.find((x) => x.code === expectRule);
    assert.ok(d, `expected ${expectRule} in ${JSON.stringify(diags)}`);
    const actions = await client.codeActions(u, d.range, [d]);
    const action = actions.find((a) => title.test(a.title));
    assert.ok(action, `no action ${title} among ${actions.map((a) => a.title).join(', ')}`);
    return { text: applyEdits(src, editsFor(action, u)), action, diags };
  }

  it('flags unsafe loads with rule ids, severities and ranges, and nothing in strings, comments or shadowed names', async () => {
    const src = [
      'import torch as t',                        // 0
      'from torch import load as l',              // 1
      'import pickle as p',                       // 2
      'def load(x):',                             // 3
      '    return x',                             // 4
      'load("a")',                                // 5 local function: not flagged
      't.load("a.pt")',                           // 6 SW101 warning
      'l("b.pt", weights_only=False)',            // 7 SW101 error
      's = "t.load(x)"  # t.load(x)',             // 8 nothing
      'objs = [p.loads(b) for b in blobs]',       // 9 SW102
      't.load("c.pt", weights_only=True)',        // 10 nothing
      '',
    ].join('\n');
    const diags = await client.open(uri(), src);
    const got = diags.map((d) => `${d.range.start.line}:${d.range.start.character}-${d.range.end.character} ${d.code} ${d.severity} ${d.source}`).sort();
    assert.deepEqual(got, [
      '6:0-14 SW101 2 safe-weights',
      '7:0-29 SW101 1 safe-weights',
      '9:8-18 SW102 1 safe-weights',
    ]);
  });

  it('re-analyses on incremental edits', async () => {
    const u = uri();
    const first = await client.open(u, 'import torch\nx = 1\n');
    assert.equal(first.length, 0);
    const after = await client.change(u, 'torch.load(f)', { start: { line: 1, character: 0 }, end: { line: 1, character: 5 } });
    assert.deepEqual(after.map((d) => [d.code, d.range.start.line]), [['SW101', 1]]);
    const cleared = await client.change(u, ', weights_only=True', { start: { line: 1, character: 12 }, end: { line: 1, character: 12 } });
    assert.equal(cleared.length, 0);
  });

  it('after 60 incremental edits the diagnostics and fixes equal those of a fresh open of the same text', async () => {
    // the server's incremental path (edits carried over the protocol, findings and function bodies carried from
    // the state before each edit) against its full analysis: a file of local imports, an `if`-block import
    // between functions, aliases; typing, multi-line inserts, deletions, import edits
    const { prng } = await import('../unit/prng');
    const lines = ['import os', 'import pickle as pk', ''];
    for (let k = 0; k < 40; k++) {
      lines.push(`def load_${k}(path):`, k % 3 ? '    import torch' : '    import torch as t', k % 3 ? '    model = torch.load(path)' : '    model = t.load(path)',
        k > 20 ? '    other = jl.load(path)' : '    other = pk.loads(path)', '    return model', '');
      if (k === 20) lines.push('if True:', '    import joblib as jl', '');
    }
    lines.push('state = jl.load("m.joblib")', '');
    let text = lines.join('\n');
    const u = uri();
    await client.open(u, text);
    const rnd = prng(1207);
    const snippets = ['x', ' # a longer note: edits before the if-block shift everything after it', '\n    y = 1', '(', ')', '\n',
      '    import pickle\n', 'weights_only=True, ', 'torch'];
    const lineStarts = (t: string): number[] => [0, ...[...t.matchAll(/\n/g)].map((m) => m.index! + 1)];
    const pos = (t: string, off: number) => { const ls = lineStarts(t); let l = 0; while (l + 1 < ls.length && ls[l + 1] <= off) l++; return { line: l, character: off - ls[l] }; };
    let last: Diagnostic[] = [];
    let expected: Diagnostic[] = [];
    let fresh = '';
    for (let k = 0; k < 60; k++) {
      const ls = lineStarts(text);
      const line = Math.floor(rnd() * (ls.length - 1));
      const lineEnd = (ls[line + 1] ?? text.length + 1) - 1;
      const start = ls[line] + Math.floor(rnd() * (lineEnd - ls[line] + 1));
      const del = rnd() < 0.3 ? Math.min(Math.floor(rnd() * 6), text.length - start) : 0;
      const ins = del && rnd() < 0.5 ? '' : snippets[Math.floor(rnd() * snippets.length)];
      last = await client.change(u, ins, { start: pos(text, start), end: pos(text, start + del) });
      text = text.slice(0, start) + ins + text.slice(start + del);
      // after every edit: a wrong finding may be gone again after the next full analysis
      if (fresh) await client.conn.sendNotification('textDocument/didClose', { textDocument: { uri: fresh } });
      fresh = uri();
      expected = await client.open(fresh, text);
      assert.deepEqual(last, expected, `edit ${k}: ${JSON.stringify(ins)} at ${start} (deleting ${del})`);
    }
    assert.ok(expected.length > 40, `${expected.length} findings in the edited file`);
    // the fixes of a finding carried through the edits are those of the fresh document
    for (const d of [expected[0], expected[Math.floor(expected.length / 2)], expected[expected.length - 1]]) {
      const a = (await client.codeActions(u, d.range, [d])).map((x) => [x.title, JSON.stringify(x.edit?.changes?.[u] ?? null)]);
      const b = (await client.codeActions(fresh, d.range, [d])).map((x) => [x.title, JSON.stringify(x.edit?.changes?.[fresh] ?? null)]);
      assert.deepEqual(a, b, `fixes at line ${d.range.start.line}`);
    }
  });

  it('SW101 fix adds weights_only=True on one line', async () => {
    const { text, action } = await fixed('import torch\nm = torch.load("m.pt", map_location="cpu")\n', /Add weights_only=True/, 'SW101');
    assert.equal(text, 'import torch\nm = torch.load("m.pt", map_location="cpu", weights_only=True)\n');
    assert.equal(action.isPreferred, true);
    assert.equal(action.kind, 'quickfix');
  });

  it('SW101 fix keeps multi-line calls and trailing commas', async () => {
    const src = 'import torch\nm = torch.load(\n    "m.pt",\n    map_location="cpu",\n)\n';
    const { text } = await fixed(src, /Add weights_only=True/, 'SW101');
    assert.equal(text, 'import torch\nm = torch.load(\n    "m.pt",\n    map_location="cpu",\n    weights_only=True,\n)\n');
    const src2 = 'import torch\nm = torch.load(\n    "m.pt",\n    map_location="cpu"\n)\n';
    assert.equal((await fixed(src2, /Add weights_only=True/, 'SW101')).text,
      'import torch\nm = torch.load(\n    "m.pt",\n    map_location="cpu",\n    weights_only=True\n)\n');
  });

  it('SW101 fix flips weights_only=False and handles **kwargs', async () => {
    assert.equal((await fixed('from torch.serialization import load\nload(f, weights_only=False)\n', /Set weights_only=True/, 'SW101')).text,
      'from torch.serialization import load\nload(f, weights_only=True)\n');
    const r = await fixed('import torch\ntorch.load(f, **opts)\n', /Add weights_only=True/, 'SW101');
    assert.equal(r.text, 'import torch\ntorch.load(f, **opts, weights_only=True)\n');
    assert.notEqual(r.action.isPreferred, true);
  });

  it('SW107 fixes: safe_load, SafeLoader, full_load', async () => {
    assert.equal((await fixed('import yaml\ncfg = yaml.load(open("c.yml"))\n', /yaml.safe_load/, 'SW107')).text,
      'import yaml\ncfg = yaml.safe_load(open("c.yml"))\n');
    assert.equal((await fixed('import yaml as y\ncfg = y.load(s, Loader=y.UnsafeLoader)\n', /SafeLoader/, 'SW107')).text,
      'import yaml as y\ncfg = y.load(s, Loader=y.SafeLoader)\n');
    assert.equal((await fixed('import yaml\ncfg = yaml.full_load(s)\n', /yaml.safe_load/, 'SW107')).text,
      'import yaml\ncfg = yaml.safe_load(s)\n');
  });

  it('SW105 fix drops allow_pickle=True', async () => {
    assert.equal((await fixed('import numpy as np\na = np.load("a.npy", allow_pickle=True)\n', /Remove allow_pickle/, 'SW105')).text,
      'import numpy as np\na = np.load("a.npy")\n');
    assert.equal((await fixed('import numpy as np\na = np.load(\n    "a.npy",\n    allow_pickle=True,\n)\n', /Remove allow_pickle/, 'SW105')).text,
      'import numpy as np\na = np.load(\n    "a.npy",\n)\n');
  });

  it('SW111 / SW112 / SW113 / SW116 / SW110 fixes', async () => {
    assert.equal((await fixed('from transformers import AutoModel\nm = AutoModel.from_pretrained("x", trust_remote_code=True)\n', /trust_remote_code=False/, 'SW111')).text,
      'from transformers import AutoModel\nm = AutoModel.from_pretrained("x", trust_remote_code=False)\n');
    assert.equal((await fixed('from transformers import AutoModel\nm = AutoModel.from_pretrained("x", use_safetensors=False)\n', /use_safetensors=True/, 'SW112')).text,
      'from transformers import AutoModel\nm = AutoModel.from_pretrained("x", use_safetensors=True)\n');
    assert.equal((await fixed('import keras\nm = keras.models.load_model("m.keras", safe_mode=False)\n', /safe_mode=True/, 'SW113')).text,
      'import keras\nm = keras.models.load_model("m.keras", safe_mode=True)\n');
    assert.equal((await fixed('from ruamel.yaml import YAML\ny = YAML(typ="unsafe")\n', /typ="safe"/, 'SW116')).text,
      'from ruamel.yaml import YAML\ny = YAML(typ="safe")\n');
    assert.equal((await fixed('import torch\nm = torch.hub.load("a/b", "m", trust_repo=True)\n', /Remove trust_repo/, 'SW110')).text,
      'import torch\nm = torch.hub.load("a/b", "m")\n');
  });

  it('SW120 fix converts torch.save of a state_dict to safetensors and adds the import after docstring, __future__ and imports', async () => {
    const src = '"""Training."""\nfrom __future__ import annotations\n\nimport os\nimport torch\n\n\ndef main(model):\n    torch.save(model.state_dict(), "m.pt")\n';
    const { text } = await fixed(src, /safetensors/, 'SW120');
    assert.equal(text, '"""Training."""\nfrom __future__ import annotations\n\nimport os\nimport torch\nimport safetensors.torch\n\n\ndef main(model):\n    safetensors.torch.save_file(model.state_dict(), "m.safetensors")\n');
  });

  it('suppression fix writes the comment, and the comment (not in a string) suppresses', async () => {
    const { text } = await fixed('import pickle\nobj = pickle.load(f)\n', /Suppress SW102/, 'SW102');
    assert.equal(text, 'import pickle\nobj = pickle.load(f)  # safe-weights: ignore[SW102]\n');
    assert.equal((await client.open(uri(), text)).length, 0);
    const inString = await client.open(uri(), 'import pickle\nobj = pickle.load(f); s = "# safe-weights: ignore[SW102]"\n');
    assert.equal(inString.length, 1);
    const other = await client.open(uri(), 'import pickle\nobj = pickle.load(f)  # safe-weights: ignore[SW101]\n');
    assert.equal(other.length, 1);
  });

  it('source.fixAll.safeWeights applies every preferred fix at once', async () => {
    const u = uri();
    const src = 'import torch, yaml\nimport numpy as np\na = torch.load(f)\nb = yaml.load(s)\nc = np.load(p, allow_pickle=True)\nd = pickle_free = 1\n';
    await client.open(u, src);
    const actions = await client.codeActions(u, full, [], ['source.fixAll.safeWeights']);
    assert.equal(actions.length, 1);
    assert.equal(actions[0].kind, 'source.fixAll.safeWeights');
    assert.equal(applyEdits(src, editsFor(actions[0], u)),
      'import torch, yaml\nimport numpy as np\na = torch.load(f, weights_only=True)\nb = yaml.safe_load(s)\nc = np.load(p)\nd = pickle_free = 1\n');
  });

  it('applies safeWeights.* settings (rule off, severity, exclude) when they change', async () => {
    const u = uri();
    const before = await client.open(u, 'import torch, pickle\ntorch.load(f)\npickle.loads(b)\n');
    assert.deepEqual(before.map((d) => [d.code, d.severity]), [['SW101', 2], ['SW102', 1]]);
    client.settings = { workspaceScan: false, rules: { SW101: 'off', 'pickle-load': 'warning' } };
    const next = client.nextDiagnostics(u);
    await client.conn.sendNotification('workspace/didChangeConfiguration', { settings: { safeWeights: client.settings } });
    assert.deepEqual((await next).map((d) => [d.code, d.severity]), [['SW102', 2]]);
    client.settings = { workspaceScan: false, enable: false };
    const off = client.nextDiagnostics(u);
    await client.conn.sendNotification('workspace/didChangeConfiguration', { settings: { safeWeights: client.settings } });
    assert.deepEqual(await off, []);
    client.settings = { workspaceScan: false };
    const back = client.nextDiagnostics(u);
    await client.conn.sendNotification('workspace/didChangeConfiguration', { settings: { safeWeights: client.settings } });
    assert.equal((await back).length, 2);
  });

  it('reports vulnerable pins in requirements.txt and pyproject.toml', async () => {
    const req = await client.open('file:///tmp/safe-weights-test/requirements.txt', 'numpy>=1.20\ntorch==2.5.1  # old\nPyYAML<5.4\nkeras>=3.11\n', 'pip-requirements');
    assert.deepEqual(req.map((d) => [d.code, d.range.start.line]), [['SW201', 1], ['SW202', 2]]);
    assert.match(req[0].message, /CVE-2025-32434/);
    const py = await client.open('file:///tmp/safe-weights-test/pyproject.toml', '[project]\nname = "x"\ndependencies = [\n  "keras==3.8.0",\n  "torch>=2.6",\n]\n', 'toml');
    assert.deepEqual(py.map((d) => [d.code, d.range.start.line]), [['SW203', 3]]);
  });
});
