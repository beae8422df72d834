// Facts derived from a whole program text and asked about again and again (once per finding, once per analysis).

/** A lookup of `make(text)` kept for the last `size` texts. The same string object is found at once; another text is
 *  told apart by its length or its first different character; an equal text in another string (an edit undone) is
 *  compared whole, so its entry then keeps the newer string, found by reference next time. */
export function textMemo<T>(size: number, make: (text: string) => T): (text: string) => T {
  const seen: [string, T][] = [];
  return (text) => {
    const i = seen.findIndex(([t]) => t === text);
    const entry = i >= 0 ? seen.splice(i, 1)[0] : [text, make(text)] as [string, T];
    entry[0] = text;
    seen.unshift(entry);
    seen.length = Math.min(seen.length, size);
    return entry[1];
  };
}
