// The Inspector's text views of a scanned file: the disassembly of every pickle stream (with the offset of each
// opcode, and where a stream breaks) and the decompiled Python-like view, both bounded for the whole file.
import { decompileRun } from './pickle/decompile';
import { DECOMPILED_CHARS, type ScanDetail } from './formats/context';

export function renderDisassembly(d: ScanDetail): { text: string; decompiled: string; truncated: boolean } {
  let text = '', dec = '', truncated = false;
  let decLeft = DECOMPILED_CHARS;
  if (d.runs.length === 0) text = `# ${d.report.format}: no pickle streams in this file\n`;
  d.runs.forEach(({ run, member }, i) => {
    const where = `${member ? `member ${member}, ` : ''}offset ${run.start}`;
    text += `# pickle ${i + 1} (${where}, protocol ${run.protocol}, ${run.opcodes} opcodes${run.complete ? '' : `, ERROR: ${run.error}`})\n`;
    text += (run.disasm ?? []).join('\n') + '\n';
    if (run.disasmTruncated) {
      const shown = run.disasmLines ?? 0;
      text += `# … disassembly truncated: ${shown} of ${run.opcodes} opcodes shown, ${run.opcodes - shown} left out\n`;
      truncated = true;
    }
    if (!run.complete) text += `${String(run.errorOffset ?? run.end).padStart(9)}: !! ${run.error}\n`;
    text += '\n';
    const dc = decompileRun(run, decLeft);
    decLeft -= dc.text.length;
    if (dc.truncated) truncated = true;
    dec += `# pickle ${i + 1} (${where})\n${dc.text}\n`;
  });
  return { text, decompiled: dec, truncated };
}
