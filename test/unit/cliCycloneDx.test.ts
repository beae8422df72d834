// `safe-weights scan --format cyclonedx` (node dist/cli.js, needs `npm run build`) on files written by Python's
// pickle and torch.save: the BOM validates against the official CycloneDX 1.6 JSON schema (as shipped by
// @cyclonedx/cyclonedx-library, checked with ajv), lists the model files only, with the SHA-256 Python computed.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { GeneratedFixtures, generatedFixturesOrSkip, requireBuilt } from '../setup';

interface Manifest { files: Record<string, { sha256: string; size: number; callable: string | null }> }
interface Component { type: string; 'bom-ref': string; name: string; hashes?: { alg: string; content: string }[]; properties: { name: string; value: string }[] }
interface Bom { bomFormat: string; specVersion: string; serialNumber: string; metadata: { tools: { components: { name: string; version: string }[] } }; components: Component[] }

const validate = async (bom: unknown): Promise<unknown> => new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(JSON.stringify(bom));

describe('CLI --format cyclonedx: a CycloneDX 1.6 BOM of the model files', function () {
  this.timeout(300_000);
  let fx: GeneratedFixtures<Manifest>;
  let repo: string;
  let bom: Bom;
  let code: number | null;

  before(function () {
    const cli = requireBuilt(this, 'dist/cli.js');
    fx = generatedFixturesOrSkip<Manifest>(this, 'test/fixtures/gen_pipeline_fixtures.py', ['torch']);
    repo = mkdtempSync(join(tmpdir(), 'sw-cdx-'));
    for (const f of ['evil.pkl', 'evil_eval.pkl', 'model.pt']) copyFileSync(join(fx.dir, f), join(repo, f));
    writeFileSync(join(repo, 'train.py'), 'import pickle\nstate = pickle.load(open("x", "rb"))\n');
    const r = spawnSync(process.execPath, [cli, 'scan', '--format', 'cyclonedx', '.'], { encoding: 'utf8', cwd: repo, timeout: 120_000 });
    code = r.status;
    bom = JSON.parse(r.stdout) as Bom;
  });
  after(function () { if (repo) rmSync(repo, { recursive: true, force: true }); });

  it('validates against the official CycloneDX 1.6 strict JSON schema', async function () {
    assert.equal(await validate(bom), null);
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.equal(bom.specVersion, '1.6');
    assert.match(bom.serialNumber, /^urn:uuid:[0-9a-f-]{36}$/);
    assert.equal(bom.metadata.tools.components[0].name, 'safe-weights');
  });

  it('the validator is live: it rejects a BOM with a wrong component type, a short hash or a stray field', async function () {
    const broken = (f: (b: Bom) => void): Bom => { const b = JSON.parse(JSON.stringify(bom)) as Bom; f(b); return b; };
    assert.notEqual(await validate(broken((b) => { b.components[0].type = 'model'; })), null);
    assert.notEqual(await validate(broken((b) => { b.components[0].hashes![0].content = 'abc'; })), null);
    assert.notEqual(await validate(broken((b) => { (b.components[0] as unknown as Record<string, unknown>).verdict = 'safe'; })), null);
  });

  it('one machine-learning-model component per model file (the .py file is not one), with the SHA-256 Python computed', function () {
    assert.deepEqual(bom.components.map((c) => c.name).sort(), ['evil.pkl', 'evil_eval.pkl', 'model.pt']);
    for (const c of bom.components) {
      assert.equal(c.type, 'machine-learning-model');
      assert.deepEqual(c.hashes, [{ alg: 'SHA-256', content: fx.manifest.files[c.name].sha256 }], c.name);
      const size = c.properties.find((p) => p.name === 'safe-weights:size')?.value;
      assert.equal(size, String(fx.manifest.files[c.name].size), c.name);
    }
    assert.equal(new Set(bom.components.map((c) => c['bom-ref'])).size, 3, 'bom-refs are unique');
  });

  it('format, verdict and findings are properties; the exit code still follows --fail-on', function () {
    const props = (name: string, key: string): string[] => bom.components.find((c) => c.name === name)!.properties.filter((p) => p.name === key).map((p) => p.value);
    assert.deepEqual(props('model.pt', 'safe-weights:verdict'), ['safe']);
    assert.deepEqual(props('model.pt', 'safe-weights:format'), ['pytorch-zip']);
    assert.deepEqual(props('evil.pkl', 'safe-weights:verdict'), ['dangerous']);
    assert.deepEqual(props('evil.pkl', 'safe-weights:format'), ['pickle']);
    assert.ok(props('evil.pkl', 'safe-weights:finding').some((v) => /^SW001 dangerous \(offset \d+\): .*posix\.system/.test(v)), props('evil.pkl', 'safe-weights:finding').join('\n'));
    assert.ok(props('evil_eval.pkl', 'safe-weights:finding').some((v) => v.includes('builtins.eval')));
    assert.deepEqual(props('model.pt', 'safe-weights:finding').filter((v) => !/ info/.test(v)), []);
    assert.equal(code, 1, 'dangerous files fail the run whatever the format');
  });
});
