// "Read what the loader reads" (issue #11): a pickle starts with any opcode CPython dispatches; a file that is
// also a pickle is judged by its more dangerous reading; a stream every unpickler rejects before importing or
// calling anything is 'invalid', while anything imported before an error, or an error only the pickle machine
// raises, stays dangerous. Every case is built here; where a real loader exists (/usr/bin/python3 with pickle,
// torch 1.13, numpy 1.24) a throwaway process loads the file and a marker file proves what that loader ran.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelReport } from '../../../server/src/models/types';
import { dispatchedOpcodes, startsPickle } from '../../../server/src/models/pickleStart';
import { PYTHON } from '../../setup';
import { EngineApi, describeReport, expectFinding, expectNoFinding, expectVerdict, loadEngine } from './engine';
import { OP, PickleAsm } from './pickleAsm';
import { LOADERS, proveLoad, systemCall } from './proof';
import { buildTar, buildZip, npy } from './zipAsm';

let engine: EngineApi;
let work: string;
const scan = (bytes: Uint8Array, name = 'model.bin'): Promise<ModelReport> => engine.scanModelBytes(bytes, name);
const markerFor = (name: string): string => join(work, `${name}.marker`);
const touch = (name: string): string => `touch ${markerFor(name)}`;

describe('readings: where a pickle starts, where every unpickler stops, files with two readings', function () {
  this.timeout(180_000);
  before(function () { engine = loadEngine(this); work = mkdtempSync(join(tmpdir(), 'sw-readings-')); });
  after(() => rmSync(work, { recursive: true, force: true }));

  describe('a pickle starts with any opcode CPython dispatches', () => {
    it('the start test is exactly the dispatch table of pickle.py and of _pickle.c', function () {
      // pickle.py: the keys of _Unpickler.dispatch; _pickle.c: every byte but those it calls an "invalid load key"
      const code = [
        'import pickle',
        'py = sorted(pickle._Unpickler.dispatch)',
        'c = []',
        'for b in range(256):',
        '    try: pickle.loads(bytes([b]))',
        '    except pickle.UnpicklingError as e:',
        '        if "invalid load key" in str(e): continue',
        '    except Exception: pass',
        '    c.append(b)',
        'print(py); print(c)',
      ].join('\n');
      const r = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const [py, c] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as number[]);
      assert.deepEqual(dispatchedOpcodes(), py, 'pickle.py dispatch table');
      assert.deepEqual(dispatchedOpcodes(), c, '_pickle.c dispatch');
      for (let b = 0; b < 256; b++) assert.equal(startsPickle(b), py!.includes(b), `byte 0x${b.toString(16)}`);
    });

    // first opcodes the old test (PROTO, MARK, GLOBAL, ...) did not know: the file was "unknown format" (caution)
    const starts: [string, (a: PickleAsm) => PickleAsm][] = [
      ['SHORT_BINUNICODE', (a) => a.shortBinunicode('x').pop()],
      ['LONG1', (a) => a.long1(5n).pop()],
      ['BINBYTES', (a) => a.binbytes('abc').pop()],
      ['SHORT_BINBYTES', (a) => a.shortBinbytes('abc').pop()],
      ['NEWTRUE', (a) => a.bool(true).pop()],
      ['NEWFALSE', (a) => a.bool(false).pop()],
      ['EMPTY_SET', (a) => a.emptySet().pop()],
      ['BINFLOAT', (a) => a.binfloat(1.5).pop()],
      ['BINUNICODE8', (a) => a.binunicode8('x').pop()],
      ['BYTEARRAY8', (a) => a.bytearray8('x').pop()],
    ];
    for (const [label, lead] of starts) {
      it(`a pickle whose first opcode is ${label} is read and os.system found (pickle.load runs it)`, async function () {
        const a = systemCall(lead(new PickleAsm()), touch(`start-${label}`));
        const p = proveLoad(a.bytes(), LOADERS.pickle, markerFor(`start-${label}`));
        assert.ok(p.ran, p.detail);
        const r = await scan(a.bytes(), 'model.pkl');
        assert.equal(r.format, 'pickle', describeReport(r));
        expectVerdict(r, 'dangerous');
        expectFinding(r, { rule: 'SW001', global: 'os.system', offset: a.at.g });
      });
    }

    it('a zip member without a .pkl name that starts with NEWTRUE is scanned (a zip tool that unpickles it runs it)', async function () {
      const a = systemCall(new PickleAsm().bool(true).pop(), touch('member'));
      const zip = buildZip([{ name: 'archive/data.pkl', data: new PickleAsm().proto(2).emptyDict().stop().bytes() }, { name: 'archive/extra/state', data: a.bytes() }]);
      const p = proveLoad(zip, LOADERS.zipMember, markerFor('member'), ['archive/extra/state']);
      assert.ok(p.ran, p.detail);
      const r = await scan(zip, 'model.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/extra/state', offset: a.at.g });
    });

    it('bytes after a pickle that start with SHORT_BINUNICODE are read as a second pickle', async function () {
      const first = new PickleAsm().proto(2).emptyDict().stop().bytes();
      const second = systemCall(new PickleAsm().shortBinunicode('x').pop(), touch('trailing'));
      const file = Buffer.concat([first, second.bytes()]);
      const p = proveLoad(file, LOADERS.pickleTwice, markerFor('trailing'));
      assert.ok(p.ran, p.detail);
      const r = await scan(file, 'model.pkl');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: first.length + second.at.g! });
    });
  });

  describe('invalid: every unpickler stops before anything is imported or called', () => {
    // each builder labels 'x' the opcode where every unpickler raises
    const rejected: [string, () => PickleAsm][] = [
      ['text whose first byte is BINGET (memo value not found)', () => new PickleAsm().label('x').raw(Buffer.from('hello, this is not a pickle\n'))],
      ['NEWTRUE NEWTRUE then a byte no unpickler dispatches', () => new PickleAsm().bool(true).bool(true).label('x').raw([0x00, 0x01])],
      ['EMPTY_LIST then a byte no unpickler dispatches', () => new PickleAsm().emptyList().label('x').raw([0x01, 0x00, 0x80, 0x00])],
      ['STOP on an empty stack', () => new PickleAsm().label('x').stop()],
      ['PROTO 9', () => new PickleAsm().label('x').proto(9).none().stop()],
      ['LIST without a MARK', () => new PickleAsm().label('x').list().stop()],
      ['UNICODE whose line has no newline (the stream ends)', () => new PickleAsm().label('x').raw(Buffer.from('Vabc'))],
      ['a str payload that is not UTF-8 even with surrogatepass, then os.system', () => systemCall(new PickleAsm().label('x').op(OP.SHORT_BINUNICODE, 3, 0xff, 0xfe, 0xfd).pop(), 'true')],
      ['STACK_GLOBAL of bytes operands', () => new PickleAsm().proto(4).shortBinbytes('os').shortBinbytes('system').label('x').stackGlobal().stop()],
      ['REDUCE of an int, then os.system', () => systemCall(new PickleAsm().proto(2).int(5).emptyTuple().label('x').reduce().pop(), 'true')],
    ];
    for (const [label, build] of rejected) {
      it(`${label}: invalid, SW004 where both unpicklers raise, and nothing runs`, async function () {
        const a = build();
        const bytes = a.bytes(), at = a.at.x!;
        for (const loader of [LOADERS.pickle, LOADERS.purePython]) {
          const p = proveLoad(bytes, loader, markerFor('never'));
          assert.notEqual(p.status, 0, `the loader accepted it: ${p.detail}`);
          assert.ok(!p.ran);
        }
        const r = await scan(bytes, 'model.pkl');
        expectVerdict(r, 'invalid');
        expectFinding(r, { rule: 'SW004', severity: 'invalid', offset: at });
        assert.match(r.summary, /cannot be loaded/, r.summary);
      });
    }

    it('a torch zip whose data.pkl every unpickler rejects is invalid (torch.load fails)', async function () {
      const zip = buildZip([{ name: 'archive/data.pkl', data: Uint8Array.from([0x88, 0x00]) }, { name: 'archive/version', data: Buffer.from('3\n') }]);
      const p = proveLoad(zip, LOADERS.torch, markerFor('never'));
      assert.notEqual(p.status, 0, p.detail);
      const r = await scan(zip, 'model.pt');
      expectVerdict(r, 'invalid');
      expectFinding(r, { rule: 'SW004', severity: 'invalid', member: 'archive/data.pkl', offset: 1 });
    });

    it('a rejected pickle hiding a zip that Python\'s zipfile reads: the archive is still scanned', async function () {
      const bad = systemCall(new PickleAsm().proto(2), 'true').bytes();
      const file = buildZip([{ name: 'archive/data.pkl', data: bad }], { prefix: Uint8Array.from([0x88, 0x00]) });
      const r = await scan(file, 'model.pkl');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW004', severity: 'invalid', offset: 1 });
      expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/data.pkl' });
    });
  });

  describe('dangerous: something ran, or an unpickler reads on where the machine stops', () => {
    // [label, marker name, the bytes (running `cmd`), the loader that runs them]
    const cases: [string, string, (cmd: string) => Uint8Array, keyof typeof LOADERS][] = [
      // nullifAI: the call happens, then the stream breaks
      ['os.system, then a byte no unpickler dispatches', 'nullifai', (cmd) => { const b = systemCall(new PickleAsm().proto(2), cmd).bytes(); return Buffer.concat([b.subarray(0, -1), Buffer.from([0xff])]); }, 'pickle'],
      // CPython decodes str payloads with 'surrogatepass'
      ['an encoded surrogate in a SHORT_BINUNICODE, then os.system', 'surrogate', (cmd) => systemCall(new PickleAsm().proto(4).op(OP.SHORT_BINUNICODE, 3, 0xed, 0xa0, 0x80).pop(), cmd).bytes(), 'pickle'],
      // int(x, 0) reads hex
      ['INT 0x10, then os.system', 'hexint', (cmd) => systemCall(new PickleAsm().raw(Buffer.from('I0x10\n')).pop(), cmd).bytes(), 'pickle'],
      // list[0] = 5 works
      ['SETITEM on a list, then os.system', 'setitem', (cmd) => systemCall(new PickleAsm().emptyList().int(1).append().int(0).int(5).setitem().pop(), cmd).bytes(), 'pickle'],
      // pickle.py runs the opcodes of a frame shorter than it declares
      ['a FRAME longer than the stream, os.system inside it', 'frame', (cmd) => { const inner = systemCall(new PickleAsm(), cmd); return new PickleAsm().proto(4).frame(inner.offset + 100).raw(inner.bytes()).bytes(); }, 'purePython'],
    ];
    for (const [label, name, build, loader] of cases) {
      it(`${label}: the ${loader} loader runs it, the verdict is dangerous`, async function () {
        const bytes = build(touch(name));
        const p = proveLoad(bytes, LOADERS[loader], markerFor(name));
        assert.ok(p.ran, p.detail);
        const r = await scan(bytes, 'model.pkl');
        expectVerdict(r, 'dangerous');
        expectNoFinding(r, { severity: 'invalid' });
      });
    }

    it('a module imported by the last line without its newline (pure-Python unpickler) is not "invalid"', async function () {
      // joblib's unpickler takes the last line without a newline: GLOBAL imports the module, then EOF
      const mod = `swmod_${process.pid}`;
      writeFileSync(join(work, `${mod}.py`), `open(${JSON.stringify(markerFor('import'))}, 'w').close()\n`);
      const bytes = Buffer.from(`c${mod}\nXY`);
      const p = proveLoad(bytes, LOADERS.purePython, markerFor('import'), [], { PYTHONPATH: work });
      assert.ok(p.ran, p.detail);
      const r = await scan(bytes, 'model.pkl');
      assert.notEqual(r.verdict, 'invalid', describeReport(r));
      assert.notEqual(r.verdict, 'safe', describeReport(r));
    });
  });

  describe('a file that is also a pickle is judged by its more dangerous reading', () => {
    /** A safetensors file whose 8 length bytes are `S'` + six more: STRING takes the JSON as its argument, the
     *  closing quote and the rest of the pickle are the bytes of a U8 tensor. */
    function safetensorsPolyglot(lenBytes: number[], tensorData: Uint8Array): Uint8Array {
      const len = Buffer.from(lenBytes);
      const n = Number(len.readBigUInt64LE(0));
      let json = JSON.stringify({ t: { dtype: 'U8', shape: [tensorData.length], data_offsets: [0, tensorData.length] } });
      json += ' '.repeat(n - json.length);
      return new Uint8Array(Buffer.concat([len, Buffer.from(json, 'latin1'), Buffer.from(tensorData)]));
    }

    it('safetensors + protocol-0 pickle: pickle.load and torch.load run it; dangerous with SW012, the header stays valid', async function () {
      const rest = systemCall(new PickleAsm().raw(Buffer.from("'\n0", 'latin1')), touch('safetensors'));
      const file = safetensorsPolyglot([0x53, 0x27, 0, 0, 0, 0, 0, 0], rest.bytes());
      for (const loader of [LOADERS.pickle, LOADERS.torch]) {
        const p = proveLoad(file, loader, markerFor('safetensors'));
        assert.ok(p.ran, p.detail);
      }
      const r = await scan(file, 'model.safetensors');
      assert.equal(r.format, 'safetensors', describeReport(r));
      expectNoFinding(r, { rule: 'SW020' });
      assert.deepEqual(r.tensors.map((t) => t.name), ['t']);
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system' });
      const f = expectFinding(r, { rule: 'SW012', severity: 'caution' });
      assert.match(f.message, /safetensors.*pickle/s, f.message);
    });

    it('a safetensors header that starts with PERSID: pickle.load raises at once (no persistent_load), no second reading', async function () {
      const tail = systemCall(new PickleAsm().raw(Buffer.from('\n', 'latin1')), touch('persid'));
      const file = safetensorsPolyglot([0x50, 0x10, 0, 0, 0, 0, 0, 0], tail.bytes());
      const p = proveLoad(file, LOADERS.pickle, markerFor('persid'));
      assert.ok(!p.ran, p.detail);
      const r = await scan(file, 'model.safetensors');
      expectVerdict(r, 'safe');
      expectNoFinding(r, { rule: 'SW012' });
      assert.equal(r.pickles.length, 0, describeReport(r));
    });

    it('GGUF + pickle (BINFLOAT over magic and version, UNICODE up to a newline in a metadata key): pickle.load runs it', async function () {
      // byte 9 is the tensor count's second byte: 'V' (0x56) means 22,016 tensors, each of one F32 element
      const count = 0x5600;
      const parts: Buffer[] = [];
      const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };
      const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
      const str = (s: Buffer) => Buffer.concat([u64(s.length), s]);
      const key = Buffer.concat([Buffer.from('x\n0'), Buffer.from(systemCall(new PickleAsm(), touch('gguf')).bytes())]);
      parts.push(Buffer.from('GGUF'), u32(3), u64(count), u64(1), str(key), u32(8), str(Buffer.from('v')));
      for (let i = 0; i < count; i++) parts.push(str(Buffer.from(`t${i}`)), u32(1), u64(1), u32(0), u64(32 * i));
      let head = Buffer.concat(parts);
      head = Buffer.concat([head, Buffer.alloc((32 - (head.length % 32)) % 32)]);
      const file = new Uint8Array(Buffer.concat([head, Buffer.alloc(32 * count)]));
      assert.equal(file[9], 0x56);
      const p = proveLoad(file, LOADERS.pickle, markerFor('gguf'));
      assert.ok(p.ran, p.detail);
      const r = await scan(file, 'model.gguf');
      assert.equal(r.format, 'gguf', describeReport(r));
      expectNoFinding(r, { rule: 'SW021' });
      assert.equal(r.tensorCount, count);
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system' });
      expectFinding(r, { rule: 'SW012', severity: 'caution' });
    });

    it('tar + pickle (the first member\'s name is a pickle): pickle.load runs it', async function () {
      const name = Buffer.from(systemCall(new PickleAsm(), touch('tar')).bytes()).toString('latin1');
      assert.ok(name.length < 100, 'the pickle fits the 100-byte name field');
      const file = buildTar([{ name, data: Buffer.from('x') }]);
      const p = proveLoad(file, LOADERS.pickle, markerFor('tar'));
      assert.ok(p.ran, p.detail);
      const r = await scan(file, 'model.pt');
      expectVerdict(r, 'dangerous');
      expectFinding(r, { rule: 'SW001', global: 'os.system', offset: 0 });
      expectFinding(r, { rule: 'SW012' });
    });

    it('a .npy file has no pickle reading (0x93 is STACK_GLOBAL on an empty stack)', async function () {
      const file = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(8));
      const p = proveLoad(file, LOADERS.pickle, markerFor('never'));
      assert.notEqual(p.status, 0);
      const r = await scan(file, 'x.npy');
      expectVerdict(r, 'safe');
      expectNoFinding(r, { rule: 'SW012' });
    });
  });
});
