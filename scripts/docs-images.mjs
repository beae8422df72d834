// Makes the README's screenshots (docs/images/*.png, each < 100 KB) from the end-to-end run's screenshots
// (test-results/screenshots/, written by scripts/e2e/route-b.mjs): scaled down in headless Chromium.
// Run after `npm run test:e2e`: node scripts/docs-images.mjs
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const shots = join(root, 'test-results', 'screenshots');
const out = join(root, 'docs', 'images');
// [screenshot, README image, crop of the 1400x900 screenshot {x, y, width, height}, scale]
const IMAGES = [
  ['03-inspector-evil-pt.png', 'inspector-light.png', { x: 350, y: 70, width: 1050, height: 830 }, 0.6],
  // the dark screenshot has evil.pt in both editor groups: the second one, scrolled to the top
  ['09-inspector-evil-pt-dark.png', 'inspector-dark.png', { x: 875, y: 70, width: 525, height: 830 }, 0.75],
  ['02b-status-quick-pick.png', 'problems-light.png', { x: 0, y: 0, width: 1400, height: 900 }, 0.55],
];
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  // node scripts/docs-images.mjs [README image names...]: only those (default: all)
  const only = process.argv.slice(2);
  for (const [from, to, crop, scale] of IMAGES.filter(([, to]) => !only.length || only.includes(to))) {
    const w = Math.round(crop.width * scale), h = Math.round(crop.height * scale);
    const page = await browser.newPage({ viewport: { width: w, height: h } });
    const data = readFileSync(join(shots, from)).toString('base64');
    await page.setContent(`<body style="margin:0;overflow:hidden"><div style="width:${w}px;height:${h}px;overflow:hidden">`
      + `<img src="data:image/png;base64,${data}" style="transform-origin:0 0;transform:scale(${scale}) translate(${-crop.x}px,${-crop.y}px)"></div></body>`);
    await page.waitForFunction(() => document.images[0]?.complete);
    await page.screenshot({ path: join(out, to) });
    await page.close();
    const size = statSync(join(out, to)).size;
    console.log(`${to}: ${w}x${h}, ${(size / 1024).toFixed(0)} KB${size >= 100_000 ? '  (over 100 KB: crop or scale more)' : ''}`);
  }
} finally {
  await browser.close();
}
