// How a pickle uses each global it imports: only imported, instantiated (NEWOBJ, copyreg._reconstructor with
// builtins.object), or invoked with arguments the pickle chose (REDUCE, OBJ, INST, NEWOBJ_EX with keyword
// arguments, or a higher-order callable such as map/starmap/filter/reduce calling it). One pass over the
// call nodes the simulated unpickler left in the run's arena, after the run: the hot loop stays as it is.
import { K, X_STATES, type ValueArena } from '../pickle/arena';
import type { PickleRun } from '../pickle/machine';
import { classifyGlobal } from './classify';
import { type AllowList, vetting } from './vetted';

export interface GlobalUse {
  /** Called with arguments the pickle chose (directly, or by the higher-order callable `via`). */
  invoked: boolean;
  /** Instantiated, then given a state by BUILD: the class's __setstate__, if it defines one, runs with it. */
  builtWithState?: boolean;
  via?: string;
  /** The first such call: its arguments as text and the opcode offset. */
  args?: string;
  offset?: number;
  /** builtins.getattr only: whether every call fetched a constant, non-dunder attribute of a vetted object. */
  getattrProblem?: string;
  getattrOk?: string;
}

export interface CallFinding { rule: 'SW003' | 'SW008'; message: string; offset: number; global?: string }

export interface CallAnalysis { uses: Map<number, GlobalUse>; findings: CallFinding[] }

// What a callee's name means to this pass, decided once per global record (a 50,000-tensor checkpoint has
// 100,000 call nodes but a handful of globals)
const PLAIN = 1, GETATTR = 2, RECONSTRUCTOR = 3, SPECIAL = 4, DONE = 5;   // DONE: a plain callee already marked invoked
function roleOf(full: string): number {
  if (full === 'builtins.getattr' || full === '__builtin__.getattr') return GETATTR;
  if (full === 'copyreg._reconstructor' || full === 'copy_reg._reconstructor') return RECONSTRUCTOR;
  return CALLS_ARGUMENT[full] !== undefined || CONSUMERS.has(full) ? SPECIAL : PLAIN;
}

// call kinds as the arena codes them (CALL_KIND_CODE)
const NEWOBJ = 1, NEWOBJ_EX = 2;   // (0: REDUCE)

/** Higher-order callables: which positional argument they call at load time. */
const CALLS_ARGUMENT: Record<string, number> = {
  'builtins.map': 0, 'builtins.filter': 0, 'itertools.starmap': 0, 'functools.reduce': 0, '_functools.reduce': 0,
  'itertools.filterfalse': 0, 'itertools.takewhile': 0, 'itertools.dropwhile': 0, 'itertools.accumulate': 1,
  'itertools.groupby': 1, 'builtins.iter': 0, 'builtins.sorted': -1, 'builtins.min': -1, 'builtins.max': -1,
};
/** Vetted callables that iterate over their argument: an object built from an unvetted class runs its __iter__. */
const CONSUMERS = new Set(['builtins.list', 'builtins.tuple', 'builtins.set', 'builtins.frozenset', 'builtins.dict',
  'builtins.bytearray', 'builtins.bytes', 'collections.OrderedDict', 'collections.deque', 'collections.Counter',
  'collections.defaultdict', 'builtins.sorted', 'builtins.min', 'builtins.max', 'builtins.sum']);
const OBJECT = new Set(['builtins.object', '__builtin__.object']);

