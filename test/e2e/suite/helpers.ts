// Helpers for the extension-host suites: the fixture workspace (written by scripts/e2e/fixtures.mjs),
// the extension's test API, and polling for diagnostics.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { SafeWeightsApi } from '../../../client/src/extension';

export const EXTENSION_ID = 'safe-weights.safe-weights';
export const SOURCE = 'safe-weights';

export function workspaceRoot(): vscode.Uri {
  const f = vscode.workspace.workspaceFolders?.[0];
  assert.ok(f, 'the fixture workspace is open');
  return f.uri;
}

export function fixture(rel: string): vscode.Uri {
  return vscode.Uri.joinPath(workspaceRoot(), ...rel.split('/'));
}

let api: SafeWeightsApi | undefined;
export async function extensionApi(): Promise<SafeWeightsApi> {
  if (api) return api;
  const ext = vscode.extensions.getExtension<SafeWeightsApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is installed`);
  api = await ext.activate();
  await api.ready();
  return api;
}

export function sleep(ms: number): Promise<void> { return new Promise((r) => setTimeout(r, ms)); }

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { lastError = e; }
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await sleep(200);
  }
}

export function codeOf(d: vscode.Diagnostic): string {
  const c = d.code;
  if (c === undefined) return '';
  return typeof c === 'object' ? String(c.value) : String(c);
}

export function ours(uri: vscode.Uri): vscode.Diagnostic[] {
  return vscode.languages.getDiagnostics(uri).filter((d) => d.source === SOURCE);
}

/** Waits until our diagnostics for `uri` satisfy `ok` (e.g. "has SW101 on line 2"). */
export async function waitForDiagnostics(uri: vscode.Uri, what: string, ok: (ds: vscode.Diagnostic[]) => boolean, timeoutMs = 60_000): Promise<vscode.Diagnostic[]> {
  try {
    return await waitFor(what, () => {
      const ds = ours(uri);
      return ok(ds) ? ds : undefined;
    }, timeoutMs);
  } catch (e) {
    const all = vscode.languages.getDiagnostics().map(([u, ds]) => `${u.toString()}: ${describe(ds)}`).join('\n  ');
    throw new Error(`${String(e)}\n  for ${uri.toString()}: ${describe(ours(uri))}\n  all diagnostics:\n  ${all}`);
  }
}

export function describe(ds: readonly vscode.Diagnostic[]): string {
  return ds.length ? ds.map((d) => `${codeOf(d)}@${d.range.start.line + 1}:${d.range.start.character + 1}`).join(', ') : 'none';
}

export async function closeAllEditors(): Promise<void> {
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
}
