// Where a pickle starts, and where every unpickler stops, by CPython's own rules (pickle.py `_Unpickler.load`
// and `_pickle.c` `load`): both read one opcode byte, look it up in their dispatch table and run it. Any byte
// of that table starts a pickle stream; a byte outside it is "invalid load key". The pickle machine
// (pickle/machine.ts) follows a stream further than CPython where it can (it never executes anything); this
// module decides, from what the machine recorded, whether CPython stops before anything is imported or called.
import { OP } from './pickle/opcodes';
import type { PickleRun } from './pickle/machine';
import type { ByteSource } from './source';

/** 1 for every opcode in CPython's unpickler dispatch table (protocols 0-5; a unit test compares it with
 *  the running python's `pickle._Unpickler.dispatch`). */
const DISPATCH = (() => { const t = new Uint8Array(256); for (const v of Object.values(OP)) t[v] = 1; return t; })();

/** Whether an unpickler starts reading a stream whose first byte is `b0` (it dispatches every opcode). */
export function startsPickle(b0: number | undefined): boolean { return b0 !== undefined && DISPATCH[b0] === 1; }

/** The opcodes whose byte values CPython dispatches, sorted (for tests). */
export function dispatchedOpcodes(): number[] { return [...DISPATCH.keys()].filter((k) => DISPATCH[k] === 1); }

export interface UnpicklerStop {
  /** Offset of the opcode where every unpickler raises. */
  at: number;
  /** Why, in words. */
  why: string;
}

export interface StopOptions {
  /** The bytes the run was read from (its offsets), when random access is possible (not for decompressed streams). */
  src?: ByteSource;
  /** Whether the loader has a persistent_load (torch's unpicklers). pickle.load, numpy.load and torch's first
   *  pickle.load of a legacy file have none: they raise at the first PERSID / BINPERSID. */
  persistentLoad: boolean;
  /** Whether EXT1/2/4 may resolve. They import what copyreg.add_extension registered in the loading process;
   *  a stock interpreter has no registrations (EXT raises "unregistered extension code"). Default true. */
  extensionRegistry?: boolean;
}

/** How the arena describes constants (pickle/arena.ts describe): values no unpickler can call or import from. */
const CONSTANT = '(?:None|boolean (?:true|false)|number -?\\d+|float|bytes|bytearray|tuple|list|dict|set|bigint -?\\d+)';
const CALLS_CONSTANT = new RegExp(`^[A-Z_]+ calls a value computed at load time \\((?:${CONSTANT}|str ".*")\\), not an imported global$`, 's');
const STACK_GLOBAL_OF_CONSTANT = new RegExp(`^STACK_GLOBAL operands are not constant strings \\((?:${CONSTANT}, .*|.*, ${CONSTANT})\\): `);

/**
 * Where every unpickler stops on this stream before importing or calling anything, or undefined when one may
 * import, call or read on past what the machine could follow. Anything imported before the stop still counts
 * (a stream that imports os.system and then breaks has run os.system): then this returns undefined.
 */
export function stopBeforeAnythingRuns(run: PickleRun, opts: StopOptions): UnpicklerStop | undefined {
  let stop = run.complete ? undefined : errorStop(run, opts.src);
  const gs = run.globals, fs = run.findings;
  if (!opts.persistentLoad && opts.src) {
    // the first PERSID / BINPERSID before anything is imported or called (opcode walk, usually a few bytes)
    const firstEvent = Math.min(gs.length ? gs[0].offset : Infinity, fs.length ? fs[0].offset : Infinity);
    const p = firstPersistentId(opts.src, run.start, Math.min(stop?.at ?? run.end, firstEvent));
    if (p !== undefined && (!stop || p < stop.at)) stop = { at: p, why: 'a persistent id, and this loader has no persistent_load' };
  }
  // imports and calls in stream order: each is either a point where every unpickler raises, or something that ran
  let gi = 0, fi = 0;
  for (;;) {
    const go = gi < gs.length ? gs[gi].offset : Infinity, fo = fi < fs.length ? fs[fi].offset : Infinity;
    const at = Math.min(go, fo);
    if (at === Infinity || (stop && at >= stop.at)) break;
    let here: UnpicklerStop | undefined;
    if (go <= fo) {
      const g = gs[gi++];
      // an empty module name raises before anything is imported (not a NUL byte: CPython imports "os\0x" as os)
      if (g.rawModule === '') here = { at, why: `${g.opcode} names a module with an empty name` };
    } else {
      const f = fs[fi++];
      if (f.rule === 'SW005' && opts.extensionRegistry === false && /^EXT[124] imports extension code/.test(f.message)) here = { at, why: 'an extension code, and no extension is registered' };
      else if (f.rule === 'SW003' && CALLS_CONSTANT.test(f.message)) here = { at, why: 'a call of a constant, which is not callable' };
      else if (f.rule === 'SW003' && STACK_GLOBAL_OF_CONSTANT.test(f.message)) here = { at, why: 'STACK_GLOBAL requires str' };
    }
    if (!here) return undefined;   // an import or a call ran before any stop
    stop = here;
    break;
  }
  if (!stop) return undefined;
  const at = stop.at;
  if (run.nested.some((n) => n.start < at) || run.arrays.length) return undefined;
  return stop;
}

