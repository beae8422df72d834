// Starts the real bundled server (`node dist/server.js --stdio`) and speaks LSP to it over its stdio.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, ProgressType, type MessageConnection } from 'vscode-jsonrpc/node';
import type { Diagnostic, PublishDiagnosticsParams, CodeAction, TextEdit, Range } from 'vscode-languageserver-protocol';

export const ROOT = join(__dirname, '..', '..', '..');
export const SERVER = join(ROOT, 'dist', 'server.js');

export class LspClient {
  readonly conn: MessageConnection;
  readonly diagnostics = new Map<string, Diagnostic[]>();
  readonly notifications: { method: string; params: unknown }[] = [];
  private waiters: { uri: string; resolve: (d: Diagnostic[]) => void }[] = [];
  private versions = new Map<string, number>();

  private constructor(readonly proc: ChildProcess) {
    this.conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    this.conn.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => {
      this.diagnostics.set(p.uri, p.diagnostics);
      const ready = this.waiters.filter((w) => w.uri === p.uri);
      this.waiters = this.waiters.filter((w) => w.uri !== p.uri);
      for (const w of ready) w.resolve(p.diagnostics);
    });
    this.conn.onNotification((method: string, params: unknown) => {
      this.notifications.push({ method, params });
    });
    this.conn.onRequest('window/workDoneProgress/create', (p: { token: string | number }) => {
      this.conn.onProgress(new ProgressType<unknown>(), p.token, (value) => this.notifications.push({ method: '$/progress', params: { token: p.token, value } }));
      return null;
    });
    this.conn.onRequest('client/registerCapability', () => null);
    this.conn.onRequest('workspace/diagnostic/refresh', () => { this.refreshes++; return null; });
    this.conn.onRequest('workspace/configuration', (p: { items: unknown[] }) => p.items.map(() => this.settings));
    this.conn.listen();
  }

  settings: unknown = null;
  /** workspace/diagnostic/refresh requests received (a pulling client pulls again on each). */
  refreshes = 0;
  /** The server's answer to initialize. */
  initialized: { capabilities: Record<string, unknown> } | undefined;

  /** `pull`: the client pulls document diagnostics (textDocument/diagnostic, with refresh support), as VS Code's does. */
  static async start(rootDir?: string, opts: { workspaceScan?: boolean; settings?: unknown; pull?: boolean } = {}): Promise<LspClient> {
    if (!existsSync(SERVER)) throw new Error(`${SERVER} is missing: run npm run build first`);
    const proc = spawn(process.execPath, [SERVER, '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const client = new LspClient(proc);
    client.settings = opts.settings ?? { workspaceScan: opts.workspaceScan ?? false };
    const rootUri = rootDir ? pathToFileURL(rootDir).href : null;
    client.initialized = await client.conn.sendRequest('initialize', {
      processId: process.pid, rootUri,
      workspaceFolders: rootUri ? [{ uri: rootUri, name: 'ws' }] : null,
      capabilities: {
        workspace: { configuration: true, workspaceFolders: true, didChangeWatchedFiles: { dynamicRegistration: true },
          ...(opts.pull ? { diagnostics: { refreshSupport: true } } : {}) },
        window: { workDoneProgress: true },
        notebookDocument: { synchronization: { dynamicRegistration: false } },
        textDocument: { publishDiagnostics: { relatedInformation: true }, ...(opts.pull ? { diagnostic: { dynamicRegistration: false } } : {}) },
      },
    });
    await client.conn.sendNotification('initialized', {});
    return client;
  }

  /** Resolves with the next diagnostics published for `uri`. */
  nextDiagnostics(uri: string, timeoutMs = 20000): Promise<Diagnostic[]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no diagnostics for ${uri} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ uri, resolve: (d) => { clearTimeout(timer); resolve(d); } });
    });
  }

  async open(uri: string, text: string, languageId = 'python'): Promise<Diagnostic[]> {
    const next = this.nextDiagnostics(uri);
    this.versions.set(uri, 1);
    await this.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId, version: 1, text } });
    return next;
  }

  async change(uri: string, text: string, range?: Range): Promise<Diagnostic[]> {
    const next = this.nextDiagnostics(uri);
    const version = (this.versions.get(uri) ?? 1) + 1;
    this.versions.set(uri, version);
    await this.conn.sendNotification('textDocument/didChange', {
      textDocument: { uri, version }, contentChanges: [range ? { range, text } : { text }],
    });
    return next;
  }

  /** textDocument/diagnostic for `uri` (a pulling client). */
  pull(uri: string, previousResultId?: string): Promise<{ kind: 'full' | 'unchanged'; resultId?: string; items?: Diagnostic[] }> {
    return this.conn.sendRequest('textDocument/diagnostic', { textDocument: { uri }, previousResultId });
  }

  /** Sends didOpen without waiting for pushed diagnostics (a pulling client asks for them). */
  async openOnly(uri: string, text: string, languageId = 'python'): Promise<void> {
    this.versions.set(uri, 1);
    await this.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId, version: 1, text } });
  }

  /** Sends one didChange without waiting for pushed diagnostics. */
  async changeOnly(uri: string, text: string, range?: Range): Promise<void> {
    const version = (this.versions.get(uri) ?? 1) + 1;
    this.versions.set(uri, version);
    await this.conn.sendNotification('textDocument/didChange', { textDocument: { uri, version }, contentChanges: [range ? { range, text } : { text }] });
  }

  codeActions(uri: string, range: Range, diagnostics: Diagnostic[], only?: string[]): Promise<CodeAction[]> {
    return this.conn.sendRequest('textDocument/codeAction', { textDocument: { uri }, range, context: { diagnostics, only } });
  }

  async stop(): Promise<void> {
    try {
      await Promise.race([this.conn.sendRequest('shutdown'), new Promise((r) => setTimeout(r, 2000))]);
      await this.conn.sendNotification('exit');
    } catch {
      // already gone
    }
    this.conn.dispose();
    this.proc.kill();
  }
}

/** Polls `get` until it returns a value (or fails after `timeoutMs`). */
export async function until<T>(what: string, get: () => T | undefined, timeoutMs = 20000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Applies LSP text edits to a text (edits must not overlap). */
export function applyEdits(text: string, edits: TextEdit[]): string {
  const starts: number[] = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  const off = (p: { line: number; character: number }): number => starts[p.line] + p.character;
  const sorted = edits.map((e) => ({ s: off(e.range.start), e: off(e.range.end), t: e.newText })).sort((a, b) => b.s - a.s || b.e - a.e);
  let out = text;
  for (const e of sorted) out = out.slice(0, e.s) + e.t + out.slice(e.e);
  return out;
}
