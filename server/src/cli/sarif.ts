// SARIF 2.1.0 output for GitHub code scanning: one run, rules from both catalogs, one result per finding.
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FileReport, Finding, Severity } from '../models/types';

interface RuleLike { id: string; name: string; severity: Severity | string; short: string; full?: string; helpAnchor?: string }

const LEVEL: Record<string, 'error' | 'warning' | 'note'> = { dangerous: 'error', caution: 'warning', invalid: 'warning', info: 'note' };
const SECURITY_SEVERITY: Record<string, string> = { dangerous: '9.0', caution: '5.0', invalid: '3.0', info: '1.0' };
const HELP = 'https://github.com/safe-weights/safe-weights#';

export function toSarif(reports: FileReport[], version: string, modelRules: readonly RuleLike[], codeRules: readonly RuleLike[], cwd: string) {
  const rules = [...modelRules, ...codeRules];
  const index = new Map(rules.map((r, i) => [r.id, i]));
  const results = [];
  for (const r of reports) {
    for (const f of r.findings) {
      const uri = artifactUri(r, f, cwd);
      if (f.severity === 'info' && r.kind === 'model') continue;
      const cf = f as Finding & { line?: number; column?: number; endLine?: number; endColumn?: number; cell?: number };
      const region: Record<string, number> = cf.line !== undefined
        ? { startLine: cf.line, startColumn: cf.column ?? 1, endLine: cf.endLine ?? cf.line, endColumn: cf.endColumn ?? (cf.column ?? 1) + 1 }
        : { startLine: 1 };
      if (cf.line === undefined && f.offset !== undefined) { region.byteOffset = f.offset; region.byteLength = 1; }
      const res: Record<string, unknown> = {
        ruleId: f.rule,
        level: LEVEL[f.severity] ?? 'warning',
        message: { text: f.message },
        locations: [{ physicalLocation: { artifactLocation: { uri, ...(uri.startsWith('file:') || /^[a-z][a-z0-9+.-]*:\/\//i.test(uri) ? {} : { uriBaseId: '%SRCROOT%' }) }, region } }],
        partialFingerprints: { safeWeights: `${f.rule}:${f.global ?? ''}:${f.member ?? ''}:${cf.line ?? f.offset ?? ''}` },
        properties: { verdict: r.verdict, ...(f.global ? { global: f.global } : {}), ...(f.member ? { member: f.member } : {}), ...(cf.cell !== undefined ? { cell: cf.cell } : {}) },
      };
      const i = index.get(f.rule);
      if (i !== undefined) res.ruleIndex = i;
      results.push(res);
    }
  }
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [{
      tool: {
        driver: {
          name: 'safe-weights', version, semanticVersion: version, informationUri: 'https://github.com/safe-weights/safe-weights',
          rules: rules.map((r) => ({
            id: r.id, name: r.name,
            shortDescription: { text: r.short },
            fullDescription: { text: r.full ?? r.short },
            helpUri: HELP + (r.helpAnchor ?? r.id.toLowerCase()),
            help: { text: r.full ?? r.short },
            defaultConfiguration: { level: LEVEL[r.severity] ?? 'warning' },
            properties: { 'security-severity': SECURITY_SEVERITY[r.severity] ?? '5.0', tags: ['security', 'ml-supply-chain'] },
          })),
        },
      },
      originalUriBaseIds: { '%SRCROOT%': { uri: pathToFileURL(cwd + path.sep).href } },
      results,
    }],
  };
}

/** Where a finding is: the file (relative to cwd when inside it), a remote target's URL as given (https://, hf://),
 *  or, for a Hugging Face repository report, the repository file the finding is about (tokenizer_config.json…). */
function artifactUri(r: FileReport, f: Finding, cwd: string): string {
  const remote = /^[a-z][a-z0-9+.-]*:\/\//i.test(r.path);
  if (r.kind === 'model' && r.format === 'huggingface-repo' && f.member) {
    if (remote) return r.path.replace(/[^/]*$/, '') + f.member;
    return localUri(path.join(path.dirname(r.path), ...f.member.split('/')), cwd);
  }
  return remote ? r.path : localUri(r.path, cwd);
}

function localUri(p: string, cwd: string): string {
  const rel = path.relative(cwd, path.resolve(p));
  return rel.startsWith('..') || path.isAbsolute(rel) ? pathToFileURL(path.resolve(p)).href : rel.split(path.sep).join('/');
}
