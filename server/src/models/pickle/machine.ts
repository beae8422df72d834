// Symbolic pickle machine: runs the unpickler's stack / mark stack / memo over one pickle stream without
// executing anything. Written by hand because no library simulates the unpickler symbolically (pickletools
// only lists opcodes; it does not track what each REDUCE calls with which arguments).
// Values live in a ValueArena (int handles, see arena.ts): the stack, the memo and containers hold handles.
import { Cursor } from './cursor';
import { OP, OP_NAME, WEIGHTS_ONLY_OPCODES, Hot } from './opcodes';
import { mapPy2Global } from './compat';
import { H_EMPTY_TUPLE, H_FALSE, H_NONE, H_SMALL_INT, H_TRUE, K, ValueArena, X_DICT, X_LIST, X_SET, X_STATES } from './arena';
import { giveArrayBuffer, takeArrayBuffer } from '../bufferPool';
import { decodeBytes, encodeInto } from '../strTable';
import {
  PyBigStr, PyBytes, PyCall, PyDict, PyExt, PyGlobal, PyNdArray, PyOpaque, PyPersId, PyTuple,
  PyValue, asInt, asIntTuple, asText, CallKind,
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
  /** The value STOP returned, as PyValue objects (built from the arena on first access). */
  readonly value?: PyValue;
  /** The same value as a handle into `arena` (fast path for big pickles). */
  root?: number;
  arena: ValueArena;
  globals: GlobalRecord[];
  findings: MachineFinding[];
  /** Findings of a rule past the first NOTES_PER_RULE in this run: counted, not kept (a crafted stream can
   *  raise one per opcode). */
  findingsOmitted: number;
  /** Reasons torch's weights_only unpickler would refuse this stream (opcode- and target-level). */
  weightsOnlyIssues: string[];
  /** The disassembly: lines joined by newlines, in chunks (one string per line cost ~180 bytes). */
  disasm?: string[];
  /** How many lines `disasm` holds. */
  disasmLines?: number;
  disasmTruncated?: boolean;
  nested: PickleRun[];   // pickles read from inside this one (joblib object arrays)
  arrays: PyNdArray[];   // joblib arrays whose data sits in the stream
  /** Returns the arena's memory for reuse (only when nothing will read this run's values again). */
  release?(): void;
}

export interface MachineOptions {
  disasm?: boolean;
  maxDisasmLines?: number;
  /** Lines left for every run that shares this object (a file's disassembly as a whole stays bounded: a file
   *  can hold a thousand pickles); each line written takes one. */
  disasmBudget?: { left: number };
  /** Largest payload copied into memory; larger str/bytes are skipped and kept as length+offset. */
  inlineMax?: number;
  /** Longest text line (protocol 0 arguments) accepted. */
  maxLine?: number;
  depth?: number;
}

class Fail extends Error { constructor(msg: string, readonly at: number) { super(msg); } }

class Run implements PickleRun {
  end: number;
  protocol = 0;
  opcodes = 0;
  complete = false;
  error?: string;
  errorOffset?: number;
  root?: number;
  readonly globals: GlobalRecord[] = [];
  readonly arena: ValueArena;
  readonly findings: MachineFinding[] = [];
  findingsOmitted = 0;
  readonly weightsOnlyIssues: string[] = [];
  disasm?: string[];
  disasmTruncated?: boolean;
  readonly nested: PickleRun[] = [];
  readonly arrays: PyNdArray[] = [];
  private built?: { v: PyValue };
  /** `bytes`: what the stream can hold at most, to size the arena once (about one value per 12 bytes). */
  constructor(readonly start: number, bytes: number) {
    this.end = start;
    this.arena = new ValueArena(this.globals, Number.isFinite(bytes) ? Math.min(Math.max(bytes / 12, 1024), 1 << 21) | 0 : 1024);
  }
  /** Hands the arena's arrays back to the scratch pool; `value` and the tensor walk fail afterwards. */
  release(): void { this.arena.release(); for (const n of this.nested) n.release?.(); }
  get value(): PyValue | undefined {
    if (this.root === undefined) return undefined;
    this.built ??= { v: this.arena.materialize(this.root) };
    return this.built.v;
  }
}

const DENSE = 1 << 22;
const NOTES_PER_RULE = 100;
// Far beyond real checkpoints (a 50,000-tensor state dict runs ~1.6M opcodes); past them we fail closed
// instead of letting a crafted (e.g. decompressed) stream grow the simulated stack without bound.
const MAX_OPCODES = 200_000_000;
const MAX_STACK = 20_000_000;
/** The limits above, as the machine reads them (tests lower them). Reaching one stops the reading: a dangerous
 *  SW009 finding (the unread part could run code) besides the run's error. */
export const machineLimits = { opcodes: MAX_OPCODES, stack: MAX_STACK };
const utf8 = new TextDecoder('utf-8', { fatal: true });
const TWO53 = 2 ** 53;
const WO_OK = (() => { const t = new Uint8Array(256); for (const op of WEIGHTS_ONLY_OPCODES) t[op] = 1; return t; })();
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;
// pieces of a disassembly line, made once (a line per opcode: 200,000 of them)
const OP_PADDED = Array.from({ length: 256 }, (_, op) => Buffer.from(`${(OP_NAME[op] ?? '').padEnd(16)} `, 'latin1'));

/** One pickle stream under simulation. State lives in fields and the helpers are methods, so V8 sees the
 *  same functions for every stream (closures created per stream were re-optimised each time). */
