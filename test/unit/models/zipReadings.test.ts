// Zip archives that torch.load (miniz), numpy.load (Python's zipfile) and zip tools that check the comment
// length read differently: a second end record inside the first one's comment, a directory whose offset only one
// of them follows, a count shorter than the directory, a zip64 locator pointing at no zip64 record. The engine
// must read each archive the way each loader does, report where they differ (SW018) and scan every reading. Each
// file is built here; the real loaders (/usr/bin/python3: torch 1.13, numpy 1.24) prove what they read.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BytesSource } from '../../../server/src/models/source';
import { endRecords, readZipDirectory, type EndRecord } from '../../../server/src/models/formats/zipDirectory';
import type { ModelReport } from '../../../server/src/models/types';
import { EngineApi, describeReport, expectFinding, expectNoFinding, expectVerdict, loadEngine } from './engine';
import { PickleAsm, torchLikeStateDict } from './pickleAsm';
import { LOADERS, proveLoad, systemCall } from './proof';
import { buildZip, npy, torchZip, type ZipEntry } from './zipAsm';

const EOCD_SIG = Buffer.from([0x50, 0x4b, 0x05, 0x06]);

/** A zip cut into its local part, central directory and end record (offsets from the end record). */
function parts(zip: Uint8Array): { local: Buffer; cd: Buffer; eocd: Buffer } {
  const z = Buffer.from(zip);
  const at = z.lastIndexOf(EOCD_SIG);
  const cdAt = z.readUInt32LE(at + 16), cdSize = z.readUInt32LE(at + 12);
  return { local: z.subarray(0, cdAt), cd: z.subarray(cdAt, cdAt + cdSize), eocd: Buffer.from(z.subarray(at, at + 22)) };
}

/** An end record copy with another directory offset (and size, count, comment length). */
function eocdWith(eocd: Buffer, f: { cdOffset?: number; cdSize?: number; count?: number; commentLength?: number }): Buffer {
  const e = Buffer.from(eocd);
  if (f.count !== undefined) { e.writeUInt16LE(f.count, 8); e.writeUInt16LE(f.count, 10); }
  if (f.cdSize !== undefined) e.writeUInt32LE(f.cdSize, 12);
  if (f.cdOffset !== undefined) e.writeUInt32LE(f.cdOffset, 16);
  if (f.commentLength !== undefined) e.writeUInt16LE(f.commentLength, 20);
  return e;
}

/**
 * `outer` (what zip tools that check the comment length read) whose end record's comment holds a whole second
 * archive `inner` (local part, directory, end record): torch's miniz and Python's zipfile take the last end
 * record, the inner one. The inner end record claims a comment longer than the file, so the comment-checking
 * tools skip it. The inner members are inside the outer comment: no gap of the outer archive holds them.
 */
function doubleEndRecord(outer: ZipEntry[], inner: ZipEntry[]): Uint8Array {
  const o = parts(buildZip(outer));
  const head = Buffer.concat([o.local, o.cd]);
  const prefixLength = head.length + 22;
  const i = parts(buildZip(inner, { prefix: new Uint8Array(prefixLength) }));   // offsets counted from the file's start
  const innerBytes = Buffer.concat([i.local.subarray(prefixLength), i.cd, eocdWith(i.eocd, { commentLength: 100 })]);
  return new Uint8Array(Buffer.concat([head, eocdWith(o.eocd, { commentLength: innerBytes.length }), innerBytes]));
}

let engine: EngineApi;
let work: string;
const scan = (bytes: Uint8Array, name: string): Promise<ModelReport> => engine.scanModelBytes(bytes, name);
const marker = (name: string): string => join(work, `${name}.marker`);
const evilPickle = (name: string): Uint8Array => systemCall(new PickleAsm().proto(2), `touch ${marker(name)}`).bytes();
const objectNpy = (name: string): Uint8Array => npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", evilPickle(name));
const floatNpy = (): Uint8Array => npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", new Uint8Array(8));
const torchEntries = (dataPkl: Uint8Array): ZipEntry[] => [
  { name: 'archive/data.pkl', data: dataPkl }, { name: 'archive/data/0', data: new Uint8Array(16) }, { name: 'archive/version', data: Buffer.from('3\n') },
];
const endsOf = (bytes: Uint8Array) => endRecords(new BytesSource(bytes));
const ok = (e: EndRecord | Error | undefined): EndRecord => { assert.ok(e && !(e instanceof Error), String(e)); return e; };

