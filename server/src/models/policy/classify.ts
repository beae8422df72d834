// What IMPORTING a global means for safety (what CALLING it means is judged in judge.ts). Three tiers:
//  safe      - exactly what torch.load(weights_only=True) allows in current torch, plus numpy's array
//              reconstruction set (which torch lets users allowlist and which only rebuilds arrays);
//  dangerous - the curated denylist: code execution, processes, files, network, imports, attribute walking,
//              nested loads; these are harmful even when only imported (stored in an object, called later);
//  caution   - everything else that can be imported.
// Components of a dotted name count where they really reach a module: `pathlib.os.system` reaches os, while
// `numpy.random._pickle` is numpy's own module (vetted.json ownModules).
import { OWN_MODULES } from './vetted';

export type GlobalTier = 'safe' | 'caution' | 'dangerous';
export interface GlobalVerdict { tier: GlobalTier; reason: string; weightsOnly: boolean }

const TORCH_DTYPES = [
  'float64', 'float32', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool', 'complex128',
  'complex64', 'complex32', 'qint8', 'quint8', 'qint32', 'quint4x2', 'quint2x4', 'float8_e5m2', 'float8_e4m3fn',
  'float8_e5m2fnuz', 'float8_e4m3fnuz', 'float8_e8m0fnu', 'float4_e2m1fn_x2', 'bits8', 'bits16', 'bits1x8',
  'bits2x4', 'bits4x2', 'uint16', 'uint32', 'uint64', 'uint1', 'uint2', 'uint3', 'uint4', 'uint5', 'uint6', 'uint7',
  'int1', 'int2', 'int3', 'int4', 'int5', 'int6', 'int7', 'float', 'double', 'half', 'long', 'int', 'short',
  'cfloat', 'cdouble', 'chalf',
];
const STORAGE_NAMES = [
  'DoubleStorage', 'FloatStorage', 'HalfStorage', 'BFloat16Storage', 'LongStorage', 'IntStorage', 'ShortStorage',
  'CharStorage', 'ByteStorage', 'BoolStorage', 'ComplexDoubleStorage', 'ComplexFloatStorage', 'QInt8Storage',
  'QUInt8Storage', 'QInt32Storage', 'QUInt4x2Storage', 'QUInt2x4Storage',
];
const TENSOR_CLASSES = [
  'DoubleTensor', 'FloatTensor', 'HalfTensor', 'BFloat16Tensor', 'LongTensor', 'IntTensor', 'ShortTensor',
  'CharTensor', 'ByteTensor', 'BoolTensor',
];
const REBUILD_FUNCTIONS = [
  '_rebuild_parameter', '_rebuild_parameter_with_state', '_rebuild_qtensor', '_rebuild_tensor', '_rebuild_tensor_v2',
  '_rebuild_tensor_v3', '_rebuild_sparse_tensor', '_rebuild_meta_tensor_no_storage', '_rebuild_nested_tensor',
  '_rebuild_wrapper_subclass', '_rebuild_device_tensor_from_numpy', '_rebuild_device_tensor_from_cpu_tensor',
];

/** torch's weights_only allowlist (torch/_weights_only_unpickler.py, _get_allowed_globals). */
export const WEIGHTS_ONLY_ALLOWED: ReadonlySet<string> = new Set([
  'collections.OrderedDict', 'collections.Counter', 'torch.nn.parameter.Parameter', 'torch.serialization._get_layout',
  'torch.Size', 'torch.Tensor', 'torch.device', '_codecs.encode', 'builtins.bytearray', 'builtins.set',
  'builtins.complex', 'torch._tensor._rebuild_from_type_v2',
  'torch.per_tensor_affine', 'torch.per_tensor_symmetric', 'torch.per_channel_affine', 'torch.per_channel_symmetric',
  'torch.per_channel_affine_float_qparams',
  ...TORCH_DTYPES.map((d) => `torch.${d}`),
  ...STORAGE_NAMES.map((s) => `torch.${s}`),
  ...STORAGE_NAMES.map((s) => `torch.cuda.${s}`),
  'torch.storage.TypedStorage', 'torch.storage.UntypedStorage', 'torch.UntypedStorage', 'torch.TypedStorage',
  ...TENSOR_CLASSES.map((t) => `torch.${t}`),
  ...TENSOR_CLASSES.map((t) => `torch.cuda.${t}`),
  ...REBUILD_FUNCTIONS.map((f) => `torch._utils.${f}`),
]);

