// Every rule a user can meet is documented where the product points: SARIF helpUri -> README anchor, the
// safeWeights.rules setting's schema -> every rule id, README's model-file table -> the model catalog.
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toSarif } from '../../../server/src/cli/sarif';
import { MODEL_RULES } from '../../../server/src/models/rules';
import { CODE_RULES } from '../../../server/src/python/rules';
import { REPO_ROOT } from '../../setup';

const read = (rel: string) => readFileSync(join(REPO_ROOT, rel), 'utf8');
const manifest = JSON.parse(read('package.json'));
const readme = read('README.md');
const anchors = new Set([...readme.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]));
const allIds = [...MODEL_RULES, ...CODE_RULES].map((r) => r.id);

describe('rule documentation', () => {
  it('package.json names the repository, its issues, homepage and license', () => {
    assert.equal(manifest.repository.url, 'https://github.com/safe-weights/safe-weights.git');
    assert.equal(manifest.bugs.url, 'https://github.com/safe-weights/safe-weights/issues');
    assert.equal(manifest.homepage, 'https://github.com/safe-weights/safe-weights#readme');
    assert.equal(manifest.license, 'MIT');
    assert.match(read('LICENSE'), /^MIT License/);
    assert.match(read('CHANGELOG.md'), /^# Changelog/);
  });

  it('every rule SARIF lists has a helpUri on the repository README that reaches an anchor there', () => {
    const sarif = toSarif([], '0.0.0', MODEL_RULES, CODE_RULES, REPO_ROOT);
    const rules = sarif.runs[0].tool.driver.rules;
    assert.deepEqual(rules.map((r) => r.id).sort(), [...allIds].sort());
    const base = manifest.repository.url.replace(/\.git$/, '') + '#';
    for (const r of rules) {
      assert.ok(r.helpUri.startsWith(base), `${r.id}: ${r.helpUri} is on ${base}`);
      const anchor = r.helpUri.slice(base.length);
      assert.ok(anchors.has(anchor), `${r.id}: README has <a id="${anchor}">`);
    }
  });

  it('README lists every model-file rule with its id and name', () => {
    const rows = [...readme.matchAll(/^\| <a id="(sw0\d\d)"><\/a>(SW0\d\d) \| ([\w-]+) \|/gm)];
    assert.deepEqual(rows.map((m) => m[2]).sort(), MODEL_RULES.map((r) => r.id).sort());
    for (const m of rows) {
      const rule = MODEL_RULES.find((r) => r.id === m[2])!;
      assert.equal(m[1], m[2].toLowerCase());
      assert.equal(m[3], rule.name, rule.id);
    }
  });

  it('the safeWeights.rules setting lists every rule id with the four levels, and still takes rule names', () => {
    const setting = manifest.contributes.configuration.properties['safeWeights.rules'];
    assert.deepEqual(Object.keys(setting.properties).sort(), [...allIds].sort());
    for (const r of [...MODEL_RULES, ...CODE_RULES]) {
      const p = setting.properties[r.id];
      assert.deepEqual(p.enum, ['off', 'info', 'warning', 'error'], r.id);
      assert.ok(String(p.markdownDescription).includes(r.name), `${r.id} names ${r.name}`);
    }
    assert.deepEqual(setting.additionalProperties.enum, ['off', 'info', 'warning', 'error']);
  });
});
