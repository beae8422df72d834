// Keras models: the v3 `.keras` zip (config.json, metadata.json, model.weights.h5 or .npz, assets/) and the legacy
// HDF5 `.h5` (model_config / training_config attributes of the root group, weights under model_weights/).
//
// The config is walked the way Keras' deserializer walks it (keras.src.saving.serialization_lib and the Lambda
// layer's from_config; Keras 2's legacy deserialize for .h5): every {"module", "class_name", "config",
// "registered_name"} object is resolved to what loading would import or call, and judged:
//   - a Lambda's serialized function ("__lambda__" {"code"|"value"} in Keras 3; [b64, defaults, closure] with
//     function_type "lambda" in Keras 2) is Python bytecode that runs: SW030, with the names and constants of the
//     marshal'd code object (pyMarshal.ts). Legacy .h5 files run it whatever safe_mode says (CVE-2025-9905);
//   - a module outside Keras' own packages (CVE-2025-1550: Keras < 3.9 imported any module the config named) is
//     SW031: dangerous, or caution when the user's allow-globals vet it (the pickle policy's AllowList; the
//     curated denylist always wins);
//   - a Keras API that is not a modeling function (Keras' own NON_MODELING_APIS: enable_unsafe_deserialization
//     CVE-2025-9906, utils.get_file CVE-2025-8747, load_model, ...) is SW032;
//   - TorchModuleWrapper's "module" is base64 torch.save output that loading hands to torch.load (CVE-2025-49655):
//     SW033, and those bytes are scanned by the pickle engine as a member of their own.
// Nothing is imported, unmarshalled into a live object or evaluated; JSON is parsed by JSON.parse with a size cap.
import { BytesSource, SliceSource, type ByteSource } from '../source';
import { classifyGlobal, AllowList, NO_USER_ALLOW } from '../policy';
import type { TensorInfo } from '../types';
import { add, worsen, type ScanContext } from './context';
import { archiveLimits, nesting, scanArchiveMember } from './archives';
import { inspectHdf5, hdf5Tensors, rootAttribute, type Hdf5Info } from './hdf5';
import { summarizeCode, decodeKerasCode } from './pyMarshal';
import { readMember, type ZipDirectory, type ZipEntry } from './zipDirectory';

/** config.json / model_config larger than this is not parsed (a real one is a few MB). */
export const KERAS_CONFIG_LIMIT = 64 << 20;
const FINDINGS_PER_CONFIG = 500;
const MAX_NODES = 2_000_000;

/** Packages Keras' deserializer imports from itself (serialization_lib: keras, keras_hub, keras_cv, keras_nlp). */
const KERAS_PACKAGES = new Set(['keras', 'keras_hub', 'keras_cv', 'keras_nlp', 'tf_keras']);
/** The last component of Keras' NON_MODELING_APIS (serialization_lib.py): functions a config must never reach. */
const NON_MODELING = new Set(['clear_session', 'enable_unsafe_deserialization', 'load_model', 'model_from_json', 'save_model',
  'image_dataset_from_directory', 'load_img', 'save_img', 'text_dataset_from_directory', 'deserialize_keras_object',
  'load_weights', 'register_keras_serializable', 'save_weights', 'serialize_keras_object', 'audio_dataset_from_directory',
  'get_file', 'timeseries_dataset_from_array', 'model_from_yaml', 'disable_interactive_logging', 'set_random_seed']);
const CVE_OF: Record<string, string> = { enable_unsafe_deserialization: 'CVE-2025-9906', get_file: 'CVE-2025-8747', load_model: 'CVE-2025-9906' };
/** class_name values serialization_lib handles itself (no import). */
const SPECIAL = new Set(['__keras_tensor__', '__tensor__', '__numpy__', '__bytes__', '__ellipsis__', '__slice__', '__typespec__', '__lambda__']);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

function isObj(v: unknown): v is Obj { return !!v && typeof v === 'object' && !Array.isArray(v); }
function str(v: unknown): string | undefined { return typeof v === 'string' ? v : undefined; }

export interface KerasConfigSummary { model?: string; layers: number; layerClasses: string[] }

