// Keras (.keras zips and legacy .h5), plain HDF5 and ONNX (issue #14 items 1-3, 6): files written by the real
// tools (h5py, onnx, zipfile in Keras' layout, torch.save) in test/fixtures/gen_keras_onnx.py, and Debian's
// libonnx-testdata models. Expected values come from the generator's manifest, which records what h5py and
// onnx.load themselves see (dataset names, shapes, dtypes, data offsets; initializers, opsets, producer), and the
// verdict and rules each adversarial technique must get per its advisory.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { discover } from '../../../server/src/models/discovery';
import { inspectHdf5 } from '../../../server/src/models/formats/hdf5';
import { inspectOnnx, locationProblem, looksLikeOnnx } from '../../../server/src/models/formats/onnx';
import { summarizeCode } from '../../../server/src/models/formats/pyMarshal';
import { FileSource, type ByteSource } from '../../../server/src/models/source';
import type { ModelReport } from '../../../server/src/models/types';
import { readFileSync } from 'node:fs';
import { prng } from '../prng';
import { GeneratedFixtures, REPO_ROOT, generatedFixturesOrSkip, requireBuilt } from '../../setup';
import { EngineApi, describeReport, loadEngine } from './engine';

interface Dataset { name: string; shape: number[]; dtype: string; offset: number | null }
interface Entry {
  kind: string; note: string; verdict: string; rules: string[]; tensors?: number;
  names?: string[]; consts?: string[]; global?: string; api?: string; allow?: string; domain?: string;
  producer?: string; opset?: string; ir_version?: number; location?: string;
  tensor?: { name: string; shape: number[]; dtype: string };
  datasets?: Dataset[]; weights_data_offset?: number | null;
}
interface TestModel { ir_version: number; producer_name: string; opsets: Record<string, number>; initializers: { name: string; shape: number[]; data_type: number }[]; nodes: number }
interface Manifest { files: Record<string, Entry>; testdata: Record<string, TestModel>; code: { b64: string; name: string; names: string[]; str_consts: string[] } }

/** Counts the bytes a reader asks for. */
class CountingSource implements ByteSource {
  bytes = 0;
  constructor(private readonly s: ByteSource) {}
  get size(): number { return this.s.size; }
  read(o: number, n: number): Uint8Array { const b = this.s.read(o, n); this.bytes += b.length; return b; }
  readInto(d: Uint8Array, at: number, o: number, n: number): number { const k = this.s.readInto(d, at, o, n); this.bytes += k; return k; }
  close(): void { this.s.close(); }
}

const ONNX_TYPE: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 16: 'bfloat16' };

