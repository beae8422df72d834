// The code rules over a Python file too big to parse whole (the language server's size limit): the file is cut at
// top-level statement boundaries into chunks of about CHUNK_BYTES, each chunk parsed and analysed on its own after
// the file's module-level import lines (so its names resolve as in the file), then its tree freed. Memory is
// bounded by the chunk size, not the file size. Names bound across chunks by anything but imports are not seen.
import { analyzePython, type CodeIssue } from './analyze';
import { getParser, parseSync } from './parser';
import { mayHaveFindings } from './prefilter';
import { LineIndex } from './scanCode';

export const CHUNK_BYTES = 128 * 1024;
/** A chunk with no statement boundary is cut at a line end past this size (a giant literal, say). */
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
/** The module-level import lines carried into every chunk, at most this much of them. */
const MAX_HEADER_CHARS = 64 * 1024;

export interface ChunkFinding {
  rule: string; severity: CodeIssue['severity']; message: string;
  /** 0-based lines and UTF-16 columns in the file. */
  start: { line: number; character: number }; end: { line: number; character: number };
}

const NL = 0x0a;
const isStatementStart = (b: number): boolean => (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b === 0x40;   // A-Z a-z _ @
// compound-statement continuations at column 0: never the start of a chunk
const CONTINUATION = /^(?:else|elif|except|finally|case)\b/;

/** Offsets where chunks start (the first is 0): line starts at column 0 outside brackets and strings. `bytes`:
 *  UTF-8 bytes, or a text's UTF-16 code units (every byte tested is ASCII, and no other unit equals one). */
export function chunkStarts(bytes: ArrayLike<number>, target = CHUNK_BYTES): number[] {
  const starts = [0];
  let depth = 0;
  let quote = 0;          // the quote byte of the open string, 0 outside strings
  let triple = false;
  let prevLineDecorator = false;
  let lineStart = 0;
  let lastByte = 0;       // last non-space byte of the line (a backslash continues it)
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (quote) {
      if (b === 0x5c) { i++; continue; }                       // escape
      if (b === quote) {
        if (!triple) quote = 0;
        else if (bytes[i + 1] === quote && bytes[i + 2] === quote) { quote = 0; triple = false; i += 2; }
      } else if (b === NL && !triple) quote = 0;              // an unterminated one-line string ends at the line
      if (b !== NL) continue;
    } else if (b === 0x23) {                                   // comment: skip to the line end
      while (i + 1 < bytes.length && bytes[i + 1] !== NL) i++;
      continue;
    } else if (b === 0x22 || b === 0x27) {
      quote = b;
      triple = bytes[i + 1] === b && bytes[i + 2] === b;
      if (triple) i += 2;
      continue;
    } else if (b === 0x28 || b === 0x5b || b === 0x7b) depth++;
    else if ((b === 0x29 || b === 0x5d || b === 0x7d) && depth > 0) depth--;
    if (b !== NL) { if (b !== 0x20 && b !== 0x09 && b !== 0x0d) lastByte = b; continue; }
    // a line ends at i
    if (bytes[lineStart] === 0x40) prevLineDecorator = true;
    else if (isStatementStart(bytes[lineStart] ?? 0)) prevLineDecorator = false;
    const next = i + 1;
    const size = next - starts[starts.length - 1];
    const continued = lastByte === 0x5c;
    lastByte = 0;
    lineStart = next;
    if (next >= bytes.length || size < target) continue;
    const forced = size >= MAX_CHUNK_BYTES;
    if (!forced && (quote || depth > 0 || continued || prevLineDecorator || !isStatementStart(bytes[next]))) continue;
    if (!forced) {
      let head = '';
      for (let k = next; k < Math.min(next + 16, bytes.length); k++) head += String.fromCharCode(bytes[k]);
      if (CONTINUATION.test(head)) continue;
    }
    starts.push(next);
    if (forced) { depth = 0; quote = 0; triple = false; }
  }
  return starts;
}

/** The module-level import lines of the file (column 0, one line each, continuation lines left out), bounded. */
function importHeader(bytes: Uint8Array): string {
  const out: string[] = [];
  let size = 0;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let at = 0; at < text.length && size < MAX_HEADER_CHARS;) {
    const end = text.indexOf(NL, at);
    const stop = end < 0 ? text.length : end;
    const b = text[at];
    if ((b === 0x69 || b === 0x66) && stop - at < 1024) {    // i(mport) / f(rom)
      const line = text.toString('utf8', at, stop);
      if (/^(?:import|from)\s+[\w.]+(?:\s+import\s+[\w., ]+|(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*)\s*(?:#.*)?\r?$/.test(line)) {
        out.push(line.replace(/\r$/, ''));
        size += line.length + 1;
      }
    }
    at = stop + 1;
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/**
 * Findings of the code rules in a big Python file, chunk by chunk. `onChunk` is told after each chunk (to report
 * progress or give way). Findings come in file order.
 */
export async function analyzeInChunks(bytes: Uint8Array, opts: { honorNosec?: boolean } = {},
  onChunk?: (done: number, total: number) => void | Promise<void>): Promise<ChunkFinding[]> {
  const parser = await getParser();
  const starts = chunkStarts(bytes);
  const header = importHeader(bytes);
  const findings: ChunkFinding[] = [];
  const decoder = new TextDecoder();
  let line = 0;
  for (let k = 0; k < starts.length; k++) {
    const from = starts[k], to = k + 1 < starts.length ? starts[k + 1] : bytes.length;
    const chunk = decoder.decode(bytes.subarray(from, to));
    const program = header + chunk;
    if (mayHaveFindings(program)) {
      const tree = parseSync(parser, program);
      try {
        const issues = analyzePython(tree, program, { honorNosec: opts.honorNosec, region: [header.length, program.length] });
        if (issues.length) {
          const lines = new LineIndex(chunk);
          for (const i of issues) {
            if (i.start < header.length) continue;
            const s = lines.position(i.start - header.length), e = lines.position(Math.max(i.start, i.end) - header.length);
            findings.push({ rule: i.rule, severity: i.severity, message: i.message,
              start: { line: line + s.line, character: s.character }, end: { line: line + e.line, character: e.character } });
          }
        }
      } finally {
        tree.delete();
      }
    }
    for (let i = from; i < to; i++) if (bytes[i] === NL) line++;
    await onChunk?.(k + 1, starts.length);
  }
  return findings;
}
