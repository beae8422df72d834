// A member hidden between the central directory's members (no central entry): torch never reads it, a
// streaming unzipper does. The engine must report the gap and scan what is in it; clean archives have no gap.
import * as assert from 'node:assert/strict';
import { expectFinding, expectNoFinding, expectVerdict, loadEngine, type EngineApi } from './engine';
import { osSystemPickle, torchLikeStateDict } from './pickleAsm';
import { buildZip, torchZip } from './zipAsm';

/** Inserts `hidden` (a whole local member) just before the central directory and fixes the EOCD offset. */
function hideBeforeCentralDirectory(zip: Uint8Array, hidden: Uint8Array): Uint8Array {
  const z = Buffer.from(zip);
  const eocd = z.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const cd = z.readUInt32LE(eocd + 16);
  const out = Buffer.concat([z.subarray(0, cd), Buffer.from(hidden), z.subarray(cd)]);
  out.writeUInt32LE(cd + hidden.length, eocd + hidden.length + 16);
  return out;
}

/** The local part (header + data) of a one-member stored zip. */
function localMember(name: string, data: Uint8Array): Uint8Array {
  const z = Buffer.from(buildZip([{ name, data }]));
  const cd = z.readUInt32LE(z.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])) + 16);
  return z.subarray(0, cd);
}

describe('zip bytes outside the central directory', () => {
  let engine: EngineApi;
  before(function () { engine = loadEngine(this); });

  it('a malicious pickle hidden in a gap is found (SW010 + SW001), the torch view stays the same', async () => {
    const bad = osSystemPickle('GLOBAL');
    const zip = hideBeforeCentralDirectory(torchZip(torchLikeStateDict(2)), localMember('archive/hidden.pkl', bad.bytes));
    const r = await engine.scanModelBytes(zip, 'model.pt');
    assert.equal(r.format, 'pytorch-zip');
    expectVerdict(r, 'dangerous');
    expectFinding(r, { rule: 'SW010' });
    expectFinding(r, { rule: 'SW001', global: 'os.system', member: 'archive/hidden.pkl' });
  });

  it('a clean archive has no gap finding', async () => {
    const r = await engine.scanModelBytes(torchZip(torchLikeStateDict(2)), 'model.pt');
    expectVerdict(r, 'safe');
    expectNoFinding(r, { rule: 'SW010' });
  });
});
