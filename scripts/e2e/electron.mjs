// The route A suite on desktop VS Code through @vscode/test-electron, for machines that can download VS Code
// (these cannot: there, scripts/e2e/route-a.mjs runs the same suite in code-server's VS Code).
// Usage: npm i --no-save @vscode/test-electron && npm run build && npm run compile-tests && node scripts/e2e/electron.mjs
import { join } from 'node:path';
import { root, tempDir, removeDir } from './lib.mjs';
import { writeFixtureWorkspace } from './fixtures.mjs';

let runTests;
try {
  ({ runTests } = await import('@vscode/test-electron'));
} catch {
  console.error('@vscode/test-electron is not installed: npm i --no-save @vscode/test-electron');
  process.exit(2);
}
const work = tempDir('sw-electron-');
const workspace = writeFixtureWorkspace(join(work, 'workspace'));
try {
  await runTests({
    version: process.env.SAFE_WEIGHTS_VSCODE_VERSION || 'stable',
    extensionDevelopmentPath: root,
    extensionTestsPath: join(root, 'out', 'test', 'e2e', 'suite', 'index.js'),
    launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', '--skip-welcome', '--skip-release-notes'],
  });
  console.log('e2e (desktop VS Code): suite passed');
} catch (e) {
  console.error(`e2e (desktop VS Code): ${e instanceof Error ? e.message : e}`);
  process.exitCode = 1;
} finally {
  removeDir(work);
}
