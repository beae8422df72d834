// The scratch pool (server/src/models/bufferPool.ts): reuse by size class, and scans that give back what they take.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropPool, giveArrayBuffer, poolStats, takeArrayBuffer } from '../../../server/src/models/bufferPool';
import { scanModelFile } from '../../../server/src/models/scan';
import { PYTHON, torchFixturesOrSkip } from '../../setup';

const KB = 1024;

describe('scratch buffer pool', () => {
  beforeEach(() => dropPool());   // other suites' scans leave buffers in it
  it('hands out at least what is asked, a power of two of 64 KB or more when newly made', () => {
    for (const n of [1, 4 * KB, 64 * KB, 64 * KB + 1, 300 * KB]) {
      const b = takeArrayBuffer(n);
      assert.ok(b.byteLength >= Math.max(n, 64 * KB), `${n}: ${b.byteLength}`);
      assert.equal(b.byteLength & (b.byteLength - 1), 0, `${n}: ${b.byteLength} is a power of two`);
    }
  });

  it('reuses a given buffer, the smallest that fits, and never hands one out twice', () => {
    const small = new ArrayBuffer(128 * KB), mid = new ArrayBuffer(512 * KB), big = new ArrayBuffer(2048 * KB);
    for (const b of [big, small, mid]) giveArrayBuffer(b);
    giveArrayBuffer(mid);   // given twice: still pooled once
    assert.equal(takeArrayBuffer(100 * KB), small);
    assert.equal(takeArrayBuffer(300 * KB), mid);
    const third = takeArrayBuffer(300 * KB);
    assert.equal(third, big, 'the next class up when the own class is empty');
    const missed = poolStats().missed;
    const fresh = takeArrayBuffer(300 * KB);
    assert.ok(fresh !== mid && fresh !== big && fresh !== small);
    assert.equal(poolStats().missed, missed + 1, 'a fourth take is a new buffer: mid was pooled once');
  });

  it('keeps no buffer under 64 KB', () => {
    const tiny = new ArrayBuffer(32 * KB);
    giveArrayBuffer(tiny);
    assert.notEqual(takeArrayBuffer(16 * KB), tiny);
  });

  it('a scan of a legacy torch file gives back every scratch buffer it takes (scanned again: nothing new)', async function () {
    const fx = torchFixturesOrSkip(this);
    // a first storage of 128 elements: its count (0x80 = PROTO) after the five pickles parses as the start of a sixth
    const tmp = mkdtempSync(join(tmpdir(), 'sw-pool-'));
    const sixth = join(tmp, 'count128.pt');
    execFileSync(PYTHON, ['-c', 'import sys, torch; torch.save({"w": torch.zeros(128)}, sys.argv[1], _use_new_zipfile_serialization=False)', sixth]);
    try {
      for (const file of [join(fx.dir, 'legacy_checkpoint.pth'), join(fx.dir, 'legacy_state_dict.pt'), sixth]) {
        const name = file.split(/[\\/]/).pop();
        await scanModelFile(file, { sha256: false });
        await scanModelFile(file, { sha256: false });
        const before = poolStats();
        const r = await scanModelFile(file, { sha256: false });
        assert.equal(r.format, 'pytorch-legacy');
        if (file === sixth) assert.equal(r.tensors.length, 1);
        const now = poolStats();
        assert.ok(now.taken > before.taken, 'the scan uses the pool');
        assert.equal(now.missed - before.missed, 0, `${name}: ${now.missed - before.missed} buffers made anew on a repeat scan`);
      }
    } finally { rmSync(tmp, { recursive: true, force: true }); }
  });
});
