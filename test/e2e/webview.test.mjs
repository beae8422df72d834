// The Model Inspector webview on its own, in Debian's Chromium: the real HTML shell (with its CSP and nonce),
// media/inspector.js and media/inspector.css, fed ModelReport-shaped messages the way the extension sends them.
// Run: node --test test/e2e/webview.test.mjs   (needs `npm run compile-tests` for the HTML shell)
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { root, launchChromium, chromiumPath, CI } from '../../scripts/e2e/lib.mjs';

const require = createRequire(import.meta.url);
const ORIGIN = 'http://inspector.test';
let browser;

before(async () => {
  if (!existsSync(chromiumPath)) {
    const msg = `Chromium is missing at ${chromiumPath} (apt-get install -y chromium)`;
    if (CI) throw new Error(`CI=true: ${msg}`);
    throw new Error(msg);
  }
  browser = await launchChromium();
});
after(async () => { await browser?.close(); });

function shellHtml() {
  const { inspectorHtml } = require(join(root, 'out', 'client', 'src', 'inspector', 'html.js'));
  return inspectorHtml({ cspSource: ORIGIN, scriptUri: `${ORIGIN}/media/inspector.js`, styleUri: `${ORIGIN}/media/inspector.css`,
    codiconUri: `${ORIGIN}/dist/codicons/codicon.css` });
}

const window0 = { codiconRequests: [] };

