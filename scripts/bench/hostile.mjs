// Hostile-structure benchmark (issue item "bounded work on hostile structure"): pickles of ~2 MB built to
// make a scanner do much more work or hold much more memory than their size: a million nested lists, dicts or
// tuples, deep MARK stacks, a million memo entries, memo DAGs whose tree is exponential, long REDUCE / BUILD /
// _rebuild_parameter chains, million-item SETITEMS / APPENDS (also on objects), a million bytes / floats /
// out-of-band buffers, one tensor reached half a million times through a 1 MB key, a third of a million imports,
// half a million computed calls; plain, some also as data.pkl of a torch zip, as a zlib-compressed joblib file and
// as sys_info of a legacy torch.save file. Each runs `safe-weights scan` (dist/cli.js) as a process, text and
// JSON output, some also through the Inspector's disassembly path (disassembleModelFile). Printed per run:
// seconds per MB of pickle (node's start-up included) and peak RSS against the targets (<= 1 s per MB,
// <= 100 MB + 20x the pickle's size), with node's bare start-up (`node -e 0`) measured in the same run.
// Needs `npm run build` (and `npm run compile-tests` for the disassembly rows). `--write DIR` only writes the
// files; other arguments select files by name prefix (node scripts/bench/hostile.mjs nest_ memo_).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cliJs = join(root, 'dist', 'cli.js');
const engineJs = join(root, 'out', 'server', 'src', 'models', 'scan.js');
const SIZE = 2 * 1024 * 1024;
const MB = 1024 * 1024;

