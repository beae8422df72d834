// A broken .safetensors file is reported as an invalid safetensors file (SW020, with what is wrong), not as an
// unknown format: a truncated download, a header length past the end, a file too short for the length.
import * as assert from 'node:assert/strict';
import { scanModelBytes } from '../../../server/src/models/scan';

const header = Buffer.from('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}');
const len = (n: number | bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };

describe('broken safetensors files', () => {
  it('a header cut short (a truncated download) is an invalid safetensors file, whatever its name', async () => {
    const bytes = Buffer.concat([len(header.length), header.subarray(0, 20)]);
    for (const name of ['model.safetensors', 'blob']) {
      const r = await scanModelBytes(bytes, name);
      assert.equal(r.format, 'safetensors', name);
      assert.equal(r.verdict, 'invalid', name);
      assert.deepEqual(r.findings.map((f) => [f.rule, f.message]), [['SW020', `The header length says ${header.length} bytes, but only 20 follow it: the file is truncated.`]]);
    }
  });

  it('named .safetensors: a header length past the end, or a file shorter than the length field', async () => {
    const huge = await scanModelBytes(Buffer.concat([len(10n ** 12n), Buffer.from('xx')]), 'm.safetensors');
    assert.equal(huge.format, 'safetensors');
    assert.equal(huge.verdict, 'invalid');
    assert.match(huge.findings[0].message, /^The header length \(1000000000000 bytes\) is longer than the file \(10 bytes\)/);
    const tiny = await scanModelBytes(Buffer.from([5, 0]), 'm.safetensors');
    assert.equal(tiny.verdict, 'invalid');
    assert.equal(tiny.findings[0].rule, 'SW020');
    assert.match(tiny.findings[0].message, /^The file is 2 bytes long/);
  });

  it('other bytes no format reads stay unknown (SW024)', async () => {
    const r = await scanModelBytes(Buffer.from([5, 0, 1, 2, 3, 4, 5, 6, 7, 8]), 'data.bin');
    assert.equal(r.format, 'unknown');
    assert.equal(r.findings[0].rule, 'SW024');
  });
});
