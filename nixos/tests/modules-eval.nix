# Test-only: Bento's NixOS modules under the REAL module system
# (lib.evalModules of the nixpkgs lib at libDir), with typed declarations of
# the NixOS options they touch (nixos-options-stub.nix) and a stand-in pkgs
# (pkgs-stub.nix). Returns { lib, pkgs, eval }; eval.nix turns it into data
# for the tests, option-paths.nix and nixos/docs/options.nix read its options.
#
#   modules    the configuration under test, e.g. [ { services.bento.hub.enable = true; } ]
#   entry      which Bento module to import: "module" (the modules proper,
#              nixos/modules/{hub,client}/module.nix), "checkout" (nixos/modules,
#              the non-flake entry) or "none" (the caller's modules bring it)
#   withBento  whether pkgs has bento-fleet (what the overlay adds)
{ libDir, modules ? [ ], entry ? "module", withBento ? true }:
let
  lib = import libDir;
  pkgs = import ./pkgs-stub.nix { inherit lib withBento; };
  bento = {
    module = [ ../modules/hub/module.nix ../modules/client/module.nix ];
    checkout = [ ../modules ];
    none = [ ];
  }.${entry};
in
{
  inherit lib pkgs;
  eval = lib.evalModules {
    modules = [ ./nixos-options-stub.nix { _module.args.pkgs = pkgs; } ] ++ bento ++ modules;
  };
}
