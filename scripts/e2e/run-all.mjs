// `npm run test:e2e`: everything the end-to-end tests need, then the three suites.
//  1. prerequisites: code-server (real VS Code 1.100.3, installed from npm into the cache outside the repo)
//     and Debian's Chromium (apt-get when missing); under CI=true anything missing fails the run
//  2. build + compile the tests + package the .vsix
//  3. the Inspector webview alone in Chromium (node --test test/e2e/webview.test.mjs)
//  4. route A: the extension-API mocha suite inside VS Code's extension host (test/e2e/suite)
//  5. route B: install the .vsix, drive the UI with Playwright, save screenshots
// Ends with one "N passed, N failed" line (suites, not tests); exit code 1 when anything failed.
// Options: --only=webview,a,b  (skip the others; for local iteration)
import { spawnSync } from 'node:child_process';
import { root, log, run, ensurePrerequisites } from './lib.mjs';
import { runRouteA } from './route-a.mjs';
import { runRouteB } from './route-b.mjs';

const only = process.argv.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const want = (name) => !only || only.includes(name);
const outcome = [];
const record = (name, ok, detail = '') => { outcome.push({ name, ok }); log(`${ok ? 'PASS' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`); };

try {
  ensurePrerequisites();
  run('npm', ['run', '--silent', 'build']);
  run('npm', ['run', '--silent', 'compile-tests']);
  if (want('b')) run('npm', ['run', '--silent', 'package']);
} catch (e) {
  record('prerequisites and build', false, e instanceof Error ? e.message : String(e));
  finish();
}

if (want('webview')) {
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', 'test/e2e/webview.test.mjs'], { cwd: root, stdio: 'inherit' });
  record('Inspector webview in Chromium', r.status === 0);
}

if (want('a')) {
  try {
    // the harness itself: a suite that fails must make VS Code exit non-zero
    const self = await runRouteA({ selftestFail: true, timeoutMs: 120_000 });
    record('route A harness self-test (a failing suite exits 1)', self.code === 1 && self.results?.failures === 1);
    const a = await runRouteA();
    record('route A: extension API suite in VS Code', a.code === 0 && (a.results?.passes ?? 0) > 0,
      a.results ? a.results.line : `exit code ${a.code}, no results`);
  } catch (e) {
    record('route A', false, e instanceof Error ? e.stack : String(e));
  }
}

if (want('b')) {
  try {
    const b = await runRouteB();
    record('route B: UI in VS Code with the installed .vsix', b.failures === 0 && b.passes > 0, `${b.passes} passed, ${b.failures} failed`);
  } catch (e) {
    record('route B', false, e instanceof Error ? e.stack : String(e));
  }
}
finish();

function finish() {
  const failed = outcome.filter((o) => !o.ok).length;
  console.log(`e2e: ${outcome.length - failed} passed, ${failed} failed`);
  process.exit(failed || outcome.length === 0 ? 1 : 0);
}
