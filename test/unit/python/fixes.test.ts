// Every quick-fix on every fixture must leave syntactically valid Python, and the finding it fixes must be gone
// (except "Remove trust_repo=True", which lowers SW110 from error to warning: torch.hub.load still runs code).
import * as assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { getParser, parseSync } from '../../../server/src/python/parser';
import { analyzePython, type TextEditSpan } from '../../../server/src/python/analyze';
import { FIXTURES } from './fixtures.test';

function apply(text: string, edits: TextEditSpan[]): string {
  let out = text;
  for (const e of [...edits].sort((a, b) => b.start - a.start)) out = out.slice(0, e.start) + e.newText + out.slice(e.end);
  return out;
}

describe('quick-fixes on fixtures', () => {
  for (const file of readdirSync(FIXTURES).filter((f) => f.endsWith('.py'))) {
    it(`${file}: every fix parses and removes its finding`, async () => {
      const parser = await getParser();
      const text = readFileSync(join(FIXTURES, file), 'utf8');
      const tree = parseSync(parser, text);
      const issues = analyzePython(tree, text);
      let checked = 0;
      for (const issue of issues) {
        for (const fix of issue.fixes) {
          const fixed = apply(text, fix.edits);
          const t2 = parseSync(parser, fixed);
          assert.equal(t2.rootNode.hasError, false, `${file}: "${fix.title}" broke the syntax`);
          const line = text.slice(0, issue.start).split('\n').length;
          // Where the call starts after the fix (an edit above it, such as an added import, shifts it).
          const shift = fix.edits.filter((e) => e.end <= issue.start).reduce((n, e) => n + e.newText.length - (e.end - e.start), 0);
          const left = analyzePython(t2, fixed).filter((i) => i.rule === issue.rule && i.start === issue.start + shift);
          if (!/^Remove trust_repo/.test(fix.title)) assert.equal(left.length, 0, `${file}: "${fix.title}" left ${issue.rule} at line ${line}`);
          t2.delete();
          checked++;
        }
      }
      tree.delete();
      assert.ok(checked >= issues.length, 'every finding has at least the suppression fix');
    });
  }
});
