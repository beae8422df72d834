// A tiny pickle assembler for tests: one method per opcode, chainable, with labels that record the byte
// offset where an opcode starts (so tests can assert the offsets the engine reports).
// Written from the pickle protocol definition (opcodes of protocols 0-5); nothing here is executed.

export const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32, FLOAT: 0x46, INT: 0x49, BININT: 0x4a,
  BININT1: 0x4b, LONG: 0x4c, BININT2: 0x4d, NONE: 0x4e, PERSID: 0x50, BINPERSID: 0x51, REDUCE: 0x52,
  STRING: 0x53, BINSTRING: 0x54, SHORT_BINSTRING: 0x55, UNICODE: 0x56, BINUNICODE: 0x58, APPEND: 0x61,
  BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, EMPTY_DICT: 0x7d, APPENDS: 0x65, GET: 0x67, BINGET: 0x68,
  INST: 0x69, LONG_BINGET: 0x6a, LIST: 0x6c, EMPTY_LIST: 0x5d, OBJ: 0x6f, PUT: 0x70, BINPUT: 0x71,
  LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74, EMPTY_TUPLE: 0x29, SETITEMS: 0x75, BINFLOAT: 0x47,
  PROTO: 0x80, NEWOBJ: 0x81, EXT1: 0x82, EXT2: 0x83, EXT4: 0x84, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a, LONG4: 0x8b, BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f, ADDITEMS: 0x90,
  FROZENSET: 0x91, NEWOBJ_EX: 0x92, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95, BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97, READONLY_BUFFER: 0x98,
} as const;

const latin1 = (s: string): number[] => Array.from(Buffer.from(s, 'latin1'));
const utf8 = (s: string): number[] => Array.from(Buffer.from(s, 'utf8'));
function le(n: number | bigint, width: number): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  for (let i = 0; i < width; i++) { out.push(Number(v & 0xffn)); v >>= 8n; }
  return out;
}

export class PickleAsm {
  private readonly buf: number[] = [];
  /** Byte offsets recorded by label(). */
  readonly at: Record<string, number> = {};

  get offset(): number { return this.buf.length; }
  /** Record the offset of the next opcode under `name`. */
  label(name: string): this { this.at[name] = this.buf.length; return this; }
  raw(bytes: ArrayLike<number>): this { for (let i = 0; i < bytes.length; i++) this.buf.push(bytes[i]! & 0xff); return this; }
  op(code: number, ...args: number[]): this { this.buf.push(code, ...args); return this; }
  bytes(): Uint8Array { return Uint8Array.from(this.buf); }
  buffer(): Buffer { return Buffer.from(this.buf); }

  // framing / control
  proto(n: number): this { return this.op(OP.PROTO, n); }
  /** FRAME with an explicit length (may be a lie, for tests). */
  frame(len: number): this { return this.op(OP.FRAME, ...le(len, 8)); }
  /** FRAME whose length is exactly the bytes `inner` produces, followed by those bytes. */
  framed(inner: PickleAsm): this { return this.frame(inner.offset).raw(inner.buf); }
  stop(): this { return this.op(OP.STOP); }
  mark(): this { return this.op(OP.MARK); }
  pop(): this { return this.op(OP.POP); }
  popMark(): this { return this.op(OP.POP_MARK); }
  dup(): this { return this.op(OP.DUP); }

  // constants
  none(): this { return this.op(OP.NONE); }
  bool(v: boolean): this { return this.op(v ? OP.NEWTRUE : OP.NEWFALSE); }
  int(n: number): this { // smallest binary form, like pickle does
    if (n >= 0 && n < 256) return this.op(OP.BININT1, n);
    if (n >= 0 && n < 65536) return this.op(OP.BININT2, ...le(n, 2));
    return this.op(OP.BININT, ...le(n >>> 0, 4));
  }
  /** BININT: signed 32-bit little endian. */
  binint(n: number): this { const b = Buffer.alloc(4); b.writeInt32LE(n); return this.op(OP.BININT, ...b); }
  intText(n: number): this { return this.op(OP.INT, ...latin1(`${n}\n`)); }
  long1(n: bigint): this { // two's complement little endian
    const bytes: number[] = [];
    let v = n;
    while (bytes.length === 0 || !((v === 0n && (bytes[bytes.length - 1]! & 0x80) === 0) || (v === -1n && (bytes[bytes.length - 1]! & 0x80) !== 0))) {
      bytes.push(Number(v & 0xffn)); v >>= 8n;
    }
    return this.op(OP.LONG1, bytes.length, ...bytes);
  }
  binfloat(x: number): this { const b = Buffer.alloc(8); b.writeDoubleBE(x); return this.op(OP.BINFLOAT, ...b); }

