// Symbolic pickle machine: runs the unpickler's stack / mark stack / memo over one pickle stream without
// executing anything. Written by hand because no library simulates the unpickler symbolically (pickletools
// only lists opcodes; it does not track what each REDUCE calls with which arguments).
import { Cursor } from './cursor';
import { OP, OP_NAME, WEIGHTS_ONLY_OPCODES } from './opcodes';
import { mapPy2Global } from './compat';
import {
  PyBigStr, PyBytes, PyCall, PyDict, PyExt, PyFloat, PyGlobal, PyList, PyNdArray, PyOpaque, PyPersId, PySet,
  PyTuple, PyValue, asInt, asIntTuple, asText, CallKind,
} from './values';

export interface GlobalRecord {
  module: string;        // after Python 2 name mapping (what Python 3 would import)
  name: string;
  rawModule: string;     // as written in the pickle
  rawName: string;
  offset: number;        // absolute offset of the importing opcode
  called: boolean;
  opcode: string;
}

export interface MachineFinding { rule: string; message: string; offset: number; global?: string }

export interface PickleRun {
  start: number;
  end: number;
  protocol: number;
  opcodes: number;
  complete: boolean;
  error?: string;
  errorOffset?: number;
  value?: PyValue;
  globals: GlobalRecord[];
  findings: MachineFinding[];
  /** Reasons torch's weights_only unpickler would refuse this stream (opcode- and target-level). */
  weightsOnlyIssues: string[];
  disasm?: string[];
  disasmTruncated?: boolean;
  nested: PickleRun[];   // pickles read from inside this one (joblib object arrays)
  arrays: PyNdArray[];   // joblib arrays whose data sits in the stream
}

export interface MachineOptions {
  disasm?: boolean;
  maxDisasmLines?: number;
  /** Largest payload copied into memory; larger str/bytes are skipped and kept as length+offset. */
  inlineMax?: number;
  /** Longest text line (protocol 0 arguments) accepted. */
  maxLine?: number;
  depth?: number;
}

class Fail extends Error { constructor(msg: string, readonly at: number) { super(msg); } }

// Far beyond real checkpoints (a 50,000-tensor state dict runs ~1.5M opcodes); past them we fail closed
// instead of letting a crafted (e.g. decompressed) stream grow the simulated stack without bound.
const MAX_OPCODES = 200_000_000;
const MAX_STACK = 20_000_000;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const TWO53 = 2 ** 53;

