// Hugging Face repositories: a folder with a config.json (or hf://org/repo@commit) is one model, whatever the files
// it is split into. transformers' from_pretrained reads config.json, the tokenizer files and the weights, and:
//  - with trust_remote_code=True imports the Python files config.json's / tokenizer_config.json's `auto_map` names
//    (entries "modeling_x.Class", or "other/repo--modeling_x.Class" from another repository) and runs them;
//  - renders the chat template of tokenizer_config.json (or chat_template.jinja / chat_template.json) with jinja2
//    when apply_chat_template is called;
//  - loads a sharded checkpoint through its index (*.index.json: weight_map tensor -> shard file), shard by shard.
// This reads those files (JSON and text only; nothing is imported or rendered) and reports the repository as one
// model: its auto_map and Python files (SW040), risky chat templates (SW041, the checks GGUF templates get), each
// index with its shards and tensors, shards the index lists and the repository lacks (SW042). The weight files
// themselves are scanned as files of their own.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scanChatTemplate } from './chatTemplateRisk';
import { MODEL_RULE_BY_ID } from './rules';
import { FileSource, type ByteSource } from './source';
import type { Finding, ModelReport, Severity, TensorInfo, Verdict } from './types';
import { formatBytes } from './formatBytes';

/** The files of a repository, local or remote. Paths are relative, '/'-separated. */
export interface RepoView {
  /** How to name a file of the repository in a report (a local path, or hf://org/repo@commit/file). */
  display(rel: string): string;
  files: ReadonlyMap<string, number | undefined>;
  /** The file's text, or undefined when it is missing or larger than `max` bytes. */
  readText(rel: string, max: number): Promise<string | undefined>;
  /** Random access to a file (for safetensors shard headers); undefined if it cannot be opened. */
  open?(rel: string): ByteSource | undefined;
}

const JSON_MAX = 16 << 20;
const TEMPLATE_MAX = 4 << 20;
const LIST_MAX = 40;
/** auto_map holders transformers reads (model, tokenizer, processors). */
const AUTO_MAP_FILES = ['config.json', 'tokenizer_config.json', 'processor_config.json', 'preprocessor_config.json', 'feature_extractor_config.json', 'image_processor_config.json', 'video_preprocessor_config.json'];
const REMOTE_CODE_NAME = /^(?:modeling|configuration|tokenization|processing|image_processing|feature_extraction|video_processing|pipeline)_[\w.-]*\.py$|^custom_\w*\.py$/;
const WEIGHT_EXT = /\.(?:safetensors|bin|pt|pth|ckpt|h5|msgpack|gguf|onnx|keras|pkl|npz|npy)$/i;

/** Whether a file name is the config.json that makes its folder a Hugging Face repository (content decides too). */
export function isHfConfigName(file: string): boolean { return path.basename(file) === 'config.json'; }

/** Whether config.json's text is a transformers (or diffusers / sentence-transformers) model config. */
export function looksLikeHfConfig(text: string): boolean {
  let doc: unknown;
  try { doc = JSON.parse(text); } catch { return false; }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return false;
  const d = doc as Record<string, unknown>;
  return ['model_type', 'architectures', 'auto_map', 'transformers_version', '_name_or_path', '_class_name', '_diffusers_version'].some((k) => k in d);
}

/** A cheap check for discovery: the first bytes of a file named config.json. */
export function sniffHfConfig(file: string): boolean {
  if (!isHfConfigName(file)) return false;
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > JSON_MAX) return false;
    return looksLikeHfConfig(fs.readFileSync(file, 'utf8'));
  } catch { return false; }
}

interface Acc {
  findings: Finding[];
  metadata: Record<string, string>;
  tensors: TensorInfo[];
  worst?: Severity;
}
const RANK: Record<Severity, number> = { info: 0, invalid: 1, caution: 2, dangerous: 3 };

function add(acc: Acc, rule: string, message: string, member?: string, severity?: Severity): void {
  const sev = severity ?? MODEL_RULE_BY_ID.get(rule)?.severity ?? 'caution';
  if (sev !== 'info' && (!acc.worst || RANK[sev] > RANK[acc.worst])) acc.worst = sev;
  if (acc.findings.length < 2000) acc.findings.push({ rule, severity: sev, message, ...(member ? { member } : {}) });
}

