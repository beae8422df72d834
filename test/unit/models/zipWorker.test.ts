// Big zip directories are read on a worker thread while data.pkl is analysed on the main one (zipParallel.ts).
// Whatever the archive, the report must be exactly the one the in-thread path gives.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { scanModelFile, zipTuning } from '../../../server/src/models/scan';
import { readZipDirectory } from '../../../server/src/models/formats/zipDirectory';
import { readZipDirectoryInWorker } from '../../../server/src/models/formats/zipParallel';
import { BytesSource, FileSource } from '../../../server/src/models/source';
import { osSystemPickle, torchLikeStateDict } from './pickleAsm';
import { buildZip, ZipEntry } from './zipAsm';

const state = torchLikeStateDict(2);
const evil = osSystemPickle('GLOBAL').bytes;
const storages = (n: number): ZipEntry[] => Array.from({ length: n }, (_, i) => ({ name: `archive/data/${i}`, data: new Uint8Array(16) }));

const archives: Record<string, () => Uint8Array> = {
  'torch layout': () => buildZip([{ name: 'archive/data.pkl', data: state }, ...storages(40), { name: 'archive/version', data: Buffer.from('3\n') }]),
  'data.pkl not first': () => buildZip([...storages(5), { name: 'archive/data.pkl', data: state }]),
  'duplicate data.pkl, the second one evil': () => buildZip([{ name: 'archive/data.pkl', data: state }, ...storages(3), { name: 'archive/data.pkl', data: evil }]),
  'duplicate before data.pkl': () => buildZip([{ name: 'archive/x', data: Buffer.from('a') }, { name: 'archive/x', data: Buffer.from('b') }, { name: 'archive/data.pkl', data: state }, ...storages(2)]),
  'local name differs': () => buildZip([{ name: 'archive/data.pkl', localName: 'archive/DATA.pkl', data: state }, ...storages(2)]),
  'deflated data.pkl': () => buildZip([{ name: 'archive/data.pkl', data: state, method: 8 }, ...storages(2)]),
  'zip64': () => buildZip([{ name: 'archive/data.pkl', data: state, zip64: true }, ...storages(2)], { zip64: true }),
  'bytes before the archive': () => buildZip([{ name: 'archive/data.pkl', data: state }, ...storages(2)], { prefix: Buffer.from('junk in front') }),
  'no data.pkl': () => buildZip([{ name: 'a/b.pkl', data: evil }, ...storages(2)]),
  'broken central directory': () => { const z = buildZip([{ name: 'archive/data.pkl', data: state }]); const b = Buffer.from(z); b.writeUInt32LE(0x12345678, b.length - 22 - 46 - 'archive/data.pkl'.length); return b; },
};

// The verdict each archive above deserves, decided here: the evil pickle (os.system) anywhere torch or a zip
// reader sees it is dangerous; structural oddities (duplicates, name mismatch, prefix) are caution; a broken
// central directory falls back to the local headers, where the benign state dict is read.
const VERDICTS: Record<string, string> = {
  'torch layout': 'safe', 'data.pkl not first': 'safe', 'duplicate data.pkl, the second one evil': 'dangerous',
  'duplicate before data.pkl': 'caution', 'local name differs': 'caution', 'deflated data.pkl': 'safe', 'zip64': 'safe',
  'bytes before the archive': 'caution', 'no data.pkl': 'dangerous', 'broken central directory': 'caution',
};

describe('zip directory on a worker thread', () => {
  let dir: string;
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-zipworker-')); });
  after(() => { fs.rmSync(dir, { recursive: true, force: true }); zipTuning.parallelDirectoryBytes = 256 << 10; });

  for (const [name, make] of Object.entries(archives)) {
    it(`${name}: the same report as in-thread`, async () => {
      const file = path.join(dir, `${name.replace(/\W+/g, '_')}.pt`);
      fs.writeFileSync(file, make());
      zipTuning.parallelDirectoryBytes = Infinity;
      const inThread = await scanModelFile(file, { sha256: false });
      zipTuning.parallelDirectoryBytes = 0;
      const parallel = await scanModelFile(file, { sha256: false });
      assert.deepEqual(JSON.parse(JSON.stringify(parallel)), JSON.parse(JSON.stringify(inThread)));
      // and each path on its own gets the verdict this archive deserves
      assert.equal(parallel.verdict, VERDICTS[name], `${name}: ${parallel.summary}`);
    });
  }

  it('hands back a directory equal to readZipDirectory, member by member', async () => {
    const file = path.join(dir, 'many.pt');
    fs.writeFileSync(file, archives['duplicate before data.pkl']());
    const src = FileSource.open(file);
    try {
      const local = readZipDirectory(src);
      const job = readZipDirectoryInWorker(src.fd);
      assert.ok(job, 'the worker starts (its script is built next to zipParallel)');
      const remote = await job;
      assert.equal(remote.count, local.count);
      for (let i = 0; i < local.count; i++) assert.deepEqual(remote.entry(i), local.entry(i));
      assert.deepEqual([...remote.duplicates], [...local.duplicates]);
      assert.equal(remote.find('archive/data.pkl'), local.find('archive/data.pkl'));
      remote.release(); local.release();
    } finally { src.close(); }
  });
});

