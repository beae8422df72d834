// MATLAB MAT-files (scipy.io.savemat, MATLAB's save): recognised by their 128-byte header the way
// scipy.io.loadmat's _get_matfile_version reads it, so they are not mistaken for pickles ("MATLAB 5.0 ..."
// starts with 'M', the BININT2 opcode). No model loader unpickles them: the bytes "MATLAB" make any
// unpickler fail at once (BININT2 takes "AT", then LONG reads "AB 5.0 ..." and int() rejects it).
import type { ByteSource } from '../source';
import { add, type ScanContext } from './context';
import { scanHiddenZip } from './zip';

export interface MatHeader {
  /** 5 (MAT v5 .. v7: header version 0x0100) or 7.3 (HDF5 based: 0x0200). */
  version: '5' | '7.3';
  endian: 'little' | 'big';
  /** The descriptive text of the header ("MATLAB 5.0 MAT-file, Platform: ..."), trimmed. */
  text: string;
}

/**
 * The MAT-file header at the start of `head` (at least 128 bytes), or undefined. Like loadmat: the first four
 * bytes are non-zero (otherwise it would be a v4 file), bytes 126-127 are the endian indicator "IM" (little) or
 * "MI" (big) and bytes 124-125 the version in that byte order. Stricter than loadmat, the text must start with
 * "MATLAB", which is what makes the file impossible to unpickle.
 */
export function matlabHeader(head: Uint8Array): MatHeader | undefined {
  if (head.length < 128) return undefined;
  if (head[0] === 0 || head[1] === 0 || head[2] === 0 || head[3] === 0) return undefined;
  if (Buffer.from(head.buffer, head.byteOffset, 6).toString('latin1') !== 'MATLAB') return undefined;
  const i0 = head[126], i1 = head[127];
  let endian: MatHeader['endian'];
  if (i0 === 0x49 && i1 === 0x4d) endian = 'little';        // "IM"
  else if (i0 === 0x4d && i1 === 0x49) endian = 'big';      // "MI"
  else return undefined;
  const v = endian === 'little' ? head[124] | (head[125] << 8) : (head[124] << 8) | head[125];
  if (v !== 0x0100 && v !== 0x0200) return undefined;
  // descriptive text: bytes 0-115, space padded (the subsystem data offset follows at 116)
  let end = 116;
  while (end > 0 && (head[end - 1] === 0x20 || head[end - 1] === 0)) end--;
  const text = Buffer.from(head.buffer, head.byteOffset, end).toString('latin1').replace(/[^\x20-\x7e]/g, '?');
  return { version: v === 0x0100 ? '5' : '7.3', endian, text };
}

/** The finding message for a MAT-file. */
export function matlabMessage(h: MatHeader): string {
  return `MATLAB .mat file (${h.version === '5' ? 'v5' : 'v7.3, HDF5'}, ${h.endian}-endian: "${h.text.slice(0, 80)}"); `
    + 'no model loader unpickles it (scipy.io.loadmat reads it as data). It is not a pickle, and its contents were not checked.';
}

/** A file with a MAT-file header (the dispatcher sniffs it before the pickle test: "MATLAB 5.0 ..." starts like a
 *  pickle, BININT2, but no unpickler reads it). */
export async function readMatlab(ctx: ScanContext, src: ByteSource, head: Uint8Array): Promise<void> {
  const mat = matlabHeader(head)!;
  ctx.report.formatDetail = `MATLAB MAT-file v${mat.version}`;
  add(ctx, 'SW024', matlabMessage(mat));
  await scanHiddenZip(ctx, src);   // Python's zipfile would still read an archive appended to it
}
