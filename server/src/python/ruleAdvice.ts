// The first sentence of a code diagnostic: what to do about the finding (the rule's message then says why).
// When the load names a workspace file the engine scanned, python/fileFixes.ts says what to do with that file
// instead. Each rule's documentation is its README anchor (rules.ts helpAnchor).
import { CODE_RULE_BY_ID } from './rules';

export const DOCS_BASE = 'https://github.com/safe-weights/safe-weights#';

const ADVICE: Record<string, string> = {
  SW101: 'Load with weights_only=True, or convert the checkpoint to safetensors.',
  SW102: 'Unpickle only data you produced and protect it from tampering, or switch to a format without code.',
  SW103: 'Load this only from a source you trust as code, or switch to a format without code.',
  SW104: 'Load only .joblib files you created, or export the model to a format without code.',
  SW105: 'Drop allow_pickle (numeric arrays do not need it).',
  SW106: 'Use parquet, feather or CSV instead of pickle for data.',
  SW107: 'Use yaml.safe_load (or Loader=yaml.SafeLoader).',
  SW108: 'Use JSON or another data-only format instead of marshal.',
  SW109: 'Open only shelves you created, or use sqlite3 or JSON.',
  SW110: 'Load only reviewed repositories pinned to a commit.',
  SW111: 'Set trust_remote_code=False, or review the code and pin revision= to a commit.',
  SW112: 'Remove use_safetensors=False.',
  SW113: 'Keep Keras safe mode on.',
  SW114: 'Import only torch.package archives you built.',
  SW115: 'Exchange tensors between ranks, not pickled objects.',
  SW116: 'Use the default round-trip loader or typ="safe".',
  SW117: 'Pin revision= to a 40-character commit hash.',
  SW118: 'Exchange numeric arrays only, without pickled object arrays.',
  SW119: 'Use recv_bytes() and a data-only format across trust boundaries.',
  SW120: 'Save weights with safetensors.torch.save_file.',
  SW121: 'Load only TorchScript archives you built; ship weights as .safetensors.',
  SW122: 'Convert the model to the .keras format.',
  SW123: 'Remove the unsafe fallback from the except handler.',
  SW124: 'Allowlist only the data classes the checkpoint needs.',
  SW201: 'Upgrade torch to >= 2.10.0.',
  SW202: 'Upgrade PyYAML to >= 5.4.',
  SW203: 'Upgrade Keras to >= 3.11.3.',
  SW204: 'Upgrade to the fixed version the message names.',
};

/** What to do about a finding of `rule`, as one imperative sentence. */
export function ruleAdvice(rule: string): string {
  return ADVICE[rule] ?? `See the documentation of ${rule}.`;
}

/** The README anchor of a rule (its documentation). */
export function ruleDocsUrl(rule: string): string {
  return DOCS_BASE + (CODE_RULE_BY_ID.get(rule)?.helpAnchor ?? rule.toLowerCase());
}

/** The diagnostic message: what to do first (`advice`, or the rule's), then the finding's own message. */
export function diagnosticMessage(rule: string, message: string, advice?: string): string {
  const first = advice ?? ruleAdvice(rule);
  // a message that already opens with the advice is not repeated
  return message.startsWith(first) ? message : `${first} ${message}`;
}