export function analyzeCalls(run: PickleRun, allow: AllowList): CallAnalysis {
  const ar = run.arena;
  const uses = new Map<number, GlobalUse>();
  const findings: CallFinding[] = [];
  const use = (gi: number): GlobalUse => { let u = uses.get(gi); if (!u) { u = { invoked: false }; uses.set(gi, u); } return u; };
  const globalOf = (h: number): number => (h >= 0 && ar.kind[h] === K.GLOBAL ? ar.a[h] : -1);
  const nameOf = (gi: number): string => ar.globalName(gi);
  /** The callee of a call node is a vetted (or safe-tier) class or function. */
  const builtFromVetted = (h: number): boolean => {
    if (ar.kind[h] !== K.CALL) return false;
    const gi = globalOf(ar.a[h]);
    return gi >= 0 && isVetted(nameOf(gi), allow);
  };
  const invoke = (gi: number, h: number, args: number, via?: string): void => {
    const u = use(gi);
    if (u.invoked) return;
    u.invoked = true; u.via = via; u.args = describeArgs(ar, args); u.offset = ar.b[h];
  };

  /** Calling a functools.partial object calls the function it wraps: partial(f, ...) or the func of its BUILD state. */
  const callsPartial = (h: number): void => {
    const p = ar.a[h];
    if (kind[p] !== K.CALL || ar.calleeName(p) !== 'functools.partial') return;
    const first = (t: number): number => (kind[t] === K.TUPLE ? ar.tupleItem(t, 0) : -1);
    const wrapped = [first(ar.c[p])];
    const states = ar.extraSeq(p, X_STATES);
    if (states >= 0) for (let i = 0; i < ar.seqLenOf(states); i++) wrapped.push(first(ar.seqItemOf(states, i)));
    for (const f of wrapped) {
      const fi = globalOf(f);
      if (fi >= 0) invoke(fi, h, ar.c[h], 'functools.partial');
    }
  };
  const n = ar.n, kind = ar.kind;
  const roles = new Uint8Array(run.globals.length);
  for (let h = 0; h < n; h++) {
    if (kind[h] !== K.CALL) continue;
    const gi = globalOf(ar.a[h]);
    if (gi < 0) { callsPartial(h); continue; } // a computed callee: the machine reports it (SW003)
    const code = ar.sub[h];
    const args = ar.c[h];
    if (code === NEWOBJ) {                     // cls.__new__(cls, *args): instantiation
      if (ar.extraSeq(h, X_STATES) >= 0) use(gi).builtWithState = true;
      continue;
    }
    if (code === NEWOBJ_EX) {
      const kw = ar.kwargsOf(h);
      if (kw < 0 || isEmptyDict(ar, kw)) continue;
    }
    const role = roles[gi] || (roles[gi] = roleOf(nameOf(gi)));
    if (role === DONE) continue;
    if (role === PLAIN) { invoke(gi, h, args); roles[gi] = DONE; continue; }
    const full = nameOf(gi);
    if (role === GETATTR) {
      const verdict = judgeGetattr(ar, args, builtFromVetted, allow);
      const u = use(gi);
      u.offset ??= ar.b[h];
      if (verdict.ok) u.getattrOk ??= verdict.why;
      else u.getattrProblem ??= verdict.why;
      continue;
    }
    invoke(gi, h, args);
    // computed argument tuple: the machine reports it; no arguments: nothing is forwarded or iterated
    // (torch writes OrderedDict() 50,000 times in a 50,000-tensor state dict)
    if (ar.kind[args] !== K.TUPLE || ar.c[args] === 0) continue;
    // copyreg._reconstructor(cls, base, state): base.__init__(obj, state) runs unless base is object
    if (role === RECONSTRUCTOR) {
      const base = ar.tupleItem(args, 1);
      const bi = globalOf(base);
      if (bi >= 0 && !OBJECT.has(nameOf(bi))) invoke(bi, h, args, full);
      else if (base >= 0 && bi < 0 && kind[base] !== K.NONE) {
        findings.push({ rule: 'SW003', message: `${full} runs the __init__ of ${ar.describe(base)}, a value computed at load time`, offset: ar.b[h], global: full });
      }
      continue;
    }
    const k = CALLS_ARGUMENT[full];
    if (k !== undefined && k >= 0) {
      const f = ar.tupleItem(args, k);
      const fi = globalOf(f);
      if (fi >= 0) invoke(fi, h, args, full);
      else if (f >= 0 && kind[f] !== K.NONE) {
        findings.push({ rule: 'SW003', message: `${full} calls ${ar.describe(f)}, a callable obtained at load time, for each item`, offset: ar.b[h], global: full });
      }
    }
    if (CONSUMERS.has(full)) {
      for (let i = 0; i < ar.c[args]; i++) {
        const item = ar.tupleItem(args, i);
        if (kind[item] !== K.CALL || builtFromVetted(item)) continue;
        const what = ar.describe(item);
        findings.push({ rule: 'SW008', message: `${full} iterates over ${what} at load time, which runs that object's own code`, offset: ar.b[h], global: full });
      }
    }
  }
  return { uses, findings };
}

