// Diagnostics of Python files and notebook cells, and every quick fix the server offers, applied for real.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { codeOf, closeAllEditors, describe as show, extensionApi, fixture, ours, waitFor, waitForDiagnostics, workspaceRoot } from './helpers';

function onLine(ds: vscode.Diagnostic[], code: string, line: number): vscode.Diagnostic | undefined {
  return ds.find((d) => codeOf(d) === code && d.range.start.line === line);
}

async function quickFixes(uri: vscode.Uri, d: vscode.Diagnostic): Promise<vscode.CodeAction[]> {
  const all = await vscode.commands.executeCommand<(vscode.CodeAction | vscode.Command)[]>(
    'vscode.executeCodeActionProvider', uri, d.range, vscode.CodeActionKind.QuickFix.value);
  return (all ?? []).filter((a): a is vscode.CodeAction => 'title' in a && !('command' in a && typeof a.command === 'string'))
    // executeCodeActionProvider drops `diagnostics` from its results: then every quick fix at the range counts
    .filter((a) => a.diagnostics?.some((x) => codeOf(x) === codeOf(d) && x.range.isEqual(d.range)) ?? true);
}

async function setText(doc: vscode.TextDocument, text: string): Promise<void> {
  const edit = new vscode.WorkspaceEdit();
  edit.replace(doc.uri, new vscode.Range(doc.positionAt(0), doc.positionAt(doc.getText().length)), text);
  assert.ok(await vscode.workspace.applyEdit(edit), 'restoring the original text');
}

/**
 * For every diagnostic of ours in `doc`, asks VS Code for the quick fixes, and applies each one to the original
 * text: the document must change and that diagnostic must go away. Returns the number of fixes applied.
 */
async function applyEveryQuickFix(doc: vscode.TextDocument, settle: () => Promise<vscode.Diagnostic[]>): Promise<number> {
  const original = doc.getText();
  const initial = await settle();
  let applied = 0;
  for (const d of initial) {
    // the previous diagnostic's last fix may have added lines (an import): start each one from the original text
    if (doc.getText() !== original) { await setText(doc, original); await settle(); }
    const fixes = await quickFixes(doc.uri, d);
    if (!fixes.length) {
      const raw = await vscode.commands.executeCommand<unknown[]>('vscode.executeCodeActionProvider', doc.uri, d.range);
      assert.fail(`${codeOf(d)} at line ${d.range.start.line + 1} offers no quick fix; the providers returned ${JSON.stringify(raw).slice(0, 1500)}`);
    }
    for (const fix of fixes) {
      // Show documentation opens the README and changes nothing (tested on its own)
      if (fix.command?.command === 'safeWeights.showRuleDocumentation') continue;
      await setText(doc, original);
      const before = await settle();
      const target = before.find((x) => codeOf(x) === codeOf(d) && x.range.isEqual(d.range));
      assert.ok(target, `${codeOf(d)} is back after restoring the text (now: ${show(before)})`);
      const fresh = (await quickFixes(doc.uri, target)).find((f) => f.title === fix.title);
      assert.ok(fresh, `quick fix "${fix.title}" is offered again`);
      assert.ok(fresh.edit || fresh.command, `quick fix "${fix.title}" has an edit or a command`);
      if (fresh.edit) assert.ok(await vscode.workspace.applyEdit(fresh.edit), `applying "${fix.title}"`);
      if (fresh.command) await vscode.commands.executeCommand(fresh.command.command, ...(fresh.command.arguments ?? []));
      assert.notEqual(doc.getText(), original, `"${fix.title}" changed the text`);
      const sameCodeBefore = before.filter((x) => codeOf(x) === codeOf(d)).length;
      await waitFor(`"${fix.title}" to remove ${codeOf(d)} (was ${sameCodeBefore}); now ${show(ours(doc.uri))}`,
        () => ours(doc.uri).filter((x) => codeOf(x) === codeOf(d)).length < sameCodeBefore, 30_000);
      applied++;
    }
  }
  await setText(doc, original);
  return applied;
}