/** Run one pickle (up to and including STOP) from the cursor's position. */
export function* runPickle(c: Cursor, opts: MachineOptions = {}): Generator<number, PickleRun, void> {
  const inlineMax = opts.inlineMax ?? (1 << 20);
  const maxLine = opts.maxLine ?? (1 << 24);
  const depth = opts.depth ?? 0;
  const run: PickleRun = {
    start: c.abs, end: c.abs, protocol: 0, opcodes: 0, complete: false, globals: [], findings: [],
    weightsOnlyIssues: [], nested: [], arrays: [],
  };
  const disasm: string[] | undefined = opts.disasm ? [] : undefined;
  const maxDis = opts.maxDisasmLines ?? 200_000;
  if (disasm) run.disasm = disasm;
  const stack: PyValue[] = [];
  const marks: number[] = [];      // fences: stack lengths at each MARK
  let fence = 0;
  // memo indexes are dense in real pickles: an array is several times faster than a Map; sparse or huge
  // indexes (crafted) go to the Map. MEMOIZE uses the number of filled slots, like CPython.
  const memoArr: PyValue[] = [];
  const memoHas: Uint8Array[] = [];
  const memoMap = new Map<number, PyValue>();
  let memoCount = 0;
  const DENSE = 1 << 22;
  const memoSet = (idx: number, v: PyValue) => {
    if (idx < DENSE) {
      const page = idx >>> 16;
      let bits = memoHas[page];
      if (!bits) { bits = new Uint8Array(1 << 16); memoHas[page] = bits; }
      if (!bits[idx & 0xffff]) { bits[idx & 0xffff] = 1; memoCount++; }
      while (memoArr.length < idx) memoArr.push(null);
      memoArr[idx] = v;
    } else {
      if (!memoMap.has(idx)) memoCount++;
      memoMap.set(idx, v);
    }
  };
  const memoGet = (idx: number): PyValue => {
    if (idx < DENSE) {
      const bits = memoHas[idx >>> 16];
      if (!bits || !bits[idx & 0xffff]) fail(`memo value not found at index ${idx}`);
      return memoArr[idx];
    }
    if (!memoMap.has(idx)) fail(`memo value not found at index ${idx}`);
    return memoMap.get(idx) as PyValue;
  };
  let proto = 0;
  let frameEnd = -1;              // absolute end of the current FRAME, -1 when not in a frame
  const woSeen = new Set<number>();
  let opStart = c.abs;
  let op = 0;

  const fail = (msg: string): never => { throw new Fail(msg, opStart); };
  const pop = (): PyValue => {
    if (stack.length <= fence) fail('unpickling stack underflow');
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length <= fence) fail('unpickling stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): PyValue[] => {
    if (marks.length === 0) fail('could not find MARK');
    const items = stack.splice(fence);
    marks.pop();
    fence = marks.length ? marks[marks.length - 1] : 0;
    return items;
  };
  // fixed-size arguments: the 16-byte refill at each opcode guarantees them unless the stream ends
  const need = (n: number) => { if (c.buf.length - c.pos < n) fail('pickle data was truncated'); };
  const note = (rule: string, message: string, global?: string) =>
    run.findings.push({ rule, message, offset: opStart, global });
  const dis = (arg: string) => {
    if (!disasm) return;
    if (disasm.length >= maxDis) { run.disasmTruncated = true; return; }
    disasm.push(`${String(opStart).padStart(9)}: ${'  '.repeat(Math.min(marks.length, 20))}${OP_NAME[op].padEnd(16)} ${arg}`);
  };
  const addGlobal = (rawModule: string, rawName: string, opcode: string): PyGlobal => {
    const [module, name] = proto < 3 ? mapPy2Global(rawModule, rawName) : [rawModule, rawName];
    const ref = run.globals.length;
    run.globals.push({ module, name, rawModule, rawName, offset: opStart, called: false, opcode });
    return new PyGlobal(module, name, ref);
  };
  const call = (fn: PyValue, args: PyValue, kind: CallKind, kwargs?: PyValue): PyCall => {
    if (fn instanceof PyGlobal) run.globals[fn.ref].called = true;
    else if (fn instanceof PyExt) note('SW005', `calls an object imported through extension code ${fn.code}`);
    else note('SW003', `${OP_NAME[op]} calls a value computed at load time (${describe(fn)}), not an imported global`);
    if (kind === 'reduce' && !(args instanceof PyTuple)) {
      note('SW003', `REDUCE arguments are computed at load time (${describe(args)}), not a constant tuple`);
    }
    return new PyCall(fn, args, kind, opStart, kwargs);
  };
  const mutateTarget = (target: PyValue, what: string) => {
    if (target instanceof PyGlobal) {
      note('SW006', `${what} modifies the imported global ${target.module}.${target.name} at load time`,
        `${target.module}.${target.name}`);
    }
  };

  let opPos = 0;                  // buffer index of the current opcode byte, for rollback
  let strPidReported = false;
  let pendingNested: { inst: PyCall; dtype: string; shape: number[]; order: string } | undefined;
  /** Un-reads the current opcode and asks the driver for `n` bytes from its start. */
  const rollback = (n: number): number => { c.pos = opPos; run.opcodes--; return n; };

  // Opcodes that are rare in real checkpoints live in their own function: keeping the hot loop small lets
  // V8 optimise it quickly (one large switch took ~0.5 s to compile and was recompiled after deopts).
  const cold = (buf: Uint8Array): number => {
    switch (op) {
        case OP.PROTO: {
          need(1);
          const v = buf[c.pos++];
          if (v > 5) fail(`unsupported pickle protocol: ${v}`);
          proto = v; if (v > run.protocol) run.protocol = v;
          if (disasm) dis(String(v));
          break;
        }
        case OP.FRAME: {
          need(8);
          const len = readU64(buf, c.pos); c.pos += 8;
          if (frameEnd >= 0) fail('beginning of a new frame before end of current frame');
          if (len > c.remaining()) fail(`FRAME declares ${len} bytes but only ${c.remaining()} remain`);
          frameEnd = c.abs + len;
          if (disasm) dis(String(len));
          break;
        }
        case OP.STOP: {
          if (disasm) dis('');
          const v = pop();
          run.value = v;
          run.complete = true;
          run.end = c.abs;
          if (frameEnd > c.abs) note('SW004', `STOP inside a FRAME that declares ${frameEnd - c.abs} more bytes`);
          return 0;
        }
        case OP.POP:
          if (disasm) dis('');
          if (stack.length > fence) stack.pop();
          else if (marks.length) { marks.pop(); fence = marks.length ? marks[marks.length - 1] : 0; }
          else fail('unpickling stack underflow');
          break;
        case OP.POP_MARK: if (disasm) dis(''); popMark(); break;
        case OP.DUP: if (disasm) dis(''); stack.push(top()); break;
        case OP.NEWTRUE: if (disasm) dis(''); stack.push(true); break;
        case OP.BININT: { need(4); const v = readI32(buf, c.pos); c.pos += 4; if (disasm) dis(String(v)); stack.push(v); break; }
        case OP.BININT2: { need(2); const v = buf[c.pos] | (buf[c.pos + 1] << 8); c.pos += 2; if (disasm) dis(String(v)); stack.push(v); break; }
        case OP.BINFLOAT: {
          need(8);
          const v = new DataView(buf.buffer, buf.byteOffset + c.pos, 8).getFloat64(0, false); c.pos += 8;
          if (disasm) dis(String(v)); stack.push(new PyFloat(v)); break;
        }
        case OP.LONG1: case OP.LONG4: {
          const lenBytes = op === OP.LONG1 ? 1 : 4;
          need(lenBytes);
          const n = op === OP.LONG1 ? buf[c.pos] : readI32(buf, c.pos);
          if (n < 0) fail('LONG pickle has negative byte count');
          if (n > 4096) {  // huge ints: never a size we trust; skip like a payload
            if (n > c.remaining() - lenBytes) fail('pickle data was truncated');
            c.pos += lenBytes + n; if (disasm) dis(`<${n}-byte int>`); stack.push(new PyOpaque('huge int'));
            checkFrame(); break;
          }
          if (c.buf.length - c.pos < lenBytes + n) { if (!c.eof) return rollback(1 + lenBytes + n); fail('pickle data was truncated'); }
          const b = c.buf; const at = c.pos + lenBytes;
          const v = decodeLong(b, at, n); c.pos = at + n;
          if (disasm) dis(String(v)); stack.push(v); break;
        }
        // ---- text (protocol 0) opcodes: one line argument
        case OP.INT: case OP.LONG: case OP.FLOAT: case OP.STRING: case OP.UNICODE: case OP.GET: case OP.PUT:
        case OP.PERSID: case OP.GLOBAL: case OP.INST: {
          const line1 = readLine(c, maxLine, fail);
          if (!line1) return rollback(c.buf.length - opPos + 65536);
          if (op === OP.GLOBAL || op === OP.INST) {
            const line2 = readLine(c, maxLine, fail);
            if (!line2) return rollback(c.buf.length - opPos + 65536);
            const mod = decodeUtf8(line1, fail), name = decodeUtf8(line2, fail);
            if (disasm) dis(`${JSON.stringify(mod)} ${JSON.stringify(name)}`);
            const g = addGlobal(mod, name, OP_NAME[op]);
            if (op === OP.GLOBAL) stack.push(g);
            else { const args = popMark(); stack.push(call(g, new PyTuple(args), 'inst')); }
            break;
          }
          const text = latin1(line1);
          switch (op) {
            case OP.INT: {
              if (disasm) dis(text);
              if (text === '01') stack.push(true); else if (text === '00') stack.push(false);
              else stack.push(parsePyInt(text, fail));
              break;
            }
            case OP.LONG: if (disasm) dis(text); stack.push(parsePyInt(text.endsWith('L') ? text.slice(0, -1) : text, fail)); break;
            case OP.FLOAT: {
              const v = parsePyFloat(text); if (v === undefined) fail(`could not convert string to float: ${text.slice(0, 40)}`);
              if (disasm) dis(text); stack.push(new PyFloat(v as number)); break;
            }
            case OP.STRING: { const v = decodePyStringLiteral(text, fail); if (disasm) dis(JSON.stringify(v)); stack.push(v); break; }
            case OP.UNICODE: { const v = decodeRawUnicodeEscape(text); if (disasm) dis(JSON.stringify(v)); stack.push(v); break; }
            case OP.GET: {
              const idx = parsePyInt(text, fail); if (disasm) dis(String(idx));
              stack.push(memoGet(Number(idx))); break;
            }
            case OP.PUT: {
              const idx = Number(parsePyInt(text, fail)); if (disasm) dis(String(idx));
              if (idx < 0) fail('negative PUT argument');
              memoSet(idx, top()); break;
            }
            case OP.PERSID: if (disasm) dis(JSON.stringify(text)); stack.push(new PyPersId(text, opStart)); break;
          }
          break;
        }
        // ---- length-prefixed strings and bytes
        case OP.NEXT_BUFFER: if (disasm) dis(''); stack.push(new PyOpaque('out-of-band buffer')); break;
        case OP.READONLY_BUFFER: if (disasm) dis(''); top(); break;
        // ---- containers
        case OP.TUPLE1: { if (disasm) dis(''); const a = pop(); stack.push(new PyTuple([a])); break; }
        case OP.TUPLE3: { if (disasm) dis(''); const c3 = pop(); const b2 = pop(); const a = pop(); stack.push(new PyTuple([a, b2, c3])); break; }
        case OP.EMPTY_LIST: if (disasm) dis(''); stack.push(new PyList([])); break;
        case OP.LIST: if (disasm) dis(''); stack.push(new PyList(popMark())); break;
        case OP.EMPTY_DICT: if (disasm) dis(''); stack.push(new PyDict([])); break;
        case OP.DICT: {
          if (disasm) dis('');
          const items = popMark();
          if (items.length % 2) fail('odd number of items for DICT');
          const d = new PyDict([]);
          for (let i = 0; i < items.length; i += 2) d.entries.push([items[i], items[i + 1]]);
          stack.push(d); break;
        }
        case OP.EMPTY_SET: if (disasm) dis(''); stack.push(new PySet([], false)); break;
        case OP.FROZENSET: if (disasm) dis(''); stack.push(new PySet(popMark(), true)); break;
        case OP.APPEND: case OP.APPENDS: {
          if (disasm) dis('');
          const items = op === OP.APPEND ? [pop()] : popMark();
          const t = top();
          if (t instanceof PyList) { for (const it of items) t.items.push(it); }
          else if (t instanceof PyCall) { (t.listItems ??= []).push(...items); woIssue(`${OP_NAME[op]} on an object that is not a list`); }
          else if (t instanceof PyGlobal) mutateTarget(t, OP_NAME[op]);
          else fail(`${OP_NAME[op]} on ${describe(t)}`);
          break;
        }
        case OP.ADDITEMS: {
          if (disasm) dis('');
          const items = popMark();
          const t = top();
          if (t instanceof PySet && !t.frozen) t.items.push(...items);
          else if (t instanceof PyCall) (t.setItems ??= []).push(...items);
          else if (t instanceof PyGlobal) mutateTarget(t, 'ADDITEMS');
          else fail(`ADDITEMS on ${describe(t)}`);
          break;
        }
        // ---- memo
        case OP.MEMOIZE: if (disasm) dis(String(memoCount)); memoSet(memoCount, top()); break;
        // ---- imports and calls
        case OP.STACK_GLOBAL: {
          const nameV = pop(); const modV = pop();
          if (typeof nameV !== 'string' || typeof modV !== 'string') {
            if (disasm) dis('<computed>');
            note('SW003', `STACK_GLOBAL operands are not constant strings (${describe(modV)}, ${describe(nameV)}): the imported name is decided at load time`);
            stack.push(new PyOpaque('computed global'));
            break;
          }
          if (disasm) dis(`${JSON.stringify(modV)} ${JSON.stringify(nameV)}`);
          stack.push(addGlobal(modV, nameV, 'STACK_GLOBAL'));
          break;
        }
        case OP.EXT1: case OP.EXT2: case OP.EXT4: {
          const n = op === OP.EXT1 ? 1 : op === OP.EXT2 ? 2 : 4; need(n);
          const code = n === 1 ? buf[c.pos] : n === 2 ? (buf[c.pos] | (buf[c.pos + 1] << 8)) : readI32(buf, c.pos);
          c.pos += n; if (disasm) dis(String(code));
          if (code <= 0) fail('EXT specifies code <= 0');
          note('SW005', `${OP_NAME[op]} imports extension code ${code} from the copyreg registry, which cannot be resolved statically`);
          stack.push(new PyExt(code, opStart));
          break;
        }
        case OP.NEWOBJ: {
          if (disasm) dis('');
          const args = pop(); const cls = pop();
          stack.push(call(cls, args, 'newobj'));
          break;
        }
        case OP.NEWOBJ_EX: {
          if (disasm) dis('');
          const kwargs = pop(); const args = pop(); const cls = pop();
          stack.push(call(cls, args, 'newobj_ex', kwargs));
          break;
        }
        case OP.OBJ: {
          if (disasm) dis('');
          const items = popMark();
          if (items.length === 0) fail('OBJ without a class');
          stack.push(call(items[0], new PyTuple(items.slice(1)), 'obj'));
          break;
        }
        case OP.BUILD: {
          if (disasm) dis('');
          const target = stack.length - 2 >= fence ? stack[stack.length - 2] : undefined;
          // joblib's array payload (padding byte + padding) must be in the buffer before BUILD mutates anything
          if (isJoblibWrapper(target) && c.buf.length - c.pos < 257 && !c.eof) return rollback(1 + 257);
          const state = pop();
          const inst = top();
          if (inst instanceof PyGlobal) mutateTarget(inst, 'BUILD');
          else if (inst instanceof PyCall) {
            inst.states.push(state);
            if (isJoblibWrapper(inst)) {
              // joblib writes array bytes after committing the frame: they are outside any FRAME
              if (frameEnd >= 0 && c.abs === frameEnd) frameEnd = -1;
              const arr = joblibArrayPayload(c, state, run, depth, fail);
              if (arr instanceof PyNdArray) stack[stack.length - 1] = arr;
              else { pendingNested = { inst, ...arr }; return NESTED; }
            }
          }
          break;
        }
        default:
          fail(`invalid opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
    return CONT;
  };

  // The hot loop is a plain function (generators with yields inside loops run far slower in V8): it returns
  // 0 when the pickle ended (STOP or error), n > 0 when it needs n bytes from the current opcode, or NESTED.
  const step = (): number => {
  try {
    for (;;) {
      if (c.buf.length - c.pos < 16 && !c.eof) return 16;
      if (c.pos >= c.buf.length) {
        opStart = c.abs;
        fail(run.opcodes === 0 ? 'empty pickle stream' : 'pickle data was truncated (no STOP)');
      }
      const buf = c.buf;
      opPos = c.pos;
      opStart = c.bufStart + c.pos;
      if (frameEnd >= 0 && opStart >= frameEnd) frameEnd = -1;
      op = buf[c.pos++];
      if (++run.opcodes > MAX_OPCODES || stack.length > MAX_STACK || memoCount > MAX_STACK) {
        fail(`pickle exceeds the analysis limits (${MAX_OPCODES} opcodes, ${MAX_STACK} stack or memo entries)`);
      }
      if (!WEIGHTS_ONLY_OPCODES.has(op) && !woSeen.has(op)) {
        woSeen.add(op);
        run.weightsOnlyIssues.push(`opcode ${OP_NAME[op] || '0x' + op.toString(16)} at offset ${opStart} is not supported by the weights_only unpickler`);
      }
      switch (op) {
        case OP.MARK: marks.push(stack.length); fence = stack.length; if (disasm) dis(''); break;
        case OP.NONE: if (disasm) dis(''); stack.push(null); break;
        case OP.NEWFALSE: if (disasm) dis(''); stack.push(false); break;
        case OP.BININT1: { need(1); const v = buf[c.pos++]; if (disasm) dis(String(v)); stack.push(v); break; }
        case OP.SHORT_BINSTRING: case OP.SHORT_BINBYTES: case OP.SHORT_BINUNICODE:
        case OP.BINSTRING: case OP.BINBYTES: case OP.BINUNICODE:
        case OP.BINUNICODE8: case OP.BINBYTES8: case OP.BYTEARRAY8: {
          const lenBytes = (op === OP.SHORT_BINSTRING || op === OP.SHORT_BINBYTES || op === OP.SHORT_BINUNICODE) ? 1
            : (op === OP.BINUNICODE8 || op === OP.BINBYTES8 || op === OP.BYTEARRAY8) ? 8 : 4;
          need(lenBytes);
          let len: number;
          if (lenBytes === 1) len = buf[c.pos];
          else if (lenBytes === 4) len = op === OP.BINSTRING ? readI32(buf, c.pos) : readU32(buf, c.pos);
          else len = readU64(buf, c.pos);
          if (len < 0) fail(`${OP_NAME[op]} pickle has negative byte count`);
          const payloadAt = c.abs + lenBytes;
          if (len > c.remaining() - lenBytes) fail(`${OP_NAME[op]} declares ${len} bytes but only ${Math.max(0, c.remaining() - lenBytes)} remain`);
          const isText = op === OP.SHORT_BINUNICODE || op === OP.BINUNICODE || op === OP.BINUNICODE8;
          if (len > inlineMax) {
            c.pos += lenBytes + len;   // skip without copying
            if (disasm) dis(`<${len} bytes at ${payloadAt}>`);
            stack.push(isText ? new PyBigStr(len, payloadAt) : new PyBytes(len, payloadAt, undefined, kindOf(op)));
            checkFrame();
            break;
          }
          if (c.buf.length - c.pos < lenBytes + len) {
            if (!c.eof) return rollback(1 + lenBytes + len);
            fail('pickle data was truncated');
          }
          const b = c.buf; const at = c.pos + lenBytes;
          c.pos = at + len;
          if (isText) {
            const s = decodeUtf8(b.subarray(at, at + len), fail);
            if (disasm) dis(JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s)); stack.push(s);
          } else if (op === OP.SHORT_BINSTRING || op === OP.BINSTRING) {
            // Python 3 decodes protocol 0-2 str payloads (encoding='ASCII' by default): they are str, not bytes
            const s = latin1(b.subarray(at, at + len));
            if (disasm) dis(JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s)); stack.push(s);
          } else {
            // keep a copy only of small payloads (names, dtype strings); big ones by offset
            const data = len <= 4096 ? b.slice(at, at + len) : undefined;
            if (disasm) dis(bytesRepr(b, at, len));
            stack.push(new PyBytes(len, payloadAt, data, kindOf(op)));
          }
          break;
        }
        case OP.EMPTY_TUPLE: if (disasm) dis(''); stack.push(new PyTuple([])); break;
        case OP.TUPLE: if (disasm) dis(''); stack.push(new PyTuple(popMark())); break;
        case OP.TUPLE2: { if (disasm) dis(''); const b2 = pop(); const a = pop(); stack.push(new PyTuple([a, b2])); break; }
        case OP.SETITEM: case OP.SETITEMS: {
          if (disasm) dis('');
          let items: PyValue[];
          if (op === OP.SETITEM) { const v = pop(); const k = pop(); items = [k, v]; } else items = popMark();
          if (items.length % 2) fail('odd number of items for SETITEMS');
          const t = top();
          if (t instanceof PyDict) { for (let i = 0; i < items.length; i += 2) t.entries.push([items[i], items[i + 1]]); }
          else if (t instanceof PyCall) {
            const arr = (t.dictItems ??= []);
            for (let i = 0; i < items.length; i += 2) arr.push([items[i], items[i + 1]]);
            const n = t.fn instanceof PyGlobal ? `${t.fn.module}.${t.fn.name}` : '';
            if (n !== 'collections.OrderedDict' && n !== 'collections.Counter') woIssue(`${OP_NAME[op]} on a ${n || 'computed'} object`);
          } else if (t instanceof PyGlobal) mutateTarget(t, OP_NAME[op]);
          else fail(`${OP_NAME[op]} on ${describe(t)}`);
          break;
        }
        case OP.BINGET: case OP.LONG_BINGET: {
          const n = op === OP.BINGET ? 1 : 4; need(n);
          const idx = n === 1 ? buf[c.pos] : readU32(buf, c.pos); c.pos += n;
          if (disasm) dis(String(idx));
          stack.push(memoGet(idx)); break;
        }
        case OP.BINPUT: case OP.LONG_BINPUT: {
          const n = op === OP.BINPUT ? 1 : 4; need(n);
          const idx = n === 1 ? buf[c.pos] : readU32(buf, c.pos); c.pos += n;
          if (disasm) dis(String(idx));
          memoSet(idx, top()); break;
        }
        case OP.REDUCE: {
          if (disasm) dis('');
          const args = pop(); const fn = pop();
          stack.push(call(fn, args, 'reduce'));
          break;
        }
        case OP.BINPERSID: {
          if (disasm) dis('');
          const pid = pop();
          if (!(pid instanceof PyTuple) && typeof pid !== 'number' && !strPidReported) {
            strPidReported = true;
            woIssue(`persistent id at offset ${opStart} is not a tuple or int`);
          }
          stack.push(new PyPersId(pid, opStart)); break;
        }
        default: {
          const r = cold(buf);
          if (r !== CONT) return r;
        }
      }
      checkFrame();
    }
  } catch (e) {
    if (!(e instanceof Fail)) throw e;
    run.error = e.message;
    run.errorOffset = e.at;
    run.end = Math.max(c.abs, e.at);
    return 0;
  }
  };

  for (;;) {
    const r = step();
    if (r === 0) return run;
    if (r === NESTED && pendingNested) {
      // joblib unpickles object arrays with a nested pickle.load() on the same stream
      const p = pendingNested; pendingNested = undefined;
      const nested = yield* runPickle(c, { ...opts, depth: depth + 1, disasm: false });
      run.nested.push(nested);
      if (!nested.complete) {
        run.error = `nested object-array pickle failed: ${nested.error}`;
        run.errorOffset = nested.errorOffset ?? nested.end; run.end = nested.end;
        return run;
      }
      stack[stack.length - 1] = new PyNdArray(p.dtype, p.shape, nested.start, nested.end - nested.start, p.order);
      continue;
    }
    yield r;
  }

  function checkFrame() {
    if (frameEnd >= 0 && c.abs > frameEnd) fail(`opcode at ${opStart} crosses the end of its FRAME at ${frameEnd}`);
  }
  function woIssue(msg: string) {
    if (run.weightsOnlyIssues.length < 20) run.weightsOnlyIssues.push(msg);
  }
}


function kindOf(op: number): 'bytes' | 'bytearray' | 'str8' {
  if (op === OP.BYTEARRAY8) return 'bytearray';
  if (op === OP.SHORT_BINSTRING || op === OP.BINSTRING) return 'str8';
  return 'bytes';
}

// ---- joblib: NumpyArrayWrapper objects are followed by the array's raw bytes inside the pickle stream
const NESTED = -1;
const CONT = -2;

function isJoblibWrapper(v: PyValue | undefined): v is PyCall {
  return v instanceof PyCall && v.fn instanceof PyGlobal && v.fn.name === 'NumpyArrayWrapper' && /(^|\.)numpy_pickle$/.test(v.fn.module);
}

/** Skips the raw array bytes after a NumpyArrayWrapper BUILD; for object arrays returns what the nested pickle needs. */
function joblibArrayPayload(c: Cursor, state: PyValue, run: PickleRun, depth: number,
  fail: (m: string) => never): PyNdArray | { dtype: string; shape: number[]; order: string } {
  if (!(state instanceof PyDict)) return fail('joblib NumpyArrayWrapper state is not a dict');
  const st = new Map<string, PyValue>();
  for (const [k, v] of state.entries) { const ks = asText(k); if (ks !== undefined) st.set(ks, v); }
  const shape = asIntTuple(st.get('shape') ?? null);
  const dt = numpyDtypeOf(st.get('dtype') ?? null);
  const order = asText(st.get('order') ?? null) ?? 'C';
  if (!shape || !dt) return fail('cannot follow joblib array layout: shape or dtype is not constant');
  const count = shape.reduce((a, b) => a * b, 1);
  if (dt.hasObject) {
    if (depth > 8) fail('nested pickles too deep');
    return { dtype: dt.str, shape, order };
  }
  if (st.has('numpy_array_alignment_bytes')) {
    if (c.buf.length - c.pos < 1) fail('joblib padding truncated');
    const pad = c.buf[c.pos]; c.pos += 1 + pad;
  }
  const bytes = count * dt.itemsize;
  if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > c.remaining()) fail(`joblib array declares ${bytes} bytes but only ${c.remaining()} remain`);
  const at = c.abs;
  c.pos += bytes;
  const arr = new PyNdArray(dt.str, shape, at, bytes, order);
  run.arrays.push(arr);
  return arr;
}

export interface NumpyDtype { str: string; itemsize: number; hasObject: boolean }

/** Reads a pickled numpy.dtype: REDUCE(numpy.dtype, ('f8', False, True)) + BUILD((3, '<', ..., elsize, ...)). */
export function numpyDtypeOf(v: PyValue): NumpyDtype | undefined {
  if (!(v instanceof PyCall) || !(v.fn instanceof PyGlobal) || v.fn.name !== 'dtype') return undefined;
  if (!(v.args instanceof PyTuple) || v.args.items.length < 1) return undefined;
  const typestr = asText(v.args.items[0]);
  if (typestr === undefined) return undefined;
  const st = v.states[0];
  let endian = '<';
  let elsize: number | undefined;
  let hasFields = false;
  if (st instanceof PyTuple) {
    const e = asText(st.items[1] ?? null); if (e) endian = e;
    if (st.items.length >= 8) { const n = asInt(st.items[5]); if (n !== undefined && n > 0) elsize = n; }
    if (st.items[3] instanceof PyDict) hasFields = true;
  }
  const m = /^([a-zA-Z?])(\d*)$/.exec(typestr);
  if (!m) return undefined;
  const kind = m[1];
  const n = m[2] ? parseInt(m[2], 10) : (kind === 'b' || kind === '?' ? 1 : undefined);
  const hasObject = kind === 'O' || (hasFields && containsObjectField(st));
  const itemsize = elsize ?? (kind === 'U' ? (n ?? 0) : n) ?? (kind === 'O' ? 8 : undefined);
  if (itemsize === undefined) return undefined;
  const e = endian === '|' || endian === '=' ? (kind === 'O' ? '|' : '<') : endian;
  return { str: `${e}${kind}${itemsize}`, itemsize, hasObject };
}

function containsObjectField(st: PyValue): boolean {
  if (!(st instanceof PyTuple) || !(st.items[3] instanceof PyDict)) return false;
  for (const [, v] of st.items[3].entries) {
    if (v instanceof PyTuple && v.items[0] instanceof PyCall) {
      const d = numpyDtypeOf(v.items[0]);
      if (!d || d.hasObject) return true;   // unknown field dtype: fail closed
    }
  }
  return false;
}

// ---- low-level readers
function readI32(b: Uint8Array, i: number): number { return (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)); }
function readU32(b: Uint8Array, i: number): number { return readI32(b, i) >>> 0; }
function readU64(b: Uint8Array, i: number): number {
  const lo = readU32(b, i), hi = readU32(b, i + 4);
  return hi >= 0x200000 ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo; // lengths beyond 2^53 never fit a file
}

function decodeLong(b: Uint8Array, at: number, n: number): number | bigint {
  if (n === 0) return 0;
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[at + i]);
  if (b[at + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
  return v >= -BigInt(TWO53) && v <= BigInt(TWO53) ? Number(v) : v;
}

/** The next line (without its newline) or undefined when more bytes may still arrive. */
function readLine(c: Cursor, maxLine: number, fail: (m: string) => never): Uint8Array | undefined {
  const idx = c.buf.indexOf(0x0a, c.pos);
  if (idx >= 0) {
    if (idx - c.pos > maxLine) fail(`text argument longer than ${maxLine} bytes`);
    const line = c.buf.subarray(c.pos, idx); c.pos = idx + 1; return line;
  }
  if (c.buf.length - c.pos > maxLine) fail(`text argument longer than ${maxLine} bytes`);
  if (c.eof) fail('pickle data was truncated (line without newline)');
  return undefined;
}

function latin1(b: Uint8Array): string { return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1'); }

function decodeUtf8(b: Uint8Array, fail: (m: string) => never): string {
  try { return utf8.decode(b); } catch { return fail('invalid UTF-8 in a string argument'); }
}

function parsePyInt(text: string, fail: (m: string) => never): number | bigint {
  const t = text.trim().replace(/_/g, '');
  if (!/^[+-]?\d+$/.test(t)) return fail(`invalid literal for int(): ${JSON.stringify(text.slice(0, 40))}`);
  if (t.length < 16) return parseInt(t, 10);
  const v = BigInt(t);
  return v >= -BigInt(TWO53) && v <= BigInt(TWO53) ? Number(v) : v;
}

function parsePyFloat(text: string): number | undefined {
  const t = text.trim().toLowerCase();
  if (/^[+-]?(inf|infinity)$/.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/.test(t)) return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t.replace(/_/g, ''))) return undefined;
  return parseFloat(t.replace(/_/g, ''));
}

/** Protocol 0 STRING: a quoted Python 2 str literal with backslash escapes. */
function decodePyStringLiteral(text: string, fail: (m: string) => never): string {
  const q = text[0];
  if (text.length < 2 || (q !== '"' && q !== "'") || text[text.length - 1] !== q) return fail('the STRING opcode argument must be quoted');
  const body = text.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch !== '\\') { out += ch; continue; }
    const n = body[++i];
    switch (n) {
      case 'n': out += '\n'; break; case 't': out += '\t'; break; case 'r': out += '\r'; break;
      case 'a': out += '\x07'; break; case 'b': out += '\b'; break; case 'f': out += '\f'; break;
      case 'v': out += '\v'; break; case '\\': out += '\\'; break; case "'": out += "'"; break;
      case '"': out += '"'; break; case '\n': break;
      case 'x': {
        const h = body.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) return fail('invalid \\x escape in STRING');
        out += String.fromCharCode(parseInt(h, 16)); i += 2; break;
      }
      default:
        if (n !== undefined && n >= '0' && n <= '7') {
          let j = i; let oct = '';
          while (j < body.length && oct.length < 3 && body[j] >= '0' && body[j] <= '7') oct += body[j++];
          out += String.fromCharCode(parseInt(oct, 8) & 0xff); i = j - 1;
        } else out += '\\' + (n ?? '');
    }
  }
  return out;
}

/** Protocol 0 UNICODE: raw-unicode-escape (only \uXXXX and \UXXXXXXXX are escapes). */
function decodeRawUnicodeEscape(text: string): string {
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, a: string, b: string) =>
    String.fromCodePoint(parseInt(a ?? b, 16) > 0x10ffff ? 0xfffd : parseInt(a ?? b, 16)));
}

function bytesRepr(b: Uint8Array, at: number, len: number): string {
  const n = Math.min(len, 48);
  let s = "b'";
  for (let i = 0; i < n; i++) {
    const x = b[at + i];
    s += x >= 0x20 && x < 0x7f && x !== 0x27 && x !== 0x5c ? String.fromCharCode(x) : '\\x' + x.toString(16).padStart(2, '0');
  }
  return s + "'" + (len > n ? `…(${len} bytes)` : '');
}

export function describe(v: PyValue): string {
  if (v === null) return 'None';
  if (typeof v === 'string') return `str ${JSON.stringify(v.length > 60 ? v.slice(0, 60) + '…' : v)}`;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  if (v instanceof PyCall) return `the result of calling ${v.fn instanceof PyGlobal ? `${v.fn.module}.${v.fn.name}` : 'a computed value'}`;
  if (v instanceof PyGlobal) return `${v.module}.${v.name}`;
  if (v instanceof PyPersId) return 'a persistent id';
  if (v instanceof PyOpaque) return v.what;
  return v.constructor.name.replace(/^Py/, '').toLowerCase();
}
