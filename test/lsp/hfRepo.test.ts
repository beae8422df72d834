// The Inspector's request (safeWeights/modelReport) on a Hugging Face repository's config.json answers the
// repository report (hfRepo.ts): what the Inspector shows when config.json is opened with it. Needs dist/server.js.
import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { generatedFixturesOrSkip, requireBuilt } from '../setup';
import { LspClient } from './harness';

describe('LSP: Hugging Face repository report', function () {
  this.timeout(600_000);
  let client: LspClient | undefined;
  let dir: string;
  before(async function () {
    requireBuilt(this, 'dist/server.js');
    ({ dir } = generatedFixturesOrSkip<unknown>(this, 'test/fixtures/gen_remote_fixtures.py', ['torch']));
    client = await LspClient.start(join(dir, 'repo'), { settings: { workspaceScan: false } });
  });
  after(async () => { await client?.stop(); });

  it('answers safeWeights/modelReport for config.json with the repository summary', async () => {
    const report = await client!.conn.sendRequest('safeWeights/modelReport', { uri: pathToFileURL(join(dir, 'repo', 'config.json')).href }) as
      { format: string; verdict: string; findings: { rule: string; member?: string }[]; metadata: Record<string, string>; tensors: { name: string }[] };
    assert.equal(report.format, 'huggingface-repo');
    assert.equal(report.verdict, 'dangerous');
    assert.deepEqual(report.findings.map((f) => `${f.rule} ${f.member}`).sort(),
      ['SW040 config.json', 'SW041 tokenizer_config.json', 'SW042 model.safetensors.index.json']);
    assert.equal(report.metadata.model_type, 'evil');
    assert.ok(report.tensors.some((t) => t.name === 'layer.1.weight'));
  });
});
