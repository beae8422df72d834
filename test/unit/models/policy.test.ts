// The global policy on its own: known bypasses of other scanners must be dangerous, and the classes real
// checkpoints carry must not be (no crying wolf). Each row can fail independently.
import * as assert from 'node:assert/strict';
import { classifyGlobal } from '../../../server/src/models/policy/index';

const DANGEROUS: [string, string][] = [
  ['os', 'system'], ['posix', 'system'], ['nt', 'system'], ['subprocess', 'Popen'], ['builtins', 'eval'],
  ['builtins', 'exec'], ['builtins', 'getattr'], ['builtins', '__import__'], ['__builtin__', 'eval'],
  ['_operator', 'attrgetter'], ['_operator', 'getitem'], ['operator', 'methodcaller'], ['functools', 'reduce'],
  ['importlib', 'import_module'], ['_frozen_importlib', 'BuiltinImporter'], ['runpy', 'run_path'],
  ['pip._internal', 'main'], ['venv', 'create'], ['asyncio.unix_events', '_UnixSubprocessTransport._start'],
  ['torch._inductor.codecache', 'compile_file'], ['torch.utils.collect_env', 'run'], ['torch.serialization', 'os.system'],
  ['torch.serialization', 'load'], ['torch', 'load'], ['torch.storage', '_load_from_bytes'], ['numpy', 'load'],
  ['numpy.testing._private.utils', 'runstring'], ['numpy.f2py.crackfortran', 'getlincoef'], ['pandas', 'read_pickle'],
  ['pandas.io.parquet', 'read_parquet'], ['uuid', '_get_command_stdout'], ['platform', '_syscmd_ver'],
  ['collections', 'OrderedDict.__class__'], ['torch.nn.modules.module', 'Module.__getattribute__'],
  ['pathlib', 'Path.write_text'], ['webbrowser', 'open'], ['shutil', 'rmtree'], ['socket', 'create_connection'],
  ['atexit', 'register'], ['code', 'InteractiveInterpreter'], ['pty', 'spawn'], ['ctypes', 'CDLL'],
  ['pickle', 'loads'], ['_pickle', 'loads'], ['dill', 'loads'], ['marshal', 'loads'], ['yaml', 'unsafe_load'],
  ['copyreg', 'add_extension'], ['logging.config', 'listen'], ['jinja2', 'Template'], ['sys', 'modules'],
];
const SAFE: [string, string][] = [
  ['torch._utils', '_rebuild_tensor_v2'], ['torch._utils', '_rebuild_parameter'], ['torch', 'FloatStorage'],
  ['torch', 'BFloat16Storage'], ['collections', 'OrderedDict'], ['torch', 'Size'], ['torch', 'device'],
  ['torch', 'float16'], ['torch._tensor', '_rebuild_from_type_v2'], ['numpy.core.multiarray', '_reconstruct'],
  ['numpy', 'ndarray'], ['numpy', 'dtype'], ['numpy.core.multiarray', 'scalar'], ['numpy.dtypes', 'Float32DType'],
  ['_codecs', 'encode'], ['builtins', 'set'],
];
const CAUTION: [string, string][] = [
  ['torch.nn.modules.linear', 'Linear'], ['__main__', 'Net'], ['__main__', 'SystemConfig'], ['sklearn.linear_model._base', 'LinearRegression'],
  ['uuid', 'UUID'], ['pathlib', 'PosixPath'], ['argparse', 'Namespace'], ['collections', 'defaultdict'], ['builtins', 'dict'],
  ['builtins', 'ValueError'], ['functools', 'partial'], ['copyreg', '_reconstructor'], ['torch.optim.adam', 'Adam'],
  ['transformers.configuration_utils', 'PretrainedConfig'],
];

describe('global policy', () => {
  for (const [m, n] of DANGEROUS) it(`${m}.${n} is dangerous`, () => assert.equal(classifyGlobal(m, n).tier, 'dangerous', classifyGlobal(m, n).reason));
  for (const [m, n] of SAFE) it(`${m}.${n} is safe`, () => assert.equal(classifyGlobal(m, n).tier, 'safe', classifyGlobal(m, n).reason));
  for (const [m, n] of CAUTION) it(`${m}.${n} is caution (not dangerous, not safe)`, () => assert.equal(classifyGlobal(m, n).tier, 'caution', classifyGlobal(m, n).reason));
  it('only torch\'s own allowlist counts as weights_only-loadable (numpy needs add_safe_globals)', () => {
    assert.equal(classifyGlobal('torch._utils', '_rebuild_tensor_v2').weightsOnly, true);
    assert.equal(classifyGlobal('numpy.core.multiarray', '_reconstruct').weightsOnly, false);
  });
});