class PickleMachine {
  readonly inlineMax: number;
  readonly maxLine: number;
  readonly depth: number;
  readonly run: Run;
  readonly ar: ValueArena;
  readonly disasm: string[] | undefined;
  /** Lines not yet made a chunk of `disasm`, as UTF-8 bytes (no string per line: each cost ~180 bytes and
   *  as much garbage), how many of them, and how many lines were written in all. */
  private disBytes = new Uint8Array(0);
  private disLen = 0;
  private disPending = 0;
  private disLines = 0;
  readonly maxDis: number;
  readonly stack = new IntStack();
  readonly marks = new IntStack();    // fences: stack lengths at each MARK
  fence = 0;
  // memo indexes are dense in real pickles: a typed array (handle + 1, 0 = empty) is several times faster
  // than a Map; sparse or huge indexes (crafted) go to the Map. MEMOIZE uses the number of filled slots.
  memoArr: Int32Array;
  readonly memoMap = new Map<number, number>();
  memoCount = 0;
  proto = 0;
  frameEnd = -1;              // absolute end of the current FRAME, -1 when not in a frame
  readonly woSeen = new Uint8Array(256);
  opStart: number;
  op = 0;
  opPos = 0;                  // buffer index of the current opcode byte, for rollback
  strPidReported = false;
  pendingNested: { dtype: string; shape: number[]; order: string } | undefined;
  /** Throws the parse error at the current opcode (an arrow: it is passed to helper functions). */
  readonly fail = (msg: string): never => { throw new Fail(msg, this.opStart); };

  constructor(readonly c: Cursor, readonly opts: MachineOptions) {
    this.inlineMax = opts.inlineMax ?? (1 << 20);
    this.maxLine = opts.maxLine ?? (1 << 24);
    this.depth = opts.depth ?? 0;
    this.run = new Run(c.abs, c.remaining());
    this.ar = this.run.arena;
    if (Number.isFinite(c.remaining())) this.ar.bound = this.ar.n + c.remaining() + 1;
    else this.ar.sizeHint = () => this.ar.n + this.c.buf.length - this.c.pos;
    // sized once from what the stream can hold (torch writes about one memo entry per 13 bytes), in pooled memory
    const rem = c.remaining();
    const memoCap = Number.isFinite(rem) ? Math.min(Math.max(rem / 8, 1 << 14), DENSE) | 0 : 1 << 14;
    this.memoArr = new Int32Array(takeArrayBuffer(memoCap * 4), 0, memoCap).fill(0);
    this.disasm = opts.disasm ? [] : undefined;
    this.maxDis = opts.maxDisasmLines ?? 200_000;
    if (this.disasm) this.run.disasm = this.disasm;
    this.opStart = c.abs;
  }

  memoSet(idx: number, h: number) {
    if (idx < DENSE) {
      if (idx >= this.memoArr.length) {
        let cap = this.memoArr.length * 2;
        while (cap <= idx) cap *= 2;
        cap = Math.min(cap, DENSE);
        const m = new Int32Array(takeArrayBuffer(cap * 4), 0, cap).fill(0); m.set(this.memoArr);
        giveArrayBuffer(this.memoArr.buffer as ArrayBuffer);
        this.memoArr = m;
      }
      if (this.memoArr[idx] === 0) this.memoCount++;
      this.memoArr[idx] = h + 1;
    } else {
      if (!this.memoMap.has(idx)) this.memoCount++;
      this.memoMap.set(idx, h);
    }
  }

  memoGet(idx: number): number {
    if (idx < DENSE) {
      const v = idx < this.memoArr.length ? this.memoArr[idx] : 0;
      if (v === 0) this.fail(`memo value not found at index ${idx}`);
      return v - 1;
    }
    const v = this.memoMap.get(idx);
    if (v === undefined) return this.fail(`memo value not found at index ${idx}`);
    return v;
  }

  pop(): number {
    if (this.stack.length <= this.fence) this.fail('unpickling stack underflow');
    return this.stack.pop() as number;
  }

  top(): number {
    if (this.stack.length <= this.fence) this.fail('unpickling stack underflow');
    return this.stack.last();
  }

  /** Drops the topmost mark; the items above it stay on the stack (the caller reads then truncates). */
  popMarkFence(): number {
    if (this.marks.length === 0) this.fail('could not find MARK');
    const f = this.fence;
    this.marks.pop();
    this.fence = this.marks.length ? this.marks.last() : 0;
    return f;
  }

  popMark(): number[] {
    const f = this.popMarkFence();
    return this.stack.splice(f);
  }

  // fixed-size arguments: the 16-byte refill at each opcode guarantees them unless the stream ends
  need(n: number) { if (this.c.buf.length - this.c.pos < n) this.fail('pickle data was truncated'); }

  note(rule: string, message: string, global?: string) {
    const n = (this.notesByRule.get(rule) ?? 0) + 1;
    this.notesByRule.set(rule, n);
    if (n > NOTES_PER_RULE) { this.run.findingsOmitted++; return; }
    this.run.findings.push({ rule, message, offset: this.opStart, global });
  }
  readonly notesByRule = new Map<string, number>();

  dis(arg: string) {
    if (!this.disasm) return;
    const budget = this.opts.disasmBudget;
    if (this.disLines >= this.maxDis || (budget && budget.left <= 0)) { this.run.disasmTruncated = true; return; }
    if (budget) budget.left--;
    this.disLines++;
    // `${offset.padStart(9)}: ${'  '.repeat(min(marks, 20))}${name.padEnd(16)} ${arg}`, written as bytes
    const indent = Math.min(this.marks.length, 20);
    let b = this.disBytes, p = this.disLen;
    const need = p + 32 + 2 * indent + 17 + arg.length * 3;
    if (need > b.length) { const g = new Uint8Array(Math.max(need, 2 * b.length, 1 << 16)); g.set(b.subarray(0, p)); b = this.disBytes = g; }
    if (this.disPending) b[p++] = 0x0a;
    const at = String(this.opStart);
    for (let k = at.length; k < 9; k++) b[p++] = 0x20;
    for (let k = 0; k < at.length; k++) b[p++] = at.charCodeAt(k);
    b[p++] = 0x3a; b[p++] = 0x20;
    for (let k = 0; k < 2 * indent; k++) b[p++] = 0x20;
    b.set(OP_PADDED[this.op], p); p += 17;
    this.disLen = encodeInto(arg, b, p);
    if (++this.disPending === 1024) this.flushDis();
  }

