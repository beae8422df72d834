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
  // Keras (.keras zips and legacy HDF5), HDF5 and ONNX
  { id: 'SW026', name: 'archive-path-traversal', severity: 'dangerous', short: 'A tar member has an absolute or ".." path, or is a link leading outside: tarfile.extractall() without a filter writes outside the target folder (CVE-2024-5187).' },
  { id: 'SW030', name: 'keras-lambda-code', severity: 'dangerous', short: 'A Keras config holds serialized Python (a Lambda layer\'s marshal\'d bytecode or source) that runs when the model is loaded or called (CVE-2024-3660; legacy .h5 ignores safe_mode: CVE-2025-9905).' },
  { id: 'SW031', name: 'keras-foreign-object', severity: 'dangerous', short: 'A Keras config names a module, class or registered function outside Keras\' own namespaces: loading imports and runs it (CVE-2025-1550), unless your allow-globals vet it (then caution).' },
  { id: 'SW032', name: 'keras-unsafe-api', severity: 'dangerous', short: 'A Keras config calls a Keras API that is not a modeling function: enable_unsafe_deserialization (CVE-2025-9906), utils.get_file (CVE-2025-8747), load_model and the like.' },
  { id: 'SW033', name: 'keras-torch-module', severity: 'dangerous', short: 'A Keras TorchModuleWrapper carries a torch.save pickle that loading hands to torch.load(weights_only=False) (CVE-2025-49655); that pickle is scanned too.' },
  { id: 'SW034', name: 'invalid-keras', severity: 'invalid', short: 'The Keras archive or config cannot be read (config.json missing or not JSON, broken weights file).' },
  { id: 'SW035', name: 'invalid-hdf5', severity: 'invalid', short: 'The HDF5 structure (superblock, object headers, groups, attributes) is invalid or out of bounds.' },
  { id: 'SW036', name: 'invalid-onnx', severity: 'invalid', short: 'The ONNX protobuf cannot be parsed as a ModelProto (truncated, bad wire type, lengths out of bounds).' },
  { id: 'SW037', name: 'onnx-external-data-path', severity: 'dangerous', short: 'An ONNX tensor\'s external data location is absolute, contains "..", or resolves (through symlinks) outside the model\'s folder: loading reads that file (CVE-2022-25882, CVE-2024-27318, CVE-2026-27489).' },
  { id: 'SW038', name: 'onnx-missing-external-data', severity: 'caution', short: 'An ONNX tensor\'s external data file is missing or shorter than the offset and length it declares.' },
  { id: 'SW039', name: 'onnx-custom-domain', severity: 'caution', short: 'The ONNX model uses operators from a custom domain: running it needs a custom-op library (native code) registered for that domain.' },
  // Hugging Face repositories (a folder with config.json, or hf://org/repo@commit)
  { id: 'SW040', name: 'trust-remote-code', severity: 'caution', short: 'The repository ships Python (an auto_map in config.json / tokenizer_config.json, modeling_*.py files): from_pretrained(trust_remote_code=True) imports and runs those files.' },
  { id: 'SW041', name: 'chat-template-injection', severity: 'dangerous', short: 'A chat template in tokenizer_config.json, chat_template.json or chat_template.jinja reaches Python internals (server-side template injection when rendered by jinja2).' },
  { id: 'SW042', name: 'missing-shard', severity: 'caution', short: 'A sharded checkpoint\'s index (*.index.json) lists a shard file the repository does not have; that part of the model was not checked.' },
  { id: 'SW043', name: 'invalid-repository-file', severity: 'invalid', short: 'A Hugging Face repository file (config.json, tokenizer_config.json, *.index.json) is not the JSON object its loader expects.' },
];

export const MODEL_RULE_BY_ID: ReadonlyMap<string, ModelRule> = new Map(MODEL_RULES.map((r) => [r.id, r]));
