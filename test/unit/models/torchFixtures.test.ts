// Every fixture written by real torch / numpy (test/fixtures/gen_torch_fixtures.py) must scan the way the
// manifest says torch sees it: verdict, weights-only answer and tensor inventory.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelReport } from '../../../server/src/models/types';
import { TorchFixtures, torchFixturesOrSkip } from '../../setup';
import { EngineApi, describeReport, expectFinding, expectNoFinding, expectVerdict, loadEngine } from './engine';

const ELEMENT_SIZE: Record<string, number> = {
  float64: 8, float32: 4, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
  complex64: 8, complex128: 16,
};
const key = (t: { name?: string; dtype: string; shape: number[] }, withName: boolean): string =>
  `${withName ? `${t.name ?? ''} ` : ''}${t.dtype} [${t.shape.join(',')}]`;

describe('real torch / numpy fixtures', function () {
  this.timeout(300_000);
  let fx: TorchFixtures;
  let engine: EngineApi;
  const reports = new Map<string, ModelReport>();
  before(async function () {
    engine = loadEngine(this);
    fx = torchFixturesOrSkip(this);
    for (const name of Object.keys(fx.manifest.files)) reports.set(name, await engine.scanModelFile(join(fx.dir, name)));
  });

  it('the manifest covers the fixture families the issue asks for', function () {
    const names = Object.keys(fx.manifest.files);
    for (const want of ['state_dict_dtypes.pt', 'checkpoint.ckpt', 'full_module.pt', 'legacy_state_dict.pt', 'scalars_and_empty.pt',
      'shared_and_views.pt', 'pytorch_model-00001-of-00002.bin', 'state_dict_wrapped.ckpt', 'estimator.joblib.gzip', 'estimator.joblib.bz2',
      'estimator.joblib.xz', 'estimator.joblib.lzma', 'estimator.joblib.zlib', 'numpy_wrapper.joblib', 'plain.npy', 'object.npy', 'arrays.npz']) {
      assert.ok(names.includes(want), `manifest lacks ${want}`);
    }
    const dtypes = new Set(fx.manifest.files['state_dict_dtypes.pt']!.tensors.map((t) => t.dtype));
    for (const d of ['float32', 'float64', 'float16', 'bfloat16', 'int8', 'int16', 'int32', 'int64', 'uint8', 'bool', 'complex64']) assert.ok(dtypes.has(d), d);
  });

  it('every fixture gets the expected format and verdict', function () {
    const problems: string[] = [];
    for (const [name, want] of Object.entries(fx.manifest.files)) {
      const r = reports.get(name)!;
      if (!want.format.includes(r.format)) problems.push(`${name}: format ${r.format}, expected one of ${want.format.join('|')}`);
      if (!(want.accept_verdicts ?? [want.verdict]).includes(r.verdict)) problems.push(`${name}: verdict ${r.verdict}, expected ${want.verdict}\n${describeReport(r)}`);
    }
    assert.deepEqual(problems, []);
  });

  it('no fixture has a malformed pickle (SW004) or an unresolved operand (SW003)', function () {
    for (const [name, r] of reports) {
      expectNoFinding(r, { rule: 'SW004' });
      expectNoFinding(r, { rule: 'SW003' });
      assert.ok(r.pickles.every((p) => p.complete), `${name}: incomplete pickle\n${describeReport(r)}`);
    }
  });

  it('weightsOnly.loads matches what torch.load(weights_only=True) does', function () {
    const problems: string[] = [];
    for (const [name, want] of Object.entries(fx.manifest.files)) {
      if (want.weightsOnly === null) continue;
      const r = reports.get(name)!;
      if (r.weightsOnly.loads !== want.weightsOnly) problems.push(`${name}: ${String(r.weightsOnly.loads)} (${r.weightsOnly.reason}), torch: ${String(want.weightsOnly)}`);
    }
    assert.deepEqual(problems, []);
  });

  it('tensor inventory equals what torch loads (names, dtypes, shapes, bytes)', function () {
    const problems: string[] = [];
    for (const [name, want] of Object.entries(fx.manifest.files)) {
      const r = reports.get(name)!;
      // Pickles of numpy arrays (joblib-style) may not list arrays; torch formats and npy/npz must.
      const required = want.format.some((f) => f.startsWith('pytorch') || f.startsWith('numpy'));
      if (!required && r.tensors.length === 0) continue;
      const got = r.tensors.map((t) => key(t, want.namesComparable)).sort();
      const exp = want.tensors.map((t) => key(t, want.namesComparable)).sort();
      if (JSON.stringify(got) !== JSON.stringify(exp)) problems.push(`${name}:\n  got ${JSON.stringify(got)}\n  exp ${JSON.stringify(exp)}`);
      for (const t of r.tensors) {
        const numel = t.shape.reduce((a, b) => a * b, 1);
        const size = ELEMENT_SIZE[t.dtype];
        if (size !== undefined && t.bytes !== numel * size) problems.push(`${name}: ${t.name} bytes ${t.bytes} != ${numel}*${size}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('torch tensors name their storage member or key', function () {
    for (const name of ['state_dict_dtypes.pt', 'checkpoint.ckpt', 'legacy_state_dict.pt']) {
      const r = reports.get(name)!;
      assert.ok(r.tensors.length > 0 && r.tensors.every((t) => typeof t.storageKey === 'string' && t.storageKey.length > 0), `${name}\n${JSON.stringify(r.tensors.slice(0, 3))}`);
    }
    const tied = reports.get('shared_and_views.pt')!;
    const emb = tied.tensors.find((t) => t.name === 'embed.weight');
    const head = tied.tensors.find((t) => t.name === 'lm_head.weight');
    assert.ok(emb && head && emb.storageKey === head.storageKey, 'tied weights share one storage');
    const base = tied.tensors.find((t) => t.name === 'base');
    const tail = tied.tensors.find((t) => t.name === 'flat_tail');
    assert.ok(base && tail && base.storageKey === tail.storageKey, 'views share their base storage');
  });

  it('the full nn.Module pickle is caution and names the model classes', function () {
    const r = reports.get('full_module.pt')!;
    expectVerdict(r, 'caution');
    for (const cls of fx.manifest.files['full_module.pt']!.classes!) expectFinding(r, { rule: 'SW002', global: cls });
    expectNoFinding(r, { severity: 'dangerous' });
  });

  it('joblib NumpyArrayWrapper layout is parsed (raw array bytes after each BUILD skipped), never dangerous', function () {
    const r = reports.get('numpy_wrapper.joblib')!;
    expectVerdict(r, ['safe', 'caution']);
    expectNoFinding(r, { rule: 'SW004' });
    assert.ok(r.globals.some((g) => g.module === 'joblib.numpy_pickle' && g.name === 'NumpyArrayWrapper'), describeReport(r));
    if (r.verdict === 'caution') expectFinding(r, { rule: 'SW002', global: 'joblib.numpy_pickle.NumpyArrayWrapper' });
  });

  it('compressed joblib-style pickles are detected by their bytes', function () {
    for (const kind of ['gzip', 'bz2', 'xz', 'lzma', 'zlib']) {
      const r = reports.get(`estimator.joblib.${kind}`)!;
      assert.equal(r.format, 'joblib', `${kind}: ${r.format}`);
      expectVerdict(r, 'safe');
    }
  });

  it('object .npy reports SW016 and stays safe (numpy reconstruct only)', function () {
    const r = reports.get('object.npy')!;
    expectFinding(r, { rule: 'SW016' });
    expectVerdict(r, 'safe');
  });

  it('scanModelBytes agrees with scanModelFile', async function () {
    for (const name of ['checkpoint.ckpt', 'legacy_checkpoint.pth', 'estimator.joblib.xz', 'arrays.npz']) {
      const a = reports.get(name)!;
      const b = await engine.scanModelBytes(readFileSync(join(fx.dir, name)), name);
      assert.equal(b.verdict, a.verdict, name);
      assert.equal(b.format, a.format, name);
      assert.deepEqual(b.tensors.map((t) => key(t, true)), a.tensors.map((t) => key(t, true)), name);
    }
  });

  it('SHA-256 on request matches the file', async function () {
    const p = join(fx.dir, 'checkpoint.ckpt');
    const r = await engine.scanModelFile(p, { sha256: true });
    assert.equal(r.sha256, createHash('sha256').update(readFileSync(p)).digest('hex'));
  });

  it('disassembly of a real checkpoint shows its opcodes and globals', async function () {
    const d = await engine.disassembleModelFile(join(fx.dir, 'checkpoint.ckpt'));
    assert.match(d.text, /GLOBAL/);
    assert.match(d.text, /_rebuild_tensor_v2/);
    assert.match(d.text, /BINPERSID/);
    assert.equal(d.truncated, false);
    assert.ok(d.decompiled.length > 0);
  });
});
