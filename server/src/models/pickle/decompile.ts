// Python-like rendering of what a pickle builds (for the viewer's "decompiled" tab). Bounded in size and
// depth so shared or cyclic structures cannot blow up.
import {
  PyBigStr, PyBytes, PyCall, PyDict, PyExt, PyFloat, PyGlobal, PyList, PyNdArray, PyOpaque, PyPersId, PySet, PyTuple, PyValue,
} from './values';
import { H_NONE, K, ValueArena, X_DICT, X_LIST, X_SET, X_STATES } from './arena';
import type { PickleRun } from './machine';

export function decompile(v: PyValue | undefined, maxChars = 2_000_000): { text: string; truncated: boolean } {
  let out = '';
  let truncated = false;
  const onPath = new Set<object>();
  const emit = (s: string) => {
    if (out.length + s.length > maxChars) { truncated = true; throw new Stop(); }
    out += s;
  };
  const r = (x: PyValue, ind: number): void => {
    if (ind > 60) { emit('…'); return; }
    if (x === null) return emit('None');
    if (x === true) return emit('True');
    if (x === false) return emit('False');
    if (typeof x === 'number') return emit(Number.isFinite(x) ? String(x) : x > 0 ? 'inf' : x < 0 ? '-inf' : 'nan');
    if (typeof x === 'bigint') return emit(x.toString());
    if (typeof x === 'string') return emit(pyStr(x));
    if (x instanceof PyFloat) return emit(Number.isInteger(x.v) ? x.v.toFixed(1) : String(x.v));
    if (x instanceof PyBytes) {
      if (!x.data) return emit(`<${x.length} bytes at offset ${x.offset}>`);
      const shown = Buffer.from(x.data.subarray(0, 64)).toString('latin1');
      return emit(`${x.kind === 'bytearray' ? 'bytearray(' : ''}b${pyStr(shown)}${x.length > 64 ? `…(${x.length} bytes)` : ''}${x.kind === 'bytearray' ? ')' : ''}`);
    }
    if (x instanceof PyBigStr) return emit(`<str of ${x.length} bytes at offset ${x.offset}>`);
    if (x instanceof PyGlobal) return emit(`${x.module}.${x.name}`);
    if (x instanceof PyExt) return emit(`<extension code ${x.code}>`);
    if (x instanceof PyOpaque) return emit(`<${x.what}>`);
    if (x instanceof PyNdArray) return emit(`<ndarray ${x.dtype} ${JSON.stringify(x.shape)} data at offset ${x.dataOffset}>`);
    if (x instanceof PyPersId) { emit('persistent_load('); r(x.pid, ind); return emit(')'); }
    if (onPath.has(x)) return emit('<cycle>');
    onPath.add(x);
    try {
      const pad = '\n' + '    '.repeat(ind + 1), end = '\n' + '    '.repeat(ind);
      if (x instanceof PyTuple || x instanceof PyList || x instanceof PySet) {
        const [o, c] = x instanceof PyTuple ? ['(', ')'] : x instanceof PyList ? ['[', ']'] : [x.frozen ? 'frozenset({' : '{', x.frozen ? '})' : '}'];
        if (x.items.length === 0) return emit(x instanceof PySet ? (x.frozen ? 'frozenset()' : 'set()') : o + c);
        const multi = x.items.length > 4 || x.items.some((i) => typeof i === 'object' && i !== null && !(i instanceof PyFloat));
        emit(o);
        x.items.forEach((it, i) => { if (multi) emit(pad); r(it, ind + 1); if (i < x.items.length - 1 || (x instanceof PyTuple && x.items.length === 1)) emit(multi ? ',' : ', '); });
        return emit((multi ? end : '') + c);
      }
      if (x instanceof PyDict) return dict(x.entries, ind, '{', '}');
      if (x instanceof PyCall) {
        r(x.fn, ind);
        const args = x.args instanceof PyTuple ? x.args.items : undefined;
        emit('(');
        if (args) args.forEach((a, i) => { if (i) emit(', '); r(a, ind + 1); });
        else { emit('*'); r(x.args, ind + 1); }
        if (x.kwargs !== undefined) { emit(args && args.length ? ', **' : '**'); r(x.kwargs, ind + 1); }
        emit(')');
        for (const st of x.states) { emit('.__setstate__('); r(st, ind + 1); emit(')'); }
        if (x.listItems) { emit('.extend('); r(new PyList(x.listItems), ind + 1); emit(')'); }
        if (x.dictItems) { emit('.update('); dict(x.dictItems, ind + 1, '{', '}'); emit(')'); }
        if (x.setItems) { emit('.add_all('); r(new PyList(x.setItems), ind + 1); emit(')'); }
        return;
      }
      emit('<?>');
    } finally { onPath.delete(x); }
  };
  const dict = (entries: [PyValue, PyValue][], ind: number, o: string, c: string) => {
    if (entries.length === 0) return emit(o + c);
    const pad = '\n' + '    '.repeat(ind + 1), end = '\n' + '    '.repeat(ind);
    emit(o);
    for (const [k, val] of entries) { emit(pad); r(k, ind + 1); emit(': '); r(val, ind + 1); emit(','); }
    emit(end + c);
  };
  try { emit('result = '); r(v ?? null, 0); emit('\n'); } catch (e) { if (!(e instanceof Stop)) throw e; }
  return { text: truncated ? out + '\n# … truncated\n' : out, truncated };
}

