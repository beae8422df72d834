// @vscode/test-cli configuration (`npx vscode-test`): the extension-host suites of test/e2e/suite in a VS Code that
// @vscode/test-electron downloads into .vscode-test/ (needs the network; scripts/test-all.sh runs the same suites
// in code-server's VS Code instead, see scripts/e2e/). Compile first: npm run build && npm run compile-tests.
// Loading this file writes the fixture workspace the suites expect (scripts/e2e/fixtures.mjs) to .vscode-test/.
import { defineConfig } from '@vscode/test-cli';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFixtureWorkspace } from './scripts/e2e/fixtures.mjs';

const root = dirname(fileURLToPath(import.meta.url));
const workspace = join(root, '.vscode-test', 'workspace');
writeFixtureWorkspace(workspace);

export default defineConfig({
  label: 'e2e',
  files: 'out/test/e2e/suite/*.test.js',
  version: 'stable',
  extensionDevelopmentPath: root,
  workspaceFolder: workspace,
  launchArgs: ['--disable-extensions', '--skip-welcome', '--skip-release-notes', '--disable-workspace-trust'],
  mocha: { ui: 'bdd', timeout: 120_000, color: false },
});
