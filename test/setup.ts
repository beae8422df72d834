// Mocha root setup (listed under "require" in .mocharc.json) and the shared fixture helpers.
// Real PyTorch fixtures are generated once per content hash of the generator script and cached under
// .cache/fixtures/<hash>/ in the repo root. Under CI=true a missing torch is a failure, never a skip.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const PYTHON = process.env.SAFE_WEIGHTS_PYTHON ?? '/usr/bin/python3';
export const IS_CI = process.env.CI === 'true';

export interface ManifestTensor { name: string; dtype: string; shape: number[]; numel: number }
export interface ManifestEntry {
  format: string[];
  verdict: 'safe' | 'caution' | 'dangerous' | 'invalid';
  /** When set, any of these verdicts is correct (the manifest's `verdict` is the preferred one). */
  accept_verdicts?: ('safe' | 'caution' | 'dangerous' | 'invalid')[];
  /** What current torch.load(weights_only=True) does; null when torch.load is not the loader. */
  weightsOnly: boolean | null;
  weightsOnlyTorch113?: boolean;
  namesComparable: boolean;
  tensors: ManifestTensor[];
  size: number;
  note: string;
  classes?: string[];
  rules?: string[];
  compression?: string;
}
export interface FixtureManifest { torch: string; numpy: string; files: Record<string, ManifestEntry> }
export interface TorchFixtures { dir: string; manifest: FixtureManifest }

function findRepoRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the repository root above ${__dirname}`);
    dir = up;
  }
}
export const REPO_ROOT = findRepoRoot();
export const GENERATOR = join(REPO_ROOT, 'test', 'fixtures', 'gen_torch_fixtures.py');

let torchProbe: { ok: boolean; detail: string } | undefined;
/** Whether the Debian python has torch + numpy. */
export function torchAvailable(): { ok: boolean; detail: string } {
  if (!torchProbe) {
    const r = spawnSync(PYTHON, ['-c', 'import torch, numpy; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
    torchProbe = r.status === 0
      ? { ok: true, detail: r.stdout.trim() }
      : { ok: false, detail: (r.error?.message ?? r.stderr ?? '').trim().split('\n').slice(-1)[0] ?? 'unknown error' };
  }
  return torchProbe;
}

/** Thrown when torch is missing outside CI; tests turn it into a loud pending state. */
export class TorchUnavailableError extends Error {}

function missingTorch(what: string): never {
  const msg = `${what} needs ${PYTHON} with torch and numpy (apt-get install -y python3-torch python3-numpy): ${torchAvailable().detail}`;
  if (IS_CI) throw new Error(`CI=true: ${msg}`);
  throw new TorchUnavailableError(msg);
}

let cached: TorchFixtures | undefined;
/** Runs `PYTHON script OUT` into a private folder, then renames it to `dir`, so parallel runs never see a
 *  half-written cache (the loser of a rename race keeps the winner's copy). */
function runGenerator(script: string, dir: string): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync(PYTHON, [script, tmp], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
  try { renameSync(tmp, dir); } catch (e) {
    if (!existsSync(join(dir, 'manifest.json'))) throw e;
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Generate (once per generator hash) and return the real-torch fixtures with their manifest. */
export function getTorchFixtures(): TorchFixtures {
  if (cached) return cached;
  const script = readFileSync(GENERATOR);
  const hash = createHash('sha256').update(script).digest('hex').slice(0, 16);
  const dir = join(REPO_ROOT, '.cache', 'fixtures', hash);
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) {
    if (!torchAvailable().ok) missingTorch('The real-torch fixtures');
    runGenerator(GENERATOR, dir);
  }
  cached = { dir, manifest: JSON.parse(readFileSync(manifestPath, 'utf8')) as FixtureManifest };
  return cached;
}

export interface GeneratedFixtures<M> { dir: string; manifest: M }
const generatedCache = new Map<string, GeneratedFixtures<unknown>>();

/**
 * Runs a fixture generator (`/usr/bin/python3 SCRIPT OUT_DIR`, which must write OUT_DIR/manifest.json) once per
 * content hash of the script and caches its output under .cache/fixtures/<name>-<hash>/. `modules` are the Python
 * modules the script needs: when one is missing the suite is pending locally and fails under CI=true.
 */
export function generatedFixturesOrSkip<M>(ctx: Mocha.Context, scriptRel: string, modules: string[]): GeneratedFixtures<M> {
  const script = join(REPO_ROOT, scriptRel);
  const hash = createHash('sha256').update(readFileSync(script)).digest('hex').slice(0, 16);
  const dir = join(REPO_ROOT, '.cache', 'fixtures', `${scriptRel.replace(/\W+/g, '_')}-${hash}`);
  const hit = generatedCache.get(dir);
  if (hit) return hit as GeneratedFixtures<M>;
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) {
    const probe = spawnSync(PYTHON, ['-c', `import ${modules.join(', ')}`], { encoding: 'utf8', timeout: 120_000 });
    if (probe.status !== 0) {
      const msg = `${scriptRel} needs ${PYTHON} with ${modules.join(', ')} (bash scripts/setup.sh installs them): ${(probe.stderr || probe.error?.message || '').trim().split('\n').slice(-1)[0]}`;
      if (IS_CI) throw new Error(`CI=true: ${msg}`);
      console.warn(`\n  !!! SKIPPING: ${msg}\n`);
      ctx.skip();
    }
    runGenerator(script, dir);
  }
  const out = { dir, manifest: JSON.parse(readFileSync(manifestPath, 'utf8')) as M };
  generatedCache.set(dir, out);
  return out;
}

/**
 * For use in a mocha `before` hook: returns the fixtures, or marks the suite pending with a loud message
 * when torch is missing locally. Under CI=true it throws instead (a missing dependency is a failure).
 */
export function torchFixturesOrSkip(ctx: Mocha.Context): TorchFixtures {
  try {
    return getTorchFixtures();
  } catch (e) {
    if (e instanceof TorchUnavailableError) {
      console.warn(`\n  !!! SKIPPING torch-dependent tests: ${e.message}\n`);
      ctx.skip();
    }
    throw e;
  }
}

let newestSource: { file: string; mtimeMs: number } | undefined;
/** The most recently changed source file the bundles are built from (server/src, client/src, scripts/build.mjs). */
export function newestBundleSource(): { file: string; mtimeMs: number } {
  if (newestSource) return newestSource;
  let best = { file: join(REPO_ROOT, 'scripts', 'build.mjs'), mtimeMs: statSync(join(REPO_ROOT, 'scripts', 'build.mjs')).mtimeMs };
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|js|json)$/.test(e.name)) { const m = statSync(p).mtimeMs; if (m > best.mtimeMs) best = { file: p, mtimeMs: m }; }
    }
  };
  for (const d of ['server/src', 'client/src']) if (existsSync(join(REPO_ROOT, d))) walk(join(REPO_ROOT, d));
  newestSource = best;
  return best;
}

/** Skip (locally) or fail (CI) when a built artifact such as dist/cli.js is missing; fail when it is older than a
 *  source it is built from (a test of a stale bundle tests code that no longer exists). */
export function requireBuilt(ctx: Mocha.Context, rel: string, how = 'npm run build'): string {
  const p = join(REPO_ROOT, rel);
  if (existsSync(p)) {
    const src = newestBundleSource();
    if (rel.startsWith('dist/') && statSync(p).mtimeMs < src.mtimeMs) {
      throw new Error(`${rel} is older than ${src.file.slice(REPO_ROOT.length + 1)}: run \`${how}\` (npm run test:unit does)`);
    }
    return p;
  }
  const msg = `${rel} is missing: run \`${how}\` first`;
  if (IS_CI) throw new Error(`CI=true: ${msg}`);
  console.warn(`\n  !!! SKIPPING: ${msg}\n`);
  ctx.skip();
}

export const mochaHooks = {
  beforeAll(this: Mocha.Context): void {
    this.timeout(180_000); // importing torch takes seconds on a busy machine
    if (IS_CI && !torchAvailable().ok) missingTorch('The test suite');
  },
};
