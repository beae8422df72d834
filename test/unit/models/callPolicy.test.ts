// The vetted-call policy on hand-assembled pickles: every expected verdict and rule comes from this file's own
// table (never from the engine). Payloads that real loaders run are proven in exploits.test.ts; these cover the
// policy's mechanics: invoked vs instantiated, higher-order callables, getattr, copyreg, caps, allow-globals.
import * as assert from 'node:assert/strict';
import type { ModelReport } from '../../../server/src/models/types';
import { classifyGlobal } from '../../../server/src/models/policy/index';
import { PickleAsm } from './pickleAsm';
import { EngineApi, describeReport, expectFinding, expectNoFinding, expectVerdict, loadEngine } from './engine';

type Build = (a: PickleAsm) => PickleAsm;
const p = (build: Build): Uint8Array => build(new PickleAsm().proto(2)).stop().bytes();
/** GLOBAL m.n, one str argument, REDUCE. */
const callStr = (m: string, n: string, arg: string): Build => (a) => a.global(m, n).str(arg).tuple1().reduce();

interface Case { name: string; bytes: Uint8Array; verdict: ModelReport['verdict']; rule?: string; global?: string; allow?: string[] }

const CASES: Case[] = [
  // invoked with chosen arguments, no list knows the callable: unvetted call
  { name: 'REDUCE of an unknown library function', bytes: p(callStr('typing', '_eval_type', 'x')), verdict: 'dangerous', rule: 'SW008', global: 'typing._eval_type' },
  { name: 'REDUCE of an unknown class (its __init__ runs)', bytes: p(callStr('logging', 'FileHandler', '/tmp/x')), verdict: 'dangerous', rule: 'SW008', global: 'logging.FileHandler' },
  { name: 'REDUCE of a user class', bytes: p(callStr('__main__', 'Net', 'x')), verdict: 'dangerous', rule: 'SW008', global: '__main__.Net' },
  { name: 'REDUCE with an empty tuple still calls', bytes: p((a) => a.global('mypkg.tools', 'reset').emptyTuple().reduce()), verdict: 'dangerous', rule: 'SW008', global: 'mypkg.tools.reset' },
  { name: 'INST calls', bytes: p((a) => a.mark().str('x').inst('mypkg.tools', 'run')), verdict: 'dangerous', rule: 'SW008', global: 'mypkg.tools.run' },
  { name: 'OBJ calls', bytes: p((a) => a.mark().global('mypkg.tools', 'run').str('x').obj()), verdict: 'dangerous', rule: 'SW008', global: 'mypkg.tools.run' },
  { name: 'NEWOBJ_EX with keyword arguments calls', bytes: p((a) => a.global('mypkg', 'Thing').emptyTuple().emptyDict().str('k').str('v').setitem().newobjEx()), verdict: 'dangerous', rule: 'SW008', global: 'mypkg.Thing' },
  // only instantiated: caution from any module
  { name: 'NEWOBJ of a user class + BUILD of a dict', bytes: p((a) => a.global('__main__', 'Net').emptyTuple().newobj().emptyDict().str('w').int(1).setitem().build()), verdict: 'caution', rule: 'SW002', global: '__main__.Net' },
  { name: 'NEWOBJ_EX without keyword arguments', bytes: p((a) => a.global('mypkg', 'Thing').emptyTuple().emptyDict().newobjEx()), verdict: 'caution', rule: 'SW002', global: 'mypkg.Thing' },
  { name: 'copyreg._reconstructor(cls, object, None)', bytes: p((a) => a.global('copyreg', '_reconstructor').global('mypkg', 'Net').global('builtins', 'object').none().tuple3().reduce()), verdict: 'caution', global: 'mypkg.Net' },
  { name: 'copyreg._reconstructor with another base runs that base\'s __init__', bytes: p((a) => a.global('copyreg', '_reconstructor').global('mypkg', 'Net').global('logging', 'FileHandler').str('/tmp/x').tuple3().reduce()), verdict: 'dangerous', rule: 'SW008', global: 'logging.FileHandler' },
  // vetted callables
  { name: 'numpy RandomState constructor (numpy.random._pickle is numpy\'s own module)', bytes: p(callStr('numpy.random._pickle', '__randomstate_ctor', 'MT19937')), verdict: 'caution', rule: 'SW002', global: 'numpy.random._pickle.__randomstate_ctor' },
  { name: 'sklearn Tree', bytes: p((a) => a.global('sklearn.tree._tree', 'Tree').int(4).int(2).int(1).tuple3().reduce()), verdict: 'caution', global: 'sklearn.tree._tree.Tree' },
  { name: 'builtins.frozenset of a list', bytes: p((a) => a.global('builtins', 'frozenset').emptyList().tuple1().reduce()), verdict: 'caution', global: 'builtins.frozenset' },
  { name: 'Python 2 spelling __builtin__.frozenset is vetted like builtins.frozenset', bytes: p((a) => a.global('__builtin__', 'frozenset').emptyList().tuple1().reduce()), verdict: 'caution', global: 'builtins.frozenset' },
  // imported, never called
  { name: 'builtins.len imported only', bytes: p((a) => a.global('builtins', 'len')), verdict: 'caution', rule: 'SW002', global: 'builtins.len' },
  { name: '__future__.annotations imported only', bytes: p((a) => a.global('__future__', 'annotations')), verdict: 'caution', rule: 'SW002', global: '__future__.annotations' },
  { name: 'os.system imported only is still dangerous', bytes: p((a) => a.global('os', 'system')), verdict: 'dangerous', rule: 'SW001', global: 'os.system' },
  { name: 'a dangerous module reached through another (pathlib.os)', bytes: p((a) => a.global('pathlib', 'os.system')), verdict: 'dangerous', rule: 'SW001' },
  { name: '_pickle inside a path that is not numpy\'s own module', bytes: p((a) => a.global('numpy.random._pickle.pickle', 'loads')), verdict: 'dangerous', rule: 'SW001' },
  // higher-order callables
  { name: 'list(map(f, items)) with an unvetted f', bytes: p((a) => a.global('builtins', 'list').global('builtins', 'map').global('mypkg.tools', 'run').mark().str('x').list().tuple2().reduce().tuple1().reduce()), verdict: 'dangerous', rule: 'SW008', global: 'mypkg.tools.run' },
  { name: 'itertools.starmap is never vetted', bytes: p((a) => a.global('itertools', 'starmap').global('builtins', 'set').emptyList().tuple2().reduce()), verdict: 'dangerous', rule: 'SW008', global: 'itertools.starmap' },
  { name: 'map calling a callable obtained at load time', bytes: p((a) => a.global('builtins', 'map').global('builtins', 'getattr').global('numpy', 'ndarray').str('tofile').tuple2().reduce().emptyList().tuple2().reduce()), verdict: 'dangerous', rule: 'SW003' },
  { name: 'list() iterating over an object of an unvetted class', bytes: p((a) => a.global('builtins', 'list').global('mypkg', 'Lazy').emptyTuple().newobj().tuple1().reduce()), verdict: 'dangerous', rule: 'SW008', global: 'builtins.list' },
  { name: 'calling a functools.partial object calls the function it wraps', bytes: p((a) => a.global('functools', 'partial').global('mypkg.tools', 'run').tuple1().reduce().str('x').tuple1().reduce()), verdict: 'dangerous', rule: 'SW008', global: 'mypkg.tools.run' },
  { name: 'functools.partial whose BUILD state swaps in another function', bytes: p((a) => a.global('functools', 'partial').global('builtins', 'str').tuple1().reduce().mark().global('mypkg.tools', 'run').emptyTuple().emptyDict().none().tuple().build().str('x').tuple1().reduce()), verdict: 'dangerous', rule: 'SW008', global: 'mypkg.tools.run' },
  // getattr
  { name: 'getattr of an enum member on a class (Python 3.11 enums)', bytes: p((a) => a.global('builtins', 'getattr').global('__main__', 'Color').str('RED').tuple2().reduce()), verdict: 'caution', global: 'builtins.getattr' },
  { name: 'getattr of a bound method on a vetted object the file built (OneCycleLR)', bytes: p((a) => a.global('torch.optim.lr_scheduler', 'OneCycleLR').emptyTuple().newobj().binput(0).emptyDict().str('anneal_func').global('builtins', 'getattr').binget(0).str('_annealing_cos').tuple2().reduce().setitem().build()), verdict: 'caution', global: 'builtins.getattr' },
  { name: 'getattr of a dunder attribute', bytes: p((a) => a.global('builtins', 'getattr').global('__main__', 'Color').str('__globals__').tuple2().reduce()), verdict: 'dangerous', rule: 'SW001', global: 'builtins.getattr' },
  { name: 'getattr with a computed name', bytes: p((a) => a.global('builtins', 'getattr').global('__main__', 'Color').global('builtins', 'str').str('RED').tuple1().reduce().tuple2().reduce()), verdict: 'dangerous', rule: 'SW001', global: 'builtins.getattr' },
  { name: 'getattr on an object of an unvetted class', bytes: p((a) => a.global('builtins', 'getattr').global('mypkg', 'Obj').emptyTuple().newobj().str('run').tuple2().reduce()), verdict: 'dangerous', rule: 'SW001', global: 'builtins.getattr' },
  { name: 'getattr reaching a denylisted member through a class', bytes: p((a) => a.global('builtins', 'getattr').global('torch', 'serialization').str('load').tuple2().reduce()), verdict: 'dangerous', rule: 'SW001', global: 'builtins.getattr' },
  { name: 'getattr imported, never called', bytes: p((a) => a.global('builtins', 'getattr')), verdict: 'dangerous', rule: 'SW001', global: 'builtins.getattr' },
  // the user's allow-globals
  { name: 'allow-globals vets the user\'s own callables', bytes: p(callStr('mypkg.models', 'build', 'x')), verdict: 'caution', rule: 'SW002', global: 'mypkg.models.build', allow: ['mypkg.models.*'] },
  { name: 'allow-globals never overrides the denylist', bytes: p(callStr('os', 'system', 'x')), verdict: 'dangerous', rule: 'SW001', global: 'os.system', allow: ['os.*'] },
  { name: 'allow-globals matches only what it names', bytes: p(callStr('mypkg.tools', 'run', 'x')), verdict: 'dangerous', rule: 'SW008', global: 'mypkg.tools.run', allow: ['mypkg.models.*'] },
];

