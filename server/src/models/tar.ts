// Minimal tar reader for torch's oldest ("legacy tar") checkpoints. torch.load first tries Python's
// tarfile, which accepts a file whose first 512-byte header has a valid checksum; we decide the same way.
import { ByteSource } from './source';

export interface TarMember { name: string; offset: number; size: number; type: string }

function octal(b: Uint8Array, at: number, len: number): number | undefined {
  if (b[at] & 0x80) { // GNU base-256
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + b[at + i];
    return v;
  }
  const s = Buffer.from(b.subarray(at, at + len)).toString('latin1').replace(/[\0 ]+$/g, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return undefined;
  return parseInt(s, 8);
}

/** Python tarfile's test: stored checksum equals the unsigned or signed sum with the field as spaces. */
export function isTarHeader(h: Uint8Array): boolean {
  if (h.length < 512) return false;
  if (h.every((x) => x === 0)) return false;
  const stored = octal(h, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0, signed = 0;
  for (let i = 0; i < 512; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += v; signed += v > 127 ? v - 256 : v;
  }
  return stored === unsigned || stored === signed;
}

/** Name, data size and type flag of a (checksum-valid) 512-byte header; undefined when the size is not a number. */
export function parseTarHeader(h: Uint8Array): { name: string; size: number; type: string } | undefined {
  const size = octal(h, 124, 12);
  if (size === undefined) return undefined;
  const type = String.fromCharCode(h[156] || 0x30);
  let name = Buffer.from(h.subarray(0, 100)).toString('utf8').replace(/\0.*$/s, '');
  const magic = Buffer.from(h.subarray(257, 263)).toString('latin1');
  if (magic.startsWith('ustar')) {
    const prefix = Buffer.from(h.subarray(345, 500)).toString('utf8').replace(/\0.*$/s, '');
    if (prefix) name = `${prefix}/${name}`;
  }
  return { name, size, type };
}

/** The path a GNU long-name ('L') or pax ('x') record sets for the next member. */
export function tarLongName(type: string, data: Uint8Array): string | undefined {
  if (type === 'L') return Buffer.from(data).toString('utf8').replace(/\0.*$/s, '');
  if (type === 'x') return /\d+ path=([^\n]*)\n/.exec(Buffer.from(data).toString('utf8'))?.[1];
  return undefined;
}

/** `limited`: the offset where reading stopped because `maxMembers` were read and another header follows. */
export function readTarMembers(src: ByteSource, maxMembers = 100_000): { members: TarMember[]; error?: string; limited?: number } {
  const members: TarMember[] = [];
  let pos = 0;
  let longName: string | undefined;
  while (pos + 512 <= src.size) {
    const h = src.read(pos, 512);
    if (h.every((x) => x === 0)) break;
    if (members.length >= maxMembers) return { members, limited: pos };
    if (!isTarHeader(h)) return { members, error: `invalid tar header at offset ${pos}` };
    const fields = parseTarHeader(h);
    if (!fields) return { members, error: `invalid size in tar header at offset ${pos}` };
    const { size, type, name } = fields;
    const dataAt = pos + 512;
    if (dataAt + size > src.size) return { members, error: `tar member ${name} runs past the end of the file` };
    if (type === 'L') {
      longName = Buffer.from(src.read(dataAt, Math.min(size, 65536))).toString('utf8').replace(/\0.*$/s, '');
    } else if (type === 'x') {
      const pax = Buffer.from(src.read(dataAt, Math.min(size, 65536))).toString('utf8');
      const m = /\d+ path=([^\n]*)\n/.exec(pax);
      if (m) longName = m[1];
    } else {
      members.push({ name: longName ?? name, offset: dataAt, size, type });
      longName = undefined;
    }
    pos = dataAt + Math.ceil(size / 512) * 512;
  }
  return { members };
}
