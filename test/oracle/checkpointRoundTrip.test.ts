// The checkpoint round trip of the "convert and rebuild" fix: real torch 1.13 saves what training code saves
// (epoch, optimizer and scheduler state, argparse/pathlib values, Lightning-style callbacks, numpy arrays and
// scalars, tied weights, Parameters, the legacy format), the converter writes .safetensors with the structure in
// __metadata__, the analysis rewrites `ckpt = torch.load(...)` into the rebuild call, and the REWRITTEN PYTHON runs
// in a throwaway process with real torch: what it returns must equal torch.load of the original, type for type
// and bit for bit (compare_checkpoint.py). The safetensors package is not in Debian: the process imports a
// stand-in of the API the rewrite uses (safetensors_standin/). A pickled nn.Module is refused (its rebuilding
// needs its class's code), though its tensors still convert.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PYTHON, REPO_ROOT, generatedFixturesOrSkip } from '../setup';
import { convertToSafetensors, planConversion, ConvertRefused } from '../../server/src/models/convert/convert';
import { STRUCTURE_KEY } from '../../server/src/models/convert/structure';
import { analyzePython } from '../../server/src/python/analyze';
import { getParser, parseSync } from '../../server/src/python/parser';
import { rebuildEdits, REBUILD_FUNCTION } from '../../server/src/python/loadFixes';
import type { TextEditSpan } from '../../server/src/python/edits';

interface Manifest { torch: string; cases: Record<string, { file: string; keeps: boolean }> }

const ORACLE = join(REPO_ROOT, 'test', 'oracle');

