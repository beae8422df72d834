// `safe-weights scan --write-baseline FILE` / `--baseline FILE` as a team adopting the scanner runs them
// (node dist/cli.js, needs `npm run build`), on pickles written by Python's pickle and a torch.save checkpoint:
// recorded findings stop failing the run, survive moved bytes and moved lines, and every new finding still fails.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeneratedFixtures, generatedFixturesOrSkip, requireBuilt } from '../setup';
import { applyBaseline, makeBaseline, recordedPath } from '../../server/src/cli/baseline';
import type { FileReport } from '../../server/src/models/types';

interface Manifest { files: Record<string, { sha256: string; callable: string | null }> }
interface Out { files: { path: string; verdict: string; findings: { rule: string; severity: string; global?: string; offset?: number; line?: number }[] }[] }
interface Run { code: number | null; stdout: string; stderr: string }

describe('CLI baseline: fail only on new findings', function () {
  this.timeout(300_000);
  let cli: string;
  let fx: GeneratedFixtures<Manifest>;
  let repo: string;
  const run = (...args: string[]): Run => {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: repo, timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const json = (r: Run): Out => JSON.parse(r.stdout) as Out;
  const TRAIN = 'import pickle\nstate = pickle.load(open("x", "rb"))\n';

  before(function () {
    cli = requireBuilt(this, 'dist/cli.js');
    fx = generatedFixturesOrSkip<Manifest>(this, 'test/fixtures/gen_pipeline_fixtures.py', ['torch']);
  });
  beforeEach(function () {
    repo = mkdtempSync(join(tmpdir(), 'sw-baseline-'));
    copyFileSync(join(fx.dir, 'evil.pkl'), join(repo, 'evil.pkl'));
    copyFileSync(join(fx.dir, 'model.pt'), join(repo, 'model.pt'));
    writeFileSync(join(repo, 'train.py'), TRAIN);
  });
  afterEach(function () { rmSync(repo, { recursive: true, force: true }); });

  it('--write-baseline records each finding by path, rule and callable or code, and exits 0', function () {
    const before = run('scan', '.');
    assert.equal(before.code, 1, 'without a baseline the repository fails');
    const w = run('scan', '--write-baseline', 'sw-baseline.json', '.');
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stderr, /wrote \d+ findings? to the baseline sw-baseline\.json/);
    const b = JSON.parse(readFileSync(join(repo, 'sw-baseline.json'), 'utf8')) as { tool: string; version: number; findings: { path: string; rule: string; global?: string; code?: string; fingerprint: string }[] };
    assert.equal(b.tool, 'safe-weights');
    assert.equal(b.version, 1);
    assert.ok(b.findings.some((f) => f.path === 'evil.pkl' && f.rule === 'SW001' && f.global === 'posix.system'), JSON.stringify(b.findings));
    assert.ok(b.findings.some((f) => f.path === 'train.py' && f.rule === 'SW102' && f.code === 'pickle.load(open("x", "rb"))'), JSON.stringify(b.findings));
    assert.ok(!b.findings.some((f) => f.path === 'model.pt'), 'a clean checkpoint has nothing to record');
    assert.ok(b.findings.every((f) => /^[0-9a-f]{32}$/.test(f.fingerprint)));
    assert.ok(!JSON.stringify(b).includes('"offset"') && !JSON.stringify(b).includes('"line"'), 'no offsets or line numbers are recorded');
  });

  it('--baseline: the recorded findings neither fail the run nor show; the run says how many it left out', function () {
    assert.equal(run('scan', '--write-baseline', 'sw-baseline.json', '.').code, 0);
    const r = run('scan', '--format', 'json', '--baseline', 'sw-baseline.json', '.');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const f of json(r).files) assert.deepEqual(f.findings.filter((x) => x.severity !== 'info'), [], f.path);
    assert.match(r.stderr, /\d+ findings? left out: recorded in the baseline sw-baseline\.json/);
    // --fail-on caution too: torch.load-free code, a clean checkpoint, the recorded pickle
    assert.equal(run('scan', '--fail-on', 'caution', '--baseline', 'sw-baseline.json', '.').code, 0);
    // SARIF has no results left
    const s = run('scan', '--format', 'sarif', '--baseline', 'sw-baseline.json', '.');
    assert.equal(s.code, 0);
    assert.deepEqual((JSON.parse(s.stdout) as { runs: { results: unknown[] }[] }).runs[0].results, []);
  });

  it('moved bytes and moved lines are the same findings (fingerprints hold no offsets or line numbers)', function () {
    assert.equal(run('scan', '--write-baseline', 'sw-baseline.json', '.').code, 0);
    const offsetBefore = json(run('scan', '--format', 'json', 'evil.pkl')).files[0].findings.find((f) => f.rule === 'SW001')?.offset;
    copyFileSync(join(fx.dir, 'evil_moved.pkl'), join(repo, 'evil.pkl'));
    writeFileSync(join(repo, 'train.py'), '"""Training."""\nimport os\n\n\n' + TRAIN.replace('state =', 'state  =  '));
    const plain = json(run('scan', '--format', 'json', '.'));
    const moved = plain.files.find((f) => f.path.endsWith('evil.pkl'))!.findings.find((f) => f.rule === 'SW001');
    assert.ok(moved && offsetBefore !== undefined && moved.offset !== offsetBefore, `the call moved (offset ${offsetBefore} -> ${moved?.offset})`);
    assert.equal(plain.files.find((f) => f.path.endsWith('train.py'))!.findings.find((f) => f.rule === 'SW102')?.line, 6, 'the load moved to line 6');
    const r = run('scan', '--baseline', 'sw-baseline.json', '.');
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('new findings fail: a new callable, a new file, a second identical load, a new rule', function () {
    assert.equal(run('scan', '--write-baseline', 'sw-baseline.json', '.').code, 0);
    const newOnly = (r: Run): { path: string; rule: string; global?: string }[] =>
      json(r).files.flatMap((f) => f.findings.filter((x) => x.severity !== 'info').map((x) => ({ path: f.path.replace(/\\/g, '/'), rule: x.rule, ...(x.global ? { global: x.global } : {}) })));

    // the same file now calls eval instead of os.system
    copyFileSync(join(fx.dir, 'evil_eval.pkl'), join(repo, 'evil.pkl'));
    let r = run('scan', '--format', 'json', '--baseline', 'sw-baseline.json', '.');
    assert.equal(r.code, 1, r.stderr);
    assert.ok(newOnly(r).some((f) => f.path === 'evil.pkl' && f.global === 'builtins.eval'), JSON.stringify(newOnly(r)));
    copyFileSync(join(fx.dir, 'evil.pkl'), join(repo, 'evil.pkl'));

    // the recorded pickle copied to a new path
    copyFileSync(join(fx.dir, 'evil.pkl'), join(repo, 'copy.pkl'));
    r = run('scan', '--format', 'json', '--baseline', 'sw-baseline.json', '.');
    assert.equal(r.code, 1);
    assert.ok(newOnly(r).every((f) => f.path === 'copy.pkl'), JSON.stringify(newOnly(r)));
    rmSync(join(repo, 'copy.pkl'));

    // a second identical load (each recorded fingerprint matches once)
    writeFileSync(join(repo, 'train.py'), TRAIN + 'again = pickle.load(open("x", "rb"))\n');
    r = run('scan', '--format', 'json', '--baseline', 'sw-baseline.json', '.');
    assert.equal(r.code, 1);
    assert.deepEqual(newOnly(r), [{ path: 'train.py', rule: 'SW102' }]);

    // a new dangerous call next to the recorded one
    writeFileSync(join(repo, 'train.py'), TRAIN + 'import torch\nm = torch.jit.load("m.pt")\nimport joblib\nclf = joblib.load("m.joblib")\n');
    r = run('scan', '--format', 'json', '--baseline', 'sw-baseline.json', '.');
    assert.equal(r.code, 1);
    assert.ok(newOnly(r).some((f) => f.rule === 'SW104'), JSON.stringify(newOnly(r)));
    assert.ok(!newOnly(r).some((f) => f.rule === 'SW102'), 'the recorded load stays out');
  });

  it('a missing or foreign baseline is a usage error (exit 2), and --baseline with --write-baseline is refused', function () {
    let r = run('scan', '--baseline', 'nope.json', '.');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /baseline nope\.json does not exist \(create it with --write-baseline nope\.json\)/);
    writeFileSync(join(repo, 'other.json'), '{"results": []}');
    r = run('scan', '--baseline', 'other.json', '.');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not a safe-weights baseline/);
    r = run('scan', '--baseline', 'a.json', '--write-baseline', 'b.json', '.');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /do not go together/);
  });
});

