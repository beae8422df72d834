// Discovery by content (models/discovery.ts) as a user meets it: `node dist/cli.js scan DIR` over model files under
// misleading or no extensions, archives people ship models in, text and media that must be skipped (and counted),
// a Hugging Face cache of symbolic links, link loops and FIFOs. Needs `npm run build`; 7z fixtures need Debian's
// `7z` (p7zip-full, installed by scripts/setup.sh; used only here, to write fixtures).
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { REPO_ROOT, requireBuilt } from '../setup';
import { make7z, pyCompress, sevenZipOrSkip } from './archiveTools';
import { osSystemPickle, torchLikeStateDict } from './models/pickleAsm';
import { buildTar, buildZip, torchZip } from './models/zipAsm';
import { looksLikePickle, looksLikeText, sniffBytes } from '../../server/src/models/discovery';

interface Run { code: number | null; stdout: string; stderr: string }
interface JsonOut { files: { path: string; kind: string; format: string; verdict: string; findings: { rule: string; member?: string }[] }[]; skipped: number; skippedFiles?: { path: string; reason: string }[] }

/** A protocol-0 pickle (plain ASCII text) that would call os.system when unpickled. */
export const PROTOCOL0_EVIL = Buffer.from("cos\nsystem\n(S'echo pwned'\ntR.", 'latin1');
const EVIL = Buffer.from(osSystemPickle('STACK_GLOBAL').bytes);
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0', 'latin1')]);

