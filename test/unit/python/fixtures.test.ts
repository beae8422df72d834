// Rule tests on annotated fixtures: every line ending in `# expect: SWnnn` must be flagged with exactly those
// rules, and every other line must not be flagged at all.
import * as assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { scanCodeText } from '../../../server/src/python/scanCode';
import { mayHaveFindings } from '../../../server/src/python/prefilter';
import { CODE_RULES } from '../../../server/src/python/rules';

export const FIXTURES = join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'python');

function expected(text: string): string[] {
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const m of line.matchAll(/# expect: (SW\d{3})/g)) out.push(`${i + 1} ${m[1]}`);
  });
  return out.sort();
}

// Each fixture's verdict, written down here (not derived from the findings the code under test returns):
// hf_downloads.py only has unpinned Hugging Face downloads (caution); every other fixture has at least one
// unsafe load or a vulnerable pin (dangerous).
const VERDICTS: Record<string, 'safe' | 'caution' | 'dangerous'> = {
  'hf_downloads.py': 'caution', 'pickle_family.py': 'dangerous', 'requirements-pins.txt': 'dangerous',
  'resolution.py': 'dangerous', 'torch_load.py': 'dangerous', 'yaml_and_more.py': 'dangerous',
  'dynamic_and_values.py': 'dangerous', 'snippet_no_imports.py': 'dangerous', 'new_sinks.py': 'dangerous',
};

describe('code rules on annotated fixtures', () => {
  const files = readdirSync(FIXTURES).filter((f) => /\.(py|txt)$/.test(f));
  it('has fixtures', () => assert.ok(files.length >= 5, `fixtures in ${FIXTURES}`));
  for (const file of files) {
    it(file, async () => {
      const text = readFileSync(join(FIXTURES, file), 'utf8');
      const want = expected(text);
      assert.ok(want.length > 0, 'a fixture must have positive lines');
      const report = await scanCodeText(join(FIXTURES, file), text);
      const got = report.findings.map((f) => `${f.line} ${f.rule}`).sort();
      assert.deepEqual(got, want);
      assert.ok(file in VERDICTS, `add ${file} to VERDICTS`);
      assert.equal(report.verdict, VERDICTS[file]);
      if (file.endsWith('.py')) assert.equal(mayHaveFindings(text), true);
    });
  }

  it('reports 1-based line/column and end positions', async () => {
    const r = await scanCodeText('x.py', 'import torch\n\nx = 1; m = torch.load(f)\n');
    assert.deepEqual(r.findings.map((f) => [f.rule, f.line, f.column, f.endLine, f.endColumn]), [['SW101', 3, 12, 3, 25]]);
  });

  it('the batch pre-filter skips only files that cannot match', async () => {
    assert.equal(mayHaveFindings('import json\njson.load(f)\n'), false);
    assert.equal(mayHaveFindings('"""torch.load(f)"""\n# pickle.loads(x)\nx = 1\n'), false);
    assert.equal(mayHaveFindings('from pickle import (\n    loads,\n)\nloads(b)\n'), true);
    assert.equal(mayHaveFindings('m = f(x, trust_remote_code=True)\n'), true);
    assert.equal(mayHaveFindings('import torch as t\ntl = t.load\n'), true);
    // whole words only, for roots and names alike; a longer name at the same start is still found
    assert.equal(mayHaveFindings('import numpy\nnumpy.loadtxt(f)\n'), false);
    assert.equal(mayHaveFindings('import numpyx\nnumpyx.load(f)\n'), false);
    assert.equal(mayHaveFindings('import pickle\nx = pickle.loadsx(b)\n'), false);
    assert.equal(mayHaveFindings('import pickle\nx = pickle.loads(b)\n'), true);
    assert.equal(mayHaveFindings('import pickle5\npickle5.loads(b)\n'), true);
    // a root is found after others (and after the same word inside a longer one)
    assert.equal(mayHaveFindings('import torch_utils, numpy_ext\ntorch_utils.x = 1\nimport yaml, torch\ny = torch.load(f)\n'), true);
    assert.equal(mayHaveFindings('from x import (a,\n  loads)\nimport pickle\n'), true);
    const r = await scanCodeText('x.py', 'from pickle import (\n    loads,\n)\nloads(b)\n');
    assert.deepEqual(r.findings.map((f) => f.rule), ['SW102']);
  });

  it('honours # nosec only when configured', async () => {
    const src = 'import pickle\nobj = pickle.loads(b)  # nosec B301\n';
    assert.equal((await scanCodeText('x.py', src)).findings.length, 1);
    const cfg = { rules: {}, exclude: [], honorNosec: true, workspaceScan: true, enable: true, allowGlobals: [] };
    assert.equal((await scanCodeText('x.py', src, cfg)).findings.length, 0);
  });

  it('applies per-rule configuration (off, severity)', async () => {
    const src = 'import pickle, torch\npickle.loads(b)\ntorch.load(f)\n';
    const cfg = { rules: { SW102: 'off' as const, SW101: 'dangerous' as const }, exclude: [], honorNosec: false, workspaceScan: true, enable: true, allowGlobals: [] };
    const r = await scanCodeText('x.py', src, cfg);
    assert.deepEqual(r.findings.map((f) => [f.rule, f.severity]), [['SW101', 'dangerous']]);
  });

  it('README documents every rule (anchor, id, name) and no rule that does not exist', () => {
    const readme = readFileSync(join(__dirname, '..', '..', '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('<!-- code-rules:start -->'), readme.indexOf('<!-- code-rules:end -->'));
    const rows = [...section.matchAll(/^\| <a id="(sw\d{3})"><\/a>(SW\d{3}) \| ([\w-]+) \|/gm)].map((m) => [m[1], m[2], m[3]]);
    assert.deepEqual(rows.map((r) => r[1]).sort(), CODE_RULES.map((r) => r.id).sort());
    for (const [anchor, id, name] of rows) {
      const rule = CODE_RULES.find((r) => r.id === id)!;
      assert.equal(anchor, rule.helpAnchor);
      assert.equal(name, rule.name, id);
    }
  });
});
