// Archives people ship models in (a tar that is not a torch checkpoint, a compressed tar, a 7z, a zip inside a zip,
// a gzip holding a zip): each member is scanned by the dispatcher (scan.ts, through ctx.scanFile), from its bytes,
// and its report folded into the archive's (members named "outer!inner"). Bounded: nesting depth, each member's
// size in memory, and the bytes all members of the outermost file may expand to (shared by every level). A member
// past a limit is a finding (SW009, SW025), not silence.
import type { ByteSource } from '../source';
import type { ModelReport, Severity } from '../types';
import { add, displayName, GLOBALS_SHOWN, MEMBER_ROWS, worsen, type ScanContext } from './context';

/** Limits of member-by-member reading (tests lower them). `memberBytes`: the largest member held in memory to be
 *  scanned (the in-memory cap compressed.ts uses for lzma streams); `totalBytes`: what all members of one file,
 *  at every nesting level, may expand to (the decompression limit of joblib streams); `sevenZipPassBytes`: member
 *  bytes one 7z decoding pass holds (the next pass decodes again and keeps the next ones). */
export const archiveLimits = { memberBytes: 256 << 20, totalBytes: 8 * 1024 ** 3, sevenZipPassBytes: 512 << 20 };

const NESTING_DEPTH = 4;
const nestingOf = new WeakMap<ScanContext, { depth: number; budget: { bytes: number } }>();
export function nesting(ctx: ScanContext): { depth: number; budget: { bytes: number } } {
  let n = nestingOf.get(ctx);
  if (!n) { n = ctx.opts.nesting ?? { depth: 0, budget: { bytes: archiveLimits.totalBytes } }; nestingOf.set(ctx, n); }
  return n;
}

/** Scans `src` (an archive member's bytes) as a file of its own and folds its report into ctx's. */
export async function scanArchiveMember(ctx: ScanContext, name: string, src: ByteSource): Promise<ModelReport | undefined> {
  const n = nesting(ctx);
  if (n.depth + 1 >= NESTING_DEPTH) {
    add(ctx, 'SW009', `Member "${name}" is an archive nested ${n.depth + 1} levels deep; it was not checked.`, { member: name, severity: 'dangerous' });
    return undefined;
  }
  const d = await ctx.scanFile(src, name, { ...ctx.opts, sha256: false, nesting: { depth: n.depth + 1, budget: n.budget } });
  try { foldMemberReport(ctx, name, d.report); } finally { for (const r of d.runs) r.run.release?.(); }
  return d.report;
}

function foldMemberReport(ctx: ScanContext, name: string, child: ModelReport): void {
  const rep = ctx.report;
  const inner = (m: string | undefined) => (m ? `${name}!${m}` : name);
  for (const f of child.findings) {
    const { rule, message, ...rest } = f;
    // a broken safetensors/GGUF/npy member cannot run code, but the archive as a whole then needs a look
    add(ctx, rule, `${name}: ${message}`, { ...rest, member: inner(f.member), severity: f.severity === 'invalid' ? 'caution' : f.severity });
  }
  ctx.findingsOmitted += child.findingsOmitted ?? 0;
  // the child's verdict saw every finding, also those past its row cap
  const sev: Severity | undefined = child.verdict === 'dangerous' ? 'dangerous' : child.verdict === 'caution' || child.verdict === 'invalid' ? 'caution' : undefined;
  if (sev) worsen(ctx, sev);
  let omitted = child.globalsOmitted ?? 0;
  for (const g of child.globals) {
    if (rep.globals.length < GLOBALS_SHOWN) rep.globals.push({ ...g, member: inner(g.member) }); else omitted++;
    if (g.severity === 'dangerous') {
      const dn = displayName(g.module, g.name);
      ctx.dangerousNames.set(dn, (ctx.dangerousNames.get(dn) ?? false) || g.called);
    }
  }
  if (omitted) rep.globalsOmitted = (rep.globalsOmitted ?? 0) + omitted;
  for (const p of child.pickles) rep.pickles.push({ ...p, member: inner(p.member) });
  const room = Math.max(0, (ctx.opts.maxTensors ?? 1_000_000) - rep.tensors.length);
  if (room && child.tensorCount) for (const t of child.tensors.slice(0, room)) rep.tensors.push({ ...t, name: `${name}!${t.name}` });
}

export function memberRows(ctx: ScanContext, members: { name: string; size: number; offset: number }[]): void {
  ctx.report.memberCount = members.length;
  ctx.report.members = members.slice(0, MEMBER_ROWS).map((m) => ({ name: m.name, size: m.size, compressedSize: m.size, method: 0, offset: m.offset }));
}

export function memberTooBig(ctx: ScanContext, name: string, why: string): void {
  add(ctx, 'SW025', `Member "${name}" was not checked: ${why}.`, { member: name, severity: 'dangerous' });
}