/** Walks a parsed Keras config and reports what loading it would run. `where` names it ("config.json"). */
export async function checkKerasConfig(ctx: ScanContext, config: unknown, where: string, legacy: boolean): Promise<KerasConfigSummary> {
  const allow = ctx.opts.allowGlobals?.length ? new AllowList(ctx.opts.allowGlobals) : NO_USER_ALLOW;
  let shown = 0;
  const report = (rule: string, message: string, severity?: 'dangerous' | 'caution', global?: string) => {
    if (shown++ >= FINDINGS_PER_CONFIG) { ctx.findingsOmitted++; worsen(ctx, severity ?? 'dangerous'); return; }
    add(ctx, rule, message, { member: where, ...(severity ? { severity } : {}), ...(global ? { global } : {}) });
  };
  const torchPayloads: { layer: string; b64: string }[] = [];
  const summary: KerasConfigSummary = { layers: 0, layerClasses: [] };
  if (isObj(config)) {
    summary.model = str(config.class_name);
    const inner = isObj(config.config) ? config.config : undefined;
    const layers = inner && Array.isArray(inner.layers) ? inner.layers : [];
    summary.layers = layers.length;
    const classes = new Set<string>();
    for (const l of layers) if (isObj(l) && typeof l.class_name === 'string' && classes.size < 50) classes.add(l.class_name);
    summary.layerClasses = [...classes];
  }

  const lambdaCode = (layer: string, code: unknown, field: string) => {
    const text = typeof code === 'string' ? code : Array.isArray(code) && typeof code[0] === 'string' ? code[0] : undefined;
    const bytes = text !== undefined ? decodeKerasCode(text) : undefined;
    const s = bytes ? summarizeCode(bytes) : undefined;
    const how = legacy
      ? 'legacy .h5 loading runs it whatever safe_mode says (CVE-2025-9905)'
      : 'keras.saving.load_model(safe_mode=False), enable_unsafe_deserialization() or an older Keras runs it (CVE-2024-3660)';
    const what = s
      ? `marshal'd Python bytecode (CPython ${s.layout} layout) of ${s.name || 'a function'}${s.filename ? ` from "${s.filename}"` : ''}; names: ${s.names.length ? s.names.join(', ') : '(none)'}; constants: ${s.consts.length ? s.consts.map((c) => JSON.stringify(c)).join(', ') : '(none)'}${s.nested.length ? `; nested code: ${s.nested.join(', ')}` : ''}`
      : `serialized Python code that could not be decoded${text !== undefined ? ` (${text.length} characters)` : ''}`;
    report('SW030', `Lambda layer "${layer}" (${field}) holds ${what}. It runs when the model is loaded or called: ${how}.`);
  };

  const resolve = (module: string | undefined, rawName: string, kind: string, layer: string) => {
    // a registered name is "package>name": the object is `name` of that package
    const name = rawName.includes('>') ? rawName.slice(rawName.lastIndexOf('>') + 1) : rawName;
    if (!name) return;
    if (module === undefined || module === '' || module === '__main__') return;   // resolved among registered objects only
    const pkg = module.split('.')[0];
    // tf.keras writes its own classes under tensorflow.keras / tensorflow.python.keras
    if (KERAS_PACKAGES.has(pkg) || /^tensorflow(\.python)?\.keras(\.|$)/.test(module)) {
      if (NON_MODELING.has(name)) {
        const cve = CVE_OF[name];
        report('SW032', `${kind} "${layer}" resolves to ${module}.${name}, a Keras function that is not a modeling API${cve ? ` (${cve})` : ''}: loading calls it with arguments the file chose.`, undefined, `${module}.${name}`);
      }
      return;
    }
    const full = `${module}.${name}`;
    const v = classifyGlobal(module, name);
    if (module === 'builtins' && v.tier !== 'dangerous') return;   // Keras looks builtins up among its own functions
    if (v.tier === 'dangerous') {
      report('SW031', `${kind} "${layer}" resolves to ${full} outside Keras (${v.reason}): loading imports and calls it${legacy ? '' : ' (CVE-2025-1550)'}.`, 'dangerous', full);
      return;
    }
    const ok = allow.match(full);
    if (ok) report('SW031', `${kind} "${layer}" resolves to ${full} outside Keras; allowed by your allow-globals entry "${ok}".`, 'caution', full);
    else report('SW031', `${kind} "${layer}" resolves to ${full}, outside Keras' own packages: loading imports that module and calls it${legacy ? '' : ' (CVE-2025-1550)'}; no allow-globals entry vets it.`, 'dangerous', full);
  };

  // iterative walk over every object of the config
  const stack: { v: unknown; layer: string }[] = [{ v: config, layer: '' }];
  let nodes = 0;
  while (stack.length) {
    const { v, layer: parentLayer } = stack.pop()!;
    if (++nodes > MAX_NODES) { add(ctx, 'SW009', `The Keras config in ${where} has more than ${MAX_NODES} values; the rest was not checked.`, { member: where, severity: 'dangerous' }); break; }
    if (Array.isArray(v)) { for (let i = v.length - 1; i >= 0; i--) if (v[i] && typeof v[i] === 'object') stack.push({ v: v[i], layer: parentLayer }); continue; }
    if (!isObj(v)) continue;
    const cls = str(v.class_name);
    const cfg = v.config;
    const layer = (isObj(cfg) && str(cfg.name)) || str(v.name) || parentLayer || cls || '?';
    if (cls !== undefined) {
      if (cls === '__lambda__') {
        const c = isObj(cfg) ? (cfg.code ?? cfg.value) : cfg;
        lambdaCode(parentLayer || '?', c, '__lambda__');
      } else if (!SPECIAL.has(cls)) {
        const module = v.module === null ? undefined : str(v.module);
        if (cls === 'function') resolve(module, str(cfg) ?? str(v.registered_name) ?? '', 'Function of', parentLayer || layer);
        else resolve(module, cls, 'Class of', layer);
        const reg = str(v.registered_name);
        // "package>Name": a registered custom object (Keras only finds it when that package registered it)
        if (reg && reg.includes('>') && module === undefined) {
          const [p, n] = reg.split('>');
          if (p && n && !KERAS_PACKAGES.has(p.split('.')[0])) resolve(p, n, 'Registered object of', layer);
        }
      }
      if (cls === 'Lambda' && isObj(cfg)) {
        // Keras 2 (legacy .h5): function_type "lambda" -> func_dump tuple; "function" -> a name in `module`
        for (const [field, typeKey, modKey] of [['function', 'function_type', 'module'], ['output_shape', 'output_shape_type', 'output_shape_module']] as const) {
          const f = cfg[field];
          const t = str(cfg[typeKey]);
          if (Array.isArray(f) && typeof f[0] === 'string' && (t === 'lambda' || t === undefined)) lambdaCode(layer, f, field);
          else if (typeof f === 'string' && t === 'lambda') lambdaCode(layer, f, field);
          else if (typeof f === 'string' && t === 'function') resolve(str(cfg[modKey]), f, 'Function of Lambda', layer);
        }
      }
      if (cls === 'TorchModuleWrapper' && isObj(cfg) && typeof cfg.module === 'string') torchPayloads.push({ layer, b64: cfg.module });
    }
    for (const k of Object.keys(v)) { const x = v[k]; if (x && typeof x === 'object') stack.push({ v: x, layer: cls === 'Lambda' ? layer : (isObj(x) || Array.isArray(x)) && k === 'layers' ? '' : layer }); }
  }
  for (const t of torchPayloads) {
    const bytes = Buffer.from(t.b64.replace(/\s+/g, ''), 'base64');
    report('SW033', `TorchModuleWrapper "${t.layer}" carries ${bytes.length} bytes of torch.save output that loading hands to torch.load(weights_only=False) (CVE-2025-49655); Keras 3.11.3+ refuses it in safe mode. Its pickle is scanned below.`);
    if (bytes.length) await scanArchiveMember(ctx, `${where}: TorchModuleWrapper "${t.layer}"`, new BytesSource(bytes));
  }
  return summary;
}

