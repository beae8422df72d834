// The bundles in dist/ as they ship (needs `npm run build`). The .vsix carries dist/ without node_modules, so every
// file a bundle loads at run time must be in dist/ (or be a Node built-in): a static check of every require(),
// __dirname-relative path, Worker and child-process script the bundles name; then the built CLI, copied alone
// into an empty folder as the .vsix installs it, scans real joblib lzma / xz files and scipy MAT-files.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import picomatch from 'picomatch';
import { GeneratedFixtures, REPO_ROOT, generatedFixturesOrSkip, requireBuilt } from '../setup';

const DIST = join(REPO_ROOT, 'dist');
/** Modules a bundle may leave to its host: the extension host provides `vscode`. */
const HOST_PROVIDED: Record<string, string[]> = { 'client.js': ['vscode'] };

interface Ref { bundle: string; line: number; what: string; targets: string[]; anyOf: boolean; problem?: string }

const lineOf = (text: string, at: number): number => text.slice(0, at).split('\n').length;
const near = (text: string, at: number): string => text.slice(Math.max(0, at - 50), at + 90).replace(/\s+/g, ' ');
/** String literal arguments of `…(a, "b", 'c')` starting at `open` (the '('); undefined when one is not a literal. */
function literalArgs(text: string, open: number): { args: (string | undefined)[]; end: number } {
  let depth = 0, i = open;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) break;
  }
  const inner = text.slice(open + 1, i);
  const args = inner.split(',').map((a) => a.trim()).map((a) => {
    const m = /^(["'`])([^"'`$\\]*)\1$/.exec(a);
    return m ? m[2] : a === '__dirname' ? '__dirname' : undefined;
  });
  return { args, end: i };
}

/** Every run-time file reference in one bundle, resolved against the bundle's folder. */
function bundleRefs(bundle: string, dir = DIST): Ref[] {
  const text = readFileSync(join(dir, bundle), 'utf8');
  const refs: Ref[] = [];
  // 1. require("x"): a Node built-in, provided by the host, or a file next to the bundle
  for (const m of text.matchAll(/(?<![\w$.])require\s*\(\s*(["'`])([^"'`]*)\1\s*\)/g)) {
    const spec = m[2];
    if (isBuiltin(spec) || (HOST_PROVIDED[bundle] ?? []).includes(spec)) continue;
    const ref: Ref = { bundle, line: lineOf(text, m.index!), what: m[0], targets: [], anyOf: false };
    if (spec.startsWith('.') || spec.startsWith('/')) ref.targets.push(resolve(dir, spec));
    else ref.problem = `require("${spec}") of a package: the .vsix ships no node_modules`;
    refs.push(ref);
  }
  // 2. require(<computed>) and import(<computed>): resolved at run time next to the bundle, never checked by esbuild
  //    (esbuild prints calls without a space before the parenthesis; "import (" is prose in a comment)
  for (const m of text.matchAll(/(?<![\w$.])(require|import)\((?!["'])/g)) {
    refs.push({ bundle, line: lineOf(text, m.index!), what: near(text, m.index!), targets: [], anyOf: false, problem: `${m[1]}() of a computed path` });
  }
  for (const m of text.matchAll(/(?<![\w$.])import\((["'`])([^"'`]*)\1\)/g)) {
    if (!isBuiltin(m[2])) refs.push({ bundle, line: lineOf(text, m.index!), what: m[0], targets: [], anyOf: false, problem: `import("${m[2]}") of a package` });
  }
  // 3. paths built from __dirname: join(__dirname, "a", "b") with literals, a candidate list [join(..), join(..)].find(existsSync),
  //    or join(__dirname, file) inside a function whose every call site passes a literal file name
  for (const m of text.matchAll(/(?<![\w$.])__dirname(?![\w$])/g)) {
    const at = m.index!;
    const line = lineOf(text, at);
    const before = text.slice(Math.max(0, at - 40), at);
    if (/__dirname\s*\+\s*["']\/["']/.test(text.slice(at, at + 20))) continue;    // emscripten's scriptDirectory (a folder)
    const call = /(?:\bjoin|\bresolve)\)?\(\s*$/.exec(before);
    if (!call) { refs.push({ bundle, line, what: near(text, at), targets: [], anyOf: false, problem: '__dirname used in a way this check cannot follow' }); continue; }
    const open = at - (before.length - call.index) + call[0].lastIndexOf('(');
    const { args, end } = literalArgs(text, open);
    const rest = args.slice(1);
    if (rest.every((a) => a !== undefined)) {
      const target = join(dir, ...(rest as string[]));
      const lineText = text.slice(text.lastIndexOf('\n', at) + 1, text.indexOf('\n', end));
      const candidates = /\]\s*\.find\(/.test(lineText) && /existsSync/.test(lineText);
      const prev = refs[refs.length - 1];
      if (candidates && prev && prev.anyOf && prev.line === line) prev.targets.push(target);
      else refs.push({ bundle, line, what: near(text, at), targets: [target], anyOf: candidates });
      continue;
    }
    // join(__dirname, file): find the enclosing function and its call sites
    const fn = [...text.slice(0, at).matchAll(/function\s+([\w$]+)\s*\(/g)].pop();
    const sites = fn ? [...text.matchAll(new RegExp(`(?<![\\w$.])${fn[1].replace(/\$/g, '\\$')}\\(\\s*(["'])([^"']+)\\1`, 'g'))] : [];
    refs.push({
      bundle, line, what: near(text, at), targets: sites.map((s) => join(dir, s[2])), anyOf: false,
      problem: sites.length ? undefined : `join(__dirname, <computed>) in ${fn?.[1] ?? 'an unnamed function'} with no literal call site`,
    });
  }
  // 4. Workers and child-process scripts: a literal path must exist; a variable must come from a __dirname path (3.)
  const scriptArg = (arg: string, at: number, what: string): void => {
    const lit = /^(["'`])([^"'`]*)\1$/.exec(arg);
    if (lit) { refs.push({ bundle, line: lineOf(text, at), what, targets: [resolve(dir, lit[2])], anyOf: false }); return; }
    const defs = [...text.slice(0, at).matchAll(new RegExp(`(?:const|let|var)\\s+${arg.replace(/\$/g, '\\$')}\\s*=([^;]*);`, 'g'))];
    const def = defs.pop();
    if (!def || !/__dirname/.test(def[1])) refs.push({ bundle, line: lineOf(text, at), what, targets: [], anyOf: false, problem: `script ${arg} is not a path next to the bundle` });
  };
  for (const m of text.matchAll(/new\s+(?:[\w$]+\.)?Worker\(\s*([^,)]+)/g)) scriptArg(m[1].trim(), m.index!, near(text, m.index!));
  for (const m of text.matchAll(/\b(?:spawn|spawnSync|fork|execFile|execFileSync)\(\s*process\.execPath\s*,\s*\[([^\]]*)\]/g)) {
    const last = m[1].split(',').map((s) => s.trim()).pop() ?? '';
    scriptArg(last, m.index!, near(text, m.index!));
  }
  return refs;
}

/** Whether .vscodeignore keeps `rel` in the .vsix (its first line excludes everything, `!glob` lines keep). */
function packaged(rel: string): boolean {
  const lines = readFileSync(join(REPO_ROOT, '.vscodeignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  let kept = true;
  for (const l of lines) {
    if (l.startsWith('!')) { if (picomatch(l.slice(1), { dot: true })(rel)) kept = true; } else if (picomatch(l, { dot: true })(rel)) kept = false;
  }
  return kept;
}

describe('dist bundles: everything they load ships in dist/', function () {
  let bundles: string[];
  before(function () {
    requireBuilt(this, 'dist/cli.js');
    bundles = readdirSync(DIST).filter((f) => f.endsWith('.js'));
  });

  it('every require / import / __dirname path / Worker / child script of every bundle exists and is packaged', function () {
    const problems: string[] = [];
    let checked = 0;
    for (const b of bundles) {
      if (!packaged(`dist/${b}`)) problems.push(`dist/${b} is not kept by .vscodeignore`);
      for (const r of bundleRefs(b)) {
        checked++;
        const where = `dist/${r.bundle}:${r.line} (${r.what})`;
        if (r.problem) { problems.push(`${where}: ${r.problem}`); continue; }
        const present = r.targets.filter((t) => existsSync(t));
        if (r.anyOf ? present.length === 0 : present.length !== r.targets.length) {
          problems.push(`${where}: ${r.targets.filter((t) => !existsSync(t)).map((t) => relative(REPO_ROOT, t)).join(r.anyOf ? ' or ' : ', ')} missing`);
          continue;
        }
        for (const t of present) {
          const rel = relative(REPO_ROOT, t).split('\\').join('/');
          if (!packaged(rel)) problems.push(`${where}: ${rel} exists but .vscodeignore leaves it out of the .vsix`);
        }
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(checked >= 6, `only ${checked} references found: the patterns no longer match the bundles`);
  });

  it('the check itself finds a computed require, missing worker candidates, a package require and a worker of unknown origin', function () {
    // LZMA-JS's index.js as it was bundled into dist/lzma-worker.js, and the candidate list of a worker not built
    const tmp = mkdtempSync(join(tmpdir(), 'sw-check-'));
    try {
      writeFileSync(join(tmp, 'probe.js'), [
        'function load_lzma() { return require(require("path").join(__dirname, "src", "lzma_worker.js")).LZMA_WORKER; }',
        'const w = [path.join(__dirname, "nope-worker.js"), path.join(__dirname, "nopeWorker.js")].find((f) => fs.existsSync(f));',
        'var x = require("lzma");',
        'const t = new worker_threads.Worker(somewhere);',
      ].join('\n'));
      const refs = bundleRefs('probe.js', tmp);
      assert.ok(refs.some((r) => r.problem?.includes('computed')), 'computed require');
      assert.ok(refs.some((r) => r.anyOf && r.targets.length === 2 && r.targets.every((t) => !existsSync(t))), 'missing candidates');
      assert.ok(refs.some((r) => r.problem?.includes('package')), 'package require');
      assert.ok(refs.some((r) => r.problem?.includes('somewhere is not a path next to the bundle')), 'worker script of unknown origin');
      assert.ok(refs.some((r) => r.targets.some((t) => t.endsWith(join('src', 'lzma_worker.js')))), 'the join inside the computed require');
    } finally { rmSync(tmp, { recursive: true, force: true }); }
  });

  it('dist/terminateProcess.sh is executable (vscode-languageclient spawns it to end a stuck server)', function () {
    if (process.platform === 'win32') this.skip();
    assert.ok((statSync(join(DIST, 'terminateProcess.sh')).mode & 0o111) !== 0);
  });
});

interface FixManifest { files: Record<string, { kind: 'joblib' | 'matlab'; compression?: string; class?: string | null; version?: string }> }
interface CliFile { path: string; format: string; formatDetail?: string; verdict: string; summary: string; findings: { rule: string; severity: string; message: string }[]; globals: { module: string; name: string }[]; tensors?: number }

describe('the built CLI, installed alone, on real joblib lzma / xz files and MAT-files', function () {
  this.timeout(300_000);
  let fx: GeneratedFixtures<FixManifest>;
  let app: string;
  const scan = (file: string): CliFile => {
    const r = spawnSync(process.execPath, [join(app, 'dist', 'cli.js'), 'scan', '--format', 'json', file], { encoding: 'utf8', timeout: 120_000, cwd: app });
    assert.ok(r.status === 0 || r.status === 1, `exit ${r.status}: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { files: CliFile[] }).files[0];
  };

  before(function () {
    requireBuilt(this, 'dist/cli.js');
    fx = generatedFixturesOrSkip<FixManifest>(this, 'test/fixtures/gen_format_fixes.py', ['joblib', 'numpy', 'scipy', 'sklearn']);
    // what the .vsix installs: the packaged files of dist/ plus package.json and bin/, in a folder with no node_modules
    app = mkdtempSync(join(tmpdir(), 'sw-installed-'));
    for (const f of readdirSync(DIST)) {
      if (!packaged(`dist/${f}`)) continue;
      mkdirSync(join(app, 'dist'), { recursive: true });
      copyFileSync(join(DIST, f), join(app, 'dist', f));
    }
    copyFileSync(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
    for (let d = app; ; d = dirname(d)) {
      assert.ok(!existsSync(join(d, 'node_modules')), `${join(d, 'node_modules')} exists: the installed copy must not see any node_modules`);
      if (dirname(d) === d) break;
    }
  });
  after(function () { if (app) rmSync(app, { recursive: true, force: true }); });

  for (const codec of ['lzma', 'xz']) {
    for (const what of ['estimator', 'arrays']) {
      it(`joblib.dump(${what}, compress=('${codec}', 3)): decoded and not dangerous`, function () {
        const name = `${what}.joblib.${codec}`;
        const entry = fx.manifest.files[name];
        assert.ok(entry, `${name} in the manifest`);
        const r = scan(join(fx.dir, name));
        assert.notEqual(r.verdict, 'dangerous', `${r.summary}\n${JSON.stringify(r.findings, null, 1)}`);
        assert.equal(r.format, 'joblib');
        assert.equal(r.formatDetail, `joblib (${codec})`);
        assert.deepEqual(r.findings.filter((f) => /corrupt|decoder|missing/.test(f.message)), []);
        // the content was really read: the estimator's class, or the arrays as tensors
        if (entry.class) assert.ok(r.globals.some((g) => `${g.module}.${g.name}` === entry.class), `imports ${entry.class}`);
        else { assert.equal(r.verdict, 'safe', r.summary); assert.equal(r.tensors, 2); }
      });
    }
  }

  it('scipy.io.savemat v5 files: "MATLAB .mat file; no model loader unpickles it", not dangerous', function () {
    const mats = Object.entries(fx.manifest.files).filter(([, e]) => e.kind === 'matlab' && e.version === '5');
    assert.ok(mats.length >= 3);
    for (const [name] of mats) {
      const r = scan(join(fx.dir, name));
      assert.notEqual(r.verdict, 'dangerous', `${name}: ${r.summary}`);
      assert.equal(r.format, 'unknown', name);
      assert.equal(r.formatDetail, 'MATLAB MAT-file v5', name);
      assert.match(r.summary, /MATLAB \.mat file .*no model loader unpickles it/, name);
      assert.ok(r.findings.some((f) => f.rule === 'SW024'), name);
      assert.ok(!r.findings.some((f) => f.severity === 'dangerous'), name);
    }
  });
});
