#!/usr/bin/env bash
# Sets up a fresh machine for Safe Weights: Debian packages (real torch for fixtures and oracle tests, bandit for
# the benchmark, chromium + code-server's native-build needs for end-to-end tests), npm packages, the bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
for p in python3-torch python3-numpy python3-sklearn python3-pandas python3-scipy python3-joblib python3-dill python3-cloudpickle \
    python3-numba python3-tk python3-h5py python3-onnx libonnx-testdata \
    bandit chromium ripgrep libkrb5-dev p7zip-full \
    pre-commit neovim unzip; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: missing Debian packages (run as root to install): ${need[*]}" >&2
    [ "${CI:-}" = true ] && exit 1
  fi
fi
# npm ci builds dist/ once (package.json postinstall: scripts/postinstall.mjs runs scripts/build.mjs in a checkout)
npm ci --no-audit --no-fund
