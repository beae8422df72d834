// The verdict on one imported global, from what importing it means (classify.ts) and how the pickle uses it
// (calls.ts). Fail closed on calls: a global the pickle invokes with arguments it chose must be safe-tier or
// vetted (vetted.json, or the user's allow-globals), otherwise it is an unvetted call (SW008, dangerous).
import { classifyGlobal, type GlobalTier } from './classify';
import type { GlobalUse } from './calls';
import { type AllowList, vetting } from './vetted';

export interface Judgement {
  tier: GlobalTier;
  /** SW001 (denylist), SW008 (unvetted call) or SW002 (caution); undefined for safe. */
  rule?: 'SW001' | 'SW002' | 'SW008';
  reason: string;
  /** The vetted entry or allow-globals pattern that made a call acceptable. */
  vettedBy?: string;
  allowedByUser?: boolean;
  weightsOnly: boolean;
}

export function judgeGlobal(module: string, name: string, use: GlobalUse | undefined, allow: AllowList): Judgement {
  const v = classifyGlobal(module, name);
  const full = `${module}.${name}`;
  if ((full === 'builtins.getattr' || full === '__builtin__.getattr') && use && (use.getattrOk || use.getattrProblem)) {
    if (use.getattrProblem) return { tier: 'dangerous', rule: 'SW001', reason: use.getattrProblem, weightsOnly: false };
    return { tier: 'caution', rule: 'SW002', reason: use.getattrOk ?? '', weightsOnly: false };
  }
  if (v.tier === 'dangerous') return { ...v, rule: 'SW001' };
  if (!use?.invoked || v.tier === 'safe') {
    // BUILD hands the file's state to the class's __setstate__ when it defines one: say so for classes no list knows
    const setstate = use?.builtWithState && v.tier === 'caution' && !vetting(full, allow)
      ? '; BUILD passes the state the file chose to its __setstate__, if the class defines one' : '';
    return { ...v, reason: v.reason + setstate, rule: v.tier === 'safe' ? undefined : 'SW002' };
  }
  const vet = vetting(full, allow);
  if (vet) return { tier: 'caution', rule: 'SW002', reason: vet.why, vettedBy: vet.entry, allowedByUser: vet.user, weightsOnly: false };
  const by = use.via ? `${use.via} calls it` : 'it is called';
  return {
    tier: 'dangerous', rule: 'SW008', weightsOnly: false,
    reason: `unvetted call: ${by} with ${use.args ?? 'arguments the file chose'}, and no vetted list knows what ${full} does (it can run any code; vet your own code with allow-globals)`,
  };
}