/** numpy's array reconstruction set: rebuilds arrays, scalars and dtypes from constants only. */
const NUMPY_SAFE = new Set([
  'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct', 'numpy.ndarray', 'numpy.dtype',
  'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar', 'numpy.core.numeric._frombuffer',
  'numpy._core.numeric._frombuffer',
]);
/** joblib's array container: its data follows inline in the stream and is read (and scanned) as bytes. */
const JOBLIB_ARRAY = /^(sklearn\.externals\.)?joblib\.numpy_pickle\.NumpyArrayWrapper$/;
const NUMPY_DTYPE_CLASS = /^numpy\.dtypes\.[A-Za-z0-9]+DType$/;

// Modules whose every member is dangerous to import from a pickle.
const DANGEROUS_MODULES: Record<string, string> = {
  os: 'operating-system access (processes, files, environment)', posix: 'operating-system access', nt: 'operating-system access',
  subprocess: 'runs processes', _posixsubprocess: 'runs processes', pty: 'spawns processes', commands: 'runs shell commands',
  popen2: 'runs processes', multiprocessing: 'starts processes', _winapi: 'Windows process API',
  sys: 'interpreter internals (modules, audit hooks, exit)', importlib: 'imports modules', imp: 'imports modules',
  pkgutil: 'imports modules', zipimport: 'imports modules', runpy: 'runs Python modules and files',
  code: 'runs Python code', codeop: 'compiles Python code', pdb: 'debugger that runs code', bdb: 'debugger', trace: 'runs code',
  timeit: 'runs code strings', profile: 'runs code strings', cProfile: 'runs code strings', doctest: 'runs code from docstrings',
  ctypes: 'calls native code', _ctypes: 'calls native code', cffi: 'calls native code',
  socket: 'network access', _socket: 'network access', ssl: 'network access', asyncio: 'processes and network',
  http: 'network access', urllib: 'network access', urllib2: 'network access', urllib3: 'network access', httplib: 'network access',
  requests: 'network access', ftplib: 'network access', smtplib: 'network access', telnetlib: 'network access',
  poplib: 'network access', imaplib: 'network access', nntplib: 'network access', xmlrpc: 'network access',
  socketserver: 'network access', webbrowser: 'opens URLs and runs a browser', aiohttp: 'network access', httpx: 'network access',
  paramiko: 'remote shell access', fabric: 'remote shell access',
  shutil: 'copies and deletes files', tempfile: 'creates files', glob: 'lists files', fileinput: 'reads files',
  linecache: 'reads files', tarfile: 'extracts archives to disk', zipfile: 'extracts archives to disk', shelve: 'opens a pickle database',
  dbm: 'opens database files', sqlite3: 'opens database files', mmap: 'maps files into memory',
  pickle: 'nested unpickling', _pickle: 'nested unpickling', cPickle: 'nested unpickling', dill: 'nested unpickling',
  cloudpickle: 'nested unpickling', marshal: 'loads code objects', jsonpickle: 'nested unpickling', shelf: 'nested unpickling',
  types: 'builds functions and code objects', gc: 'reaches every live object', inspect: 'reaches frames and code',
  signal: 'changes process signal handling', resource: 'changes process limits', threading: 'starts threads',
  _thread: 'starts threads', __builtins__: 'Python builtins',
  operator: 'attribute and item access helpers (getattr/getitem walking)',
  venv: 'creates environments', ensurepip: 'installs packages', pip: 'installs packages', setuptools: 'builds and installs packages',
  distutils: 'builds and runs commands', site: 'changes import paths', sysconfig: 'interpreter internals',
  ptyprocess: 'spawns processes', pexpect: 'spawns processes', sh: 'runs shell commands', plumbum: 'runs shell commands',
  torch_xla: 'device runtime',
  _operator: 'attribute and item access helpers (getattr/getitem walking)', _imp: 'imports modules',
  _frozen_importlib: 'import machinery', _frozen_importlib_external: 'import machinery', _io: 'opens files',
  _sitebuiltins: 'interpreter exit helpers', atexit: 'registers code to run at exit', wsgiref: 'starts servers',
  smtpd: 'network access', asyncore: 'network access', asynchat: 'network access', pickletools: 'nested unpickling helpers',
};

