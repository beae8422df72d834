// The language server's workspace scan finds files by content, with the same discovery as the CLI
// (models/discovery.ts): extensionless and misleadingly named model files, a Hugging Face cache reported under its
// snapshot links (each blob once), text and images skipped; a watched-file change is judged by content too.
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { LspClient } from './harness';
import { discover } from '../../server/src/models/discovery';
import { excludeMatcher, loadConfig } from '../../server/src/config';
import { osSystemPickle } from '../unit/models/pickleAsm';
import { buildTar, torchZip } from '../unit/models/zipAsm';

const EVIL = Buffer.from(osSystemPickle('GLOBAL').bytes);
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);

describe('language server: workspace scan discovers files by content (stdio)', function () {
  this.timeout(120_000);
  let client: LspClient;
  let dir: string;
  const uri = (rel: string): string => pathToFileURL(join(dir, rel)).href;
  const snap = 'hub/models--org--name/snapshots/1111111111111111111111111111111111111111';
  const blob = `hub/models--org--name/blobs/${'a'.repeat(64)}`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sw-ws-discovery-'));
    mkdirSync(join(dir, 'hub/models--org--name/blobs'), { recursive: true });
    mkdirSync(join(dir, snap), { recursive: true });
    mkdirSync(join(dir, 'build'), { recursive: true });
    writeFileSync(join(dir, 'model'), EVIL);                                   // no extension
    writeFileSync(join(dir, 'weights.data'), torchZip(EVIL));                  // a torch zip under a name nobody scans
    writeFileSync(join(dir, 'release.tgz'), gzipSync(buildTar([{ name: 'evil.pkl', data: EVIL }])));
    writeFileSync(join(dir, blob), torchZip(EVIL));
    symlinkSync(join('..', '..', 'blobs', 'a'.repeat(64)), join(dir, snap, 'pytorch_model.bin'));
    writeFileSync(join(dir, 'notes.txt'), 'cat\ndog and more words\n');
    writeFileSync(join(dir, 'logo.png'), PNG);
    writeFileSync(join(dir, 'build', 'model'), EVIL);                          // excluded in pyproject.toml
    writeFileSync(join(dir, 'pyproject.toml'), '[project]\nname = "demo"\n\n[tool.safe-weights]\nexclude = ["build/**"]\n');
    client = await LspClient.start(dir, { settings: { workspaceScan: true } });   // new files on disk are scanned
  });
  after(async () => { await client.stop(); rmSync(dir, { recursive: true, force: true }); });

  it('scans what the CLI\'s discovery finds: by content, links under their own path, blobs once', async () => {
    const result = await client.conn.sendRequest('safeWeights/scanWorkspace') as { files: number; dangerous: number; caution: number; codeFiles: number };
    // the same function the CLI uses, on the same folder with the same excludes
    const cfg = await loadConfig(dir);
    const found = await discover([dir], { excluded: excludeMatcher(cfg) });
    const expected = ['hub/models--org--name/snapshots/1111111111111111111111111111111111111111/pytorch_model.bin', 'model', 'pyproject.toml', 'release.tgz', 'weights.data'];
    assert.deepEqual(found.files.map((f) => f.path.slice(dir.length + 1)).sort(), expected);
    // files counts the model files, codeFiles the rest (pyproject.toml)
    assert.deepEqual([result.files, result.codeFiles], [expected.length - 1, 1], JSON.stringify(result));
    assert.equal(result.dangerous, 4, JSON.stringify(result));
    for (const rel of ['model', 'weights.data', 'release.tgz', `${snap}/pytorch_model.bin`]) {
      const d = client.diagnostics.get(uri(rel));
      assert.ok(d && d.length === 1 && d[0].severity === 1, `${rel}: ${JSON.stringify(d)}`);
      assert.match(d[0].message, /os\.system/);
    }
    for (const rel of [blob, 'notes.txt', 'logo.png', 'build/model']) assert.equal(client.diagnostics.get(uri(rel)), undefined, `${rel} must not be scanned`);
  });

  it('a changed file is judged by its content: a new extensionless pickle is scanned, a text file is not', async () => {
    writeFileSync(join(dir, 'NOTES'), 'Some notes\n');
    writeFileSync(join(dir, 'later'), EVIL);
    const next = client.nextDiagnostics(uri('later'));
    await client.conn.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: uri('NOTES'), type: 1 }, { uri: uri('later'), type: 1 }] });
    const d = await next;
    assert.equal(d.length, 1);
    assert.equal(d[0].severity, 1);
    assert.equal(client.diagnostics.get(uri('NOTES')), undefined, 'a text file gets no model diagnostic');
    // a model file that becomes text loses its diagnostic
    writeFileSync(join(dir, 'model'), 'now just text\n');
    const cleared = client.nextDiagnostics(uri('model'));
    await client.conn.sendNotification('workspace/didChangeWatchedFiles', { changes: [{ uri: uri('model'), type: 2 }] });
    assert.deepEqual(await cleared, []);
  });
});
