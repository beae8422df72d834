// Model Inspector: a read-only custom editor. The file is never read here: the language server scans it
// (headers and pickle streams only, no tensor data) and the webview renders the report.
import * as vscode from 'vscode';
import type { ModelReport } from '../../../server/src/models/types';
import {
  ModelReportRequest, ModelReportParams, DisassemblyRequest, DisassemblyParams, DisassemblyResult, ConvertResult,
} from '../../../server/src/protocol';
import { refusalReason } from '../../../server/src/models/convert/convert';
import { CONVERTIBLE_FORMATS } from '../modelFiles';
import type { OpcodeAt } from '../disassembly';
import { dangerCalls } from './dangerCalls';
import { inspectorHtml } from './html';
import type { FromWebview, LoadSite, RenderedState, ToWebview } from './messages';

export const INSPECTOR_VIEW_TYPE = 'safeWeights.inspector';

/** What the provider needs from the rest of the extension. */
export interface InspectorHost {
  request<R>(method: string, params: unknown): Promise<R>;
  openDisassembly(uri: vscode.Uri, view: 'disassembly' | 'decompiled', at?: OpcodeAt): Promise<unknown>;
  convert(uri: vscode.Uri): Promise<ConvertResult | undefined>;
  log(line: string): void;
}

export class ModelInspectorProvider implements vscode.CustomReadonlyEditorProvider {
  /** Last state each open Inspector reported after rendering (keyed by file URI); read by the e2e tests. */
  readonly rendered = new Map<string, RenderedState>();
  private readonly panels = new Map<string, Set<vscode.WebviewPanel>>();
  private readonly changed = new vscode.EventEmitter<string>();
  readonly onDidRender = this.changed.event;

  constructor(private readonly extensionUri: vscode.Uri, private readonly host: InspectorHost) {}

  static register(context: vscode.ExtensionContext, host: InspectorHost): ModelInspectorProvider {
    const provider = new ModelInspectorProvider(context.extensionUri, host);
    context.subscriptions.push(vscode.window.registerCustomEditorProvider(INSPECTOR_VIEW_TYPE, provider, {
      webviewOptions: { retainContextWhenHidden: true },
      supportsMultipleEditorsPerDocument: true,
    }));
    return provider;
  }

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    // rescan when the file changes on disk (a checkpoint rewritten by training, a conversion overwriting it)
    const dir = vscode.Uri.joinPath(uri, '..');
    const name = uri.path.split('/').pop() ?? '';
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(dir, name));
    const refresh = () => this.refresh(uri.toString());
    const subs = [watcher, watcher.onDidChange(refresh), watcher.onDidCreate(refresh)];
    return { uri, dispose: () => subs.forEach((d) => d.dispose()) };
  }

  private refresh(key: string): void {
    for (const p of this.panels.get(key) ?? []) void p.webview.postMessage({ type: 'refresh' });
  }

  isOpen(uri: vscode.Uri): boolean {
    return (this.panels.get(uri.toString())?.size ?? 0) > 0;
  }

  /** Re-request the report for every open Inspector (after a workspace rescan or a file change). */
  refreshAll(): void {
    for (const key of this.panels.keys()) this.refresh(key);
  }

  resolveCustomEditor(document: vscode.CustomDocument, panel: vscode.WebviewPanel): void {
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    const codicons = vscode.Uri.joinPath(this.extensionUri, 'dist', 'codicons');
    const webview = panel.webview;
    webview.options = { enableScripts: true, enableCommandUris: false, localResourceRoots: [media, codicons] };
    webview.html = inspectorHtml({
      cspSource: webview.cspSource,
      codiconUri: webview.asWebviewUri(vscode.Uri.joinPath(codicons, 'codicon.css')).toString(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'inspector.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'inspector.css')).toString(),
    });
    const key = document.uri.toString();
    const set = this.panels.get(key) ?? new Set();
    set.add(panel);
    this.panels.set(key, set);
    const fileName = document.uri.path.split('/').pop() ?? key;
    const post = (m: ToWebview) => { void webview.postMessage(m); };

    const loadReport = async (sha256: boolean) => {
      // without `sha256` the server decides (small files are hashed, big ones wait for the button)
      const params: ModelReportParams = sha256 ? { uri: key, sha256: true } : { uri: key };
      return this.host.request<ModelReport>(ModelReportRequest, params);
    };
    // the places that load this file, kept here: the webview only names one by its index
    let loads: { uri: vscode.Uri; range?: vscode.Range }[] = [];
    const sendReport = async () => {
      post({ type: 'loading', fileName });
      try {
        const report = await loadReport(false);
        // Convert is offered only where the converter would accept the file (its own refusal rules)
        const convertible = CONVERTIBLE_FORMATS.has(report.format);
        const refusal = convertible ? refusalReason(report) : undefined;
        post({ type: 'report', report, fileName, canConvert: convertible && !refusal, ...(refusal ? { convertRefusal: refusal } : {}) });
        if (report.verdict === 'dangerous' || report.verdict === 'caution') {
          if (report.verdict === 'dangerous' && report.pickles.length) void sendDanger(report);
          void findLoads(document.uri).then((found) => {
            loads = found.map((f) => ({ uri: f.uri, range: f.range }));
            post({ type: 'loads', sites: found.map((f) => f.site), searched: true });
          }, (e: unknown) => this.host.log(`Inspector: looking for loads of ${fileName} failed: ${messageOf(e)}`));
        }
      } catch (e) {
        post({ type: 'error', message: messageOf(e) });
      }
    };
    const sendDanger = async (report: ModelReport) => {
      try {
        const d = await this.host.request<DisassemblyResult>(DisassemblyRequest, { uri: key } satisfies DisassemblyParams);
        post({ type: 'danger', calls: dangerCalls(d.decompiled, report.globals) });
      } catch (e) {
        this.host.log(`Inspector: decompiling ${fileName} failed: ${messageOf(e)}`);
        post({ type: 'danger', calls: dangerCalls('', report.globals) });
      }
    };

    const sub = webview.onDidReceiveMessage(async (raw: unknown) => {
      const m = raw as FromWebview;
      switch (m?.type) {
        case 'ready':
        case 'rescan':
          await sendReport();
          break;
        case 'sha256':
          try {
            const r = await loadReport(true);
            if (r.sha256) post({ type: 'sha256', sha256: r.sha256 });
            else post({ type: 'sha256Error', message: 'The server did not return a hash.' });
          } catch (e) { post({ type: 'sha256Error', message: messageOf(e) }); }
          break;
        case 'disassembly':
          try {
            const params: DisassemblyParams = { uri: key };
            post({ type: 'disassembly', result: await this.host.request<DisassemblyResult>(DisassemblyRequest, params) });
          } catch (e) { post({ type: 'disassemblyError', message: messageOf(e) }); }
          break;
        case 'openDisassembly': {
          const at = typeof m.offset === 'number' && Number.isSafeInteger(m.offset) && m.offset >= 0
            ? { offset: m.offset, ...(typeof m.member === 'string' ? { member: m.member } : {}) } : undefined;
          await this.host.openDisassembly(document.uri, m.view === 'decompiled' ? 'decompiled' : 'disassembly', at);
          break;
        }
        case 'openLoad': {
          const site = Number.isInteger(m.index) ? loads[m.index] : undefined;
          if (site) await vscode.commands.executeCommand('vscode.open', site.uri, site.range ? { selection: site.range } : {});
          break;
        }
        case 'convert': {
          const r = await this.host.convert(document.uri);
          if (r) post({ type: 'convertResult', result: r });
          break;
        }
        case 'rendered':
          this.rendered.set(key, m.state);
          this.changed.fire(key);
          break;
        default:
          this.host.log(`Inspector: ignored message ${JSON.stringify(raw).slice(0, 200)}`);
      }
    });
    panel.onDidDispose(() => {
      sub.dispose();
      set.delete(panel);
      if (set.size === 0) { this.panels.delete(key); this.rendered.delete(key); }
    });
  }
}

