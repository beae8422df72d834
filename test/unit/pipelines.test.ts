// Safe Weights in pipelines, run for real: the composite GitHub Action's steps (action.yml, parsed with PyYAML, each
// `run:` script executed with bash as the runner would, inputs passed the way the action passes them) on the npm
// tarball, and the pre-commit hook (.pre-commit-hooks.yaml, language: node) installed and run by Debian's
// `pre-commit` in a temporary git repository, on pickles written by Python's pickle and a torch.save checkpoint.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { GeneratedFixtures, IS_CI, PYTHON, REPO_ROOT, generatedFixturesOrSkip, requireBuilt } from '../setup';

interface Manifest { files: Record<string, { sha256: string; callable: string | null }> }
interface Step { name: string; id?: string; shell: string; env?: Record<string, string>; run: string }
interface Action { name: string; inputs: Record<string, { description: string; default?: string; required?: boolean }>; outputs: Record<string, { value: string }>; runs: { using: string; steps: Step[] } }
interface Run { code: number | null; stdout: string; stderr: string }

const yamlFile = (file: string): unknown => {
  const r = spawnSync(PYTHON, ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `PyYAML (python3-yaml) could not parse ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout);
};
const sh = (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeout = 120_000): Run => {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? `\n${r.error.message}` : '') };
};
const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' };

describe('GitHub Action (action.yml): a composite action that installs safe-weights and writes SARIF', function () {
  this.timeout(300_000);
  let action: Action;
  let tmp: string;
  let repo: string;
  let tgz: string;
  let fx: GeneratedFixtures<Manifest>;

  /** The value the runner gives an env entry: `${{ inputs.NAME }}` (the input, else its default) or `${{ github.action_path }}`. */
  const expr = (v: string, inputs: Record<string, string>): string => v.replace(/\$\{\{\s*([\w.-]+)\s*\}\}/g, (_, e: string) => {
    if (e === 'github.action_path') return REPO_ROOT;
    const m = /^inputs\.([\w-]+)$/.exec(e);
    assert.ok(m && action.inputs[m[1]], `expression ${e} is not a declared input`);
    return inputs[m[1]] ?? action.inputs[m[1]].default ?? '';
  });
  /** Runs one step's script with bash, its env evaluated, as the runner does (GITHUB_OUTPUT collects outputs). */
  const step = (s: Step, inputs: Record<string, string>, extraEnv: NodeJS.ProcessEnv): Run & { outputs: Record<string, string> } => {
    const out = join(tmp, `github-output-${Math.random().toString(36).slice(2)}`);
    writeFileSync(out, '');
    const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv, GITHUB_OUTPUT: out };
    for (const [k, v] of Object.entries(s.env ?? {})) env[k] = expr(String(v), inputs);
    const script = join(tmp, 'step.sh');
    writeFileSync(script, s.run);
    const r = sh('bash', ['--noprofile', '--norc', '-e', '-o', 'pipefail', script], repo, env);
    const outputs = Object.fromEntries(readFileSync(out, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    return { ...r, outputs };
  };

  before(function () {
    requireBuilt(this, 'dist/cli.js');
    fx = generatedFixturesOrSkip<Manifest>(this, 'test/fixtures/gen_pipeline_fixtures.py', ['torch', 'yaml']);
    action = yamlFile(join(REPO_ROOT, 'action.yml')) as Action;
    tmp = mkdtempSync(join(tmpdir(), 'sw-action-'));
    repo = join(tmp, 'repo');
    mkdirSync(repo);
    copyFileSync(join(fx.dir, 'evil.pkl'), join(repo, 'evil.pkl'));
    copyFileSync(join(fx.dir, 'model.pt'), join(repo, 'model.pt'));
    writeFileSync(join(repo, 'train.py'), 'import torch\nsd = torch.load("model.pt", weights_only=True)\n');
    const packed = JSON.parse(sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], REPO_ROOT).stdout) as { filename: string }[];
    tgz = join(tmp, packed[0].filename);
  });
  after(function () { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('parses as a composite action with the documented inputs; scripts take inputs only through env (no ${{ }} in a script)', function () {
    assert.equal(action.runs.using, 'composite');
    for (const i of ['paths', 'fail-on', 'sarif-file', 'baseline', 'package']) assert.ok(action.inputs[i]?.description, `input ${i}`);
    assert.equal(action.inputs['fail-on'].default, 'dangerous');
    assert.equal(action.inputs['sarif-file'].default, 'safe-weights.sarif');
    assert.deepEqual(Object.keys(action.outputs).sort(), ['exit-code', 'sarif-file']);
    assert.ok(action.runs.steps.length >= 2);
    for (const s of action.runs.steps) {
      assert.equal(s.shell, 'bash', s.name);
      assert.ok(!s.run.includes('${{'), `${s.name}: an expression inside a script is a script injection`);
    }
    const text = readFileSync(join(REPO_ROOT, 'action.yml'), 'utf8');
    assert.match(text, /github\/codeql-action\/upload-sarif/);
    assert.match(text, /security-events: write/);
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    assert.match(readme, /uses: safe-weights\/safe-weights@/, 'README shows a workflow using the action');
  });

  it('install step: by default npm installs safe-weights at the action\'s own version (npm recorded by a stand-in)', function () {
    const bin = join(tmp, 'fake-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'npm'), `#!/bin/sh\necho "$@" > "${join(tmp, 'npm-args')}"\n`);
    writeFileSync(join(bin, 'safe-weights'), '#!/bin/sh\necho "safe-weights stand-in"\n');
    chmodSync(join(bin, 'npm'), 0o755); chmodSync(join(bin, 'safe-weights'), 0o755);
    const install = action.runs.steps[0];
    const r = step(install, {}, { PATH: `${bin}${delimiter}${process.env.PATH}` });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(readFileSync(join(tmp, 'npm-args'), 'utf8').trim(), `install -g --no-audit --no-fund safe-weights@${version}`);
  });

  it('install + scan steps on the npm tarball: SARIF written, exit code and outputs follow fail-on and the baseline', function () {
    const prefix = join(tmp, 'prefix');
    const env = { PATH: `${join(prefix, 'bin')}${delimiter}${process.env.PATH}`, npm_config_prefix: prefix, npm_config_offline: 'true' };
    const [install, scan] = action.runs.steps;
    const i = step(install, { package: tgz }, env);
    assert.equal(i.code, 0, i.stdout + i.stderr);
    assert.match(i.stdout, /safe-weights \d+\.\d+\.\d+/);
    assert.ok(existsSync(join(prefix, 'bin', 'safe-weights')));

    let r = step(scan, { paths: 'evil.pkl\nmodel.pt train.py' }, env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.deepEqual(r.outputs, { 'sarif-file': 'safe-weights.sarif', 'exit-code': '1' });
    const sarif = JSON.parse(readFileSync(join(repo, 'safe-weights.sarif'), 'utf8')) as { version: string; runs: { results: { ruleId: string; locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }[] }[] };
    assert.equal(sarif.version, '2.1.0');
    const hits = sarif.runs[0].results.map((x) => `${x.locations[0].physicalLocation.artifactLocation.uri} ${x.ruleId}`);
    assert.ok(hits.includes('evil.pkl SW001'), hits.join('\n'));
    assert.ok(!hits.some((h) => h.startsWith('model.pt') || h.startsWith('train.py')), hits.join('\n'));

    r = step(scan, { paths: '.', 'fail-on': 'never', 'sarif-file': 'out/report.sarif' }, env);
    assert.equal(r.code, 2, 'a SARIF path in a missing folder is an I/O error');
    mkdirSync(join(repo, 'out'));
    r = step(scan, { paths: '.', 'fail-on': 'never', 'sarif-file': 'out/report.sarif' }, env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.outputs['exit-code'], '0');
    assert.ok(existsSync(join(repo, 'out', 'report.sarif')));

    assert.equal(sh(join(prefix, 'bin', 'safe-weights'), ['scan', '--write-baseline', 'sw-baseline.json', '.'], repo, { ...process.env, ...env }).code, 0);
    r = step(scan, { baseline: 'sw-baseline.json' }, env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    copyFileSync(join(fx.dir, 'evil_eval.pkl'), join(repo, 'new.pkl'));
    r = step(scan, { baseline: 'sw-baseline.json' }, env);
    assert.equal(r.code, 1, 'a new dangerous file fails despite the baseline');
  });
});

