// Version-range logic of the dependency-pin rules and the pyproject parsing.
import * as assert from 'node:assert/strict';
import { pinnedAdvisories, upperBound, checkPyproject } from '../../../server/src/python/deps';
import { ADVISORIES } from '../../../server/src/python/advisories';

describe('dependency pins', () => {
  it('computes the tightest upper bound of a specifier', () => {
    assert.deepEqual(upperBound('==2.5.1'), { v: [2, 5, 1], inclusive: true });
    assert.deepEqual(upperBound('>=2.0,<2.6'), { v: [2, 6], inclusive: false });
    assert.deepEqual(upperBound('~=2.5.0'), { v: [2, 6], inclusive: false });
    assert.deepEqual(upperBound('==2.5.*'), { v: [2, 6], inclusive: false });
    assert.deepEqual(upperBound('^0.4.1'), { v: [0, 5], inclusive: false });
    assert.equal(upperBound('>=2.0'), null);
  });

  it('flags only ranges whose newest allowed version is affected', () => {
    const ids = (p: string, s: string): string[] => pinnedAdvisories(p, s).map((a) => a.id);
    assert.deepEqual(ids('torch', '==2.5.1'), ['CVE-2025-32434']);
    assert.deepEqual(ids('torch', '<=2.6.0'), []);
    assert.deepEqual(ids('torch', '<2.6.0rc1'), ['CVE-2025-32434']);
    assert.deepEqual(ids('Torch', '>=2.6'), []);
    assert.deepEqual(ids('keras', '==2.15.0'), []);
    assert.deepEqual(ids('keras', '==3.10.0'), ['CVE-2025-8747']);
    assert.deepEqual(ids('PyYAML', '<5.4').sort(), ['CVE-2020-14343']);
    assert.deepEqual(ids('pyyaml', '==5.3').sort(), ['CVE-2020-14343', 'CVE-2020-1747']);
    assert.deepEqual(ids('requests', '==1.0'), []);
  });

  it('every advisory has an id, a fixed version and a source', () => {
    for (const a of ADVISORIES) {
      assert.match(a.id, /^CVE-\d{4}-\d+$/);
      assert.match(a.fixed, /^\d+(\.\d+)+$/);
      assert.match(a.source, /^https:\/\//);
      assert.match(a.rule, /^SW2\d\d$/);
    }
  });

  it('reads PEP 621, optional dependencies and Poetry tables with line numbers', () => {
    const text = [
      '[project]', 'name = "demo"', 'dependencies = [', '  "numpy>=1.20",', '  "torch==2.4.0",', ']',
      '[project.optional-dependencies]', 'yaml = ["pyyaml<5.4"]',
      '[tool.poetry.dependencies]', 'python = "^3.10"', 'keras = "3.5.0"', 'joblib = { version = "^1.3" }', '',
    ].join('\n');
    assert.deepEqual(checkPyproject(text).map((i) => [i.rule, i.line]), [['SW201', 4], ['SW202', 7], ['SW203', 10]]);
  });
});
