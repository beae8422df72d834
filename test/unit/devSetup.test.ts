// The developer setup the field expects, checked as tools read it: .vscode/launch.json and tasks.json (F5 builds and
// starts an Extension Development Host), the @vscode/test-cli configuration (resolved by `vscode-test
// --list-configuration`, which downloads nothing), ESLint's flat config (`npm run lint` in scripts/test-all.sh,
// proven live on a probe file), and one build per setup.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, type ParseError } from 'jsonc-parser';
import { REPO_ROOT } from '../setup';

const jsonc = (rel: string): Record<string, unknown> => {
  const errors: ParseError[] = [];
  const v = parse(readFileSync(join(REPO_ROOT, rel), 'utf8'), errors, { allowTrailingComma: false }) as Record<string, unknown>;
  assert.deepEqual(errors, [], `${rel} parses`);
  return v;
};
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; devDependencies: Record<string, string> };

describe('developer setup: F5, tasks, @vscode/test-cli, ESLint, one build per setup', function () {
  this.timeout(300_000);

  it('launch.json: an extensionHost launch of this folder whose preLaunchTask builds; tasks name real npm scripts', function () {
    const launch = jsonc('.vscode/launch.json') as { configurations: { name: string; type: string; request: string; args?: string[]; preLaunchTask?: string; port?: number }[] };
    const tasks = jsonc('.vscode/tasks.json') as { tasks: { label: string; type: string; script?: string; dependsOn?: string[] }[] };
    const labels = new Set(tasks.tasks.map((t) => t.label));
    const run = launch.configurations.find((c) => c.type === 'extensionHost' && !c.args?.some((a) => a.startsWith('--extensionTestsPath')));
    assert.ok(run, 'an Extension Development Host launch');
    assert.ok(run.args?.includes('--extensionDevelopmentPath=${workspaceFolder}'));
    assert.equal(run.preLaunchTask, 'build');
    for (const c of launch.configurations) if (c.preLaunchTask) assert.ok(labels.has(c.preLaunchTask), `${c.name}: task ${c.preLaunchTask}`);
    for (const t of tasks.tasks) {
      if (t.type === 'npm') assert.ok(pkg.scripts[t.script!], `task ${t.label}: npm script ${t.script}`);
      for (const d of t.dependsOn ?? []) assert.ok(labels.has(d), `task ${t.label} depends on ${d}`);
    }
    assert.equal(tasks.tasks.find((t) => t.label === 'build')?.script, 'build');
    // the e2e launch points at the suite's run() entry, and the server attach port is the one the client opens
    const e2e = launch.configurations.find((c) => c.args?.some((a) => a.startsWith('--extensionTestsPath')));
    const testsPath = e2e!.args!.find((a) => a.startsWith('--extensionTestsPath='))!.split('=')[1].replace('${workspaceFolder}/', '');
    assert.ok(existsSync(join(REPO_ROOT, `${testsPath}.js`)), `${testsPath}.js (npm run compile-tests)`);
    const attach = launch.configurations.find((c) => c.request === 'attach');
    const client = readFileSync(join(REPO_ROOT, 'client', 'src', 'languageClient.ts'), 'utf8');
    assert.ok(client.includes(`--inspect=${attach?.port}`), `the client starts the server with --inspect=${attach?.port}`);
  });

  it('.vscode-test.mjs resolves with @vscode/test-cli: the e2e suites, this extension, a fixture workspace', function () {
    for (const d of ['@vscode/test-cli', '@vscode/test-electron']) assert.ok(pkg.devDependencies[d], d);
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'node_modules', '@vscode', 'test-cli', 'out', 'bin.mjs'), '--list-configuration'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const [entry] = JSON.parse(r.stdout) as { config: { label: string; workspaceFolder: string }; extensionDevelopmentPath: string[]; env: { VSCODE_TEST_OPTIONS: string } }[];
    assert.equal(entry.config.label, 'e2e');
    assert.deepEqual(entry.extensionDevelopmentPath, [REPO_ROOT]);
    const files = (JSON.parse(entry.env.VSCODE_TEST_OPTIONS) as { files: string[] }).files.map((f) => f.split(/[\\/]/).pop()).sort();
    for (const f of ['00-smoke.test.js', '10-code.test.js', '20-models.test.js']) assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
    assert.ok(existsSync(join(entry.config.workspaceFolder, 'app.py')), 'the fixture workspace was written');
  });

  it('ESLint: the flat config loads, reports a real problem in a probe file, and npm run lint is part of the test command', function () {
    const eslint = join(REPO_ROOT, 'node_modules', 'eslint', 'bin', 'eslint.js');
    const probe = 'export function f(a: number): number {\n  const unused = 1;\n  if (a == null) {}\n  return a;\n}\n';
    // linted through stdin under a path the config applies to
    const r = spawnSync(process.execPath, [eslint, '--format', 'json', '--stdin', '--stdin-filename', 'server/src/probe.ts'], {
      cwd: REPO_ROOT, input: probe, encoding: 'utf8', timeout: 120_000,
    });
    const out = JSON.parse(r.stdout) as { messages: { ruleId: string; severity: number }[] }[];
    const rules = out[0].messages.map((m) => `${m.ruleId}:${m.severity}`);
    assert.ok(rules.includes('no-empty:2'), rules.join(', '));
    assert.ok(rules.includes('@typescript-eslint/no-unused-vars:1'), rules.join(', '));
    assert.equal(r.status, 1, 'an error fails the run');
    assert.equal(pkg.scripts.lint, 'eslint .');
    const testAll = readFileSync(join(REPO_ROOT, 'scripts', 'test-all.sh'), 'utf8');
    assert.match(testAll, /^npm run lint$/m);
    assert.match(readFileSync(join(REPO_ROOT, '.ci', 'run'), 'utf8'), /bash scripts\/test-all\.sh/);
  });

  it('one build per setup: npm ci builds (postinstall), setup.sh does not build again, no prepare/prepack rebuild on pack', function () {
    const setup = readFileSync(join(REPO_ROOT, 'scripts', 'setup.sh'), 'utf8');
    const commands = setup.split('\n').filter((l) => !l.trim().startsWith('#'));
    assert.equal(commands.filter((l) => /npm ci\b/.test(l)).length, 1);
    assert.equal(commands.filter((l) => /npm run build|scripts\/build\.mjs/.test(l)).length, 0, 'npm ci already built');
    assert.equal(pkg.scripts.postinstall, 'node scripts/postinstall.mjs');
    assert.equal(pkg.scripts.prepare, undefined);
    assert.equal(pkg.scripts.prepack, undefined);
    const post = readFileSync(join(REPO_ROOT, 'scripts', 'postinstall.mjs'), 'utf8');
    assert.match(post, /scripts', 'build\.mjs'/);
    // the installed package has no sources: postinstall must do nothing there
    const tmp = mkdtempSync(join(tmpdir(), 'sw-post-'));
    try {
      const copy = join(tmp, 'scripts');
      mkdirSync(copy);
      writeFileSync(join(copy, 'postinstall.mjs'), post);
      const r = spawnSync(process.execPath, [join(copy, 'postinstall.mjs')], { cwd: tmp, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!existsSync(join(tmp, 'dist')));
    } finally { rmSync(tmp, { recursive: true, force: true }); }
  });
});
