// Shared shapes of the model-file engine: what a scan reports. The language server, the Model Inspector
// and the CLI all consume these; keep them JSON-serialisable.

export type Verdict = 'safe' | 'caution' | 'dangerous' | 'invalid';
export type Severity = 'info' | 'caution' | 'dangerous' | 'invalid';

/** Detected container/format, decided from bytes. */
export type ModelFormat =
  | 'pytorch-zip'
  | 'torchscript-zip'
  | 'pytorch-legacy'
  | 'pytorch-legacy-tar'
  | 'pickle'
  | 'joblib'
  | 'numpy-npy'
  | 'numpy-npz'
  | 'zip'
  | 'tar'
  | '7z'
  | 'safetensors'
  | 'gguf'
  | 'huggingface-repo'
  | 'keras'             // Keras v3 .keras zip (config.json, metadata.json, model.weights.h5)
  | 'keras-h5'          // legacy Keras HDF5 model (root attribute model_config)
  | 'hdf5'              // any other HDF5 file
  | 'onnx'
  | 'unknown';

export interface Finding {
  rule: string;          // stable id, e.g. SW001
  severity: Severity;
  message: string;
  global?: string;       // "module.name" for findings about an imported global
  offset?: number;       // byte offset in the file (or in the member, see `member`)
  member?: string;       // container member the offset refers to (zip member name, tar member, ...)
}

/** One global (class or function) a pickle imports. */
export interface GlobalRef {
  module: string;
  name: string;
  offset: number;        // byte offset of the opcode that imports it (within `member` if any)
  member?: string;
  called: boolean;       // reached by REDUCE/NEWOBJ/OBJ/INST
  severity: 'safe' | 'caution' | 'dangerous';
  reason: string;
  /** The vetted entry (vetted.json) or allow-globals pattern that made its call acceptable. */
  vettedBy?: string;
  /** Set when the user's allow-globals pattern (not the built-in list) allowed it. */
  allowedBy?: string;
}

export interface TensorInfo {
  name: string;          // dotted path in the loaded object, e.g. "model.fc.weight"
  dtype: string;         // torch-style dtype name, e.g. "float32", "bfloat16"
  shape: number[];
  bytes: number;         // bytes the tensor itself covers (numel * element size)
  storageKey?: string;   // e.g. zip member "archive/data/0", or a legacy storage key
  offset?: number;       // element offset into the storage / absolute byte offset (safetensors, gguf)
  layout?: string;       // a sparse tensor's layout ("sparse_coo", "sparse_csr"); bytes are then its indices' and values'
}

export interface PickleStreamReport {
  member?: string;       // where this pickle lives (zip member, tar member, "npy object data", ...)
  offset: number;        // start of the stream within the member/file
  length: number;        // bytes consumed
  protocol: number;      // highest PROTO seen (0 if none)
  opcodes: number;       // number of opcodes executed
  complete: boolean;     // reached STOP without error
  error?: string;
}

export interface WeightsOnlyAnswer {
  /** true / false; null when torch.load is not the loader for this format (safetensors, gguf, npy). */
  loads: boolean | null;
  reason: string;
}

export interface ModelReport {
  path: string;
  kind: 'model';
  format: ModelFormat;
  formatDetail?: string;       // e.g. "joblib (gzip)", "zip with 3 members", "GGUF v3"
  verdict: Verdict;
  summary: string;             // one plain sentence explaining the verdict
  weightsOnly: WeightsOnlyAnswer;
  findings: Finding[];
  /** Findings met but not listed (the report lists at most 2,000; the verdict counts them all). */
  findingsOmitted?: number;
  globals: GlobalRef[];
  /** Globals met but not listed (at most 10,000 rows). */
  globalsOmitted?: number;
  /** The inventory. For pickles it is built on first read (a getter; the scan keeps it as columns). */
  tensors: TensorInfo[];
  /** tensors.length, known without building the rows. */
  tensorCount: number;
  /** Some tensors were found but not listed: over ScanOptions.maxTensors, names longer than 64 KB, or all names
   *  together over a budget proportional to the pickle (a crafted pickle can reach one tensor a million times
   *  through a long key). tensorsOmitted counts them. */
  tensorsTruncated?: boolean;
  tensorsOmitted?: number;
  metadata: Record<string, string>;
  pickles: PickleStreamReport[];
  /** archive members (zip: the first 1,000 in directory order; memberCount says how many there are) */
  members?: { name: string; size: number; compressedSize: number; method: number; offset: number }[];
  memberCount?: number;
  size: number;
  sha256?: string;
  /** Set when the file was read over HTTP (safe-weights scan https://… | hf://…): what was fetched to decide. */
  remote?: RemoteFetch;
}

export interface RemoteFetch {
  /** The URL the bytes came from (query string left out). */
  url: string;
  /** Bytes fetched with Range requests (the file's size is `size`). */
  bytesFetched: number;
  requests: number;
  /** hf:// targets: the commit the bytes are from. */
  commit?: string;
}

export interface ScanOptions {
  /** Compute SHA-256 of the whole file (reads everything). Default: only when size <= hashLimit. */
  sha256?: boolean | 'auto';
  hashLimit?: number;
  /** Keep at most this many tensors in the inventory (default 1e6). */
  maxTensors?: number;
  /** The user's allow-globals patterns ("mypkg.models.*"): matching callables count as vetted (caution). */
  allowGlobals?: readonly string[];
  /** Cooperative cancellation. */
  signal?: AbortSignal;
  /** @internal Set on the scan of an archive member (a file inside a tar, 7z or zip): how deep it is nested, and
   *  the bytes every member of the outermost file may still be expanded to in memory (shared by all levels). */
  nesting?: { depth: number; budget: { bytes: number } };
}

/** A finding of the Python/notebook code rules (positions are 1-based, like the CLI prints them). */
export interface CodeFinding extends Finding {
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  cell?: number;         // 0-based notebook cell index (code cells and markdown cells both count)
}

export interface CodeReport {
  path: string;
  kind: 'code';
  format: 'python' | 'notebook' | 'requirements' | 'pyproject';
  verdict: 'safe' | 'caution' | 'dangerous';
  findings: CodeFinding[];
}

export type FileReport = ModelReport | CodeReport;
