// The CLI's directory scan on several threads (cli/scanPool.ts, cli/scanWorker.ts): the same JSON, byte for
// byte, as a scan on the main thread alone, in the same file order; verdicts and exit codes unchanged.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { REPO_ROOT, generatedFixturesOrSkip, requireBuilt } from '../setup';
import { PickleAsm, osSystemPickle, torchLikeStateDict } from './models/pickleAsm';
import { torchZip } from './models/zipAsm';
import { runScan } from '../../server/src/cli/main';
import { scanAll, threadCount } from '../../server/src/cli/scanPool';
import { zipTuning } from '../../server/src/models/scan';
import { defaultConfig } from '../../server/src/config';

interface Doc { files: { path: string; verdict: string; findings: { rule: string }[] }[] }

describe('CLI directory scan on worker threads', function () {
  this.timeout(300_000);
  let cli: string;
  let dir: string;
  const cliRun = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 120_000, maxBuffer: 1 << 28, env: { ...process.env, NO_COLOR: '1' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  /** runScan in this process (the compiled tree: workers run out/server/src/cli/scanWorker.js). */
  const inProcess = async (...args: string[]) => {
    let stdout = '';
    const out = new Writable({ write(c, _e, cb) { stdout += String(c); cb(); } });
    const err = Object.assign(new Writable({ write(_c, _e, cb) { cb(); } }), { isTTY: false }) as unknown as NodeJS.WriteStream;
    const code = await runScan(args, out, err);
    return { code, stdout };
  };

  before(function () {
    cli = requireBuilt(this, 'dist/cli.js');
    const fx = generatedFixturesOrSkip(this, 'test/fixtures/gen_real_corpus.py', ['torch', 'numpy', 'sklearn', 'pandas', 'scipy', 'joblib']);
    dir = mkdtempSync(join(tmpdir(), 'sw-par-'));
    cpSync(fx.dir, join(dir, 'real'), { recursive: true });   // a copy: a link to a folder outside would not be walked
    mkdirSync(join(dir, 'mine'));
    writeFileSync(join(dir, 'mine', 'weights.pt'), torchZip(torchLikeStateDict(2)));
    writeFileSync(join(dir, 'mine', 'evil.pkl'), osSystemPickle('STACK_GLOBAL').bytes);
    writeFileSync(join(dir, 'mine', 'estimator.pkl'), new PickleAsm().proto(2).global('sklearn.linear_model._base', 'LinearRegression')
      .emptyTuple().newobj().emptyDict().build().stop().bytes());
    writeFileSync(join(dir, 'mine', 'notes.txt'), 'not a model\n');
  });
  after(function () { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('bundled CLI: --jobs 2 and the default give the same JSON as --jobs 1; verdicts; exit code 1 for the dangerous file', function () {
    const one = cliRun('scan', '--format', 'json', '--jobs', '1', dir);
    const two = cliRun('scan', '--format', 'json', '--jobs', '2', dir);
    const auto = cliRun('scan', '--format', 'json', dir);
    for (const r of [one, two, auto]) assert.equal(r.code, 1, `the dangerous file fails the scan: ${r.stderr}`);
    assert.equal(two.stdout, one.stdout);
    assert.equal(auto.stdout, one.stdout);
    const doc = JSON.parse(one.stdout) as Doc;
    assert.ok(doc.files.length > 400, `the real corpus is scanned (${doc.files.length} files)`);
    const by = new Map(doc.files.map((f) => [f.path, f]));
    assert.equal(by.get(join(dir, 'mine', 'evil.pkl'))?.verdict, 'dangerous');
    assert.ok(by.get(join(dir, 'mine', 'evil.pkl'))!.findings.some((f) => f.rule === 'SW001'));
    assert.equal(by.get(join(dir, 'mine', 'weights.pt'))?.verdict, 'safe');
    assert.equal(by.get(join(dir, 'mine', 'estimator.pkl'))?.verdict, 'caution');
    assert.equal(by.get(join(dir, 'mine', 'notes.txt')), undefined, 'a text file is skipped');
    assert.equal(doc.files.filter((f) => f.verdict === 'dangerous').length, 1, 'nothing in the benign corpus is dangerous');
    // text output and --fail-on never on two threads
    const text = cliRun('scan', '--jobs', '2', dir);
    assert.equal(text.code, 1);
    assert.equal(text.stdout, cliRun('scan', '--jobs', '1', dir).stdout);
    assert.equal(cliRun('scan', '--jobs', '2', '--fail-on', 'never', dir).code, 0);
  });

  it('a single dangerous file is still exit code 1 (main thread only)', function () {
    const r = cliRun('scan', '--format', 'json', join(dir, 'mine', 'evil.pkl'));
    assert.equal(r.code, 1);
    assert.equal((JSON.parse(r.stdout) as Doc).files[0].verdict, 'dangerous');
  });

  it('compiled tree in process: two threads give the same JSON as one', async function () {
    const one = await inProcess('--format', 'json', '--jobs', '1', dir);
    const two = await inProcess('--format', 'json', '--jobs', '2', dir);
    assert.equal(one.code, 1);
    assert.equal(two.code, 1);
    // the version field may differ between the bundle and the compiled tree; compare the compiled runs only
    assert.equal(two.stdout, one.stdout);
  });

  it('a scan of several model files reads zip directories without the zip worker, and puts the setting back after; one file keeps the worker', async function () {
    const before = zipTuning.parallelDirectoryBytes;
    assert.ok(Number.isFinite(before));
    const seen = async (paths: string[]) => {
      const during: number[] = [];
      const files = paths.map((p) => ({ path: join(dir, 'mine', p), kind: 'model' as const }));
      const out = await scanAll({ files, cfg: defaultConfig(), sha256: false }, () => during.push(zipTuning.parallelDirectoryBytes), 1);
      assert.equal(out.length, paths.length);
      assert.equal(zipTuning.parallelDirectoryBytes, before);
      return during;
    };
    assert.deepEqual(await seen(['weights.pt', 'evil.pkl']), [Infinity, Infinity]);
    assert.deepEqual(await seen(['weights.pt']), [before]);
  });

  it('without --jobs: one thread per 100 files, at most 4, one per core for Python files and one core fewer for model files; --jobs is bounded by the file count', function () {
    // (the last argument: how many of the files are Python; it defaults to all)
    assert.equal(threadCount(99, undefined, 2), 1);
    assert.equal(threadCount(250, undefined, 2), 2);
    assert.equal(threadCount(5000, undefined, 2), 2);
    assert.equal(threadCount(5000, undefined, 1), 1);
    assert.equal(threadCount(5000, undefined, 16), 4);
    assert.equal(threadCount(350, undefined, 16), 3);
    assert.equal(threadCount(1, 2), 1);
    assert.equal(threadCount(1000, 3), 3);
    assert.equal(threadCount(1000, 1, 8), 1);
    // model files leave a core to the zip worker and the JIT
    assert.equal(threadCount(1067, undefined, 2, 0), 1);
    assert.equal(threadCount(5000, undefined, 4, 0), 3);
    assert.equal(threadCount(250, undefined, 4, 0), 2);
    assert.equal(threadCount(2441, undefined, 2, 1141), 2);
    assert.equal(threadCount(1400, undefined, 2, 50), 1);
  });
});
