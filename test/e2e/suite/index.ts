// Extension-test entry point in the @vscode/test-electron convention: VS Code's extension host loads this
// file (extensionTestsPath) and awaits run(); a rejection makes VS Code exit with code 1.
// Used by scripts/e2e/route-a.mjs (code-server's VS Code, here) and by @vscode/test-cli (.vscode-test.mjs).
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 120_000, color: false, reporter: 'spec' });
  const grep = process.env.SAFE_WEIGHTS_E2E_GREP;
  if (grep) mocha.grep(grep);
  // SAFE_WEIGHTS_E2E_FILES picks which compiled suites run (comma-separated base names); default: all *.test.js.
  const only = process.env.SAFE_WEIGHTS_E2E_FILES?.split(',').filter(Boolean);
  // Self-test of the harness: a suite that must fail, to prove a failure turns the whole run red.
  if (process.env.SAFE_WEIGHTS_E2E_SELFTEST === 'fail') mocha.addFile(join(__dirname, 'selftest-fail.js'));
  else for (const f of readdirSync(__dirname).sort()) {
    if (!f.endsWith('.test.js')) continue;
    if (only && !only.includes(f.replace(/\.test\.js$/, ''))) continue;
    mocha.addFile(join(__dirname, f));
  }
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      const s = runner.stats;
      const line = `${s?.passes ?? 0} passed, ${failures} failed, ${s?.pending ?? 0} skipped`;
      // the runner outside VS Code reads the counts from here (extension-host output is not always forwarded)
      const out = process.env.SAFE_WEIGHTS_E2E_RESULTS;
      if (out) writeFileSync(out, JSON.stringify({ passes: s?.passes ?? 0, failures, pending: s?.pending ?? 0, line }));
      console.log(`e2e (extension host): ${line}`);
      if (failures > 0) reject(new Error(`${failures} end-to-end test(s) failed`));
      else if ((s?.passes ?? 0) === 0) reject(new Error('no end-to-end test ran'));
      else resolve();
    });
  });
}
