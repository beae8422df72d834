// The Inspector's text helpers: the dangerous calls cut out of the decompiled view, and the disassembly line of an
// opcode offset (what an offset link opens). Inputs are the server's real output for examples/evil.pkl and a
// two-member archive, written out here by hand.
import * as assert from 'node:assert/strict';
import { dangerCalls } from '../../../client/src/inspector/dangerCalls';
import { lineOfOffset } from '../../../client/src/disassemblyLocate';

const EVIL_DECOMPILED = "# pickle 1 (offset 0)\nresult = posix.system('echo hi')\n";
const g = (module: string, name: string, offset: number, severity = 'dangerous', member?: string) =>
  ({ module, name, offset, severity, called: true, ...(member ? { member } : {}) });

describe('Inspector: what loading would run', () => {
  it('cuts the call with its arguments out of the decompiled text', () => {
    assert.deepEqual(dangerCalls(EVIL_DECOMPILED, [g('posix', 'system', 28)]),
      [{ text: "posix.system('echo hi')", global: 'posix.system', offset: 28 }]);
  });

  it('keeps brackets inside strings, joins lines, skips longer names and safe globals', () => {
    const text = "x = myos.system('no')\nresult = {\n  'a': os.system(\n    'echo ) ( \\' ]',\n    [1, 2])\n}\n";
    assert.deepEqual(dangerCalls(text, [g('torch._utils', '_rebuild_tensor_v2', 5, 'safe'), g('os', 'system', 40, 'dangerous', 'a/data.pkl')]),
      [{ text: "os.system( 'echo ) ( \\' ]', [1, 2])", global: 'os.system', offset: 40, member: 'a/data.pkl' }]);
  });

  it('names an uncalled global bare, cuts long calls, and lists each global once', () => {
    const long = `builtins.exec('${'A'.repeat(1000)}')`;
    const r = dangerCalls(long, [g('builtins', 'exec', 2), g('builtins', 'exec', 90), g('os', 'popen', 7)], 8, 50);
    assert.equal(r.length, 2);
    assert.equal(r[0].text.length, 50);
    assert.ok(r[0].text.startsWith("builtins.exec('AAAA") && r[0].text.endsWith('…'));
    assert.deepEqual(r[1], { text: 'os.popen', global: 'os.popen', offset: 7 });
  });
});

describe('disassembly: the line of an opcode offset', () => {
  const text = [
    '# pickle 1 (member a/data.pkl, offset 0, protocol 2, 3 opcodes)',  // 0
    '        0: PROTO            2',                                      // 1
    '        2: GLOBAL           "os" "system"',                          // 2
    '       28: STOP             ',                                       // 3
    '',                                                                   // 4
    '# pickle 2 (member b/data.pkl, offset 0, protocol 2, 2 opcodes)',   // 5
    '        0: PROTO            2',                                      // 6
    '       28: GLOBAL           "posix" "system"',                       // 7
    '# pickle 3 (offset 40, protocol 4, 1 opcodes)',                      // 8
    '       28: STOP             ',                                       // 9
  ].join('\n');
  it('finds the offset in the pickle of the named member', () => {
    assert.equal(lineOfOffset(text, 28, 'a/data.pkl'), 3);
    assert.equal(lineOfOffset(text, 28, 'b/data.pkl'), 7);
    assert.equal(lineOfOffset(text, 2, 'a/data.pkl'), 2);
  });
  it('without a member, only in pickles that have none; undefined when absent', () => {
    assert.equal(lineOfOffset(text, 28), 9);
    assert.equal(lineOfOffset(text, 2, 'b/data.pkl'), undefined);
    assert.equal(lineOfOffset(text, 5, 'c/data.pkl'), undefined);
  });
});
