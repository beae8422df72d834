// Catalog of model-file findings. Ids are stable (SW0xx); README documents each under #sw0xx.
import type { Severity } from './types';

export interface ModelRule {
  id: string;
  name: string;
  severity: Severity;     // default severity; a finding may carry another where the message says why
  short: string;
}

export const MODEL_RULES: readonly ModelRule[] = [
  { id: 'SW001', name: 'dangerous-global', severity: 'dangerous', short: 'The pickle imports a callable known to run code, touch files, processes or the network, import modules, walk attributes or load another pickle.' },
  { id: 'SW002', name: 'unknown-global', severity: 'caution', short: 'The pickle imports a class or function outside the weights-only allowlist; loading it imports and may call that code.' },
  { id: 'SW003', name: 'unresolved-operand', severity: 'dangerous', short: 'A global name, callable or argument is computed at load time and cannot be resolved to a constant.' },
  { id: 'SW004', name: 'malformed-pickle', severity: 'dangerous', short: 'The pickle stream cannot be fully parsed (truncated, invalid opcode, stack underflow, bad FRAME); everything up to the error was scanned.' },
  { id: 'SW005', name: 'extension-code', severity: 'dangerous', short: 'EXT1/EXT2/EXT4 opcodes import through the copyreg extension registry, which cannot be resolved statically.' },
  { id: 'SW006', name: 'global-state-change', severity: 'dangerous', short: 'BUILD or SETITEM applies state to an imported global object (monkey-patching at load time).' },
  { id: 'SW007', name: 'weights-only-blocked', severity: 'info', short: 'torch.load(weights_only=True) would refuse this file.' },
  { id: 'SW008', name: 'unvetted-call', severity: 'dangerous', short: 'The pickle calls a function or class with arguments it chose, and no vetted list (nor your allow-globals) says that callable only rebuilds data; it can run any code.' },
  { id: 'SW009', name: 'scan-limit', severity: 'dangerous', short: 'A scan limit stopped the reading before the end; the unread part could run code.' },
  { id: 'SW010', name: 'zip-header-mismatch', severity: 'caution', short: 'A zip member\'s local header disagrees with the central directory (name, sizes or method); readers may see different files.' },
  { id: 'SW011', name: 'zip-duplicate-member', severity: 'caution', short: 'Two zip members share a name; loaders may disagree on which one is read. All are scanned.' },
  { id: 'SW012', name: 'polyglot', severity: 'caution', short: 'The file is valid in more than one format (e.g. a pickle with a zip appended); other loaders may read another part.' },
  { id: 'SW013', name: 'unscannable-member', severity: 'caution', short: 'A container member could not be read (unsupported compression, out of bounds) and was not scanned.' },
  { id: 'SW014', name: 'trailing-data', severity: 'info', short: 'Bytes after the last structure the loader reads.' },
  { id: 'SW015', name: 'torchscript', severity: 'caution', short: 'TorchScript archive: it carries code that runs when the model is used; torch.load(weights_only=True) refuses it.' },
  { id: 'SW016', name: 'object-array', severity: 'info', short: 'NumPy object array: loading needs allow_pickle=True and unpickles the embedded data.' },
  { id: 'SW017', name: 'inconsistent-storage', severity: 'caution', short: 'A tensor refers to storage bytes that are missing or shorter than it needs.' },
  { id: 'SW018', name: 'zip-reading-disagreement', severity: 'caution', short: 'Zip readers find different archives in the file (torch.load\'s miniz, Python\'s zipfile that numpy.load uses, zip tools that check the comment length), or one of them cannot open it; every reading is scanned.' },
  { id: 'SW020', name: 'invalid-safetensors', severity: 'invalid', short: 'The safetensors header is invalid (size, JSON, dtype, shape, offsets or coverage).' },
  { id: 'SW021', name: 'invalid-gguf', severity: 'invalid', short: 'The GGUF header, metadata or tensor table is invalid or out of bounds.' },
  { id: 'SW022', name: 'gguf-template-injection', severity: 'dangerous', short: 'A GGUF chat template reaches Python internals (server-side template injection when rendered by jinja2).' },
  { id: 'SW023', name: 'invalid-numpy', severity: 'invalid', short: 'The .npy header is invalid or the data is shorter than the header declares.' },
  { id: 'SW024', name: 'unknown-format', severity: 'caution', short: 'The bytes match no model format Safe Weights knows; nothing could be checked.' },
  { id: 'SW025', name: 'decompression-limit', severity: 'dangerous', short: 'A compressed stream expands beyond the scan limit; the rest could not be checked.' },
];

export const MODEL_RULE_BY_ID: ReadonlyMap<string, ModelRule> = new Map(MODEL_RULES.map((r) => [r.id, r]));
