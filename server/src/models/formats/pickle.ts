// Pickle files as pickle.load, joblib.load and torch.load read them: a plain pickle (or an uncompressed joblib
// dump), a legacy torch.save file (five pickles, then the storages), and what follows the data the loader reads.
// Also the second reading of a file that is another format first: the bytes pickle.load would read (polyglots).
import { SliceSource, startsWith, type ByteSource } from '../source';
import { stopBeforeAnythingRuns, startsPickle } from '../pickleStart';
import type { PickleRun } from '../pickle/machine';
import { extractRunTensors, withPersistedStorages, type StorageTable } from '../pickle/tensors';
import { PyDict, asInt, asText, type PyValue } from '../pickle/values';
import { K } from '../pickle/arena';
import { add, type ScanContext } from './context';
import { nearValue, recordRun, runPicklesSync, useInventory } from './pickleRuns';
import { scanHiddenZip, scanZip } from './zip';

const TORCH_MAGIC = 0x1950a86a20f9469cfc6cn;


/** The storage keys a legacy checkpoint's 5th pickle lists, read from the arena (no object per item). */
export function legacyStorageKeys(run: PickleRun): string[] | undefined {
  const ar = run.arena, h = run.root;
  if (h === undefined || ar.kind[h] !== K.LIST) return undefined;
  const out: string[] = [];
  for (let i = 0; i < ar.seqLen(h); i++) { const v = ar.scalar(ar.seqItem(h, i)) ?? null; out.push(asText(v) ?? String(asInt(v))); }
  return out;
}


/**
 * The bytes of a file read first as another format (safetensors, GGUF, .npy, tar, a compressed stream) read
 * again as pickle.load reads them (torch.load too, for a file that is neither a zip nor a tar): a polyglot is
 * judged by its more dangerous reading. Nothing is reported when every unpickler rejects the bytes at once.
 */
export function scanPickleReading(ctx: ScanContext, src: ByteSource, first: string): void {
  const { runs } = runPicklesSync(src, 0, src.size, ctx, 6);
  const r0 = runs[0];
  if (!r0) return;
  // pickle.load, numpy.load and torch's first pickle.load of a non-zip file have no persistent_load
  const stop = stopBeforeAnythingRuns(r0, { src, persistentLoad: false, extensionRegistry: false });
  const release = () => { for (const r of runs) r.release?.(); };
  if (stop) { release(); return; }
  const imports = r0.globals.length > 0 || r0.findings.length > 0;
  if (!r0.complete && !imports) {
    add(ctx, 'SW012', `The file is ${first}, and its bytes also start a pickle: the pickle reading stops at offset ${r0.errorOffset ?? r0.end} (${r0.error}) with nothing imported, but an unpickler may read on there, so what pickle.load or torch.load would do with this file was not checked.`, { offset: 0, severity: 'caution' });
    release();
    return;
  }
  add(ctx, 'SW012', `The file is ${first}, and it is also a pickle that pickle.load and torch.load read from offset 0 (${r0.complete ? `${r0.end} bytes` : `broken at offset ${r0.errorOffset ?? r0.end}`}${imports ? `, importing ${r0.globals.length} global(s)` : ', importing nothing'}): both readings are scanned and the verdict is that of the more dangerous one.`,
    { offset: 0, severity: imports ? 'caution' : 'info' });
  for (let i = 0; i < runs.length; i++) {
    if (!recordRun(ctx, runs[i], undefined, { strict: i === 0, torchLoads: false, src, persistentLoad: false }) || !runs[i].complete) {
      for (const r of runs.slice(i + 1)) r.release?.();
      break;
    }
  }
}

