// Renders media/icon.svg to media/icon.png (the extension icon) in headless Chromium: node scripts/render-icon.mjs media/icon.svg media/icon.png 256
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
const [svgPath, out, size] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: Number(size), height: Number(size) } });
const svg = readFileSync(svgPath, 'utf8');
await page.setContent(`<html><body style="margin:0;background:transparent">${svg.replace('width="256" height="256"', `width="${size}" height="${size}"`)}</body></html>`);
await page.screenshot({ path: out, omitBackground: true });
await browser.close();
