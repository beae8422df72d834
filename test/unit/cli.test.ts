// The `safe-weights scan` CLI as a user runs it: `node dist/cli.js scan ...` (needs `npm run build`).
// Checks the documented JSON shape, SARIF 2.1.0 structure and the exit codes 0 / 1 / 2.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, requireBuilt } from '../setup';
import { PickleAsm, osSystemPickle, torchLikeStateDict } from './models/pickleAsm';
import { torchZip } from './models/zipAsm';

interface Run { code: number | null; stdout: string; stderr: string }

describe('safe-weights CLI', function () {
  this.timeout(120_000);
  let cli: string;
  let dir: string;
  const files: Record<string, string> = {};
  const run = (...args: string[]): Run => {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(function () {
    cli = requireBuilt(this, 'dist/cli.js');
    dir = mkdtempSync(join(tmpdir(), 'sw-cli-'));
    mkdirSync(join(dir, 'nested', 'deeper'), { recursive: true });
    const write = (key: string, rel: string, bytes: Uint8Array): void => { files[key] = join(dir, rel); writeFileSync(files[key]!, bytes); };
    write('safe', 'weights.pt', torchZip(torchLikeStateDict(2)));
    write('dangerous', 'nested/deeper/evil.pkl', osSystemPickle('STACK_GLOBAL').bytes);
    write('caution', 'nested/estimator.pkl', new PickleAsm().proto(2).global('sklearn.linear_model._base', 'LinearRegression')
      .emptyTuple().newobj().emptyDict().build().stop().bytes());
    const header = Buffer.from('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,999]}}');
    const st = Buffer.alloc(8); st.writeBigUInt64LE(BigInt(header.length));
    write('invalid', 'broken.safetensors', Buffer.concat([st, header, Buffer.alloc(16)]));
  });
  after(function () { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('allow-globals in pyproject.toml vets the project\'s own callables (and the JSON says which entry)', function () {
    const proj = mkdtempSync(join(tmpdir(), 'sw-allow-'));
    try {
      writeFileSync(join(proj, 'model.pkl'), new PickleAsm().proto(2).global('mypkg.models', 'build').str('cfg').tuple1().reduce().stop().bytes());
      const before = run('scan', '--format', 'json', proj);
      assert.equal(before.code, 1, 'an unvetted call fails --fail-on dangerous');
      assert.equal((JSON.parse(before.stdout) as { files: { verdict: string }[] }).files[0].verdict, 'dangerous');
      writeFileSync(join(proj, 'pyproject.toml'), '[tool.safe-weights]\nallow-globals = ["mypkg.models.*"]\n');
      const after = run('scan', '--format', 'json', proj);
      assert.equal(after.code, 0, after.stdout + after.stderr);
      const f = (JSON.parse(after.stdout) as { files: { verdict: string; findings: { message: string }[] }[] }).files[0];
      assert.equal(f.verdict, 'caution');
      assert.ok(f.findings.some((x) => /allowed by your allow-globals entry "mypkg\.models\.\*"/.test(x.message)), JSON.stringify(f));
    } finally { rmSync(proj, { recursive: true, force: true }); }
  });

  it('JSON: documented shape, one entry per file, verdicts per file', function () {
    const r = run('scan', '--format', 'json', '--fail-on', 'never', dir);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { files: { path: string; kind: string; format: string; verdict: string; findings: Record<string, unknown>[] }[] };
    assert.ok(Array.isArray(out.files));
    const byName = new Map(out.files.map((f) => [f.path.replace(/\\/g, '/').split('/').pop()!, f]));
    const want: Record<string, string> = { 'weights.pt': 'safe', 'evil.pkl': 'dangerous', 'estimator.pkl': 'caution', 'broken.safetensors': 'invalid' };
    for (const [name, verdict] of Object.entries(want)) {
      const f = byName.get(name);
      assert.ok(f, `${name} missing from ${JSON.stringify([...byName.keys()])} (directories are recursive)`);
      assert.equal(f.kind, 'model');
      assert.equal(f.verdict, verdict, `${name}: ${JSON.stringify(f)}`);
      assert.equal(typeof f.format, 'string');
      for (const finding of f.findings) {
        assert.match(String(finding.rule), /^SW\d{3}$/);
        assert.ok(['info', 'caution', 'dangerous', 'invalid'].includes(String(finding.severity)), JSON.stringify(finding));
        assert.equal(typeof finding.message, 'string');
      }
    }
    const evil = byName.get('evil.pkl')!;
    assert.ok(evil.findings.some((f) => f.rule === 'SW001' && f.global === 'os.system' && typeof f.offset === 'number'), JSON.stringify(evil));
  });

  it('exit codes: 0 clean, 1 at or above --fail-on, 2 usage or I/O error', function () {
    assert.equal(run('scan', files.safe!).code, 0);
    assert.equal(run('scan', files.caution!).code, 0, 'caution is below the default --fail-on dangerous');
    assert.equal(run('scan', files.dangerous!).code, 1);
    assert.equal(run('scan', '--fail-on', 'caution', files.caution!).code, 1);
    assert.equal(run('scan', '--fail-on', 'caution', files.safe!).code, 0);
    assert.equal(run('scan', '--fail-on', 'never', files.dangerous!).code, 0);
    assert.equal(run('scan', files.safe!, files.dangerous!).code, 1, 'any file at or above the threshold fails the run');
    assert.equal(run('scan', join(dir, 'does-not-exist.pt')).code, 2);
    assert.equal(run('scan', '--format', 'yaml', files.safe!).code, 2);
    assert.equal(run('scan', '--fail-on', 'sometimes', files.safe!).code, 2);
    assert.equal(run('frobnicate').code, 2);
    assert.equal(run('scan').code, 2, 'scan without a path is a usage error');
  });

  it('SARIF 2.1.0 for GitHub code scanning', function () {
    const r = run('scan', '--format', 'sarif', dir);
    assert.equal(r.code, 1, r.stderr);
    const s = JSON.parse(r.stdout) as {
      version: string; $schema: string;
      runs: { tool: { driver: { name: string; rules: { id: string; shortDescription?: { text: string } }[] } };
        results: { ruleId: string; level: string; message: { text: string }; locations: { physicalLocation: { artifactLocation: { uri: string }; region?: Record<string, number> } }[] }[] }[];
    };
    assert.equal(s.version, '2.1.0');
    assert.match(s.$schema, /sarif.*2\.1\.0/i);
    assert.equal(s.runs.length, 1);
    const run0 = s.runs[0]!;
    assert.equal(run0.tool.driver.name, 'safe-weights');
    const ruleIds = new Set(run0.tool.driver.rules.map((x) => x.id));
    assert.ok(ruleIds.size > 0);
    for (const rule of run0.tool.driver.rules) assert.ok(rule.shortDescription?.text, `rule ${rule.id} lacks shortDescription`);
    assert.ok(run0.results.length > 0);
    for (const res of run0.results) {
      assert.ok(ruleIds.has(res.ruleId), `result ruleId ${res.ruleId} is not among driver.rules`);
      assert.ok(['error', 'warning', 'note', 'none'].includes(res.level), res.level);
      assert.ok(res.message.text.length > 0);
      assert.ok(res.locations.length > 0);
      const uri = res.locations[0]!.physicalLocation.artifactLocation.uri;
      assert.ok(uri.length > 0 && !uri.includes('\\'), uri);
      const region = res.locations[0]!.physicalLocation.region;
      if (region) for (const v of Object.values(region)) assert.ok(Number.isInteger(v) && v >= 0, JSON.stringify(region));
    }
    const evil = run0.results.find((x) => x.ruleId === 'SW001');
    assert.ok(evil && evil.level === 'error' && evil.locations[0]!.physicalLocation.artifactLocation.uri.endsWith('evil.pkl'), JSON.stringify(evil));
  });

  it('text output names each file and its verdict, without colour when not a TTY', function () {
    const r = run('scan', dir);
    assert.equal(r.code, 1);
    for (const name of ['weights.pt', 'evil.pkl', 'estimator.pkl', 'broken.safetensors']) assert.ok(r.stdout.includes(name), `${name} missing:\n${r.stdout}`);
    assert.match(r.stdout, /dangerous/i);
    assert.match(r.stdout, /os\.system/);
    assert.ok(!r.stdout.includes('\u001b['), 'no ANSI colour codes when stdout is not a TTY');
  });

  it('a code finding says what to do in its first sentence, in text, JSON and SARIF (as the editor\'s diagnostic does)', function () {
    const code = mkdtempSync(join(tmpdir(), 'sw-cli-code-'));
    try {
      writeFileSync(join(code, 'train.py'), 'import torch\nimport yaml\nm = torch.load("m.pt")\ncfg = yaml.load(open("c.yml"))\n');
      const first = { SW101: 'Load with weights_only=True, or convert the checkpoint to safetensors.', SW107: 'Use yaml.safe_load (or Loader=yaml.SafeLoader).' };
      const json = JSON.parse(run('scan', '--format', 'json', '--fail-on', 'never', code).stdout) as { files: { findings: { rule: string; message: string }[] }[] };
      const findings = json.files.flatMap((f) => f.findings);
      assert.deepEqual(findings.map((f) => f.rule).sort(), ['SW101', 'SW107']);
      for (const f of findings) assert.ok(f.message.startsWith(first[f.rule as keyof typeof first] + ' '), f.message);
      const sarif = JSON.parse(run('scan', '--format', 'sarif', '--fail-on', 'never', code).stdout) as { runs: { results: { ruleId: string; message: { text: string } }[] }[] };
      for (const r of sarif.runs[0]!.results) assert.ok(r.message.text.startsWith(first[r.ruleId as keyof typeof first]), r.message.text);
      assert.match(run('scan', '--fail-on', 'never', code).stdout, /SW101 Load with weights_only=True, or convert/);
    } finally { rmSync(code, { recursive: true, force: true }); }
  });

  it('the JSON output, written file by file, is exactly JSON.stringify(document, null, 2): with files, with --verbose, empty, and to -o FILE', function () {
    const empty = mkdtempSync(join(tmpdir(), 'sw-cli-empty-'));
    try {
      writeFileSync(join(empty, 'notes.txt'), 'not a model\n');
      for (const args of [[dir], ['--verbose', dir], [empty], ['--verbose', empty]]) {
        const r = run('scan', '--format', 'json', '--fail-on', 'never', ...args);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout, JSON.stringify(JSON.parse(r.stdout), null, 2) + '\n', args.join(' '));
      }
      const doc = JSON.parse(run('scan', '--format', 'json', '--fail-on', 'never', '--verbose', dir).stdout) as { files: unknown[]; skippedFiles?: unknown[] };
      assert.ok(doc.files.length >= 4 && Array.isArray(doc.skippedFiles), 'the documents hold files and the skipped list');
      const outFile = join(empty, 'report.json');
      writeFileSync(outFile, 'x'.repeat(100000));   // replaced, not overwritten in place
      assert.equal(run('scan', '--format', 'json', '--fail-on', 'never', '-o', outFile, dir).code, 0);
      assert.equal(readFileSync(outFile, 'utf8'), run('scan', '--format', 'json', '--fail-on', 'never', dir).stdout);
    } finally { rmSync(empty, { recursive: true, force: true }); }
  });

  it('a reader that closes the pipe early (`| head`) ends the scan quietly, with the scan\'s exit code', async function () {
    const big = mkdtempSync(join(tmpdir(), 'sw-cli-pipe-'));
    try {
      // a report of several hundred KB (3,000 global rows, then os.system): more than a pipe holds
      const asm = new PickleAsm().proto(2);
      for (let k = 0; k < 3000; k++) asm.global('collections', 'OrderedDict').pop();
      writeFileSync(join(big, 'many.pkl'), asm.global('os', 'system').str('id').tuple1().reduce().stop().bytes());
      const { spawn } = await import('node:child_process');
      const child = spawn(process.execPath, [cli, 'scan', '--format', 'json', big], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.stdout.once('data', () => child.stdout.destroy());   // read one chunk, then close our end
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      assert.equal(stderr, '', 'nothing on stderr (no unhandled EPIPE)');
      assert.equal(code, 1, 'the exit code says the scan found a dangerous file');
    } finally { rmSync(big, { recursive: true, force: true }); }
  });
});
