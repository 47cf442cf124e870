# Test-only: this repository's flake outputs, with nixpkgs replaced by the
# real lib and stand-in package sets (pkgs-stub.nix without bento-fleet,
# whose callPackage returns a stand-in "bento-fleet-flake-SYSTEM" package):
# enough to evaluate nixosModules, the VM tests' node configurations and the
# outputs' shape, where nixpkgs itself is not available.
{ lib }:
let
  stub = import ./pkgs-stub.nix { inherit lib; withBento = false; };
  fake = system: {
    type = "derivation";
    name = "bento-fleet-flake-${system}";
    outPath = "${builtins.storeDir}/00000000000000000000000000000flk-bento-fleet-flake-${system}";
  };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: stub // { callPackage = _: _: fake system; });
  };
  flake = (import ../../flake.nix).outputs { self = flake; inherit nixpkgs; };
in
flake