function list(names: string[]): string {
  const shown = names.slice(0, LIST_MAX).join(', ');
  return names.length > LIST_MAX ? `${shown} and ${names.length - LIST_MAX} more` : shown;
}

async function readJson(view: RepoView, rel: string, acc: Acc, required: boolean): Promise<Record<string, unknown> | undefined> {
  if (!view.files.has(rel)) return undefined;
  const text = await view.readText(rel, JSON_MAX);
  if (text === undefined) {
    add(acc, 'SW043', `${rel} could not be read (missing, or larger than ${formatBytes(JSON_MAX)}).`, rel, required ? 'invalid' : 'caution');
    return undefined;
  }
  let doc: unknown;
  try { doc = JSON.parse(text); } catch (e) {
    add(acc, 'SW043', `${rel} is not JSON (${(e as Error).message}); transformers cannot load it.`, rel);
    return undefined;
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) { add(acc, 'SW043', `${rel} is JSON but not an object.`, rel); return undefined; }
  return doc as Record<string, unknown>;
}

/** "modeling_x.Cls" -> { file: "modeling_x.py" }; "org/repo--modeling_x.Cls" -> { repo: "org/repo", file }. */
function autoMapRef(ref: string): { repo?: string; file: string; cls: string } | undefined {
  let r = ref;
  let repo: string | undefined;
  const dd = r.indexOf('--');
  if (dd > 0) { repo = r.slice(0, dd); r = r.slice(dd + 2); }
  const dot = r.lastIndexOf('.');
  if (dot <= 0) return undefined;
  return { repo, file: `${r.slice(0, dot).replace(/\./g, '/')}.py`, cls: r.slice(dot + 1) };
}

function checkAutoMap(view: RepoView, rel: string, doc: Record<string, unknown>, acc: Acc, named: Set<string>): void {
  const am = doc.auto_map;
  if (am === undefined) return;
  if (!am || typeof am !== 'object' || Array.isArray(am)) { add(acc, 'SW043', `${rel}: auto_map is not an object.`, rel); return; }
  const dir = path.posix.dirname(rel) === '.' ? '' : `${path.posix.dirname(rel)}/`;
  const entries: string[] = [];
  const local = new Set<string>(), missing = new Set<string>(), foreign = new Set<string>();
  for (const [auto, v] of Object.entries(am as Record<string, unknown>)) {
    // tokenizers map to [slow, fast] (either may be null)
    const refs = (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
    for (const ref of refs) {
      const p = autoMapRef(ref);
      if (!p) continue;
      entries.push(`${auto} → ${ref}`);
      acc.metadata[`auto_map.${auto}`] = refs.join(', ');
      if (p.repo) { foreign.add(`${p.file} from ${p.repo}`); continue; }
      const f = dir + p.file;
      named.add(f);
      if (view.files.has(f)) local.add(f); else missing.add(f);
    }
  }
  if (entries.length === 0) return;
  const parts = [`${rel} has an auto_map (${list(entries)})`];
  parts.push(`from_pretrained(trust_remote_code=True) imports and runs ${list([...local, ...foreign])}`);
  if (foreign.size) parts.push(`code from another repository is fetched at load time (${list([...foreign])}), at whatever revision it has then`);
  if (missing.size) parts.push(`${list([...missing])} ${missing.size === 1 ? 'is' : 'are'} not in the repository`);
  add(acc, 'SW040', parts.join('; ') + '. Read that code before loading, or load without trust_remote_code.', rel);
}

function templatesOf(rel: string, value: unknown): { name: string; text: string }[] {
  if (typeof value === 'string') return [{ name: rel, text: value }];
  if (Array.isArray(value)) {
    const out: { name: string; text: string }[] = [];
    for (const t of value) {
      const o = t as { name?: unknown; template?: unknown };
      if (o && typeof o.template === 'string') out.push({ name: `${rel} (${typeof o.name === 'string' ? o.name : 'unnamed'})`, text: o.template });
    }
    return out;
  }
  if (value && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).filter(([, t]) => typeof t === 'string').map(([n, t]) => ({ name: `${rel} (${n})`, text: t as string }));
  }
  return [];
}