// ---- pickles (opcodes written out as bytes; nothing here is executed) --------------------------------
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; };
const rep = (b, n) => { const x = bytes(b); return Buffer.alloc(x.length * n, x); };
const bytes = (p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
const cat = (...parts) => Buffer.concat(parts.map(bytes));
/** cat() of an array too long to spread into a call */
const catAll = (parts) => Buffer.concat(parts.map(bytes));
const P2 = '\x80\x02', P4 = '\x80\x04';
const OD = 'ccollections\nOrderedDict\nq\x00';   // GLOBAL collections.OrderedDict, BINPUT 0

/** torch._utils._rebuild_tensor_v2(persistent_load(('storage', FloatStorage, '0', 'cpu', 1)), 0, (1,), (1,), False, OrderedDict()) */
const TENSOR = cat('ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x01tQ',
  'K\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR');

/** Each builder returns a pickle of about `size` bytes. */
export const SHAPES = {
  // [[[...]]]: EMPTY_LIST x n, then APPEND x n-1
  nest_list: (size) => { const n = size / 2 | 0; return cat(P2, rep(']', n), rep('a', n - 1), '.'); },
  // MARK x n, then LIST x n
  nest_mark: (size) => { const n = size / 2 | 0; return cat(P2, rep('(', n), rep('l', n), '.'); },
  // {0: {0: {...}}}: EMPTY_DICT, (BININT1 0, EMPTY_DICT) x n, SETITEM x n
  nest_dict: (size) => { const n = size / 4 | 0; return cat(P2, '}', rep('K\x00}', n), rep('s', n), '.'); },
  // ((((None,),),),): TUPLE1 x n
  nest_tuple1: (size) => cat(P2, 'N', rep('\x85', size - 4), '.'),
  // MARK x n with nothing closing them
  deep_marks: (size) => cat(P2, rep('(', size - 4), 'N.'),
  // one list with a million items (APPENDS)
  wide_list: (size) => cat(P2, '](', rep('K\x01', (size - 6) / 2 | 0), 'e.'),
  // one dict with distinct str keys (SETITEMS)
  wide_dict: (size) => {
    const n = (size - 6) / 9 | 0, parts = [P2, '}('];
    for (let i = 0; i < n; i++) parts.push(`\x8c\x06${(i % 1e6).toString(36).padStart(6, '0')}N`);
    parts.push('u.'); return catAll(parts);
  },
  // SETITEM a million times into one dict (same key)
  setitem_many: (size) => cat(P2, '}', rep('K\x00K\x01s', (size - 4) / 5 | 0), '.'),
  // a million memo entries: MEMOIZE after every push, all kept on the stack
  memo_many: (size) => cat(P4, '](', rep('K\x01\x94', (size - 6) / 3 | 0), 'e.'),
  // a DAG: t_i = (t_{i-1}, t_{i-1}) through LONG_BINGET; its tree has 2^levels leaves
  memo_dag_tuple: (size) => {
    const n = (size - 10) / 16 | 0, parts = [P2, ')r', u32(0)];
    for (let i = 1; i <= n; i++) parts.push('j', u32(i - 1), 'j', u32(i - 1), '\x86r', u32(i));
    parts.push('.'); return catAll(parts);
  },
  // the same with lists: l_i = [l_{i-1}, l_{i-1}]
  memo_dag_list: (size) => {
    const n = (size - 10) / 18 | 0, parts = [P2, ']r', u32(0)];
    for (let i = 1; i <= n; i++) parts.push(']r', u32(i), '(j', u32(i - 1), 'j', u32(i - 1), 'e');
    parts.push('.'); return catAll(parts);
  },
  // one list holding the same small list a million times
  memo_fanout: (size) => cat(P2, ']q\x00K\x01a](', rep('h\x00', (size - 12) / 2 | 0), 'e.'),
  // OrderedDict((OrderedDict((...,)),)): REDUCE of a safe global nested n deep
  reduce_chain: (size) => { const n = (size - 40) / 4 | 0; return cat(P2, OD, rep('h\x00', n), ')R', rep('\x85R', n - 1), '.'); },
  // o_1.__setstate__(o_2.__setstate__(...)): BUILD chain of OrderedDict() objects
  build_chain: (size) => { const n = (size - 40) / 5 | 0; return cat(P2, OD, rep('h\x00)R', n), rep('b', n - 1), '.'); },
  // a million SETITEMS entries into an OrderedDict() object
  setitems_object: (size) => cat(P2, OD, ')R(', rep('K\x00K\x01', (size - 40) / 4 | 0), 'u.'),
  // a million APPENDS items into an OrderedDict() object
  appends_object: (size) => cat(P2, OD, ')R(', rep('K\x01', (size - 40) / 2 | 0), 'e.'),
  // a million DICT items from one MARK
  mark_dict: (size) => cat(P2, '(', rep('K\x00K\x01', (size - 6) / 4 | 0), 'd.'),
  // a million empty bytes values, floats, short non-ASCII strs, out-of-band buffers
  bytes_many: (size) => cat('\x80\x03](', rep('C\x00', (size - 6) / 2 | 0), 'e.'),
  floats_many: (size) => cat(P2, '](', rep('G\x3f\xf0\x00\x00\x00\x00\x00\x00', (size - 6) / 9 | 0), 'e.'),
  strs_many: (size) => cat(P4, '](', rep('\x8c\x02\xc3\xa9', (size - 6) / 4 | 0), 'e.'),
  oob_many: (size) => cat('\x80\x05](', rep('\x97', size - 6), 'e.'),
  // a dict key of 1 MB over a list holding one tensor 500,000 times: every tensor's name starts with the key
  long_key_fanout: (size) => {
    const key = 1 << 20;
    const tensor = cat(TENSOR, 'q\x01');
    const n = (size - key - tensor.length - 40) / 2 | 0;
    return cat(P2, '}X', u32(key), Buffer.alloc(key, 0x41), '](', tensor, rep('h\x01', n), 'es.');
  },
  // 350,000 imports of one safe global (STACK_GLOBAL of memoized names, then POP): a GlobalRecord, a policy
  // judgement and a report row candidate each (machine.ts addGlobal, verdict.ts finalize)
  globals_many: (size) => cat(P4, '\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94', rep('h\x00h\x01\x930', (size - 40) / 6 | 0), 'N.'),
  // 500,000 calls of a computed value (None()): a machine finding each (machine.ts call / note)
  computed_calls: (size) => cat(P2, rep('N)R0', (size - 6) / 4 | 0), 'N.'),
  // torch._utils._rebuild_parameter(_rebuild_parameter(...(tensor)...)) nested 350,000 deep
  param_chain: (size) => {
    const n = (size - TENSOR.length - 80) / 6 | 0;
    return cat(P2, 'ctorch._utils\n_rebuild_parameter\nq\x00', rep('h\x00', n), TENSOR, rep('\x89)\x87R', n), '.');
  },
};

/** A legacy torch.save file (five pickles: magic, protocol, sys_info, object, storage keys) whose sys_info is `pkl`. */
export function legacyTorch(pkl) {
  return cat(P2, '\x8a\x0a', Buffer.from('6cfc9c46f9206aa85019', 'hex'), '.', P2, 'M\xe9\x03.', pkl, P2, '}.', P2, '].');
}

/** A stored zip holding `pkl` as archive/data.pkl (what torch.load reads), plus archive/version. */
export function torchZip(pkl) {
  const entries = [['archive/data.pkl', pkl], ['archive/version', Buffer.from('3\n')]];
  const locals = [], central = [];
  let off = 0;
  for (const [name, data] of entries) {
    const nb = Buffer.from(name), crc = crc32(data);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0); h.writeUInt16LE(20, 4); h.writeUInt16LE(0x21, 12);
    h.writeUInt32LE(crc, 14); h.writeUInt32LE(data.length, 18); h.writeUInt32LE(data.length, 22); h.writeUInt16LE(nb.length, 26);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0); c.writeUInt16LE(20, 4); c.writeUInt16LE(20, 6); c.writeUInt16LE(0x21, 14);
    c.writeUInt32LE(crc, 16); c.writeUInt32LE(data.length, 20); c.writeUInt32LE(data.length, 24); c.writeUInt16LE(nb.length, 28);
    c.writeUInt32LE(off, 42);
    locals.push(h, nb, data); central.push(c, nb);
    off += 30 + nb.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(entries.length, 8); end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(off, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** joblib.dump(..., compress='zlib') writes the pickle as one zlib stream. */
export const joblibZlib = (pkl) => deflateSync(pkl);

// ---- measuring -----------------------------------------------------------------------------------------
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

// Peak RSS of a child: a preloaded snippet writes the process's own high-water RSS to fd 3 when it exits.
// VmHWM (Linux) belongs to the process's memory map, which exec replaces; getrusage's maxRSS is not used
// where /proc is there: Linux carries it across exec, so a child of this (big) node process would report at
// least the parent's RSS at fork time.
const PRELOAD = `process.on('exit',()=>{const fs=require('fs');let b=process.resourceUsage().maxRSS*1024;` +
  `try{const m=/VmHWM:\\s*(\\d+) kB/.exec(fs.readFileSync('/proc/self/status','utf8'));if(m)b=+m[1]*1024}catch{}` +
  `try{fs.writeSync(3,String(b))}catch{}})`;

/** Wall time, exit status, stdout and peak RSS of `node ...args` run as a process (killed after TIMEOUT_MS). */
const TIMEOUT_MS = 60_000;
function runMeasured(args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['-r', preloadFile, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], maxBuffer: 1 << 30, timeout: TIMEOUT_MS });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, status: r.status ?? r.signal, rss: Number(r.output[3]?.toString() || NaN), stdout: r.stdout.toString(), err: r.stderr.toString().slice(0, 300) };
}
let preloadFile = '';