describe('zip readings: torch (miniz), numpy (Python zipfile) and comment-checking zip tools', function () {
  this.timeout(180_000);
  before(function () { engine = loadEngine(this); work = mkdtempSync(join(tmpdir(), 'sw-zipreadings-')); });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('an ordinary torch zip and npz: all three readings agree, no SW018', async function () {
    for (const [bytes, name] of [[torchZip(torchLikeStateDict(2)), 'm.pt'], [torchZip(torchLikeStateDict(2), { zip64: true }), 'z64.pt'],
      [buildZip([{ name: 'w.npy', data: floatNpy() }], { comment: 'a comment' }), 'x.npz']] as const) {
      const ends = endsOf(bytes);
      const m = ok(ends.miniz), z = ok(ends.zipfile), s = ok(ends.strict);
      assert.deepEqual([z.cdOffset, z.shift, s.cdOffset, s.shift], [m.cdOffset, 0, m.cdOffset, 0], name);
      const r = await scan(bytes, name);
      expectVerdict(r, 'safe');
      expectNoFinding(r, { rule: 'SW018' });
    }
  });

  it('a second end record in the first one\'s comment: torch.load runs the archive it describes; dangerous, SW018', async function () {
    const file = doubleEndRecord(torchEntries(torchLikeStateDict(2)), torchEntries(evilPickle('torch-double')));
    const p = proveLoad(file, LOADERS.torch, marker('torch-double'));
    assert.ok(p.ran, p.detail);
    const ends = endsOf(file);
    assert.equal(ok(ends.miniz).eocdOffset, file.length - 22, 'miniz takes the last signature');
    assert.equal(ok(ends.zipfile).eocdOffset, file.length - 22, 'zipfile takes the last signature');
    assert.ok(ok(ends.strict).eocdOffset < file.length - 22, 'comment-checking tools take the outer record');
    const r = await scan(file, 'model.pt');
    assert.equal(r.format, 'pytorch-zip', describeReport(r));
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/data.pkl' });
    const f = expectFinding(r, { rule: 'SW018', severity: 'caution' });
    assert.match(f.message, /torch\.load \(miniz\) and numpy\.load and Python's zipfile read the end record at offset \d+.*zip tools that check the comment length.* reads? the end record at offset/s, f.message);
  });

  it('the same in an .npz: numpy.load runs the object array of the archive the last end record describes', async function () {
    const file = doubleEndRecord([{ name: 'w.npy', data: floatNpy() }], [{ name: 'o.npy', data: objectNpy('npz-double') }]);
    const p = proveLoad(file, LOADERS.numpy, marker('npz-double'));
    assert.ok(p.ran, p.detail);
    const r = await scan(file, 'x.npz');
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'o.npy (object data)' });
    expectFinding(r, { rule: 'SW018' });
  });

  it('three readings, three archives: torch reads the directory where the offset points, numpy the one before the end record', async function () {
    // [benign zip][end record; comment: torch archive T, npz archive N, end record X]; X's offset points at T's
    // directory (miniz uses it as written), and N's directory, of the same size, ends where X starts (zipfile
    // reads the `size` bytes before the end record and shifts every offset by the difference)
    const T = torchEntries(evilPickle('three-torch'));
    const N: ZipEntry[] = [{ name: 'oooooooooooo.npy', data: objectNpy('three-numpy') }, { name: 'pppppppppp.npy', data: floatNpy() }, { name: 'qqqqqqqqqqq.npy', data: floatNpy() }];
    const outer = parts(buildZip([{ name: 'archive/data.pkl', data: torchLikeStateDict(2) }, { name: 'archive/pad', data: new Uint8Array(4096) }]));
    const head = Buffer.concat([outer.local, outer.cd]);
    const at0 = head.length + 22;                                  // where the outer comment starts
    const t = parts(buildZip(T, { prefix: new Uint8Array(at0) }));
    const tLocal = t.local.subarray(at0), cdT = at0 + tLocal.length;
    const nAt = cdT + t.cd.length;                                  // N's local part starts here
    const n0 = parts(buildZip(N));
    assert.equal(n0.cd.length, t.cd.length, 'the two directories have the same size');
    const cdN = nAt + n0.local.length, shift = cdN - cdT;
    assert.ok(nAt - shift >= 0);
    const n = parts(buildZip(N, { prefix: new Uint8Array(nAt - shift) }));   // N's offsets as written: actual - shift
    const x = eocdWith(t.eocd, { cdOffset: cdT, commentLength: 100 });
    const comment = Buffer.concat([tLocal, t.cd, n.local.subarray(nAt - shift), n.cd, x]);
    const file = new Uint8Array(Buffer.concat([head, eocdWith(outer.eocd, { commentLength: comment.length }), comment]));
    const ends = endsOf(file);
    assert.deepEqual([ok(ends.miniz).cdOffset, ok(ends.zipfile).cdOffset, ok(ends.zipfile).shift], [cdT, cdN, shift]);
    const pt = proveLoad(file, LOADERS.torch, marker('three-torch'));
    assert.ok(pt.ran, pt.detail);
    const pn = proveLoad(file, LOADERS.numpy, marker('three-numpy'));
    assert.ok(pn.ran, pn.detail);
    const r = await scan(file, 'model.pt');
    assert.equal(r.format, 'pytorch-zip', describeReport(r));
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/data.pkl' });
    expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'oooooooooooo.npy (object data)' });
    const f = expectFinding(r, { rule: 'SW018', severity: 'caution' });
    assert.equal((f.message.match(/reads? the end record/g) ?? []).length, 3, f.message);
  });

  it('a count shorter than the directory: Python\'s zipfile reads the entry torch does not', async function () {
    const entries = [...torchEntries(torchLikeStateDict(2)), { name: 'archive/extra.pkl', data: evilPickle('count') }];
    const z = parts(buildZip(entries));
    const file = new Uint8Array(Buffer.concat([z.local, z.cd, eocdWith(z.eocd, { count: 3 })]));
    const p = proveLoad(file, LOADERS.zipMember, marker('count'), ['archive/extra.pkl']);
    assert.ok(p.ran, p.detail);
    assert.equal(readZipDirectory(new BytesSource(file)).count, 3, 'torch reads three entries');
    const r = await scan(file, 'model.pt');
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW018', severity: 'caution' });
    expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/extra.pkl' });
  });

  it('a zip64 locator pointing at no zip64 record: torch (miniz) keeps the 32-bit record and loads it; so do we', async function () {
    const z = parts(torchZip(evilPickle('zip64')));
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0); locator.writeUInt32LE(0, 4); locator.writeBigUInt64LE(0n, 8); locator.writeUInt32LE(1, 16);
    const file = new Uint8Array(Buffer.concat([z.local, z.cd, locator, z.eocd]));
    const p = proveLoad(file, LOADERS.torch, marker('zip64'));
    assert.ok(p.ran, p.detail);
    const r = await scan(file, 'model.pt');
    assert.equal(r.format, 'pytorch-zip', describeReport(r));
    expectNoFinding(r, { rule: 'SW013' });
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/data.pkl' });
    assert.equal(r.tensors.length, 0, 'the evil pickle has no tensors');
    // Python's zipfile counts the locator's 20 bytes as bytes in front of the archive and fails: named, info
    const f = expectFinding(r, { rule: 'SW018', severity: 'info' });
    assert.match(f.message, /Python's zipfile cannot open it/, f.message);
  });

  it('bytes in front of an archive with offsets from its own start (cat junk a.zip): Python\'s zipfile reads it', async function () {
    const junk = Buffer.from('not a model file, just some text in front\n');
    const file = new Uint8Array(Buffer.concat([junk, buildZip([{ name: 'archive/data.pkl', data: evilPickle('concat') }])]));
    const p = proveLoad(file, LOADERS.zipMember, marker('concat'), ['archive/data.pkl']);
    assert.ok(p.ran, p.detail);
    assert.equal(ok(endsOf(file).zipfile).shift, junk.length);
    const r = await scan(file, 'model.bin');
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/data.pkl' });
  });

  it('a file that starts with an end-record signature is a zip to numpy.load (PK\\5\\6 prefix): its object array runs', async function () {
    const z = buildZip([{ name: 'o.npy', data: objectNpy('pk56') }], { prefix: Buffer.concat([EOCD_SIG, Buffer.alloc(18)]) });
    const p = proveLoad(z, LOADERS.numpy, marker('pk56'));
    assert.ok(p.ran, p.detail);
    const r = await scan(z, 'x.npz');
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'o.npy (object data)' });
  });

  it('an empty .npz (only an end record) is a zip numpy.load reads, not a pickle', async function () {
    const file = buildZip([]);
    assert.deepEqual(Array.from(file.subarray(0, 4)), [0x50, 0x4b, 0x05, 0x06]);
    const r = await scan(file, 'empty.npz');
    assert.equal(r.format, 'zip', describeReport(r));
    expectVerdict(r, 'safe');
  });
});
