// Child process that decodes an LZMA "alone" stream (stdin → stdout). The only maintained pure-JS decoder
// (LZMA-JS) builds its output in one growing array and can abort the whole process on crafted input, so it
// runs here, in a separate process with a memory cap, and the parent bounds the output it accepts.
// The package's index.js loads its decoder through a computed path (require(path.join(__dirname, 'src', ...))),
// which a bundler cannot follow: the bundled worker then fails on every file. Name the decoder file itself
// (the decode-only build of the same source), so esbuild inlines it into dist/lzma-worker.js.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const LZMA = (require('lzma/src/lzma-d.js') as { LZMA: { decompress(b: Uint8Array): unknown } }).LZMA;

// Also a worker thread (compressed.ts keeps one per process, with a heap limit, terminated on a timeout): the
// same decoder without a process start per file (8 lzma joblib files: ~65-100 ms decoding in a thread against
// 1.2-1.5 s as 8 processes). An out-of-memory decode ends the thread (resourceLimits), not the scan's process.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
if (parentPort) {
  parentPort.on('message', (m: { id: number; input: Uint8Array; cap: number }) => {
    try {
      const r = LZMA.decompress(m.input);
      if (r === null || r === undefined) throw new Error('no output');
      const n = (r as ArrayLike<number>).length;
      if (n > m.cap) { parentPort.postMessage({ id: m.id, tooBig: true }); return; }
      const out = typeof r === 'string' ? Buffer.from(r, 'latin1') : Uint8Array.from(r as ArrayLike<number>, (x) => x & 0xff);
      const copy = new Uint8Array(out);    // an owned buffer to transfer (Buffer.from may be a pool slice)
      parentPort.postMessage({ id: m.id, out: copy }, [copy.buffer]);
    } catch (e) {
      parentPort.postMessage({ id: m.id, error: String((e as Error).message ?? e) });
    }
  });
} else {
const parts: Buffer[] = [];
process.stdin.on('data', (d: Buffer) => parts.push(d));
process.stdin.on('end', () => {
  try {
    const r = LZMA.decompress(Buffer.concat(parts));
    if (r === null || r === undefined) throw new Error('no output');
    const out = typeof r === 'string' ? Buffer.from(r, 'latin1') : Buffer.from(Uint8Array.from(r as ArrayLike<number>, (x) => x & 0xff));
    process.stdout.write(out, () => process.exit(0));
  } catch (e) {
    process.stderr.write(String((e as Error).message ?? e));
    process.exit(3);
  }
});
}