async function checkTemplates(view: RepoView, dir: string, acc: Acc, tokenizerConfig: Record<string, unknown> | undefined): Promise<void> {
  const found: { name: string; member: string; text: string }[] = [];
  const tc = `${dir}tokenizer_config.json`;
  if (tokenizerConfig && tokenizerConfig.chat_template !== undefined) {
    for (const t of templatesOf('tokenizer_config.json', tokenizerConfig.chat_template)) found.push({ ...t, member: tc });
  }
  const cj = `${dir}chat_template.json`;
  if (view.files.has(cj)) {
    const doc = await readJson(view, cj, acc, false);
    if (doc) for (const t of templatesOf('chat_template.json', doc.chat_template)) found.push({ ...t, member: cj });
  }
  for (const rel of view.files.keys()) {
    const inDir = rel.startsWith(dir) ? rel.slice(dir.length) : undefined;
    if (inDir === undefined || !(inDir === 'chat_template.jinja' || /^additional_chat_templates\/[^/]+\.jinja$/.test(inDir))) continue;
    const text = await view.readText(rel, TEMPLATE_MAX);
    if (text === undefined) { add(acc, 'SW041', `${rel} is larger than ${formatBytes(TEMPLATE_MAX)} and was not checked.`, rel, 'caution'); continue; }
    found.push({ name: inDir, member: rel, text });
  }
  if (found.length) acc.metadata['chat templates'] = list(found.map((t) => t.name));
  for (const t of found) {
    const risks = scanChatTemplate(t.text);
    if (risks.length === 0) continue;
    add(acc, 'SW041', `Chat template ${t.name}: ${risks.slice(0, 8).join(' ')}${risks.length > 8 ? ` (${risks.length - 8} more)` : ''} Rendering it with an unsandboxed jinja2 environment can run code.`, t.member);
  }
}

/** A safetensors shard's tensor table, from its header (names, dtypes, shapes); the shard's own scan validates it. */
function shardTensors(src: ByteSource, shard: string): Map<string, TensorInfo> | undefined {
  if (src.size < 8) return undefined;
  const b = src.read(0, 8);
  const n = Number(Buffer.from(b).readBigUInt64LE(0));
  if (!Number.isSafeInteger(n) || n <= 0 || n > 100_000_000 || 8 + n > src.size) return undefined;
  let doc: unknown;
  try { doc = JSON.parse(Buffer.from(src.read(8, n)).toString('utf8')); } catch { return undefined; }
  if (!doc || typeof doc !== 'object') return undefined;
  const out = new Map<string, TensorInfo>();
  const DT: Record<string, string> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32', I16: 'int16', I8: 'int8', U8: 'uint8', BOOL: 'bool', F8_E4M3: 'float8_e4m3fn', F8_E5M2: 'float8_e5m2', U16: 'uint16', U32: 'uint32', U64: 'uint64', C64: 'complex64' };
  for (const [name, v] of Object.entries(doc as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!t || typeof t.dtype !== 'string' || !Array.isArray(t.shape)) continue;
    const off = Array.isArray(t.data_offsets) ? t.data_offsets as number[] : [0, 0];
    out.set(name, { name, dtype: DT[t.dtype] ?? t.dtype.toLowerCase(), shape: t.shape as number[], bytes: (off[1] ?? 0) - (off[0] ?? 0), storageKey: shard, offset: 8 + n + (off[0] ?? 0) });
  }
  return out;
}

