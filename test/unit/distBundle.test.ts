// The bundles in dist/ as they ship (needs `npm run build`). The .vsix carries dist/ without node_modules, so every
// file a bundle loads at run time must be in dist/ (or be a Node built-in): a static check of every require(),
// __dirname-relative path, Worker and child-process script the bundles name; then the built CLI, copied alone
// into an empty folder as the .vsix installs it, scans real joblib lzma / xz files and scipy MAT-files.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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
    // node:x names a built-in of some Node version (node:sqlite is newer than 20): never a package or a file
    if (isBuiltin(spec) || spec.startsWith('node:') || (HOST_PROVIDED[bundle] ?? []).includes(spec)) continue;
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
    // JSDoc types ({import('./x').Y}, @typedef) in a bundled library's comments are no imports
    const lineStart = text.lastIndexOf('\n', m.index!) + 1;
    const before = text.slice(lineStart, m.index!);
    if (/^\s*(\*|\/\/|\/\*)/.test(before) || /[{|<]\s*$/.test(before)) continue;
    if (!isBuiltin(m[2])) refs.push({ bundle, line: lineOf(text, m.index!), what: m[0], targets: [], anyOf: false, problem: `import("${m[2]}") of a package` });
  }
  // 3. paths built from __dirname: join(__dirname, "a", "b") with literals, a candidate list [join(..), join(..)].find(existsSync),
  //    or join(__dirname, file) inside a function whose every call site passes a literal file name
  for (const m of text.matchAll(/(?<![\w$.])__dirname(?![\w$])/g)) {
    const at = m.index!;
    const line = lineOf(text, at);
    const before = text.slice(Math.max(0, at - 40), at);
    if (/__dirname\s*\+\s*["']\/["']/.test(text.slice(at, at + 20))) continue;    // emscripten's scriptDirectory (a folder)
    if (/\$\{\s*$/.test(before) && /^__dirname\s*\}/.test(text.slice(at, at + 20))) continue;   // named in a message
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
    // join(__dirname, <computed>) whose result is tested with existsSync right away: an optional lookup
    if (/existsSync\)?\(/.test(text.slice(end, end + 160)) || /existsSync\)?\(\s*(\(0,\s*)?[\w$.]*\)?\(\s*$/.test(text.slice(Math.max(0, at - 80), at))) continue;
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
    if (arg === '__filename') return;   // the bundle runs itself as the worker
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
function inVsix(rel: string): boolean {
  const lines = readFileSync(join(REPO_ROOT, '.vscodeignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  let kept = true;
  for (const l of lines) {
    if (l.startsWith('!')) { if (picomatch(l.slice(1), { dot: true })(rel)) kept = true; } else if (picomatch(l, { dot: true })(rel)) kept = false;
  }
  return kept;
}

/** Whether package.json's "files" whitelist puts `rel` in the npm package. */
function inNpm(rel: string): boolean {
  if (/^(package\.json|README(\.md)?|LICENSE|CHANGELOG(\.md)?)$/i.test(rel)) return true;   // npm always packs these
  const files = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { files?: string[] }).files ?? [];
  return files.some((f) => picomatch(f.endsWith('/') ? `${f}**` : f, { dot: true })(rel) || picomatch(`${f}/**`, { dot: true })(rel));
}
const PACKAGES = { '.vsix': inVsix, 'npm package': inNpm } as const;

describe('dist bundles: everything they load ships in dist/', function () {
  let bundles: string[];
  before(function () {
    requireBuilt(this, 'dist/cli.js');
    bundles = readdirSync(DIST).filter((f) => f.endsWith('.js'));
  });

  it('every require / import / __dirname path / Worker / child script of every bundle exists and is in the same package', function () {
    const problems: string[] = [];
    let checked = 0;
    for (const b of bundles) {
      const homes = Object.entries(PACKAGES).filter(([, has]) => has(`dist/${b}`));
      if (!homes.length) problems.push(`dist/${b} is in neither the .vsix (.vscodeignore) nor the npm package ("files")`);
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
          for (const [name, has] of homes) if (!has(rel)) problems.push(`${where}: ${rel} exists but the ${name} leaves it out`);
        }
      }
    }
    assert.deepEqual(problems, []);
    assert.ok(checked >= 6, `only ${checked} references found: the patterns no longer match the bundles`);
  });

  it('the check itself finds a computed require, missing worker candidates, a package require and a worker of unknown origin', function () {
    // LZMA-JS's index.js as it was bundled into the old dist/lzma-worker.js, and the candidate list of a worker not built
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
    // what the npm package installs: its files of dist/ plus package.json, in a folder with no node_modules
    app = mkdtempSync(join(tmpdir(), 'sw-installed-'));
    for (const f of readdirSync(DIST)) {
      if (!inNpm(`dist/${f}`)) continue;
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

/** Runs a command, failing the test with its output when it exits non-zero. */
function must(cmd: string, args: string[], cwd: string, timeout = 300_000): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, NO_COLOR: '1', npm_config_audit: 'false', npm_config_fund: 'false' } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status}: ${r.error?.message ?? ''}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}
const filesUnder = (dir: string, base = dir): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? filesUnder(join(dir, e.name), base) : [relative(base, join(dir, e.name)).split('\\').join('/')]);

/** Starts `bin` as an LSP server over stdio, sends initialize and returns the server's name from the result. */
async function lspInitialize(bin: string, cwd: string): Promise<{ name?: string; capabilities: Record<string, unknown> }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [bin], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { processId: process.pid, rootUri: null, capabilities: {} } });
    child.stdin.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    let buf = Buffer.alloc(0);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    return await new Promise((resolveP, reject) => {
      const timer = setTimeout(() => reject(new Error(`no initialize response in 60 s; stderr: ${stderr}`)), 60_000);
      child.on('exit', (code) => reject(new Error(`server exited ${code}: ${stderr}`)));
      child.stdout.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const head = buf.indexOf('\r\n\r\n');
          if (head < 0) return;
          const len = Number(/Content-Length: (\d+)/i.exec(buf.subarray(0, head).toString())?.[1]);
          if (buf.length < head + 4 + len) return;
          const msg = JSON.parse(buf.subarray(head + 4, head + 4 + len).toString()) as { id?: number; result?: { serverInfo?: { name?: string }; capabilities: Record<string, unknown> } };
          buf = buf.subarray(head + 4 + len);
          if (msg.id === 1 && msg.result) { clearTimeout(timer); resolveP({ name: msg.result.serverInfo?.name, capabilities: msg.result.capabilities }); return; }
        }
      });
    });
  } finally { child.kill(); }
}