function apply(text: string, spans: TextEditSpan[]): string {
  let out = text;
  for (const e of [...spans].sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.newText + out.slice(e.end);
  return out;
}

/** The rebuild fix's edits for the first torch.load of `code` (the same builders the code action uses). */
async function rewrite(code: string): Promise<string> {
  const tree = parseSync(await getParser(), code);
  try {
    const issue = analyzePython(tree, code).find((i) => i.rule === 'SW101' && i.loadSite);
    assert.ok(issue, 'the torch.load call is a finding with a load site');
    const site = issue.loadSite!();
    assert.ok(site);
    return apply(code, rebuildEdits(site));
  } finally { tree.delete(); }
}

function runPython(dir: string, script: string): { status: number | null; stdout: string; stderr: string } {
  writeFileSync(join(dir, 'main.py'), script);
  const r = spawnSync(PYTHON, ['main.py'], {
    cwd: dir, encoding: 'utf8', timeout: 120_000,
    env: { ...process.env, PYTHONPATH: [join(ORACLE, 'safetensors_standin'), ORACLE].join(':'), PYTHONDONTWRITEBYTECODE: '1' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const COMPARE = (original: string) => `

import json as _json
from compare_checkpoint import differences as _differences
_reference = torch.load(${JSON.stringify(original)})
print(_json.dumps({"differences": _differences(ckpt, _reference)}))
`;

describe('checkpoint round trip: convert with structure, rewrite the load, run it (oracle: real torch)', function () {
  this.timeout(300_000);
  let fixtures: { dir: string; manifest: Manifest };
  let dir: string;
  before(function () {
    fixtures = generatedFixturesOrSkip<Manifest>(this, 'test/oracle/gen_checkpoint_cases.py', ['torch', 'numpy']);
    dir = mkdtempSync(join(tmpdir(), 'sw-roundtrip-'));
    for (const c of Object.values(fixtures.manifest.cases)) copyFileSync(join(fixtures.dir, c.file), join(dir, c.file));
    copyFileSync(join(fixtures.dir, 'module_state_dict.pt'), join(dir, 'module_state_dict.pt'));
  });
  after(function () { if (dir) rmSync(dir, { recursive: true, force: true }); });

  const rebuildable = ['training', 'training_legacy', 'fairseq', 'lightning', 'numpy_inside', 'params', 'tied'];
  for (const name of rebuildable) {
    it(`${name}: the rewritten code returns what torch.load of the original returns`, async function () {
      const c = fixtures.manifest.cases[name];
      assert.equal(c.keeps, true);
      const plan = await planConversion(join(dir, c.file));
      assert.equal(plan.refusal, undefined);
      assert.equal(plan.shape, 'nested', `plan: ${JSON.stringify(plan.structure?.unsupported)}`);
      const output = join(dir, c.file.replace(/\.[^.]+$/, '.safetensors'));
      const r = await convertToSafetensors(join(dir, c.file), output, { structure: true, overwrite: true });
      assert.equal(r.structure, true);
      const code = `import torch\n\nckpt = torch.load(${JSON.stringify(c.file)}, map_location="cpu")\n`;
      const rewritten = await rewrite(code);
      assert.match(rewritten, new RegExp(`ckpt = ${REBUILD_FUNCTION}\\("${name}\\.safetensors", device="cpu"\\)`));
      assert.doesNotMatch(rewritten, /torch\.load\(/);
      const run = runPython(dir, rewritten + COMPARE(c.file));
      assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
      const verdict = JSON.parse(run.stdout.trim().split('\n').pop()!) as { differences: string[] };
      assert.deepEqual(verdict.differences, []);
    });
  }

  it('the comparison can fail: a changed value in the structure is reported', async function () {
    const c = fixtures.manifest.cases.training;
    const output = join(dir, 'training.safetensors');
    await convertToSafetensors(join(dir, c.file), output, { structure: true, overwrite: true });
    const b = readFileSync(output);
    const n = Number(b.readBigUInt64LE(0));
    const header = b.subarray(8, 8 + n).toString('utf8');
    // the epoch is 3 in the file: make it 4 (same length, so the header stays valid)
    const edited = header.replace('[\\"epoch\\",3]', '[\\"epoch\\",4]');
    assert.notEqual(edited, header, 'the structure holds the epoch');
    writeFileSync(output, Buffer.concat([b.subarray(0, 8), Buffer.from(edited, 'utf8'), b.subarray(8 + n)]));
    const run = runPython(dir, (await rewrite(`import torch\nckpt = torch.load("${c.file}")\n`)) + COMPARE(c.file));
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /\[.epoch.\]: 4 vs 3/);
  });

  it('a pickled nn.Module: the structure is refused (naming the class), its tensors still convert and the rest is said to be left out', async function () {
    const c = fixtures.manifest.cases.module;
    assert.equal(c.keeps, false);
    const plan = await planConversion(join(dir, c.file));
    assert.equal(plan.shape, undefined);
    assert.match(plan.structure?.unsupported.join('\n') ?? '', /__main__\.Net object/);
    await assert.rejects(convertToSafetensors(join(dir, c.file), join(dir, 'module.whole.safetensors'), { structure: true }),
      (e: Error) => e instanceof ConvertRefused && /cannot keep the whole checkpoint .*__main__\.Net/.test(e.message));
    const r = await convertToSafetensors(join(dir, c.file), join(dir, 'module.safetensors'), { overwrite: true });
    assert.equal(r.tensors, 9);
    assert.match(r.leftOut.join('\n'), /__main__\.Net object/);
    const check = spawnSync(PYTHON, [join(ORACLE, 'check_safetensors.py'), join(dir, 'module.safetensors'), join(dir, 'module_state_dict.pt')], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(check.status, 0, `${check.stdout}\n${check.stderr}`);
  });

  it('the metadata holds the structure under its key, tensors under their dotted paths', async function () {
    const output = join(dir, 'fairseq.check.safetensors');
    await convertToSafetensors(join(dir, fixtures.manifest.cases.fairseq.file), output, { structure: true });
    const b = readFileSync(output);
    const header = JSON.parse(b.subarray(8, 8 + Number(b.readBigUInt64LE(0))).toString('utf8')) as Record<string, unknown> & { __metadata__: Record<string, string> };
    const tree = JSON.parse(header.__metadata__[STRUCTURE_KEY]) as unknown[];
    assert.equal(tree[0], 'd');
    assert.ok('model.fc1.weight' in header && 'last_optimizer_state.state.0.exp_avg' in header);
    assert.match(header.__metadata__[STRUCTURE_KEY], /\["path","PosixPath",\["\/","data","iwslt14\.bin"\]\]/);
  });
});
