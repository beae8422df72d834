// The CLI's text output: files grouped by verdict, the worst first, then the counts and a closing line that says
// what to do. Every string from a scanned file goes through escapeTerminal.
import type { SkippedFile } from '../models/discovery';
import type { CodeReport, FileReport, ModelReport, Severity } from '../models/types';
import { remoteLine } from './remote';
import { escapeTerminal as esc } from './terminalText';
import { colors } from './tty';

const SEV_RANK: Record<string, number> = { info: 0, invalid: 1, caution: 2, dangerous: 3 };

/** Groups in the order they are printed, with what each verdict means for the person reading. */
const GROUPS: { verdict: string; title: string }[] = [
  { verdict: 'dangerous', title: 'Dangerous: loading runs code' },
  { verdict: 'caution', title: 'Caution: loading imports code outside the weights-only allowlist' },
  { verdict: 'invalid', title: 'Invalid: cannot be loaded, nothing in it runs' },
  { verdict: 'safe', title: 'Safe' },
];

function plural(n: number, one: string, many = `${one}s`): string { return `${n} ${n === 1 ? one : many}`; }

function sevTag(s: Severity, c: ReturnType<typeof colors>): string {
  return s === 'dangerous' ? c.red('dangerous') : s === 'caution' ? c.yellow('caution') : s === 'invalid' ? c.magenta('invalid') : c.dim('info');
}

function modelLines(m: ModelReport, c: ReturnType<typeof colors>): string[] {
  const lines: string[] = [];
  const paint = (v: string) => v === 'dangerous' ? c.red(v.toUpperCase()) : v === 'caution' ? c.yellow(v.toUpperCase()) : v === 'invalid' ? c.magenta(v.toUpperCase()) : c.green(v.toUpperCase());
  lines.push(`${paint(m.verdict)} ${c.bold(esc(m.path))} ${c.dim(`(${esc(m.formatDetail ?? m.format)})`)}`);
  lines.push(`  ${esc(m.summary)}`);
  const fetched = remoteLine(m);
  if (fetched) lines.push(`  ${c.dim(esc(fetched))}`);
  if (m.weightsOnly.loads !== null) lines.push(`  ${c.dim('torch.load(weights_only=True):')} ${m.weightsOnly.loads ? 'loads' : 'refused'} — ${esc(m.weightsOnly.reason)}`);
  // the worst first: a dangerous finding must not hide behind twenty caution ones
  const shown = m.findings.filter((x) => x.severity !== 'info').sort((a, b) => SEV_RANK[b.severity] - SEV_RANK[a.severity]);
  for (const f of shown.slice(0, 20)) lines.push(`  ${sevTag(f.severity, c)} ${f.rule} ${esc(f.message)}`);
  const more = shown.length - 20 + (m.findingsOmitted ?? 0);
  if (more > 0) lines.push(`  … ${more} more findings (use --format json)`);
  if (m.tensorsOmitted) lines.push(`  ${c.dim(`… ${m.tensorsOmitted} more tensors found but not listed (names too long, or past the inventory limits)`)}`);
  return lines;
}

function codeLines(cr: CodeReport, c: ReturnType<typeof colors>): string[] {
  return cr.findings.map((f) => `${esc(cr.path)}:${f.line}:${f.column}${f.cell !== undefined ? ` [cell ${f.cell}]` : ''}: ${sevTag(f.severity, c)} ${f.rule} ${esc(f.message)}`);
}

/** What to do, from the worst thing found. */
export function closingAdvice(reports: FileReport[]): string {
  const models = reports.filter((r) => r.kind === 'model');
  const code = reports.filter((r) => r.kind === 'code');
  const dm = models.filter((r) => r.verdict === 'dangerous').length;
  const cm = models.filter((r) => r.verdict === 'caution').length;
  const im = models.filter((r) => r.verdict === 'invalid').length;
  const badCode = code.filter((r) => r.findings.some((f) => f.severity === 'dangerous' || f.severity === 'caution')).length;
  if (reports.length === 0) {
    return 'Nothing was checked: no model file or Python code was found. Model files are recognised by their first bytes, '
      + 'whatever their names; --verbose lists the files skipped and why.';
  }
  const todo: string[] = [];
  if (dm) todo.push(`Do not load the ${plural(dm, 'dangerous model file')}: ${dm === 1 ? 'it runs' : 'they run'} code when loaded. Ask the publisher for .safetensors copies, or delete ${dm === 1 ? 'it' : 'them'}.`);
  if (cm) todo.push(`Load the ${plural(cm, 'caution file')} only from a source you trust; safe PyTorch checkpoints convert with \`safe-weights convert FILE\`.`);
  if (badCode) todo.push(`Fix the loads flagged in ${plural(badCode, 'code file')} (each finding names its fix; the editor extension applies them).`);
  if (im) todo.push(`The ${plural(im, 'invalid file')} cannot be loaded as ${im === 1 ? 'it is' : 'they are'}: download ${im === 1 ? 'it' : 'them'} again.`);
  return todo.length ? todo.join(' ') : 'Nothing found that would run code when loaded.';
}

export function renderText(reports: FileReport[], color: boolean, skipped: SkippedFile[], verbose: boolean): string {
  const c = colors(color);
  const lines: string[] = [];
  const counts: Record<string, number> = {};
  for (const r of reports) counts[r.verdict] = (counts[r.verdict] ?? 0) + 1;
  const printed = (r: FileReport) => r.kind === 'model' || r.findings.length > 0;
  const known = new Set(GROUPS.map((g) => g.verdict));
  const groups = [...GROUPS, { verdict: '', title: 'Other' }];
  for (const g of groups) {
    const members = reports.filter((r) => printed(r) && (g.verdict ? r.verdict === g.verdict : !known.has(r.verdict)));
    if (!members.length) continue;
    if (lines.length) lines.push('');
    lines.push(c.bold(`== ${g.title} (${plural(members.length, 'file')}) ==`));
    for (const r of members) lines.push(...(r.kind === 'model' ? modelLines(r as ModelReport, c) : codeLines(r as CodeReport, c)));
  }
  if (verbose && skipped.length) {
    lines.push('', c.dim(`Skipped (${skipped.length}):`));
    for (const x of skipped) lines.push(`  ${c.dim('skipped')} ${esc(x.path)} ${c.dim(`(${esc(x.reason)})`)}`);
  }
  const parts = ['dangerous', 'caution', 'invalid', 'safe'].filter((k) => counts[k]).map((k) => `${counts[k]} ${k}`);
  const notModel = skipped.filter((x) => x.why !== 'duplicate' && x.why !== 'outside').length;
  const dupes = skipped.filter((x) => x.why === 'duplicate').length;
  const outside = skipped.filter((x) => x.why === 'outside').length;
  const skip = [
    notModel ? `${notModel} file${notModel === 1 ? '' : 's'} skipped as not model files${verbose ? '' : ' (--verbose lists them)'}` : '',
    dupes ? `${dupes} more path${dupes === 1 ? '' : 's'} to the same files (links)` : '',
    outside ? `${outside} link${outside === 1 ? '' : 's'} to folders outside the scanned folders not walked (--follow-links walks ${outside === 1 ? 'it' : 'them'})` : '',
  ].filter(Boolean);
  lines.push('', `${reports.length} file${reports.length === 1 ? '' : 's'} scanned${parts.length ? ': ' + parts.join(', ') : ''}${skip.length ? `; ${skip.join('; ')}` : ''}.`);
  lines.push(closingAdvice(reports));
  return lines.join('\n') + '\n';
}
