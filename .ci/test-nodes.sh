#!/usr/bin/env bash
# The test suite on the supported runtimes: the whole suite on Node.js 24,
# then the unit tests on Node.js 22 and on this machine's node (20 on these
# machines: no longer promised, kept working while it costs nothing).
#
# Why not the whole suite three times: on Node 24 it takes 12 minutes on
# this 2-core machine (736 s, three files at a time; 948 s two at a time),
# spent on real daemons (sshd, tor, proxies, nats-server clusters, Nix
# builds) whose work does not depend on the runtime, and CI must stay within
# its time: this whole script took 871 s there on 2026-12-08, installs and
# build included. The unit runs on 22 and 20 add about 40 s each (the NixOS
# evaluations run once). What differs between Node versions (V8, the
# crypto and stream internals ssh2 and ws use, node:test) is exercised by
# the unit tests, which run on every runtime; BENTO_TEST_ALL_RUNTIMES=1 runs
# the whole suite on each.
#
# Node 24 and 22 come from the npm registry's node-linux-<arch> packages,
# installed into a temporary directory: nothing from outside the registries,
# nothing left behind. Before each runtime's run, ssh2's native addons are
# rebuilt for it (native_for below), and at the end for the system node
# again, so node_modules is left as `npm ci` made it.
# Every run always happens; the exit status is non-zero if any failed.
# Arguments are test groups for dist/test/run-tests.js (e.g. `unit`); none:
# all on Node 24 and `unit` on the others.
set -uo pipefail
cd "$(dirname "$0")/.."

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "test-nodes: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# mktemp makes it 0700; tests run the CLI as `nobody` (the admin socket's
# permission test) with this node binary, so others must be able to run it.
chmod 755 "$tmp"

# Install node-linux-ARCH@MAJOR into $tmp/MAJOR; prints the binary's path.
install_node() {
  local major=$1 dir="$tmp/$1"
  if ! npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund "node-linux-$arch@$major" >"$dir.log" 2>&1; then
    cat "$dir.log" >&2
    echo "test-nodes: could not install Node $major from the npm registry (node-linux-$arch@$major)" >&2
    return 1
  fi
  echo "$dir/node_modules/node-linux-$arch/bin/node"
}

node24="$(install_node 24)" || exit 1
node22="$(install_node 22)" || exit 1

npm run build || exit 1

# Build ssh2's native parts (its crypto binding, cpu-features) for the node
# binary $1, as the NixOS package does for the node it ships with: without
# them ssh2 falls back to JavaScript crypto (a Cipher object per packet),
# which is not what runs in production and costs the hub more memory (the
# hostile-follower bound). The registry's node-linux packages carry their
# headers (include/node), so nothing is downloaded. A failure is reported
# and the run goes on, on the fallback.
native_for() {
  local bin=$1 nodedir
  nodedir="$(dirname "$(dirname "$bin")")"
  if [ -d "$nodedir/include/node" ]; then export npm_config_nodedir="$nodedir"; else unset npm_config_nodedir; fi
  if ! PATH="$(dirname "$bin"):$PATH" npm rebuild ssh2 cpu-features >"$tmp/rebuild.log" 2>&1 ||
     ! "$bin" -e "require('./node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node')" 2>/dev/null; then
    cat "$tmp/rebuild.log" >&2
    echo "test-nodes: WARNING: ssh2's native crypto could not be built for Node $("$bin" --version); its tests run on the JavaScript fallback" >&2
  fi
  unset npm_config_nodedir
}

# Run the suite (groups "$@") with the node binary $1; its directory first on
# PATH, so scripts started as `node ...` or through `#!/usr/bin/env node` (the
# CLIs) run on it as well.
run_on() {
  local bin=$1; shift
  native_for "$bin"
  echo "== tests ${*:-(all)} on Node $("$bin" --version) ($bin)"
  PATH="$(dirname "$bin"):$PATH" "$bin" dist/test/run-tests.js "$@"
}

# Each run appends its failures, with their errors, here; printed last, so
# the tail of a CI log says why a test failed, not only the unit runs after it.
export BENTO_TEST_FAILURES="$tmp/failures.txt"

others=("$@")
if [ $# -eq 0 ] && [ "${BENTO_TEST_ALL_RUNTIMES:-}" != 1 ]; then others=(unit); fi

run_on "$node24" "$@"; on24=$?
# The NixOS module evaluations (unit/nixos-*) test Nix, not the runtime: once is enough (run-tests.ts).
BENTO_TEST_NIX_ONCE=1 run_on "$node22" "${others[@]}"; on22=$?
BENTO_TEST_NIX_ONCE=1 run_on "$(command -v node)" "${others[@]}"; onSystem=$?

if [ -s "$BENTO_TEST_FAILURES" ]; then echo; cat "$BENTO_TEST_FAILURES"; fi
echo "test-nodes: Node 24 exit $on24, Node 22 exit $on22, system node exit $onSystem"
[ "$on24" -eq 0 ] && [ "$on22" -eq 0 ] && [ "$onSystem" -eq 0 ]
