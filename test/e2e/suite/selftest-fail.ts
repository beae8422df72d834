// Loaded only when SAFE_WEIGHTS_E2E_SELFTEST=fail: the runner checks that this run exits non-zero.
import * as assert from 'node:assert/strict';

describe('harness self-test', () => {
  it('fails on purpose', () => {
    assert.fail('deliberate failure (SAFE_WEIGHTS_E2E_SELFTEST=fail)');
  });
});