  /** Makes the pending disassembly lines one chunk of `disasm` (one flat string, ~40 bytes a line). */
  flushDis() {
    if (!this.disasm) return;
    if (this.disPending) { this.disasm.push(decodeBytes(this.disBytes, 0, this.disLen)); this.disLen = 0; this.disPending = 0; }
    const run: PickleRun = this.run;
    run.disasmLines = this.disLines;
  }

  addGlobal(rawModule: string, rawName: string, opcode: string): number {
    // one set of name strings per distinct name: a crafted stream imports the same name hundreds of thousands
    // of times (measured on 2 MB of STACK_GLOBALs: 148 -> 138 MB peak RSS)
    const key = `${this.proto < 3 ? 2 : 3}${rawModule}\u0000${rawName}`;
    let names = this.names.get(key);
    if (!names) {
      const [module, name] = this.proto < 3 ? mapPy2Global(rawModule, rawName) : [rawModule, rawName];
      names = { module, name, rawModule, rawName };
      this.names.set(key, names);
    }
    const ref = this.run.globals.length;
    this.run.globals.push({ module: names.module, name: names.name, rawModule: names.rawModule, rawName: names.rawName, offset: this.opStart, called: false, opcode });
    return this.ar.node(K.GLOBAL, ref, 0, 0);
  }
  readonly names = new Map<string, { module: string; name: string; rawModule: string; rawName: string }>();

  call(fn: number, args: number, kind: CallKind, kwargs?: number): number {
    const ar = this.ar;
    // legacy torch.save(model): persistent id ('module', cls, source_file, source) is the class itself
    if (ar.kind[fn] === K.PERSID) fn = moduleRecordClass(ar, fn);
    const fk = ar.kind[fn];
    if (fk === K.GLOBAL) this.run.globals[ar.a[fn]].called = true;
    else if (fk === K.OBJ && ar.objs[ar.a[fn]] instanceof PyExt) {
      this.note('SW005', `calls an object imported through extension code ${(ar.objs[ar.a[fn]] as PyExt).code}`);
    } else this.note('SW003', `${OP_NAME[this.op]} calls a value computed at load time (${ar.describe(fn)}), not an imported global`);
    if (kind === 'reduce' && ar.kind[args] !== K.TUPLE) {
      this.note('SW003', `REDUCE arguments are computed at load time (${ar.describe(args)}), not a constant tuple`);
    }
    const h = ar.call(fn, args, kind, this.opStart);
    if (kwargs !== undefined) ar.extra(h).kwargs = kwargs;
    return h;
  }

  mutateTarget(target: number, what: string) {
    const g = this.run.globals[this.ar.a[target]];
    this.note('SW006', `${what} modifies the imported global ${g.module}.${g.name} at load time`, `${g.module}.${g.name}`);
  }

  /** Un-reads the current opcode and asks the driver for `n` bytes from its start. */
  rollback(n: number): number { this.c.pos = this.opPos; this.run.opcodes--; return n; }

  pushStr(s: string) { this.stack.push(this.ar.str(s)); }

  /** The items above the topmost mark as a LIST / DICT / SET node (no intermediate array). */
  markSeq(kind: number, frozen: number): number {
    const f = this.popMarkFence();
    const h = this.ar.seqOf(kind, this.stack.a, f, this.stack.length, frozen);
    this.stack.length = f;
    return h;
  }

  /** The items above the topmost mark as a tuple node (no intermediate array). */
  markTuple(): number {
    const f = this.popMarkFence();
    const t = this.ar.tupleOf(this.stack.a, f, this.stack.length);
    this.stack.length = f;
    return t;
  }

