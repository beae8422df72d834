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

const DENSE = 1 << 22;
// Far beyond real checkpoints (a 50,000-tensor state dict runs ~1.5M opcodes); past them we fail closed
// instead of letting a crafted (e.g. decompressed) stream grow the simulated stack without bound.
const MAX_OPCODES = 200_000_000;
const MAX_STACK = 20_000_000;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const TWO53 = 2 ** 53;

/** One pickle stream under simulation. State lives in fields and the helpers are methods, so V8 sees the
 *  same functions for every stream (closures created per stream were re-optimised each time). */
class PickleMachine {
  readonly inlineMax: number;
  readonly maxLine: number;
  readonly depth: number;
  readonly run: PickleRun;
  readonly disasm: string[] | undefined;
  readonly maxDis: number;
  readonly stack: PyValue[] = [];
  readonly marks: number[] = [];      // fences: stack lengths at each MARK
  fence = 0;
  // memo indexes are dense in real pickles: an array is several times faster than a Map; sparse or huge
  // indexes (crafted) go to the Map. MEMOIZE uses the number of filled slots, like CPython.
  readonly memoArr: PyValue[] = [];
  readonly memoHas: Uint8Array[] = [];
  readonly memoMap = new Map<number, PyValue>();
  memoCount = 0;
  proto = 0;
  frameEnd = -1;              // absolute end of the current FRAME, -1 when not in a frame
  readonly woSeen = new Set<number>();
  opStart: number;
  op = 0;
  opPos = 0;                  // buffer index of the current opcode byte, for rollback
  strPidReported = false;
  pendingNested: { inst: PyCall; dtype: string; shape: number[]; order: string } | undefined;
  /** Throws the parse error at the current opcode (an arrow: it is passed to helper functions). */
  readonly fail = (msg: string): never => { throw new Fail(msg, this.opStart); };

  constructor(readonly c: Cursor, readonly opts: MachineOptions) {
    this.inlineMax = opts.inlineMax ?? (1 << 20);
    this.maxLine = opts.maxLine ?? (1 << 24);
    this.depth = opts.depth ?? 0;
    this.run = {
      start: c.abs, end: c.abs, protocol: 0, opcodes: 0, complete: false, globals: [], findings: [],
      weightsOnlyIssues: [], nested: [], arrays: [],
    };
    this.disasm = opts.disasm ? [] : undefined;
    this.maxDis = opts.maxDisasmLines ?? 200_000;
    if (this.disasm) this.run.disasm = this.disasm;
    this.opStart = c.abs;
  }

  memoSet(idx: number, v: PyValue) {
    if (idx < DENSE) {
      const page = idx >>> 16;
      let bits = this.memoHas[page];
      if (!bits) { bits = new Uint8Array(1 << 16); this.memoHas[page] = bits; }
      if (!bits[idx & 0xffff]) { bits[idx & 0xffff] = 1; this.memoCount++; }
      while (this.memoArr.length < idx) this.memoArr.push(null);
      this.memoArr[idx] = v;
    } else {
      if (!this.memoMap.has(idx)) this.memoCount++;
      this.memoMap.set(idx, v);
    }
  }

  memoGet(idx: number): PyValue {
    if (idx < DENSE) {
      const bits = this.memoHas[idx >>> 16];
      if (!bits || !bits[idx & 0xffff]) this.fail(`memo value not found at index ${idx}`);
      return this.memoArr[idx];
    }
    if (!this.memoMap.has(idx)) this.fail(`memo value not found at index ${idx}`);
    return this.memoMap.get(idx) as PyValue;
  }

  pop(): PyValue {
    if (this.stack.length <= this.fence) this.fail('unpickling this.stack underflow');
    return this.stack.pop() as PyValue;
  }

  top(): PyValue {
    if (this.stack.length <= this.fence) this.fail('unpickling this.stack underflow');
    return this.stack[this.stack.length - 1];
  }

  popMark(): PyValue[] {
    if (this.marks.length === 0) this.fail('could not find MARK');
    const items = this.stack.splice(this.fence);
    this.marks.pop();
    this.fence = this.marks.length ? this.marks[this.marks.length - 1] : 0;
    return items;
  }

