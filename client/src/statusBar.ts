// Status bar item: how many dangerous / caution model files the workspace scan found.
import * as vscode from 'vscode';
import type { StatusParams } from '../../server/src/protocol';

export class ScanStatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('safeWeights.status', vscode.StatusBarAlignment.Left, 50);
  last: StatusParams | undefined;

  constructor() {
    this.item.name = 'Safe Weights';
    this.item.command = 'safeWeights.scanWorkspace';
    this.item.text = '$(shield) Safe Weights';
    this.item.tooltip = 'Safe Weights: scan the workspace for unsafe model files';
    this.item.show();
  }

  update(s: StatusParams): void {
    this.last = s;
    const icon = s.scanning ? '$(sync~spin)' : s.dangerous > 0 ? '$(error)' : s.caution > 0 ? '$(warning)' : '$(shield)';
    const parts = [`${s.dangerous} dangerous`];
    if (s.caution > 0) parts.push(`${s.caution} caution`);
    this.item.text = `${icon} ${parts.join(', ')}`;
    this.item.tooltip = `Safe Weights: ${s.scanned} model file${s.scanned === 1 ? '' : 's'} scanned` +
      `${s.scanning ? ' (scanning…)' : ''}; ${s.dangerous} dangerous, ${s.caution} caution. Click to rescan.`;
    this.item.backgroundColor = s.dangerous > 0 ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : s.caution > 0 ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.command = s.dangerous + s.caution > 0 ? 'workbench.actions.view.problems' : 'safeWeights.scanWorkspace';
  }

  dispose(): void { this.item.dispose(); }
}