  // Opcodes that are rare in real checkpoints live in their own function: keeping the hot loop small lets
  // V8 optimise it quickly (one large switch took ~0.5 s to compile and was recompiled after deopts).
  cold(buf: Uint8Array): number {
    const ar = this.ar;
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
          this.run.root = this.pop();
          this.run.complete = true;
          this.run.end = this.c.abs;
          if (this.frameEnd > this.c.abs) this.note('SW004', `STOP inside a FRAME that declares ${this.frameEnd - this.c.abs} more bytes`);
          return 0;
        }
        case OP.POP:
          if (this.disasm) this.dis('');
          if (this.stack.length > this.fence) this.stack.pop();
          else if (this.marks.length) { this.marks.pop(); this.fence = this.marks.length ? this.marks.last() : 0; }
          else this.fail('unpickling stack underflow');
          break;
        case OP.POP_MARK: if (this.disasm) this.dis(''); this.stack.length = this.popMarkFence(); break;
        case OP.DUP: if (this.disasm) this.dis(''); this.stack.push(this.top()); break;
        case OP.NEWTRUE: if (this.disasm) this.dis(''); this.stack.push(H_TRUE); break;
        case OP.BININT: { this.need(4); const v = readI32(buf, this.c.pos); this.c.pos += 4; if (this.disasm) this.dis(String(v)); this.stack.push(ar.int(v)); break; }
        case OP.BININT2: { this.need(2); const v = buf[this.c.pos] | (buf[this.c.pos + 1] << 8); this.c.pos += 2; if (this.disasm) this.dis(String(v)); this.stack.push(ar.int(v)); break; }
        case OP.BINFLOAT: {
          this.need(8);
          const v = new DataView(buf.buffer, buf.byteOffset + this.c.pos, 8).getFloat64(0, false); this.c.pos += 8;
          if (this.disasm) this.dis(String(v)); this.stack.push(ar.float(v)); break;
        }
        case OP.LONG1: case OP.LONG4: {
          const lenBytes = this.op === OP.LONG1 ? 1 : 4;
          this.need(lenBytes);
          const n = this.op === OP.LONG1 ? buf[this.c.pos] : readI32(buf, this.c.pos);
          if (n < 0) this.fail('LONG pickle has negative byte count');
          if (n > 4096) {  // huge ints: never a size we trust; skip like a payload
            if (n > this.c.remaining() - lenBytes) this.fail('pickle data was truncated');
            this.c.pos += lenBytes + n; if (this.disasm) this.dis(`<${n}-byte int>`); this.stack.push(ar.obj(new PyOpaque('huge int')));
            this.checkFrame(); break;
          }
          if (this.c.buf.length - this.c.pos < lenBytes + n) { if (!this.c.eof) return this.rollback(1 + lenBytes + n); this.fail('pickle data was truncated'); }
          const b = this.c.buf; const at = this.c.pos + lenBytes;
          const v = decodeLong(b, at, n); this.c.pos = at + n;
          if (this.disasm) this.dis(String(v)); this.stack.push(this.intValue(v)); break;
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
            else { const args = this.markTuple(); this.stack.push(this.call(g, args, 'inst')); }
            break;
          }
          const text = latin1(line1);
          switch (this.op) {
            case OP.INT: {
              if (this.disasm) this.dis(text);
              if (text === '01') this.stack.push(H_TRUE); else if (text === '00') this.stack.push(H_FALSE);
              else this.stack.push(this.intValue(parsePyInt(text, this.fail)));
              break;
            }
            case OP.LONG: if (this.disasm) this.dis(text); this.stack.push(this.intValue(parsePyInt(text.endsWith('L') ? text.slice(0, -1) : text, this.fail))); break;
            case OP.FLOAT: {
              const v = parsePyFloat(text); if (v === undefined) this.fail(`could not convert string to float: ${text.slice(0, 40)}`);
              if (this.disasm) this.dis(text); this.stack.push(ar.float(v as number)); break;
            }
            case OP.STRING: { const v = decodePyStringLiteral(text, this.fail); if (this.disasm) this.dis(JSON.stringify(v)); this.pushStr(v); break; }
            case OP.UNICODE: { const v = decodeRawUnicodeEscape(text); if (this.disasm) this.dis(JSON.stringify(v)); this.pushStr(v); break; }
            case OP.GET: {
              const idx = parsePyInt(text, this.fail); if (this.disasm) this.dis(String(idx));
              this.stack.push(this.memoGet(Number(idx))); break;
            }
            case OP.PUT: {
              const idx = Number(parsePyInt(text, this.fail)); if (this.disasm) this.dis(String(idx));
              if (idx < 0) this.fail('negative PUT argument');
              this.memoSet(idx, this.top()); break;
            }
            case OP.PERSID: if (this.disasm) this.dis(JSON.stringify(text)); this.stack.push(ar.node(K.PERSID, ar.str(text), 0, this.opStart)); break;
          }
          break;
        }
        // ---- length-prefixed strings and bytes
        case OP.NEXT_BUFFER: if (this.disasm) this.dis(''); this.stack.push(ar.oob()); break;
        case OP.READONLY_BUFFER: if (this.disasm) this.dis(''); this.top(); break;
        // ---- containers
        case OP.TUPLE1: {
          if (this.disasm) this.dis('');
          this.top();
          this.stack.set(this.stack.length - 1, ar.tupleOf(this.stack.a, this.stack.length - 1, this.stack.length)); break;
        }
        case OP.TUPLE3: {
          if (this.disasm) this.dis('');
          if (this.stack.length - 3 < this.fence) this.fail('unpickling stack underflow');
          const t = ar.tupleOf(this.stack.a, this.stack.length - 3, this.stack.length);
          this.stack.length -= 3; this.stack.push(t); break;
        }
        case OP.EMPTY_LIST: if (this.disasm) this.dis(''); this.stack.push(ar.seq(K.LIST)); break;
        case OP.LIST: if (this.disasm) this.dis(''); this.stack.push(this.markSeq(K.LIST, 0)); break;
        case OP.EMPTY_DICT: if (this.disasm) this.dis(''); this.stack.push(ar.seq(K.DICT)); break;
        case OP.DICT: {
          if (this.disasm) this.dis('');
          if (this.marks.length && (this.stack.length - this.fence) % 2) this.fail('odd number of items for DICT');
          this.stack.push(this.markSeq(K.DICT, 0)); break;
        }
        case OP.EMPTY_SET: if (this.disasm) this.dis(''); this.stack.push(ar.seq(K.SET)); break;
        case OP.FROZENSET: if (this.disasm) this.dis(''); this.stack.push(this.markSeq(K.SET, 1)); break;
        case OP.APPEND: case OP.APPENDS: {
          if (this.disasm) this.dis('');
          // the items stay on the stack until they are moved (no array of them: APPENDS can carry millions)
          let from: number;
          if (this.op === OP.APPEND) { from = this.stack.length - 1; if (from < this.fence) this.fail('unpickling stack underflow'); }
          else from = this.popMarkFence();
          const end = this.stack.length;
          if (from - 1 < this.fence) this.fail('unpickling stack underflow');
          const t = this.stack.get(from - 1);
          const tk = ar.kind[t];
          if (tk === K.LIST) ar.pushFrom(t, this.stack.a, from, end);
          else if (tk === K.CALL) { ar.extraPushFrom(t, X_LIST, this.stack.a, from, end); this.woIssue(`${OP_NAME[this.op]} on an object that is not a list`); }
          else if (tk === K.GLOBAL) this.mutateTarget(t, OP_NAME[this.op]);
          else this.fail(`${OP_NAME[this.op]} on ${ar.describe(t)}`);
          this.stack.length = from;
          break;
        }
        case OP.ADDITEMS: {
          if (this.disasm) this.dis('');
          const from = this.popMarkFence();
          const end = this.stack.length;
          if (from - 1 < this.fence) this.fail('unpickling stack underflow');
          const t = this.stack.get(from - 1);
          const tk = ar.kind[t];
          if (tk === K.SET && !ar.frozen(t)) ar.pushFrom(t, this.stack.a, from, end);
          else if (tk === K.CALL) ar.extraPushFrom(t, X_SET, this.stack.a, from, end);
          else if (tk === K.GLOBAL) this.mutateTarget(t, 'ADDITEMS');
          else this.fail(`ADDITEMS on ${ar.describe(t)}`);
          this.stack.length = from;
          break;
        }
        // ---- memo
        case OP.MEMOIZE: if (this.disasm) this.dis(String(this.memoCount)); this.memoSet(this.memoCount, this.top()); break;
        // ---- imports and calls
        case OP.STACK_GLOBAL: {
          const nameH = this.pop(); const modH = this.pop();
          const nameV = ar.strOf(nameH), modV = ar.strOf(modH);
          if (nameV === undefined || modV === undefined) {
            if (this.disasm) this.dis('<computed>');
            this.note('SW003', `STACK_GLOBAL operands are not constant strings (${ar.describe(modH)}, ${ar.describe(nameH)}): the imported name is decided at load time`);
            this.stack.push(ar.obj(new PyOpaque('computed global')));
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
          this.stack.push(ar.obj(new PyExt(code, this.opStart)));
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
          const f = this.popMarkFence();
          if (this.stack.length === f) this.fail('OBJ without a class');
          const cls = this.stack.get(f);
          const args = ar.tupleOf(this.stack.a, f + 1, this.stack.length);
          this.stack.length = f;
          this.stack.push(this.call(cls, args, 'obj'));
          break;
        }
        case OP.BUILD: {
          if (this.disasm) this.dis('');
          const target = this.stack.length - 2 >= this.fence ? this.stack.get(this.stack.length - 2) : -1;
          const wrapper = target >= 0 && this.isJoblibWrapper(target);
          // joblib's array payload (padding byte + padding) must be in the buffer before BUILD mutates anything
          if (wrapper && this.c.buf.length - this.c.pos < 257 && !this.c.eof) return this.rollback(1 + 257);
          const state = this.pop();
          const inst = this.top();
          const ik = ar.kind[inst];
          if (ik === K.GLOBAL) this.mutateTarget(inst, 'BUILD');
          else if (ik === K.CALL) {
            ar.extraPush(inst, X_STATES, state);
            if (wrapper) {
              // joblib writes array bytes after committing the frame: they are outside any FRAME
              if (this.frameEnd >= 0 && this.c.abs === this.frameEnd) this.frameEnd = -1;
              const arr = joblibArrayPayload(this.c, ar.materializeNear(state), this.run, this.depth, this.fail);
              if (arr instanceof PyNdArray) this.stack.set(this.stack.length - 1, ar.obj(arr));
              else { this.pendingNested = arr; return NESTED; }
            }
          }
          break;
        }
        default:
          this.fail(`invalid opcode 0x${this.op.toString(16).padStart(2, '0')}`);
    }
    return CONT;
  }

  intValue(v: number | bigint): number { return typeof v === 'number' ? this.ar.int(v) : this.ar.obj(v); }

  isJoblibWrapper(h: number): boolean {
    const ar = this.ar;
    if (ar.kind[h] !== K.CALL) return false;
    const fn = ar.a[h];
    if (ar.kind[fn] !== K.GLOBAL) return false;
    const g = this.run.globals[ar.a[fn]];
    return g.name === 'NumpyArrayWrapper' && /(^|\.)numpy_pickle$/.test(g.module);
  }

  // The hot loop is a plain function (generators with yields inside loops run far slower in V8): it returns
  // 0 when the pickle ended (STOP or error), n > 0 when it needs n bytes from the current opcode, or NESTED.
  step(): number {
  const c = this.c, ar = this.ar, stack = this.stack;
  try {
    for (;;) {
      if (!this.disasm) this.fast();
      if (c.buf.length - c.pos < 16 && !c.eof) return 16;
      if (c.pos >= c.buf.length) {
        this.opStart = c.abs;
        this.fail(this.run.opcodes === 0 ? 'empty pickle stream' : 'pickle data was truncated (no STOP)');
      }
      const buf = c.buf;
      const pos = c.pos;
      this.opPos = pos;
      const opStart = c.bufStart + pos;
      this.opStart = opStart;
      if (this.frameEnd >= 0 && opStart >= this.frameEnd) this.frameEnd = -1;
      const op = buf[pos];
      c.pos = pos + 1;
      this.op = op;
      const lim = machineLimits;
      if (++this.run.opcodes > lim.opcodes || stack.length > lim.stack || this.memoCount > lim.stack) {
        const what = this.run.opcodes > lim.opcodes ? `${lim.opcodes} opcodes` : `${lim.stack} stack or memo entries`;
        this.note('SW009', `The pickle goes past the analysis limit of ${what}; reading stopped at offset ${opStart} and the rest${Number.isFinite(c.remaining()) ? ` (${c.remaining() + 1} bytes)` : ''} was not checked`);
        this.fail(`pickle exceeds the analysis limits (${lim.opcodes} opcodes, ${lim.stack} stack or memo entries)`);
      }
      if (WO_OK[op] === 0 && this.woSeen[op] === 0) {
        this.woSeen[op] = 1;
        this.run.weightsOnlyIssues.push(`opcode ${OP_NAME[op] || '0x' + op.toString(16)} at offset ${opStart} is not supported by the weights_only unpickler`);
      }
      switch (op) {
        case OP.MARK: this.marks.push(stack.length); this.fence = stack.length; if (this.disasm) this.dis(''); break;
        case OP.NONE: if (this.disasm) this.dis(''); stack.push(H_NONE); break;
        case OP.NEWFALSE: if (this.disasm) this.dis(''); stack.push(H_FALSE); break;
        case OP.BININT1: { this.need(1); const v = buf[c.pos++]; if (this.disasm) this.dis(String(v)); stack.push(H_SMALL_INT + v); break; }
        case OP.SHORT_BINSTRING: case OP.SHORT_BINBYTES: case OP.SHORT_BINUNICODE:
        case OP.BINSTRING: case OP.BINBYTES: case OP.BINUNICODE:
        case OP.BINUNICODE8: case OP.BINBYTES8: case OP.BYTEARRAY8: {
          const lenBytes = (op === OP.SHORT_BINSTRING || op === OP.SHORT_BINBYTES || op === OP.SHORT_BINUNICODE) ? 1
            : (op === OP.BINUNICODE8 || op === OP.BINBYTES8 || op === OP.BYTEARRAY8) ? 8 : 4;
          this.need(lenBytes);
          let len: number;
          if (lenBytes === 1) len = buf[c.pos];
          else if (lenBytes === 4) len = op === OP.BINSTRING ? readI32(buf, c.pos) : readU32(buf, c.pos);
          else len = readU64(buf, c.pos);
          if (len < 0) this.fail(`${OP_NAME[op]} pickle has negative byte count`);
          const isText = op === OP.SHORT_BINUNICODE || op === OP.BINUNICODE || op === OP.BINUNICODE8;
          if (len > this.inlineMax || len > buf.length - c.pos - lenBytes) {
            const payloadAt = c.abs + lenBytes;
            if (len > c.remaining() - lenBytes) this.fail(`${OP_NAME[op]} declares ${len} bytes but only ${Math.max(0, c.remaining() - lenBytes)} remain`);
            if (len > this.inlineMax) {
              c.pos += lenBytes + len;   // skip without copying
              if (this.disasm) this.dis(`<${len} bytes at ${payloadAt}>`);
              stack.push(ar.obj(isText ? new PyBigStr(len, payloadAt) : new PyBytes(len, payloadAt, undefined, kindOf(op))));
              this.checkFrame();
              break;
            }
            if (!c.eof) return this.rollback(1 + lenBytes + len);
            this.fail('pickle data was truncated');
          }
          const at = c.pos + lenBytes;
          c.pos = at + len;
          if (isText) {
            const s = decodeText(buf, at, at + len, this.fail);
            if (this.disasm) this.dis(JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s));
            stack.push(ar.str(s));
          } else if (op === OP.SHORT_BINSTRING || op === OP.BINSTRING) {
            // Python 3 decodes protocol 0-2 str payloads (encoding='ASCII' by default): they are str, not bytes
            const s = latin1Slice.call(buf, at, at + len);
            if (this.disasm) this.dis(JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s));
            stack.push(ar.str(s));
          } else {
            // keep a copy only of small payloads (names, dtype strings), in the arena's bytes; big ones by offset
            if (this.disasm) this.dis(bytesRepr(buf, at, len));
            stack.push(len <= 4096 ? ar.bytes(buf, at, len, c.bufStart + at, op === OP.BYTEARRAY8) : ar.obj(new PyBytes(len, c.bufStart + at, undefined, kindOf(op))));
          }
          break;
        }
        case OP.EMPTY_TUPLE: if (this.disasm) this.dis(''); stack.push(H_EMPTY_TUPLE); break;
        case OP.TUPLE: if (this.disasm) this.dis(''); stack.push(this.markTuple()); break;
        case OP.TUPLE2: {
          if (this.disasm) this.dis('');
          if (stack.length - 2 < this.fence) this.fail('unpickling stack underflow');
          const t = ar.tupleOf(stack.a, stack.length - 2, stack.length);
          stack.length -= 2; stack.push(t); break;
        }
        case OP.SETITEM: case OP.SETITEMS: {
          if (this.disasm) this.dis('');
          let from: number;
          if (op === OP.SETITEM) { from = stack.length - 2; if (from < this.fence) this.fail('unpickling stack underflow'); }
          else from = this.popMarkFence();
          const end = stack.length;
          if ((end - from) % 2) this.fail('odd number of items for SETITEMS');
          if (from - 1 < this.fence) this.fail('unpickling stack underflow');
          const t = stack.get(from - 1);
          const tk = ar.kind[t];
          if (tk === K.DICT) ar.pushFrom(t, stack.a, from, end);
          else if (tk === K.CALL) {
            ar.extraPushFrom(t, X_DICT, stack.a, from, end);
            const n = ar.calleeName(t) ?? '';
            if (n !== 'collections.OrderedDict' && n !== 'collections.Counter') this.woIssue(`${OP_NAME[op]} on a ${n || 'computed'} object`);
          } else if (tk === K.GLOBAL) this.mutateTarget(t, OP_NAME[op]);
          else this.fail(`${OP_NAME[op]} on ${ar.describe(t)}`);
          stack.length = from;
          break;
        }
        case OP.BINGET: { this.need(1); const idx = buf[c.pos++]; if (this.disasm) this.dis(String(idx)); stack.push(this.memoGet(idx)); break; }
        case OP.LONG_BINGET: { this.need(4); const idx = readU32(buf, c.pos); c.pos += 4; if (this.disasm) this.dis(String(idx)); stack.push(this.memoGet(idx)); break; }
        case OP.BINPUT: { this.need(1); const idx = buf[c.pos++]; if (this.disasm) this.dis(String(idx)); this.memoSet(idx, this.top()); break; }
        case OP.LONG_BINPUT: { this.need(4); const idx = readU32(buf, c.pos); c.pos += 4; if (this.disasm) this.dis(String(idx)); this.memoSet(idx, this.top()); break; }
        case OP.REDUCE: {
          if (this.disasm) this.dis('');
          const args = this.pop(); const fn = this.pop();
          stack.push(this.call(fn, args, 'reduce'));
          break;
        }
        case OP.BINPERSID: {
          if (this.disasm) this.dis('');
          const pid = this.pop();
          const pk = ar.kind[pid];
          if (pk !== K.TUPLE && pk !== K.INT && !this.strPidReported) {
            this.strPidReported = true;
            this.woIssue(`persistent id at offset ${opStart} is not a tuple or int`);
          }
          stack.push(ar.node(K.PERSID, pid, 0, opStart)); break;
        }
        default: {
          const r = this.cold(buf);
          if (r !== CONT) return r;
        }
      }
      if (this.frameEnd >= 0 && c.bufStart + c.pos > this.frameEnd) this.checkFrame();
    }
  } catch (e) {
    if (!(e instanceof Fail)) throw e;
    this.run.error = e.message;
    this.run.errorOffset = e.at;
    this.run.end = Math.max(this.c.abs, e.at);
    return 0;
  }
  }

  /** The opcodes of ordinary checkpoints, on their happy path only, with the position in a local: returns at
   *  the first opcode it does not handle or that would need a finding, a refill or an error, and step() runs
   *  that one generically. Every opcode here is one torch's weights_only unpickler accepts (SHORT_BINUNICODE
   *  and MEMOIZE only after step() recorded their first use). */
  fast(): void {
    const c = this.c, buf = c.buf, ar = this.ar, stack = this.stack, marks = this.marks;
    // the stack top and mark count live in locals; every opcode here pushes at most one item
    if (stack.a.length - stack.n < 4096) stack.grow(stack.n + 4096);
    if (marks.a.length - marks.n < 1024) marks.grow(marks.n + 1024);
    const ts = stack.a, tm = marks.a, tsCap = Math.min(ts.length - 4, machineLimits.stack), tmCap = tm.length - 1;
    let sp = stack.n, mp = marks.n;
    let fence = this.fence;
    let pos = c.pos;
    // stay 16 bytes short of the buffer end and of the current frame's end: fixed arguments always fit
    const end = this.frameEnd >= 0 ? Math.min(buf.length, this.frameEnd - c.bufStart) : buf.length;
    const lim = end - 16;
    let n = this.run.opcodes;
    const memo = this.memoArr, memoLen = memo.length;
    let memoCount = this.memoCount;
    // the limits in locals; the memo count is checked only where it grows (BINPUT, MEMOIZE)
    const nMax = machineLimits.opcodes, memoMax = machineLimits.stack;
    loop: while (pos <= lim && n < nMax && sp < tsCap) {
      const op = buf[pos];
      switch (op) {
        case Hot.BINPUT: case Hot.LONG_BINPUT: {
          if (sp <= fence || memoCount >= memoMax) break loop;
          const idx = op === Hot.BINPUT ? buf[pos + 1] : readU32(buf, pos + 1);
          if (idx >= memoLen) break loop;
          if (memo[idx] === 0) memoCount++;
          memo[idx] = ts[sp - 1] + 1;
          pos += op === Hot.BINPUT ? 2 : 5;
          break;
        }
        case Hot.MEMOIZE: {
          if (this.woSeen[op] === 0 || sp <= fence || memoCount >= memoMax) break loop;
          const idx = memoCount;
          if (idx >= memoLen || memo[idx] !== 0) break loop;
          memoCount++;
          memo[idx] = ts[sp - 1] + 1;
          pos += 1;
          break;
        }
        case Hot.BINGET: case Hot.LONG_BINGET: {
          const idx = op === Hot.BINGET ? buf[pos + 1] : readU32(buf, pos + 1);
          const v = idx < memoLen ? memo[idx] : 0;
          if (v === 0) break loop;
          ts[sp++] = v - 1;
          pos += op === Hot.BINGET ? 2 : 5;
          break;
        }
        case Hot.BININT1: ts[sp++] = H_SMALL_INT + buf[pos + 1]; pos += 2; break;
        case Hot.BININT: ts[sp++] = ar.int(readI32(buf, pos + 1)); pos += 5; break;
        case Hot.BININT2: ts[sp++] = ar.int(buf[pos + 1] | (buf[pos + 2] << 8)); pos += 3; break;
        case Hot.NONE: ts[sp++] = H_NONE; pos += 1; break;
        case Hot.NEWFALSE: ts[sp++] = H_FALSE; pos += 1; break;
        case Hot.NEWTRUE: ts[sp++] = H_TRUE; pos += 1; break;
        case Hot.EMPTY_TUPLE: ts[sp++] = H_EMPTY_TUPLE; pos += 1; break;
        case Hot.EMPTY_DICT: ts[sp++] = ar.seq(K.DICT); pos += 1; break;
        case Hot.EMPTY_LIST: ts[sp++] = ar.seq(K.LIST); pos += 1; break;
        case Hot.MARK: {
          if (mp >= tmCap) break loop;
          tm[mp++] = sp; fence = sp; pos += 1;
          break;
        }
        case Hot.BINUNICODE: case Hot.SHORT_BINUNICODE: {
          if (op === Hot.SHORT_BINUNICODE && this.woSeen[op] === 0) break loop;
          const at = op === Hot.BINUNICODE ? pos + 5 : pos + 2;
          const len = op === Hot.BINUNICODE ? readU32(buf, pos + 1) : buf[pos + 1];
          if (len > end - at || len > 256) break loop;
          // ASCII only here, hashed while copied into the arena's string bytes; anything else is decoded strictly by step()
          const sb = ar.strRoom(len);
          let h = 0x811c9dc5;
          let i = 0, o = ar.nsb;
          for (; i < len; i++) { const b = buf[at + i]; if (b >= 0x80) break; sb[o++] = b; h = Math.imul(h ^ b, 0x01000193); }
          if (i !== len) break loop;
          ts[sp++] = ar.strCopied(len, h | 0);
          pos = at + len;
          break;
        }
        case Hot.TUPLE: {
          if (mp === 0) break loop;
          const f = fence;
          const t = ar.tupleOf(ts, f, sp);
          sp = f;
          mp--;
          fence = mp ? tm[mp - 1] : 0;
          ts[sp++] = t;
          pos += 1;
          break;
        }
        case Hot.TUPLE1: case Hot.TUPLE2: case Hot.TUPLE3: {
          const k = op - Hot.TUPLE1 + 1;
          const from = sp - k;
          if (from < fence) break loop;
          const t = ar.tupleOf(ts, from, sp);
          sp = from;
          ts[sp++] = t;
          pos += 1;
          break;
        }
        case Hot.REDUCE: {
          if (sp - 2 < fence) break loop;
          const fn = ts[sp - 2], args = ts[sp - 1];
          // a computed callee or argument tuple is reported by step()
          if (ar.kind[fn] !== K.GLOBAL || ar.kind[args] !== K.TUPLE) break loop;
          const g = this.run.globals[ar.a[fn]];
          if (!g.called) g.called = true;
          sp -= 2;
          ts[sp++] = ar.call(fn, args, 'reduce', c.bufStart + pos);
          pos += 1;
          break;
        }
        case Hot.BINPERSID: {
          if (sp <= fence) break loop;
          const pid = ts[sp - 1];
          const pk = ar.kind[pid];
          if (pk !== K.TUPLE && pk !== K.INT) break loop;
          ts[sp - 1] = ar.node(K.PERSID, pid, 0, c.bufStart + pos);
          pos += 1;
          break;
        }
        case Hot.SETITEMS: case Hot.APPENDS: {
          if (mp === 0) break loop;
          const f = fence;
          const outer = mp > 1 ? tm[mp - 2] : 0;
          if (f - 1 < outer) break loop;
          const t = ts[f - 1];
          if (ar.kind[t] !== (op === Hot.SETITEMS ? K.DICT : K.LIST) || (op === Hot.SETITEMS && (sp - f) % 2)) break loop;
          ar.pushFrom(t, ts, f, sp);
          sp = f;
          mp--;
          fence = outer;
          pos += 1;
          break;
        }
        default: break loop;
      }
      n++;
    }
    this.run.opcodes = n;
    this.memoCount = memoCount;
    this.fence = fence;
    c.pos = pos;
    stack.n = sp;
    marks.n = mp;
  }

  /** The memo is only needed while the stream runs: its array goes back to the scratch pool. */
  releaseMemo(): void { giveArrayBuffer(this.memoArr.buffer as ArrayBuffer); this.memoArr = new Int32Array(0); }

  checkFrame() {
    if (this.frameEnd >= 0 && this.c.abs > this.frameEnd) this.fail(`opcode at ${this.opStart} crosses the end of its FRAME at ${this.frameEnd}`);
  }
  woIssue(msg: string) {
    if (this.run.weightsOnlyIssues.length < 20) this.run.weightsOnlyIssues.push(msg);
  }
}