  // strings of every protocol
  /** Protocol 0 STRING: repr-quoted, newline terminated. */
  string(s: string): this { return this.op(OP.STRING, ...latin1(`'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'\n`)); }
  binstring(s: string): this { const b = latin1(s); return this.op(OP.BINSTRING, ...le(b.length, 4), ...b); }
  shortBinstring(s: string): this { const b = latin1(s); return this.op(OP.SHORT_BINSTRING, b.length, ...b); }
  /** Protocol 0 UNICODE: raw-unicode-escape, newline terminated. */
  unicode(s: string): this { return this.op(OP.UNICODE, ...latin1(`${s}\n`)); }
  binunicode(s: string): this { const b = utf8(s); return this.op(OP.BINUNICODE, ...le(b.length, 4), ...b); }
  shortBinunicode(s: string): this { const b = utf8(s); return this.op(OP.SHORT_BINUNICODE, b.length, ...b); }
  binunicode8(s: string): this { const b = utf8(s); return this.op(OP.BINUNICODE8, ...le(b.length, 8), ...b); }
  binbytes(b: ArrayLike<number> | string): this { const a = typeof b === 'string' ? latin1(b) : Array.from(b); return this.op(OP.BINBYTES, ...le(a.length, 4), ...a); }
  shortBinbytes(b: ArrayLike<number> | string): this { const a = typeof b === 'string' ? latin1(b) : Array.from(b); return this.op(OP.SHORT_BINBYTES, a.length, ...a); }
  binbytes8(b: ArrayLike<number> | string): this { const a = typeof b === 'string' ? latin1(b) : Array.from(b); return this.op(OP.BINBYTES8, ...le(a.length, 8), ...a); }
  bytearray8(b: ArrayLike<number> | string): this { const a = typeof b === 'string' ? latin1(b) : Array.from(b); return this.op(OP.BYTEARRAY8, ...le(a.length, 8), ...a); }
  /** The short unicode string, the default for names in protocol >= 4. */
  str(s: string): this { return this.shortBinunicode(s); }

  // containers
  emptyTuple(): this { return this.op(OP.EMPTY_TUPLE); }
  tuple(): this { return this.op(OP.TUPLE); }
  tuple1(): this { return this.op(OP.TUPLE1); }
  tuple2(): this { return this.op(OP.TUPLE2); }
  tuple3(): this { return this.op(OP.TUPLE3); }
  emptyList(): this { return this.op(OP.EMPTY_LIST); }
  list(): this { return this.op(OP.LIST); }
  append(): this { return this.op(OP.APPEND); }
  appends(): this { return this.op(OP.APPENDS); }
  emptyDict(): this { return this.op(OP.EMPTY_DICT); }
  dict(): this { return this.op(OP.DICT); }
  setitem(): this { return this.op(OP.SETITEM); }
  setitems(): this { return this.op(OP.SETITEMS); }
  emptySet(): this { return this.op(OP.EMPTY_SET); }
  additems(): this { return this.op(OP.ADDITEMS); }
  frozenset(): this { return this.op(OP.FROZENSET); }

  // imports and calls
  global(module: string, name: string): this { return this.op(OP.GLOBAL, ...utf8(`${module}\n${name}\n`)); }
  stackGlobal(): this { return this.op(OP.STACK_GLOBAL); }
  inst(module: string, name: string): this { return this.op(OP.INST, ...utf8(`${module}\n${name}\n`)); }
  obj(): this { return this.op(OP.OBJ); }
  reduce(): this { return this.op(OP.REDUCE); }
  build(): this { return this.op(OP.BUILD); }
  newobj(): this { return this.op(OP.NEWOBJ); }
  newobjEx(): this { return this.op(OP.NEWOBJ_EX); }
  ext1(code: number): this { return this.op(OP.EXT1, code); }
  ext2(code: number): this { return this.op(OP.EXT2, ...le(code, 2)); }
  ext4(code: number): this { return this.op(OP.EXT4, ...le(code, 4)); }
  persid(id: string): this { return this.op(OP.PERSID, ...latin1(`${id}\n`)); }
  binpersid(): this { return this.op(OP.BINPERSID); }

