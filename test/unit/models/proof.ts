// Proofs in a throwaway process: the real loader (pickle, torch 1.13, numpy 1.24 in /usr/bin/python3) loads a
// file built by a test, and a marker file the payload creates tells whether the loader ran it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PYTHON } from '../../setup';
import { PickleAsm } from './pickleAsm';

export const LOADERS = {
  pickle: 'import pickle, sys\nwith open(sys.argv[1], "rb") as f:\n    pickle.load(f)',
  /** the pure-Python unpickler (joblib's NumpyUnpickler is one) */
  purePython: 'import pickle, sys\nwith open(sys.argv[1], "rb") as f:\n    pickle._Unpickler(f).load()',
  /** two pickle.load calls on one stream (an appended pickle) */
  pickleTwice: 'import pickle, sys\nwith open(sys.argv[1], "rb") as f:\n    pickle.load(f)\n    pickle.load(f)',
  torch: 'import sys, torch\ntorch.load(sys.argv[1], weights_only=False)',
  numpy: 'import sys, numpy\nd = numpy.load(sys.argv[1], allow_pickle=True)\nfor k in getattr(d, "files", []):\n    d[k]',
  /** a tool that unpickles a zip member by name (argv[2]) */
  zipMember: 'import pickle, sys, zipfile\npickle.loads(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))',
} as const;

export interface Proof { ran: boolean; status: number | null; detail: string }

/**
 * Writes `bytes` to a fresh folder, deletes the marker, loads the file with `loader` in a child python (60 s
 * timeout, killed after), and tells whether the marker exists afterwards. `env` extends the child's environment.
 */
export function proveLoad(bytes: Uint8Array, loader: string, marker: string, args: string[] = [], env: Record<string, string> = {}): Proof {
  const dir = mkdtempSync(join(tmpdir(), 'sw-proof-'));
  try {
    const file = join(dir, 'model.bin');
    writeFileSync(file, bytes);
    rmSync(marker, { force: true });
    const r = spawnSync(PYTHON, ['-c', loader, file, ...args], { cwd: dir, timeout: 60_000, killSignal: 'SIGKILL', encoding: 'utf8', env: { ...process.env, ...env } });
    const ran = existsSync(marker);
    return { ran, status: r.status, detail: `exit ${r.status ?? r.signal}; marker ${ran ? 'created' : 'missing'}\n${(r.stderr ?? '').trim().split('\n').slice(-4).join('\n')}` };
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** `os.system(cmd)` in protocol 0 (GLOBAL, MARK, UNICODE, TUPLE, REDUCE, STOP), appended to `a`; label 'g' marks GLOBAL. */
export function systemCall(a: PickleAsm, cmd: string): PickleAsm {
  return a.label('g').global('os', 'system').mark().unicode(cmd).tuple().reduce().stop();
}