/** Parses config JSON text (bounded), reporting what cannot be read. */
function parseConfig(ctx: ScanContext, text: string, where: string): unknown {
  try { return JSON.parse(text); } catch (e) {
    add(ctx, 'SW034', `${where} is not valid JSON (${(e as Error).message}); Keras cannot load this model.`, { member: where, severity: 'invalid' });
    return undefined;
  }
}

function summaryMetadata(ctx: ScanContext, s: KerasConfigSummary): void {
  const md = ctx.report.metadata;
  if (s.model) md['keras.model_class'] = s.model;
  if (s.layers) md['keras.layers'] = String(s.layers);
  if (s.layerClasses.length) md['keras.layer_classes'] = s.layerClasses.join(', ');
}

// ---- .keras (zip) ----------------------------------------------------------------------------------------------

const TOP = new Set(['config.json', 'metadata.json', 'model.weights.h5', 'model.weights.npz']);

/** A zip Keras' load_model reads as a v3 model: config.json at the top with metadata.json or a weights file. */
export function isKerasArchive(dir: ZipDirectory): boolean {
  let config = false, other = false;
  for (let i = 0; i < dir.count && i < 100_000; i++) {
    const n = dir.name(i);
    if (!TOP.has(n)) continue;
    if (n === 'config.json') config = true; else other = true;
  }
  return config && other;
}

