// Pickle opcodes of protocols 0-5 (facts from CPython's pickletools documentation).

export const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32, FLOAT: 0x46, INT: 0x49, BININT: 0x4a,
  BININT1: 0x4b, LONG: 0x4c, BININT2: 0x4d, NONE: 0x4e, PERSID: 0x50, BINPERSID: 0x51, REDUCE: 0x52,
  STRING: 0x53, BINSTRING: 0x54, SHORT_BINSTRING: 0x55, UNICODE: 0x56, BINUNICODE: 0x58, APPEND: 0x61,
  BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, EMPTY_DICT: 0x7d, APPENDS: 0x65, GET: 0x67, BINGET: 0x68,
  INST: 0x69, LONG_BINGET: 0x6a, LIST: 0x6c, EMPTY_LIST: 0x5d, OBJ: 0x6f, PUT: 0x70, BINPUT: 0x71,
  LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74, EMPTY_TUPLE: 0x29, SETITEMS: 0x75, BINFLOAT: 0x47,
  // protocol 2
  PROTO: 0x80, NEWOBJ: 0x81, EXT1: 0x82, EXT2: 0x83, EXT4: 0x84, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a, LONG4: 0x8b,
  // protocol 3
  BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  // protocol 4
  SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f, ADDITEMS: 0x90,
  FROZENSET: 0x91, NEWOBJ_EX: 0x92, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95,
  // protocol 5
  BYTEARRAY8: 0x96, NEXT_BUFFER: 0x97, READONLY_BUFFER: 0x98,
} as const;

/** The opcodes of PickleMachine.fast() as a const enum: inlined as literals, so its switch compiles to a jump
 *  table (cases read from the OP object measured ~25% slower). A unit test checks they equal OP. */
export const enum Hot {
  BINPUT = 0x71, LONG_BINPUT = 0x72, MEMOIZE = 0x94, BINGET = 0x68, LONG_BINGET = 0x6a, BININT1 = 0x4b,
  BININT = 0x4a, BININT2 = 0x4d, NONE = 0x4e, NEWFALSE = 0x89, NEWTRUE = 0x88, EMPTY_TUPLE = 0x29,
  EMPTY_DICT = 0x7d, EMPTY_LIST = 0x5d, MARK = 0x28, BINUNICODE = 0x58, SHORT_BINUNICODE = 0x8c,
  TUPLE = 0x74, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, REDUCE = 0x52, BINPERSID = 0x51,
  SETITEMS = 0x75, APPENDS = 0x65
}

export const OP_NAME: string[] = (() => {
  const names: string[] = new Array(256).fill('');
  for (const [k, v] of Object.entries(OP)) names[v] = k;
  return names;
})();

export function isOpcode(b: number): boolean { return OP_NAME[b] !== ''; }

/** Opcodes torch's weights_only unpickler implements (anything else makes it raise). */
export const WEIGHTS_ONLY_OPCODES: ReadonlySet<number> = new Set([
  OP.GLOBAL, OP.NEWOBJ, OP.REDUCE, OP.BUILD, OP.APPEND, OP.APPENDS, OP.SETITEM, OP.SETITEMS, OP.MARK,
  OP.TUPLE, OP.TUPLE1, OP.TUPLE2, OP.TUPLE3, OP.NONE, OP.NEWFALSE, OP.NEWTRUE, OP.EMPTY_TUPLE, OP.EMPTY_LIST,
  OP.EMPTY_DICT, OP.EMPTY_SET, OP.BININT, OP.BININT1, OP.BININT2, OP.BINFLOAT, OP.BINUNICODE,
  OP.SHORT_BINSTRING, OP.BINPERSID, OP.BINGET, OP.LONG_BINGET, OP.BINPUT, OP.LONG_BINPUT, OP.LONG1, OP.PROTO,
  OP.STOP,
]);

/** Bytes a plausible pickle can start with: PROTO, or a protocol 0/1 opcode that pushes something. */
export function looksLikePickleStart(b0: number, b1: number | undefined): boolean {
  if (b0 === OP.PROTO) return b1 !== undefined && b1 >= 0 && b1 <= 5;
  return b0 === OP.MARK || b0 === OP.GLOBAL || b0 === OP.EMPTY_DICT || b0 === OP.EMPTY_LIST ||
    b0 === OP.EMPTY_TUPLE || b0 === OP.NONE || b0 === OP.INT || b0 === OP.STRING || b0 === OP.UNICODE ||
    b0 === OP.BININT || b0 === OP.BININT1 || b0 === OP.BININT2 || b0 === OP.LONG || b0 === OP.FLOAT ||
    b0 === OP.BINUNICODE || b0 === OP.SHORT_BINSTRING || b0 === OP.BINSTRING || b0 === OP.INST ||
    b0 === OP.FRAME;
}
