// Hand-built adversarial pickles and containers. Each case states what a correct engine must report:
// the verdict plus the finding (rule, global, byte offset, member). Written from the issue's semantics and
// the pickle/zip formats, not from the engine's code.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import type { ModelReport } from '../../../server/src/models/types';
import { PYTHON } from '../../setup';
import { EngineApi, describeReport, expectFinding, expectNoFinding, expectVerdict, loadEngine } from './engine';
import { OP, PickleAsm, numpyArrayPickle, osSystemPickle, torchLikeStateDict } from './pickleAsm';
import { buildTar, buildZip, npy, torchZip } from './zipAsm';
import { proveLoad } from './proof';

let engine: EngineApi;
const scan = (bytes: Uint8Array, name = 'model.pkl'): Promise<ModelReport> => engine.scanModelBytes(bytes, name);

/** Compress with python's stdlib (bz2 / xz / lzma-alone); node has no bz2 or xz writer. */
function pyCompress(kind: 'bz2' | 'xz' | 'lzma', data: Uint8Array): Uint8Array {
  const code = {
    bz2: 'import bz2,sys; sys.stdout.buffer.write(bz2.compress(sys.stdin.buffer.read()))',
    xz: 'import lzma,sys; sys.stdout.buffer.write(lzma.compress(sys.stdin.buffer.read(), format=lzma.FORMAT_XZ))',
    lzma: 'import lzma,sys; sys.stdout.buffer.write(lzma.compress(sys.stdin.buffer.read(), format=lzma.FORMAT_ALONE))',
  }[kind];
  return new Uint8Array(execFileSync(PYTHON, ['-c', code], { input: Buffer.from(data) }));
}

