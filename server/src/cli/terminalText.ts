// Text from scanned files (names, module names, metadata in messages) shown on a terminal: control characters
// are written as escapes, so a file named "x\n\x1b[32mSAFE" cannot move the cursor, repaint or fake a line.

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f', '\v': '\\v', '\0': '\\0' };

// C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text (bidi overrides and
// isolates, zero-width joiners, the BOM, line/paragraph separators)
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

export function escapeTerminal(s: string): string {
  return s.replace(UNSAFE, (c) => NAMED[c] ?? (c.charCodeAt(0) <= 0xff
    ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`
    : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** An error for a person: "no such file or directory" instead of "ENOENT: no such file or directory, open 'x'". */
export function plainError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const words: Record<string, string> = {
    ENOENT: 'no such file or directory', EACCES: 'permission denied', EPERM: 'operation not permitted',
    EISDIR: 'is a directory, not a file', ENOTDIR: 'a part of the path is not a directory', ENOSPC: 'no space left on the device',
    EROFS: 'the file system is read-only', EEXIST: 'already exists', ELOOP: 'symbolic link loop', EMFILE: 'too many open files',
  };
  if (code && words[code]) return err.path ? `${err.path}: ${words[code]}` : words[code];
  return err instanceof Error ? err.message : String(e);
}
