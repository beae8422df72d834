// What a new user meets first: the walkthrough, the icon, and a README for users that still carries the two
// commands and links only to files that exist (small images, developer material in CONTRIBUTING.md / docs/).
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../setup';

const read = (rel: string) => readFileSync(join(REPO_ROOT, rel), 'utf8');
const manifest = JSON.parse(read('package.json'));

/** Width and height from a PNG's IHDR chunk. */
function pngSize(file: string): { width: number; height: number } {
  const b = readFileSync(file);
  assert.equal(b.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', `${file} is a PNG`);
  assert.equal(b.subarray(12, 16).toString('latin1'), 'IHDR');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

describe('onboarding', () => {
  it('a walkthrough of at least four steps: scan, inspect, fix a load, convert, each with existing media and a contributed command', () => {
    const walks = manifest.contributes.walkthroughs as { id: string; steps: { id: string; description: string; media: { markdown?: string }; completionEvents: string[] }[] }[];
    assert.equal(walks.length, 1);
    const steps = walks[0].steps;
    assert.deepEqual(steps.map((s) => s.id), ['scan', 'inspect', 'fix', 'convert']);
    const ours = new Set((manifest.contributes.commands as { command: string }[]).map((c) => c.command));
    for (const s of steps) {
      assert.ok(s.media.markdown && existsSync(join(REPO_ROOT, s.media.markdown)), `${s.id}: media ${s.media.markdown}`);
      const links = [...s.description.matchAll(/\(command:([\w.]+)\)/g)].map((m) => m[1]);
      assert.ok(links.length > 0, `${s.id} has a command link`);
      for (const c of links) assert.ok(ours.has(c) || c.startsWith('workbench.'), `${s.id}: ${c} exists`);
      assert.ok(s.completionEvents.every((e) => e.startsWith('onCommand:')), s.id);
    }
  });

  it('an icon: a PNG of at least 128 px, under 100 KB', () => {
    const icon = join(REPO_ROOT, manifest.icon);
    const { width, height } = pngSize(icon);
    assert.ok(width >= 128 && width === height, `${width}x${height}`);
    assert.ok(statSync(icon).size < 100_000, 'icon < 100 KB');
  });

  it('README for users keeps the two commands and links only to files that exist; images are small PNGs', () => {
    const readme = read('README.md');
    assert.ok(readme.includes('bash scripts/setup.sh && node dist/cli.js scan examples/ --fail-on never'), 'main command');
    assert.ok(readme.includes('bash scripts/test-all.sh'), 'test command');
    for (const section of ['## What it finds', '### Use in CI', '### Rules', '### Configuration']) assert.ok(readme.includes(section), section);
    const links = [...readme.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/.test(l));
    assert.ok(links.includes('CONTRIBUTING.md'), 'README points developers to CONTRIBUTING.md');
    for (const l of links) {
      assert.ok(existsSync(join(REPO_ROOT, l)), `README links to ${l}, which exists`);
      if (l.endsWith('.png')) {
        assert.ok(statSync(join(REPO_ROOT, l)).size < 100_000, `${l} < 100 KB`);
        assert.ok(pngSize(join(REPO_ROOT, l)).width >= 300, `${l} is a readable screenshot`);
      }
    }
    // developer material lives elsewhere
    for (const dev of ['npm run bench', 'Route A', 'esbuild bundles']) assert.ok(!readme.includes(dev), `README has no "${dev}"`);
    assert.ok(read('CONTRIBUTING.md').includes('bash scripts/test-all.sh'));
  });
});