/** torch's legacy persistent_load returns data[0] for a ('module', cls, file, source) record; other ids stay as they are. */
function moduleRecordClass(ar: ValueArena, pid: number): number {
  const t = ar.a[pid];
  if (ar.kind[t] !== K.TUPLE || ar.c[t] !== 4 || ar.strOf(ar.tupleItem(t, 0)) !== 'module') return pid;
  const cls = ar.tupleItem(t, 1);
  return ar.kind[cls] === K.GLOBAL ? cls : pid;
}

/** Run one pickle (up to and including STOP) from the cursor's position. */
export function* runPickle(c: Cursor, opts: MachineOptions = {}): Generator<number, PickleRun, void> {
  const m = new PickleMachine(c, opts);
  try {
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
      m.stack.set(m.stack.length - 1, m.ar.obj(new PyNdArray(p.dtype, p.shape, nested.start, nested.end - nested.start, p.order)));
      continue;
    }
    yield r;
  }
  } finally { m.releaseMemo(); m.flushDis(); m.stack.release(); m.marks.release(); }
}

/** str payloads: ASCII (nearly all names and keys) without the TextDecoder call; anything else strictly as UTF-8. */
function decodeText(b: Uint8Array, at: number, end: number, fail: (m: string) => never): string {
  if (end - at <= 256) {
    let i = at;
    while (i < end && b[i] < 0x80) i++;
    if (i === end) return latin1Slice.call(b, at, end);
  }
  return decodeUtf8(b.subarray(at, end), fail);
}