/** A page that behaves like a VS Code webview: acquireVsCodeApi() records what the script posts. */
async function openInspector() {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const events = { dialogs: [], violations: [], errors: [] };
  page.on('dialog', async (d) => { events.dialogs.push(d.message()); await d.dismiss(); });
  page.on('pageerror', (e) => events.errors.push(String(e)));
  await page.addInitScript(() => {
    window.__posted = [];
    let state;
    window.acquireVsCodeApi = () => ({
      postMessage: (m) => window.__posted.push(JSON.parse(JSON.stringify(m))),
      getState: () => state, setState: (s) => { state = s; },
    });
    document.addEventListener('securitypolicyviolation', (e) => {
      (window.__violations = window.__violations || []).push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await page.route(`${ORIGIN}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === '/index.html') return route.fulfill({ contentType: 'text/html', body: shellHtml() });
    if (path === '/media/inspector.js' || path === '/media/inspector.css') {
      return route.fulfill({ contentType: path.endsWith('.js') ? 'text/javascript' : 'text/css', body: readFileSync(join(root, path)) });
    }
    if (path === '/dist/codicons/codicon.css' || path === '/dist/codicons/codicon.ttf') {
      window0.codiconRequests.push(path);
      return route.fulfill({ contentType: path.endsWith('.css') ? 'text/css' : 'font/ttf', body: readFileSync(join(root, path)) });
    }
    return route.fulfill({ status: 404, body: '' });
  });
  await page.goto(`${ORIGIN}/index.html`);
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'ready'));
  const send = (m) => page.evaluate((msg) => window.postMessage(msg, '*'), m);
  return { page, events, send };
}

function report(over = {}) {
  return {
    path: '/w/evil.pt', kind: 'model', format: 'pytorch-zip', formatDetail: 'zip with 4 members', verdict: 'dangerous',
    summary: 'The pickle calls os.system: loading this file runs a shell command.',
    weightsOnly: { loads: false, reason: 'os.system is not in the weights-only allowlist' },
    findings: [{ rule: 'SW001', severity: 'dangerous', message: 'os.system is called at load time', global: 'os.system', offset: 154, member: 'evil/data.pkl' }],
    globals: [
      { module: 'os', name: 'system', offset: 154, member: 'evil/data.pkl', called: true, severity: 'dangerous', reason: 'runs a shell command' },
      { module: 'torch._utils', name: '_rebuild_tensor_v2', offset: 18, member: 'evil/data.pkl', called: true, severity: 'safe', reason: 'tensor rebuild' },
    ],
    tensors: [{ name: 'fc.weight', dtype: 'float32', shape: [2, 2], bytes: 16 }],
    metadata: {}, pickles: [{ member: 'evil/data.pkl', offset: 0, length: 210, protocol: 2, opcodes: 40, complete: true }],
    size: 1024,
    ...over,
  };
}

const lastRendered = (page) => page.evaluate(() => [...window.__posted].reverse().find((m) => m.type === 'rendered')?.state);

test('renders the verdict banner, weights_only answer and globals with offsets', async () => {
  const { page, events, send } = await openInspector();
  await send({ type: 'report', report: report(), fileName: 'evil.pt', canConvert: false });
  await page.waitForSelector('#verdict');
  assert.match(await page.textContent('#verdict'), /^Dangerous\s*The pickle calls os\.system/);
  assert.equal(await page.textContent('#weights-only'),
    'Loads with torch.load(weights_only=True): no, because os.system is not in the weights-only allowlist');
  const globals = await page.locator('table.simple').nth(1).innerText();
  assert.match(globals, /os\.system\s+called\s+0x9a \(154\) in evil\/data\.pkl/);
  assert.equal(await page.locator('table.simple').nth(1).locator('tbody tr').first().locator('code.global').textContent(), 'os.system',
    'the dangerous global is listed first, before the safe one that precedes it in the file');
  assert.equal(await page.locator('#convert').count(), 0, 'Convert is not offered where the converter refuses the file');
  const state = await lastRendered(page);
  assert.equal(state.verdict, 'dangerous');
  assert.equal(state.globals, 2);
  assert.deepEqual(state.actions, ['Open disassembly', 'Rescan']);
  assert.deepEqual(await page.evaluate(() => window.__violations ?? []), [], 'our own script and style load under the CSP');
  assert.deepEqual(events.errors, []);
  await page.close();
});

test('a dangerous file shows first what loading would run, with offset links, and what to do', async () => {
  const { page, events, send } = await openInspector();
  await send({ type: 'report', report: report(), fileName: 'evil.pt', canConvert: false });
  await page.waitForSelector('#danger');
  // the danger section comes right after the verdict, before the weights_only line, actions and facts
  const order = await page.evaluate(() => [...document.getElementById('app').children].map((e) => e.id || e.className));
  assert.deepEqual(order.slice(0, 4), ['head', 'verdict', 'danger', 'weights-only']);
  assert.match(await page.textContent('#danger'), /Decompiling…/);
  await send({ type: 'danger', calls: [{ text: "posix.system('echo pwned > /tmp/x')", global: 'posix.system', offset: 154, member: 'evil/data.pkl' }] });
  await page.waitForSelector('#danger code.call');
  assert.equal(await page.textContent('#danger code.call'), "posix.system('echo pwned > /tmp/x')");
  const todo = await page.textContent('#danger .todo');
  assert.match(todo, /Do not load it/);
  assert.match(todo, /Looking for code in this workspace/);
  assert.match(todo, /Get a safe copy/);
  await send({ type: 'loads', searched: true, sites: [{ label: 'train.py:3', detail: 'torch.load("evil.pt")' }] });
  await page.waitForSelector('#danger .sites button');
  assert.equal(await page.getAttribute('#danger .sites button', 'aria-label'), 'Open train.py:3');
  await page.click('#danger .sites button');
  assert.deepEqual(await page.evaluate(() => window.__posted.filter((m) => m.type === 'openLoad')), [{ type: 'openLoad', index: 0 }]);
  // the offset is a link to the opcode in the disassembly (by keyboard too)
  const link = page.locator('#danger button.link[data-offset]');
  assert.equal(await link.getAttribute('aria-label'), 'Open the disassembly at offset 154 of evil/data.pkl');
  await link.focus();
  await page.keyboard.press('Enter');
  assert.deepEqual(await page.evaluate(() => window.__posted.filter((m) => m.type === 'openDisassembly')),
    [{ type: 'openDisassembly', view: 'disassembly', offset: 154, member: 'evil/data.pkl' }]);
  assert.deepEqual((await lastRendered(page)).danger, ["posix.system('echo pwned > /tmp/x')"]);
  // the findings and globals tables link their offsets the same way
  assert.equal(await page.locator('table.simple button.link[data-offset="154"]').count(), 2);
  assert.deepEqual(events.errors, []);
  await page.close();
});

test('actions and sections follow the verdict and the format', async () => {
  const { page, events, send } = await openInspector();
  // a safe checkpoint: Convert is the primary action; parameter count, tensor bytes and dtype mix are shown
  await send({ type: 'report', fileName: 'sd.pt', canConvert: true, report: report({
    verdict: 'safe', summary: 'Only tensor-rebuilding globals.', findings: [], globals: [],
    weightsOnly: { loads: true, reason: 'only allowlisted globals' },
    tensors: [{ name: 'a', dtype: 'float32', shape: [3, 4], bytes: 48 }, { name: 'b', dtype: 'float32', shape: [4], bytes: 16 },
      { name: 'c', dtype: 'int64', shape: [], bytes: 8 }], tensorCount: 3 }) });
  await page.waitForSelector('#convert');
  let state = await lastRendered(page);
  assert.deepEqual(state.actions, ['Convert to safetensors', 'Open disassembly', 'Rescan']);
  assert.equal(await page.textContent('#fact-params'), '17');
  assert.equal(await page.textContent('#fact-tensor-bytes'), '72 bytes');
  assert.equal(await page.textContent('#fact-dtypes'), 'float32 × 2, int64 × 1');
  assert.equal(await page.textContent('#fact-format'), 'PyTorch checkpoint (zip), zip with 4 members');
  assert.equal(await page.locator('#danger, #caution').count(), 0);
  // the format and size are printed once
  const text = await page.textContent('#app');
  assert.equal(text.split('zip with 4 members').length - 1, 1, 'format detail once');
  assert.equal(text.split('1.0 KiB').length - 1, 1, 'size once');
  // a caution checkpoint the converter refuses: no Convert, the reason instead
  await send({ type: 'report', fileName: 'module.pt', canConvert: false, convertRefusal: 'loading it calls torch.nn.modules.linear.Linear',
    report: report({ verdict: 'caution', summary: 'Imports code outside the allowlist.', findings: [], globals: [] }) });
  await page.waitForSelector('#convert-refusal');
  assert.equal(await page.textContent('#convert-refusal'), 'Not converted to safetensors: loading it calls torch.nn.modules.linear.Linear.');
  assert.equal(await page.locator('#convert').count(), 0);
  assert.ok(await page.locator('#caution').count());
  // safetensors: no pickle tab, no disassembly button, no weights_only line, offsets are plain text
  await send({ type: 'report', fileName: 'm.safetensors', canConvert: false, report: report({
    verdict: 'invalid', format: 'safetensors', formatDetail: undefined, summary: 'The header is invalid.', pickles: [], globals: [],
    weightsOnly: { loads: null, reason: 'safetensors is not loaded by torch.load' }, metadata: { format: 'pt' },
    findings: [{ rule: 'SW020', severity: 'invalid', message: 'bad offsets', offset: 8 }] }) });
  await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'm.safetensors');
  state = await lastRendered(page);
  assert.deepEqual(state.tabs, ['overview', 'tensors', 'metadata']);
  assert.deepEqual(state.actions, ['Rescan']);
  assert.equal(await page.locator('#weights-only').count(), 0);
  assert.equal(await page.locator('button.link[data-offset]').count(), 0);
  assert.match(await page.textContent('table.simple'), /0x8 \(8\)/);
  // the icon font loads as a local resource under the CSP
  await page.waitForFunction(() => document.fonts.check('16px codicon'));
  assert.ok(window0.codiconRequests.includes('/dist/codicons/codicon.ttf'), 'codicon.ttf was fetched');
  assert.deepEqual(await page.evaluate(() => window.__violations ?? []), []);
  assert.deepEqual(events.errors, []);
  await page.close();
});

test('shows strings from the model file as text: no element, handler or script is injected', async () => {
  const { page, events, send } = await openInspector();
  const x = '<img src=x onerror="window.__xss=1;alert(1)">';
  const s = '<script>window.__xss=2;alert(2)</script>';
  await send({ type: 'report', fileName: `${x}.pt`, canConvert: false, report: report({
    summary: `summary ${x}`, formatDetail: s,
    weightsOnly: { loads: false, reason: s },
    findings: [{ rule: `${x}`, severity: `${s}`, message: x, offset: 1, member: s }],
    globals: [{ module: x, name: s, offset: 2, member: x, called: true, severity: 'dangerous', reason: x }],
    tensors: [{ name: x, dtype: s, shape: [1], bytes: 4 }],
    metadata: { [x]: s, '<style>*{display:none}</style>': '<a href="javascript:alert(3)">click</a>' },
  }) });
  await page.waitForSelector('#verdict');
  const tabs = ['overview', 'tensors', 'metadata', 'pickle'];
  for (const t of tabs) {
    await page.click(`#tab-${t}`);
    if (t === 'pickle') {
      await page.waitForFunction(() => window.__posted.some((m) => m.type === 'disassembly'));
      await send({ type: 'disassembly', result: { text: `  0: GLOBAL ${x} ${s}`, decompiled: s, truncated: false } });
      await page.waitForSelector('pre.code');
      assert.match(await page.textContent('pre.code'), /<img src=x onerror=/);
    }
    assert.equal(await page.locator('#app img, #app script, #app style, #app a, #app iframe').count(), 0, `no injected element on tab ${t}`);
    assert.equal(await page.locator('#app [onerror], #app [onclick], #app [href], #app [src]').count(), 0, `no injected attribute on tab ${t}`);
  }
  await page.click('#tab-metadata');
  const meta = await page.textContent('#app');
  assert.ok(meta.includes('<style>*{display:none}</style>'), 'metadata keys are shown literally');
  assert.ok(meta.includes('<a href="javascript:alert(3)">click</a>'), 'metadata values are shown literally');
  await page.click('#tab-tensors');
  assert.ok((await page.textContent('.vt-body')).includes(x), 'the tensor name is shown literally');
  assert.equal(await page.locator('script').count(), 1, 'only our own script element exists');
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'no payload ran');
  assert.deepEqual(events.dialogs, [], 'no alert was raised');
  assert.deepEqual(events.errors, []);
  await page.close();
});

test('a sparse tensor shows its layout beside its dtype and its stored bytes, outside the parameter count', async () => {
  const { page, events, send } = await openInspector();
  await send({ type: 'report', fileName: 'emb.pt', canConvert: true, report: report({
    verdict: 'safe', summary: 'Only tensor-rebuilding globals.', findings: [], globals: [],
    weightsOnly: { loads: true, reason: 'only allowlisted globals' },
    tensors: [{ name: 'emb', dtype: 'float32', shape: [1000, 1000], bytes: 280, layout: 'sparse_coo' },
      { name: 'w', dtype: 'float32', shape: [3, 2], bytes: 24, storageKey: 'emb/data/2', offset: 0 }], tensorCount: 2 }) });
  await page.waitForSelector('#fact-params');
  assert.equal(await page.textContent('#fact-params'), '6');
  assert.equal(await page.textContent('#fact-tensor-bytes'), '304 bytes');
  assert.equal(await page.textContent('#fact-dtypes'), 'float32 sparse_coo × 1, float32 × 1');
  await page.click('#tab-tensors');
  await page.waitForSelector('.vt-body .vt-row');
  const body = await page.textContent('.vt-body');
  assert.match(body, /emb\s*float32 sparse_coo\s*\[1000, 1000\]/);
  await page.screenshot({ path: join(root, 'test-results', 'screenshots', 'webview-sparse.png') });
  assert.deepEqual(events.errors, []);
  await page.close();
});

test('keeps a 50,000-row tensor table virtualised, filterable and sortable', async () => {
  const { page, events } = await openInspector();
  // the report is built inside the page: 50k objects through the test driver's serializer would dominate the time
  const ms = await page.evaluate((base) => {
    const tensors = Array.from({ length: 50_000 }, (_, i) => ({
      name: `model.layers.${i}.weight`, dtype: i % 2 ? 'float16' : 'float32', shape: [i % 97 + 1, 64], bytes: (i % 97 + 1) * 64 * (i % 2 ? 2 : 4),
    }));
    tensors[31_337].bytes = 1e12;
    const t0 = performance.now();
    window.dispatchEvent(new MessageEvent('message', { data: { type: 'report', fileName: 'big.safetensors', canConvert: false, report: { ...base, tensors } } }));
    document.getElementById('tab-tensors').click();
    return performance.now() - t0;
  }, report({ verdict: 'safe', format: 'safetensors', weightsOnly: { loads: null, reason: 'safetensors is not loaded by torch.load' } }));
  await page.waitForSelector('.vt-body .vt-row');
  console.log(`# 50k-row report rendered and tensor tab opened in ${ms.toFixed(0)} ms (information only; speed targets live in npm run bench)`);
  const rowsInDom = await page.locator('.vt-body .vt-row').count();
  assert.ok(rowsInDom > 10 && rowsInDom < 200, `only the visible rows are in the DOM (${rowsInDom})`);
  assert.equal(await page.textContent('#tensor-count'), '50,000 of 50,000 tensors');
  // scroll to the end: the last tensor becomes visible, the DOM stays small
  await page.locator('.vt-body').evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await page.waitForFunction(() => document.querySelector('.vt-body')?.textContent?.includes('model.layers.49999.weight'));
  assert.ok(await page.locator('.vt-body .vt-row').count() < 200);
  // filter
  await page.fill('#tensor-filter', 'layers.4999');
  await page.waitForFunction(() => document.querySelector('#tensor-count')?.textContent === '11 of 50,000 tensors');
  assert.equal((await lastRendered(page)).tensorRows, 11);
  await page.fill('#tensor-filter', '');
  await page.waitForFunction(() => document.querySelector('#tensor-count')?.textContent === '50,000 of 50,000 tensors');
  // sort by size, descending: the 1 TB tensor comes first
  await page.click('.c-bytes .sort');
  await page.click('.c-bytes .sort');
  assert.equal(await page.getAttribute('.vt-head .c-bytes', 'aria-sort'), 'descending');
  const first = await page.locator('.vt-body .vt-row').first().locator('.c-name').textContent();
  assert.equal(first, 'model.layers.31337.weight');
  assert.deepEqual(events.errors, []);
  await page.close();
});

test('is keyboard accessible: tabs move with the arrow keys, actions are buttons', async () => {
  const { page, send } = await openInspector();
  await send({ type: 'report', report: report(), fileName: 'evil.pt', canConvert: true });
  await page.waitForSelector('#tab-overview');
  await page.focus('#tab-overview');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getAttribute('#tab-tensors', 'aria-selected'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-tensors');
  await page.keyboard.press('End');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'tab-pickle');
  // SHA-256 on demand: the button asks the extension, the answer replaces it
  await page.keyboard.press('Home');
  await page.focus('#sha-button');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => window.__posted.some((m) => m.type === 'sha256'));
  await send({ type: 'sha256', sha256: 'ab'.repeat(32) });
  assert.equal(await page.textContent('#sha256'), 'ab'.repeat(32));
  await page.close();
});
