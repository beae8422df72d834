// MATLAB MAT-files (scipy.io.savemat) are not pickles: their 128-byte header ("MATLAB 5.0 MAT-file...", version and
// endian indicator at bytes 124-127, read the way scipy.io.loadmat reads it) is recognised, and the scan says what
// the file is instead of reporting a broken, dangerous pickle. Real files from test/fixtures/gen_format_fixes.py;
// hand-built headers for the edges (big-endian, v7.3, look-alikes that are not MAT-files).
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { matlabHeader } from '../../../server/src/models/formats/matlab';
import { GeneratedFixtures, generatedFixturesOrSkip } from '../../setup';
import { EngineApi, describeReport, loadEngine } from './engine';
import { osSystemPickle } from './pickleAsm';
import { buildZip } from './zipAsm';

interface FixManifest { files: Record<string, { kind: string; version?: string; note: string }> }

/** A 128-byte MAT header: text, then the subsystem offset, version and endian indicator. */
function header(text: string, endian: 'IM' | 'MI' = 'IM', version = 0x0100): Buffer {
  const h = Buffer.alloc(128, 0x20);
  h.write(text, 0, 'latin1');
  h.fill(0, 116, 124);
  if (endian === 'IM') h.writeUInt16LE(version, 124); else h.writeUInt16BE(version, 124);
  h.write(endian, 126, 'latin1');
  return h;
}

describe('MATLAB MAT-files are not pickles', function () {
  this.timeout(300_000);
  let engine: EngineApi;
  let fx: GeneratedFixtures<FixManifest>;
  before(function () {
    engine = loadEngine(this);
    fx = generatedFixturesOrSkip<FixManifest>(this, 'test/fixtures/gen_format_fixes.py', ['joblib', 'numpy', 'scipy', 'sklearn']);
  });

  it('every scipy.io.savemat v5 file: "MATLAB .mat file; no model loader unpickles it", never dangerous', async function () {
    const mats = Object.entries(fx.manifest.files).filter(([, e]) => e.kind === 'matlab' && e.version === '5');
    assert.ok(mats.length >= 4, 'plain, compressed, struct/cell and column files');
    for (const [name, e] of mats) {
      const r = await engine.scanModelFile(join(fx.dir, name));
      const why = `${name} (${e.note})\n${describeReport(r)}`;
      assert.notEqual(r.verdict, 'dangerous', why);
      assert.equal(r.formatDetail, 'MATLAB MAT-file v5', why);
      assert.deepEqual(r.globals, [], why);
      const f = r.findings.find((x) => x.rule === 'SW024');
      assert.ok(f, why);
      assert.match(f.message, /^MATLAB \.mat file \(v5, little-endian: "MATLAB 5\.0 MAT-file[^"]*"\); no model loader unpickles it/, why);
      assert.match(r.summary, /MATLAB \.mat file/, why);
      assert.ok(!r.findings.some((x) => x.severity === 'dangerous'), why);
    }
  });

  it('a v4 MAT-file (no text header) is not taken for a v5 one', async function () {
    const r = await engine.scanModelFile(join(fx.dir, 'v4.mat'));
    assert.notEqual(r.formatDetail, 'MATLAB MAT-file v5');
  });

  it('the header as loadmat reads it: endian indicator, version, text', function () {
    assert.deepEqual(matlabHeader(header('MATLAB 5.0 MAT-file, Platform: GLNXA64')), { version: '5', endian: 'little', text: 'MATLAB 5.0 MAT-file, Platform: GLNXA64' });
    assert.deepEqual(matlabHeader(header('MATLAB 5.0 MAT-file', 'MI')), { version: '5', endian: 'big', text: 'MATLAB 5.0 MAT-file' });
    assert.equal(matlabHeader(header('MATLAB 7.3 MAT-file', 'IM', 0x0200))?.version, '7.3');
    assert.equal(matlabHeader(header('MATLAB 5.0', 'IM', 0x0300)), undefined, 'unknown version (loadmat raises)');
    const noIndicator = header('MATLAB 5.0 MAT-file'); noIndicator.write('XX', 126, 'latin1');
    assert.equal(matlabHeader(noIndicator), undefined, 'no endian indicator');
    assert.equal(matlabHeader(header('MATLAB 5.0').subarray(0, 127)), undefined, 'shorter than the header');
    const v4 = header('MATLAB 5.0'); v4[2] = 0;
    assert.equal(matlabHeader(v4), undefined, 'a zero among the first four bytes makes it v4 for loadmat');
  });

  it('only the text "MATLAB" makes a MAT header (which no unpickler reads): a pickle with the indicator bytes stays a pickle', async function () {
    // os.system pickle, padded so that bytes 124-127 hold a valid version and "IM": still read as the pickle it is
    const evil = Buffer.from(osSystemPickle().bytes);
    const file = Buffer.concat([evil, Buffer.alloc(128 - evil.length, 0x20)]);
    file.writeUInt16LE(0x0100, 124); file.write('IM', 126, 'latin1');
    assert.equal(matlabHeader(file), undefined);
    const r = await engine.scanModelBytes(file, 'looks-like.mat');
    assert.equal(r.verdict, 'dangerous', describeReport(r));
  });

  it('a MAT header with a zip appended: the archive (which Python\'s zipfile reads) is scanned', async function () {
    // offsets counted from the start of the file (a zip tool appending to the .mat); see formats/zip.ts for offsets
    // counted from the archive's own start (`cat a.mat b.zip`), which Python's zipfile also reads
    const mat = Buffer.concat([header('MATLAB 5.0 MAT-file, Platform: posix'), Buffer.alloc(64)]);
    const file = buildZip([{ name: 'archive/data.pkl', data: osSystemPickle().bytes }], { prefix: mat });
    const r = await engine.scanModelBytes(file, 'hidden.mat');
    assert.ok(r.findings.some((f) => f.rule === 'SW012'), describeReport(r));
    assert.equal(r.verdict, 'dangerous', describeReport(r));
  });
});