async function checkIndexes(view: RepoView, dir: string, acc: Acc, maxTensors: number): Promise<void> {
  const indexes = [...view.files.keys()].filter((f) => f.startsWith(dir) && !f.slice(dir.length).includes('/') && f.endsWith('.index.json')).sort();
  for (const rel of indexes) {
    const doc = await readJson(view, rel, acc, false);
    if (!doc) continue;
    const wm = doc.weight_map;
    if (!wm || typeof wm !== 'object' || Array.isArray(wm)) { add(acc, 'SW043', `${rel} has no weight_map object; transformers cannot load the sharded checkpoint.`, rel); continue; }
    const byShard = new Map<string, string[]>();
    let bad = 0;
    for (const [tensor, shard] of Object.entries(wm as Record<string, unknown>)) {
      if (typeof shard !== 'string' || !shard || shard.startsWith('/') || shard.split('/').includes('..')) { bad++; continue; }
      const list0 = byShard.get(shard);
      if (list0) list0.push(tensor); else byShard.set(shard, [tensor]);
    }
    if (bad) add(acc, 'SW043', `${rel}: ${bad} weight_map entr${bad === 1 ? 'y names' : 'ies name'} no shard file, an absolute path or a path with "..".`, rel);
    const present: string[] = [], missing: string[] = [];
    let sizes = 0, sized = true;
    for (const shard of byShard.keys()) {
      const f = dir + shard;
      if (view.files.has(f)) { present.push(shard); const s = view.files.get(f); if (s === undefined) sized = false; else sizes += s; } else missing.push(shard);
    }
    for (const shard of missing) {
      add(acc, 'SW042', `${rel} lists shard ${shard} (${plural(byShard.get(shard)!.length, "tensor")}) and the repository has no such file: that part of the model was not checked, and loading fails or uses whatever file of that name appears later.`, rel);
    }
    const total = (doc.metadata as { total_size?: unknown } | undefined)?.total_size;
    const tensorCount = [...byShard.values()].reduce((a, l) => a + l.length, 0);
    acc.metadata[`sharded ${rel}`] = `${byShard.size} shard${byShard.size === 1 ? '' : 's'} (${present.length} present${missing.length ? `, ${missing.length} missing` : ''}), ${tensorCount} tensors` +
      (typeof total === 'number' ? `, total_size ${formatBytes(total)}` : '') + (sized && present.length ? `, shard files ${formatBytes(sizes)}` : '');
    acc.metadata[`shards of ${rel}`] = list([...byShard.keys()].sort());
    // the model's tensors, with dtype and shape from each safetensors shard's header
    for (const [shard, names] of [...byShard.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      let table: Map<string, TensorInfo> | undefined;
      if (shard.endsWith('.safetensors') && view.files.has(dir + shard) && view.open) {
        const src = view.open(dir + shard);
        if (src) { try { table = shardTensors(src, shard); } catch { table = undefined; } finally { src.close(); } }
        const absent = table ? names.filter((n) => !table!.has(n)) : [];
        if (absent.length) add(acc, 'SW042', `${rel} places ${absent.length} tensor${absent.length === 1 ? '' : 's'} in ${shard} that its header does not have (${list(absent.slice(0, 5))}).`, rel);
      }
      for (const name of names) {
        if (acc.tensors.length >= maxTensors) break;
        acc.tensors.push(table?.get(name) ?? { name, dtype: 'unknown', shape: [], bytes: 0, storageKey: shard });
      }
    }
  }
}

/** The repository report of the config.json at `configRel` (its folder is the repository, subfolders included). */
export async function analyzeHfRepo(view: RepoView, configRel = 'config.json', opts: { maxTensors?: number; size?: number } = {}): Promise<ModelReport> {
  const acc: Acc = { findings: [], metadata: {}, tensors: [] };
  const dir = path.posix.dirname(configRel) === '.' ? '' : `${path.posix.dirname(configRel)}/`;
  const config = await readJson(view, configRel, acc, true);
  if (config) {
    for (const k of ['model_type', 'architectures', '_class_name', 'transformers_version', '_diffusers_version', 'torch_dtype']) {
      const v = config[k];
      if (typeof v === 'string') acc.metadata[k] = v;
      else if (Array.isArray(v)) acc.metadata[k] = v.filter((x) => typeof x === 'string').join(', ');
    }
  }
  const named = new Set<string>();
  let tokenizerConfig: Record<string, unknown> | undefined;
  for (const name of AUTO_MAP_FILES) {
    const rel = dir + name;
    const doc = rel === configRel ? config : await readJson(view, rel, acc, false);
    if (name === 'tokenizer_config.json') tokenizerConfig = doc;
    if (doc) checkAutoMap(view, rel, doc, acc, named);
  }
  // Python files the auto_map does not name: transformers does not run them itself, but named modules import them
  const py = [...view.files.keys()].filter((f) => f.startsWith(dir) && f.endsWith('.py') && !named.has(f)).sort();
  const modeling = py.filter((f) => REMOTE_CODE_NAME.test(path.posix.basename(f)));
  if (modeling.length) {
    add(acc, 'SW040', `The repository ships model code (${list(modeling)}): loading with trust_remote_code=True runs the files an auto_map names and whatever they import.`, modeling[0]);
  }
  const otherPy = py.filter((f) => !modeling.includes(f));
  if (otherPy.length) add(acc, 'SW040', `Python files in the repository (${list(otherPy)}) are not loaded by from_pretrained unless code the repository runs imports them.`, otherPy[0], 'info');
  if (py.length || named.size) acc.metadata['python files'] = list([...new Set([...named].filter((f) => view.files.has(f)).concat(py))].sort());
  await checkTemplates(view, dir, acc, tokenizerConfig);
  await checkIndexes(view, dir, acc, opts.maxTensors ?? 1_000_000);
  const weights = [...view.files.entries()].filter(([f]) => f.startsWith(dir) && WEIGHT_EXT.test(f)).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  if (weights.length) acc.metadata['weight files'] = list(weights.map(([f, s]) => `${f.slice(dir.length)}${s !== undefined ? ` (${formatBytes(s)})` : ''}`));

  const verdict: Verdict = acc.worst === 'dangerous' ? 'dangerous' : acc.worst === 'caution' ? 'caution' : acc.worst === 'invalid' ? 'invalid' : 'safe';
  const trc = acc.findings.some((f) => f.rule === 'SW040' && f.severity !== 'info');
  const summary = verdict === 'dangerous'
    ? 'A chat template of this repository reaches Python internals: rendering it can run code.'
    : verdict === 'invalid' ? 'A repository file transformers reads is not valid; the model cannot be loaded as it is.'
      : trc ? 'Loading this repository needs trust_remote_code=True, which runs the Python files it ships; read them first.'
        : verdict === 'caution' ? 'The repository is incomplete or unusual; see the findings.'
          : 'No remote code, no risky chat template, every shard present; each weight file is reported on its own.';
  const shardsNote = Object.keys(acc.metadata).filter((k) => k.startsWith('sharded ')).length;
  return {
    path: view.display(configRel), kind: 'model', format: 'huggingface-repo',
    formatDetail: `Hugging Face repository${acc.metadata.model_type ? ` (${acc.metadata.model_type})` : ''}${shardsNote ? `, ${shardsNote} sharded checkpoint${shardsNote === 1 ? '' : 's'}` : ''}, ${weights.length} weight file${weights.length === 1 ? '' : 's'}`,
    verdict, summary,
    weightsOnly: { loads: null, reason: 'a repository: each weight file is scanned (and answered for) on its own' },
    findings: acc.findings, globals: [], tensors: acc.tensors, tensorCount: acc.tensors.length, metadata: acc.metadata, pickles: [],
    size: opts.size ?? 0,
  };
}

const SKIP = new Set(['.git', 'node_modules', '.venv', '__pycache__', '.cache']);

/** The view of a local folder: its files up to `maxFiles`, three folder levels deep (diffusers' unet/, text_encoder/). */
export function localRepoView(dir: string, maxFiles = 20_000): RepoView {
  const files = new Map<string, number | undefined>();
  const walk = (abs: string, rel: string, depth: number): void => {
    let ents: fs.Dirent[];
    try { ents = fs.readdirSync(abs, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      if (files.size >= maxFiles) return;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const full = path.join(abs, e.name);
      let st: fs.Stats;
      try { st = fs.statSync(full); } catch { continue; }   // broken links are missing files
      if (st.isDirectory()) { if (depth < 3 && !SKIP.has(e.name)) walk(full, r, depth + 1); }
      else if (st.isFile()) files.set(r, st.size);
    }
  };
  walk(dir, '', 0);
  return {
    display: (rel) => path.join(dir, ...rel.split('/')),
    files,
    async readText(rel, max) {
      const full = path.join(dir, ...rel.split('/'));
      try { const st = fs.statSync(full); if (!st.isFile() || st.size > max) return undefined; return fs.readFileSync(full, 'utf8'); } catch { return undefined; }
    },
    open(rel) { try { return FileSource.open(path.join(dir, ...rel.split('/'))); } catch { return undefined; } },
  };
}

/** The repository report of a local config.json. */
export async function scanHfConfigFile(file: string, opts: { maxTensors?: number } = {}): Promise<ModelReport> {
  const dir = path.dirname(file);
  let size = 0;
  try { size = fs.statSync(file).size; } catch { /* reported as unreadable */ }
  const r = await analyzeHfRepo(localRepoView(dir), 'config.json', { ...opts, size });
  r.path = file;
  return r;
}

function plural(n: number, word: string): string { return `${n} ${word}${n === 1 ? '' : 's'}`; }