function verdictOf(stdout) {
  try { return JSON.parse(stdout).files[0].verdict; } catch { return '?'; }
}

async function main() {
  const writeAt = process.argv.indexOf('--write');
  const dir = writeAt >= 0 ? process.argv[writeAt + 1] : join(tmpdir(), `sw-hostile-${process.pid}`);
  const only = process.argv.slice(2).filter((a, i, all) => a !== '--write' && all[i - 1] !== '--write');
  mkdirSync(dir, { recursive: true });
  const files = [];
  for (const [name, make] of Object.entries(SHAPES)) {
    const pkl = make(SIZE);
    files.push({ name: `${name}.pkl`, bytes: pkl, pickleBytes: pkl.length });
    if (['nest_list', 'memo_dag_list', 'build_chain', 'wide_dict', 'nest_tuple1'].includes(name)) {
      files.push({ name: `${name}.pt`, bytes: torchZip(pkl), pickleBytes: pkl.length });
      files.push({ name: `${name}.joblib`, bytes: joblibZlib(pkl), pickleBytes: pkl.length });
    }
    if (name === 'nest_list') files.push({ name: 'nest_list.legacy.pt', bytes: legacyTorch(pkl), pickleBytes: pkl.length + 30 });
  }
  const chosen = files.filter((f) => only.length === 0 || only.some((o) => f.name.startsWith(o)));
  for (const f of chosen) { f.path = join(dir, f.name); writeFileSync(f.path, f.bytes); }
  if (writeAt >= 0) { console.log(`wrote ${chosen.length} files to ${dir}`); return; }
  if (!existsSync(cliJs)) { console.log(`MISS  ${cliJs} missing: run npm run build`); return; }
  preloadFile = join(dir, '_rss.js');
  writeFileSync(preloadFile, PRELOAD);
  try {
    const base = [];
    for (let i = 0; i < 5; i++) base.push(runMeasured(['-e', '0']));
    const baseMs = median(base.map((b) => b.ms)), baseRss = median(base.map((b) => b.rss));
    console.log(`node bare start-up (node -e 0, median of 5, same run): ${(baseMs / 1000).toFixed(3)} s, peak RSS ${(baseRss / MB).toFixed(1)} MB`);
    console.log('targets: time <= 1 s per MB of pickle (bare start-up included); peak RSS <= 100 MB + 20 x pickle size');
    console.log('each row: the better of 2 runs; "disasm" = disassembleModelFile (the Inspector: disassembly + decompiled view)');
    console.log(`${'file'.padEnd(22)} ${'path'.padEnd(6)} ${'pickle'.padStart(7)} ${'time'.padStart(7)} ${'s/MB'.padStart(5)} ${'peak RSS'.padStart(8)} ${'limit'.padStart(6)}        verdict`);
    let miss = 0, rows = 0;
    const disasmFor = new Set(['nest_list.pkl', 'nest_tuple1.pkl', 'memo_dag_list.pkl', 'memo_fanout.pkl', 'build_chain.pkl', 'reduce_chain.pkl', 'wide_dict.pkl', 'memo_dag_list.pt', 'param_chain.pkl']);
    for (const f of chosen) {
      const ways = [['text', [cliJs, 'scan', '--fail-on', 'never', f.path]], ['json', [cliJs, 'scan', '--format', 'json', '--fail-on', 'never', f.path]]];
      if (disasmFor.has(f.name) && existsSync(engineJs)) {
        ways.push(['disasm', ['-e', `require(${JSON.stringify(engineJs)}).disassembleModelFile(${JSON.stringify(f.path)})` +
          `.then(d=>process.stdout.write(JSON.stringify({files:[{verdict:(d.truncated?'truncated ':'')+(d.text.length+d.decompiled.length)+' chars'}]})))`]]);
      }
      for (const [how, args] of ways) {
        const first = runMeasured(args);
        const runs = first.status === 0 ? [first, runMeasured(args)] : [first];   // a run that failed or timed out is not repeated
        const ms = Math.min(...runs.map((r) => r.ms)), rss = Math.min(...runs.map((r) => r.rss));
        const r = runs[0];
        const mb = f.pickleBytes / MB;
        const sPerMb = ms / 1000 / mb, limit = 100 * MB + 20 * f.pickleBytes;
        const exited = r.status === 0;
        const ok = sPerMb <= 1 && rss <= limit && exited;
        if (!ok) miss++;
        rows++;
        let v = '';
        if (how === 'json' || how === 'disasm') v = verdictOf(r.stdout);
        else v = r.stdout.split(' ')[0].toLowerCase();
        console.log(`${f.name.padEnd(22)} ${how.padEnd(6)} ${(mb.toFixed(1) + 'MB').padStart(7)} ${(ms / 1000).toFixed(2).padStart(6)}s ${sPerMb.toFixed(2).padStart(5)} ${((rss / MB).toFixed(0) + 'MB').padStart(8)} ${((limit / MB).toFixed(0) + 'MB').padStart(6)} ${ok ? 'PASS' : 'MISS'}  ${exited ? v : `exit ${r.status}: ${r.err.split('\n').slice(0, 3).join(' / ')}`}`);
      }
    }
    console.log(`${miss === 0 ? 'PASS' : 'MISS'}  ${rows - miss} / ${rows} runs within 1 s/MB and 100 MB + 20x the pickle's size`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
