// Oracle test of the pure-TypeScript converter: real torch 1.13 writes the checkpoints, our converter turns them
// into .safetensors, and an independent Python check (stdlib json + torch.frombuffer) compares every tensor
// with torch.load(original) in dtype, shape and values. Under CI=true a missing torch fails the suite.
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { IS_CI, PYTHON, REPO_ROOT, requireBuilt, torchAvailable } from '../setup';
import { convertToSafetensors, ConvertCancelled, ConvertRefused, ConvertResult, tuning } from '../../server/src/models/convert/convert';
import { convertCli, defaultOutput } from '../../server/src/cli/convert';
import { scanModelFileDetailed } from '../../server/src/models/scan';
import { buildZip } from '../unit/models/zipAsm';

interface Case { file: string; reference: string; expect: 'ok' | 'refuse'; tied?: Record<string, string>; unwrap?: string; refuse_mentions?: string }

const GEN = join(REPO_ROOT, 'test', 'oracle', 'gen_convert_cases.py');
const CHECK = join(REPO_ROOT, 'test', 'oracle', 'check_safetensors.py');
const CONVERTIBLE = ['plain', 'dtypes', 'zero_d', 'empty', 'tied', 'views', 'wrapped', 'params', 'nested',
  'legacy_plain', 'legacy_dtypes', 'legacy_views', 'legacy_tied', 'legacy_tied_lm', 'legacy_tied_params', 'legacy_tied_wrapped',
  'big_endian'];

function readHeader(file: string): { size: number; header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> } {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return { size: n, header: JSON.parse(b.subarray(8, 8 + n).toString('utf8')) };
}

