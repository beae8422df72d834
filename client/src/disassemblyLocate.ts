// Where an opcode is in the disassembly text: the line of `offset` in the pickle of `member`. No vscode import.
// The text is server/src/models/scan.ts's: "# pickle N (member M, offset X, ...)" headers, then "   28: OPCODE ..." lines.

const HEADER = /^# pickle \d+ \((?:member (.*), )?offset \d+/;
const OPCODE = /^\s*(\d+): /;

/** 0-based line of the opcode at `offset` (bytes from the start of the member, or of the file), or undefined. */
export function lineOfOffset(text: string, offset: number, member?: string): number | undefined {
  let inScope = false;
  let line = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const l = text.slice(start, end);
    const h = HEADER.exec(l);
    if (h) inScope = (h[1] ?? undefined) === member;
    else if (inScope) {
      const m = OPCODE.exec(l);
      if (m && Number(m[1]) === offset) return line;
    }
    line++;
    start = end + 1;
  }
  return undefined;
}
