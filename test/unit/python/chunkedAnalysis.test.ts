// The chunked analysis of big files (python/chunkedAnalysis.ts): chunks start only at top-level statements, and
// on code whose names are bound by module-level imports the findings equal those of one analysis of the whole file.
import * as assert from 'node:assert/strict';
import { analyzePython } from '../../../server/src/python/analyze';
import { analyzeInChunks, chunkStarts } from '../../../server/src/python/chunkedAnalysis';
import { getParser, parseSync } from '../../../server/src/python/parser';
import { LineIndex } from '../../../server/src/python/scanCode';

function program(blocks: number): string {
  const out = ['import os', 'import pickle', 'import torch as t', 'from yaml import load as yl', ''];
  for (let k = 0; k < blocks; k++) {
    out.push(`@decorate(${k})`, `def step_${k}(model, opts):`, `    """doc ${k}`, 'def not_a_statement():', '    """',
      '    cfg = {', '        "a": 1,', 'b = 2,', '    }',
      k % 7 === 0 ? '    m = t.load(opts["p"])' : '    m = None', '    return m', '',
      `class Box_${k}:`, '    def get(self, b):', k % 5 === 0 ? '        return pickle.loads(b)' : '        return b',
      'else_ = 1', 'if k:', '    y = yl(open("c.yml"))', 'else:', '    y = None', '');
  }
  return out.join('\n') + '\n';
}

describe('chunked analysis of big Python files', function () {
  this.timeout(120_000);

  it('cuts only where a top-level statement starts (not in strings, brackets, decorators or else branches)', () => {
    const text = program(1200);
    const bytes = Buffer.from(text);
    const starts = chunkStarts(bytes, 4096);
    assert.ok(starts.length > 20, `${starts.length} chunks`);
    for (const at of starts.slice(1)) {
      const line = text.slice(at, text.indexOf('\n', at));
      assert.match(line, /^(?:@decorate|import|from|class |if k:|else_ = 1)/, `a chunk starts at ${JSON.stringify(line)}`);
    }
  });

  it('finds what one analysis of the whole file finds, at the same positions', async () => {
    const text = program(1200);
    const tree = parseSync(await getParser(), text);
    const lines = new LineIndex(text);
    const whole = analyzePython(tree, text, {}).map((i) => [i.rule, lines.position(i.start), lines.position(i.end), i.message]);
    tree.delete();
    // small chunks: many cuts (the default chunk is 128 KB; the cut rule is the same)
    const bytes = Buffer.from(text);
    const { CHUNK_BYTES } = await import('../../../server/src/python/chunkedAnalysis');
    assert.ok(bytes.length > CHUNK_BYTES * 2, `${bytes.length} bytes`);
    const chunked = (await analyzeInChunks(bytes)).map((f) => [f.rule, f.start, f.end, f.message]);
    assert.ok(whole.length > 100, `${whole.length} findings`);
    assert.deepEqual(chunked, whole);
  });
});
