// Model Inspector: a read-only custom editor. The file is never read here: the language server scans it
// (headers and pickle streams only, no tensor data) and the webview renders the report.
import * as vscode from 'vscode';
import type { ModelReport } from '../../../server/src/models/types';
import {
  ModelReportRequest, ModelReportParams, DisassemblyRequest, DisassemblyParams, DisassemblyResult, ConvertResult,
} from '../../../server/src/protocol';
import { CONVERTIBLE_FORMATS } from '../modelFiles';
import { inspectorHtml } from './html';
import type { FromWebview, RenderedState, ToWebview } from './messages';

export const INSPECTOR_VIEW_TYPE = 'safeWeights.inspector';

/** What the provider needs from the rest of the extension. */
export interface InspectorHost {
  request<R>(method: string, params: unknown): Promise<R>;
  openDisassembly(uri: vscode.Uri, view: 'disassembly' | 'decompiled'): Promise<unknown>;
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
    const webview = panel.webview;
    webview.options = { enableScripts: true, enableCommandUris: false, localResourceRoots: [media] };
    webview.html = inspectorHtml({
      cspSource: webview.cspSource,
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
    const sendReport = async () => {
      post({ type: 'loading', fileName });
      try {
        const report = await loadReport(false);
        post({ type: 'report', report, fileName, canConvert: CONVERTIBLE_FORMATS.has(report.format) });
      } catch (e) {
        post({ type: 'error', message: messageOf(e) });
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
        case 'openDisassembly':
          await this.host.openDisassembly(document.uri, m.view === 'decompiled' ? 'decompiled' : 'disassembly');
          break;
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

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
