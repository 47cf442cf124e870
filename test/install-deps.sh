#!/usr/bin/env bash
# Installs everything the test suite talks to (real components, no mocks):
# OpenSSH, tinyproxy, corkscrew, microsocks, dante, tor, nftables/iproute2
# for the NAT namespaces, and Debian's nix-bin for the real-Nix rebuild
# stand-in, Debian's chromium (+ fonts) for the browser tests, python3 to
# parse the NixOS VM test scripts (test/unit/nixos-vm.test.ts), strace (the
# demo test checks what it writes), g++ and make (ssh2's native crypto, built
# for each Node version CI runs), and Debian's nats-server (2.9) for the
# cluster tests (3-node JetStream on loopback). None of
# their system services is started; tests run their own.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
PKGS="openssh-server openssh-client tor tinyproxy corkscrew microsocks dante-server nftables iproute2 nix-bin chromium fonts-liberation python3 strace nats-server g++ make"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi
