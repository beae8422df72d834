// Dependency pins in open editors: setup.py (code rules and its install_requires pins) and the lock files the
// workspace scan reads (issue 12: the server only ran the code rules for .py and only read requirements/pyproject).
import * as assert from 'node:assert/strict';
import { LspClient } from './harness';

describe('language server: dependency pins of setup.py and lock files (stdio)', function () {
  this.timeout(60000);
  let client: LspClient;
  before(async () => { client = await LspClient.start(); });
  after(async () => { await client.stop(); });

  it('setup.py: the install_requires pins besides the code rules', async () => {
    const text = [
      'from setuptools import setup',                       // 0
      'import pickle',                                      // 1
      'data = pickle.loads(blob)',                          // 2
      'setup(',                                             // 3
      '    name="x",',                                      // 4
      '    install_requires=[',                             // 5
      '        "numpy>=1.20",',                             // 6
      '        "torch==2.5.1",',                            // 7
      '    ],',                                             // 8
      ')',
      '',
    ].join('\n');
    const d = await client.open('file:///tmp/safe-weights-test/setup.py', text);
    const codes = d.map((x) => [x.code, x.range.start.line]);
    assert.ok(codes.some(([c, l]) => c === 'SW102' && l === 2), JSON.stringify(codes));
    assert.ok(codes.some(([c, l]) => c === 'SW201' && l === 7), JSON.stringify(codes));
    assert.match(d.find((x) => x.code === 'SW201')!.message, /CVE-2025-32434/);
    // the same code in another .py file gets no pins
    const other = await client.open('file:///tmp/safe-weights-test/not_setup.py', text);
    assert.ok(!other.some((x) => x.code === 'SW201'), JSON.stringify(other.map((x) => x.code)));
  });

  it('poetry.lock and Pipfile.lock: locked versions', async () => {
    const poetry = await client.open('file:///tmp/safe-weights-test/poetry.lock',
      '[[package]]\nname = "numpy"\nversion = "1.26.4"\n\n[[package]]\nname = "torch"\nversion = "2.5.1"\n', 'toml');
    assert.deepEqual(poetry.map((x) => [x.code, x.range.start.line]), [['SW201', 6]]);
    const pipfile = await client.open('file:///tmp/safe-weights-test/Pipfile.lock',
      JSON.stringify({ _meta: {}, default: { numpy: { version: '==1.26.4' }, torch: { version: '==2.5.1' } } }, null, 4), 'json');
    assert.deepEqual(pipfile.map((x) => x.code), ['SW201']);
  });
});
