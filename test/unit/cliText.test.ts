// The CLI as a person reads it: names from scanned files cannot paint the terminal, the text output is grouped
// by verdict with the worst first and ends with what to do, the help lists every option the parser takes, a
// terminal of 0 columns does not crash the progress bar, and SIGTERM / SIGHUP stop a conversion like Ctrl-C.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertCli } from '../../server/src/cli/convert';
import { escapeTerminal, plainError } from '../../server/src/cli/terminalText';
import { ProgressBar, terminalColumns } from '../../server/src/cli/tty';
import { tuning } from '../../server/src/models/convert/convert';
import { REPO_ROOT, requireBuilt } from '../setup';
import { PickleAsm, osSystemPickle, torchLikeStateDict } from './models/pickleAsm';
import { torchZip } from './models/zipAsm';

describe('CLI text for people', function () {
  this.timeout(120_000);
  let cli: string;
  let dir: string;
  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  before(function () {
    cli = requireBuilt(this, 'dist/cli.js');
    dir = mkdtempSync(join(tmpdir(), 'sw-clitext-'));
  });
  after(function () { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('escapes control characters and text-reordering characters', () => {
    assert.equal(escapeTerminal('a\nb\x1b[32mSAFE\r\t\x00\x7f\x9b'), 'a\\nb\\x1b[32mSAFE\\r\\t\\0\\x7f\\x9b');
    assert.equal(escapeTerminal('evil\u202egnp.pkl'), 'evil\\u202egnp.pkl');
    assert.equal(escapeTerminal('model-ä.pt'), 'model-ä.pt', 'printable text stays as it is');
    const e = Object.assign(new Error("ENOENT: no such file or directory, open 'x.pt'"), { code: 'ENOENT', path: 'x.pt' });
    assert.equal(plainError(e), 'x.pt: no such file or directory');
  });

  it('a file name with a newline and ANSI codes is shown escaped, and cannot fake a safe line', () => {
    const sub = mkdtempSync(join(dir, 'inject-'));
    const name = 'evil.pkl\n\x1b[2K\x1b[32mSAFE\x1b[0m weights.pt';
    writeFileSync(join(sub, name), osSystemPickle('GLOBAL').bytes);
    const r = run('scan', sub);
    assert.equal(r.code, 1);
    assert.ok(!r.stdout.includes('\x1b'), `no escape character reaches the terminal:\n${JSON.stringify(r.stdout)}`);
    assert.ok(r.stdout.includes('evil.pkl\\n\\x1b[2K\\x1b[32mSAFE\\x1b[0m weights.pt'), r.stdout);
    assert.ok(!/^SAFE/m.test(r.stdout), 'no line starts with SAFE');
  });

  it('groups files by verdict, the worst first, and ends with what to do', () => {
    const sub = mkdtempSync(join(dir, 'groups-'));
    // path order: a (safe), b (caution), c (dangerous), d.py (dangerous code); the output puts dangerous first
    writeFileSync(join(sub, 'a-weights.pt'), torchZip(torchLikeStateDict(2)));
    writeFileSync(join(sub, 'b-estimator.pkl'), new PickleAsm().proto(2).global('sklearn.linear_model._base', 'LinearRegression')
      .emptyTuple().newobj().emptyDict().build().stop().bytes());
    writeFileSync(join(sub, 'c-evil.pkl'), osSystemPickle('STACK_GLOBAL').bytes);
    writeFileSync(join(sub, 'd-train.py'), 'import pickle\nobj = pickle.load(open("c-evil.pkl", "rb"))\n');
    const r = run('scan', sub);
    assert.equal(r.code, 1);
    const heads = [...r.stdout.matchAll(/^== (.+) \((\d+) files?\) ==$/gm)].map((m) => [m[1].split(':')[0], Number(m[2])]);
    assert.deepEqual(heads, [['Dangerous', 2], ['Caution', 1], ['Safe', 1]], r.stdout);
    const at = (s: string) => r.stdout.indexOf(s);
    assert.ok(at('c-evil.pkl') < at('b-estimator.pkl') && at('b-estimator.pkl') < at('a-weights.pt'), r.stdout);
    assert.ok(at('d-train.py:2:') > at('c-evil.pkl') && at('d-train.py:2:') < at('b-estimator.pkl'), 'dangerous code with the dangerous group');
    const last = r.stdout.trimEnd().split('\n');
    assert.match(last[last.length - 2], /^4 files scanned: 2 dangerous, 1 caution, 1 safe\.$/);
    assert.equal(last[last.length - 1],
      'Do not load the 1 dangerous model file: it runs code when loaded. Ask the publisher for .safetensors copies, or delete it. '
      + 'Load the 1 caution file only from a source you trust; safe PyTorch checkpoints convert with `safe-weights convert FILE`. '
      + 'Fix the loads flagged in 1 code file (each finding names its fix; the editor extension applies them).');
  });

  it('says what to do when nothing was found, or nothing is wrong', () => {
    const empty = mkdtempSync(join(dir, 'empty-'));
    writeFileSync(join(empty, 'notes.txt'), 'hello\n');
    const r = run('scan', empty);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^0 files scanned; 1 file skipped as not model files \(--verbose lists them\)\.\nNothing was checked: no model file or Python code was found\. Model files are recognised by their first bytes/m);
    const clean = mkdtempSync(join(dir, 'clean-'));
    writeFileSync(join(clean, 'w.pt'), torchZip(torchLikeStateDict(2)));
    assert.match(run('scan', clean).stdout, /\nNothing found that would run code when loaded\.\n$/);
  });

  it('help lists every option the scan and convert parsers take', () => {
    const help = run('--help');
    assert.equal(help.code, 0);
    const sources = ['server/src/cli/main.ts', 'server/src/cli/convert.ts'].map((f) => readFileSync(join(REPO_ROOT, f), 'utf8'));
    const options = new Set(sources.flatMap((s) => [...s.matchAll(/\b(?:arg|a) === '(--?[a-z][\w-]*)'/g)].map((m) => m[1])));
    for (const o of ['--format', '--fail-on', '--output', '--baseline', '--jobs', '--force', '--fsync', '-o', '-f']) assert.ok(options.has(o), `the parser scan found ${o}`);
    for (const o of options) {
      if (o === '--help' || o === '-h' || o === '--') continue;
      assert.match(help.stdout, new RegExp(`(^|[\\s,\\[])${o.replace(/-/g, '\\-')}([\\s,=\\]]|$)`, 'm'), `--help lists ${o}`);
    }
  });

  it('a terminal that reports 0 columns gets an 80-column progress bar, not a crash', () => {
    assert.equal(terminalColumns({ columns: 0 }), 80);
    assert.equal(terminalColumns({}), 80);
    assert.equal(terminalColumns({ columns: 132 }), 132);
    let written = '';
    const fake = { columns: 0, write: (s: string) => { written += s; return true; } } as unknown as NodeJS.WriteStream;
    const bar = new ProgressBar(fake, 2);
    bar.tick('a.pt'); bar.tick('b.pt'); bar.done();
    assert.match(written, /\[#+\] 2\/2 b\.pt/);
    assert.ok(written.split('\r').every((l) => l.length <= 100));
  });
});

describe('convert: stopped by a signal', function () {
  this.timeout(60_000);
  let dir: string;
  const saved = { chunk: tuning.chunk };
  before(() => { dir = mkdtempSync(join(tmpdir(), 'sw-convsig-')); writeFileSync(join(dir, 'w.pt'), torchZip(torchLikeStateDict(2))); });
  afterEach(() => { tuning.tensorChunk = undefined; tuning.chunk = saved.chunk; });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  for (const [sig, code] of [['SIGTERM', 143], ['SIGHUP', 129], ['SIGINT', 130]] as const) {
    it(`${sig} mid-write removes the temporary file and exits ${code}`, async () => {
      const before = process.listenerCount(sig);
      tuning.chunk = 4;   // one 16-byte tensor in four chunks: the conversion checks for a stop between them
      let sent = false;
      tuning.tensorChunk = (_name, chunk) => {
        if (!sent) {
          sent = true;
          assert.ok(readdirSync(dir).some((f) => f.endsWith('.tmp')), 'the temporary file exists while writing');
          process.emit(sig);   // as the signal would: the CLI's handler runs (process.emit does not end the test)
        }
        return chunk;
      };
      let err = '';
      const errStream = { isTTY: false, write: (s: string) => { err += s; return true; } } as unknown as NodeJS.WriteStream;
      const out = { write: () => true } as unknown as NodeJS.WritableStream;
      const rc = await convertCli([join(dir, 'w.pt'), '-o', join(dir, `out-${sig}.safetensors`)], out, errStream);
      assert.ok(sent, 'the hook ran');
      assert.equal(rc, code);
      assert.equal(err, `safe-weights convert: stopped by ${sig}, nothing written (the temporary file was removed)\n`);
      assert.deepEqual(readdirSync(dir).sort(), ['w.pt'], 'no temporary file, no output');
      assert.equal(process.listenerCount(sig), before, 'the handler is removed afterwards');
    });
  }
});
