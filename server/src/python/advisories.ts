// Offline table of ML-library advisories where a version pin re-opens a code-execution path the code rules close.
// `introduced`/`fixed` bound the affected range [introduced, fixed). Sources are the public advisory pages.

export interface Advisory {
  package: string;       // normalised PyPI name
  id: string;            // CVE id
  rule: string;          // SW2xx rule that reports it
  introduced?: string;
  fixed: string;
  summary: string;
  source: string;
  /** How the range was established when the advisory itself does not state it. */
  note?: string;
}

const nvd = (id: string): string => `https://nvd.nist.gov/vuln/detail/${id}`;

export const ADVISORIES: readonly Advisory[] = [
  { package: 'torch', id: 'CVE-2025-32434', rule: 'SW201', fixed: '2.6.0', summary: 'torch.load(weights_only=True) can still run code', source: 'https://github.com/pytorch/pytorch/security/advisories/GHSA-53q9-r3pm-6pq6' },
  { package: 'torch', id: 'CVE-2026-24747', rule: 'SW201', fixed: '2.10.0', summary: 'the weights_only unpickler corrupts memory (SETITEM/SETITEMS on non-dicts, storage size mismatch) and can run code', source: 'https://github.com/pytorch/pytorch/security/advisories/GHSA-63cw-57p8-fm3p' },
  { package: 'torch', id: 'CVE-2022-45907', rule: 'SW204', fixed: '1.13.1', summary: 'torch.jit.annotations.parse_type_line calls eval on its input', source: nvd('CVE-2022-45907') },
  { package: 'pyyaml', id: 'CVE-2020-14343', rule: 'SW202', fixed: '5.4', summary: 'FullLoader can run code (incomplete fix of CVE-2020-1747)', source: nvd('CVE-2020-14343') },
  { package: 'pyyaml', id: 'CVE-2020-1747', rule: 'SW202', fixed: '5.3.1', summary: 'FullLoader can run code via python/object/new', source: nvd('CVE-2020-1747') },
  { package: 'pyyaml', id: 'CVE-2017-18342', rule: 'SW202', fixed: '5.1', summary: 'yaml.load uses the unsafe Loader by default', source: nvd('CVE-2017-18342') },
  { package: 'keras', id: 'CVE-2025-1550', rule: 'SW203', introduced: '3.0.0', fixed: '3.9.0', summary: 'load_model(safe_mode=True) bypass through config.json', source: 'https://github.com/keras-team/keras/security/advisories/GHSA-48g7-3x6r-xfhp' },
  { package: 'keras', id: 'CVE-2025-8747', rule: 'SW203', introduced: '3.0.0', fixed: '3.11.0', summary: 'safe_mode bypass lets a .keras file run code', source: 'https://github.com/advisories/GHSA-c9rc-mg46-23w3' },
  // GHSA-36fq-jgmw-4r9c gives the range ">= 0, < 3.11.0" (no first affected version)
  { package: 'keras', id: 'CVE-2025-9906', rule: 'SW203', fixed: '3.11.0', summary: 'config.json calls enable_unsafe_deserialization() before a Lambda layer loads', source: 'https://github.com/advisories/GHSA-36fq-jgmw-4r9c' },
  { package: 'keras', id: 'CVE-2025-9905', rule: 'SW203', introduced: '3.0.0', fixed: '3.11.3', summary: 'load_model silently ignores safe_mode for .h5/.hdf5 files (Lambda layers run)', source: 'https://github.com/keras-team/keras/security/advisories/GHSA-36rr-ww3j-vrjv', note: 'first affected version 3.0.0 as given by the advisory-tracking entries that cite it (3.0.0-3.11.2)' },
  { package: 'keras', id: 'CVE-2025-49655', rule: 'SW203', introduced: '3.11.0', fixed: '3.11.3', summary: 'TorchModuleWrapper.from_config calls torch.load(weights_only=False) even in safe mode', source: nvd('CVE-2025-49655') },
  { package: 'numpy', id: 'CVE-2019-6446', rule: 'SW204', fixed: '1.16.3', summary: 'numpy.load allows pickles by default (allow_pickle=True)', source: nvd('CVE-2019-6446') },
  { package: 'joblib', id: 'CVE-2022-21797', rule: 'SW204', fixed: '1.2.0', summary: 'Parallel(pre_dispatch=...) evaluates a string with eval', source: nvd('CVE-2022-21797') },
  { package: 'transformers', id: 'CVE-2024-3568', rule: 'SW204', fixed: '4.38.0', summary: 'checkpoint loading unpickles untrusted data', source: nvd('CVE-2024-3568') },
  { package: 'onnx', id: 'CVE-2022-25882', rule: 'SW204', fixed: '1.13.0', summary: 'external_data paths outside the model directory are read (path traversal)', source: nvd('CVE-2022-25882') },
  { package: 'onnx', id: 'CVE-2024-27318', rule: 'SW204', fixed: '1.16.0', summary: 'external-data path sanitisation bypass reads any file (fix of CVE-2022-25882 incomplete)', source: 'https://github.com/advisories/GHSA-whh8-fjgc-qp73' },
  { package: 'onnx', id: 'CVE-2025-51480', rule: 'SW204', fixed: '1.21.0', summary: 'save_external_data writes outside the model directory (path traversal)', source: nvd('CVE-2025-51480'), note: 'no advisory states the fixed version; the fix (onnx/onnx#7627, merged 2026-02-05) first shipped in 1.21.0' },
  { package: 'onnx', id: 'CVE-2026-27489', rule: 'SW204', fixed: '1.21.0', summary: 'external data read through a symlink outside the model directory', source: 'https://github.com/advisories/GHSA-3r9x-f23j-gc73' },
  { package: 'onnx', id: 'CVE-2026-34446', rule: 'SW204', fixed: '1.21.0', summary: 'external data read through a hardlink (the symlink check misses it)', source: 'https://github.com/advisories/GHSA-cmw6-hcpp-c6jp' },
  { package: 'onnx', id: 'CVE-2026-34447', rule: 'SW204', fixed: '1.21.0', summary: 'external data loading follows symlinks outside the model directory', source: nvd('CVE-2026-34447') },
  { package: 'transformers', id: 'CVE-2023-6730', rule: 'SW204', fixed: '4.36.0', summary: 'RagRetriever unpickles an index from the Hub', source: nvd('CVE-2023-6730') },
];
