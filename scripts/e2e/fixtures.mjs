// Builds the end-to-end fixture workspace from scratch: Python code and a notebook that load models unsafely,
// a torch-style zip checkpoint whose pickle REDUCEs os.system (written byte by byte, never executed),
// a benign checkpoint, safetensors files, and files whose names, metadata and globals carry HTML/script to
// prove the Inspector shows them as text. Nothing here imports or runs Python.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// ------------------------------------------------------------------ pickle bytes
const enc = (s) => Buffer.from(s, 'utf8');
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
const op = {
  proto: (n) => Buffer.from([0x80, n]),
  global: (mod, name) => Buffer.concat([enc('c'), enc(mod), enc('\n'), enc(name), enc('\n')]),
  str: (s) => { const b = enc(s); return Buffer.concat([enc('X'), u32(b.length), b]); },
  int: (n) => (n < 256 ? Buffer.from([0x4b, n]) : Buffer.concat([enc('J'), u32(n)])),
  mark: enc('('), tuple: enc('t'), tuple1: Buffer.from([0x85]), tuple2: Buffer.from([0x86]),
  emptyTuple: enc(')'), emptyDict: enc('}'), setitems: enc('u'), reduce: enc('R'), binpersid: enc('Q'),
  newfalse: Buffer.from([0x89]), stop: enc('.'),
};
const cat = (...parts) => Buffer.concat(parts.flat());

/** torch._utils._rebuild_tensor_v2(persistent storage key, 0, shape, stride, False, OrderedDict()) */
function rebuildTensor(key, dtypeStorage, numel, shape) {
  const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const tup = (xs) => (xs.length === 1 ? cat(op.int(xs[0]), op.tuple1) : xs.length === 2 ? cat(op.int(xs[0]), op.int(xs[1]), op.tuple2) : cat(op.mark, xs.map(op.int), op.tuple));
  return cat(
    op.global('torch._utils', '_rebuild_tensor_v2'),
    op.mark,
    op.mark, op.str('storage'), op.global('torch', dtypeStorage), op.str(key), op.str('cpu'), op.int(numel), op.tuple, op.binpersid,
    op.int(0), tup(shape), tup(stride), op.newfalse,
    op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce,
    op.tuple, op.reduce);
}

/** A state dict {name: tensor} as torch.save writes it (protocol 2). */
function stateDictPickle(tensors) {
  return cat(op.proto(2), op.emptyDict, op.mark,
    tensors.map((t, i) => cat(op.str(t.name), rebuildTensor(String(i), 'FloatStorage', t.shape.reduce((a, b) => a * b, 1), t.shape))),
    op.setitems, op.stop);
}

/** {"epoch": 3, "model_state_dict": {fc.weight, fc.bias}, "loss_name": "mse"}: a training checkpoint (a
 *  load_file rewrite would lose the epoch; the conversion fix keeps it and rebuilds the dict). */
function trainingPickle() {
  return cat(op.proto(2), op.emptyDict, op.mark,
    op.str('epoch'), op.int(3),
    op.str('model_state_dict'), op.emptyDict, op.mark,
    op.str('fc.weight'), rebuildTensor('0', 'FloatStorage', 4, [2, 2]),
    op.str('fc.bias'), rebuildTensor('1', 'FloatStorage', 2, [2]),
    op.setitems,
    op.str('loss_name'), op.str('mse'),
    op.setitems, op.stop);
}

/** {"model": <benign tensor>, "hook": os.system("echo pwned")}: loading it runs a shell command. */
function maliciousPickle() {
  return cat(op.proto(2), op.emptyDict, op.mark,
    op.str('fc.weight'), rebuildTensor('0', 'FloatStorage', 4, [2, 2]),
    op.str('hook'), op.global('os', 'system'), op.str('echo pwned > /tmp/safe-weights-pwned'), op.tuple1, op.reduce,
    op.setitems, op.stop);
}

/** A pickle whose imported global's module and name are HTML/script. */
function htmlGlobalPickle() {
  return cat(op.proto(2), op.global('<img src=x onerror=alert(1)>', '<script>alert(2)</script>'), op.emptyTuple, op.reduce, op.stop);
}

// ------------------------------------------------------------------ zip (stored, no compression)
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; t[n] = c >>> 0; }
  return t;
})();
function crc32(buf) { let c = 0xffffffff; for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; }

function zipStored(entries) {
  const locals = []; const centrals = []; let offset = 0;
  for (const [name, data] of entries) {
    const n = enc(name); const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(0, 6); local.writeUInt16LE(0, 8);
    local.writeUInt32LE(0, 10); local.writeUInt32LE(crc, 14); local.writeUInt32LE(data.length, 18); local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26); local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6); central.writeUInt16LE(0, 8);
    central.writeUInt16LE(0, 10); central.writeUInt32LE(0, 12); central.writeUInt32LE(crc, 16); central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24); central.writeUInt16LE(n.length, 28); central.writeUInt32LE(offset, 42);
    locals.push(local, n, data); centrals.push(central, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(entries.length, 8); end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12); end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

