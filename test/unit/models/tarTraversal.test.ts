// CVE-2024-5187's technique (onnx.hub extracted model tarballs with tarfile.extractall() and no filter): a tar
// member with a ".." or absolute name, or a link leading out, is written outside the target folder. Each archive is
// written by Python's own tarfile, the exploit is proven with the real extractall() in a throwaway folder (a
// marker file appears outside it), and only then is SW026 (dangerous) required; archives whose members stay inside
// (folders, "./" names, a link to a sibling) must not get it.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scanModelFile } from '../../../server/src/models/scan';
import { escapingTarPath } from '../../../server/src/models/formats/tar';
import { PYTHON } from '../../setup';

// writes the tar (optionally gzipped) with tarfile: members are (name, kind, payload-or-link)
const WRITE = `
import io, json, sys, tarfile
out, mode, members = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with tarfile.open(out, mode) as t:
    for name, kind, arg in members:
        info = tarfile.TarInfo(name)
        if kind == "file":
            data = arg.encode()
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        else:
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.DIRTYPE
            info.linkname = arg
            t.addfile(info)
`;
// the real loader: extractall() with no filter, as onnx.hub called it (Python < 3.14 default; 3.12+ only warns)
const EXTRACT = `
import sys, tarfile, warnings
warnings.simplefilter("ignore")
with tarfile.open(sys.argv[1]) as t:
    t.extractall(sys.argv[2])
`;

describe('tar path traversal (SW026, CVE-2024-5187 technique)', function () {
  this.timeout(120_000);
  let py: string;
  let dir: string;
  // Python's stdlib only (tarfile): Debian's python3 is always there after scripts/setup.sh, so no skip
  before(function () { py = PYTHON; dir = mkdtempSync(join(tmpdir(), 'sw-tarslip-')); });
  after(function () { if (dir) rmSync(dir, { recursive: true, force: true }); });

  const write = (name: string, mode: string, members: [string, string, string][]): string => {
    const out = join(dir, name);
    execFileSync(py, ['-c', WRITE, out, mode, JSON.stringify(members)]);
    return out;
  };

  for (const [label, mode, ext] of [['tar', 'w', 'tar'], ['tar.gz', 'w:gz', 'tar.gz']] as const) {
    it(`${label}: a "../" member escapes the real extractall(), and the scan says so`, async () => {
      const marker = `escaped-${ext.replace('.', '-')}`;
      const file = write(`evil.${ext}`, mode, [['model/config.json', 'file', '{}'], [`../../${marker}`, 'file', 'pwned']]);
      const target = join(dir, 'x', 'y');
      execFileSync(py, ['-c', EXTRACT, file, target], { timeout: 30_000 });
      assert.ok(existsSync(join(dir, marker)), 'the real loader wrote the member outside its folder');
      const r = await scanModelFile(file);
      assert.equal(r.verdict, 'dangerous');
      const f = r.findings.find((x) => x.rule === 'SW026');
      assert.ok(f, JSON.stringify(r.findings));
      assert.equal(f.member, `../../${marker}`);
      assert.match(f.message, /climbs out/);
    });
  }

  it('tar: a symbolic link out of the folder, then a file written through it', async () => {
    const file = write('link.tar', 'w', [['weights', 'symlink', '../../linked-out'], ['weights/escaped-through-link', 'file', 'pwned']]);
    const target = join(dir, 'l', 'm');
    execFileSync('mkdir', ['-p', join(dir, 'linked-out')]);
    execFileSync(py, ['-c', EXTRACT, file, target], { timeout: 30_000 });
    assert.ok(existsSync(join(dir, 'linked-out', 'escaped-through-link')), 'the real loader wrote through the link');
    const r = await scanModelFile(file);
    assert.equal(r.verdict, 'dangerous');
    assert.ok(r.findings.some((x) => x.rule === 'SW026' && x.member === 'weights' && /symbolic link/.test(x.message)), JSON.stringify(r.findings));
  });

  it('an absolute member name is reported', async () => {
    const r = await scanModelFile(write('abs.tar', 'w', [['/tmp/safe-weights-never-extracted', 'file', 'x']]));
    assert.ok(r.findings.some((x) => x.rule === 'SW026' && /absolute path/.test(x.message)), JSON.stringify(r.findings));
  });

  it('members that stay inside get no SW026', async () => {
    const file = write('fine.tar.gz', 'w:gz', [['./model', 'dir', ''], ['./model/a/../config.json', 'file', '{}'], ['./model/latest', 'symlink', 'config.json'], ['model/sub/up', 'symlink', '../config.json']]);
    const r = await scanModelFile(file);
    assert.deepEqual(r.findings.filter((x) => x.rule === 'SW026'), []);
    assert.notEqual(r.verdict, 'dangerous');
  });

  it('the path rule itself (own table)', () => {
    const cases: [string, string, string, boolean][] = [
      ['a/b', '0', '', false], ['./a', '0', '', false], ['a/../b', '0', '', false], ['a/../../b', '0', '', true],
      ['../x', '0', '', true], ['/etc/x', '0', '', true], ['C:\\x', '0', '', true], ['a\\..\\..\\x', '0', '', true],
      ['d/l', '2', '../sibling', false], ['d/l', '2', '../../out', true], ['l', '2', '/etc', true], ['h', '1', '../x', true], ['h', '1', 'd/x', false],
    ];
    for (const [name, type, link, bad] of cases) assert.equal(escapingTarPath(name, type, link) !== undefined, bad, `${name} ${type} ${link}`);
  });
});
