// A corpus of BENIGN files written by real libraries with their own save functions (torch, scikit-learn via
// joblib / pickle, pandas to_pickle, numpy, scipy, joblib): test/fixtures/gen_real_corpus.py. Nothing in it may
// scan as dangerous, and the plain weights (state dicts, .npy / .npz of plain dtypes) must scan as safe.
// Set SAFE_WEIGHTS_CORPUS_GLOBALS=/some/file.json to dump every global the corpus imports (called or not,
// which libraries wrote it, one example file): the raw material for the policy's vetted lists.
import * as assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelReport } from '../../../server/src/models/types';
import { GeneratedFixtures, generatedFixturesOrSkip } from '../../setup';
import { EngineApi, describeReport, loadEngine } from './engine';

const LIBRARIES = ['torch', 'sklearn', 'numpy', 'pandas', 'scipy', 'joblib'] as const;
type Library = (typeof LIBRARIES)[number];

interface CorpusEntry { library: Library; expect: 'safe' | 'not-dangerous'; note: string }
interface CorpusManifest {
  generator: string;
  versions: Record<string, string>;
  skipped?: string[];
  files: Record<string, CorpusEntry>;
}
interface CorpusGlobal { global: string; called: boolean; libraries: Library[]; example: string; files: number }

/** Every distinct module.name across the reports; `called` when any occurrence is called. */
function collectGlobals(manifest: CorpusManifest, reports: Map<string, ModelReport>): CorpusGlobal[] {
  const acc = new Map<string, { called: boolean; libraries: Set<Library>; example: string; calledExample?: string; files: Set<string> }>();
  for (const [name, r] of reports) {
    const lib = manifest.files[name]!.library;
    for (const g of r.globals) {
      const key = `${g.module}.${g.name}`;
      let a = acc.get(key);
      if (!a) acc.set(key, (a = { called: false, libraries: new Set(), example: name, files: new Set() }));
      a.libraries.add(lib);
      a.files.add(name);
      if (g.called) {
        a.called = true;
        a.calledExample ??= name;
      }
    }
  }
  return [...acc.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([global, a]) => ({
    global,
    called: a.called,
    libraries: LIBRARIES.filter((l) => a.libraries.has(l)),
    example: a.calledExample ?? a.example,
    files: a.files.size,
  }));
}

describe('real-library benign corpus (gen_real_corpus.py)', function () {
  this.timeout(600_000);
  let fx: GeneratedFixtures<CorpusManifest>;
  let engine: EngineApi;
  const reports = new Map<string, ModelReport>();
  const errors = new Map<string, string>();

  before(async function () {
    engine = loadEngine(this);
    fx = generatedFixturesOrSkip<CorpusManifest>(this, 'test/fixtures/gen_real_corpus.py', ['torch', 'numpy', 'sklearn', 'pandas', 'scipy', 'joblib']);
    for (const name of Object.keys(fx.manifest.files)) {
      try {
        reports.set(name, await engine.scanModelFile(join(fx.dir, name)));
      } catch (e) {
        errors.set(name, e instanceof Error ? e.stack ?? e.message : String(e));
      }
    }
    const counts = new Map<Library, Map<string, number>>();
    for (const [name, r] of reports) {
      const lib = fx.manifest.files[name]!.library;
      const c = counts.get(lib) ?? new Map<string, number>();
      counts.set(lib, c);
      c.set(r.verdict, (c.get(r.verdict) ?? 0) + 1);
    }
    const order = ['safe', 'caution', 'dangerous', 'invalid'];
    const parts = LIBRARIES.filter((l) => counts.has(l)).map((l) => {
      const c = counts.get(l)!;
      const total = [...c.values()].reduce((a, b) => a + b, 0);
      return `${l} ${total} (${order.filter((v) => c.has(v)).map((v) => `${v} ${c.get(v)!}`).join(', ')})`;
    });
    console.log(`      real corpus verdicts: ${parts.join(' | ')}${errors.size ? ` | ${errors.size} scans threw` : ''}`);
    const dump = process.env.SAFE_WEIGHTS_CORPUS_GLOBALS;
    if (dump) writeFileSync(dump, `${JSON.stringify(collectGlobals(fx.manifest, reports), null, 1)}\n`);
  });

  it('the manifest is large and every library contributes', function () {
    const entries = Object.values(fx.manifest.files);
    assert.ok(entries.length >= 150, `only ${entries.length} files (skipped: ${(fx.manifest.skipped ?? []).join(', ')})`);
    for (const lib of LIBRARIES) {
      const n = entries.filter((e) => e.library === lib).length;
      assert.ok(n >= 10, `${lib} contributes only ${n} files`);
    }
    assert.ok(entries.some((e) => e.expect === 'safe'), 'no file is expected safe');
  });

  it('every file scans without throwing', function () {
    assert.deepEqual([...errors.entries()].map(([n, e]) => `${n}: ${e}`), []);
  });

  it('no benign file is dangerous', function () {
    const offenders: string[] = [];
    for (const [name, r] of reports) {
      if (r.verdict !== 'dangerous') continue;
      const why = r.findings.filter((f) => f.severity === 'dangerous')
        .map((f) => `    ${f.rule} ${f.global ?? ''} @${f.member ? `${f.member}:` : ''}${f.offset ?? '?'} ${f.message}`);
      offenders.push(`  ${name} [${fx.manifest.files[name]!.library}] (${fx.manifest.files[name]!.note})\n${why.join('\n')}`);
    }
    assert.ok(offenders.length === 0, `${offenders.length} benign files scan as dangerous:\n${offenders.join('\n')}`);
  });

  it('every plain-weights file (expect: safe) is safe', function () {
    const problems: string[] = [];
    for (const [name, want] of Object.entries(fx.manifest.files)) {
      if (want.expect !== 'safe') continue;
      const r = reports.get(name);
      if (r && r.verdict !== 'safe') problems.push(`${name} (${want.note}): ${describeReport(r)}`);
    }
    assert.ok(problems.length === 0, `${problems.length} plain-weights files are not safe:\n${problems.join('\n\n')}`);
  });

  it('no trailing-data or pickle-start notes on what real torch writes (storages are raw bytes, never unpickled)', function () {
    const noisy: string[] = [];
    for (const [name, r] of reports) {
      if (!/^(pytorch|torchscript)/.test(r.format)) continue;
      for (const f of r.findings) if (f.rule === 'SW014') noisy.push(`${name}: ${f.message}`);
    }
    assert.ok(reports.size > 0 && [...reports.values()].some((r) => r.format === 'torchscript-zip'), 'the corpus holds TorchScript files');
    assert.deepEqual(noisy, []);
  });
});