describe('code diagnostics and quick fixes', () => {
  before(async () => { await extensionApi(); });
  after(closeAllEditors);

  it('flags torch.load in a .py file (SW101 on the call)', async () => {
    const uri = fixture('app.py');
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const ds = await waitForDiagnostics(uri, 'SW101 on line 3', (x) => !!onLine(x, 'SW101', 2));
    const d = onLine(ds, 'SW101', 2)!;
    assert.match(doc.getText(d.range), /torch\.load/, 'the squiggle covers the torch.load call');
    assert.ok(d.severity <= vscode.DiagnosticSeverity.Warning, 'SW101 is a warning or an error');
    assert.ok(d.message.length > 10, 'the message explains the problem');
  });

  it('flags torch.load and pickle.load in notebook cells', async () => {
    const nb = await vscode.workspace.openNotebookDocument(fixture('analysis.ipynb'));
    await vscode.window.showNotebookDocument(nb);
    assert.equal(nb.notebookType, 'jupyter-notebook');
    const torchCell = nb.cellAt(1).document;
    const pickleCell = nb.cellAt(2).document;
    assert.equal(torchCell.languageId, 'python');
    await waitForDiagnostics(torchCell.uri, 'SW101 in cell 2', (x) => !!onLine(x, 'SW101', 1));
    await waitForDiagnostics(pickleCell.uri, 'SW102 in cell 3', (x) => !!onLine(x, 'SW102', 1));
    assert.equal(ours(nb.cellAt(0).document.uri).length, 0, 'the markdown cell has no diagnostics');
  });

  it('applies every quick fix offered for a .py file', async () => {
    const uri = fixture('fixes.py');
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const n = await applyEveryQuickFix(doc, () => waitForDiagnostics(uri, 'SW101 and SW102',
      (x) => !!onLine(x, 'SW101', 3) && !!onLine(x, 'SW102', 5)));
    assert.ok(n >= 2, `applied ${n} quick fixes`);
    await doc.save();
  });

  it('a training checkpoint: the conversion fix rewrites the load, and the rewritten code returns what torch.load returned (real torch)', async () => {
    const uri = fixture('train.py');
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const ds = await waitForDiagnostics(uri, 'SW101 naming training.pt', (x) => /^Add weights_only=True: training\.pt loads with it/.test(onLine(x, 'SW101', 2)?.message ?? ''));
    const d = onLine(ds, 'SW101', 2)!;
    assert.equal(typeof d.code === 'object' ? String(d.code.target) : '', 'https://github.com/safe-weights/safe-weights#sw101', 'the code links the README anchor');
    const fixes = await waitFor('the conversion fix', async () => {
      const f = await quickFixes(uri, d);
      return f.some((a) => /^Convert training\.pt to safetensors and rebuild the same checkpoint/.test(a.title)) ? f : undefined;
    }, 60_000);
    const titles = fixes.map((f) => f.title);
    for (const want of [/^Show documentation for SW101/, /^Suppress SW101 on this line/, /^Suppress SW101 in this file/]) assert.ok(titles.some((t) => want.test(t)), `${want} in ${titles.join(' | ')}`);
    const convert = fixes.find((a) => /^Convert training\.pt/.test(a.title))!;
    await vscode.commands.executeCommand(convert.command!.command, ...(convert.command!.arguments ?? []));
    await waitFor('the rewritten load', () => doc.getText().includes('ckpt = load_safetensors_checkpoint("checkpoints/training.safetensors")'), 60_000);
    await doc.save();
    // the rewritten file, run with real torch (and a stand-in of the safetensors API: Debian has no safetensors)
    const repo = join(__dirname, '..', '..', '..', '..');
    const oracle = join(repo, 'test', 'oracle');
    const program = `exec(open("train.py").read())\nimport json, torch\nfrom compare_checkpoint import differences\nprint(json.dumps(differences(ckpt, torch.load("checkpoints/training.pt"))))\n`;
    const r = spawnSync('/usr/bin/python3', ['-c', program], { cwd: workspaceRoot().fsPath, encoding: 'utf8', timeout: 120_000,
      env: { ...process.env, PYTHONPATH: `${join(oracle, 'safetensors_standin')}:${oracle}`, PYTHONDONTWRITEBYTECODE: '1' } });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop()!), [], 'the rebuilt checkpoint equals torch.load of the original');
  });

  it('a big .py file (pulled diagnostics, parsed in segments): findings follow typing, a string opened and closed', async () => {
    // 1,200 functions, ~75 KB: past the server's forest size, so a keystroke re-parses one segment
    const K = 1200;
    const lines = ['import torch', 'import pickle', ''];
    for (let k = 0; k < K; k++) lines.push(`def f_${k}(p):`, '    x = 1  # a line long enough to make the file big enough', '    return torch.load(p)', '');
    const original = lines.join('\n');
    const uri = fixture('big_generated.py');
    await vscode.workspace.fs.writeFile(uri, Buffer.from(original));
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const count = (ds: vscode.Diagnostic[], code: string): number => ds.filter((d) => codeOf(d) === code).length;
    const lineOf = (text: string): number => doc.getText().split('\n').indexOf(text);
    const insert = async (line: number, text: string): Promise<void> => {
      const edit = new vscode.WorkspaceEdit();
      edit.insert(uri, new vscode.Position(line, 0), text);
      assert.ok(await vscode.workspace.applyEdit(edit));
    };
    try {
      // every finding once: pulled, and not also pushed
      const opened = await waitForDiagnostics(uri, `${K} SW101`, (x) => count(x, 'SW101') === K);
      assert.equal(new Set(opened.map((d) => d.range.start.line)).size, K, 'one SW101 per function, none twice');
      await insert(lineOf('def f_600(p):') + 1, '    y = pickle.loads(b)\n');
      const last = lineOf('def f_1199(p):') + 2;
      await waitForDiagnostics(uri, 'SW102 in f_600 and f_1199\'s SW101 a line down', (x) =>
        count(x, 'SW102') === 1 && !!onLine(x, 'SW102', lineOf('def f_600(p):') + 1) && !!onLine(x, 'SW101', last) && count(x, 'SW101') === K);
      // a string opened before f_300 (tree-sitter reads an unclosed one at the end as an error and goes on: no
      // change yet) and closed before f_900: f_300 .. f_899, and the pickle load in f_600, are text
      await insert(lineOf('def f_300(p):'), 's = """\n');
      await insert(lineOf('def f_900(p):'), '"""\n');
      await waitForDiagnostics(uri, '600 SW101 once the string is closed', (x) => count(x, 'SW101') === 600 && count(x, 'SW102') === 0 && !!onLine(x, 'SW101', lineOf('def f_900(p):') + 2));
      await setText(doc, original);
      await waitForDiagnostics(uri, `${K} SW101 again`, (x) => count(x, 'SW101') === K && count(x, 'SW102') === 0);
    } finally {
      await doc.save();
      await closeAllEditors();
      await vscode.workspace.fs.delete(uri);
    }
  });

  it('applies every quick fix offered for a notebook cell', async () => {
    const nb = await vscode.workspace.openNotebookDocument(fixture('analysis.ipynb'));
    await vscode.window.showNotebookDocument(nb);
    const cell = nb.cellAt(1).document;
    const n = await applyEveryQuickFix(cell, () => waitForDiagnostics(cell.uri, 'SW101 in cell 2', (x) => !!onLine(x, 'SW101', 1)));
    assert.ok(n >= 1, `applied ${n} quick fixes`);
    await nb.save();
  });
});
