#!/usr/bin/env bash
# Runs every test suite: unit, protocol-level (real LSP over stdio), oracle (real torch) and end-to-end (real VS Code
# via code-server + Chromium). Under CI=true a missing dependency fails the run instead of skipping a suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run lint
npm run test:unit
npm run test:e2e
