// Sparse tensors in the inventory: torch.save of sparse COO / CSR tensors (Debian's torch, zip and legacy format)
// lists each one as a single row, as torch.load returns it: dtype of its values, its dense shape, its layout, and
// the bytes of the index and value tensors it is stored as (from torch itself, test/fixtures/gen_sparse_fixtures.py).
// The converter still leaves sparse tensors out, and says so.
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatedFixturesOrSkip, type GeneratedFixtures } from '../../setup';
import { scanModelFile } from '../../../server/src/models/scan';
import { convertToSafetensors } from '../../../server/src/models/convert/convert';

interface Row { dtype: string; shape: number[]; bytes: number; layout?: string }
interface Manifest { torch: string; files: Record<string, Record<string, Row>> }

describe('sparse tensors in the inventory (real torch)', function () {
  this.timeout(300_000);
  let fx: GeneratedFixtures<Manifest>;
  before(function () { fx = generatedFixturesOrSkip<Manifest>(this, 'test/fixtures/gen_sparse_fixtures.py', ['torch']); });

  for (const file of ['coo.pt', 'coo_legacy.pt', 'csr.pt', 'nested.pt']) {
    it(`${file}: one row per tensor torch.load returns, sparse ones with their layout and stored bytes`, async () => {
      const r = await scanModelFile(join(fx.dir, file), { sha256: false });
      assert.equal(r.verdict === 'dangerous', false, r.summary);
      const got: Record<string, Row> = {};
      for (const t of r.tensors) {
        const row: Row = { dtype: t.dtype, shape: t.shape, bytes: t.bytes };
        if (t.layout) row.layout = t.layout;
        got[t.name] = row;
      }
      assert.deepEqual(got, fx.manifest.files[file]);
      assert.equal(r.tensorCount, Object.keys(fx.manifest.files[file]).length);
    });
  }

  it('the converter keeps the dense tensors and says it left the sparse one out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-sparse-'));
    try {
      const out = join(dir, 'coo.safetensors');
      const res = await convertToSafetensors(join(fx.dir, 'coo.pt'), out);
      assert.equal(res.tensors, 1);
      const bytes = readFileSync(out);
      const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(header).filter((k) => k !== '__metadata__'), ['w']);
      assert.ok(res.leftOut.some((l) => /emb.*sparse tensor.*dense tensors only/.test(l)), res.leftOut.join('; '));
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});
