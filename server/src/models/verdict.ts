// The verdict: judges every global each pickle stream imports by how the stream uses it (policy/), and builds the
// report's findings, globals, tensor rows, weights_only answer and one-sentence summary from what the format
// modules recorded in the scan context.
import type { PickleRun } from './pickle/machine';
import { AllowList, NO_USER_ALLOW, analyzeCalls, judgeGlobal, type Judgement } from './policy';
import { add, count, displayName, FINDINGS_SHOWN, GLOBALS_SHOWN, type ScanContext } from './formats/context';
import type { GlobalRef, ModelFormat, ModelReport, PickleStreamReport, TensorInfo, Verdict } from './types';

export function finalize(ctx: ScanContext): void {
  const rep = ctx.report;
  const woReasons: string[] = [];
  const globalsSeen = new Set<string>();
  const allow = ctx.opts.allowGlobals?.length ? new AllowList(ctx.opts.allowGlobals) : NO_USER_ALLOW;
  let globalsOmitted = 0;
  for (const { run, member, torchLoads, rejected } of ctx.runs) {
    rep.pickles.push(streamReport(run, member));
    if (rejected) {
      // nothing before the stop is imported or called: the run's globals (all after it) never load
      const { at, why } = rejected.stop;
      add(ctx, 'SW004', `Pickle at offset ${run.start}${member ? ` in ${member}` : ''} cannot be loaded: every unpickler stops at offset ${at} (${why}) before anything is imported or called, so nothing in it runs.`,
        { offset: at, member, severity: rejected.severity });
      if (torchLoads) woReasons.push('the pickle does not parse');
      continue;
    }
    const calls = analyzeCalls(run, allow);
    const where = (offset: number) => `at offset ${offset}${member ? ` in ${member}` : ''}`;
    // a crafted stream may import the same name 350,000 times: judged once per spelling when it is not called
    const judged = new Map<string, [Judgement, Judgement]>();
    for (let gi = 0; gi < run.globals.length; gi++) {
      const g = run.globals[gi];
      const use = calls.uses.get(gi);
      const full = `${g.module}.${g.name}`;
      const raw = `${g.rawModule}.${g.rawName}`;
      const memoKey = use ? undefined : `${raw}\u0000${full}`;
      let pair = memoKey === undefined ? undefined : judged.get(memoKey);
      if (!pair) {
        const j = judgeGlobal(g.module, g.name, use, allow);
        // Python 2 names are checked against the denylist under both spellings (vetting uses the Python 3 name)
        pair = [j, raw !== full ? judgeGlobal(g.rawModule, g.rawName, use, allow) : j];
        if (memoKey !== undefined) judged.set(memoKey, pair);
      }
      const [v, vr] = pair;
      const worst = vr.rule === 'SW001' && v.rule !== 'SW001' ? vr : v;
      if (rep.globals.length >= GLOBALS_SHOWN) globalsOmitted++;
      else {
        const key = `${full}@${member ?? ''}@${g.offset}`;
        if (!globalsSeen.has(key)) {
          globalsSeen.add(key);
          const ref: GlobalRef = { module: g.module, name: g.name, offset: g.offset, member, called: g.called, severity: worst.tier, reason: worst.reason };
          if (worst.vettedBy) ref.vettedBy = worst.vettedBy;
          if (worst.allowedByUser) ref.allowedBy = worst.vettedBy;
          rep.globals.push(ref);
        }
      }
      if (worst.tier !== 'safe') {
        const shown = raw !== full ? `${full} (written as ${raw})` : displayName(g.module, g.name);
        if (worst.tier === 'dangerous') {
          const dn = displayName(g.module, g.name);
          ctx.dangerousNames.set(dn, (ctx.dangerousNames.get(dn) ?? false) || g.called);
        }
        const how = use?.invoked || g.called ? 'called' : 'imported';
        if (ctx.report.findings.length >= FINDINGS_SHOWN) count(ctx, worst.tier);   // no message past the cap
        else add(ctx, worst.rule ?? 'SW002', `${shown} is ${how} ${where(g.offset)}: ${worst.reason}.`,
          { severity: worst.tier, global: full, offset: g.offset, member });
      }
      if (torchLoads && !v.weightsOnly && woReasons.length < 5) woReasons.push(`${full} is not in its allowlist`);
    }
    for (const f of calls.findings) add(ctx, f.rule, `${f.message} (${where(f.offset)}).`, { offset: f.offset, member, global: f.global, severity: 'dangerous' });
    for (const f of run.findings) add(ctx, f.rule, `${f.message}${member ? ` (in ${member})` : ''}.`, { offset: f.offset, member, global: f.global });
    ctx.findingsOmitted += run.findingsOmitted ?? 0;   // the machine kept the first of each rule (same severity)
    if (!run.complete) {
      add(ctx, 'SW004', `Pickle at offset ${run.start}${member ? ` in ${member}` : ''} cannot be fully parsed: ${run.error} (at offset ${run.errorOffset ?? run.end}). Everything before the error was scanned.`,
        { offset: run.errorOffset ?? run.end, member, severity: 'dangerous' });
    }
    if (torchLoads) {
      for (const w of run.weightsOnlyIssues) if (woReasons.length < 5) woReasons.push(w);
      if (!run.complete) woReasons.push('the pickle does not parse');
    }
  }
  if (globalsOmitted) rep.globalsOmitted = globalsOmitted;
  if (ctx.findingsOmitted) rep.findingsOmitted = ctx.findingsOmitted;
  // tensors: the report's rows are built when first read (the CLI prints only their count)
  const table = ctx.table;
  if (table && table.length) {
    const root = rep.format === 'pytorch-zip' ? ctx.zipRoot ?? '' : '';
    const before = rep.tensors;
    const build = (): TensorInfo[] => {
      const out = before.slice();
      for (let i = 0; i < table.length; i++) {
        const info: TensorInfo = { name: table.name(i), dtype: table.dtypeOf(i), shape: table.shape(i), bytes: table.bytes(i) };
        const st = table.storageRef(i);
        const inline = table.inline(i);
        if (st) { info.storageKey = root ? `${root}/data/${st.key}` : st.key; info.offset = table.storageOffset(i); }
        else if (inline) info.offset = inline.offset;
        const layout = table.sparseLayout(i);
        if (layout) info.layout = layout;
        out.push(info);
      }
      return out;
    };
    lazyProperty(rep, 'tensors', build);
    rep.tensorCount = before.length + table.length;
  } else rep.tensorCount = rep.tensors.length;
  // verdict
  const worst = ctx.worst;
  // 'invalid': the file cannot be loaded and nothing in it runs (a broken safetensors / GGUF / .npy header, a
  // pickle every unpickler rejects before importing or calling anything); anything that may run is worse
  let verdict: Verdict = 'safe';
  if (worst === 'dangerous') verdict = 'dangerous';
  else if (worst === 'caution') verdict = 'caution';
  else if (worst === 'invalid') verdict = 'invalid';
  rep.verdict = verdict;
  // weights_only answer
  const torchFormats: ModelFormat[] = ['pytorch-zip', 'pytorch-legacy', 'pytorch-legacy-tar'];
  if (torchFormats.includes(rep.format)) {
    const loads = woReasons.length === 0 && !rep.findings.some((f) => ['SW003', 'SW004', 'SW005', 'SW006'].includes(f.rule));
    rep.weightsOnly = loads
      ? { loads: true, reason: 'every global it imports is in torch\'s weights_only allowlist and it uses only opcodes that unpickler supports' }
      : { loads: false, reason: woReasons.length ? woReasons.join('; ') : 'the pickle holds constructs the restricted unpickler rejects' };
  } else if (rep.format === 'torchscript-zip') {
    rep.weightsOnly = { loads: false, reason: 'TorchScript archives are refused by torch.load(weights_only=True) (use torch.jit.load)' };
  } else if (rep.format === 'pickle' || rep.format === 'joblib') {
    rep.weightsOnly = { loads: false, reason: `not a torch.save file: torch.load would read it as a legacy checkpoint and fail on the magic number` };
  } else {
    rep.weightsOnly = { loads: null, reason: `${rep.format} files are not loaded with torch.load` };
  }
  rep.summary = summarize(rep, ctx.dangerousNames);
}

