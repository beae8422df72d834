// Fixes that know the file (python/fileFixes.ts + loadFixes.ts), on files written by Debian's real torch 1.13:
// which fixes a torch.load / pickle.load finding gets once the file it names is scanned, and what the
// safe_globals fix lists, checked against torch's own weights_only allowlist and Python's pickletools.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PYTHON, generatedFixturesOrSkip } from '../../setup';
import { scanModelFile } from '../../../server/src/models/scan';
import { planConversion } from '../../../server/src/models/convert/convert';
import { analyzePython, type CodeIssue } from '../../../server/src/python/analyze';
import { getParser, parseSync } from '../../../server/src/python/parser';
import { planFileFixes, type LoadedFile } from '../../../server/src/python/fileFixes';
import { fileSuppressions } from '../../../server/src/python/suppress';
import type { TextEditSpan } from '../../../server/src/python/edits';

interface Manifest { cases: Record<string, { file: string; keeps: boolean }> }

const apply = (text: string, spans: TextEditSpan[]) => {
  let out = text;
  for (const e of [...spans].sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.newText + out.slice(e.end);
  return out;
};

async function issuesOf(code: string): Promise<{ issues: CodeIssue[]; done: () => void }> {
  const tree = parseSync(await getParser(), code);
  return { issues: analyzePython(tree, code), done: () => tree.delete() };
}

async function fileFacts(path: string, name: string): Promise<LoadedFile> {
  const p = await planConversion(path);
  return { name, path, report: await scanModelFile(path), conversion: { refusal: p.refusal, shape: p.shape, unsupported: p.structure?.unsupported } };
}

/** Oracle: the globals data.pkl imports that torch's own weights_only unpickler does not allow (pickletools; torch
 *  1.13's allowlist plus _codecs.encode, which later torch added). */
function torchSaysNeeded(file: string): string[] {
  const r = spawnSync(PYTHON, ['-c', [
    'import json, pickletools, sys, zipfile',
    'from torch._weights_only_unpickler import _get_allowed_globals',
    // torch 2.x (every version with safe_globals) also allows _codecs.encode (protocol-2 bytes); 1.13 did not yet
    'allowed = set(_get_allowed_globals()) | {"_codecs.encode"}',
    'z = zipfile.ZipFile(sys.argv[1]); data = z.read([n for n in z.namelist() if n.endswith("/data.pkl")][0])',
    'out = []',
    'for op, arg, pos in pickletools.genops(data):',
    '    if op.name == "GLOBAL":',
    '        mod, name = arg.split(" ", 1)',
    '        full = f"{mod}.{name}"',
    '        if full not in allowed and full not in out: out.append(full)',
    'print(json.dumps(out))',
  ].join('\n'), file], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

describe('fixes that know the file a load names (real torch 1.13 files)', function () {
  this.timeout(300_000);
  let fx: { dir: string; manifest: Manifest };
  let dir: string;
  before(function () {
    fx = generatedFixturesOrSkip<Manifest>(this, 'test/oracle/gen_checkpoint_cases.py', ['torch', 'numpy']);
    dir = mkdtempSync(join(tmpdir(), 'sw-filefixes-'));
    const r = spawnSync(PYTHON, ['-c', [
      'import os, sys, torch, pickle',
      'torch.manual_seed(0)',
      'torch.save({"fc.weight": torch.randn(3, 4), "fc.bias": torch.zeros(3)}, os.path.join(sys.argv[1], "weights.pt"))',
      'class Evil:',
      '    def __reduce__(self): return (os.system, ("echo pwned",))',
      'torch.save({"w": torch.ones(2), "x": Evil()}, os.path.join(sys.argv[1], "evil.pt"))',
      'pickle.dump({"a": 1}, open(os.path.join(sys.argv[1], "plain.pkl"), "wb"))',
      'pickle.dump(Evil(), open(os.path.join(sys.argv[1], "malicious.pkl"), "wb"))',
    ].join('\n'), dir], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  const torchLoad = async (file: string, facts: LoadedFile, code = `import torch\n\nckpt = torch.load("${file}")\n`) => {
    const { issues, done } = await issuesOf(code);
    try {
      const issue = issues.find((i) => i.rule === 'SW101')!;
      assert.ok(issue && issue.loadSite, 'a torch.load finding with a load site');
      return { code, issue, plan: planFileFixes(issue, facts, issue.loadSite()) };
    } finally { done(); }
  };

  it('a state dict that loads with weights_only=True: that fix (preferred) and load_file conversion', async function () {
    const { plan } = await torchLoad('weights.pt', await fileFacts(join(dir, 'weights.pt'), 'weights.pt'));
    const wo = plan.fixes.find((f) => f.role === 'weights-only');
    assert.ok(wo?.preferred);
    assert.match(wo!.title, /^Add weights_only=True \(weights\.pt loads with it\)$/);
    assert.equal(plan.convert?.mode, 'load_file');
    assert.match(plan.advice, /^Add weights_only=True: weights\.pt loads with it/);
  });

  it('a training checkpoint that loads with weights_only=True: the conversion rebuilds it (load_file would lose epoch and optimizer state)', async function () {
    const f = fx.manifest.cases.training.file;
    const { plan } = await torchLoad(f, await fileFacts(join(fx.dir, f), f));
    assert.equal(plan.convert?.mode, 'rebuild');
    assert.match(plan.convert!.title, /rebuild the same checkpoint/);
  });

  it('fairseq-style (argparse, pathlib): no weights_only fix; safe_globals lists exactly what torch refuses; the rewrite is valid Python whose names exist', async function () {
    const f = fx.manifest.cases.fairseq.file;
    const facts = await fileFacts(join(fx.dir, f), f);
    const code = 'import os\nimport torch\n\n\ndef main():\n    if True:\n        ckpt = torch.load(\n            "fairseq.pt",\n            map_location="cpu",\n        )\n    return ckpt\n';
    const { plan } = await torchLoad(f, facts, code);
    assert.ok(!plan.fixes.some((x) => x.role === 'weights-only'), 'weights_only=True alone would raise');
    const sg = plan.fixes.find((x) => x.role === 'safe-globals');
    assert.ok(sg?.preferred, JSON.stringify(plan.fixes.map((x) => x.title)));
    const expected = torchSaysNeeded(join(fx.dir, f));
    assert.ok(expected.length >= 2, `oracle: ${expected}`);
    const listed = /safe_globals\(\[([^\]]*)\]\)/.exec(sg!.title)![1].split(', ');
    assert.deepEqual([...listed].sort(), [...expected].sort());
    const out = apply(code, sg!.edits);
    assert.match(out, /^import os\nimport torch\nimport (argparse|pathlib)\nimport (argparse|pathlib)\n/);
    assert.match(out, /\n        with torch\.serialization\.safe_globals\(\[argparse\.Namespace, pathlib\.PosixPath, pathlib\.PurePosixPath\]\):\n            ckpt = torch\.load\(\n                "fairseq\.pt",\n                map_location="cpu",\n                weights_only=True,\n            \)\n    return ckpt\n$/);
    // real Python parses it, and every listed name is an existing object after the added imports
    const py = spawnSync(PYTHON, ['-c', `import ast, sys\nsrc = sys.stdin.read()\nast.parse(src)\nimport argparse, pathlib\nfor e in ${JSON.stringify(listed.map((g) => g))}:\n    eval(e)\nprint("ok")`], { input: out, encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    assert.equal(plan.convert?.mode, 'rebuild');
    assert.match(plan.advice, /^Load fairseq\.pt with weights_only=True inside torch\.serialization\.safe_globals\(\[/);
  });

  it('numpy arrays inside a checkpoint: safe_globals names the numpy reconstruction globals the file uses', async function () {
    const f = fx.manifest.cases.numpy_inside.file;
    const { plan } = await torchLoad(f, await fileFacts(join(fx.dir, f), f));
    const sg = plan.fixes.find((x) => x.role === 'safe-globals');
    const listed = /safe_globals\(\[([^\]]*)\]\)/.exec(sg!.title)![1].split(', ');
    assert.deepEqual([...listed].sort(), torchSaysNeeded(join(fx.dir, f)).sort());
  });

  it('a pickled nn.Module: safe_globals lists its classes, and no conversion is offered (rebuilding needs its code)', async function () {
    const f = fx.manifest.cases.module.file;
    const { plan } = await torchLoad(f, await fileFacts(join(fx.dir, f), f));
    assert.equal(plan.convert, undefined);
    const sg = plan.fixes.find((x) => x.role === 'safe-globals');
    assert.match(sg!.title, /__main__\.Net/);
    assert.match(apply(`import torch\n\nckpt = torch.load("${f}")\n`, sg!.edits), /^import torch\nimport __main__\n/);
  });

  it('a dangerous checkpoint: neither weights_only (it refuses) nor safe_globals nor conversion; the advice says not to load it', async function () {
    const { plan } = await torchLoad('evil.pt', await fileFacts(join(dir, 'evil.pt'), 'evil.pt'));
    assert.ok(!plan.fixes.some((x) => x.role === 'weights-only' || x.role === 'safe-globals'));
    assert.equal(plan.convert, undefined);
    assert.match(plan.advice, /^Do not load evil\.pt: the scan rates it dangerous \(.*os\.system/);
    assert.ok(plan.fixes.some((x) => x.role === 'suppress'), 'suppressions stay');
  });

  it('pickle.load(open("x.pkl", "rb")) and `with open(...) as f: pickle.load(f)` name the file and its verdict', async function () {
    const code = 'import pickle\nobj = pickle.load(open("malicious.pkl", "rb"))\nwith open("plain.pkl", "rb") as f:\n    data = pickle.load(f)\n';
    const { issues, done } = await issuesOf(code);
    try {
      const [a, b] = issues.filter((i) => i.rule === 'SW102');
      assert.equal(a.path?.value, 'malicious.pkl');
      assert.equal(b.path?.value, 'plain.pkl');
      const bad = planFileFixes(a, { name: 'malicious.pkl', report: await scanModelFile(join(dir, 'malicious.pkl')) });
      assert.match(bad.advice, /^Do not load malicious\.pkl: the scan rates it dangerous \(.*os\.system/);
      const ok = planFileFixes(b, { name: 'plain.pkl', report: await scanModelFile(join(dir, 'plain.pkl')) });
      assert.match(ok.advice, /^Prefer a format without code for plain\.pkl: it scans safe today/);
    } finally { done(); }
    const jl = await issuesOf('import joblib, numpy as np\nm = joblib.load("model.joblib")\na = np.load("arr.npy", allow_pickle=True)\n');
    try {
      assert.deepEqual(jl.issues.filter((i) => i.path).map((i) => [i.rule, i.path!.value]), [['SW104', 'model.joblib'], ['SW105', 'arr.npy']]);
    } finally { jl.done(); }
  });

  it('Suppress in this file: the comment it adds silences the rule everywhere in the file, and only as a comment', async function () {
    const code = '#!/usr/bin/env python3\nimport torch\na = torch.load("x.pt")\nb = torch.load("y.pt")\n';
    const first = await issuesOf(code);
    const fix = first.issues[0].fixes.find((f) => f.title === 'Suppress SW101 in this file')!;
    first.done();
    const suppressed = apply(code, fix.edits);
    assert.equal(suppressed.split('\n')[1], '# safe-weights: ignore-file[SW101]');
    const after = await issuesOf(suppressed);
    assert.deepEqual(after.issues.filter((i) => i.rule === 'SW101'), []);
    after.done();
    const inString = await issuesOf('import torch\ns = """\n# safe-weights: ignore-file[SW101]\n"""\na = torch.load("x.pt")\n');
    assert.equal(inString.issues.filter((i) => i.rule === 'SW101').length, 1, 'text inside a string is no suppression');
    inString.done();
    const t = parseSync(await getParser(), '# safe-weights: ignore-file[SW101, SW102]\n# safe-weights: ignore-file\n');
    assert.deepEqual([...fileSuppressions('# safe-weights: ignore-file[SW101, SW102]\n# safe-weights: ignore-file\n', t)].sort(), ['*', 'SW101', 'SW102']);
    t.delete();
  });
});