// Members of otherwise-ordinary modules that run code, touch files, or load another pickle.
const DANGEROUS_MEMBERS: Record<string, string> = {
  'torch.load': 'nested torch.load (unpickles another file)', 'torch.serialization.load': 'nested torch.load',
  'torch.serialization._load': 'nested torch.load', 'torch.serialization._legacy_load': 'nested torch.load',
  'torch.storage._load_from_bytes': 'nested torch.load of embedded bytes', 'torch.jit.load': 'loads TorchScript code',
  'torch.jit._load_for_lite_interpreter': 'loads TorchScript code', 'torch.hub.load': 'downloads and runs repository code',
  'torch.hub.load_state_dict_from_url': 'downloads and unpickles a file', 'torch.hub.download_url_to_file': 'downloads files',
  'torch.hub._load_local': 'runs hubconf.py', 'torch.utils.cpp_extension.load': 'compiles and loads native code',
  'torch.utils.cpp_extension.load_inline': 'compiles and loads native code', 'torch.ops.load_library': 'loads a native library',
  'torch._C._jit_load': 'loads TorchScript', 'torch.package.PackageImporter': 'imports packaged code',
  'torch.fx.graph_module._forward_from_src': 'executes Python source', 'torch.fx.graph_module.reduce_graph_module': 'executes generated code',
  'torch.fx.graph_module.reduce_package_graph_module': 'executes generated code', 'torch._dynamo': 'compiler internals',
  'torch.distributed.rpc': 'remote calls', 'torch.utils.data.datapipes': 'file and network pipelines',
  'numpy.load': 'nested numpy.load (may unpickle)', 'numpy.lib.npyio.load': 'nested numpy.load',
  'numpy.fromfile': 'reads files', 'numpy.loadtxt': 'reads files', 'numpy.genfromtxt': 'reads files',
  'numpy.save': 'writes files', 'numpy.savez': 'writes files', 'numpy.savetxt': 'writes files', 'numpy.memmap': 'maps files',
  'numpy.testing._private.utils.runstring': 'executes code strings', 'numpy.f2py': 'compiles and runs code',
  'numpy.distutils': 'runs build commands', 'numpy.ctypeslib': 'loads native libraries', 'numpy.lib.format.read_array': 'nested unpickling',
  'joblib.load': 'nested joblib.load', 'joblib.numpy_pickle.load': 'nested joblib.load', 'joblib.dump': 'writes files',
  'sklearn.externals.joblib.load': 'nested joblib.load', 'pandas.read_pickle': 'nested unpickling',
  'pandas.io.pickle.read_pickle': 'nested unpickling', 'pandas.read_csv': 'reads files or URLs',
  'pandas.read_hdf': 'reads files', 'pandas.eval': 'evaluates expressions', 'pandas.core.computation.eval.eval': 'evaluates expressions',
  'yaml.load': 'may construct arbitrary objects', 'yaml.unsafe_load': 'constructs arbitrary objects', 'yaml.full_load': 'constructs objects',
  'yaml.load_all': 'may construct arbitrary objects', 'yaml.unsafe_load_all': 'constructs arbitrary objects',
  'keras.models.load_model': 'loads a model that may run Lambda code', 'tensorflow.keras.models.load_model': 'loads a model',
  'tensorflow.io.gfile': 'file access', 'tensorflow.io.write_file': 'writes files', 'tensorflow.io.read_file': 'reads files',
  'tensorflow.saved_model.load': 'loads graphs', 'tensorflow.py_function': 'runs Python code',
  'io.open': 'opens files', 'io.FileIO': 'opens files', 'io.open_code': 'opens files', '_io.open': 'opens files',
  '_io.FileIO': 'opens files', 'codecs.open': 'opens files', 'gzip.open': 'opens files', 'bz2.open': 'opens files',
  'lzma.open': 'opens files', 'json.load': 'reads files', 'configparser.ConfigParser.read': 'reads files',
  'copyreg.add_extension': 'rewires the EXT opcode registry', 'logging.config': 'imports and runs configured code',
  'string.Formatter': 'attribute walking through format strings',
  'jinja2.Template': 'renders templates (server-side template injection)', 'jinja2.Environment': 'renders templates',
  'mako.template.Template': 'renders templates', 'bdb.Bdb.run': 'runs code',
  'pydoc.locate': 'imports by name', 'pydoc.pipepager': 'runs shell commands', 'pydoc.tempfilepager': 'runs shell commands',
  'idlelib': 'runs code', 'lib2to3': 'runs code', 'dask.compute': 'runs task graphs', 'dask.delayed': 'runs task graphs',
  'keras.layers.Lambda': 'runs stored Python code', 'tensorflow.keras.layers.Lambda': 'runs stored Python code',
  'transformers.AutoModel.from_pretrained': 'downloads models', 'huggingface_hub.hf_hub_download': 'downloads files',
  'torch._inductor': 'compiles and loads generated code', 'torch.utils.collect_env': 'runs shell commands',
  'torch.utils.cpp_extension': 'compiles and loads native code', 'torch.distributed': 'network and remote calls',
  'torch.testing._internal': 'test helpers that run code', 'torch.utils.bottleneck': 'runs scripts',
  'torch.multiprocessing': 'starts processes', 'torch.cuda._utils': 'compiles kernels',
  'numpy.f2py.crackfortran': 'evaluates expressions', 'scipy.io.loadmat': 'reads files',
  'functools.reduce': 'calls a function over a sequence at load time', 'cProfile.run': 'runs code', 'profile.run': 'runs code', 'IPython.core.interactiveshell': 'runs code',
  'IPython.utils.process': 'runs shell commands', 'IPython.get_ipython': 'shell access', 'sklearn.utils._testing': 'runs code',
};