describe('Keras, HDF5 and ONNX files (real h5py / onnx / torch output)', function () {
  this.timeout(300_000);
  let engine: EngineApi;
  let fx: GeneratedFixtures<Manifest>;
  const scan = (name: string, allowGlobals?: string[]) => engine.scanModelFile(join(fx.dir, name), allowGlobals ? { allowGlobals } : {});
  before(function () {
    engine = loadEngine(this);
    fx = generatedFixturesOrSkip<Manifest>(this, 'test/fixtures/gen_keras_onnx.py', ['h5py', 'onnx', 'numpy', 'torch']);
  });

  it('every fixture gets the verdict and rules its technique calls for', async function () {
    const failures: string[] = [];
    for (const [name, e] of Object.entries(fx.manifest.files)) {
      const r = await scan(name);
      const rules = new Set(r.findings.map((f) => f.rule));
      const missing = e.rules.filter((x) => !rules.has(x));
      if (r.verdict !== e.verdict || missing.length) failures.push(`${name} (${e.note}): expected ${e.verdict} with ${e.rules.join(', ') || 'no rules'}, got ${r.verdict}; missing ${missing.join(', ') || '-'}\n${describeReport(r)}`);
      if (e.verdict === 'safe' && r.findings.some((f) => f.severity !== 'info')) failures.push(`${name}: safe file with findings\n${describeReport(r)}`);
    }
    assert.deepEqual(failures, []);
  });

  it('formats are named: keras, keras-h5, hdf5, onnx', async function () {
    assert.equal((await scan('keras/benign.keras')).format, 'keras');
    assert.equal((await scan('keras/benign_deflated.keras')).format, 'keras');
    assert.equal((await scan('h5/legacy_benign.h5')).format, 'keras-h5');
    assert.equal((await scan('h5/plain.h5')).format, 'hdf5');
    assert.equal((await scan('onnx/benign.onnx')).format, 'onnx');
  });

  it('HDF5 inventory equals what h5py lists: names, shapes, dtypes and data offsets (superblock v0/v3, user block, .keras member)', async function () {
    let checked = 0;
    for (const [name, e] of Object.entries(fx.manifest.files)) {
      if (!e.datasets || name.startsWith('big/') || e.verdict !== 'safe') continue;
      const r = await scan(name);
      const rows = r.tensors.map((t) => ({ dtype: t.dtype, name: t.name, offset: t.offset ?? null, shape: t.shape })).sort((a, b) => (a.name < b.name ? -1 : 1));
      // h5py's offsets are within the HDF5 file; in a .keras archive the stored member starts at weights_data_offset
      const shift = e.kind === 'keras' ? e.weights_data_offset ?? 0 : 0;
      const want = e.datasets.map((d) => ({ dtype: d.dtype, name: d.name, offset: d.offset === null ? null : d.offset + shift, shape: d.shape }));
      assert.deepEqual(rows, want, `${name}\n${describeReport(r)}`);
      checked++;
    }
    assert.ok(checked >= 10, `${checked} files compared`);
  });

  it('the legacy .h5 model_config / training_config and keras_version are read', async function () {
    for (const f of ['h5/legacy_benign.h5', 'h5/legacy_bytes_config.h5', 'h5/legacy_latest.h5', 'h5/legacy_userblock.h5']) {
      const r = await scan(f);
      assert.equal(r.metadata['keras.keras_version'], '2.13.1', f);
      assert.equal(r.metadata['keras.model_class'], 'Sequential', f);
      assert.equal(r.metadata['keras.layer_classes'], 'InputLayer, Dense', f);
    }
    const k = await scan('keras/benign.keras');
    assert.equal(k.metadata['keras.keras_version'], '3.5.0');
    assert.equal(k.metadata['keras.layers'], '3');
  });

  it('Lambda bytecode (CVE-2024-3660, legacy .h5 CVE-2025-9905): the marshal\'d code\'s names and constants are shown', async function () {
    for (const [name, e] of Object.entries(fx.manifest.files)) {
      if (!e.names) continue;
      const r = await scan(name);
      const f = r.findings.find((x) => x.rule === 'SW030');
      assert.ok(f, `${name}\n${describeReport(r)}`);
      for (const n of e.names) assert.match(f.message, new RegExp(`names: [^;]*\\b${n}\\b`), `${name}: ${f.message}`);
      for (const c of e.consts ?? []) assert.ok(f.message.includes(JSON.stringify(c)), `${name}: constant ${c} in ${f.message}`);
    }
  });

  it('config references outside Keras (CVE-2025-1550) and non-modeling Keras APIs (CVE-2025-8747, 9906) name the callable', async function () {
    for (const [name, e] of Object.entries(fx.manifest.files)) {
      if (!e.global && !e.api) continue;
      const r = await scan(name);
      const target = e.api ?? e.global!;
      assert.ok(r.findings.some((f) => f.message.includes(target) || f.global === target), `${name}: ${target}\n${describeReport(r)}`);
    }
  });

  it('allow-globals vets a custom Keras object (caution), but never a denylisted one', async function () {
    const vetted = await scan('keras/custom_object.keras', ['my_package.*']);
    assert.equal(vetted.verdict, 'caution', describeReport(vetted));
    assert.match(vetted.findings.find((f) => f.rule === 'SW031')!.message, /allow-globals entry "my_package\.\*"/);
    const os = await scan('keras/module_injection.keras', ['os.*']);
    assert.equal(os.verdict, 'dangerous', describeReport(os));
  });

  it('TorchModuleWrapper (CVE-2025-49655): its embedded torch.save pickle is scanned and its os.system call found', async function () {
    const r = await scan('keras/torch_module_wrapper.keras');
    assert.ok(r.findings.some((f) => f.rule === 'SW033'), describeReport(r));
    const g = r.globals.find((x) => x.module === 'posix' && x.name === 'system');
    assert.ok(g && g.severity === 'dangerous' && /TorchModuleWrapper/.test(g.member ?? ''), describeReport(r));
  });

  it('a pickle-bearing member of a .keras archive (model.weights.npz with an object array) is scanned', async function () {
    const r = await scan('keras/npz_pickle.keras');
    const g = r.globals.find((x) => x.module === 'posix' && x.name === 'system');
    assert.ok(g && /model\.weights\.npz/.test(g.member ?? ''), describeReport(r));
  });

  it('ONNX metadata: IR version, producer, opsets; inventory equals onnx.load\'s initializers', async function () {
    const e = fx.manifest.files['onnx/benign.onnx'];
    const r = await scan('onnx/benign.onnx');
    assert.equal(r.metadata['onnx.ir_version'], String(e.ir_version));
    assert.equal(r.metadata['onnx.producer_name'], e.producer);
    assert.equal(r.metadata['onnx.opset.ai.onnx'], e.opset);
    const t = r.tensors.find((x) => x.name === e.tensor!.name)!;
    assert.deepEqual([t.shape, t.dtype], [e.tensor!.shape, e.tensor!.dtype]);
  });

  it('every libonnx-testdata model parses as onnx.load reads it, with no finding', async function () {
    const entries = Object.entries(fx.manifest.testdata);
    assert.ok(entries.length > 500, `${entries.length} models`);
    const failures: string[] = [];
    for (const [file, m] of entries) {
      if (!existsSync(file)) { failures.push(`${file} missing`); continue; }
      const src = FileSource.open(file);
      try {
        if (!looksLikeOnnx(src.read(0, 512), src.size)) { failures.push(`${file}: not sniffed as ONNX`); continue; }
        const info = inspectOnnx(src);
        const opsets = Object.fromEntries(info.opsets.map((o) => [o.domain || 'ai.onnx', o.version]));
        const inits = info.tensors.filter((t) => t.where === 'graph initializer').map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype }));
        const want = m.initializers.map((t) => ({ name: t.name, shape: t.shape, dtype: ONNX_TYPE[t.data_type] ?? `?${t.data_type}` }));
        try {
          assert.equal(info.irVersion, m.ir_version);
          assert.equal(info.producerName ?? '', m.producer_name);
          assert.deepEqual(opsets, m.opsets);
          assert.deepEqual(inits, want);
        } catch (err) { failures.push(`${file}: ${(err as Error).message}`); }
      } finally { src.close(); }
    }
    assert.deepEqual(failures.slice(0, 10), []);
    // and through the dispatcher: a sample of them is safe with no finding
    for (const [file] of entries.slice(0, 40)) {
      const r: ModelReport = await engine.scanModelFile(file);
      assert.equal(r.format, 'onnx', file);
      assert.deepEqual(r.findings.filter((f) => f.severity !== 'info'), [], `${file}\n${describeReport(r)}`);
    }
  });

  it('external data locations: absolute, "..", nested ".." and symlinks out are dangerous; missing is caution', function () {
    assert.match(locationProblem('../../etc/passwd')!, /CVE-2022-25882/);
    assert.match(locationProblem('a/../../etc/passwd')!, /CVE-2024-27318/);
    assert.match(locationProblem('a\\..\\..\\x')!, /CVE-2024-27318/);
    assert.match(locationProblem('/etc/passwd')!, /absolute/);
    assert.match(locationProblem('C:\\Windows\\x')!, /absolute/);
    assert.equal(locationProblem('weights.bin'), undefined);
    assert.equal(locationProblem('sub/dir/weights..bin'), undefined);
  });

  it('multi-GB files are not read whole: a 1 GiB HDF5 dataset and a 16 MiB ONNX initializer cost a few KB of reads', function () {
    const h = new CountingSource(FileSource.open(join(fx.dir, 'big/big.h5')));
    try {
      assert.ok(h.size > 1 << 30);
      const info = inspectHdf5(h);
      assert.deepEqual(info.datasets.map((d) => [d.path, d.shape, d.bytes]), [['huge', [16384, 16384], 1 << 30]]);
      assert.ok(h.bytes < 256 << 10, `${h.bytes} bytes read`);
    } finally { h.close(); }
    const o = new CountingSource(FileSource.open(join(fx.dir, 'big/big.onnx')));
    try {
      const info = inspectOnnx(o);
      assert.equal(info.tensors.find((t) => t.name === 'W')!.bytes, 1024 * 4096 * 4);
      assert.ok(o.bytes < 512 << 10, `${o.bytes} bytes read of ${o.size}`);
    } finally { o.close(); }
  });

  it('marshal: the code object /usr/bin/python3 wrote is read (names, string constants as Python sees them); cut bytes are not', function () {
    const c = fx.manifest.code;
    const bytes = Buffer.from(c.b64, 'base64');
    const s = summarizeCode(bytes);
    assert.ok(s);
    assert.equal(s.name, c.name);
    assert.deepEqual(s.names, c.names);
    assert.deepEqual(s.consts.filter((x) => c.str_consts.includes(x)), c.str_consts);
    assert.equal(summarizeCode(bytes.subarray(0, bytes.length - 3)), undefined);
  });

  it('a folder scan picks up every Keras, HDF5 and ONNX fixture by its content (also after a user block), not their raw weights files', async function () {
    const d = await discover([fx.dir]);
    const found = new Set(d.files.map((f) => f.path.slice(fx.dir.length + 1)));
    const missing = Object.keys(fx.manifest.files).filter((n) => !found.has(n));
    assert.deepEqual(missing, []);
    assert.ok(!found.has('onnx/external_ok/weights.bin'), 'raw float32 external data is not a model file');
  });

  it('the CLI (dist/cli.js): JSON names the formats, SARIF carries the new rule ids with their rules', function () {
    const cli = requireBuilt(this, 'dist/cli.js');
    const files = ['keras/lambda_bytecode.keras', 'h5/legacy_module_function.h5', 'h5/plain.h5', 'onnx/traversal/model.onnx', 'onnx/custom_domain.onnx'].map((f) => join(fx.dir, f));
    const run = (fmt: string) => spawnSync(process.execPath, [cli, 'scan', '--format', fmt, '--fail-on', 'never', ...files], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 120_000 });
    const json = JSON.parse(run('json').stdout) as { files: { path: string; format: string; verdict: string; findings: { rule: string }[] }[] };
    const by = (suffix: string) => json.files.find((f) => f.path.endsWith(suffix))!;
    assert.deepEqual([by('lambda_bytecode.keras').format, by('legacy_module_function.h5').format, by('plain.h5').format, by('traversal/model.onnx').format],
      ['keras', 'keras-h5', 'hdf5', 'onnx']);
    const sarif = JSON.parse(run('sarif').stdout) as { runs: { tool: { driver: { rules: { id: string }[] } }; results: { ruleId: string; level: string }[] }[] };
    const ruleIds = new Set(sarif.runs[0].tool.driver.rules.map((r) => r.id));
    for (const id of ['SW030', 'SW031', 'SW037', 'SW039']) assert.ok(ruleIds.has(id), id);
    const results = sarif.runs[0].results.map((r) => `${r.ruleId}:${r.level}`);
    for (const want of ['SW030:error', 'SW031:error', 'SW037:error', 'SW039:warning']) assert.ok(results.includes(want), `${want} in ${results.join(' ')}`);
  });

  it('marshal: constants that are a DAG of 2^60 paths (refs) are walked once each', function () {
    // hand-built CPython 3.11 code object (CPython cannot build one: code.replace hashes its constants): consts =
    // (t60, 'tail-constant') with t_k = (t_k-1, t_k-1), the second as a marshal ref
    const out: number[] = [];
    const i32 = (v: number) => out.push(v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >>> 24) & 255);
    const str = (t: string) => { out.push(0x7a, t.length); for (const ch of t) out.push(ch.charCodeAt(0)); };   // 'z' short ascii
    const bytes = (b: number[]) => { out.push(0x73); i32(b.length); out.push(...b); };                          // 's'
    const tuple = (n: number) => out.push(0x29, n);                                                             // ')'
    const full = (k: number) => { out.push(0x29 | 0x80, k === 0 ? 0 : 2); if (k === 0) return; full(k - 1); out.push(0x72); i32(60 - (k - 1)); };
    out.push(0x63); for (let i = 0; i < 5; i++) i32(0);                        // 'c' and five int32 counts
    bytes([0x97, 0x00]);                                                      // co_code
    tuple(2); full(60); str('tail-constant');                                 // co_consts
    tuple(1); str('system');                                                  // co_names
    tuple(0); bytes([]); str('<dag>'); str('<lambda>'); str('<lambda>'); i32(1); bytes([]); bytes([]);
    const t0 = Date.now();
    const s = summarizeCode(Uint8Array.from(out));
    assert.ok(s, 'read');
    assert.deepEqual([s.layout, s.names, s.consts.includes('tail-constant')], ['3.11+', ['system'], true]);
    assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
  });

  it('mutated and truncated Keras / HDF5 / ONNX files never throw and never come out safe with an error unreported', async function () {
    const rnd = prng(14);
    const small = Object.keys(fx.manifest.files).filter((n) => !n.startsWith('big/') && !n.includes('dense_many'));
    let scans = 0;
    for (const name of small) {
      const orig = readFileSync(join(fx.dir, name));
      for (let k = 0; k < 40; k++) {
        const b = Buffer.from(orig);
        let bytes: Buffer;
        if (k % 4 === 0) bytes = b.subarray(0, Math.floor(rnd() * b.length));
        else { for (let j = 0; j < 1 + Math.floor(rnd() * 8); j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256); bytes = b; }
        const r = await engine.scanModelBytes(bytes, name.split('/').pop()!);
        assert.ok(['safe', 'caution', 'dangerous', 'invalid'].includes(r.verdict), name);
        scans++;
      }
    }
    assert.ok(scans > 800, `${scans} scans`);
  });

  it('text and other protobufs are not taken for ONNX', function () {
    assert.equal(looksLikeOnnx(Buffer.from('import torch\nprint(1)\n'), 22), false);
    assert.equal(looksLikeOnnx(Buffer.from([0x08, 0x00, 0x12, 0x02, 0x61, 0x62]), 6), false);   // ir_version 0
    assert.equal(looksLikeOnnx(Buffer.from([0x08, 0x07, 0x7a, 0x02, 0x61, 0x62]), 6), false);   // field 15 is not in ModelProto
    assert.equal(looksLikeOnnx(Buffer.from([0x08, 0x07, 0x12, 0x02, 0x61, 0x62]), 6), true);
  });
});