export async function readPickleFile(ctx: ScanContext, src: ByteSource): Promise<void> {
  const rep = ctx.report;
  rep.format = 'pickle';
  const { runs } = runPicklesSync(src, 0, src.size, ctx, 6);
  if (runs.length === 0) return;
  const first = runs[0];
  const legacy = first.complete && first.root !== undefined && first.arena.scalar(first.root) === TORCH_MAGIC;
  if (legacy) {
    rep.format = 'pytorch-legacy';
    runs.slice(0, 5).forEach((r) => recordRun(ctx, r, undefined, { strict: true, torchLoads: true, src, loaderReads: true }));
    // torch.load reads exactly five pickles; what follows is storage data (a first element count of 40 is
    // 0x28, MARK: it parses as the start of a sixth "pickle" that must not decide whether the five are whole)
    if (runs.length >= 5 && runs.slice(0, 5).every((r) => r.complete)) {
      const protoV = asInt(nearValue(runs[1]) ?? null);
      rep.metadata['legacy.protocol_version'] = String(protoV ?? '?');
      const sysInfo = nearValue(runs[2]);
      if (sysInfo instanceof PyDict) for (const [k, v] of sysInfo.entries) { const ks = asText(k); if (ks) rep.metadata[`sys_info.${ks}`] = sysInfoText(v); }
      const walked = extractRunTensors(runs[3], ctx.opts.maxTensors);
      useInventory(ctx, walked);
      // element sizes come from every persistent id, as torch's persistent_load registers each storage it
      // names: a sparse tensor's indices and values are storages no listed tensor refers to
      const tail = withPersistedStorages(runs[3], (named) => walkLegacyStorages(ctx, src, runs[4], named));
      await scanTrailing(ctx, src, tail);
    } else if (runs.length < 5 && runs[runs.length - 1].complete) {
      add(ctx, 'SW004', `Legacy torch file holds ${runs.length} of the 5 pickles torch.load reads.`, { severity: 'dangerous' });
    }
    return;
  }
  if (!recordRun(ctx, first, undefined, { strict: true, torchLoads: false, src, loaderReads: true })) {
    // no unpickler loads it; Python's zipfile may still read an archive inside (numpy.load does)
    await scanHiddenZip(ctx, src, 0);
    return;
  }
  const joblib = first.globals.some((g) => /(^|\.)numpy_pickle$/.test(g.module));
  if (joblib) { rep.format = 'joblib'; rep.formatDetail = 'joblib (uncompressed)'; }
  useInventory(ctx, extractRunTensors(first, ctx.opts.maxTensors));
  if (!first.complete) { await scanHiddenZip(ctx, src, 0); return; }
  // further pickles (pickle.load called repeatedly), then anything else
  let pos = first.end;
  for (const r of runs.slice(1)) {
    if (!recordRun(ctx, r, undefined, { strict: false, torchLoads: false, src })) { await scanHiddenZip(ctx, src, r.start); return; }
    pos = r.end;
    if (!r.complete) { await scanHiddenZip(ctx, src, pos); return; }
  }
  await scanTrailing(ctx, src, pos);
}

/** A sys_info value as text: type_sizes is a dict ({'short': 2, 'int': 4, 'long': 4} reads "short=2, int=4, long=4"). */
function sysInfoText(v: PyValue): string {
  if (v instanceof PyDict) return v.entries.map(([k, x]) => `${asText(k) ?? '?'}=${asText(x) ?? asInt(x) ?? '?'}`).join(', ');
  return String(asText(v) ?? asInt(v) ?? v);
}

/** Bytes after the last structure the loader reads: appended pickles, an appended zip (polyglot), or junk. */
async function scanTrailing(ctx: ScanContext, src: ByteSource, pos: number): Promise<void> {
  while (pos < src.size) {
    const head = src.read(pos, 8);
    if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) {
      add(ctx, 'SW012', `A ZIP archive is appended at offset ${pos}: torch.load reads the pickle at offset 0, but zip readers see the archive. Its members are scanned too.`, { offset: pos });
      await scanZip(ctx, new SliceSource(src, pos, src.size - pos), pos, true);
      return;
    }
    if (startsPickle(head[0])) {
      const { runs } = runPicklesSync(src, pos, src.size, ctx, 1000);
      let kept = 0, ended = runs.length === 0;
      for (const r of runs) {
        if (!recordRun(ctx, r, undefined, { strict: false, torchLoads: false, src })) { ended = true; break; }
        pos = r.end; kept++;
        if (!r.complete) { ended = true; break; }
      }
      if (kept) add(ctx, 'SW012', `${kept} more pickle(s) follow the data the loader reads (from offset ${runs[0].start}); a loader that reads on would run them.`, { offset: runs[0].start, severity: 'caution' });
      // what no unpickler reads on past may still hold an archive Python's zipfile finds from the end
      if (ended) { await scanHiddenZip(ctx, src, pos); return; }
      continue;
    }
    if (await scanHiddenZip(ctx, src, pos)) return;
    add(ctx, 'SW014', `${src.size - pos} bytes of trailing data at offset ${pos} are not read by the loader.`, { offset: pos });
    return;
  }
}

/** Legacy torch: after the 5th pickle come the storages, each an 8-byte element count and the raw data. */
function walkLegacyStorages(ctx: ScanContext, src: ByteSource, keysRun: PickleRun, storages: StorageTable): number {
  const keys = legacyStorageKeys(keysRun) ?? [];
  let pos = keysRun.end;
  for (const key of keys) {
    const st = storages.get(key);
    const hdr = src.read(pos, 8);
    if (hdr.length < 8) { add(ctx, 'SW017', `Legacy storage ${key} is missing (file ends at ${src.size}).`, { offset: pos }); return src.size; }
    const n = Number(Buffer.from(hdr).readBigUInt64LE(0));
    const el = st?.elementSize ?? 1;
    const bytes = n * el;
    if (!st) add(ctx, 'SW017', `Legacy storage ${key} is listed but the pickle never names it: torch.load stops there with an error.`, { offset: pos });
    if (!Number.isSafeInteger(bytes) || pos + 8 + bytes > src.size) {
      add(ctx, 'SW017', `Legacy storage ${key} declares ${n} elements, more than the file holds.`, { offset: pos });
      return src.size;
    }
    pos += 8 + bytes;
  }
  return pos;
}
