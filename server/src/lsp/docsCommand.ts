// "Show documentation" on every code finding: opens the rule's section of the README, the copy shipped next to
// the server (offline, at the rule's row) when there is one, else the rule's anchor on the repository's README.
import { CodeActionKind, type CodeAction } from 'vscode-languageserver/node';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CODE_RULE_BY_ID } from '../python/rules';
import { ruleDocsUrl } from '../python/ruleAdvice';
import type { IssueContext } from './codeActions';
import type { ServerState } from './state';

export const SHOW_DOCUMENTATION = 'safeWeights.showRuleDocumentation';

export function docsActions({ issue, diagnostic }: IssueContext): CodeAction[] {
  const rule = CODE_RULE_BY_ID.get(issue.rule);
  return [{
    title: `Show documentation for ${issue.rule}${rule ? ` ${rule.name}` : ''}`, kind: CodeActionKind.QuickFix, diagnostics: [diagnostic],
    command: { title: 'Show documentation', command: SHOW_DOCUMENTATION, arguments: [issue.rule] },
  }];
}

/** The README shipped with the server (dist/server.js -> ../README.md; compiled tests: several levels up). */
function localReadme(): string | undefined {
  for (const up of ['..', '../..', '../../..', '../../../..']) {
    const p = join(__dirname, up, 'README.md');
    if (existsSync(p) && existsSync(join(__dirname, up, 'package.json'))) return p;
  }
  return undefined;
}

/** Opens the documentation of `rule`; resolves to what was shown. */
export async function showDocumentation(s: ServerState, args: unknown[] | undefined): Promise<{ ok: boolean; uri?: string }> {
  const rule = typeof args?.[0] === 'string' ? args[0] : '';
  const anchor = CODE_RULE_BY_ID.get(rule)?.helpAnchor ?? rule.toLowerCase();
  const readme = localReadme();
  if (readme && /^[a-z0-9-]+$/.test(anchor)) {
    const lines = readFileSync(readme, 'utf8').split('\n');
    const line = lines.findIndex((l) => l.includes(`<a id="${anchor}"></a>`));
    if (line >= 0) {
      const uri = pathToFileURL(readme).href;
      const r = await s.connection.window.showDocument({ uri, takeFocus: true, selection: { start: { line, character: 0 }, end: { line, character: 0 } } }).catch(() => ({ success: false }));
      if (r.success) return { ok: true, uri };
    }
  }
  const uri = ruleDocsUrl(rule);
  const r = await s.connection.window.showDocument({ uri, external: true }).catch(() => ({ success: false }));
  return { ok: r.success, uri };
}