/** Whether the machine's error is one CPython raises at the same opcode (not one of the machine's own limits). */
function errorStop(run: PickleRun, src: ByteSource | undefined): UnpicklerStop | undefined {
  const err = run.error ?? '';
  const at = run.errorOffset ?? run.end;
  const op = src ? src.read(at, 1)[0] : undefined;
  const stop = (why = err): UnpicklerStop => ({ at, why });
  if (/^empty pickle stream$/.test(err)) return stop('the stream is empty (EOFError)');
  if (/^pickle data was truncated( \(no STOP\))?$/.test(err)) return stop();
  if (/^pickle data was truncated \(line without newline\)$/.test(err)) {
    // the pure-Python unpickler (joblib's) takes the last line without its newline: GLOBAL / INST would import
    return op !== undefined && op !== OP.GLOBAL && op !== OP.INST ? stop() : undefined;
  }
  if (/^invalid opcode 0x[0-9a-f]{2}$/.test(err)) return stop(`${err} (invalid load key)`);
  if (/^(unpickling stack underflow|could not find MARK|OBJ without a class|negative PUT argument|EXT specifies code <= 0)$/.test(err)) return stop();
  if (/^memo value not found at index \d+$/.test(err)) return stop();
  if (/^unsupported pickle protocol: \d+$/.test(err)) return stop();
  // not "FRAME declares more bytes than remain": the pure-Python unpickler (joblib's) runs a short frame's opcodes
  if (/^(\w+ )?(LONG )?pickle has negative byte count$/.test(err)) return stop();
  if (/^(?!FRAME )[A-Z_0-9]+ declares \d+ bytes but only \d+ remain$/.test(err)) return stop();
  if (/^(the STRING opcode argument must be quoted|invalid \\x escape in STRING)$/.test(err)) return stop();
  if (/^odd number of items for (DICT|SETITEMS)$/.test(err)) return stop();
  if (/^invalid UTF-8 in a string argument$/.test(err)) {
    if (op === OP.GLOBAL || op === OP.INST) return stop('a module or class name is not valid UTF-8');
    // str payloads are decoded with 'surrogatepass': encoded surrogates load in CPython
    if (src && op !== undefined && payloadInvalidEvenWithSurrogates(src, at, op)) return stop('a str payload is not valid UTF-8');
    return undefined;
  }
  if (/^(invalid literal for int\(\)|could not convert string to float)/.test(err) || /^text argument longer than \d+ bytes$/.test(err)) {
    if (!src || op === undefined) return undefined;
    return lineRejected(src, at, op) ? stop(`the ${opName(op)} argument is not one CPython accepts`) : undefined;
  }
  const onTarget = /^(APPENDS?|SETITEMS?|ADDITEMS) on (.*)$/.exec(err);
  if (onTarget) return containerOpFails(onTarget[1], onTarget[2]) ? stop(`${onTarget[1]} on ${onTarget[2]}, which has no such method`) : undefined;
  return undefined;
}

function opName(op: number): string {
  for (const [k, v] of Object.entries(OP)) if (v === op) return k;
  return `0x${op.toString(16)}`;
}

/** APPEND(S) / SETITEM(S) / ADDITEMS on a constant of this kind raise in CPython (AttributeError / TypeError);
 *  bytearray.append, list[i] = x and objects from elsewhere may not. */
