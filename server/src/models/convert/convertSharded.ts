// Sharded Hugging Face checkpoints: convert every shard named in pytorch_model.bin.index.json and write the
// matching model.safetensors.index.json (same tensor names, new shard files, total_size of the new shards).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { convertToSafetensors, ConvertRefused, type ConvertOptions } from './convert';

export interface ShardedResult {
  index: string;
  shards: { input: string; output: string; tensors: number; bytes: number }[];
  removedAliases: string[];
}

/** HF naming: pytorch_model-00001-of-00002.bin → model-00001-of-00002.safetensors. */
export function safetensorsName(file: string): string {
  const ext = path.extname(file);
  const base = ext ? file.slice(0, -ext.length) : file;
  const name = path.basename(base);
  const renamed = name.startsWith('pytorch_model') ? `model${name.slice('pytorch_model'.length)}` : name;
  return path.join(path.dirname(base), `${renamed}.safetensors`);
}

export function shardedIndexOutput(indexPath: string): string {
  const name = path.basename(indexPath).replace(/^pytorch_model\.bin\.index\.json$/, 'model.safetensors.index.json');
  return path.join(path.dirname(indexPath), name === path.basename(indexPath) ? name.replace(/\.index\.json$/, '.safetensors.index.json') : name);
}

export async function convertShardedIndex(indexPath: string, output: string | undefined, opts: ConvertOptions = {}): Promise<ShardedResult> {
  const st = fs.statSync(indexPath);
  if (st.size > 64 << 20) throw new ConvertRefused(`${path.basename(indexPath)} is larger than 64 MB; not an index file`);
  let index: { metadata?: Record<string, unknown>; weight_map?: Record<string, unknown> };
  try { index = JSON.parse(fs.readFileSync(indexPath, 'utf8')); } catch (e) { throw new ConvertRefused(`${path.basename(indexPath)} is not valid JSON: ${(e as Error).message}`); }
  const map = index.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map)) throw new ConvertRefused('the index has no weight_map object');
  const dir = path.dirname(path.resolve(indexPath));
  const shards = new Map<string, string>();   // shard file as written in the index → resolved path
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== 'string' || !file) throw new ConvertRefused(`weight_map["${tensor}"] is not a file name`);
    const resolved = path.resolve(dir, file);
    // shards live next to the index: refuse paths that leave its folder
    if (path.isAbsolute(file) || path.relative(dir, resolved).startsWith('..')) throw new ConvertRefused(`shard "${file}" is outside the index's folder`);
    shards.set(file, resolved);
  }
  const out = output ?? shardedIndexOutput(indexPath);
  if (fs.existsSync(out) && !opts.overwrite) throw new ConvertRefused(`${path.basename(out)} already exists (pass --force to replace it)`);
  const result: ShardedResult = { index: out, shards: [], removedAliases: [] };
  const newName = new Map<string, string>();
  let done = 0;
  for (const [file, input] of shards) {
    const shardOut = safetensorsName(input);
    const r = await convertToSafetensors(input, shardOut, {
      ...opts, onProgress: opts.onProgress ? (d, t) => opts.onProgress!(done + d / Math.max(t, 1), shards.size) : undefined,
    });
    done++;
    result.shards.push({ input, output: r.output, tensors: r.tensors, bytes: r.bytes });
    result.removedAliases.push(...r.removedAliases);
    newName.set(file, path.relative(dir, r.output).split(path.sep).join('/'));
  }
  const removed = new Set(result.removedAliases);
  const weightMap: Record<string, string> = {};
  for (const [tensor, file] of Object.entries(map as Record<string, string>)) {
    if (!removed.has(tensor)) weightMap[tensor] = newName.get(file) as string;
  }
  const total = result.shards.reduce((a, s) => a + s.bytes, 0);
  const json = JSON.stringify({ metadata: { ...(index.metadata ?? {}), total_size: total }, weight_map: weightMap }, null, 2) + '\n';
  const tmp = `${out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, json);
  fs.renameSync(tmp, out);
  return result;
}
