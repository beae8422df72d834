// Version-range logic of the dependency-pin rules and the pyproject parsing.
import * as assert from 'node:assert/strict';
import { pinnedAdvisories, upperBound, checkPyproject, checkDependencyFile, checkRequirementsTxt, checkSetupPy } from '../../../server/src/python/deps';
import { ADVISORIES } from '../../../server/src/python/advisories';
import { getParser, parseSync } from '../../../server/src/python/parser';
import { codeFormat, scanCodeText } from '../../../server/src/python/scanCode';

/** [rule, 0-based line, first advisory id] of each pin issue. */
const brief = (issues: { rule: string; line: number; message: string }[]): [string, number, string][] =>
  issues.map((i) => [i.rule, i.line, /CVE-\d{4}-\d+/.exec(i.message)?.[0] ?? '']);

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
    assert.deepEqual(ids('torch', '==2.5.1'), ['CVE-2025-32434', 'CVE-2026-24747']);
    assert.deepEqual(ids('torch', '<=2.6.0'), ['CVE-2026-24747']);
    assert.deepEqual(ids('torch', '<2.6.0rc1'), ['CVE-2025-32434', 'CVE-2026-24747']);
    assert.deepEqual(ids('torch', '==2.9.1'), ['CVE-2026-24747']);
    assert.deepEqual(ids('torch', '<2.10'), ['CVE-2026-24747']);
    assert.deepEqual(ids('torch', '<=2.10.0'), []);
    assert.deepEqual(ids('Torch', '>=2.6'), []);
    // GHSA-36fq-jgmw-4r9c (CVE-2025-9906) publishes the range ">= 0, < 3.11.0": Keras 2 pins are included
    assert.deepEqual(ids('keras', '==2.15.0'), ['CVE-2025-9906']);
    assert.deepEqual(ids('keras', '==3.8.0').sort(), ['CVE-2025-1550', 'CVE-2025-8747', 'CVE-2025-9905', 'CVE-2025-9906']);
    assert.deepEqual(ids('keras', '==3.10.0').sort(), ['CVE-2025-8747', 'CVE-2025-9905', 'CVE-2025-9906']);
    assert.deepEqual(ids('keras', '==3.11.0').sort(), ['CVE-2025-49655', 'CVE-2025-9905']);
    assert.deepEqual(ids('keras', '==3.11.3'), []);
    assert.deepEqual(ids('onnx', '==1.12.0').sort(), ['CVE-2022-25882', 'CVE-2024-27318', 'CVE-2025-51480', 'CVE-2026-27489', 'CVE-2026-34446', 'CVE-2026-34447']);
    assert.deepEqual(ids('onnx', '==1.16.0').sort(), ['CVE-2025-51480', 'CVE-2026-27489', 'CVE-2026-34446', 'CVE-2026-34447']);
    assert.deepEqual(ids('onnx', '>=1.21.0'), []);
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
      if (a.introduced) assert.ok(pinnedAdvisories(a.package, `==${a.introduced}`).includes(a), `${a.id} affects its first version`);
      assert.ok(!pinnedAdvisories(a.package, `==${a.fixed}`).includes(a), `${a.id} does not affect its fixed version`);
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

  it('reads poetry.lock and uv.lock [[package]] entries (the installed version), not the constraints of other packages', () => {
    const poetry = [
      '[[package]]', 'name = "accelerate"', 'version = "0.30.0"', '', '[package.dependencies]', 'torch = ">=1.10.0"', 'numpy = "==1.16.0"', '',
      '[[package]]', 'name = "torch"', 'version = "2.5.1"', 'description = "Tensors"', '', '[package.dependencies]', 'filelock = "*"', '',
      '[[package]]', 'name = "PyYAML"', 'version = "6.0.1"', '',
      '[[package]]', 'name = "keras"', 'version = "3.11.1"', '',
    ].join('\n');
    assert.deepEqual(brief(checkDependencyFile('poetry.lock', poetry)), [['SW201', 10, 'CVE-2025-32434'], ['SW203', 22, 'CVE-2025-9905']]);
    const uv = [
      'version = 1', 'requires-python = ">=3.10"', '', '[[package]]', 'name = "onnx"', 'version = "1.15.0"',
      'source = { registry = "https://pypi.org/simple" }', 'dependencies = [', '    { name = "numpy" },', ']', '',
      '[[package]]', 'name = "torch"', 'version = "2.10.0"', 'source = { registry = "https://pypi.org/simple" }', '',
    ].join('\n');
    assert.deepEqual(brief(checkDependencyFile('uv.lock', uv)), [['SW204', 5, 'CVE-2024-27318']]);
    const pylock = ['lock-version = "1.0"', '[[packages]]', 'name = "torch"', 'version = "2.9.0"', ''].join('\n');
    assert.deepEqual(brief(checkDependencyFile('pylock.toml', pylock)), [['SW201', 3, 'CVE-2026-24747']]);
    assert.equal(codeFormat('/p/poetry.lock'), 'pyproject');
    assert.equal(codeFormat('/p/uv.lock'), 'pyproject');
    // the editor hands a .lock it opens to checkPyproject: the same entries come out
    assert.deepEqual(brief(checkPyproject(poetry)), brief(checkDependencyFile('poetry.lock', poetry)));
  });

  it('reads Pipfile and Pipfile.lock', () => {
    const pipfile = ['[[source]]', 'url = "https://pypi.org/simple"', '', '[packages]', 'torch = "==2.4.0"', 'numpy = "*"', '',
      '[dev-packages]', 'pyyaml = {version = "<5.4"}', ''].join('\n');
    assert.deepEqual(brief(checkDependencyFile('Pipfile', pipfile)), [['SW201', 4, 'CVE-2025-32434'], ['SW202', 8, 'CVE-2020-14343']]);
    const lock = JSON.stringify({
      _meta: { hash: { sha256: 'x' } },
      default: { numpy: { hashes: ['sha256:a'], version: '==1.26.4' }, torch: { hashes: ['sha256:b'], version: '==2.5.1' } },
      develop: { keras: { version: '==3.8.0' } },
    }, null, 4);
    const issues = checkDependencyFile('Pipfile.lock', lock);
    assert.deepEqual(issues.map((i) => i.rule), ['SW201', 'SW203']);
    const lines = lock.split('\n');
    assert.match(lines[issues[0].line], /"version": "==2\.5\.1"/);
    assert.match(lines[issues[1].line], /"version": "==3\.8\.0"/);
    assert.equal(lines[issues[0].line].slice(issues[0].column, issues[0].endColumn), '"version": "==2.5.1"');
    assert.deepEqual(checkRequirementsTxt(lock).map((i) => i.line), issues.map((i) => i.line));
    assert.deepEqual(checkDependencyFile('Pipfile.lock', '{not json'), []);
  });

  it('reads conda environment.yml: conda specs (pytorch=2.5 means 2.5.*) and pip requirements', () => {
    const env = [
      'name: train', 'channels:', '  - pytorch', '  - conda-forge', 'dependencies:', '  - python=3.11', '  - pytorch=2.5',
      '  - conda-forge::numpy==1.16.0=py37_0', '  - pyyaml>=6', '  - keras 3.8.0', '  - pip', '  - pip:', '    - torch==2.9.1',
      '    - "onnx<1.16"', '    - transformers>=4.40', '  - pytorch>=2.0', 'variables:', '  - torch=1.0', '',
    ].join('\n');
    assert.deepEqual(brief(checkDependencyFile('environment.yml', env)), [
      ['SW201', 6, 'CVE-2025-32434'], ['SW204', 7, 'CVE-2019-6446'], ['SW203', 9, 'CVE-2025-1550'], ['SW201', 12, 'CVE-2026-24747'],
      ['SW204', 13, 'CVE-2024-27318'],
    ]);
    const lines = env.split('\n');
    const first = checkDependencyFile('environment.yml', env)[0];
    assert.equal(lines[first.line].slice(first.column, first.endColumn), 'pytorch=2.5');
    assert.equal(codeFormat('/p/environment-gpu.yaml'), 'requirements');
    assert.deepEqual(brief(checkRequirementsTxt(env)), brief(checkDependencyFile('environment.yml', env)));
  });

  it('reads setup.cfg install_requires / extras_require and setup.py setup(...) requirements', async () => {
    const cfg = ['[metadata]', 'name = demo', '', '[options]', 'packages = find:', 'install_requires =', '    numpy>=1.20',
      '    torch==2.5.1 ; python_version >= "3.9"', '    # pyyaml<5.4', 'python_requires = >=3.9', '', '[options.extras_require]',
      'keras = keras==3.10.0', 'onnx =', '    onnx<1.13', ''].join('\n');
    assert.deepEqual(brief(checkDependencyFile('setup.cfg', cfg)), [['SW201', 7, 'CVE-2025-32434'], ['SW203', 12, 'CVE-2025-8747'], ['SW204', 14, 'CVE-2022-25882']]);
    assert.deepEqual(brief(checkRequirementsTxt(cfg)), brief(checkDependencyFile('setup.cfg', cfg)));
    const py = ['from setuptools import setup', 'REQS = ["numpy", "torch<2.6"]', 'setup(', '    name="demo",',
      '    install_requires=REQS + ["pyyaml==5.3"],', '    extras_require={"tf": ["keras~=3.8.0"], "dev": ["pytest"]},',
      '    description="torch==2.0.0 is not a requirement here",', ')', 'other(install_requires=["torch==2.0.0"])', ''].join('\n');
    const parser = await getParser();
    const tree = parseSync(parser, py);
    try {
      const issues = checkSetupPy(tree, py);
      assert.deepEqual(brief(issues), [['SW201', 1, 'CVE-2025-32434'], ['SW202', 4, 'CVE-2020-14343'], ['SW203', 5, 'CVE-2025-1550']]);
      assert.equal(py.split('\n')[1].slice(issues[0].column, issues[0].endColumn), 'torch<2.6');
    } finally {
      tree.delete();
    }
    // the file scan reports setup.py pins alongside the code rules, and only for setup.py
    const report = await scanCodeText('/p/setup.py', py);
    assert.deepEqual(report.findings.map((f) => [f.rule, f.line]), [['SW201', 2], ['SW202', 5], ['SW203', 6]]);
    assert.deepEqual((await scanCodeText('/p/other.py', py)).findings, []);
  });
});

