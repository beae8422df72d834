// torch's oldest checkpoint layout (tar with storages / tensors / pickle members), written by a generator that
// checks its own output with real torch.load: the engine must list the same tensors, and the converter must
// produce a .safetensors that an independent reader finds equal to torch.load of the original.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, torchAvailable } from '../setup';
import { scanModelFile } from '../../server/src/models/scan';
import { convertToSafetensors } from '../../server/src/models/convert/convert';

const PY = '/usr/bin/python3';

describe('legacy tar checkpoints (oracle: real torch)', function () {
  this.timeout(180_000);
  let file: string;
  let manifest: Record<string, { dtype: string; shape: number[] }>;

  before(function () {
    if (!torchAvailable().ok) {
      if (process.env.CI === 'true') throw new Error('python3-torch is required under CI=true');
      this.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), 'sw-tar-'));
    file = join(dir, 'old.pt');
    const r = spawnSync(PY, [join(REPO_ROOT, 'test', 'fixtures', 'make_legacy_tar.py'), file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    manifest = JSON.parse(r.stdout);
  });

  it('is recognised as a legacy tar checkpoint, safe, with the tensors torch.load sees', async function () {
    const rep = await scanModelFile(file);
    assert.equal(rep.format, 'pytorch-legacy-tar');
    assert.equal(rep.verdict, 'safe', JSON.stringify(rep.findings));
    const got = Object.fromEntries(rep.tensors.map((t) => [t.name, { dtype: t.dtype, shape: t.shape }]));
    assert.deepEqual(got, manifest);
  });

  it('converts to safetensors equal to torch.load of the original', async function () {
    const out = file.replace(/\.pt$/, '.safetensors');
    const r = await convertToSafetensors(file, out);
    assert.equal(r.tensors, Object.keys(manifest).length);
    const check = spawnSync(PY, [join(REPO_ROOT, 'test', 'oracle', 'check_safetensors.py'), out, file, 'state_dict'], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    const res = JSON.parse(check.stdout) as { ok: boolean; tensors: number };
    assert.equal(res.ok, true);
    assert.equal(res.tensors, Object.keys(manifest).length);
  });
});