function torchZip(prefix, pickle, storages) {
  return zipStored([
    [`${prefix}/data.pkl`, pickle],
    [`${prefix}/byteorder`, enc('little')],
    ...storages.map((s, i) => [`${prefix}/data/${i}`, s]),
    [`${prefix}/version`, enc('3\n')],
  ]);
}

const floats = (xs) => { const b = Buffer.alloc(xs.length * 4); xs.forEach((x, i) => b.writeFloatLE(x, i * 4)); return b; };

// ------------------------------------------------------------------ safetensors
export function safetensors(tensors, metadata) {
  const header = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0; const blobs = [];
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const data = floats(Array.from({ length: numel }, (_, i) => i / 10));
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [off, off + data.length] };
    off += data.length; blobs.push(data);
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, enc(json), ...blobs]);
}

// ------------------------------------------------------------------ the workspace
export const XSS = {
  tensor: '<img src=x onerror=alert(1)>.weight',
  metaKey: '<b>author</b>',
  metaValue: '<script>alert("meta")</script>',
  globalModule: '<img src=x onerror=alert(1)>',
  globalName: '<script>alert(2)</script>',
};

export const FILES = {
  python: 'app.py',
  fixes: 'fixes.py',
  notebook: 'analysis.ipynb',
  evil: 'checkpoints/evil.pt',
  benign: 'checkpoints/model.pt',
  training: 'checkpoints/training.pt',
  train: 'train.py',
  safetensors: 'checkpoints/model.safetensors',
  xssSafetensors: 'checkpoints/xss.safetensors',
  xssPickle: 'checkpoints/xss.pkl',
};

export function writeFixtureWorkspace(dir) {
  const w = (rel, data) => { const p = join(dir, rel); mkdirSync(join(p, '..'), { recursive: true }); writeFileSync(p, data); };
  w(FILES.python, [
    'import torch',
    '',
    'model = torch.load("checkpoints/evil.pt")',
    'print(model)',
    '',
  ].join('\n'));
  w(FILES.fixes, [
    'import pickle',
    'import torch',
    '',
    'state = torch.load("checkpoints/model.pt")',
    'with open("checkpoints/xss.pkl", "rb") as f:',
    '    obj = pickle.load(f)',
    '',
  ].join('\n'));
  const cell = (source) => ({ cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source });
  w(FILES.notebook, JSON.stringify({
    cells: [
      { cell_type: 'markdown', metadata: {}, source: ['# Load a checkpoint'] },
      cell(['import torch\n', 'weights = torch.load("checkpoints/model.pt")\n']),
      cell(['import pickle\n', 'obj = pickle.load(open("checkpoints/xss.pkl", "rb"))\n']),
    ],
    metadata: { kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' }, language_info: { name: 'python' } },
    nbformat: 4, nbformat_minor: 5,
  }, null, 1));
  w(FILES.evil, torchZip('evil', maliciousPickle(), [floats([1, 2, 3, 4])]));
  w(FILES.benign, torchZip('model', stateDictPickle([{ name: 'fc.weight', shape: [2, 2] }, { name: 'fc.bias', shape: [2] }]),
    [floats([1, 2, 3, 4]), floats([0.5, -0.5])]));
  w(FILES.training, torchZip('training', trainingPickle(), [floats([1, 2, 3, 4]), floats([0.5, -0.5])]));
  w(FILES.train, ['import torch', '', 'ckpt = torch.load("checkpoints/training.pt")', ''].join('\n'));
  w(FILES.safetensors, safetensors([{ name: 'fc.weight', shape: [2, 2] }, { name: 'fc.bias', shape: [2] }], { format: 'pt' }));
  w(FILES.xssSafetensors, safetensors([{ name: XSS.tensor, shape: [2] }, { name: 'ok.bias', shape: [1] }], { [XSS.metaKey]: XSS.metaValue }));
  w(FILES.xssPickle, htmlGlobalPickle());
  w('.vscode/settings.json', JSON.stringify({
    'workbench.startupEditor': 'none', 'security.workspace.trust.enabled': false, 'telemetry.telemetryLevel': 'off',
    'extensions.ignoreRecommendations': true, 'workbench.tips.enabled': false,
  }, null, 2));
  return dir;
}

// `node scripts/e2e/fixtures.mjs DIR` writes the workspace (handy when looking at it by hand)
if (process.argv[1] && process.argv[1].endsWith('fixtures.mjs') && process.argv[2]) {
  writeFixtureWorkspace(process.argv[2]);
  console.log(`fixture workspace written to ${process.argv[2]}`);
}