  // fixed-size arguments: the 16-byte refill at each opcode guarantees them unless the stream ends
  need(n: number) { if (this.c.buf.length - this.c.pos < n) this.fail('pickle data was truncated'); }

  note(rule: string, message: string, global?: string) {
      this.run.findings.push({ rule, message, offset: this.opStart, global });
  }

  dis(arg: string) {
    if (!this.disasm) return;
    if (this.disasm.length >= this.maxDis) { this.run.disasmTruncated = true; return; }
    this.disasm.push(`${String(this.opStart).padStart(9)}: ${'  '.repeat(Math.min(this.marks.length, 20))}${OP_NAME[this.op].padEnd(16)} ${arg}`);
  }

  addGlobal(rawModule: string, rawName: string, opcode: string): PyGlobal {
    const [module, name] = this.proto < 3 ? mapPy2Global(rawModule, rawName) : [rawModule, rawName];
    const ref = this.run.globals.length;
    this.run.globals.push({ module, name, rawModule, rawName, offset: this.opStart, called: false, opcode });
    return new PyGlobal(module, name, ref);
  }

  call(fn: PyValue, args: PyValue, kind: CallKind, kwargs?: PyValue): PyCall {
    if (fn instanceof PyGlobal) this.run.globals[fn.ref].called = true;
    else if (fn instanceof PyExt) this.note('SW005', `calls an object imported through extension code ${fn.code}`);
    else this.note('SW003', `${OP_NAME[this.op]} calls a value computed at load time (${describe(fn)}), not an imported global`);
    if (kind === 'reduce' && !(args instanceof PyTuple)) {
      this.note('SW003', `REDUCE arguments are computed at load time (${describe(args)}), not a constant tuple`);
    }
    return new PyCall(fn, args, kind, this.opStart, kwargs);
  }

  mutateTarget(target: PyValue, what: string) {
    if (target instanceof PyGlobal) {
      this.note('SW006', `${what} modifies the imported global ${target.module}.${target.name} at load time`,
        `${target.module}.${target.name}`);
    }
  }

  /** Un-reads the current opcode and asks the driver for `n` bytes from its start. */
  rollback(n: number): number { this.c.pos = this.opPos; this.run.opcodes--; return n; }