const LOAD_SITES_MAX = 20;

/**
 * Where the workspace's code loads a model file: Safe Weights' own diagnostics whose related information names
 * the file (open editors: the load call resolved to it), then Python files and notebooks that name it in the text.
 */
async function findLoads(model: vscode.Uri): Promise<{ uri: vscode.Uri; range?: vscode.Range; site: LoadSite }[]> {
  const out: { uri: vscode.Uri; range?: vscode.Range; site: LoadSite }[] = [];
  const seen = new Set<string>();
  const add = (uri: vscode.Uri, range: vscode.Range | undefined, detail: string) => {
    const id = `${uri.toString()}#${range?.start.line ?? ''}`;
    if (seen.has(id) || out.length >= LOAD_SITES_MAX) return;
    seen.add(id);
    const where = vscode.workspace.asRelativePath(uri, false) + (range ? `:${range.start.line + 1}` : '');
    out.push({ uri, range, site: { label: where, detail: detail.length > 200 ? `${detail.slice(0, 199)}…` : detail } });
  };
  for (const [uri, diags] of vscode.languages.getDiagnostics()) {
    for (const d of diags) {
      if (d.source !== 'safe-weights' || !d.relatedInformation?.some((r) => r.location.uri.fsPath === model.fsPath)) continue;
      // the line of code is what a person recognises; the message is the fallback
      const doc = vscode.workspace.textDocuments.find((t) => t.uri.toString() === uri.toString());
      add(uri, d.range, doc && d.range.start.line < doc.lineCount ? doc.lineAt(d.range.start.line).text.trim() : d.message);
    }
  }
  const name = model.path.split('/').pop() ?? '';
  if (name.length < 3) return out;
  const files = await vscode.workspace.findFiles('**/*.{py,ipynb}', '{**/node_modules/**,**/.git/**,**/.venv/**,**/site-packages/**}', 2000);
  for (const f of files) {
    if (out.length >= LOAD_SITES_MAX) break;
    let bytes: Uint8Array;
    try {
      const st = await vscode.workspace.fs.stat(f);
      if (st.size > 2_000_000) continue;
      bytes = await vscode.workspace.fs.readFile(f);
    } catch { continue; }
    const text = Buffer.from(bytes).toString('utf8');
    let at = text.indexOf(name);
    while (at >= 0 && out.length < LOAD_SITES_MAX) {
      const lineStart = text.lastIndexOf('\n', at) + 1;
      const lineEnd = text.indexOf('\n', at) < 0 ? text.length : text.indexOf('\n', at);
      const line = text.slice(0, at).split('\n').length - 1;
      const range = f.path.endsWith('.ipynb') ? undefined : new vscode.Range(line, at - lineStart, line, at - lineStart + name.length);
      add(f, range, text.slice(lineStart, lineEnd).trim());
      at = text.indexOf(name, lineEnd);
    }
  }
  return out;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
