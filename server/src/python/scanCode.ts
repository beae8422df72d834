// Scans code files on disk for the CLI and the workspace scan: .py, .ipynb, and the dependency files
// (requirements*.txt, pyproject.toml, Pipfile, Pipfile.lock, poetry.lock, uv.lock, pylock.toml, environment.yml,
// setup.cfg; setup.py also gets its install_requires pins).
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { CodeFinding, CodeReport } from '../models/types';
import { levelFor, type LoadedConfig } from '../config';
import { analyzePython, type CodeIssue } from './analyze';
import { checkDependencyFile, checkSetupPy, type PinIssue } from './deps';
import { buildProgram, cellAt, parseIpynb } from './notebook';
import { getParser, parseSync } from './parser';
import { mayHaveFindings } from './prefilter';
import { diagnosticMessage } from './ruleAdvice';

/** Larger files are not source code anyone edits; reading them whole would be unbounded work. */
export const MAX_CODE_FILE_BYTES = 32 * 1024 * 1024;

export function codeFormat(name: string): CodeReport['format'] | undefined {
  const base = basename(name).toLowerCase();
  if (base.endsWith('.py') || base.endsWith('.pyw')) return 'python';
  if (base.endsWith('.ipynb')) return 'notebook';
  // TOML dependency files are read like pyproject.toml, the line-oriented ones like requirements (deps.ts)
  if (base === 'pyproject.toml' || base === 'poetry.lock' || base === 'uv.lock' || base === 'pipfile' || /^pylock(?:\.[^.]+)?\.toml$/.test(base)) return 'pyproject';
  if (/^requirements.*\.(txt|in)$/.test(base) || /^constraints.*\.txt$/.test(base)) return 'requirements';
  if (base === 'pipfile.lock' || base === 'setup.cfg' || /^(?:.*[-_.])?environment(?:[-_.].*)?\.ya?ml$/.test(base)) return 'requirements';
  return undefined;
}

export function isCodeFileName(name: string): boolean {
  return codeFormat(name) !== undefined;
}

/** Line starts of a text, for offset → (line, column) in O(log n). */
export class LineIndex {
  private readonly starts: number[] = [0];
  constructor(text: string) {
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.starts.push(i + 1);
  }
  position(offset: number): { line: number; character: number } {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo, character: offset - this.starts[lo] };
  }
}

const verdictOf = (findings: CodeFinding[]): CodeReport['verdict'] =>
  findings.some((f) => f.severity === 'dangerous') ? 'dangerous' : findings.some((f) => f.severity === 'caution') ? 'caution' : 'safe';

function configured<T extends { rule: string; severity: CodeIssue['severity'] }>(items: T[], config?: LoadedConfig): T[] {
  const out: T[] = [];
  for (const i of items) {
    const severity = levelFor(config, i.rule, i.severity);
    if (severity) out.push({ ...i, severity });
  }
  return out;
}

const pinFinding = (p: PinIssue): CodeFinding => ({
  rule: p.rule, severity: p.severity, message: diagnosticMessage(p.rule, p.message),
  line: p.line + 1, column: p.column + 1, endLine: p.line + 1, endColumn: p.endColumn + 1,
});

export async function scanCodeText(path: string, text: string, config?: LoadedConfig): Promise<CodeReport> {
  const format = codeFormat(path) ?? 'python';
  let findings: CodeFinding[] = [];
  if (format === 'requirements' || format === 'pyproject') {
    const pins: PinIssue[] = checkDependencyFile(path, text);
    findings = configured(pins, config).map(pinFinding);
  } else if (format === 'notebook') {
    const program = buildProgram(parseIpynb(text));
    if (mayHaveFindings(program.text)) {
      const tree = parseSync(await getParser(), program.text);
      try {
        const issues = analyzePython(tree, program.text, { honorNosec: config?.honorNosec, cellStarts: program.cells.map((c) => c.start) });
        findings = configured(issues, config).map((i) => {
          const cell = cellAt(program, i.start)!;
          const local = new LineIndex(program.text.slice(cell.start, cell.start + cell.length));
          const s = local.position(i.start - cell.start);
          const e = local.position(Math.min(i.end, cell.start + cell.length) - cell.start);
          return { rule: i.rule, severity: i.severity, message: diagnosticMessage(i.rule, i.message), cell: cell.index,
            line: s.line + 1, column: s.character + 1, endLine: e.line + 1, endColumn: e.character + 1 };
        });
      } finally {
        tree.delete();
      }
    }
  } else {
    // setup.py: its install_requires pins besides the code rules
    const setup = basename(path).toLowerCase() === 'setup.py' && /\b(?:install|setup|tests)_requires?\b|\bextras_require\b/.test(text);
    if (setup || mayHaveFindings(text)) {
      const tree = parseSync(await getParser(), text);
      try {
        const lines = new LineIndex(text);
        findings = configured(analyzePython(tree, text, { honorNosec: config?.honorNosec }), config).map((i) => {
          const s = lines.position(i.start);
          const e = lines.position(i.end);
          return { rule: i.rule, severity: i.severity, message: diagnosticMessage(i.rule, i.message),
            line: s.line + 1, column: s.character + 1, endLine: e.line + 1, endColumn: e.character + 1 };
        });
        if (setup) findings = [...findings, ...configured(checkSetupPy(tree, text), config).map(pinFinding)].sort((a, b) => a.line - b.line || a.column - b.column);
      } finally {
        tree.delete();
      }
    }
  }
  return { path, kind: 'code', format, verdict: verdictOf(findings), findings };
}

export async function scanCodeFile(path: string, config?: LoadedConfig): Promise<CodeReport> {
  // Synchronous reads: code files are small, and batch scans of thousands of files spend more time waiting on
  // the thread pool than reading.
  const fd = openSync(path, 'r');
  let text: string;
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_CODE_FILE_BYTES) {
      throw new Error(`${path}: ${size} bytes is larger than the ${MAX_CODE_FILE_BYTES}-byte limit for code files`);
    }
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  return scanCodeText(path, text, config);
}