describe('convert to safetensors (oracle: real torch)', function () {
  this.timeout(180_000);
  let dir: string;
  let cases: Record<string, Case>;
  const p = (f: string) => join(dir, f);

  before(function () {
    const probe = torchAvailable();
    if (!probe.ok) {
      const msg = `the conversion oracle needs ${PYTHON} with torch (apt-get install -y python3-torch): ${probe.detail}`;
      if (IS_CI) throw new Error(`CI=true: ${msg}`);
      console.warn(`\n  !!! SKIPPING conversion oracle: ${msg}\n`);
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'sw-convert-'));
    execFileSync(PYTHON, [GEN, dir], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 120_000 });
    cases = (JSON.parse(readFileSync(p('cases.json'), 'utf8')) as { cases: Record<string, Case> }).cases;
  });
  after(function () { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('the generator wrote every case this suite converts', function () {
    for (const name of CONVERTIBLE) assert.equal(cases[name]?.expect, 'ok', `case ${name}`);
    assert.equal(cases.evil?.expect, 'refuse');
  });

  for (const name of CONVERTIBLE) {
    it(`${name}: every tensor equals torch.load of the original`, async function () {
      const c = cases[name];
      const out = p(`${name}.safetensors`);
      const r: ConvertResult = await convertToSafetensors(p(c.file), out);
      assert.equal(r.output, out);
      const check = spawnSync(PYTHON, [CHECK, out, p(c.reference), ...(c.unwrap ? [c.unwrap] : [])], { encoding: 'utf8', timeout: 120_000 });
      const verdict = JSON.parse(check.stdout.trim().split('\n').pop() ?? '{}') as { ok: boolean; errors: string[]; tensors: number; removed: Record<string, string> };
      assert.deepEqual(verdict.errors, [], `python check of ${name}: ${check.stderr}`);
      assert.equal(verdict.ok, true);
      assert.equal(check.status, 0);
      assert.equal(verdict.tensors, r.tensors);
      assert.deepEqual(verdict.removed, c.tied ?? {}, 'aliases recorded in __metadata__');
      assert.deepEqual(r.removedAliases.sort(), Object.keys(c.tied ?? {}).sort());
      // spec: header padded to 8, data ordered by alignment (largest element first)
      const { size, header } = readHeader(out);
      assert.equal(size % 8, 0);
      const order = Object.entries(header).filter(([k]) => k !== '__metadata__').sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
      const width: Record<string, number> = { F64: 8, I64: 8, C64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1 };
      for (let i = 1; i < order.length; i++) assert.ok(width[order[i - 1][1].dtype] >= width[order[i][1].dtype], `alignment order at ${order[i][0]}`);
      assert.equal(statSync(out).size, 8 + size + (order.length ? Math.max(...order.map(([, v]) => v.data_offsets[1])) : 0));
    });
  }

  describe('with tiny I/O blocks (every multi-chunk and row-by-row path)', function () {
    const saved = { ...tuning };
    before(function () { tuning.chunk = 64; tuning.gatherLimit = 256; });
    after(function () { Object.assign(tuning, saved); });
    for (const name of ['dtypes', 'views', 'legacy_views', 'big_endian', 'tied', 'plain', 'legacy_tied_lm']) {
      it(`${name}: still equal to torch.load`, async function () {
        const c = cases[name];
        const out = p(`${name}.small-blocks.safetensors`);
        await convertToSafetensors(p(c.file), out);
        const check = spawnSync(PYTHON, [CHECK, out, p(c.reference)], { encoding: 'utf8', timeout: 120_000 });
        assert.equal(check.status, 0, `${check.stdout}\n${check.stderr}`);
      });
    }
  });

  it('the Python check detects a corrupted value (it can fail)', async function () {
    const out = p('corrupt.safetensors');
    await convertToSafetensors(p(cases.dtypes.file), out);
    const b = readFileSync(out);
    b[b.length - 1] ^= 0xff;
    writeFileSync(out, b);
    const check = spawnSync(PYTHON, [CHECK, out, p(cases.dtypes.file)], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(check.status, 1, check.stderr);
    assert.match(check.stdout, /values differ/);
  });

  for (const name of ['sparse_mixed', 'legacy_sparse_mixed']) {
    it(`${name}: the dense tensor converts (equal to torch.load), each sparse one is left out as sparse`, async function () {
      const out = p(`${name}.safetensors`);
      const r = await convertToSafetensors(p(cases[name].file), out);
      assert.equal(r.tensors, 1);
      assert.deepEqual(Object.keys(readHeader(out).header).filter((k) => k !== '__metadata__'), ['w']);
      const sparse = name.startsWith('legacy') ? ['coo'] : ['coo', 'csr'];
      assert.deepEqual(r.leftOut.map((x) => x.split(':')[0]).sort(), sparse.sort(), r.leftOut.join('; '));
      for (const x of r.leftOut) assert.match(x, /a sparse tensor \(_rebuild_sparse(_csr)?_tensor\); safetensors holds dense tensors only/);
      // the kept tensor against torch.load of the same values saved dense
      const check = spawnSync(PYTHON, [CHECK, out, p(cases[name].reference)], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(check.status, 0, check.stdout + check.stderr);
    });
  }

  it('wrapped: unwraps state_dict and reports the tensors left outside it', async function () {
    const r = await convertToSafetensors(p(cases.wrapped.file), p('wrapped2.safetensors'));
    assert.deepEqual(r.dropped, ['best']);
    assert.ok(Object.keys(readHeader(p('wrapped2.safetensors')).header).includes('0.weight'));
  });

  it('legacy tied LM (every storage 40 elements: the u64 count reads as MARK): the scan lists each tensor, the tied one is stored once', async function () {
    const detail = await scanModelFileDetailed(p(cases.legacy_tied_lm.file), { sha256: false });
    assert.equal(detail.report.format, 'pytorch-legacy');
    assert.deepEqual(detail.tensors.map((t) => t.name).sort(), ['embed.weight', 'head.weight', 'proj.weight']);
    assert.equal(detail.tensors.find((t) => t.name === 'head.weight')!.storage!.key, detail.tensors.find((t) => t.name === 'embed.weight')!.storage!.key);
    const r = await convertToSafetensors(p(cases.legacy_tied_lm.file), p('legacy_tied_lm.check.safetensors'));
    assert.equal(r.tensors, 2);
    assert.deepEqual(r.removedAliases, ['head.weight']);
    assert.deepEqual(readHeader(p('legacy_tied_lm.check.safetensors')).header.__metadata__, { format: 'pt', 'head.weight': 'embed.weight' });
  });

  it('refuses a legacy checkpoint with a zip appended (SW012): its readings disagree, nothing written', async function () {
    const poly = p('legacy_polyglot.pt');
    writeFileSync(poly, Buffer.concat([readFileSync(p(cases.legacy_plain.file)), buildZip([{ name: 'archive/data.pkl', data: Buffer.from([0x80, 0x02, 0x7d, 0x2e]) }])]));
    const out = p('legacy_polyglot.safetensors');
    await assert.rejects(convertToSafetensors(poly, out), (e: Error) => e instanceof ConvertRefused && /its readings disagree \(SW012 polyglot: A ZIP archive/.test(e.message));
    assert.equal(existsSync(out), false);
  });

  it('refuses a checkpoint that calls os.system, naming it, and writes nothing', async function () {
    const out = p('evil.safetensors');
    await assert.rejects(convertToSafetensors(p(cases.evil.file), out), (e: Error) => e instanceof ConvertRefused && /os\.system/.test(e.message));
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  });

  it('fails when the written bytes differ from the source (a faulty write), leaving no file behind', async function () {
    const out = p('faulty.safetensors');
    let corrupted = 0;
    tuning.afterWrite = (fd, offset, length) => {
      // flip the last byte of the first block written (tensor data: the header comes first), as a failing disk would
      if (corrupted++ === 0) {
        const at = offset + length - 1;
        const b = Buffer.alloc(1);
        readSync(fd, b, 0, 1, at);
        b[0] ^= 0xff;
        writeSync(fd, b, 0, 1, at);
      }
    };
    try {
      await assert.rejects(convertToSafetensors(p(cases.dtypes.file), out), /verification failed: the output differs from the source/);
    } finally { tuning.afterWrite = undefined; }
    assert.equal(corrupted > 0, true);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
    // and with durable: true (fsync before the rename) the same file converts
    const ok = await convertToSafetensors(p(cases.dtypes.file), out, { durable: true });
    assert.ok(ok.tensors > 0 && existsSync(out));
  });

  it('never overwrites an existing output without consent', async function () {
    const out = p('existing.safetensors');
    writeFileSync(out, 'keep me');
    await assert.rejects(convertToSafetensors(p(cases.plain.file), out), (e: Error) => e instanceof ConvertRefused && /already exists/.test(e.message));
    assert.equal(readFileSync(out, 'utf8'), 'keep me');
    const r = await convertToSafetensors(p(cases.plain.file), out, { overwrite: true });
    assert.ok(r.tensors > 0);
    assert.notEqual(readFileSync(out, 'utf8').slice(0, 7), 'keep me');
  });

  it('reports progress and cancels cleanly, leaving no file behind', async function () {
    const out = p('cancelled.safetensors');
    const ac = new AbortController();
    const seen: [number, number][] = [];
    await assert.rejects(convertToSafetensors(p(cases.dtypes.file), out, {
      signal: ac.signal, onProgress: (d, t) => { seen.push([d, t]); ac.abort(); },
    }), ConvertCancelled);
    assert.ok(seen.length > 0 && seen[0][1] > 0);
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
    const all: number[] = [];
    await convertToSafetensors(p(cases.dtypes.file), p('progress.safetensors'), { onProgress: (d, t) => { all.push(d); assert.ok(d <= t); } });
    assert.ok(all.length >= 2);
    for (let i = 1; i < all.length; i++) assert.ok(all[i] >= all[i - 1]);
  });

  describe('CLI: safe-weights convert', function () {
    const run = async (...args: string[]) => {
      const out = new PassThrough(), err = new PassThrough();
      let o = '', e = '';
      out.on('data', (d) => { o += d; }); err.on('data', (d) => { e += d; });
      const code = await convertCli(args, out, err as unknown as NodeJS.WriteStream);
      return { code, out: o, err: e };
    };
    it('converts to IN.safetensors by default and exits 0', async function () {
      copyFileSync(p(cases.views.file), p('cli-default.pt'));
      const r = await run(p('cli-default.pt'));
      assert.equal(r.code, 0, r.err);
      assert.ok(existsSync(p('cli-default.safetensors')));
      assert.match(r.out, /9 tensors/);
    });
    it('-o OUT, refuses an existing OUT (exit 1), --force replaces it', async function () {
      const out = p('cli-out.safetensors');
      assert.equal((await run(p(cases.params.file), '-o', out)).code, 0);
      const again = await run(p(cases.params.file), '-o', out);
      assert.equal(again.code, 1);
      assert.match(again.err, /already exists/);
      assert.equal((await run(p(cases.params.file), '-o', out, '--force')).code, 0);
    });
    it('exit 1 and the reason for a dangerous file; exit 2 for usage and missing input', async function () {
      const evil = await run(p(cases.evil.file), '-o', p('cli-evil.safetensors'));
      assert.equal(evil.code, 1);
      assert.match(evil.err, /os\.system/);
      assert.equal((await run()).code, 2);
      assert.equal((await run('--bogus', 'x')).code, 2);
      assert.equal((await run(p('does-not-exist.pt'))).code, 2);
    });
    it('end to end: node dist/cli.js convert (the bundled CLI)', function () {
      const cli = requireBuilt(this, 'dist/cli.js');
      const out = p('e2e.safetensors');
      const r = spawnSync(process.execPath, [cli, 'convert', p(cases.legacy_views.file), '-o', out], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      const check = spawnSync(PYTHON, [CHECK, out, p(cases.legacy_views.file)], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(check.status, 0, check.stdout);
      const bad = spawnSync(process.execPath, [cli, 'convert', p(cases.evil.file), '-o', p('e2e-evil.safetensors')], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /os\.system/);
    });
    it('--fsync converts durably; an unknown option is a usage error', async function () {
      const out = p('cli-fsync.safetensors');
      const r = await run(p(cases.plain.file), '-o', out, '--fsync');
      assert.equal(r.code, 0, r.err);
      assert.ok(existsSync(out));
      assert.equal((await run(p(cases.plain.file), '--fsnyc')).code, 2);
    });
    it('default output names', function () {
      assert.equal(defaultOutput(join('a', 'm.pt')), join('a', 'm.safetensors'));
      assert.equal(defaultOutput('pytorch_model-00001-of-00002.bin'), 'model-00001-of-00002.safetensors');
      assert.equal(defaultOutput('ckpt'), 'ckpt.safetensors');
    });
  });
});
