// The converter's verification steps, each broken on purpose through a fault-injection hook (convert.ts `tuning`):
// the block read-back, the per-tensor byte count and the header / size re-read. Each test fails when its step is
// removed (the conversion would then succeed with a wrong file). Also what the converter refuses and why.
// Hand-assembled checkpoints: no torch needed.
import * as assert from 'node:assert/strict';
import { existsSync, fstatSync, ftruncateSync, mkdtempSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertToSafetensors, ConvertRefused, isReadingDisagreement, refusalReason, tuning } from '../../../server/src/models/convert/convert';
import { MODEL_RULE_BY_ID, type ModelRule } from '../../../server/src/models/rules';
import type { Finding, ModelReport } from '../../../server/src/models/types';
import { PickleAsm, osSystemPickle } from './pickleAsm';
import { buildZip } from './zipAsm';

/** data.pkl of {"a": float32[4] in storage "0", "b": float32[4] in storage "1"}, as torch.save writes it. */
function twoTensorPickle(): Uint8Array {
  const a = new PickleAsm().proto(2).emptyDict().binput(0).mark();
  let memo = 1;
  for (const [name, key] of [['a', '0'], ['b', '1']]) {
    a.binunicode(name).binput(memo++)
      .global('torch._utils', '_rebuild_tensor_v2').binput(memo++)
      .mark()
      .mark().binunicode('storage').global('torch', 'FloatStorage').binput(memo++).binunicode(key).binunicode('cpu').int(4).tuple()
      .binpersid()
      .int(0).int(4).tuple1().int(1).tuple1().bool(false)
      .global('collections', 'OrderedDict').binput(memo++).emptyTuple().reduce()
      .tuple()
      .reduce().binput(memo++);
  }
  return a.setitems().stop().bytes();
}

const floats = (...xs: number[]): Uint8Array => new Uint8Array(Float32Array.from(xs).buffer);
const A = floats(1, 2, 3, 4), B = floats(5, 6, 7, 8);

function checkpoint(extra: { name: string; data: Uint8Array }[] = [], pkl = twoTensorPickle()): Uint8Array {
  return buildZip([
    { name: 'ckpt/data.pkl', data: pkl },
    { name: 'ckpt/data/0', data: A },
    { name: 'ckpt/data/1', data: B },
    { name: 'ckpt/version', data: Buffer.from('3\n') },
    ...extra,
  ]);
}

function readSafetensors(file: string): { header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>; data: Buffer } {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  return { header: JSON.parse(b.subarray(8, 8 + n).toString('utf8')), data: b.subarray(8 + n) };
}