// Attribute and builtins names that are dangerous whatever module they are reached through.
const DANGEROUS_NAMES = new Set([
  'system', 'popen', 'popen2', 'popen3', 'popen4', 'exec', 'eval', 'execfile', 'compile', '__import__',
  'getattr', 'setattr', 'delattr', 'globals', 'locals', 'vars', 'breakpoint', 'input', 'raw_input', 'open',
  'spawn', 'spawnl', 'spawnle', 'spawnlp', 'spawnlpe', 'spawnv', 'spawnve', 'spawnvp', 'spawnvpe',
  'execl', 'execle', 'execlp', 'execlpe', 'execv', 'execve', 'execvp', 'execvpe', 'fork', 'forkpty', 'kill',
  'check_output', 'check_call', 'getoutput', 'getstatusoutput', 'run_path', 'run_module', 'import_module',
  'load_module', 'exec_module', 'load_source', 'urlopen', 'urlretrieve', 'attrgetter', 'methodcaller',
  'load_library', 'LoadLibrary', 'CDLL', 'PyDLL', 'WinDLL', 'dlopen', 'unsafe_load', 'load_inline',
  'apply', 'exit', 'quit', '_exit', 'abort', 'remove', 'unlink', 'rmtree', 'rmdir', 'removedirs', 'rename',
  'chmod', 'chown', 'symlink', 'write_text', 'write_bytes', 'putenv', 'setattribute',
]);