/** Defines `obj[key]` as a value computed on first read (then kept as a plain, writable property). */
function lazyProperty<T extends object, K extends keyof T>(obj: T, key: K, make: () => T[K]): void {
  Object.defineProperty(obj, key, {
    configurable: true, enumerable: true,
    get() { const v = make(); Object.defineProperty(obj, key, { value: v, writable: true, enumerable: true, configurable: true }); return v; },
    set(v: T[K]) { Object.defineProperty(obj, key, { value: v, writable: true, enumerable: true, configurable: true }); },
  });
}

function streamReport(run: PickleRun, member: string | undefined): PickleStreamReport {
  return { member, offset: run.start, length: run.end - run.start, protocol: run.protocol, opcodes: run.opcodes, complete: run.complete, error: run.error };
}

function summarize(rep: ModelReport, dangerous: Map<string, boolean>): string {
  const names = (gs: GlobalRef[]) => [...new Set(gs.map((g) => displayName(g.module, g.name)))];
  switch (rep.verdict) {
    case 'dangerous': {
      if (dangerous.size) {
        const n = [...dangerous.keys()];
        const unvetted = rep.findings.some((f) => f.rule === 'SW008');
        return `Loading this file would ${[...dangerous.values()].some(Boolean) ? 'call' : 'import'} ${n.slice(0, 3).join(', ')}${n.length > 3 ? ` and ${n.length - 3} more` : ''}${unvetted ? ', which no vetted list knows' : ''}: it can run code on your machine. Do not load it unless you trust whoever made it.`;
      }
      const f = rep.findings.find((x) => x.severity === 'dangerous');
      return `Unsafe to load: ${f ? f.message : 'the file could not be fully checked'}`;
    }
    case 'caution': {
      const n = names(rep.globals.filter((g) => g.severity === 'caution'));
      if (n.length) return `Loading this file imports code outside the weights-only allowlist (${n.slice(0, 3).join(', ')}${n.length > 3 ? ` and ${n.length - 3} more` : ''}); nothing known to be harmful.`;
      const f = rep.findings.find((x) => x.severity === 'caution');
      return `Caution: ${f?.message ?? 'the file has suspicious structure'}`;
    }
    case 'invalid': {
      const f = rep.findings.find((x) => x.severity === 'invalid');
      return `Invalid ${rep.format} file: ${f?.message ?? 'its header is broken'}`;
    }
    default:
      if (rep.format === 'safetensors' || rep.format === 'gguf') return `Valid ${rep.format} file with ${rep.tensorCount} tensors: this format cannot run code.`;
      if (rep.format === 'keras' || rep.format === 'keras-h5') return `Keras model with ${rep.tensorCount} tensors: its config names only Keras' own layers and functions and holds no Python code.`;
      if (rep.format === 'hdf5') return `HDF5 file with ${rep.tensorCount} datasets and no Keras model config: h5py reads it as data.`;
      if (rep.format === 'onnx') return `ONNX model with ${rep.tensorCount} tensors, ONNX's own operators and no external data outside its folder: loading it runs no code from the file.`;
      if (rep.format === 'numpy-npy' || rep.format === 'numpy-npz') return `NumPy ${rep.format === 'numpy-npz' ? 'archive' : 'array'} without object data: loads with allow_pickle=False.`;
      return `Only tensor-rebuilding globals (${rep.globals.length}); ${rep.tensorCount} tensors. Safe to load${rep.weightsOnly.loads ? ', also with weights_only=True' : ''}.`;
  }
}