describe('converter verification steps (fault injection)', function () {
  let dir: string;
  let input: string;
  let k = 0;
  const out = () => join(dir, `out-${++k}.safetensors`);
  const noneLeft = () => assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'temp file removed');

  before(function () {
    dir = mkdtempSync(join(tmpdir(), 'sw-verify-'));
    input = join(dir, 'two.pt');
    writeFileSync(input, checkpoint());
  });
  afterEach(function () { tuning.afterWrite = undefined; tuning.tensorChunk = undefined; tuning.beforeHeaderCheck = undefined; });
  after(function () { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('baseline: the hand-built checkpoint converts, every step passes, bytes as stored', async function () {
    const o = out();
    const r = await convertToSafetensors(input, o);
    assert.equal(r.tensors, 2);
    const { header, data } = readSafetensors(o);
    assert.deepEqual(header.a, { dtype: 'F32', shape: [4], data_offsets: [0, 16] });
    assert.deepEqual(header.b, { dtype: 'F32', shape: [4], data_offsets: [16, 32] });
    assert.deepEqual(new Uint8Array(data), new Uint8Array([...A, ...B]));
  });

  it('block read-back: a block that reads back other than written (a failing disk) fails the conversion', async function () {
    const o = out();
    let hit = 0;
    tuning.afterWrite = (fd, offset, length) => {
      hit++;
      const at = offset + length - 1;                       // the last data byte of the block ("b"'s last float)
      const x = Buffer.alloc(1);
      readSync(fd, x, 0, 1, at); x[0] ^= 0xff; writeSync(fd, x, 0, 1, at);
    };
    await assert.rejects(convertToSafetensors(input, o), /verification failed: the output differs from the source at byte \d+ of the written file/);
    assert.ok(hit > 0);
    assert.equal(existsSync(o), false);
    noneLeft();
  });

  it('per-tensor byte count: a tensor read one byte short (and the next one byte long) fails the conversion', async function () {
    // the total stays right, so the size check and the read-back (which compares what was written) would pass
    const o = out();
    tuning.tensorChunk = (name, chunk) => (name === 'a' ? chunk.subarray(0, chunk.length - 1) : Buffer.concat([chunk, Buffer.from([0])]));
    await assert.rejects(convertToSafetensors(input, o), /verification failed: "a" has 15 bytes, the plan 16/);
    assert.equal(existsSync(o), false);
    noneLeft();
  });

  it('header re-read: a header entry changed after the blocks were read back fails the conversion', async function () {
    const o = out();
    tuning.beforeHeaderCheck = (fd, headerLength) => {
      const head = Buffer.alloc(headerLength);
      readSync(fd, head, 0, headerLength, 0);
      const at = head.indexOf('"F32"');
      assert.ok(at > 0);
      writeSync(fd, Buffer.from('"I32"'), 0, 5, at);          // same length: only a re-read of the header sees it
    };
    await assert.rejects(convertToSafetensors(input, o), /verification failed: header entry of "a" differs/);
    assert.equal(existsSync(o), false);
    noneLeft();
  });

  it('header re-read: changed metadata fails the conversion', async function () {
    const o = out();
    tuning.beforeHeaderCheck = (fd, headerLength) => {
      const head = Buffer.alloc(headerLength);
      readSync(fd, head, 0, headerLength, 0);
      const at = head.indexOf('"pt"');
      writeSync(fd, Buffer.from('"np"'), 0, 4, at);
    };
    await assert.rejects(convertToSafetensors(input, o), /verification failed: metadata differs/);
    noneLeft();
  });

  it('size re-check: an output that grew after writing fails the conversion', async function () {
    const o = out();
    tuning.beforeHeaderCheck = (fd) => ftruncateSync(fd, fstatSync(fd).size + 8);
    await assert.rejects(convertToSafetensors(input, o), /verification failed: the output is \d+ bytes, expected \d+/);
    noneLeft();
  });
});

describe('what the converter refuses, and the reason it gives', function () {
  let dir: string;
  before(function () { dir = mkdtempSync(join(tmpdir(), 'sw-refuse-')); });
  after(function () { if (dir) rmSync(dir, { recursive: true, force: true }); });
  const file = (name: string, bytes: Uint8Array): string => { const p = join(dir, name); writeFileSync(p, bytes); return p; };
  const refused = async (input: string, re: RegExp): Promise<void> => {
    const o = join(dir, 'never.safetensors');
    await assert.rejects(convertToSafetensors(input, o), (e: Error) => {
      assert.ok(e instanceof ConvertRefused, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, re);
      return true;
    });
    assert.equal(existsSync(o), false);
  };

  const report = (findings: Partial<Finding>[], verdict: ModelReport['verdict'] = 'safe'): ModelReport => ({
    path: 'x.pt', kind: 'model', format: 'pytorch-zip', verdict, summary: 's', weightsOnly: { loads: true, reason: '' },
    findings: findings.map((f) => ({ rule: 'SW014', severity: 'info', message: 'm', ...f })) as Finding[],
    globals: [], tensors: [], tensorCount: 0, metadata: {}, pickles: [], size: 1,
  } as ModelReport);

  it('a reading disagreement refuses whatever its severity, naming the rule and the finding', function () {
    assert.equal(refusalReason(report([])), undefined);
    assert.equal(refusalReason(report([{ rule: 'SW014' }])), undefined, 'trailing data alone does not refuse');
    for (const rule of ['SW010', 'SW011', 'SW012']) {
      const why = refusalReason(report([{ rule, severity: 'info', message: 'two readers, two files' }]));
      assert.match(why ?? '', new RegExp(`readings disagree \\(${rule} [a-z-]+: two readers, two files\\)`), rule);
    }
    // a "…-disagreement" rule added to the catalog counts without touching the converter
    const id = 'SW0ZZ';
    (MODEL_RULE_BY_ID as Map<string, ModelRule>).set(id, { id, name: 'reading-disagreement', severity: 'caution', short: '' });
    try {
      assert.ok(isReadingDisagreement({ rule: id }));
      assert.match(refusalReason(report([{ rule: id, severity: 'info', message: 'the end records disagree' }])) ?? '', /readings disagree \(SW0ZZ reading-disagreement: the end records disagree\)/);
    } finally { (MODEL_RULE_BY_ID as Map<string, ModelRule>).delete(id); }
    assert.equal(isReadingDisagreement({ rule: 'SW002' }), false);
  });

  it('dangerous and caution verdicts refuse with the callable or the finding that decided them', function () {
    assert.match(refusalReason(report([{ rule: 'SW004', severity: 'dangerous', message: 'truncated' }], 'dangerous')) ?? '', /the scan rates the file dangerous \(SW004: truncated\)/);
    assert.match(refusalReason(report([{ rule: 'SW013', severity: 'caution', message: 'unreadable member' }], 'caution')) ?? '',
      /the scan rates the file caution \(SW013: unreadable member\); only files the scan rates safe are converted/);
    const r = report([], 'safe');
    r.findingsOmitted = 3;
    assert.match(refusalReason(r) ?? '', /left 3 out/);
  });

  it('a pickle with a torch zip appended (SW012 polyglot): refused as readings that disagree', async function () {
    const zip = checkpoint();
    const pkl = new PickleAsm().proto(2).emptyDict().stop().bytes();
    await refused(file('polyglot.pt', Buffer.concat([pkl, zip])), /refusing to convert .*polyglot\.pt: its readings disagree \(SW012 polyglot: A ZIP archive/);
  });

  it('a torch zip with two data.pkl members (SW011): refused as readings that disagree', async function () {
    const evil = osSystemPickle().bytes;
    await refused(file('dup.pt', checkpoint([{ name: 'ckpt/data.pkl', data: evil }])), /its readings disagree \(SW011 zip-duplicate-member: /);
  });

  it('a checkpoint that calls os.system: refused as dangerous, naming os.system', async function () {
    await refused(file('evil.pt', checkpoint([], osSystemPickle().bytes)), /the scan rates the file dangerous \(loading it calls os\.system/);
  });
});
