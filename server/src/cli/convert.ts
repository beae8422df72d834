// `safe-weights convert IN [-o OUT] [--force]`: PyTorch checkpoint → .safetensors, without executing it.
// Exit codes: 0 converted and verified, 1 refused (unsafe file, unsupported content, existing output),
// 2 usage or I/O error.
import * as path from 'node:path';
import { convertToSafetensors, ConvertRefused, ConvertCancelled } from '../models/convert/convert';
import { convertShardedIndex } from '../models/convert/convertSharded';
import { escapeTerminal as esc, plainError } from './terminalText';

/** Signals that stop a conversion: each cancels it (the temporary file is removed) before the process exits. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const SIGNAL_NUMBER: Record<(typeof STOP_SIGNALS)[number], number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

const USAGE = 'usage: safe-weights convert IN [-o OUT] [--force] [--fsync] [--whole]   (IN may be a pytorch_model.bin.index.json of a sharded checkpoint;\n       --fsync flushes the output to disk before it is renamed into place;\n       --whole keeps the whole checkpoint: every tensor by its dotted path, every other value in __metadata__)\n';

/** Default output: the input with its extension (e.g. .pt, .bin, .ckpt) replaced by .safetensors. */
export function defaultOutput(input: string): string {
  const ext = path.extname(input);
  const base = ext ? input.slice(0, -ext.length) : input;
  // HF names: pytorch_model.bin → model.safetensors, pytorch_model-00001-of-00002.bin → model-00001-of-00002.safetensors
  const dir = path.dirname(base), name = path.basename(base);
  const renamed = name.startsWith('pytorch_model') ? `model${name.slice('pytorch_model'.length)}` : name;
  return path.join(dir, `${renamed}.safetensors`);
}

export async function convertCli(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WriteStream = process.stderr): Promise<number> {
  let input: string | undefined, output: string | undefined, force = false, durable = false, whole = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-o' || a === '--output') {
      output = argv[++i];
      if (output === undefined) { err.write(`safe-weights convert: ${a} needs a path\n${USAGE}`); return 2; }
    } else if (a === '-f' || a === '--force') force = true;
    else if (a === '--fsync') durable = true;
    else if (a === '--whole') whole = true;
    else if (a === '-h' || a === '--help') { out.write(USAGE); return 0; }
    else if (a.startsWith('-') && a !== '-') { err.write(`safe-weights convert: unknown option ${a}\n${USAGE}`); return 2; }
    else if (input === undefined) input = a;
    else { err.write(`safe-weights convert: one input file at a time\n${USAGE}`); return 2; }
  }
  if (!input) { err.write(USAGE); return 2; }
  const sharded = input.endsWith('.index.json');
  if (!sharded) output ??= defaultOutput(input);

  const tty = !!err.isTTY;
  let last = 0;
  const onProgress = tty ? (done: number, total: number) => {
    const now = Date.now();
    if (now - last < 100 && done < total) return;
    last = now;
    const width = 30, frac = total ? done / total : 1;
    const filled = Math.round(frac * width);
    err.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% writing and verifying`);
  } : undefined;
  const ac = new AbortController();
  let stoppedBy: (typeof STOP_SIGNALS)[number] | undefined;
  const handlers = STOP_SIGNALS.map((sig) => {
    const h = () => { stoppedBy ??= sig; ac.abort(); };
    process.once(sig, h);
    return [sig, h] as const;
  });
  try {
    if (sharded) {
      const r = await convertShardedIndex(input, output, { overwrite: force, onProgress, signal: ac.signal, durable });
      if (tty) err.write('\r' + ' '.repeat(50) + '\r');
      for (const sh of r.shards) out.write(`${esc(sh.input)} → ${esc(path.relative(process.cwd(), sh.output) || sh.output)}: ${sh.tensors} tensors, ${sh.bytes} bytes, verified\n`);
      out.write(`index → ${esc(path.relative(process.cwd(), r.index) || r.index)}\n`);
      return 0;
    }
    const r = await convertToSafetensors(input, output as string, { overwrite: force, onProgress, signal: ac.signal, durable, structure: whole });
    if (tty) err.write('\r' + ' '.repeat(50) + '\r');
    out.write(`${esc(input)} → ${esc(path.relative(process.cwd(), r.output) || r.output)}: ${r.tensors} tensors, ${r.bytes} bytes, verified\n`);
    if (r.removedAliases.length) out.write(`  tied weights not stored twice (listed in __metadata__): ${esc(r.removedAliases.join(', '))}\n`);
    if (r.dropped.length) out.write(`  left out (outside the state dict): ${esc(r.dropped.join(', '))}\n`);
    if (r.structure) out.write('  every other value of the checkpoint is in __metadata__["safe_weights.structure"]\n');
    if (r.leftOutCount) {
      const more = r.leftOutCount > r.leftOut.length ? `, and ${r.leftOutCount - r.leftOut.length} more` : '';
      out.write(`  left out (not tensors; --whole keeps them when they can be rebuilt): ${esc(r.leftOut.slice(0, 10).join(', '))}${r.leftOut.length > 10 ? `, ... (${r.leftOutCount} in all)` : more}\n`);
    }
    return 0;
  } catch (e) {
    if (tty) err.write('\n');
    if (e instanceof ConvertRefused) { err.write(`safe-weights convert: ${esc(e.message)}${/already exists/.test(e.message) ? ' (--force replaces it)' : ''}\n`); return 1; }
    if (e instanceof ConvertCancelled) {
      err.write(`safe-weights convert: ${stoppedBy ? `stopped by ${stoppedBy}` : 'cancelled'}, nothing written (the temporary file was removed)\n`);
      // the shell's convention for a process ended by a signal: 128 + its number
      return stoppedBy ? 128 + SIGNAL_NUMBER[stoppedBy] : 2;
    }
    err.write(`safe-weights convert: ${esc(plainError(e))}\n`);
    return 2;
  } finally {
    for (const [sig, h] of handlers) process.removeListener(sig, h);
  }
}
