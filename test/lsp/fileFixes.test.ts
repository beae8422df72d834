// Protocol test (real LSP over stdio, dist/server.js) of fixes that know the file: diagnostics that open with what
// to do with the workspace file a load names and link their README anchor; code actions narrowed to what works with
// that file (weights_only only when it loads with it, safe_globals listing what it needs, conversion that rebuilds a
// training checkpoint), Show documentation, Suppress on this line / in this file; and the checkpoint round trip:
// the rewrite the server applies, run in a throwaway python with real torch, returns what torch.load returned.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ApplyWorkspaceEditParams, CodeAction, Diagnostic, ShowDocumentParams, TextEdit } from 'vscode-languageserver-protocol';
import { LspClient, applyEdits, ROOT } from './harness';
import { PYTHON, generatedFixturesOrSkip } from '../setup';

interface Manifest { cases: Record<string, { file: string }> }

describe('language server: fixes that know the file (stdio)', function () {
  this.timeout(300_000);
  let client: LspClient;
  let dir: string;
  const applied: ApplyWorkspaceEditParams[] = [];
  const shown: ShowDocumentParams[] = [];
  const uri = () => pathToFileURL(join(dir, 'train.py')).href;
  const text = [
    'import pickle',
    'import torch',
    '',
    'args_ckpt = torch.load("fairseq.pt")',
    'ckpt = torch.load("training.pth", map_location="cpu")',
    'obj = pickle.load(open("malicious.pkl", "rb"))',
    '',
  ].join('\n');
  const lineOf = (needle: string) => text.split('\n').findIndex((l) => l.includes(needle));
  let diags: Diagnostic[] = [];
  const on = (needle: string, rule: string) => diags.find((d) => d.code === rule && d.range.start.line === lineOf(needle))!;

  before(async function () {
    const fx = generatedFixturesOrSkip<Manifest>(this, 'test/oracle/gen_checkpoint_cases.py', ['torch', 'numpy']);
    dir = mkdtempSync(join(tmpdir(), 'sw-lsp-filefixes-'));
    for (const c of ['fairseq', 'training']) copyFileSync(join(fx.dir, fx.manifest.cases[c].file), join(dir, fx.manifest.cases[c].file));
    const r = spawnSync(PYTHON, ['-c', 'import os, pickle, sys\nclass E:\n    def __reduce__(self): return (os.system, ("echo pwned",))\npickle.dump(E(), open(sys.argv[1], "wb"))', join(dir, 'malicious.pkl')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    client = await LspClient.start(dir, { settings: { workspaceScan: false } });
    client.conn.onRequest('workspace/applyEdit', (p: ApplyWorkspaceEditParams) => { applied.push(p); return { applied: true }; });
    client.conn.onRequest('window/showDocument', (p: ShowDocumentParams) => { shown.push(p); return { success: true }; });
    diags = await client.open(uri(), text);
    // the files are scanned in the background; the document is analysed again as each report is ready (waiting for
    // fairseq.pt's alone was a race: malicious.pkl's report could come after it)
    const named = (): boolean => /^Load fairseq\.pt/.test(on('fairseq', 'SW101')?.message ?? '') && /^Do not load malicious\.pkl/.test(on('malicious', 'SW102')?.message ?? '');
    for (let i = 0; i < 20 && !named(); i++) diags = await client.nextDiagnostics(uri());
  });
  after(async () => { if (client) await client.stop(); if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('diagnostics open with what to do with the file, and link the rule\'s README anchor', function () {
    const fair = on('fairseq', 'SW101'), mal = on('malicious', 'SW102');
    assert.match(fair.message, /^Load fairseq\.pt with weights_only=True inside torch\.serialization\.safe_globals\(\[argparse\.Namespace, pathlib\.PosixPath, pathlib\.PurePosixPath\]\)/);
    assert.match(mal.message, /^Do not load malicious\.pkl: the scan rates it dangerous \(.*os\.system/);
    assert.equal(fair.codeDescription?.href, 'https://github.com/safe-weights/safe-weights#sw101');
    assert.equal(mal.codeDescription?.href, 'https://github.com/safe-weights/safe-weights#sw102');
    // the anchor exists in the README
    assert.match(readFileSync(join(ROOT, 'README.md'), 'utf8'), /<a id="sw102"><\/a>/);
  });

  it('a file weights_only refuses: no "Add weights_only=True", the safe_globals fix, conversion, documentation, suppressions', async function () {
    const d = on('fairseq', 'SW101');
    // the message does not end by telling to add weights_only=True either (its first sentence says what works)
    assert.doesNotMatch(d.message, /Add weights_only=True/, d.message);
    const titles = (await client.codeActions(uri(), d.range, [d])).map((a: CodeAction) => a.title);
    assert.ok(!titles.some((t) => /^Add weights_only=True/.test(t)), titles.join('\n'));
    assert.ok(titles.some((t) => /^Load with weights_only=True inside torch\.serialization\.safe_globals\(\[argparse\.Namespace, pathlib\.PosixPath, pathlib\.PurePosixPath\]\)/.test(t)), titles.join('\n'));
    assert.ok(titles.some((t) => /^Convert fairseq\.pt to safetensors and rebuild the same checkpoint/.test(t)), titles.join('\n'));
    for (const want of ['Show documentation for SW101 torch-load-unsafe', 'Suppress SW101 on this line (SW101)', 'Suppress SW101 in this file (SW101)']) {
      assert.ok(titles.includes(want), `${want} in ${titles.join(' | ')}`);
    }
  });

  it('Show documentation opens the README shipped with the server at the rule\'s row', async function () {
    const d = on('malicious', 'SW102');
    const docs = (await client.codeActions(uri(), d.range, [d])).find((a) => a.command?.command === 'safeWeights.showRuleDocumentation')!;
    assert.ok(docs);
    const r = await client.conn.sendRequest('workspace/executeCommand', { command: docs.command!.command, arguments: docs.command!.arguments }) as { ok: boolean };
    assert.equal(r.ok, true);
    const p = shown.pop()!;
    assert.match(p.uri, /README\.md$/);
    const line = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n')[p.selection!.start.line];
    assert.match(line, /<a id="sw102"><\/a>SW102/);
  });

  it('the checkpoint round trip: convert + rewrite through the protocol, the rewritten code returns what torch.load returned', async function () {
    const d = on('training.pth', 'SW101');
    const actions = await client.codeActions(uri(), d.range, [d]);
    // it holds a frozenset, which torch's weights_only allowlist lacks: the fix names just that
    assert.ok(actions.some((a) => /^Load with weights_only=True inside torch\.serialization\.safe_globals\(\[builtins\.frozenset\]\)/.test(a.title)), actions.map((a) => a.title).join('\n'));
    assert.ok(!actions.some((a) => /^Add weights_only=True/.test(a.title)));
    const convert = actions.find((a) => a.command?.command === 'safeWeights.convertAndRewrite')!;
    assert.match(convert.title, /^Convert training\.pth to safetensors and rebuild the same checkpoint/);
    const r = await client.conn.sendRequest('workspace/executeCommand', { command: convert.command!.command, arguments: convert.command!.arguments }) as { ok: boolean };
    assert.equal(r.ok, true);
    const edits = applied.pop()!.edit.changes![uri()] as TextEdit[];
    const rewritten = applyEdits(text, edits);
    assert.match(rewritten, /\nckpt = load_safetensors_checkpoint\("training\.safetensors", device="cpu"\)\n/);
    const program = rewritten.replace(/^args_ckpt = .*$/m, '').replace(/^obj = .*$/m, '') + [
      '', 'import json', 'from compare_checkpoint import differences',
      'print(json.dumps(differences(ckpt, torch.load("training.pth"))))', '',
    ].join('\n');
    writeFileSync(join(dir, 'run.py'), program);
    const oracle = join(ROOT, 'test', 'oracle');
    const run = spawnSync(PYTHON, ['run.py'], { cwd: dir, encoding: 'utf8', timeout: 120_000,
      env: { ...process.env, PYTHONPATH: `${join(oracle, 'safetensors_standin')}:${oracle}`, PYTHONDONTWRITEBYTECODE: '1' } });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.deepEqual(JSON.parse(run.stdout.trim().split('\n').pop()!), []);
  });
});
