// Proves the harness: the suite runs inside a real VS Code extension host with the extension loaded.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

describe('harness', () => {
  it('runs inside VS Code with a workspace folder', () => {
    assert.ok(vscode.version.length > 0);
    assert.ok(vscode.workspace.workspaceFolders?.length, 'a fixture workspace is open');
  });

});