class Stop extends Error {}

function pyStr(s: string): string {
  return "'" + s.replace(/[\\']/g, (m) => '\\' + m).replace(/[\x00-\x1f\x7f]/g, (m) => '\\x' + m.charCodeAt(0).toString(16).padStart(2, '0')) + "'";
}

/**
 * The same rendering as decompile(), read straight from the run's value arena: nothing is materialized, so a
 * pickle of a million values costs no object per value, and the work is bounded by the output (every value
 * shown writes at least one character; a memo DAG whose tree is exponential stops at `maxChars`). Nesting is
 * cut at 60 levels, counted through calls' callees and persistent ids too, so the call stack stays small.
 * When the output is cut, the text says how many of the values the pickle builds were not shown.
 */
export function decompileArena(ar: ValueArena, root: number | undefined, maxChars = 2_000_000): { text: string; truncated: boolean } {
  const parts: string[] = [];
  let size = 0;
  let truncated = false;
  const onPath = new Uint8Array(ar.n);
  const shown = new Uint8Array(ar.n);
  const emit = (s: string) => {
    if (size + s.length > maxChars) { truncated = true; throw new Stop(); }
    parts.push(s);
    size += s.length;
  };
  const isObjectish = (h: number): boolean => {
    const k = ar.kind[h];
    if (k === K.OBJ) return typeof ar.objs[ar.a[h]] !== 'bigint';
    return k === K.BYTES || (k >= K.TUPLE && k <= K.PERSID);
  };
  const seqList = (s: number, ind: number, depth: number, o: string, c: string) => {
    const n = ar.seqLenOf(s);
    if (n === 0) return emit(o + c);
    let multi = n > 4;
    for (let i = 0; i < n && !multi; i++) multi = isObjectish(ar.seqItemOf(s, i));
    const pad = '\n' + '    '.repeat(ind + 1), end = '\n' + '    '.repeat(ind);
    emit(o);
    for (let i = 0; i < n; i++) { if (multi) emit(pad); r(ar.seqItemOf(s, i), ind + 1, depth + 1); if (i < n - 1) emit(multi ? ',' : ', '); }
    return emit((multi ? end : '') + c);
  };
  const dict = (s: number, ind: number, depth: number) => {
    const n = ar.seqLenOf(s) >> 1;
    if (n === 0) return emit('{}');
    const pad = '\n' + '    '.repeat(ind + 1), end = '\n' + '    '.repeat(ind);
    emit('{');
    for (let i = 0; i < n; i++) {
      emit(pad); r(ar.seqItemOf(s, 2 * i), ind + 1, depth + 1); emit(': '); r(ar.seqItemOf(s, 2 * i + 1), ind + 1, depth + 1); emit(',');
    }
    emit(end + '}');
  };
  const r = (h: number, ind: number, depth: number): void => {
    if (depth > 60) { emit('…'); return; }
    shown[h] = 1;
    const k = ar.kind[h];
    switch (k) {
      case K.NONE: return emit('None');
      case K.TRUE: return emit('True');
      case K.FALSE: return emit('False');
      case K.INT: { const x = ar.b[h]; return emit(Number.isFinite(x) ? String(x) : x > 0 ? 'inf' : x < 0 ? '-inf' : 'nan'); }
      case K.FLOAT: { const x = ar.b[h]; return emit(Number.isInteger(x) ? x.toFixed(1) : String(x)); }
      case K.STR: return emit(pyStr(ar.text(h)));
      case K.BYTES: {
        const at = ar.a[h], len = ar.c[h], ba = ar.sub[h] === 1;
        const shownBytes = Buffer.from(ar.sb.buffer, ar.sb.byteOffset + at, Math.min(len, 64)).toString('latin1');
        return emit(`${ba ? 'bytearray(' : ''}b${pyStr(shownBytes)}${len > 64 ? `…(${len} bytes)` : ''}${ba ? ')' : ''}`);
      }
      case K.GLOBAL: { const g = ar.globals[ar.a[h]]; return emit(`${g.module}.${g.name}`); }
      case K.OBJ: {
        const x = ar.objs[ar.a[h]];
        if (typeof x === 'bigint') return emit(x.toString());
        if (x instanceof PyBytes) return emit(`<${x.length} bytes at offset ${x.offset}>`);
        if (x instanceof PyBigStr) return emit(`<str of ${x.length} bytes at offset ${x.offset}>`);
        if (x instanceof PyExt) return emit(`<extension code ${x.code}>`);
        if (x instanceof PyOpaque) return emit(`<${x.what}>`);
        if (x instanceof PyNdArray) return emit(`<ndarray ${x.dtype} ${JSON.stringify(x.shape)} data at offset ${x.dataOffset}>`);
        return emit('<?>');
      }
      case K.PERSID: { emit('persistent_load('); r(ar.a[h], ind, depth + 1); return emit(')'); }
    }
    if (onPath[h]) return emit('<cycle>');
    onPath[h] = 1;
    try {
      switch (k) {
        case K.TUPLE: {
          const n = ar.c[h], at = ar.a[h];
          if (n === 0) return emit('()');
          let multi = n > 4;
          for (let i = 0; i < n && !multi; i++) multi = isObjectish(ar.items[at + i]);
          const pad = '\n' + '    '.repeat(ind + 1), end = '\n' + '    '.repeat(ind);
          emit('(');
          for (let i = 0; i < n; i++) { if (multi) emit(pad); r(ar.items[at + i], ind + 1, depth + 1); if (i < n - 1 || n === 1) emit(multi ? ',' : ', '); }
          return emit((multi ? end : '') + ')');
        }
        case K.LIST: return seqList(h, ind, depth, '[', ']');
        case K.SET: {
          const frozen = ar.frozen(h);
          if (ar.seqLen(h) === 0) return emit(frozen ? 'frozenset()' : 'set()');
          return seqList(h, ind, depth, frozen ? 'frozenset({' : '{', frozen ? '})' : '}');
        }
        case K.DICT: return dict(h, ind, depth);
        case K.CALL: {
          r(ar.a[h], ind, depth + 1);
          const args = ar.c[h];
          emit('(');
          const isTuple = ar.kind[args] === K.TUPLE;
          if (isTuple) { shown[args] = 1; for (let i = 0; i < ar.c[args]; i++) { if (i) emit(', '); r(ar.items[ar.a[args] + i], ind + 1, depth + 1); } }
          else { emit('*'); r(args, ind + 1, depth + 1); }
          const kw = ar.kwargsOf(h);
          if (kw >= 0) { emit(isTuple && ar.c[args] ? ', **' : '**'); r(kw, ind + 1, depth + 1); }
          emit(')');
          const st = ar.extraSeq(h, X_STATES);
          if (st >= 0) for (let i = 0; i < ar.seqLenOf(st); i++) { emit('.__setstate__('); r(ar.seqItemOf(st, i), ind + 1, depth + 1); emit(')'); }
          const li = ar.extraSeq(h, X_LIST);
          if (li >= 0) { emit('.extend('); seqList(li, ind + 1, depth + 1, '[', ']'); emit(')'); }
          const di = ar.extraSeq(h, X_DICT);
          if (di >= 0) { emit('.update('); dict(di, ind + 1, depth + 1); emit(')'); }
          const se = ar.extraSeq(h, X_SET);
          if (se >= 0) { emit('.add_all('); seqList(se, ind + 1, depth + 1, '[', ']'); emit(')'); }
          return;
        }
      }
      emit('<?>');
    } finally { onPath[h] = 0; }
  };
  try { emit('result = '); r(root ?? H_NONE, 0, 0); emit('\n'); } catch (e) { if (!(e instanceof Stop)) throw e; }
  let text = parts.join('');
  if (truncated && root !== undefined) {
    // how much is missing: the distinct values reachable from the result that were never shown
    let reachable = 0, notShown = 0;
    const seen = new Uint8Array(ar.n), todo = new Int32Array(ar.n);   // each value is pushed once at most
    let sp = 0;
    todo[sp++] = root; seen[root] = 1;
    const add = (ch: number) => { if (!seen[ch]) { seen[ch] = 1; todo[sp++] = ch; } };
    while (sp > 0) {
      const h = todo[--sp];
      reachable++;
      if (!shown[h]) notShown++;
      ar.forEachChild(h, add);
    }
    text += `\n# … truncated at ${maxChars} characters: ${notShown} of the ${reachable} values it builds are not shown\n`;
  } else if (truncated) text += '\n# … truncated\n';
  return { text, truncated };
}

/** The decompiled view of one run (what STOP returned), within `maxChars`; a released or empty run says so. */
export function decompileRun(run: PickleRun, maxChars: number): { text: string; truncated: boolean } {
  if (maxChars <= 0) return { text: '# … not shown: earlier pickles used up the decompiled view\'s length limit\n', truncated: true };
  return decompileArena(run.arena, run.root, maxChars);
}
