#!/usr/bin/env bash
# Installs code-server (a real VS Code build: server + web workbench + Node extension host) from the npm
# registry into DIR, with no download outside npm and Debian apt. code-server's own postinstall fetches
# ripgrep from GitHub, so scripts are skipped and its steps are done here by hand.
# Usage: install-code-server.sh DIR      (idempotent: exits at once when DIR already holds a working install)
set -euo pipefail
dir=${1:?usage: install-code-server.sh DIR}
version=${CODE_SERVER_VERSION:-4.100.3}   # VS Code 1.100.3; the last line that runs on node 20
cs="$dir/node_modules/code-server"
if [ -f "$dir/.installed-$version" ] && [ -f "$cs/lib/vscode/out/server-main.js" ]; then
  echo "code-server $version already installed in $dir"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
need=()
for p in libkrb5-dev ripgrep; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if ((${#need[@]})); then apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; fi
mkdir -p "$dir" && cd "$dir"
[ -f package.json ] || echo '{"private":true}' > package.json
npm install --no-audit --no-fund --ignore-scripts "code-server@$version" >/dev/null
npm rebuild argon2 >/dev/null
cd node_modules/code-server/lib/vscode
npm install --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null
# node-pty's post-install helper fails after its build succeeded: check the built .node files instead
npm rebuild @vscode/spdlog kerberos native-watchdog node-pty @vscode/deviceid >/dev/null 2>&1 || true
for f in node_modules/@vscode/spdlog/build/Release/spdlog.node node_modules/node-pty/build/Release/pty.node \
         node_modules/native-watchdog/build/Release/watchdog.node node_modules/kerberos/build/Release/kerberos.node; do
  [ -f "$f" ] || { echo "native module missing: $f" >&2; exit 1; }
done
mkdir -p node_modules/@vscode/ripgrep/bin && cp /usr/bin/rg node_modules/@vscode/ripgrep/bin/rg
ln -sfn node_modules node_modules.asar
(cd extensions && npm install --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
touch "$dir/.installed-$version"
echo "code-server $version ready in $dir"