/** Members the Keras reader owns: the zip member loop does not sniff them as pickles. */
export function isKerasOwnMember(name: string): boolean { return name === 'config.json' || name === 'metadata.json' || name === 'model.weights.h5'; }

/** Reads config.json, metadata.json and model.weights.h5 of a .keras archive (members in `dir`, offsets in `src`). */
export async function readKerasArchive(ctx: ScanContext, src: ByteSource, dir: ZipDirectory, secondary = false): Promise<void> {
  // a second reading of the archive (another zip reader's directory) is checked the same way: Keras reads it with
  // Python's zipfile
  void secondary;
  const rep = ctx.report;
  const find = (name: string): ZipEntry | undefined => {
    for (let i = 0; i < dir.count; i++) if (dir.name(i) === name && dir.dataOffset(i) >= 0) return dir.entry(i);
    return undefined;
  };
  const text = async (e: ZipEntry, what: string): Promise<string | undefined> => {
    if (e.uncompressedSize > KERAS_CONFIG_LIMIT) {
      add(ctx, 'SW009', `${what} declares ${e.uncompressedSize} bytes, more than the ${KERAS_CONFIG_LIMIT} bytes read; it was not checked.`, { member: what, severity: 'dangerous' });
      return undefined;
    }
    try { return Buffer.from(await readMember(src, e, KERAS_CONFIG_LIMIT)).toString('utf8'); } catch (err) {
      add(ctx, 'SW034', `${what} cannot be read: ${(err as Error).message}.`, { member: what, severity: 'invalid' });
      return undefined;
    }
  };
  const meta = find('metadata.json');
  if (meta) {
    const t = await text(meta, 'metadata.json');
    try {
      const m = t === undefined ? undefined : JSON.parse(t);
      if (isObj(m)) for (const k of ['keras_version', 'date_saved']) if (typeof m[k] === 'string') rep.metadata[`keras.${k}`] = m[k] as string;
    } catch { add(ctx, 'SW034', 'metadata.json is not valid JSON.', { member: 'metadata.json', severity: 'info' }); }
  }
  const cfgEntry = find('config.json');
  if (!cfgEntry) add(ctx, 'SW034', 'The archive has no readable config.json; Keras cannot load it.', { severity: 'invalid' });
  else {
    const t = await text(cfgEntry, 'config.json');
    const cfg = t === undefined ? undefined : parseConfig(ctx, t, 'config.json');
    if (cfg !== undefined) summaryMetadata(ctx, await checkKerasConfig(ctx, cfg, 'config.json', false));
  }
  const w = find('model.weights.h5');
  if (w) {
    let wsrc: ByteSource | undefined;
    if (w.method === 0) wsrc = new SliceSource(src, w.dataOffset, Math.max(0, Math.min(w.compressedSize, src.size - w.dataOffset)));
    else {
      const n = nesting(ctx);
      const limit = Math.min(archiveLimits.memberBytes, n.budget.bytes);
      if (w.uncompressedSize > limit) add(ctx, 'SW013', `model.weights.h5 is compressed and declares ${w.uncompressedSize} bytes, more than the ${limit} bytes decompressed in memory: its tensor inventory was not read (an HDF5 weights file holds no code Keras runs).`, { member: 'model.weights.h5', severity: 'info' });
      else {
        try { const data = await readMember(src, w, limit); n.budget.bytes -= data.length; wsrc = new BytesSource(data); } catch (err) {
          add(ctx, 'SW034', `model.weights.h5 cannot be decompressed: ${(err as Error).message}.`, { member: 'model.weights.h5', severity: 'caution' });
        }
      }
    }
    if (wsrc) {
      const info = inspectHdf5(wsrc, { maxTensors: ctx.opts.maxTensors });
      hdf5Findings(ctx, info, 'model.weights.h5', true);
      // offsets are within the member (stored: add its data offset for a file offset)
      const rows = hdf5Tensors(info);
      if (w.method === 0) for (const r of rows) if (r.offset !== undefined) r.offset += w.dataOffset;
      for (const r of rows) r.storageKey = 'model.weights.h5';
      pushTensors(ctx, rows);
    }
  }
}

