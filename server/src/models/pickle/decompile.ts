// Python-like rendering of what a pickle builds (for the viewer's "decompiled" tab). Bounded in size and
// depth so shared or cyclic structures cannot blow up.
import {
  PyBigStr, PyBytes, PyCall, PyDict, PyExt, PyFloat, PyGlobal, PyList, PyNdArray, PyOpaque, PyPersId, PySet, PyTuple, PyValue,
} from './values';

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
