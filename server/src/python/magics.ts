// Masks IPython syntax in notebook cells with spaces so the Python parser sees valid code at unchanged offsets.
// `%%cell` magics (other than a few that run the rest as Python) blank the whole cell; `%line` magics, `!shell`
// escapes and `x = !cmd` / `x = %magic` assignments blank the magic part of the line; `?`/`??` help too.

const PYTHON_CELL_MAGICS = new Set(['time', 'timeit', 'capture', 'prun', 'debug', 'python', 'python3']);

function blank(s: string): string {
  return s.replace(/[^\r\n]/g, ' ');
}

export function maskMagics(cell: string): string {
  const first = /^[ \t]*%%(\w+)/.exec(cell);
  if (first) {
    const nl = cell.indexOf('\n');
    const head = nl === -1 ? cell : cell.slice(0, nl);
    if (!PYTHON_CELL_MAGICS.has(first[1])) return blank(cell);
    return blank(head) + (nl === -1 ? '' : cell.slice(nl));
  }
  const lines = cell.split('\n');
  let continued = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let cut = -1;
    if (continued) cut = 0;
    else if (/^[ \t]*[!%]/.test(line)) cut = line.search(/[!%]/);
    else {
      // `files = !ls` or `t = %timeit -o f()`: keep the target as a bare expression, blank from '='.
      const m = /^[ \t]*[A-Za-z_][\w]*(?:[ \t]*,[ \t]*[A-Za-z_]\w*)*[ \t]*=[ \t]*[!%]/.exec(line);
      if (m) cut = line.indexOf('=');
      else if (/^[ \t]*[\w.]+\?\??[ \t]*\r?$/.test(line) || /^[ \t]*\?/.test(line)) cut = 0;
    }
    if (cut >= 0) {
      lines[i] = line.slice(0, cut) + blank(line.slice(cut));
      continued = /\\\r?$/.test(line);
    } else continued = false;
  }
  const out = lines.join('\n');
  return out;
}