function kindOf(op: number): 'bytes' | 'bytearray' | 'str8' {
  if (op === OP.BYTEARRAY8) return 'bytearray';
  if (op === OP.SHORT_BINSTRING || op === OP.BINSTRING) return 'str8';
  return 'bytes';
}

// ---- joblib: NumpyArrayWrapper objects are followed by the array's raw bytes inside the pickle stream
const NESTED = -1;
const CONT = -2;

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

/** A stack of value handles in a typed array. Why not a JS array: the unpickler stack shrinks at every
 *  TUPLE/SETITEMS, and V8's length setter calls into the runtime and frees half the backing store when an
 *  array shrinks a lot (a SETITEMS batch of 1,000 keys then regrew it from scratch). */
export class IntStack {
  a = new Int32Array(64);
  n = 0;
  get length(): number { return this.n; }
  /** Truncates (the stack never grows through this setter). */
  set length(v: number) { if (v < this.n) this.n = v; }
  push(v: number): void {
    if (this.n === this.a.length) this.grow(this.n + 1);
    this.a[this.n++] = v;
  }
  pop(): number | undefined { return this.n > 0 ? this.a[--this.n] : undefined; }
  get(i: number): number { return this.a[i]; }
  set(i: number, v: number): void { this.a[i] = v; }
  last(): number { return this.a[this.n - 1]; }
  /** Removes and returns the items from `from` up. */
  splice(from: number): number[] { const out = Array.from(this.a.subarray(from, this.n)); this.n = from; return out; }
  /** Room for `need` items, from the scratch pool: fast() makes room for 4,096 stack entries and 1,024 marks in every
   *  pickle run, and allocating them anew (20 KB of zeroed memory outside the heap per run) was ~3% of a warm scan
   *  of the bench corpus's torch files, and more in its garbage collection. */
  grow(need: number): void {
    let cap = this.a.length * 2;
    while (cap < need) cap *= 2;
    const g = new Int32Array(takeArrayBuffer(cap * 4));
    g.set(this.a.subarray(0, this.n));
    giveArrayBuffer(this.a.buffer as ArrayBuffer);   // (the first, small array is not pooled)
    this.a = g;
  }
  /** Gives the array back to the pool; the stack must not be used afterwards. */
  release(): void { giveArrayBuffer(this.a.buffer as ArrayBuffer); this.a = new Int32Array(0); this.n = 0; }
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
