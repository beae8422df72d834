// Catalog of the Python/notebook code rules (SW1xx) and dependency-pin rules (SW2xx).
// Ids are stable; README documents each under the anchor `#swNNN`.
import type { Severity } from '../models/types';

export type CodeSeverity = Exclude<Severity, 'invalid'>;

export interface CodeRule {
  id: string;
  name: string;
  severity: CodeSeverity;   // default; a finding may carry another where its message says why
  short: string;
  full: string;
  helpAnchor: string;
}

function rule(id: string, name: string, severity: CodeSeverity, short: string, full: string): CodeRule {
  return { id, name, severity, short, full, helpAnchor: id.toLowerCase() };
}

export const CODE_RULES: readonly CodeRule[] = [
  rule('SW101', 'torch-load-unsafe', 'caution',
    'torch.load without weights_only=True unpickles arbitrary objects.',
    'torch.load(..., weights_only=False), a call with a pickle_module= (torch never defaults to weights_only then, ' +
    'on any version) and, before torch 2.6, a call without weights_only run the full pickle machinery: a crafted ' +
    'checkpoint executes code when loaded. Pass weights_only=True so only tensors and plain containers are ' +
    'accepted, or load .safetensors files instead.'),
  rule('SW102', 'pickle-load', 'dangerous',
    'pickle / _pickle / cPickle load, loads and Unpickler execute code chosen by whoever wrote the data.',
    'Unpickling calls any importable function named in the stream. Only unpickle data you produced and protect ' +
    'it from tampering; for models use safetensors, for data use JSON, numpy without pickle, or parquet.'),
  rule('SW103', 'dill-cloudpickle-load', 'dangerous',
    'dill / cloudpickle / jsonpickle deserialisation executes code from the data.',
    'dill and cloudpickle extend pickle (they can even carry function bodies); jsonpickle.decode rebuilds ' +
    'arbitrary objects from JSON. Treat the input as code: never load it from an untrusted source.'),
  rule('SW104', 'joblib-load', 'dangerous',
    'joblib.load unpickles the file: a crafted .joblib/.pkl runs code.',
    'joblib.load (also sklearn.externals.joblib) is pickle underneath. Load only files you created, check them ' +
    'with `safe-weights scan` first, or export the model to a format without code (skops, ONNX, safetensors).'),
  rule('SW105', 'numpy-allow-pickle', 'dangerous',
    'numpy.load(..., allow_pickle=True) unpickles object arrays.',
    'With allow_pickle=True a .npy/.npz object array is unpickled and can run code. Numeric arrays do not need ' +
    'it: drop the argument (the default is False since numpy 1.16.3).'),
  rule('SW106', 'pandas-read-pickle', 'dangerous',
    'pandas.read_pickle unpickles the file and can run code.',
    'read_pickle is pickle.load. Use parquet, feather or CSV for data exchange.'),
  rule('SW107', 'yaml-unsafe-load', 'dangerous',
    'yaml.load without a safe Loader (or unsafe_load / full_load) can construct arbitrary Python objects.',
    'PyYAML\'s Loader, UnsafeLoader and (before 5.4) FullLoader build any Python object the document names. ' +
    'Use yaml.safe_load or Loader=yaml.SafeLoader (CSafeLoader / BaseLoader are also safe).'),
  rule('SW108', 'marshal-load', 'caution',
    'marshal.load(s) reads code objects; the format is not meant for untrusted data.',
    'marshal is an internal format: crafted input can crash the interpreter and yields code objects that are ' +
    'easy to execute. Use JSON or another data-only format.'),
  rule('SW109', 'shelve-open', 'caution',
    'shelve.open stores values with pickle; reading a shelf from elsewhere unpickles it.',
    'A shelf is a pickle database: opening one you did not create can run code on access. Use sqlite3 or JSON.'),
  rule('SW110', 'torch-hub-load', 'caution',
    'torch.hub.load imports and runs hubconf.py from the repository.',
    'torch.hub.load downloads a GitHub repository and executes its hubconf.py. Pin a trusted repository and ' +
    'commit, and never pass trust_repo=True for repositories you have not reviewed.'),
  rule('SW111', 'trust-remote-code', 'dangerous',
    'trust_remote_code=True downloads and runs Python code from the model repository.',
    'With trust_remote_code=True, transformers (and datasets, sentence-transformers, ...) import modelling code ' +
    'shipped in the Hub repository. Use a built-in architecture, or review the code and pin `revision` to a commit.'),
  rule('SW112', 'use-safetensors-false', 'caution',
    'use_safetensors=False makes from_pretrained load pickle weights (pytorch_model.bin).',
    'Pickle checkpoints can run code when loaded. Leave use_safetensors unset or True.'),
  rule('SW113', 'keras-unsafe-deserialization', 'dangerous',
    'Keras safe_mode=False (or enable_unsafe_deserialization) lets a model file run Lambda-layer code.',
    'Keras refuses to deserialise Python lambdas in safe mode. Turning it off lets a .keras file run code on load.'),
  rule('SW114', 'torch-package-import', 'dangerous',
    'torch.package.PackageImporter imports code stored in the package.',
    'A torch.package archive carries Python source that the importer executes, and pickles that reference it.'),
  rule('SW115', 'torch-distributed-object', 'caution',
    'torch.distributed *_object collectives unpickle what other ranks send.',
    'broadcast_object_list, all_gather_object, gather_object, scatter_object_list and recv_object_list use pickle: ' +
    'a compromised rank or a spoofed peer can run code on every receiver. Exchange tensors instead.'),
  rule('SW116', 'ruamel-unsafe', 'dangerous',
    'ruamel.yaml YAML(typ="unsafe") constructs arbitrary Python objects.',
    'Use the default round-trip loader or typ="safe".'),
  rule('SW117', 'hf-unpinned-revision', 'caution',
    'A Hugging Face Hub download without revision= pinned to a commit: the repository can change under you.',
    'from_pretrained, hf_hub_download, snapshot_download and load_dataset fetch whatever the repository holds ' +
    'today; its owner (or whoever takes over the account) can replace weights or remote code later. Pin ' +
    'revision="<40-character commit hash>" (a branch or tag name can move too).'),
  rule('SW118', 'msgpack-numpy-pickle', 'dangerous',
    'msgpack-numpy decodes object arrays with pickle.loads: a crafted message runs code.',
    'msgpack_numpy.decode (as object_hook=, through msgpack_numpy.unpackb/loads/Unpacker, or after ' +
    'msgpack_numpy.patch()) unpickles the payload of object-dtype arrays. Exchange numeric arrays only, or ' +
    'pass allow_pickle=False where the installed msgpack-numpy supports it.'),
  rule('SW119', 'multiprocessing-pickle-ipc', 'caution',
    'multiprocessing connections and managers exchange pickles: the other end can run code here.',
    'Connection.recv() (from Pipe(), Listener().accept() or Client()) and managers at a network address ' +
    'unpickle what they receive. An authkey only helps if it stays secret; use recv_bytes() with a data-only format ' +
    'for anything that crosses a trust boundary.'),
  rule('SW121', 'torch-jit-load', 'caution',
    'torch.jit.load runs the TorchScript code stored in the archive.',
    'A TorchScript archive carries compiled code and constants that run when the module is loaded and called. ' +
    'Load only archives you built; ship weights as .safetensors.'),
  rule('SW122', 'keras-legacy-h5', 'caution',
    'Keras load_model of a legacy .h5/.hdf5 file: safe_mode does not apply, Lambda layers run their code.',
    'The HDF5 format predates safe_mode: a Lambda layer in the file is deserialised and runs even with ' +
    'safe_mode=True (CVE-2025-9905, Keras < 3.11.3 silently). Convert the model to the .keras format.'),
  rule('SW123', 'unsafe-load-fallback', 'dangerous',
    'A safe load (weights_only=True, numpy without pickles, a safe YAML loader) falls back to an unsafe load in its except handler.',
    'An attacker makes the safe load fail on purpose (any class outside the allowlist does) and the except ' +
    'handler then loads the same file with full unpickling. Remove the fallback: convert the file, or allowlist the ' +
    'classes it needs with torch.serialization.add_safe_globals.'),
  rule('SW124', 'torch-dangerous-safe-globals', 'dangerous',
    'torch.serialization.add_safe_globals / safe_globals given a callable that runs code or touches the system.',
    'The weights_only unpickler calls what its allowlist contains. Allowlisting os.system, eval, exec, ' +
    'subprocess.*, builtins.getattr, a nested loader, etc. turns weights_only=True back into arbitrary code execution.'),
  rule('SW120', 'torch-save-pickle', 'info',
    'torch.save writes a pickle: whoever loads the file must trust it. Prefer safetensors for weights.',
    'safetensors.torch.save_file stores tensors without code and loads faster (zero-copy). For a state_dict the ' +
    'conversion is a one-line change.'),
  rule('SW201', 'torch-vulnerable-pin', 'dangerous',
    'The torch version pinned here has torch.load(weights_only=True) bypasses (CVE-2025-32434, CVE-2026-24747): upgrade to >= 2.10.0.',
    'Before 2.6.0, weights_only=True could still be bypassed to run code (CVE-2025-32434); before 2.10.0 its ' +
    'unpickler could corrupt memory (SETITEM/SETITEMS on non-dicts, CVE-2026-24747). A pin that excludes the fixed ' +
    'release undoes the weights_only fixes in the code.'),
  rule('SW202', 'pyyaml-vulnerable-pin', 'dangerous',
    'The PyYAML version pinned here has code-execution bugs in its loaders: upgrade to >= 5.4.',
    'PyYAML < 5.4 FullLoader can run code (CVE-2020-14343, CVE-2020-1747); < 5.1 yaml.load is unsafe by default ' +
    '(CVE-2017-18342).'),
  rule('SW203', 'keras-vulnerable-pin', 'dangerous',
    'The Keras version pinned here has safe_mode bypasses: upgrade to >= 3.11.3.',
    'Keras 3.0-3.8 (CVE-2025-1550), before 3.11 (CVE-2025-8747, CVE-2025-9906), before 3.11.3 (.h5 files ignore ' +
    'safe_mode, CVE-2025-9905) and 3.11.0-3.11.2 (TorchModuleWrapper, CVE-2025-49655) can run code from a model file ' +
    'even with safe_mode=True.'),
  rule('SW204', 'ml-vulnerable-pin', 'caution',
    'The version pinned here has a known deserialisation, code-execution or path-traversal advisory.',
    'See the message for the advisory id and the first fixed version (offline table: numpy, joblib, transformers, ' +
    'torch, onnx external-data path traversal).'),
];

export const CODE_RULE_BY_ID: ReadonlyMap<string, CodeRule> = new Map(CODE_RULES.map((r) => [r.id, r]));
