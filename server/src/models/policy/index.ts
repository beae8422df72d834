// The verdict policy: what importing a global means (classify.ts, with the curated denylist and torch's
// weights_only allowlist), how a pickle uses each global (calls.ts), the vetted callables (vetted.json) and the
// user's allow-globals (vetted.ts), and the judgement that combines them (judge.ts).
export { classifyGlobal, WEIGHTS_ONLY_ALLOWED, type GlobalTier, type GlobalVerdict } from './classify';
export { analyzeCalls, describeArgs, type GlobalUse, type CallAnalysis } from './calls';
export { AllowList, NO_USER_ALLOW, VETTED, vetting } from './vetted';
export { judgeGlobal, type Judgement } from './judge';
