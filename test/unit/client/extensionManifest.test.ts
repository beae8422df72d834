// The extension's static parts: webview HTML shell and CSP, the manifest's contributions against the client
// code, the grammar, the packaging ignore list, and the webview script's use of safe DOM APIs only.
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { contentSecurityPolicy, inspectorHtml, makeNonce } from '../../../client/src/inspector/html';
import { DEFAULT_MODEL_EXTENSIONS, OPTIONAL_MODEL_EXTENSIONS, OPTIONAL_MODEL_NAMES, isModelFileName } from '../../../client/src/modelFiles';
import { REPO_ROOT } from '../../setup';

const read = (rel: string) => readFileSync(join(REPO_ROOT, rel), 'utf8');
const manifest = JSON.parse(read('package.json'));

describe('Inspector webview shell', () => {
  const html = inspectorHtml({ cspSource: 'https://cdn.example', scriptUri: 'https://x/inspector.js', styleUri: 'https://x/inspector.css', nonce: 'abc123' });

  it('has a strict CSP: nothing by default, script only by nonce, no inline or eval', () => {
    const csp = contentSecurityPolicy('vscode-resource:', 'N0NCE');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'nonce-N0NCE'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
  });

  it('loads its only script by nonce and has no inline script', () => {
    const scripts = html.match(/<script\b[^>]*>/g) ?? [];
    assert.equal(scripts.length, 1);
    assert.equal(scripts[0], '<script nonce="abc123" src="https://x/inspector.js">');
    assert.match(html, /<script[^>]*><\/script>/, 'the script element has no body');
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handler');
  });

  it('escapes the URIs it is given', () => {
    const evil = inspectorHtml({ cspSource: 'x', scriptUri: '"><img src=x onerror=alert(1)>', styleUri: 's', nonce: 'n' });
    assert.doesNotMatch(evil, /<img/);
    assert.match(evil, /&quot;&gt;&lt;img/);
  });

  it('makes a fresh alphanumeric nonce each time', () => {
    const a = makeNonce(), b = makeNonce();
    assert.notEqual(a, b);
    assert.match(a, /^[A-Za-z0-9]{16,}$/);
  });
});

describe('media/inspector.js builds the DOM safely', () => {
  const js = read('media/inspector.js');
  it('never parses strings as HTML or code', () => {
    for (const banned of [/\.innerHTML\s*=/, /\.outerHTML\s*=/, /insertAdjacentHTML/, /document\.write/, /\beval\s*\(/, /new Function\s*\(/, /setTimeout\(\s*['"`]/]) {
      assert.doesNotMatch(js, banned, `inspector.js must not use ${banned}`);
    }
  });
});

describe('package.json contributions', () => {
  const commands: string[] = manifest.contributes.commands.map((c: { command: string }) => c.command);

  it('contributes the five commands, each registered by the client', () => {
    assert.deepEqual([...commands].sort(), ['safeWeights.convertToSafetensors', 'safeWeights.openInInspector', 'safeWeights.scanWorkspace', 'safeWeights.showDisassembly', 'safeWeights.showFlaggedModels']);
    const src = read('client/src/commands.ts') + read('client/src/statusBar.ts');
    for (const c of commands) {
      const constant = /export const (\w+) = '([\w.]+)'/g;
      const names = new Map([...src.matchAll(constant)].map((m) => [m[2], m[1]]));
      assert.ok(src.includes(`reg('${c}'`) || (names.has(c) && src.includes(`reg(${names.get(c)},`)), `${c} is registered in client/src/commands.ts`);
    }
  });

  it('makes the Inspector the default editor for model files and an option for ambiguous ones', () => {
    const editors = manifest.contributes.customEditors as { viewType: string; priority: string; selector: { filenamePattern: string }[] }[];
    const patterns = (priority: string) => editors.filter((e) => e.viewType === 'safeWeights.inspector' && e.priority === priority)
      .flatMap((e) => e.selector.map((s) => s.filenamePattern)).sort();
    assert.deepEqual(patterns('default'), DEFAULT_MODEL_EXTENSIONS.map((e) => `*${e}`).sort());
    assert.deepEqual(patterns('option'), [...OPTIONAL_MODEL_EXTENSIONS.map((e) => `*${e}`), ...OPTIONAL_MODEL_NAMES].sort());
    assert.ok(isModelFileName('/w/llama/config.json') && !isModelFileName('/w/app/tsconfig.json'));
    assert.ok(isModelFileName('Model.SafeTensors') && isModelFileName('x.bin') && !isModelFileName('x.py'));
  });

  it('declares the settings with the agreed names and defaults', () => {
    const props = manifest.contributes.configuration.properties;
    assert.deepEqual(Object.keys(props).sort(), ['safeWeights.allowGlobals', 'safeWeights.enable', 'safeWeights.exclude', 'safeWeights.honorNosec', 'safeWeights.rules', 'safeWeights.trace.server', 'safeWeights.workspaceScan']);
    assert.deepEqual(props['safeWeights.allowGlobals'].default, []);
    assert.equal(props['safeWeights.enable'].default, true);
    assert.equal(props['safeWeights.workspaceScan'].default, true);
    assert.equal(props['safeWeights.honorNosec'].default, false);
    assert.deepEqual(props['safeWeights.rules'].additionalProperties.enum, ['off', 'info', 'warning', 'error']);
  });

  it('supports untrusted workspaces (nothing is executed) and activates on Python, notebooks and model files', () => {
    assert.equal(manifest.capabilities.untrustedWorkspaces.supported, true);
    assert.ok(manifest.capabilities.virtualWorkspaces);
    for (const e of ['onLanguage:python', 'onNotebook:jupyter-notebook', 'onCustomEditor:safeWeights.inspector']) {
      assert.ok(manifest.activationEvents.includes(e), e);
    }
    assert.ok(manifest.activationEvents.some((e: string) => e.startsWith('workspaceContains:') && e.includes('safetensors')));
  });

  it('registers the pickle-disassembly language with a grammar that parses', () => {
    const g = manifest.contributes.grammars.find((x: { language: string }) => x.language === 'pickle-disassembly');
    assert.ok(g);
    const grammar = JSON.parse(read(g.path));
    assert.equal(grammar.scopeName, g.scopeName);
    for (const p of grammar.patterns as { include: string }[]) {
      assert.ok(grammar.repository[p.include.slice(1)], `${p.include} is defined`);
    }
    // the opcode rule knows the opcodes that import and call
    const opcode = new RegExp(grammar.repository.opcode.match);
    for (const op of ['GLOBAL', 'STACK_GLOBAL', 'REDUCE', 'BUILD', 'NEWOBJ', 'INST', 'OBJ']) assert.ok(opcode.test(op), op);
  });
});

describe('.vscodeignore', () => {
  const lines = read('.vscodeignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  it('ships only bundles, wasm, media, syntaxes and the manifest', () => {
    assert.equal(lines[0], '**', 'everything is excluded first');
    const kept = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1));
    for (const must of ['package.json', 'dist/client.js', 'dist/server.js', 'dist/*.wasm', 'media/*.js', 'media/*.css', 'syntaxes/**']) assert.ok(kept.includes(must), must);
    assert.ok(!kept.some((k) => /src|test|\.map$|node_modules/.test(k)), `nothing from sources or tests: ${kept.join(', ')}`);
  });
});
