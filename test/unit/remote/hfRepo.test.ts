// Hugging Face repositories (hfRepo.ts) on the folders gen_remote_fixtures.py writes (real torch shards, JSON as
// transformers writes it): auto_map + modeling files (SW040), a chat template that walks to os.popen (SW041), a
// sharded index with a missing shard (SW042), the repository's tensors from its shard headers; the same report
// for the repository served as hf://org/repo@commit by a local Hub stand-in; discovery and SARIF.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatedFixturesOrSkip } from '../../setup';
import { scanModelFile } from '../../../server/src/models/scan';
import { discover } from '../../../server/src/models/discovery';
import type { ModelReport } from '../../../server/src/models/types';
import { RangeServer } from './rangeServer';

interface Manifest { repo: { autoMapFiles: string[]; missingShard: string; shardedIndexes: string[]; tensors: Record<string, number[]> } }
interface Run { code: number | null; stdout: string; stderr: string }

const CLI = join(__dirname, '..', '..', '..', 'server', 'src', 'cli', 'main.js');
const COMMIT = 'fedcba9876543210fedcba9876543210fedcba98';

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, HF_TOKEN: '', NO_COLOR: '1', ...env } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function checkRepoReport(r: Pick<ModelReport, 'format' | 'verdict' | 'findings' | 'metadata'>, m: Manifest): void {
  assert.equal(r.format, 'huggingface-repo');
  assert.equal(r.verdict, 'dangerous');
  const sw040 = r.findings.filter((f) => f.rule === 'SW040' && f.severity === 'caution');
  assert.equal(sw040.length, 1, JSON.stringify(r.findings));
  for (const f of m.repo.autoMapFiles) assert.ok(sw040[0].message.includes(f), `${f} named in ${sw040[0].message}`);
  assert.equal(sw040[0].member, 'config.json');
  const sw041 = r.findings.filter((f) => f.rule === 'SW041');
  assert.equal(sw041.length, 1);
  assert.equal(sw041[0].severity, 'dangerous');
  assert.equal(sw041[0].member, 'tokenizer_config.json');
  assert.match(sw041[0].message, /popen/);
  const sw042 = r.findings.filter((f) => f.rule === 'SW042');
  assert.equal(sw042.length, 1, JSON.stringify(sw042));
  assert.ok(sw042[0].message.includes(m.repo.missingShard));
  assert.equal(sw042[0].member, 'model.safetensors.index.json');
  for (const idx of m.repo.shardedIndexes) assert.ok(r.metadata[`sharded ${idx}`], `metadata for ${idx}`);
  assert.match(r.metadata['sharded pytorch_model.bin.index.json'], /^2 shards \(2 present\), 3 tensors/);
  assert.match(r.metadata['sharded model.safetensors.index.json'], /^2 shards \(1 present, 1 missing\), 3 tensors/);
}

describe('Hugging Face repositories', function () {
  this.timeout(600_000);
  let dir: string;
  let m: Manifest;
  before(function () { ({ dir, manifest: m } = generatedFixturesOrSkip<Manifest>(this, 'test/fixtures/gen_remote_fixtures.py', ['torch'])); });

  it('a local repository: remote code, a risky chat template, a missing shard, the tensors of its shards', async function () {
    const r = await scanModelFile(join(dir, 'repo', 'config.json'));
    checkRepoReport(r, m);
    assert.equal(r.path, join(dir, 'repo', 'config.json'));
    // the safetensors shard's header gives dtype and shape; the .bin index lists names and shards
    for (const [name, shape] of Object.entries(m.repo.tensors)) {
      const rows = r.tensors.filter((t) => t.name === name);
      assert.equal(rows.length, 2, `${name} in both indexes`);
      if (name.startsWith('layer.0.')) {
        const st = rows.find((t) => t.storageKey === 'model-00001-of-00002.safetensors');
        assert.deepEqual(st?.shape, shape);
        assert.equal(st?.dtype, 'float32');
      }
    }
  });

  it('a clean repository is safe, with its chat template listed', async function () {
    const r = await scanModelFile(join(dir, 'cleanrepo', 'config.json'));
    assert.equal(r.verdict, 'safe', JSON.stringify(r.findings));
    assert.equal(r.findings.filter((f) => f.severity !== 'info').length, 0);
    assert.equal(r.metadata['chat templates'], 'tokenizer_config.json');
    assert.equal(r.metadata.model_type, 'bert');
  });

  it('discovery lists a transformers config.json, not any config.json', async function () {
    const other = mkdtempSync(join(tmpdir(), 'sw-cfg-'));
    try {
      writeFileSync(join(other, 'config.json'), JSON.stringify({ name: 'some app', port: 8080 }));
      const d = await discover([join(dir, 'repo'), other]);
      const cfg = d.files.filter((f) => f.path.endsWith('config.json'));
      assert.deepEqual(cfg.map((f) => [f.path, f.format]), [[join(dir, 'repo', 'config.json'), 'huggingface-repo']]);
      assert.ok(d.skipped.some((s) => s.path === join(other, 'config.json')));
    } finally { rmSync(other, { recursive: true, force: true }); }
  });

  it('SARIF points each repository finding at the file it is about', async function () {
    const r = await run(['scan', '--format', 'sarif', join(dir, 'repo', 'config.json')]);
    assert.equal(r.code, 1, r.stderr);
    const sarif = JSON.parse(r.stdout) as { runs: { results: { ruleId: string; locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }[] }[] };
    const uriOf = (rule: string) => sarif.runs[0].results.find((x) => x.ruleId === rule)?.locations[0].physicalLocation.artifactLocation.uri ?? '';
    assert.ok(uriOf('SW041').endsWith('/repo/tokenizer_config.json'), uriOf('SW041'));
    assert.ok(uriOf('SW042').endsWith('/repo/model.safetensors.index.json'), uriOf('SW042'));
  });

  it('hf://org/repo@commit: the same repository report over ranges, and every weight file scanned', async function () {
    const hub = await new RangeServer().start();
    try {
      const repo = join(dir, 'repo');
      const names = readdirSync(repo).sort();
      hub.routes.set(`/api/models/org/repo/revision/${COMMIT}`, { json: { sha: COMMIT, siblings: names.map((n) => ({ rfilename: n, size: statSync(join(repo, n)).size })) } });
      for (const n of names) hub.routes.set(`/org/repo/resolve/${COMMIT}/${n}`, { file: join(repo, n) });
      const r = await run(['scan', '--format', 'json', `hf://org/repo@${COMMIT}`], { SAFE_WEIGHTS_HF_ENDPOINT: hub.origin });
      assert.equal(r.code, 1, r.stderr);
      const files = (JSON.parse(r.stdout) as { files: (ModelReport & { tensors: number })[] }).files;
      const cfg = files.find((f) => f.path === `hf://org/repo@${COMMIT}/config.json`);
      assert.ok(cfg, files.map((f) => f.path).join(', '));
      checkRepoReport(cfg, m);
      assert.equal(cfg.remote?.commit, COMMIT);
      const weights = files.filter((f) => /\.(bin|safetensors)$/.test(f.path)).map((f) => [f.path.replace(/^.*\//, ''), f.verdict]);
      assert.deepEqual(weights, [['model-00001-of-00002.safetensors', 'safe'], ['pytorch_model-00001-of-00002.bin', 'safe'], ['pytorch_model-00002-of-00002.bin', 'safe']]);
      // the Python files are listed by the repository report, never fetched
      assert.ok(!hub.log.some((l) => l.path.endsWith('.py')));
    } finally { await hub.stop(); }
  });
});