function pushTensors(ctx: ScanContext, rows: TensorInfo[]): void {
  const room = Math.max(0, (ctx.opts.maxTensors ?? 1_000_000) - ctx.report.tensors.length);
  if (rows.length > room) { ctx.report.tensorsTruncated = true; ctx.report.tensorsOmitted = (ctx.report.tensorsOmitted ?? 0) + rows.length - room; }
  for (const r of rows.slice(0, room)) ctx.report.tensors.push(r);
}

function hdf5Findings(ctx: ScanContext, info: Hdf5Info, member: string | undefined, inKeras: boolean): void {
  for (const e of info.errors) add(ctx, inKeras ? 'SW034' : 'SW035', `${member ? `${member}: ` : ''}${e}.`, { ...(member ? { member } : {}), severity: inKeras ? 'caution' : 'invalid' });
  // the root's attributes hold model_config (what Keras runs): unread there is caution; elsewhere only the inventory
  // and nested attributes are missing (info)
  for (const u of info.unread) {
    const root = u.startsWith('attributes of "/"');
    add(ctx, 'SW035', `${member ? `${member}: ` : ''}${u} was not read; ${root ? 'a model_config there is not checked' : 'the datasets and attributes under it are not listed'}.`, { ...(member ? { member } : {}), severity: root ? 'caution' : 'info' });
  }
  if (info.truncated) add(ctx, 'SW009', `${member ? `${member}: ` : ''}the HDF5 file has more objects than are read (${info.datasets.length} datasets listed); the rest was not checked.`, { ...(member ? { member } : {}), severity: inKeras ? 'caution' : 'dangerous' });
}

// ---- legacy .h5 (and any HDF5 file) ----------------------------------------------------------------------------

/** Reads an HDF5 file: a Keras legacy model when its root has model_config, else a plain HDF5 file (its inventory). */
export async function readHdf5(ctx: ScanContext, src: ByteSource): Promise<void> {
  const rep = ctx.report;
  const info = inspectHdf5(src, { maxTensors: ctx.opts.maxTensors });
  const modelConfig = rootAttribute(info, 'model_config');
  rep.format = modelConfig !== undefined ? 'keras-h5' : 'hdf5';
  rep.formatDetail = `${modelConfig !== undefined ? 'Keras legacy HDF5 model' : 'HDF5'} (superblock v${info.version}${info.superblockOffset ? `, ${info.superblockOffset}-byte user block` : ''}), ${info.datasets.length} dataset${info.datasets.length === 1 ? '' : 's'}`;
  hdf5Findings(ctx, info, undefined, false);
  for (const k of ['keras_version', 'backend']) { const v = rootAttribute(info, k); if (v !== undefined) rep.metadata[`keras.${k}`] = v; }
  const tc = rootAttribute(info, 'training_config');
  if (modelConfig !== undefined) {
    const cfg = parseConfig(ctx, modelConfig, 'model_config');
    if (cfg !== undefined) summaryMetadata(ctx, await checkKerasConfig(ctx, cfg, 'model_config', true));
  }
  if (tc !== undefined) {
    // compile() deserializes the loss, metrics and optimizer named here (custom objects, module paths)
    let t: unknown;
    try { t = JSON.parse(tc); } catch { add(ctx, 'SW034', 'training_config is not valid JSON; Keras skips compiling.', { member: 'training_config', severity: 'info' }); }
    if (t !== undefined) await checkKerasConfig(ctx, t, 'training_config', true);
  }
  // every other string attribute is data Keras reads as names; a model_config elsewhere (a nested model) is checked
  for (const o of info.objects) {
    if (o.path === '/') continue;
    const a = o.attributes.find((x) => x.name === 'model_config' && x.strings?.length === 1);
    if (a?.strings) {
      const cfg = parseConfig(ctx, a.strings[0], `${o.path} model_config`);
      if (cfg !== undefined) await checkKerasConfig(ctx, cfg, `${o.path} model_config`, true);
    }
  }
  pushTensors(ctx, hdf5Tensors(info));
}
