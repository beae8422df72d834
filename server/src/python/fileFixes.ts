// Fixes that know the file a load names: when the path of torch.load / pickle.load / joblib.load / np.load is
// a workspace file the engine has scanned, only the fixes that work with that file are offered, and the
// diagnostic's first sentence says what to do with it.
//  - "Add/Set weights_only=True" only when the file loads with weights_only=True (every global in torch's allowlist);
//  - the load inside `torch.serialization.safe_globals([...])` listing exactly the globals the file needs beyond
//    the allowlist, when those are not dangerous (no tool writes this list for you: people write weights_only=False);
//  - conversion to safetensors only for what the converter accepts, and only with a rewrite that returns the same
//    object: a flat state dict loads with safetensors.torch.load_file, a training checkpoint is rebuilt
//    (tensors + the structure in __metadata__), anything else (a pickled nn.Module, a user object) gets none.
import { classifyGlobal } from '../models/policy/classify';
import type { ModelReport } from '../models/types';
import type { CodeFix, CodeIssue } from './analyze';
import { safeGlobalsEdits, type LoadSite } from './loadFixes';

/** What a dry run of the converter said about the file (models/convert plan). */
export interface ConversionFacts {
  /** Why nothing would be converted (undefined: it converts). */
  refusal?: string;
  /** 'flat': a dict of name -> tensor (load_file returns the same dict); 'nested': a checkpoint whose structure is
   *  kept in __metadata__ (the rebuild returns the same object); undefined: its structure cannot be kept. */
  shape?: 'flat' | 'nested';
  /** What keeps the structure from being kept ("path: what"). */
  unsupported?: string[];
}

export interface LoadedFile {
  /** Base name, for titles and messages. */
  name: string;
  /** Where it is (absolute). */
  path?: string;
  report: ModelReport;
  conversion?: ConversionFacts;
}

export interface FileFixPlan {
  /** The fixes to offer instead of issue.fixes. */
  fixes: CodeFix[];
  /** The conversion fix to offer (a command: it converts first, then applies the edits). */
  convert?: { mode: 'load_file' | 'rebuild'; title: string };
  /** The diagnostic's first sentence: what to do with this file. */
  advice: string;
}

/** Globals the file imports that torch's weights_only unpickler does not allow, each once, in file order. */
export function globalsBeyondAllowlist(report: ModelReport): string[] {
  const out: string[] = [];
  for (const g of report.globals) {
    const full = `${g.module}.${g.name}`;
    if (!classifyGlobal(g.module, g.name).weightsOnly && !out.includes(full)) out.push(full);
  }
  return out;
}

/** Whether weights_only refuses the file only for its globals (not for an opcode or a broken stream). */
function refusedOnlyForGlobals(report: ModelReport): boolean {
  const parts = report.weightsOnly.reason.split('; ');
  return report.weightsOnly.loads === false && parts.length > 0 && parts.every((p) => / is not in its allowlist$/.test(p))
    && !report.globalsOmitted;
}

const TORCH_FORMATS = new Set(['pytorch-zip', 'pytorch-legacy', 'pytorch-legacy-tar']);
const sentence = (s: string): string => (/[.!?]$/.test(s) ? s : `${s}.`);

export function planFileFixes(issue: CodeIssue, file: LoadedFile, site?: LoadSite): FileFixPlan {
  const r = file.report;
  const keep = issue.fixes.filter((f) => f.role !== 'weights-only');
  const weightsOnlyFixes = issue.fixes.filter((f) => f.role === 'weights-only');
  const summary = r.summary.replace(/\.$/, '');
  if (issue.rule !== 'SW101') {
    // pickle.load / joblib.load / np.load / ...: say what the file is
    const advice = r.verdict === 'dangerous' ? `Do not load ${file.name}: the scan rates it dangerous (${summary}).`
      : r.verdict === 'caution' ? `Review ${file.name} before loading it: the scan rates it caution (${summary}).`
        : r.verdict === 'invalid' ? `Do not load ${file.name}: it is not a valid file of its format (${summary}).`
          : `Prefer a format without code for ${file.name}: it scans safe today (${summary}), but this load runs whatever the file holds once it changes.`;
    return { fixes: keep, advice };
  }
  const fixes: CodeFix[] = [];
  let advice: string;
  let convert: FileFixPlan['convert'];
  const conv = file.conversion;
  const torchFile = TORCH_FORMATS.has(r.format);
  if (torchFile && !conv?.refusal && conv?.shape) {
    convert = conv.shape === 'flat'
      ? { mode: 'load_file', title: `Convert ${file.name} to safetensors and load it with safetensors.torch.load_file` }
      : { mode: 'rebuild', title: `Convert ${file.name} to safetensors and rebuild the same checkpoint from it (tensors in the file, the other values in its metadata)` };
  }
  if (r.verdict === 'dangerous' || r.verdict === 'invalid') {
    advice = `Do not load ${file.name}: the scan rates it ${r.verdict} (${summary}).`;
    return { fixes: keep, advice };
  }
  if (r.weightsOnly.loads === true) {
    fixes.push(...weightsOnlyFixes.map((f) => ({ ...f, preferred: true, title: `${f.title} (${file.name} loads with it)` })));
    advice = `${weightsOnlyFixes[0]?.title ?? 'Load with weights_only=True'}: ${file.name} loads with it (every global it imports is in torch's allowlist).`;
  } else if (torchFile && refusedOnlyForGlobals(r)) {
    const needed = globalsBeyondAllowlist(r);
    const spans = site && needed.length ? safeGlobalsEdits(site, needed) : undefined;
    const list = needed.join(', ');
    if (spans) {
      fixes.push({ title: `Load with weights_only=True inside torch.serialization.safe_globals([${list}]) (what ${file.name} needs beyond torch's allowlist; torch >= 2.5)`, preferred: true, edits: spans, role: 'safe-globals' });
    }
    advice = `Load ${file.name} with weights_only=True inside torch.serialization.safe_globals([${list}]): weights_only=True alone refuses it, and these are the globals it needs beyond torch's allowlist (none is known to be harmful).`;
  } else {
    advice = convert
      ? `${sentence(convert.title)} ${file.name} does not load with weights_only=True (${r.weightsOnly.reason}).`
      : `Review ${file.name} before loading it: weights_only=True refuses it (${r.weightsOnly.reason})${conv?.refusal ? ` and it cannot be converted (${conv.refusal})` : conv?.unsupported?.length ? `, and converting it would lose ${conv.unsupported.slice(0, 3).join('; ')}` : ''}.`;
  }
  fixes.push(...keep);
  return { fixes, convert, advice };
}
