// Code-rule benchmarks (issue 3 targets), each measured against a reference timed in the same run:
//  (a) `safe-weights scan` (dist/cli.js) over Debian python3-torch's Python tree against
//      `bandit -q -r -t B301,B302,B403,B506 -f json` over the same tree. Target: >= 20x faster.
//  (b) didChange -> publishDiagnostics latency on a 10,000-line file through the real protocol
//      (`node dist/server.js --stdio`), 60 edits. Target: p95 <= 30 ms.
//  (c) the same on issue 12's file: a finding every six lines (1,667 diagnostics), a function-local import in each
//      function. Targets: p95 <= 30 ms for keystrokes in function bodies, <= 100 ms for edits of import lines,
//      measured as VS Code's client meets this server: didChange, then textDocument/diagnostic (pull) to its answer.
//      The same keystrokes pushed (publishDiagnostics, for clients without pull) are printed for reference.
// Needs `npm run build`. Debian `bandit` (apt-get install -y bandit) and python3-torch.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TREE = process.env.SAFE_WEIGHTS_TORCH_TREE ?? '/usr/lib/python3/dist-packages/torch';
const cli = join(root, 'dist', 'cli.js');
const server = join(root, 'dist', 'server.js');
const verdictLine = (ok, what) => console.log(`${ok ? 'PASS' : 'MISS'}  ${what}`);
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };

function timed(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, r };
}

function benchCli() {
  console.log(`(a) scan of ${TREE} vs bandit`);
  if (!existsSync(TREE)) { console.log(`MISS  ${TREE} not found (apt-get install -y python3-torch)`); return; }
  if (!existsSync(cli)) { console.log('MISS  dist/cli.js missing: run npm run build'); return; }
  const which = spawnSync('bandit', ['--version'], { encoding: 'utf8' });
  if (which.error) { console.log('MISS  bandit not installed (apt-get install -y bandit)'); return; }
  // same page-cache state for both tools: read the tree once before timing either
  spawnSync('sh', ['-c', `find "${TREE}" -name '*.py' -exec cat {} + > /dev/null`]);
  const ours = timed(process.execPath, [cli, 'scan', '--format', 'json', TREE]);
  let findings = '?';
  try {
    const j = JSON.parse(ours.r.stdout);
    const files = Array.isArray(j) ? j : j.files ?? j.reports ?? [];
    findings = files.reduce((n, f) => n + (f.findings?.length ?? 0), 0);
  } catch { /* printed below */ }
  if (ours.r.status !== 0 && ours.r.status !== 1 && ours.r.status !== 2) {
    console.log(`MISS  safe-weights scan failed (${ours.r.status}): ${ours.r.stderr.slice(0, 500)}`);
    return;
  }
  const bandit = timed('bandit', ['-q', '-r', '-t', 'B301,B302,B403,B506', '-f', 'json', TREE]);
  let banditFindings = '?';
  try { banditFindings = JSON.parse(bandit.r.stdout).results.length; } catch { /* keep ? */ }
  const ratio = bandit.ms / ours.ms;
  console.log(`    safe-weights scan: ${(ours.ms / 1000).toFixed(2)} s (${findings} findings)`);
  console.log(`    bandit:            ${(bandit.ms / 1000).toFixed(2)} s (${banditFindings} findings)`);
  verdictLine(ratio >= 20, `safe-weights is ${ratio.toFixed(1)}x faster than bandit (target >= 20x)`);
}

