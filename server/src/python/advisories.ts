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
}

const nvd = (id: string): string => `https://nvd.nist.gov/vuln/detail/${id}`;

export const ADVISORIES: readonly Advisory[] = [
  { package: 'torch', id: 'CVE-2025-32434', rule: 'SW201', fixed: '2.6.0', summary: 'torch.load(weights_only=True) can still run code', source: 'https://github.com/pytorch/pytorch/security/advisories/GHSA-53q9-r3pm-6pq6' },
  { package: 'torch', id: 'CVE-2022-45907', rule: 'SW204', fixed: '1.13.1', summary: 'torch.jit.annotations.parse_type_line calls eval on its input', source: nvd('CVE-2022-45907') },
  { package: 'pyyaml', id: 'CVE-2020-14343', rule: 'SW202', fixed: '5.4', summary: 'FullLoader can run code (incomplete fix of CVE-2020-1747)', source: nvd('CVE-2020-14343') },
  { package: 'pyyaml', id: 'CVE-2020-1747', rule: 'SW202', fixed: '5.3.1', summary: 'FullLoader can run code via python/object/new', source: nvd('CVE-2020-1747') },
  { package: 'pyyaml', id: 'CVE-2017-18342', rule: 'SW202', fixed: '5.1', summary: 'yaml.load uses the unsafe Loader by default', source: nvd('CVE-2017-18342') },
  { package: 'keras', id: 'CVE-2025-1550', rule: 'SW203', introduced: '3.0.0', fixed: '3.9.0', summary: 'load_model(safe_mode=True) bypass through config.json', source: nvd('CVE-2025-1550') },
  { package: 'keras', id: 'CVE-2025-8747', rule: 'SW203', introduced: '3.0.0', fixed: '3.11.0', summary: 'safe_mode bypass lets a .keras file run code', source: nvd('CVE-2025-8747') },
  { package: 'numpy', id: 'CVE-2019-6446', rule: 'SW204', fixed: '1.16.3', summary: 'numpy.load allows pickles by default (allow_pickle=True)', source: nvd('CVE-2019-6446') },
  { package: 'joblib', id: 'CVE-2022-21797', rule: 'SW204', fixed: '1.2.0', summary: 'Parallel(pre_dispatch=...) evaluates a string with eval', source: nvd('CVE-2022-21797') },
  { package: 'transformers', id: 'CVE-2024-3568', rule: 'SW204', fixed: '4.38.0', summary: 'checkpoint loading unpickles untrusted data', source: nvd('CVE-2024-3568') },
  { package: 'transformers', id: 'CVE-2023-6730', rule: 'SW204', fixed: '4.36.0', summary: 'RagRetriever unpickles an index from the Hub', source: nvd('CVE-2023-6730') },
];
