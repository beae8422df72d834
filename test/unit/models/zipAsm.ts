// A small zip writer for tests that need containers no normal zip tool produces: local/central names that
// disagree, duplicate names, wrong CRCs and flag bits, zip64 records, stored and deflated members.
import { crc32, deflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  data: Uint8Array;
  method?: 0 | 8;          // stored (default) or deflated
  localName?: string;      // name written in the local header when it must differ from the central one
  flags?: number;          // general purpose bit flags (e.g. 0x1 "encrypted", 0x800 utf-8)
  crc?: number;            // override the CRC-32 written in both headers
  zip64?: boolean;         // write sizes/offset through zip64 extra fields
}

export interface ZipOptions {
  zip64?: boolean;         // also write the zip64 end-of-central-directory record and locator
  prefix?: Uint8Array;     // bytes before the first local header (e.g. a pickle, for polyglots)
  comment?: string;
}

class Out {
  parts: Buffer[] = [];
  length = 0;
  push(b: Buffer | Uint8Array): void { const buf = Buffer.from(b); this.parts.push(buf); this.length += buf.length; }
  u16(n: number): void { const b = Buffer.alloc(2); b.writeUInt16LE(n); this.push(b); }
  u32(n: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); this.push(b); }
  u64(n: number): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); this.push(b); }
}

function zip64Extra(fields: number[]): Buffer {
  const b = Buffer.alloc(4 + 8 * fields.length);
  b.writeUInt16LE(0x0001, 0);
  b.writeUInt16LE(8 * fields.length, 2);
  fields.forEach((f, i) => b.writeBigUInt64LE(BigInt(f), 4 + 8 * i));
  return b;
}

export function buildZip(entries: ZipEntry[], opts: ZipOptions = {}): Uint8Array {
  const out = new Out();
  if (opts.prefix) out.push(opts.prefix);
  const central: { e: ZipEntry; offset: number; crc: number; csize: number; usize: number }[] = [];
  for (const e of entries) {
    const method = e.method ?? 0;
    const body = method === 8 ? deflateRawSync(Buffer.from(e.data)) : Buffer.from(e.data);
    const crc = e.crc ?? crc32(Buffer.from(e.data));
    const offset = out.length;
    const name = Buffer.from(e.localName ?? e.name, 'utf8');
    const extra = e.zip64 ? zip64Extra([e.data.length, body.length]) : Buffer.alloc(0);
    out.u32(0x04034b50);
    out.u16(e.zip64 ? 45 : 20);
    out.u16(e.flags ?? 0);
    out.u16(method);
    out.u16(0); out.u16(0x21); // 1980-01-01 00:00
    out.u32(crc);
    out.u32(e.zip64 ? 0xffffffff : body.length);
    out.u32(e.zip64 ? 0xffffffff : e.data.length);
    out.u16(name.length); out.u16(extra.length);
    out.push(name); out.push(extra); out.push(body);
    central.push({ e, offset, crc, csize: body.length, usize: e.data.length });
  }
  const cdStart = out.length;
  for (const c of central) {
    const name = Buffer.from(c.e.name, 'utf8');
    const extra = c.e.zip64 ? zip64Extra([c.usize, c.csize, c.offset]) : Buffer.alloc(0);
    out.u32(0x02014b50);
    out.u16(c.e.zip64 ? 45 : 20); out.u16(c.e.zip64 ? 45 : 20);
    out.u16(c.e.flags ?? 0);
    out.u16(c.e.method ?? 0);
    out.u16(0); out.u16(0x21);
    out.u32(c.crc);
    out.u32(c.e.zip64 ? 0xffffffff : c.csize);
    out.u32(c.e.zip64 ? 0xffffffff : c.usize);
    out.u16(name.length); out.u16(extra.length); out.u16(0);
    out.u16(0); out.u16(0); out.u32(0);
    out.u32(c.e.zip64 ? 0xffffffff : c.offset);
    out.push(name); out.push(extra);
  }
  const cdSize = out.length - cdStart;
  if (opts.zip64) {
    const eocd64 = out.length;
    out.u32(0x06064b50); out.u64(44); out.u16(45); out.u16(45); out.u32(0); out.u32(0);
    out.u64(central.length); out.u64(central.length); out.u64(cdSize); out.u64(cdStart);
    out.u32(0x07064b50); out.u32(0); out.u64(eocd64); out.u32(1);
  }
  const comment = Buffer.from(opts.comment ?? '', 'utf8');
  out.u32(0x06054b50); out.u16(0); out.u16(0);
  out.u16(opts.zip64 ? 0xffff : central.length); out.u16(opts.zip64 ? 0xffff : central.length);
  out.u32(opts.zip64 ? 0xffffffff : cdSize); out.u32(opts.zip64 ? 0xffffffff : cdStart);
  out.u16(comment.length); out.push(comment);
  return new Uint8Array(Buffer.concat(out.parts));
}

/** A torch.save-style zip around a data.pkl (plus version, and optionally more members). */
export function torchZip(dataPkl: Uint8Array, opts: { root?: string; extra?: ZipEntry[]; method?: 0 | 8; zip64?: boolean } = {}): Uint8Array {
  const root = opts.root ?? 'archive';
  const storage = new Uint8Array(16); // 2x2 float32 zeros for storage "0"
  return buildZip([
    { name: `${root}/data.pkl`, data: dataPkl, method: opts.method, zip64: opts.zip64 },
    { name: `${root}/data/0`, data: storage, zip64: opts.zip64 },
    { name: `${root}/version`, data: Buffer.from('3\n'), zip64: opts.zip64 },
    ...(opts.extra ?? []),
  ], { zip64: opts.zip64 });
}

/** NumPy .npy v1.0 file with the given header dict text and body. */
export function npy(header: string, body: Uint8Array): Uint8Array {
  let h = header;
  const total = 10 + h.length + 1;
  h += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from('\x93NUMPY', 'latin1').copy(pre, 0);
  pre[6] = 1; pre[7] = 0; pre.writeUInt16LE(h.length, 8);
  return new Uint8Array(Buffer.concat([pre, Buffer.from(h, 'latin1'), Buffer.from(body)]));
}

/** A ustar archive (as torch's pre-1.0 legacy tar format uses): 512-byte headers, data padded to 512. */
export function buildTar(entries: { name: string; data: Uint8Array }[]): Uint8Array {
  const parts: Buffer[] = [];
  const octal = (n: number, width: number): string => `${n.toString(8).padStart(width - 1, '0')}\0`;
  for (const e of entries) {
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100, 'utf8');
    h.write(octal(0o644, 8), 100, 'latin1');
    h.write(octal(0, 8), 108, 'latin1');
    h.write(octal(0, 8), 116, 'latin1');
    h.write(octal(e.data.length, 12), 124, 'latin1');
    h.write(octal(0, 12), 136, 'latin1');
    h.write('        ', 148, 'latin1'); // checksum counts as spaces while summing
    h.write('0', 156, 'latin1');
    h.write('ustar\u000000', 257, 'latin1');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    parts.push(h, Buffer.from(e.data), Buffer.alloc((512 - (e.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return new Uint8Array(Buffer.concat(parts));
}