describe('discovery by content (CLI)', function () {
  this.timeout(120_000);
  let cli: string;
  let root: string;
  const run = (...args: string[]): Run => {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const json = (...args: string[]): { r: Run; out: JsonOut } => {
    const r = run('scan', '--format', 'json', '--fail-on', 'never', ...args);
    assert.equal(r.code, 0, r.stderr);
    return { r, out: JSON.parse(r.stdout) as JsonOut };
  };
  const rels = (base: string, out: JsonOut) => out.files.map((f) => relative(base, f.path).split('\\').join('/')).sort();

  before(function () {
    cli = requireBuilt(this, 'dist/cli.js');
    root = mkdtempSync(join(tmpdir(), 'sw-discovery-'));
  });
  after(() => { if (root) rmSync(root, { recursive: true, force: true }); });

  describe('sniffing (unit)', () => {
    it('tells protocol-0 pickles from text that starts with an opcode letter', () => {
      assert.equal(looksLikeText(PROTOCOL0_EVIL), true, 'a protocol-0 pickle is text');
      assert.equal(looksLikePickle(PROTOCOL0_EVIL, PROTOCOL0_EVIL.length), true);
      for (const text of ['cat\ndog and more words\n', '(c) 2024 Example Corp.\nAll rights reserved.\n', 'Some notes about the model\n', 'I think so\n', 'x = 1\n', 'Never mind\n']) {
        const b = Buffer.from(text);
        assert.equal(looksLikePickle(b, b.length), false, JSON.stringify(text));
        assert.deepEqual(sniffBytes(b, b.length), { model: false, reason: 'text' }, JSON.stringify(text));
      }
      assert.deepEqual(sniffBytes(PNG, PNG.length), { model: false, reason: 'PNG image' });
      assert.deepEqual(sniffBytes(EVIL, EVIL.length), { model: true, format: 'pickle' });
      // a crafted stream without PROTO that starts with SHORT_BINUNICODE: CPython reads it, so does discovery
      const noProto = Buffer.concat([Buffer.from('\x8c\x05posix\x8c\x06system\x93\x8c\x0aecho pwned\x85R.', 'latin1')]);
      assert.equal(looksLikeText(noProto), false);
      assert.deepEqual(sniffBytes(noProto, noProto.length), { model: true, format: 'pickle' });
      // a pickle cut by the head's end is still one (the rest of the file is not read)
      assert.equal(looksLikePickle(PROTOCOL0_EVIL.subarray(0, 14), 100_000), true);
      const zlibbed = deflateSync(EVIL);
      assert.deepEqual(sniffBytes(zlibbed, zlibbed.length), { model: true, format: 'compressed (zlib)' });
      const tar = buildTar([{ name: 'a.pkl', data: EVIL }]);
      assert.deepEqual(sniffBytes(tar.subarray(0, 512), tar.length), { model: true, format: 'tar' });
      // an archive behind a prefix is found from the file's end
      const hidden = Buffer.concat([Buffer.alloc(600, 0x01), buildZip([{ name: 'a.pkl', data: EVIL }])]);
      assert.deepEqual(sniffBytes(hidden.subarray(0, 512), hidden.length, () => hidden.subarray(hidden.length - 1024)), { model: true, format: 'zip (embedded)' });
      assert.deepEqual(sniffBytes(hidden.subarray(0, 512), hidden.length), { model: false, reason: 'binary data in no model format' });
    });

    it('follows the real unpickler where the machine stops early, and reads a leading end record as a zip', () => {
      // CPython's load_int takes int(line, 0): "I0x10" is 16 and the stream goes on to run os.system
      const base0 = Buffer.from("I0x10\n0cos\nsystem\n(S'echo pwned'\ntR.", 'latin1');
      assert.equal(looksLikePickle(base0, base0.length), true);
      // an opcode CPython rejects at once is not a pickle, whatever follows
      const rejected = Buffer.from('Izz\n0cos\nsystem\n', 'latin1');
      assert.equal(looksLikePickle(rejected, rejected.length), false);
      // numpy.load reads a file that starts with an end-of-central-directory record as a zip
      const eocd = Buffer.concat([Buffer.from([0x50, 0x4b, 0x05, 0x06]), Buffer.alloc(18)]);
      assert.deepEqual(sniffBytes(eocd, eocd.length), { model: true, format: 'zip' });
    });
  });

  it('a folder: model files by content whatever their names, text and media skipped and counted', function () {
    sevenZipOrSkip(this);
    const dir = join(root, 'mixed');
    mkdirSync(join(dir, 'deep', 'er'), { recursive: true });
    const put = (rel: string, data: Uint8Array) => writeFileSync(join(dir, rel), data);
    const evilZip = buildZip([{ name: 'evil.pkl', data: EVIL }]);
    const evilTar = buildTar([{ name: 'weights/evil.pkl', data: EVIL }]);
    const models: Record<string, Uint8Array> = {
      'model': EVIL,                                           // no extension
      'checkpoint.weights': PROTOCOL0_EVIL,                    // protocol 0: plain text
      'deep/er/net.pth.tar': torchZip(EVIL),                   // torch.save output under the old .pth.tar name
      'm.joblib.xz': pyCompress('xz', EVIL),
      'm.joblib.z': deflateSync(EVIL),
      'm.joblib.bz2': pyCompress('bz2', EVIL),
      'm.joblib.lzma': pyCompress('lzma', EVIL),
      'm.pkl.bz2': pyCompress('bz2', EVIL),
      'm.pkl.xz': pyCompress('xz', EVIL),
      'm.pkl.zip': evilZip,
      'bundle.zip': evilZip,
      'bundle.tar': evilTar,
      'bundle.tar.gz': gzipSync(evilTar),
      'bundle.tgz': gzipSync(evilTar),
    };
    for (const [rel, data] of Object.entries(models)) put(rel, data);
    make7z(join(dir, 'bundle.7z'), { 'evil.pkl': EVIL });
    const notModels: Record<string, Uint8Array> = {
      'README.md': Buffer.from('# A model\n\nLoad it with care.\n'),
      'NOTICE': Buffer.from('(c) 2024 Example Corp.\nAll rights reserved.\n'),
      'config.cfg': Buffer.from('x = 1\n'),
      'notes': Buffer.from('cat\ndog and more words\n'),
      'deep/logo.png': PNG,
      'deep/photo.jpg': Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 0x4a, 0x46, 0x49, 0x46, 0]),
    };
    for (const [rel, data] of Object.entries(notModels)) put(rel, data);
    put('train.py', Buffer.from('import pickle\npickle.loads(b)\n'));

    const { out } = json(dir);
    const expected = [...Object.keys(models), 'bundle.7z', 'train.py'].sort();
    assert.deepEqual(rels(dir, out), expected);
    for (const f of out.files) {
      assert.equal(f.verdict, 'dangerous', `${f.path}: ${JSON.stringify(f)}`);
      if (f.kind === 'model') assert.ok(f.findings.some((x) => x.rule === 'SW001'), `${f.path} names the call: ${JSON.stringify(f.findings)}`);
    }
    const byName = new Map(out.files.map((f) => [relative(dir, f.path), f]));
    assert.equal(byName.get('bundle.7z')!.format, '7z');
    assert.equal(byName.get('bundle.tgz')!.format, 'tar');
    assert.ok(byName.get('bundle.tar')!.findings.some((x) => x.rule === 'SW001' && x.member === 'weights/evil.pkl'), JSON.stringify(byName.get('bundle.tar')));
    assert.equal(byName.get('train.py')!.kind, 'code');
    assert.equal(out.skipped, Object.keys(notModels).length);

    const v = json('--verbose', dir).out;
    assert.deepEqual(v.skippedFiles!.map((x) => relative(dir, x.path)).sort(), Object.keys(notModels).sort());
    assert.equal(v.skippedFiles!.find((x) => x.path.endsWith('logo.png'))!.reason, 'PNG image');
    assert.equal(v.skippedFiles!.find((x) => x.path.endsWith('NOTICE'))!.reason, 'text');

    const text = run('scan', dir);
    assert.equal(text.code, 1);
    assert.match(text.stdout, new RegExp(`${expected.length} files scanned: ${expected.length} dangerous; ${Object.keys(notModels).length} files skipped as not model files \\(--verbose lists them\\)\\.`), text.stdout);
    assert.ok(!text.stdout.includes('logo.png'), 'skipped files are listed only with --verbose');
    const verbose = run('scan', '--verbose', dir);
    for (const rel of Object.keys(notModels)) assert.ok(verbose.stdout.includes(join(dir, rel)), `${rel} listed with --verbose:\n${verbose.stdout}`);
  });

  it('a text file named on the command line is still scanned', function () {
    const f = join(root, 'explicit-notes.txt');
    writeFileSync(f, '# just words\n');
    const { out } = json(f);
    assert.equal(out.files.length, 1);
    assert.equal(out.files[0].format, 'unknown');
    assert.equal(out.skipped, 0);
  });

  it('a Hugging Face cache: links followed, each blob scanned once, reported under its snapshot path', function () {
    const hub = join(root, 'hub');
    const repo = join(hub, 'models--org--name');
    const blobEvil = 'a'.repeat(64), blobCfg = 'b'.repeat(64), blobSafe = 'c'.repeat(64);
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'blobs', blobEvil), torchZip(EVIL));
    writeFileSync(join(repo, 'blobs', blobCfg), '{"model_type": "bert"}\n');
    writeFileSync(join(repo, 'blobs', blobSafe), torchZip(torchLikeStateDict(2)));
    writeFileSync(join(repo, 'refs', 'main'), '1111111111111111111111111111111111111111');
    for (const rev of ['1111111111111111111111111111111111111111', '2222222222222222222222222222222222222222']) {
      const snap = join(repo, 'snapshots', rev);
      mkdirSync(snap, { recursive: true });
      symlinkSync(join('..', '..', 'blobs', blobEvil), join(snap, 'pytorch_model.bin'));
      symlinkSync(join('..', '..', 'blobs', blobCfg), join(snap, 'config.json'));
    }
    symlinkSync(join('..', '..', 'blobs', blobSafe), join(repo, 'snapshots', '2222222222222222222222222222222222222222', 'training_args.bin'));
    const { out } = json('--verbose', hub);
    const paths = rels(hub, out);
    // config.json is a transformers config: the snapshot is a Hugging Face repository (hfRepo.ts), reported under it
    assert.deepEqual(paths, [
      'models--org--name/snapshots/1111111111111111111111111111111111111111/config.json',
      'models--org--name/snapshots/1111111111111111111111111111111111111111/pytorch_model.bin',
      'models--org--name/snapshots/2222222222222222222222222222222222222222/training_args.bin',
    ]);
    assert.equal(out.files[0].format, 'huggingface-repo');
    assert.equal(out.files[0].verdict, 'safe');
    assert.equal(out.files[1].verdict, 'dangerous');
    assert.equal(out.files[2].verdict, 'safe');
    const dupes = out.skippedFiles!.filter((x) => x.reason.startsWith('same file as'));
    // the blobs themselves and the second snapshot's links name files already read through the first link
    assert.deepEqual(dupes.map((x) => relative(hub, x.path)).sort(), [
      `models--org--name/blobs/${blobEvil}`, `models--org--name/blobs/${blobCfg}`, `models--org--name/blobs/${blobSafe}`,
      'models--org--name/snapshots/2222222222222222222222222222222222222222/config.json',
      'models--org--name/snapshots/2222222222222222222222222222222222222222/pytorch_model.bin',
    ]);
    assert.equal(dupes.find((x) => x.path.endsWith(blobEvil))!.reason, `same file as ${join(repo, 'snapshots', '1111111111111111111111111111111111111111', 'pytorch_model.bin')}`);
    assert.equal(out.skipped, 1, 'refs/main (text): duplicates are not "not model files"');
    const text = run('scan', hub);
    assert.equal(text.code, 1);
    assert.match(text.stdout, /3 files scanned: 1 dangerous, 2 safe; 1 file skipped as not model files \(--verbose lists them\); 5 more paths to the same files \(links\)\./, text.stdout);
  });

  it('symbolic link loops are skipped; the scan ends and reports what it found', function () {
    const dir = join(root, 'loops');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'sub', 'model'), EVIL);
    symlinkSync('..', join(dir, 'sub', 'up'));          // a link to a folder already walked
    symlinkSync('.', join(dir, 'self'));
    symlinkSync('b', join(dir, 'a'));                   // a -> b -> a
    symlinkSync('a', join(dir, 'b'));
    const r = run('scan', '--format', 'json', '--verbose', dir);
    assert.equal(r.code, 1, r.stderr);
    const out = JSON.parse(r.stdout) as JsonOut;
    assert.deepEqual(rels(dir, out), ['sub/model']);
    const reasons = new Map(out.skippedFiles!.map((x) => [relative(dir, x.path), x.reason]));
    assert.match(reasons.get('sub/up')!, /already walked/);
    assert.match(reasons.get('self')!, /already walked/);
    assert.match(reasons.get('a')!, /loop/);
    assert.match(reasons.get('b')!, /loop/);
  });

  it('a link to a folder outside the scanned folder is not walked unless --follow-links; one inside is', function () {
    const base = join(root, 'outside');
    const repo = join(base, 'repo');
    const shared = join(base, 'shared-weights');
    mkdirSync(join(repo, 'src'), { recursive: true });
    mkdirSync(shared, { recursive: true });
    writeFileSync(join(shared, 'model.bin'), EVIL);
    writeFileSync(join(repo, 'src', 'inner.bin'), EVIL);
    symlinkSync(join('..', 'shared-weights'), join(repo, 'weights'));   // leaves the scanned folder
    symlinkSync('src', join(repo, 'alias'));                             // stays inside: same folder, walked once
    const plain = run('scan', '--format', 'json', '--verbose', repo);
    assert.equal(plain.code, 1, plain.stderr);
    const out = JSON.parse(plain.stdout) as JsonOut;
    assert.deepEqual(rels(repo, out), ['src/inner.bin']);
    const reasons = new Map(out.skippedFiles!.map((x) => [relative(repo, x.path), x.reason]));
    assert.match(reasons.get('weights')!, /outside the scanned folders .*shared-weights.*--follow-links/);
    assert.match(reasons.get('alias')!, /already walked/);
    const text = run('scan', repo);
    assert.match(text.stdout, /1 link to folders outside the scanned folders not walked \(--follow-links walks it\)/, text.stdout);
    // named together, the link leads into a scanned folder: walked, and the shared model is scanned once
    const both = JSON.parse(run('scan', '--format', 'json', repo, shared).stdout) as JsonOut;
    assert.equal(both.files.length, 2, JSON.stringify(both.files.map((f) => f.path)));
    assert.ok(both.files.some((f) => f.path.endsWith('model.bin')));
    const followed = run('scan', '--format', 'json', '--follow-links', repo);
    assert.equal(followed.code, 1, followed.stderr);
    assert.deepEqual(rels(repo, JSON.parse(followed.stdout) as JsonOut), ['src/inner.bin', 'weights/model.bin']);
  });

  it('a FIFO named on the command line is an error (exit 2); one met in a walk is skipped', function () {
    const dir = join(root, 'fifo');
    mkdirSync(dir, { recursive: true });
    execFileSync('mkfifo', [join(dir, 'pipe')]);
    writeFileSync(join(dir, 'model.bin'), EVIL);
    const named = run('scan', join(dir, 'pipe'));
    assert.equal(named.code, 2, named.stdout + named.stderr);
    assert.match(named.stderr, /pipe: not a regular file \(FIFO\)/);
    // with a good file beside it the error still sets exit 2
    assert.equal(run('scan', join(dir, 'pipe'), join(dir, 'model.bin')).code, 2);
    const walked = run('scan', '--format', 'json', '--verbose', dir);
    assert.equal(walked.code, 1, walked.stderr);
    const out = JSON.parse(walked.stdout) as JsonOut;
    assert.deepEqual(rels(dir, out), ['model.bin']);
    assert.deepEqual(out.skippedFiles, [{ path: join(dir, 'pipe'), reason: 'not a regular file (FIFO)' }]);
    assert.equal(walked.stderr, '');
  });
});