/** A safe-tier global or a vetted callable. */
export function isVetted(full: string, allow: AllowList): boolean {
  const dot = full.lastIndexOf('.');
  const v = classifyGlobal(full.slice(0, dot), full.slice(dot + 1));
  if (v.tier === 'dangerous') return false;
  return v.tier === 'safe' || vetting(full, allow) !== undefined;
}

/**
 * getattr(obj, name): caution only when `name` is a constant, non-dunder str and `obj` is a global (then it is the
 * import of "obj.name", judged like any import) or an object the pickle built from a vetted class.
 */
function judgeGetattr(ar: ValueArena, args: number, builtFromVetted: (h: number) => boolean, allow: AllowList): { ok: boolean; why: string } {
  if (ar.kind[args] !== K.TUPLE || ar.c[args] < 2 || ar.c[args] > 3) return { ok: false, why: `getattr is called with ${ar.describe(args)} as its arguments` };
  const obj = ar.tupleItem(args, 0);
  const name = ar.strOf(ar.tupleItem(args, 1));
  if (name === undefined) return { ok: false, why: `getattr fetches an attribute whose name is ${ar.describe(ar.tupleItem(args, 1))}, not a constant string` };
  if (name.startsWith('__') || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return { ok: false, why: `getattr fetches the attribute ${JSON.stringify(name)}, which walks into Python internals` };
  if (ar.kind[obj] === K.GLOBAL) {
    const g = ar.globals[ar.a[obj]];
    const v = classifyGlobal(g.module, `${g.name}.${name}`);
    if (v.tier === 'dangerous') return { ok: false, why: `getattr reaches ${g.module}.${g.name}.${name}: ${v.reason}` };
    return { ok: true, why: `getattr fetches ${g.module}.${g.name}.${name} (an enum member or class attribute)` };
  }
  if (builtFromVetted(obj)) {
    const cls = ar.calleeName(obj) ?? '?';
    return { ok: true, why: `getattr fetches the attribute "${name}" of a ${cls} object the file builds (a bound method, as ${cls} pickles itself)` };
  }
  const what = ar.kind[obj] === K.CALL ? `a ${ar.calleeName(obj) ?? 'computed'} object, whose class is not vetted` : ar.describe(obj);
  void allow;
  return { ok: false, why: `getattr fetches "${name}" from ${what}` };
}

function isEmptyDict(ar: ValueArena, h: number): boolean {
  return ar.kind[h] === K.DICT && ar.seqLen(h) === 0;
}

/** A call's arguments for a message: constants as Python would print them, other values by kind. */
export function describeArgs(ar: ValueArena, args: number): string {
  if (ar.kind[args] !== K.TUPLE) return ar.describe(args);
  const parts: string[] = [];
  const len = ar.c[args];
  for (let i = 0; i < Math.min(len, 4); i++) parts.push(describeArg(ar, ar.tupleItem(args, i)));
  if (len > 4) parts.push(`… ${len - 4} more`);
  return `(${parts.join(', ')}${len === 1 ? ',' : ''})`;
}

function describeArg(ar: ValueArena, h: number): string {
  switch (ar.kind[h]) {
    case K.NONE: return 'None';
    case K.TRUE: return 'True';
    case K.FALSE: return 'False';
    case K.INT: return String(ar.b[h]);
    case K.STR: { const s = ar.text(h); return JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s); }
    case K.GLOBAL: return ar.globalName(ar.a[h]);
    default: return ar.describe(h);
  }
}