  // Opcodes that are rare in real checkpoints live in their own function: keeping the hot loop small lets
  // V8 optimise it quickly (one large switch took ~0.5 s to compile and was recompiled after deopts).
  cold(buf: Uint8Array): number {
    switch (this.op) {
        case OP.PROTO: {
          this.need(1);
          const v = buf[this.c.pos++];
          if (v > 5) this.fail(`unsupported pickle protocol: ${v}`);
          this.proto = v; if (v > this.run.protocol) this.run.protocol = v;
          if (this.disasm) this.dis(String(v));
          break;
        }
        case OP.FRAME: {
          this.need(8);
          const len = readU64(buf, this.c.pos); this.c.pos += 8;
          if (this.frameEnd >= 0) this.fail('beginning of a new frame before end of current frame');
          if (len > this.c.remaining()) this.fail(`FRAME declares ${len} bytes but only ${this.c.remaining()} remain`);
          this.frameEnd = this.c.abs + len;
          if (this.disasm) this.dis(String(len));
          break;
        }
        case OP.STOP: {
          if (this.disasm) this.dis('');
          const v = this.pop();
          this.run.value = v;
          this.run.complete = true;
          this.run.end = this.c.abs;
          if (this.frameEnd > this.c.abs) this.note('SW004', `STOP inside a FRAME that declares ${this.frameEnd - this.c.abs} more bytes`);
          return 0;
        }
        case OP.POP:
          if (this.disasm) this.dis('');
          if (this.stack.length > this.fence) this.stack.pop();
          else if (this.marks.length) { this.marks.pop(); this.fence = this.marks.length ? this.marks[this.marks.length - 1] : 0; }
          else this.fail('unpickling this.stack underflow');
          break;
        case OP.POP_MARK: if (this.disasm) this.dis(''); this.popMark(); break;
        case OP.DUP: if (this.disasm) this.dis(''); this.stack.push(this.top()); break;
        case OP.NEWTRUE: if (this.disasm) this.dis(''); this.stack.push(true); break;
        case OP.BININT: { this.need(4); const v = readI32(buf, this.c.pos); this.c.pos += 4; if (this.disasm) this.dis(String(v)); this.stack.push(v); break; }
        case OP.BININT2: { this.need(2); const v = buf[this.c.pos] | (buf[this.c.pos + 1] << 8); this.c.pos += 2; if (this.disasm) this.dis(String(v)); this.stack.push(v); break; }
        case OP.BINFLOAT: {
          this.need(8);
          const v = new DataView(buf.buffer, buf.byteOffset + this.c.pos, 8).getFloat64(0, false); this.c.pos += 8;
          if (this.disasm) this.dis(String(v)); this.stack.push(new PyFloat(v)); break;
        }
        case OP.LONG1: case OP.LONG4: {
          const lenBytes = this.op === OP.LONG1 ? 1 : 4;
          this.need(lenBytes);
          const n = this.op === OP.LONG1 ? buf[this.c.pos] : readI32(buf, this.c.pos);
          if (n < 0) this.fail('LONG pickle has negative byte count');
          if (n > 4096) {  // huge ints: never a size we trust; skip like a payload
            if (n > this.c.remaining() - lenBytes) this.fail('pickle data was truncated');
            this.c.pos += lenBytes + n; if (this.disasm) this.dis(`<${n}-byte int>`); this.stack.push(new PyOpaque('huge int'));
            this.checkFrame(); break;
          }
          if (this.c.buf.length - this.c.pos < lenBytes + n) { if (!this.c.eof) return this.rollback(1 + lenBytes + n); this.fail('pickle data was truncated'); }
          const b = this.c.buf; const at = this.c.pos + lenBytes;
          const v = decodeLong(b, at, n); this.c.pos = at + n;
          if (this.disasm) this.dis(String(v)); this.stack.push(v); break;
        }
        // ---- text (protocol 0) opcodes: one line argument
        case OP.INT: case OP.LONG: case OP.FLOAT: case OP.STRING: case OP.UNICODE: case OP.GET: case OP.PUT:
        case OP.PERSID: case OP.GLOBAL: case OP.INST: {
          const line1 = readLine(this.c, this.maxLine, this.fail);
          if (!line1) return this.rollback(this.c.buf.length - this.opPos + 65536);
          if (this.op === OP.GLOBAL || this.op === OP.INST) {
            const line2 = readLine(this.c, this.maxLine, this.fail);
            if (!line2) return this.rollback(this.c.buf.length - this.opPos + 65536);
            const mod = decodeUtf8(line1, this.fail), name = decodeUtf8(line2, this.fail);
            if (this.disasm) this.dis(`${JSON.stringify(mod)} ${JSON.stringify(name)}`);
            const g = this.addGlobal(mod, name, OP_NAME[this.op]);
            if (this.op === OP.GLOBAL) this.stack.push(g);
            else { const args = this.popMark(); this.stack.push(this.call(g, new PyTuple(args), 'inst')); }
            break;
          }
          const text = latin1(line1);
          switch (this.op) {
            case OP.INT: {
              if (this.disasm) this.dis(text);
              if (text === '01') this.stack.push(true); else if (text === '00') this.stack.push(false);
              else this.stack.push(parsePyInt(text, this.fail));
              break;
            }
            case OP.LONG: if (this.disasm) this.dis(text); this.stack.push(parsePyInt(text.endsWith('L') ? text.slice(0, -1) : text, this.fail)); break;
            case OP.FLOAT: {
              const v = parsePyFloat(text); if (v === undefined) this.fail(`could not convert string to float: ${text.slice(0, 40)}`);
              if (this.disasm) this.dis(text); this.stack.push(new PyFloat(v as number)); break;
            }
            case OP.STRING: { const v = decodePyStringLiteral(text, this.fail); if (this.disasm) this.dis(JSON.stringify(v)); this.stack.push(v); break; }
            case OP.UNICODE: { const v = decodeRawUnicodeEscape(text); if (this.disasm) this.dis(JSON.stringify(v)); this.stack.push(v); break; }
            case OP.GET: {
              const idx = parsePyInt(text, this.fail); if (this.disasm) this.dis(String(idx));
              this.stack.push(this.memoGet(Number(idx))); break;
            }
            case OP.PUT: {
              const idx = Number(parsePyInt(text, this.fail)); if (this.disasm) this.dis(String(idx));
              if (idx < 0) this.fail('negative PUT argument');
              this.memoSet(idx, this.top()); break;
            }
            case OP.PERSID: if (this.disasm) this.dis(JSON.stringify(text)); this.stack.push(new PyPersId(text, this.opStart)); break;
          }
          break;
        }
        // ---- length-prefixed strings and bytes
        case OP.NEXT_BUFFER: if (this.disasm) this.dis(''); this.stack.push(new PyOpaque('out-of-band buffer')); break;
        case OP.READONLY_BUFFER: if (this.disasm) this.dis(''); this.top(); break;
        // ---- containers
        case OP.TUPLE1: { if (this.disasm) this.dis(''); const a = this.pop(); this.stack.push(new PyTuple([a])); break; }
        case OP.TUPLE3: { if (this.disasm) this.dis(''); const c3 = this.pop(); const b2 = this.pop(); const a = this.pop(); this.stack.push(new PyTuple([a, b2, c3])); break; }
        case OP.EMPTY_LIST: if (this.disasm) this.dis(''); this.stack.push(new PyList([])); break;
        case OP.LIST: if (this.disasm) this.dis(''); this.stack.push(new PyList(this.popMark())); break;
        case OP.EMPTY_DICT: if (this.disasm) this.dis(''); this.stack.push(new PyDict([])); break;
        case OP.DICT: {
          if (this.disasm) this.dis('');
          const items = this.popMark();
          if (items.length % 2) this.fail('odd number of items for DICT');
          const d = new PyDict([]);
          for (let i = 0; i < items.length; i += 2) d.entries.push([items[i], items[i + 1]]);
          this.stack.push(d); break;
        }
        case OP.EMPTY_SET: if (this.disasm) this.dis(''); this.stack.push(new PySet([], false)); break;
        case OP.FROZENSET: if (this.disasm) this.dis(''); this.stack.push(new PySet(this.popMark(), true)); break;
        case OP.APPEND: case OP.APPENDS: {
          if (this.disasm) this.dis('');
          const items = this.op === OP.APPEND ? [this.pop()] : this.popMark();
          const t = this.top();
          if (t instanceof PyList) { for (const it of items) t.items.push(it); }
          else if (t instanceof PyCall) { (t.listItems ??= []).push(...items); this.woIssue(`${OP_NAME[this.op]} on an object that is not a list`); }
          else if (t instanceof PyGlobal) this.mutateTarget(t, OP_NAME[this.op]);
          else this.fail(`${OP_NAME[this.op]} on ${describe(t)}`);
          break;
        }
        case OP.ADDITEMS: {
          if (this.disasm) this.dis('');
          const items = this.popMark();
          const t = this.top();
          if (t instanceof PySet && !t.frozen) t.items.push(...items);
          else if (t instanceof PyCall) (t.setItems ??= []).push(...items);
          else if (t instanceof PyGlobal) this.mutateTarget(t, 'ADDITEMS');
          else this.fail(`ADDITEMS on ${describe(t)}`);
          break;
        }
        // ---- memo
        case OP.MEMOIZE: if (this.disasm) this.dis(String(this.memoCount)); this.memoSet(this.memoCount, this.top()); break;
        // ---- imports and calls
        case OP.STACK_GLOBAL: {
          const nameV = this.pop(); const modV = this.pop();
          if (typeof nameV !== 'string' || typeof modV !== 'string') {
            if (this.disasm) this.dis('<computed>');
            this.note('SW003', `STACK_GLOBAL operands are not constant strings (${describe(modV)}, ${describe(nameV)}): the imported name is decided at load time`);
            this.stack.push(new PyOpaque('computed global'));
            break;
          }
          if (this.disasm) this.dis(`${JSON.stringify(modV)} ${JSON.stringify(nameV)}`);
          this.stack.push(this.addGlobal(modV, nameV, 'STACK_GLOBAL'));
          break;
        }
        case OP.EXT1: case OP.EXT2: case OP.EXT4: {
          const n = this.op === OP.EXT1 ? 1 : this.op === OP.EXT2 ? 2 : 4; this.need(n);
          const code = n === 1 ? buf[this.c.pos] : n === 2 ? (buf[this.c.pos] | (buf[this.c.pos + 1] << 8)) : readI32(buf, this.c.pos);
          this.c.pos += n; if (this.disasm) this.dis(String(code));
          if (code <= 0) this.fail('EXT specifies code <= 0');
          this.note('SW005', `${OP_NAME[this.op]} imports extension code ${code} from the copyreg registry, which cannot be resolved statically`);
          this.stack.push(new PyExt(code, this.opStart));
          break;
        }
        case OP.NEWOBJ: {
          if (this.disasm) this.dis('');
          const args = this.pop(); const cls = this.pop();
          this.stack.push(this.call(cls, args, 'newobj'));
          break;
        }
        case OP.NEWOBJ_EX: {
          if (this.disasm) this.dis('');
          const kwargs = this.pop(); const args = this.pop(); const cls = this.pop();
          this.stack.push(this.call(cls, args, 'newobj_ex', kwargs));
          break;
        }
        case OP.OBJ: {
          if (this.disasm) this.dis('');
          const items = this.popMark();
          if (items.length === 0) this.fail('OBJ without a class');
          this.stack.push(this.call(items[0], new PyTuple(items.slice(1)), 'obj'));
          break;
        }
        case OP.BUILD: {
          if (this.disasm) this.dis('');
          const target = this.stack.length - 2 >= this.fence ? this.stack[this.stack.length - 2] : undefined;
          // joblib's array payload (padding byte + padding) must be in the buffer before BUILD mutates anything
          if (isJoblibWrapper(target) && this.c.buf.length - this.c.pos < 257 && !this.c.eof) return this.rollback(1 + 257);
          const state = this.pop();
          const inst = this.top();
          if (inst instanceof PyGlobal) this.mutateTarget(inst, 'BUILD');
          else if (inst instanceof PyCall) {
            inst.states.push(state);
            if (isJoblibWrapper(inst)) {
              // joblib writes array bytes after committing the frame: they are outside any FRAME
              if (this.frameEnd >= 0 && this.c.abs === this.frameEnd) this.frameEnd = -1;
              const arr = joblibArrayPayload(this.c, state, this.run, this.depth, this.fail);
              if (arr instanceof PyNdArray) this.stack[this.stack.length - 1] = arr;
              else { this.pendingNested = { inst, ...arr }; return NESTED; }
            }
          }
          break;
        }
        default:
          this.fail(`invalid opcode 0x${this.op.toString(16).padStart(2, '0')}`);
    }
    return CONT;
  }