describe('the packages as built: `npm run package` (.vsix) and `npm pack` (npm tarball), unpacked', function () {
  this.timeout(600_000);
  let tmp: string;
  let vsixFile: string;
  let vsixDir: string;   // the unpacked .vsix's extension/ folder
  let npmDir: string;    // the unpacked tarball's package/ folder
  let prefix: string;    // `npm install -g --prefix` of the tarball
  let pipeline: GeneratedFixtures<{ files: Record<string, { callable: string | null }> }>;
  let formats: GeneratedFixtures<FixManifest>;

  before(function () {
    requireBuilt(this, 'dist/cli.js');
    pipeline = generatedFixturesOrSkip(this, 'test/fixtures/gen_pipeline_fixtures.py', ['torch']);
    formats = generatedFixturesOrSkip<FixManifest>(this, 'test/fixtures/gen_format_fixes.py', ['joblib', 'numpy', 'scipy', 'sklearn']);
    tmp = mkdtempSync(join(tmpdir(), 'sw-packages-'));
    // the .vsix exactly as `npm run package` builds it (a fresh build first)
    must('npm', ['run', 'package'], REPO_ROOT);
    vsixFile = join(REPO_ROOT, 'safe-weights.vsix');
    must('unzip', ['-q', vsixFile, '-d', join(tmp, 'vsix')], tmp);
    vsixDir = join(tmp, 'vsix', 'extension');
    // the npm tarball of that same build (prepack would build a second time: --ignore-scripts)
    const packed = JSON.parse(must('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], REPO_ROOT)) as { filename: string }[];
    const tgz = join(tmp, packed[0].filename);
    mkdirSync(join(tmp, 'npm'));
    must('tar', ['-xzf', tgz, '-C', join(tmp, 'npm')], tmp);
    npmDir = join(tmp, 'npm', 'package');
    prefix = join(tmp, 'prefix');
    must('npm', ['install', '-g', '--prefix', prefix, '--offline', tgz], tmp);
  });
  after(function () { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

  it('every require / __dirname path / Worker / child script of every bundle exists inside each unpacked package', function () {
    const problems: string[] = [];
    let checked = 0;
    for (const [name, root] of [['.vsix', vsixDir], ['npm package', npmDir]] as const) {
      const dist = join(root, 'dist');
      const bundles = readdirSync(dist).filter((f) => f.endsWith('.js'));
      assert.ok(bundles.includes('server.js') && bundles.includes('zip-worker.js') && !bundles.includes('lzma-worker.js'), `${name}: ${bundles.join(', ')}`);
      for (const b of bundles) {
        for (const r of bundleRefs(b, dist)) {
          checked++;
          const where = `${name} dist/${r.bundle}:${r.line} (${r.what})`;
          if (r.problem) { problems.push(`${where}: ${r.problem}`); continue; }
          const present = r.targets.filter((t) => existsSync(t));
          if (r.anyOf ? present.length === 0 : present.length !== r.targets.length) {
            problems.push(`${where}: ${r.targets.filter((t) => !existsSync(t)).map((t) => relative(root, t)).join(r.anyOf ? ' or ' : ', ')} missing`);
          }
        }
        // wasm the bundle names (emscripten's locateFile / readFile of a name next to the script)
        const text = readFileSync(join(dist, b), 'utf8');
        for (const m of new Set(text.match(/[\w.-]+\.wasm(?=["'`])/g) ?? [])) {
          checked++;
          if (!existsSync(join(dist, m))) problems.push(`${name} dist/${b} names ${m}, which is not in the package`);
        }
      }
      if (process.platform !== 'win32') assert.ok((statSync(join(dist, 'terminateProcess.sh')).mode & 0o111) !== 0, `${name}: terminateProcess.sh executable`);
    }
    assert.deepEqual(problems, []);
    assert.ok(checked >= 15, `only ${checked} references found`);
  });

  it('the .vsix holds only what the extension loads (from package.json and, transitively, the bundles it loads)', function () {
    const all = filesUnder(vsixDir);
    const manifest = JSON.parse(readFileSync(join(vsixDir, 'package.json'), 'utf8')) as Record<string, unknown>;
    const reached = new Set<string>(['package.json', 'readme.md', 'changelog.md', 'LICENSE.txt']);
    // every path package.json names (main, grammars, language configurations, icon, walkthrough media ...)
    const walk = (v: unknown): void => {
      if (typeof v === 'string') { const rel = v.replace(/^\.\//, ''); if (all.includes(rel)) reached.add(rel); }
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(manifest);
    assert.ok(reached.has('dist/client.js'), 'package.json main');
    // then every file a reached script names (asAbsolutePath('dist/server.js'), join(media, 'inspector.js'), wasm, workers)
    for (let grew = true; grew;) {
      grew = false;
      for (const f of [...reached].filter((x) => /\.(js|md|css)$/.test(x))) {
        const text = readFileSync(join(vsixDir, f), 'utf8');
        for (const cand of all) {
          if (reached.has(cand)) continue;
          const base = cand.split('/').pop()!;
          if (new RegExp(`["'\`/(]${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["'\`)?#]`).test(text)) { reached.add(cand); grew = true; }
        }
      }
    }
    assert.deepEqual(all.filter((f) => !reached.has(f)), [], 'files in the .vsix that nothing loads');
    assert.ok(!all.some((f) => /\.map$|^src\/|^server\/|^client\/|^test\/|node_modules|^bin\//.test(f)), all.join('\n'));
    assert.ok(reached.has('dist/server.js') && reached.has('dist/tree-sitter-python.wasm') && reached.has('dist/terminateProcess.sh'), [...reached].join(', '));
  });

  it('the README states the .vsix size as measured (within 10%)', function () {
    const size = statSync(vsixFile).size;
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const m = /\.vsix[^\n]{0,80}?\b(\d+(?:\.\d+)?) (MB|KB)\b/.exec(readme);
    assert.ok(m, 'README: "… .vsix … N MB"');
    const stated = Number(m[1]) * (m[2] === 'MB' ? 1e6 : 1e3);
    assert.ok(Math.abs(stated - size) / size <= 0.1, `README says ${m[1]} ${m[2]}, the .vsix is ${(size / 1e6).toFixed(2)} MB`);
  });

  it('the npm tarball: public, the whitelisted files only, both bins executable, no dependencies to fetch', function () {
    const pkg = JSON.parse(readFileSync(join(npmDir, 'package.json'), 'utf8')) as { private?: boolean; bin: Record<string, string>; dependencies?: Record<string, string> };
    assert.notEqual(pkg.private, true);
    assert.deepEqual(Object.keys(pkg.bin).sort(), ['safe-weights', 'safe-weights-lsp']);
    assert.deepEqual(pkg.dependencies ?? {}, {}, 'dist/ bundles everything');
    const all = filesUnder(npmDir);
    assert.deepEqual(all.filter((f) => !/^(package\.json|README\.md|LICENSE|CHANGELOG\.md|bin\/[\w-]+\.js|scripts\/postinstall\.mjs|dist\/[\w-]+\.(js|wasm)|dist\/terminateProcess\.sh)$/.test(f)), []);
    for (const b of Object.values(pkg.bin)) assert.ok((statSync(join(npmDir, b)).mode & 0o111) !== 0, `${b} executable`);
    assert.ok(all.includes('dist/cli.js') && all.includes('dist/scan-worker.js') && all.includes('dist/server.js'));
  });

  it('installed from the tarball into an empty prefix: safe-weights --version, a scan, safe-weights-lsp answers initialize', async function () {
    const installed = join(prefix, 'lib', 'node_modules', 'safe-weights');
    assert.ok(!existsSync(join(installed, 'node_modules')), 'nothing was installed beside the package');
    const bin = join(prefix, 'bin', 'safe-weights');
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(must(bin, ['--version'], tmp).trim(), `safe-weights ${version}`);
    const files = [join(pipeline.dir, 'evil.pkl'), join(pipeline.dir, 'model.pt'), join(formats.dir, 'estimator.joblib.lzma')];
    const r = spawnSync(bin, ['scan', '--format', 'json', ...files], { cwd: tmp, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 1, r.stderr);
    const out = JSON.parse(r.stdout) as { files: CliFile[] };
    assert.deepEqual(out.files.map((f) => [f.path.split(/[\\/]/).pop(), f.verdict === 'dangerous']), [['evil.pkl', true], ['model.pt', false], ['estimator.joblib.lzma', false]]);
    assert.ok(out.files[0].globals.some((g) => `${g.module}.${g.name}` === 'posix.system'));
    assert.equal(out.files[2].formatDetail, 'joblib (lzma)', 'the lzma stream was decoded in the installed package');
    const init = await lspInitialize(join(prefix, 'bin', 'safe-weights-lsp'), tmp);
    assert.ok(init.capabilities.textDocumentSync !== undefined, JSON.stringify(init));
  });
});

describe('scripts/build.mjs fails on a missing entry point or runtime file instead of skipping it', function () {
  this.timeout(120_000);
  let tmp: string;
  beforeEach(function () {
    tmp = mkdtempSync(join(tmpdir(), 'sw-build-'));
    mkdirSync(join(tmp, 'scripts'));
    copyFileSync(join(REPO_ROOT, 'scripts', 'build.mjs'), join(tmp, 'scripts', 'build.mjs'));
    mkdirSync(join(tmp, 'node_modules'));
    symlinkSync(join(REPO_ROOT, 'node_modules', 'esbuild'), join(tmp, 'node_modules', 'esbuild'), 'dir');
  });
  afterEach(function () { rmSync(tmp, { recursive: true, force: true }); });
  const entries = (): string[] => [...readFileSync(join(REPO_ROOT, 'scripts', 'build.mjs'), 'utf8').matchAll(/\{ in: '([^']+)'/g)].map((m) => m[1]);

  it('an entry point that does not exist: exit 1, named', function () {
    const list = entries();
    assert.ok(list.length >= 6, list.join(', '));
    for (const e of list.slice(1)) { mkdirSync(dirname(join(tmp, e)), { recursive: true }); writeFileSync(join(tmp, e), 'export {};\n'); }
    const r = spawnSync(process.execPath, [join(tmp, 'scripts', 'build.mjs')], { cwd: tmp, encoding: 'utf8' });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.ok(r.stderr.includes(list[0]), r.stderr);
    assert.ok(!existsSync(join(tmp, 'dist', 'server.js')), 'nothing was built');
  });

  it('a wasm or script to copy that does not exist: exit 1, named', function () {
    for (const e of entries()) { mkdirSync(dirname(join(tmp, e)), { recursive: true }); writeFileSync(join(tmp, e), 'export {};\n'); }
    const r = spawnSync(process.execPath, [join(tmp, 'scripts', 'build.mjs')], { cwd: tmp, encoding: 'utf8' });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /web-tree-sitter\.wasm is missing/);
  });
});
