// What loading a dangerous pickle would run, as the decompiled calls of its dangerous globals with their arguments
// (`posix.system('echo pwned > /tmp/x')`), cut out of the decompiled view. No vscode import: unit-tested.

export interface DangerCall {
  /** The call expression as decompiled, at most maxChars long ("…" marks a cut). */
  text: string;
  /** The global it calls (module.name as the file names it). */
  global: string;
  offset: number;
  member?: string;
}

interface GlobalLike { module: string; name: string; offset: number; member?: string; called: boolean; severity: string }

/** The end (exclusive) of the call whose "(" is at `open`, skipping brackets inside string literals; -1 if it does not close. */
function closeOf(text: string, open: number, limit: number): number {
  let depth = 0;
  let quote = '';
  const end = Math.min(text.length, limit);
  for (let i = open; i < end; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') { depth--; if (depth === 0) return i + 1; }
  }
  return -1;
}

function isNameChar(c: string | undefined): boolean {
  return c !== undefined && /[\w.]/.test(c);
}

/**
 * The calls of the dangerous globals the file calls, in the order of the globals, at most `max`, each at most
 * `maxChars` long. A global whose call is not in the decompiled text (it is only imported, or the text was cut)
 * is given as its bare name.
 */
export function dangerCalls(decompiled: string, globals: readonly GlobalLike[], max = 8, maxChars = 400): DangerCall[] {
  const out: DangerCall[] = [];
  const seen = new Set<string>();
  for (const g of globals) {
    if (g.severity !== 'dangerous' || out.length >= max) continue;
    const name = `${g.module}.${g.name}`;
    if (seen.has(name)) continue;
    seen.add(name);
    let text = name;
    let from = 0;
    for (;;) {
      const at = decompiled.indexOf(`${name}(`, from);
      if (at < 0) break;
      from = at + name.length;
      if (isNameChar(decompiled[at - 1])) continue;      // `myposix.system(` is another name
      const open = at + name.length;
      const close = closeOf(decompiled, open, open + maxChars * 4);
      const call = close < 0 ? decompiled.slice(at, open + maxChars) : decompiled.slice(at, close);
      const flat = call.replace(/\s*\n\s*/g, ' ');
      text = flat.length > maxChars || close < 0 ? `${flat.slice(0, maxChars - 1)}…` : flat;
      break;
    }
    out.push({ text, global: name, offset: g.offset, ...(g.member !== undefined ? { member: g.member } : {}) });
  }
  return out;
}
