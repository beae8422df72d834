// Route A: runs the extension-API mocha suite (out/test/e2e/suite/index.js, exports run()) inside the
// Node extension host of a real VS Code (code-server's build), loaded through the smoke-test driver's
// test payload. Exit code: 0 when the suite passed, 1 when it failed or did not finish.
// Usage: node scripts/e2e/route-a.mjs [--selftest-fail]      (expects `npm run build` and `npm run compile-tests`)
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, log, tempDir, removeDir, startVsCodeServer, launchChromium, ensurePrerequisites } from './lib.mjs';
import { writeFixtureWorkspace } from './fixtures.mjs';
import { formatHostLog } from './hostLog.mjs';

export async function runRouteA({ selftestFail = false, timeoutMs = 6 * 60_000 } = {}) {
  const testsIndex = join(root, 'out', 'test', 'e2e', 'suite', 'index.js');
  for (const f of [join(root, 'dist', 'client.js'), testsIndex]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run npm run build && npm run compile-tests`);
  }
  const work = tempDir('sw-route-a-');
  const workspace = writeFixtureWorkspace(join(work, 'workspace'));
  const resultsFile = join(work, 'results.json');
  const extensionsDir = join(work, 'extensions'); mkdirSync(extensionsDir);
  const dataDir = join(work, 'data'); mkdirSync(dataDir);
  const server = await startVsCodeServer({
    extensionsDir, dataDir,
    env: {
      SAFE_WEIGHTS_E2E_RESULTS: resultsFile,
      ...(selftestFail ? { SAFE_WEIGHTS_E2E_SELFTEST: 'fail' } : {}),
    },
  });
  let browser;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    const exit = new Promise((resolve) => {
      void page.exposeFunction('codeAutomationExit', (code) => resolve(Number(code)));
    });
    await page.exposeFunction('codeAutomationLog', (type, args) => {
      const text = formatHostLog(args);
      if (type === 'error' || process.env.SAFE_WEIGHTS_E2E_VERBOSE || /passing|failing|pending|✔|✓|\d+\)|Error|passed/.test(text)) {
        console.log(`[ext-host:${type}] ${text}`);
      }
    });
    const remote = (p) => `vscode-remote://127.0.0.1:${server.port}${p}`;
    const payload = [
      ['extensionDevelopmentPath', remote(root)],
      ['extensionTestsPath', remote(testsIndex)],
      ['skipWelcome', 'true'],
      ['skipReleaseNotes', 'true'],
    ];
    const url = `${server.url}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    log(`route A: VS Code on port ${server.port}, workspace ${workspace}${selftestFail ? ' (self-test: must fail)' : ''}`);
    await page.goto(url);
    let timer;
    const code = await Promise.race([
      exit,
      new Promise((resolve) => { timer = setTimeout(() => { log('route A: timed out waiting for the suite'); resolve(1); }, timeoutMs); }),
    ]);
    clearTimeout(timer);
    let results = null;
    if (existsSync(resultsFile)) results = JSON.parse(readFileSync(resultsFile, 'utf8'));
    log(`route A: VS Code exit code ${code}${results ? `; ${results.line}` : ''}`);
    return { code, results };
  } finally {
    if (browser) await browser.close().catch(() => undefined);
    await server.stop();
    if (!process.env.SAFE_WEIGHTS_E2E_KEEP) removeDir(work);
    else log(`kept ${work}`);
  }
}

if (process.argv[1] && process.argv[1].endsWith('route-a.mjs')) {
  ensurePrerequisites();
  const selftestFail = process.argv.includes('--selftest-fail');
  const { code } = await runRouteA({ selftestFail });
  process.exit(code === 0 ? 0 : 1);
}