function containerOpFails(op: string, target: string): boolean {
  if (/^(a persistent id|the result of calling)/.test(target)) return false;
  const constant = /^(None|boolean (true|false)|number -?\d+|float|str ".*|bytes|tuple|dict|set|bigint -?\d+)$/s.test(target);
  if (op.startsWith('APPEND')) return constant || target === 'list';
  if (op.startsWith('SETITEM')) return constant && target !== 'dict';
  return constant || target === 'list' || target === 'bytearray';
}

/** For a text opcode whose argument the machine refused: whether CPython refuses it too (a byte no int / float
 *  literal, module name or quoted string can hold). Reads at most 16 MB of the line. */
function lineRejected(src: ByteSource, at: number, op: number): boolean {
  const line = src.read(at + 1, 16 << 20);
  let end = line.indexOf(0x0a);
  if (end < 0) end = line.length;
  const text = line.subarray(0, end);
  switch (op) {
    case OP.INT: case OP.LONG: case OP.GET: case OP.PUT:
      // int(x, 0) and strtol(x, 0): whitespace, sign, 0x / 0o / 0b prefixes, hex digits, underscores, a trailing L
      return !/^[\s0-9a-fA-FxXoObB+\-_lL]*$/.test(Buffer.from(text).toString('latin1'));
    case OP.FLOAT:
      return !/^[\s0-9.eE+\-_infatyINFATY]*$/.test(Buffer.from(text).toString('latin1'));
    case OP.STRING:
      return text.length === 0 || (text[0] !== 0x27 && text[0] !== 0x22);
    case OP.GLOBAL: case OP.INST:
      return !validUtf8(text, false);
    default:
      return false;
  }
}

/** SHORT_BINUNICODE / BINUNICODE / BINUNICODE8 at `at`: whether its payload fails CPython's
 *  decode('utf-8', 'surrogatepass'). */
function payloadInvalidEvenWithSurrogates(src: ByteSource, at: number, op: number): boolean {
  const lenBytes = op === OP.SHORT_BINUNICODE ? 1 : op === OP.BINUNICODE ? 4 : op === OP.BINUNICODE8 ? 8 : 0;
  if (!lenBytes) return false;
  const h = src.read(at + 1, lenBytes);
  if (h.length < lenBytes) return false;
  let len = 0;
  for (let i = lenBytes - 1; i >= 0; i--) len = len * 256 + h[i];
  if (len > 64 << 20) return false;
  const payload = src.read(at + 1 + lenBytes, len);
  return payload.length === len && !validUtf8(payload, true);
}

/** UTF-8 validity as CPython decodes it ('strict', or 'surrogatepass': encoded U+D800-U+DFFF allowed). */
export function validUtf8(b: Uint8Array, surrogates: boolean): boolean {
  for (let i = 0; i < b.length;) {
    const c = b[i];
    if (c < 0x80) { i++; continue; }
    let n: number, min: number, cp: number;
    if (c >= 0xc2 && c <= 0xdf) { n = 1; min = 0x80; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { n = 2; min = 0x800; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; min = 0x10000; cp = c & 0x07; }
    else return false;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff) return false;
    if (!surrogates && cp >= 0xd800 && cp <= 0xdfff) return false;
    i += n + 1;
  }
  return true;
}

/** Byte length of each opcode's argument when fixed (pickletools' argument descriptors); -1: a text line,
 *  -2: two lines, -(10 + n): an n-byte little-endian length, then that many bytes. */
const ARG = (() => {
  const t = new Int8Array(256);
  const set = (n: number, ...ops: number[]) => { for (const o of ops) t[o] = n; };
  set(1, OP.PROTO, OP.BININT1, OP.BINGET, OP.BINPUT, OP.EXT1);
  set(2, OP.BININT2, OP.EXT2);
  set(4, OP.BININT, OP.LONG_BINGET, OP.LONG_BINPUT, OP.EXT4);
  set(8, OP.BINFLOAT, OP.FRAME);
  set(-1, OP.INT, OP.LONG, OP.FLOAT, OP.STRING, OP.UNICODE, OP.PERSID, OP.GET, OP.PUT);
  set(-2, OP.GLOBAL, OP.INST);
  set(-11, OP.SHORT_BINSTRING, OP.SHORT_BINBYTES, OP.SHORT_BINUNICODE, OP.LONG1);
  set(-14, OP.BINSTRING, OP.BINBYTES, OP.BINUNICODE, OP.LONG4);
  set(-18, OP.BINUNICODE8, OP.BINBYTES8, OP.BYTEARRAY8);
  return t;
})();

/** Offset of the first PERSID / BINPERSID opcode in [from, to), walking opcode by opcode; undefined when there
 *  is none or the walk cannot be followed (at most 1 MB is walked). */
function firstPersistentId(src: ByteSource, from: number, to: number): number | undefined {
  const limit = Math.min(to, from + (1 << 20), src.size);
  const buf = src.read(from, Math.min(limit - from + 64, 1 << 21));
  let p = 0;
  const end = limit - from;
  const le = (at: number, n: number): number => { let v = 0; for (let i = n - 1; i >= 0; i--) v = v * 256 + (buf[at + i] ?? 0); return v; };
  while (p < end) {
    const op = buf[p];
    if (op === OP.PERSID || op === OP.BINPERSID) return from + p;
    if (!DISPATCH[op]) return undefined;
    const a = ARG[op];
    if (a >= 0) p += 1 + a;
    else if (a === -1 || a === -2) {
      let q = p + 1;
      for (let lines = -a; lines > 0; lines--) { const nl = buf.indexOf(0x0a, q); if (nl < 0) return undefined; q = nl + 1; }
      p = q;
    } else {
      const n = -a - 10;
      if (p + 1 + n > buf.length) return undefined;
      p += 1 + n + le(p + 1, n);
    }
  }
  return undefined;
}