describe('baseline entries of remote targets', () => {
  // a remote file's report carries the URL it was scanned under; the record must not depend on where the
  // baseline file lives or where the scan runs (path.resolve would make "hf://..." a local path under the cwd)
  const URL = 'hf://org/model@0123456789abcdef0123456789abcdef01234567/pytorch_model.bin';
  const report = (): FileReport => ({
    path: URL, kind: 'model', format: 'pytorch-zip', verdict: 'dangerous', summary: '', weightsOnly: 'refused',
    findings: [{ rule: 'SW001', severity: 'dangerous', message: 'os.system is called', global: 'os.system', member: 'archive/data.pkl', offset: 40 }],
    globals: [], tensors: [], tensorCount: 0,
  } as unknown as FileReport);

  it('records the URL itself, and a baseline kept in another folder still matches it', () => {
    const a = mkdtempSync(join(tmpdir(), 'sw-bl-a-')), b = mkdtempSync(join(tmpdir(), 'sw-bl-b-'));
    try {
      assert.equal(recordedPath(URL, a), URL);
      const written = makeBaseline([report()], join(a, 'baseline.json'));
      assert.deepEqual(written.findings.map((e) => e.path), [URL]);
      const fresh = [report()];
      const { removed } = applyBaseline(fresh, written, join(b, 'sub', 'baseline.json'));
      assert.equal(removed, 1);
      assert.equal(fresh[0].findings.length, 0);
    } finally { rmSync(a, { recursive: true, force: true }); rmSync(b, { recursive: true, force: true }); }
  });
});
