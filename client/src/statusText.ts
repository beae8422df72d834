// What the Safe Weights status bar item says. No vscode import: unit-tested (test/unit/client/statusText.test.ts).
import type { StatusParams } from '../../server/src/protocol';

export interface StatusView {
  text: string;
  /** Markdown: what the item counts and what a click does. */
  tooltip: string;
  /** 'error' | 'warning' background, or none. */
  tone: 'error' | 'warning' | undefined;
  /** What a click does: list the flagged files, or scan again when there are none. */
  click: 'listFlagged' | 'rescan';
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

export function statusView(s: StatusParams | undefined): StatusView {
  const counts = 'Counts **model files** in the workspace (PyTorch checkpoints, pickles, joblib, NumPy, safetensors, '
    + 'GGUF and archives, recognised by their bytes). Findings in Python files, notebooks and requirements are in Problems.';
  if (!s) {
    return { text: '$(shield) Safe Weights', tone: undefined, click: 'rescan',
      tooltip: `**Safe Weights**: waiting for the first workspace scan.\n\n${counts}\n\nClick to scan the workspace now.` };
  }
  const flagged = s.dangerous + s.caution;
  let text: string;
  if (s.scanning && s.scanned === 0) text = '$(sync~spin) Safe Weights: scanning…';
  else if (flagged > 0) text = `$(shield) Safe Weights: ${[s.dangerous > 0 ? `${s.dangerous} dangerous` : '', s.caution > 0 ? `${s.caution} caution` : ''].filter(Boolean).join(', ')}`;
  else if (s.scanned > 0) text = '$(shield) Safe Weights: no unsafe models';
  else text = '$(shield) Safe Weights';
  if (s.scanning && s.scanned > 0) text += ' $(sync~spin)';
  const lines = [
    `**Safe Weights**: ${plural(s.scanned, 'model file')} scanned${s.scanning ? ' (scanning…)' : ''}: `
      + `${s.dangerous} dangerous (loading runs code), ${s.caution} caution (loading imports code outside the weights-only allowlist).`,
    counts,
    flagged > 0
      ? `Click to list the ${flagged === 1 ? 'flagged file' : `${flagged} flagged files`} and open one in the Model Inspector.`
      : 'Click to scan the workspace again.',
  ];
  return {
    text, tooltip: lines.join('\n\n'),
    tone: s.dangerous > 0 ? 'error' : s.caution > 0 ? 'warning' : undefined,
    click: flagged > 0 ? 'listFlagged' : 'rescan',
  };
}