describe('adversarial model files', function () {
  this.timeout(60_000);
  before(function () { engine = loadEngine(this); });

  describe('os.system through every import/call opcode', function () {
    it('GLOBAL + REDUCE, protocol 0 text (no PROTO opcode)', async function () {
      const a = new PickleAsm().label('g').global('os', 'system').mark().string('echo pwned').tuple().reduce().stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
      const g = r.globals.find((x) => x.module === 'os' && x.name === 'system');
      assert.ok(g && g.called && g.severity === 'dangerous' && g.offset === a.at.g, describeReport(r));
      assert.equal(r.weightsOnly.loads, false);
    });
    it('STACK_GLOBAL, protocol 4', async function () {
      const { bytes, offset } = osSystemPickle('STACK_GLOBAL');
      const r = await scan(bytes);
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset });
    });
    it('INST (import and call in one opcode)', async function () {
      const a = new PickleAsm().mark().string('echo pwned').label('g').inst('os', 'system').stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
      assert.ok(r.globals.some((x) => x.name === 'system' && x.called), describeReport(r));
    });
    it('OBJ', async function () {
      const a = new PickleAsm().proto(1).mark().label('g').global('os', 'system').string('echo pwned').obj().stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
    });
    it('NEWOBJ on subprocess.Popen', async function () {
      const a = new PickleAsm().proto(2).label('g').global('subprocess', 'Popen').str('id').tuple1().newobj().stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'subprocess.Popen', offset: a.at.g });
    });
    it('NEWOBJ_EX with keyword arguments', async function () {
      const a = new PickleAsm().proto(4).stackGlobalOf('subprocess', 'Popen', 'g')
        .str('id').tuple1().emptyDict().str('shell').bool(true).setitem().newobjEx().stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'subprocess.Popen', offset: a.at.g });
    });
    for (const [mod, name] of [['posix', 'system'], ['nt', 'system'], ['os', 'popen'], ['os', 'execv'], ['subprocess', 'check_output'],
      ['subprocess', 'run'], ['builtins', 'eval'], ['builtins', 'exec'], ['builtins', 'compile'], ['builtins', '__import__'],
      ['builtins', 'open'], ['importlib', 'import_module'], ['pickle', 'loads'], ['_pickle', 'loads'], ['torch', 'load'],
      ['torch.serialization', 'load'], ['numpy', 'load'], ['runpy', '_run_code'], ['socket', 'create_connection'],
      ['urllib.request', 'urlopen'], ['shutil', 'rmtree'], ['pty', 'spawn'], ['timeit', 'timeit'], ['operator', 'attrgetter'],
      ['webbrowser', 'open'], ['ctypes', 'CDLL'], ['marshal', 'loads'], ['types', 'FunctionType']] as const) {
      it(`${mod}.${name} is dangerous`, async function () {
        const { bytes, offset } = osSystemPickle('STACK_GLOBAL', mod, name);
        const r = await scan(bytes);
        expectVerdict(r, 'dangerous');
        expectFinding(r, { rule: 'SW001', global: `${mod}.${name}`, offset });
      });
    }
    it('an imported but never called os.system is still reported (called=false)', async function () {
      const a = new PickleAsm().proto(2).label('g').global('os', 'system').stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { global: 'os.system', offset: a.at.g });
      const g = r.globals.find((x) => x.module === 'os' && x.name === 'system');
      assert.ok(g && !g.called, describeReport(r));
    });
    it('py2 __builtin__.eval is mapped to builtins.eval', async function () {
      const a = new PickleAsm().proto(2).label('g').global('__builtin__', 'eval').string('1+1').tuple1().reduce().stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'builtins.eval', offset: a.at.g });
    });
  });

  describe('names built through strings of every protocol', function () {
    const styles: [string, (a: PickleAsm, s: string) => PickleAsm][] = [
      ['STRING', (a, s) => a.string(s)], ['BINSTRING', (a, s) => a.binstring(s)], ['SHORT_BINSTRING', (a, s) => a.shortBinstring(s)],
      ['UNICODE', (a, s) => a.unicode(s)], ['BINUNICODE', (a, s) => a.binunicode(s)], ['SHORT_BINUNICODE', (a, s) => a.shortBinunicode(s)],
      ['BINUNICODE8', (a, s) => a.binunicode8(s)],
    ];
    for (const [label, push] of styles) {
      it(`STACK_GLOBAL operands pushed with ${label}`, async function () {
        const a = new PickleAsm().proto(4);
        push(push(a, 'os'), 'system').label('g').stackGlobal().callWithString('id').stop();
        const r = await scan(a.bytes());
        expectVerdict(r, 'dangerous');
        expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
      });
    }
    for (const [label, push] of [['BINBYTES', (a: PickleAsm, s: string) => a.binbytes(s)], ['SHORT_BINBYTES', (a: PickleAsm, s: string) => a.shortBinbytes(s)],
      ['BINBYTES8', (a: PickleAsm, s: string) => a.binbytes8(s)], ['BYTEARRAY8', (a: PickleAsm, s: string) => a.bytearray8(s)]] as const) {
      // CPython's STACK_GLOBAL raises "STACK_GLOBAL requires str" (pickle.py and _pickle.c): nothing is imported
      it(`STACK_GLOBAL operands pushed as ${label} are never safe: every unpickler rejects them (invalid)`, async function () {
        const a = new PickleAsm().proto(5);
        push(push(a, 'os'), 'system').label('g').stackGlobal().callWithString('id').stop();
        const r = await scan(a.bytes());
        expectVerdict(r, 'invalid');
        expectFinding(r, { rule: 'SW004', severity: 'invalid', offset: a.at.g });
      });
    }
    it('STACK_GLOBAL mixing string opcodes (BINSTRING module, UNICODE name)', async function () {
      const a = new PickleAsm().proto(4).binstring('subprocess').unicode('getoutput').label('g').stackGlobal().callWithString('id').stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'subprocess.getoutput', offset: a.at.g });
    });
  });

  describe('memo, DUP and stack tricks', function () {
    it('names stored with PUT and read with GET (protocol 0 text memo)', async function () {
      const a = new PickleAsm().unicode('os').put(7).pop().unicode('system').put(8).pop()
        .get(7).get(8).label('g').stackGlobal().callWithString('id').stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
    });
    it('BINPUT/BINGET of the names', async function () {
      const a = new PickleAsm().proto(4).str('os').binput(1).str('system').binput(2).pop().pop()
        .binget(1).binget(2).label('g').stackGlobal().callWithString('id').stop();
      const r = await scan(a.bytes());
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
    });
    it('LONG_BINPUT/LONG_BINGET with a large index', async function () {
      const a = new PickleAsm().proto(4).str('os').longBinput(100000).str('system').longBinput(70000).pop().pop()
        .longBinget(100000).longBinget(70000).label('g').stackGlobal().callWithString('id').stop();
      const r = await scan(a.bytes());
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
    });
    it('MEMOIZE numbers memo slots by memo size (a miscount resolves the wrong name)', async function () {
      const a = new PickleAsm().proto(4).str('collections').memoize().str('os').memoize().str('OrderedDict').memoize()
        .str('system').memoize().pop().pop().pop().pop()
        .binget(1).binget(3).label('g').stackGlobal().callWithString('id').stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
      assert.ok(!r.globals.some((g) => g.module === 'collections' && g.called), describeReport(r));
    });
    it('a memo slot overwritten after a benign value is read with its last value', async function () {
      const a = new PickleAsm().proto(4).str('collections').binput(0).pop().str('os').binput(0).pop()
        .binget(0).str('system').label('g').stackGlobal().callWithString('id').stop();
      const r = await scan(a.bytes());
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
    });
    it('the global itself memoized, popped and called much later through BINGET', async function () {
      const a = new PickleAsm().proto(2).label('g').global('os', 'system').binput(9).pop();
      a.raw(torchLikeStateDict(2).slice(2, -1)).pop(); // a benign object in between
      a.binget(9).callWithString('id').stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
      assert.ok(r.globals.some((g) => g.name === 'system' && g.called), `memo read then REDUCE must count as a call\n${describeReport(r)}`);
    });
    it('DUP of the callable', async function () {
      const a = new PickleAsm().proto(2).label('g').global('os', 'system').dup().pop().callWithString('id').stop();
      const r = await scan(a.bytes());
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
    });
    it('POP_MARK does not hide a call made before it', async function () {
      const a = new PickleAsm().proto(2).mark().label('g').global('os', 'system').callWithString('id').popMark().none().stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
    });
  });

  describe('dotted names and attribute walking', function () {
    it('builtins.getattr', async function () {
      const { bytes, offset } = osSystemPickle('STACK_GLOBAL', 'builtins', 'getattr');
      const r = await scan(bytes);
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'builtins.getattr', offset });
    });
    it('os.system reached through an innocent module: torch.serialization + "os.system"', async function () {
      const { bytes, offset } = osSystemPickle('STACK_GLOBAL', 'torch.serialization', 'os.system');
      const r = await scan(bytes);
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: /system$/, offset });
    });
    it('collections + "OrderedDict.__class__" (dunder component)', async function () {
      const { bytes, offset } = osSystemPickle('STACK_GLOBAL', 'collections', 'OrderedDict.__class__');
      const r = await scan(bytes);
      expectVerdict(r, 'dangerous');
      expectFinding(r, { severity: 'dangerous', global: /OrderedDict\.__class__$/, offset });
    });
    it('torch._utils + "_rebuild_tensor_v2.__globals__" (allowlisted prefix, dunder tail)', async function () {
      const { bytes, offset } = osSystemPickle('STACK_GLOBAL', 'torch._utils', '_rebuild_tensor_v2.__globals__');
      const r = await scan(bytes);
      expectVerdict(r, 'dangerous');
      expectFinding(r, { severity: 'dangerous', offset });
    });
    it('dangerous module hidden in a dotted module path: "numpy.os" + "system"', async function () {
      const { bytes, offset } = osSystemPickle('STACK_GLOBAL', 'numpy.os', 'system');
      const r = await scan(bytes);
      expectVerdict(r, 'dangerous');
      expectFinding(r, { severity: 'dangerous', offset });
    });
    it('builtins + "object.__subclasses__"', async function () {
      const { bytes } = osSystemPickle('STACK_GLOBAL', 'builtins', 'object.__subclasses__');
      expectVerdict(await scan(bytes), 'dangerous');
    });
  });

  describe('unresolvable operands, extension codes, global state changes', function () {
    it('STACK_GLOBAL whose module is the result of a call -> SW003', async function () {
      const a = new PickleAsm().proto(4).stackGlobalOf('collections', 'OrderedDict').emptyTuple().reduce()
        .str('system').label('g').stackGlobal().callWithString('id').stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW003', offset: a.at.g });
    });
    it('STACK_GLOBAL whose name comes from a persistent id -> SW003', async function () {
      const a = new PickleAsm().proto(4).str('os').str('x').binpersid().label('g').stackGlobal().callWithString('id').stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW003', offset: a.at.g });
    });
    it('REDUCE whose callable is the result of another call -> SW003', async function () {
      const a = new PickleAsm().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce()
        .str('id').tuple1().label('r').reduce().stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW003' });
    });
    for (const [label, emit] of [['EXT1', (a: PickleAsm) => a.ext1(1)], ['EXT2', (a: PickleAsm) => a.ext2(0x1234)], ['EXT4', (a: PickleAsm) => a.ext4(0x12345678)]] as const) {
      it(`${label} -> SW005`, async function () {
        const a = new PickleAsm().proto(2).label('e');
        emit(a).callWithString('id').stop();
        const r = await scan(a.bytes());
        expectVerdict(r, 'dangerous');
        expectFinding(r, { rule: 'SW005', offset: a.at.e });
      });
    }
    it('BUILD applying state to an imported class -> SW006', async function () {
      const a = new PickleAsm().proto(2).global('collections', 'OrderedDict')
        .emptyDict().str('__reduce__').none().setitem().label('b').build().pop()
        .raw(torchLikeStateDict(2).slice(2));
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW006' });
    });
  });

  describe('malformed streams fail closed but keep what was seen', function () {
    it('FRAME longer than the data that follows -> SW004', async function () {
      const inner = new PickleAsm().raw(torchLikeStateDict(4).slice(2));
      const a = new PickleAsm().proto(4).frame(inner.offset + 50).raw(inner.bytes());
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW004' });
    });
    it('FRAME shorter than its opcodes (an opcode crosses the frame end) -> SW004', async function () {
      const body = new PickleAsm().str('hello world, this crosses').tuple1().stop();
      const a = new PickleAsm().proto(4).frame(5).raw(body.bytes());
      const r = await scan(a.bytes());
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW004' });
    });
    it('a correctly framed benign pickle is safe', async function () {
      const inner = new PickleAsm().raw(torchLikeStateDict(4).slice(2));
      const a = new PickleAsm().proto(4).framed(inner);
      const r = await scan(a.bytes());
      expectVerdict(r, 'safe');
    });
    it('truncated after os.system: SW004 plus the SW001 seen before', async function () {
      const { bytes, offset } = osSystemPickle('STACK_GLOBAL');
      const r = await scan(bytes.slice(0, offset + 3));
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW004' });
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset });
      assert.ok(r.pickles.some((p) => !p.complete), describeReport(r));
    });
    it('cut in the middle of an opcode argument', async function () {
      const a = new PickleAsm().proto(2).label('g').global('os', 'system').binunicode('echo pwned');
      const b = a.bytes().slice(0, a.offset - 4);
      const r = await scan(b);
      expectFinding(r, { rule: 'SW004' });
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
    });
    it('invalid opcode after os.system', async function () {
      const a = new PickleAsm().proto(2).label('g').global('os', 'system').raw([0xff]).stop();
      const r = await scan(a.bytes());
      expectFinding(r, { rule: 'SW004' });
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
    });
    it('stack underflow after os.system', async function () {
      const a = new PickleAsm().proto(2).label('g').global('os', 'system').pop().pop().pop().stop();
      const r = await scan(a.bytes());
      expectFinding(r, { rule: 'SW004' });
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
    });
    // every unpickler raises there before anything is imported or called: the file cannot be loaded ('invalid')
    it('TUPLE without a MARK -> SW004 invalid at the TUPLE', async function () {
      const r = await scan(new PickleAsm().proto(2).none().tuple().stop().bytes());
      expectVerdict(r, 'invalid');
      expectFinding(r, { rule: 'SW004', severity: 'invalid', offset: 3 });
    });
    it('GET of a memo slot never written -> SW004 invalid at the BINGET', async function () {
      const r = await scan(new PickleAsm().proto(2).binget(3).stop().bytes());
      expectVerdict(r, 'invalid');
      expectFinding(r, { rule: 'SW004', severity: 'invalid', offset: 2 });
    });
    it('a truncated benign state dict is not safe', async function () {
      const b = torchLikeStateDict(2);
      const r = await scan(b.slice(0, b.length - 10));
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW004' });
    });
    // a string longer than the stream: every unpickler raises (or reads to the end and hits EOF) before anything
    // runs, so 'invalid'; a FRAME longer than the stream: the pure-Python unpickler runs the short frame's opcodes
    for (const [label, emit, verdict] of [
      ['BINUNICODE8', (a: PickleAsm) => a.op(OP.BINUNICODE8, 0, 0, 0, 0, 0, 0, 0, 0x40), 'invalid'],
      ['BINBYTES8', (a: PickleAsm) => a.op(OP.BINBYTES8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), 'invalid'],
      ['BINUNICODE', (a: PickleAsm) => a.op(OP.BINUNICODE, 0xff, 0xff, 0xff, 0x7f), 'invalid'],
      ['FRAME', (a: PickleAsm) => a.op(OP.FRAME, 0, 0, 0, 0, 0, 0, 0, 0x40), 'dangerous'],
    ] as const) {
      it(`${label} declaring an enormous length is refused without allocating it`, async function () {
        const a = new PickleAsm().proto(4);
        emit(a);
        const before = process.memoryUsage().rss;
        const t0 = Date.now();
        const r = await scan(a.raw([1, 2, 3]).bytes());
        assert.ok(Date.now() - t0 < 2000, 'took too long');
        assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'memory grew by more than 64 MB');
        expectVerdict(r, verdict);
        expectFinding(r, { rule: 'SW004', severity: verdict });
      });
    }
  });

  describe('several pickles in one file', function () {
    it('a benign pickle followed by a malicious one after STOP', async function () {
      const first = torchLikeStateDict(2);
      const second = osSystemPickle('GLOBAL');
      const bytes = Buffer.concat([first, second.bytes]);
      const r = await scan(bytes);
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: first.length + second.offset });
      assert.ok(r.pickles.length >= 2, describeReport(r));
    });
    it('three pickles, the third malicious', async function () {
      const p = new PickleAsm().proto(2).int(1).stop().bytes();
      const bad = osSystemPickle('STACK_GLOBAL');
      const r = await scan(Buffer.concat([p, p, bad.bytes]));
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: 2 * p.length + bad.offset });
    });
  });

  describe('polyglots and zip containers', function () {
    it('a pickle with a zip appended is a pickle (magic at offset 0) with SW012', async function () {
      const pkl = torchLikeStateDict(2);
      const zip = torchZip(torchLikeStateDict(2));
      const r = await scan(Buffer.concat([pkl, zip]), 'model.pt');
      assert.ok(r.format === 'pickle' || r.format === 'pytorch-legacy', describeReport(r));
      expectFinding(r, { rule: 'SW012' });
      assert.notEqual(r.verdict, 'safe');
    });
    it('a malicious pickle hidden in front of a benign torch zip', async function () {
      const bad = osSystemPickle('GLOBAL');
      const r = await scan(Buffer.concat([bad.bytes, torchZip(torchLikeStateDict(2))]), 'model.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: bad.offset });
      expectFinding(r, { rule: 'SW012' });
    });
    it('a benign pickle in front of a zip whose data.pkl is malicious: the zip part is scanned too', async function () {
      const bad = osSystemPickle('GLOBAL');
      const r = await scan(Buffer.concat([torchLikeStateDict(2), torchZip(bad.bytes)]), 'model.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system' });
    });
    it('benign torch-style zip is safe, loads weights-only and lists its tensor', async function () {
      const r = await scan(torchZip(torchLikeStateDict(2)), 'model.bin');
      expectVerdict(r, 'safe');
      assert.equal(r.format, 'pytorch-zip');
      assert.equal(r.weightsOnly.loads, true, describeReport(r));
      assert.deepEqual(r.tensors.map((t) => [t.name, t.dtype, t.shape, t.bytes]), [['weight', 'float32', [2, 2], 16]]);
      assert.equal(r.findings.filter((f) => f.severity !== 'info').length, 0, describeReport(r));
    });
    it('benign data.pkl but malicious archive/extra.pkl', async function () {
      const bad = osSystemPickle('STACK_GLOBAL');
      const r = await scan(torchZip(torchLikeStateDict(2), { extra: [{ name: 'archive/extra.pkl', data: bad.bytes }] }), 'model.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/extra.pkl', offset: bad.offset });
    });
    it('a pickle in a member without a .pkl name (archive/data/1)', async function () {
      const bad = osSystemPickle('GLOBAL');
      const r = await scan(torchZip(torchLikeStateDict(2), { extra: [{ name: 'archive/data/1', data: bad.bytes }] }), 'model.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/data/1', offset: bad.offset });
    });
    it('root folder other than archive/', async function () {
      const ok = await scan(torchZip(torchLikeStateDict(2), { root: 'my_model-v2' }), 'weights.pth');
      expectVerdict(ok, 'safe');
      assert.equal(ok.format, 'pytorch-zip');
      assert.equal(ok.tensors.length, 1, describeReport(ok));
      const bad = osSystemPickle('GLOBAL');
      const r = await scan(torchZip(bad.bytes, { root: 'my_model-v2' }), 'weights.pth');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'my_model-v2/data.pkl', offset: bad.offset });
    });
    it('deflated data.pkl', async function () {
      expectVerdict(await scan(torchZip(torchLikeStateDict(2), { method: 8 }), 'm.pt'), 'safe');
      const bad = osSystemPickle('GLOBAL');
      const r = await scan(torchZip(bad.bytes, { method: 8 }), 'm.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/data.pkl', offset: bad.offset });
    });
    it('zip64 records and extra fields', async function () {
      expectVerdict(await scan(torchZip(torchLikeStateDict(2), { zip64: true }), 'm.pt'), 'safe');
      const r = await scan(torchZip(osSystemPickle('GLOBAL').bytes, { zip64: true, method: 8 }), 'm.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/data.pkl' });
    });
    it('local header name differs from the central directory -> SW010, both views scanned', async function () {
      const bad = osSystemPickle('GLOBAL');
      const zip = buildZip([
        { name: 'archive/data.pkl', data: torchLikeStateDict(2) },
        { name: 'archive/data/0', data: new Uint8Array(16) },
        { name: 'archive/notes.txt', localName: 'archive/evil.pkl', data: bad.bytes },
      ]);
      const r = await scan(zip, 'm.pt');
      expectFinding(r, { rule: 'SW010' });
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system' });
    });
    it('a benign name mismatch alone is caution, not safe', async function () {
      const zip = buildZip([
        { name: 'archive/data.pkl', localName: 'archive/DATA.pkl', data: torchLikeStateDict(2) },
        { name: 'archive/data/0', data: new Uint8Array(16) },
      ]);
      const r = await scan(zip, 'm.pt');
      expectFinding(r, { rule: 'SW010' });
      expectVerdict(r, 'caution');
    });
    it('duplicate member names -> SW011 and every copy is scanned', async function () {
      const bad = osSystemPickle('STACK_GLOBAL');
      const zip = buildZip([
        { name: 'archive/data.pkl', data: torchLikeStateDict(2) },
        { name: 'archive/data/0', data: new Uint8Array(16) },
        { name: 'archive/data.pkl', data: bad.bytes },
      ]);
      const r = await scan(zip, 'm.pt');
      expectFinding(r, { rule: 'SW011' });
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: bad.offset });
    });
    it('a duplicated name before data.pkl does not shift which member is read as data.pkl or as a storage', async function () {
      const zip = buildZip([
        { name: 'archive/notes.txt', data: Buffer.from('a') },
        { name: 'archive/notes.txt', data: Buffer.from('b') },
        { name: 'archive/data.pkl', data: torchLikeStateDict(2) },
        { name: 'archive/data/0', data: new Uint8Array(16) },
        { name: 'archive/version', data: Buffer.from('3\n') },
      ]);
      const r = await scan(zip, 'm.pt');
      expectFinding(r, { rule: 'SW011' });
      assert.equal(r.format, 'pytorch-zip');
      assert.deepEqual(r.tensors.map((t) => [t.name, t.storageKey]), [['weight', 'archive/data/0']]);
      assert.equal(r.findings.some((f) => f.rule === 'SW017'), false, 'storage archive/data/0 is found');
      assert.equal(r.metadata['torch.version'], '3');
    });
    it('wrong CRC and "encrypted" flag bit are ignored like torch does: still scanned', async function () {
      const bad = osSystemPickle('GLOBAL');
      const zip = torchZip(torchLikeStateDict(2), { extra: [{ name: 'archive/x', data: bad.bytes, crc: 0xdeadbeef, flags: 0x1 }] });
      const r = await scan(zip, 'm.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/x', offset: bad.offset });
    });
    it('format is decided from bytes, not from the file name', async function () {
      const r = await scan(torchZip(torchLikeStateDict(2)), 'weights.safetensors');
      assert.equal(r.format, 'pytorch-zip', describeReport(r));
      const p = await scan(osSystemPickle('GLOBAL').bytes, 'model.npy');
      expectVerdict(p, 'dangerous');
    });
  });

  describe('legacy torch, joblib and numpy', function () {
    it('legacy torch sequential file whose magic-number pickle is malicious', async function () {
      const bad = osSystemPickle('GLOBAL');
      const protoVer = new PickleAsm().proto(2).int(1001).stop().bytes();
      const sysInfo = new PickleAsm().proto(2).emptyDict().mark().str('little_endian').bool(true).setitems().stop().bytes();
      const keys = new PickleAsm().proto(2).emptyList().mark().str('0').appends().stop().bytes();
      const bytes = Buffer.concat([bad.bytes, protoVer, sysInfo, torchLikeStateDict(2), keys]);
      const r = await scan(bytes, 'old.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: bad.offset });
    });
    it('legacy torch: a listed storage no persistent id names is reported (torch 1.13 fails its assert there), type_sizes reads as text', async function () {
      const magic = new PickleAsm().proto(2).long1(0x1950a86a20f9469cfc6cn).stop().bytes();
      const protoVer = new PickleAsm().proto(2).int(1001).stop().bytes();
      const sysInfo = new PickleAsm().proto(2).emptyDict().mark().str('little_endian').bool(true)
        .str('type_sizes').emptyDict().mark().str('short').int(2).str('int').int(4).setitems().setitems().stop().bytes();
      const main = new PickleAsm().proto(2).emptyDict().stop().bytes();
      const keys = new PickleAsm().proto(2).emptyList().mark().str('7').appends().stop().bytes();
      const r = await scan(Buffer.concat([magic, protoVer, sysInfo, main, keys, Buffer.alloc(8)]), 'old.pt');
      assert.equal(r.format, 'pytorch-legacy', describeReport(r));
      assert.ok(r.findings.some((f) => f.rule === 'SW017' && /7 is listed but the pickle never names it/.test(f.message)), describeReport(r));
      assert.equal(r.metadata['sys_info.type_sizes'], 'short=2, int=4');
    });
    const legacyTar = (pickleMember: Uint8Array, storagesMember?: Uint8Array): Uint8Array => buildTar([
      { name: 'sys_info', data: new PickleAsm().proto(2).emptyDict().mark().str('little_endian').bool(true).str('protocol_version').int(1001).setitems().stop().bytes() },
      { name: 'pickle', data: pickleMember },
      { name: 'tensors', data: new PickleAsm().proto(2).int(0).stop().bytes() },
      // storages: pickle(count), per storage a pickle + raw bytes, then pickle(storage views)
      { name: 'storages', data: Buffer.concat([storagesMember ?? new PickleAsm().proto(2).int(0).stop().bytes(), new PickleAsm().proto(2).emptyList().stop().bytes()]) },
    ]);
    it('legacy torch tar format: benign is not dangerous, malicious "pickle" member is found', async function () {
      const ok = await scan(legacyTar(new PickleAsm().proto(2).emptyDict().mark().str('epoch').int(3).setitems().stop().bytes()), 'old.pt');
      assert.equal(ok.format, 'pytorch-legacy-tar', describeReport(ok));
      assert.notEqual(ok.verdict, 'dangerous', describeReport(ok));
      const bad = osSystemPickle('STACK_GLOBAL');
      const r = await scan(legacyTar(bad.bytes), 'old.pt');
      assert.equal(r.format, 'pytorch-legacy-tar');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'pickle', offset: bad.offset });
    });
    it('legacy torch tar format: malicious pickle at the head of the "storages" member', async function () {
      const bad = osSystemPickle('GLOBAL');
      const r = await scan(legacyTar(new PickleAsm().proto(2).emptyDict().stop().bytes(), bad.bytes), 'old.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'storages', offset: bad.offset });
    });
    for (const kind of ['gzip', 'zlib', 'bz2', 'xz', 'lzma'] as const) {
      it(`${kind}-wrapped joblib-style pickle`, async function () {
        const bad = osSystemPickle('STACK_GLOBAL');
        const wrap = (b: Uint8Array): Uint8Array => (kind === 'gzip' ? gzipSync(b) : kind === 'zlib' ? deflateSync(b) : pyCompress(kind, b));
        const r = await scan(wrap(bad.bytes), `model.joblib`);
        assert.equal(r.format, 'joblib', describeReport(r));
        expectVerdict(r, 'dangerous');
        expectFinding(r, { rule: 'SW001', global: 'os.system' });
        const ok = await scan(wrap(numpyArrayPickle()), 'model.joblib');
        expectVerdict(ok, 'safe');
      });
    }
    // small bz2 inputs are decoded whole in memory (up to 8 MB out); a bigger output or a bigger input is streamed
    for (const [what, pad] of [['expanding past 8 MB', "b'\\0' * 9_000_000"], ['larger than 1 MB compressed', 'os.urandom(1_500_000)']]) {
      it(`bz2-wrapped pickle ${what}: os.system after the padding is still found`, async function () {
        const marker = join(tmpdir(), `sw-bz2-marker-${process.pid}`);
        const code = [
          'import bz2, os, pickle, sys',
          'class P:',
          `    def __reduce__(self): return (os.system, (${JSON.stringify(`touch ${marker}`)},))`,
          `sys.stdout.buffer.write(bz2.compress(pickle.dumps((${pad}, P()), protocol=4)))`,
        ].join('\n');
        const bytes = new Uint8Array(execFileSync(PYTHON, ['-c', code], { maxBuffer: 1 << 26 }));
        // the payload runs when the file is read as joblib reads a .bz2 (bz2.open, then pickle.load)
        const proof = proveLoad(bytes, 'import bz2, pickle, sys\npickle.load(bz2.open(sys.argv[1]))', marker);
        rmSync(marker, { force: true });
        assert.ok(proof.ran, proof.detail);
        const r = await scan(bytes, 'model.joblib');
        expectVerdict(r, 'dangerous');
        assert.ok(r.findings.some((f) => f.rule === 'SW001' && /system/.test(f.message)), describeReport(r));
        assert.ok(!r.findings.some((f) => f.rule === 'SW004'), describeReport(r));
      });
    }
    it('numpy reconstruct pickle stays safe', async function () {
      const r = await scan(numpyArrayPickle(), 'arr.pkl');
      expectVerdict(r, 'safe');
    });
    it('npy object array whose embedded pickle is malicious', async function () {
      const bad = osSystemPickle('GLOBAL');
      const r = await scan(npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", bad.bytes), 'x.npy');
      assert.equal(r.format, 'numpy-npy');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system' });
    });
    it('npz holding a malicious object array', async function () {
      const bad = osSystemPickle('GLOBAL');
      const zip = buildZip([
        { name: 'w.npy', data: npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(8)) },
        { name: 'o.npy', data: npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", bad.bytes), method: 8 },
      ]);
      const r = await scan(zip, 'x.npz');
      assert.equal(r.format, 'numpy-npz', describeReport(r));
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system' });
    });
    it('plain npy is safe and lists its array', async function () {
      const r = await scan(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", new Uint8Array(24)), 'x.npy');
      expectVerdict(r, 'safe');
      assert.deepEqual(r.tensors.map((t) => [t.dtype, t.shape]), [['float32', [2, 3]]]);
    });
    it('npy shorter than its header declares -> invalid (SW023)', async function () {
      const r = await scan(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }", new Uint8Array(24)), 'x.npy');
      expectVerdict(r, 'invalid');
      expectFinding(r, { rule: 'SW023' });
    });
  });

  describe('benign pickles stay safe', function () {
    for (const proto of [2, 3, 4, 5]) {
      it(`torch-like state dict, protocol ${proto}`, async function () {
        const r = await scan(torchLikeStateDict(proto), 'sd.pkl');
        expectVerdict(r, 'safe');
        expectNoFinding(r, { severity: 'dangerous' });
        expectNoFinding(r, { severity: 'caution' });
      });
    }
    it('an unknown class is caution and named', async function () {
      const a = new PickleAsm().proto(2).label('g').global('sklearn.linear_model._base', 'LinearRegression').emptyTuple().newobj()
        .emptyDict().build().stop();
      const r = await scan(a.bytes());
      expectVerdict(r, 'caution');
      expectFinding(r, { rule: 'SW002', global: 'sklearn.linear_model._base.LinearRegression', offset: a.at.g });
    });
  });
});