// Components that, anywhere inside a dotted path, mean the path walks into a dangerous module.
const DANGEROUS_COMPONENTS = new Set([
  'os', 'nt', 'posix', 'sys', 'subprocess', '_posixsubprocess', 'builtins', '__builtins__', '__builtin__',
  'importlib', 'runpy', 'ctypes', 'pty', 'commands', 'marshal', 'pickle', '_pickle', 'cPickle', 'shutil',
  'socket', 'webbrowser', 'pdb', 'code', 'codeop',
]);

// Builtins that are harmful even when only imported; any other builtin is caution to import (calling one
// still needs a vetted entry, judge.ts).
const DANGEROUS_BUILTINS: Record<string, string> = {
  eval: 'evaluates a Python expression string', exec: 'executes Python code', compile: 'compiles Python code',
  execfile: 'executes a Python file', __import__: 'imports any module', getattr: 'fetches any attribute of any object',
  setattr: 'changes attributes of any object', delattr: 'deletes attributes of any object', globals: 'reaches module globals',
  locals: 'reaches local variables', vars: 'reaches an object\'s attributes', open: 'opens files', file: 'opens files',
  input: 'reads the terminal', raw_input: 'reads the terminal', breakpoint: 'starts a debugger', exit: 'exits the process',
  quit: 'exits the process', help: 'runs the interactive help (a pager process)', reload: 're-imports modules',
  apply: 'calls a function with arguments', memoryview: 'raw memory views', __build_class__: 'builds classes from code',
};

// __torch__ is TorchScript's namespace for the classes compiled from an archive's code/ folder
const TOP_DUNDER_MODULES = new Set(['__main__', '__builtin__', '__future__', '__mp_main__', '__torch__']);

// Members of denylisted modules that only hold values (torch.save of a training script's config writes them)
const VALUE_TYPES_IN_DANGEROUS_MODULES = new Set(['types.SimpleNamespace', 'types.NoneType', 'types.EllipsisType', 'types.NotImplementedType']);

const cache = new Map<string, GlobalVerdict>();

export function classifyGlobal(module: string, name: string): GlobalVerdict {
  const key = `${module}\u0000${name}`;
  let v = cache.get(key);
  if (!v) { v = classify(module, name); if (cache.size < 100_000) cache.set(key, v); }
  return v;
}

