#!/usr/bin/env bash
# The whole test suite on Node.js 24, then on this machine's node (the
# supported runtimes are 24 and 22; 20 may still work but is not promised).
# Node 24 comes from the npm registry's node-linux-<arch> package, installed
# into a temporary directory: nothing from outside the registries, nothing
# left behind. node_modules is the one `npm ci` made with the system node, so
# the Node 24 run also proves that ssh2's optional native addons (cpu-features,
# its crypto binding), built for that other node, do not break anything: they
# fail to load and ssh2 falls back to JavaScript.
# Both runs always happen; the exit status is non-zero if either failed.
# Arguments are test groups for dist/test/run-tests.js (e.g. `unit`); none: all.
set -uo pipefail
cd "$(dirname "$0")/.."

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "test-nodes: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if ! npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund "node-linux-$arch@24" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log" >&2
  echo "test-nodes: could not install Node 24 from the npm registry (node-linux-$arch@24)" >&2
  exit 1
fi
node24="$tmp/node_modules/node-linux-$arch/bin/node"

npm run build || exit 1

echo "== test suite on Node $("$node24" --version) (npm registry, node-linux-$arch@24)"
# Its directory first on PATH: scripts started as `node ...` or through
# `#!/usr/bin/env node` (the CLIs) run on Node 24 as well.
PATH="$(dirname "$node24"):$PATH" "$node24" dist/test/run-tests.js "$@"
on24=$?

echo "== test suite on Node $(node --version) (this machine)"
node dist/test/run-tests.js "$@"
onSystem=$?

echo "test-nodes: Node 24 exit $on24, system node exit $onSystem"
[ "$on24" -eq 0 ] && [ "$onSystem" -eq 0 ]
