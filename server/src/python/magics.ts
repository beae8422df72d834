// Masks IPython syntax in notebook cells with spaces so the Python parser sees valid code at unchanged offsets.
// `%%cell` magics (other than a few that run the rest as Python) blank the whole cell; `%line` magics, `!shell`
// escapes and `x = !cmd` / `x = %magic` assignments blank the magic part of the line; `?`/`??` help too.
// Line magics that run a Python statement (`%time obj = pickle.load(f)`, `%timeit -n 3 f()`, `%prun f()`) keep
// that statement: the magic and its options become `0;` and spaces, so the statement is analysed where it stands.

const PYTHON_CELL_MAGICS = new Set(['time', 'timeit', 'capture', 'prun', 'debug', 'python', 'python3']);

/** Line magics whose argument is a Python statement, with the options that take a value. */
const STATEMENT_LINE_MAGICS: Record<string, Set<string>> = {
  time: new Set(),
  timeit: new Set(['n', 'r', 'p']),
  prun: new Set(['l', 's', 'T', 'D']),
  debug: new Set(['-breakpoint', 'b']),
  memit: new Set(['r', 't']),
  lprun: new Set(['f', 'm', 'D', 'T', 'u']),
  mprun: new Set(['f', 'T']),
};

function blank(s: string): string {
  return s.replace(/[^\r\n]/g, ' ');
}

/** Length of `%magic -opt value ... ` before the statement a statement magic runs, or -1 for other magics. */
function statementMagicPrefix(rest: string): number {
  const m = /^%([A-Za-z_]\w*)/.exec(rest);
  const valued = m ? STATEMENT_LINE_MAGICS[m[1]] : undefined;
  if (!m || !valued) return -1;
  let i = m[0].length;
  if (i < rest.length && !/[ \t]/.test(rest[i])) return -1;
  for (;;) {
    while (i < rest.length && /[ \t]/.test(rest[i])) i++;
    if (rest[i] !== '-') break;
    const opt = /^-(-?[A-Za-z]+|[A-Za-z])(\S*)/.exec(rest.slice(i));
    if (!opt) break;
    i += opt[0].length;
    const name = opt[1].startsWith('-') ? opt[1] : opt[1][0];
    // `-n 10` (value apart) versus `-n10` / `-q` (attached or a flag)
    if (valued.has(name) && opt[1].length === name.length && !opt[2]) {
      while (i < rest.length && /[ \t]/.test(rest[i])) i++;
      while (i < rest.length && !/[ \t]/.test(rest[i])) i++;
    }
  }
  return i;
}

export function maskMagics(cell: string): string {
  const first = /^[ \t]*%%(\w+)/.exec(cell);
  if (first) {
    const nl = cell.indexOf('\n');
    const head = nl === -1 ? cell : cell.slice(0, nl);
    if (!PYTHON_CELL_MAGICS.has(first[1])) return blank(cell);
    // the rest of a %%time cell is Python with IPython syntax of its own (`!ls`, `%matplotlib` lines)
    return blank(head) + (nl === -1 ? '' : maskLines(cell.slice(nl)));
  }
  return maskLines(cell);
}

function maskLines(cell: string): string {
  const lines = cell.split('\n');
  let continued = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let cut = -1;
    let keep = -1;    // where a statement magic's statement starts
    if (continued) cut = 0;
    else if (/^[ \t]*%/.test(line)) {
      cut = line.indexOf('%');
      const p = statementMagicPrefix(line.slice(cut).replace(/\r$/, ''));
      if (p >= 0 && line.slice(cut + p).trim()) keep = cut + p;
    } else if (/^[ \t]*!/.test(line)) cut = line.indexOf('!');
    else {
      // `files = !ls` or `t = %timeit -o f()`: keep the target as a bare expression, blank from '=';
      // `res = %time f()` keeps the expression too (the value of `%time expr` is the expression's)
      const m = /^[ \t]*[A-Za-z_][\w]*(?:[ \t]*,[ \t]*[A-Za-z_]\w*)*[ \t]*=[ \t]*[!%]/.exec(line);
      if (m) {
        const at = m[0].length - 1;
        const p = line[at] === '%' ? statementMagicPrefix(line.slice(at).replace(/\r$/, '')) : -1;
        if (p >= 0 && line.slice(at + p).trim()) {
          lines[i] = line.slice(0, at) + blank(line.slice(at, at + p)) + line.slice(at + p);
          continued = false;
          continue;
        }
        cut = line.indexOf('=');
      } else if (/^[ \t]*[\w.]+\?\??[ \t]*\r?$/.test(line) || /^[ \t]*\?/.test(line)) cut = 0;
    }
    if (keep >= 0) {
      // `%time stmt` -> `0;    stmt`: a valid simple statement at the magic's own indentation
      lines[i] = line.slice(0, cut) + '0;' + blank(line.slice(cut + 2, keep)) + line.slice(keep);
      continued = false;
    } else if (cut >= 0) {
      lines[i] = line.slice(0, cut) + blank(line.slice(cut));
      continued = /\\\r?$/.test(line);
    } else continued = false;
  }
  const out = lines.join('\n');
  return out;
}