function classify(module: string, name: string): GlobalVerdict {
  const full = `${module}.${name}`;
  if (WEIGHTS_ONLY_ALLOWED.has(full)) return { tier: 'safe', reason: 'in torch\'s weights_only allowlist', weightsOnly: true };
  if (NUMPY_SAFE.has(full) || NUMPY_DTYPE_CLASS.test(full)) {
    return { tier: 'safe', reason: 'numpy array reconstruction (torch needs add_safe_globals for it)', weightsOnly: false };
  }
  if (JOBLIB_ARRAY.test(full)) return { tier: 'safe', reason: 'joblib array container (raw array bytes follow inline)', weightsOnly: false };
  if (module === 'functools' && (name === 'partial' || name === 'cmp_to_key')) {
    return { tier: 'caution', reason: 'wraps another callable without calling it at load time', weightsOnly: false };
  }
  if (module === 'copyreg' && (name === '_reconstructor' || name === '__newobj__' || name === '__newobj_ex__')) {
    return { tier: 'caution', reason: 'rebuilds an instance of a class named elsewhere in the pickle', weightsOnly: false };
  }
  if (module === '' || name === '') return { tier: 'dangerous', reason: 'empty module or name', weightsOnly: false };
  const modParts = module.split('.');
  const nameParts = name.split('.');
  const parts = [...modParts, ...nameParts];
  // attribute walking: dunder components (obj.__class__.__subclasses__, f.__globals__, ...); a real module
  // such as __main__ or __future__ may stand first
  const dunder = parts.find((p, i) => /^__.*__$/.test(p) && !(i === 0 && TOP_DUNDER_MODULES.has(p)));
  if (dunder) return { tier: 'dangerous', reason: `walks attributes through ${dunder}`, weightsOnly: false };
  if (parts.some((p) => p === '' || /\s/.test(p))) return { tier: 'dangerous', reason: 'malformed dotted name', weightsOnly: false };
  // exact members, then every prefix of the full path (a module, a class of it, ...)
  for (let i = parts.length; i >= 1; i--) {
    const prefix = parts.slice(0, i).join('.');
    const why = DANGEROUS_MEMBERS[prefix];
    if (why) return { tier: 'dangerous', reason: why, weightsOnly: false };
  }
  if (modParts[0] === 'builtins' || modParts[0] === '__builtin__') {
    const why = DANGEROUS_BUILTINS[nameParts[0]];
    if (why) return { tier: 'dangerous', reason: `the builtin ${nameParts[0]} ${why}`, weightsOnly: false };
    if (modParts.length > 1) return { tier: 'dangerous', reason: `reaches inside the builtins module (${module})`, weightsOnly: false };
  }
  const topWhy = DANGEROUS_MODULES[modParts[0]];
  if (topWhy && VALUE_TYPES_IN_DANGEROUS_MODULES.has(full)) return { tier: 'caution', reason: 'plain value type', weightsOnly: false };
  if (topWhy) return { tier: 'dangerous', reason: `${modParts[0]}: ${topWhy}`, weightsOnly: false };
  // a dangerous module reached through an innocent one (torch.serialization.os.system), unless that dotted
  // path is the library's own module of the same name (numpy.random._pickle)
  const inner = parts.findIndex((p, i) => i > 0 && DANGEROUS_COMPONENTS.has(p) && !OWN_MODULES.has(parts.slice(0, i + 1).join('.')));
  if (inner > 0) return { tier: 'dangerous', reason: `reaches the ${parts[inner]} module through ${parts.slice(0, inner).join('.')}`, weightsOnly: false };
  const last = nameParts[nameParts.length - 1];
  if (modParts[0] === 'pandas' && /^read_/.test(last)) return { tier: 'dangerous', reason: `${last} reads files or URLs`, weightsOnly: false };
  if (DANGEROUS_NAMES.has(last) || /^_*(exec|spawn|popen|system|syscmd|get_command|run_?command|run_?shell)/.test(last)) {
    return { tier: 'dangerous', reason: `${last} runs code or touches files/processes`, weightsOnly: false };
  }
  for (let i = 1; i < nameParts.length; i++) {
    if (DANGEROUS_NAMES.has(nameParts[i - 1])) return { tier: 'dangerous', reason: `walks attributes of ${nameParts[i - 1]}`, weightsOnly: false };
  }
  return { tier: 'caution', reason: cautionReason(module, name), weightsOnly: false };
}

function cautionReason(module: string, name: string): string {
  if (module === 'builtins' || module === '__builtin__') return 'Python builtin outside torch\'s weights_only allowlist';
  if (module === '__main__') return 'class or function defined in the script that saved the file; loading needs that code and runs it';
  if (module.startsWith('torch.nn.modules') || module.startsWith('torch.nn.')) return 'PyTorch module class: the file pickles a whole model, not only weights';
  if (module.startsWith('torch.')) return 'torch class or function outside the weights_only allowlist';
  if (module.startsWith('numpy')) return 'numpy object outside the array reconstruction set';
  if (module.startsWith('sklearn')) return 'scikit-learn estimator class: its code runs when the object is rebuilt';
  if (/(^|\.)numpy_pickle$/.test(module)) return 'joblib array wrapper';
  if (/^[A-Z]/.test(name.split('.').pop() ?? '')) return 'class outside the allowlist: importing it runs its module, rebuilding it may run its code';
  return 'function outside the allowlist: it runs when the file is loaded';
}
