# Stand-in for `nixos-rebuild ACTION` in the VM tests (vm.nix, reboot.nix):
# there is no network in the VM to evaluate a real configuration, so it
# activates a prebuilt system, named in /var/lib/bento-test/target and found
# under `specsDir`, exactly as nixos-rebuild would: set the system profile,
# then run that system's switch-to-configuration.
{ pkgs, specsDir }:
pkgs.writeShellScript "nixos-rebuild-standin" ''
  set -eu
  export PATH=${pkgs.lib.makeBinPath [ pkgs.coreutils pkgs.nix ]}:$PATH
  action=$1
  target=$(cat /var/lib/bento-test/target)
  sys=$(readlink -f ${specsDir}/$target)
  echo "stand-in: $action -> $target ($sys)"
  case $action in
    build) exit 0 ;;
    switch|boot) nix-env -p /nix/var/nix/profiles/system --set "$sys" ;;
  esac
  exec "$sys/bin/switch-to-configuration" "$action"
''
