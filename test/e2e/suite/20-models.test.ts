// Model files: the Inspector as default editor, what it renders, the workspace scan and its Problems entries,
// the status bar, the disassembly document and the conversion command.
import * as assert from 'node:assert/strict';
import { existsSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import type { ScanWorkspaceResult, ConvertResult } from '../../../server/src/protocol';
import type { RenderedState } from '../../../client/src/inspector/messages';
import { closeAllEditors, codeOf, extensionApi, fixture, ours, waitFor, waitForDiagnostics } from './helpers';

const VIEW_TYPE = 'safeWeights.inspector';

function activeCustomEditor(): vscode.TabInputCustom | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom ? input : undefined;
}

async function rendered(uri: vscode.Uri, what: string, ok: (s: RenderedState) => boolean): Promise<RenderedState> {
  const api = await extensionApi();
  return waitFor(`the Inspector to render ${what} for ${uri.path} (now: ${JSON.stringify(api.inspector.rendered.get(uri.toString()))})`, () => {
    const s = api.inspector.rendered.get(uri.toString());
    return s && ok(s) ? s : undefined;
  }, 60_000);
}

describe('model files', () => {
  before(async () => { await extensionApi(); });
  afterEach(closeAllEditors);

  it('opens a malicious .pt in the Inspector by default and shows it as dangerous', async () => {
    const uri = fixture('checkpoints/evil.pt');
    await vscode.commands.executeCommand('vscode.open', uri);
    await waitFor('a custom editor tab', () => activeCustomEditor());
    assert.equal(activeCustomEditor()?.viewType, VIEW_TYPE, '.pt opens in the Model Inspector by default');
    const s = await rendered(uri, 'a report', (x) => !!x.verdict);
    assert.equal(s.verdict, 'dangerous');
    assert.match(s.banner, /dangerous/i);
    assert.match(s.weightsOnly, /weights_only=True\): no/);
    assert.ok(s.globals >= 1, 'the imported globals are listed');
    assert.ok(!s.actions.includes('Convert to safetensors'), `no Convert on a dangerous file (actions: ${s.actions})`);
    // what loading would run: the decompiled call with its arguments, first on the page
    const d = await rendered(uri, 'the dangerous calls', (x) => x.danger.length > 0);
    assert.ok(d.danger.some((c) => /^(os|posix)\.system\('.+'\)$/.test(c)), `the call with its argument: ${JSON.stringify(d.danger)}`);
  });

  it('opens the disassembly at an offset with that opcode selected', async () => {
    const api = await extensionApi();
    const uri = fixture('checkpoints/evil.pt');
    const report = await (await api.ready()).sendRequest<{ globals: { module: string; name: string; offset: number; member?: string }[] }>('safeWeights/modelReport', { uri: uri.toString() });
    const g = report.globals.find((x) => x.name === 'system');
    assert.ok(g, 'os.system is among the globals');
    // the function the Inspector's offset links call
    const editor = await api.openDisassemblyAt(uri, { offset: g.offset, member: g.member });
    const line = editor.document.lineAt(editor.selection.start.line).text;
    assert.match(line, new RegExp(`^\\s*${g.offset}:\\s+\\w*GLOBAL`), `the selected line is the opcode: ${line}`);
  });

  it('shows a benign torch checkpoint as safe with its tensors', async () => {
    const uri = fixture('checkpoints/model.pt');
    await vscode.commands.executeCommand('vscode.open', uri);
    const s = await rendered(uri, 'a report', (x) => !!x.verdict);
    assert.equal(s.verdict, 'safe');
    assert.equal(s.tensorRows, 2);
    assert.match(s.weightsOnly, /weights_only=True\): yes/);
    assert.equal(s.actions[0], 'Convert to safetensors', 'Convert is the first action on a safe checkpoint');
  });

  it('shows a .safetensors file with its tensors and metadata', async () => {
    const uri = fixture('checkpoints/model.safetensors');
    await vscode.commands.executeCommand('safeWeights.openInInspector', uri);
    assert.equal(activeCustomEditor()?.viewType, VIEW_TYPE);
    const s = await rendered(uri, 'a report', (x) => !!x.verdict);
    assert.equal(s.verdict, 'safe');
    assert.equal(s.tensorRows, 2);
    assert.equal(s.metadataKeys, 1);
    assert.deepEqual(s.tabs, ['overview', 'tensors', 'metadata'], 'no Pickle tab for safetensors');
    assert.deepEqual(s.actions, ['Rescan'], 'no disassembly or conversion for safetensors');
  });

  it('renders files whose names, metadata and globals are HTML as data', async () => {
    const st = fixture('checkpoints/xss.safetensors');
    await vscode.commands.executeCommand('safeWeights.openInInspector', st);
    const a = await rendered(st, 'a report', (x) => !!x.verdict);
    assert.equal(a.tensorRows, 2);
    assert.equal(a.metadataKeys, 1);
    const pkl = fixture('checkpoints/xss.pkl');
    await vscode.commands.executeCommand('safeWeights.openInInspector', pkl);
    const b = await rendered(pkl, 'a report', (x) => !!x.verdict);
    assert.ok(['caution', 'dangerous'].includes(b.verdict), `unknown global is flagged (verdict ${b.verdict})`);
    assert.ok(b.globals >= 1);
  });

  it('opens a 5 GiB safetensors file without reading its data; SHA-256 is left for the button', async () => {
    // sparse file: a real header and 5 GiB of (unallocated) tensor data
    const size = 5 * 1024 ** 3;
    const header = Buffer.from(JSON.stringify({ big: { dtype: 'F32', shape: [size / 4], data_offsets: [0, size] } }).padEnd(64, ' '));
    const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(header.length));
    const path = join(fixture('checkpoints').fsPath, 'big.safetensors');
    writeFileSync(path, Buffer.concat([len, header]));
    truncateSync(path, 8 + header.length + size);
    const uri = vscode.Uri.file(path);
    await vscode.commands.executeCommand('vscode.open', uri);
    const s = await rendered(uri, 'a report', (x) => !!x.verdict);
    assert.equal(s.verdict, 'safe');
    assert.equal(s.tensorRows, 1);
    assert.equal(s.sha256, undefined, 'a 5 GiB file is not hashed unless asked');
  });

  it('scans the workspace: dangerous model files appear in Problems and in the status bar', async () => {
    const api = await extensionApi();
    const r = await vscode.commands.executeCommand<ScanWorkspaceResult | undefined>('safeWeights.scanWorkspace');
    assert.ok(r, 'the scan returned its counts');
    assert.ok(r.files >= 5, `all fixture model files were scanned (${r.files})`);
    assert.ok(r.dangerous >= 1, 'evil.pt counts as dangerous');
    const evil = fixture('checkpoints/evil.pt');
    const ds = await waitForDiagnostics(evil, 'a Problems entry for evil.pt',
      (x) => x.some((d) => d.severity === vscode.DiagnosticSeverity.Error));
    assert.ok(ds.some((d) => /^SW0\d\d$/.test(codeOf(d))), 'model findings carry SW0xx codes');
    assert.equal(ours(fixture('checkpoints/model.safetensors')).length, 0, 'a clean file has no Problems entry');
    await waitFor('the status bar to count dangerous files', () => (api.status.last?.dangerous ?? 0) >= 1 && !api.status.last?.scanning);
    // model files only: the fixture's .py and notebook findings are not counted, the flagged files are listed
    const last = api.status.last!;
    assert.equal(last.scanned, r.files);
    assert.ok(last.files.some((f) => f.uri === evil.toString() && f.verdict === 'dangerous'), JSON.stringify(last.files));
    assert.ok(last.files.every((f) => !/\.(py|ipynb)$/.test(f.uri)), 'no code file among the flagged model files');
    // the Problems entry says where in the bytes (a binary file has no line)
    assert.ok(ds.some((d) => /^At byte \d+ \(0x[0-9a-f]+\) of evil\/data\.pkl: /.test(d.message)), ds.map((d) => d.message).join('; '));
  });

  it('shows the pickle disassembly in a pickle-disassembly document', async () => {
    const editor = await vscode.commands.executeCommand<vscode.TextEditor>('safeWeights.showDisassembly', fixture('checkpoints/evil.pt'));
    assert.ok(editor, 'an editor was opened');
    assert.equal(editor.document.languageId, 'pickle-disassembly');
    const text = editor.document.getText();
    assert.match(text, /REDUCE/);
    assert.match(text, /system/);
  });

  it('converts a benign checkpoint to safetensors and opens the result', async () => {
    const uri = fixture('checkpoints/model.pt');
    const outUri = fixture('checkpoints/converted.safetensors').toString();
    const r = await vscode.commands.executeCommand<ConvertResult>('safeWeights.convertToSafetensors', uri, { outUri });
    assert.ok(r, 'the command reports a result');
    assert.equal(r.ok, true, `conversion failed: ${r.message}`);
    assert.equal(r.outUri, outUri);
    const out = vscode.Uri.parse(r.outUri!);
    assert.ok(existsSync(out.fsPath), `${out.fsPath} exists`);
    await vscode.commands.executeCommand('safeWeights.openInInspector', out);
    const s = await rendered(out, 'the converted file', (x) => !!x.verdict);
    assert.equal(s.verdict, 'safe');
    assert.equal(s.tensorRows, 2);
  });

  it('reports why a malicious checkpoint is not converted', async () => {
    const outUri = fixture('checkpoints/evil-converted.safetensors');
    const r = await vscode.commands.executeCommand<ConvertResult>('safeWeights.convertToSafetensors',
      fixture('checkpoints/evil.pt'), { outUri: outUri.toString() });
    assert.ok(r);
    assert.equal(r.ok, false);
    assert.match(r.message, /os\.system/, 'the refusal names the dangerous global');
    assert.ok(!existsSync(outUri.fsPath), 'nothing was written');
  });
});