function lspClient() {
  // started as the client starts it (server/src/lsp/serverFlags.json), plus BENCH_NODE_ARGS
  const flags = JSON.parse(readFileSync(new URL('../../server/src/lsp/serverFlags.json', import.meta.url), 'utf8')).execArgv;
  const proc = spawn(process.execPath, [...flags, ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), server, '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
  // chunks are kept until a whole message has arrived and joined once, as vscode-jsonrpc's reader does (joining on
  // every 64 KB chunk copied a 1,666-diagnostic message ~13 times and counted that in the server's latency)
  let buf = Buffer.alloc(0);
  let chunks = [], pending = 0, need = 0;
  const waiting = new Map();
  const listeners = [];
  proc.stdout.on('data', (d) => {
    chunks.push(d); pending += d.length;
    if (pending < need) return;
    buf = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    chunks = []; pending = 0; need = 0;
    for (;;) {
      const sep = buf.indexOf('\r\n\r\n');
      if (sep === -1) { if (buf.length) { chunks = [buf]; pending = buf.length; } return; }
      const len = Number(/Content-Length: (\d+)/i.exec(buf.slice(0, sep).toString())[1]);
      if (buf.length < sep + 4 + len) { chunks = [buf]; pending = buf.length; need = sep + 4 + len; return; }
      const msg = JSON.parse(buf.slice(sep + 4, sep + 4 + len).toString());
      buf = buf.slice(sep + 4 + len);
      if (msg.id !== undefined && msg.method) send({ jsonrpc: '2.0', id: msg.id, result: null });
      else if (msg.id !== undefined) waiting.get(msg.id)?.(msg.result);
      else for (const l of listeners) l(msg);
    }
  });
  const send = (m) => { const s = JSON.stringify(m); proc.stdin.write(`Content-Length: ${Buffer.byteLength(s)}\r\n\r\n${s}`); };
  let id = 0;
  const request = (method, params) => new Promise((res) => { waiting.set(++id, res); send({ jsonrpc: '2.0', id, method, params }); });
  return { proc, send, request, onMessage: (l) => listeners.push(l) };
}

async function benchLatency() {
  console.log('(b) didChange -> publishDiagnostics on a 10,000-line file');
  if (!existsSync(server)) { console.log('MISS  dist/server.js missing: run npm run build'); return; }
  // Ordinary training code: many calls, a few of them named load/open/save but harmless (json, self, files),
  // and one unsafe load every 500 lines.
  const header = ['import json', 'import os', 'import torch', 'import pickle as pk', 'from yaml import load as yl', ''];
  const block = (k) => [
    `def step_${k}(model, batch, opts):`, '    """One optimisation step."""', '    total = 0.0',
    '    for x, y in batch:', '        out = model(x)', '        loss = (out - y).pow(2).mean()', '        loss.backward()',
    '        total += float(loss.item())', '    with open(opts["log"], "a") as fh:', '        fh.write(json.dumps({"loss": total}))',
    '    meta = json.load(open(os.path.join(opts["dir"], "meta.json")))', '    return total, meta', '',
    `class Runner_${k}:`, '    def __init__(self, path):', '        self.path = path', '        self.cache = {}',
    '    def load(self, name):', '        if name not in self.cache:', '            self.cache[name] = self.read(name)',
    '        return self.cache[name]', '    def read(self, name):', '        with open(os.path.join(self.path, name)) as fh:',
    '            return fh.read()', '    def save(self, name, value):', '        self.cache[name] = value',
    '        return [v for v in self.cache.values() if v is not None]', '',
    ...(k % 10 === 0 ? ['state = torch.load("ckpt.pt", map_location="cpu")', 'cfg = yl(open("c.yml"))', 'obj = pk.loads(blob)'] : ['x = 1', 'y = 2', 'z = x + y']),
    '', `result_${k} = [step_${k}(m, b, {"log": "l", "dir": "."}) for m, b in pairs]`, '',
  ];
  const lines = [...header];
  for (let k = 0; lines.length < 10000; k++) lines.push(...block(k));
  lines.length = 10000;
  const text = lines.join('\n') + '\n';
  const c = lspClient();
  await c.request('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
  c.send({ jsonrpc: '2.0', method: 'initialized', params: {} });
  const uri = 'file:///tmp/safe-weights-bench/big.py';
  let resolveNext;
  c.onMessage((m) => { if (m.method === 'textDocument/publishDiagnostics' && m.params.uri === uri) resolveNext?.(m.params); });
  const next = () => new Promise((r) => { resolveNext = r; });
  let p = next();
  c.send({ jsonrpc: '2.0', method: 'textDocument/didOpen', params: { textDocument: { uri, languageId: 'python', version: 1, text } } });
  const first = await p;
  console.log(`    opened: ${first.diagnostics.length} diagnostics`);
  // Five warm-up edits first (the server's first keystrokes compile the incremental paths; reported apart).
  const warm = [];
  for (let i = 0; i < 5; i++) {
    const change = { range: { start: { line: 50, character: 0 }, end: { line: 50, character: i % 2 ? 1 : 0 } }, text: i % 2 ? '' : '#' };
    p = next();
    const t0 = process.hrtime.bigint();
    c.send({ jsonrpc: '2.0', method: 'textDocument/didChange', params: { textDocument: { uri, version: 100 + i }, contentChanges: [change] } });
    await p;
    warm.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  console.log(`    warm-up edits (not counted): ${warm.map((t) => t.toFixed(1)).join(', ')} ms`);
  const times = [];
  const counts = new Set();
  // Server CPU time (user+system, from /proc) over the edits: independent of other load on a shared machine.
  const cpu = () => { try { const f = readFileSync(`/proc/${c.proc.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; } catch { return NaN; } };
  const cpu0 = cpu();
  for (let i = 0; i < 60; i++) {
    const line = 100 + ((i * 997) % 9800);
    // Alternate between typing a character into a statement and removing it again.
    const change = i % 2 === 0
      ? { range: { start: { line, character: 0 }, end: { line, character: 0 } }, text: '#' }
      : { range: { start: { line: 100 + (((i - 1) * 997) % 9800), character: 0 }, end: { line: 100 + (((i - 1) * 997) % 9800), character: 1 } }, text: '' };
    p = next();
    const t0 = process.hrtime.bigint();
    c.send({ jsonrpc: '2.0', method: 'textDocument/didChange', params: { textDocument: { uri, version: i + 200 }, contentChanges: [change] } });
    const d = await p;
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    counts.add(d.diagnostics.length);
  }
  const cpuPerEdit = (cpu() - cpu0) / times.length;
  await c.request('shutdown', null);
  c.send({ jsonrpc: '2.0', method: 'exit', params: null });
  await new Promise((r) => { c.proc.on('exit', r); setTimeout(() => { c.proc.kill(); r(); }, 3000); });
  const p50 = pct(times, 50);
  const p95 = pct(times, 95);
  if (process.env.BENCH_VERBOSE) console.log(`    all: ${times.map((t) => t.toFixed(0)).join(" ")}`);
  console.log(`    ${times.length} edits: p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms (diagnostic counts seen: ${[...counts].join(', ')})`);
  console.log(`    server CPU per edit (parse + analysis + protocol): ${cpuPerEdit.toFixed(1)} ms; machine load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs`);
  verdictLine(p95 <= 30, `didChange -> publishDiagnostics p95 ${p95.toFixed(1)} ms (target <= 30 ms)`);
}

/** Opens `text` in a fresh server and times each edit of `edits` (each applied, then undone) to fresh diagnostics:
 *  with `pull` (what VS Code's client does when the server offers it), didChange then textDocument/diagnostic to
 *  its answer ("unchanged" or the full list); without, didChange to the next publishDiagnostics. */
async function timeEdits(text, edits, { rounds = 1, pull = false } = {}) {
  const c = lspClient();
  const capabilities = pull ? { textDocument: { diagnostic: { dynamicRegistration: false } }, workspace: { diagnostics: { refreshSupport: true } } } : {};
  const init = await c.request('initialize', { processId: process.pid, rootUri: null, capabilities });
  if (pull && !init?.capabilities?.diagnosticProvider) throw new Error('the server does not offer pull diagnostics');
  c.send({ jsonrpc: '2.0', method: 'initialized', params: {} });
  const uri = 'file:///tmp/safe-weights-bench/dense.py';
  let resolveNext;
  c.onMessage((m) => { if (m.method === 'textDocument/publishDiagnostics' && m.params.uri === uri) resolveNext?.(m.params); });
  const next = () => new Promise((r) => { resolveNext = r; });
  let resultId;
  let lastCount = 0;
  const unchanged = { n: 0 };
  // the diagnostics after a change: pushed, or pulled (an "unchanged" answer keeps the count of the last full one)
  const fresh = async () => {
    if (!pull) return (await next()).diagnostics.length;
    const r = await c.request('textDocument/diagnostic', { textDocument: { uri }, previousResultId: resultId });
    if (r.kind === 'unchanged') unchanged.n++; else lastCount = r.items.length;
    resultId = r.resultId;
    return lastCount;
  };
  let p = pull ? undefined : next();
  c.send({ jsonrpc: '2.0', method: 'textDocument/didOpen', params: { textDocument: { uri, languageId: 'python', version: 1, text } } });
  const opened = pull ? await fresh() : (await p).diagnostics.length;
  let version = 1;
  const change = async (ch) => {
    p = pull ? undefined : next();
    const t0 = process.hrtime.bigint();
    c.send({ jsonrpc: '2.0', method: 'textDocument/didChange', params: { textDocument: { uri, version: ++version }, contentChanges: [ch] } });
    const n = pull ? await fresh() : (await p).diagnostics.length;
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, n };
  };
  const times = [];
  const counts = new Set();
  const cpu = () => { try { const f = readFileSync(`/proc/${c.proc.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; } catch { return NaN; } };
  let cpu0 = 0;
  for (let round = -1; round < rounds; round++) {   // round -1 warms up (not counted)
    if (round === 0) { cpu0 = cpu(); unchanged.n = 0; }
    for (const e of edits) {
      const at = { line: e.line, character: e.character };
      const typed = await change({ range: { start: at, end: at }, text: e.text });
      const undone = await change({ range: { start: at, end: { line: e.line, character: e.character + e.text.length } }, text: '' });
      if (round >= 0) { times.push(typed.ms, undone.ms); counts.add(typed.n); counts.add(undone.n); }
    }
  }
  const cpuPerEdit = (cpu() - cpu0) / times.length;
  await c.request('shutdown', null);
  c.send({ jsonrpc: '2.0', method: 'exit', params: null });
  await new Promise((r) => { c.proc.on('exit', r); setTimeout(() => { c.proc.kill(); r(); }, 3000); });
  return { opened, times, counts, cpuPerEdit, unchanged: unchanged.n };
}

// The file of issue 12: 10,000 lines, a finding every six lines (1,667 diagnostics), a function-local
// `import torch` in each function.
async function benchLatencyDense() {
  console.log('(c) didChange -> fresh diagnostics (pulled, or published) on a 10,000-line file with a finding every six lines');
  if (!existsSync(server)) { console.log('MISS  dist/server.js missing: run npm run build'); return; }
  const lines = ['import os', 'import json', '', ''];
  while (lines.length < 10000) {
    const k = lines.length;
    lines.push(`def load_${k}(path):`, '    import torch', '    data = json.loads(os.environ.get("X", "{}"))',
      '    model = torch.load(path)', '    model.update(data)', '    return model');
  }
  lines.length = 10000;
  const text = lines.join('\n') + '\n';
  const fnStart = (i) => 4 + 6 * ((i * 397) % 1660);
  // keystrokes in function bodies: a character typed at the end of `model.update(data)` and deleted again
  const body = Array.from({ length: 30 }, (_, i) => ({ line: fnStart(i) + 4, character: '    model.update(data)'.length, text: 'x' }));
  // edits of import lines: the module's `import os` and `import json` (every function calls `json.loads`, which the
  // word pre-check finds no target behind: the import is re-analysed alone), and a function's `import torch`
  // (`import torchx` unbinds torch there)
  const imports = Array.from({ length: 12 }, (_, i) => [
    { line: 0, character: 'import os'.length, text: 'x' },
    { line: fnStart(i) + 1, character: '    import torch'.length, text: 'x' },
    { line: 1, character: 'import json'.length, text: 'x' },
  ][i % 3]);
  // an import edit that names a module the rules know (`import os, pickle`): every function is analysed again
  const guarded = Array.from({ length: 6 }, () => ({ line: 0, character: 'import os'.length, text: ', pickle' }));
  const report = (what, r, target) => {
    const p50 = pct(r.times, 50), p95 = pct(r.times, 95);
    const answers = r.unchanged !== undefined && r.pulled ? `; ${r.unchanged} of ${r.times.length} pulls answered "unchanged"` : '';
    console.log(`    ${what}: ${r.times.length} edits, p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${Math.max(...r.times).toFixed(1)} ms, server CPU ${r.cpuPerEdit.toFixed(1)} ms per edit (diagnostics: ${r.opened} on open; counts seen ${[...r.counts].join(', ')}${answers})`);
    if (process.env.BENCH_VERBOSE) console.log(`    all: ${r.times.map((t) => t.toFixed(0)).join(' ')}`);
    if (target) verdictLine(p95 <= target, `${what}: p95 ${p95.toFixed(1)} ms (target <= ${target} ms)`);
  };
  // pulled, as VS Code's client does with this server (the targets); pushed, for clients without pull (reference)
  const pulled = async (edits, opts) => ({ ...(await timeEdits(text, edits, { ...opts, pull: true })), pulled: true });
  report('keystrokes in function bodies (pull)', await pulled(body), 30);
  report('edits of import lines (pull)', await pulled(imports, { rounds: 2 }), 100);
  report('edits of import lines naming a module the rules know (pull, whole analysis)', await pulled(guarded), 100);
  report('keystrokes in function bodies (push, for clients without pull; no target)', await timeEdits(text, body));
  console.log(`    machine load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs`);
}

// `node scripts/bench/code.mjs cli|latency|dense` runs one part only.
const part = process.argv[2];
if (!part || part === 'cli') benchCli();
if (!part || part === 'latency') await benchLatency();
if (!part || part === 'dense') await benchLatencyDense();
