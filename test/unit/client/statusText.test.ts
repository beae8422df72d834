// The status bar item's words: it is named, counts model files only, its tooltip says what it counts and what a
// click does, and the click lists the flagged files (or scans again when there are none).
import * as assert from 'node:assert/strict';
import { statusView } from '../../../client/src/statusText';

const base = { scanning: false, files: [] };

describe('status bar text', () => {
  it('names itself and counts dangerous and caution model files', () => {
    const v = statusView({ ...base, dangerous: 3, caution: 1, scanned: 9 });
    assert.equal(v.text, '$(shield) Safe Weights: 3 dangerous, 1 caution');
    assert.equal(v.tone, 'error');
    assert.equal(v.click, 'listFlagged');
    assert.match(v.tooltip, /^\*\*Safe Weights\*\*: 9 model files scanned: 3 dangerous/);
    assert.match(v.tooltip, /Counts \*\*model files\*\*/);
    assert.match(v.tooltip, /Python files, notebooks and requirements are in Problems/);
    assert.match(v.tooltip, /Click to list the 4 flagged files and open one in the Model Inspector\.$/);
  });

  it('caution only: a warning tone and the caution count alone', () => {
    const v = statusView({ ...base, dangerous: 0, caution: 1, scanned: 1 });
    assert.equal(v.text, '$(shield) Safe Weights: 1 caution');
    assert.equal(v.tone, 'warning');
    assert.match(v.tooltip, /1 model file scanned/);
    assert.match(v.tooltip, /Click to list the flagged file and open/);
  });

  it('nothing flagged: says so, and a click scans again', () => {
    const v = statusView({ ...base, dangerous: 0, caution: 0, scanned: 12 });
    assert.equal(v.text, '$(shield) Safe Weights: no unsafe models');
    assert.equal(v.tone, undefined);
    assert.equal(v.click, 'rescan');
    assert.match(v.tooltip, /Click to scan the workspace again\.$/);
  });

  it('before the first scan and while scanning', () => {
    assert.equal(statusView(undefined).text, '$(shield) Safe Weights');
    assert.equal(statusView(undefined).click, 'rescan');
    assert.equal(statusView({ ...base, dangerous: 0, caution: 0, scanned: 0, scanning: true }).text, '$(sync~spin) Safe Weights: scanning…');
    assert.equal(statusView({ ...base, dangerous: 2, caution: 0, scanned: 5, scanning: true }).text, '$(shield) Safe Weights: 2 dangerous $(sync~spin)');
  });
});