  // memo
  put(i: number): this { return this.op(OP.PUT, ...latin1(`${i}\n`)); }
  get(i: number): this { return this.op(OP.GET, ...latin1(`${i}\n`)); }
  binput(i: number): this { return this.op(OP.BINPUT, i); }
  binget(i: number): this { return this.op(OP.BINGET, i); }
  longBinput(i: number): this { return this.op(OP.LONG_BINPUT, ...le(i, 4)); }
  longBinget(i: number): this { return this.op(OP.LONG_BINGET, ...le(i, 4)); }
  memoize(): this { return this.op(OP.MEMOIZE); }

  // common shapes
  /** STACK_GLOBAL with both names pushed as SHORT_BINUNICODE; the label marks the STACK_GLOBAL opcode. */
  stackGlobalOf(module: string, name: string, label?: string): this {
    this.str(module).str(name);
    if (label) this.label(label);
    return this.stackGlobal();
  }
  /** callable already on the stack: push one string argument and REDUCE. */
  callWithString(arg: string): this { return this.str(arg).tuple1().reduce(); }
}

/** `os.system("echo pwned")` in the given style; returns bytes and the offset of the importing opcode. */
export function osSystemPickle(style: 'GLOBAL' | 'STACK_GLOBAL' = 'GLOBAL', module = 'os', name = 'system'): { bytes: Uint8Array; offset: number } {
  const a = new PickleAsm().proto(style === 'GLOBAL' ? 2 : 4);
  if (style === 'GLOBAL') a.label('g').global(module, name);
  else a.stackGlobalOf(module, name, 'g');
  a.callWithString('echo pwned').stop();
  return { bytes: a.bytes(), offset: a.at.g! };
}

/**
 * A pickle shaped like torch.save's data.pkl for a state dict with one float32 2x2 tensor "weight"
 * whose storage is member data/0 (16 bytes): OrderedDict + _rebuild_tensor_v2 + BINPERSID storage.
 */
export function torchLikeStateDict(protocol = 2, key = '0'): Uint8Array {
  const a = new PickleAsm().proto(protocol);
  a.global('collections', 'OrderedDict').binput(0).emptyTuple().reduce().binput(1)
    .mark()
    .binunicode('weight')
    .global('torch._utils', '_rebuild_tensor_v2').binput(2)
    .mark() // arguments of _rebuild_tensor_v2
    .mark().binunicode('storage').global('torch', 'FloatStorage').binput(3).binunicode(key).binunicode('cpu').int(4).tuple()
    .binpersid()
    .int(0) // storage offset
    .int(2).int(2).tuple2() // size
    .int(2).int(1).tuple2() // stride
    .bool(false) // requires_grad
    .global('collections', 'OrderedDict').emptyTuple().reduce() // backward hooks
    .tuple()
    .reduce()
    .setitems()
    .stop();
  return a.bytes();
}

/** A benign pickle of a numpy float32 array [1, 2] the way numpy pickles it with protocol 2. */
export function numpyArrayPickle(): Uint8Array {
  const a = new PickleAsm().proto(2);
  a.global('numpy.core.multiarray', '_reconstruct')
    .global('numpy', 'ndarray').int(0).tuple1().shortBinbytes('b').tuple3().reduce()
    .mark().int(1).int(2).tuple1()
    .global('numpy', 'dtype').str('f4').bool(false).bool(true).tuple3().reduce()
    .mark().int(3).str('<').none().none().none().binint(-1).binint(-1).int(0).tuple().build()
    .bool(false).shortBinbytes(Buffer.from(new Float32Array([1, 2]).buffer)).tuple().build()
    .stop();
  return a.bytes();
}
