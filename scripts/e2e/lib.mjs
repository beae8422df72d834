// Shared helpers of the end-to-end runners: where code-server lives, starting VS Code's server on a free
// loopback port, launching Debian's Chromium through playwright-core, and stopping what was started.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CI = process.env.CI === 'true';
export const cacheDir = process.env.SAFE_WEIGHTS_CACHE || join(homedir(), '.cache', 'safe-weights');
export const codeServerDir = join(cacheDir, 'code-server');
export const codeServerPkg = join(codeServerDir, 'node_modules', 'code-server');
export const serverMain = join(codeServerPkg, 'lib', 'vscode', 'out', 'server-main.js');
export const codeServerEntry = join(codeServerPkg, 'out', 'node', 'entry.js');
export const chromiumPath = process.env.SAFE_WEIGHTS_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage',
];

/** No extension gallery: the tests install from the .vsix only and nothing tries to reach a marketplace. */
export const OFFLINE_ENV = { EXTENSIONS_GALLERY: '{}' };

export function log(...args) { console.log('[e2e]', ...args); }

export function run(cmd, args, opts = {}) {
  log('$', cmd, args.join(' '));
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

export function tempDir(prefix) { return mkdtempSync(join(tmpdir(), prefix)); }

export function removeDir(dir) { try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ } }

/**
 * Starts VS Code's own server (server-main.js from code-server's VS Code build) on 127.0.0.1 and resolves
 * once it listens. The smoke-test driver lets a test payload run an extension test suite (route A).
 */
export async function startVsCodeServer({ extensionsDir, dataDir, smokeTest = true, env = {} }) {
  const port = await freePort();
  const args = [serverMain, '--host', '127.0.0.1', '--port', String(port), '--without-connection-token',
    '--accept-server-license-terms', '--disable-telemetry', '--disable-workspace-trust',
    '--extensions-dir', extensionsDir, '--server-data-dir', dataDir];
  if (smokeTest) args.push('--enable-smoke-test-driver');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...OFFLINE_ENV, ...env }, detached: true });
  let out = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`VS Code server did not start in 60 s:\n${out}`)), 60_000);
    const onData = (d) => {
      out += d.toString();
      if (process.env.SAFE_WEIGHTS_E2E_VERBOSE) process.stdout.write(`[vscode-server] ${d}`);
      if (out.includes('Extension host agent listening')) { clearTimeout(timer); resolve(); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`VS Code server exited (${code}):\n${out}`)); });
  });
  child.removeAllListeners('exit');
  // keep draining its output so the pipe never fills
  child.stdout.on('data', (d) => { if (process.env.SAFE_WEIGHTS_E2E_VERBOSE) process.stdout.write(`[vscode-server] ${d}`); });
  child.stderr.on('data', (d) => { if (process.env.SAFE_WEIGHTS_E2E_VERBOSE) process.stdout.write(`[vscode-server] ${d}`); });
  return { port, child, url: `http://127.0.0.1:${port}`, stop: () => stopProcessGroup(child) };
}

/** Ends the process group we started (the server and the extension hosts it forked), by its pid. */
export function stopProcessGroup(child) {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const done = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } resolve(); }, 5000);
    child.once('exit', () => { clearTimeout(done); resolve(); });
    try { process.kill(-child.pid, 'SIGTERM'); } catch { clearTimeout(done); resolve(); }
  });
}

export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS, headless: true });
}

/** code-server and Chromium must be there; under CI=true a missing one is a failure, never a skip. */
export function ensurePrerequisites() {
  if (!existsSync(serverMain)) {
    run('bash', [join(root, 'scripts', 'e2e', 'install-code-server.sh'), codeServerDir]);
  }
  if (!existsSync(serverMain)) throw new Error(`code-server is missing at ${serverMain}`);
  if (!existsSync(chromiumPath)) {
    log('Chromium is missing: installing Debian chromium');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    spawnSync('apt-get', ['install', '-y', '-qq', 'chromium'], { stdio: 'inherit', env });
  }
  if (!existsSync(chromiumPath)) throw new Error(`Chromium is missing at ${chromiumPath} and could not be installed`);
}

/** Polls `fn` until it returns a truthy value or the time runs out. */
export async function waitFor(what, fn, timeoutMs = 60_000, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
