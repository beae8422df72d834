// Limits that stop the READING fail closed (SW009, dangerous), whatever lies in the unread part; limits that
// only stop the DISPLAY say how many rows they left out (callPolicy.test.ts covers findings and globals).
// The limits are lowered through `scanLimits` so the archives stay small.
import * as assert from 'node:assert/strict';
import { scanLimits, scanModelBytes } from '../../../server/src/models/scan';
import { expectFinding, expectNoFinding, expectVerdict } from './engine';
import { PickleAsm, torchLikeStateDict } from './pickleAsm';
import { buildTar, buildZip, torchZip } from './zipAsm';

const benign = (i: number) => new PickleAsm().proto(2).emptyDict().str('epoch').int(i).setitem().stop().bytes();

describe('torch text records', () => {
  it('byteorder ("little" starts with the LIST opcode) is read by torch as text: no pickle finding', async () => {
    const r = await scanModelBytes(torchZip(torchLikeStateDict(2), { extra: [{ name: 'archive/byteorder', data: Buffer.from('little') }] }), 'x.pt');
    assert.deepEqual(r.findings, [], JSON.stringify(r.findings));
    expectVerdict(r, 'safe');
    // a large member of that name is not torch's record: it is still sniffed
    const big = Buffer.concat([Buffer.from(new PickleAsm().proto(2).global('os', 'system').stop().bytes()), Buffer.alloc(100)]);
    const evil = await scanModelBytes(torchZip(torchLikeStateDict(2), { extra: [{ name: 'archive/byteorder', data: big }] }), 'x.pt');
    expectVerdict(evil, 'dangerous');
  });
});

describe('findings a stream raises once per opcode', () => {
  it('are kept for the first 100 of a rule and counted after that; the verdict still sees them', async () => {
    const a = new PickleAsm().proto(2).mark();
    for (let i = 0; i < 300; i++) a.ext1(1 + (i % 200));
    const r = await scanModelBytes(a.list().stop().bytes(), 'x.pkl');
    expectVerdict(r, 'dangerous');
    assert.equal(r.findings.filter((f) => f.rule === 'SW005').length, 100);
    assert.equal(r.findingsOmitted, 200);
  });
});

describe('scan limits that stop the reading', () => {
  const saved = { ...scanLimits };
  afterEach(() => Object.assign(scanLimits, saved));

  it('a zip read by local headers (no central directory) past the member limit is dangerous', async () => {
    const members = Array.from({ length: 8 }, (_, i) => ({ name: `m${i}.pkl`, data: benign(i) }));
    const z = Buffer.from(buildZip(members));
    const cd = z.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]), z.length - 1);
    const firstCd = z.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    assert.ok(firstCd > 0 && cd >= firstCd);
    const localOnly = z.subarray(0, firstCd);   // central directory and end record cut off
    scanLimits.localMembers = 5;
    const r = await scanModelBytes(localOnly, 'x.zip');
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW009', severity: 'dangerous' });
    scanLimits.localMembers = 100;
    const all = await scanModelBytes(localOnly, 'x.zip');
    expectNoFinding(all, { rule: 'SW009' });
    assert.notEqual(all.verdict, 'dangerous');
  });

  it('a tar archive past the member limit is dangerous', async () => {
    const tar = buildTar(Array.from({ length: 6 }, (_, i) => ({ name: `f${i}`, data: benign(i) })));
    scanLimits.tarMembers = 3;
    const r = await scanModelBytes(tar, 'x.tar');
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW009', severity: 'dangerous' });
    scanLimits.tarMembers = 100;
    expectNoFinding(await scanModelBytes(tar, 'x.tar'), { rule: 'SW009' });
  });

  it('a zip member holding more consecutive pickles than are read is dangerous', async () => {
    const many = Buffer.concat(Array.from({ length: 101 }, (_, i) => benign(i)));
    const r = await scanModelBytes(buildZip([{ name: 'archive/data.pkl', data: torchLikeStateDict(2) }, { name: 'archive/extra.bin', data: many }]), 'x.pt');
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW009', member: 'archive/extra.bin' });
    const fewer = Buffer.concat(Array.from({ length: 100 }, (_, i) => benign(i)));
    expectNoFinding(await scanModelBytes(buildZip([{ name: 'archive/data.pkl', data: torchLikeStateDict(2) }, { name: 'archive/extra.bin', data: fewer }]), 'x.pt'), { rule: 'SW009' });
  });
});