describe('pre-commit hook (.pre-commit-hooks.yaml, language: node) run by the real pre-commit', function () {
  this.timeout(1_200_000);
  let tmp: string;
  let proj: string;
  let fx: GeneratedFixtures<Manifest>;
  const env = (): NodeJS.ProcessEnv => ({ ...gitEnv, PRE_COMMIT_HOME: join(tmp, 'cache'), PRE_COMMIT_COLOR: 'never' });

  before(function () {
    const probe = spawnSync('pre-commit', ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      const msg = 'pre-commit is not installed (bash scripts/setup.sh installs Debian\'s pre-commit)';
      if (IS_CI) throw new Error(`CI=true: ${msg}`);
      console.warn(`\n  !!! SKIPPING: ${msg}\n`);
      this.skip();
    }
    fx = generatedFixturesOrSkip<Manifest>(this, 'test/fixtures/gen_pipeline_fixtures.py', ['torch']);
    tmp = mkdtempSync(join(tmpdir(), 'sw-precommit-'));
    // the hook repository as pre-commit fetches it: a git repository of this working tree's files (tracked and
    // new, not ignored; in CI that is the commit under test), committed once
    const hooks = join(tmp, 'hooks');
    const list = sh('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], REPO_ROOT, gitEnv);
    assert.equal(list.code, 0, list.stderr);
    for (const f of list.stdout.split('\0').filter(Boolean)) {
      if (!existsSync(join(REPO_ROOT, f)) || !lstatSync(join(REPO_ROOT, f)).isFile()) continue;   // deleted, or a link
      mkdirSync(dirname(join(hooks, f)), { recursive: true });
      copyFileSync(join(REPO_ROOT, f), join(hooks, f));
    }
    assert.equal(sh('git', ['init', '-q'], hooks, gitEnv).code, 0);
    sh('git', ['add', '-A'], hooks, gitEnv);
    assert.equal(sh('git', ['commit', '-q', '-m', 'the working tree'], hooks, gitEnv).code, 0);
    const rev = sh('git', ['rev-parse', 'HEAD'], hooks, gitEnv).stdout.trim();
    proj = join(tmp, 'project');
    mkdirSync(proj);
    assert.equal(sh('git', ['init', '-q'], proj, gitEnv).code, 0);
    writeFileSync(join(proj, '.pre-commit-config.yaml'), `repos:\n  - repo: ${hooks}\n    rev: ${rev}\n    hooks:\n      - id: safe-weights\n`);
  });
  after(function () { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('the manifest: language node, entry safe-weights scan, the files it selects', function () {
    const hooks = yamlFile(join(REPO_ROOT, '.pre-commit-hooks.yaml')) as { id: string; entry: string; language: string; files: string }[];
    const h = hooks.find((x) => x.id === 'safe-weights');
    assert.ok(h);
    assert.equal(h.language, 'node');
    assert.equal(h.entry, 'safe-weights scan');
    const re = new RegExp(h.files.replace(/^\(\?i\)/, ''), 'i');
    for (const f of ['model.pt', 'a/b/ckpt.PTH', 'x.pkl', 'est.joblib', 'w.safetensors', 'nb.ipynb', 'train.py', 'requirements-dev.txt', 'pyproject.toml', 'sub/poetry.lock']) assert.ok(re.test(f), f);
    for (const f of ['README.md', 'image.png', 'src/app.ts', 'pyproject.toml.bak']) assert.ok(!re.test(f), f);
  });

  it('a commit staging a malicious pickle and a pickle.load fails; the output names both', function () {
    copyFileSync(join(fx.dir, 'evil.pkl'), join(proj, 'evil.pkl'));
    writeFileSync(join(proj, 'train.py'), 'import pickle\nstate = pickle.load(open("x", "rb"))\n');
    sh('git', ['add', '.'], proj, gitEnv);
    const r = sh('pre-commit', ['run'], proj, env(), 1_100_000);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /Safe Weights \(unsafe model files and model loads\)\.+Failed/);
    assert.match(r.stdout, /DANGEROUS evil\.pkl/);
    assert.match(r.stdout, /train\.py:2:\d+: dangerous SW102/);
  });

  it('only staged files are scanned: a clean checkpoint and safe code pass while an unstaged malicious file waits', function () {
    sh('git', ['rm', '-q', '--cached', 'evil.pkl', 'train.py'], proj, gitEnv);
    copyFileSync(join(fx.dir, 'model.pt'), join(proj, 'model.pt'));
    writeFileSync(join(proj, 'load.py'), 'import torch\nsd = torch.load("model.pt", weights_only=True)\n');
    sh('git', ['add', 'model.pt', 'load.py', '.pre-commit-config.yaml'], proj, gitEnv);
    const r = sh('pre-commit', ['run'], proj, env(), 600_000);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Safe Weights \(unsafe model files and model loads\)\.+Passed/);
    // and git's own hook path: pre-commit install, then a commit of the malicious file is refused
    assert.equal(sh('pre-commit', ['install'], proj, env()).code, 0);
    assert.equal(sh('git', ['commit', '-q', '-m', 'clean'], proj, env(), 600_000).code, 0);
    sh('git', ['add', 'evil.pkl'], proj, gitEnv);
    const c = sh('git', ['commit', '-q', '-m', 'evil'], proj, env(), 600_000);
    assert.notEqual(c.code, 0, 'the commit was refused');
    assert.match(c.stdout + c.stderr, /DANGEROUS evil\.pkl/);
  });
});
