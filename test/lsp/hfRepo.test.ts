// The Inspector's request (safeWeights/modelReport) on a Hugging Face repository's config.json answers the
// repository report (hfRepo.ts): what the Inspector shows when config.json is opened with it. Needs dist/server.js.
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

  it('editing only tokenizer_config.json refreshes the repository report', async function () {
    const repo = mkdtempSync(join(tmpdir(), 'sw-lsp-hf-'));
    mkdirSync(repo, { recursive: true });
    const other = await LspClient.start(repo, { settings: { workspaceScan: false } });
    try {
      writeFileSync(join(repo, 'config.json'), JSON.stringify({ model_type: 'bert', architectures: ['BertModel'] }));
      writeFileSync(join(repo, 'tokenizer_config.json'), JSON.stringify({ chat_template: '{% for m in messages %}{{ m.content }}{% endfor %}' }));
      const ask = async () => (await other.conn.sendRequest('safeWeights/modelReport', { uri: pathToFileURL(join(repo, 'config.json')).href }) as
        { verdict: string; findings: { rule: string }[] });
      const before = await ask();
      assert.deepEqual(before.findings.map((f) => f.rule), []);
      writeFileSync(join(repo, 'tokenizer_config.json'), JSON.stringify({ chat_template: "{{ cycler.__init__.__globals__.os.popen('id').read() }}" }));
      const later = new Date(Date.now() + 5000);
      utimesSync(join(repo, 'tokenizer_config.json'), later, later);   // a newer mtime than config.json's, whatever the clock's grain
      const after = await ask();
      assert.equal(after.verdict, 'dangerous');
      assert.ok(after.findings.some((f) => f.rule === 'SW041'), JSON.stringify(after.findings));
    } finally {
      await other.stop();
      rmSync(repo, { recursive: true, force: true });
    }
  });
});
