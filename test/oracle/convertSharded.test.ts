// Oracle test for sharded checkpoints: real torch writes two shards + pytorch_model.bin.index.json; the bundled
// CLI converts them; an independent Python check reads model.safetensors.index.json and every shard with stdlib
// JSON + torch.frombuffer and compares each tensor with torch.load of the original shard.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, requireBuilt, torchAvailable } from '../setup';

const PY = '/usr/bin/python3';

const MAKE = `
import json, sys, torch
d = sys.argv[1]
torch.manual_seed(1)
s1 = {"embed.weight": torch.randn(10, 4), "layer0.weight": torch.randn(4, 4).to(torch.float16)}
s2 = {"layer1.weight": torch.randn(4, 4), "layer1.bias": torch.arange(4, dtype=torch.int64)}
torch.save(s1, d + "/pytorch_model-00001-of-00002.bin")
torch.save(s2, d + "/pytorch_model-00002-of-00002.bin")
wm = {k: "pytorch_model-00001-of-00002.bin" for k in s1}
wm.update({k: "pytorch_model-00002-of-00002.bin" for k in s2})
json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, open(d + "/pytorch_model.bin.index.json", "w"))
`;

const CHECK = `
import json, struct, sys, torch
d = sys.argv[1]
DT = {"F32": torch.float32, "F16": torch.float16, "I64": torch.int64}
old = json.load(open(d + "/pytorch_model.bin.index.json"))
new = json.load(open(d + "/model.safetensors.index.json"))
assert set(new["weight_map"]) == set(old["weight_map"]), (new["weight_map"], old["weight_map"])
total = 0
for name, shard in new["weight_map"].items():
    assert shard.endswith(".safetensors") and shard.startswith("model-"), shard
    raw = open(d + "/" + shard, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n]); e = h[name]; s, t = e["data_offsets"]
    x = torch.frombuffer(bytearray(raw[8 + n + s:8 + n + t]), dtype=DT[e["dtype"]]).reshape(e["shape"])
    ref = torch.load(d + "/" + old["weight_map"][name])[name]
    assert x.dtype == ref.dtype and torch.equal(x, ref), name
    total += t - s
assert new["metadata"]["total_size"] == total, (new["metadata"], total)
print("ok", len(new["weight_map"]))
`;

describe('convert a sharded checkpoint (oracle: real torch)', function () {
  this.timeout(180_000);
  let dir: string;
  let cli: string;

  before(function () {
    if (!torchAvailable().ok) {
      if (process.env.CI === 'true') throw new Error('python3-torch is required under CI=true');
      this.skip();
    }
    cli = requireBuilt(this, 'dist/cli.js');
    dir = mkdtempSync(join(tmpdir(), 'sw-sharded-'));
    const r = spawnSync(PY, ['-c', MAKE, dir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('converts every shard and writes model.safetensors.index.json that torch data agrees with', function () {
    const r = spawnSync(process.execPath, [cli, 'convert', join(dir, 'pytorch_model.bin.index.json')], { encoding: 'utf8', cwd: REPO_ROOT });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    for (const f of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']) {
      assert.ok(existsSync(join(dir, f)), f);
    }
    const check = spawnSync(PY, ['-c', CHECK, dir], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /ok 4/);
  });

  it('refuses to replace an existing index without --force, and shards outside the folder', function () {
    const idx = join(dir, 'model.safetensors.index.json');
    const before = readFileSync(idx, 'utf8');
    const again = spawnSync(process.execPath, [cli, 'convert', join(dir, 'pytorch_model.bin.index.json')], { encoding: 'utf8' });
    assert.equal(again.status, 1, again.stderr);
    assert.match(again.stderr, /already exists/);
    assert.equal(readFileSync(idx, 'utf8'), before);
    const evil = join(dir, 'evil.index.json');
    writeFileSync(evil, JSON.stringify({ weight_map: { w: '../../etc/passwd' } }));
    const bad = spawnSync(process.execPath, [cli, 'convert', evil], { encoding: 'utf8' });
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /outside the index's folder/);
  });
});
