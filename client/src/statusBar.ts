// Status bar item "Safe Weights": how many dangerous / caution model files the workspace scan found. A click lists
// them (quick pick → Model Inspector), or scans again when there are none.
import * as vscode from 'vscode';
import type { StatusFile, StatusParams } from '../../server/src/protocol';
import { statusView } from './statusText';

export const SHOW_FLAGGED_COMMAND = 'safeWeights.showFlaggedModels';

export class ScanStatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('safeWeights.status', vscode.StatusBarAlignment.Left, 50);
  last: StatusParams | undefined;

  constructor() {
    this.item.name = 'Safe Weights';
    this.render();
    this.item.show();
  }

  update(s: StatusParams): void {
    this.last = s;
    this.render();
  }

  private render(): void {
    const v = statusView(this.last);
    this.item.text = v.text;
    this.item.tooltip = new vscode.MarkdownString(v.tooltip, true);
    this.item.accessibilityInformation = { label: v.text.replace(/\$\([\w~-]+\)\s*/g, '').trim(), role: 'button' };
    this.item.backgroundColor = v.tone ? new vscode.ThemeColor(`statusBarItem.${v.tone}Background`) : undefined;
    this.item.command = v.click === 'listFlagged' ? SHOW_FLAGGED_COMMAND : 'safeWeights.scanWorkspace';
  }

  /** The flagged model files, dangerous first. */
  flagged(): StatusFile[] { return this.last?.files ?? []; }

  dispose(): void { this.item.dispose(); }
}

interface FilePick extends vscode.QuickPickItem { uri?: vscode.Uri; rescan?: boolean }

/** Quick pick of the flagged model files; the chosen one opens in the Model Inspector. */
export async function showFlaggedModels(status: ScanStatusItem, inspectorViewType: string): Promise<vscode.Uri | undefined> {
  const files = status.flagged();
  const items: FilePick[] = files.map((f) => {
    const uri = vscode.Uri.parse(f.uri);
    return {
      label: `$(${f.verdict === 'dangerous' ? 'error' : 'warning'}) ${uri.path.split('/').pop() ?? f.uri}`,
      description: `${f.verdict} · ${vscode.workspace.asRelativePath(uri, true)}`,
      detail: f.summary,
      uri,
    };
  });
  const total = (status.last?.dangerous ?? 0) + (status.last?.caution ?? 0);
  if (total > files.length) items.push({ label: `${total - files.length} more not listed`, kind: vscode.QuickPickItemKind.Separator });
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(refresh) Scan the workspace again', rescan: true });
  const pick = await vscode.window.showQuickPick(items, {
    title: 'Safe Weights: model files that are unsafe to load',
    placeHolder: 'Open one in the Model Inspector',
    matchOnDescription: true, matchOnDetail: true,
  });
  if (!pick) return undefined;
  if (pick.rescan) { await vscode.commands.executeCommand('safeWeights.scanWorkspace'); return undefined; }
  if (pick.uri) await vscode.commands.executeCommand('vscode.openWith', pick.uri, inspectorViewType);
  return pick.uri;
}