describe('zip storage-member index (findData)', () => {
  it('answers like a name lookup of root/data/<key>', () => {
    const enc = new TextEncoder();
    const layouts: ZipEntry[][] = [
      [{ name: 'r/data.pkl', data: state }, ...[3, 1, 0, 2, 10].map((k) => ({ name: `r/data/${k}`, data: new Uint8Array(4) }))],
      [{ name: 'r/data.pkl', data: state }, { name: 'r/data/1', data: new Uint8Array(4) }, { name: 'r/data/1', data: new Uint8Array(8) }, { name: 'r/data/0', data: new Uint8Array(4) }],
      [{ name: 'r/data.pkl', data: state }, { name: 'other/data/0', data: new Uint8Array(4) }, { name: 'x/data/0', data: new Uint8Array(4) }, { name: 'r/dat0/0', data: new Uint8Array(4) }, { name: 'r/data/0x', data: new Uint8Array(4) }],
    ];
    for (const entries of layouts) {
      const d = readZipDirectory(new BytesSource(buildZip(entries)));
      for (const key of ['0', '1', '2', '3', '10', '0x', '4', '']) {
        const b = enc.encode(key);
        const want = d.findInRoot('/data/', key);
        assert.equal(d.findData(b, 0, b.length), want, `key ${key}`);
      }
      d.release();
    }
  });
});

describe('zip storage members (checked through SW017)', () => {
  const scanBytes = async (entries: ZipEntry[]) => {
    const { scanModelBytes } = await import('../../../server/src/models/scan');
    return scanModelBytes(buildZip(entries), 'm.pt', { sha256: false });
  };
  it('reads the first of two members named data/0, like torch (a short first copy is reported)', async () => {
    const r = await scanBytes([{ name: 'archive/data.pkl', data: state }, { name: 'archive/data/0', data: new Uint8Array(4) }, { name: 'archive/data/0', data: new Uint8Array(16) }]);
    assert.ok(r.findings.some((f) => f.rule === 'SW017' && /holds 4/.test(f.message)), JSON.stringify(r.findings));
  });
  it('a long first copy is enough, whatever follows', async () => {
    const r = await scanBytes([{ name: 'archive/data.pkl', data: state }, { name: 'archive/data/0', data: new Uint8Array(16) }, { name: 'archive/data/0', data: new Uint8Array(4) }]);
    assert.equal(r.findings.some((f) => f.rule === 'SW017'), false, JSON.stringify(r.findings));
  });
  it('a member under another root or with a longer key is not the storage', async () => {
    const r = await scanBytes([{ name: 'archive/data.pkl', data: state }, { name: 'other/data/0', data: new Uint8Array(16) }, { name: 'archive/data/00', data: new Uint8Array(16) }]);
    assert.ok(r.findings.some((f) => f.rule === 'SW017' && /does not contain/.test(f.message)), JSON.stringify(r.findings));
  });
});

describe('TorchScript archives (a code/ folder under the root)', () => {
  const scanBytes = async (entries: ZipEntry[]) => {
    const { scanModelBytes } = await import('../../../server/src/models/scan');
    return scanModelBytes(buildZip(entries), 'm.pt', { sha256: false });
  };
  it('a root/code/ member makes it TorchScript, even without constants.pkl', async () => {
    const r = await scanBytes([{ name: 'archive/data.pkl', data: state }, ...storages(1), { name: 'archive/code/__torch__/m.py', data: Buffer.from('x') }]);
    assert.equal(r.format, 'torchscript-zip');
    assert.ok(r.findings.some((f) => f.rule === 'SW015'));
  });
  it('a code/ folder under another root does not', async () => {
    const r = await scanBytes([{ name: 'archive/data.pkl', data: state }, ...storages(1), { name: 'other/code/m.py', data: Buffer.from('x') }]);
    assert.equal(r.format, 'pytorch-zip');
  });
});