describe('vetted-call policy', () => {
  let engine: EngineApi;
  before(function () { engine = loadEngine(this); });

  for (const c of CASES) {
    it(`${c.name} -> ${c.verdict}${c.rule ? ` (${c.rule})` : ''}`, async () => {
      const r = await engine.scanModelBytes(c.bytes, 'case.pkl', { allowGlobals: c.allow });
      expectVerdict(r, c.verdict);
      if (c.rule) expectFinding(r, { rule: c.rule, ...(c.global ? { global: c.global } : {}) });
      else if (c.global) assert.ok(r.globals.some((g) => `${g.module}.${g.name}` === c.global), describeReport(r));
    });
  }

  it('an unvetted call names the callable and its arguments, and the summary explains it', async () => {
    const r = await engine.scanModelBytes(p(callStr('typing', '_eval_type', '__import__("os")')), 'x.pkl');
    const f = expectFinding(r, { rule: 'SW008', global: 'typing._eval_type' });
    assert.match(f.message, /typing\._eval_type is called at offset \d+: unvetted call/);
    assert.ok(f.message.includes('("__import__(\\"os\\")",)'), f.message);
    assert.match(r.summary, /would call typing\._eval_type, which no vetted list knows: it can run code on your machine/);
  });

  it('an instantiated class given a BUILD state is named as running __setstate__ with it', async () => {
    const built = await engine.scanModelBytes(p((a) => a.global('__main__', 'Net').emptyTuple().newobj().emptyDict().str('w').int(1).setitem().build()), 'x.pkl');
    assert.match(built.findings.find((f) => f.global === '__main__.Net')!.message, /BUILD passes the state the file chose to its __setstate__/);
    const bare = await engine.scanModelBytes(p((a) => a.global('__main__', 'Net').emptyTuple().newobj()), 'x.pkl');
    assert.doesNotMatch(bare.findings.find((f) => f.global === '__main__.Net')!.message, /__setstate__/);
  });

  it('the report says which entry vetted or allowed each call', async () => {
    const vetted = await engine.scanModelBytes(p(callStr('numpy.random._pickle', '__randomstate_ctor', 'MT19937')), 'x.pkl');
    assert.equal(vetted.globals[0].vettedBy, 'numpy.random._pickle.__randomstate_ctor');
    assert.equal(vetted.globals[0].allowedBy, undefined);
    const user = await engine.scanModelBytes(p(callStr('mypkg.models', 'build', 'x')), 'x.pkl', { allowGlobals: ['mypkg.models.*'] });
    assert.equal(user.globals[0].allowedBy, 'mypkg.models.*');
    assert.match(user.findings.find((f) => f.rule === 'SW002')!.message, /allowed by your allow-globals entry "mypkg\.models\.\*"/);
  });

  it('the verdict sees a dangerous call past 2,000 caution findings (and the report says how many rows it left out)', async () => {
    const a = new PickleAsm().proto(2).mark();
    for (let i = 0; i < 2500; i++) a.global(`mypkg.m${i}`, 'C').emptyTuple().newobj();
    a.list().pop().global('os', 'system').str('echo').tuple1().reduce().stop();
    const r = await engine.scanModelBytes(a.bytes(), 'x.pkl');
    expectVerdict(r, 'dangerous');
    assert.equal(r.findings.length, 2000);
    assert.ok((r.findingsOmitted ?? 0) >= 501, `findingsOmitted ${r.findingsOmitted}`);
    assert.match(r.summary, /os\.system/);
  });

  it('globals past the 10,000-row cap are counted', async () => {
    const a = new PickleAsm().proto(2).mark();
    for (let i = 0; i < 10_050; i++) a.global(`mypkg.m${i}`, 'C');
    a.list().stop();
    const r = await engine.scanModelBytes(a.bytes(), 'x.pkl');
    assert.equal(r.globals.length, 10_000);
    assert.equal(r.globalsOmitted, 50);
  });

  it('the import tiers of the examples named in the issue', () => {
    const table: [string, string, string][] = [
      ['numpy.random._pickle', '__randomstate_ctor', 'caution'], ['numpy.random._pickle', '__generator_ctor', 'caution'],
      ['numpy.random._pickle', '__bit_generator_ctor', 'caution'], ['builtins', 'len', 'caution'], ['__future__', 'annotations', 'caution'],
      ['pathlib', 'os.system', 'dangerous'], ['builtins', 'eval', 'dangerous'], ['builtins', 'getattr', 'dangerous'],
      ['__torch__.torch.nn.modules.linear', 'Linear', 'caution'], ['types', 'SimpleNamespace', 'caution'], ['types', 'FunctionType', 'dangerous'],
    ];
    for (const [m, n, tier] of table) assert.equal(classifyGlobal(m, n).tier, tier, `${m}.${n}`);
  });

  it('vetting never makes a call safe-tier', async () => {
    const r = await engine.scanModelBytes(p(callStr('mypkg.models', 'build', 'x')), 'x.pkl', { allowGlobals: ['mypkg.*'] });
    expectVerdict(r, 'caution');
    expectNoFinding(r, { rule: 'SW008' });
  });
});