  // The hot loop is a plain function (generators with yields inside loops run far slower in V8): it returns
  // 0 when the pickle ended (STOP or error), n > 0 when it needs n bytes from the current opcode, or NESTED.
  step(): number {
  try {
    for (;;) {
      if (this.c.buf.length - this.c.pos < 16 && !this.c.eof) return 16;
      if (this.c.pos >= this.c.buf.length) {
        this.opStart = this.c.abs;
        this.fail(this.run.opcodes === 0 ? 'empty pickle stream' : 'pickle data was truncated (no STOP)');
      }
      const buf = this.c.buf;
      this.opPos = this.c.pos;
      this.opStart = this.c.bufStart + this.c.pos;
      if (this.frameEnd >= 0 && this.opStart >= this.frameEnd) this.frameEnd = -1;
      this.op = buf[this.c.pos++];
      if (++this.run.opcodes > MAX_OPCODES || this.stack.length > MAX_STACK || this.memoCount > MAX_STACK) {
        this.fail(`pickle exceeds the analysis limits (${MAX_OPCODES} opcodes, ${MAX_STACK} this.stack or memo entries)`);
      }
      if (!WEIGHTS_ONLY_OPCODES.has(this.op) && !this.woSeen.has(this.op)) {
        this.woSeen.add(this.op);
        this.run.weightsOnlyIssues.push(`opcode ${OP_NAME[this.op] || '0x' + this.op.toString(16)} at offset ${this.opStart} is not supported by the weights_only unpickler`);
      }
      switch (this.op) {
        case OP.MARK: this.marks.push(this.stack.length); this.fence = this.stack.length; if (this.disasm) this.dis(''); break;
        case OP.NONE: if (this.disasm) this.dis(''); this.stack.push(null); break;
        case OP.NEWFALSE: if (this.disasm) this.dis(''); this.stack.push(false); break;
        case OP.BININT1: { this.need(1); const v = buf[this.c.pos++]; if (this.disasm) this.dis(String(v)); this.stack.push(v); break; }
        case OP.SHORT_BINSTRING: case OP.SHORT_BINBYTES: case OP.SHORT_BINUNICODE:
        case OP.BINSTRING: case OP.BINBYTES: case OP.BINUNICODE:
        case OP.BINUNICODE8: case OP.BINBYTES8: case OP.BYTEARRAY8: {
          const lenBytes = (this.op === OP.SHORT_BINSTRING || this.op === OP.SHORT_BINBYTES || this.op === OP.SHORT_BINUNICODE) ? 1
            : (this.op === OP.BINUNICODE8 || this.op === OP.BINBYTES8 || this.op === OP.BYTEARRAY8) ? 8 : 4;
          this.need(lenBytes);
          let len: number;
          if (lenBytes === 1) len = buf[this.c.pos];
          else if (lenBytes === 4) len = this.op === OP.BINSTRING ? readI32(buf, this.c.pos) : readU32(buf, this.c.pos);
          else len = readU64(buf, this.c.pos);
          if (len < 0) this.fail(`${OP_NAME[this.op]} pickle has negative byte count`);
          const payloadAt = this.c.abs + lenBytes;
          if (len > this.c.remaining() - lenBytes) this.fail(`${OP_NAME[this.op]} declares ${len} bytes but only ${Math.max(0, this.c.remaining() - lenBytes)} remain`);
          const isText = this.op === OP.SHORT_BINUNICODE || this.op === OP.BINUNICODE || this.op === OP.BINUNICODE8;
          if (len > this.inlineMax) {
            this.c.pos += lenBytes + len;   // skip without copying
            if (this.disasm) this.dis(`<${len} bytes at ${payloadAt}>`);
            this.stack.push(isText ? new PyBigStr(len, payloadAt) : new PyBytes(len, payloadAt, undefined, kindOf(this.op)));
            this.checkFrame();
            break;
          }
          if (this.c.buf.length - this.c.pos < lenBytes + len) {
            if (!this.c.eof) return this.rollback(1 + lenBytes + len);
            this.fail('pickle data was truncated');
          }
          const b = this.c.buf; const at = this.c.pos + lenBytes;
          this.c.pos = at + len;
          if (isText) {
            const s = decodeUtf8(b.subarray(at, at + len), this.fail);
            if (this.disasm) this.dis(JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s)); this.stack.push(s);
          } else if (this.op === OP.SHORT_BINSTRING || this.op === OP.BINSTRING) {
            // Python 3 decodes protocol 0-2 str payloads (encoding='ASCII' by default): they are str, not bytes
            const s = latin1(b.subarray(at, at + len));
            if (this.disasm) this.dis(JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s)); this.stack.push(s);
          } else {
            // keep a copy only of small payloads (names, dtype strings); big ones by offset
            const data = len <= 4096 ? b.slice(at, at + len) : undefined;
            if (this.disasm) this.dis(bytesRepr(b, at, len));
            this.stack.push(new PyBytes(len, payloadAt, data, kindOf(this.op)));
          }
          break;
        }
        case OP.EMPTY_TUPLE: if (this.disasm) this.dis(''); this.stack.push(new PyTuple([])); break;
        case OP.TUPLE: if (this.disasm) this.dis(''); this.stack.push(new PyTuple(this.popMark())); break;
        case OP.TUPLE2: { if (this.disasm) this.dis(''); const b2 = this.pop(); const a = this.pop(); this.stack.push(new PyTuple([a, b2])); break; }
        case OP.SETITEM: case OP.SETITEMS: {
          if (this.disasm) this.dis('');
          let items: PyValue[];
          if (this.op === OP.SETITEM) { const v = this.pop(); const k = this.pop(); items = [k, v]; } else items = this.popMark();
          if (items.length % 2) this.fail('odd number of items for SETITEMS');
          const t = this.top();
          if (t instanceof PyDict) { for (let i = 0; i < items.length; i += 2) t.entries.push([items[i], items[i + 1]]); }
          else if (t instanceof PyCall) {
            const arr = (t.dictItems ??= []);
            for (let i = 0; i < items.length; i += 2) arr.push([items[i], items[i + 1]]);
            const n = t.fn instanceof PyGlobal ? `${t.fn.module}.${t.fn.name}` : '';
            if (n !== 'collections.OrderedDict' && n !== 'collections.Counter') this.woIssue(`${OP_NAME[this.op]} on a ${n || 'computed'} object`);
          } else if (t instanceof PyGlobal) this.mutateTarget(t, OP_NAME[this.op]);
          else this.fail(`${OP_NAME[this.op]} on ${describe(t)}`);
          break;
        }
        case OP.BINGET: case OP.LONG_BINGET: {
          const n = this.op === OP.BINGET ? 1 : 4; this.need(n);
          const idx = n === 1 ? buf[this.c.pos] : readU32(buf, this.c.pos); this.c.pos += n;
          if (this.disasm) this.dis(String(idx));
          this.stack.push(this.memoGet(idx)); break;
        }
        case OP.BINPUT: case OP.LONG_BINPUT: {
          const n = this.op === OP.BINPUT ? 1 : 4; this.need(n);
          const idx = n === 1 ? buf[this.c.pos] : readU32(buf, this.c.pos); this.c.pos += n;
          if (this.disasm) this.dis(String(idx));
          this.memoSet(idx, this.top()); break;
        }
        case OP.REDUCE: {
          if (this.disasm) this.dis('');
          const args = this.pop(); const fn = this.pop();
          this.stack.push(this.call(fn, args, 'reduce'));
          break;
        }
        case OP.BINPERSID: {
          if (this.disasm) this.dis('');
          const pid = this.pop();
          if (!(pid instanceof PyTuple) && typeof pid !== 'number' && !this.strPidReported) {
            this.strPidReported = true;
            this.woIssue(`persistent id at offset ${this.opStart} is not a tuple or int`);
          }
          this.stack.push(new PyPersId(pid, this.opStart)); break;
        }
        default: {
          const r = this.cold(buf);
          if (r !== CONT) return r;
        }
      }
      this.checkFrame();
    }
  } catch (e) {
    if (!(e instanceof Fail)) throw e;
    this.run.error = e.message;
    this.run.errorOffset = e.at;
    this.run.end = Math.max(this.c.abs, e.at);
    return 0;
  }
  }

  checkFrame() {
    if (this.frameEnd >= 0 && this.c.abs > this.frameEnd) this.fail(`opcode at ${this.opStart} crosses the end of its FRAME at ${this.frameEnd}`);
  }
  woIssue(msg: string) {
    if (this.run.weightsOnlyIssues.length < 20) this.run.weightsOnlyIssues.push(msg);
  }
}

/** Run one pickle (up to and including STOP) from the cursor's position. */
export function* runPickle(c: Cursor, opts: MachineOptions = {}): Generator<number, PickleRun, void> {
  const m = new PickleMachine(c, opts);
  for (;;) {
    const r = m.step();
    if (r === 0) return m.run;
    if (r === NESTED && m.pendingNested) {
      // joblib unpickles object arrays with a nested pickle.load() on the same stream
      const p = m.pendingNested; m.pendingNested = undefined;
      const nested = yield* runPickle(m.c, { ...opts, depth: m.depth + 1, disasm: false });
      m.run.nested.push(nested);
      if (!nested.complete) {
        m.run.error = `nested object-array pickle failed: ${nested.error}`;
        m.run.errorOffset = nested.errorOffset ?? nested.end; m.run.end = nested.end;
        return m.run;
      }
      m.stack[m.stack.length - 1] = new PyNdArray(p.dtype, p.shape, nested.start, nested.end - nested.start, p.order);
      continue;
    }
    yield r;
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
