// [tool.safe-weights] in pyproject.toml and the editor settings on top of it.
import * as assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, withSettings, levelFor, excludeMatcher } from '../../../server/src/config';

describe('configuration', () => {
  it('reads [tool.safe-weights] and layers editor settings on top', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-cfg-'));
    writeFileSync(join(dir, 'pyproject.toml'), [
      '[project]', 'name = "x"', '', '[tool.safe-weights]', 'disable = ["SW105", "torch-save-pickle"]',
      'severity = { SW101 = "error", SW110 = "info" }', 'exclude = ["build/**", "legacy"]', 'honor-nosec = true', '',
    ].join('\n'));
    const cfg = await loadConfig(dir);
    assert.equal(cfg.source, join(dir, 'pyproject.toml'));
    assert.equal(levelFor(cfg, 'SW105', 'dangerous'), undefined);
    assert.equal(levelFor(cfg, 'SW120', 'info'), undefined);
    assert.equal(levelFor(cfg, 'SW101', 'caution'), 'dangerous');
    assert.equal(levelFor(cfg, 'SW110', 'caution'), 'info');
    assert.equal(levelFor(cfg, 'SW102', 'dangerous'), 'dangerous');
    assert.equal(cfg.honorNosec, true);
    const ex = excludeMatcher(cfg);
    assert.equal(ex('build/gen/a.py'), true);
    assert.equal(ex('src/legacy'), true);
    assert.equal(ex('.venv/lib/x.py'), true);
    assert.equal(ex('node_modules/x/y.py'), true);
    assert.equal(ex('src/train.py'), false);
    const merged = withSettings(cfg, { rules: { SW105: 'warning', 'pickle-load': 'off' }, honorNosec: false });
    assert.equal(levelFor(merged, 'SW105', 'dangerous'), 'caution');
    assert.equal(levelFor(merged, 'SW102', 'dangerous'), undefined);
    assert.equal(merged.honorNosec, false);
  });

  it('reads allow-globals from pyproject and appends safeWeights.allowGlobals', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-cfg-'));
    writeFileSync(join(dir, 'pyproject.toml'), '[tool.safe-weights]\nallow-globals = ["mypkg.models.*", "other.build"]\n');
    const cfg = await loadConfig(dir);
    assert.deepEqual(cfg.allowGlobals, ['mypkg.models.*', 'other.build']);
    assert.deepEqual(withSettings(cfg, { allowGlobals: ['team.*'] }).allowGlobals, ['mypkg.models.*', 'other.build', 'team.*']);
    assert.deepEqual(cfg.allowGlobals, ['mypkg.models.*', 'other.build'], 'settings do not change the project config');
  });

  it('defaults without pyproject.toml, and rejects invalid TOML with the path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-cfg-'));
    const cfg = await loadConfig(dir);
    assert.deepEqual(cfg.rules, {});
    writeFileSync(join(dir, 'pyproject.toml'), '[tool.safe-weights\n');
    await assert.rejects(loadConfig(dir), /pyproject\.toml: invalid TOML/);
  });
});
