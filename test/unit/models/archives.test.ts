// Archives people ship models in (tar, .tar.gz/.tgz, zip, 7z, a compressed torch zip), read member by member with
// bounded decompression: a dangerous pickle inside is found and named by member; a benign archive is not flagged;
// a member or a total past the limits is a finding (SW025), never silence. Archives are built here with node's zlib,
// the test's tar/zip writers, Debian's `tar` and `7z` (p7zip-full, used only to write fixtures).
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { scanModelBytes, scanModelFile } from '../../../server/src/models/scan';
import { archiveLimits } from '../../../server/src/models/formats/archives';
import type { ModelReport } from '../../../server/src/models/types';
import { osSystemPickle, torchLikeStateDict } from './pickleAsm';
import { buildTar, buildZip, torchZip } from './zipAsm';
import { has7z, make7z, pyCompress, sevenZipOrSkip } from '../archiveTools';

const EVIL = osSystemPickle('GLOBAL').bytes;
const SAFE_PT = torchZip(torchLikeStateDict(2));
const describeReport = (r: ModelReport): string => JSON.stringify({ verdict: r.verdict, format: r.format, detail: r.formatDetail, findings: r.findings.map((f) => [f.rule, f.severity, f.member, f.message]) });

/** The report names os.system as called, in the given member. */
function expectEvilIn(r: ModelReport, member: string): void {
  assert.equal(r.verdict, 'dangerous', describeReport(r));
  assert.ok(r.findings.some((f) => f.rule === 'SW001' && f.global === 'os.system' && f.member === member), `SW001 in ${member}: ${describeReport(r)}`);
  assert.ok(r.globals.some((g) => g.module === 'posix' || g.module === 'os'), describeReport(r));
  assert.match(r.summary, /os\.system/);
}

