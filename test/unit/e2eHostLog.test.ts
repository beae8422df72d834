// scripts/e2e/hostLog.mjs: the extension host's console messages, forwarded by the page as (type, args), are
// printed formatted as console.log would (mocha's reporter logs '%d passing (%s)' with arguments), never with raw
// placeholders. Run in a child node (the module is ESM).
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../setup';

const formatted = (argsList: unknown[]): string[] => {
  const mod = pathToFileURL(join(REPO_ROOT, 'scripts', 'e2e', 'hostLog.mjs')).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    `import { formatHostLog } from ${JSON.stringify(mod)}; process.stdout.write(JSON.stringify(${JSON.stringify(argsList)}.map(formatHostLog)));`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
};

describe('e2e logs: extension-host messages are formatted, not printed with raw %d / %s', function () {
  it('mocha spec reporter lines (as captured from a real run)', function () {
    assert.deepEqual(formatted([
      ['  %d passing (%s)', 3, '349ms'],
      ['  %d failing', 1],
      ['    ✔ %s (%dms)', 'flags torch.load in a .py file (SW101 on the call)', 2661],
      ['  %s) %s:', '1', 'suite'],
    ]), ['  3 passing (349ms)', '  1 failing', '    ✔ flags torch.load in a .py file (SW101 on the call) (2661ms)', '  1) suite:']);
  });
  it('no placeholder left in any of them; plain strings, a lone value and objects still print', function () {
    const out = formatted([['plain text', 'more'], 'single', [{ a: 1 }, 'x'], ['50% done']]);
    assert.deepEqual(out, ['plain text more', 'single', '{"a":1} x', '50% done']);
    for (const l of out) assert.doesNotMatch(l, /%[sdifjoO]/);
  });
});
