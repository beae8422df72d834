// Terminal niceties for the CLI: ANSI colours (only on a TTY, NO_COLOR respected) and a progress bar on stderr.

export function colors(on: boolean) {
  const wrap = (code: string) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { red: wrap('31;1'), yellow: wrap('33;1'), green: wrap('32'), magenta: wrap('35;1'), bold: wrap('1'), dim: wrap('2') };
}

/** The terminal's width; a terminal that reports 0 (or nothing, or nonsense) is taken as 80 columns. */
export function terminalColumns(out: { columns?: number }): number {
  const c = out.columns;
  return typeof c === 'number' && Number.isFinite(c) && c >= 20 ? Math.floor(c) : 80;
}

export class ProgressBar {
  private n = 0;
  private last = 0;
  constructor(private readonly out: NodeJS.WriteStream, private readonly total: number) {}
  tick(label: string): void {
    this.n++;
    const now = Date.now();
    if (now - this.last < 80 && this.n < this.total) return;
    this.last = now;
    const width = 24;
    const filled = this.total ? Math.round((this.n / this.total) * width) : width;
    const cols = terminalColumns(this.out);
    const text = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.n}/${this.total} ${label}`;
    this.out.write(`\r${text.slice(0, cols - 1).padEnd(Math.min(cols - 1, 100))}`);
  }
  done(): void { if (this.total) this.out.write('\r' + ' '.repeat(Math.min(terminalColumns(this.out) - 1, 100)) + '\r'); }
}