describe('archives: member by member', function () {
  this.timeout(120_000);
  let dir: string;
  const saved = { ...archiveLimits };
  before(() => { dir = mkdtempSync(join(tmpdir(), 'sw-archives-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  afterEach(() => Object.assign(archiveLimits, saved));

  it('tar: a dangerous pickle among benign members is found; the same tar without it is safe', async () => {
    const evil = await scanModelBytes(buildTar([{ name: 'model/weights.pt', data: SAFE_PT }, { name: 'model/extra.bin', data: EVIL }]), 'm.tar');
    assert.equal(evil.format, 'tar');
    assert.equal(evil.memberCount, 2);
    expectEvilIn(evil, 'model/extra.bin');
    const benign = await scanModelBytes(buildTar([{ name: 'model/weights.pt', data: SAFE_PT }]), 'm.tar');
    assert.equal(benign.verdict, 'safe', describeReport(benign));
    assert.equal(benign.tensorCount, 1, 'the member\'s tensors are listed');
  });

  it('tar.gz / .tgz (node zlib) and a tar.gz written by Debian\'s tar, with folders and long names', async () => {
    const r = await scanModelBytes(gzipSync(buildTar([{ name: 'a.txt', data: Buffer.from('hello') }, { name: 'evil.pkl', data: EVIL }])), 'm.tgz');
    assert.equal(r.format, 'tar');
    assert.match(r.formatDetail ?? '', /gzip/);
    expectEvilIn(r, 'evil.pkl');
    const src = join(dir, 'tree');
    const long = `${'deep/'.repeat(30)}pytorch_model.bin`;   // > 100 characters: a pax or GNU long-name record
    mkdirSync(join(src, long, '..'), { recursive: true });
    writeFileSync(join(src, long), torchZip(EVIL));
    writeFileSync(join(src, 'README.md'), '# model\n');
    execFileSync('tar', ['czf', join(dir, 'real.tar.gz'), '-C', src, '.']);
    const real = await scanModelFile(join(dir, 'real.tar.gz'));
    expectEvilIn(real, `./${long}!archive/data.pkl`);
    execFileSync('tar', ['cf', join(dir, 'real.tar'), '-C', src, '.']);
    expectEvilIn(await scanModelFile(join(dir, 'real.tar')), `./${long}!archive/data.pkl`);
    execFileSync('tar', ['cjf', join(dir, 'real.tar.bz2'), '-C', src, '.']);
    expectEvilIn(await scanModelFile(join(dir, 'real.tar.bz2')), `./${long}!archive/data.pkl`);
  });

  it('zip: a pickle member under any name, and a torch checkpoint or a .tgz inside the zip', async () => {
    expectEvilIn(await scanModelBytes(buildZip([{ name: 'README.md', data: Buffer.from('# hi\n') }, { name: 'weights.bin', data: EVIL }]), 'b.zip'), 'weights.bin');
    const nested = buildZip([{ name: 'model/pytorch_model.bin', data: torchZip(EVIL), method: 8 }]);
    expectEvilIn(await scanModelBytes(nested, 'b.zip'), 'model/pytorch_model.bin!archive/data.pkl');
    const tgz = gzipSync(buildTar([{ name: 'evil.pkl', data: EVIL }]));
    expectEvilIn(await scanModelBytes(buildZip([{ name: 'inner.tgz', data: tgz }]), 'b.zip'), 'inner.tgz!evil.pkl');
    const benign = await scanModelBytes(buildZip([{ name: 'model/pytorch_model.bin', data: SAFE_PT, method: 8 }]), 'b.zip');
    assert.equal(benign.verdict, 'safe', describeReport(benign));
  });

  it('a compressed torch checkpoint (model.pt.gz, .pt.xz) is read inside its compressor', async () => {
    expectEvilIn(await scanModelBytes(gzipSync(torchZip(EVIL)), 'model.pt.gz'), '(gzip stream)!archive/data.pkl');
    expectEvilIn(await scanModelBytes(pyCompress('xz', torchZip(EVIL)), 'model.pt.xz'), '(xz stream)!archive/data.pkl');
    const ok = await scanModelBytes(gzipSync(SAFE_PT), 'model.pt.gz');
    assert.equal(ok.verdict, 'safe', describeReport(ok));
  });

  it('7z (written by Debian\'s 7z): dangerous member found, benign archive safe', async function () {
    sevenZipOrSkip(this);
    make7z(join(dir, 'evil.7z'), { 'model/pytorch_model.bin': SAFE_PT, 'model/optimizer.pt': torchZip(EVIL), 'notes.txt': Buffer.from('text\n') });
    const r = await scanModelFile(join(dir, 'evil.7z'));
    assert.equal(r.format, '7z');
    assert.equal(r.memberCount, 3);
    expectEvilIn(r, 'model/optimizer.pt!archive/data.pkl');
    make7z(join(dir, 'ok.7z'), { 'model/pytorch_model.bin': SAFE_PT });
    const ok = await scanModelFile(join(dir, 'ok.7z'));
    assert.equal(ok.verdict, 'safe', describeReport(ok));
    // in memory too (a 7z inside a zip)
    expectEvilIn(await scanModelBytes(buildZip([{ name: 'x.7z', data: readFileSync(join(dir, 'evil.7z')) }]), 'b.zip'), 'x.7z!model/optimizer.pt!archive/data.pkl');
  });

  it('7z: members decoded over several passes when they do not fit one, every one scanned', async function () {
    sevenZipOrSkip(this);
    const files: Record<string, Uint8Array> = {};
    for (let i = 0; i < 5; i++) files[`m${i}.pt`] = SAFE_PT;
    files['z_last.pkl'] = EVIL;
    make7z(join(dir, 'passes.7z'), files, ['-ms=on']);
    archiveLimits.sevenZipPassBytes = SAFE_PT.length * 2;   // two members a pass
    const r = await scanModelFile(join(dir, 'passes.7z'));
    expectEvilIn(r, 'z_last.pkl');
    assert.equal(r.tensorCount, 5, describeReport(r));
    assert.ok(!r.findings.some((f) => f.rule === 'SW013'), describeReport(r));
  });

  it('7z: encrypted members and encrypted headers cannot be checked (caution), a corrupt archive says so', async function () {
    sevenZipOrSkip(this);
    make7z(join(dir, 'enc.7z'), { 'evil.pkl': EVIL }, ['-psecret']);
    const enc = await scanModelFile(join(dir, 'enc.7z'));
    assert.equal(enc.verdict, 'caution', describeReport(enc));
    assert.ok(enc.findings.some((f) => f.rule === 'SW013' && /encrypted/.test(f.message)), describeReport(enc));
    make7z(join(dir, 'enc-h.7z'), { 'evil.pkl': EVIL }, ['-psecret', '-mhe=on']);
    const hidden = await scanModelFile(join(dir, 'enc-h.7z'));
    assert.notEqual(hidden.verdict, 'safe', describeReport(hidden));
    assert.ok(hidden.findings.some((f) => f.rule === 'SW013' && /encrypted/.test(f.message)), describeReport(hidden));
    make7z(join(dir, 'big.7z'), { 'evil.pkl': EVIL, 'blob.bin': Buffer.alloc(200_000, 7) });
    const bytes = readFileSync(join(dir, 'big.7z'));
    bytes[64] ^= 0xff; bytes[200] ^= 0xff;
    const bad = await scanModelBytes(bytes, 'bad.7z');
    assert.notEqual(bad.verdict, 'safe', describeReport(bad));
    assert.ok(bad.findings.some((f) => f.rule === 'SW013' || f.rule === 'SW004'), describeReport(bad));
  });

  it('a member past the size limit, or members past the total, are SW025 findings naming the member', async function () {
    archiveLimits.memberBytes = 1000;
    const big = { name: 'big.bin', data: Buffer.alloc(5000, 1) };
    const small = { name: 'evil.pkl', data: EVIL };
    const tgz = await scanModelBytes(gzipSync(buildTar([big, small])), 'm.tgz');
    assert.ok(tgz.findings.some((f) => f.rule === 'SW025' && f.severity === 'dangerous' && f.member === 'big.bin'), describeReport(tgz));
    expectEvilIn(tgz, 'evil.pkl');   // the members after it are still read
    const z = await scanModelBytes(buildZip([{ name: 'inner.zip', data: buildZip([{ name: 'x', data: Buffer.alloc(5000) }]), method: 8 }]), 'b.zip');
    assert.ok(z.findings.some((f) => f.rule === 'SW025' && f.member === 'inner.zip'), describeReport(z));
    const gz = await scanModelBytes(gzipSync(torchZip(EVIL, { extra: [{ name: 'archive/pad', data: Buffer.alloc(5000) }] })), 'm.pt.gz');
    assert.ok(gz.findings.some((f) => f.rule === 'SW025'), describeReport(gz));
    assert.equal(gz.verdict, 'dangerous');
    archiveLimits.memberBytes = saved.memberBytes;
    archiveLimits.totalBytes = 3000;
    const total = await scanModelBytes(gzipSync(buildTar([{ name: 'a.bin', data: Buffer.alloc(2000) }, { name: 'b.bin', data: Buffer.alloc(2000) }])), 'm.tgz');
    assert.ok(total.findings.some((f) => f.rule === 'SW025' && f.member === 'b.bin'), describeReport(total));
    assert.ok(!total.findings.some((f) => f.rule === 'SW025' && f.member === 'a.bin'), describeReport(total));
    assert.equal(total.verdict, 'dangerous');
    if (!has7z()) return;   // the 7z part of this check (the other tests skip or fail loudly without 7z)
    archiveLimits.totalBytes = saved.totalBytes;
    archiveLimits.memberBytes = 1000;
    make7z(join(dir, 'limit.7z'), { 'big.bin': big.data, 'evil.pkl': EVIL });
    const s = await scanModelFile(join(dir, 'limit.7z'));
    assert.ok(s.findings.some((f) => f.rule === 'SW025' && f.member === 'big.bin'), describeReport(s));
    expectEvilIn(s, 'evil.pkl');
  });

  it('archives nested deeper than the limit are a scan-limit finding', async () => {
    let inner: Uint8Array = buildZip([{ name: 'evil.pkl', data: EVIL }]);
    for (let i = 0; i < 5; i++) inner = buildZip([{ name: `level${i}.zip`, data: inner }]);
    const r = await scanModelBytes(inner, 'deep.zip');
    assert.equal(r.verdict, 'dangerous', describeReport(r));
    assert.ok(r.findings.some((f) => f.rule === 'SW009' && /nested/.test(f.message)), describeReport(r));
    let two: Uint8Array = buildZip([{ name: 'evil.pkl', data: EVIL }]);
    two = buildZip([{ name: 'level0.zip', data: two }]);
    const ok = await scanModelBytes(two, 'two.zip');
    assert.ok(!ok.findings.some((f) => f.rule === 'SW009'), describeReport(ok));
    expectEvilIn(ok, 'level0.zip!evil.pkl');
  });
});
